/*  kmx_query - read handlers. Storage owns the data, so every handler is a check followed
    by one or more link calls. A query streams scan pages through kmx_filter and kmx_group
    one page at a time: memory stays bounded by the page size and the group limit, never
    by the number of records stored.  */
#include "kmx_query.h"
#include "kmx_err.h"
#include "kmx_filter.h"
#include "kmx_group.h"
#include "kmx_handler.h"
#include "kmx_local.h"
#include "kmx_log.h"
#include "kmx_market.h"
#include "kmx_msg.h"
#include "kmx_period.h"
#include "kmx_record.h"
#include "kmx_shape.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_WHY_MAX 512 // room for a validation message naming the fault

typedef struct {
    uint64_t gets;       // get requests
    uint64_t scans;      // scan requests
    uint64_t replays;    // replay requests
    uint64_t queries;    // query requests
    uint64_t pages;      // scan pages read from storage for queries
    uint64_t matched;    // records matched by queries
    uint64_t aggregates; // aggregate requests sent to storage for queries
    uint64_t walks;      // queries answered by walking records (min/max, or no aggregate)
} s_counters_t;

struct kmx_query {
    kmx_handler_base_t base; // service, link, worker name, timeout, requests, errors
    s_counters_t count;      // what this worker has done besides
};

void kmx_query_destroy(kmx_query_t **self_p) {
    if (!self_p || !*self_p)
        return;
    kmx_handler_base_t *base = &(*self_p)->base;
    kmx_handler_destroy(&base);
    *self_p = NULL;
}

void kmx_query_set_timeout(kmx_query_t *self, int timeout_ms) {
    if (self)
        kmx_handler_set_timeout(&self->base, timeout_ms);
}

// Calls storage for the request in hand, waiting no longer than its sender waits for the
// answer (kmx_handler_call), so the pages of a query nobody waits for any more are not read.
static int s_call(kmx_query_t *self, const Kmx__V1__Request *fwd, Kmx__V1__Response **resp) {
    return kmx_handler_call(&self->base, fwd, resp);
}

// s_call, the reply left packed.
static int s_call_packed(kmx_query_t *self, const Kmx__V1__Request *fwd, uint8_t **body,
                         size_t *n) {
    int wait = kmx_handler_left_ms(&self->base);
    *body = NULL;
    *n = 0;
    return wait > 0 ? kmx_link_call_packed(self->base.link, fwd, wait, body, n) : KMX_ERR_TIMEOUT;
}

// Packs storage's reply for the caller, under the caller's request id.
static int s_relay(kmx_query_t *self, const Kmx__V1__Request *req, Kmx__V1__Response *resp,
                   uint8_t **out, size_t *len) {
    if (resp->result_case == KMX__V1__RESPONSE__RESULT_ERROR)
        self->base.errors++;
    char *own = resp->request_id;
    resp->request_id = req->request_id;
    int rc = kmx_msg_pack_response(resp, out, len);
    resp->request_id = own; // free_unpacked must free storage's string, not the caller's
    return rc;
}

// Calls storage with fwd and relays its packed answer as it came when it is an error or
// of type expect (a get without a record becomes NOT_FOUND): fwd carries the caller's
// request id, so storage's reply is already the caller's, and a page of records is
// neither decoded nor packed again here.
static int s_forward_packed(kmx_query_t *self, const Kmx__V1__Request *req,
                            const Kmx__V1__Request *fwd, Kmx__V1__Response__ResultCase expect,
                            uint8_t **out, size_t *len) {
    uint8_t *body = NULL;
    size_t n = 0;
    int rc = s_call_packed(self, fwd, &body, &n);
    if (rc != 0)
        return kmx_handler_link_error(&self->base, req, rc, out, len);
    size_t result_len = 0;
    int got = kmx_msg_oneof_case(body, n, KMX__V1__RESPONSE__RESULT_ERROR, &result_len);
    if (got != (int)expect && got != KMX__V1__RESPONSE__RESULT_ERROR) {
        free(body);
        return kmx_handler_error(&self->base, req, KMX_ERR_INTERNAL,
                                 "storage sent an unexpected reply", out, len);
    }
    if (got == KMX__V1__RESPONSE__RESULT_GET && result_len == 0) { // a GetResult without record
        free(body);
        return kmx_handler_error(&self->base, req, KMX_ERR_NOT_FOUND, "no such record", out, len);
    }
    if (got == KMX__V1__RESPONSE__RESULT_ERROR)
        self->base.errors++;
    *out = body;
    *len = n;
    return 0;
}

