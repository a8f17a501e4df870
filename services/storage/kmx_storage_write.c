/*  kmx_storage_write - kmx-storage's writer thread, the one LMDB writer. Each wake-up
    drains the writes the router passed on (waiting a bounded moment for more writers when
    writers are concurrent), commits every put and delete in them in one transaction
    (group commit), answers all of them, and only then publishes the committed events, so
    nothing uncommitted is ever announced. Reads never come here: they run beside it on
    the reader threads (kmx_storage_read.c). Idle, it publishes heartbeats and clears
    reader slots that dead processes left.  */
#include "kmx_storage_int.h"

#include "kmx_err.h"
#include "kmx_log.h"
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
#include <zmq.h>

#define S_NO_SLOT SIZE_MAX // a put record that never reached the store
#define S_HEARTBEAT_TOPIC "kmx.heartbeat"
#define S_WAIT_SLICE_US 50 // sleep between polls while a batch waits for more writers

// One put record's (or delete key's) fate before the store sees it.
typedef struct {
    size_t slot;                  // index into the batch arrays, or S_NO_SLOT
    int valid;                    // nonzero when kmx_record_normalize accepted it
    kmx_record_problem_t problem; // why validation refused it (slot == S_NO_SLOT)
} s_rec_state_t;

// One request drained from the router in this batch.
typedef struct {
    kmx_storage_req_t m; // frames and decoded body
    s_rec_state_t *recs; // for puts and deletes: one state per record or key
    size_t n_rejected;   // for puts and deletes: records validation refused
    int put_err;         // for puts and deletes: error answered instead, or 0
} s_item_t;

struct kmx_storage_writer {
    s_item_t items[KMX_STORAGE_BATCH_MAX]; // the batch being served
    size_t n_items;                        // requests in the batch
    kmx_store_op_t *ops;                   // the batch's valid puts and deletes (borrowed)
    kmx_put_outcome_t *outcomes;           // their outcomes, same index
    size_t n_recs;                         // changes in ops
    size_t cap_recs;                       // capacity of ops and outcomes
    uint64_t batch_wait_us;                // longest wait for more writers per batch
    size_t last_writers;                   // write requests in the last batch
    kmx_store_events_t events;             // committed events waiting to be published
    int heartbeat_ms;                      // idle time before a heartbeat
    uint64_t last_publish_ms;              // monotonic time of the last publish
    uint64_t last_check_ms;                // monotonic time of the last reader check
    int stop_seen;                         // the router said stop
    int terminated;                        // the context was shut down under us
};

static int s_error(kmx_storage_t *self, const s_item_t *item, int err, const char *msg,
                   uint8_t **out, size_t *len) {
    return kmx_storage_error(self, &item->m, err, msg, out, len);
}

// ---- put -------------------------------------------------------------------------

static int s_reserve_recs(kmx_storage_t *self, size_t extra) {
    if (self->wr->n_recs + extra <= self->wr->cap_recs)
        return 0;
    size_t cap = self->wr->cap_recs ? self->wr->cap_recs : 256;
    while (cap < self->wr->n_recs + extra)
        cap *= 2;
    kmx_store_op_t *ops = realloc(self->wr->ops, cap * sizeof *ops);
    if (!ops)
        return KMX_ERR_NOMEM;
    self->wr->ops = ops;
    kmx_put_outcome_t *outcomes = realloc(self->wr->outcomes, cap * sizeof *outcomes);
    if (!outcomes)
        return KMX_ERR_NOMEM;
    self->wr->outcomes = outcomes;
    self->wr->cap_recs = cap;
    return 0;
}

static int s_is_put(const s_item_t *item) {
    return item->m.req && item->m.req->body_case == KMX__V1__REQUEST__BODY_PUT && item->m.req->put;
}

