/*  kmx_ingest - put validation and forwarding. Records are validated here first so a bad
    batch never costs storage a write transaction; storage validates again because it
    trusts no one. Storage sees only the valid records, so its result indexes refer to
    that shorter list and are mapped back to the caller's positions before replying.  */
#include "kmx_ingest.h"
#include "kmx_err.h"
#include "kmx_log.h"
#include "kmx_msg.h"
#include "kmx_record.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint64_t requests;  // requests answered
    uint64_t errors;    // error replies sent
    uint64_t batches;   // put batches handled
    uint64_t stored;    // records storage stored (new or changed)
    uint64_t unchanged; // records identical to what storage held
    uint64_t rejected;  // records refused, here or by storage
} s_counters_t;

struct kmx_ingest {
    kmx_link_t *link;   // link to storage, borrowed
    char worker[128];   // this worker's name, for pongs and stats
    int timeout_ms;     // how long a call waits for storage
    s_counters_t count; // what this worker has done
};

// The working state of one put batch.
typedef struct {
    size_t n;                       // records in the request
    kmx_record_problem_t *problems; // per request record: why it was refused
    Kmx__V1__Record **valid;        // the records that passed, borrowed from the request
    uint32_t *origin;               // valid[j] is request record origin[j]
    size_t n_valid;                 // records in valid
    Kmx__V1__RecordResult *results; // merged per-record results
    Kmx__V1__RecordResult **ptrs;   // pointers to them, for the reply
    size_t n_results;               // results in use
    uint32_t n_rejected;            // records refused here
} s_batch_t;

typedef int (*s_handler_fn)(kmx_ingest_t *self, const Kmx__V1__Request *req, uint8_t **out,
                            size_t *len);

kmx_ingest_t *kmx_ingest_new(kmx_link_t *link, const char *worker) {
    kmx_ingest_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->link = link;
    snprintf(self->worker, sizeof self->worker, "%s", worker ? worker : "ingest");
    self->timeout_ms = KMX_INGEST_TIMEOUT_MS;
    return self;
}

void kmx_ingest_destroy(kmx_ingest_t **self_p) {
    if (!self_p || !*self_p)
        return;
    free(*self_p);
    *self_p = NULL;
}

void kmx_ingest_set_timeout(kmx_ingest_t *self, int timeout_ms) {
    if (self && timeout_ms > 0)
        self->timeout_ms = timeout_ms;
}

static int s_error(kmx_ingest_t *self, const Kmx__V1__Request *req, int err, const char *msg,
                   uint8_t **out, size_t *len) {
    self->count.errors++;
    return kmx_msg_pack_error(req ? req->request_id : NULL, err, msg, out, len);
}

// Maps a failed storage call to the caller's error.
static int s_link_error(kmx_ingest_t *self, const Kmx__V1__Request *req, int rc, uint8_t **out,
                        size_t *len) {
    kmx_log_warn("storage call failed error=%s", kmx_err_name(rc));
    if (rc == KMX_ERR_DECODE)
        return s_error(self, req, KMX_ERR_INTERNAL, "storage sent a reply that does not decode",
                       out, len);
    if (rc == KMX_ERR_NOMEM)
        return s_error(self, req, KMX_ERR_NOMEM, "out of memory", out, len);
    return s_error(self, req, KMX_ERR_UNAVAILABLE, "storage did not answer; retry", out, len);
}

// ---- ping and stats ----------------------------------------------------------------

static int s_on_ping(kmx_ingest_t *self, const Kmx__V1__Request *req, uint8_t **out, size_t *len) {
    Kmx__V1__PongResult pong = KMX__V1__PONG_RESULT__INIT;
    pong.service = KMX_INGEST_SERVICE;
    pong.worker = self->worker;
    pong.version = KMX_VERSION;
    Kmx__V1__Response resp = KMX__V1__RESPONSE__INIT;
    resp.request_id = req->request_id;
    resp.result_case = KMX__V1__RESPONSE__RESULT_PONG;
    resp.pong = &pong;
    return kmx_msg_pack_response(&resp, out, len);
}

