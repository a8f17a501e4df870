/*  libkmx tests against a scripted broker: a ROUTER on tcp://127.0.0.1:* in a thread that
    answers MDPC01 requests the way kmx-broker relays worker replies. Covers results, error
    responses mapped to kmx codes, request ids, and a timeout when nobody answers.  */
#include "kmx_client.h"

#include "kmx_err.h"
#include "kmx_mdp.h"
#include "kmx_msg.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include <cmocka.h>

typedef struct {
    void *ctx;         // context of the fake broker
    void *router;      // its ROUTER socket
    char endpoint[64]; // where it listens
    int replies;       // requests to answer before stopping
    int unavailable;   // of them, the first ones answered UNAVAILABLE (a full queue)
    pthread_t thread;  // the broker thread
} s_broker_t;

// Builds the reply the fake broker sends for req.
static void s_answer(const char *service, const Kmx__V1__Request *req, uint8_t **out, size_t *len) {
    Kmx__V1__Response resp = KMX__V1__RESPONSE__INIT;
    resp.request_id = req->request_id;
    Kmx__V1__PongResult pong = KMX__V1__PONG_RESULT__INIT;
    Kmx__V1__PutResult put = KMX__V1__PUT_RESULT__INIT;
    Kmx__V1__Error err = KMX__V1__ERROR__INIT;
    if (req->body_case == KMX__V1__REQUEST__BODY_PING) {
        pong.service = (char *)service;
        pong.worker = "fake-1";
        resp.result_case = KMX__V1__RESPONSE__RESULT_PONG;
        resp.pong = &pong;
    } else if (req->body_case == KMX__V1__REQUEST__BODY_PUT) {
        put.has_stored = 1;
        put.stored = (uint32_t)req->put->n_records;
        resp.result_case = KMX__V1__RESPONSE__RESULT_PUT;
        resp.put = &put;
    } else {
        err.has_code = 1;
        err.code = KMX__V1__ERROR_CODE__NOT_FOUND;
        err.message = "no such record";
        resp.result_case = KMX__V1__RESPONSE__RESULT_ERROR;
        resp.error = &err;
    }
    if (kmx_msg_pack_response(&resp, out, len) < 0)
        *out = NULL;
}

// Builds the UNAVAILABLE answer of a broker whose queue is full.
static void s_answer_unavailable(const Kmx__V1__Request *req, uint8_t **out, size_t *len) {
    Kmx__V1__Error err = KMX__V1__ERROR__INIT;
    err.has_code = 1;
    err.code = KMX__V1__ERROR_CODE__UNAVAILABLE;
    err.message = "broker queue full: test";
    Kmx__V1__Response resp = KMX__V1__RESPONSE__INIT;
    resp.request_id = req->request_id;
    resp.result_case = KMX__V1__RESPONSE__RESULT_ERROR;
    resp.error = &err;
    if (kmx_msg_pack_response(&resp, out, len) < 0)
        *out = NULL;
}

static void *s_broker_run(void *arg) {
    s_broker_t *b = arg;
    for (int i = 0; i < b->replies; i++) {
        zmq_msg_t f[5];
        int n = 0, more = 1;
        while (more && n < 5) {
            zmq_msg_init(&f[n]);
            if (zmq_msg_recv(&f[n], b->router, 0) < 0)
                return NULL;
            more = zmq_msg_more(&f[n]);
            n++;
        }
        // cmocka asserts must stay on the main thread: a bad request ends the thread and
        // the waiting client then fails its own assertions.
        Kmx__V1__Request *req =
            n == 5 ? kmx_msg_request_unpack(zmq_msg_data(&f[4]), zmq_msg_size(&f[4])) : NULL;
        uint8_t *body = NULL;
        size_t len = 0;
        char service[64] = {0};
        if (req && req->request_id) {
            size_t slen = zmq_msg_size(&f[3]) < 63 ? zmq_msg_size(&f[3]) : 63;
            memcpy(service, zmq_msg_data(&f[3]), slen);
            if (i < b->unavailable)
                s_answer_unavailable(req, &body, &len);
            else
                s_answer(service, req, &body, &len);
        }
        if (!body) {
            if (req)
                kmx__v1__request__free_unpacked(req, NULL);
            for (int k = 0; k < n; k++)
                zmq_msg_close(&f[k]);
            return NULL;
        }
        zmq_send(b->router, zmq_msg_data(&f[0]), zmq_msg_size(&f[0]), ZMQ_SNDMORE);
        zmq_send(b->router, "", 0, ZMQ_SNDMORE);
        zmq_send(b->router, KMX_MDPC, strlen(KMX_MDPC), ZMQ_SNDMORE);
        zmq_send(b->router, service, strlen(service), ZMQ_SNDMORE);
        zmq_send(b->router, body, len, 0);
        free(body);
        kmx__v1__request__free_unpacked(req, NULL);
        for (int k = 0; k < n; k++)
            zmq_msg_close(&f[k]);
    }
    return NULL;
}

