/*  kmx_mdp_test - the MDP worker and client against a scripted broker: a plain ROUTER on a
    loopback port that this test drives frame by frame, so every byte on the wire is checked
    and malformed broker messages can be injected.  */
#include "kmx_err.h"
#include "kmx_mdp.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

// cmocka.h needs the headers above, setjmp.h in particular.
#include <cmocka.h>

#define T_MAX_FRAMES 16
#define T_WAIT_MS 3000

typedef struct {
    void *ctx;          // ZeroMQ context of the test
    void *router;       // the scripted broker
    char endpoint[256]; // where it is bound
} t_env_t;

typedef struct {
    zmq_msg_t frames[T_MAX_FRAMES]; // received frames
    int count;                      // how many
} t_msg_t;

static int t_setup(void **state) {
    t_env_t *env = calloc(1, sizeof *env);
    assert_non_null(env);
    env->ctx = zmq_ctx_new();
    assert_non_null(env->ctx);
    env->router = zmq_socket(env->ctx, ZMQ_ROUTER);
    assert_non_null(env->router);
    int one = 1;
    int zero = 0;
    assert_int_equal(zmq_setsockopt(env->router, ZMQ_ROUTER_HANDOVER, &one, sizeof one), 0);
    assert_int_equal(zmq_setsockopt(env->router, ZMQ_LINGER, &zero, sizeof zero), 0);
    assert_int_equal(zmq_bind(env->router, "tcp://127.0.0.1:*"), 0);
    size_t size = sizeof env->endpoint;
    assert_int_equal(zmq_getsockopt(env->router, ZMQ_LAST_ENDPOINT, env->endpoint, &size), 0);
    *state = env;
    return 0;
}

static int t_teardown(void **state) {
    t_env_t *env = *state;
    zmq_close(env->router);
    zmq_ctx_term(env->ctx);
    free(env);
    return 0;
}

// Receives one whole message within T_WAIT_MS; returns its frame count (0 on timeout).
static int t_recv(void *sock, t_msg_t *msg) {
    zmq_pollitem_t item = {sock, 0, ZMQ_POLLIN, 0};
    msg->count = 0;
    if (zmq_poll(&item, 1, T_WAIT_MS) <= 0)
        return 0;
    int more = 1;
    while (more && msg->count < T_MAX_FRAMES) {
        zmq_msg_t *frame = &msg->frames[msg->count];
        zmq_msg_init(frame);
        assert_true(zmq_msg_recv(frame, sock, 0) >= 0);
        more = zmq_msg_more(frame);
        msg->count++;
    }
    assert_false(more);
    return msg->count;
}

static void t_msg_close(t_msg_t *msg) {
    for (int i = 0; i < msg->count; i++)
        zmq_msg_close(&msg->frames[i]);
    msg->count = 0;
}

static void t_assert_frame(t_msg_t *msg, int index, const void *data, size_t size) {
    assert_true(index < msg->count);
    assert_int_equal(zmq_msg_size(&msg->frames[index]), size);
    if (size > 0)
        assert_memory_equal(zmq_msg_data(&msg->frames[index]), data, size);
}

static void t_assert_text(t_msg_t *msg, int index, const char *text) {
    t_assert_frame(msg, index, text, strlen(text));
}

// Sends count frames given as (data, size) pairs.
static void t_send(void *sock, int count, ...) {
    va_list args;
    va_start(args, count);
    for (int i = 0; i < count; i++) {
        const void *data = va_arg(args, const void *);
        size_t size = va_arg(args, size_t);
        assert_true(zmq_send(sock, data, size, i + 1 < count ? ZMQ_SNDMORE : 0) >= 0);
    }
    va_end(args);
}

#define T_S(text) (const void *)(text), strlen(text)

static const uint8_t t_ready = KMX_MDPW_READY;
static const uint8_t t_request = KMX_MDPW_REQUEST;
static const uint8_t t_reply = KMX_MDPW_REPLY;
static const uint8_t t_disconnect = KMX_MDPW_DISCONNECT;

