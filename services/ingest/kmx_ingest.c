/*  kmx_ingest - put validation and forwarding. Records are validated here first so a bad
    batch never costs storage a write transaction; storage validates again because it
    trusts no one. Storage sees only the valid records, so its result indexes refer to
    that shorter list and are mapped back to the caller's positions before replying.  */
#include "kmx_ingest.h"
#include "kmx_err.h"
#include "kmx_handler.h"
#include "kmx_import.h"
#include "kmx_ingest_doc.h"
#include "kmx_log.h"
#include "kmx_msg.h"
#include "kmx_record.h"
#include "kmx_rkey.h"

#include <stdbool.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint64_t batches;    // put batches handled
    uint64_t stored;     // records storage stored (new or changed)
    uint64_t unchanged;  // records identical to what storage held
    uint64_t rejected;   // records refused, here or by storage
    uint64_t duplicates; // of the refused, repeats of a key earlier in their request
    uint64_t documents;  // raw documents handled
    uint64_t validated;  // records checked by dry runs (validate_only)
    uint64_t deleted;    // records deleted on request
} s_counters_t;

struct kmx_ingest {
    kmx_handler_base_t base; // service, link, worker name, timeout, requests, errors
    s_counters_t count;      // what this worker has done besides
};

// The working state of one batch: a put's records or a document's converted rows.
typedef struct {
    size_t n;                            // records in the batch
    Kmx__V1__Record **recs;              // the records, borrowed
    const uint32_t *index;               // result index of each record (NULL = its position)
    const uint32_t *rows;                // line of each record (documents), or NULL
    bool rejections_only;                // the reply lists rejected records only (documents)
    kmx_record_problem_t *problems;      // per record: why it was refused
    Kmx__V1__Record **valid;             // the records that passed, borrowed
    uint32_t *origin;                    // valid[j] is recs[origin[j]]
    size_t n_valid;                      // records in valid
    Kmx__V1__RecordResult *results;      // merged per-record results
    Kmx__V1__RecordResult **ptrs;        // pointers to them, for the reply
    size_t n_results;                    // results in use
    size_t results_cap;                  // capacity of results, ptrs and reasons
    char (*reasons)[KMX_DOC_REASON_MAX]; // the reason text of each result
    uint32_t n_rejected;                 // records refused here
    uint32_t n_duplicates;               // of them, repeats of an earlier key
    uint32_t stored;                     // storage: stored (new or changed)
    uint32_t unchanged;                  // storage: identical to what it held
    uint32_t storage_rejected;           // storage: refused
    uint64_t last_seq;                   // storage: newest sequence
    const kmx_doc_t *doc;                // documents: how it was read (warnings, skipped cells)
    size_t preview;                      // documents, dry run: records to send back
} s_batch_t;

void kmx_ingest_destroy(kmx_ingest_t **self_p) {
    if (!self_p || !*self_p)
        return;
    kmx_handler_base_t *base = &(*self_p)->base;
    kmx_handler_destroy(&base);
    *self_p = NULL;
}

void kmx_ingest_set_timeout(kmx_ingest_t *self, int timeout_ms) {
    if (self)
        kmx_handler_set_timeout(&self->base, timeout_ms);
}

// ---- ping and stats ----------------------------------------------------------------

static int s_on_stats(void *ctx, const Kmx__V1__Request *req, uint8_t **out, size_t *len) {
    const kmx_ingest_t *self = ctx;
    const kmx_handler_counter_t counters[] = {
        {"requests", self->base.requests},
        {"errors", self->base.errors},
        {"batches", self->count.batches},
        {"records_stored", self->count.stored},
        {"records_unchanged", self->count.unchanged},
        {"records_rejected", self->count.rejected},
        {"records_duplicate", self->count.duplicates},
        {"documents", self->count.documents},
        {"records_validated", self->count.validated},
        {"records_deleted", self->count.deleted},
    };
    return kmx_handler_pack_stats(KMX_INGEST_SERVICE, self->base.worker, counters,
                                  sizeof counters / sizeof counters[0], req, out, len);
}

// ---- batches: validation, repeats, forwarding ---------------------------------------

static void s_batch_fini(s_batch_t *b) {
    free(b->problems);
    free(b->valid);
    free(b->origin);
    free(b->results);
    free(b->ptrs);
    free(b->reasons);
    memset(b, 0, sizeof *b);
}

