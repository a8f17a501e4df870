/*  kmx_storage_read - kmx-storage's read side: every read request (get, scan, replay,
    query, aggregate, ping, stats) answered from its own LMDB read transaction on the last
    committed snapshot, beside the writer and never queued behind a commit. The reader
    threads run kmx_storage_reader_main; the router answers the quick ones itself
    (kmx_storage_is_quick). A new read request is one more row in s_handlers. Reads whose
    filter names a value no record holds are refused (kmx_store_filter_exists).  */
#include "kmx_answer.h"
#include "kmx_storage_int.h"

#include "kmx_err.h"
#include "kmx_group.h"
#include "kmx_log.h"
#include "kmx_market.h"
#include "kmx_msg.h"
#include "kmx_proc.h"
#include "kmx_store.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

typedef int (*s_handler_fn)(kmx_storage_t *self, const kmx_storage_req_t *item, uint8_t **out,
                            size_t *len);

static int s_error(kmx_storage_t *self, const kmx_storage_req_t *item, int err, const char *msg,
                   uint8_t **out, size_t *len) {
    return kmx_storage_error(self, item, err, msg, out, len);
}

// ---- aggregate -----------------------------------------------------------------------

// Refuses a filter naming a value no record holds ("physical_albums" for
// "physical_album_customs"): an empty answer would read as "none sold". Returns 1 with the
// error packed into out (rc in *rc), or 0 when every value exists.
static int s_refuse_unknown(kmx_storage_t *self, const kmx_storage_req_t *item,
                            const Kmx__V1__Filter *filter, uint8_t **out, size_t *len, int *rc) {
    char why[512] = "";
    int err = kmx_store_filter_exists(self->store, filter, why, sizeof why);
    if (err == 0)
        return 0;
    *rc = s_error(self, item, err, err == KMX_ERR_INVAL ? why : kmx_strerror(err), out, len);
    return 1;
}

// A whole query, shaped here so only the answer's rows leave storage (kmx_answer).
static int s_on_query(kmx_storage_t *self, const kmx_storage_req_t *item, uint8_t **out,
                      size_t *len) {
    self->count.aggregates++;
    int rc = 0;
    if (s_refuse_unknown(self, item, item->req->query->filter, out, len, &rc))
        return rc;
    return kmx_answer_query(self->store, item->req, out, len);
}

static int s_on_aggregate(kmx_storage_t *self, const kmx_storage_req_t *item, uint8_t **out,
                          size_t *len) {
    self->count.aggregates++;
    const Kmx__V1__AggregateRequest *ar = item->req->aggregate;
    int refused = 0;
    if (s_refuse_unknown(self, item, ar->filter, out, len, &refused))
        return refused;
    if (kmx_group_check_fields(ar->group_by, ar->n_group_by) != 0)
        return s_error(self, item, KMX_ERR_INVAL, "unknown or too many group fields", out, len);
    char why[512];
    int alt = kmx_store_alternatives_check(self->store, ar->filter, ar->group_by, ar->n_group_by,
                                           why, sizeof why);
    if (alt != 0) // alternatives of one quantity are never added (docs/data-model.md)
        return s_error(self, item, alt == 1 ? KMX_ERR_INVAL : alt,
                       alt == 1 ? why : kmx_strerror(alt), out, len);
    kmx_group_t *group = kmx_group_new(ar->group_by, ar->n_group_by);
    if (!group)
        return s_error(self, item, KMX_ERR_NOMEM, "out of memory", out, len);
    kmx_store_agg_info_t info = {0};
    int rollup = kmx_group_fields_rollup(ar->group_by, ar->n_group_by);
    int err = kmx_store_aggregate(self->store, ar->filter, group, rollup, NULL, &info);
    Kmx__V1__QueryResult result = KMX__V1__QUERY_RESULT__INIT;
    if (err == 0)
        err = kmx_group_result(group, &result);
    if (err == KMX_ERR_INVAL)
        err = s_error(self, item, err, "invalid filter", out, len);
    else if (err == KMX_ERR_TOO_BIG)
        err = s_error(self, item, err, "too many groups; narrow the filter", out, len);
    else if (err != 0)
        err = s_error(self, item, err, kmx_strerror(err), out, len);
    else {
        result.has_from_rollups = result.has_last_seq = 1;
        result.from_rollups = info.from_rollups != 0;
        result.last_seq = info.last_seq;
        Kmx__V1__Response resp = KMX__V1__RESPONSE__INIT;
        resp.request_id = item->req->request_id;
        resp.result_case = KMX__V1__RESPONSE__RESULT_QUERY;
        resp.query = &result;
        err = kmx_msg_pack_response(&resp, out, len);
    }
    kmx_group_destroy(&group);
    return err;
}

