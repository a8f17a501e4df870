/*  Tests for kmx_market: country codes and names, WORLD, regions, groups, panels, the
    country -> region table and the error codes for unknown or oversized markets.  */
#include "kmx_market.h"

#include "kmx_err.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

// Canonicalises text and checks the result.
static void s_expect(const char *text, const char *want) {
    char out[KMX_MARKET_MAX];
    int rc = kmx_market_canonical(text, out, sizeof out);
    if (rc != 0)
        fail_msg("\"%s\": %s", text, kmx_strerror(rc));
    assert_string_equal(out, want);
}

static void s_expect_err(const char *text, int want) {
    char out[KMX_MARKET_MAX];
    memset(out, 'x', sizeof out);
    int rc = kmx_market_canonical(text, out, sizeof out);
    if (rc != want)
        fail_msg("\"%s\": got %d (%.*s), want %d", text ? text : "(null)", rc, (int)sizeof out, out,
                 want);
    assert_string_equal(out, "");
}

// Alpha-3 codes, Korean and extra English names from kmx_market_names, as files write them.
static void test_market_canonical_accepts_alpha3_and_korean_names(void **state) {
    (void)state;
    static const struct {
        const char *text; // as a file writes it
        const char *want; // canonical
    } cases[] = {
        {"KOR", "KR"},
        {"JPN", "JP"},
        {"usa", "US"},
        {"Chn", "CN"},
        {"GBR", "GB"},
        {"일본", "JP"},
        {"미국", "US"},
        {"중국", "CN"},
        {"대만", "TW"},
        {"홍콩", "HK"},
        {"태국", "TH"},
        {"베트남", "VN"},
        {"인도네시아", "ID"},
        {"필리핀", "PH"},
        {"말레이시아", "MY"},
        {"싱가포르", "SG"},
        {"독일", "DE"},
        {"프랑스", "FR"},
        {"영국", "GB"},
        {"네덜란드", "NL"},
        {"캐나다", "CA"},
        {"호주", "AU"},
        {"오스트레일리아", "AU"},
        {"브라질", "BR"},
        {"멕시코", "MX"},
        {"러시아", "RU"},
        {"러시아 연방", "RU"},
        {"남아프리카공화국", "ZA"},
        {"남아프리카 공화국", "ZA"},
        {" 일본 ", "JP"},
        {"전체", "WORLD"},
        {"합계", "WORLD"},
        {"총계", "WORLD"},
        {"세계", "WORLD"},
        {"Holland", "NL"},
        {"일본+미국", "JP+US"},
        {"JPN+CHN", "JP+CN"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        s_expect(cases[i].text, cases[i].want);
    char out[KMX_MARKET_MAX];
    assert_int_equal(kmx_market_canonical("일본+합계", out, sizeof out), KMX_ERR_INVAL);
}

static void test_market_canonical_accepts_codes_in_any_case(void **state) {
    (void)state;
    s_expect("JP", "JP");
    s_expect("jp", "JP");
    s_expect("Jp", "JP");
    s_expect("  us\t", "US");
    s_expect("kr", "KR");
    s_expect("AQ", "AQ");
    s_expect("ZW", "ZW");
    s_expect("AD", "AD");
}

static void test_market_canonical_accepts_names_and_aliases(void **state) {
    (void)state;
    s_expect("Japan", "JP");
    s_expect("japan", "JP");
    s_expect(" JAPAN ", "JP");
    s_expect("China", "CN");
    s_expect("United States", "US");
    s_expect("United States of America", "US");
    s_expect("usa", "US");
    s_expect("South Korea", "KR");
    s_expect("Korea", "KR");
    s_expect("Republic of Korea", "KR");
    s_expect("Korea, Republic of", "KR");
    s_expect("North Korea", "KP");
    s_expect("UK", "GB");
    s_expect("Great Britain", "GB");
    s_expect("United Kingdom", "GB");
    s_expect("Vietnam", "VN");
    s_expect("Viet Nam", "VN");
    s_expect("Taiwan", "TW");
    s_expect("Hong Kong", "HK");
    s_expect("Macau", "MO");
    s_expect("Russia", "RU");
    s_expect("Russian Federation", "RU");
    s_expect("Turkey", "TR");
    s_expect("T\303\274rkiye", "TR");
    s_expect("C\303\264te d'Ivoire", "CI");
    s_expect("Cote d'Ivoire", "CI");
    s_expect("Cura\303\247ao", "CW");
    s_expect("Laos", "LA");
    s_expect("Czechia", "CZ");
    s_expect("Czech Republic", "CZ");
}

static void test_market_canonical_accepts_world(void **state) {
    (void)state;
    s_expect("WORLD", "WORLD");
    s_expect("world", "WORLD");
    s_expect("World", "WORLD");
    s_expect(" Global ", "WORLD");
    s_expect("worldwide", "WORLD");
}

static void test_market_canonical_accepts_regions(void **state) {
    (void)state;
    s_expect("southeast asia", "Southeast Asia");
    s_expect("Southeast Asia", "Southeast Asia");
    s_expect("South-East Asia", "Southeast Asia");
    s_expect("GREATER CHINA", "Greater China");
    s_expect("north america", "North America");
    s_expect("Latin America", "Latin America");
    s_expect("latam", "Latin America");
    s_expect("Europe", "Europe");
    s_expect("middle east", "Middle East");
    s_expect("Oceania", "Oceania");
    s_expect("africa", "Africa");
    s_expect("other", "Other");
}

static void test_market_canonical_accepts_groups(void **state) {
    (void)state;
    s_expect("JP+CN+US", "JP+CN+US");
    s_expect("Japan + China + US", "JP+CN+US");
    s_expect(" jp+ cn +us ", "JP+CN+US");
    s_expect("North America+Europe", "North America+Europe");
    s_expect("north america + europe", "North America+Europe");
    s_expect("US+Southeast Asia", "US+Southeast Asia");
    s_expect("KR+JP", "KR+JP");
    // Thirteen two-letter members are the most that fit in KMX_MARKET_MAX - 1 bytes.
    s_expect("AD+AE+AF+AG+AI+AL+AM+AO+AQ+AR+AS+AT+AU", "AD+AE+AF+AG+AI+AL+AM+AO+AQ+AR+AS+AT+AU");
}

static void test_market_canonical_keeps_panels(void **state) {
    (void)state;
    s_expect("panel:26 countries (KOFICE panel)", "panel:26 countries (KOFICE panel)");
    s_expect("Panel: 26 countries ", "panel:26 countries");
    s_expect("panel:JP+CN", "panel:JP+CN");
    s_expect_err("panel:", KMX_ERR_INVAL);
    s_expect_err("panel:   ", KMX_ERR_INVAL);
    s_expect_err("panel:v1.2", KMX_ERR_INVAL);
    s_expect_err("panel:tab\there", KMX_ERR_INVAL);
    s_expect_err("panel:caf\303\251", KMX_ERR_INVAL);
    s_expect_err("panel:this survey panel name is far too long", KMX_ERR_OVERFLOW);
}

static void test_market_canonical_rejects_unknown(void **state) {
    (void)state;
    s_expect_err("XX", KMX_ERR_INVAL);
    s_expect_err("UK.", KMX_ERR_INVAL);
    s_expect_err("Atlantis", KMX_ERR_INVAL);
    s_expect_err("", KMX_ERR_INVAL);
    s_expect_err("   ", KMX_ERR_INVAL);
    s_expect_err(NULL, KMX_ERR_INVAL);
    s_expect_err("J", KMX_ERR_INVAL);
    s_expect_err("JPX", KMX_ERR_INVAL); // not an alpha-3 code (JPN is, and is accepted)
    s_expect_err("일번", KMX_ERR_INVAL);
    s_expect_err("America", KMX_ERR_INVAL);
    s_expect_err("Multiple", KMX_ERR_INVAL);
    s_expect_err("26 countries", KMX_ERR_INVAL);
    s_expect_err("Japanese", KMX_ERR_INVAL);
    s_expect_err("Jap", KMX_ERR_INVAL);
}

static void test_market_canonical_rejects_bad_groups(void **state) {
    (void)state;
    s_expect_err("JP+", KMX_ERR_INVAL);
    s_expect_err("+JP", KMX_ERR_INVAL);
    s_expect_err("JP++CN", KMX_ERR_INVAL);
    s_expect_err("+", KMX_ERR_INVAL);
    s_expect_err("JP+JP", KMX_ERR_INVAL);
    s_expect_err("JP+Japan", KMX_ERR_INVAL);
    s_expect_err("Europe+europe", KMX_ERR_INVAL);
    s_expect_err("JP+XX", KMX_ERR_INVAL);
    s_expect_err("WORLD+JP", KMX_ERR_INVAL);
    s_expect_err("JP+panel:x", KMX_ERR_INVAL);
    s_expect_err("AD+AE+AF+AG+AI+AL+AM+AO+AQ+AR+AS+AT+AU+AW", KMX_ERR_OVERFLOW);
    s_expect_err("Greater China+Southeast Asia+North America", KMX_ERR_OVERFLOW);
    // An unknown member is reported as such even past the size limit.
    s_expect_err("AD+AE+AF+AG+AI+AL+AM+AO+AQ+AR+AS+AT+AU+AW+XX", KMX_ERR_INVAL);
}

static void test_market_canonical_checks_output_size(void **state) {
    (void)state;
    char out[8];
    assert_int_equal(kmx_market_canonical("JP", out, 3), 0);
    assert_string_equal(out, "JP");
    assert_int_equal(kmx_market_canonical("JP", out, 2), KMX_ERR_OVERFLOW);
    assert_string_equal(out, "");
    assert_int_equal(kmx_market_canonical("Southeast Asia", out, sizeof out), KMX_ERR_OVERFLOW);
    assert_int_equal(kmx_market_canonical("JP", out, 0), KMX_ERR_INVAL);
    assert_int_equal(kmx_market_canonical("JP", NULL, 8), KMX_ERR_INVAL);
}

static void test_market_canonical_never_contains_dots(void **state) {
    (void)state;
    char out[KMX_MARKET_MAX];
    const char *inputs[] = {"U.S.", "U.S.A.", "Virgin Islands, U.S.", "U.K."};
    const char *want[] = {"US", "US", "VI", "GB"};
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        assert_int_equal(kmx_market_canonical(inputs[i], out, sizeof out), 0);
        assert_string_equal(out, want[i]);
        assert_null(strchr(out, '.'));
    }
}

static void test_market_region_of_countries(void **state) {
    (void)state;
    assert_string_equal(kmx_market_region("CN"), "Greater China");
    assert_string_equal(kmx_market_region("HK"), "Greater China");
    assert_string_equal(kmx_market_region("MO"), "Greater China");
    assert_string_equal(kmx_market_region("TW"), "Greater China");
    assert_string_equal(kmx_market_region("JP"), "Japan");
    assert_string_equal(kmx_market_region("TH"), "Southeast Asia");
    assert_string_equal(kmx_market_region("VN"), "Southeast Asia");
    assert_string_equal(kmx_market_region("TL"), "Southeast Asia");
    assert_string_equal(kmx_market_region("US"), "North America");
    assert_string_equal(kmx_market_region("CA"), "North America");
    assert_string_equal(kmx_market_region("MX"), "Latin America");
    assert_string_equal(kmx_market_region("BR"), "Latin America");
    assert_string_equal(kmx_market_region("PR"), "Latin America");
    assert_string_equal(kmx_market_region("FR"), "Europe");
    assert_string_equal(kmx_market_region("RU"), "Europe");
    assert_string_equal(kmx_market_region("TR"), "Europe");
    assert_string_equal(kmx_market_region("SA"), "Middle East");
    assert_string_equal(kmx_market_region("AE"), "Middle East");
    assert_string_equal(kmx_market_region("AU"), "Oceania");
    assert_string_equal(kmx_market_region("NG"), "Africa");
    assert_string_equal(kmx_market_region("EG"), "Africa");
    assert_string_equal(kmx_market_region("KR"), "Other");
    assert_string_equal(kmx_market_region("IN"), "Other");
    assert_string_equal(kmx_market_region("KZ"), "Other");
}

static void test_market_region_of_world_regions_groups_panels(void **state) {
    (void)state;
    assert_string_equal(kmx_market_region("WORLD"), "World");
    assert_string_equal(kmx_market_region("Southeast Asia"), "Southeast Asia");
    assert_string_equal(kmx_market_region("Europe"), "Europe");
    assert_string_equal(kmx_market_region("JP+CN+US"), "Multiple");
    assert_string_equal(kmx_market_region("North America+Europe"), "Multiple");
    assert_string_equal(kmx_market_region("US+CA"), "North America");
    assert_string_equal(kmx_market_region("CN+HK+TW"), "Greater China");
    assert_string_equal(kmx_market_region("Europe+FR"), "Europe");
    assert_string_equal(kmx_market_region("panel:26 countries"), "Multiple");
    assert_string_equal(kmx_market_region("XX"), "Other");
    assert_string_equal(kmx_market_region(NULL), "Other");
}

static void test_region_canonical(void **state) {
    (void)state;
    char out[KMX_MARKET_MAX];
    const char *cases[][2] = {
        {"north america", "North America"},
        {"Greater China", "Greater China"},
        {" japan ", "Japan"},
        {"SOUTHEAST ASIA", "Southeast Asia"},
        {"europe", "Europe"},
        {"Latin America", "Latin America"},
        {"middle east", "Middle East"},
        {"oceania", "Oceania"},
        {"Africa", "Africa"},
        {"other", "Other"},
        {"world", "World"},
        {"multiple", "Multiple"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(kmx_region_canonical(cases[i][0], out, sizeof out), 0);
        assert_string_equal(out, cases[i][1]);
    }
    assert_int_equal(kmx_region_canonical("JP", out, sizeof out), KMX_ERR_INVAL);
    assert_int_equal(kmx_region_canonical("Asia", out, sizeof out), KMX_ERR_INVAL);
    assert_int_equal(kmx_region_canonical("", out, sizeof out), KMX_ERR_INVAL);
    assert_int_equal(kmx_region_canonical(NULL, out, sizeof out), KMX_ERR_INVAL);
    assert_int_not_equal(kmx_region_canonical("Europe", out, 3), 0);
}

static void test_market_is_country(void **state) {
    (void)state;
    assert_true(kmx_market_is_country("JP"));
    assert_true(kmx_market_is_country("KR"));
    assert_true(kmx_market_is_country("SS"));
    assert_false(kmx_market_is_country("jp"));
    assert_false(kmx_market_is_country("XX"));
    assert_false(kmx_market_is_country("UK"));
    assert_false(kmx_market_is_country("EU"));
    assert_false(kmx_market_is_country("WORLD"));
    assert_false(kmx_market_is_country("J"));
    assert_false(kmx_market_is_country(""));
    assert_false(kmx_market_is_country(NULL));
}

// Walks every two-letter code: exactly the 249 assigned ones exist, each has a name that
// canonicalises back to the code and a region that is one of the ten country regions.
static void test_market_country_table_is_complete(void **state) {
    (void)state;
    const char *regions[] = {"Greater China", "Japan",  "Southeast Asia", "North America",
                             "Latin America", "Europe", "Middle East",    "Oceania",
                             "Africa",        "Other"};
    int count = 0;
    char code[3] = {0};
    char out[KMX_MARKET_MAX];
    for (code[0] = 'A'; code[0] <= 'Z'; code[0]++) {
        for (code[1] = 'A'; code[1] <= 'Z'; code[1]++) {
            const char *name = kmx_market_country_name(code);
            if (!kmx_market_is_country(code)) {
                assert_null(name);
                continue;
            }
            count++;
            assert_non_null(name);
            assert_int_equal(kmx_market_canonical(name, out, sizeof out), 0);
            assert_string_equal(out, code);
            const char *region = kmx_market_region(code);
            int known = 0;
            for (size_t i = 0; i < sizeof regions / sizeof regions[0]; i++)
                known |= strcmp(region, regions[i]) == 0;
            if (!known)
                fail_msg("%s has region %s", code, region);
        }
    }
    assert_int_equal(count, 249);
}

static void test_market_country_name(void **state) {
    (void)state;
    assert_string_equal(kmx_market_country_name("JP"), "Japan");
    assert_string_equal(kmx_market_country_name("KR"), "Korea, Republic of");
    assert_string_equal(kmx_market_country_name("US"), "United States");
    assert_string_equal(kmx_market_country_name("GB"), "United Kingdom");
    assert_string_equal(kmx_market_country_name("AX"), "\303\205land Islands");
    assert_null(kmx_market_country_name("jp"));
    assert_null(kmx_market_country_name("XX"));
    assert_null(kmx_market_country_name(NULL));
}

// Levels: one row per kind of market, written as sources write it.
static void test_market_level_of_each_kind(void **state) {
    (void)state;
    static const struct {
        const char *text;
        const char *level;
    } cases[] = {{"JP", "country"},
                 {"Japan", "country"},
                 {"WORLD", "world"},
                 {"Southeast Asia", "region"},
                 {"North America", "region"},
                 {"Europe", "region"},
                 {"JP+CN+US", "group"},
                 {"North America+Europe", "group"},
                 {"panel:26 countries (KOFICE panel)", "panel"},
                 {"Asia", "aggregate"},
                 {"asia", "aggregate"},
                 {"non-Asia", "aggregate"},
                 {"Outside Asia", "aggregate"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char canon[KMX_MARKET_MAX];
        assert_int_equal(kmx_market_canonical(cases[i].text, canon, sizeof canon), 0);
        const char *got = kmx_market_level_name(kmx_market_level(canon));
        if (strcmp(got, cases[i].level) != 0)
            fail_msg("%s (%s): level %s, want %s", cases[i].text, canon, got, cases[i].level);
    }
    s_expect("asia", "Asia");
    s_expect("NON-ASIA", "non-Asia");
    s_expect_err("Asia+JP", KMX_ERR_INVAL); // aggregates are never group members
    assert_int_equal(kmx_market_level("Atlantis"), KMX_MARKET_UNKNOWN);
    assert_int_equal(kmx_market_level(NULL), KMX_MARKET_UNKNOWN);
    assert_string_equal(kmx_market_level_name(KMX_MARKET_UNKNOWN), "unknown");
    assert_string_equal(kmx_market_region("Asia"), "Multiple");
}

static void test_market_contains(void **state) {
    (void)state;
    static const struct {
        const char *market, *country;
        int want;
    } cases[] = {{"JP", "JP", 1},
                 {"JP", "CN", 0},
                 {"WORLD", "KR", 1},
                 {"Asia", "JP", 1},
                 {"Asia", "KR", 1},
                 {"Asia", "IN", 1},
                 {"Asia", "SA", 1},
                 {"Asia", "TH", 1},
                 {"Asia", "US", 0},
                 {"Asia", "RU", 0},
                 {"Asia", "AQ", 0},
                 {"non-Asia", "US", 1},
                 {"non-Asia", "FR", 1},
                 {"non-Asia", "CN", 0},
                 {"Europe", "DE", 1},
                 {"Europe", "JP", 0},
                 {"JP+CN+US", "US", 1},
                 {"JP+CN+US", "TW", 0},
                 {"North America+Europe", "CA", 1},
                 {"North America+Europe", "BR", 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int got = kmx_market_contains(cases[i].market, cases[i].country);
        if (got != cases[i].want)
            fail_msg("%s contains %s: %d, want %d", cases[i].market, cases[i].country, got,
                     cases[i].want);
    }
    assert_int_equal(kmx_market_contains("panel:26 countries", "JP"), KMX_ERR_NOT_FOUND);
    assert_int_equal(kmx_market_contains("JP", "jp"), KMX_ERR_INVAL);
    assert_int_equal(kmx_market_contains("Atlantis", "JP"), KMX_ERR_INVAL);
}

// Asia and non-Asia split the world: every country is in exactly one.
static void test_market_members_partition_the_world(void **state) {
    (void)state;
    const char *all[300], *asia[300], *rest[300];
    size_t n_all, n_asia, n_rest;
    assert_int_equal(kmx_market_members("WORLD", all, 300, &n_all), 0);
    assert_int_equal(kmx_market_members("Asia", asia, 300, &n_asia), 0);
    assert_int_equal(kmx_market_members("non-Asia", rest, 300, &n_rest), 0);
    assert_int_equal(n_all, 249);
    assert_int_equal(n_asia + n_rest, n_all);
    assert_int_equal(n_asia, 46);
    for (size_t i = 0; i < n_asia; i++)
        assert_int_equal(kmx_market_contains("non-Asia", asia[i]), 0);
    size_t n;
    const char *one[2];
    assert_int_equal(kmx_market_members("JP+CN+US", one, 2, &n), 0);
    assert_int_equal(n, 3); // the total, though only two fit
    assert_string_equal(one[0], "CN");
    assert_string_equal(one[1], "JP");
    assert_int_equal(kmx_market_members("Japan", NULL, 0, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(kmx_market_members("panel:26 countries", NULL, 0, &n), KMX_ERR_NOT_FOUND);
    assert_int_equal(kmx_market_members("Atlantis", NULL, 0, &n), KMX_ERR_INVAL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_market_canonical_accepts_codes_in_any_case),
        cmocka_unit_test(test_market_canonical_accepts_names_and_aliases),
        cmocka_unit_test(test_market_canonical_accepts_world),
        cmocka_unit_test(test_market_canonical_accepts_regions),
        cmocka_unit_test(test_market_canonical_accepts_groups),
        cmocka_unit_test(test_market_canonical_keeps_panels),
        cmocka_unit_test(test_market_canonical_rejects_unknown),
        cmocka_unit_test(test_market_canonical_rejects_bad_groups),
        cmocka_unit_test(test_market_canonical_checks_output_size),
        cmocka_unit_test(test_market_canonical_never_contains_dots),
        cmocka_unit_test(test_market_region_of_countries),
        cmocka_unit_test(test_market_region_of_world_regions_groups_panels),
        cmocka_unit_test(test_region_canonical),
        cmocka_unit_test(test_market_is_country),
        cmocka_unit_test(test_market_country_table_is_complete),
        cmocka_unit_test(test_market_country_name),
        cmocka_unit_test(test_market_level_of_each_kind),
        cmocka_unit_test(test_market_contains),
        cmocka_unit_test(test_market_members_partition_the_world),
        cmocka_unit_test(test_market_canonical_accepts_alpha3_and_korean_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
