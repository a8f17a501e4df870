/*  kmx_group tests: keys of several fields, the unit split, exact 128-bit sums, minima and
    maxima, roll-up entries that carry no range, the group limit, row order, and how period
    and year keys are written.  */
#include "kmx_err.h"
#include "kmx_group.h"
#include "kmx_testkit.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

// Builds a test record of market, start..end, category and amount of unit in r.
static void s_make(kmx_testkit_rec_t *r, const char *market, uint32_t start, uint32_t end,
                   const char *category, int64_t amount, const char *unit) {
    kmx_testkit_rec_init(r, market, start, end, amount, unit);
    r->rec.category = (char *)category;
}

// Adds one record, as a walk over stored records does (count 1, min and max known).
static void s_add(kmx_group_t *group, const char *market, uint32_t start, uint32_t end,
                  const char *category, int64_t amount, const char *unit) {
    kmx_testkit_rec_t r;
    s_make(&r, market, start, end, category, amount, unit);
    assert_int_equal(kmx_group_add(group, &r.rec, amount, 1, 1), 0);
}

// Adds one roll-up entry: a sum of count records, without their range.
static void s_add_rollup(kmx_group_t *group, const char *market, uint32_t start, uint32_t end,
                         kmx_i128 sum, uint64_t count) {
    kmx_testkit_rec_t r;
    s_make(&r, market, start, end, "album", 0, "USD");
    assert_int_equal(kmx_group_add(group, &r.rec, sum, count, 0), 0);
}

static Kmx__V1__QueryResult s_result(kmx_group_t *group) {
    Kmx__V1__QueryResult res = KMX__V1__QUERY_RESULT__INIT;
    assert_int_equal(kmx_group_result(group, &res), 0);
    assert_true(res.has_matched);
    return res;
}

static void test_group_sums_decimals_exactly(void **state) {
    (void)state;
    kmx_group_t *group = kmx_group_new(NULL, 0);
    assert_non_null(group);
    s_add(group, "JP", 202301, 202312, "album", 1000, "USD");   // 0.1
    s_add(group, "US", 202401, 202412, "digital", 2000, "USD"); // 0.2
    Kmx__V1__QueryResult res = s_result(group);
    assert_int_equal(res.n_rows, 1);
    assert_int_equal(res.matched, 2);
    assert_int_equal(res.rows[0]->n_keys, 0);
    assert_string_equal(res.rows[0]->unit, "USD");
    assert_string_equal(res.rows[0]->sum, "0.3");
    assert_true(res.rows[0]->has_count);
    assert_int_equal(res.rows[0]->count, 2);
    kmx_group_destroy(&group);
    assert_null(group);
    kmx_group_destroy(&group); // a cleared pointer is fine
}

static void test_group_sums_beyond_64_bits_exactly(void **state) {
    (void)state;
    Kmx__V1__GroupField by[] = {KMX__V1__GROUP_FIELD__BY_MARKET};
    kmx_group_t *group = kmx_group_new(by, 1);
    assert_non_null(group);
    for (int i = 0; i < 4; i++)
        s_add(group, "US", 202401, 202412, "x", INT64_MAX, "KRW");
    s_add(group, "US", 202401, 202412, "x", -5, "KRW");
    // A roll-up entry's sum may itself be beyond 64 bits.
    s_add_rollup(group, "JP", 202401, 202412, (kmx_i128)INT64_MAX * 3 + 1, 3);
    Kmx__V1__QueryResult res = s_result(group);
    assert_int_equal(res.n_rows, 2);
    // 3 * 9223372036854775807 + 1 = 27670116110564327422 ten-thousandths.
    assert_string_equal(res.rows[0]->keys[0], "JP");
    assert_string_equal(res.rows[0]->sum, "2767011611056432.7422");
    // 4 * 9223372036854775807 - 5 = 36893488147419103223 ten-thousandths.
    assert_string_equal(res.rows[1]->keys[0], "US");
    assert_string_equal(res.rows[1]->sum, "3689348814741910.3223");
    assert_int_equal(res.rows[1]->count, 5);
    assert_int_equal(res.matched, 8);
    kmx_group_destroy(&group);
}

