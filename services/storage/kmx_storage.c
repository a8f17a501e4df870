/*  kmx_storage - the service loop of kmx-storage. Each wake-up drains the waiting requests
    (waiting a bounded moment for more writers when writers are concurrent), commits every
    put and delete in them in one transaction (group commit), answers all of them, and only
    then publishes the committed events, so nothing uncommitted is ever announced.  */
#include "kmx_storage.h"
#include "kmx_answer.h"

#include "kmx_curve.h"
#include "kmx_err.h"
#include "kmx_group.h"
#include "kmx_log.h"
#include "kmx_market.h"
#include "kmx_msg.h"
#include "kmx_proc.h"
#include "kmx_record.h"
#include "kmx_store.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define S_NO_SLOT SIZE_MAX   // a put record that never reached the store
#define S_ROUTING_ID_MAX 256 // ZeroMQ routing ids are at most 255 bytes
#define S_HEARTBEAT_TOPIC "kmx.heartbeat"
#define S_WAIT_SLICE_US 50 // sleep between polls while a batch waits for more writers

// One put record's (or delete key's) fate before the store sees it.
typedef struct {
    size_t slot;                  // index into the batch arrays, or S_NO_SLOT
    int valid;                    // nonzero when kmx_record_normalize accepted it
    kmx_record_problem_t problem; // why validation refused it (slot == S_NO_SLOT)
} s_rec_state_t;

// One request drained from the ROUTER in this batch.
typedef struct {
    uint8_t rid[S_ROUTING_ID_MAX]; // the worker's routing id
    size_t rid_len;                // bytes in rid
    uint8_t corr[8];               // the correlation id, echoed in the reply
    int has_corr;                  // nonzero when a valid correlation frame arrived
    int bad_frames;                // nonzero when the frame layout was wrong
    Kmx__V1__Request *req;         // the decoded body, or NULL
    s_rec_state_t *recs;           // for puts and deletes: one state per record or key
    size_t n_rejected;             // for puts and deletes: records validation refused
    int put_err;                   // for puts and deletes: error answered instead, or 0
} s_item_t;

typedef struct {
    uint64_t requests;           // requests answered
    uint64_t errors;             // error responses sent
    uint64_t puts;               // put requests
    uint64_t stored;             // records stored (new or changed)
    uint64_t unchanged;          // records identical to what was stored
    uint64_t rejected;           // records refused
    uint64_t gets;               // get requests
    uint64_t scans;              // scan requests
    uint64_t replays;            // replay requests
    uint64_t deletes;            // delete requests
    uint64_t deleted;            // records deleted
    uint64_t aggregates;         // aggregate requests
    uint64_t waits;              // batches that waited for more writers
    uint64_t batches;            // write transactions committed
    uint64_t published;          // events published, heartbeats included
    uint64_t commit_records;     // puts and deletes applied by committed transactions
    uint64_t commit_records_max; // most of them in one transaction
} s_counters_t;

struct kmx_storage {
    kmx_zap_t *zap;                        // the ZAP handler when CURVE is on, else NULL
    void *router;                          // ROUTER for the workers
    void *pub;                             // PUB towards the broker's XSUB
    kmx_store_t *store;                    // the LMDB engine
    char endpoint[256];                    // the ROUTER's bound endpoint
    char worker[128];                      // "kmx-storage-<host>-<pid>", for pongs
    int heartbeat_ms;                      // idle time before a heartbeat
    uint64_t last_publish_ms;              // monotonic time of the last publish
    s_item_t items[KMX_STORAGE_BATCH_MAX]; // the batch being served
    size_t n_items;                        // requests in the batch
    kmx_store_op_t *ops;                   // the batch's valid puts and deletes (borrowed)
    kmx_put_outcome_t *outcomes;           // their outcomes, same index
    size_t n_recs;                         // changes in ops
    size_t cap_recs;                       // capacity of ops and outcomes
    uint64_t batch_wait_us;                // longest wait for more writers per batch
    size_t last_writers;                   // write requests in the last batch
    kmx_store_events_t events;             // committed events waiting to be published
    s_counters_t count;                    // service counters
    int terminated;                        // the context was shut down under us
};