static int s_is_delete(const s_item_t *item) {
    return item->m.req && item->m.req->body_case == KMX__V1__REQUEST__BODY_DELETE &&
           item->m.req->delete_;
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
    Kmx__V1__Record **recs = del ? item->m.req->delete_->keys : item->m.req->put->records;
    size_t n = del ? item->m.req->delete_->n_keys : item->m.req->put->n_records;
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
    if (!del && item->m.req->put->atomic && item->n_rejected > 0) {
        item->put_err = KMX_ERR_INVAL; // all or nothing: nothing of it is stored
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (item->recs[i].valid) {
            item->recs[i].slot = self->wr->n_recs;
            self->wr->ops[self->wr->n_recs].kind = del ? KMX_STORE_OP_DELETE : KMX_STORE_OP_PUT;
            self->wr->ops[self->wr->n_recs++].rec = recs[i];
        }
    }
}

// Operations statistics: records per committed transaction (only this thread writes
// them, so the maximum needs no compare-and-swap).
static void s_count_commit(kmx_storage_t *self, size_t records) {
    self->count.commit_records += records;
    if (records > self->count.commit_records_max)
        self->count.commit_records_max = records;
}

// Commits every valid put record and delete key of the batch in one transaction.
static void s_commit_writes(kmx_storage_t *self) {
    for (size_t i = 0; i < self->wr->n_items; i++) {
        s_item_t *item = &self->wr->items[i];
        if (s_is_put(item) || s_is_delete(item))
            s_prepare_write(self, item);
    }
    if (self->wr->n_recs == 0)
        return;
    int err = kmx_store_write_batch(self->store, self->wr->ops, self->wr->n_recs,
                                    self->wr->outcomes, &self->wr->events);
    if (err == 0) {
        self->count.batches++;
        s_count_commit(self, self->wr->n_recs);
        kmx_log_debug("batch committed records=%zu events=%zu last_seq=%llu", self->wr->n_recs,
                      self->wr->events.n, (unsigned long long)kmx_store_last_seq(self->store));
        return;
    }
    kmx_log_error("batch not committed records=%zu: %s", self->wr->n_recs, kmx_strerror(err));
    for (size_t i = 0; i < self->wr->n_items; i++) {
        s_item_t *item = &self->wr->items[i];
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
        const kmx_put_outcome_t *o = &self->wr->outcomes[st->slot];
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
             item->m.req->put->n_records);
    kmx_msg_set_error(&resp, &error, kmx_storage_request_id(&item->m), KMX_ERR_INVAL, msg);
    size_t k = 0;
    for (size_t i = 0; i < item->m.req->put->n_records; i++) {
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
    return s_is_delete(item) ? item->m.req->delete_->n_keys : item->m.req->put->n_records;
}

// Answers a delete that removed nothing: NOT_FOUND (or BAD_REQUEST when every key was
// invalid) listing every key's result.
static int s_delete_none(kmx_storage_t *self, s_item_t *item, Kmx__V1__RecordResult **ptrs,
                         size_t n, size_t rejected, uint8_t **out, size_t *len) {
    Kmx__V1__Response resp = KMX__V1__RESPONSE__INIT;
    Kmx__V1__Error error = KMX__V1__ERROR__INIT;
    int code = rejected == n ? KMX_ERR_INVAL : KMX_ERR_NOT_FOUND;
    kmx_msg_set_error(&resp, &error, kmx_storage_request_id(&item->m), code,
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
    resp.request_id = item->m.req->request_id;
    resp.result_case = KMX__V1__RESPONSE__RESULT_PUT;
    resp.put = put;
    return kmx_msg_pack_response(&resp, out, len);
}

// Answers a put or a delete from the batch's outcomes.
static int s_on_write(kmx_storage_t *self, s_item_t *item, uint8_t **out, size_t *len) {
    if (item->put_err == KMX_ERR_TOO_BIG)
        return s_error(self, item, KMX_ERR_TOO_BIG, "too many records in one request", out, len);
    if (item->put_err != 0 && item->put_err != KMX_ERR_INVAL) {
        char why[1024]; // the cause and the fix, e.g. no space left at the data directory
        int err = kmx_store_write_failure(self->store, item->put_err, why, sizeof why);
        return s_error(self, item, err, why, out, len);
    }
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

static void s_publish(kmx_storage_t *self, const char *topic, const uint8_t *data, size_t len) {
    if (self->wr->terminated)
        return; // the context is gone: nothing can be sent any more
    if (zmq_send(self->pub, topic, strlen(topic), ZMQ_SNDMORE) < 0 ||
        zmq_send(self->pub, data, len, 0) < 0) {
        self->wr->terminated = errno == ETERM;
        if (!self->wr->terminated)
            kmx_log_warn("publish failed topic=%s: %s", topic, zmq_strerror(errno));
        return;
    }
    self->count.published++;
    self->wr->last_publish_ms = kmx_storage_clock_ms();
}

static void s_publish_events(kmx_storage_t *self) {
    for (size_t i = 0; i < self->wr->events.n; i++) {
        const kmx_store_event_t *ev = &self->wr->events.items[i];
        s_publish(self, ev->topic, ev->data, ev->len);
    }
    kmx_store_events_fini(&self->wr->events);
}

static void s_publish_heartbeat(kmx_storage_t *self) {
    Kmx__V1__UpdateEvent ev = KMX__V1__UPDATE_EVENT__INIT;
    ev.has_seq = ev.has_type = ev.has_committed_ms = 1;
    ev.seq = kmx_store_last_seq(self->store);
    ev.type = KMX__V1__EVENT_TYPE__HEARTBEAT;
    ev.topic = S_HEARTBEAT_TOPIC;
    ev.committed_ms = kmx_storage_wall_ms();
    uint8_t buf[64];
    size_t len = kmx__v1__update_event__pack(&ev, buf);
    s_publish(self, S_HEARTBEAT_TOPIC, buf, len);
}

static void s_batch_clear(kmx_storage_t *self) {
    for (size_t i = 0; i < self->wr->n_items; i++) {
        s_item_t *item = &self->wr->items[i];
        kmx_storage_req_clear(&item->m);
        free(item->recs);
        item->recs = NULL;
    }
    self->wr->n_items = 0;
    self->wr->n_recs = 0;
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
    while (self->wr->n_items < KMX_STORAGE_BATCH_MAX && d->records < KMX_STORAGE_BATCH_RECORDS) {
        s_item_t *item = &self->wr->items[self->wr->n_items];
        memset(item, 0, sizeof *item);
        int got_one =
            kmx_storage_recv(self->writer_sock, ZMQ_DONTWAIT, &item->m, &self->wr->terminated);
        if (got_one == 2) { // the router's stop: serve what came before it, then end
            self->wr->stop_seen = 1;
            break;
        }
        if (got_one <= 0)
            break;
        self->wr->n_items++;
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
    if (d->writers == 0 || self->wr->batch_wait_us == 0 || self->wr->last_writers < 2)
        return;
    self->count.waits++;
    uint64_t deadline = kmx_storage_clock_us() + self->wr->batch_wait_us;
    while (!self->wr->terminated && !self->wr->stop_seen &&
           self->wr->n_items < KMX_STORAGE_BATCH_MAX && d->records < KMX_STORAGE_BATCH_RECORDS) {
        s_drain(self, d);
        if (d->writers >= self->wr->last_writers)
            break;
        uint64_t now = kmx_storage_clock_us();
        if (now >= deadline)
            break;
        uint64_t slice = deadline - now < S_WAIT_SLICE_US ? deadline - now : S_WAIT_SLICE_US;
        struct timespec ts = {0, (long)(slice * 1000u)};
        nanosleep(&ts, NULL);
    }
}

// Drains waiting requests (bounded), commits, replies, then publishes.
// Answers every request of the batch: puts and deletes from the commit's outcomes; a
// request the router should not have sent here is answered as unsupported.
static void s_reply_all(kmx_storage_t *self) {
    for (size_t i = 0; i < self->wr->n_items; i++) {
        s_item_t *item = &self->wr->items[i];
        if (!item->m.has_corr) {
            kmx_log_debug("dropped a message without a correlation id");
            continue;
        }
        uint8_t *body = NULL;
        size_t len = 0;
        int handled = 0;
        self->count.requests++;
        int err = kmx_storage_bad_request(self, &item->m, &body, &len, &handled);
        if (!handled && s_is_put(item))
            err = s_on_put(self, item, &body, &len);
        else if (!handled && s_is_delete(item))
            err = s_on_delete(self, item, &body, &len);
        else if (!handled)
            err = s_error(self, item, KMX_ERR_UNSUPPORTED, "the writer takes put and delete only",
                          &body, &len);
        if (err != 0) {
            kmx_log_error("could not build a reply type=%s",
                          item->m.req ? kmx_msg_body_name(item->m.req) : "none");
            continue;
        }
        kmx_storage_send(self->writer_sock, &item->m, body, len);
        free(body);
    }
}

static void s_serve_batch(kmx_storage_t *self) {
    s_drain_t d = {0, 0};
    s_drain(self, &d);
    s_gather(self, &d);
    self->wr->last_writers = d.writers;
    kmx_storage_debug_write_delay(self); // tests only, off by default
    s_commit_writes(self);
    s_reply_all(self);
    s_publish_events(self);
    s_batch_clear(self);
}
// ---- the thread --------------------------------------------------------------------

int kmx_storage_writer_new(kmx_storage_t *self, const kmx_storage_config_t *cfg) {
    self->wr = calloc(1, sizeof *self->wr);
    if (!self->wr)
        return KMX_ERR_NOMEM;
    kmx_store_events_init(&self->wr->events);
    self->wr->heartbeat_ms = cfg->heartbeat_ms > 0 ? cfg->heartbeat_ms : KMX_STORAGE_HEARTBEAT_MS;
    self->wr->batch_wait_us = cfg->batch_wait_us;
    self->wr->last_publish_ms = self->wr->last_check_ms = kmx_storage_clock_ms();
    return 0;
}

void kmx_storage_writer_destroy(kmx_storage_t *self) {
    if (!self->wr)
        return;
    s_batch_clear(self);
    kmx_store_events_fini(&self->wr->events);
    free(self->wr->ops);
    free(self->wr->outcomes);
    free(self->wr);
    self->wr = NULL;
}

// Clears reader slots of processes that died inside a read transaction (a killed
// `kmx-storage backup`, say), so they never pin old pages of the map.
static void s_reader_check(kmx_storage_t *self) {
    self->wr->last_check_ms = kmx_storage_clock_ms();
    int dead = 0;
    if (kmx_store_reader_check(self->store, &dead) == 0 && dead > 0)
        kmx_log_warn("cleared stale lmdb readers count=%d", dead);
}

void *kmx_storage_writer_main(void *arg) {
    kmx_storage_t *self = arg;
    kmx_storage_writer_t *w = self->wr;
    kmx_proc_name_thread("kmx-writer");
    while (!w->stop_seen && !w->terminated) {
        uint64_t idle = kmx_storage_clock_ms() - w->last_publish_ms;
        long timeout = idle >= (uint64_t)w->heartbeat_ms ? 0 : (long)(w->heartbeat_ms - idle);
        zmq_pollitem_t items[] = {{self->writer_sock, 0, ZMQ_POLLIN, 0}};
        int rc = zmq_poll(items, 1, timeout);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0) {
            if (errno != ETERM)
                kmx_log_error("writer poll failed: %s", zmq_strerror(errno));
            break;
        }
        if (items[0].revents & ZMQ_POLLIN)
            s_serve_batch(self);
        uint64_t now = kmx_storage_clock_ms();
        if (now - w->last_publish_ms >= (uint64_t)w->heartbeat_ms)
            s_publish_heartbeat(self);
        if (now - w->last_check_ms >= KMX_STORAGE_READER_CHECK_MS)
            s_reader_check(self);
    }
    return NULL;
}