static void test_group_keys_hold_several_fields(void **state) {
    (void)state;
    Kmx__V1__GroupField by[] = {KMX__V1__GROUP_FIELD__BY_MARKET, KMX__V1__GROUP_FIELD__BY_YEAR,
                                KMX__V1__GROUP_FIELD__BY_CATEGORY};
    kmx_group_t *group = kmx_group_new(by, 3);
    assert_non_null(group);
    s_add(group, "US", 202401, 202406, "album", 10000, "USD");
    s_add(group, "JP", 202407, 202412, "album", 20000, "USD");
    s_add(group, "JP", 202401, 202406, "album", 30000, "USD");
    s_add(group, "JP", 202401, 202406, "digital", 40000, "USD");
    s_add(group, "JP", 202301, 202312, "album", 50000, "USD");
    Kmx__V1__QueryResult res = s_result(group);
    assert_int_equal(res.n_rows, 4);
    assert_int_equal(res.matched, 5);
    const char *want[4][4] = {{"JP", "2023", "album", "5"},
                              {"JP", "2024", "album", "5"},
                              {"JP", "2024", "digital", "4"},
                              {"US", "2024", "album", "1"}};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(res.rows[i]->n_keys, 3);
        for (size_t k = 0; k < 3; k++)
            assert_string_equal(res.rows[i]->keys[k], want[i][k]);
        assert_string_equal(res.rows[i]->sum, want[i][3]);
    }
    assert_int_equal(res.rows[1]->count, 2);

    // Fields a record leaves out group under the empty text.
    Kmx__V1__GroupField more[] = {KMX__V1__GROUP_FIELD__BY_ITEM, KMX__V1__GROUP_FIELD__BY_COMPANY,
                                  KMX__V1__GROUP_FIELD__BY_ARTIST, KMX__V1__GROUP_FIELD__BY_SOURCE};
    kmx_group_t *other = kmx_group_new(more, 4);
    assert_non_null(other);
    kmx_testkit_rec_t r;
    s_make(&r, "JP", 202401, 202412, "album", 10000, "USD");
    r.rec.artist = "IVE";
    assert_int_equal(kmx_group_add(other, &r.rec, 10000, 1, 1), 0);
    res = s_result(other);
    assert_int_equal(res.n_rows, 1);
    assert_string_equal(res.rows[0]->keys[0], "album exports");
    assert_string_equal(res.rows[0]->keys[1], "");
    assert_string_equal(res.rows[0]->keys[2], "IVE");
    assert_string_equal(res.rows[0]->keys[3], "kmx test");
    kmx_group_destroy(&other);
    kmx_group_destroy(&group);
}

static void test_group_always_splits_by_unit(void **state) {
    (void)state;
    Kmx__V1__GroupField by[] = {KMX__V1__GROUP_FIELD__BY_MARKET};
    kmx_group_t *group = kmx_group_new(by, 1);
    assert_non_null(group);
    s_add(group, "JP", 202401, 202412, "album", 10000, "USD");
    s_add(group, "JP", 202401, 202412, "album", 70000, "KRW");
    s_add(group, "JP", 202401, 202412, "album", 5000, "USD");
    Kmx__V1__QueryResult res = s_result(group);
    assert_int_equal(res.n_rows, 2);
    assert_string_equal(res.rows[0]->keys[0], "JP");
    assert_string_equal(res.rows[0]->unit, "KRW");
    assert_string_equal(res.rows[0]->sum, "7");
    assert_string_equal(res.rows[1]->keys[0], "JP");
    assert_string_equal(res.rows[1]->unit, "USD");
    assert_string_equal(res.rows[1]->sum, "1.5");
    kmx_group_destroy(&group);

    // Grouping by nothing still keeps units apart; grouping by unit names it as a key too.
    Kmx__V1__GroupField by_unit[] = {KMX__V1__GROUP_FIELD__BY_UNIT};
    for (size_t n = 0; n <= 1; n++) {
        group = kmx_group_new(by_unit, n);
        assert_non_null(group);
        s_add(group, "JP", 202401, 202412, "album", 10000, "USD");
        s_add(group, "US", 202401, 202412, "album", 20000, "KRW");
        res = s_result(group);
        assert_int_equal(res.n_rows, 2);
        assert_string_equal(res.rows[0]->unit, "KRW");
        assert_string_equal(res.rows[1]->unit, "USD");
        if (n == 1)
            assert_string_equal(res.rows[1]->keys[0], "USD");
        kmx_group_destroy(&group);
    }
}