// Prepares a batch of n records with room for extra results beyond one per record.
static int s_batch_init(s_batch_t *b, Kmx__V1__Record **recs, size_t n, size_t extra) {
    memset(b, 0, sizeof *b);
    size_t alloc = n ? n : 1;
    b->n = n;
    b->recs = recs;
    b->results_cap = n + extra;
    size_t rcap = b->results_cap ? b->results_cap : 1;
    b->problems = calloc(alloc, sizeof *b->problems);
    b->valid = calloc(alloc, sizeof *b->valid);
    b->origin = calloc(alloc, sizeof *b->origin);
    b->results = calloc(rcap, sizeof *b->results);
    b->ptrs = calloc(rcap, sizeof *b->ptrs);
    b->reasons = calloc(rcap, sizeof *b->reasons);
    if (b->problems && b->valid && b->origin && b->results && b->ptrs && b->reasons)
        return 0;
    s_batch_fini(b);
    return KMX_ERR_NOMEM;
}

static uint32_t s_index_of(const s_batch_t *b, size_t i) {
    return b->index ? b->index[i] : (uint32_t)i;
}

// Appends a result; the batch never holds more results than it has room for.
static Kmx__V1__RecordResult *s_add_result(s_batch_t *b) {
    if (b->n_results >= b->results_cap)
        return NULL;
    Kmx__V1__RecordResult *r = &b->results[b->n_results];
    kmx__v1__record_result__init(r);
    b->ptrs[b->n_results++] = r;
    return r;
}

// Adds a REJECTED result for record i (or a document row with no record: i == SIZE_MAX,
// index and row given) whose reason is copied.
static Kmx__V1__RecordResult *s_add_rejection(s_batch_t *b, uint32_t index, uint32_t row,
                                              const char *field, const char *reason) {
    size_t slot = b->n_results;
    Kmx__V1__RecordResult *r = s_add_result(b);
    if (!r)
        return NULL;
    r->has_index = r->has_outcome = 1;
    r->index = index;
    r->outcome = KMX__V1__RECORD_RESULT__OUTCOME__REJECTED;
    snprintf(b->reasons[slot], sizeof b->reasons[slot], "%s", reason);
    r->reason = b->reasons[slot];
    r->field = (char *)field;
    if (row) {
        r->has_row = 1;
        r->row = row;
        r->column = (char *)field;
    }
    return r;
}

// ---- repeats inside one batch --------------------------------------------------------

// Hashes of the valid records' natural keys, to find a key that repeats in the batch.
typedef struct {
    uint64_t *hash; // key hash of each slot
    uint32_t *slot; // valid index + 1, or 0 when empty
    size_t mask;    // slots - 1 (a power of two)
} s_keyset_t;

static int s_keyset_init(s_keyset_t *k, size_t n) {
    size_t cap = 16;
    while (cap < n * 2)
        cap *= 2;
    k->mask = cap - 1;
    k->hash = calloc(cap, sizeof *k->hash);
    k->slot = calloc(cap, sizeof *k->slot);
    if (k->hash && k->slot)
        return 0;
    free(k->hash);
    free(k->slot);
    return KMX_ERR_NOMEM;
}

static void s_keyset_fini(s_keyset_t *k) {
    free(k->hash);
    free(k->slot);
}

