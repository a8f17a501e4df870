/*  kmx_store_read - the read side of kmx_store: get, scan, replay, stats and aggregates,
    each in one short read-only transaction on the last committed snapshot. Safe from any
    number of threads at once, beside the writer.  */
#include "kmx_store.h"

#include "kmx_store_int.h"

#include "kmx_err.h"
#include "kmx_log.h"
#include "kmx_market.h"
#include "kmx_match.h"
#include "kmx_mem.h"
#include "kmx_period.h"

#include <lmdb.h>
#include <stdlib.h>
#include <string.h>

// ---- pages ---------------------------------------------------------------------

void kmx_store_scan_page_init(kmx_store_scan_page_t *page) {
    memset(page, 0, sizeof *page);
}

void kmx_store_scan_page_fini(kmx_store_scan_page_t *page) {
    if (!page)
        return;
    for (size_t i = 0; i < page->n; i++)
        kmx__v1__stored_record__free_unpacked(page->records[i], NULL);
    free(page->records);
    memset(page, 0, sizeof *page);
}

void kmx_store_replay_page_init(kmx_store_replay_page_t *page) {
    memset(page, 0, sizeof *page);
}

void kmx_store_replay_page_fini(kmx_store_replay_page_t *page) {
    if (!page)
        return;
    for (size_t i = 0; i < page->n; i++)
        kmx__v1__update_event__free_unpacked(page->events[i], NULL);
    free(page->events);
    memset(page, 0, sizeof *page);
}

// ---- reading ---------------------------------------------------------------------

int kmx_store_get(kmx_store_t *self, const Kmx__V1__Record *key, Kmx__V1__StoredRecord **out) {
    if (!self || !key || !out)
        return KMX_ERR_INVAL;
    *out = NULL;
    uint8_t kbuf[KMX_RKEY_MAX];
    size_t klen = 0;
    if (kmx_rkey_record(key, kbuf, sizeof kbuf, &klen) != 0)
        return KMX_ERR_INVAL;
    MDB_txn *txn = NULL;
    int err = kmx_store_begin_read(self, &txn);
    if (err != 0)
        return err;
    MDB_val k = {klen, kbuf}, val;
    int rc = mdb_get(txn, self->records, &k, &val);
    if (rc == 0) {
        *out = kmx__v1__stored_record__unpack(NULL, val.mv_size, val.mv_data);
        err = *out ? 0 : KMX_ERR_DECODE;
    } else {
        err = rc == MDB_NOTFOUND ? KMX_ERR_NOT_FOUND : kmx_store_mdb_err(rc, "get");
    }
    kmx_store_end_read(self, txn);
    return err;
}

int kmx_store_filter_check(const Kmx__V1__Filter *filter) {
    return kmx_match_check(filter);
}

int kmx_store_filter_match(const Kmx__V1__Filter *f, const Kmx__V1__Record *rec) {
    return kmx_match_record(f, rec);
}

// Key range a scan may touch, derived from the filter: [lo, ...] while the kind byte
// equals kind and the period start stays <= end_max.
typedef struct {
    uint8_t lo[5];    // lower bound key: kind, then period start when known
    size_t lo_len;    // 0 = no lower bound
    int kind;         // fixed kind byte, or -1
    uint32_t end_max; // records starting after this month cannot match; 0 = no limit
} s_range_t;

static void s_range_from(const Kmx__V1__Filter *f, s_range_t *r) {
    memset(r, 0, sizeof *r);
    r->kind = -1;
    if (!f || !f->has_kind || f->kind == KMX__V1__KIND__KIND_UNSPECIFIED)
        return;
    r->kind = (int)f->kind & 0xff;
    r->lo[0] = (uint8_t)r->kind;
    r->lo_len = 1;
    kmx_period_t p;
    if (kmx_match_period(f, &p)) {
        kmx_store_put_be(r->lo + 1, p.start, 4);
        r->lo_len = 5;
        r->end_max = p.end;
    }
}