static int s_same_id(const Kmx__V1__Request *a, const Kmx__V1__Request *b) {
    const char *x = a->request_id ? a->request_id : "", *y = b->request_id ? b->request_id : "";
    return strcmp(x, y) == 0;
}

// Calls storage with fwd and relays its answer when it is an error or of type expect (a
// get without a record becomes NOT_FOUND), packed as it came when fwd carries the
// caller's request id.
static int s_forward(kmx_query_t *self, const Kmx__V1__Request *req, const Kmx__V1__Request *fwd,
                     Kmx__V1__Response__ResultCase expect, uint8_t **out, size_t *len) {
    if (s_same_id(req, fwd))
        return s_forward_packed(self, req, fwd, expect, out, len);
    Kmx__V1__Response *resp = NULL;
    int rc = s_call(self, fwd, &resp);
    if (rc != 0)
        return kmx_handler_link_error(&self->base, req, rc, out, len);
    if (resp->result_case == KMX__V1__RESPONSE__RESULT_GET && expect == resp->result_case &&
        !resp->get->record)
        rc = kmx_handler_error(&self->base, req, KMX_ERR_NOT_FOUND, "no such record", out, len);
    else if (resp->result_case == expect || resp->result_case == KMX__V1__RESPONSE__RESULT_ERROR)
        rc = s_relay(self, req, resp, out, len);
    else
        rc = kmx_handler_error(&self->base, req, KMX_ERR_INTERNAL,
                               "storage sent an unexpected reply", out, len);
    kmx__v1__response__free_unpacked(resp, NULL);
    return rc;
}

// ---- ping and stats ----------------------------------------------------------------

// Fetches kmx-storage's stats when the request asks for them (storage is not behind the
// broker; a query worker is its door). *resp is yours, or NULL when storage did not answer:
// the worker's own stats go out anyway.
static void s_storage_stats(kmx_query_t *self, const Kmx__V1__Request *req,
                            Kmx__V1__Response **resp) {
    *resp = NULL;
    if (!req->stats->has_storage || !req->stats->storage)
        return;
    Kmx__V1__StatsRequest stats = KMX__V1__STATS_REQUEST__INIT;
    Kmx__V1__Request fwd = KMX__V1__REQUEST__INIT;
    fwd.request_id = req->request_id;
    fwd.body_case = KMX__V1__REQUEST__BODY_STATS;
    fwd.stats = &stats;
    if (s_call(self, &fwd, resp) == 0 && (*resp)->result_case == KMX__V1__RESPONSE__RESULT_STATS)
        return;
    if (*resp)
        kmx__v1__response__free_unpacked(*resp, NULL);
    *resp = NULL;
}

static int s_on_stats(void *ctx, const Kmx__V1__Request *req, uint8_t **out, size_t *len) {
    kmx_query_t *self = ctx;
    kmx_local_stats_t local = {0};
    if (self->base.local)
        local = kmx_local_stats(self->base.local);
    const kmx_handler_counter_t counters[] = {
        {"requests", self->base.requests},
        {"errors", self->base.errors},
        {"gets", self->count.gets},
        {"scans", self->count.scans},
        {"replays", self->count.replays},
        {"queries", self->count.queries},
        {"pages", self->count.pages},
        {"records_matched", self->count.matched},
        {"aggregates", self->count.aggregates},
        {"walks", self->count.walks},
        // The local read socket's (docs/architecture.md), 0 without one: requests answered
        // on it (also counted in requests), connections open, and refused when full.
        {"local_requests", local.requests},
        {"local_connections", local.open},
        {"local_refused", local.refused},
        // Microseconds its requests spent in this worker's own work (decoding, answering,
        // encoding), without the socket's reads and writes: what bench/mixed sets beside
        // the hop's floor.
        {"local_work_us", local.work_ns / 1000},
    };
    Kmx__V1__Response *storage = NULL;
    s_storage_stats(self, req, &storage);
    int rc = kmx_handler_pack_stats_relay(KMX_QUERY_SERVICE, self->base.worker, counters,
                                          sizeof counters / sizeof counters[0],
                                          storage ? storage->stats : NULL, req, out, len);
    if (storage)
        kmx__v1__response__free_unpacked(storage, NULL);
    return rc;
}

