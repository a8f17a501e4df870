/*  kmx_store_alt - the store's alternative measurements (kmx_alt.h), for answers that
    must not add them: the records that have an alternative, kept in memory as immutable
    versions, each tagged with the sequence it describes.

    A writable store builds the first version at open, on a thread of its own (the
    builder), with one walk over the records (records of one kind, period, market and
    category are adjacent in key order, so the walk compares each such run only within
    itself); a check that comes before it is done waits for it rather than walking too.
    After that the builder follows the store without walking it again: the writer only
    wakes it after each commit, and the builder brings the version forward from the event
    log, in a read transaction of its own, reading for every changed record the state of
    its quantity's key range (the run, then the item without its annotation: the only
    records it can be an alternative of), and publishes the next version. So the import
    never waits for the alternatives. A reader whose snapshot is newer than the version
    waits (a bounded while, holding no transaction) for the builder to publish one at
    least as new, and when the builder is not following (held by a test, or its last
    round failed) or the wait runs out, brings the version forward from the event log
    itself: no check is answered from a version older than its snapshot. So no check
    walks the records, the first one after an import included: a check costs the matching
    of the few records that have alternatives. Safe from any thread: the versions are
    immutable and reference-counted, one mutex guards which is current.  */
#include "kmx_store_int.h"

#include "kmx_alt.h"
#include "kmx_err.h"
#include "kmx_log.h"
#include "kmx_mem.h"
#include "kmx_proc.h"
#include "kmx_rkey.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_WAIT_MS 1000          // longest wait for the builder's next version
#define S_CATCH_UP_MAX 1000000u // events a reader replays before it walks the records instead
#define S_STOP_EVERY 4096u      // records walked between looks at the stop flag

// One record that has an alternative, shared by the versions that hold it.
typedef struct {
    atomic_uint refs;          // versions holding it
    uint8_t key[KMX_RKEY_MAX]; // its record key
    size_t klen;               // bytes in key
    Kmx__V1__StoredRecord *sr; // the record (owned)
} s_ent_t;

// The records that have an alternative as of one sequence, sorted by key. Immutable.
typedef struct {
    atomic_uint refs; // the store's current pointer and each reader using it
    uint64_t seq;     // the sequence it describes
    s_ent_t **e;      // n entries, sorted by key
    size_t n;         // entries
} s_ver_t;

// What one quantity's key range holds after a change: its records with an alternative.
typedef struct {
    uint8_t prefix[KMX_RKEY_MAX]; // run prefix, then the item's quantity name
    size_t plen;                  // bytes in prefix
    size_t item_at;               // where the item starts in prefix
    s_ent_t **e;                  // the range's entries now, sorted by key (owned refs)
    size_t n, cap;                // held and allocated
} s_note_t;

// The notes of one catch-up, one per changed record whose range matters.
typedef struct {
    s_note_t *v;   // n notes
    size_t n, cap; // taken and allocated
} s_notes_t;

struct kmx_store_alt {
    pthread_mutex_t mutex; // guards cur, building, follows and held
    pthread_cond_t cond;   // signalled when cur, building, follows or held change, or a commit
    s_ver_t *cur;          // the newest version, or NULL before the first is built
    int building;          // the builder has not built the first version yet
    int follows;           // the builder brings cur forward after each commit
    int held;              // the builder starts no round (kmx_store_alt_hold, for tests)
    pthread_t builder;     // that thread, when started (kmx_store_alt_start)
    int builder_started;   // it was started and is not joined yet
    atomic_int stop;       // set at close: the builder ends, a walk or catch-up gives up
    atomic_uint walks;     // walks over all records a check made itself since open
};

// ---- entries and versions ----------------------------------------------------------

static void s_ent_unref(s_ent_t *e) {
    if (e && atomic_fetch_sub(&e->refs, 1) == 1) {
        kmx__v1__stored_record__free_unpacked(e->sr, NULL);
        free(e);
    }
}

static s_ent_t *s_ent_ref(s_ent_t *e) {
    atomic_fetch_add(&e->refs, 1);
    return e;
}

static void s_ver_unref(s_ver_t *v) {
    if (!v || atomic_fetch_sub(&v->refs, 1) != 1)
        return;
    for (size_t i = 0; i < v->n; i++)
        s_ent_unref(v->e[i]);
    free(v->e);
    free(v);
}

static s_ver_t *s_ver_new(uint64_t seq) {
    s_ver_t *v = calloc(1, sizeof *v);
    if (v) {
        atomic_init(&v->refs, 1);
        v->seq = seq;
    }
    return v;
}

static int s_key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen) {
    int c = memcmp(a, b, alen < blen ? alen : blen);
    return c != 0 ? c : (alen > blen) - (alen < blen);
}

kmx_store_alt_t *kmx_store_alt_new(void) {
    kmx_store_alt_t *alt = calloc(1, sizeof *alt);
    if (!alt)
        return NULL;
    if (pthread_mutex_init(&alt->mutex, NULL) != 0) {
        free(alt);
        return NULL;
    }
    if (pthread_cond_init(&alt->cond, NULL) != 0) {
        pthread_mutex_destroy(&alt->mutex);
        free(alt);
        return NULL;
    }
    return alt;
}

static void s_notes_fini(s_notes_t *notes) {
    for (size_t i = 0; i < notes->n; i++) {
        for (size_t k = 0; k < notes->v[i].n; k++)
            s_ent_unref(notes->v[i].e[k]);
        free(notes->v[i].e);
    }
    free(notes->v);
    memset(notes, 0, sizeof *notes);
}