// Returns nonzero while key is still inside the range.
static int s_range_holds(const s_range_t *r, const MDB_val *key) {
    const uint8_t *k = key->mv_data;
    if (r->kind < 0)
        return 1;
    if (key->mv_size < 9 || k[0] != (uint8_t)r->kind)
        return 0;
    return r->end_max == 0 || kmx_store_get_be(k + 1, 4) <= r->end_max;
}

static int s_key_cmp(const MDB_val *a, const uint8_t *b, size_t blen) {
    size_t n = a->mv_size < blen ? a->mv_size : blen;
    int c = memcmp(a->mv_data, b, n);
    if (c != 0)
        return c;
    return (a->mv_size > blen) - (a->mv_size < blen);
}

// Positions cur at the first key the scan should visit. Returns an LMDB code.
static int s_scan_seek(MDB_cursor *cur, const kmx_store_scan_t *q, const s_range_t *r, MDB_val *key,
                       MDB_val *val) {
    int rc;
    if (q->after_len > 0) {
        key->mv_size = q->after_len;
        key->mv_data = (void *)q->after;
        rc = mdb_cursor_get(cur, key, val, MDB_SET_RANGE);
        if (rc == 0 && s_key_cmp(key, q->after, q->after_len) == 0)
            rc = mdb_cursor_get(cur, key, val, MDB_NEXT);
    } else if (r->lo_len == 0) {
        return mdb_cursor_get(cur, key, val, MDB_FIRST);
    } else {
        rc = MDB_SUCCESS;
        key->mv_size = 0;
    }
    if (rc == 0 && r->lo_len > 0 && (key->mv_size == 0 || s_key_cmp(key, r->lo, r->lo_len) < 0)) {
        key->mv_size = r->lo_len;
        key->mv_data = (void *)r->lo;
        rc = mdb_cursor_get(cur, key, val, MDB_SET_RANGE);
    }
    return rc;
}

// Decodes one visited record and keeps it in page when it matches.
static int s_scan_visit(const kmx_store_scan_t *q, const MDB_val *val, kmx_store_scan_page_t *page,
                        size_t *cap) {
    Kmx__V1__StoredRecord *sr = kmx__v1__stored_record__unpack(NULL, val->mv_size, val->mv_data);
    if (!sr) {
        kmx_log_warn("scan skipped a stored record that does not decode");
        return 0;
    }
    if (!kmx_store_filter_match(q->filter, sr->record)) {
        kmx__v1__stored_record__free_unpacked(sr, NULL);
        return 0;
    }
    if (kmx_reserve((void **)&page->records, cap, page->n, sizeof *page->records, 16) != 0) {
        kmx__v1__stored_record__free_unpacked(sr, NULL);
        return KMX_ERR_NOMEM;
    }
    page->records[page->n++] = sr;
    return 0;
}

#define S_SKIP_MARKETS_MAX 64 // markets a scan may skip between

// The markets a scan filter names, sorted in key byte order, when a skip scan can use them:
// records of one (kind, period) are ordered by market next, so the walk seeks from one
// named market to the next instead of visiting every market's records in between.
typedef struct {
    const char *markets[S_SKIP_MARKETS_MAX]; // sorted, canonical
    size_t n;                                // 0 = no skip scan
} s_skip_t;

static int s_cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

// Fills skip when the filter fixes the kind and names only canonical markets (keys hold
// canonical markets, so the seek target is exact).
static void s_skip_init(const Kmx__V1__Filter *f, const s_range_t *r, s_skip_t *skip) {
    skip->n = 0;
    if (!f || r->kind < 0 || f->n_markets == 0 || f->n_markets > S_SKIP_MARKETS_MAX)
        return;
    for (size_t i = 0; i < f->n_markets; i++) {
        char canon[KMX_MARKET_MAX];
        if (!f->markets[i] || kmx_market_canonical(f->markets[i], canon, sizeof canon) != 0 ||
            strcmp(canon, f->markets[i]) != 0)
            return;
        skip->markets[i] = f->markets[i];
    }
    skip->n = f->n_markets;
    qsort(skip->markets, skip->n, sizeof *skip->markets, s_cmp_str);
}

