/*  Tests for kmx_keymap: values start zeroed and accumulate per key, keys that differ in
    one byte or in length are distinct, order is first-added across growth, clear forgets
    everything, and a random workload agrees with a plain linear table.  */
#include "kmx_keymap.h"
#include "kmx_value.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

static void test_rejects(void **state) {
    (void)state;
    assert_null(kmx_keymap_new(0, 8));
    assert_null(kmx_keymap_new(8, 0));
    kmx_keymap_t *m = kmx_keymap_new(4, 8);
    assert_non_null(m);
    assert_null(kmx_keymap_upsert(m, "abcde", 5)); // longer than key_max
    assert_null(kmx_keymap_upsert(m, "", 0));
    assert_int_equal(kmx_keymap_size(m), 0);
    kmx_keymap_destroy(&m);
    assert_null(m);
    kmx_keymap_destroy(&m); // NULL is accepted
}

static void test_accumulates_in_order(void **state) {
    (void)state;
    kmx_keymap_t *m = kmx_keymap_new(16, sizeof(int64_t));
    const char *keys[] = {"b", "a", "ab", "a\0", "ba"};
    size_t lens[] = {1, 1, 2, 2, 2};
    for (int round = 0; round < 3; round++)
        for (int k = 0; k < 5; k++) {
            int64_t *v = kmx_keymap_upsert(m, keys[k], lens[k]);
            assert_non_null(v);
            *v += k + 1;
        }
    assert_int_equal(kmx_keymap_size(m), 5);
    for (size_t i = 0; i < 5; i++) {
        const void *key;
        size_t len;
        int64_t *v = kmx_keymap_at(m, i, &key, &len);
        assert_int_equal(len, lens[i]);
        assert_memory_equal(key, keys[i], len);
        assert_int_equal(*v, 3 * (int64_t)(i + 1));
    }
    kmx_keymap_clear(m);
    assert_int_equal(kmx_keymap_size(m), 0);
    int64_t *v = kmx_keymap_upsert(m, "a", 1);
    assert_int_equal(*v, 0); // a cleared key comes back zeroed
    kmx_keymap_destroy(&m);
}

// A random workload over many keys (the table grows several times) against a linear
// table; values are 16-byte integers, which must stay aligned.
static void test_random_against_linear(void **state) {
    (void)state;
    unsigned seed =
        getenv("KMX_SEED") ? (unsigned)strtoul(getenv("KMX_SEED"), NULL, 10) : (unsigned)time(NULL);
    printf("kmx_keymap_test: seed %u (KMX_SEED to repeat)\n", seed);
    srand(seed);
    enum { NKEYS = 5000, OPS = 40000 };
    static char names[NKEYS][12];
    static kmx_i128 want[NKEYS];
    static int seen_order[NKEYS];
    int nseen = 0;
    memset(want, 0, sizeof want);
    for (int k = 0; k < NKEYS; k++)
        snprintf(names[k], sizeof names[k], "k%d", k);
    kmx_keymap_t *m = kmx_keymap_new(12, sizeof(kmx_i128));
    static int first[NKEYS];
    memset(first, 0, sizeof first);
    for (int op = 0; op < OPS; op++) {
        int k = rand() % NKEYS;
        kmx_i128 *v = kmx_keymap_upsert(m, names[k], strlen(names[k]));
        assert_non_null(v);
        assert_int_equal((uintptr_t)v % _Alignof(kmx_i128), 0);
        if (!first[k]) {
            first[k] = 1;
            seen_order[nseen++] = k;
        }
        kmx_i128 d = (kmx_i128)(rand() - RAND_MAX / 2) * ((kmx_i128)1 << 40);
        *v += d;
        want[k] += d;
    }
    assert_int_equal(kmx_keymap_size(m), nseen);
    for (int i = 0; i < nseen; i++) {
        const void *key;
        size_t len;
        kmx_i128 *v = kmx_keymap_at(m, (size_t)i, &key, &len);
        int k = seen_order[i];
        assert_int_equal(len, strlen(names[k]));
        assert_memory_equal(key, names[k], len);
        assert_true(*v == want[k]);
    }
    kmx_keymap_destroy(&m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rejects),
        cmocka_unit_test(test_accumulates_in_order),
        cmocka_unit_test(test_random_against_linear),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