static void test_group_tracks_min_and_max(void **state) {
    (void)state;
    Kmx__V1__GroupField by[] = {KMX__V1__GROUP_FIELD__BY_MARKET};
    kmx_group_t *group = kmx_group_new(by, 1);
    assert_non_null(group);
    s_add(group, "JP", 202401, 202412, "album", 30000, "USD");
    s_add(group, "JP", 202301, 202312, "album", -20000, "USD");
    s_add(group, "JP", 202201, 202212, "album", 90000, "USD");
    s_add(group, "US", 202401, 202412, "album", 70000, "USD");
    Kmx__V1__QueryResult res = s_result(group);
    assert_int_equal(res.n_rows, 2);
    assert_true(res.rows[0]->has_min && res.rows[0]->has_max);
    assert_int_equal(res.rows[0]->min, -20000);
    assert_int_equal(res.rows[0]->max, 90000);
    // One record: its amount is both ends.
    assert_true(res.rows[1]->has_min && res.rows[1]->has_max);
    assert_int_equal(res.rows[1]->min, 70000);
    assert_int_equal(res.rows[1]->max, 70000);
    kmx_group_destroy(&group);
}

static void test_group_has_no_range_after_a_rollup_entry(void **state) {
    (void)state;
    Kmx__V1__GroupField by[] = {KMX__V1__GROUP_FIELD__BY_MARKET};
    kmx_group_t *group = kmx_group_new(by, 1);
    assert_non_null(group);
    s_add(group, "JP", 202401, 202412, "album", 10000, "USD");
    s_add_rollup(group, "JP", 202401, 202412, 50000, 5);
    s_add(group, "JP", 202401, 202412, "album", 20000, "USD"); // a later record does not help
    s_add_rollup(group, "CN", 202401, 202412, 30000, 2);
    s_add(group, "CN", 202401, 202412, "album", 40000, "USD"); // nor one after a first entry
    s_add(group, "US", 202401, 202412, "album", 60000, "USD");
    Kmx__V1__QueryResult res = s_result(group);
    assert_int_equal(res.n_rows, 3);
    assert_int_equal(res.matched, 11);
    assert_string_equal(res.rows[0]->keys[0], "CN");
    assert_false(res.rows[0]->has_min || res.rows[0]->has_max);
    assert_int_equal(res.rows[0]->count, 3);
    assert_string_equal(res.rows[0]->sum, "7");
    assert_string_equal(res.rows[1]->keys[0], "JP");
    assert_false(res.rows[1]->has_min || res.rows[1]->has_max);
    assert_int_equal(res.rows[1]->count, 7);
    assert_string_equal(res.rows[1]->sum, "8");
    // A group of records alone keeps its range.
    assert_string_equal(res.rows[2]->keys[0], "US");
    assert_true(res.rows[2]->has_min && res.rows[2]->has_max);
    assert_int_equal(res.rows[2]->min, 60000);
    kmx_group_destroy(&group);
}

static void test_group_refuses_one_group_too_many(void **state) {
    (void)state;
    Kmx__V1__GroupField by[] = {KMX__V1__GROUP_FIELD__BY_CATEGORY};
    kmx_group_t *group = kmx_group_new(by, 1);
    assert_non_null(group);
    char name[32];
    for (int i = 0; i < KMX_GROUP_GROUPS_MAX; i++) {
        snprintf(name, sizeof name, "c%d", i);
        s_add(group, "JP", 202401, 202412, name, 1, "USD");
    }
    s_add(group, "JP", 202401, 202412, "c0", 1, "USD"); // an existing group still takes records
    kmx_testkit_rec_t r;
    s_make(&r, "JP", 202401, 202412, "one too many", 1, "USD");
    assert_int_equal(kmx_group_add(group, &r.rec, 1, 1, 1), KMX_ERR_TOO_BIG);
    s_make(&r, "JP", 202401, 202412, "c1", 1, "KRW"); // another unit is another group
    assert_int_equal(kmx_group_add(group, &r.rec, 1, 1, 1), KMX_ERR_TOO_BIG);
    Kmx__V1__QueryResult res = s_result(group);
    assert_int_equal(res.n_rows, KMX_GROUP_GROUPS_MAX);
    assert_int_equal(res.matched, KMX_GROUP_GROUPS_MAX + 1);
    assert_string_equal(res.rows[0]->keys[0], "c0");
    assert_string_equal(res.rows[0]->sum, "0.0002");
    kmx_group_destroy(&group);
}

