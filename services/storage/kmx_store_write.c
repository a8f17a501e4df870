/*  kmx_store_write - the write side of kmx_store: one write transaction per batch keeps
    records, indexes, roll-ups, the event log and last_seq consistent, so a sequence number
    exists on disk exactly when its change does. Only the one writer thread calls these.  */
#include "kmx_store.h"

#include "kmx_store_int.h"

#include "kmx_err.h"
#include "kmx_log.h"
#include "kmx_mem.h"
#include "kmx_schema.h"

#include <errno.h>
#include <lmdb.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_GROW_ATTEMPTS 32 // map doublings tried before a batch gives up

#define S_TRIM_MAX 10000 // old events dropped per batch at most (bounds the transaction)

// State of one write transaction in kmx_store_put_batch.
typedef struct {
    kmx_store_t *store;         // the store being written
    MDB_txn *txn;               // the open write transaction
    uint64_t seq;               // last sequence number assigned so far
    uint64_t now_ms;            // commit time stamped on records and events
    kmx_store_events_t *events; // where committed events go; may be NULL
    int mdb_rc;                 // the LMDB error that ended the transaction, or 0
} s_batch_t;

static uint64_t s_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

// ---- event lists ---------------------------------------------------------------

void kmx_store_events_init(kmx_store_events_t *events) {
    memset(events, 0, sizeof *events);
}

static void s_events_truncate(kmx_store_events_t *events, size_t n) {
    while (events->n > n) {
        events->n--;
        free(events->items[events->n].data);
        events->items[events->n].data = NULL;
    }
}

void kmx_store_events_fini(kmx_store_events_t *events) {
    if (!events)
        return;
    s_events_truncate(events, 0);
    free(events->items);
    memset(events, 0, sizeof *events);
}

// ---- writing ---------------------------------------------------------------------

// Fails the transaction with an LMDB code, remembering it for the retry decision.
static int s_batch_fail(s_batch_t *b, int rc, const char *what) {
    b->mdb_rc = rc;
    if (rc == MDB_MAP_FULL || rc == MDB_MAP_RESIZED)
        return KMX_ERR_FULL; // handled by the caller, which grows the map
    return kmx_store_mdb_err(rc, what);
}

// Stores rec under key as the change with sequence b->seq. With MDB_NOOVERWRITE a key
// already present is left alone: MDB_KEYEXIST is returned, *old_val then points at the
// stored value, and nothing was written. Returns 0, MDB_KEYEXIST or a kmx code.
static int s_write_record(s_batch_t *b, MDB_val *key, Kmx__V1__Record *rec, unsigned flags,
                          MDB_val *old_val) {
    Kmx__V1__StoredRecord stored = KMX__V1__STORED_RECORD__INIT;
    stored.record = rec;
    stored.has_seq = stored.has_updated_ms = 1;
    stored.seq = b->seq;
    stored.updated_ms = b->now_ms;
    MDB_val val = {kmx__v1__stored_record__get_packed_size(&stored), NULL};
    int rc = mdb_put(b->txn, b->store->records, key, &val, flags | MDB_RESERVE);
    if (rc == MDB_KEYEXIST && (flags & MDB_NOOVERWRITE)) {
        *old_val = val;
        return MDB_KEYEXIST;
    }
    if (rc != 0)
        return s_batch_fail(b, rc, "put record");
    kmx__v1__stored_record__pack(&stored, val.mv_data);
    return 0;
}

// Keeps a committed-to-be event for publishing after the commit; takes data.
static int s_keep_event(s_batch_t *b, const char *topic, uint8_t *data, size_t len) {
    kmx_store_events_t *list = b->events;
    if (!list) {
        free(data);
        return 0;
    }
    if (kmx_reserve((void **)&list->items, &list->cap, list->n, sizeof *list->items, 16) != 0) {
        free(data);
        return KMX_ERR_NOMEM;
    }
    kmx_store_event_t *slot = &list->items[list->n++];
    size_t tlen = strnlen(topic, sizeof slot->topic - 1);
    memcpy(slot->topic, topic, tlen);
    slot->topic[tlen] = '\0';
    slot->data = data;
    slot->len = len;
    slot->seq = b->seq;
    return 0;
}