// Decides whether key's market is wanted. Returns 1 to visit key, 0 after moving cur to
// the next key worth visiting (rc in *rc, key and val updated).
static int s_skip_to(MDB_cursor *cur, const s_skip_t *skip, MDB_val *key, MDB_val *val, int *rc) {
    const uint8_t *k = key->mv_data;
    if (skip->n == 0 || key->mv_size < 10)
        return 1;
    const char *market = (const char *)k + 9;
    size_t mlen = strnlen(market, key->mv_size - 9);
    const char *next = NULL;
    for (size_t i = 0; i < skip->n && !next; i++) {
        size_t n = strlen(skip->markets[i]);
        int c = memcmp(skip->markets[i], market, n < mlen ? n : mlen);
        c = c != 0 ? c : (n > mlen) - (n < mlen);
        if (c == 0)
            return 1;
        if (c > 0)
            next = skip->markets[i];
    }
    uint8_t target[9 + KMX_MARKET_MAX];
    size_t tlen = 9;
    memcpy(target, k, 9);
    if (next) { // the next named market of this kind and period
        size_t n = strlen(next);
        memcpy(target + 9, next, n);
        target[9 + n] = 0;
        tlen += n + 1;
    } else { // past every named market: the next period
        uint64_t end = kmx_store_get_be(k + 5, 4);
        if (end >= UINT32_MAX) {
            *rc = MDB_NOTFOUND;
            return 0;
        }
        kmx_store_put_be(target + 5, end + 1, 4);
    }
    key->mv_size = tlen;
    key->mv_data = target;
    *rc = mdb_cursor_get(cur, key, val, MDB_SET_RANGE);
    return 0;
}

static int s_scan_walk(MDB_cursor *cur, const kmx_store_scan_t *q, kmx_store_scan_page_t *page) {
    s_range_t r;
    s_range_from(q->filter, &r);
    s_skip_t skip;
    s_skip_init(q->filter, &r, &skip);
    uint32_t limit = q->limit ? q->limit : 1;
    size_t cap = 0, visits = 0;
    MDB_val key, val;
    int rc = s_scan_seek(cur, q, &r, &key, &val);
    while (rc == 0 && s_range_holds(&r, &key)) {
        size_t klen = key.mv_size < KMX_RKEY_MAX ? key.mv_size : KMX_RKEY_MAX;
        memcpy(page->next, key.mv_data, klen);
        page->next_len = klen;
        if (!s_skip_to(cur, &skip, &key, &val, &rc)) {
            if (++visits >= KMX_STORE_SCAN_VISIT_MAX)
                break;
            continue;
        }
        int err = s_scan_visit(q, &val, page, &cap);
        if (err != 0)
            return err;
        rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
        if (page->n >= limit || ++visits >= KMX_STORE_SCAN_VISIT_MAX)
            break;
    }
    if (rc == MDB_NOTFOUND || (rc == 0 && !s_range_holds(&r, &key)))
        page->next_len = 0; // nothing left to visit: this was the last page
    else if (rc != 0)
        return kmx_store_mdb_err(rc, "scan");
    return 0;
}