// ---- get, scan, replay -------------------------------------------------------------

// Checks a get key and writes its canonical market to market. Returns 0 or KMX_ERR_INVAL
// with why filled.
static int s_check_key(const Kmx__V1__Record *key, char *market, Kmx__V1__Period *period, char *why,
                       size_t sz) {
    if (key->kind != KMX__V1__KIND__EXPORT && key->kind != KMX__V1__KIND__CONSUMPTION) {
        snprintf(why, sz, "get key needs kind export or consumption");
        return KMX_ERR_INVAL;
    }
    kmx_period_t p = {key->period ? key->period->start : 0, key->period ? key->period->end : 0};
    if (kmx_record_period_text(key->period, 0, &p, why, sz) < 0)
        return KMX_ERR_INVAL;
    period->has_start = period->has_end = 1;
    period->start = p.start;
    period->end = p.end;
    if (!key->period || !kmx_period_is_valid(&p)) {
        snprintf(why, sz, "get key needs a valid period");
        return KMX_ERR_INVAL;
    }
    const char *text = key->market && key->market[0] ? key->market : NULL;
    if (!text && key->kind == KMX__V1__KIND__CONSUMPTION)
        text = "KR"; // as kmx_record_normalize defaults consumption records
    if (!text) {
        snprintf(why, sz, "get key needs a market");
        return KMX_ERR_INVAL;
    }
    if (kmx_market_canonical(text, market, KMX_MARKET_MAX) != 0) {
        snprintf(why, sz, "unknown market '%.200s' in get key", text);
        return KMX_ERR_INVAL;
    }
    return 0;
}

// Forwards a keyed read (get or history) with its key checked and its market canonical.
static int s_forward_keyed(kmx_query_t *self, const Kmx__V1__Request *req,
                           const Kmx__V1__Record *key, Kmx__V1__Request__BodyCase body,
                           uint8_t **out, size_t *len) {
    self->count.gets++;
    if (!key)
        return kmx_handler_error(&self->base, req, KMX_ERR_INVAL, "a get or history needs a key",
                                 out, len);
    char market[KMX_MARKET_MAX];
    char why[S_WHY_MAX];
    Kmx__V1__Period period = KMX__V1__PERIOD__INIT;
    if (s_check_key(key, market, &period, why, sizeof why) != 0)
        return kmx_handler_error(&self->base, req, KMX_ERR_INVAL, why, out, len);
    Kmx__V1__Record lookup = *key; // shallow: only the market and period are replaced
    lookup.market = market;
    lookup.period = &period;
    Kmx__V1__GetRequest get = KMX__V1__GET_REQUEST__INIT;
    Kmx__V1__HistoryRequest hist = KMX__V1__HISTORY_REQUEST__INIT;
    get.key = hist.key = &lookup;
    Kmx__V1__Request fwd = KMX__V1__REQUEST__INIT;
    fwd.request_id = req->request_id;
    fwd.body_case = body;
    if (body == KMX__V1__REQUEST__BODY_GET)
        fwd.get = &get;
    else
        fwd.history = &hist;
    return s_forward(self, req, &fwd,
                     body == KMX__V1__REQUEST__BODY_GET ? KMX__V1__RESPONSE__RESULT_GET
                                                        : KMX__V1__RESPONSE__RESULT_HISTORY,
                     out, len);
}

static int s_on_get(void *ctx, const Kmx__V1__Request *req, uint8_t **out, size_t *len) {
    return s_forward_keyed(ctx, req, req->get->key, KMX__V1__REQUEST__BODY_GET, out, len);
}

// A figure's history: the same key check as get, then storage's history index.
static int s_on_history(void *ctx, const Kmx__V1__Request *req, uint8_t **out, size_t *len) {
    return s_forward_keyed(ctx, req, req->history->key, KMX__V1__REQUEST__BODY_HISTORY, out, len);
}

