/*  kmx_derived - secondary indexes and roll-ups, maintained inside the record's own write
    transaction. Indexes depend only on key fields, so an update never moves an index
    entry; roll-ups depend on the value, so an update takes the old value out and puts
    the new one in, in exact 128-bit integers.  */
#include "kmx_derived.h"

#include "kmx_err.h"
#include "kmx_keymap.h"
#include "kmx_mem.h"
#include "kmx_schema.h"

#include <errno.h>
#include <stdlib.h>
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
    int rc = mdb_dbi_open(txn, KMX_DB_ROLLUPS, flags, &dbs->rollups);
    if (rc == 0)
        rc = mdb_dbi_open(txn, KMX_DB_ROLLUPS_MONTH, flags, &dbs->rollups_month);
    return rc;
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

int kmx_derived_index(MDB_txn *txn, const kmx_derived_dbs_t *dbs, const MDB_val *rkey, uint64_t seq,
                      const Kmx__V1__Record *rec, int add) {
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
        int rc =
            add ? s_index_add(txn, dbs->idx[i], &key, &val) : mdb_del(txn, dbs->idx[i], &key, &val);
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

int kmx_derived_month_slot(const Kmx__V1__Record *rec) {
    if (!rec || !rec->period || rec->period->start != rec->period->end)
        return -1;
    uint32_t month = rec->period->start % 100;
    return month >= 1 && month <= KMX_ROLLUP_MONTHS ? (int)month - 1 : -1;
}

int kmx_derived_rollup_key(const Kmx__V1__Record *rec, uint8_t *buf, size_t size, size_t *len,
                           int *slot) {
    *slot = kmx_derived_month_slot(rec);
    if (*slot < 0)
        return kmx_rkey_rollup(rec, buf, size, len);
    Kmx__V1__Period year = KMX__V1__PERIOD__INIT;
    year.has_start = year.has_end = 1;
    year.start = rec->period->start - (uint32_t)*slot;
    year.end = year.start + KMX_ROLLUP_MONTHS - 1;
    Kmx__V1__Record copy = *rec;
    copy.period = &year;
    return kmx_rkey_rollup(&copy, buf, size, len);
}

int kmx_derived_months_decode(const MDB_val *val, kmx_i128 *sums, uint64_t *counts) {
    if (!val || val->mv_size != KMX_ROLLUP_MONTH_VALUE_LEN)
        return KMX_ERR_DECODE;
    for (int m = 0; m < KMX_ROLLUP_MONTHS; m++) {
        MDB_val one = {KMX_ROLLUP_VALUE_LEN, (uint8_t *)val->mv_data + m * KMX_ROLLUP_VALUE_LEN};
        kmx_derived_rollup_decode(&one, &sums[m], &counts[m]);
    }
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

// ---- pending roll-up changes ---------------------------------------------------------

// The net change of one roll-up entry, keyed by [months][roll-up key]: months 0 is a
// span's entry of rollups (slot 0 only), 1 a year of months' entry of rollups_month.
typedef struct {
    kmx_i128 sum[KMX_ROLLUP_MONTHS];  // net amount added, per month (span: [0])
    int64_t count[KMX_ROLLUP_MONTHS]; // net records added, per month (span: [0])
} s_change_t;

struct kmx_derived_pending {
    kmx_keymap_t *map; // [months][roll-up key] -> s_change_t
};

kmx_derived_pending_t *kmx_derived_pending_new(void) {
    kmx_derived_pending_t *self = calloc(1, sizeof *self);
    if (self && !(self->map = kmx_keymap_new(1 + KMX_RKEY_MAX, sizeof(s_change_t))))
        kmx_derived_pending_destroy(&self);
    return self;
}

void kmx_derived_pending_destroy(kmx_derived_pending_t **self_p) {
    if (!self_p || !*self_p)
        return;
    kmx_keymap_destroy(&(*self_p)->map);
    free(*self_p);
    *self_p = NULL;
}

void kmx_derived_pending_clear(kmx_derived_pending_t *self) {
    kmx_keymap_clear(self->map);
}

int kmx_derived_pending_add(kmx_derived_pending_t *self, const Kmx__V1__Record *rec, int sign) {
    uint8_t kbuf[1 + KMX_RKEY_MAX];
    size_t klen = 0;
    int slot = -1;
    if (!rec->value || kmx_derived_rollup_key(rec, kbuf + 1, sizeof kbuf - 1, &klen, &slot) != 0 ||
        klen == 0)
        return EINVAL;
    kbuf[0] = slot >= 0;
    s_change_t *e = kmx_keymap_upsert(self->map, kbuf, 1 + klen);
    if (!e)
        return ENOMEM;
    int m = slot >= 0 ? slot : 0;
    kmx_i128 amount = rec->value->amount; // |amount| < 2^63: net sums of a batch cannot overflow
    e->sum[m] += sign < 0 ? -amount : amount;
    e->count[m] += sign < 0 ? -1 : 1;
    return 0;
}

// Applies a net change (sum, count) to one stored roll-up value (sum, count).
static int s_apply_one(kmx_i128 *sum, uint64_t *count, kmx_i128 dsum, int64_t dcount) {
    if (dcount < 0) {
        uint64_t out = (uint64_t)(-(dcount + 1)) + 1u; // |dcount| without overflow
        if (out > *count)
            return EOVERFLOW; // taking out values that were never added
        *count -= out;
    } else {
        if (*count > UINT64_MAX - (uint64_t)dcount)
            return EOVERFLOW;
        *count += (uint64_t)dcount;
    }
    return s_add_i128(sum, dsum);
}

// Applies one pending change to its stored roll-up (a span's or a year of months').
static int s_pending_apply(MDB_txn *txn, const kmx_derived_dbs_t *dbs, const uint8_t *k, size_t len,
                           const s_change_t *e) {
    int months = k[0] != 0;
    int n = months ? KMX_ROLLUP_MONTHS : 1;
    int changed = 0;
    for (int m = 0; m < n; m++)
        changed |= e->count[m] != 0 || e->sum[m] != 0;
    if (!changed)
        return 0; // the batch's changes cancel out
    MDB_dbi dbi = months ? dbs->rollups_month : dbs->rollups;
    MDB_val key = {len - 1, (void *)(k + 1)}, val;
    kmx_i128 sum[KMX_ROLLUP_MONTHS] = {0};
    uint64_t count[KMX_ROLLUP_MONTHS] = {0};
    int rc = mdb_get(txn, dbi, &key, &val);
    if (rc == 0 && (months ? kmx_derived_months_decode(&val, sum, count)
                           : kmx_derived_rollup_decode(&val, &sum[0], &count[0])) != 0)
        return EINVAL;
    if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    uint64_t total = 0;
    for (int m = 0; m < n; m++) {
        if (s_apply_one(&sum[m], &count[m], e->sum[m], e->count[m]) != 0)
            return EOVERFLOW;
        total |= count[m];
    }
    if (total == 0)
        return mdb_del(txn, dbi, &key, NULL);
    uint8_t vbuf[KMX_ROLLUP_MONTH_VALUE_LEN];
    for (int m = 0; m < n; m++)
        kmx_derived_rollup_encode(sum[m], count[m], vbuf + m * KMX_ROLLUP_VALUE_LEN);
    MDB_val put = {(size_t)n * KMX_ROLLUP_VALUE_LEN, vbuf};
    return mdb_put(txn, dbi, &key, &put, 0);
}

int kmx_derived_pending_flush(MDB_txn *txn, const kmx_derived_dbs_t *dbs,
                              kmx_derived_pending_t *self) {
    int rc = 0;
    for (size_t i = 0; i < kmx_keymap_size(self->map) && rc == 0; i++) {
        const void *key;
        size_t len;
        const s_change_t *e = kmx_keymap_at(self->map, i, &key, &len);
        rc = s_pending_apply(txn, dbs, key, len, e);
    }
    kmx_derived_pending_clear(self);
    return rc;
}

// ---- reading every roll-up back ------------------------------------------------------

// Appends one roll-up to the list. Returns 0 or KMX_ERR_NOMEM.
static int s_list_add(kmx_derived_rollup_t **list, size_t *n, size_t *cap, const void *key,
                      size_t len, kmx_i128 sum, uint64_t count) {
    if (kmx_reserve((void **)list, cap, *n, sizeof **list, 256) != 0)
        return KMX_ERR_NOMEM;
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return KMX_ERR_NOMEM;
    memcpy(copy, key, len);
    (*list)[(*n)++] = (kmx_derived_rollup_t){copy, len, sum, count};
    return 0;
}

static int s_rollup_cmp(const void *a, const void *b) {
    const kmx_derived_rollup_t *ra = a, *rb = b;
    size_t n = ra->len < rb->len ? ra->len : rb->len;
    int c = memcmp(ra->key, rb->key, n);
    return c != 0 ? c : (ra->len > rb->len) - (ra->len < rb->len);
}

// Reads one database into the list, months unbundled into their own keys.
static int s_read_all(MDB_txn *txn, MDB_dbi dbi, int months, kmx_derived_rollup_t **list, size_t *n,
                      size_t *cap) {
    MDB_cursor *cur = NULL;
    int rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc != 0)
        return rc;
    MDB_val key, val;
    int err = 0;
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0 && err == 0;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        kmx_i128 sum[KMX_ROLLUP_MONTHS];
        uint64_t count[KMX_ROLLUP_MONTHS];
        if (!months) {
            err = kmx_derived_rollup_decode(&val, &sum[0], &count[0]);
            if (err == 0)
                err = s_list_add(list, n, cap, key.mv_data, key.mv_size, sum[0], count[0]);
            continue;
        }
        err = key.mv_size >= 9 ? kmx_derived_months_decode(&val, sum, count) : KMX_ERR_DECODE;
        uint8_t mkey[KMX_RKEY_MAX];
        if (err == 0 && key.mv_size > sizeof mkey)
            err = KMX_ERR_DECODE;
        uint32_t first = 0; // the year's January, YYYY01
        if (err == 0) {
            memcpy(mkey, key.mv_data, key.mv_size);
            first = (uint32_t)mkey[1] << 24 | (uint32_t)mkey[2] << 16 | (uint32_t)mkey[3] << 8 |
                    mkey[4];
        }
        for (int m = 0; m < KMX_ROLLUP_MONTHS && err == 0; m++) {
            if (count[m] == 0 && sum[m] == 0)
                continue;
            uint32_t month = first + (uint32_t)m;
            for (int b = 0; b < 4; b++)
                mkey[1 + b] = mkey[5 + b] = (uint8_t)(month >> (24 - 8 * b));
            err = s_list_add(list, n, cap, mkey, key.mv_size, sum[m], count[m]);
        }
    }
    mdb_cursor_close(cur);
    if (err != 0)
        return err;
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int kmx_derived_rollups_read(MDB_txn *txn, const kmx_derived_dbs_t *dbs, kmx_derived_rollup_t **out,
                             size_t *n_out) {
    kmx_derived_rollup_t *list = NULL;
    size_t n = 0, cap = 0;
    int rc = s_read_all(txn, dbs->rollups, 0, &list, &n, &cap);
    if (rc == 0)
        rc = s_read_all(txn, dbs->rollups_month, 1, &list, &n, &cap);
    if (rc != 0) {
        kmx_derived_rollups_free(&list, n);
        return rc;
    }
    qsort(list, n, sizeof *list, s_rollup_cmp);
    *out = list;
    *n_out = n;
    return 0;
}

void kmx_derived_rollups_free(kmx_derived_rollup_t **list, size_t n) {
    if (!list || !*list)
        return;
    for (size_t i = 0; i < n; i++)
        free((*list)[i].key);
    free(*list);
    *list = NULL;
}
