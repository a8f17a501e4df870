/*  kmx_store_check - the offline verifier and the hot backup of a kmx store. The verifier
    recomputes, in one read transaction, every index entry and roll-up the records imply
    and compares them with what is stored, and checks the event log has no gap.  */
#include "kmx_store.h"

#include "kmx_err.h"
#include "kmx_log.h"
#include "kmx_mem.h"
#include "kmx_schema.h"
#include "kmx_store_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define S_LOG_MAX 5 // mismatches logged per kind; the report counts all of them

// One record's contribution to a roll-up, collected then sorted by key.
typedef struct {
    uint8_t *key;   // roll-up key (malloc'd)
    size_t len;     // bytes in key
    int64_t amount; // the record's amount
} s_part_t;

typedef struct {
    kmx_store_t *store;                 // the store being checked
    MDB_txn *txn;                       // the read transaction
    kmx_store_check_t *r;               // the report
    s_part_t *parts;                    // roll-up contributions
    size_t n_parts, cap;                // held and allocated
    uint64_t found[KMX_RKEY_IDX_COUNT]; // index entries found present
} s_check_t;

static int s_key_order(const void *a, size_t alen, const void *b, size_t blen) {
    size_t n = alen < blen ? alen : blen;
    int c = memcmp(a, b, n);
    return c != 0 ? c : (alen > blen) - (alen < blen);
}

static int s_part_cmp(const void *a, const void *b) {
    const s_part_t *pa = a, *pb = b;
    return s_key_order(pa->key, pa->len, pb->key, pb->len);
}

static int s_add_part(s_check_t *c, const Kmx__V1__Record *rec) {
    uint8_t kbuf[KMX_RKEY_MAX];
    size_t klen = 0;
    if (kmx_rkey_rollup(rec, kbuf, sizeof kbuf, &klen) != 0) {
        c->r->bad_values++;
        return 0;
    }
    if (kmx_reserve((void **)&c->parts, &c->cap, c->n_parts, sizeof *c->parts, 1024) != 0)
        return KMX_ERR_NOMEM;
    uint8_t *key = malloc(klen);
    if (!key)
        return KMX_ERR_NOMEM;
    memcpy(key, kbuf, klen);
    c->parts[c->n_parts++] = (s_part_t){key, klen, rec->value->amount};
    return 0;
}

// Checks that every index entry rec implies is present.
static int s_check_indexes(s_check_t *c, const MDB_val *rkey, uint64_t seq,
                           const Kmx__V1__Record *rec) {
    uint8_t entry[KMX_DERIVED_ENTRY_SEQ + KMX_RKEY_MAX];
    size_t elen = 0;
    if (kmx_derived_entry(seq, rkey, entry, sizeof entry, &elen) != 0)
        return KMX_ERR_INTERNAL;
    for (int i = 0; i < KMX_RKEY_IDX_COUNT; i++) {
        uint8_t kbuf[KMX_RKEY_MAX];
        size_t klen = 0;
        int err = kmx_rkey_index((kmx_rkey_index_t)i, rec, kbuf, sizeof kbuf, &klen);
        if (err == KMX_ERR_NOT_FOUND)
            continue;
        MDB_cursor *cur = NULL;
        int rc = err == 0 ? mdb_cursor_open(c->txn, c->store->derived.idx[i], &cur) : EINVAL;
        MDB_val key = {klen, kbuf}, val = {elen, entry};
        if (rc == 0)
            rc = mdb_cursor_get(cur, &key, &val, MDB_GET_BOTH);
        if (cur)
            mdb_cursor_close(cur);
        if (rc == 0) {
            c->found[i]++;
        } else if (rc == MDB_NOTFOUND || rc == EINVAL) {
            if (c->r->index_missing++ < S_LOG_MAX)
                kmx_log_error("check: index entry missing index=%s", kmx_derived_index_name(i));
        } else {
            return kmx_store_mdb_err(rc, "check index");
        }
    }
    return 0;
}

