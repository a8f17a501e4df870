/*  kmx_agg tests: exact fixed-point sums, grouping by one and two fields, the unit split,
    top N ordering, minima and maxima, the group limit and empty input.  */
#include "kmx_agg.h"
#include "kmx_err.h"
#include "kmx_testkit.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

static void s_make(kmx_testkit_rec_t *r, const char *market, uint32_t start, uint32_t end,
                   const char *category, int64_t amount, const char *unit) {
    kmx_testkit_rec_init(r, market, start, end, amount, unit);
    r->rec.category = (char *)category;
}

static void s_add(kmx_agg_t *agg, const char *market, uint32_t start, uint32_t end,
                  const char *category, int64_t amount, const char *unit) {
    kmx_testkit_rec_t r;
    s_make(&r, market, start, end, category, amount, unit);
    assert_int_equal(kmx_agg_add(agg, &r.rec), 0);
}

static void test_agg_sums_are_exact(void **state) {
    (void)state;
    kmx_agg_t *agg = kmx_agg_new(NULL, 0);
    assert_non_null(agg);
    s_add(agg, "JP", 202301, 202312, "album", 1000, "USD"); // 0.1
    s_add(agg, "JP", 202301, 202312, "album", 2000, "USD"); // 0.2
    Kmx__V1__QueryResult res = KMX__V1__QUERY_RESULT__INIT;
    assert_int_equal(kmx_agg_result(agg, 0, &res), 0);
    assert_int_equal(res.n_rows, 1);
    assert_int_equal(res.matched, 2);
    assert_string_equal(res.rows[0]->sum, "0.3");
    assert_string_equal(res.rows[0]->unit, "USD");
    assert_int_equal(res.rows[0]->n_keys, 0);
    assert_int_equal(res.rows[0]->count, 2);
    assert_int_equal(res.rows[0]->min, 1000);
    assert_int_equal(res.rows[0]->max, 2000);
    kmx_agg_destroy(&agg);
    assert_null(agg);
}

static void test_agg_sum_exceeds_64_bits(void **state) {
    (void)state;
    kmx_agg_t *agg = kmx_agg_new(NULL, 0);
    assert_non_null(agg);
    for (int i = 0; i < 4; i++)
        s_add(agg, "US", 202401, 202412, "x", INT64_MAX, "KRW");
    s_add(agg, "US", 202401, 202412, "x", -5, "KRW");
    Kmx__V1__QueryResult res = KMX__V1__QUERY_RESULT__INIT;
    assert_int_equal(kmx_agg_result(agg, 0, &res), 0);
    // 4 * 9223372036854775807 - 5 = 36893488147419103223 ten-thousandths.
    assert_string_equal(res.rows[0]->sum, "3689348814741910.3223");
    assert_int_equal(res.rows[0]->min, -5);
    assert_int_equal(res.rows[0]->max, INT64_MAX);
    kmx_agg_destroy(&agg);
}

static void test_agg_groups_by_two_fields(void **state) {
    (void)state;
    Kmx__V1__GroupField by[] = {KMX__V1__GROUP_FIELD__BY_MARKET, KMX__V1__GROUP_FIELD__BY_YEAR};
    kmx_agg_t *agg = kmx_agg_new(by, 2);
    assert_non_null(agg);
    s_add(agg, "US", 202401, 202406, "album", 10000, "USD");
    s_add(agg, "JP", 202407, 202412, "album", 20000, "USD");
    s_add(agg, "JP", 202401, 202406, "digital", 30000, "USD");
    s_add(agg, "JP", 202301, 202312, "album", 40000, "USD");
    Kmx__V1__QueryResult res = KMX__V1__QUERY_RESULT__INIT;
    assert_int_equal(kmx_agg_result(agg, 0, &res), 0);
    assert_int_equal(res.n_rows, 3);
    assert_int_equal(res.matched, 4);
    // Sorted by keys: JP 2023, JP 2024, US 2024.
    assert_string_equal(res.rows[0]->keys[0], "JP");
    assert_string_equal(res.rows[0]->keys[1], "2023");
    assert_string_equal(res.rows[0]->sum, "4");
    assert_string_equal(res.rows[1]->keys[0], "JP");
    assert_string_equal(res.rows[1]->keys[1], "2024");
    assert_string_equal(res.rows[1]->sum, "5");
    assert_int_equal(res.rows[1]->count, 2);
    assert_string_equal(res.rows[2]->keys[0], "US");
    assert_string_equal(res.rows[2]->sum, "1");
    kmx_agg_destroy(&agg);
}

