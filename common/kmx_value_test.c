/*  Tests for kmx_value: units as sources write them, exact decimals, refusals.  */
#include "kmx_err.h"
#include "kmx_value.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static void s_unit(const char *text, const char *base, int64_t mult) {
    char out[KMX_UNIT_MAX];
    int64_t m = 0;
    if (kmx_unit_normalize(text, out, sizeof out, &m) != 0)
        fail_msg("refused unit '%s'", text);
    assert_string_equal(out, base);
    assert_true(m == mult);
}

static void test_unit_normalize_folds_magnitudes(void **state) {
    (void)state;
    s_unit("USD_million", "USD", 1000000);
    s_unit("KRW_billion", "KRW", 1000000000);
    s_unit("usd", "USD", 1);
    s_unit("copies_million", "copies", 1000000);
    s_unit("users_million", "users", 1000000);
    s_unit("percent_share", "percent_share", 1);
    s_unit("percent_respondents_multi", "percent_respondents_multi", 1);
    s_unit("%", "percent", 1);
    s_unit("rank", "rank", 1);
    s_unit("USD_thousand", "USD", 1000);
}

// Units as report tables write them: a magnitude word before or after, blanks or '_'.
static void test_unit_normalize_accepts_source_forms(void **state) {
    (void)state;
    s_unit("USD million", "USD", 1000000);
    s_unit("USD mn", "USD", 1000000);
    s_unit("KRW bn", "KRW", 1000000000);
    s_unit("KRW_BN", "KRW", 1000000000);
    s_unit("krw trillion", "KRW", 1000000000000LL);
    s_unit("million USD", "USD", 1000000);
    s_unit("thousand copies", "copies", 1000);
    s_unit("users_k", "users", 1000);
    s_unit(" USD ", "USD", 1);
    s_unit("US$ m", "USD", 1000000);
    s_unit("won", "KRW", 1);
}

static void test_unit_normalize_rejects_unknown(void **state) {
    (void)state;
    const char *bad[] = {"",
                         "XYZ",
                         "dollars",
                         "percent_",
                         "percent__x",
                         "rank_million",
                         "percent_million",
                         "USD_zillion",
                         "copies_",
                         "a_very_long_unit_name_that_does_not_fit_anywhere",
                         "% million",
                         "million",
                         "USD million billion",
                         "USD zillion"};
    char out[KMX_UNIT_MAX];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (kmx_unit_normalize(bad[i], out, sizeof out, NULL) == 0)
            fail_msg("accepted unit '%s'", bad[i]);
    }
    assert_true(kmx_unit_is_currency("KRW"));
    assert_false(kmx_unit_is_currency("percent"));
    assert_true(kmx_unit_is_known("percent_yoy"));
}

static void s_dec(const char *text, int64_t mult, int64_t want) {
    int64_t got = 0;
    if (kmx_decimal_parse(text, mult, &got) != 0)
        fail_msg("refused '%s'", text);
    assert_true(got == want);
}