typedef int (*s_handler_fn)(kmx_storage_t *self, s_item_t *item, uint8_t **out, size_t *len);

static uint64_t s_clock_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t s_wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static const char *s_request_id(const s_item_t *item) {
    return item->req ? item->req->request_id : NULL;
}

static int s_error(kmx_storage_t *self, const s_item_t *item, int err, const char *msg,
                   uint8_t **out, size_t *len) {
    self->count.errors++;
    return kmx_msg_pack_error(s_request_id(item), err, msg, out, len);
}

// ---- put -------------------------------------------------------------------------

static int s_reserve_recs(kmx_storage_t *self, size_t extra) {
    if (self->n_recs + extra <= self->cap_recs)
        return 0;
    size_t cap = self->cap_recs ? self->cap_recs : 256;
    while (cap < self->n_recs + extra)
        cap *= 2;
    kmx_store_op_t *ops = realloc(self->ops, cap * sizeof *ops);
    if (!ops)
        return KMX_ERR_NOMEM;
    self->ops = ops;
    kmx_put_outcome_t *outcomes = realloc(self->outcomes, cap * sizeof *outcomes);
    if (!outcomes)
        return KMX_ERR_NOMEM;
    self->outcomes = outcomes;
    self->cap_recs = cap;
    return 0;
}

static int s_is_put(const s_item_t *item) {
    return item->req && item->req->body_case == KMX__V1__REQUEST__BODY_PUT && item->req->put;
}

static int s_is_delete(const s_item_t *item) {
    return item->req && item->req->body_case == KMX__V1__REQUEST__BODY_DELETE && item->req->delete_;
}

// Normalises a delete key like a stored record's key (canonical market, trimmed text,
// KR for consumption), lending it a placeholder value: only key fields matter here.
static int s_normalize_key(Kmx__V1__Record *key, kmx_record_problem_t *problem) {
    Kmx__V1__Value *value = key->value;
    Kmx__V1__Value stand_in = KMX__V1__VALUE__INIT;
    char unit[] = "USD";
    stand_in.has_amount = 1;
    stand_in.unit = unit;
    key->value = &stand_in;
    int err = kmx_record_normalize(key, problem);
    if (stand_in.unit != unit)
        free(stand_in.unit);
    key->value = value;
    return err;
}

// Validates a put's records or a delete's keys and adds the valid ones to the batch.
static void s_prepare_write(kmx_storage_t *self, s_item_t *item) {
    int del = s_is_delete(item);
    Kmx__V1__Record **recs = del ? item->req->delete_->keys : item->req->put->records;
    size_t n = del ? item->req->delete_->n_keys : item->req->put->n_records;
    if (n > KMX_STORAGE_RECORDS_MAX) {
        item->put_err = KMX_ERR_TOO_BIG;
        return;
    }
    item->recs = calloc(n ? n : 1, sizeof *item->recs);
    if (!item->recs || s_reserve_recs(self, n) != 0) {
        item->put_err = KMX_ERR_NOMEM;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        s_rec_state_t *st = &item->recs[i];
        st->slot = S_NO_SLOT;
        st->valid = (del ? s_normalize_key(recs[i], &st->problem)
                         : kmx_record_normalize(recs[i], &st->problem)) == 0;
        item->n_rejected += !st->valid;
    }
    if (!del && item->req->put->atomic && item->n_rejected > 0) {
        item->put_err = KMX_ERR_INVAL; // all or nothing: nothing of it is stored
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (item->recs[i].valid) {
            item->recs[i].slot = self->n_recs;
            self->ops[self->n_recs].kind = del ? KMX_STORE_OP_DELETE : KMX_STORE_OP_PUT;
            self->ops[self->n_recs++].rec = recs[i];
        }
    }
}

// Operations statistics: records per committed transaction.
static void s_count_commit(kmx_storage_t *self, size_t records) {
    self->count.commit_records += records;
    if (records > self->count.commit_records_max)
        self->count.commit_records_max = records;
}

