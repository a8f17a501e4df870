/*  kmx_bench_alt - what the first alternatives check (the one every group-by query makes)
    costs after a large import, in one run on one store: with the store open during the
    import (the version built at open and followed by the builder thread: the check right
    after the last commit waits for it to follow that batch), beside the walk over
    every record that such a first check made before (a read-only open still builds its
    version that way, so it is timed there), and right after a restart (the check waits
    for the open's build).
      kmx_bench_alt [ROWS] [TMPDIR]     defaults: 300000 /tmp  */
#include "kmx_err.h"
#include "kmx_log.h"
#include "kmx_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define S_BATCH 1000

static const char *const s_markets[] = {"JP", "US", "CN", "TW", "TH", "VN", "WORLD"};

static double s_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

// Row i of the import: monthly figures of one series; in every 100th series each other
// row is the month before measured by a second source, so the store holds alternatives.
static void s_row(int i, Kmx__V1__Record *r, Kmx__V1__Period *p, Kmx__V1__Value *v, char *item,
                  size_t size) {
    kmx__v1__record__init(r);
    kmx__v1__period__init(p);
    kmx__v1__value__init(v);
    int series = i / 120, month = i % 120, alt = series % 100 == 0 && month % 2;
    month -= alt; // the month before's figure, from the second source
    p->has_start = p->has_end = 1;
    p->start = p->end = (uint32_t)((2016 + month / 12) * 100 + month % 12 + 1);
    v->has_amount = 1;
    v->amount = (int64_t)(i % 977 + 1) * 10000;
    v->unit = "USD";
    snprintf(item, size, "series %d", series);
    r->has_kind = 1;
    r->kind = KMX__V1__KIND__EXPORT;
    r->period = p;
    r->market = (char *)s_markets[series % 7];
    r->category = "bench_alt";
    r->item = item;
    r->value = v;
    r->source = alt ? "kmx bench second source" : "kmx bench";
}

static int s_import(kmx_store_t *store, int rows) {
    static Kmx__V1__Record recs[S_BATCH];
    static Kmx__V1__Period periods[S_BATCH];
    static Kmx__V1__Value values[S_BATCH];
    static char items[S_BATCH][32];
    static Kmx__V1__Record *ptrs[S_BATCH];
    static kmx_put_outcome_t out[S_BATCH];
    for (int first = 0; first < rows; first += S_BATCH) {
        int n = rows - first < S_BATCH ? rows - first : S_BATCH;
        for (int i = 0; i < n; i++) {
            s_row(first + i, &recs[i], &periods[i], &values[i], items[i], sizeof items[i]);
            ptrs[i] = &recs[i];
        }
        if (kmx_store_put_batch(store, ptrs, (size_t)n, out, NULL) != 0)
            return -1;
    }
    return 0;
}

// Times one alternatives check of a group-by market over everything. -1 on an error.
static double s_first_check(kmx_store_t *store) {
    char why[512];
    Kmx__V1__GroupField by = KMX__V1__GROUP_FIELD__BY_MARKET;
    double t0 = s_now_ms();
    int rc = kmx_store_alternatives_check(store, NULL, &by, 1, why, sizeof why);
    double t = s_now_ms() - t0;
    return rc == 1 ? t : -1; // the second source makes one
}

static int s_run(const char *dir, int rows) {
    kmx_store_config_t fast = {.sync = KMX_STORE_SYNC_NONE};
    kmx_store_config_t ro = {.sync = KMX_STORE_SYNC_FULL, .readonly = 1};
    kmx_store_t *store = NULL;
    double t0 = s_now_ms();
    if (kmx_store_open(dir, &fast, &store) != 0 || s_import(store, rows) != 0)
        return -1;
    printf("imported %d rows in %.0f ms\n", rows, s_now_ms() - t0);
    double after = s_first_check(store);
    double second = s_first_check(store);
    kmx_store_close(&store);
    // The store as the previous kmx-storage found it at its first check: no version yet.
    if (kmx_store_open(dir, &ro, &store) != 0)
        return -1;
    double before = s_first_check(store);
    kmx_store_close(&store);
    t0 = s_now_ms();
    if (kmx_store_open(dir, &fast, &store) != 0)
        return -1;
    double opened = s_now_ms() - t0;
    double restart = s_first_check(store);
    kmx_store_close(&store);
    if (after < 0 || second < 0 || before < 0 || restart < 0)
        return -1;
    printf("figure: alternatives first check right after a %d-row import's last commit, store "
           "open during it = %.3f ms (waiting for the builder to follow that batch of %d "
           "rows if it has not yet; a second check %.3f ms)\n",
           rows, after, S_BATCH, second);
    printf("figure: alternatives first check that walks every record (before: each storage "
           "start's first check after an import) = %.1f ms\n",
           before);
    printf("figure: alternatives first check right after a restart = %.1f ms (open %.1f ms; "
           "the check waits for the open's build)\n",
           restart, opened);
    printf("first check after the import: %.3f ms now vs %.1f ms for the walk it made before "
           "(%.0fx)\n",
           after, before, after > 0 ? before / after : 0.0);
    return 0;
}

int main(int argc, char **argv) {
    int rows = argc > 1 ? atoi(argv[1]) : 300000;
    const char *tmp = argc > 2 ? argv[2] : "/tmp";
    kmx_log_set_level("warn");
    char dir[512];
    snprintf(dir, sizeof dir, "%s/kmx-bench-alt-XXXXXX", tmp);
    if (rows <= 0 || !mkdtemp(dir)) {
        fprintf(stderr, "usage: kmx_bench_alt [ROWS] [TMPDIR]\n");
        return 2;
    }
    int rc = s_run(dir, rows);
    char path[600];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/lock.mdb", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/kmx-storage.lock", dir);
    unlink(path);
    rmdir(dir);
    if (rc != 0)
        fprintf(stderr, "kmx_bench_alt: the store failed (see the log above)\n");
    return rc == 0 ? 0 : 1;
}