// Expects [identity][empty][MDPW01][READY][service] on the scripted broker.
static void t_expect_ready(t_env_t *env, const char *identity, const char *service) {
    t_msg_t msg;
    assert_int_equal(t_recv(env->router, &msg), 5);
    t_assert_text(&msg, 0, identity);
    t_assert_frame(&msg, 1, "", 0);
    t_assert_text(&msg, 2, KMX_MDPW);
    t_assert_frame(&msg, 3, &t_ready, 1);
    t_assert_text(&msg, 4, service);
    t_msg_close(&msg);
}

static void t_send_request(t_env_t *env, const char *identity, const char *client,
                           const char *body) {
    t_send(env->router, 7, T_S(identity), "", (size_t)0, T_S(KMX_MDPW), &t_request, (size_t)1,
           T_S(client), "", (size_t)0, T_S(body));
}

static void test_mdp_worker_registers_with_identity(void **state) {
    t_env_t *env = *state;
    kmx_mdp_worker_t *worker = kmx_mdp_worker_new(env->ctx, env->endpoint, "kmx.test", "w-1");
    assert_non_null(worker);
    t_expect_ready(env, "w-1", "kmx.test");
    kmx_mdp_worker_destroy(&worker);
    assert_null(worker);
    // Destroying the worker says goodbye.
    t_msg_t msg;
    assert_int_equal(t_recv(env->router, &msg), 4);
    t_assert_frame(&msg, 3, &t_disconnect, 1);
    t_msg_close(&msg);
}

static void test_mdp_worker_answers_the_requesting_client(void **state) {
    t_env_t *env = *state;
    kmx_mdp_worker_t *worker = kmx_mdp_worker_new(env->ctx, env->endpoint, "kmx.test", "w-2");
    assert_non_null(worker);
    t_expect_ready(env, "w-2", "kmx.test");
    t_send_request(env, "w-2", "client-a", "hello");

    zmq_msg_t body;
    assert_int_equal(kmx_mdp_worker_recv(worker, T_WAIT_MS, &body), 1);
    assert_int_equal(zmq_msg_size(&body), 5);
    assert_memory_equal(zmq_msg_data(&body), "hello", 5);
    zmq_msg_close(&body);
    assert_int_equal(kmx_mdp_worker_send(worker, "world", 5), 0);

    t_msg_t msg;
    assert_int_equal(t_recv(env->router, &msg), 7);
    t_assert_text(&msg, 0, "w-2");
    t_assert_frame(&msg, 1, "", 0);
    t_assert_text(&msg, 2, KMX_MDPW);
    t_assert_frame(&msg, 3, &t_reply, 1);
    t_assert_text(&msg, 4, "client-a");
    t_assert_frame(&msg, 5, "", 0);
    t_assert_text(&msg, 6, "world");
    t_msg_close(&msg);

    // One reply per request: a second send has nobody to go to.
    assert_int_not_equal(kmx_mdp_worker_send(worker, "again", 5), 0);
    kmx_mdp_worker_destroy(&worker);
}

