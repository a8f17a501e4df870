/*  Tests for kmx_match: one filter definition for storage and kmx-query.  */
#include "kmx_match.h"

#include "kmx_err.h"
#include "kmx_testkit.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

typedef kmx_testkit_rec_t s_rec_t;

static void s_rec(s_rec_t *r, const char *market, uint32_t start, uint32_t end) {
    kmx_testkit_rec_init(r, market, start, end, 10000, "USD");
}

static void test_match_empty_filter_takes_everything(void **state) {
    (void)state;
    s_rec_t r;
    s_rec(&r, "JP", 202401, 202412);
    Kmx__V1__Filter f = KMX__V1__FILTER__INIT;
    assert_true(kmx_match_record(NULL, &r.rec));
    assert_true(kmx_match_record(&f, &r.rec));
    assert_false(kmx_match_record(&f, NULL));
}

static void test_match_period_and_granularity(void **state) {
    (void)state;
    s_rec_t year, month;
    s_rec(&year, "JP", 202401, 202412);
    s_rec(&month, "JP", 202403, 202403);
    Kmx__V1__Period p = KMX__V1__PERIOD__INIT;
    Kmx__V1__Filter f = KMX__V1__FILTER__INIT;
    f.period = &p;
    p.has_start = p.has_end = 1;
    p.start = 202401;
    p.end = 202406;
    assert_false(kmx_match_record(&f, &year.rec)); // not wholly inside the first half
    assert_true(kmx_match_record(&f, &month.rec));
    p.has_end = 0; // one end alone: that month
    p.start = 202403;
    kmx_period_t out;
    assert_true(kmx_match_period(&f, &out));
    assert_int_equal(out.start, 202403);
    assert_int_equal(out.end, 202403);
    assert_true(kmx_match_record(&f, &month.rec));
    f.period = NULL;
    f.granularity = "year";
    assert_true(kmx_match_record(&f, &year.rec));
    assert_false(kmx_match_record(&f, &month.rec));
    f.granularity = "ANY";
    kmx_gran_t g;
    assert_int_equal(kmx_match_gran(&f, &g), 0);
    assert_true(kmx_match_record(&f, &month.rec));
    f.granularity = "fortnight";
    assert_int_equal(kmx_match_gran(&f, &g), -1);
    assert_int_equal(kmx_match_check(&f), KMX_ERR_INVAL);
    f.granularity = NULL;
    f.period = &p;
    p.has_end = 1;
    p.start = 202413; // no such month
    p.end = 202414;
    assert_int_equal(kmx_match_check(&f), KMX_ERR_INVAL);
}

static void test_match_lists_kind_and_region(void **state) {
    (void)state;
    s_rec_t r;
    s_rec(&r, "JP", 202401, 202412);
    char *markets[] = {"us", "jp"};
    char *regions[] = {"Europe"};
    char *units[] = {"KRW"};
    Kmx__V1__Filter f = KMX__V1__FILTER__INIT;
    f.n_markets = 2;
    f.markets = markets;
    assert_true(kmx_match_record(&f, &r.rec)); // without regard to case
    f.n_units = 1;
    f.units = units;
    assert_false(kmx_match_record(&f, &r.rec));
    f.n_units = 0;
    f.n_regions = 1;
    f.regions = regions;
    assert_false(kmx_match_record(&f, &r.rec)); // JP is not in Europe
    f.n_regions = 0;
    f.has_kind = 1;
    f.kind = KMX__V1__KIND__CONSUMPTION;
    assert_false(kmx_match_record(&f, &r.rec));
    f.kind = KMX__V1__KIND__EXPORT;
    assert_true(kmx_match_record(&f, &r.rec));
    char *companies[] = {"HYBE"};
    f.n_companies = 1;
    f.companies = companies;
    assert_false(kmx_match_record(&f, &r.rec)); // no company: matches only ""
    assert_true(kmx_match_in_list(NULL, 0, "x"));
    char *empty[] = {""};
    assert_true(kmx_match_in_list(empty, 1, NULL));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match_empty_filter_takes_everything),
        cmocka_unit_test(test_match_period_and_granularity),
        cmocka_unit_test(test_match_lists_kind_and_region),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