static int s_write_event(s_batch_t *b, Kmx__V1__EventType type, const char *topic,
                         Kmx__V1__Record *rec, Kmx__V1__Value *previous) {
    Kmx__V1__UpdateEvent ev = KMX__V1__UPDATE_EVENT__INIT;
    ev.has_seq = ev.has_type = ev.has_committed_ms = 1;
    ev.seq = b->seq;
    ev.type = type;
    ev.topic = (char *)topic;
    ev.record = rec;
    ev.previous = previous;
    ev.committed_ms = b->now_ms;
    size_t len = kmx__v1__update_event__get_packed_size(&ev);
    uint8_t *data = malloc(len ? len : 1);
    if (!data)
        return KMX_ERR_NOMEM;
    kmx__v1__update_event__pack(&ev, data);
    uint8_t kbuf[8];
    kmx_rkey_event(b->seq, kbuf);
    MDB_val key = {sizeof kbuf, kbuf}, val = {len, data};
    int rc = mdb_put(b->txn, b->store->events, &key, &val, MDB_APPEND);
    if (rc != 0) {
        free(data);
        return s_batch_fail(b, rc, "append event");
    }
    return s_keep_event(b, topic, data, len);
}

// Decodes a stored value. A value that does not decode fails the batch: its derived
// entries could not be taken out exactly.
static int s_decode_old(const MDB_val *val, Kmx__V1__StoredRecord **old) {
    *old = kmx__v1__stored_record__unpack(NULL, val->mv_size, val->mv_data);
    if (!*old || !(*old)->record || !(*old)->record->value) {
        kmx_log_error("stored record does not decode; run kmx-storage check");
        if (*old)
            kmx__v1__stored_record__free_unpacked(*old, NULL);
        *old = NULL;
        return KMX_ERR_DECODE;
    }
    return 0;
}

// Reads the stored version of key, if any. *old is NULL when absent.
static int s_read_old(s_batch_t *b, MDB_val *key, Kmx__V1__StoredRecord **old) {
    MDB_val val;
    *old = NULL;
    int rc = mdb_get(b->txn, b->store->records, key, &val);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return s_batch_fail(b, rc, "get record");
    return s_decode_old(&val, old);
}

// Updates indexes and roll-ups for one change: old (may be NULL, last changed at old_seq)
// is replaced by rec (may be NULL for a delete), whose change takes b->seq. Index entries
// carry the sequence of the record's last change, so an update moves them to the new one.
static int s_write_derived(s_batch_t *b, MDB_val *key, const Kmx__V1__Record *old, uint64_t old_seq,
                           const Kmx__V1__Record *rec) {
    const kmx_derived_dbs_t *d = &b->store->derived;
    int rc = 0;
    if (old)
        rc = kmx_derived_index(b->txn, d, key, old_seq, old, 0);
    if (rc == 0 && rec)
        rc = kmx_derived_index(b->txn, d, key, b->seq, rec, 1);
    if (rc == 0 && old)
        rc = kmx_derived_pending_add(b->store->pending, old, -1);
    if (rc == 0 && rec)
        rc = kmx_derived_pending_add(b->store->pending, rec, +1);
    if (rc == 0 && old)
        rc = kmx_catalog_pending_add(b->store->cpend, old, -1);
    if (rc == 0 && rec)
        rc = kmx_catalog_pending_add(b->store->cpend, rec, +1);
    if (rc == 0)
        rc = kmx_catalog_history_add(b->txn, &b->store->catalog, key, b->seq);
    return rc == 0 ? 0 : s_batch_fail(b, rc, "update indexes, roll-ups and catalog");
}

// Whether rec is an earlier revision than stored: both carry a status and rec's comes
// before stored's in preliminary -> revised -> final.
static int s_superseded(const Kmx__V1__Record *stored, const Kmx__V1__Record *rec) {
    return stored->has_status && rec->has_status &&
           rec->status != KMX__V1__STATUS__STATUS_UNSPECIFIED && rec->status < stored->status;
}

// Replaces the stored old with rec, unless they hold the same content or rec is an
// earlier revision of the figure (a preliminary figure never replaces a revised one).
static int s_update_one(s_batch_t *b, MDB_val *key, const char *topic, Kmx__V1__Record *rec,
                        const MDB_val *old_val, kmx_put_outcome_t *outcome) {
    Kmx__V1__StoredRecord *old = NULL;
    int err = s_decode_old(old_val, &old);
    if (err != 0)
        return err;
    int superseded = s_superseded(old->record, rec);
    if (superseded || kmx_record_same_content(old->record, rec)) {
        outcome->outcome = KMX__V1__RECORD_RESULT__OUTCOME__UNCHANGED;
        outcome->superseded = superseded;
        kmx__v1__stored_record__free_unpacked(old, NULL);
        return 0;
    }
    b->seq++;
    err = s_write_record(b, key, rec, 0, NULL);
    if (err == 0)
        err = s_write_derived(b, key, old->record, old->seq, rec);
    if (err == 0)
        err = s_write_event(b, KMX__V1__EVENT_TYPE__UPSERT, topic, rec, old->record->value);
    kmx__v1__stored_record__free_unpacked(old, NULL);
    if (err != 0)
        return err;
    outcome->outcome = KMX__V1__RECORD_RESULT__OUTCOME__STORED;
    outcome->seq = b->seq;
    return 0;
}