static int s_check_record(s_check_t *c, const MDB_val *key, const MDB_val *val) {
    c->r->records++;
    Kmx__V1__StoredRecord *sr = kmx__v1__stored_record__unpack(NULL, val->mv_size, val->mv_data);
    if (!sr || !sr->record || !sr->record->value || sr->seq > c->r->last_seq) {
        if (c->r->bad_values++ < S_LOG_MAX)
            kmx_log_error("check: a stored record does not decode or is newer than last_seq");
        if (sr)
            kmx__v1__stored_record__free_unpacked(sr, NULL);
        return 0;
    }
    int err = s_check_indexes(c, key, sr->seq, sr->record);
    if (err == 0)
        err = s_add_part(c, sr->record);
    kmx__v1__stored_record__free_unpacked(sr, NULL);
    return err;
}

static int s_walk_records(s_check_t *c) {
    MDB_cursor *cur = NULL;
    int rc = mdb_cursor_open(c->txn, c->store->records, &cur);
    if (rc != 0)
        return kmx_store_mdb_err(rc, "cursor open");
    MDB_val key, val;
    int err = 0;
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0 && err == 0;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT))
        err = s_check_record(c, &key, &val);
    mdb_cursor_close(cur);
    if (err != 0)
        return err;
    return rc == MDB_NOTFOUND ? 0 : kmx_store_mdb_err(rc, "check records");
}

// Every entry of an index was either found from a record or is extra.
static int s_count_extra(s_check_t *c) {
    for (int i = 0; i < KMX_RKEY_IDX_COUNT; i++) {
        MDB_stat st;
        int rc = mdb_stat(c->txn, c->store->derived.idx[i], &st);
        if (rc != 0)
            return kmx_store_mdb_err(rc, "stat index");
        uint64_t extra = st.ms_entries > c->found[i] ? st.ms_entries - c->found[i] : 0;
        if (extra > 0)
            kmx_log_error("check: index has entries no record implies index=%s extra=%llu",
                          kmx_derived_index_name(i), (unsigned long long)extra);
        c->r->index_extra += extra;
    }
    return 0;
}

static void s_rollup_mismatch(s_check_t *c, const char *what) {
    if (c->r->rollup_mismatch++ < S_LOG_MAX)
        kmx_log_error("check: roll-up %s", what);
}

// Merges the sorted contributions with the stored roll-ups (months unbundled), both in
// key order.
static int s_compare_rollups(s_check_t *c) {
    qsort(c->parts, c->n_parts, sizeof *c->parts, s_part_cmp);
    kmx_derived_rollup_t *have = NULL;
    size_t n_have = 0, h = 0, i = 0;
    int rc = kmx_derived_rollups_read(c->txn, &c->store->derived, &have, &n_have);
    if (rc == KMX_ERR_DECODE) {
        s_rollup_mismatch(c, "entry does not decode");
        return 0;
    }
    if (rc != 0)
        return rc == KMX_ERR_NOMEM ? rc : kmx_store_mdb_err(rc, "check roll-ups");
    while (h < n_have || i < c->n_parts) {
        int order = h >= n_have ? 1
                    : i >= c->n_parts
                        ? -1
                        : s_key_order(have[h].key, have[h].len, c->parts[i].key, c->parts[i].len);
        if (order < 0) {
            s_rollup_mismatch(c, "entry has no records");
            h++;
            continue;
        }
        kmx_i128 want = 0;
        uint64_t n = 0;
        size_t j = i;
        for (; j < c->n_parts && s_part_cmp(&c->parts[i], &c->parts[j]) == 0; j++, n++)
            want += c->parts[j].amount;
        if (order > 0) {
            s_rollup_mismatch(c, "entry missing for records");
        } else {
            if (have[h].sum != want || have[h].count != n)
                s_rollup_mismatch(c, "sum or count differs from the records");
            h++;
        }
        i = j;
    }
    kmx_derived_rollups_free(&have, n_have);
    return 0;
}

