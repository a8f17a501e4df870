/*  Tests for kmx_reserve: the growth every array in kmx goes through.  */
#include "kmx_mem.h"

#include "kmx_err.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

static void test_reserve_starts_at_first_then_doubles(void **state) {
    (void)state;
    int *a = NULL;
    size_t cap = 0, n = 0;
    for (; n < 100; n++) {
        assert_int_equal(kmx_reserve((void **)&a, &cap, n, sizeof *a, 8), 0);
        a[n] = (int)n; // room for element n (ASan would catch an overrun)
        if (n == 0)
            assert_int_equal(cap, 8);
    }
    assert_int_equal(cap, 128); // 8, 16, 32, 64, 128
    for (size_t i = 0; i < n; i++)
        assert_int_equal(a[i], (int)i);
    int *before = a;
    assert_int_equal(kmx_reserve((void **)&a, &cap, 50, sizeof *a, 8), 0); // room already
    assert_ptr_equal(a, before);
    assert_int_equal(cap, 128);
    free(a);
}

static void test_reserve_refuses_sizes_that_overflow(void **state) {
    (void)state;
    char *a = NULL;
    size_t cap = SIZE_MAX / 2 + 1;
    assert_int_equal(kmx_reserve((void **)&a, &cap, cap, 1, 8), KMX_ERR_NOMEM);
    assert_null(a);
    assert_int_equal(cap, SIZE_MAX / 2 + 1);
    cap = 0;
    assert_int_equal(kmx_reserve((void **)&a, &cap, 0, SIZE_MAX / 4, 16), KMX_ERR_NOMEM);
    assert_int_equal(cap, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reserve_starts_at_first_then_doubles),
        cmocka_unit_test(test_reserve_refuses_sizes_that_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