void kmx_store_alt_destroy(kmx_store_alt_t **alt_p) {
    if (!alt_p || !*alt_p)
        return;
    kmx_store_alt_t *alt = *alt_p;
    s_ver_unref(alt->cur);
    pthread_cond_destroy(&alt->cond);
    pthread_mutex_destroy(&alt->mutex);
    free(alt);
    *alt_p = NULL;
}

// ---- keys ------------------------------------------------------------------------

// Finds where the item text starts in a record key ([kind][start][end] market 0
// category 0 item 0 ...) and its length. Returns 0, or -1 for a key without one.
static int s_key_item(const uint8_t *k, size_t n, size_t *at, size_t *len) {
    size_t i = 9;
    int zeros = 0;
    for (; i < n && zeros < 2; i++)
        zeros += k[i] == 0;
    if (zeros < 2)
        return -1;
    size_t end = i;
    while (end < n && k[end] != 0)
        end++;
    *at = i;
    *len = end - i;
    return 0;
}

// The length of an item's quantity name (kmx_alt_item_base) for item bytes without a
// terminating NUL.
static size_t s_item_base(const uint8_t *item, size_t len) {
    char buf[KMX_RKEY_MAX + 1];
    memcpy(buf, item, len);
    buf[len] = '\0';
    return kmx_alt_item_base(buf);
}

// Fills note's prefix for key: the run, then the item's quantity name.
static int s_note_prefix(s_note_t *note, const uint8_t *key, size_t klen) {
    size_t at = 0, len = 0;
    if (s_key_item(key, klen, &at, &len) != 0)
        return -1;
    note->item_at = at;
    note->plen = at + s_item_base(key + at, len);
    memcpy(note->prefix, key, note->plen);
    return 0;
}

// Whether key belongs to note's quantity range: it starts with the prefix and its item's
// quantity name is exactly the prefix's.
static int s_in_range(const s_note_t *note, const uint8_t *key, size_t klen) {
    if (klen < note->plen || memcmp(key, note->prefix, note->plen) != 0)
        return 0;
    size_t at = 0, len = 0;
    if (s_key_item(key, klen, &at, &len) != 0 || at != note->item_at)
        return 0;
    return at + s_item_base(key + at, len) == note->plen;
}

// ---- reading a quantity's range ----------------------------------------------------

typedef struct {
    MDB_val *keys;               // candidates' keys (point into the transaction)
    Kmx__V1__StoredRecord **sr;  // decoded candidates
    const Kmx__V1__Record **rec; // their records
    unsigned char *marks;        // kmx_alt_mark's answer
    size_t n, cap;               // held and allocated
} s_cands_t;

static void s_cands_fini(s_cands_t *c) {
    for (size_t i = 0; i < c->n; i++)
        if (c->sr[i])
            kmx__v1__stored_record__free_unpacked(c->sr[i], NULL);
    free(c->keys);
    free(c->sr);
    free(c->rec);
    free(c->marks);
}

static int s_cands_push(s_cands_t *c, const MDB_val *key, const MDB_val *val) {
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        MDB_val *k = realloc(c->keys, cap * sizeof *k);
        if (k)
            c->keys = k;
        Kmx__V1__StoredRecord **s = k ? realloc(c->sr, cap * sizeof *s) : NULL;
        if (s)
            c->sr = s;
        const Kmx__V1__Record **r = s ? realloc(c->rec, cap * sizeof *r) : NULL;
        if (r)
            c->rec = r;
        unsigned char *m = r ? realloc(c->marks, cap) : NULL;
        if (!m)
            return KMX_ERR_NOMEM;
        c->marks = m;
        c->cap = cap;
    }
    Kmx__V1__StoredRecord *sr = kmx__v1__stored_record__unpack(NULL, val->mv_size, val->mv_data);
    if (!sr || !sr->record || !sr->record->value || !sr->record->period) {
        if (sr)
            kmx__v1__stored_record__free_unpacked(sr, NULL);
        return 0; // kmx-storage check reports records that do not decode
    }
    c->keys[c->n] = *key;
    c->sr[c->n] = sr;
    c->rec[c->n++] = sr->record;
    return 0;
}

// Moves the marked candidates into entries (sorted: candidates are in key order).
static int s_keep_marked(s_cands_t *c, s_ent_t ***e, size_t *n, size_t *cap) {
    int marked = kmx_alt_mark(c->rec, c->n, c->marks);
    if (marked < 0)
        return marked;
    for (size_t i = 0; i < c->n && marked > 0; i++) {
        if (!c->marks[i] || c->keys[i].mv_size > KMX_RKEY_MAX)
            continue;
        s_ent_t *ent = calloc(1, sizeof *ent);
        if (!ent || kmx_reserve((void **)e, cap, *n, sizeof **e, 8) != 0) {
            free(ent);
            return KMX_ERR_NOMEM;
        }
        atomic_init(&ent->refs, 1);
        memcpy(ent->key, c->keys[i].mv_data, c->keys[i].mv_size);
        ent->klen = c->keys[i].mv_size;
        ent->sr = c->sr[i];
        c->sr[i] = NULL;
        (*e)[(*n)++] = ent;
    }
    return 0;
}

// Reads note's range with cur (a records cursor) and keeps its records that have an
// alternative. A range of one record (the usual case) is not decoded.
static int s_read_range(MDB_cursor *cur, s_note_t *note) {
    s_cands_t c = {0};
    int err = 0, rc = 0;
    for (int pass = 0; pass < 2 && err == 0; pass++) { // count, then decode when 2 or more
        size_t in = 0;
        MDB_val key = {note->plen, note->prefix}, val;
        for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
             rc == 0 && err == 0 && (pass == 1 || in < 2) && key.mv_size >= note->plen &&
             memcmp(key.mv_data, note->prefix, note->plen) == 0;
             rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
            if (!s_in_range(note, key.mv_data, key.mv_size))
                continue;
            in++;
            if (pass == 1)
                err = s_cands_push(&c, &key, &val);
        }
        if (err == 0 && rc != 0 && rc != MDB_NOTFOUND)
            err = kmx_store_mdb_err(rc, "alternatives range");
        if (pass == 0 && in < 2)
            break;
    }
    if (err == 0 && c.n >= 2)
        err = s_keep_marked(&c, &note->e, &note->n, &note->cap);
    s_cands_fini(&c);
    return err;
}