// ---- get, scan, replay -------------------------------------------------------------

// Copies key to lookup with its market as stored keys spell it: users name markets loosely
// ("japan"), and consumption defaults to KR as kmx_record_normalize does. market holds
// KMX_MARKET_MAX bytes and backs lookup->market.
static void s_lookup_key(const Kmx__V1__Record *key, char *market, Kmx__V1__Record *lookup) {
    *lookup = *key;
    if (key->market && kmx_market_canonical(key->market, market, KMX_MARKET_MAX) == 0)
        lookup->market = market;
    if ((!key->market || !key->market[0]) && key->kind == KMX__V1__KIND__CONSUMPTION)
        lookup->market = "KR";
}

static int s_on_get(kmx_storage_t *self, const kmx_storage_req_t *item, uint8_t **out,
                    size_t *len) {
    self->count.gets++;
    Kmx__V1__Record *key = item->req->get ? item->req->get->key : NULL;
    if (!key)
        return s_error(self, item, KMX_ERR_INVAL, "get needs a key", out, len);
    char market[KMX_MARKET_MAX];
    Kmx__V1__Record lookup;
    s_lookup_key(key, market, &lookup);
    Kmx__V1__StoredRecord *found = NULL;
    int err = kmx_store_get(self->store, &lookup, &found);
    if (err == KMX_ERR_INVAL)
        return s_error(self, item, err, "key needs kind, period and market", out, len);
    if (err != 0)
        return s_error(self, item, err, kmx_strerror(err), out, len);
    Kmx__V1__GetResult get = KMX__V1__GET_RESULT__INIT;
    Kmx__V1__Response resp = KMX__V1__RESPONSE__INIT;
    get.record = found;
    resp.request_id = item->req->request_id;
    resp.result_case = KMX__V1__RESPONSE__RESULT_GET;
    resp.get = &get;
    err = kmx_msg_pack_response(&resp, out, len);
    kmx__v1__stored_record__free_unpacked(found, NULL);
    return err;
}

static int s_on_history(kmx_storage_t *self, const kmx_storage_req_t *item, uint8_t **out,
                        size_t *len) {
    Kmx__V1__Record *key = item->req->history->key;
    if (!key)
        return s_error(self, item, KMX_ERR_INVAL, "history needs a key", out, len);
    char market[KMX_MARKET_MAX];
    Kmx__V1__Record lookup;
    s_lookup_key(key, market, &lookup);
    kmx_store_history_t h;
    int err = kmx_store_history(self->store, &lookup, &h);
    if (err == KMX_ERR_INVAL)
        return s_error(self, item, err, "key needs kind, period and market", out, len);
    if (err == 0 && h.n == 0)
        err = s_error(self, item, KMX_ERR_NOT_FOUND, "no such record in the event log", out, len);
    else if (err != 0)
        err = s_error(self, item, err, kmx_strerror(err), out, len);
    else {
        Kmx__V1__HistoryResult hr = KMX__V1__HISTORY_RESULT__INIT;
        hr.n_events = h.n;
        hr.events = h.events;
        hr.has_last_seq = hr.has_first_seq = 1;
        hr.last_seq = h.last_seq;
        hr.first_seq = h.first_seq;
        Kmx__V1__Response resp = KMX__V1__RESPONSE__INIT;
        resp.request_id = item->req->request_id;
        resp.result_case = KMX__V1__RESPONSE__RESULT_HISTORY;
        resp.history = &hr;
        err = kmx_msg_pack_response(&resp, out, len);
    }
    kmx_store_history_fini(&h);
    return err;
}