static int s_on_stats(kmx_ingest_t *self, const Kmx__V1__Request *req, uint8_t **out, size_t *len) {
    const struct {
        char *name;
        uint64_t value;
    } values[] = {
        {"requests", self->count.requests},
        {"errors", self->count.errors},
        {"batches", self->count.batches},
        {"records_stored", self->count.stored},
        {"records_unchanged", self->count.unchanged},
        {"records_rejected", self->count.rejected},
    };
    enum { N = sizeof values / sizeof values[0] };
    Kmx__V1__Counter counters[N];
    Kmx__V1__Counter *ptrs[N];
    for (size_t i = 0; i < N; i++) {
        kmx__v1__counter__init(&counters[i]);
        counters[i].name = values[i].name;
        counters[i].has_value = 1;
        counters[i].value = values[i].value;
        ptrs[i] = &counters[i];
    }
    Kmx__V1__StatsResult stats = KMX__V1__STATS_RESULT__INIT;
    stats.service = KMX_INGEST_SERVICE;
    stats.worker = self->worker;
    stats.n_counters = N;
    stats.counters = ptrs;
    Kmx__V1__Response resp = KMX__V1__RESPONSE__INIT;
    resp.request_id = req->request_id;
    resp.result_case = KMX__V1__RESPONSE__RESULT_STATS;
    resp.stats = &stats;
    return kmx_msg_pack_response(&resp, out, len);
}

// ---- put ---------------------------------------------------------------------------

static void s_batch_fini(s_batch_t *b) {
    free(b->problems);
    free(b->valid);
    free(b->origin);
    free(b->results);
    free(b->ptrs);
    memset(b, 0, sizeof *b);
}

static int s_batch_init(s_batch_t *b, size_t n) {
    memset(b, 0, sizeof *b);
    size_t alloc = n ? n : 1;
    b->n = n;
    b->problems = calloc(alloc, sizeof *b->problems);
    b->valid = calloc(alloc, sizeof *b->valid);
    b->origin = calloc(alloc, sizeof *b->origin);
    b->results = calloc(alloc, sizeof *b->results);
    b->ptrs = calloc(alloc, sizeof *b->ptrs);
    if (b->problems && b->valid && b->origin && b->results && b->ptrs)
        return 0;
    s_batch_fini(b);
    return KMX_ERR_NOMEM;
}

// Appends a result; the batch never holds more results than the request had records.
static Kmx__V1__RecordResult *s_add_result(s_batch_t *b) {
    if (b->n_results >= b->n)
        return NULL;
    Kmx__V1__RecordResult *r = &b->results[b->n_results];
    kmx__v1__record_result__init(r);
    b->ptrs[b->n_results++] = r;
    return r;
}

// Normalises every record, keeping the valid ones and a REJECTED result for the others.
static void s_validate(s_batch_t *b, Kmx__V1__Record **records) {
    for (size_t i = 0; i < b->n; i++) {
        kmx_record_problem_t *p = &b->problems[i];
        int rc = KMX_ERR_INVAL;
        if (records[i])
            rc = kmx_record_normalize(records[i], p);
        if (rc == 0) {
            b->valid[b->n_valid] = records[i];
            b->origin[b->n_valid++] = (uint32_t)i;
            continue;
        }
        if (!p->field)
            p->field = "record";
        if (!p->reason[0])
            snprintf(p->reason, sizeof p->reason, "record is invalid");
        Kmx__V1__RecordResult *r = s_add_result(b);
        r->has_index = r->has_outcome = 1;
        r->index = (uint32_t)i;
        r->outcome = KMX__V1__RECORD_RESULT__OUTCOME__REJECTED;
        r->field = (char *)p->field;
        r->reason = p->reason;
        b->n_rejected++;
    }
}

// Adds storage's results (borrowed from its reply) with indexes mapped back to the
// request's positions. Results naming no record storage was sent are dropped.
static void s_merge(s_batch_t *b, Kmx__V1__RecordResult **results, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const Kmx__V1__RecordResult *src = results[i];
        if (!src || !src->has_index || src->index >= b->n_valid)
            continue;
        Kmx__V1__RecordResult *r = s_add_result(b);
        if (!r)
            return;
        *r = *src;
        r->index = b->origin[src->index];
    }
}

