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

static int s_groups_by_source(const Kmx__V1__GroupField *fields, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (fields[i] == KMX__V1__GROUP_FIELD__BY_SOURCE)
            return 1;
    }
    return 0;
}

// With alt locked and built: finds two alternatives the filter both matches.
static int s_check(const kmx_store_alt_t *alt, const Kmx__V1__Filter *filter, char *why,
                   size_t size) {
    const Kmx__V1__Record **matched = malloc((alt->n ? alt->n : 1) * sizeof *matched);
    if (!matched)
        return KMX_ERR_NOMEM;
    size_t n = 0, a, b;
    for (size_t i = 0; i < alt->n; i++) {
        if (kmx_store_filter_match(filter, alt->recs[i]->record))
            matched[n++] = alt->recs[i]->record;
    }
    int found = kmx_alt_find(matched, n, &a, &b);
    if (found == 1)
        kmx_alt_describe(matched[a], matched[b], why, size);
    free(matched);
    return found;
}

int kmx_store_alternatives_check(kmx_store_t *self, const Kmx__V1__Filter *filter,
                                 const Kmx__V1__GroupField *fields, size_t n_fields, char *why,
                                 size_t size) {
    if (!self || !why || size == 0)
        return KMX_ERR_INVAL;
    if (kmx_store_filter_check(filter) != 0)
        return 0; // the aggregate itself names a bad filter
    if (!self->alt || s_groups_by_source(fields, n_fields))
        return 0; // rows split by source keep alternatives apart
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
    if (err == 0)
        err = s_check(self->alt, filter, why, size);
    pthread_mutex_unlock(&self->alt->mutex);
    return err;
}
