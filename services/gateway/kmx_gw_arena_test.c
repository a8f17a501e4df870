#include "kmx_gw_arena.h"

#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static json_t *s_rows(int n) {
    json_t *rows = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(rows, json_pack("{s:s,s:i}", "market", "JP", "n", i));
    return rows;
}

// Inside a scope jansson's objects come from the thread's block (unless sanitized), a
// scope's end resets it, and what was built and freed dumps the same either way.
static void test_scope_bumps_and_resets(void **state) {
    (void)state;
    json_t *outside = s_rows(3);
    assert_int_equal(kmx_gw_arena_used(), 0);
    char *want = json_dumps(outside, JSON_COMPACT);
    kmx_gw_arena_begin();
    json_t *inside = s_rows(3);
    size_t used = kmx_gw_arena_used();
#if !defined(__SANITIZE_ADDRESS__)
    assert_true(used > 0);
#endif
    kmx_gw_arena_begin(); // nested: the inner end keeps the block
    json_t *more = s_rows(1);
    kmx_gw_arena_end();
    assert_true(kmx_gw_arena_used() >= used);
    char *got = json_dumps(inside, JSON_COMPACT);
    assert_string_equal(got, want);
    json_decref(more);
    json_decref(inside);
    json_malloc_t jmalloc;
    json_free_t jfree;
    json_get_alloc_funcs(&jmalloc, &jfree);
    jfree(got); // json_dumps's text comes from jansson's allocator, here the arena
    kmx_gw_arena_end();
    assert_int_equal(kmx_gw_arena_used(), 0);
    // A value made outside any scope is malloc's and is freed as such inside one.
    kmx_gw_arena_begin();
    json_decref(outside);
    kmx_gw_arena_end();
    free(want);
}

// A scope larger than the block falls back to malloc and stays correct.
static void test_overflow_falls_back(void **state) {
    (void)state;
    kmx_gw_arena_begin();
    json_t *big = s_rows(20000);
    assert_int_equal(json_array_size(big), 20000);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(big, 19999), "n")), 19999);
    json_decref(big);
    kmx_gw_arena_end();
    assert_int_equal(kmx_gw_arena_used(), 0);
}

int main(void) {
    kmx_gw_arena_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scope_bumps_and_resets),
        cmocka_unit_test(test_overflow_falls_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