// The worker's wait over its broker socket and other descriptors (the local read socket's):
// either side wakes it, and a broker request is not kept waiting behind the others, also
// after turns in which only the other descriptors woke it.
static void test_mdp_worker_wait_wakes_for_either_side(void **state) {
    t_env_t *env = *state;
    kmx_mdp_worker_t *worker = kmx_mdp_worker_new(env->ctx, env->endpoint, "kmx.test", "w-5");
    assert_non_null(worker);
    t_expect_ready(env, "w-5", "kmx.test");
    int pipe_fds[2];
    assert_int_equal(pipe(pipe_fds), 0);
    struct pollfd also = {pipe_fds[0], POLLIN, 0};
    zmq_msg_t body;
    assert_int_equal(kmx_mdp_worker_wait(worker, 100, &body, &also, 1), 0); // nothing: timeout
    for (int round = 0; round < 3; round++) {
        assert_int_equal(write(pipe_fds[1], "x", 1), 1);
        also.revents = 0;
        assert_int_equal(kmx_mdp_worker_wait(worker, T_WAIT_MS, &body, &also, 1), KMX_MDP_OTHER);
        assert_true(also.revents & POLLIN);
        char c;
        assert_int_equal(read(pipe_fds[0], &c, 1), 1);
        char text[16];
        snprintf(text, sizeof text, "req-%d", round);
        t_send_request(env, "w-5", "client-e", text);
        assert_int_equal(kmx_mdp_worker_wait(worker, T_WAIT_MS, &body, &also, 1), 1);
        assert_int_equal(zmq_msg_size(&body), strlen(text));
        assert_memory_equal(zmq_msg_data(&body), text, strlen(text));
        zmq_msg_close(&body);
        assert_int_equal(kmx_mdp_worker_send(worker, "ok", 2), 0);
        t_msg_t msg;
        assert_int_equal(t_recv(env->router, &msg), 7);
        t_assert_text(&msg, 6, "ok");
        t_msg_close(&msg);
    }
    // Both ready at once: the broker's request comes first, the descriptor next.
    t_send_request(env, "w-5", "client-e", "first");
    struct timespec pause = {0, 50 * 1000000L};
    nanosleep(&pause, NULL);
    assert_int_equal(write(pipe_fds[1], "x", 1), 1);
    assert_int_equal(kmx_mdp_worker_wait(worker, T_WAIT_MS, &body, &also, 1), 1);
    zmq_msg_close(&body);
    assert_int_equal(kmx_mdp_worker_send(worker, "ok", 2), 0);
    also.revents = 0;
    assert_int_equal(kmx_mdp_worker_wait(worker, T_WAIT_MS, &body, &also, 1), KMX_MDP_OTHER);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    kmx_mdp_worker_destroy(&worker);
}

static void test_mdp_worker_skips_malformed_broker_messages(void **state) {
    t_env_t *env = *state;
    kmx_mdp_worker_t *worker = kmx_mdp_worker_new(env->ctx, env->endpoint, "kmx.test", "w-3");
    assert_non_null(worker);
    t_expect_ready(env, "w-3", "kmx.test");
    t_send(env->router, 2, T_S("w-3"), T_S("random bytes"));
    t_send(env->router, 4, T_S("w-3"), "", (size_t)0, T_S("MDPW99"), &t_request, (size_t)1);
    t_send(env->router, 4, T_S("w-3"), "", (size_t)0, T_S(KMX_MDPW), &t_request, (size_t)1);
    t_send(env->router, 4, T_S("w-3"), "", (size_t)0, T_S(KMX_MDPW), T_S("\x09\x09"));
    for (int i = 0; i < 3; i++) // a message far longer than any MDP message
        t_send(env->router, 12, T_S("w-3"), "", (size_t)0, T_S(KMX_MDPW), &t_request, (size_t)1,
               T_S("c"), "", (size_t)0, T_S("x"), T_S("x"), T_S("x"), T_S("x"), T_S("x"), T_S("x"));
    t_send_request(env, "w-3", "client-b", "good");

    zmq_msg_t body;
    int rc = 0;
    for (int i = 0; i < 20 && rc == 0; i++)
        rc = kmx_mdp_worker_recv(worker, 100, &body);
    assert_int_equal(rc, 1);
    assert_int_equal(zmq_msg_size(&body), 4);
    assert_memory_equal(zmq_msg_data(&body), "good", 4);
    zmq_msg_close(&body);
    kmx_mdp_worker_destroy(&worker);
}

