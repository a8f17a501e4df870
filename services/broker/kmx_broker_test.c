/*  kmx_broker_test - the broker on real loopback sockets, driven by its own thread, with
    real kmx_mdp workers and clients, raw sockets sending garbage, and a PUB/SUB pair
    through the notification proxy.  */
#include "kmx_broker.h"
#include "kmx_err.h"
#include "kmx_mdp.h"
#include "kmx_msg.h"
#include "kmx_testkit.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

// cmocka.h needs the headers above, setjmp.h in particular.
#include <cmocka.h>

#define T_WORKERS_MAX 4
#define T_CALL_MS 3000

typedef struct {
    void *ctx;            // context shared by the broker, workers and clients
    const char *endpoint; // where workers of this entry connect
    char service[64];     // service they offer
    char identity[64];    // routing id
    int delay_ms;         // wait before registering
    atomic_int stop;      // set by the test to end the thread
    atomic_int served;    // requests answered
    pthread_t thread;     // the worker thread
    int running;          // thread was started
} t_worker_t;

typedef struct {
    void *ctx;                         // ZeroMQ context of the test
    kmx_broker_t *broker;              // broker under test
    pthread_t thread;                  // runs the broker's poll loop
    atomic_int stop;                   // ends the broker thread
    int running;                       // broker thread was started
    t_worker_t workers[T_WORKERS_MAX]; // echo workers
    kmx_mdp_client_t *client;          // client of the broker
    kmx_testkit_socks_t socks;         // raw sockets, closed by the teardown if still open
} t_env_t;

static void t_sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void *t_broker_run(void *arg) {
    t_env_t *env = arg;
    while (!atomic_load(&env->stop)) {
        if (kmx_broker_poll_once(env->broker, 20) != 0)
            break;
    }
    return NULL;
}

// Echo worker: replies "<identity>:<body>" so the test sees who served each request.
static void *t_worker_run(void *arg) {
    t_worker_t *tw = arg;
    t_sleep_ms(tw->delay_ms);
    kmx_mdp_worker_t *worker = kmx_mdp_worker_new(tw->ctx, tw->endpoint, tw->service, tw->identity);
    if (!worker)
        return NULL;
    while (!atomic_load(&tw->stop)) {
        zmq_msg_t body;
        if (kmx_mdp_worker_recv(worker, 20, &body) != 1)
            continue;
        char reply[256];
        int n = snprintf(reply, sizeof reply, "%s:%.*s", tw->identity,
                         (int)(zmq_msg_size(&body) < 100 ? zmq_msg_size(&body) : 100),
                         (const char *)zmq_msg_data(&body));
        zmq_msg_close(&body);
        if (kmx_mdp_worker_send(worker, reply, (size_t)n) == 0)
            atomic_fetch_add(&tw->served, 1);
    }
    kmx_mdp_worker_destroy(&worker);
    return NULL;
}

static void t_broker_start(t_env_t *env, const kmx_broker_config_t *cfg) {
    env->broker = kmx_broker_new(env->ctx, cfg);
    assert_non_null(env->broker);
    assert_int_equal(pthread_create(&env->thread, NULL, t_broker_run, env), 0);
    env->running = 1;
    env->client = kmx_mdp_client_new(env->ctx, kmx_broker_endpoint(env->broker, KMX_BROKER_ROUTER));
    assert_non_null(env->client);
    kmx_mdp_client_set_timeout(env->client, T_CALL_MS);
    kmx_mdp_client_set_retries(env->client, 1);
}

static void t_config(kmx_broker_config_t *cfg) {
    kmx_broker_config_init(cfg);
    cfg->bind = "tcp://127.0.0.1:*";
    cfg->publish_bind = "tcp://127.0.0.1:*";
    cfg->events_bind = "tcp://127.0.0.1:*";
    cfg->request_timeout_ms = 2000;
}

static t_worker_t *t_worker_start(t_env_t *env, int index, const char *service,
                                  const char *identity, int delay_ms) {
    t_worker_t *tw = &env->workers[index];
    tw->ctx = env->ctx;
    tw->endpoint = kmx_broker_endpoint(env->broker, KMX_BROKER_ROUTER);
    snprintf(tw->service, sizeof tw->service, "%s", service);
    snprintf(tw->identity, sizeof tw->identity, "%s", identity);
    tw->delay_ms = delay_ms;
    atomic_store(&tw->stop, 0);
    atomic_store(&tw->served, 0);
    assert_int_equal(pthread_create(&tw->thread, NULL, t_worker_run, tw), 0);
    tw->running = 1;
    return tw;
}

static void t_worker_stop(t_worker_t *tw) {
    if (!tw->running)
        return;
    atomic_store(&tw->stop, 1);
    pthread_join(tw->thread, NULL);
    tw->running = 0;
}

static int t_setup(void **state) {
    t_env_t *env = calloc(1, sizeof *env);
    assert_non_null(env);
    env->ctx = zmq_ctx_new();
    assert_non_null(env->ctx);
    *state = env;
    return 0;
}

static int t_teardown(void **state) {
    t_env_t *env = *state;
    for (int i = 0; i < T_WORKERS_MAX; i++)
        t_worker_stop(&env->workers[i]);
    kmx_mdp_client_destroy(&env->client);
    if (env->running) {
        atomic_store(&env->stop, 1);
        pthread_join(env->thread, NULL);
    }
    kmx_broker_destroy(&env->broker);
    kmx_testkit_socks_close_all(&env->socks); // those a failed assertion left open
    zmq_ctx_term(env->ctx);
    free(env);
    return 0;
}

// Calls service with a text body; returns the reply as a malloc'd string or NULL.
static char *t_call_text(t_env_t *env, const char *service, const char *body) {
    zmq_msg_t reply;
    if (kmx_mdp_client_call(env->client, service, body, strlen(body), &reply) != 0)
        return NULL;
    size_t size = zmq_msg_size(&reply);
    char *text = malloc(size + 1);
    assert_non_null(text);
    memcpy(text, zmq_msg_data(&reply), size);
    text[size] = '\0';
    zmq_msg_close(&reply);
    return text;
}

// Calls service with a packed Request; returns the unpacked Response or NULL.
static Kmx__V1__Response *t_call_request(t_env_t *env, const char *service, Kmx__V1__Request *req) {
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(kmx_msg_pack_request(req, &buf, &len), 0);
    zmq_msg_t reply;
    int rc = kmx_mdp_client_call(env->client, service, buf, len, &reply);
    free(buf);
    if (rc != 0)
        return NULL;
    Kmx__V1__Response *resp = kmx_msg_response_unpack(zmq_msg_data(&reply), zmq_msg_size(&reply));
    zmq_msg_close(&reply);
    return resp;
}

