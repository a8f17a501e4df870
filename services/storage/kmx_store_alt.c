/*  kmx_store_alt - the store's alternative measurements (kmx_alt.h), for answers that
    must not add them. The records holding an alternative are found by one walk over the
    records, kept in memory and reused until the store's sequence moves: records of one
    kind, period, market and category are adjacent in key order, so the walk compares
    each such run only within itself. Safe from any thread (one mutex).  */
#include "kmx_store_int.h"

#include "kmx_alt.h"
#include "kmx_err.h"
#include "kmx_log.h"
#include "kmx_rkey.h"

#include <stdlib.h>
#include <string.h>

struct kmx_store_alt {
    pthread_mutex_t mutex;        // guards everything below
    int valid;                    // recs describe the store at seq
    uint64_t seq;                 // the sequence the cache was built at
    Kmx__V1__StoredRecord **recs; // records that have an alternative (owned)
    size_t n, cap;                // entries used and allocated
};

static void s_clear(kmx_store_alt_t *alt) {
    for (size_t i = 0; i < alt->n; i++)
        kmx__v1__stored_record__free_unpacked(alt->recs[i], NULL);
    alt->n = 0;
    alt->valid = 0;
}

kmx_store_alt_t *kmx_store_alt_new(void) {
    kmx_store_alt_t *alt = calloc(1, sizeof *alt);
    if (alt && pthread_mutex_init(&alt->mutex, NULL) != 0) {
        free(alt);
        return NULL;
    }
    return alt;
}

void kmx_store_alt_destroy(kmx_store_alt_t **alt_p) {
    if (!alt_p || !*alt_p)
        return;
    kmx_store_alt_t *alt = *alt_p;
    s_clear(alt);
    free(alt->recs);
    pthread_mutex_destroy(&alt->mutex);
    free(alt);
    *alt_p = NULL;
}

// Length of a record key's run prefix: [kind][start][end] market 0 category 0.
static size_t s_run_prefix(const MDB_val *key) {
    const uint8_t *p = key->mv_data;
    size_t n = key->mv_size, i = 9;
    for (int zeros = 0; i < n && zeros < 2; i++)
        zeros += p[i] == 0;
    return i;
}

// A run of decoded records sharing one run prefix.
typedef struct {
    Kmx__V1__StoredRecord **sr;
    const Kmx__V1__Record **rec;
    unsigned char *marks;
    size_t n, cap;
} s_run_t;

static int s_run_push(s_run_t *run, Kmx__V1__StoredRecord *sr) {
    if (run->n == run->cap) {
        size_t cap = run->cap ? run->cap * 2 : 16;
        Kmx__V1__StoredRecord **a = realloc(run->sr, cap * sizeof *a);
        if (a)
            run->sr = a;
        const Kmx__V1__Record **b = a ? realloc(run->rec, cap * sizeof *b) : NULL;
        if (b)
            run->rec = b;
        unsigned char *c = b ? realloc(run->marks, cap) : NULL;
        if (!c)
            return KMX_ERR_NOMEM;
        run->marks = c;
        run->cap = cap;
    }
    run->sr[run->n] = sr;
    run->rec[run->n++] = sr->record;
    return 0;
}

// Moves the run's records that have an alternative into alt and frees the others.
static int s_run_flush(kmx_store_alt_t *alt, s_run_t *run) {
    int err = kmx_alt_mark(run->rec, run->n, run->marks);
    for (size_t i = 0; i < run->n; i++) {
        if (err > 0 && run->marks[i] && alt->n == alt->cap) {
            size_t cap = alt->cap ? alt->cap * 2 : 16;
            Kmx__V1__StoredRecord **a = realloc(alt->recs, cap * sizeof *a);
            if (!a)
                err = KMX_ERR_NOMEM;
            else
                alt->recs = a, alt->cap = cap;
        }
        if (err > 0 && run->marks[i])
            alt->recs[alt->n++] = run->sr[i];
        else
            kmx__v1__stored_record__free_unpacked(run->sr[i], NULL);
    }
    run->n = 0;
    return err < 0 ? err : 0;
}