static int s_ent_cmp(const void *x, const void *y) {
    const s_ent_t *a = *(s_ent_t *const *)x, *b = *(s_ent_t *const *)y;
    return s_key_cmp(a->key, a->klen, b->key, b->klen);
}

// Whether base holds an entry of note's range (base is sorted by key).
static int s_ver_touches(const s_ver_t *base, const s_note_t *note) {
    size_t lo = 0, hi = base ? base->n : 0;
    while (lo < hi) { // the first entry not below the prefix
        size_t mid = lo + (hi - lo) / 2;
        if (s_key_cmp(base->e[mid]->key, base->e[mid]->klen, note->prefix, note->plen) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (; base && lo < base->n; lo++) {
        const s_ent_t *e = base->e[lo];
        if (e->klen < note->plen || memcmp(e->key, note->prefix, note->plen) != 0)
            return 0;
        if (s_in_range(note, e->key, e->klen))
            return 1;
    }
    return 0;
}

// Notes the state of key's quantity range as cur's transaction sees it, unless nothing
// changes for base: the range has no alternatives now and had none in base (the usual case).
static int s_note(s_notes_t *notes, MDB_cursor *cur, const s_ver_t *base, const uint8_t *key,
                  size_t klen) {
    if (kmx_reserve((void **)&notes->v, &notes->cap, notes->n, sizeof *notes->v, 16) != 0)
        return KMX_ERR_NOMEM;
    s_note_t *note = &notes->v[notes->n];
    memset(note, 0, sizeof *note);
    if (s_note_prefix(note, key, klen) != 0)
        return 0; // not a record key
    int err = s_read_range(cur, note);
    if (err == 0 && note->n == 0 && !s_ver_touches(base, note))
        return 0; // nothing to note; the slot is reused
    notes->n++;
    return err;
}

static int s_prefix_cmp(const s_note_t *a, const uint8_t *prefix, size_t plen) {
    return s_key_cmp(a->prefix, a->plen, prefix, plen);
}

// Orders notes by prefix, then by the order they were taken (their place in one array).
static int s_note_order(const void *x, const void *y) {
    const s_note_t *a = *(const s_note_t *const *)x, *b = *(const s_note_t *const *)y;
    int c = s_prefix_cmp(a, b->prefix, b->plen);
    return c != 0 ? c : (a > b) - (a < b);
}

// Whether a note (order: sorted by s_note_order) has the range of key.
static int s_noted(const s_note_t *const *order, size_t n, const uint8_t *key, size_t klen) {
    s_note_t probe;
    if (s_note_prefix(&probe, key, klen) != 0)
        return 0;
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = s_prefix_cmp(order[mid], probe.prefix, probe.plen);
        if (c == 0)
            return 1;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

// The version after applying the notes to base (a later note of a range replaces an
// earlier one). Returns NULL when out of memory.
static s_ver_t *s_apply(const s_ver_t *base, const s_note_t *notes, size_t n_notes, uint64_t seq) {
    s_ver_t *v = s_ver_new(seq);
    const s_note_t **order = malloc((n_notes ? n_notes : 1) * sizeof *order);
    size_t cap = 0;
    int err = v && order ? 0 : KMX_ERR_NOMEM;
    for (size_t k = 0; k < n_notes && order; k++)
        order[k] = &notes[k];
    if (err == 0 && n_notes > 1)
        qsort(order, n_notes, sizeof *order, s_note_order);
    for (size_t i = 0; base && err == 0 && i < base->n; i++) {
        if (s_noted(order, n_notes, base->e[i]->key, base->e[i]->klen))
            continue;
        if ((err = kmx_reserve((void **)&v->e, &cap, v->n, sizeof *v->e, 16)) == 0)
            v->e[v->n++] = s_ent_ref(base->e[i]);
    }
    for (size_t k = 0; err == 0 && k < n_notes; k++) {
        const s_note_t *note = order[k];
        if (k + 1 < n_notes && s_prefix_cmp(order[k + 1], note->prefix, note->plen) == 0)
            continue; // a later note of the same range follows
        for (size_t i = 0; err == 0 && i < note->n; i++) {
            if ((err = kmx_reserve((void **)&v->e, &cap, v->n, sizeof *v->e, 16)) == 0)
                v->e[v->n++] = s_ent_ref(note->e[i]);
        }
    }
    free(order);
    if (err != 0) {
        s_ver_unref(v);
        return NULL;
    }
    return v;
}

// Makes v current when it is newer than what is; takes v's reference.
static void s_install(kmx_store_alt_t *alt, s_ver_t *v) {
    if (v->n > 1)
        qsort(v->e, v->n, sizeof *v->e, s_ent_cmp);
    pthread_mutex_lock(&alt->mutex);
    s_ver_t *old = NULL;
    if (!alt->cur || alt->cur->seq < v->seq) {
        old = alt->cur;
        alt->cur = v;
        v = NULL;
        pthread_cond_broadcast(&alt->cond);
    }
    pthread_mutex_unlock(&alt->mutex);
    s_ver_unref(old);
    s_ver_unref(v);
}

// ---- the writer's part -------------------------------------------------------------

void kmx_store_alt_committed(kmx_store_t *self) {
    kmx_store_alt_t *alt = self->alt;
    if (!alt)
        return;
    pthread_mutex_lock(&alt->mutex); // the builder looks at last_seq under it: no lost wake-up
    pthread_cond_broadcast(&alt->cond);
    pthread_mutex_unlock(&alt->mutex);
}

// ---- a reader's part ---------------------------------------------------------------

// One record of a run, not decoded: only records whose item shares its quantity name
// with another record of the run can be alternatives, so only those are decoded.
typedef struct {
    MDB_val key, val;    // point into the transaction
    const uint8_t *base; // the item's quantity name, inside key
    size_t base_len;     // its bytes
} s_raw_t;

static int s_raw_cmp(const void *x, const void *y) {
    const s_raw_t *a = x, *b = y;
    int c = memcmp(a->base, b->base, a->base_len < b->base_len ? a->base_len : b->base_len);
    return c != 0 ? c : (a->base_len > b->base_len) - (a->base_len < b->base_len);
}

// Keeps the records of one run that have an alternative: decodes and compares each group
// of records sharing a quantity name.
static int s_run_keep(s_raw_t *raw, size_t n, s_ver_t *v, size_t *cap) {
    if (n < 2)
        return 0;
    qsort(raw, n, sizeof *raw, s_raw_cmp);
    int err = 0;
    for (size_t i = 0, j; i < n && err == 0; i = j) {
        for (j = i + 1; j < n && s_raw_cmp(&raw[i], &raw[j]) == 0; j++)
            ;
        if (j - i < 2)
            continue;
        s_cands_t c = {0};
        for (size_t k = i; k < j && err == 0; k++)
            err = s_cands_push(&c, &raw[k].key, &raw[k].val);
        if (err == 0 && c.n >= 2)
            err = s_keep_marked(&c, &v->e, &v->n, cap);
        s_cands_fini(&c);
    }
    return err;
}

// Builds the version of txn's snapshot (seq) with one walk over the records. Gives up
// with KMX_ERR_UNAVAILABLE when the store is closing.
static int s_build(const kmx_store_t *self, MDB_txn *txn, uint64_t seq, s_ver_t **out) {
    *out = s_ver_new(seq);
    if (!*out)
        return KMX_ERR_NOMEM;
    size_t walked = 0;
    MDB_cursor *cur = NULL;
    int rc = mdb_cursor_open(txn, self->records, &cur);
    if (rc != 0)
        return kmx_store_mdb_err(rc, "cursor open");
    s_raw_t *raw = NULL;
    size_t n = 0, raw_cap = 0, cap = 0, run_len = 0;
    uint8_t run_prefix[KMX_RKEY_MAX];
    int err = 0;
    MDB_val key, val;
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0 && err == 0;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        size_t at = 0, len = 0;
        if (++walked % S_STOP_EVERY == 0 && atomic_load(&self->alt->stop)) {
            err = KMX_ERR_UNAVAILABLE;
            break;
        }
        if (s_key_item(key.mv_data, key.mv_size, &at, &len) != 0)
            continue;
        if (at != run_len || memcmp(run_prefix, key.mv_data, at) != 0) {
            err = s_run_keep(raw, n, *out, &cap);
            n = 0;
            memcpy(run_prefix, key.mv_data, at);
            run_len = at;
        }
        if (err == 0 && (err = kmx_reserve((void **)&raw, &raw_cap, n, sizeof *raw, 64)) == 0) {
            const uint8_t *k = key.mv_data;
            raw[n++] = (s_raw_t){key, val, k + at, s_item_base(k + at, len)};
        }
    }
    if (err == 0)
        err = s_run_keep(raw, n, *out, &cap);
    free(raw);
    mdb_cursor_close(cur);
    if (err == 0 && rc != MDB_NOTFOUND && rc != 0)
        err = kmx_store_mdb_err(rc, "alternatives walk");
    return err;
}

// Brings base forward to txn's snapshot (seq) from the event log: every changed record's
// range is read again. Returns 1 when the log no longer reaches back (walk instead), or
// KMX_ERR_UNAVAILABLE when the store is closing.
static int s_catch_up(const kmx_store_t *self, MDB_txn *txn, const s_ver_t *base, uint64_t seq,
                      s_ver_t **out) {
    *out = NULL;
    if (seq - base->seq > S_CATCH_UP_MAX)
        return 1;
    s_notes_t notes = {0};
    MDB_cursor *cur = NULL, *recs = NULL;
    int rc = mdb_cursor_open(txn, self->events, &cur);
    if (rc == 0 && (rc = mdb_cursor_open(txn, self->records, &recs)) != 0)
        mdb_cursor_close(cur);
    if (rc != 0)
        return kmx_store_mdb_err(rc, "cursor open");
    uint8_t kbuf[8];
    kmx_rkey_event(base->seq + 1, kbuf);
    MDB_val key = {sizeof kbuf, kbuf}, val;
    uint64_t expect = base->seq + 1, got = 0;
    int err = 0;
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE); rc == 0 && err == 0;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        if (kmx_rkey_event_seq(key.mv_data, key.mv_size, &got) != 0 || got > seq)
            break;
        if (got != expect++) {
            err = 1; // trimmed (or a gap kmx-storage check reports)
            break;
        }
        if (got % S_STOP_EVERY == 0 && atomic_load(&self->alt->stop)) {
            err = KMX_ERR_UNAVAILABLE;
            break;
        }
        Kmx__V1__UpdateEvent *ev = kmx__v1__update_event__unpack(NULL, val.mv_size, val.mv_data);
        uint8_t rkey[KMX_RKEY_MAX];
        size_t rlen = 0;
        if (ev && ev->record && kmx_rkey_record(ev->record, rkey, sizeof rkey, &rlen) == 0)
            err = s_note(&notes, recs, base, rkey, rlen);
        if (ev)
            kmx__v1__update_event__free_unpacked(ev, NULL);
    }
    mdb_cursor_close(recs);
    mdb_cursor_close(cur);
    if (err == 0 && expect != seq + 1)
        err = 1;
    if (err == 0 && rc != 0 && rc != MDB_NOTFOUND)
        err = kmx_store_mdb_err(rc, "alternatives catch-up");
    if (err == 0 && !(*out = s_apply(base, notes.v, notes.n, seq)))
        err = KMX_ERR_NOMEM;
    s_notes_fini(&notes);
    return err;
}