// A call made from another thread, so the test can play the worker meanwhile.
typedef struct {
    t_env_t *env;            // whose client calls
    const char *service;     // the service called
    Kmx__V1__Response *resp; // the answer, or NULL
} t_call_t;

static void *t_call_thread(void *arg) {
    t_call_t *call = arg;
    Kmx__V1__PingRequest ping = KMX__V1__PING_REQUEST__INIT;
    Kmx__V1__Request req = KMX__V1__REQUEST__INIT;
    req.body_case = KMX__V1__REQUEST__BODY_PING;
    req.ping = &ping;
    uint8_t *buf = NULL;
    size_t len = 0;
    if (kmx_msg_pack_request(&req, &buf, &len) != 0)
        return NULL;
    zmq_msg_t reply;
    if (kmx_mdp_client_call(call->env->client, call->service, buf, len, &reply) == 0) {
        call->resp = kmx_msg_response_unpack(zmq_msg_data(&reply), zmq_msg_size(&reply));
        zmq_msg_close(&reply);
    }
    free(buf);
    return NULL;
}

static Kmx__V1__Response *t_broker_stats(t_env_t *env) {
    Kmx__V1__StatsRequest stats = KMX__V1__STATS_REQUEST__INIT;
    Kmx__V1__Request req = KMX__V1__REQUEST__INIT;
    req.body_case = KMX__V1__REQUEST__BODY_STATS;
    req.stats = &stats;
    Kmx__V1__Response *resp = t_call_request(env, KMX_BROKER_SERVICE, &req);
    assert_non_null(resp);
    assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_STATS);
    return resp;
}

static const Kmx__V1__WorkerStats *t_find_worker(const Kmx__V1__Response *resp,
                                                 const char *worker) {
    for (size_t i = 0; i < resp->stats->n_workers; i++) {
        const Kmx__V1__WorkerStats *ws = resp->stats->workers[i];
        if (ws->worker && strcmp(ws->worker, worker) == 0)
            return ws;
    }
    return NULL;
}

static uint64_t t_counter(const Kmx__V1__Response *resp, const char *name) {
    for (size_t i = 0; i < resp->stats->n_counters; i++) {
        if (strcmp(resp->stats->counters[i]->name, name) == 0)
            return resp->stats->counters[i]->value;
    }
    fail_msg("no counter %s", name);
    return 0;
}

// Waits (bounded) until the broker counts at least n workers.
static void t_wait_workers(t_env_t *env, uint64_t n) {
    uint64_t seen = 0;
    for (int i = 0; i < 200 && seen < n; i++) {
        Kmx__V1__Response *resp = t_broker_stats(env);
        seen = t_counter(resp, "workers");
        kmx__v1__response__free_unpacked(resp, NULL);
        if (seen < n)
            t_sleep_ms(10);
    }
    assert_true(seen >= n);
}

static void test_broker_routes_request_to_worker_and_back(void **state) {
    t_env_t *env = *state;
    kmx_broker_config_t cfg;
    t_config(&cfg);
    t_broker_start(env, &cfg);
    t_worker_start(env, 0, "kmx.echo", "echo-a", 0);
    char *reply = t_call_text(env, "kmx.echo", "hello");
    assert_non_null(reply);
    assert_string_equal(reply, "echo-a:hello");
    free(reply);
}

static void test_broker_request_waits_for_a_late_worker(void **state) {
    t_env_t *env = *state;
    kmx_broker_config_t cfg;
    t_config(&cfg);
    t_broker_start(env, &cfg);
    t_worker_start(env, 0, "kmx.late", "late-a", 200);
    char *reply = t_call_text(env, "kmx.late", "patience");
    assert_non_null(reply);
    assert_string_equal(reply, "late-a:patience");
    free(reply);
}

static void test_broker_gives_the_next_request_to_the_longest_idle_worker(void **state) {
    t_env_t *env = *state;
    kmx_broker_config_t cfg;
    t_config(&cfg);
    t_broker_start(env, &cfg);
    t_worker_start(env, 0, "kmx.echo", "echo-a", 0);
    t_worker_start(env, 1, "kmx.echo", "echo-b", 0);
    t_wait_workers(env, 2);
    char previous[64] = "";
    for (int i = 0; i < 6; i++) {
        char *reply = t_call_text(env, "kmx.echo", "x");
        assert_non_null(reply);
        char *colon = strchr(reply, ':');
        assert_non_null(colon);
        *colon = '\0';
        // Calls are sequential, so the worker that just answered is never the idlest.
        assert_string_not_equal(reply, previous);
        snprintf(previous, sizeof previous, "%s", reply);
        free(reply);
    }
}

static void test_broker_answers_unavailable_for_a_service_without_workers(void **state) {
    t_env_t *env = *state;
    kmx_broker_config_t cfg;
    t_config(&cfg);
    cfg.request_timeout_ms = 100;
    t_broker_start(env, &cfg);
    Kmx__V1__PingRequest ping = KMX__V1__PING_REQUEST__INIT;
    Kmx__V1__Request req = KMX__V1__REQUEST__INIT;
    req.body_case = KMX__V1__REQUEST__BODY_PING;
    req.ping = &ping;
    Kmx__V1__Response *resp = t_call_request(env, "kmx.nobody", &req);
    assert_non_null(resp);
    assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_ERROR);
    assert_int_equal(resp->error->code, KMX__V1__ERROR_CODE__UNAVAILABLE);
    assert_non_null(strstr(resp->error->message, "no worker for service 'kmx.nobody'"));
    kmx__v1__response__free_unpacked(resp, NULL);
}

static void test_broker_ping_names_the_broker(void **state) {
    t_env_t *env = *state;
    kmx_broker_config_t cfg;
    t_config(&cfg);
    t_broker_start(env, &cfg);
    Kmx__V1__PingRequest ping = KMX__V1__PING_REQUEST__INIT;
    Kmx__V1__Request req = KMX__V1__REQUEST__INIT;
    req.request_id = "r-1";
    req.body_case = KMX__V1__REQUEST__BODY_PING;
    req.ping = &ping;
    Kmx__V1__Response *resp = t_call_request(env, KMX_BROKER_SERVICE, &req);
    assert_non_null(resp);
    assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_PONG);
    assert_string_equal(resp->request_id, "r-1");
    assert_string_equal(resp->pong->service, KMX_BROKER_SERVICE);
    assert_string_equal(resp->pong->version, KMX_VERSION);
    assert_memory_equal(resp->pong->worker, "broker-", 7);
    kmx__v1__response__free_unpacked(resp, NULL);
}