// Inserts rec, or hands it to s_update_one when its key is present. The insert is tried
// first (MDB_NOOVERWRITE), so a new record costs one descent of the records tree.
static int s_put_one(s_batch_t *b, Kmx__V1__Record *rec, kmx_put_outcome_t *outcome) {
    uint8_t kbuf[KMX_RKEY_MAX];
    char topic[KMX_TOPIC_MAX];
    size_t klen = 0;
    if (!rec || !rec->value || kmx_rkey_record(rec, kbuf, sizeof kbuf, &klen) != 0 ||
        kmx_record_topic(rec, topic, sizeof topic) != 0)
        return 0;
    MDB_val key = {klen, kbuf}, old_val = {0, NULL};
    b->seq++;
    int err = s_write_record(b, &key, rec, MDB_NOOVERWRITE, &old_val);
    if (err == MDB_KEYEXIST) {
        b->seq--; // nothing was written; the update takes its sequence if it changes
        return s_update_one(b, &key, topic, rec, &old_val, outcome);
    }
    if (err == 0)
        err = s_write_derived(b, &key, NULL, 0, rec);
    if (err == 0)
        err = s_write_event(b, KMX__V1__EVENT_TYPE__UPSERT, topic, rec, NULL);
    if (err != 0)
        return err;
    outcome->outcome = KMX__V1__RECORD_RESULT__OUTCOME__STORED;
    outcome->seq = b->seq;
    return 0;
}

static int s_delete_one(s_batch_t *b, Kmx__V1__Record *rec, kmx_put_outcome_t *outcome) {
    uint8_t kbuf[KMX_RKEY_MAX];
    char topic[KMX_TOPIC_MAX];
    size_t klen = 0;
    if (!rec || kmx_rkey_record(rec, kbuf, sizeof kbuf, &klen) != 0)
        return 0;
    MDB_val key = {klen, kbuf};
    Kmx__V1__StoredRecord *old = NULL;
    int err = s_read_old(b, &key, &old);
    if (err != 0 || !old) {
        outcome->outcome = KMX__V1__RECORD_RESULT__OUTCOME__NOT_FOUND;
        return err;
    }
    err = kmx_record_topic(old->record, topic, sizeof topic) != 0 ? KMX_ERR_STORAGE : 0;
    b->seq++;
    int rc = err == 0 ? mdb_del(b->txn, b->store->records, &key, NULL) : 0;
    if (rc != 0)
        err = s_batch_fail(b, rc, "delete record");
    if (err == 0)
        err = s_write_derived(b, &key, old->record, old->seq, NULL);
    if (err == 0)
        err = s_write_event(b, KMX__V1__EVENT_TYPE__DELETE, topic, old->record, old->record->value);
    kmx__v1__stored_record__free_unpacked(old, NULL);
    if (err != 0)
        return err;
    outcome->outcome = KMX__V1__RECORD_RESULT__OUTCOME__STORED;
    outcome->seq = b->seq;
    return 0;
}

static int s_write_last_seq(s_batch_t *b) {
    uint8_t buf[8];
    kmx_store_put_be(buf, b->seq, 8);
    MDB_val key = {strlen(KMX_META_LAST_SEQ), KMX_META_LAST_SEQ}, val = {sizeof buf, buf};
    int rc = mdb_put(b->txn, b->store->meta, &key, &val, 0);
    return rc == 0 ? 0 : s_batch_fail(b, rc, "put last_seq");
}

// Drops the oldest events beyond the retention (at most S_TRIM_MAX per batch, so one
// batch after lowering the retention stays small; later batches finish the job).
static int s_trim_events(s_batch_t *b) {
    uint64_t keep = b->store->retain_events;
    if (keep == 0 || b->seq <= keep)
        return 0;
    uint64_t cutoff = b->seq - keep; // events with seq <= cutoff go
    MDB_cursor *cur = NULL;
    int rc = mdb_cursor_open(b->txn, b->store->events, &cur);
    if (rc != 0)
        return s_batch_fail(b, rc, "cursor open");
    MDB_val key, val;
    uint64_t seq = 0;
    size_t dropped = 0;
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0 && dropped < S_TRIM_MAX;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        if (kmx_rkey_event_seq(key.mv_data, key.mv_size, &seq) != 0 || seq > cutoff)
            break;
        if ((rc = mdb_cursor_del(cur, 0)) != 0)
            break;
        dropped++;
    }
    mdb_cursor_close(cur);
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : s_batch_fail(b, rc, "trim events");
}

