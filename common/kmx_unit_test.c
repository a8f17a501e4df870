/*  Tests for kmx_unit: every unit of the sample data has a class and additivity, and the
    table answers the same after kmx_unit_normalize as sources write the unit.  */
#include "kmx_unit.h"

#include "kmx_value.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

typedef struct {
    const char *written; // the unit as a source writes it
    const char *cls;     // kmx_unit_class_name of its base unit
    int adds;            // kmx_unit_adds
    int over_time;       // kmx_unit_adds_over_time
    int negative;        // kmx_unit_may_be_negative
} s_case_t;

// Every unit in data/kmusic-facts*.csv, and the patterns around them.
static const s_case_t s_cases[] = {
    {"USD_million", "money", 1, 1, 0},
    {"KRW_billion", "money", 1, 1, 0},
    {"usd", "money", 1, 1, 0},
    {"copies_million", "count", 1, 1, 0},
    {"copies", "count", 1, 1, 0},
    {"albums", "count", 1, 1, 0},
    {"units_million", "count", 1, 1, 0},
    {"concerts", "count", 1, 1, 0},
    {"performances", "count", 1, 1, 0},
    {"attendees", "count", 1, 1, 0},
    {"users_million", "count", 1, 0, 0},
    {"users", "count", 1, 0, 0},
    {"listeners", "count", 1, 0, 0},
    {"countries", "count", 0, 0, 0},
    {"artists", "count", 0, 0, 0},
    {"percent_share", "percent", 0, 0, 0},
    {"percent_respondents", "percent", 0, 0, 0},
    {"percent_respondents_multi", "percent", 0, 0, 0},
    {"percent_respondents_approx", "percent", 0, 0, 0},
    {"percent_users", "percent", 0, 0, 0},
    {"%", "percent", 0, 0, 0},
    {"percent_yoy", "growth", 0, 0, 1},
    {"percent_mom", "growth", 0, 0, 1},
    {"percent_change", "growth", 0, 0, 1},
    {"percent_cagr", "growth", 0, 0, 1},
    {"percent_growth_h1", "growth", 0, 0, 1},
    {"rank", "rank", 0, 0, 0},
    {"index_points", "index", 0, 0, 0},
    {"months", "duration", 0, 0, 0},
    {"days", "duration", 0, 0, 0},
    {"performances_per_capita", "per_capita", 0, 0, 0},
    {"KRW_per_capita", "per_capita", 0, 0, 0},
};

static void test_unit_table_classes_and_flags(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof s_cases / sizeof s_cases[0]; i++) {
        const s_case_t *c = &s_cases[i];
        char base[KMX_UNIT_MAX];
        int64_t mult;
        if (kmx_unit_normalize(c->written, base, sizeof base, &mult) != 0)
            fail_msg("unit '%s' refused", c->written);
        if (strcmp(kmx_unit_class_name(kmx_unit_class(base)), c->cls) != 0 ||
            kmx_unit_adds(base) != c->adds || kmx_unit_adds_over_time(base) != c->over_time ||
            kmx_unit_may_be_negative(base) != c->negative)
            fail_msg("unit '%s' (base '%s'): class %s adds %d over_time %d negative %d", c->written,
                     base, kmx_unit_class_name(kmx_unit_class(base)), kmx_unit_adds(base),
                     kmx_unit_adds_over_time(base), kmx_unit_may_be_negative(base));
        assert_true(kmx_unit_is_known(base));
    }
}

static void test_unit_unknown_and_magnitudes(void **state) {
    (void)state;
    const char *unknown[] = {
        NULL,          "",    "bananas", "percent_", "percent_Yoy", "rank_per_capita",
        "_per_capita", "usd", "Users"};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        assert_int_equal(kmx_unit_class(unknown[i]), KMX_UNIT_UNKNOWN);
        assert_false(kmx_unit_adds(unknown[i]));
        assert_false(kmx_unit_is_known(unknown[i]));
    }
    assert_string_equal(kmx_unit_class_name(KMX_UNIT_UNKNOWN), "unknown");
    // A magnitude belongs to amounts of money, counts and index points only.
    char base[KMX_UNIT_MAX];
    int64_t mult;
    const char *no_magnitude[] = {"months_million", "percent_yoy_million", "million rank",
                                  "days_k"};
    for (size_t i = 0; i < sizeof no_magnitude / sizeof no_magnitude[0]; i++)
        assert_int_not_equal(kmx_unit_normalize(no_magnitude[i], base, sizeof base, &mult), 0);
    assert_int_equal(kmx_unit_normalize("index_points_million", base, sizeof base, &mult), 0);
    assert_string_equal(base, "index_points");
    assert_string_equal(kmx_unit_currency("krw"), "KRW");
    assert_true(kmx_unit_is_currency("KRW"));
    assert_false(kmx_unit_is_currency("krw"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unit_table_classes_and_flags),
        cmocka_unit_test(test_unit_unknown_and_magnitudes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
