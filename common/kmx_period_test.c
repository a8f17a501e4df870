/*  Tests for kmx_period: every text form, canonical formatting, granularity, rejects.  */
#include "kmx_period.h"

#include "kmx_err.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static void s_expect(const char *text, uint32_t start, uint32_t end, const char *canon) {
    kmx_period_t p;
    char buf[KMX_PERIOD_TEXT_MAX];
    assert_int_equal(kmx_period_parse(text, &p), 0);
    assert_int_equal(p.start, start);
    assert_int_equal(p.end, end);
    assert_int_equal(kmx_period_format(&p, buf, sizeof buf), 0);
    assert_string_equal(buf, canon);
}

static void test_period_parse_accepts_every_form(void **state) {
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
static void test_period_parse_accepts_source_forms(void **state) {
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

static void test_period_parse_rejects_malformed(void **state) {
    (void)state;
    const char *bad[] = {"",
                         "20",
                         "2024-13",
                         "2024-00",
                         "2025-H3",
                         "2025-Q5",
                         "2025-Q0",
                         "2024-3",
                         "2024-03x",
                         "2023-05/2023-04",
                         "abcd",
                         "2024-03/",
                         "0999",
                         "3000",
                         " 2024",
                         "2024-Q",
                         "2023-01//2",
                         "2023-01/2023-1",
                         "H3 2025",
                         "5Q 2024",
                         "Foo 2024",
                         "Mar",
                         "Q3",
                         "2024 Q3 Q4",
                         "Apr-Jan 2023",
                         "13/2024",
                         "2024-03 to",
                         "1H 2025 2026",
                         "24Q3",
                         "2024 to 2023"};
    kmx_period_t p;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (kmx_period_parse(bad[i], &p) != KMX_ERR_INVAL)
            fail_msg("accepted '%s'", bad[i]);
    }
    assert_int_equal(kmx_period_parse(NULL, &p), KMX_ERR_INVAL);
}

// The forms statistics files carry, each read as the month range it falls in.
static void test_period_parse_ext_accepts_file_forms(void **state) {
    (void)state;
    kmx_period_opts_t mdy = {KMX_DATE_ORDER_MDY, 0}, dmy = {KMX_DATE_ORDER_DMY, 0};
    kmx_period_opts_t excel = {KMX_DATE_ORDER_NONE, 1};
    static const kmx_period_opts_t *none = NULL;
    const struct {
        const char *text;              // as a file writes it
        const kmx_period_opts_t *opts; // options in force
        uint32_t start, end;           // months expected
    } cases[] = {
        {"2024-01-01", none, 202401, 202401},    {"2024-02-29", none, 202402, 202402},
        {"2024.01.15", none, 202401, 202401},    {"2024/1/31", none, 202401, 202401},
        {"2024. 1. 1.", none, 202401, 202401},   {"20240115", none, 202401, 202401},
        {"202401", none, 202401, 202401},        {"2024.1", none, 202401, 202401},
        {"2024.01", none, 202401, 202401},       {"2024.10", none, 202410, 202410},
        {"2024-01", none, 202401, 202401},       {"2024년 1월", none, 202401, 202401},
        {"2024년 01월", none, 202401, 202401},   {"2024년12월", none, 202412, 202412},
        {"2024년", none, 202401, 202412},        {"2024년도", none, 202401, 202412},
        {"2024년 상반기", none, 202401, 202406}, {"2024 하반기", none, 202407, 202412},
        {"2024 1/4", none, 202401, 202403},      {"2024 4/4", none, 202410, 202412},
        {"2024 1/4분기", none, 202401, 202403},  {"2024년 3/4분기", none, 202407, 202409},
        {"2024년 3분기", none, 202407, 202409},  {"2024 2/2", none, 202407, 202412},
        {"1/31/2024", &mdy, 202401, 202401},     {"31/1/2024", &dmy, 202401, 202401},
        {"1/2/2024", &mdy, 202401, 202401},      {"1/2/2024", &dmy, 202402, 202402},
        {"45292", &excel, 202401, 202401},       {"45351", &excel, 202402, 202402},
        {"43831", &excel, 202001, 202001},       {"FY2024", none, 202401, 202412},
        {"FY 2023", none, 202301, 202312},       {"fy24", none, 202401, 202412},
        {"Jan-24", none, 202401, 202401},        {"Dec-23", none, 202312, 202312},
        {"2025-H1", none, 202501, 202506},       {"Q3 2024", none, 202407, 202409},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kmx_period_t p;
        const char *hint = NULL;
        if (kmx_period_parse_ext(cases[i].text, cases[i].opts, &p, &hint) != 0)
            fail_msg("refused '%s' (%s)", cases[i].text, hint ? hint : "no hint");
        if (p.start != cases[i].start || p.end != cases[i].end)
            fail_msg("'%s' is %u-%u, not %u-%u", cases[i].text, p.start, p.end, cases[i].start,
                     cases[i].end);
    }
}

static void test_period_parse_ext_rejects_and_hints(void **state) {
    (void)state;
    const struct {
        const char *text; // refused
        int hinted;       // whether an option would read it
    } cases[] = {
        {"1/2/2024", 1},    {"45292", 1},       {"2024-02-30", 0}, {"2023-02-29", 0},
        {"2024.13", 0},     {"2024년 13월", 0}, {"2024 5/4", 0},   {"2024년 5분기", 0},
        {"2024 중반기", 0}, {"FY", 0},          {"Foo-24", 0},     {"202413", 0},
        {"2024 1/3", 0},    {"32/1/2024", 0},   {"1/1/24", 0},     {"", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kmx_period_t p;
        const char *hint = NULL;
        if (kmx_period_parse_ext(cases[i].text, NULL, &p, &hint) != KMX_ERR_INVAL)
            fail_msg("accepted '%s'", cases[i].text);
        if ((hint != NULL) != cases[i].hinted)
            fail_msg("'%s': hint %s", cases[i].text, hint ? hint : "none");
    }
    kmx_period_opts_t dmy = {KMX_DATE_ORDER_DMY, 0};
    kmx_period_t p;
    assert_int_equal(kmx_period_parse_ext("1/31/2024", &dmy, &p, NULL), KMX_ERR_INVAL);
    // The strict parser is unchanged: these forms are for files only.
    assert_int_equal(kmx_period_parse("2024-01-01", &p), KMX_ERR_INVAL);
}

static void test_period_granularity_and_months(void **state) {
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

static void test_period_contains_and_month_add(void **state) {
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

static void test_period_format_refuses_small_buffer(void **state) {
    (void)state;
    kmx_period_t p = {202301, 202304};
    char buf[8];
    assert_int_equal(kmx_period_format(&p, buf, sizeof buf), KMX_ERR_OVERFLOW);
    kmx_period_t bad = {202313, 202401};
    assert_int_equal(kmx_period_format(&bad, buf, sizeof buf), KMX_ERR_INVAL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_period_parse_accepts_every_form),
        cmocka_unit_test(test_period_parse_accepts_source_forms),
        cmocka_unit_test(test_period_parse_rejects_malformed),
        cmocka_unit_test(test_period_parse_ext_accepts_file_forms),
        cmocka_unit_test(test_period_parse_ext_rejects_and_hints),
        cmocka_unit_test(test_period_granularity_and_months),
        cmocka_unit_test(test_period_contains_and_month_add),
        cmocka_unit_test(test_period_format_refuses_small_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
