/*  Tests for kmx_alt: which records are alternative measurements of one quantity, with
    the sample data's own cases and their near misses.  */
#include "kmx_alt.h"

#include "kmx_err.h"
#include "kmx_testkit.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

static void s_rec(kmx_testkit_rec_t *r, const char *item, const char *source, int64_t amount) {
    kmx_testkit_rec_init(r, "WORLD", 202401, 202412, amount, "USD");
    r->rec.item = (char *)item;
    r->rec.source = (char *)source;
}

static void test_alt_item_base(void **state) {
    (void)state;
    static const struct {
        const char *item;
        size_t base;
    } cases[] = {{"album exports total (precise; as cited Jan 2026)", 19},
                 {"album exports total", 19},
                 {"Melon MAU (approx.)", 9},
                 {"non-Asia share of album exports (North America etc.)", 31},
                 {"YouTube (conflicts with 26 in RouteNote citation)", 7},
                 {"(approx.)", 9},
                 {"f(x)", 4},
                 {"x (a (b) c)", 1},
                 {"x (unbalanced", 13},
                 {"", 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (kmx_alt_item_base(cases[i].item) != cases[i].base)
            fail_msg("'%s': base %zu, want %zu", cases[i].item, kmx_alt_item_base(cases[i].item),
                     cases[i].base);
    }
    assert_int_equal(kmx_alt_item_base(NULL), 0);
}

static void test_alt_is_alternative(void **state) {
    (void)state;
    kmx_testkit_rec_t a, b;
    s_rec(&a, "album exports total (+0.55% YoY)", "KCS via Yonhap", 2918000000000LL);
    s_rec(&b, "album exports total (precise; as cited Jan 2026)", "KCS via Chosun",
          2918200000000LL);
    assert_true(kmx_alt_is_alternative(&a.rec, &b.rec));
    assert_true(kmx_alt_same_quantity(&a.rec, &b.rec));
    b.rec.source = a.rec.source; // one source: two items of its own, not alternatives
    assert_false(kmx_alt_is_alternative(&a.rec, &b.rec));
    assert_true(kmx_alt_same_quantity(&a.rec, &b.rec));
    b.rec.source = "KCS via Chosun";
    b.rec.market = "JP"; // another market is another quantity
    assert_false(kmx_alt_is_alternative(&a.rec, &b.rec));
    b.rec.market = "WORLD";
    b.value.unit = "KRW";
    assert_false(kmx_alt_is_alternative(&a.rec, &b.rec));
    b.value.unit = "USD";
    b.period.end = 202406;
    assert_false(kmx_alt_is_alternative(&a.rec, &b.rec));
    b.period.end = 202412;
    b.rec.item = "album exports total YoY growth";
    assert_false(kmx_alt_is_alternative(&a.rec, &b.rec));
    assert_false(kmx_alt_is_alternative(&a.rec, NULL));
}

static void test_alt_find_and_describe(void **state) {
    (void)state;
    kmx_testkit_rec_t r[5];
    s_rec(&r[0], "album exports to Japan", "KCS", 898000000000LL);
    s_rec(&r[1], "album exports total (+0.55% YoY)", "KCS via Yonhap", 2918000000000LL);
    s_rec(&r[2], "album exports to China", "KCS", 597900000000LL);
    s_rec(&r[3], "album exports to US", "KCS", 602900000000LL);
    s_rec(&r[4], "album exports total (precise)", "KCS via Chosun", 2918200000000LL);
    const Kmx__V1__Record *recs[5];
    for (size_t i = 0; i < 5; i++)
        recs[i] = &r[i].rec;
    size_t i = 9, j = 9;
    assert_int_equal(kmx_alt_find(recs, 5, &i, &j), 1);
    assert_int_equal(i, 1);
    assert_int_equal(j, 4);
    assert_int_equal(kmx_alt_find(recs, 4, &i, &j), 0);
    assert_int_equal(kmx_alt_find(recs, 1, &i, &j), 0);
    unsigned char marks[5];
    assert_int_equal(kmx_alt_mark(recs, 5, marks), 2);
    assert_memory_equal(marks, ((unsigned char[]){0, 1, 0, 0, 1}), 5);
    char why[512];
    assert_int_equal(kmx_alt_describe(recs[1], recs[4], why, sizeof why), 0);
    assert_non_null(strstr(why, "'album exports total'"));
    assert_non_null(strstr(why, "'KCS via Yonhap' (291800000 USD)"));
    assert_non_null(strstr(why, "'KCS via Chosun' (291820000 USD)"));
    assert_non_null(strstr(why, "--source"));
    assert_non_null(strstr(why, "export 2024 WORLD"));
    char small[16];
    assert_int_equal(kmx_alt_describe(recs[1], recs[4], small, sizeof small), KMX_ERR_OVERFLOW);
}

// The preference order: status, then confidence, then precision, then source.
static void test_alt_prefer_and_set_aside_note(void **state) {
    (void)state;
    kmx_testkit_rec_t a, b;
    s_rec(&a, "album exports total (+0.55% YoY)", "KCS via Yonhap", 2918000000000LL);
    s_rec(&b, "album exports total (precise)", "KCS via Chosun", 2918200000000LL);
    assert_true(kmx_alt_prefer_cmp(&b.rec, &a.rec) < 0); // more digits
    assert_true(kmx_alt_prefer_cmp(&a.rec, &b.rec) > 0);
    a.rec.has_confidence = b.rec.has_confidence = 1;
    a.rec.confidence = KMX__V1__CONFIDENCE__HIGH;
    b.rec.confidence = KMX__V1__CONFIDENCE__MEDIUM;
    assert_true(kmx_alt_prefer_cmp(&a.rec, &b.rec) < 0); // confidence before digits
    b.rec.has_status = 1;
    b.rec.status = KMX__V1__STATUS__REVISED;
    assert_true(kmx_alt_prefer_cmp(&b.rec, &a.rec) < 0); // status before confidence
    a.rec.has_status = 1;
    a.rec.status = KMX__V1__STATUS__PRELIMINARY;
    b.rec.has_status = 0;
    assert_true(kmx_alt_prefer_cmp(&b.rec, &a.rec) < 0); // none before preliminary
    b = a;
    b.rec.source = "KCS via Asia Economy";
    assert_true(kmx_alt_prefer_cmp(&b.rec, &a.rec) < 0); // last: the source's bytes
    assert_int_equal(kmx_alt_prefer_cmp(&a.rec, &a.rec), 0);
    char note[512];
    assert_int_equal(kmx_alt_describe_set_aside(&b.rec, &a.rec, note, sizeof note), 0);
    assert_string_equal(note, "export 2024 WORLD album 'album exports total': kept 291800000 USD "
                              "from 'KCS via Asia Economy', set aside 291800000 from 'KCS via "
                              "Yonhap'");
    assert_int_equal(kmx_alt_describe_set_aside(&b.rec, &a.rec, note, 20), KMX_ERR_OVERFLOW);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alt_item_base),
        cmocka_unit_test(test_alt_is_alternative),
        cmocka_unit_test(test_alt_find_and_describe),
        cmocka_unit_test(test_alt_prefer_and_set_aside_note),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