static int s_setup(void **state) {
    s_broker_t *b = calloc(1, sizeof(*b));
    assert_non_null(b);
    b->ctx = zmq_ctx_new();
    b->router = zmq_socket(b->ctx, ZMQ_ROUTER);
    int zero = 0;
    zmq_setsockopt(b->router, ZMQ_LINGER, &zero, sizeof(zero));
    assert_int_equal(zmq_bind(b->router, "tcp://127.0.0.1:*"), 0);
    size_t size = sizeof(b->endpoint);
    assert_int_equal(zmq_getsockopt(b->router, ZMQ_LAST_ENDPOINT, b->endpoint, &size), 0);
    *state = b;
    return 0;
}

static int s_teardown(void **state) {
    s_broker_t *b = *state;
    zmq_close(b->router);
    zmq_ctx_term(b->ctx);
    free(b);
    return 0;
}

static void s_start(s_broker_t *b, int replies) {
    b->replies = replies;
    assert_int_equal(pthread_create(&b->thread, NULL, s_broker_run, b), 0);
}

static void test_client_ping_returns_pong(void **state) {
    s_broker_t *b = *state;
    s_start(b, 1);
    kmx_client_t *c = kmx_client_new(b->endpoint, 5000, 1);
    assert_non_null(c);
    Kmx__V1__Response *resp = NULL;
    assert_int_equal(kmx_client_ping(c, KMX_SERVICE_INGEST, &resp), 0);
    assert_non_null(resp);
    assert_string_equal(resp->pong->service, KMX_SERVICE_INGEST);
    assert_string_equal(resp->pong->worker, "fake-1");
    assert_non_null(resp->request_id);
    kmx__v1__response__free_unpacked(resp, NULL);
    pthread_join(b->thread, NULL);
    kmx_client_destroy(&c);
    assert_null(c);
}

static void test_client_put_sends_records(void **state) {
    s_broker_t *b = *state;
    s_start(b, 1);
    kmx_client_t *c = kmx_client_new(b->endpoint, 5000, 1);
    Kmx__V1__Record r1 = KMX__V1__RECORD__INIT, r2 = KMX__V1__RECORD__INIT;
    Kmx__V1__Record *recs[] = {&r1, &r2};
    Kmx__V1__Response *resp = NULL;
    assert_int_equal(kmx_client_put(c, recs, 2, true, &resp), 0);
    assert_int_equal(resp->put->stored, 2);
    kmx__v1__response__free_unpacked(resp, NULL);
    pthread_join(b->thread, NULL);
    kmx_client_destroy(&c);
}

static void test_client_maps_error_response(void **state) {
    s_broker_t *b = *state;
    s_start(b, 1);
    kmx_client_t *c = kmx_client_new(b->endpoint, 5000, 1);
    Kmx__V1__Record key = KMX__V1__RECORD__INIT;
    Kmx__V1__Response *resp = NULL;
    assert_int_equal(kmx_client_get(c, &key, &resp), KMX_ERR_NOT_FOUND);
    assert_non_null(resp);
    assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_ERROR);
    assert_non_null(strstr(kmx_client_last_error(c), "no such record"));
    kmx__v1__response__free_unpacked(resp, NULL);
    pthread_join(b->thread, NULL);
    kmx_client_destroy(&c);
}

static void test_client_times_out_without_answer(void **state) {
    s_broker_t *b = *state;
    kmx_client_t *c = kmx_client_new(b->endpoint, 100, 2);
    Kmx__V1__Response *resp = NULL;
    assert_int_equal(kmx_client_ping(c, KMX_SERVICE_QUERY, &resp), KMX_ERR_TIMEOUT);
    assert_null(resp);
    assert_non_null(strstr(kmx_client_last_error(c), "kmx.query"));
    kmx_client_destroy(&c);
}