// The version to check txn's snapshot (seq) against: current when it is at least as new
// (newer only by commits after the snapshot), else brought to seq. Returns a reference.
static int s_version(const kmx_store_t *self, kmx_store_alt_t *alt, MDB_txn *txn, uint64_t seq,
                     s_ver_t **out) {
    pthread_mutex_lock(&alt->mutex);
    s_ver_t *base = alt->cur;
    if (base)
        atomic_fetch_add(&base->refs, 1);
    pthread_mutex_unlock(&alt->mutex);
    if (base && base->seq >= seq) {
        *out = base;
        return 0;
    }
    s_ver_t *v = NULL;
    int err = base ? s_catch_up(self, txn, base, seq, &v) : 1;
    s_ver_unref(base);
    if (err == 1) {
        atomic_fetch_add(&alt->walks, 1);
        err = s_build(self, txn, seq, &v);
        if (err == 0)
            kmx_log_debug("alternatives: %zu records at seq %llu", v->n, (unsigned long long)seq);
    }
    if (err != 0) {
        s_ver_unref(v);
        return err;
    }
    atomic_fetch_add(&v->refs, 1); // one for the store, one for this reader
    s_install(alt, v);
    *out = v;
    return 0;
}

// Whether the builder will publish a version of seq that the current one is behind
// (call with the mutex held).
static int s_builder_due(const kmx_store_alt_t *alt, uint64_t seq) {
    return alt->cur && alt->cur->seq < seq && alt->follows && !alt->held;
}