// Commits every valid put record and delete key of the batch in one transaction.
static void s_commit_writes(kmx_storage_t *self) {
    for (size_t i = 0; i < self->n_items; i++) {
        s_item_t *item = &self->items[i];
        if (s_is_put(item) || s_is_delete(item))
            s_prepare_write(self, item);
    }
    if (self->n_recs == 0)
        return;
    int err =
        kmx_store_write_batch(self->store, self->ops, self->n_recs, self->outcomes, &self->events);
    if (err == 0) {
        self->count.batches++;
        s_count_commit(self, self->n_recs);
        kmx_log_debug("batch committed records=%zu events=%zu last_seq=%llu", self->n_recs,
                      self->events.n, (unsigned long long)kmx_store_last_seq(self->store));
        return;
    }
    kmx_log_error("batch not committed records=%zu: %s", self->n_recs, kmx_strerror(err));
    for (size_t i = 0; i < self->n_items; i++) {
        s_item_t *item = &self->items[i];
        if (item->recs && item->put_err == 0)
            item->put_err = err;
    }
}

// Fills r with the result of record i of a put request.
static void s_record_result(kmx_storage_t *self, const s_item_t *item, size_t i,
                            Kmx__V1__RecordResult *r, Kmx__V1__PutResult *totals) {
    const s_rec_state_t *st = &item->recs[i];
    r->has_index = r->has_outcome = 1;
    r->index = (uint32_t)i;
    if (!st->valid) {
        r->outcome = KMX__V1__RECORD_RESULT__OUTCOME__REJECTED;
        r->field = (char *)(st->problem.field ? st->problem.field : "record");
        r->reason = (char *)st->problem.reason;
    } else if (st->slot == S_NO_SLOT) {
        r->has_outcome = 0; // valid, but its atomic batch was refused
    } else {
        const kmx_put_outcome_t *o = &self->outcomes[st->slot];
        r->outcome = o->outcome;
        if (o->outcome == KMX__V1__RECORD_RESULT__OUTCOME__STORED) {
            r->has_seq = 1;
            r->seq = o->seq;
        } else if (o->outcome == KMX__V1__RECORD_RESULT__OUTCOME__REJECTED) {
            r->field = "key";
            r->reason = "the record has no usable key or topic";
        } else if (o->outcome == KMX__V1__RECORD_RESULT__OUTCOME__NOT_FOUND) {
            r->field = "key";
            r->reason = "no record has this key";
        } else if (o->superseded) {
            r->field = "status";
            r->reason = "the stored figure is a later revision; this earlier one was not applied";
        }
    }
    if (totals) {
        totals->stored += r->outcome == KMX__V1__RECORD_RESULT__OUTCOME__STORED;
        totals->unchanged += r->outcome == KMX__V1__RECORD_RESULT__OUTCOME__UNCHANGED;
        totals->rejected += r->outcome == KMX__V1__RECORD_RESULT__OUTCOME__REJECTED;
    }
}

// Answers an atomic put that validation refused: the error lists each rejected record.
static int s_put_refused(kmx_storage_t *self, s_item_t *item, Kmx__V1__RecordResult *results,
                         Kmx__V1__RecordResult **ptrs, uint8_t **out, size_t *len) {
    Kmx__V1__Response resp = KMX__V1__RESPONSE__INIT;
    Kmx__V1__Error error = KMX__V1__ERROR__INIT;
    char msg[96];
    snprintf(msg, sizeof msg, "batch refused: %zu of %zu records are invalid", item->n_rejected,
             item->req->put->n_records);
    kmx_msg_set_error(&resp, &error, s_request_id(item), KMX_ERR_INVAL, msg);
    size_t k = 0;
    for (size_t i = 0; i < item->req->put->n_records; i++) {
        if (!item->recs[i].valid)
            ptrs[k++] = &results[i];
    }
    error.n_records = k;
    error.records = ptrs;
    self->count.errors++;
    self->count.rejected += k;
    return kmx_msg_pack_response(&resp, out, len);
}