static int s_on_catalog(kmx_storage_t *self, const kmx_storage_req_t *item, uint8_t **out,
                        size_t *len) {
    const Kmx__V1__CatalogRequest *cr = item->req->catalog;
    Kmx__V1__Kind kind = cr->has_kind ? cr->kind : KMX__V1__KIND__KIND_UNSPECIFIED;
    if (kind != KMX__V1__KIND__KIND_UNSPECIFIED && kind != KMX__V1__KIND__EXPORT &&
        kind != KMX__V1__KIND__CONSUMPTION)
        return s_error(self, item, KMX_ERR_INVAL, "catalog: unknown kind", out, len);
    Kmx__V1__CatalogResult *cat = NULL;
    int err = kmx_store_catalog(self->store, kind, &cat);
    if (err == 0 && (err = kmx_store_alternatives_catalog(self->store, kind, cat)) != 0)
        kmx__v1__catalog_result__free_unpacked(cat, NULL);
    if (err != 0)
        return s_error(self, item, err, kmx_strerror(err), out, len);
    Kmx__V1__Response resp = KMX__V1__RESPONSE__INIT;
    resp.request_id = item->req->request_id;
    resp.result_case = KMX__V1__RESPONSE__RESULT_CATALOG;
    resp.catalog = cat;
    err = kmx_msg_pack_response(&resp, out, len);
    kmx__v1__catalog_result__free_unpacked(cat, NULL);
    return err;
}

static uint32_t s_cap(int has, uint32_t asked, uint32_t dflt, uint32_t max) {
    if (!has || asked == 0)
        return dflt;
    return asked > max ? max : asked;
}

static int s_on_scan(kmx_storage_t *self, const kmx_storage_req_t *item, uint8_t **out,
                     size_t *len) {
    self->count.scans++;
    const Kmx__V1__ScanRequest *sr = item->req->scan;
    int refused = 0;
    if (s_refuse_unknown(self, item, sr->filter, out, len, &refused))
        return refused;
    kmx_store_scan_t q = {0};
    q.filter = sr->filter;
    if (sr->has_page_token) {
        q.after = sr->page_token.data;
        q.after_len = sr->page_token.len;
    }
    q.limit = s_cap(sr->has_limit, sr->limit, KMX_STORAGE_SCAN_DEFAULT, KMX_STORAGE_SCAN_MAX);
    kmx_store_scan_page_t page;
    kmx_store_scan_page_init(&page);
    int err = kmx_store_scan(self->store, &q, &page);
    if (err == KMX_ERR_INVAL)
        return s_error(self, item, err, "invalid filter or page token", out, len);
    if (err != 0)
        return s_error(self, item, err, kmx_strerror(err), out, len);
    Kmx__V1__ScanResult scan = KMX__V1__SCAN_RESULT__INIT;
    Kmx__V1__Response resp = KMX__V1__RESPONSE__INIT;
    scan.n_records = page.n;
    scan.records = page.records;
    scan.has_next_page_token = scan.has_last_seq = 1;
    scan.last_seq = page.last_seq;
    scan.next_page_token.len = page.next_len;
    scan.next_page_token.data = page.next;
    resp.request_id = item->req->request_id;
    resp.result_case = KMX__V1__RESPONSE__RESULT_SCAN;
    resp.scan = &scan;
    err = kmx_msg_pack_response(&resp, out, len);
    kmx_store_scan_page_fini(&page);
    return err;
}