// Waits (bounded, holding no transaction) while the builder brings the version to seq.
static void s_wait_follow(kmx_store_alt_t *alt, uint64_t seq) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += S_WAIT_MS / 1000;
    pthread_mutex_lock(&alt->mutex);
    while (s_builder_due(alt, seq)) {
        if (pthread_cond_timedwait(&alt->cond, &alt->mutex, &until) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&alt->mutex);
}

static int s_groups_by(const Kmx__V1__GroupField *fields, size_t n, Kmx__V1__GroupField f) {
    for (size_t i = 0; i < n; i++) {
        if (fields[i] == f)
            return 1;
    }
    return 0;
}

// Orders records into answer rows: by quantity, then (rows split by item keep items of
// different wording apart) by item, then by source.
static int s_cmp_row_by(const Kmx__V1__Record *a, const Kmx__V1__Record *b, int by_item) {
    int c = kmx_alt_cmp_quantity(a, b);
    if (c == 0 && by_item)
        c = strcmp(a->item, b->item);
    return c != 0 ? c : strcmp(a->source ? a->source : "", b->source ? b->source : "");
}

static int s_cmp_row(const void *x, const void *y) {
    return s_cmp_row_by(*(const Kmx__V1__Record *const *)x, *(const Kmx__V1__Record *const *)y, 0);
}

static int s_cmp_row_item(const void *x, const void *y) {
    return s_cmp_row_by(*(const Kmx__V1__Record *const *)x, *(const Kmx__V1__Record *const *)y, 1);
}

// Sorts the n matched records into rows and returns the end of the row starting at i.
static size_t s_row_end(const Kmx__V1__Record **m, size_t n, size_t i, int by_item) {
    size_t j = i + 1;
    while (j < n && kmx_alt_cmp_quantity(m[i], m[j]) == 0 &&
           (!by_item || strcmp(m[i]->item, m[j]->item) == 0))
        j++;
    return j;
}

static void s_sort_rows(const Kmx__V1__Record **m, size_t n, int by_item) {
    qsort(m, n, sizeof *m, by_item ? s_cmp_row_item : s_cmp_row);
}

// Nonzero when the row [i, j) (sorted by source) holds more than one source.
static int s_row_mixed(const Kmx__V1__Record **m, size_t i, size_t j) {
    return j - i > 1 && kmx_alt_is_alternative(m[i], m[j - 1]);
}

// The records of v that filter matches, borrowed from v.
static const Kmx__V1__Record **s_matched(const s_ver_t *v, const Kmx__V1__Filter *filter,
                                         size_t *n) {
    const Kmx__V1__Record **m = malloc((v->n ? v->n : 1) * sizeof *m);
    *n = 0;
    for (size_t i = 0; m && i < v->n; i++) {
        if (kmx_store_filter_match(filter, v->e[i]->sr->record))
            m[(*n)++] = v->e[i]->sr->record;
    }
    return m;
}

// Waits, holding no transaction, while the open's builder works on the first version:
// one walk is enough.
static void s_wait_builder(kmx_store_alt_t *alt) {
    pthread_mutex_lock(&alt->mutex);
    while (alt->building && !alt->cur)
        pthread_cond_wait(&alt->cond, &alt->mutex);
    pthread_mutex_unlock(&alt->mutex);
}