static size_t s_write_count(const s_item_t *item) {
    return s_is_delete(item) ? item->req->delete_->n_keys : item->req->put->n_records;
}

// Answers a delete that removed nothing: NOT_FOUND (or BAD_REQUEST when every key was
// invalid) listing every key's result.
static int s_delete_none(kmx_storage_t *self, s_item_t *item, Kmx__V1__RecordResult **ptrs,
                         size_t n, size_t rejected, uint8_t **out, size_t *len) {
    Kmx__V1__Response resp = KMX__V1__RESPONSE__INIT;
    Kmx__V1__Error error = KMX__V1__ERROR__INIT;
    int code = rejected == n ? KMX_ERR_INVAL : KMX_ERR_NOT_FOUND;
    kmx_msg_set_error(&resp, &error, s_request_id(item), code,
                      code == KMX_ERR_INVAL ? "no valid key to delete" : "no record has that key");
    error.n_records = n;
    error.records = ptrs;
    self->count.errors++;
    return kmx_msg_pack_response(&resp, out, len);
}

// Packs a PutResult with every record's (or key's) result.
static int s_write_result(kmx_storage_t *self, s_item_t *item, Kmx__V1__PutResult *put,
                          Kmx__V1__RecordResult **ptrs, size_t n, uint8_t **out, size_t *len) {
    self->count.unchanged += put->unchanged;
    self->count.rejected += put->rejected;
    if (s_is_delete(item))
        self->count.deleted += put->stored;
    else
        self->count.stored += put->stored;
    if (s_is_delete(item) && n > 0 && put->stored == 0)
        return s_delete_none(self, item, ptrs, n, put->rejected, out, len);
    put->last_seq = kmx_store_last_seq(self->store);
    put->n_results = n;
    put->results = ptrs;
    Kmx__V1__Response resp = KMX__V1__RESPONSE__INIT;
    resp.request_id = item->req->request_id;
    resp.result_case = KMX__V1__RESPONSE__RESULT_PUT;
    resp.put = put;
    return kmx_msg_pack_response(&resp, out, len);
}

// Answers a put or a delete from the batch's outcomes.
static int s_on_write(kmx_storage_t *self, s_item_t *item, uint8_t **out, size_t *len) {
    if (item->put_err == KMX_ERR_TOO_BIG)
        return s_error(self, item, KMX_ERR_TOO_BIG, "too many records in one request", out, len);
    if (item->put_err != 0 && item->put_err != KMX_ERR_INVAL)
        return s_error(self, item, item->put_err, "storage could not commit the batch", out, len);
    size_t n = s_write_count(item);
    Kmx__V1__RecordResult *results = calloc(n ? n : 1, sizeof *results);
    Kmx__V1__RecordResult **ptrs = calloc(n ? n : 1, sizeof *ptrs);
    int err = KMX_ERR_NOMEM;
    if (!results || !ptrs)
        goto out;
    Kmx__V1__PutResult put = KMX__V1__PUT_RESULT__INIT;
    put.has_stored = put.has_unchanged = put.has_rejected = put.has_last_seq = 1;
    for (size_t i = 0; i < n; i++) {
        Kmx__V1__RecordResult init = KMX__V1__RECORD_RESULT__INIT;
        results[i] = init;
        s_record_result(self, item, i, &results[i], &put);
        ptrs[i] = &results[i];
    }
    if (item->put_err == KMX_ERR_INVAL)
        err = s_put_refused(self, item, results, ptrs, out, len);
    else
        err = s_write_result(self, item, &put, ptrs, n, out, len);
out:
    free(results);
    free(ptrs);
    return err;
}

static int s_on_put(kmx_storage_t *self, s_item_t *item, uint8_t **out, size_t *len) {
    self->count.puts++;
    return s_on_write(self, item, out, len);
}

static int s_on_delete(kmx_storage_t *self, s_item_t *item, uint8_t **out, size_t *len) {
    self->count.deletes++;
    return s_on_write(self, item, out, len);
}

// ---- aggregate -----------------------------------------------------------------------