static void test_broker_rejects_undecodable_and_unsupported_bodies(void **state) {
    t_env_t *env = *state;
    kmx_broker_config_t cfg;
    t_config(&cfg);
    t_broker_start(env, &cfg);
    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x12};
    zmq_msg_t reply;
    assert_int_equal(
        kmx_mdp_client_call(env->client, KMX_BROKER_SERVICE, junk, sizeof junk, &reply), 0);
    Kmx__V1__Response *resp = kmx_msg_response_unpack(zmq_msg_data(&reply), zmq_msg_size(&reply));
    zmq_msg_close(&reply);
    assert_non_null(resp);
    assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_ERROR);
    assert_int_equal(resp->error->code, KMX__V1__ERROR_CODE__BAD_REQUEST);
    kmx__v1__response__free_unpacked(resp, NULL);

    Kmx__V1__GetRequest get = KMX__V1__GET_REQUEST__INIT;
    Kmx__V1__Request req = KMX__V1__REQUEST__INIT;
    req.body_case = KMX__V1__REQUEST__BODY_GET;
    req.get = &get;
    resp = t_call_request(env, KMX_BROKER_SERVICE, &req);
    assert_non_null(resp);
    assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_ERROR);
    assert_int_equal(resp->error->code, KMX__V1__ERROR_CODE__UNSUPPORTED);
    kmx__v1__response__free_unpacked(resp, NULL);
}

static void test_broker_stats_list_workers_even_after_they_leave(void **state) {
    t_env_t *env = *state;
    kmx_broker_config_t cfg;
    t_config(&cfg);
    t_broker_start(env, &cfg);
    t_worker_start(env, 0, "kmx.echo", "echo-a", 0);
    for (int i = 0; i < 3; i++) {
        char *reply = t_call_text(env, "kmx.echo", "count me");
        assert_non_null(reply);
        free(reply);
    }
    Kmx__V1__Response *resp = t_broker_stats(env);
    const Kmx__V1__WorkerStats *ws = t_find_worker(resp, "echo-a");
    assert_non_null(ws);
    assert_string_equal(ws->service, "kmx.echo");
    assert_int_equal(ws->requests, 3);
    assert_true(ws->alive);
    assert_int_equal(t_counter(resp, "replies"), 3);
    assert_int_equal(t_counter(resp, "requests"), 3);
    assert_int_equal(t_counter(resp, "services"), 1);
    kmx__v1__response__free_unpacked(resp, NULL);

    // The worker leaves (DISCONNECT); its work stays on record.
    t_worker_stop(&env->workers[0]);
    int alive = 1;
    for (int i = 0; i < 200 && alive; i++) {
        resp = t_broker_stats(env);
        ws = t_find_worker(resp, "echo-a");
        assert_non_null(ws);
        assert_int_equal(ws->requests, 3);
        alive = ws->alive;
        kmx__v1__response__free_unpacked(resp, NULL);
        if (alive)
            t_sleep_ms(10);
    }
    assert_false(alive);
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

// Reads one whole message waiting on a raw DEALER; keeps its first max frames (the
// caller closes them) and returns how many it kept.
static int t_recv_message(void *dealer, zmq_msg_t *frames, int max) {
    int count = 0;
    int more = 1;
    while (more) {
        zmq_msg_t part;
        zmq_msg_init(&part);
        assert_true(zmq_msg_recv(&part, dealer, 0) >= 0);
        more = zmq_msg_more(&part);
        if (count < max)
            frames[count++] = part;
        else
            zmq_msg_close(&part);
    }
    return count;
}

// Waits for a message on a raw DEALER; returns 1 if its command frame is `command`.
static int t_expect_command(void *dealer, uint8_t command) {
    zmq_pollitem_t item = {dealer, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, T_CALL_MS) <= 0)
        return 0;
    zmq_msg_t frames[4];
    int count = t_recv_message(dealer, frames, 4);
    int ok = count == 3 && zmq_msg_size(&frames[2]) == 1 &&
             *(uint8_t *)zmq_msg_data(&frames[2]) == command;
    for (int i = 0; i < count; i++)
        zmq_msg_close(&frames[i]);
    return ok;
}

static void *t_raw_dealer(t_env_t *env) {
    void *dealer = kmx_testkit_socket(&env->socks, env->ctx, ZMQ_DEALER);
    assert_non_null(dealer);
    assert_int_equal(zmq_connect(dealer, kmx_broker_endpoint(env->broker, KMX_BROKER_ROUTER)), 0);
    return dealer;
}

static void test_broker_survives_garbage_and_still_serves(void **state) {
    t_env_t *env = *state;
    kmx_broker_config_t cfg;
    t_config(&cfg);
    t_broker_start(env, &cfg);
    t_worker_start(env, 0, "kmx.echo", "echo-a", 0);
    void *raw = t_raw_dealer(env);
    static const uint8_t ready = KMX_MDPW_READY;
    static const uint8_t reply = KMX_MDPW_REPLY;
    static const uint8_t request = KMX_MDPW_REQUEST;
    static const uint8_t heartbeat = KMX_MDPW_HEARTBEAT;

    // Client-side garbage is dropped silently.
    t_send(raw, 1, T_S("random bytes"));
    t_send(raw, 4, "", (size_t)0, T_S("MDPX01"), T_S("kmx.echo"), T_S("body"));
    t_send(raw, 2, "", (size_t)0, T_S(KMX_MDPC));
    t_send(raw, 3, "", (size_t)0, T_S(KMX_MDPC), T_S("kmx.echo"));
    t_send(raw, 4, "", (size_t)0, T_S(KMX_MDPC), "", (size_t)0, T_S("body"));
    t_send(raw, 4, "", (size_t)0, T_S(KMX_MDPC), T_S("bad\nname"), T_S("body"));
    t_send(raw, 4, T_S("no empty"), T_S(KMX_MDPC), T_S("kmx.echo"), T_S("body"));
    t_send(raw, 10, "", (size_t)0, T_S(KMX_MDPC), T_S("a"), T_S("b"), T_S("c"), T_S("d"), T_S("e"),
           T_S("f"), T_S("g"), T_S("h"));
    uint32_t seed = 12345;
    for (int i = 0; i < 200; i++) {
        uint8_t bytes[16];
        for (size_t j = 0; j < sizeof bytes; j++) {
            seed = seed * 1103515245u + 12345u;
            bytes[j] = (uint8_t)(seed >> 16);
        }
        int frames = 1 + i % 6;
        for (int f = 0; f < frames; f++)
            assert_true(zmq_send(raw, bytes, 1 + (size_t)(bytes[f] % 16),
                                 f + 1 < frames ? ZMQ_SNDMORE : 0) >= 0);
    }

    // Worker protocol violations are answered with DISCONNECT.
    t_send(raw, 3, "", (size_t)0, T_S(KMX_MDPW), &heartbeat, (size_t)1);
    assert_true(t_expect_command(raw, KMX_MDPW_DISCONNECT));
    t_send(raw, 6, "", (size_t)0, T_S(KMX_MDPW), &reply, (size_t)1, T_S("c"), "", (size_t)0,
           T_S("x"));
    assert_true(t_expect_command(raw, KMX_MDPW_DISCONNECT));
    t_send(raw, 3, "", (size_t)0, T_S(KMX_MDPW), &ready, (size_t)1);
    assert_true(t_expect_command(raw, KMX_MDPW_DISCONNECT));
    t_send(raw, 4, "", (size_t)0, T_S(KMX_MDPW), &ready, (size_t)1, T_S(KMX_BROKER_SERVICE));
    assert_true(t_expect_command(raw, KMX_MDPW_DISCONNECT));
    t_send(raw, 3, "", (size_t)0, T_S(KMX_MDPW), &request, (size_t)1);
    assert_true(t_expect_command(raw, KMX_MDPW_DISCONNECT));
    t_send(raw, 3, "", (size_t)0, T_S(KMX_MDPW), T_S("\x42\x42"));
    assert_true(t_expect_command(raw, KMX_MDPW_DISCONNECT));
    kmx_testkit_socket_close(&env->socks, raw);

    char *text = t_call_text(env, "kmx.echo", "still here");
    assert_non_null(text);
    assert_string_equal(text, "echo-a:still here");
    free(text);
}