// The version describing the last committed snapshot (see the top of this file). Returns
// a reference: release it with s_ver_unref.
static int s_fresh(kmx_store_t *self, s_ver_t **out) {
    MDB_txn *txn = NULL;
    uint64_t seq = 0;
    int err = 0;
    *out = NULL;
    s_wait_builder(self->alt);
    // A snapshot of commits the builder is still following: wait for its version outside
    // the transaction (the builder reads too, and a map resize waits for open ones), then
    // look again; what is still missing after that, s_version replays itself.
    for (int tries = 0; tries < 2 && err == 0; tries++) {
        err = kmx_store_begin_read(self, &txn);
        if (err == 0)
            err = kmx_store_read_last_seq(self, txn, &seq);
        if (err != 0 || tries == 1)
            break;
        pthread_mutex_lock(&self->alt->mutex);
        int due = s_builder_due(self->alt, seq);
        pthread_mutex_unlock(&self->alt->mutex);
        if (!due)
            break;
        kmx_store_end_read(self, txn);
        txn = NULL;
        s_wait_follow(self->alt, seq);
    }
    if (err == 0)
        err = s_version(self, self->alt, txn, seq, out);
    kmx_store_end_read(self, txn);
    return err;
}

int kmx_store_alternatives_check(kmx_store_t *self, const Kmx__V1__Filter *filter,
                                 const Kmx__V1__GroupField *fields, size_t n_fields, char *why,
                                 size_t size) {
    if (!self || !why || size == 0)
        return KMX_ERR_INVAL;
    if (kmx_store_filter_check(filter) != 0)
        return 0; // the aggregate itself names a bad filter
    if (!self->alt || s_groups_by(fields, n_fields, KMX__V1__GROUP_FIELD__BY_SOURCE))
        return 0; // rows split by source keep alternatives apart
    int by_item = s_groups_by(fields, n_fields, KMX__V1__GROUP_FIELD__BY_ITEM);
    s_ver_t *v = NULL;
    int err = s_fresh(self, &v);
    if (err != 0)
        return err;
    size_t n = 0;
    const Kmx__V1__Record **m = s_matched(v, filter, &n);
    int found = m ? 0 : KMX_ERR_NOMEM;
    if (m)
        s_sort_rows(m, n, by_item); // O(n log n) however many alternatives match
    for (size_t i = 0, j; i < n && !found; i = j) {
        j = s_row_end(m, n, i, by_item);
        if (s_row_mixed(m, i, j)) {
            kmx_alt_describe(m[i], m[j - 1], why, size);
            found = 1;
        }
    }
    free(m);
    s_ver_unref(v);
    return found;
}

void kmx_store_set_aside_fini(kmx_store_set_aside_t *s) {
    for (size_t i = 0; s && i < s->n; i++) {
        kmx__v1__record__free_unpacked(s->records[i], NULL);
        free(s->notes[i]);
    }
    if (s) {
        free(s->records);
        free(s->notes);
        memset(s, 0, sizeof *s);
    }
}

// Appends a copy of aside and its note to out.
static int s_push_aside(kmx_store_set_aside_t *out, const Kmx__V1__Record *kept,
                        const Kmx__V1__Record *aside) {
    char note[600];
    kmx_alt_describe_set_aside(kept, aside, note, sizeof note);
    size_t size = kmx__v1__record__get_packed_size(aside);
    uint8_t *buf = malloc(size ? size : 1);
    Kmx__V1__Record **r = realloc(out->records, (out->n + 1) * sizeof *r);
    if (r)
        out->records = r;
    char **t = r ? realloc(out->notes, (out->n + 1) * sizeof *t) : NULL;
    if (t)
        out->notes = t;
    Kmx__V1__Record *copy = NULL;
    if (buf && t) {
        kmx__v1__record__pack(aside, buf);
        copy = kmx__v1__record__unpack(NULL, size, buf);
    }
    char *text = copy ? strdup(note) : NULL;
    free(buf);
    if (!text) {
        if (copy)
            kmx__v1__record__free_unpacked(copy, NULL);
        return KMX_ERR_NOMEM;
    }
    out->records[out->n] = copy;
    out->notes[out->n++] = text;
    return 0;
}

int kmx_store_alternatives_set_aside(kmx_store_t *self, const Kmx__V1__Filter *filter,
                                     const Kmx__V1__GroupField *fields, size_t n_fields,
                                     kmx_store_set_aside_t *out) {
    if (!self || !out)
        return KMX_ERR_INVAL;
    memset(out, 0, sizeof *out);
    if (kmx_store_filter_check(filter) != 0 || !self->alt ||
        s_groups_by(fields, n_fields, KMX__V1__GROUP_FIELD__BY_SOURCE))
        return 0;
    int by_item = s_groups_by(fields, n_fields, KMX__V1__GROUP_FIELD__BY_ITEM);
    s_ver_t *v = NULL;
    int err = s_fresh(self, &v);
    if (err != 0)
        return err;
    size_t n = 0;
    const Kmx__V1__Record **m = s_matched(v, filter, &n);
    err = m ? 0 : KMX_ERR_NOMEM;
    // Of every row holding more than one source, all but its preferred record is set aside.
    if (m)
        s_sort_rows(m, n, by_item);
    for (size_t i = 0, j; i < n && err == 0; i = j) {
        j = s_row_end(m, n, i, by_item);
        if (!s_row_mixed(m, i, j))
            continue;
        const Kmx__V1__Record *best = m[i];
        for (size_t k = i + 1; k < j; k++)
            best = kmx_alt_prefer_cmp(m[k], best) < 0 ? m[k] : best;
        for (size_t k = i; k < j && err == 0; k++)
            err = m[k] == best ? 0 : s_push_aside(out, best, m[k]);
    }
    free(m);
    s_ver_unref(v);
    if (err != 0)
        kmx_store_set_aside_fini(out);
    return err;
}

// A malloc'd copy of rec (protobuf-c's default allocator, as free_unpacked expects).
static Kmx__V1__Record *s_copy(const Kmx__V1__Record *rec) {
    size_t size = kmx__v1__record__get_packed_size(rec);
    uint8_t *buf = malloc(size ? size : 1);
    Kmx__V1__Record *copy = NULL;
    if (buf) {
        kmx__v1__record__pack(rec, buf);
        copy = kmx__v1__record__unpack(NULL, size, buf);
    }
    free(buf);
    return copy;
}