// A whole query, shaped here so only the answer's rows leave storage (kmx_answer).
static int s_on_query(kmx_storage_t *self, s_item_t *item, uint8_t **out, size_t *len) {
    self->count.aggregates++;
    return kmx_answer_query(self->store, item->req, out, len);
}

static int s_on_aggregate(kmx_storage_t *self, s_item_t *item, uint8_t **out, size_t *len) {
    self->count.aggregates++;
    const Kmx__V1__AggregateRequest *ar = item->req->aggregate;
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

static int s_on_get(kmx_storage_t *self, s_item_t *item, uint8_t **out, size_t *len) {
    self->count.gets++;
    Kmx__V1__Record *key = item->req->get ? item->req->get->key : NULL;
    if (!key)
        return s_error(self, item, KMX_ERR_INVAL, "get needs a key", out, len);
    char market[KMX_MARKET_MAX];
    Kmx__V1__Record lookup = *key;
    // Keys from users may name markets loosely ("japan"); stored keys are canonical.
    if (key->market && kmx_market_canonical(key->market, market, sizeof market) == 0)
        lookup.market = market;
    if ((!key->market || !key->market[0]) && key->kind == KMX__V1__KIND__CONSUMPTION)
        lookup.market = "KR"; // as kmx_record_normalize defaults it
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

static uint32_t s_cap(int has, uint32_t asked, uint32_t dflt, uint32_t max) {
    if (!has || asked == 0)
        return dflt;
    return asked > max ? max : asked;
}

static int s_on_scan(kmx_storage_t *self, s_item_t *item, uint8_t **out, size_t *len) {
    self->count.scans++;
    const Kmx__V1__ScanRequest *sr = item->req->scan;
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

static int s_on_replay(kmx_storage_t *self, s_item_t *item, uint8_t **out, size_t *len) {
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

static int s_on_ping(kmx_storage_t *self, s_item_t *item, uint8_t **out, size_t *len) {
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

#define S_COUNTERS 21 // counters a stats reply carries

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

static int s_on_stats(kmx_storage_t *self, s_item_t *item, uint8_t **out, size_t *len) {
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

static const struct {
    Kmx__V1__Request__BodyCase body; // the request type
    s_handler_fn fn;                 // its handler
} s_handlers[] = {
    {KMX__V1__REQUEST__BODY_PUT, s_on_put},
    {KMX__V1__REQUEST__BODY_GET, s_on_get},
    {KMX__V1__REQUEST__BODY_SCAN, s_on_scan},
    {KMX__V1__REQUEST__BODY_REPLAY, s_on_replay},
    {KMX__V1__REQUEST__BODY_PING, s_on_ping},
    {KMX__V1__REQUEST__BODY_STATS, s_on_stats},
    {KMX__V1__REQUEST__BODY_DELETE, s_on_delete},
    {KMX__V1__REQUEST__BODY_AGGREGATE, s_on_aggregate},
    {KMX__V1__REQUEST__BODY_QUERY, s_on_query},
};

// Builds the packed reply to one drained request.
static int s_dispatch(kmx_storage_t *self, s_item_t *item, uint8_t **out, size_t *len) {
    if (item->bad_frames)
        return s_error(self, item, KMX_ERR_INVAL, "expected [correlation id][request]", out, len);
    if (!item->req)
        return s_error(self, item, KMX_ERR_DECODE, "request does not decode", out, len);
    for (size_t i = 0; i < sizeof s_handlers / sizeof s_handlers[0]; i++) {
        // A oneof case with a NULL body cannot come from protobuf-c; checked anyway.
        if (s_handlers[i].body == item->req->body_case && item->req->ping)
            return s_handlers[i].fn(self, item, out, len);
    }
    return s_error(self, item, KMX_ERR_UNSUPPORTED, "kmx.storage does not handle this request", out,
                   len);
}

// ---- frames ------------------------------------------------------------------------

// Receives one message's frames into item. Returns 1 when a message was read, 0 when
// none is waiting, KMX_ERR_IO when the socket failed.
static int s_recv_item(kmx_storage_t *self, s_item_t *item) {
    memset(item, 0, sizeof *item);
    size_t frames = 0;
    int more = 1;
    while (more) {
        zmq_msg_t part;
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, self->router, frames == 0 ? ZMQ_DONTWAIT : 0) < 0) {
            int e = errno;
            zmq_msg_close(&part);
            if (frames == 0 && (e == EAGAIN || e == EINTR))
                return 0;
            self->terminated = e == ETERM;
            if (!self->terminated)
                kmx_log_error("router receive failed: %s", zmq_strerror(e));
            return KMX_ERR_IO;
        }
        const void *data = zmq_msg_data(&part);
        size_t size = zmq_msg_size(&part);
        if (frames == 0 && size <= sizeof item->rid) {
            memcpy(item->rid, data, size);
            item->rid_len = size;
        } else if (frames == 1 && size == sizeof item->corr) {
            memcpy(item->corr, data, size);
            item->has_corr = 1;
        } else if (frames == 2 && item->has_corr) {
            item->req = kmx_msg_request_unpack(data, size);
        }
        more = zmq_msg_more(&part);
        zmq_msg_close(&part);
        frames++;
    }
    item->bad_frames = frames != 3 || !item->has_corr;
    return 1;
}

static int s_send_reply(kmx_storage_t *self, const s_item_t *item, const uint8_t *body,
                        size_t len) {
    if (zmq_send(self->router, item->rid, item->rid_len, ZMQ_SNDMORE) < 0 ||
        zmq_send(self->router, item->corr, sizeof item->corr, ZMQ_SNDMORE) < 0 ||
        zmq_send(self->router, body, len, 0) < 0) {
        kmx_log_warn("reply not sent: %s", zmq_strerror(errno));
        return KMX_ERR_IO;
    }
    return 0;
}

static void s_reply_all(kmx_storage_t *self) {
    for (size_t i = 0; i < self->n_items; i++) {
        s_item_t *item = &self->items[i];
        if (!item->has_corr) {
            kmx_log_debug("dropped a message without a correlation id");
            continue;
        }
        uint8_t *body = NULL;
        size_t len = 0;
        self->count.requests++;
        if (s_dispatch(self, item, &body, &len) != 0) {
            kmx_log_error("could not build a reply type=%s",
                          item->req ? kmx_msg_body_name(item->req) : "none");
            continue;
        }
        s_send_reply(self, item, body, len);
        free(body);
    }
}

static void s_publish(kmx_storage_t *self, const char *topic, const uint8_t *data, size_t len) {
    if (zmq_send(self->pub, topic, strlen(topic), ZMQ_SNDMORE) < 0 ||
        zmq_send(self->pub, data, len, 0) < 0) {
        kmx_log_warn("publish failed topic=%s: %s", topic, zmq_strerror(errno));
        return;
    }
    self->count.published++;
    self->last_publish_ms = s_clock_ms();
}

static void s_publish_events(kmx_storage_t *self) {
    for (size_t i = 0; i < self->events.n; i++) {
        const kmx_store_event_t *ev = &self->events.items[i];
        s_publish(self, ev->topic, ev->data, ev->len);
    }
    kmx_store_events_fini(&self->events);
}

static void s_publish_heartbeat(kmx_storage_t *self) {
    Kmx__V1__UpdateEvent ev = KMX__V1__UPDATE_EVENT__INIT;
    ev.has_seq = ev.has_type = ev.has_committed_ms = 1;
    ev.seq = kmx_store_last_seq(self->store);
    ev.type = KMX__V1__EVENT_TYPE__HEARTBEAT;
    ev.topic = S_HEARTBEAT_TOPIC;
    ev.committed_ms = s_wall_ms();
    uint8_t buf[64];
    size_t len = kmx__v1__update_event__pack(&ev, buf);
    s_publish(self, S_HEARTBEAT_TOPIC, buf, len);
}

static void s_batch_clear(kmx_storage_t *self) {
    for (size_t i = 0; i < self->n_items; i++) {
        s_item_t *item = &self->items[i];
        if (item->req)
            kmx__v1__request__free_unpacked(item->req, NULL);
        free(item->recs);
        item->req = NULL;
        item->recs = NULL;
    }
    self->n_items = 0;
    self->n_recs = 0;
}

static uint64_t s_clock_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

// Counts what one drained request adds to the batch.
typedef struct {
    size_t records; // put records and delete keys drained
    size_t writers; // put and delete requests drained
} s_drain_t;

// Receives every waiting message without blocking, within the batch bounds. Returns the
// number of messages read.
static size_t s_drain(kmx_storage_t *self, s_drain_t *d) {
    size_t got = 0;
    while (self->n_items < KMX_STORAGE_BATCH_MAX && d->records < KMX_STORAGE_BATCH_RECORDS) {
        s_item_t *item = &self->items[self->n_items];
        if (s_recv_item(self, item) <= 0)
            break;
        self->n_items++;
        got++;
        if (s_is_put(item) || s_is_delete(item)) {
            d->writers++;
            d->records += s_write_count(item);
        }
    }
    return got;
}

// After the first write, keeps draining for up to batch_wait_us so concurrent writers
// share one commit. Only spent when the previous batch already had several writers: a
// lone writer never waits. It stops as soon as as many writers are in as last time:
// those are the writers whose acknowledgements went out and who are sending again, so
// waiting longer would only add latency.
static void s_gather(kmx_storage_t *self, s_drain_t *d) {
    if (d->writers == 0 || self->batch_wait_us == 0 || self->last_writers < 2)
        return;
    self->count.waits++;
    uint64_t deadline = s_clock_us() + self->batch_wait_us;
    while (!self->terminated && self->n_items < KMX_STORAGE_BATCH_MAX &&
           d->records < KMX_STORAGE_BATCH_RECORDS) {
        s_drain(self, d);
        if (d->writers >= self->last_writers)
            break;
        uint64_t now = s_clock_us();
        if (now >= deadline)
            break;
        uint64_t slice = deadline - now < S_WAIT_SLICE_US ? deadline - now : S_WAIT_SLICE_US;
        struct timespec ts = {0, (long)(slice * 1000u)};
        nanosleep(&ts, NULL);
    }
}

// Drains waiting requests (bounded), commits, replies, then publishes.
static void s_serve_batch(kmx_storage_t *self) {
    s_drain_t d = {0, 0};
    s_drain(self, &d);
    s_gather(self, &d);
    self->last_writers = d.writers;
    s_commit_writes(self);
    s_reply_all(self);
    s_publish_events(self);
    s_batch_clear(self);
}

// ---- lifecycle ---------------------------------------------------------------------

static int s_open_sockets(kmx_storage_t *self, void *ctx, const kmx_storage_config_t *cfg) {
    int linger = 1000;
    self->router = zmq_socket(ctx, ZMQ_ROUTER);
    self->pub = zmq_socket(ctx, ZMQ_PUB);
    if (!self->router || !self->pub) {
        kmx_log_error("cannot create sockets: %s", zmq_strerror(errno));
        return KMX_ERR_IO;
    }
    zmq_setsockopt(self->router, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(self->pub, ZMQ_LINGER, &linger, sizeof linger);
    // A peer sending more than any body may be is disconnected before it costs memory.
    int64_t max_msg = KMX_MSG_MAX;
    zmq_setsockopt(self->router, ZMQ_MAXMSGSIZE, &max_msg, sizeof max_msg);
    // With CURVE on, only service keys reach storage, and events go out encrypted.
    if (kmx_zap_start(ctx, &self->zap) != 0 ||
        kmx_curve_server(self->router, KMX_CURVE_DOMAIN_STORAGE) != 0 ||
        kmx_curve_client(self->pub, KMX_CURVE_TO_BROKER) != 0)
        return KMX_ERR_INVAL; // logged: which setting is missing or bad
    if (zmq_bind(self->router, cfg->bind) != 0) {
        kmx_log_error("cannot bind endpoint=%s: %s", cfg->bind, zmq_strerror(errno));
        return KMX_ERR_IO;
    }
    if (zmq_connect(self->pub, cfg->publish) != 0) {
        kmx_log_error("cannot connect endpoint=%s: %s", cfg->publish, zmq_strerror(errno));
        return KMX_ERR_IO;
    }
    size_t size = sizeof self->endpoint;
    if (zmq_getsockopt(self->router, ZMQ_LAST_ENDPOINT, self->endpoint, &size) != 0)
        snprintf(self->endpoint, sizeof self->endpoint, "%s", cfg->bind);
    return 0;
}

int kmx_storage_new(void *ctx, const kmx_storage_config_t *cfg, kmx_storage_t **out) {
    if (!ctx || !cfg || !cfg->bind || !cfg->publish || !cfg->data_dir || !out)
        return KMX_ERR_INVAL;
    *out = NULL;
    kmx_storage_t *self = calloc(1, sizeof *self);
    if (!self)
        return KMX_ERR_NOMEM;
    self->heartbeat_ms = cfg->heartbeat_ms > 0 ? cfg->heartbeat_ms : KMX_STORAGE_HEARTBEAT_MS;
    char host[64] = "localhost";
    gethostname(host, sizeof host - 1);
    snprintf(self->worker, sizeof self->worker, "kmx-storage-%s-%ld", host, (long)getpid());
    kmx_store_events_init(&self->events);
    kmx_store_config_t scfg = {cfg->map_size, 0, cfg->sync, cfg->retain_events, 0, 0};
    self->batch_wait_us = cfg->batch_wait_us;
    int err = kmx_store_open(cfg->data_dir, &scfg, &self->store);
    if (err == 0)
        err = s_open_sockets(self, ctx, cfg);
    if (err != 0) {
        kmx_storage_destroy(&self);
        return err;
    }
    self->last_publish_ms = s_clock_ms();
    kmx_log_info("storage ready bind=%s publish=%s data_dir=%s sync=%d batch_wait_us=%llu "
                 "retain_events=%llu",
                 self->endpoint, cfg->publish, cfg->data_dir, (int)cfg->sync,
                 (unsigned long long)cfg->batch_wait_us, (unsigned long long)cfg->retain_events);
    *out = self;
    return 0;
}

void kmx_storage_destroy(kmx_storage_t **self_p) {
    if (!self_p || !*self_p)
        return;
    kmx_storage_t *self = *self_p;
    s_batch_clear(self);
    kmx_store_events_fini(&self->events);
    if (self->router)
        zmq_close(self->router);
    if (self->pub)
        zmq_close(self->pub);
    kmx_zap_stop(&self->zap);
    kmx_store_close(&self->store);
    free(self->ops);
    free(self->outcomes);
    free(self);
    *self_p = NULL;
}

int kmx_storage_endpoint(const kmx_storage_t *self, char *buf, size_t size) {
    int n = snprintf(buf, size, "%s", self->endpoint);
    return n < 0 || (size_t)n >= size ? KMX_ERR_OVERFLOW : 0;
}

int kmx_storage_run(kmx_storage_t *self, volatile sig_atomic_t *stop) {
    while (!stop || !*stop) {
        uint64_t idle = s_clock_ms() - self->last_publish_ms;
        long timeout = idle >= (uint64_t)self->heartbeat_ms ? 0 : (long)(self->heartbeat_ms - idle);
        zmq_pollitem_t items[] = {{self->router, 0, ZMQ_POLLIN, 0}};
        int rc = zmq_poll(items, 1, timeout);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0 && errno == ETERM)
            break;
        if (rc < 0) {
            kmx_log_error("poll failed: %s", zmq_strerror(errno));
            return KMX_ERR_IO;
        }
        if (items[0].revents & ZMQ_POLLIN)
            s_serve_batch(self);
        if (self->terminated)
            break;
        if (s_clock_ms() - self->last_publish_ms >= (uint64_t)self->heartbeat_ms)
            s_publish_heartbeat(self);
    }
    kmx_log_info("storage stopping last_seq=%llu",
                 (unsigned long long)kmx_store_last_seq(self->store));
    return 0;
}
