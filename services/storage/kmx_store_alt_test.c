/*  Tests for kmx_store_alt against a real LMDB store: the alternatives check refuses two
    measurements of one quantity, follows writes and deletes, lets rows split by source or
    by differently worded items through, and sets aside all but the preferred measurement;
    after random imports, deletes and restarts what the checks use is what a full walk
    finds, whether the builder followed the commits or was held off and the checks brought
    the version forward themselves, and the only walk over the records is the one at open;
    the builder follows commits with no check asking.  */
#define _XOPEN_SOURCE 700 // nftw, to remove the test directory
#include "kmx_store.h"

#include "kmx_err.h"
#include "kmx_store_int.h"
#include "kmx_testkit.h"

#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

typedef struct {
    char dir[64];       // the mkdtemp directory
    kmx_store_t *store; // open store in dir
} s_fixture_t;

static int s_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int s_setup(void **state) {
    s_fixture_t *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/kmx-alt-test-XXXXXX");
    if (!mkdtemp(f->dir) || kmx_store_open(f->dir, NULL, &f->store) != 0) {
        nftw(f->dir, s_rm_entry, 8, FTW_DEPTH | FTW_PHYS);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int s_teardown(void **state) {
    s_fixture_t *f = *state;
    kmx_store_close(&f->store);
    nftw(f->dir, s_rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static void s_rec(kmx_testkit_rec_t *r, const char *item, const char *source, int64_t amount) {
    kmx_testkit_rec_init(r, "WORLD", 202401, 202412, amount, "USD");
    r->rec.item = (char *)item;
    r->rec.source = (char *)source;
}

static void s_write(kmx_store_t *store, kmx_store_op_kind_t kind, kmx_testkit_rec_t *r) {
    kmx_store_op_t op = {kind, &r->rec};
    kmx_put_outcome_t out;
    assert_int_equal(kmx_store_write_batch(store, &op, 1, &out, NULL), 0);
    assert_int_equal(out.outcome, KMX__V1__RECORD_RESULT__OUTCOME__STORED);
}

static int s_check(kmx_store_t *store, const Kmx__V1__Filter *filter, Kmx__V1__GroupField by,
                   char *why, size_t size) {
    return kmx_store_alternatives_check(store, filter, &by, by ? 1 : 0, why, size);
}

static void test_alt_check_follows_writes(void **state) {
    s_fixture_t *f = *state;
    kmx_testkit_rec_t yonhap, chosun, jp;
    s_rec(&yonhap, "album exports total (+0.55% YoY)", "KCS via Yonhap", 2918000000000LL);
    s_rec(&chosun, "album exports total (precise)", "KCS via Chosun", 2918200000000LL);
    s_rec(&jp, "album exports to Japan", "KCS via Yonhap", 898000000000LL);
    char why[512] = "";
    s_write(f->store, KMX_STORE_OP_PUT, &yonhap);
    s_write(f->store, KMX_STORE_OP_PUT, &jp);
    assert_int_equal(s_check(f->store, NULL, 0, why, sizeof why), 0);
    s_write(f->store, KMX_STORE_OP_PUT, &chosun); // the sequence moves: walked again
    assert_int_equal(s_check(f->store, NULL, 0, why, sizeof why), 1);
    assert_non_null(strstr(why, "'album exports total' has alternative measurements"));
    assert_non_null(strstr(why, "'KCS via Yonhap' (291800000 USD)"));
    assert_non_null(strstr(why, "'KCS via Chosun' (291820000 USD)"));
    // Split by source, or by item (worded differently here): nothing is added.
    assert_int_equal(s_check(f->store, NULL, KMX__V1__GROUP_FIELD__BY_SOURCE, why, sizeof why), 0);
    assert_int_equal(s_check(f->store, NULL, KMX__V1__GROUP_FIELD__BY_ITEM, why, sizeof why), 0);
    assert_int_equal(s_check(f->store, NULL, KMX__V1__GROUP_FIELD__BY_MARKET, why, sizeof why), 1);
    // A filter that matches one of them only.
    Kmx__V1__Filter filter = KMX__V1__FILTER__INIT;
    char *sources[] = {"KCS via Chosun"};
    filter.n_sources = 1;
    filter.sources = sources;
    assert_int_equal(s_check(f->store, &filter, 0, why, sizeof why), 0);
    char *markets[] = {"JP"};
    Kmx__V1__Filter jp_only = KMX__V1__FILTER__INIT;
    jp_only.n_markets = 1;
    jp_only.markets = markets;
    assert_int_equal(s_check(f->store, &jp_only, 0, why, sizeof why), 0);
    s_write(f->store, KMX_STORE_OP_DELETE, &chosun);
    assert_int_equal(s_check(f->store, NULL, 0, why, sizeof why), 0);
}

static void test_alt_set_aside_keeps_the_preferred(void **state) {
    s_fixture_t *f = *state;
    kmx_testkit_rec_t r[3];
    s_rec(&r[0], "album exports total (+0.55% YoY)", "KCS via Yonhap", 2918000000000LL);
    s_rec(&r[1], "album exports total (precise)", "KCS via Chosun", 2918200000000LL);
    s_rec(&r[2], "album exports total", "seed article", 5600000000000LL);
    r[2].rec.has_confidence = 1;
    r[2].rec.confidence = KMX__V1__CONFIDENCE__LOW;
    r[0].rec.has_confidence = r[1].rec.has_confidence = 1;
    r[0].rec.confidence = r[1].rec.confidence = KMX__V1__CONFIDENCE__HIGH;
    for (size_t i = 0; i < 3; i++)
        s_write(f->store, KMX_STORE_OP_PUT, &r[i]);
    kmx_store_set_aside_t aside;
    Kmx__V1__GroupField by = KMX__V1__GROUP_FIELD__BY_MARKET;
    assert_int_equal(kmx_store_alternatives_set_aside(f->store, NULL, &by, 1, &aside), 0);
    assert_int_equal(aside.n, 2);
    for (size_t i = 0; i < aside.n; i++) {
        assert_string_not_equal(aside.records[i]->source, "KCS via Chosun");
        assert_non_null(strstr(aside.notes[i], "kept 291820000 USD from 'KCS via Chosun'"));
    }
    kmx_store_set_aside_fini(&aside);
    assert_int_equal(aside.n, 0);
    by = KMX__V1__GROUP_FIELD__BY_SOURCE;
    assert_int_equal(kmx_store_alternatives_set_aside(f->store, NULL, &by, 1, &aside), 0);
    assert_int_equal(aside.n, 0);
    kmx_store_set_aside_fini(&aside);
    // The catalog: one quantity, its three measurements, the preferred first.
    Kmx__V1__CatalogResult *cat = calloc(1, sizeof *cat);
    assert_non_null(cat);
    kmx__v1__catalog_result__init(cat);
    assert_int_equal(kmx_store_alternatives_catalog(f->store, KMX__V1__KIND__CONSUMPTION, cat), 0);
    assert_int_equal(cat->n_alternatives, 0);
    assert_int_equal(kmx_store_alternatives_catalog(f->store, KMX__V1__KIND__EXPORT, cat), 0);
    assert_int_equal(cat->n_alternatives, 1);
    const Kmx__V1__CatalogAlternative *a = cat->alternatives[0];
    assert_string_equal(a->quantity, "album exports total");
    assert_string_equal(a->market, "WORLD");
    assert_string_equal(a->unit, "USD");
    assert_int_equal(a->n_measurements, 3);
    assert_string_equal(a->measurements[0]->source, "KCS via Chosun");
    assert_string_equal(a->measurements[1]->source, "KCS via Yonhap");
    assert_string_equal(a->measurements[2]->source, "seed article");
    kmx__v1__catalog_result__free_unpacked(cat, NULL);
}

// Waits (bounded) until the version describes the store's last commit, with no check
// asking for it: only the builder brings it there.
static int s_followed(kmx_store_t *store) {
    for (int i = 0; i < 5000; i++) {
        if (kmx_store_alt_seq(store) == kmx_store_last_seq(store))
            return 1;
        usleep(1000);
    }
    return 0;
}

// The builder follows commits by itself; a check while it is held off finds the version
// behind and brings it forward itself, from the event log, without walking; released,
// the builder goes on from there.
static void test_alt_builder_follows_and_checks_catch_up(void **state) {
    s_fixture_t *f = *state;
    kmx_testkit_rec_t a, b, c;
    s_rec(&a, "album exports total (+0.55% YoY)", "KCS via Yonhap", 2918000000000LL);
    s_rec(&b, "album exports total (precise)", "KCS via Chosun", 2918200000000LL);
    s_rec(&c, "album exports to Japan", "KCS via Yonhap", 898000000000LL);
    char why[512] = "";
    s_write(f->store, KMX_STORE_OP_PUT, &a);
    assert_true(s_followed(f->store));
    kmx_store_alt_hold(f->store, 1);
    s_write(f->store, KMX_STORE_OP_PUT, &c);
    s_write(f->store, KMX_STORE_OP_PUT, &b);
    usleep(20000); // a builder not held would have followed by now
    assert_int_equal(kmx_store_alt_seq(f->store), 1);
    assert_int_equal(s_check(f->store, NULL, 0, why, sizeof why), 1); // the version of seq 3
    assert_non_null(strstr(why, "'KCS via Chosun'"));
    assert_int_equal(kmx_store_alt_seq(f->store), 3);
    s_write(f->store, KMX_STORE_OP_DELETE, &b);
    kmx_store_alt_hold(f->store, 0);
    assert_true(s_followed(f->store));
    assert_int_equal(s_check(f->store, NULL, 0, why, sizeof why), 0);
    assert_int_equal(kmx_store_alt_walks(f->store), 0);
}

// A store where every figure was imported twice under two source names: the check, the
// set-aside and the catalog stay O(n log n) over 40 000 alternatives (quadratic would be
// 1.6e9 comparisons), and count exactly.
static void test_alt_many_alternatives(void **state) {
    s_fixture_t *f = *state;
    enum { S_N = 20000 };
    kmx_testkit_rec_t *r = calloc(2 * S_N, sizeof *r);
    kmx_store_op_t *ops = calloc(2 * S_N, sizeof *ops);
    kmx_put_outcome_t *out = calloc(2 * S_N, sizeof *out);
    char(*items)[24] = calloc(S_N, sizeof *items);
    assert_non_null(r);
    assert_non_null(ops);
    assert_non_null(out);
    assert_non_null(items);
    for (size_t i = 0; i < 2 * S_N; i++) {
        snprintf(items[i % S_N], sizeof items[0], "item %zu", i % S_N);
        s_rec(&r[i], items[i % S_N], i < S_N ? "file A" : "file B", (int64_t)(i % S_N + 1));
        ops[i] = (kmx_store_op_t){KMX_STORE_OP_PUT, &r[i].rec};
    }
    assert_int_equal(kmx_store_write_batch(f->store, ops, 2 * S_N, out, NULL), 0);
    char why[512];
    Kmx__V1__GroupField by = KMX__V1__GROUP_FIELD__BY_ITEM;
    assert_int_equal(kmx_store_alternatives_check(f->store, NULL, &by, 1, why, sizeof why), 1);
    kmx_store_set_aside_t aside;
    assert_int_equal(kmx_store_alternatives_set_aside(f->store, NULL, &by, 1, &aside), 0);
    assert_int_equal(aside.n, S_N);
    kmx_store_set_aside_fini(&aside);
    Kmx__V1__CatalogResult *cat = calloc(1, sizeof *cat);
    assert_non_null(cat);
    kmx__v1__catalog_result__init(cat);
    assert_int_equal(kmx_store_alternatives_catalog(f->store, KMX__V1__KIND__EXPORT, cat), 0);
    assert_int_equal(cat->n_alternatives, KMX_STORE_CATALOG_ALTERNATIVES_MAX);
    kmx__v1__catalog_result__free_unpacked(cat, NULL);
    free(items);
    free(out);
    free(ops);
    free(r);
}

// The alternatives the store follows equal those of a full walk, and no check walked.
static void s_expect_like_a_walk(kmx_store_t *store, const char *when, unsigned long long seed) {
    int same = 0;
    assert_int_equal(kmx_store_alt_verify(store, &same), 0);
    if (!same)
        fail_msg("alternatives differ from a full walk %s (seed %llu)", when, seed);
    if (kmx_store_alt_walks(store) != 0)
        fail_msg("%u checks walked the records %s (seed %llu)", kmx_store_alt_walks(store), when,
                 seed);
}

static void test_alt_follows_imports_deletes_restarts_like_a_full_walk(void **state) {
    s_fixture_t *f = *state;
    const char *env = getenv("KMX_SEED"); // repeats another run's operations
    unsigned long long seed =
        env && *env ? strtoull(env, NULL, 10) : (unsigned long long)time(NULL);
    printf("seed %llu (repeat with KMX_SEED=%llu)\n", seed, seed);
    unsigned rng = (unsigned)seed;
    enum { S_KEYS = 600, S_BATCHES = 60, S_BATCH_MAX = 400 };
    static const char *markets[] = {"JP", "US", "WORLD"};
    static const char *sources[] = {"KCS via Yonhap", "KCS via Chosun", "KOCCA survey"};
    static const char *notes[] = {"", " (precise)", " (+0.5% YoY)"};
    kmx_testkit_rec_t *r = calloc(S_BATCH_MAX, sizeof *r);
    kmx_store_op_t *ops = calloc(S_BATCH_MAX, sizeof *ops);
    kmx_put_outcome_t *out = calloc(S_BATCH_MAX, sizeof *out);
    char(*src)[32] = calloc(S_BATCH_MAX, sizeof *src);
    assert_true(r && ops && out && src);
    for (int b = 0; b < S_BATCHES; b++) {
        // The builder is held off now and then (checks then bring the version forward
        // themselves), and some batches go unchecked (the next check or the builder then
        // follows several commits at once).
        if (rand_r(&rng) % 6 == 0)
            kmx_store_alt_hold(f->store, rand_r(&rng) % 2);
        // Mostly puts (new figures and revised values), a quarter deletes; some of the
        // keys measure one quantity from several sources, so alternatives come and go.
        size_t n = 1 + (size_t)rand_r(&rng) % (b % 10 == 0 ? S_BATCH_MAX : 40);
        for (size_t i = 0; i < n; i++) {
            int k = rand_r(&rng) % S_KEYS;
            kmx_testkit_rec_init(&r[i], markets[k % 3], 202401, 202412,
                                 1 + rand_r(&rng) % 5 * 10000, "USD");
            snprintf(r[i].item, sizeof r[i].item, "quantity %d%s", k / 9, notes[k / 3 % 3]);
            snprintf(src[i], sizeof src[i], "%s", sources[k / 3 % 3]);
            r[i].rec.source = src[i];
            kmx_store_op_kind_t kind =
                rand_r(&rng) % 4 == 0 ? KMX_STORE_OP_DELETE : KMX_STORE_OP_PUT;
            ops[i] = (kmx_store_op_t){kind, &r[i].rec};
        }
        assert_int_equal(kmx_store_write_batch(f->store, ops, n, out, NULL), 0);
        char when[64];
        snprintf(when, sizeof when, "after batch %d", b);
        if (rand_r(&rng) % 3 != 0)
            s_expect_like_a_walk(f->store, when, seed);
        if (b % 15 == 14) { // a restart: the version is built again at open
            kmx_store_close(&f->store);
            assert_int_equal(kmx_store_open(f->dir, NULL, &f->store), 0);
            snprintf(when, sizeof when, "after the restart at batch %d", b);
            s_expect_like_a_walk(f->store, when, seed);
        }
    }
    char why[512];
    Kmx__V1__GroupField by = KMX__V1__GROUP_FIELD__BY_MARKET;
    assert_int_equal(kmx_store_alternatives_check(f->store, NULL, &by, 1, why, sizeof why), 1);
    assert_int_equal(kmx_store_alt_walks(f->store), 0);
    free(src);
    free(out);
    free(ops);
    free(r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_alt_check_follows_writes, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_alt_set_aside_keeps_the_preferred, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_alt_builder_follows_and_checks_catch_up, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_alt_many_alternatives, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_alt_follows_imports_deletes_restarts_like_a_full_walk,
                                        s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