static int s_cmp_prefer(const void *x, const void *y) {
    return kmx_alt_prefer_cmp(*(const Kmx__V1__Record *const *)x,
                              *(const Kmx__V1__Record *const *)y);
}

// Builds one catalog entry from the n alternatives in m (preference order). NULL: no memory.
static Kmx__V1__CatalogAlternative *s_entry(const Kmx__V1__Record **m, size_t n) {
    Kmx__V1__CatalogAlternative *e = malloc(sizeof *e);
    Kmx__V1__Period *p = malloc(sizeof *p);
    Kmx__V1__Record **recs = calloc(n, sizeof *recs);
    if (!e || !p || !recs) {
        free(e), free(p), free(recs);
        return NULL;
    }
    kmx__v1__catalog_alternative__init(e);
    kmx__v1__period__init(p);
    p->has_start = p->has_end = 1;
    p->start = m[0]->period->start;
    p->end = m[0]->period->end;
    e->period = p;
    e->has_kind = 1;
    e->kind = m[0]->kind;
    e->measurements = recs;
    for (size_t i = 0; i < n && (i == 0 || e->n_measurements == i); i++) {
        if ((recs[i] = s_copy(m[i])) != NULL)
            e->n_measurements++;
    }
    e->market = strdup(m[0]->market ? m[0]->market : "");
    e->category = strdup(m[0]->category ? m[0]->category : "");
    e->quantity = strndup(m[0]->item ? m[0]->item : "", kmx_alt_item_base(m[0]->item));
    e->unit = strdup(m[0]->value->unit ? m[0]->value->unit : "");
    if (e->n_measurements != n || !e->market || !e->category || !e->quantity || !e->unit) {
        kmx__v1__catalog_alternative__free_unpacked(e, NULL);
        return NULL;
    }
    return e;
}

static int s_cmp_quantity_ptr(const void *x, const void *y) {
    return kmx_alt_cmp_quantity(*(const Kmx__V1__Record *const *)x,
                                *(const Kmx__V1__Record *const *)y);
}

// Appends one entry per quantity among v's records of kind to cat, at most
// KMX_STORE_CATALOG_ALTERNATIVES_MAX of them. O(n log n).
static int s_catalog(const s_ver_t *v, Kmx__V1__Kind kind, Kmx__V1__CatalogResult *cat) {
    const Kmx__V1__Record **m = malloc((v->n ? v->n : 1) * sizeof *m);
    if (!m)
        return KMX_ERR_NOMEM;
    size_t n = 0;
    for (size_t i = 0; i < v->n; i++) {
        const Kmx__V1__Record *r = v->e[i]->sr->record;
        if (kind == KMX__V1__KIND__KIND_UNSPECIFIED || r->kind == kind)
            m[n++] = r;
    }
    qsort(m, n, sizeof *m, s_cmp_quantity_ptr);
    int err = 0;
    for (size_t i = 0, j; i < n && err == 0; i = j) {
        for (j = i + 1; j < n && kmx_alt_cmp_quantity(m[i], m[j]) == 0; j++)
            ;
        if (j - i < 2 || cat->n_alternatives >= KMX_STORE_CATALOG_ALTERNATIVES_MAX)
            continue;
        qsort(m + i, j - i, sizeof *m, s_cmp_prefer);
        Kmx__V1__CatalogAlternative *e = s_entry(m + i, j - i);
        Kmx__V1__CatalogAlternative **grown =
            e ? realloc(cat->alternatives, (cat->n_alternatives + 1) * sizeof *grown) : NULL;
        if (!grown) {
            if (e)
                kmx__v1__catalog_alternative__free_unpacked(e, NULL);
            err = KMX_ERR_NOMEM;
        } else {
            cat->alternatives = grown;
            cat->alternatives[cat->n_alternatives++] = e;
        }
    }
    free(m);
    return err;
}

int kmx_store_alternatives_catalog(kmx_store_t *self, Kmx__V1__Kind kind,
                                   Kmx__V1__CatalogResult *cat) {
    if (!self || !cat)
        return KMX_ERR_INVAL;
    if (!self->alt)
        return 0;
    s_ver_t *v = NULL;
    int err = s_fresh(self, &v);
    if (err != 0)
        return err;
    err = s_catalog(v, kind, cat);
    s_ver_unref(v);
    return err;
}

// ---- the open's builder and checks on it --------------------------------------------

// One round of the builder: the version of a new snapshot, built by a walk when base is
// NULL (the first) or the event log no longer reaches back to it, else brought forward.
static int s_builder_round(kmx_store_t *self, s_ver_t *base) {
    MDB_txn *txn = NULL;
    uint64_t seq = 0;
    s_ver_t *v = NULL;
    int err = kmx_store_begin_read(self, &txn);
    if (err == 0)
        err = kmx_store_read_last_seq(self, txn, &seq);
    if (err == 0)
        err = base ? s_catch_up(self, txn, base, seq, &v) : 1;
    if (err == 1 && (err = s_build(self, txn, seq, &v)) == 0)
        kmx_log_debug("alternatives: %zu records at seq %llu, walked %s", v->n,
                      (unsigned long long)seq,
                      base ? "again (the event log no longer reaches back)" : "at open");
    kmx_store_end_read(self, txn);
    if (err != 0) {
        s_ver_unref(v);
        return err;
    }
    s_install(self->alt, v);
    return 0;
}