static void test_broker_expires_silent_workers(void **state) {
    t_env_t *env = *state;
    kmx_broker_config_t cfg;
    t_config(&cfg);
    cfg.heartbeat_ms = 50;
    t_broker_start(env, &cfg);
    void *raw = t_raw_dealer(env);
    static const uint8_t ready = KMX_MDPW_READY;
    static const uint8_t heartbeat = KMX_MDPW_HEARTBEAT;
    t_send(raw, 4, "", (size_t)0, T_S(KMX_MDPW), &ready, (size_t)1, T_S("kmx.silent"));
    // An idle worker gets heartbeats ...
    assert_true(t_expect_command(raw, KMX_MDPW_HEARTBEAT));
    // ... and once it has missed enough of them, the broker no longer knows it.
    int expired = 0;
    for (int i = 0; i < 100 && !expired; i++) {
        t_sleep_ms(20);
        Kmx__V1__Response *resp = t_broker_stats(env);
        expired = t_counter(resp, "workers") == 0;
        if (expired) {
            assert_int_equal(resp->stats->n_workers, 1);
            assert_string_equal(resp->stats->workers[0]->service, "kmx.silent");
            assert_false(resp->stats->workers[0]->alive);
            assert_int_equal(t_counter(resp, "workers_expired"), 1);
            assert_int_equal(t_counter(resp, "workers_disconnected"), 0);
        }
        kmx__v1__response__free_unpacked(resp, NULL);
    }
    assert_true(expired);
    // A heartbeat from a forgotten worker is answered with DISCONNECT.
    zmq_pollitem_t item = {raw, 0, ZMQ_POLLIN, 0};
    while (zmq_poll(&item, 1, 0) > 0) {
        zmq_msg_t part;
        zmq_msg_init(&part);
        zmq_msg_recv(&part, raw, 0);
        zmq_msg_close(&part);
    }
    t_send(raw, 3, "", (size_t)0, T_S(KMX_MDPW), &heartbeat, (size_t)1);
    assert_true(t_expect_command(raw, KMX_MDPW_DISCONNECT));
    kmx_testkit_socket_close(&env->socks, raw);
}

// A publisher on the broker's XSUB and a subscriber to "export." on its XPUB, both
// closing at once.
static void t_pubsub(t_env_t *env, void **pub, void **sub) {
    *pub = kmx_testkit_socket(&env->socks, env->ctx, ZMQ_PUB);
    *sub = kmx_testkit_socket(&env->socks, env->ctx, ZMQ_SUB);
    assert_non_null(*pub);
    assert_non_null(*sub);
    assert_int_equal(zmq_connect(*pub, kmx_broker_endpoint(env->broker, KMX_BROKER_XSUB)), 0);
    assert_int_equal(zmq_connect(*sub, kmx_broker_endpoint(env->broker, KMX_BROKER_XPUB)), 0);
    assert_int_equal(zmq_setsockopt(*sub, ZMQ_SUBSCRIBE, "export.", 7), 0);
}

static void test_broker_forwards_whole_messages_from_publishers_to_subscribers(void **state) {
    t_env_t *env = *state;
    kmx_broker_config_t cfg;
    t_config(&cfg);
    t_broker_start(env, &cfg);
    void *pub, *sub;
    t_pubsub(env, &pub, &sub);

    // Subscriptions travel upstream asynchronously: publish until one arrives.
    int received = 0;
    zmq_pollitem_t item = {sub, 0, ZMQ_POLLIN, 0};
    for (int i = 0; i < 200 && !received; i++) {
        t_send(pub, 2, T_S("consumption.KR.2024.streaming"), T_S("not for us"));
        t_send(pub, 2, T_S("export.JP.2025-H1.album"), T_S("payload"));
        received = zmq_poll(&item, 1, 20) > 0;
    }
    assert_true(received);
    char topic[64];
    char body[64];
    int n = zmq_recv(sub, topic, sizeof topic, 0);
    assert_int_equal(n, (int)strlen("export.JP.2025-H1.album"));
    assert_memory_equal(topic, "export.JP.2025-H1.album", (size_t)n);
    int more = 0;
    size_t size = sizeof more;
    assert_int_equal(zmq_getsockopt(sub, ZMQ_RCVMORE, &more, &size), 0);
    assert_true(more);
    n = zmq_recv(sub, body, sizeof body, 0);
    assert_int_equal(n, 7);
    assert_memory_equal(body, "payload", 7);
    assert_int_equal(zmq_getsockopt(sub, ZMQ_RCVMORE, &more, &size), 0);
    assert_false(more);
    kmx_testkit_socket_close(&env->socks, pub);
    kmx_testkit_socket_close(&env->socks, sub);

    Kmx__V1__Response *resp = t_broker_stats(env);
    assert_true(t_counter(resp, "events") >= 1);
    kmx__v1__response__free_unpacked(resp, NULL);
}

// The proxy runs on a thread of its own: events flow while nobody turns the request loop
// (a broker busy with requests), and the loop's next turn reports them in its stats.
static void test_broker_forwards_events_while_its_request_loop_stands_still(void **state) {
    t_env_t *env = *state;
    kmx_broker_config_t cfg;
    t_config(&cfg);
    env->broker = kmx_broker_new(env->ctx, &cfg);
    assert_non_null(env->broker);
    void *pub, *sub;
    t_pubsub(env, &pub, &sub);
    int received = 0;
    zmq_pollitem_t item = {sub, 0, ZMQ_POLLIN, 0};
    for (int i = 0; i < 200 && !received; i++) {
        t_send(pub, 2, T_S("export.KR.2025-H1.album"), T_S("payload"));
        received = zmq_poll(&item, 1, 20) > 0;
    }
    kmx_testkit_socket_close(&env->socks, pub);
    kmx_testkit_socket_close(&env->socks, sub);
    assert_true(received);
    assert_int_equal(pthread_create(&env->thread, NULL, t_broker_run, env), 0);
    env->running = 1;
    env->client = kmx_mdp_client_new(env->ctx, kmx_broker_endpoint(env->broker, KMX_BROKER_ROUTER));
    assert_non_null(env->client);
    kmx_mdp_client_set_timeout(env->client, T_CALL_MS);
    Kmx__V1__Response *resp = t_broker_stats(env);
    assert_true(t_counter(resp, "events") >= 1);
    kmx__v1__response__free_unpacked(resp, NULL);
}