static int s_on_catalog(void *ctx, const Kmx__V1__Request *req, uint8_t **out, size_t *len) {
    kmx_query_t *self = ctx;
    const Kmx__V1__CatalogRequest *cr = req->catalog;
    if (cr->has_kind && cr->kind != KMX__V1__KIND__KIND_UNSPECIFIED &&
        cr->kind != KMX__V1__KIND__EXPORT && cr->kind != KMX__V1__KIND__CONSUMPTION)
        return kmx_handler_error(&self->base, req, KMX_ERR_INVAL,
                                 "catalog: unknown kind (export or consumption)", out, len);
    return s_forward(self, req, req, KMX__V1__RESPONSE__RESULT_CATALOG, out, len);
}

static int s_on_scan(void *ctx, const Kmx__V1__Request *req, uint8_t **out, size_t *len) {
    kmx_query_t *self = ctx;
    self->count.scans++;
    const Kmx__V1__ScanRequest *in = req->scan;
    if (in->has_page_token && in->page_token.len > KMX_QUERY_TOKEN_MAX)
        return kmx_handler_error(&self->base, req, KMX_ERR_INVAL, "page token is too long", out,
                                 len);
    char why[S_WHY_MAX];
    kmx_filter_t *filter = NULL;
    int rc = kmx_filter_new(in->filter, &filter, why, sizeof why);
    if (rc != 0)
        return kmx_handler_error(&self->base, req, rc, rc == KMX_ERR_NOMEM ? "out of memory" : why,
                                 out, len);
    Kmx__V1__ScanRequest scan = *in; // shallow: only the filter is replaced
    scan.filter = (Kmx__V1__Filter *)kmx_filter_wire(filter);
    Kmx__V1__Request fwd = KMX__V1__REQUEST__INIT;
    fwd.request_id = req->request_id;
    fwd.body_case = KMX__V1__REQUEST__BODY_SCAN;
    fwd.scan = &scan;
    rc = s_forward(self, req, &fwd, KMX__V1__RESPONSE__RESULT_SCAN, out, len);
    kmx_filter_destroy(&filter);
    return rc;
}

static int s_on_replay(void *ctx, const Kmx__V1__Request *req, uint8_t **out, size_t *len) {
    kmx_query_t *self = ctx;
    self->count.replays++;
    return s_forward(self, req, req, KMX__V1__RESPONSE__RESULT_REPLAY, out, len);
}

// ---- query -------------------------------------------------------------------------

// One walk over storage's scan pages.
typedef struct {
    const Kmx__V1__Request *req;        // the caller's request
    const kmx_filter_t *filter;         // what to keep
    kmx_group_t *group;                 // where kept records go
    uint8_t token[KMX_QUERY_TOKEN_MAX]; // where the next page starts
    size_t token_len;                   // bytes in token; 0 = from the start
    Kmx__V1__Response *refusal;         // storage's error reply, when it sent one
} s_walk_t;

// Reads one page into the aggregation. Returns 1 when more pages follow, 0 after the
// last page, or a negative code (with w->refusal set when storage answered an error).
static int s_walk_page(kmx_query_t *self, s_walk_t *w) {
    Kmx__V1__ScanRequest scan = KMX__V1__SCAN_REQUEST__INIT;
    scan.filter = (Kmx__V1__Filter *)kmx_filter_wire(w->filter);
    scan.has_limit = 1;
    scan.limit = KMX_QUERY_PAGE;
    scan.has_page_token = w->token_len > 0;
    scan.page_token.len = w->token_len;
    scan.page_token.data = w->token;
    Kmx__V1__Request fwd = KMX__V1__REQUEST__INIT;
    fwd.request_id = w->req->request_id;
    fwd.body_case = KMX__V1__REQUEST__BODY_SCAN;
    fwd.scan = &scan;
    Kmx__V1__Response *resp = NULL;
    int rc = s_call(self, &fwd, &resp);
    if (rc != 0)
        return rc;
    self->count.pages++;
    if (resp->result_case != KMX__V1__RESPONSE__RESULT_SCAN) {
        if (resp->result_case == KMX__V1__RESPONSE__RESULT_ERROR) {
            w->refusal = resp;
            return KMX_ERR_UNAVAILABLE;
        }
        kmx__v1__response__free_unpacked(resp, NULL);
        return KMX_ERR_INTERNAL;
    }
    const Kmx__V1__ScanResult *page = resp->scan;
    for (size_t i = 0; i < page->n_records && rc == 0; i++) {
        const Kmx__V1__StoredRecord *sr = page->records[i];
        const Kmx__V1__Record *rec = sr ? sr->record : NULL;
        // Stored records always carry both; like storage's aggregate, skip one that does not.
        if (rec && rec->value && rec->period && kmx_filter_match(w->filter, rec))
            rc = kmx_group_add(w->group, rec, rec->value->amount, 1, 1);
    }
    size_t next = page->has_next_page_token ? page->next_page_token.len : 0;
    if (rc == 0 && next > sizeof w->token)
        rc = KMX_ERR_INTERNAL;
    if (rc == 0 && next > 0)
        memcpy(w->token, page->next_page_token.data, next);
    w->token_len = next;
    kmx__v1__response__free_unpacked(resp, NULL);
    return rc != 0 ? rc : next > 0;
}

