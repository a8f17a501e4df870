/*  Tests for kmx_handler: pong and stats replies decode to what was packed, the table walk
    finds the right handler, and a body no entry handles gets UNSUPPORTED.  */
#include "kmx_err.h"
#include "kmx_handler.h"
#include "kmx_msg.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
// cmocka.h needs the headers above.
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

// Unpacks a reply packed by the code under test and frees the buffer.
static Kmx__V1__Response *s_unpack(uint8_t *buf, size_t len) {
    Kmx__V1__Response *resp = kmx_msg_response_unpack(buf, len);
    free(buf);
    assert_non_null(resp);
    return resp;
}

static void s_ping_request(Kmx__V1__Request *req, Kmx__V1__PingRequest *ping) {
    kmx__v1__request__init(req);
    kmx__v1__ping_request__init(ping);
    req->request_id = "r-7";
    req->body_case = KMX__V1__REQUEST__BODY_PING;
    req->ping = ping;
}

static void test_handler_pong(void **state) {
    (void)state;
    Kmx__V1__Request req;
    Kmx__V1__PingRequest ping;
    s_ping_request(&req, &ping);
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(kmx_handler_pack_pong("kmx.test", "w-1", &req, &buf, &len), 0);
    Kmx__V1__Response *resp = s_unpack(buf, len);
    assert_string_equal(resp->request_id, "r-7");
    assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_PONG);
    assert_string_equal(resp->pong->service, "kmx.test");
    assert_string_equal(resp->pong->worker, "w-1");
    assert_string_equal(resp->pong->version, KMX_VERSION);
    kmx__v1__response__free_unpacked(resp, NULL);
}

static void test_handler_stats(void **state) {
    (void)state;
    Kmx__V1__Request req;
    Kmx__V1__PingRequest ping;
    s_ping_request(&req, &ping);
    const kmx_handler_counter_t counters[] = {{"requests", 12}, {"errors", 0}, {"big", UINT64_MAX}};
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(kmx_handler_pack_stats("kmx.test", "w-2", counters, 3, &req, &buf, &len), 0);
    Kmx__V1__Response *resp = s_unpack(buf, len);
    assert_string_equal(resp->request_id, "r-7");
    assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_STATS);
    assert_string_equal(resp->stats->service, "kmx.test");
    assert_string_equal(resp->stats->worker, "w-2");
    assert_int_equal(resp->stats->n_counters, 6);
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(resp->stats->counters[i]->name, counters[i].name);
        assert_true(resp->stats->counters[i]->has_value);
        assert_true(resp->stats->counters[i]->value == counters[i].value);
    }
    // The process's own figures follow, so every service reports them the same way.
    assert_string_equal(resp->stats->counters[3]->name, "rss_bytes");
    assert_true(resp->stats->counters[3]->value > 0);
    assert_string_equal(resp->stats->counters[4]->name, "open_fds");
    assert_true(resp->stats->counters[4]->value >= 3);
    assert_string_equal(resp->stats->counters[5]->name, "uptime_s");
    kmx__v1__response__free_unpacked(resp, NULL);
}

static void test_handler_stats_refuses_too_many(void **state) {
    (void)state;
    Kmx__V1__Request req;
    Kmx__V1__PingRequest ping;
    s_ping_request(&req, &ping);
    kmx_handler_counter_t counters[KMX_HANDLER_COUNTERS_MAX + 1];
    memset(counters, 0, sizeof counters);
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(kmx_handler_pack_stats("kmx.test", "w", counters, KMX_HANDLER_COUNTERS_MAX + 1,
                                            &req, &buf, &len),
                     KMX_ERR_INVAL);
    assert_null(buf);
}

static int s_on_ping(void *ctx, const Kmx__V1__Request *req, uint8_t **out, size_t *len) {
    (void)req, (void)out, (void)len;
    return ++*(int *)ctx;
}

static int s_on_stats(void *ctx, const Kmx__V1__Request *req, uint8_t **out, size_t *len) {
    (void)req, (void)out, (void)len;
    *(int *)ctx += 100;
    return 0;
}

static const kmx_handler_t s_table[] = {
    {KMX__V1__REQUEST__BODY_PING, s_on_ping},
    {KMX__V1__REQUEST__BODY_STATS, s_on_stats},
};

static void test_handler_find(void **state) {
    (void)state;
    Kmx__V1__Request req;
    Kmx__V1__PingRequest ping;
    s_ping_request(&req, &ping);
    const kmx_handler_t *h = kmx_handler_find(s_table, 2, &req);
    assert_ptr_equal(h, &s_table[0]);
    int calls = 0;
    assert_int_equal(h->fn(&calls, &req, NULL, NULL), 1);

    Kmx__V1__StatsRequest stats = KMX__V1__STATS_REQUEST__INIT;
    req.body_case = KMX__V1__REQUEST__BODY_STATS;
    req.stats = &stats;
    assert_ptr_equal(kmx_handler_find(s_table, 2, &req), &s_table[1]);

    req.stats = NULL; // the body type named but its member missing
    assert_null(kmx_handler_find(s_table, 2, &req));
    req.stats = &stats;
    assert_null(kmx_handler_find(s_table, 1, &req)); // not in the shorter table
}