static void test_broker_refuses_requests_beyond_the_queue_limit(void **state) {
    t_env_t *env = *state;
    kmx_broker_config_t cfg;
    t_config(&cfg);
    cfg.queue_max = 1;
    cfg.request_timeout_ms = 2000;
    t_broker_start(env, &cfg);
    void *raw = t_raw_dealer(env);
    t_send(raw, 4, "", (size_t)0, T_S(KMX_MDPC), T_S("kmx.busy"), T_S("first"));
    // Once the first request is queued, the second finds the queue full.
    int refused = 0;
    for (int i = 0; i < 100 && !refused; i++) {
        Kmx__V1__Response *resp = t_broker_stats(env);
        int queued = t_counter(resp, "pending") == 1;
        kmx__v1__response__free_unpacked(resp, NULL);
        if (!queued) {
            t_sleep_ms(10);
            continue;
        }
        Kmx__V1__PingRequest ping = KMX__V1__PING_REQUEST__INIT;
        Kmx__V1__Request req = KMX__V1__REQUEST__INIT;
        req.body_case = KMX__V1__REQUEST__BODY_PING;
        req.ping = &ping;
        resp = t_call_request(env, "kmx.busy", &req);
        assert_non_null(resp);
        assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_ERROR);
        assert_int_equal(resp->error->code, KMX__V1__ERROR_CODE__UNAVAILABLE);
        assert_non_null(strstr(resp->error->message, "queue full"));
        assert_non_null(strstr(resp->error->message, "--queue-max"));
        kmx__v1__response__free_unpacked(resp, NULL);
        refused = 1;
    }
    assert_true(refused);
    kmx_testkit_socket_close(&env->socks, raw);
}

// Calls service with a body of size bytes; returns the Error response or NULL when a
// non-error reply came back (the echo worker answers with text, not a Response).
static Kmx__V1__Response *t_call_sized(t_env_t *env, const char *service, size_t size) {
    char *body = malloc(size);
    assert_non_null(body);
    memset(body, 'x', size);
    zmq_msg_t reply;
    int rc = kmx_mdp_client_call(env->client, service, body, size, &reply);
    free(body);
    assert_int_equal(rc, 0);
    Kmx__V1__Response *resp = NULL;
    if (zmq_msg_size(&reply) > 0 && *(const char *)zmq_msg_data(&reply) != 'e')
        resp = kmx_msg_response_unpack(zmq_msg_data(&reply), zmq_msg_size(&reply));
    zmq_msg_close(&reply);
    return resp;
}

// The bytes limit holds what is queued now, not what ever passed: a broker whose limit is
// 64 KiB carries 200 requests of 8 KiB (1.6 MB) one after the other, and is back to 0.
static void test_broker_accepts_more_bytes_over_its_life_than_its_queue_limit(void **state) {
    t_env_t *env = *state;
    kmx_broker_config_t cfg;
    t_config(&cfg);
    cfg.queued_bytes_max = 64 * 1024;
    cfg.service_bytes_max = 64 * 1024;
    t_broker_start(env, &cfg);
    t_worker_start(env, 0, "kmx.echo", "echo-a", 0);
    t_wait_workers(env, 1);
    const size_t size = 8 * 1024;
    for (int i = 0; i < 200; i++) {
        Kmx__V1__Response *refused = t_call_sized(env, "kmx.echo", size);
        if (refused)
            fail_msg("request %d refused: %s", i, refused->error ? refused->error->message : "?");
    }
    Kmx__V1__Response *resp = t_broker_stats(env);
    assert_int_equal(t_counter(resp, "queued_bytes"), 0);
    assert_int_equal(t_counter(resp, "queued_requests"), 0);
    assert_int_equal(t_counter(resp, "clients_waiting"), 0);
    assert_int_equal(t_counter(resp, "bytes_in"), 200 * size);
    assert_int_equal(t_counter(resp, "kmx.echo.queued_bytes"), 0);
    assert_int_equal(t_counter(resp, "kmx.echo.workers"), 1);
    assert_int_equal(t_counter(resp, "kmx.echo.workers_busy"), 0);
    assert_int_equal(t_counter(resp, "kmx.echo.bytes_in"), 200 * size);
    assert_int_equal(t_counter(resp, "limit_queue_bytes"), 64 * 1024);
    assert_true(t_counter(resp, "rss_bytes") > 0);
    assert_true(t_counter(resp, "open_fds") > 0);
    kmx__v1__response__free_unpacked(resp, NULL);
}

// Waits (bounded) until the broker holds n queued requests.
static void t_wait_queued(t_env_t *env, uint64_t n) {
    uint64_t seen = 0;
    for (int i = 0; i < 200 && seen != n; i++) {
        Kmx__V1__Response *resp = t_broker_stats(env);
        seen = t_counter(resp, "queued_requests");
        kmx__v1__response__free_unpacked(resp, NULL);
        if (seen != n)
            t_sleep_ms(10);
    }
    assert_int_equal(seen, n);
}

// A service's bytes limit refuses its own requests only, naming itself; the limit across
// services refuses the next service's, naming that one. Each answer names its setting.
static void test_broker_names_the_bytes_limit_it_refuses_for(void **state) {
    t_env_t *env = *state;
    kmx_broker_config_t cfg;
    t_config(&cfg);
    cfg.service_bytes_max = 1000;
    cfg.queued_bytes_max = 1500;
    cfg.request_timeout_ms = 3000;
    t_broker_start(env, &cfg);
    void *raw = t_raw_dealer(env);
    char body[800];
    memset(body, 'b', sizeof body);
    t_send(raw, 4, "", (size_t)0, T_S(KMX_MDPC), T_S("kmx.busy"), body, sizeof body);
    t_wait_queued(env, 1);

    Kmx__V1__Response *resp = t_call_sized(env, "kmx.busy", 300);
    assert_non_null(resp);
    assert_int_equal(resp->error->code, KMX__V1__ERROR_CODE__UNAVAILABLE);
    assert_non_null(strstr(resp->error->message, "service 'kmx.busy'"));
    assert_non_null(strstr(resp->error->message, "--service-queue-bytes"));
    kmx__v1__response__free_unpacked(resp, NULL);

    resp = t_call_sized(env, "kmx.other", 800);
    assert_non_null(resp);
    assert_int_equal(resp->error->code, KMX__V1__ERROR_CODE__UNAVAILABLE);
    assert_non_null(strstr(resp->error->message, "all services"));
    assert_non_null(strstr(resp->error->message, "--queue-bytes"));
    kmx__v1__response__free_unpacked(resp, NULL);

    resp = t_broker_stats(env);
    assert_int_equal(t_counter(resp, "kmx.busy.queued_bytes"), 800);
    assert_int_equal(t_counter(resp, "kmx.busy.refused"), 1);
    assert_int_equal(t_counter(resp, "queued_bytes"), 800);
    assert_int_equal(t_counter(resp, "clients_waiting"), 1);
    kmx__v1__response__free_unpacked(resp, NULL);
    kmx_testkit_socket_close(&env->socks, raw);
}

