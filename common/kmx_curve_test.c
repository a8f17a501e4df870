/*  Tests for kmx_curve: key forms, key pairs, and the allow-list checks that stop a
    server at start. The handshakes themselves are tested end to end with real
    processes (tests/integration/test_curve.py).  */
#include "kmx_curve.h"

#include "kmx_err.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static void test_curve_keys_in_hex_and_z85(void **state) {
    (void)state;
    char pub[65], sec[65];
    assert_int_equal(kmx_curve_keygen(pub, sec), 0);
    assert_int_equal(strlen(pub), 64);
    unsigned char a[32], b[32];
    assert_int_equal(kmx_curve_key_decode(pub, a), 0);
    char z85[41];
    assert_non_null(zmq_z85_encode(z85, a, 32));
    assert_int_equal(kmx_curve_key_decode(z85, b), 0);
    assert_memory_equal(a, b, 32); // the same key in both forms
    assert_int_equal(kmx_curve_key_decode("abc", a), KMX_ERR_INVAL);
    char bad[65];
    memcpy(bad, pub, sizeof bad);
    bad[10] = 'g'; // not a hex digit
    assert_int_equal(kmx_curve_key_decode(bad, a), KMX_ERR_INVAL);
    assert_int_equal(kmx_curve_key_decode(NULL, a), KMX_ERR_INVAL);
}

// Writes text to a fresh file and points KMX_CURVE_ALLOW at it.
static void s_allow(char *path, const char *text) {
    strcpy(path, "/tmp/kmx-curve-test-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    setenv("KMX_CURVE_ALLOW", path, 1);
}

static void test_curve_allow_list_is_checked_at_start(void **state) {
    (void)state;
    void *ctx = zmq_ctx_new();
    kmx_zap_t *zap = NULL;
    unsetenv("KMX_CURVE_SECRET");
    assert_false(kmx_curve_enabled());
    assert_int_equal(kmx_zap_start(ctx, &zap), 0); // CURVE off: nothing to start
    assert_null(zap);

    char pub[65], sec[65], path[64], text[512];
    assert_int_equal(kmx_curve_keygen(pub, sec), 0);
    setenv("KMX_CURVE_SECRET", sec, 1);
    assert_true(kmx_curve_enabled());
    setenv("KMX_CURVE_ALLOW", "/nonexistent/kmx-allow", 1);
    assert_int_equal(kmx_zap_start(ctx, &zap), KMX_ERR_INVAL); // unreadable list
    const char *bad[] = {"%s admin\n", "%s\n", "nokey reader\n"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        snprintf(text, sizeof text, bad[i], pub);
        s_allow(path, text);
        assert_int_equal(kmx_zap_start(ctx, &zap), KMX_ERR_INVAL);
        assert_null(zap);
        unlink(path);
    }
    snprintf(text, sizeof text, "# comment\n\n%s reader laptop # trailing\n%s service\n", pub, pub);
    s_allow(path, text);
    assert_int_equal(kmx_zap_start(ctx, &zap), 0);
    assert_non_null(zap);
    kmx_zap_stop(&zap);
    assert_null(zap);
    unlink(path);

    // A client socket with CURVE on needs the server's key.
    unsetenv("KMX_CURVE_BROKER");
    void *sock = zmq_socket(ctx, ZMQ_DEALER);
    assert_int_equal(kmx_curve_client(sock, KMX_CURVE_TO_BROKER), KMX_ERR_INVAL);
    setenv("KMX_CURVE_BROKER", pub, 1);
    assert_int_equal(kmx_curve_client(sock, KMX_CURVE_TO_BROKER), 0);
    zmq_close(sock);
    unsetenv("KMX_CURVE_SECRET");
    zmq_ctx_term(ctx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_curve_keys_in_hex_and_z85),
        cmocka_unit_test(test_curve_allow_list_is_checked_at_start),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