// Korean units fold exactly like the English ones: 천달러 is USD thousand.
static void test_unit_normalize_folds_korean_units(void **state) {
    (void)state;
    static const struct {
        const char *text;    // as KOSIS or the customs portal writes it
        const char *base;    // base unit
        int64_t factor;      // magnitude
        const char *english; // the English spelling that must fold the same way, or NULL
    } cases[] = {
        {"원", "KRW", 1LL, "KRW"},
        {"천원", "KRW", 1000LL, "KRW thousand"},
        {"백만원", "KRW", 1000000LL, "KRW million"},
        {"억원", "KRW", 100000000LL, NULL},
        {"십억원", "KRW", 1000000000LL, "KRW bn"},
        {"조원", "KRW", 1000000000000LL, "KRW trillion"},
        {"달러", "USD", 1LL, "USD"},
        {"천달러", "USD", 1000LL, "USD_thousand"},
        {"백만달러", "USD", 1000000LL, "USD million"},
        {"억달러", "USD", 100000000LL, NULL},
        {"천 달러", "USD", 1000LL, "thousand USD"},
        {"(천달러)", "USD", 1000LL, NULL},
        {"장", "copies", 1LL, "copies"},
        {"매", "copies", 1LL, "copies"},
        {"천장", "copies", 1000LL, "copies thousand"},
        {"만명", "people", 10000LL, NULL},
        {"퍼센트", "percent", 1LL, "%"},
        {"엔", "JPY", 1LL, "JPY"},
        {"백만엔", "JPY", 1000000LL, "JPY million"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char unit[KMX_UNIT_MAX];
        int64_t f = 0;
        if (kmx_unit_normalize(cases[i].text, unit, sizeof unit, &f) != 0)
            fail_msg("refused \"%s\"", cases[i].text);
        assert_string_equal(unit, cases[i].base);
        assert_true(f == cases[i].factor);
        if (cases[i].english) {
            char eunit[KMX_UNIT_MAX];
            int64_t ef = 0;
            assert_int_equal(kmx_unit_normalize(cases[i].english, eunit, sizeof eunit, &ef), 0);
            assert_string_equal(eunit, unit);
            assert_true(ef == f);
        }
    }
    // The amount folds exactly: 1,234.5 억원 is 123450000000 KRW.
    char unit[KMX_UNIT_MAX];
    int64_t f = 0, amount = 0;
    assert_int_equal(kmx_unit_normalize("억원", unit, sizeof unit, &f), 0);
    assert_int_equal(kmx_decimal_parse("1,234.5", f, &amount), 0);
    assert_true(amount == 123450000000LL * KMX_VALUE_SCALE);
    const char *bad[] = {"천%", "백만퍼센트", "천위", "달라", "천", "억"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (kmx_unit_normalize(bad[i], unit, sizeof unit, &f) != KMX_ERR_INVAL)
            fail_msg("accepted \"%s\"", bad[i]);
    }
}

static void test_decimal_parse_is_exact(void **state) {
    (void)state;
    s_dec("233.113", 1000000, 2331130000000LL);
    s_dec("1801.45", 1000000, 18014500000000LL);
    s_dec("0.1", 1, 1000);
    s_dec("0.0005", 1, 5);
    s_dec("-2.5", 1, -25000);
    s_dec("+7", 1, 70000);
    s_dec("1,234,567.5", 1, 12345675000LL);
    s_dec("8.108", 1000000, 81080000000LL);
    s_dec("7449.5", 1000000000, 74495000000000000LL);
    s_dec("0.00000001", 1000000000000LL, 100000000);
    s_dec("1.50000", 1, 15000);
}

static void test_decimal_parse_refuses_inexact_and_malformed(void **state) {
    (void)state;
    int64_t v;
    assert_int_equal(kmx_decimal_parse("0.00001", 1, &v), KMX_ERR_INVAL);
    const char *bad[] = {"",     "-",     "1.",   ".5",  "1e3",       "1.2.3", "12,34",
                         ",123", "1 000", "0x10", "nan", "1,234.5,6", "--1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (kmx_decimal_parse(bad[i], 1, &v) == 0)
            fail_msg("accepted '%s'", bad[i]);
    }
    assert_int_equal(kmx_decimal_parse("922337203685477.5808", 1, &v), KMX_ERR_OVERFLOW);
    assert_int_equal(kmx_decimal_parse("10000000", 1000000000000LL, &v), KMX_ERR_OVERFLOW);
    assert_int_equal(kmx_decimal_parse("99999999999999999999999999999999999999999", 1, &v),
                     KMX_ERR_OVERFLOW);
}

static void test_decimal_format_round_trips(void **state) {
    (void)state;
    char buf[64];
    assert_int_equal(kmx_decimal_format(2331130000000LL, buf, sizeof buf), 0);
    assert_string_equal(buf, "233113000");
    assert_int_equal(kmx_decimal_format(5, buf, sizeof buf), 0);
    assert_string_equal(buf, "0.0005");
    assert_int_equal(kmx_decimal_format(-25000, buf, sizeof buf), 0);
    assert_string_equal(buf, "-2.5");
    assert_int_equal(kmx_decimal_format(0, buf, sizeof buf), 0);
    assert_string_equal(buf, "0");
    kmx_i128 big = (kmx_i128)INT64_MAX * 1000, back = 0;
    assert_int_equal(kmx_decimal_format128(big, buf, sizeof buf), 0);
    assert_string_equal(buf, "922337203685477580.7");
    assert_int_equal(kmx_decimal_parse128(buf, &back), 0);
    assert_true(back == big);
    assert_int_equal(kmx_decimal_parse128("-0.5", &back), 0);
    assert_true(back == -5000);
    assert_int_equal(kmx_decimal_parse128("1.00001", &back), KMX_ERR_INVAL);
    assert_int_equal(kmx_decimal_format(123456, buf, 4), KMX_ERR_OVERFLOW);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unit_normalize_folds_magnitudes),
        cmocka_unit_test(test_unit_normalize_accepts_source_forms),
        cmocka_unit_test(test_unit_normalize_rejects_unknown),
        cmocka_unit_test(test_unit_normalize_folds_korean_units),
        cmocka_unit_test(test_decimal_parse_is_exact),
        cmocka_unit_test(test_decimal_parse_refuses_inexact_and_malformed),
        cmocka_unit_test(test_decimal_format_round_trips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