static int s_on_replay(kmx_storage_t *self, const kmx_storage_req_t *item, uint8_t **out,
                       size_t *len) {
    self->count.replays++;
    const Kmx__V1__ReplayRequest *rr = item->req->replay;
    kmx_store_replay_t q = {0};
    q.since = rr->has_since ? rr->since : 0;
    q.limit = s_cap(rr->has_limit, rr->limit, KMX_STORAGE_REPLAY_DEFAULT, KMX_STORAGE_REPLAY_MAX);
    q.prefixes = rr->prefixes;
    q.n_prefixes = rr->n_prefixes;
    kmx_store_replay_page_t page;
    kmx_store_replay_page_init(&page);
    int err = kmx_store_replay(self->store, &q, &page);
    if (err == KMX_ERR_RESYNC) {
        char msg[320];
        snprintf(msg, sizeof msg,
                 "resync needed: events after seq %llu are no longer kept (oldest kept %llu, "
                 "newest %llu). Take a snapshot: scan every page, keep the first page's "
                 "last_seq, then replay since that last_seq",
                 (unsigned long long)q.since, (unsigned long long)page.first_seq,
                 (unsigned long long)page.last_seq);
        return s_error(self, item, err, msg, out, len);
    }
    if (err != 0)
        return s_error(self, item, err, kmx_strerror(err), out, len);
    Kmx__V1__ReplayResult replay = KMX__V1__REPLAY_RESULT__INIT;
    Kmx__V1__Response resp = KMX__V1__RESPONSE__INIT;
    replay.n_events = page.n;
    replay.events = page.events;
    replay.has_first_seq = replay.has_last_seq = 1;
    replay.first_seq = page.first_seq;
    replay.last_seq = page.last_seq;
    resp.request_id = item->req->request_id;
    resp.result_case = KMX__V1__RESPONSE__RESULT_REPLAY;
    resp.replay = &replay;
    err = kmx_msg_pack_response(&resp, out, len);
    kmx_store_replay_page_fini(&page);
    return err;
}

// ---- ping and stats ----------------------------------------------------------------

static int s_on_ping(kmx_storage_t *self, const kmx_storage_req_t *item, uint8_t **out,
                     size_t *len) {
    Kmx__V1__PongResult pong = KMX__V1__PONG_RESULT__INIT;
    Kmx__V1__Response resp = KMX__V1__RESPONSE__INIT;
    pong.service = "kmx.storage";
    pong.worker = self->worker;
    pong.version = KMX_VERSION;
    resp.request_id = item->req->request_id;
    resp.result_case = KMX__V1__RESPONSE__RESULT_PONG;
    resp.pong = &pong;
    return kmx_msg_pack_response(&resp, out, len);
}

#define S_COUNTERS 24 // counters a stats reply carries

// Fills the stats counters; name strings are static.
static void s_fill_counters(const kmx_storage_t *self, const kmx_store_stats_t *st,
                            Kmx__V1__Counter *counters, Kmx__V1__Counter **ptrs) {
    const struct {
        const char *name; // counter name on the wire
        uint64_t value;   // its value now
    } rows[S_COUNTERS] = {
        {"records", st->records},
        {"events", st->events},
        {"last_seq", st->last_seq},
        {"map_size", st->map_size},
        {"used_pages", st->used_pages},
        {"page_size", st->page_size},
        {"requests", self->count.requests},
        {"errors", self->count.errors},
        {"puts", self->count.puts},
        {"stored", self->count.stored},
        {"unchanged", self->count.unchanged},
        {"rejected", self->count.rejected},
        {"gets", self->count.gets},
        {"scans", self->count.scans},
        {"replays", self->count.replays},
        {"batches", self->count.batches},
        {"published", self->count.published},
        {"deletes", self->count.deletes},
        {"deleted", self->count.deleted},
        {"aggregates", self->count.aggregates},
        {"waits", self->count.waits},
        {"reader_threads", self->n_readers},
        {"reads_queued", self->count.reads_queued},
        {"refused", self->count.refused},
    };
    for (size_t i = 0; i < S_COUNTERS; i++) {
        Kmx__V1__Counter init = KMX__V1__COUNTER__INIT;
        counters[i] = init;
        counters[i].name = (char *)rows[i].name;
        counters[i].has_value = 1;
        counters[i].value = rows[i].value;
        ptrs[i] = &counters[i];
    }
}