static void test_handler_unsupported(void **state) {
    (void)state;
    Kmx__V1__Request req = KMX__V1__REQUEST__INIT;
    Kmx__V1__ReplayRequest replay = KMX__V1__REPLAY_REQUEST__INIT;
    req.request_id = "r-9";
    req.body_case = KMX__V1__REQUEST__BODY_REPLAY;
    req.replay = &replay;
    assert_null(kmx_handler_find(s_table, 2, &req));
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(kmx_handler_pack_unsupported("kmx.test", &req, &buf, &len), 0);
    Kmx__V1__Response *resp = s_unpack(buf, len);
    assert_string_equal(resp->request_id, "r-9");
    assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_ERROR);
    assert_int_equal(resp->error->code, KMX__V1__ERROR_CODE__UNSUPPORTED);
    assert_string_equal(resp->error->message, "kmx.test does not handle 'replay' requests");
    kmx__v1__response__free_unpacked(resp, NULL);
}

static void test_handler_link_error(void **state) {
    (void)state;
    Kmx__V1__Request req;
    Kmx__V1__PingRequest ping;
    s_ping_request(&req, &ping);
    const struct {
        int rc;
        Kmx__V1__ErrorCode code;
        const char *message;
    } cases[] = {
        {KMX_ERR_DECODE, KMX__V1__ERROR_CODE__INTERNAL,
         "storage sent a reply that does not decode"},
        {KMX_ERR_NOMEM, KMX__V1__ERROR_CODE__INTERNAL, "out of memory"},
        {KMX_ERR_TIMEOUT, KMX__V1__ERROR_CODE__UNAVAILABLE, "storage did not answer; retry"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t *buf = NULL;
        size_t len = 0;
        assert_int_equal(kmx_handler_pack_link_error(&req, cases[i].rc, &buf, &len), 0);
        Kmx__V1__Response *resp = s_unpack(buf, len);
        assert_string_equal(resp->request_id, "r-7");
        assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_ERROR);
        assert_int_equal(resp->error->code, cases[i].code);
        assert_string_equal(resp->error->message, cases[i].message);
        kmx__v1__response__free_unpacked(resp, NULL);
    }
}

// A service's object as kmx_handler_new makes it: the base first, its own state after.
typedef struct {
    kmx_handler_base_t base; // common part
    int own;                 // the service's own state, zeroed
} t_service_t;

static const kmx_handler_t t_table[] = {{KMX__V1__REQUEST__BODY_PING, kmx_handler_on_ping}};
static const kmx_handler_class_t t_class = {"kmx.test", t_table, 1, 1234, sizeof(t_service_t)};

// The object every worker service is: decode, find, dispatch, count; every input answered.
static void test_handler_object_handles_and_counts(void **state) {
    (void)state;
    kmx_handler_base_t *h = kmx_handler_new(&t_class, NULL, "w-9");
    assert_non_null(h);
    assert_int_equal(((t_service_t *)h)->own, 0);
    assert_int_equal(h->timeout_ms, 1234);
    kmx_handler_set_timeout(h, 50);
    assert_int_equal(h->timeout_ms, 50);
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(kmx_handler_handle(h, "\xff\xff\xff", 3, &buf, &len), 0);
    Kmx__V1__Response *resp = s_unpack(buf, len);
    assert_int_equal(resp->error->code, KMX__V1__ERROR_CODE__BAD_REQUEST);
    kmx__v1__response__free_unpacked(resp, NULL);
    Kmx__V1__Request req;
    Kmx__V1__PingRequest ping;
    s_ping_request(&req, &ping);
    uint8_t body[64];
    size_t n = kmx__v1__request__pack(&req, body);
    assert_int_equal(kmx_handler_handle(h, body, n, &buf, &len), 0);
    resp = s_unpack(buf, len);
    assert_string_equal(resp->pong->service, "kmx.test");
    assert_string_equal(resp->pong->worker, "w-9");
    kmx__v1__response__free_unpacked(resp, NULL);
    Kmx__V1__StatsRequest stats = KMX__V1__STATS_REQUEST__INIT;
    req.body_case = KMX__V1__REQUEST__BODY_STATS;
    req.stats = &stats;
    n = kmx__v1__request__pack(&req, body);
    assert_int_equal(kmx_handler_handle(h, body, n, &buf, &len), 0);
    resp = s_unpack(buf, len);
    assert_int_equal(resp->error->code, KMX__V1__ERROR_CODE__UNSUPPORTED);
    kmx__v1__response__free_unpacked(resp, NULL);
    assert_int_equal(h->requests, 3);
    assert_int_equal(h->errors, 2);
    kmx_handler_destroy(&h);
    assert_null(h);
    kmx_handler_destroy(&h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handler_pong),
        cmocka_unit_test(test_handler_stats),
        cmocka_unit_test(test_handler_stats_refuses_too_many),
        cmocka_unit_test(test_handler_find),
        cmocka_unit_test(test_handler_unsupported),
        cmocka_unit_test(test_handler_link_error),
        cmocka_unit_test(test_handler_object_handles_and_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