static int s_rebuild(kmx_store_t *self, kmx_store_alt_t *alt, MDB_txn *txn) {
    s_clear(alt);
    MDB_cursor *cur = NULL;
    int rc = mdb_cursor_open(txn, self->records, &cur);
    if (rc != 0)
        return kmx_store_mdb_err(rc, "cursor open");
    s_run_t run = {0};
    uint8_t prefix[KMX_RKEY_MAX];
    size_t prefix_len = 0;
    int err = 0;
    MDB_val key, val;
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0 && err == 0;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        size_t len = s_run_prefix(&key);
        if (len != prefix_len || memcmp(prefix, key.mv_data, len) != 0) {
            err = s_run_flush(alt, &run);
            memcpy(prefix, key.mv_data, len < sizeof prefix ? len : sizeof prefix);
            prefix_len = len;
        }
        Kmx__V1__StoredRecord *sr = kmx__v1__stored_record__unpack(NULL, val.mv_size, val.mv_data);
        if (!sr || !sr->record || !sr->record->value || !sr->record->period) {
            if (sr)
                kmx__v1__stored_record__free_unpacked(sr, NULL);
            continue;
        }
        if (err == 0 && (err = s_run_push(&run, sr)) != 0)
            kmx__v1__stored_record__free_unpacked(sr, NULL);
    }
    if (err == 0)
        err = s_run_flush(alt, &run);
    for (size_t i = 0; i < run.n; i++)
        kmx__v1__stored_record__free_unpacked(run.sr[i], NULL);
    free(run.sr);
    free(run.rec);
    free(run.marks);
    mdb_cursor_close(cur);
    if (err == 0 && rc != MDB_NOTFOUND)
        err = kmx_store_mdb_err(rc, "alternatives walk");
    return err;
}

static int s_groups_by(const Kmx__V1__GroupField *fields, size_t n, Kmx__V1__GroupField f) {
    for (size_t i = 0; i < n; i++) {
        if (fields[i] == f)
            return 1;
    }
    return 0;
}

// Nonzero when a and b are alternatives that one answer row would add: rows split by item
// keep items of different wording apart.
static int s_same_row(const Kmx__V1__Record *a, const Kmx__V1__Record *b, int by_item) {
    return kmx_alt_is_alternative(a, b) && (!by_item || strcmp(a->item, b->item) == 0);
}

// With alt locked and built: the cached records filter matches, borrowed from alt.
static const Kmx__V1__Record **s_matched(const kmx_store_alt_t *alt, const Kmx__V1__Filter *filter,
                                         size_t *n) {
    const Kmx__V1__Record **m = malloc((alt->n ? alt->n : 1) * sizeof *m);
    *n = 0;
    for (size_t i = 0; m && i < alt->n; i++) {
        if (kmx_store_filter_match(filter, alt->recs[i]->record))
            m[(*n)++] = alt->recs[i]->record;
    }
    return m;
}

// Locks alt and rebuilds it when the store moved on. On 0 the caller holds the lock.
static int s_lock_fresh(kmx_store_t *self) {
    MDB_txn *txn = NULL;
    int err = kmx_store_begin_read(self, &txn);
    uint64_t seq = 0;
    if (err == 0)
        err = kmx_store_read_last_seq(self, txn, &seq);
    pthread_mutex_lock(&self->alt->mutex);
    if (err == 0 && (!self->alt->valid || self->alt->seq != seq)) {
        err = s_rebuild(self, self->alt, txn);
        self->alt->valid = err == 0;
        self->alt->seq = seq;
        if (err == 0)
            kmx_log_debug("alternatives: %zu records at seq %llu", self->alt->n,
                          (unsigned long long)seq);
    }
    kmx_store_end_read(self, txn);
    if (err != 0)
        pthread_mutex_unlock(&self->alt->mutex);
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
    int err = s_lock_fresh(self);
    if (err != 0)
        return err;
    size_t n = 0;
    const Kmx__V1__Record **m = s_matched(self->alt, filter, &n);
    int found = m ? 0 : KMX_ERR_NOMEM;
    for (size_t i = 0; i < n && !found; i++) {
        for (size_t j = i + 1; j < n && !found; j++) {
            if (s_same_row(m[i], m[j], by_item)) {
                kmx_alt_describe(m[i], m[j], why, size);
                found = 1;
            }
        }
    }
    free(m);
    pthread_mutex_unlock(&self->alt->mutex);
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
    int err = s_lock_fresh(self);
    if (err != 0)
        return err;
    size_t n = 0;
    const Kmx__V1__Record **m = s_matched(self->alt, filter, &n);
    err = m ? 0 : KMX_ERR_NOMEM;
    // Every record with a preferred alternative in its row is set aside for the best one.
    for (size_t i = 0; i < n && err == 0; i++) {
        const Kmx__V1__Record *best = m[i];
        for (size_t j = 0; j < n; j++) {
            if (j != i && s_same_row(m[i], m[j], by_item) && kmx_alt_prefer_cmp(m[j], best) < 0)
                best = m[j];
        }
        if (best != m[i])
            err = s_push_aside(out, best, m[i]);
    }
    free(m);
    pthread_mutex_unlock(&self->alt->mutex);
    if (err != 0)
        kmx_store_set_aside_fini(out);
    return err;
}
