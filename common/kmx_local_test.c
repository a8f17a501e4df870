/*  kmx_local_test - the local read socket: its server stepped in a thread of this test the
    way a worker's loop steps it, against libkmx's client side and against raw connections
    that misbehave (a request over the limit, half a message, pipelined requests, a reader
    that never reads), on real unix sockets in a temporary directory.  */
#define _GNU_SOURCE
#include "kmx_err.h"
#include "kmx_local.h"
#include "kmx_msg.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

// cmocka.h needs the headers above, setjmp.h in particular.
#include <cmocka.h>

#define T_BIG (1u << 20) // the answer to "big": more than any socket buffer holds

typedef struct {
    char dir[64];       // temporary directory
    char path[96];      // socket file in it
    kmx_local_t *srv;   // the server, stepped by thread
    pthread_t thread;   // its loop
    atomic_int stop;    // ends the loop
    atomic_int running; // the loop is running
} t_env_t;

// The test's handler: "big" gets T_BIG bytes of 'x', "fail" no answer, anything else
// "ok:" and the request.
static int t_handle(void *arg, const uint8_t *body, size_t size, uint8_t **out, size_t *len) {
    (void)arg;
    if (size == 4 && memcmp(body, "fail", 4) == 0)
        return -1;
    if (size == 3 && memcmp(body, "big", 3) == 0) {
        *out = malloc(T_BIG);
        memset(*out, 'x', T_BIG);
        *len = T_BIG;
        return 0;
    }
    *out = malloc(size + 3);
    memcpy(*out, "ok:", 3);
    memcpy(*out + 3, body, size);
    *len = size + 3;
    return 0;
}

static void *t_loop(void *arg) {
    t_env_t *env = arg;
    struct pollfd fds[KMX_LOCAL_FDS];
    while (!atomic_load(&env->stop)) {
        int n = kmx_local_fds(env->srv, fds);
        if (poll(fds, (nfds_t)n, 20) == 0)
            for (int i = 0; i < n; i++)
                fds[i].revents = 0;
        kmx_local_step(env->srv, fds, n);
    }
    return NULL;
}

// Starts the server, closing connections stuck inside a message after idle_ms (0: default).
static void t_start_idle(t_env_t *env, int idle_ms) {
    const char *why = NULL;
    env->srv = kmx_local_listen(env->path, t_handle, NULL, &why);
    assert_non_null(env->srv);
    kmx_local_set_idle_ms(env->srv, idle_ms);
    atomic_store(&env->stop, 0);
    assert_int_equal(pthread_create(&env->thread, NULL, t_loop, env), 0);
    atomic_store(&env->running, 1);
}

static void t_start(t_env_t *env) {
    t_start_idle(env, 0);
}

static kmx_local_stats_t t_stop(t_env_t *env) {
    kmx_local_stats_t st = {0};
    if (!atomic_load(&env->running))
        return st;
    atomic_store(&env->stop, 1);
    pthread_join(env->thread, NULL);
    atomic_store(&env->running, 0);
    st = kmx_local_stats(env->srv);
    kmx_local_destroy(&env->srv);
    return st;
}

static int t_setup(void **state) {
    t_env_t *env = calloc(1, sizeof *env);
    assert_non_null(env);
    snprintf(env->dir, sizeof env->dir, "/tmp/kmx-local-test-XXXXXX");
    assert_non_null(mkdtemp(env->dir));
    snprintf(env->path, sizeof env->path, "%s/q.sock", env->dir);
    *state = env;
    return 0;
}

static int t_teardown(void **state) {
    t_env_t *env = *state;
    t_stop(env);
    unlink(env->path);
    rmdir(env->dir);
    free(env);
    return 0;
}

