/*  Storage's query answers (kmx_answer_query_opt, folding allowed, as the service runs it)
    against tests/fuzz/answer_ref.c, a reference written from docs/queries.md that shares no
    code with kmx_shape: random monthly data sets and random queries grouped by market with
    share, top N, other and growth (YoY and period over period). Seeded: KMX_SEED repeats a
    run; the seed is printed. Queries the fuzzer (fuzz.answer) found the two disagreeing on
    are kept as fixed cases over its data set (answer_data.c).  */
#include "answer_data.h"
#include "answer_ref.h"
#include "kmx_answer.h"
#include "kmx_msg.h"
#include "kmx_testkit.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#define S_N(a) (sizeof(a) / sizeof((a)[0]))
#define S_QUERIES 400
#define S_MAX 4000

static const char *const s_markets[] = {"JP", "US", "CN", "WORLD", "TH"};
static const char *const s_categories[] = {"album", "digital"};
static const char *const s_units[] = {"USD", "KRW"};

static unsigned s_seed;

static int s_rand(int n) {
    return (int)(rand_r(&s_seed) % (unsigned)n);
}

static uint32_t s_yyyymm(int index) { // month index 0 = 2020-01
    return (uint32_t)((2020 + index / 12) * 100 + index % 12 + 1);
}