static void test_agg_splits_by_unit(void **state) {
    (void)state;
    Kmx__V1__GroupField by[] = {KMX__V1__GROUP_FIELD__BY_MARKET};
    kmx_agg_t *agg = kmx_agg_new(by, 1);
    assert_non_null(agg);
    s_add(agg, "JP", 202401, 202412, "album", 10000, "USD");
    s_add(agg, "JP", 202401, 202412, "album", 70000, "KRW");
    s_add(agg, "JP", 202401, 202412, "album", 5000, "USD");
    Kmx__V1__QueryResult res = KMX__V1__QUERY_RESULT__INIT;
    assert_int_equal(kmx_agg_result(agg, 0, &res), 0);
    assert_int_equal(res.n_rows, 2);
    assert_string_equal(res.rows[0]->unit, "KRW");
    assert_string_equal(res.rows[0]->sum, "7");
    assert_string_equal(res.rows[1]->unit, "USD");
    assert_string_equal(res.rows[1]->sum, "1.5");
    assert_string_equal(res.rows[1]->keys[0], "JP");
    kmx_agg_destroy(&agg);
}

static void test_agg_top_keeps_largest_sums(void **state) {
    (void)state;
    Kmx__V1__GroupField by[] = {KMX__V1__GROUP_FIELD__BY_CATEGORY};
    kmx_agg_t *agg = kmx_agg_new(by, 1);
    assert_non_null(agg);
    s_add(agg, "JP", 202401, 202412, "a", 10000, "USD");
    s_add(agg, "JP", 202401, 202412, "b", 50000, "USD");
    s_add(agg, "JP", 202401, 202412, "c", 30000, "USD");
    s_add(agg, "JP", 202401, 202412, "d", 30000, "USD");
    s_add(agg, "JP", 202401, 202412, "e", -90000, "USD");
    Kmx__V1__QueryResult res = KMX__V1__QUERY_RESULT__INIT;
    assert_int_equal(kmx_agg_result(agg, 3, &res), 0);
    assert_int_equal(res.n_rows, 3);
    assert_int_equal(res.matched, 5);
    assert_string_equal(res.rows[0]->keys[0], "b");
    assert_string_equal(res.rows[1]->keys[0], "c"); // tie with d, broken by keys
    assert_string_equal(res.rows[2]->keys[0], "d");
    // Asking again is allowed; top larger than the groups keeps them all.
    assert_int_equal(kmx_agg_result(agg, 100, &res), 0);
    assert_int_equal(res.n_rows, 5);
    assert_string_equal(res.rows[4]->keys[0], "e");
    assert_string_equal(res.rows[4]->sum, "-9");
    kmx_agg_destroy(&agg);
}

static void test_agg_groups_by_period_and_region(void **state) {
    (void)state;
    Kmx__V1__GroupField by[] = {KMX__V1__GROUP_FIELD__BY_REGION, KMX__V1__GROUP_FIELD__BY_PERIOD};
    kmx_agg_t *agg = kmx_agg_new(by, 2);
    assert_non_null(agg);
    s_add(agg, "US", 202501, 202506, "album", 10000, "USD");
    s_add(agg, "CA", 202501, 202506, "album", 20000, "USD");
    Kmx__V1__QueryResult res = KMX__V1__QUERY_RESULT__INIT;
    assert_int_equal(kmx_agg_result(agg, 0, &res), 0);
    assert_int_equal(res.n_rows, 1);
    assert_string_equal(res.rows[0]->keys[0], "North America");
    assert_string_equal(res.rows[0]->keys[1], "2025-H1");
    assert_string_equal(res.rows[0]->sum, "3");
    kmx_agg_destroy(&agg);
}