static uint64_t s_fnv1a(const uint8_t *p, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

static int s_same_key(const Kmx__V1__Record *a, const uint8_t *key, size_t len) {
    uint8_t other[KMX_RKEY_MAX];
    size_t olen = 0;
    return kmx_rkey_record(a, other, sizeof other, &olen) == 0 && olen == len &&
           memcmp(other, key, len) == 0;
}

// Returns the valid index of the latest earlier record with rec's key (*at its slot), or
// -1 after adding rec as valid index j. A key that cannot be encoded is left to storage.
static long s_keyset_find_or_add(s_keyset_t *k, const s_batch_t *b, const Kmx__V1__Record *rec,
                                 size_t j, size_t *at) {
    uint8_t key[KMX_RKEY_MAX];
    size_t len = 0;
    if (kmx_rkey_record(rec, key, sizeof key, &len) != 0)
        return -1;
    uint64_t h = s_fnv1a(key, len);
    size_t i = (size_t)h & k->mask;
    for (; k->slot[i]; i = (i + 1) & k->mask) {
        size_t other = k->slot[i] - 1;
        if (k->hash[i] == h && s_same_key(b->valid[other], key, len)) {
            *at = i;
            return (long)other;
        }
    }
    k->hash[i] = h;
    k->slot[i] = (uint32_t)j + 1;
    return -1;
}

// ---- validation -----------------------------------------------------------------------

static void s_reject_duplicate(s_batch_t *b, size_t i, size_t first) {
    uint32_t row = b->rows ? b->rows[i] : 0;
    char reason[KMX_IMPORT_REASON_MAX];
    if (b->rows)
        snprintf(reason, sizeof reason, "repeats the record of row %u (same natural key)",
                 b->rows[first]);
    else
        snprintf(reason, sizeof reason,
                 "repeats the record at index %u of this batch (same natural key)",
                 s_index_of(b, first));
    Kmx__V1__RecordResult *r = s_add_rejection(b, s_index_of(b, i), row, "key", reason);
    if (r) {
        r->has_duplicate_of = 1;
        r->duplicate_of = s_index_of(b, first);
        r->has_duplicate_row = b->rows != NULL;
        r->duplicate_row = b->rows ? b->rows[first] : 0;
    }
    b->n_rejected++;
    b->n_duplicates++;
}

static void s_reject_invalid(s_batch_t *b, size_t i) {
    kmx_record_problem_t *p = &b->problems[i];
    if (!p->field)
        p->field = "record";
    if (!p->reason[0])
        snprintf(p->reason, sizeof p->reason, "record is invalid");
    s_add_rejection(b, s_index_of(b, i), b->rows ? b->rows[i] : 0, p->field, p->reason);
    b->n_rejected++;
}

// Whether rec revises prev, the latest copy of its key in the batch: both carry a status
// and rec's comes later in preliminary -> revised -> final. Storage then applies both in
// order, so the batch records the figure's history and ends on its latest revision.
static int s_revises(const Kmx__V1__Record *prev, const Kmx__V1__Record *rec) {
    return prev->has_status && rec->has_status &&
           prev->status != KMX__V1__STATUS__STATUS_UNSPECIFIED && rec->status > prev->status;
}

// Normalises every record, keeping the valid ones and a REJECTED result for the others
// and for every repeat of a key seen earlier in the batch (the first copy is kept) that
// is not a later revision of it.
static int s_validate(s_batch_t *b) {
    s_keyset_t keys;
    if (s_keyset_init(&keys, b->n) != 0)
        return KMX_ERR_NOMEM;
    for (size_t i = 0; i < b->n; i++) {
        Kmx__V1__Record *rec = b->recs[i];
        if (!rec || kmx_record_normalize(rec, &b->problems[i]) != 0) {
            s_reject_invalid(b, i);
            continue;
        }
        size_t at = 0;
        long first = s_keyset_find_or_add(&keys, b, rec, b->n_valid, &at);
        if (first >= 0 && !s_revises(b->valid[first], rec)) {
            s_reject_duplicate(b, i, b->origin[first]);
            continue;
        }
        if (first >= 0)
            keys.slot[at] = (uint32_t)b->n_valid + 1; // later repeats compare with this one
        b->valid[b->n_valid] = rec;
        b->origin[b->n_valid++] = (uint32_t)i;
    }
    s_keyset_fini(&keys);
    return 0;
}

// ---- replies --------------------------------------------------------------------------

static int s_cmp_index(const void *pa, const void *pb) {
    const Kmx__V1__RecordResult *a = *(Kmx__V1__RecordResult *const *)pa;
    const Kmx__V1__RecordResult *b = *(Kmx__V1__RecordResult *const *)pb;
    return (a->index > b->index) - (a->index < b->index);
}

static void s_sort_results(s_batch_t *b) {
    if (b->n_results > 1)
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
    self->base.errors++;
    return kmx_msg_pack_response(&resp, out, len);
}

static int s_reply_atomic_refusal(kmx_ingest_t *self, const Kmx__V1__Request *req, s_batch_t *b,
                                  size_t total, uint8_t **out, size_t *len) {
    char msg[200];
    snprintf(msg, sizeof msg,
             "%u of %zu records are invalid (%u repeat an earlier key); atomic batch not "
             "stored",
             b->n_rejected, total, b->n_duplicates);
    Kmx__V1__Error err = KMX__V1__ERROR__INIT;
    err.has_code = 1;
    err.code = kmx_msg_error_code(KMX_ERR_INVAL);
    err.message = msg;
    self->count.rejected += b->n_rejected;
    kmx_log_info("batch records=%zu rejected=%u atomic=1 stored=0", total, b->n_rejected);
    return s_reply_refused(self, req, b, &err, out, len);
}

static int s_reply_put(kmx_ingest_t *self, const Kmx__V1__Request *req, s_batch_t *b, size_t total,
                       uint8_t **out, size_t *len) {
    s_sort_results(b);
    uint32_t rejected = b->n_rejected + b->storage_rejected;
    self->count.stored += b->stored;
    self->count.unchanged += b->unchanged;
    self->count.rejected += rejected;
    self->count.duplicates += b->n_duplicates;
    kmx_log_info("batch records=%zu stored=%u unchanged=%u rejected=%u duplicates=%u", total,
                 b->stored, b->unchanged, rejected, b->n_duplicates);
    Kmx__V1__PutResult put = KMX__V1__PUT_RESULT__INIT;
    put.has_stored = put.has_unchanged = put.has_rejected = put.has_last_seq = 1;
    put.stored = b->stored;
    put.unchanged = b->unchanged;
    put.rejected = rejected;
    put.last_seq = b->last_seq;
    put.has_duplicates = 1;
    put.duplicates = b->n_duplicates;
    put.has_records = b->rows != NULL || b->rejections_only;
    put.records = (uint32_t)total;
    put.n_results = b->n_results;
    put.results = b->ptrs;
    if (b->doc) {
        put.has_skipped = put.has_cells = 1;
        put.skipped = (uint32_t)b->doc->skipped;
        put.cells = (uint32_t)b->doc->slots;
        put.n_warnings = b->doc->n_warnings;
        put.warnings = b->doc->warnings;
        put.encoding = (char *)b->doc->encoding;
        put.n_preview = b->preview < b->n_valid ? b->preview : b->n_valid;
        put.preview = b->valid;
    }
    Kmx__V1__Response resp = KMX__V1__RESPONSE__INIT;
    resp.request_id = req->request_id;
    resp.result_case = KMX__V1__RESPONSE__RESULT_PUT;
    resp.put = &put;
    return kmx_msg_pack_response(&resp, out, len);
}

// ---- forwarding to storage ------------------------------------------------------------

// Adds storage's results for valid[off..off+n) with indexes mapped back to the caller's.
static void s_merge(s_batch_t *b, size_t off, size_t n, Kmx__V1__RecordResult **results,
                    size_t n_results) {
    for (size_t i = 0; i < n_results; i++) {
        const Kmx__V1__RecordResult *src = results[i];
        if (!src || !src->has_index || src->index >= n)
            continue;
        int rejected = src->outcome == KMX__V1__RECORD_RESULT__OUTCOME__REJECTED;
        if (b->rejections_only && !rejected)
            continue;
        size_t rec = b->origin[off + src->index];
        size_t slot = b->n_results;
        Kmx__V1__RecordResult *r = s_add_result(b);
        if (!r)
            return;
        *r = *src;
        r->index = s_index_of(b, rec);
        if (src->reason) {
            snprintf(b->reasons[slot], sizeof b->reasons[slot], "%s", src->reason);
            r->reason = b->reasons[slot];
        }
        // Storage's strings die with its reply: name the field with a constant.
        int superseded = !rejected && src->field && strcmp(src->field, "status") == 0;
        r->field = rejected ? "key" : superseded ? "status" : NULL;
        if (b->rows) {
            r->has_row = 1;
            r->row = b->rows[rec];
            r->column = r->field;
        }
    }
}

// Maps a failed storage call to the caller's error.
static int s_link_failed(kmx_ingest_t *self, const Kmx__V1__Request *req, int rc, uint8_t **out,
                         size_t *len) {
    return kmx_handler_link_error(&self->base, req, rc, out, len);
}

// Sends valid[off..off+n) to storage. Returns 0 with the counts merged; 1 when storage
// answered with an Error (written to *out as the reply); or a negative link error.
static int s_forward(kmx_ingest_t *self, const Kmx__V1__Request *req, s_batch_t *b, size_t off,
                     size_t n, bool atomic, uint8_t **out, size_t *len) {
    Kmx__V1__PutRequest put = KMX__V1__PUT_REQUEST__INIT;
    put.n_records = n;
    put.records = b->valid + off;
    put.has_atomic = atomic;
    put.atomic = atomic;
    Kmx__V1__Request fwd = KMX__V1__REQUEST__INIT;
    fwd.request_id = req->request_id;
    fwd.body_case = KMX__V1__REQUEST__BODY_PUT;
    fwd.put = &put;
    Kmx__V1__Response *resp = NULL;
    // As long as the caller waits (Request.timeout_ms), not the service's own wait.
    int rc = kmx_handler_call(&self->base, &fwd, &resp);
    if (rc != 0)
        return rc;
    if (resp->result_case == KMX__V1__RESPONSE__RESULT_PUT && resp->put) {
        s_merge(b, off, n, resp->put->results, resp->put->n_results);
        b->stored += resp->put->stored;
        b->unchanged += resp->put->unchanged;
        b->storage_rejected += resp->put->rejected;
        if (resp->put->last_seq > b->last_seq)
            b->last_seq = resp->put->last_seq;
    } else if (resp->result_case == KMX__V1__RESPONSE__RESULT_ERROR && resp->error) {
        s_merge(b, off, n, resp->error->records, resp->error->n_records);
        kmx_log_info("batch records=%zu refused by storage code=%d after stored=%u", n,
                     (int)resp->error->code, b->stored);
        Kmx__V1__Error err = *resp->error;
        char msg[300];
        if (off > 0) {
            snprintf(msg, sizeof msg, "%s (after %u records were stored, %u unchanged)",
                     err.message ? err.message : "storage refused the batch", b->stored,
                     b->unchanged);
            err.message = msg;
        }
        rc = s_reply_refused(self, req, b, &err, out, len);
        rc = rc == 0 ? 1 : rc;
    } else {
        kmx_log_warn("storage answered a put with result case %d", (int)resp->result_case);
        rc = KMX_ERR_DECODE;
    }
    kmx__v1__response__free_unpacked(resp, NULL);
    return rc;
}

// Validates the batch, then answers: refused (atomic with a bad record), validated only,
// or stored through storage in slices storage accepts.
static int s_run_batch(kmx_ingest_t *self, const Kmx__V1__Request *req, s_batch_t *b, size_t total,
                       bool atomic, bool dry_run, uint8_t **out, size_t *len) {
    self->count.batches++;
    if (s_validate(b) != 0)
        return kmx_handler_error(&self->base, req, KMX_ERR_NOMEM, "out of memory", out, len);
    if (atomic && b->n_rejected > 0)
        return s_reply_atomic_refusal(self, req, b, total, out, len);
    if (dry_run) {
        self->count.validated += total;
        return s_reply_put(self, req, b, total, out, len);
    }
    for (size_t off = 0; off < b->n_valid; off += KMX_INGEST_FORWARD_MAX) {
        size_t n = b->n_valid - off;
        if (n > KMX_INGEST_FORWARD_MAX)
            n = KMX_INGEST_FORWARD_MAX;
        int rc = s_forward(self, req, b, off, n, atomic, out, len);
        if (rc == 1)
            return 0;
        if (rc == KMX_ERR_UNAVAILABLE)
            return kmx_handler_error(&self->base, req, rc, "kmx.ingest has no storage link", out,
                                     len);
        if (rc == KMX_ERR_DECODE && off == 0)
            return kmx_handler_error(&self->base, req, KMX_ERR_INTERNAL,
                                     "storage sent an unexpected reply", out, len);
        if (rc < 0)
            return s_link_failed(self, req, rc, out, len);
    }
    return s_reply_put(self, req, b, total, out, len);
}

// ---- put ------------------------------------------------------------------------------

static int s_on_put(void *ctx, const Kmx__V1__Request *req, uint8_t **out, size_t *len) {
    kmx_ingest_t *self = ctx;
    const Kmx__V1__PutRequest *put = req->put;
    if (put->n_records > KMX_INGEST_BATCH_MAX) {
        char msg[120];
        snprintf(msg, sizeof msg,
                 "a put carries at most %d records, not %zu; split it into batches",
                 KMX_INGEST_BATCH_MAX, put->n_records);
        return kmx_handler_error(&self->base, req, KMX_ERR_TOO_BIG, msg, out, len);
    }
    s_batch_t b;
    if (s_batch_init(&b, put->records, put->n_records, 0) != 0)
        return kmx_handler_error(&self->base, req, KMX_ERR_NOMEM, "out of memory", out, len);
    int rc = s_run_batch(self, req, &b, put->n_records, put->atomic, false, out, len);
    s_batch_fini(&b);
    return rc;
}

// ---- raw documents --------------------------------------------------------------------

// Adds a REJECTED result for every row the document parser refused.
static void s_add_parse_rejections(s_batch_t *b, const kmx_doc_t *doc) {
    for (size_t i = 0; i < doc->n_rejects; i++) {
        const kmx_doc_reject_t *r = &doc->rejects[i];
        // The column text lives in doc, which outlives the reply.
        s_add_rejection(b, r->index, r->row, r->column[0] ? r->column : "row", r->reason);
        b->n_rejected++;
    }
}

static int s_on_document(void *ctx, const Kmx__V1__Request *req, uint8_t **out, size_t *len) {
    kmx_ingest_t *self = ctx;
    const Kmx__V1__RawDocument *raw = req->document;
    self->count.documents++;
    kmx_doc_t doc;
    char err[KMX_DOC_ERROR_MAX];
    int rc = kmx_doc_parse(raw, &doc, err, sizeof err);
    if (rc != 0) {
        kmx_log_info("document refused bytes=%zu error=%s", raw->data.len, kmx_err_name(rc));
        rc = kmx_handler_error(&self->base, req, rc, err, out, len);
        kmx_doc_fini(&doc);
        return rc;
    }
    s_batch_t b;
    rc = s_batch_init(&b, doc.records, doc.n, doc.n_rejects);
    if (rc == 0) {
        b.index = doc.index;
        b.rows = doc.rows;
        b.rejections_only = true;
        b.doc = &doc;
        if (raw->validate_only && raw->has_preview)
            b.preview = raw->preview < KMX_DOC_PREVIEW_MAX ? raw->preview : KMX_DOC_PREVIEW_MAX;
        s_add_parse_rejections(&b, &doc);
        rc = s_run_batch(self, req, &b, doc.rows_read, raw->atomic, raw->validate_only, out, len);
    } else {
        rc = kmx_handler_error(&self->base, req, KMX_ERR_NOMEM, "out of memory", out, len);
    }
    s_batch_fini(&b);
    kmx_doc_fini(&doc);
    return rc;
}

// ---- delete ---------------------------------------------------------------------------

// Corrections that remove records. Storage validates the keys and answers per key (STORED
// with the tombstone's seq, or NOT_FOUND); its answer goes back to the caller unchanged.
static int s_on_delete(void *ctx, const Kmx__V1__Request *req, uint8_t **out, size_t *len) {
    kmx_ingest_t *self = ctx;
    size_t n = req->delete_->n_keys;
    if (n == 0 || n > KMX_INGEST_BATCH_MAX) {
        char msg[120];
        snprintf(msg, sizeof msg, "a delete names between 1 and %d keys, not %zu",
                 KMX_INGEST_BATCH_MAX, n);
        return kmx_handler_error(&self->base, req, n ? KMX_ERR_TOO_BIG : KMX_ERR_INVAL, msg, out,
                                 len);
    }
    Kmx__V1__Response *resp = NULL;
    int rc = kmx_handler_call(&self->base, req, &resp);
    if (rc != 0)
        return kmx_handler_link_error(&self->base, req, rc, out, len);
    if (resp->result_case == KMX__V1__RESPONSE__RESULT_PUT && resp->put)
        self->count.deleted += resp->put->stored;
    else
        self->base.errors++;
    kmx_log_info("delete keys=%zu deleted=%u", n,
                 resp->result_case == KMX__V1__RESPONSE__RESULT_PUT && resp->put ? resp->put->stored
                                                                                 : 0u);
    rc = kmx_msg_pack_response(resp, out, len);
    kmx__v1__response__free_unpacked(resp, NULL);
    return rc;
}

// ---- dispatch ----------------------------------------------------------------------

static const kmx_handler_t s_handlers[] = {
    {KMX__V1__REQUEST__BODY_PUT, s_on_put},
    {KMX__V1__REQUEST__BODY_DOCUMENT, s_on_document},
    {KMX__V1__REQUEST__BODY_DELETE, s_on_delete},
    {KMX__V1__REQUEST__BODY_PING, kmx_handler_on_ping},
    {KMX__V1__REQUEST__BODY_STATS, s_on_stats},
};

int kmx_ingest_handle(kmx_ingest_t *self, const void *body, size_t size, uint8_t **out,
                      size_t *len) {
    return kmx_handler_handle(self ? &self->base : NULL, body, size, out, len);
}

static const kmx_handler_class_t s_class = {KMX_INGEST_SERVICE, s_handlers,
                                            sizeof s_handlers / sizeof s_handlers[0],
                                            KMX_INGEST_TIMEOUT_MS, sizeof(kmx_ingest_t)};

kmx_handler_base_t *kmx_ingest_handler_new(kmx_link_t *link, const char *worker) {
    return kmx_handler_new(&s_class, link, worker);
}

kmx_ingest_t *kmx_ingest_new(kmx_link_t *link, const char *worker) {
    return (kmx_ingest_t *)kmx_ingest_handler_new(link, worker); // base is the first member
}
