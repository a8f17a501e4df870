/*  Tests for kmx_period: every text form, canonical formatting, granularity, rejects.  */
#include "kmx_period.h"
#include "kmx_err.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

static void s_expect(const char *text, uint32_t start, uint32_t end, const char *canon)
{
    kmx_period_t p;
    char buf[KMX_PERIOD_TEXT_MAX];
    assert_int_equal(kmx_period_parse(text, &p), 0);
    assert_int_equal(p.start, start);
    assert_int_equal(p.end, end);
    assert_int_equal(kmx_period_format(&p, buf, sizeof buf), 0);
    assert_string_equal(buf, canon);
}

static void test_period_parse_accepts_every_form(void **state)
{
    (void)state;
    s_expect("2023", 202301, 202312, "2023");
    s_expect("2025-H1", 202501, 202506, "2025-H1");
    s_expect("2025-h2", 202507, 202512, "2025-H2");
    s_expect("2024-Q3", 202407, 202409, "2024-Q3");
    s_expect("2024-03", 202403, 202403, "2024-03");
    s_expect("2023-01/2023-04", 202301, 202304, "2023-01/2023-04");
    s_expect("2023-01/2023-10", 202301, 202310, "2023-01/2023-10");
    // A range that happens to be a quarter or a year formats in its short form.
    s_expect("2023-01/2023-12", 202301, 202312, "2023");
    s_expect("2023-04/2023-06", 202304, 202306, "2023-Q2");
    s_expect("2022/2023", 202201, 202312, "2022-01/2023-12");
}

// The forms reports and statistics offices write; canonical output stays the same.
static void test_period_parse_accepts_source_forms(void **state)
{
    (void)state;
    s_expect("1H 2025", 202501, 202506, "2025-H1");
    s_expect("H1 2025", 202501, 202506, "2025-H1");
    s_expect("2025 H2", 202507, 202512, "2025-H2");
    s_expect("Q3 2024", 202407, 202409, "2024-Q3");
    s_expect("2024Q3", 202407, 202409, "2024-Q3");
    s_expect("3Q 2024", 202407, 202409, "2024-Q3");
    s_expect("q4-2024", 202410, 202412, "2024-Q4");
    s_expect("Mar 2024", 202403, 202403, "2024-03");
    s_expect("March 2024", 202403, 202403, "2024-03");
    s_expect("Sept. 2023", 202309, 202309, "2023-09");
    s_expect("2024/03", 202403, 202403, "2024-03");
    s_expect("03/2024", 202403, 202403, "2024-03");
    s_expect("2024.03", 202403, 202403, "2024-03");
    s_expect("Jan-Apr 2023", 202301, 202304, "2023-01/2023-04");
    s_expect("2023-01 to 2023-04", 202301, 202304, "2023-01/2023-04");
    s_expect("Q1 2023 to Q2 2024", 202301, 202406, "2023-01/2024-06");
    s_expect("2022~2023", 202201, 202312, "2022-01/2023-12");
}

static void test_period_parse_rejects_malformed(void **state)
{
    (void)state;
    const char *bad[] = {"",        "20",         "2024-13",      "2024-00",  "2025-H3",
                         "2025-Q5", "2025-Q0",    "2024-3",       "2024-03x", "2023-05/2023-04",
                         "abcd",    "2024-03/",   "0999",         "3000",     " 2024",
                         "2024-Q",  "2023-01//2", "2023-01/2023-1", "H3 2025", "5Q 2024",
                         "Foo 2024", "Mar", "Q3",  "2024 Q3 Q4",    "Apr-Jan 2023", "13/2024",
                         "2024-03 to", "1H 2025 2026", "24Q3", "2024 to 2023"};
    kmx_period_t p;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (kmx_period_parse(bad[i], &p) != KMX_ERR_INVAL)
            fail_msg("accepted '%s'", bad[i]);
    }
    assert_int_equal(kmx_period_parse(NULL, &p), KMX_ERR_INVAL);
}

static void test_period_granularity_and_months(void **state)
{
    (void)state;
    kmx_period_t p;
    assert_int_equal(kmx_period_parse("2024", &p), 0);
    assert_int_equal(kmx_period_granularity(&p), KMX_GRAN_YEAR);
    assert_int_equal(kmx_period_months(&p), 12);
    assert_int_equal(kmx_period_parse("2024-Q4", &p), 0);
    assert_int_equal(kmx_period_granularity(&p), KMX_GRAN_QUARTER);
    assert_int_equal(kmx_period_parse("2023-01/2023-10", &p), 0);
    assert_int_equal(kmx_period_granularity(&p), KMX_GRAN_RANGE);
    assert_int_equal(kmx_period_months(&p), 10);
    assert_int_equal(kmx_period_parse("2023-11/2024-02", &p), 0);
    assert_int_equal(kmx_period_months(&p), 4);
    kmx_gran_t g;
    assert_int_equal(kmx_gran_parse("Half", &g), 0);
    assert_int_equal(g, KMX_GRAN_HALF);
    assert_string_equal(kmx_gran_name(g), "half");
    assert_int_equal(kmx_gran_parse("week", &g), KMX_ERR_INVAL);
}

static void test_period_contains_and_month_add(void **state)
{
    (void)state;
    kmx_period_t year, half, other;
    kmx_period_parse("2024", &year);
    kmx_period_parse("2024-H2", &half);
    kmx_period_parse("2024-12/2025-01", &other);
    assert_true(kmx_period_contains(&year, &half));
    assert_false(kmx_period_contains(&half, &year));
    assert_false(kmx_period_contains(&year, &other));
    assert_int_equal(kmx_month_add(202412, 1), 202501);
    assert_int_equal(kmx_month_add(202501, -1), 202412);
    assert_int_equal(kmx_month_add(202403, -15), 202212);
}

static void test_period_format_refuses_small_buffer(void **state)
{
    (void)state;
    kmx_period_t p = {202301, 202304};
    char buf[8];
    assert_int_equal(kmx_period_format(&p, buf, sizeof buf), KMX_ERR_OVERFLOW);
    kmx_period_t bad = {202313, 202401};
    assert_int_equal(kmx_period_format(&bad, buf, sizeof buf), KMX_ERR_INVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_period_parse_accepts_every_form),
        cmocka_unit_test(test_period_parse_accepts_source_forms),
        cmocka_unit_test(test_period_parse_rejects_malformed),
        cmocka_unit_test(test_period_granularity_and_months),
        cmocka_unit_test(test_period_contains_and_month_add),
        cmocka_unit_test(test_period_format_refuses_small_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