// Reads whole messages on a raw worker until a REQUEST comes; returns 1 if one came.
static int t_expect_request(void *dealer) {
    for (int tries = 0; tries < 20; tries++) {
        zmq_pollitem_t item = {dealer, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, T_CALL_MS) <= 0)
            return 0;
        int command = -1;
        int more = 1;
        for (int n = 0; more; n++) {
            zmq_msg_t part;
            zmq_msg_init(&part);
            assert_true(zmq_msg_recv(&part, dealer, 0) >= 0);
            if (n == 2 && zmq_msg_size(&part) == 1)
                command = *(uint8_t *)zmq_msg_data(&part);
            more = zmq_msg_more(&part);
            zmq_msg_close(&part);
        }
        if (command == KMX_MDPW_REQUEST)
            return 1;
    }
    return 0;
}

// Takes the next REQUEST on a raw worker (other commands, heartbeats, are skipped; at most
// a few): its client envelope into client (T_ID_MAX bytes), and, for those not NULL, the
// first byte of its body and its body decoded as a Request (*req yours, NULL when it does
// not decode). Returns the client's length, 0 if none came.
#define T_ID_MAX 256
static size_t t_take(void *dealer, uint8_t *client, char *first, Kmx__V1__Request **req) {
    zmq_pollitem_t item = {dealer, 0, ZMQ_POLLIN, 0};
    if (req)
        *req = NULL;
    for (int tries = 0; tries < 8 && zmq_poll(&item, 1, T_CALL_MS) > 0; tries++) {
        zmq_msg_t frames[6];
        int count = t_recv_message(dealer, frames, 6);
        size_t len = 0;
        if (count == 6 && zmq_msg_size(&frames[2]) == 1 &&
            *(uint8_t *)zmq_msg_data(&frames[2]) == KMX_MDPW_REQUEST) {
            len = zmq_msg_size(&frames[3]);
            memcpy(client, zmq_msg_data(&frames[3]), len);
            if (first)
                *first = zmq_msg_size(&frames[5]) ? *(char *)zmq_msg_data(&frames[5]) : '\0';
            if (req)
                *req = kmx_msg_request_unpack(zmq_msg_data(&frames[5]), zmq_msg_size(&frames[5]));
        }
        for (int i = 0; i < count; i++)
            zmq_msg_close(&frames[i]);
        if (len)
            return len;
    }
    return 0;
}

// Small requests (a put of one record) go to the next free worker before the large
// documents queued ahead of them, but at most 16 in a row while a large one waits: the
// one worker here is handed the small ones first, then a large one after 16 of them.
static void test_broker_hands_small_requests_out_before_large_ones_a_bounded_number(void **state) {
    t_env_t *env = *state;
    kmx_broker_config_t cfg;
    t_config(&cfg);
    t_broker_start(env, &cfg);
    void *worker = t_raw_dealer(env);
    static const uint8_t ready = KMX_MDPW_READY;
    static const uint8_t reply = KMX_MDPW_REPLY;
    t_send(worker, 4, "", (size_t)0, T_S(KMX_MDPW), &ready, (size_t)1, T_S("kmx.lanes"));
    t_wait_workers(env, 1);
    enum { SMALL = 20, CLIENTS = SMALL + 3 };
    void *clients[CLIENTS];
    static char large[100 * 1024];
    char order[CLIENTS + 1] = {0};
    uint8_t client[T_ID_MAX];
    size_t len = 0;
    // 'B' keeps the worker busy; then two large ones, 'L' and 'M', and the small ones
    // queue up in that order (each queued before the next is sent).
    for (int i = 0; i < CLIENTS; i++) {
        clients[i] = t_raw_dealer(env);
        memset(large, i == 1 ? 'L' : 'M', sizeof large);
        const char *body = i == 0 ? "B" : i <= 2 ? large : "s";
        size_t size = i == 1 || i == 2 ? sizeof large : 1;
        t_send(clients[i], 4, "", (size_t)0, T_S(KMX_MDPC), T_S("kmx.lanes"), body, size);
        if (i == 0)
            len = t_take(worker, client, &order[0], NULL);
        else
            t_wait_queued(env, (uint64_t)i);
    }
    for (int i = 1; i < CLIENTS && len > 0; i++) {
        t_send(worker, 6, "", (size_t)0, T_S(KMX_MDPW), &reply, (size_t)1, client, len, "",
               (size_t)0, T_S("done"));
        len = t_take(worker, client, &order[i], NULL);
    }
    for (int i = 0; i < CLIENTS; i++)
        kmx_testkit_socket_close(&env->socks, clients[i]);
    kmx_testkit_socket_close(&env->socks, worker);
    assert_string_equal(order, "Bssssssssssssssss"
                               "Lssss"
                               "M");
    Kmx__V1__Response *resp = t_broker_stats(env);
    assert_int_equal(t_counter(resp, "kmx.lanes.queued_requests"), 0);
    assert_int_equal(t_counter(resp, "kmx.lanes.queued_bytes"), 0);
    kmx__v1__response__free_unpacked(resp, NULL);
}

// Sends a ping Request carrying timeout_ms from a raw client.
static void t_send_timed(void *client, const char *service, uint32_t timeout_ms) {
    Kmx__V1__PingRequest ping = KMX__V1__PING_REQUEST__INIT;
    Kmx__V1__Request req = KMX__V1__REQUEST__INIT;
    req.body_case = KMX__V1__REQUEST__BODY_PING;
    req.ping = &ping;
    req.has_timeout_ms = 1;
    req.timeout_ms = timeout_ms;
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(kmx_msg_pack_request(&req, &buf, &len), 0);
    t_send(client, 4, "", (size_t)0, T_S(KMX_MDPC), T_S(service), buf, len);
    free(buf);
}