// ---- operations statistics: readers, commits, the process --------------------------

#define S_OPS_COUNTERS 9 // counters s_fill_ops_counters adds

// Fills the S_OPS_COUNTERS counters docs/operations.md explains; name strings are static.
static void s_fill_ops_counters(const kmx_storage_t *self, const kmx_store_stats_t *st,
                                Kmx__V1__Counter *counters, Kmx__V1__Counter **ptrs) {
    uint64_t readers = 0, max_readers = 0;
    kmx_store_readers(self->store, &readers, &max_readers);
    kmx_proc_t proc;
    kmx_proc_sample(&proc);
    uint64_t commits = self->count.batches;
    const struct {
        const char *name; // counter name on the wire
        uint64_t value;   // its value now
    } rows[S_OPS_COUNTERS] = {
        {"map_used_bytes", st->used_pages * st->page_size},
        {"readers", readers},
        {"max_readers", max_readers},
        {"commit_records", self->count.commit_records},
        {"records_per_commit", commits ? self->count.commit_records / commits : 0},
        {"records_per_commit_max", self->count.commit_records_max},
        {"rss_bytes", proc.rss_bytes},
        {"open_fds", proc.open_fds},
        {"uptime_s", proc.uptime_s},
    };
    for (size_t i = 0; i < S_OPS_COUNTERS; i++) {
        Kmx__V1__Counter init = KMX__V1__COUNTER__INIT;
        counters[i] = init;
        counters[i].name = (char *)rows[i].name;
        counters[i].has_value = 1;
        counters[i].value = rows[i].value;
        ptrs[i] = &counters[i];
    }
}

static int s_on_stats(kmx_storage_t *self, const kmx_storage_req_t *item, uint8_t **out,
                      size_t *len) {
    kmx_store_stats_t st;
    int err = kmx_store_stats(self->store, &st);
    if (err != 0)
        return s_error(self, item, err, kmx_strerror(err), out, len);
    Kmx__V1__Counter counters[S_COUNTERS + S_OPS_COUNTERS];
    Kmx__V1__Counter *ptrs[S_COUNTERS + S_OPS_COUNTERS];
    s_fill_counters(self, &st, counters, ptrs);
    s_fill_ops_counters(self, &st, counters + S_COUNTERS, ptrs + S_COUNTERS);
    Kmx__V1__StatsResult stats = KMX__V1__STATS_RESULT__INIT;
    Kmx__V1__Response resp = KMX__V1__RESPONSE__INIT;
    stats.service = "kmx.storage";
    stats.worker = self->worker;
    stats.n_counters = S_COUNTERS + S_OPS_COUNTERS;
    stats.counters = ptrs;
    resp.request_id = item->req->request_id;
    resp.result_case = KMX__V1__RESPONSE__RESULT_STATS;
    resp.stats = &stats;
    return kmx_msg_pack_response(&resp, out, len);
}

// Every request the read side answers. quick: bounded work (one key, no scan), which the
// router answers itself rather than handing it to a reader thread.
static const struct {
    Kmx__V1__Request__BodyCase body; // the request type
    s_handler_fn fn;                 // its handler
    int quick;                       // nonzero: the router may answer it itself
} s_handlers[] = {
    {KMX__V1__REQUEST__BODY_GET, s_on_get, 1},
    {KMX__V1__REQUEST__BODY_PING, s_on_ping, 1},
    {KMX__V1__REQUEST__BODY_SCAN, s_on_scan, 0},
    {KMX__V1__REQUEST__BODY_REPLAY, s_on_replay, 0},
    {KMX__V1__REQUEST__BODY_STATS, s_on_stats, 0},
    {KMX__V1__REQUEST__BODY_AGGREGATE, s_on_aggregate, 0},
    {KMX__V1__REQUEST__BODY_QUERY, s_on_query, 0},
    {KMX__V1__REQUEST__BODY_HISTORY, s_on_history, 0},
    {KMX__V1__REQUEST__BODY_CATALOG, s_on_catalog, 0},
};