int kmx_store_scan(kmx_store_t *self, const kmx_store_scan_t *q, kmx_store_scan_page_t *page) {
    if (!self || !q || !page || (q->after_len > 0 && !q->after))
        return KMX_ERR_INVAL;
    if (q->after_len > KMX_RKEY_MAX || kmx_store_filter_check(q->filter) != 0)
        return KMX_ERR_INVAL;
    MDB_txn *txn = NULL;
    int err = kmx_store_begin_read(self, &txn);
    if (err != 0)
        return err;
    MDB_cursor *cur = NULL;
    int rc = mdb_cursor_open(txn, self->records, &cur);
    if (rc != 0)
        err = kmx_store_mdb_err(rc, "cursor open");
    else if ((err = kmx_store_read_last_seq(self, txn, &page->last_seq)) == 0)
        err = s_scan_walk(cur, q, page);
    if (cur)
        mdb_cursor_close(cur);
    kmx_store_end_read(self, txn);
    if (err != 0)
        kmx_store_scan_page_fini(page);
    return err;
}

static int s_topic_wanted(const kmx_store_replay_t *q, const char *topic) {
    if (q->n_prefixes == 0)
        return 1;
    const char *t = topic ? topic : "";
    for (size_t i = 0; i < q->n_prefixes; i++) {
        const char *p = q->prefixes[i] ? q->prefixes[i] : "";
        if (strncmp(t, p, strlen(p)) == 0)
            return 1;
    }
    return 0;
}

static int s_replay_walk(MDB_cursor *cur, const kmx_store_replay_t *q,
                         kmx_store_replay_page_t *page) {
    MDB_val key, val;
    int rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0 || kmx_rkey_event_seq(key.mv_data, key.mv_size, &page->first_seq) != 0)
        return rc ? kmx_store_mdb_err(rc, "replay") : KMX_ERR_STORAGE;
    if (q->since < UINT64_MAX && q->since + 1 < page->first_seq)
        return KMX_ERR_RESYNC;
    if (q->since == UINT64_MAX)
        return 0;
    uint8_t kbuf[8];
    kmx_rkey_event(q->since + 1, kbuf);
    key.mv_size = sizeof kbuf;
    key.mv_data = kbuf;
    uint32_t limit = q->limit ? q->limit : 1;
    size_t cap = 0;
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE); rc == 0 && page->n < limit;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        Kmx__V1__UpdateEvent *ev = kmx__v1__update_event__unpack(NULL, val.mv_size, val.mv_data);
        if (!ev)
            return KMX_ERR_DECODE;
        if (!s_topic_wanted(q, ev->topic)) {
            kmx__v1__update_event__free_unpacked(ev, NULL);
            continue;
        }
        if (kmx_reserve((void **)&page->events, &cap, page->n, sizeof *page->events, 16) != 0) {
            kmx__v1__update_event__free_unpacked(ev, NULL);
            return KMX_ERR_NOMEM;
        }
        page->events[page->n++] = ev;
    }
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : kmx_store_mdb_err(rc, "replay");
}

int kmx_store_replay(kmx_store_t *self, const kmx_store_replay_t *q,
                     kmx_store_replay_page_t *page) {
    if (!self || !q || !page || (q->n_prefixes > 0 && !q->prefixes))
        return KMX_ERR_INVAL;
    MDB_txn *txn = NULL;
    int err = kmx_store_begin_read(self, &txn);
    if (err != 0)
        return err;
    MDB_cursor *cur = NULL;
    int rc = mdb_cursor_open(txn, self->events, &cur);
    if (rc != 0)
        err = kmx_store_mdb_err(rc, "cursor open");
    else if ((err = kmx_store_read_last_seq(self, txn, &page->last_seq)) == 0)
        err = s_replay_walk(cur, q, page);
    if (cur)
        mdb_cursor_close(cur);
    kmx_store_end_read(self, txn);
    if (err != 0) {
        uint64_t first = page->first_seq, last = page->last_seq;
        kmx_store_replay_page_fini(page);
        page->first_seq = first;
        page->last_seq = last;
    }
    return err;
}