static void test_answers_match_the_reference(void **state) {
    (void)state;
    const char *env = getenv("KMX_SEED");
    unsigned seed = env && *env ? (unsigned)strtoul(env, NULL, 10) : (unsigned)time(NULL);
    printf("seed %u (repeat with KMX_SEED=%u)\n", seed, seed);
    s_seed = seed;
    char dir[256];
    assert_int_equal(kmx_testkit_dir_make("kmx-answer-ref", dir, sizeof dir), 0);
    kmx_store_config_t cfg = {.sync = KMX_STORE_SYNC_NONE};
    kmx_store_t *store = NULL;
    assert_int_equal(kmx_store_open(dir, &cfg, &store), 0);

    // Monthly records over 2020..2024 with gaps, a few spans the month rule leaves out.
    static kmx_testkit_rec_t recs[S_MAX];
    static answer_ref_rec_t ref[S_MAX];
    size_t n = 0;
    for (size_t m = 0; m < S_N(s_markets); m++)
        for (size_t c = 0; c < S_N(s_categories); c++)
            for (size_t u = 0; u < S_N(s_units); u++)
                for (int i = 0; i < 60 && n + 2 < S_MAX; i++) {
                    int keep = s_rand(10) < 7;
                    uint32_t start = s_yyyymm(i), end = start;
                    if (!keep && s_rand(4) == 0 && i + 2 < 60)
                        end = s_yyyymm(i + 2); // a quarter-like span
                    else if (!keep)
                        continue;
                    kmx_testkit_rec_t *r = &recs[n];
                    int64_t amount = 1 + s_rand(1000) * (1 + s_rand(5000));
                    kmx_testkit_rec_init(r, s_markets[m], start, end, amount, s_units[u]);
                    r->rec.category = (char *)s_categories[c];
                    // One item per unit: the natural key has no unit, so one item in two
                    // units would be one record revised, not two.
                    snprintf(r->item, sizeof r->item, "exports in %s", s_units[u]);
                    r->rec.item = r->item;
                    ref[n] = (answer_ref_rec_t){s_markets[m], s_categories[c], s_units[u], start,
                                                end,          amount};
                    n++;
                }
    kmx_store_op_t *ops = calloc(n, sizeof *ops);
    kmx_put_outcome_t *out = calloc(n, sizeof *out);
    assert_non_null(ops);
    assert_non_null(out);
    for (size_t i = 0; i < n; i++)
        ops[i] = (kmx_store_op_t){KMX_STORE_OP_PUT, &recs[i].rec};
    assert_int_equal(kmx_store_write_batch(store, ops, n, out, NULL), 0);
    free(ops);
    free(out);

    size_t checked = 0;
    for (int k = 0; k < S_QUERIES; k++) {
        Kmx__V1__Request req = KMX__V1__REQUEST__INIT;
        Kmx__V1__QueryRequest q = KMX__V1__QUERY_REQUEST__INIT;
        Kmx__V1__Filter f = KMX__V1__FILTER__INIT;
        Kmx__V1__Period p = KMX__V1__PERIOD__INIT;
        Kmx__V1__GroupField by = KMX__V1__GROUP_FIELD__BY_MARKET;
        char *markets[3], *categories[1], *units[1];
        int from = 12 + s_rand(40), len = 1 + s_rand(from < 48 ? 12 : 60 - from);
        if (from + len > 60)
            len = 60 - from;
        p.has_start = p.has_end = 1;
        p.start = s_yyyymm(from);
        p.end = s_yyyymm(from + len - 1);
        f.period = &p;
        f.granularity = "month";
        f.has_kind = 1;
        f.kind = KMX__V1__KIND__EXPORT;
        f.n_markets = (size_t)s_rand(3);
        for (size_t i = 0; i < f.n_markets; i++)
            markets[i] = (char *)s_markets[s_rand((int)S_N(s_markets))];
        f.markets = markets;
        if (s_rand(3) == 0) {
            categories[0] = (char *)s_categories[s_rand((int)S_N(s_categories))];
            f.n_categories = 1;
            f.categories = categories;
        }
        if (s_rand(4) > 0) { // a ranking or share needs one unit (the rest must be refused)
            units[0] = (char *)s_units[s_rand((int)S_N(s_units))];
            f.n_units = 1;
            f.units = units;
        }
        q.filter = &f;
        q.n_group_by = 1;
        q.group_by = &by;
        q.has_share = 1;
        q.share = s_rand(2);
        if (s_rand(2)) {
            q.has_top = 1;
            q.top = 1 + (uint32_t)s_rand(3);
            q.has_other = 1;
            q.other = s_rand(3) > 0;
        }
        q.has_growth = 1;
        q.growth = (Kmx__V1__Growth)s_rand(3);
        q.has_complete = 1;
        q.complete = s_rand(4) == 0;
        req.request_id = "ref";
        req.body_case = KMX__V1__REQUEST__BODY_QUERY;
        req.query = &q;
        uint8_t *buf = NULL;
        size_t blen = 0;
        assert_int_equal(kmx_answer_query_opt(store, &req, 1, NULL, &buf, &blen), 0);
        Kmx__V1__Response *resp = kmx_msg_response_unpack(buf, blen);
        assert_non_null(resp);
        char why[512];
        int rc = answer_ref_check(ref, n, &q, resp, why, sizeof why);
        if (rc < 0 && getenv("KMX_REF_DEBUG")) {
            for (size_t i = 0; i < f.n_markets; i++)
                printf("market %s\n", markets[i]);
            printf("category %s unit %s\n", f.n_categories ? categories[0] : "-",
                   f.n_units ? units[0] : "-");
            for (size_t i = 0; resp->query && i < resp->query->n_rows; i++)
                printf("row %s %s %s\n", resp->query->rows[i]->keys[0], resp->query->rows[i]->unit,
                       resp->query->rows[i]->sum);
            for (size_t i = 0; i < n; i++)
                if (ref[i].start >= p.start - 100 && ref[i].start <= p.end &&
                    (!f.n_markets || !strcmp(ref[i].market, markets[0])) &&
                    (!f.n_categories || !strcmp(ref[i].category, categories[0])))
                    printf("rec %s %s %s %u-%u %lld\n", ref[i].market, ref[i].category, ref[i].unit,
                           ref[i].start, ref[i].end, (long long)ref[i].amount);
        }
        if (rc < 0)
            fail_msg("query %d (seed %u: %u..%u, %zu markets, %s, top %u%s%s%s, growth %d): %s", k,
                     seed, p.start, p.end, f.n_markets, f.n_categories ? "one category" : "", q.top,
                     q.other ? " other" : "", q.share ? " share" : "",
                     q.complete ? " complete" : "", (int)q.growth, why);
        checked += rc == 0;
        kmx__v1__response__free_unpacked(resp, NULL);
        free(buf);
    }
    printf("%zu of %d queries checked against the reference\n", checked, S_QUERIES);
    assert_true(checked > S_QUERIES / 2);
    kmx_store_close(&store);
    kmx_testkit_dir_remove(dir);
}

