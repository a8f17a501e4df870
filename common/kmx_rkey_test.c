/*  Tests for kmx_rkey: record keys keep kind and period order, key fields are required,
    oversized keys are refused, and event keys round-trip in sequence order.  */
#include "kmx_rkey.h"

#include "kmx_err.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

typedef struct {
    Kmx__V1__Record rec;
    Kmx__V1__Period period;
    uint8_t key[KMX_RKEY_MAX];
    size_t len;
} s_keyed_t;

static void s_make(s_keyed_t *k, Kmx__V1__Kind kind, uint32_t start, uint32_t end,
                   const char *market, const char *category) {
    Kmx__V1__Record rec = KMX__V1__RECORD__INIT;
    Kmx__V1__Period period = KMX__V1__PERIOD__INIT;
    k->rec = rec;
    k->period = period;
    k->period.has_start = k->period.has_end = 1;
    k->period.start = start;
    k->period.end = end;
    k->rec.has_kind = 1;
    k->rec.kind = kind;
    k->rec.period = &k->period;
    k->rec.market = (char *)market;
    k->rec.category = (char *)category;
    assert_int_equal(kmx_rkey_record(&k->rec, k->key, sizeof k->key, &k->len), 0);
}

static int s_cmp(const s_keyed_t *a, const s_keyed_t *b) {
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->key, b->key, n);
    if (c != 0)
        return c;
    return (a->len > b->len) - (a->len < b->len);
}

static void test_rkey_record_layout(void **state) {
    (void)state;
    s_keyed_t k;
    s_make(&k, KMX__V1__KIND__EXPORT, 202501, 202506, "JP", "album");
    k.rec.item = "exports";
    k.rec.source = "KCCA";
    assert_int_equal(kmx_rkey_record(&k.rec, k.key, sizeof k.key, &k.len), 0);
    const uint8_t want[] = {1,   0x00, 0x03, 0x17, 0x05, 0x00, 0x03, 0x17, 0x0A, 'J', 'P',
                            0,   'a',  'l',  'b',  'u',  'm',  0,    'e',  'x',  'p', 'o',
                            'r', 't',  's',  0,    0,    0,    'K',  'C',  'C',  'A'};
    assert_int_equal(k.len, sizeof want);
    assert_memory_equal(k.key, want, sizeof want);
}

static void test_rkey_record_orders_kind_then_period(void **state) {
    (void)state;
    s_keyed_t a, b, c, d, e;
    s_make(&a, KMX__V1__KIND__EXPORT, 202301, 202312, "WORLD", "x");
    s_make(&b, KMX__V1__KIND__EXPORT, 202401, 202403, "AA", "a");
    s_make(&c, KMX__V1__KIND__EXPORT, 202401, 202412, "AA", "a");
    s_make(&d, KMX__V1__KIND__EXPORT, 202501, 202501, "AA", "a");
    s_make(&e, KMX__V1__KIND__CONSUMPTION, 199001, 199001, "AA", "a");
    assert_true(s_cmp(&a, &b) < 0);
    assert_true(s_cmp(&b, &c) < 0);
    assert_true(s_cmp(&c, &d) < 0);
    assert_true(s_cmp(&d, &e) < 0);
}

static void test_rkey_record_text_order_is_prefix_safe(void **state) {
    (void)state;
    s_keyed_t a, b, c;
    s_make(&a, KMX__V1__KIND__EXPORT, 202401, 202412, "JP", "zzz");
    s_make(&b, KMX__V1__KIND__EXPORT, 202401, 202412, "JPX", "aaa");
    s_make(&c, KMX__V1__KIND__EXPORT, 202401, 202412, "JP", "zzz");
    assert_true(s_cmp(&a, &b) < 0);
    assert_int_equal(s_cmp(&a, &c), 0);
}

static void test_rkey_record_null_and_empty_text_are_equal(void **state) {
    (void)state;
    s_keyed_t a, b;
    s_make(&a, KMX__V1__KIND__EXPORT, 202401, 202412, "JP", NULL);
    s_make(&b, KMX__V1__KIND__EXPORT, 202401, 202412, "JP", "");
    assert_int_equal(s_cmp(&a, &b), 0);
}