static void test_group_sorts_rows_by_keys_then_unit(void **state) {
    (void)state;
    Kmx__V1__GroupField by[] = {KMX__V1__GROUP_FIELD__BY_CATEGORY, KMX__V1__GROUP_FIELD__BY_MARKET};
    kmx_group_t *group = kmx_group_new(by, 2);
    assert_non_null(group);
    s_add(group, "JP", 202401, 202412, "b", 1, "USD");
    s_add(group, "JP", 202401, 202412, "a b", 1, "USD");
    s_add(group, "US", 202401, 202412, "a", 1, "USD");
    s_add(group, "JP", 202401, 202412, "a", 1, "USD");
    s_add(group, "JP", 202401, 202412, "a", 1, "KRW");
    s_add(group, "JP", 202401, 202412, "", 1, "USD");
    Kmx__V1__QueryResult res = s_result(group);
    const char *want[6][3] = {{"", "JP", "USD"},  {"a", "JP", "KRW"},   {"a", "JP", "USD"},
                              {"a", "US", "USD"}, {"a b", "JP", "USD"}, {"b", "JP", "USD"}};
    assert_int_equal(res.n_rows, 6);
    for (size_t i = 0; i < 6; i++) {
        assert_string_equal(res.rows[i]->keys[0], want[i][0]);
        assert_string_equal(res.rows[i]->keys[1], want[i][1]);
        assert_string_equal(res.rows[i]->unit, want[i][2]);
    }
    kmx_group_destroy(&group);

    // Periods sort by their text, not by their months: "2024" before "2024-03".
    Kmx__V1__GroupField by_period[] = {KMX__V1__GROUP_FIELD__BY_PERIOD};
    group = kmx_group_new(by_period, 1);
    assert_non_null(group);
    s_add(group, "JP", 202401, 202406, "album", 1, "USD");
    s_add(group, "JP", 202403, 202403, "album", 1, "USD");
    s_add(group, "JP", 202401, 202412, "album", 1, "USD");
    s_add(group, "JP", 202307, 202309, "album", 1, "USD");
    res = s_result(group);
    const char *periods[] = {"2023-Q3", "2024", "2024-03", "2024-H1"};
    assert_int_equal(res.n_rows, 4);
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(res.rows[i]->keys[0], periods[i]);
    kmx_group_destroy(&group);
}

static void test_group_writes_period_and_year_keys(void **state) {
    (void)state;
    Kmx__V1__GroupField by[] = {KMX__V1__GROUP_FIELD__BY_PERIOD, KMX__V1__GROUP_FIELD__BY_YEAR,
                                KMX__V1__GROUP_FIELD__BY_REGION};
    kmx_group_t *group = kmx_group_new(by, 3);
    assert_non_null(group);
    s_add(group, "US", 202501, 202506, "album", 10000, "USD");
    s_add(group, "CA", 202501, 202506, "album", 20000, "USD"); // same region
    s_add(group, "JP", 202407, 202409, "album", 1, "USD");
    s_add(group, "JP", 202311, 202402, "album", 1, "USD"); // a range: its start's year
    s_add(group, "JP", 202413, 202413, "album", 1, "USD"); // no such month: shown raw
    Kmx__V1__QueryResult res = s_result(group);
    const char *want[4][3] = {{"2023-11/2024-02", "2023", "Japan"},
                              {"2024-Q3", "2024", "Japan"},
                              {"202413/202413", "2024", "Japan"},
                              {"2025-H1", "2025", "North America"}};
    assert_int_equal(res.n_rows, 4);
    for (size_t i = 0; i < 4; i++) {
        for (size_t k = 0; k < 3; k++)
            assert_string_equal(res.rows[i]->keys[k], want[i][k]);
    }
    assert_string_equal(res.rows[3]->sum, "3");
    // Asking again gives the same rows.
    res = s_result(group);
    assert_int_equal(res.n_rows, 4);
    assert_string_equal(res.rows[3]->keys[0], "2025-H1");
    kmx_group_destroy(&group);
}