// Reads a raw client's reply and returns its Response (yours), NULL when none came.
static Kmx__V1__Response *t_client_reply(void *client) {
    zmq_pollitem_t item = {client, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, T_CALL_MS) <= 0)
        return NULL;
    zmq_msg_t frames[4];
    int count = t_recv_message(client, frames, 4);
    Kmx__V1__Response *resp =
        count == 4 ? kmx_msg_response_unpack(zmq_msg_data(&frames[3]), zmq_msg_size(&frames[3]))
                   : NULL;
    for (int i = 0; i < count; i++)
        zmq_msg_close(&frames[i]);
    return resp;
}

// A request that waited in the queue reaches its worker with the time its client still
// waits (timeout_ms stamped anew); one whose time ran out while it waited is answered
// DEADLINE_EXCEEDED and never handed out.
static void test_broker_hands_on_the_time_left_and_drops_late_requests(void **state) {
    t_env_t *env = *state;
    kmx_broker_config_t cfg;
    t_config(&cfg);
    t_broker_start(env, &cfg);
    void *client = t_raw_dealer(env), *late = t_raw_dealer(env);
    t_send_timed(client, "kmx.timed", 1500);
    t_wait_queued(env, 1);
    t_sleep_ms(300); // queued, no worker yet
    void *worker = t_raw_dealer(env);
    static const uint8_t ready = KMX_MDPW_READY, reply = KMX_MDPW_REPLY;
    t_send(worker, 4, "", (size_t)0, T_S(KMX_MDPW), &ready, (size_t)1, T_S("kmx.timed"));
    uint8_t id[T_ID_MAX];
    Kmx__V1__Request *got = NULL;
    size_t len = t_take(worker, id, NULL, &got);
    assert_true(len > 0);
    assert_non_null(got);
    assert_true(got->has_timeout_ms);
    assert_in_range(got->timeout_ms, 1, 1500 - 300);
    kmx__v1__request__free_unpacked(got, NULL);
    // The worker is busy: a request whose client waits 100 ms is queued past its time.
    t_send_timed(late, "kmx.timed", 100);
    t_wait_queued(env, 1);
    t_sleep_ms(250);
    t_send(worker, 6, "", (size_t)0, T_S(KMX_MDPW), &reply, (size_t)1, id, len, "", (size_t)0,
           T_S("done"));
    Kmx__V1__Response *resp = t_client_reply(late);
    assert_non_null(resp);
    assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_ERROR);
    assert_int_equal(resp->error->code, KMX__V1__ERROR_CODE__DEADLINE_EXCEEDED);
    assert_non_null(strstr(resp->error->message, "request's timeout of 100 ms"));
    kmx__v1__response__free_unpacked(resp, NULL);
    resp = t_broker_stats(env);
    assert_int_equal(t_counter(resp, "late"), 1);
    assert_int_equal(t_counter(resp, "requests"), 1); // the late one was never handed out
    kmx__v1__response__free_unpacked(resp, NULL);
    kmx_testkit_socket_close(&env->socks, worker);
    kmx_testkit_socket_close(&env->socks, late);
    kmx_testkit_socket_close(&env->socks, client);
}

// A worker that takes a request and then falls silent is expired; its client hears
// UNAVAILABLE from the broker then, instead of waiting out its own timeout.
static void test_broker_answers_the_client_of_a_worker_it_expires(void **state) {
    t_env_t *env = *state;
    kmx_broker_config_t cfg;
    t_config(&cfg);
    cfg.heartbeat_ms = 50;
    t_broker_start(env, &cfg);
    void *raw = t_raw_dealer(env);
    static const uint8_t ready = KMX_MDPW_READY;
    t_send(raw, 4, "", (size_t)0, T_S(KMX_MDPW), &ready, (size_t)1, T_S("kmx.stall"));
    t_wait_workers(env, 1);
    kmx_mdp_client_set_timeout(env->client, 20000);
    pthread_t caller;
    t_call_t call = {env, "kmx.stall", NULL};
    assert_int_equal(pthread_create(&caller, NULL, t_call_thread, &call), 0);
    assert_true(t_expect_request(raw));
    pthread_join(caller, NULL);
    Kmx__V1__Response *resp = call.resp;
    assert_non_null(resp);
    assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_ERROR);
    assert_int_equal(resp->error->code, KMX__V1__ERROR_CODE__UNAVAILABLE);
    assert_non_null(strstr(resp->error->message, "went away"));
    kmx__v1__response__free_unpacked(resp, NULL);
    kmx_testkit_socket_close(&env->socks, raw);
}

// A worker whose connection closes (its process killed: no DISCONNECT, no more heartbeats)
// is dropped as soon as the broker sees the connection go, not after its expiry: its client
// hears UNAVAILABLE and can retry at once. Clients coming and going leave workers alone.
static void test_broker_answers_the_client_of_a_worker_whose_connection_closes(void **state) {
    t_env_t *env = *state;
    kmx_broker_config_t cfg;
    t_config(&cfg); // default heartbeat: the worker would expire after 7.5 s
    t_broker_start(env, &cfg);
    void *raw = t_raw_dealer(env);
    static const uint8_t ready = KMX_MDPW_READY;
    t_send(raw, 4, "", (size_t)0, T_S(KMX_MDPW), &ready, (size_t)1, T_S("kmx.doomed"));
    t_wait_workers(env, 1);
    for (int i = 0; i < 3; i++) {
        kmx_mdp_client_t *other =
            kmx_mdp_client_new(env->ctx, kmx_broker_endpoint(env->broker, KMX_BROKER_ROUTER));
        assert_non_null(other);
        zmq_msg_t reply;
        assert_int_equal(kmx_mdp_client_call(other, KMX_BROKER_SERVICE, "", 0, &reply), 0);
        zmq_msg_close(&reply);
        kmx_mdp_client_destroy(&other);
    }
    t_sleep_ms(50);
    Kmx__V1__Response *resp = t_broker_stats(env);
    assert_int_equal(t_counter(resp, "workers"), 1);
    assert_int_equal(t_counter(resp, "workers_disconnected"), 0);
    kmx__v1__response__free_unpacked(resp, NULL);

    kmx_mdp_client_set_timeout(env->client, 20000);
    pthread_t caller;
    t_call_t call = {env, "kmx.doomed", NULL};
    assert_int_equal(pthread_create(&caller, NULL, t_call_thread, &call), 0);
    assert_true(t_expect_request(raw));
    kmx_testkit_socket_close(&env->socks,
                             raw); // linger 0: the connection closes with the request unanswered
    pthread_join(caller, NULL);
    resp = call.resp;
    assert_non_null(resp);
    assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_ERROR);
    assert_int_equal(resp->error->code, KMX__V1__ERROR_CODE__UNAVAILABLE);
    assert_non_null(strstr(resp->error->message, "went away"));
    kmx__v1__response__free_unpacked(resp, NULL);
    kmx_mdp_client_set_timeout(env->client, T_CALL_MS);
    resp = t_broker_stats(env);
    assert_int_equal(t_counter(resp, "workers"), 0);
    assert_int_equal(t_counter(resp, "workers_disconnected"), 1);
    assert_int_equal(t_counter(resp, "workers_expired"), 0);
    kmx__v1__response__free_unpacked(resp, NULL);
}