// The builder thread: the first version, from its own snapshot, then after each commit
// the next one, until the store closes.
static void *s_builder_main(void *arg) {
    kmx_store_t *self = arg;
    kmx_store_alt_t *alt = self->alt;
    kmx_proc_name_thread("kmx-alt");
    kmx_proc_nice(self->builder_nice, "the alternatives builder");
    int err = s_builder_round(self, NULL);
    if (err != 0 && err != KMX_ERR_UNAVAILABLE) // not the close's stop
        kmx_log_warn("alternatives not built at open: %s", kmx_strerror(err));
    pthread_mutex_lock(&alt->mutex);
    alt->building = 0;
    alt->follows = err == 0; // else checks build the version themselves
    pthread_cond_broadcast(&alt->cond);
    uint64_t failed_at = 0; // the store's sequence when a round last failed
    while (err != KMX_ERR_UNAVAILABLE) {
        while (!atomic_load(&alt->stop) && alt->cur &&
               (alt->held || alt->cur->seq >= self->last_seq ||
                (!alt->follows && failed_at >= self->last_seq)))
            pthread_cond_wait(&alt->cond, &alt->mutex);
        if (atomic_load(&alt->stop) || !alt->cur)
            break;
        s_ver_t *base = alt->cur;
        atomic_fetch_add(&base->refs, 1);
        uint64_t at = self->last_seq;
        pthread_mutex_unlock(&alt->mutex);
        err = s_builder_round(self, base);
        s_ver_unref(base);
        if (err != 0 && err != KMX_ERR_UNAVAILABLE)
            kmx_log_warn("alternatives not followed at seq %llu: %s (checks catch up "
                         "themselves until a later commit's round succeeds)",
                         (unsigned long long)at, kmx_strerror(err));
        pthread_mutex_lock(&alt->mutex);
        alt->follows = err == 0;
        failed_at = err == 0 ? 0 : at;
        pthread_cond_broadcast(&alt->cond);
    }
    alt->follows = 0;
    pthread_cond_broadcast(&alt->cond);
    pthread_mutex_unlock(&alt->mutex);
    return NULL;
}

int kmx_store_alt_start(kmx_store_t *self) {
    kmx_store_alt_t *alt = self->alt;
    if (!alt)
        return 0;
    pthread_mutex_lock(&alt->mutex);
    alt->building = 1;
    pthread_mutex_unlock(&alt->mutex);
    if (pthread_create(&alt->builder, NULL, s_builder_main, self) != 0) {
        pthread_mutex_lock(&alt->mutex);
        alt->building = 0; // the first check builds, as without the thread
        pthread_mutex_unlock(&alt->mutex);
        return KMX_ERR_NOMEM;
    }
    alt->builder_started = 1;
    return 0;
}

void kmx_store_alt_stop(kmx_store_t *self) {
    kmx_store_alt_t *alt = self ? self->alt : NULL;
    if (!alt || !alt->builder_started)
        return;
    pthread_mutex_lock(&alt->mutex);
    atomic_store(&alt->stop, 1);
    pthread_cond_broadcast(&alt->cond);
    pthread_mutex_unlock(&alt->mutex);
    pthread_join(alt->builder, NULL);
    alt->builder_started = 0;
}

void kmx_store_alt_hold(kmx_store_t *self, int hold) {
    kmx_store_alt_t *alt = self ? self->alt : NULL;
    if (!alt)
        return;
    pthread_mutex_lock(&alt->mutex);
    alt->held = hold;
    pthread_cond_broadcast(&alt->cond);
    pthread_mutex_unlock(&alt->mutex);
}

uint64_t kmx_store_alt_seq(kmx_store_t *self) {
    kmx_store_alt_t *alt = self ? self->alt : NULL;
    if (!alt)
        return 0;
    pthread_mutex_lock(&alt->mutex);
    uint64_t seq = alt->cur ? alt->cur->seq : 0;
    pthread_mutex_unlock(&alt->mutex);
    return seq;
}

unsigned kmx_store_alt_walks(const kmx_store_t *self) {
    return self && self->alt ? atomic_load(&self->alt->walks) : 0;
}

// Whether two entries hold the same key and the same stored record.
static int s_ent_same(const s_ent_t *a, const s_ent_t *b) {
    if (s_key_cmp(a->key, a->klen, b->key, b->klen) != 0)
        return 0;
    size_t n = kmx__v1__stored_record__get_packed_size(a->sr);
    if (n != kmx__v1__stored_record__get_packed_size(b->sr))
        return 0;
    uint8_t *x = malloc(n ? n : 1), *y = malloc(n ? n : 1);
    int same = x && y;
    if (same) {
        kmx__v1__stored_record__pack(a->sr, x);
        kmx__v1__stored_record__pack(b->sr, y);
        same = memcmp(x, y, n) == 0;
    }
    free(x);
    free(y);
    return same;
}

int kmx_store_alt_verify(kmx_store_t *self, int *same) {
    if (!self || !self->alt || !same)
        return KMX_ERR_INVAL;
    *same = 0;
    s_ver_t *v = NULL, *full = NULL;
    MDB_txn *txn = NULL;
    uint64_t seq = 0;
    int err = s_fresh(self, &v);
    if (err == 0)
        err = kmx_store_begin_read(self, &txn);
    if (err == 0 && (err = kmx_store_read_last_seq(self, txn, &seq)) == 0)
        err = s_build(self, txn, seq, &full);
    kmx_store_end_read(self, txn);
    if (err == 0) {
        if (full->n > 1)
            qsort(full->e, full->n, sizeof *full->e, s_ent_cmp);
        *same = v->seq == seq && v->n == full->n;
        for (size_t i = 0; *same && i < v->n; i++)
            *same = s_ent_same(v->e[i], full->e[i]);
    }
    s_ver_unref(full);
    s_ver_unref(v);
    return err;
}