static void test_agg_empty_input_has_no_rows(void **state) {
    (void)state;
    Kmx__V1__GroupField by[] = {KMX__V1__GROUP_FIELD__BY_MARKET};
    kmx_agg_t *agg = kmx_agg_new(by, 1);
    assert_non_null(agg);
    Kmx__V1__QueryResult res = KMX__V1__QUERY_RESULT__INIT;
    assert_int_equal(kmx_agg_result(agg, 5, &res), 0);
    assert_int_equal(res.n_rows, 0);
    assert_true(res.has_matched);
    assert_int_equal(res.matched, 0);
    assert_int_equal(kmx_agg_add_stored(agg, NULL, 0), 0);
    kmx_agg_destroy(&agg);
}

static void test_agg_counts_records_without_value(void **state) {
    (void)state;
    kmx_agg_t *agg = kmx_agg_new(NULL, 0);
    assert_non_null(agg);
    kmx_testkit_rec_t r;
    s_make(&r, "JP", 202401, 202412, "album", 1, "USD");
    r.rec.value = NULL;
    Kmx__V1__StoredRecord sr = KMX__V1__STORED_RECORD__INIT;
    sr.record = &r.rec;
    Kmx__V1__StoredRecord *list[] = {&sr, NULL};
    assert_int_equal(kmx_agg_add_stored(agg, list, 2), 0);
    assert_int_equal(kmx_agg_matched(agg), 1);
    assert_int_equal(kmx_agg_groups(agg), 0);
    kmx_agg_destroy(&agg);
}

static void test_agg_refuses_unknown_fields_and_too_many_groups(void **state) {
    (void)state;
    Kmx__V1__GroupField bad[] = {KMX__V1__GROUP_FIELD__GROUP_UNSPECIFIED};
    assert_int_equal(kmx_agg_check_fields(bad, 1), KMX_ERR_INVAL);
    assert_null(kmx_agg_new(bad, 1));
    Kmx__V1__GroupField odd[] = {(Kmx__V1__GroupField)42};
    assert_int_equal(kmx_agg_check_fields(odd, 1), KMX_ERR_INVAL);
    Kmx__V1__GroupField many[KMX_AGG_FIELDS_MAX + 1];
    for (size_t i = 0; i < KMX_AGG_FIELDS_MAX + 1; i++)
        many[i] = KMX__V1__GROUP_FIELD__BY_MARKET;
    assert_int_equal(kmx_agg_check_fields(many, KMX_AGG_FIELDS_MAX), 0);
    assert_int_equal(kmx_agg_check_fields(many, KMX_AGG_FIELDS_MAX + 1), KMX_ERR_INVAL);

    Kmx__V1__GroupField by[] = {KMX__V1__GROUP_FIELD__BY_CATEGORY};
    kmx_agg_t *agg = kmx_agg_new(by, 1);
    assert_non_null(agg);
    char name[32];
    for (int i = 0; i < KMX_AGG_GROUPS_MAX; i++) {
        snprintf(name, sizeof name, "c%d", i);
        s_add(agg, "JP", 202401, 202412, name, 1, "USD");
    }
    s_add(agg, "JP", 202401, 202412, "c0", 1, "USD"); // an existing group still takes records
    kmx_testkit_rec_t r;
    s_make(&r, "JP", 202401, 202412, "one too many", 1, "USD");
    assert_int_equal(kmx_agg_add(agg, &r.rec), KMX_ERR_TOO_BIG);
    assert_int_equal(kmx_agg_groups(agg), KMX_AGG_GROUPS_MAX);
    kmx_agg_destroy(&agg);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_agg_sums_are_exact),
        cmocka_unit_test(test_agg_sum_exceeds_64_bits),
        cmocka_unit_test(test_agg_groups_by_two_fields),
        cmocka_unit_test(test_agg_splits_by_unit),
        cmocka_unit_test(test_agg_top_keeps_largest_sums),
        cmocka_unit_test(test_agg_groups_by_period_and_region),
        cmocka_unit_test(test_agg_empty_input_has_no_rows),
        cmocka_unit_test(test_agg_counts_records_without_value),
        cmocka_unit_test(test_agg_refuses_unknown_fields_and_too_many_groups),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