static void test_group_refuses_bad_fields_and_records(void **state) {
    (void)state;
    Kmx__V1__GroupField bad[] = {KMX__V1__GROUP_FIELD__GROUP_UNSPECIFIED};
    assert_int_equal(kmx_group_check_fields(bad, 1), KMX_ERR_INVAL);
    assert_null(kmx_group_new(bad, 1));
    Kmx__V1__GroupField odd[] = {(Kmx__V1__GroupField)42};
    assert_int_equal(kmx_group_check_fields(odd, 1), KMX_ERR_INVAL);
    assert_int_equal(kmx_group_check_fields(NULL, 1), KMX_ERR_INVAL);
    Kmx__V1__GroupField many[KMX_GROUP_FIELDS_MAX + 1];
    for (size_t i = 0; i < KMX_GROUP_FIELDS_MAX + 1; i++)
        many[i] = KMX__V1__GROUP_FIELD__BY_MARKET;
    assert_int_equal(kmx_group_check_fields(many, KMX_GROUP_FIELDS_MAX), 0);
    assert_int_equal(kmx_group_check_fields(many, KMX_GROUP_FIELDS_MAX + 1), KMX_ERR_INVAL);
    Kmx__V1__GroupField rollup[] = {KMX__V1__GROUP_FIELD__BY_YEAR, KMX__V1__GROUP_FIELD__BY_REGION};
    assert_true(kmx_group_fields_rollup(rollup, 2));
    Kmx__V1__GroupField records[] = {KMX__V1__GROUP_FIELD__BY_MARKET,
                                     KMX__V1__GROUP_FIELD__BY_ARTIST};
    assert_false(kmx_group_fields_rollup(records, 2));

    kmx_group_t *group = kmx_group_new(many, 1);
    assert_non_null(group);
    kmx_testkit_rec_t r;
    s_make(&r, "JP", 202401, 202412, "album", 1, "USD");
    r.rec.value = NULL;
    assert_int_equal(kmx_group_add(group, &r.rec, 1, 1, 1), KMX_ERR_INVAL);
    s_make(&r, "JP", 202401, 202412, "album", 1, "USD");
    r.rec.period = NULL;
    assert_int_equal(kmx_group_add(group, &r.rec, 1, 1, 1), KMX_ERR_INVAL);
    Kmx__V1__QueryResult res = s_result(group);
    assert_int_equal(res.n_rows, 0);
    assert_int_equal(res.matched, 0);
    kmx_group_destroy(&group);
}

// Removing a record takes its amount and one count out of its row; a row left empty is no
// row; a record never added cannot be removed.
static void test_group_remove_takes_a_record_out(void **state) {
    (void)state;
    Kmx__V1__GroupField by[] = {KMX__V1__GROUP_FIELD__BY_MARKET};
    kmx_group_t *group = kmx_group_new(by, 1);
    assert_non_null(group);
    s_add_rollup(group, "WORLD", 202401, 202412, 5836200000000LL, 2); // 291.8 + 291.82 M
    s_add(group, "JP", 202401, 202412, "album", 898000000000LL, "USD");
    kmx_testkit_rec_t aside, jp, never;
    s_make(&aside, "WORLD", 202401, 202412, "album", 2918000000000LL, "USD");
    s_make(&jp, "JP", 202401, 202412, "album", 898000000000LL, "USD");
    s_make(&never, "CN", 202401, 202412, "album", 1, "USD");
    assert_int_equal(kmx_group_remove(group, &aside.rec), 0);
    assert_int_equal(kmx_group_remove(group, &jp.rec), 0);
    assert_int_equal(kmx_group_remove(group, &jp.rec), KMX_ERR_NOT_FOUND);
    assert_int_equal(kmx_group_remove(group, &never.rec), KMX_ERR_NOT_FOUND);
    assert_int_equal(kmx_group_remove(NULL, &jp.rec), KMX_ERR_INVAL);
    Kmx__V1__QueryResult res = s_result(group);
    assert_int_equal(res.n_rows, 1); // JP is empty, CN was never there
    assert_int_equal(res.matched, 1);
    assert_string_equal(res.rows[0]->keys[0], "WORLD");
    assert_string_equal(res.rows[0]->sum, "291820000");
    assert_int_equal(res.rows[0]->count, 1);
    assert_false(res.rows[0]->has_min);
    kmx_group_destroy(&group);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_group_sums_decimals_exactly),
        cmocka_unit_test(test_group_remove_takes_a_record_out),
        cmocka_unit_test(test_group_sums_beyond_64_bits_exactly),
        cmocka_unit_test(test_group_keys_hold_several_fields),
        cmocka_unit_test(test_group_always_splits_by_unit),
        cmocka_unit_test(test_group_tracks_min_and_max),
        cmocka_unit_test(test_group_has_no_range_after_a_rollup_entry),
        cmocka_unit_test(test_group_refuses_one_group_too_many),
        cmocka_unit_test(test_group_sorts_rows_by_keys_then_unit),
        cmocka_unit_test(test_group_writes_period_and_year_keys),
        cmocka_unit_test(test_group_refuses_bad_fields_and_records),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