// Maps a failed walk to the caller's error.
static int s_walk_error(kmx_query_t *self, s_walk_t *w, int rc, uint8_t **out, size_t *len) {
    if (w->refusal)
        return s_relay(self, w->req, w->refusal, out, len);
    switch (rc) {
    case KMX_ERR_TOO_BIG:
        return kmx_handler_error(&self->base, w->req, rc,
                                 "the query makes too many groups; group by less", out, len);
    case KMX_ERR_INTERNAL:
        return kmx_handler_error(&self->base, w->req, rc, "storage sent an unexpected scan page",
                                 out, len);
    case KMX_ERR_NOMEM:
        return kmx_handler_error(&self->base, w->req, rc, "out of memory", out, len);
    default:
        return kmx_handler_link_error(&self->base, w->req, rc, out, len);
    }
}

// One query's state: the query prepared for fetching and the fine rows it answered.
typedef struct {
    Kmx__V1__Filter wire;    // the checked, canonical filter ("any" kept), shallow
    kmx_shape_prep_t prep;   // the query prepared (kmx_shape_prepare, as storage does)
    Kmx__V1__Response *resp; // storage's answer, owned
    kmx_group_t *group;      // the walk's answer, when walked
} s_ask_t;

// Asks storage for the fine rows. Returns 0 with a->resp set (a QueryResult or an error
// to relay), or a link error.
static int s_ask_storage(kmx_query_t *self, const Kmx__V1__Request *req, s_ask_t *a) {
    Kmx__V1__AggregateRequest ar = KMX__V1__AGGREGATE_REQUEST__INIT;
    ar.filter = &a->prep.filter;
    ar.n_group_by = a->prep.n_fields;
    ar.group_by = a->prep.fields;
    Kmx__V1__Request fwd = KMX__V1__REQUEST__INIT;
    fwd.request_id = req->request_id;
    fwd.body_case = KMX__V1__REQUEST__BODY_AGGREGATE;
    fwd.aggregate = &ar;
    self->count.aggregates++;
    return s_call(self, &fwd, &a->resp);
}

// Walks the records page by page instead (min and max asked, but storage answered from
// roll-ups; or a storage without aggregate). Returns 0 with a->group filled, or the reply
// already packed into out (rc from packing, flagged by *replied).
static int s_ask_walk(kmx_query_t *self, const Kmx__V1__Request *req, s_ask_t *a, uint8_t **out,
                      size_t *len, int *replied) {
    char why[S_WHY_MAX];
    kmx_filter_t *filter = NULL;
    int rc = kmx_filter_new(&a->prep.filter, &filter, why, sizeof why);
    s_walk_t *w = rc == 0 ? calloc(1, sizeof *w) : NULL;
    a->group = w ? kmx_group_new(a->prep.fields, a->prep.n_fields) : NULL;
    *replied = 1;
    if (!a->group) {
        free(w);
        kmx_filter_destroy(&filter);
        return kmx_handler_error(&self->base, req, rc ? rc : KMX_ERR_NOMEM,
                                 rc == KMX_ERR_INVAL ? why : "out of memory", out, len);
    }
    self->count.walks++;
    w->req = req;
    w->filter = filter;
    w->group = a->group;
    int more = 1;
    for (int pages = 0; more == 1 && pages < KMX_QUERY_PAGES_MAX; pages++)
        more = s_walk_page(self, w);
    if (more == 1)
        rc = kmx_handler_error(&self->base, req, KMX_ERR_TOO_BIG,
                               "the query reads too many pages; narrow it", out, len);
    else if (more < 0)
        rc = s_walk_error(self, w, more, out, len);
    else
        *replied = 0;
    if (w->refusal)
        kmx__v1__response__free_unpacked(w->refusal, NULL);
    free(w);
    kmx_filter_destroy(&filter);
    return rc;
}

