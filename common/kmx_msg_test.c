/*  Tests for kmx_msg: round trips, and malformed bytes refused without crashing.  */
#include "kmx_err.h"
#include "kmx_msg.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void test_msg_request_round_trip(void **state) {
    (void)state;
    Kmx__V1__Request req = KMX__V1__REQUEST__INIT;
    Kmx__V1__ReplayRequest replay = KMX__V1__REPLAY_REQUEST__INIT;
    replay.has_since = 1;
    replay.since = 42;
    req.request_id = "r-1";
    req.body_case = KMX__V1__REQUEST__BODY_REPLAY;
    req.replay = &replay;
    uint8_t *buf;
    size_t len;
    assert_int_equal(kmx_msg_pack_request(&req, &buf, &len), 0);
    Kmx__V1__Request *back = kmx_msg_request_unpack(buf, len);
    assert_non_null(back);
    assert_string_equal(back->request_id, "r-1");
    assert_int_equal(back->body_case, KMX__V1__REQUEST__BODY_REPLAY);
    assert_int_equal(back->replay->since, 42);
    assert_string_equal(kmx_msg_body_name(back), "replay");
    kmx__v1__request__free_unpacked(back, NULL);
    free(buf);
}

static void test_msg_unpack_refuses_malformed(void **state) {
    (void)state;
    Kmx__V1__Request req = KMX__V1__REQUEST__INIT;
    Kmx__V1__PingRequest ping = KMX__V1__PING_REQUEST__INIT;
    req.request_id = "a-fairly-long-request-identifier";
    req.body_case = KMX__V1__REQUEST__BODY_PING;
    req.ping = &ping;
    uint8_t *buf;
    size_t len;
    assert_int_equal(kmx_msg_pack_request(&req, &buf, &len), 0);
    // Every strict prefix cuts the string field short: each must be refused.
    for (size_t n = 1; n + 2 < len; n++)
        assert_null(kmx_msg_request_unpack(buf, n));
    free(buf);
    assert_null(kmx_msg_request_unpack(NULL, 0));
    assert_null(kmx_msg_request_unpack("", 0));
    const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    assert_null(kmx_msg_request_unpack(garbage, sizeof garbage));
    const uint8_t bad_len[] = {0x0a, 0x7f, 'x'}; // request_id claims 127 bytes, has 1
    assert_null(kmx_msg_request_unpack(bad_len, sizeof bad_len));
    // Random bytes: whatever protobuf-c decides, it must not crash and must free cleanly.
    srand(7);
    uint8_t noise[64];
    for (int i = 0; i < 2000; i++) {
        size_t n = (size_t)(rand() % (int)sizeof noise) + 1;
        for (size_t j = 0; j < n; j++)
            noise[j] = (uint8_t)rand();
        Kmx__V1__Request *r = kmx_msg_request_unpack(noise, n);
        if (r)
            kmx__v1__request__free_unpacked(r, NULL);
    }
}

static void test_msg_error_response(void **state) {
    (void)state;
    uint8_t *buf;
    size_t len;
    assert_int_equal(kmx_msg_pack_error("id-9", KMX_ERR_UNAVAILABLE, "storage down", &buf, &len),
                     0);
    Kmx__V1__Response *resp = kmx_msg_response_unpack(buf, len);
    assert_non_null(resp);
    assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_ERROR);
    assert_int_equal(resp->error->code, KMX__V1__ERROR_CODE__UNAVAILABLE);
    assert_string_equal(resp->error->message, "storage down");
    assert_string_equal(resp->request_id, "id-9");
    kmx__v1__response__free_unpacked(resp, NULL);
    free(buf);
    assert_int_equal(kmx_msg_error_code(KMX_ERR_INVAL), KMX__V1__ERROR_CODE__BAD_REQUEST);
    assert_int_equal(kmx_msg_error_code(KMX_ERR_RESYNC), KMX__V1__ERROR_CODE__RESYNC_NEEDED);
    assert_int_equal(kmx_msg_error_code(KMX_ERR_IO), KMX__V1__ERROR_CODE__INTERNAL);
}

static void test_err_texts_cover_every_code(void **state) {
    (void)state;
    assert_string_equal(kmx_strerror(KMX_ERR_NOT_FOUND), "no such record");
    assert_string_equal(kmx_err_name(KMX_ERR_RESYNC), "RESYNC");
    assert_string_equal(kmx_strerror(-999), "unknown error");
    assert_string_equal(kmx_strerror(0), "ok");
}

// The oneof case read from packed bytes is the one protobuf decodes, for replies and
// requests alike; bytes that are not wire format give 0.
static void test_msg_oneof_case_without_decoding(void **state) {
    (void)state;
    Kmx__V1__ScanResult scan = KMX__V1__SCAN_RESULT__INIT;
    Kmx__V1__Response resp = KMX__V1__RESPONSE__INIT;
    resp.request_id = "r-2";
    resp.result_case = KMX__V1__RESPONSE__RESULT_SCAN;
    resp.scan = &scan;
    uint8_t *buf = NULL;
    size_t len = 0, n = 1;
    assert_int_equal(kmx_msg_pack_response(&resp, &buf, &len), 0);
    assert_int_equal(kmx_msg_oneof_case(buf, len, KMX__V1__RESPONSE__RESULT_ERROR, &n),
                     KMX__V1__RESPONSE__RESULT_SCAN);
    assert_int_equal(n, 0); // an empty page
    assert_int_equal(kmx_msg_oneof_case(buf, len - 1, KMX__V1__RESPONSE__RESULT_ERROR, NULL), 0);
    free(buf);
    assert_int_equal(kmx_msg_pack_error("r-3", KMX_ERR_INVAL, "bad", &buf, &len), 0);
    assert_int_equal(kmx_msg_oneof_case(buf, len, KMX__V1__RESPONSE__RESULT_ERROR, &n),
                     KMX__V1__RESPONSE__RESULT_ERROR);
    assert_true(n > 0);
    free(buf);
    Kmx__V1__PingRequest ping = KMX__V1__PING_REQUEST__INIT;
    Kmx__V1__Request req = KMX__V1__REQUEST__INIT;
    req.request_id = "r-4";
    req.body_case = KMX__V1__REQUEST__BODY_PING;
    req.ping = &ping;
    assert_int_equal(kmx_msg_pack_request(&req, &buf, &len), 0);
    assert_int_equal(kmx_msg_oneof_case(buf, len, KMX__V1__REQUEST__BODY_PING, NULL),
                     KMX__V1__REQUEST__BODY_PING);
    free(buf);
    const uint8_t junk[] = {0xff, 0xff, 0xff};
    assert_int_equal(kmx_msg_oneof_case(junk, sizeof junk, 1, &n), 0);
    assert_int_equal(kmx_msg_oneof_case(NULL, 0, 1, NULL), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_msg_request_round_trip),
        cmocka_unit_test(test_msg_unpack_refuses_malformed),
        cmocka_unit_test(test_msg_error_response),
        cmocka_unit_test(test_msg_oneof_case_without_decoding),
        cmocka_unit_test(test_err_texts_cover_every_code),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
