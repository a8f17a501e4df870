/*  kmx_filter tests: canonical markets, regions and units, period and granularity checks,
    limits, and matching records the way storage does.  */
#include "kmx_err.h"
#include "kmx_filter.h"
#include "kmx_testkit.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

typedef kmx_testkit_rec_t s_rec_t;

// A record worth 1 of unit, in the category the filters are checked against.
static void s_rec(s_rec_t *r, const char *market, uint32_t start, uint32_t end, const char *unit) {
    kmx_testkit_rec_init(r, market, start, end, 1, unit);
    r->rec.category = "physical_album_customs";
}

static int s_new(const Kmx__V1__Filter *in, kmx_filter_t **out, char *why, size_t size) {
    return kmx_filter_new(in, out, why, size);
}

static void test_filter_canonicalises_markets_regions_and_units(void **state) {
    (void)state;
    char *markets[] = {"japan", "us"};
    char *regions[] = {"north america"};
    char *units[] = {"USD_million"};
    Kmx__V1__Filter in = KMX__V1__FILTER__INIT;
    in.n_markets = 2;
    in.markets = markets;
    in.n_regions = 1;
    in.regions = regions;
    in.n_units = 1;
    in.units = units;
    char why[256];
    kmx_filter_t *f = NULL;
    assert_int_equal(s_new(&in, &f, why, sizeof why), 0);
    const Kmx__V1__Filter *w = kmx_filter_wire(f);
    assert_string_equal(w->markets[0], "JP");
    assert_string_equal(w->markets[1], "US");
    assert_string_equal(w->regions[0], "North America");
    assert_string_equal(w->units[0], "USD");
    assert_null(w->granularity);
    s_rec_t r;
    s_rec(&r, "US", 202401, 202412, "USD");
    assert_true(kmx_filter_match(f, &r.rec));
    r.rec.market = "JP"; // listed market, but its region is not North America
    assert_false(kmx_filter_match(f, &r.rec));
    kmx_filter_destroy(&f);
    assert_null(f);
}

static void test_filter_names_unknown_market(void **state) {
    (void)state;
    char *markets[] = {"JP", "Narnia"};
    Kmx__V1__Filter in = KMX__V1__FILTER__INIT;
    in.n_markets = 2;
    in.markets = markets;
    char why[256];
    kmx_filter_t *f = NULL;
    assert_int_equal(s_new(&in, &f, why, sizeof why), KMX_ERR_INVAL);
    assert_null(f);
    assert_non_null(strstr(why, "Narnia"));
    char *regions[] = {"Atlantis"};
    Kmx__V1__Filter in2 = KMX__V1__FILTER__INIT;
    in2.n_regions = 1;
    in2.regions = regions;
    assert_int_equal(s_new(&in2, &f, why, sizeof why), KMX_ERR_INVAL);
    assert_non_null(strstr(why, "Atlantis"));
}

static void test_filter_checks_period_and_granularity(void **state) {
    (void)state;
    Kmx__V1__Period p = KMX__V1__PERIOD__INIT;
    p.has_start = p.has_end = 1;
    p.start = 202412;
    p.end = 202301;
    Kmx__V1__Filter in = KMX__V1__FILTER__INIT;
    in.period = &p;
    char why[256];
    kmx_filter_t *f = NULL;
    assert_int_equal(s_new(&in, &f, why, sizeof why), KMX_ERR_INVAL);
    assert_non_null(strstr(why, "inverted"));
    p.start = 202313; // month 13
    p.end = 202412;
    assert_int_equal(s_new(&in, &f, why, sizeof why), KMX_ERR_INVAL);
    p.start = 202301;
    in.granularity = "weekly";
    assert_int_equal(s_new(&in, &f, why, sizeof why), KMX_ERR_INVAL);
    assert_non_null(strstr(why, "weekly"));

    in.granularity = "Half";
    assert_int_equal(s_new(&in, &f, why, sizeof why), 0);
    assert_string_equal(kmx_filter_wire(f)->granularity, "half");
    s_rec_t r;
    s_rec(&r, "JP", 202401, 202406, "USD");
    assert_true(kmx_filter_match(f, &r.rec));
    s_rec(&r, "JP", 202401, 202412, "USD"); // a year, not a half
    assert_false(kmx_filter_match(f, &r.rec));
    s_rec(&r, "JP", 202207, 202212, "USD"); // a half outside the range
    assert_false(kmx_filter_match(f, &r.rec));
    kmx_filter_destroy(&f);

    in.granularity = "any";
    assert_int_equal(s_new(&in, &f, why, sizeof why), 0);
    assert_null(kmx_filter_wire(f)->granularity);
    s_rec(&r, "JP", 202401, 202412, "USD");
    assert_true(kmx_filter_match(f, &r.rec));
    kmx_filter_destroy(&f);
}