int kmx_store_stats(kmx_store_t *self, kmx_store_stats_t *out) {
    if (!self || !out)
        return KMX_ERR_INVAL;
    memset(out, 0, sizeof *out);
    MDB_txn *txn = NULL;
    int err = kmx_store_begin_read(self, &txn);
    if (err != 0)
        return err;
    MDB_stat rs, es, env_st;
    MDB_envinfo info;
    int rc = mdb_stat(txn, self->records, &rs);
    if (rc == 0)
        rc = mdb_stat(txn, self->events, &es);
    if (rc == 0)
        err = kmx_store_read_last_seq(self, txn, &out->last_seq);
    if (rc == 0)
        rc = mdb_env_stat(self->env, &env_st);
    if (rc == 0)
        rc = mdb_env_info(self->env, &info);
    kmx_store_end_read(self, txn);
    if (rc != 0)
        return kmx_store_mdb_err(rc, "stats");
    if (err != 0)
        return err;
    out->records = rs.ms_entries;
    out->events = es.ms_entries;
    out->map_size = info.me_mapsize;
    out->used_pages = (uint64_t)info.me_last_pgno + 1;
    out->page_size = env_st.ms_psize;
    return 0;
}

// ---- aggregate -------------------------------------------------------------------

int kmx_store_filter_is_rollup(const Kmx__V1__Filter *f) {
    return !f || (f->n_items == 0 && f->n_companies == 0 && f->n_artists == 0 && f->n_sources == 0);
}

// Adds one record to group when the filter matches it.
static int s_agg_record(const Kmx__V1__Filter *filter, const MDB_val *val, kmx_group_t *group) {
    Kmx__V1__StoredRecord *sr = kmx__v1__stored_record__unpack(NULL, val->mv_size, val->mv_data);
    if (!sr || !sr->record || !sr->record->value || !sr->record->period) {
        kmx_log_warn("aggregate skipped a stored record that does not decode");
        if (sr)
            kmx__v1__stored_record__free_unpacked(sr, NULL);
        return 0;
    }
    int err = 0;
    if (kmx_store_filter_match(filter, sr->record))
        err = kmx_group_add(group, sr->record, sr->record->value->amount, 1, 1);
    kmx__v1__stored_record__free_unpacked(sr, NULL);
    return err;
}

// Walks the records over the filter's key range, feeding group.
static int s_agg_walk(MDB_cursor *cur, const Kmx__V1__Filter *filter, kmx_group_t *group) {
    s_range_t r;
    s_range_from(filter, &r);
    kmx_store_scan_t q = {0};
    MDB_val key, val;
    int rc = s_scan_seek(cur, &q, &r, &key, &val);
    int err = 0;
    while (rc == 0 && err == 0 && s_range_holds(&r, &key)) {
        err = s_agg_record(filter, &val, group);
        rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
    }
    if (err != 0)
        return err;
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : kmx_store_mdb_err(rc, "aggregate");
}

int kmx_store_aggregate(kmx_store_t *self, const Kmx__V1__Filter *filter, kmx_group_t *group,
                        int fields_rollup, const kmx_store_fold_t *fold,
                        kmx_store_agg_info_t *info) {
    if (!self || !group || !info)
        return KMX_ERR_INVAL;
    if (kmx_store_filter_check(filter) != 0)
        return KMX_ERR_INVAL;
    info->from_rollups = fields_rollup && kmx_store_filter_is_rollup(filter);
    info->folded = 0;
    MDB_txn *txn = NULL;
    int err = kmx_store_begin_read(self, &txn);
    if (err != 0)
        return err;
    err = kmx_store_read_last_seq(self, txn, &info->last_seq);
    if (err == 0 && info->from_rollups) {
        err = kmx_store_rollup_aggregate(self, txn, filter, fold, group, &info->folded);
    } else if (err == 0) {
        MDB_cursor *cur = NULL;
        int rc = mdb_cursor_open(txn, self->records, &cur);
        err = rc != 0 ? kmx_store_mdb_err(rc, "cursor open") : s_agg_walk(cur, filter, group);
        if (cur)
            mdb_cursor_close(cur);
    }
    kmx_store_end_read(self, txn);
    return err;
}