static void test_mdp_worker_reconnects_after_disconnect(void **state) {
    t_env_t *env = *state;
    kmx_mdp_worker_t *worker = kmx_mdp_worker_new(env->ctx, env->endpoint, "kmx.test", "w-4");
    assert_non_null(worker);
    t_expect_ready(env, "w-4", "kmx.test");
    t_send(env->router, 4, T_S("w-4"), "", (size_t)0, T_S(KMX_MDPW), &t_disconnect, (size_t)1);
    zmq_msg_t body;
    assert_int_equal(kmx_mdp_worker_recv(worker, 200, &body), 0);
    t_expect_ready(env, "w-4", "kmx.test");

    // The new session serves requests as before.
    t_send_request(env, "w-4", "client-c", "after");
    int rc = 0;
    for (int i = 0; i < 20 && rc == 0; i++)
        rc = kmx_mdp_worker_recv(worker, 100, &body);
    assert_int_equal(rc, 1);
    zmq_msg_close(&body);
    assert_int_equal(kmx_mdp_worker_send(worker, "ok", 2), 0);
    kmx_mdp_worker_destroy(&worker);
}

static void test_mdp_worker_rejects_bad_arguments(void **state) {
    t_env_t *env = *state;
    assert_null(kmx_mdp_worker_new(env->ctx, env->endpoint, "", NULL));
    assert_null(kmx_mdp_worker_new(env->ctx, "not an endpoint", "kmx.test", NULL));
    char longname[300];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_null(kmx_mdp_worker_new(env->ctx, env->endpoint, longname, NULL));
    kmx_mdp_worker_destroy(NULL);
}

// ---- client ---------------------------------------------------------------------------

typedef enum { T_ANSWER_GOOD, T_ANSWER_GARBAGE } t_answer_t;

typedef struct {
    t_env_t *env;      // scripted broker
    t_answer_t answer; // how to answer
    int ok;            // the request arrived as expected
} t_server_t;

// Answers one client request: first for another service (must be ignored), then properly.
static void *t_server_run(void *arg) {
    t_server_t *server = arg;
    t_msg_t msg;
    if (t_recv(server->env->router, &msg) != 5)
        return NULL;
    server->ok = zmq_msg_size(&msg.frames[1]) == 0 && zmq_msg_size(&msg.frames[2]) == 6 &&
                 memcmp(zmq_msg_data(&msg.frames[2]), KMX_MDPC, 6) == 0 &&
                 zmq_msg_size(&msg.frames[3]) == 8 &&
                 memcmp(zmq_msg_data(&msg.frames[3]), "kmx.echo", 8) == 0 &&
                 zmq_msg_size(&msg.frames[4]) == 4;
    void *router = server->env->router;
    zmq_msg_t *id = &msg.frames[0];
    if (server->answer == T_ANSWER_GARBAGE) {
        t_send(router, 3, zmq_msg_data(id), zmq_msg_size(id), T_S("junk"), T_S("junk"));
    } else {
        t_send(router, 5, zmq_msg_data(id), zmq_msg_size(id), "", (size_t)0, T_S(KMX_MDPC),
               T_S("kmx.other"), T_S("stale"));
        t_send(router, 5, zmq_msg_data(id), zmq_msg_size(id), "", (size_t)0, T_S(KMX_MDPC),
               T_S("kmx.echo"), T_S("pong"));
    }
    t_msg_close(&msg);
    return NULL;
}

static void test_mdp_client_call_returns_the_matching_reply(void **state) {
    t_env_t *env = *state;
    t_server_t server = {env, T_ANSWER_GOOD, 0};
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, t_server_run, &server), 0);
    kmx_mdp_client_t *client = kmx_mdp_client_new(env->ctx, env->endpoint);
    assert_non_null(client);
    zmq_msg_t reply;
    int rc = kmx_mdp_client_call(client, "kmx.echo", "ping", 4, &reply);
    pthread_join(thread, NULL);
    assert_int_equal(rc, 0);
    assert_true(server.ok);
    assert_int_equal(zmq_msg_size(&reply), 4);
    assert_memory_equal(zmq_msg_data(&reply), "pong", 4);
    zmq_msg_close(&reply);
    kmx_mdp_client_destroy(&client);
    assert_null(client);
}