static int s_cmp_index(const void *pa, const void *pb) {
    const Kmx__V1__RecordResult *a = *(Kmx__V1__RecordResult *const *)pa;
    const Kmx__V1__RecordResult *b = *(Kmx__V1__RecordResult *const *)pb;
    return (a->index > b->index) - (a->index < b->index);
}

static void s_sort_results(s_batch_t *b) {
    qsort(b->ptrs, b->n_results, sizeof *b->ptrs, s_cmp_index);
}

// Replies Error{code, message, records} with the batch's results.
static int s_reply_refused(kmx_ingest_t *self, const Kmx__V1__Request *req, s_batch_t *b,
                           const Kmx__V1__Error *base, uint8_t **out, size_t *len) {
    s_sort_results(b);
    Kmx__V1__Error err = *base;
    err.n_records = b->n_results;
    err.records = b->ptrs;
    Kmx__V1__Response resp = KMX__V1__RESPONSE__INIT;
    resp.request_id = req->request_id;
    resp.result_case = KMX__V1__RESPONSE__RESULT_ERROR;
    resp.error = &err;
    self->count.errors++;
    return kmx_msg_pack_response(&resp, out, len);
}

static int s_reply_atomic_refusal(kmx_ingest_t *self, const Kmx__V1__Request *req, s_batch_t *b,
                                  uint8_t **out, size_t *len) {
    char msg[160];
    snprintf(msg, sizeof msg, "%u of %zu records are invalid; atomic batch not stored",
             b->n_rejected, b->n);
    Kmx__V1__Error err = KMX__V1__ERROR__INIT;
    err.has_code = 1;
    err.code = kmx_msg_error_code(KMX_ERR_INVAL);
    err.message = msg;
    return s_reply_refused(self, req, b, &err, out, len);
}

static int s_reply_put(const Kmx__V1__Request *req, s_batch_t *b, const Kmx__V1__PutResult *sr,
                       uint8_t **out, size_t *len) {
    s_sort_results(b);
    Kmx__V1__PutResult put = KMX__V1__PUT_RESULT__INIT;
    put.has_stored = put.has_unchanged = put.has_rejected = put.has_last_seq = 1;
    put.stored = sr ? sr->stored : 0;
    put.unchanged = sr ? sr->unchanged : 0;
    put.rejected = b->n_rejected + (sr ? sr->rejected : 0);
    put.last_seq = sr ? sr->last_seq : 0;
    put.n_results = b->n_results;
    put.results = b->ptrs;
    Kmx__V1__Response resp = KMX__V1__RESPONSE__INIT;
    resp.request_id = req->request_id;
    resp.result_case = KMX__V1__RESPONSE__RESULT_PUT;
    resp.put = &put;
    return kmx_msg_pack_response(&resp, out, len);
}

static void s_count_put(kmx_ingest_t *self, const s_batch_t *b, const Kmx__V1__PutResult *sr) {
    uint32_t stored = sr ? sr->stored : 0;
    uint32_t unchanged = sr ? sr->unchanged : 0;
    uint32_t rejected = b->n_rejected + (sr ? sr->rejected : 0);
    self->count.stored += stored;
    self->count.unchanged += unchanged;
    self->count.rejected += rejected;
    kmx_log_info("put batch records=%zu stored=%u unchanged=%u rejected=%u", b->n, stored,
                 unchanged, rejected);
}