static int s_reply_shape(kmx_query_t *self, const Kmx__V1__Request *req, s_ask_t *a,
                         const Kmx__V1__QueryResult *fine, uint8_t **out, size_t *len) {
    char why[S_WHY_MAX] = "";
    kmx_shape_t *shape = NULL;
    int rc = kmx_shape_run(&a->prep.spec, fine, &shape, why, sizeof why);
    if (rc == KMX_ERR_DECODE)
        return kmx_handler_error(&self->base, req, KMX_ERR_INTERNAL,
                                 "storage sent rows that do not parse", out, len);
    if (rc == KMX_ERR_TOO_BIG)
        return kmx_handler_error(&self->base, req, rc,
                                 "the answer has too many rows; group by less", out, len);
    if (rc != 0)
        return kmx_handler_error(&self->base, req, rc, rc == KMX_ERR_INVAL ? why : "out of memory",
                                 out, len);
    Kmx__V1__QueryResult result = KMX__V1__QUERY_RESULT__INIT;
    kmx_shape_result(shape, &result);
    if (fine->has_last_seq) {
        result.has_last_seq = 1;
        result.last_seq = fine->last_seq;
    }
    result.has_from_rollups = fine->has_from_rollups;
    result.from_rollups = fine->from_rollups;
    self->count.matched += result.matched;
    kmx_log_debug("query matched=%llu rows=%zu rollups=%d", (unsigned long long)result.matched,
                  result.n_rows, (int)result.from_rollups);
    Kmx__V1__Response resp = KMX__V1__RESPONSE__INIT;
    resp.request_id = req->request_id;
    resp.result_case = KMX__V1__RESPONSE__RESULT_QUERY;
    resp.query = &result;
    rc = kmx_msg_pack_response(&resp, out, len);
    kmx_shape_destroy(&shape);
    return rc;
}

// Asks storage to shape the answer itself (kmx_storage_query): the query with its checked,
// canonical filter, so only the answer's rows cross the wire. Returns 1 with the reply
// packed into out (rc in *rc), 0 when storage declined (UNSUPPORTED: min or max over
// roll-ups, or a storage that does not shape), or a negative link error.
static int s_ask_shaped(kmx_query_t *self, const Kmx__V1__Request *req, s_ask_t *a, uint8_t **out,
                        size_t *len, int *rc) {
    Kmx__V1__QueryRequest q = *req->query; // shallow: only the filter is replaced
    q.filter = &a->wire;
    Kmx__V1__Request fwd = KMX__V1__REQUEST__INIT;
    fwd.request_id = req->request_id;
    fwd.body_case = KMX__V1__REQUEST__BODY_QUERY;
    fwd.query = &q;
    Kmx__V1__Response *resp = NULL;
    int err = s_call(self, &fwd, &resp);
    if (err != 0)
        return err;
    int declined = resp->result_case == KMX__V1__RESPONSE__RESULT_ERROR && resp->error &&
                   resp->error->code == KMX__V1__ERROR_CODE__UNSUPPORTED;
    if (!declined && resp->result_case == KMX__V1__RESPONSE__RESULT_QUERY) {
        self->count.matched += resp->query->matched;
        *rc = s_relay(self, req, resp, out, len);
    } else if (!declined && resp->result_case == KMX__V1__RESPONSE__RESULT_ERROR) {
        *rc = s_relay(self, req, resp, out, len);
    } else if (!declined) {
        *rc = kmx_handler_error(&self->base, req, KMX_ERR_INTERNAL,
                                "storage sent an unexpected reply", out, len);
    }
    kmx__v1__response__free_unpacked(resp, NULL);
    return !declined;
}