// A worker may answer only the client it was handed: a reply to anyone else is forged,
// dropped, and the worker is disconnected.
static void test_broker_refuses_forged_replies(void **state) {
    t_env_t *env = *state;
    kmx_broker_config_t cfg;
    t_config(&cfg);
    t_broker_start(env, &cfg);
    void *raw = t_raw_dealer(env);
    static const uint8_t ready = KMX_MDPW_READY;
    static const uint8_t reply = KMX_MDPW_REPLY;
    t_send(raw, 4, "", (size_t)0, T_S(KMX_MDPW), &ready, (size_t)1, T_S("kmx.forge"));
    t_wait_workers(env, 1);
    static const uint8_t victim[] = {0, 1, 2, 3, 4};
    t_send(raw, 6, "", (size_t)0, T_S(KMX_MDPW), &reply, (size_t)1, victim, sizeof victim, "",
           (size_t)0, T_S("forged"));
    assert_true(t_expect_command(raw, KMX_MDPW_DISCONNECT));
    Kmx__V1__Response *resp = t_broker_stats(env);
    assert_int_equal(t_counter(resp, "replies"), 0);
    assert_int_equal(t_counter(resp, "workers"), 0);
    kmx__v1__response__free_unpacked(resp, NULL);
    kmx_testkit_socket_close(&env->socks, raw);
}

static void test_broker_keeps_a_bounded_history_of_departed_workers(void **state) {
    t_env_t *env = *state;
    kmx_broker_config_t cfg;
    t_config(&cfg);
    cfg.history_max = 2;
    t_broker_start(env, &cfg);
    static const uint8_t ready = KMX_MDPW_READY;
    static const uint8_t disconnect = KMX_MDPW_DISCONNECT;
    for (int i = 0; i < 5; i++) {
        char id[16];
        snprintf(id, sizeof id, "gone-%d", i);
        void *raw = kmx_testkit_socket(&env->socks, env->ctx, ZMQ_DEALER);
        assert_non_null(raw);
        assert_int_equal(zmq_setsockopt(raw, ZMQ_ROUTING_ID, id, strlen(id)), 0);
        assert_int_equal(zmq_connect(raw, kmx_broker_endpoint(env->broker, KMX_BROKER_ROUTER)), 0);
        t_send(raw, 4, "", (size_t)0, T_S(KMX_MDPW), &ready, (size_t)1, T_S("kmx.brief"));
        t_send(raw, 3, "", (size_t)0, T_S(KMX_MDPW), &disconnect, (size_t)1);
        // The broker answers a stats call only after reading what came before it on its
        // socket, but these are other connections: wait until this worker is on record.
        int seen = 0;
        for (int j = 0; j < 200 && !seen; j++) {
            Kmx__V1__Response *resp = t_broker_stats(env);
            const Kmx__V1__WorkerStats *ws = t_find_worker(resp, id);
            seen = ws && !ws->alive;
            kmx__v1__response__free_unpacked(resp, NULL);
            if (!seen)
                t_sleep_ms(5);
        }
        assert_true(seen);
        kmx_testkit_socket_close(&env->socks, raw);
    }
    Kmx__V1__Response *resp = t_broker_stats(env);
    assert_int_equal(resp->stats->n_workers, 2);
    assert_non_null(t_find_worker(resp, "gone-3"));
    assert_non_null(t_find_worker(resp, "gone-4"));
    kmx__v1__response__free_unpacked(resp, NULL);
}

static void test_broker_refuses_unbindable_endpoint(void **state) {
    t_env_t *env = *state;
    kmx_broker_config_t cfg;
    t_config(&cfg);
    cfg.bind = "tcp://not-an-endpoint";
    assert_null(kmx_broker_new(env->ctx, &cfg));
    t_config(&cfg);
    cfg.publish_bind = "tcp://not-an-endpoint";
    assert_null(kmx_broker_new(env->ctx, &cfg));
    t_config(&cfg);
    cfg.events_bind = "tcp://not-an-endpoint";
    assert_null(kmx_broker_new(env->ctx, &cfg));
    t_config(&cfg);
    cfg.publish_bind = NULL;
    cfg.events_bind = NULL;
    kmx_broker_t *broker = kmx_broker_new(env->ctx, &cfg);
    assert_non_null(broker);
    assert_null(kmx_broker_endpoint(broker, KMX_BROKER_XPUB));
    assert_int_equal(kmx_broker_poll_once(broker, 0), 0);
    kmx_broker_destroy(&broker);
    assert_null(broker);
    kmx_broker_destroy(NULL);
}

#define T_CASE(fn) cmocka_unit_test_setup_teardown(fn, t_setup, t_teardown)

int main(void) {
    const struct CMUnitTest tests[] = {
        T_CASE(test_broker_routes_request_to_worker_and_back),
        T_CASE(test_broker_request_waits_for_a_late_worker),
        T_CASE(test_broker_gives_the_next_request_to_the_longest_idle_worker),
        T_CASE(test_broker_answers_unavailable_for_a_service_without_workers),
        T_CASE(test_broker_ping_names_the_broker),
        T_CASE(test_broker_rejects_undecodable_and_unsupported_bodies),
        T_CASE(test_broker_stats_list_workers_even_after_they_leave),
        T_CASE(test_broker_survives_garbage_and_still_serves),
        T_CASE(test_broker_expires_silent_workers),
        T_CASE(test_broker_forwards_whole_messages_from_publishers_to_subscribers),
        T_CASE(test_broker_forwards_events_while_its_request_loop_stands_still),
        T_CASE(test_broker_refuses_requests_beyond_the_queue_limit),
        T_CASE(test_broker_accepts_more_bytes_over_its_life_than_its_queue_limit),
        T_CASE(test_broker_names_the_bytes_limit_it_refuses_for),
        T_CASE(test_broker_answers_the_client_of_a_worker_it_expires),
        T_CASE(test_broker_answers_the_client_of_a_worker_whose_connection_closes),
        T_CASE(test_broker_hands_small_requests_out_before_large_ones_a_bounded_number),
        T_CASE(test_broker_refuses_forged_replies),
        T_CASE(test_broker_keeps_a_bounded_history_of_departed_workers),
        T_CASE(test_broker_refuses_unbindable_endpoint),
        T_CASE(test_broker_hands_on_the_time_left_and_drops_late_requests),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