// Answers q over the fuzzer's data set; checks it against the reference and returns the
// number of rows (every one whole when complete is asked).
static size_t s_fuzz_case(kmx_store_t *store, const answer_ref_rec_t *recs, size_t n,
                          Kmx__V1__QueryRequest *q) {
    Kmx__V1__Request req = KMX__V1__REQUEST__INIT;
    req.request_id = "case";
    req.body_case = KMX__V1__REQUEST__BODY_QUERY;
    req.query = q;
    uint8_t *buf = NULL;
    size_t blen = 0;
    assert_int_equal(kmx_answer_query_opt(store, &req, 1, NULL, &buf, &blen), 0);
    Kmx__V1__Response *resp = kmx_msg_response_unpack(buf, blen);
    assert_non_null(resp);
    char why[512];
    int rc = answer_ref_check(recs, n, q, resp, why, sizeof why);
    if (rc != 0)
        fail_msg("%s", rc < 0 ? why : "the reference does not cover the case");
    assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_QUERY);
    size_t rows = resp->query->n_rows;
    for (size_t i = 0; q->complete && i < rows; i++)
        assert_false(resp->query->rows[i]->partial);
    kmx__v1__response__free_unpacked(resp, NULL);
    free(buf);
    return rows;
}

// The two queries fuzz.answer found the answer and the reference disagreeing on: both ask
// for --complete (the reference did not know it), 2023-2024 month by month by market with
// top N, other, share and YoY growth. Complete keeps only markets covering all 24 months;
// without it every market is a row.
static void test_fuzz_cases(void **state) {
    (void)state;
    char dir[256];
    assert_int_equal(kmx_testkit_dir_make("kmx-answer-cases", dir, sizeof dir), 0);
    kmx_store_config_t cfg = {.sync = KMX_STORE_SYNC_NONE};
    kmx_store_t *store = NULL;
    assert_int_equal(kmx_store_open(dir, &cfg, &store), 0);
    static answer_ref_rec_t recs[ANSWER_DATA_MAX];
    size_t n = answer_data_fill(store, recs);
    assert_true(n > 0);

    Kmx__V1__QueryRequest q = KMX__V1__QUERY_REQUEST__INIT;
    Kmx__V1__Filter f = KMX__V1__FILTER__INIT;
    Kmx__V1__Period p = KMX__V1__PERIOD__INIT;
    Kmx__V1__GroupField by = KMX__V1__GROUP_FIELD__BY_MARKET;
    char *usd[] = {"USD"}, *krw[] = {"KRW"}, *album[] = {"album"};
    p.has_start = p.has_end = 1;
    p.start = 202301;
    p.end = 202412;
    f.has_kind = 1;
    f.kind = KMX__V1__KIND__EXPORT;
    f.period = &p;
    f.granularity = "month";
    f.n_units = 1;
    f.units = usd;
    q.filter = &f;
    q.n_group_by = 1;
    q.group_by = &by;
    q.has_top = q.has_other = q.has_share = q.has_growth = q.has_complete = 1;
    q.other = q.share = 1;
    q.growth = KMX__V1__GROWTH__YOY;

    // Case 1: USD, every category, top 1: two whole rows (the reference had six).
    q.top = 1;
    q.complete = 1;
    assert_int_equal(s_fuzz_case(store, recs, n, &q), 2);
    q.complete = 0;
    assert_int_equal(s_fuzz_case(store, recs, n, &q), 6);
    // Case 2: album in KRW, top 109: one whole row (the reference had two).
    f.units = krw;
    f.n_categories = 1;
    f.categories = album;
    q.top = 109;
    q.complete = 1;
    assert_int_equal(s_fuzz_case(store, recs, n, &q), 1);
    q.complete = 0;
    assert_int_equal(s_fuzz_case(store, recs, n, &q), 2);
    kmx_store_close(&store);
    kmx_testkit_dir_remove(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_answers_match_the_reference),
        cmocka_unit_test(test_fuzz_cases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
