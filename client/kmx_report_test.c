/*  Tests for kmx_report: exact scaling of decimal strings and the automatic scale.  */
#include "kmx_report.h"

#include "kmx_err.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static void s_scaled(const char *dec, int exp, const char *want) {
    char out[64];
    assert_int_equal(kmx_report_scale_text(dec, exp, out, sizeof out), 0);
    assert_string_equal(out, want);
}

static void test_report_scale_text_moves_the_point_exactly(void **state) {
    (void)state;
    s_scaled("291800000", 6, "291.8");
    s_scaled("89800000", 6, "89.8");
    s_scaled("14075430000", 9, "14.07543");
    s_scaled("1801450000", 6, "1801.45");
    s_scaled("12345.6789", 3, "12.3456789");
    s_scaled("5", 6, "0.000005");
    s_scaled("-2500", 3, "-2.5");
    s_scaled("0", 9, "0");
    s_scaled("1000000", 6, "1");
    s_scaled("72.8", 0, "72.8");
    char out[8];
    assert_int_equal(kmx_report_scale_text("12x", 3, out, sizeof out), KMX_ERR_INVAL);
    assert_int_equal(kmx_report_scale_text("123456789012", 3, out, sizeof out), KMX_ERR_INVAL);
}

static void test_report_scale_auto_and_words(void **state) {
    (void)state;
    Kmx__V1__Row a = KMX__V1__ROW__INIT, b = KMX__V1__ROW__INIT, pct = KMX__V1__ROW__INIT;
    a.sum = "291800000";
    b.sum = "59790000";
    pct.sum = "72000000000";
    pct.has_adds = 1; // a percentage never sets the scale
    Kmx__V1__Row *rows[] = {&a, &b, &pct};
    Kmx__V1__QueryResult res = KMX__V1__QUERY_RESULT__INIT;
    res.rows = rows;
    res.n_rows = 3;
    assert_int_equal(kmx_report_scale_auto(&res), 6);
    a.sum = "14075430000";
    assert_int_equal(kmx_report_scale_auto(&res), 9);
    res.n_rows = 0;
    assert_int_equal(kmx_report_scale_auto(&res), 0);
    int e = 0;
    assert_int_equal(kmx_report_scale_parse("million", &e), 0);
    assert_int_equal(e, 6);
    assert_int_equal(kmx_report_scale_parse("auto", &e), 0);
    assert_int_equal(e, KMX_REPORT_SCALE_AUTO);
    assert_int_equal(kmx_report_scale_parse("lakh", &e), KMX_ERR_INVAL);
    assert_string_equal(kmx_report_scale_word(9), "billion");
    assert_string_equal(kmx_report_scale_word(0), "");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_report_scale_text_moves_the_point_exactly),
        cmocka_unit_test(test_report_scale_auto_and_words),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