// Runs the whole batch in one write transaction. Returns 0 once committed.
static int s_write_txn(s_batch_t *b, const kmx_store_op_t *ops, size_t n,
                       kmx_put_outcome_t *outcomes) {
    int rc = mdb_txn_begin(b->store->env, NULL, 0, &b->txn);
    if (rc != 0) {
        b->txn = NULL;
        return s_batch_fail(b, rc, "begin");
    }
    int err = 0;
    kmx_derived_pending_clear(b->store->pending);
    kmx_catalog_pending_clear(b->store->cpend);
    for (size_t i = 0; i < n && err == 0; i++) {
        outcomes[i].outcome = KMX__V1__RECORD_RESULT__OUTCOME__REJECTED;
        outcomes[i].seq = 0;
        outcomes[i].superseded = 0;
        if (ops[i].kind == KMX_STORE_OP_DELETE)
            err = s_delete_one(b, ops[i].rec, &outcomes[i]);
        else
            err = s_put_one(b, ops[i].rec, &outcomes[i]);
    }
    if (err == 0 &&
        (rc = kmx_derived_pending_flush(b->txn, &b->store->derived, b->store->pending)) != 0)
        err = s_batch_fail(b, rc, "update roll-ups");
    if (err == 0 &&
        (rc = kmx_catalog_pending_flush(b->txn, &b->store->catalog, b->store->cpend)) != 0)
        err = s_batch_fail(b, rc, "update catalog");
    if (err == 0 && b->seq != b->store->last_seq)
        err = s_write_last_seq(b);
    if (err == 0)
        err = s_trim_events(b);
    if (err != 0) {
        mdb_txn_abort(b->txn);
        b->txn = NULL;
        return err;
    }
    rc = mdb_txn_commit(b->txn);
    b->txn = NULL;
    return rc == 0 ? 0 : s_batch_fail(b, rc, "commit");
}

// Grows the map after MDB_MAP_FULL (or adopts another process's size after
// MDB_MAP_RESIZED). The writer holds no transaction now, and the map gate waits out the
// readers' transactions.
static int s_grow_map(kmx_store_t *self, int mdb_rc) {
    size_t next = 0;
    if (mdb_rc == MDB_MAP_FULL) {
        size_t max = self->map_size_max;
        if (self->map_size > SIZE_MAX / 2 || (max && self->map_size >= max)) {
            kmx_log_error("lmdb map is full and may not grow map_size=%zu", self->map_size);
            return KMX_ERR_FULL;
        }
        next = self->map_size * 2;
        if (max && next > max)
            next = max;
    }
    int rc = kmx_store_resize_map(self, next);
    if (rc != 0)
        return kmx_store_mdb_err(rc, "set mapsize");
    MDB_envinfo info;
    if ((rc = mdb_env_info(self->env, &info)) != 0)
        return kmx_store_mdb_err(rc, "env info");
    kmx_log_info("lmdb map grown from=%zu to=%zu", self->map_size, info.me_mapsize);
    self->map_size = info.me_mapsize;
    return 0;
}

int kmx_store_write_batch(kmx_store_t *self, const kmx_store_op_t *ops, size_t n,
                          kmx_put_outcome_t *outcomes, kmx_store_events_t *events) {
    if (!self || (n > 0 && (!ops || !outcomes)))
        return KMX_ERR_INVAL;
    if (self->readonly)
        return KMX_ERR_UNSUPPORTED;
    size_t base = events ? events->n : 0;
    for (int attempt = 0; attempt < S_GROW_ATTEMPTS; attempt++) {
        s_batch_t b = {self, NULL, self->last_seq, s_now_ms(), events, 0};
        int err = s_write_txn(&b, ops, n, outcomes);
        if (err == 0) {
            self->last_seq = b.seq;
            kmx_store_alt_committed(self);
            return 0;
        }
        if (events)
            s_events_truncate(events, base);
        if (b.mdb_rc != MDB_MAP_FULL && b.mdb_rc != MDB_MAP_RESIZED)
            return err;
        if ((err = s_grow_map(self, b.mdb_rc)) != 0)
            return err;
    }
    kmx_log_error("write batch gave up after %d map resizes", S_GROW_ATTEMPTS);
    return KMX_ERR_FULL;
}

int kmx_store_put_batch(kmx_store_t *self, Kmx__V1__Record **recs, size_t n,
                        kmx_put_outcome_t *outcomes, kmx_store_events_t *events) {
    if (!self || (n > 0 && (!recs || !outcomes)))
        return KMX_ERR_INVAL;
    kmx_store_op_t *ops = calloc(n ? n : 1, sizeof *ops);
    if (!ops)
        return KMX_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        ops[i].kind = KMX_STORE_OP_PUT;
        ops[i].rec = recs[i];
    }
    int err = kmx_store_write_batch(self, ops, n, outcomes, events);
    free(ops);
    return err;
}
