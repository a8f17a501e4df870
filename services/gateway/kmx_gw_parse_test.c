/*  kmx_gw_parse tests: routes and methods, URL parameters as kmx options (and the errors
    that name them), token files and roles, sequence numbers and bind addresses.  */
#include "kmx_gw_parse.h"

#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static void test_gw_route_paths_methods_and_files(void **state) {
    (void)state;
    kmx_gw_route_t r;
    kmx_gw_route("GET", "/v1/query/exports", &r);
    assert_int_equal(r.endpoint, KMX_GW_QUERY);
    assert_string_equal(r.kind, "exports");
    assert_true(r.method_ok && !r.write);
    kmx_gw_route("DELETE", "/v1/record", &r);
    assert_true(r.endpoint == KMX_GW_RECORD && r.method_ok && r.write);
    kmx_gw_route("POST", "/v1/query/exports", &r);
    assert_false(r.method_ok);
    kmx_gw_route("GET", "/v1/nothing", &r);
    assert_int_equal(r.endpoint, KMX_GW_NONE);
    kmx_gw_route("GET", "/app.js", &r);
    assert_int_equal(r.endpoint, KMX_GW_STATIC);
    kmx_gw_route("GET", "/../etc/passwd", &r);
    assert_int_equal(r.endpoint, KMX_GW_NONE);
}

static void test_gw_param_maps_options_and_names_bad_ones(void **state) {
    (void)state;
    char err[KMX_GW_ERR_MAX];
    kmx_qargs_t a;
    kmx_qargs_init(&a, KMX_QARGS_QUERY);
    assert_int_equal(kmx_gw_param(&a, "kind", "exports", err), 0);
    assert_int_equal(kmx_gw_param(&a, "period", "2024", err), 0);
    assert_int_equal(kmx_gw_param(&a, "by", "market", err), 0);
    assert_int_equal(kmx_gw_param(&a, "share", NULL, err), 0);
    assert_int_equal(kmx_gw_param(&a, "time_series", "0", err), 0);
    assert_int_equal(kmx_gw_param(&a, "top", "3", err), 0);
    assert_true(a.share && !a.series && a.top == 3);
    assert_int_equal(kmx_gw_param(&a, "colour", "red", err), -1);
    assert_non_null(strstr(err, "colour"));
    assert_int_equal(kmx_gw_param(&a, "share", "maybe", err), -1);
    assert_non_null(strstr(err, "share"));
    assert_int_equal(kmx_gw_param(&a, "top", "many", err), -1);
    assert_non_null(strstr(err, "many"));
    assert_int_equal(kmx_gw_param(&a, "limit", "5", err), -1);
    assert_non_null(strstr(err, "does not apply"));
    assert_int_equal(kmx_qargs_finish(&a), 0);
    kmx_qargs_fini(&a);
}

static void test_gw_tokens_roles_and_bad_files(void **state) {
    (void)state;
    char err[KMX_GW_ERR_MAX];
    kmx_gw_tokens_t t;
    const char *file = "# tokens\nreader-token-0123456789 reader dashboard\r\n\n"
                       "writer-token-0123456789 writer loader\n";
    assert_int_equal(kmx_gw_tokens_parse(file, strlen(file), &t, err), 0);
    assert_int_equal(t.n, 2);
    assert_int_equal(kmx_gw_tokens_role(&t, "Bearer reader-token-0123456789", NULL),
                     KMX_GW_ROLE_READER);
    assert_int_equal(kmx_gw_tokens_role(&t, "bearer writer-token-0123456789", NULL),
                     KMX_GW_ROLE_WRITER);
    assert_int_equal(kmx_gw_tokens_role(&t, NULL, "writer-token-0123456789"), KMX_GW_ROLE_WRITER);
    assert_int_equal(kmx_gw_tokens_role(&t, "Bearer writer-token-012345678", NULL),
                     KMX_GW_ROLE_NONE);
    assert_int_equal(kmx_gw_tokens_role(&t, "Basic abc", NULL), KMX_GW_ROLE_NONE);
    kmx_gw_tokens_fini(&t);
    const char *bad = "reader-token-0123456789 admin\n";
    assert_int_equal(kmx_gw_tokens_parse(bad, strlen(bad), &t, err), -1);
    assert_non_null(strstr(err, "line 1"));
    const char *twice = "reader-token-0123456789 reader\nreader-token-0123456789 writer\n";
    assert_int_equal(kmx_gw_tokens_parse(twice, strlen(twice), &t, err), -1);
    assert_non_null(strstr(err, "line 2"));
}

static void test_gw_seq_and_addresses(void **state) {
    (void)state;
    uint64_t seq = 0;
    char err[KMX_GW_ERR_MAX];
    assert_int_equal(kmx_gw_seq_parse("1234", &seq), 0);
    assert_int_equal(seq, 1234);
    assert_int_equal(kmx_gw_seq_parse("-1", &seq), -1);
    assert_int_equal(kmx_gw_seq_parse("12x", &seq), -1);
    struct sockaddr_in a;
    assert_int_equal(kmx_gw_addr_parse("127.0.0.1:8480", &a, err), 0);
    assert_int_equal(ntohs(a.sin_port), 8480);
    assert_int_equal(kmx_gw_addr_parse("localhost:0", &a, err), 0);
    assert_int_equal(kmx_gw_addr_parse("127.0.0.1", &a, err), -1);
    assert_int_equal(kmx_gw_addr_parse("example:80", &a, err), -1);
    assert_int_equal(kmx_gw_addr_parse("127.0.0.1:70000", &a, err), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gw_route_paths_methods_and_files),
        cmocka_unit_test(test_gw_param_maps_options_and_names_bad_ones),
        cmocka_unit_test(test_gw_tokens_roles_and_bad_files),
        cmocka_unit_test(test_gw_seq_and_addresses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