// Checks the event log holds every sequence from its first key up to last_seq.
static int s_check_events(s_check_t *c) {
    MDB_cursor *cur = NULL;
    int rc = mdb_cursor_open(c->txn, c->store->events, &cur);
    if (rc != 0)
        return kmx_store_mdb_err(rc, "cursor open");
    MDB_val key, val;
    uint64_t expect = 0, seq = 0;
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        Kmx__V1__UpdateEvent *ev = kmx__v1__update_event__unpack(NULL, val.mv_size, val.mv_data);
        if (kmx_rkey_event_seq(key.mv_data, key.mv_size, &seq) != 0 || !ev || ev->seq != seq)
            c->r->bad_values++;
        if (ev)
            kmx__v1__update_event__free_unpacked(ev, NULL);
        if (c->r->events++ == 0)
            c->r->first_seq = expect = seq;
        if (seq != expect)
            c->r->event_gaps += seq > expect ? seq - expect : 1;
        expect = seq + 1;
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND)
        return kmx_store_mdb_err(rc, "check events");
    // The newest event is last_seq itself (the log is never trimmed to nothing).
    if (c->r->last_seq > 0 && (c->r->events == 0 || expect != c->r->last_seq + 1))
        c->r->event_gaps++;
    if (c->r->event_gaps > 0)
        kmx_log_error("check: event log has gaps first_seq=%llu last_seq=%llu gaps=%llu",
                      (unsigned long long)c->r->first_seq, (unsigned long long)c->r->last_seq,
                      (unsigned long long)c->r->event_gaps);
    return 0;
}

static int s_check_all(s_check_t *c) {
    int err = kmx_store_read_last_seq(c->store, c->txn, &c->r->last_seq);
    if (err == 0)
        err = s_walk_records(c);
    if (err == 0)
        err = s_count_extra(c);
    if (err == 0)
        err = s_compare_rollups(c);
    if (err == 0)
        err = s_check_events(c);
    return err;
}

int kmx_store_check(kmx_store_t *self, kmx_store_check_t *report) {
    if (!self || !report)
        return KMX_ERR_INVAL;
    memset(report, 0, sizeof *report);
    s_check_t c;
    memset(&c, 0, sizeof c);
    c.store = self;
    c.r = report;
    int err = kmx_store_begin_read(self, &c.txn);
    if (err != 0)
        return err;
    err = s_check_all(&c);
    kmx_store_end_read(self, c.txn);
    for (size_t i = 0; i < c.n_parts; i++)
        free(c.parts[i].key);
    free(c.parts);
    if (err != 0)
        return err;
    uint64_t bad = report->index_missing + report->index_extra + report->rollup_mismatch +
                   report->event_gaps + report->bad_values;
    return bad == 0 ? 0 : KMX_ERR_INTERNAL;
}

int kmx_store_backup(kmx_store_t *self, const char *dest) {
    if (!self || !dest || !dest[0])
        return KMX_ERR_INVAL;
    if (mkdir(dest, 0700) != 0 && errno != EEXIST) {
        kmx_log_error("cannot create backup directory dir=%s: %s", dest, strerror(errno));
        return KMX_ERR_IO;
    }
    char path[4096];
    struct stat st;
    int n = snprintf(path, sizeof path, "%s/data.mdb", dest);
    if (n < 0 || (size_t)n >= sizeof path)
        return KMX_ERR_INVAL;
    if (stat(path, &st) == 0) {
        kmx_log_error("backup directory already holds a store dir=%s", dest);
        return KMX_ERR_INVAL;
    }
    // MDB_CP_COMPACT copies only live pages, in one read transaction: a consistent
    // snapshot while the writer goes on.
    int rc = mdb_env_copy2(self->env, dest, MDB_CP_COMPACT);
    if (rc != 0)
        return kmx_store_mdb_err(rc, "backup copy");
    kmx_log_info("backup written dir=%s last_seq=%llu", dest,
                 (unsigned long long)kmx_store_last_seq(self));
    return 0;
}