// Answers from storage's aggregate when it can, else from a walk over the records.
static int s_answer(kmx_query_t *self, const Kmx__V1__Request *req, s_ask_t *a, uint8_t **out,
                    size_t *len) {
    int rc = s_ask_storage(self, req, a);
    if (rc != 0)
        return kmx_handler_link_error(&self->base, req, rc, out, len);
    Kmx__V1__Response *r = a->resp;
    int unsupported = r->result_case == KMX__V1__RESPONSE__RESULT_ERROR && r->error &&
                      r->error->code == KMX__V1__ERROR_CODE__UNSUPPORTED;
    if (r->result_case == KMX__V1__RESPONSE__RESULT_ERROR && !unsupported)
        return s_relay(self, req, r, out, len);
    if (r->result_case != KMX__V1__RESPONSE__RESULT_ERROR &&
        r->result_case != KMX__V1__RESPONSE__RESULT_QUERY)
        return kmx_handler_error(&self->base, req, KMX_ERR_INTERNAL,
                                 "storage sent an unexpected reply", out, len);
    if (unsupported || (a->prep.need_minmax && r->query->from_rollups)) {
        int replied = 0;
        rc = s_ask_walk(self, req, a, out, len, &replied);
        if (replied)
            return rc;
        Kmx__V1__QueryResult fine = KMX__V1__QUERY_RESULT__INIT;
        if (kmx_group_result(a->group, &fine) != 0)
            return kmx_handler_error(&self->base, req, KMX_ERR_NOMEM, "out of memory", out, len);
        return s_reply_shape(self, req, a, &fine, out, len);
    }
    return s_reply_shape(self, req, a, r->query, out, len);
}

static int s_on_query(void *ctx, const Kmx__V1__Request *req, uint8_t **out, size_t *len) {
    kmx_query_t *self = ctx;
    self->count.queries++;
    char why[S_WHY_MAX] = "";
    kmx_filter_t *filter = NULL;
    int rc = kmx_filter_new(req->query->filter, &filter, why, sizeof why);
    if (rc != 0)
        return kmx_handler_error(&self->base, req, rc, rc == KMX_ERR_NOMEM ? "out of memory" : why,
                                 out, len);
    s_ask_t *a = calloc(1, sizeof *a);
    kmx_gran_t gran;
    if (a) {
        a->wire = *kmx_filter_wire(filter); // shallow: granularity may be replaced
        if (kmx_filter_granularity(filter, &gran) == 2)
            a->wire.granularity = "any";
    }
    if (!a)
        rc = kmx_handler_error(&self->base, req, KMX_ERR_NOMEM, "out of memory", out, len);
    else if ((rc = kmx_shape_prepare(&a->prep, req->query, &a->wire, why, sizeof why)) != 0)
        rc = kmx_handler_error(&self->base, req, rc, why, out, len);
    else {
        int done = s_ask_shaped(self, req, a, out, len, &rc);
        if (done < 0)
            rc = kmx_handler_link_error(&self->base, req, done, out, len);
        else if (done == 0)
            rc = s_answer(self, req, a, out, len);
    }
    if (a && a->resp)
        kmx__v1__response__free_unpacked(a->resp, NULL);
    if (a)
        kmx_group_destroy(&a->group);
    free(a);
    kmx_filter_destroy(&filter);
    return rc;
}

// ---- dispatch ----------------------------------------------------------------------

static const kmx_handler_t s_handlers[] = {
    {KMX__V1__REQUEST__BODY_GET, s_on_get},
    {KMX__V1__REQUEST__BODY_SCAN, s_on_scan},
    {KMX__V1__REQUEST__BODY_REPLAY, s_on_replay},
    {KMX__V1__REQUEST__BODY_QUERY, s_on_query},
    {KMX__V1__REQUEST__BODY_PING, kmx_handler_on_ping},
    {KMX__V1__REQUEST__BODY_STATS, s_on_stats},
    {KMX__V1__REQUEST__BODY_CATALOG, s_on_catalog},
    {KMX__V1__REQUEST__BODY_HISTORY, s_on_history},
};

int kmx_query_handle(kmx_query_t *self, const void *body, size_t size, uint8_t **out, size_t *len) {
    return kmx_handler_handle(self ? &self->base : NULL, body, size, out, len);
}

static const kmx_handler_class_t s_class = {KMX_QUERY_SERVICE, s_handlers,
                                            sizeof s_handlers / sizeof s_handlers[0],
                                            KMX_QUERY_TIMEOUT_MS, sizeof(kmx_query_t)};

kmx_handler_base_t *kmx_query_handler_new(kmx_link_t *link, const char *worker) {
    return kmx_handler_new(&s_class, link, worker);
}

kmx_query_t *kmx_query_new(kmx_link_t *link, const char *worker) {
    return (kmx_query_t *)kmx_query_handler_new(link, worker); // base is the first member
}