// Sends the valid records to storage and answers with the merged outcome.
static int s_store(kmx_ingest_t *self, const Kmx__V1__Request *req, s_batch_t *b, uint8_t **out,
                   size_t *len) {
    Kmx__V1__PutRequest put = KMX__V1__PUT_REQUEST__INIT;
    put.n_records = b->n_valid;
    put.records = b->valid;
    put.has_atomic = req->put->has_atomic;
    put.atomic = req->put->atomic;
    Kmx__V1__Request fwd = KMX__V1__REQUEST__INIT;
    fwd.request_id = req->request_id;
    fwd.body_case = KMX__V1__REQUEST__BODY_PUT;
    fwd.put = &put;
    Kmx__V1__Response *resp = NULL;
    int rc = kmx_link_call(self->link, &fwd, self->timeout_ms, &resp);
    if (rc != 0)
        return s_link_error(self, req, rc, out, len);
    if (resp->result_case == KMX__V1__RESPONSE__RESULT_PUT) {
        s_merge(b, resp->put->results, resp->put->n_results);
        s_count_put(self, b, resp->put);
        rc = s_reply_put(req, b, resp->put, out, len);
    } else if (resp->result_case == KMX__V1__RESPONSE__RESULT_ERROR) {
        s_merge(b, resp->error->records, resp->error->n_records);
        kmx_log_info("put batch records=%zu refused by storage code=%d", b->n,
                     (int)resp->error->code);
        rc = s_reply_refused(self, req, b, resp->error, out, len);
    } else {
        kmx_log_warn("storage answered a put with result case %d", (int)resp->result_case);
        rc = s_error(self, req, KMX_ERR_INTERNAL, "storage sent an unexpected reply", out, len);
    }
    kmx__v1__response__free_unpacked(resp, NULL);
    return rc;
}

static int s_on_put(kmx_ingest_t *self, const Kmx__V1__Request *req, uint8_t **out, size_t *len) {
    const Kmx__V1__PutRequest *put = req->put;
    if (put->n_records > KMX_INGEST_BATCH_MAX) {
        char msg[96];
        snprintf(msg, sizeof msg, "a put carries at most %d records, not %zu", KMX_INGEST_BATCH_MAX,
                 put->n_records);
        return s_error(self, req, KMX_ERR_TOO_BIG, msg, out, len);
    }
    self->count.batches++;
    s_batch_t b;
    if (s_batch_init(&b, put->n_records) != 0)
        return s_error(self, req, KMX_ERR_NOMEM, "out of memory", out, len);
    s_validate(&b, put->records);
    int rc;
    if (put->atomic && b.n_rejected > 0) {
        self->count.rejected += b.n_rejected;
        kmx_log_info("put batch records=%zu rejected=%u atomic=1 stored=0", b.n, b.n_rejected);
        rc = s_reply_atomic_refusal(self, req, &b, out, len);
    } else if (b.n_valid == 0) {
        s_count_put(self, &b, NULL);
        rc = s_reply_put(req, &b, NULL, out, len);
    } else {
        rc = s_store(self, req, &b, out, len);
    }
    s_batch_fini(&b);
    return rc;
}

// ---- dispatch ----------------------------------------------------------------------

static const struct {
    Kmx__V1__Request__BodyCase body; // request type
    s_handler_fn fn;                 // its handler
} s_handlers[] = {
    {KMX__V1__REQUEST__BODY_PUT, s_on_put},
    {KMX__V1__REQUEST__BODY_PING, s_on_ping},
    {KMX__V1__REQUEST__BODY_STATS, s_on_stats},
};

static int s_dispatch(kmx_ingest_t *self, const Kmx__V1__Request *req, uint8_t **out, size_t *len) {
    for (size_t i = 0; i < sizeof s_handlers / sizeof s_handlers[0]; i++) {
        // Every oneof member is a pointer in one union, so ping stands for whichever is set.
        if (s_handlers[i].body == req->body_case && req->ping)
            return s_handlers[i].fn(self, req, out, len);
    }
    char msg[96];
    snprintf(msg, sizeof msg, "kmx.ingest does not handle '%s' requests", kmx_msg_body_name(req));
    return s_error(self, req, KMX_ERR_UNSUPPORTED, msg, out, len);
}

int kmx_ingest_handle(kmx_ingest_t *self, const void *body, size_t size, uint8_t **out,
                      size_t *len) {
    if (!self || !out || !len)
        return KMX_ERR_INVAL;
    self->count.requests++;
    Kmx__V1__Request *req = kmx_msg_request_unpack(body, size);
    if (!req)
        return s_error(self, NULL, KMX_ERR_DECODE, "request body does not decode", out, len);
    int rc = s_dispatch(self, req, out, len);
    kmx__v1__request__free_unpacked(req, NULL);
    return rc;
}