// Within a deadline, UNAVAILABLE answers are retried after a backoff until one succeeds;
// the client counts the retries.
static void test_client_retries_unavailable_within_the_deadline(void **state) {
    s_broker_t *b = *state;
    b->unavailable = 3;
    s_start(b, 4);
    kmx_client_t *c = kmx_client_new(b->endpoint, 1000, 1);
    kmx_client_set_deadline(c, 10000);
    Kmx__V1__Record r1 = KMX__V1__RECORD__INIT;
    Kmx__V1__Record *recs[] = {&r1};
    Kmx__V1__Response *resp = NULL;
    assert_int_equal(kmx_client_put(c, recs, 1, false, &resp), 0);
    assert_int_equal(resp->put->stored, 1);
    assert_int_equal(kmx_client_retries(c), 3);
    kmx__v1__response__free_unpacked(resp, NULL);
    pthread_join(b->thread, NULL);
    kmx_client_destroy(&c);
}

// Without a deadline an UNAVAILABLE answer is returned at once, as before.
static void test_client_without_deadline_returns_unavailable(void **state) {
    s_broker_t *b = *state;
    b->unavailable = 1;
    s_start(b, 1);
    kmx_client_t *c = kmx_client_new(b->endpoint, 1000, 3);
    Kmx__V1__Response *resp = NULL;
    assert_int_equal(kmx_client_ping(c, KMX_SERVICE_INGEST, &resp), KMX_ERR_UNAVAILABLE);
    assert_non_null(strstr(kmx_client_last_error(c), "queue full"));
    assert_int_equal(kmx_client_retries(c), 0);
    kmx__v1__response__free_unpacked(resp, NULL);
    pthread_join(b->thread, NULL);
    kmx_client_destroy(&c);
}

// A peer that never answers: the call gives up once the deadline has passed, having
// retried with growing pauses (50, 100, then 200 ms, less jitter) in between.
static void test_client_deadline_bounds_timeouts(void **state) {
    s_broker_t *b = *state;
    kmx_client_t *c = kmx_client_new(b->endpoint, 200, 1);
    kmx_client_set_deadline(c, 1500);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    Kmx__V1__Response *resp = NULL;
    assert_int_equal(kmx_client_ping(c, KMX_SERVICE_QUERY, &resp), KMX_ERR_TIMEOUT);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (long)(t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    assert_true(ms < 1500 + 200);
    assert_true(kmx_client_retries(c) >= 2);
    kmx_client_destroy(&c);
}

// Clients of a group share one context: each gets its own answers, and one destroyed
// leaves the other working until the group ends after both.
static void test_client_group_shares_a_context(void **state) {
    s_broker_t *b = *state;
    s_start(b, 3);
    kmx_client_group_t *group = kmx_client_group_new();
    assert_non_null(group);
    kmx_client_t *one = kmx_client_new_in(group, b->endpoint, 5000, 1);
    kmx_client_t *two = kmx_client_new_in(group, b->endpoint, 5000, 1);
    assert_non_null(one);
    assert_non_null(two);
    Kmx__V1__Response *resp = NULL;
    assert_int_equal(kmx_client_ping(one, KMX_SERVICE_INGEST, &resp), 0);
    assert_string_equal(resp->pong->service, KMX_SERVICE_INGEST);
    kmx__v1__response__free_unpacked(resp, NULL);
    assert_int_equal(kmx_client_ping(two, KMX_SERVICE_QUERY, &resp), 0);
    assert_string_equal(resp->pong->service, KMX_SERVICE_QUERY);
    kmx__v1__response__free_unpacked(resp, NULL);
    kmx_client_destroy(&one);
    assert_int_equal(kmx_client_ping(two, KMX_SERVICE_BROKER, &resp), 0);
    assert_string_equal(resp->pong->service, KMX_SERVICE_BROKER);
    kmx__v1__response__free_unpacked(resp, NULL);
    pthread_join(b->thread, NULL);
    kmx_client_destroy(&two);
    kmx_client_group_destroy(&group);
    assert_null(group);
    kmx_client_group_destroy(&group); // NULL is fine
}

static void test_client_error_codes(void **state) {
    (void)state;
    assert_int_equal(kmx_client_error_code(KMX__V1__ERROR_CODE__BAD_REQUEST), KMX_ERR_INVAL);
    assert_int_equal(kmx_client_error_code(KMX__V1__ERROR_CODE__UNAVAILABLE), KMX_ERR_UNAVAILABLE);
    assert_int_equal(kmx_client_error_code(KMX__V1__ERROR_CODE__RESYNC_NEEDED), KMX_ERR_RESYNC);
    assert_null(kmx_client_new(NULL, 0, 0));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_client_ping_returns_pong, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_client_put_sends_records, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_client_maps_error_response, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_client_times_out_without_answer, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_client_retries_unavailable_within_the_deadline,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_client_without_deadline_returns_unavailable, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_client_deadline_bounds_timeouts, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_client_group_shares_a_context, s_setup, s_teardown),
        cmocka_unit_test(test_client_error_codes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
