/*  kmx_derived - secondary indexes and roll-ups, maintained inside the record's own write
    transaction. Indexes depend only on key fields, so an update never moves an index
    entry; roll-ups depend on the value, so an update takes the old value out and puts
    the new one in, in exact 128-bit integers.  */
#include "kmx_derived.h"

#include "kmx_err.h"
#include "kmx_schema.h"

#include <errno.h>
#include <string.h>

static const char *const s_index_names[KMX_RKEY_IDX_COUNT] = {
    KMX_DB_IDX_MARKET,  KMX_DB_IDX_PERIOD, KMX_DB_IDX_CATEGORY,
    KMX_DB_IDX_COMPANY, KMX_DB_IDX_ARTIST,
};

const char *kmx_derived_index_name(kmx_rkey_index_t idx) {
    return idx < KMX_RKEY_IDX_COUNT ? s_index_names[idx] : NULL;
}

int kmx_derived_open(MDB_txn *txn, int create, kmx_derived_dbs_t *dbs) {
    unsigned int flags = create ? MDB_CREATE : 0;
    for (int i = 0; i < KMX_RKEY_IDX_COUNT; i++) {
        int rc = mdb_dbi_open(txn, s_index_names[i], flags | MDB_DUPSORT, &dbs->idx[i]);
        if (rc != 0)
            return rc;
    }
    return mdb_dbi_open(txn, KMX_DB_ROLLUPS, flags, &dbs->rollups);
}

int kmx_derived_entry(uint64_t seq, const MDB_val *rkey, uint8_t *buf, size_t size, size_t *len) {
    if (size < KMX_DERIVED_ENTRY_SEQ || rkey->mv_size > size - KMX_DERIVED_ENTRY_SEQ)
        return KMX_ERR_OVERFLOW;
    for (int i = KMX_DERIVED_ENTRY_SEQ - 1; i >= 0; i--) {
        buf[i] = (uint8_t)seq;
        seq >>= 8;
    }
    memcpy(buf + KMX_DERIVED_ENTRY_SEQ, rkey->mv_data, rkey->mv_size);
    *len = KMX_DERIVED_ENTRY_SEQ + rkey->mv_size;
    return 0;
}

// Appends one entry: its sequence is above every entry already there, so MDB_APPENDDUP
// skips the search among the duplicates. Falls back to a sorted put if LMDB disagrees.
static int s_index_add(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *val) {
    int rc = mdb_put(txn, dbi, key, val, MDB_APPENDDUP | MDB_NODUPDATA);
    if (rc == MDB_KEYEXIST)
        rc = mdb_put(txn, dbi, key, val, MDB_NODUPDATA);
    return rc;
}

int kmx_derived_index(MDB_txn *txn, const kmx_derived_dbs_t *dbs, const MDB_val *rkey,
                      uint64_t seq, const Kmx__V1__Record *rec, int add) {
    uint8_t entry[KMX_DERIVED_ENTRY_SEQ + KMX_RKEY_MAX];
    size_t elen = 0;
    if (kmx_derived_entry(seq, rkey, entry, sizeof entry, &elen) != 0)
        return EINVAL;
    for (int i = 0; i < KMX_RKEY_IDX_COUNT; i++) {
        uint8_t kbuf[KMX_RKEY_MAX];
        size_t klen = 0;
        int err = kmx_rkey_index((kmx_rkey_index_t)i, rec, kbuf, sizeof kbuf, &klen);
        if (err == KMX_ERR_NOT_FOUND)
            continue; // no company or artist: nothing to index
        if (err != 0)
            return EINVAL;
        MDB_val key = {klen, kbuf}, val = {elen, entry};
        int rc = add ? s_index_add(txn, dbs->idx[i], &key, &val)
                     : mdb_del(txn, dbs->idx[i], &key, &val);
        // An entry already present (or already gone) is the state we want.
        if (rc != 0 && rc != MDB_KEYEXIST && rc != MDB_NOTFOUND)
            return rc;
    }
    return 0;
}

void kmx_derived_rollup_encode(kmx_i128 sum, uint64_t count, uint8_t *out) {
    kmx_u128 u = (kmx_u128)sum;
    for (int i = 15; i >= 0; i--) {
        out[i] = (uint8_t)u;
        u >>= 8;
    }
    for (int i = 23; i >= 16; i--) {
        out[i] = (uint8_t)count;
        count >>= 8;
    }
}

int kmx_derived_rollup_decode(const MDB_val *val, kmx_i128 *sum, uint64_t *count) {
    if (!val || val->mv_size != KMX_ROLLUP_VALUE_LEN)
        return KMX_ERR_DECODE;
    const uint8_t *p = val->mv_data;
    kmx_u128 u = 0;
    for (int i = 0; i < 16; i++)
        u = (u << 8) | p[i];
    uint64_t c = 0;
    for (int i = 16; i < 24; i++)
        c = (c << 8) | p[i];
    *sum = (kmx_i128)u;
    *count = c;
    return 0;
}

// Adds delta to *sum, refusing to leave the 128-bit range.
static int s_add_i128(kmx_i128 *sum, kmx_i128 delta) {
    kmx_i128 out;
    if (__builtin_add_overflow(*sum, delta, &out))
        return EOVERFLOW;
    *sum = out;
    return 0;
}

int kmx_derived_rollup(MDB_txn *txn, const kmx_derived_dbs_t *dbs, const Kmx__V1__Record *rec,
                       int sign) {
    uint8_t kbuf[KMX_RKEY_MAX];
    size_t klen = 0;
    if (kmx_rkey_rollup(rec, kbuf, sizeof kbuf, &klen) != 0)
        return EINVAL;
    MDB_val key = {klen, kbuf}, val;
    kmx_i128 sum = 0;
    uint64_t count = 0;
    int rc = mdb_get(txn, dbs->rollups, &key, &val);
    if (rc == 0 && kmx_derived_rollup_decode(&val, &sum, &count) != 0)
        return EINVAL;
    if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    kmx_i128 amount = rec->value->amount;
    if (sign < 0 && count == 0)
        return EOVERFLOW; // taking out a value that was never added
    if (s_add_i128(&sum, sign < 0 ? -amount : amount) != 0)
        return EOVERFLOW;
    count = sign < 0 ? count - 1 : count + 1;
    if (count == 0)
        return mdb_del(txn, dbs->rollups, &key, NULL);
    uint8_t vbuf[KMX_ROLLUP_VALUE_LEN];
    kmx_derived_rollup_encode(sum, count, vbuf);
    MDB_val put = {sizeof vbuf, vbuf};
    return mdb_put(txn, dbs->rollups, &key, &put, 0);
}