static void test_filter_single_period_end_means_that_month(void **state) {
    (void)state;
    Kmx__V1__Period p = KMX__V1__PERIOD__INIT;
    p.has_start = 1;
    p.start = 202403;
    Kmx__V1__Filter in = KMX__V1__FILTER__INIT;
    in.period = &p;
    char why[256];
    kmx_filter_t *f = NULL;
    assert_int_equal(s_new(&in, &f, why, sizeof why), 0);
    const Kmx__V1__Filter *w = kmx_filter_wire(f);
    assert_int_equal(w->period->start, 202403);
    assert_int_equal(w->period->end, 202403);
    kmx_filter_destroy(&f);
}

static void test_filter_matches_everything_when_empty(void **state) {
    (void)state;
    char why[256];
    kmx_filter_t *f = NULL;
    assert_int_equal(s_new(NULL, &f, why, sizeof why), 0);
    s_rec_t r;
    s_rec(&r, "WORLD", 201901, 201912, "copies");
    assert_true(kmx_filter_match(f, &r.rec));
    assert_false(kmx_filter_match(f, NULL));
    kmx_filter_destroy(&f);
}

static void test_filter_lists_ignore_case_and_kind_filters(void **state) {
    (void)state;
    char *cats[] = {"PHYSICAL_ALBUM_CUSTOMS"};
    Kmx__V1__Filter in = KMX__V1__FILTER__INIT;
    in.n_categories = 1;
    in.categories = cats;
    in.has_kind = 1;
    in.kind = KMX__V1__KIND__CONSUMPTION;
    char why[256];
    kmx_filter_t *f = NULL;
    assert_int_equal(s_new(&in, &f, why, sizeof why), 0);
    s_rec_t r;
    s_rec(&r, "KR", 202401, 202412, "USD");
    assert_false(kmx_filter_match(f, &r.rec)); // an export
    r.rec.kind = KMX__V1__KIND__CONSUMPTION;
    assert_true(kmx_filter_match(f, &r.rec));
    kmx_filter_destroy(&f);
    in.kind = (Kmx__V1__Kind)9;
    assert_int_equal(s_new(&in, &f, why, sizeof why), KMX_ERR_INVAL);
}

static void test_filter_bounds_lists_and_entries(void **state) {
    (void)state;
    size_t n = KMX_FILTER_LIST_MAX + 1;
    char **items = calloc(n, sizeof *items);
    assert_non_null(items);
    for (size_t i = 0; i < n; i++)
        items[i] = "x";
    Kmx__V1__Filter in = KMX__V1__FILTER__INIT;
    in.n_items = n;
    in.items = items;
    char why[256];
    kmx_filter_t *f = NULL;
    assert_int_equal(s_new(&in, &f, why, sizeof why), KMX_ERR_TOO_BIG);
    char long_item[KMX_FILTER_TEXT_MAX + 8];
    memset(long_item, 'a', sizeof long_item - 1);
    long_item[sizeof long_item - 1] = '\0';
    items[0] = long_item;
    in.n_items = 1;
    assert_int_equal(s_new(&in, &f, why, sizeof why), KMX_ERR_TOO_BIG);
    assert_null(f);
    free(items);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_filter_canonicalises_markets_regions_and_units),
        cmocka_unit_test(test_filter_names_unknown_market),
        cmocka_unit_test(test_filter_checks_period_and_granularity),
        cmocka_unit_test(test_filter_single_period_end_means_that_month),
        cmocka_unit_test(test_filter_matches_everything_when_empty),
        cmocka_unit_test(test_filter_lists_ignore_case_and_kind_filters),
        cmocka_unit_test(test_filter_bounds_lists_and_entries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