#define S_N_HANDLERS (sizeof s_handlers / sizeof s_handlers[0])

int kmx_storage_is_write(int body_case) {
    return body_case == KMX__V1__REQUEST__BODY_PUT || body_case == KMX__V1__REQUEST__BODY_DELETE;
}

int kmx_storage_is_quick(int body_case) {
    for (size_t i = 0; i < S_N_HANDLERS; i++) {
        if ((int)s_handlers[i].body == body_case)
            return s_handlers[i].quick;
    }
    return 0;
}

int kmx_storage_read_answer(kmx_storage_t *self, const kmx_storage_req_t *item, uint8_t **out,
                            size_t *len) {
    int handled = 0;
    int err = kmx_storage_bad_request(self, item, out, len, &handled);
    if (handled)
        return err;
    for (size_t i = 0; i < S_N_HANDLERS; i++) {
        // A oneof case with a NULL body cannot come from protobuf-c; checked anyway.
        if (s_handlers[i].body == item->req->body_case && item->req->ping)
            return s_handlers[i].fn(self, item, out, len);
    }
    return s_error(self, item, KMX_ERR_UNSUPPORTED, "kmx.storage does not handle this request", out,
                   len);
}

// ---- the reader threads ------------------------------------------------------------

// Tells the router this reader waits for work.
static int s_ready(void *sock) {
    return zmq_send(sock, "R", 1, 0) == 1 ? 0 : KMX_ERR_IO;
}

// The debug knob KMX_DEBUG_STORAGE_READ_DELAY_MS: a storage as slow as a large store's
// query, made on purpose so tests of callers' timeouts are quick and certain. Slept in
// slices, so a stopping service does not wait it out.
static void s_debug_delay(kmx_storage_t *self, const Kmx__V1__Request *req) {
    if (!self->read_delay_ms || !req)
        return;
    if (req->body_case != KMX__V1__REQUEST__BODY_SCAN &&
        req->body_case != KMX__V1__REQUEST__BODY_AGGREGATE &&
        req->body_case != KMX__V1__REQUEST__BODY_QUERY)
        return;
    for (unsigned slept = 0; slept < self->read_delay_ms && !atomic_load(&self->stopping);
         slept += 10) {
        struct timespec ts = {0, 10 * 1000000L};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
    }
}

void *kmx_storage_reader_main(void *arg) {
    kmx_storage_reader_t *rd = arg;
    kmx_storage_t *self = rd->owner;
    int terminated = 0;
    // The writer's thread gets the cores first on a busy host: a long import is not
    // slowed by readers in loops.
    kmx_proc_name_thread("kmx-reader");
    kmx_proc_nice(self->reader_nice, "a reader thread");
    if (s_ready(rd->sock) != 0)
        return NULL;
    while (!terminated) {
        kmx_storage_req_t m;
        int got = kmx_storage_recv(rd->sock, 0, &m, &terminated);
        if (got == 2 && atomic_load(&self->stopping))
            break; // the router's stop
        if (got <= 0) {
            if (terminated)
                break;
            continue;
        }
        uint8_t *body = NULL;
        size_t len = 0;
        if (m.has_corr) {
            self->count.requests++;
            s_debug_delay(self, m.req);
            if (kmx_storage_read_answer(self, &m, &body, &len) != 0)
                kmx_log_error("could not build a reply type=%s",
                              m.req ? kmx_msg_body_name(m.req) : "none");
        }
        // The reply (or an empty one when there is none) frees this reader at the router.
        if (body)
            kmx_storage_send(rd->sock, &m, body, len);
        else
            s_ready(rd->sock);
        free(body);
        kmx_storage_req_clear(&m);
    }
    return NULL;
}