static void test_mdp_client_call_rejects_non_mdp_reply(void **state) {
    t_env_t *env = *state;
    t_server_t server = {env, T_ANSWER_GARBAGE, 0};
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, t_server_run, &server), 0);
    kmx_mdp_client_t *client = kmx_mdp_client_new(env->ctx, env->endpoint);
    assert_non_null(client);
    zmq_msg_t reply;
    int rc = kmx_mdp_client_call(client, "kmx.echo", "ping", 4, &reply);
    pthread_join(thread, NULL);
    assert_int_equal(rc, KMX_ERR_DECODE);
    kmx_mdp_client_destroy(&client);
}

static void test_mdp_client_retries_on_fresh_sockets_then_times_out(void **state) {
    t_env_t *env = *state;
    kmx_mdp_client_t *client = kmx_mdp_client_new(env->ctx, env->endpoint);
    assert_non_null(client);
    kmx_mdp_client_set_timeout(client, 100);
    kmx_mdp_client_set_retries(client, 2);
    zmq_msg_t reply;
    assert_int_equal(kmx_mdp_client_call(client, "kmx.echo", "ping", 4, &reply), KMX_ERR_TIMEOUT);
    // The silent broker saw both tries, each from a new socket.
    t_msg_t first;
    t_msg_t second;
    assert_int_equal(t_recv(env->router, &first), 5);
    assert_int_equal(t_recv(env->router, &second), 5);
    zmq_msg_t *a = &first.frames[0];
    zmq_msg_t *b = &second.frames[0];
    assert_false(zmq_msg_size(a) == zmq_msg_size(b) &&
                 memcmp(zmq_msg_data(a), zmq_msg_data(b), zmq_msg_size(a)) == 0);
    t_msg_close(&first);
    t_msg_close(&second);
    kmx_mdp_client_destroy(&client);
}

static void test_mdp_client_times_out_without_broker(void **state) {
    t_env_t *env = *state;
    // A port that was free a moment ago and has nobody listening now.
    void *probe = zmq_socket(env->ctx, ZMQ_ROUTER);
    assert_int_equal(zmq_bind(probe, "tcp://127.0.0.1:*"), 0);
    char endpoint[256];
    size_t size = sizeof endpoint;
    assert_int_equal(zmq_getsockopt(probe, ZMQ_LAST_ENDPOINT, endpoint, &size), 0);
    zmq_close(probe);

    kmx_mdp_client_t *client = kmx_mdp_client_new(env->ctx, endpoint);
    assert_non_null(client);
    kmx_mdp_client_set_timeout(client, 50);
    kmx_mdp_client_set_retries(client, 3);
    zmq_msg_t reply;
    assert_int_equal(kmx_mdp_client_call(client, "kmx.echo", "x", 1, &reply), KMX_ERR_TIMEOUT);
    kmx_mdp_client_destroy(&client);
}

static void test_mdp_client_rejects_bad_arguments(void **state) {
    t_env_t *env = *state;
    kmx_mdp_client_t *client = kmx_mdp_client_new(env->ctx, env->endpoint);
    assert_non_null(client);
    zmq_msg_t reply;
    assert_int_equal(kmx_mdp_client_call(client, "", "x", 1, &reply), KMX_ERR_INVAL);
    assert_int_equal(kmx_mdp_client_call(client, "kmx.echo", NULL, 1, &reply), KMX_ERR_INVAL);
    kmx_mdp_client_destroy(&client);
    kmx_mdp_client_destroy(NULL);
    assert_null(kmx_mdp_client_new(env->ctx, "nonsense"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_mdp_worker_registers_with_identity, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_mdp_worker_answers_the_requesting_client, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_mdp_worker_skips_malformed_broker_messages, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_mdp_worker_wait_wakes_for_either_side, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_mdp_worker_reconnects_after_disconnect, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_mdp_worker_rejects_bad_arguments, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_mdp_client_call_returns_the_matching_reply, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_mdp_client_call_rejects_non_mdp_reply, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_mdp_client_retries_on_fresh_sockets_then_times_out,
                                        t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_mdp_client_times_out_without_broker, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_mdp_client_rejects_bad_arguments, t_setup, t_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