static void test_rkey_record_rejects_missing_key_fields(void **state) {
    (void)state;
    s_keyed_t k;
    s_make(&k, KMX__V1__KIND__EXPORT, 202401, 202412, "JP", "a");
    uint8_t buf[KMX_RKEY_MAX];
    size_t len = 0;
    k.rec.kind = KMX__V1__KIND__KIND_UNSPECIFIED;
    assert_int_equal(kmx_rkey_record(&k.rec, buf, sizeof buf, &len), KMX_ERR_INVAL);
    k.rec.kind = KMX__V1__KIND__EXPORT;
    k.rec.period = NULL;
    assert_int_equal(kmx_rkey_record(&k.rec, buf, sizeof buf, &len), KMX_ERR_INVAL);
    k.rec.period = &k.period;
    k.rec.market = "";
    assert_int_equal(kmx_rkey_record(&k.rec, buf, sizeof buf, &len), KMX_ERR_INVAL);
    k.rec.market = NULL;
    assert_int_equal(kmx_rkey_record(&k.rec, buf, sizeof buf, &len), KMX_ERR_INVAL);
    assert_int_equal(kmx_rkey_record(NULL, buf, sizeof buf, &len), KMX_ERR_INVAL);
}

static void test_rkey_record_overflow(void **state) {
    (void)state;
    s_keyed_t k;
    s_make(&k, KMX__V1__KIND__EXPORT, 202401, 202412, "JP", "album");
    uint8_t small[12];
    size_t len = 0;
    assert_int_equal(kmx_rkey_record(&k.rec, small, sizeof small, &len), KMX_ERR_OVERFLOW);
    assert_int_equal(kmx_rkey_record(&k.rec, small, 5, &len), KMX_ERR_OVERFLOW);
    char big[600];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    k.rec.item = big;
    uint8_t buf[KMX_RKEY_MAX];
    assert_int_equal(kmx_rkey_record(&k.rec, buf, sizeof buf, &len), KMX_ERR_OVERFLOW);
}

static void test_rkey_event_round_trip_and_order(void **state) {
    (void)state;
    const uint64_t seqs[] = {
        0, 1, 255, 256, 65535, 1u << 31, UINT64_C(1) << 40, UINT64_MAX - 1, UINT64_MAX};
    size_t n = sizeof seqs / sizeof seqs[0];
    uint8_t prev[8] = {0};
    for (size_t i = 0; i < n; i++) {
        uint8_t key[8];
        uint64_t back = 7;
        kmx_rkey_event(seqs[i], key);
        assert_int_equal(kmx_rkey_event_seq(key, sizeof key, &back), 0);
        assert_true(back == seqs[i]);
        if (i > 0)
            assert_true(memcmp(prev, key, 8) < 0);
        memcpy(prev, key, 8);
    }
    uint8_t key[8];
    kmx_rkey_event(0x0102030405060708u, key);
    const uint8_t want[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    assert_memory_equal(key, want, 8);
}

static void test_rkey_event_seq_rejects_bad_length(void **state) {
    (void)state;
    uint8_t key[9] = {0};
    uint64_t seq = 0;
    assert_int_equal(kmx_rkey_event_seq(key, 7, &seq), KMX_ERR_INVAL);
    assert_int_equal(kmx_rkey_event_seq(key, 9, &seq), KMX_ERR_INVAL);
    assert_int_equal(kmx_rkey_event_seq(NULL, 8, &seq), KMX_ERR_INVAL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rkey_record_layout),
        cmocka_unit_test(test_rkey_record_orders_kind_then_period),
        cmocka_unit_test(test_rkey_record_text_order_is_prefix_safe),
        cmocka_unit_test(test_rkey_record_null_and_empty_text_are_equal),
        cmocka_unit_test(test_rkey_record_rejects_missing_key_fields),
        cmocka_unit_test(test_rkey_record_overflow),
        cmocka_unit_test(test_rkey_event_round_trip_and_order),
        cmocka_unit_test(test_rkey_event_seq_rejects_bad_length),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