// A raw connection to path with a receive timeout of 3 s.
static int t_raw(const char *path) {
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    struct timeval tv = {3, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static void t_put_frame(uint8_t *to, const char *body, uint32_t len) {
    to[0] = (uint8_t)(len >> 24);
    to[1] = (uint8_t)(len >> 16);
    to[2] = (uint8_t)(len >> 8);
    to[3] = (uint8_t)len;
    memcpy(to + 4, body, strlen(body));
}

// Reads one framed answer into buf (up to cap). Returns its length, or -1 at end of stream.
static long t_read_frame(int fd, uint8_t *buf, size_t cap) {
    uint8_t head[4];
    size_t got = 0;
    while (got < 4) {
        ssize_t n = recv(fd, head + got, 4 - got, 0);
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    uint32_t len =
        (uint32_t)head[0] << 24 | (uint32_t)head[1] << 16 | (uint32_t)head[2] << 8 | head[3];
    assert_true(len <= cap);
    for (got = 0; got < len;) {
        ssize_t n = recv(fd, buf + got, len - got, 0);
        assert_true(n > 0);
        got += (size_t)n;
    }
    return (long)len;
}

static void t_call_ok(const char *path, const char *body) {
    kmx_local_client_t *c = kmx_local_client_new(path, 2000, 1);
    assert_non_null(c);
    uint8_t *reply = NULL;
    size_t len = 0;
    assert_int_equal(kmx_local_client_call(c, body, strlen(body), &reply, &len), 0);
    assert_int_equal(len, strlen(body) + 3);
    assert_memory_equal(reply, "ok:", 3);
    assert_memory_equal(reply + 3, body, strlen(body));
    free(reply);
    kmx_local_client_destroy(&c);
}

static void test_round_trips(void **state) {
    t_env_t *env = *state;
    t_start(env);
    struct stat st;
    assert_int_equal(stat(env->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0660); // owner and group
    kmx_local_client_t *c = kmx_local_client_new(env->path, 2000, 1);
    assert_non_null(c);
    for (int i = 0; i < 200; i++) {
        char body[32];
        snprintf(body, sizeof body, "get %d", i);
        uint8_t *reply = NULL;
        size_t len = 0;
        assert_int_equal(kmx_local_client_call(c, body, strlen(body), &reply, &len), 0);
        assert_int_equal(len, strlen(body) + 3);
        assert_memory_equal(reply + 3, body, strlen(body));
        free(reply);
    }
    // An answer far larger than the client's first receive arrives whole.
    uint8_t *reply = NULL;
    size_t len = 0;
    assert_int_equal(kmx_local_client_call(c, "big", 3, &reply, &len), 0);
    assert_int_equal(len, T_BIG);
    assert_int_equal(reply[0], 'x');
    assert_int_equal(reply[T_BIG - 1], 'x');
    free(reply);
    // Too large to send: refused before anything goes out.
    static uint8_t huge[KMX_LOCAL_REQUEST_MAX + 1];
    assert_int_equal(kmx_local_client_call(c, huge, sizeof huge, &reply, &len), KMX_ERR_TOO_BIG);
    kmx_local_client_destroy(&c);
    kmx_local_stats_t s = t_stop(env);
    assert_int_equal(s.requests, 201);
    assert_int_equal(s.accepted, 1);               // one connection kept for every call
    assert_int_equal(access(env->path, F_OK), -1); // destroy removes the socket file
}

static void test_pipelined_requests_answered_in_order(void **state) {
    t_env_t *env = *state;
    t_start(env);
    int fd = t_raw(env->path);
    uint8_t buf[64];
    t_put_frame(buf, "one", 3);
    t_put_frame(buf + 7, "two", 3);
    t_put_frame(buf + 14, "three", 5);
    assert_int_equal(send(fd, buf, 23, 0), 23); // three requests in one write
    const char *want[] = {"ok:one", "ok:two", "ok:three"};
    for (int i = 0; i < 3; i++) {
        uint8_t got[64];
        long n = t_read_frame(fd, got, sizeof got);
        assert_int_equal(n, (long)strlen(want[i]));
        assert_memory_equal(got, want[i], (size_t)n);
    }
    close(fd);
    assert_int_equal(t_stop(env).requests, 3);
}

static void test_request_over_limit_refused_by_name(void **state) {
    t_env_t *env = *state;
    t_start(env);
    int fd = t_raw(env->path);
    uint8_t head[8];
    t_put_frame(head, "", KMX_LOCAL_REQUEST_MAX + 1);
    assert_int_equal(send(fd, head, 4, 0), 4);
    uint8_t got[1024];
    long n = t_read_frame(fd, got, sizeof got);
    assert_true(n > 0);
    Kmx__V1__Response *resp = kmx_msg_response_unpack(got, (size_t)n);
    assert_non_null(resp);
    assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_ERROR);
    assert_int_equal(resp->error->code, KMX__V1__ERROR_CODE__TOO_LARGE);
    assert_non_null(strstr(resp->error->message, "send it to the broker"));
    kmx__v1__response__free_unpacked(resp, NULL);
    assert_int_equal(t_read_frame(fd, got, sizeof got), -1); // and the connection closed
    close(fd);
    t_call_ok(env->path, "after"); // the server goes on
    assert_int_equal(t_stop(env).requests, 1);
}

static void test_broken_connections_leave_the_server_serving(void **state) {
    t_env_t *env = *state;
    t_start_idle(env, 200);
    // Half a header, then gone; half a body, then gone.
    int fd = t_raw(env->path);
    assert_int_equal(send(fd, "\0\0", 2, 0), 2);
    close(fd);
    fd = t_raw(env->path);
    uint8_t buf[16];
    t_put_frame(buf, "ab", 10);
    assert_int_equal(send(fd, buf, 6, 0), 6);
    close(fd);
    // A request the handler cannot answer: the connection is closed, nothing else changes.
    fd = t_raw(env->path);
    t_put_frame(buf, "fail", 4);
    assert_int_equal(send(fd, buf, 8, 0), 8);
    uint8_t got[16];
    assert_int_equal(t_read_frame(fd, got, sizeof got), -1);
    close(fd);
    // Stuck inside a message past the idle limit: closed by the server.
    fd = t_raw(env->path);
    assert_int_equal(send(fd, "\0\0\0\x09xy", 6, 0), 6);
    assert_int_equal(t_read_frame(fd, got, sizeof got), -1);
    close(fd);
    t_call_ok(env->path, "still here");
    kmx_local_stats_t s = t_stop(env);
    assert_int_equal(s.accepted, 5);
    assert_int_equal(s.requests, 1);
}

static void test_a_reader_that_never_reads_blocks_no_one(void **state) {
    t_env_t *env = *state;
    t_start(env);
    int fd = t_raw(env->path);
    uint8_t buf[8 * 7];
    for (int i = 0; i < 8; i++)
        t_put_frame(buf + 7 * i, "big", 3); // 8 MiB of answers nobody reads
    assert_int_equal(send(fd, buf, sizeof buf, 0), (ssize_t)sizeof buf);
    struct timespec pause = {0, 100 * 1000000L};
    nanosleep(&pause, NULL);
    for (int i = 0; i < 20; i++)
        t_call_ok(env->path, "beside");
    close(fd);
    kmx_local_stats_t s = t_stop(env);
    assert_true(s.requests >= 21); // the big ones answered as far as their reader took them
}

static void test_listen_refuses_what_is_not_its_own(void **state) {
    t_env_t *env = *state;
    const char *why = NULL;
    // A socket file left behind by a process that is gone is replaced.
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", env->path);
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    close(fd); // bound, never listening: what a killed worker leaves
    t_start(env);
    t_call_ok(env->path, "replaced");
    // A live one is refused, by name.
    assert_null(kmx_local_listen(env->path, t_handle, NULL, &why));
    assert_non_null(strstr(why, "a path of its own"));
    t_stop(env);
    // Not a socket.
    FILE *f = fopen(env->path, "w");
    assert_non_null(f);
    fclose(f);
    assert_null(kmx_local_listen(env->path, t_handle, NULL, &why));
    assert_non_null(strstr(why, "not a socket"));
    unlink(env->path);
    // A path too long for a unix socket, a directory that does not exist.
    char longer[200];
    memset(longer, 'a', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    assert_null(kmx_local_listen(longer, t_handle, NULL, &why));
    assert_non_null(strstr(why, "shorter path"));
    assert_null(kmx_local_listen("/nonexistent-kmx-dir/q.sock", t_handle, NULL, &why));
    assert_non_null(strstr(why, "directory"));
}

static void test_client_names_what_went_wrong(void **state) {
    t_env_t *env = *state;
    uint8_t *reply = NULL;
    size_t len = 0;
    // Nobody listens.
    kmx_local_client_t *c = kmx_local_client_new(env->path, 300, 2);
    assert_non_null(c);
    assert_int_equal(kmx_local_client_call(c, "x", 1, &reply, &len), KMX_ERR_UNAVAILABLE);
    // A listener that accepts and never answers: each try times out.
    int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", env->path);
    assert_int_equal(bind(lfd, (struct sockaddr *)&addr, sizeof addr), 0);
    assert_int_equal(listen(lfd, 4), 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(kmx_local_client_call(c, "x", 1, &reply, &len), KMX_ERR_TIMEOUT);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
    assert_true(ms >= 2 * 300 - 20); // two tries of 300 ms, not one, not forever
    close(lfd);
    unlink(env->path);
    kmx_local_client_destroy(&c);
    // A worker that restarts between calls: the kept connection is found closed and a
    // fresh one made within the same try.
    t_start(env);
    c = kmx_local_client_new(env->path, 2000, 1);
    assert_int_equal(kmx_local_client_call(c, "one", 3, &reply, &len), 0);
    free(reply);
    t_stop(env);
    t_start(env);
    assert_int_equal(kmx_local_client_call(c, "two", 3, &reply, &len), 0);
    assert_memory_equal(reply, "ok:two", 6);
    free(reply);
    kmx_local_client_destroy(&c);
    assert_null(kmx_local_client_new("", 100, 1));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trips, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_pipelined_requests_answered_in_order, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_request_over_limit_refused_by_name, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_broken_connections_leave_the_server_serving, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_a_reader_that_never_reads_blocks_no_one, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_listen_refuses_what_is_not_its_own, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_client_names_what_went_wrong, t_setup, t_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
