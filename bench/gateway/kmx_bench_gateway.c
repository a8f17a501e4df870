/*  kmx_bench_gateway - the two measurements bench/gateway/run.sh needs beside wrk:
      mdp BROKER CLIENTS SECONDS query|get QUERYSTRING
          the question a gateway URL asks (its query string, turned into the request by
          the gateway's own code), asked through 7/MDP by CLIENTS threads for SECONDS:
          requests/s, p50 and p99 in ms.
      sse HOST PORT CLIENTS EVENTS BROKER
          CLIENTS Server-Sent Events streams on one gateway, then a burst of EVENTS
          records put through kmx.ingest: every stream must get every event once, in
          order; delivery latency is receipt time minus the event's commit time.  */
#define _GNU_SOURCE // memmem
#include "kmx_client.h"
#include "kmx_gw_parse.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define S_THREADS_MAX 256
#define S_SAMPLES_MAX 2000000

static double s_mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double s_wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int s_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double s_pct(double *v, size_t n, double p) {
    if (n == 0)
        return 0;
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

// ---- mdp ---------------------------------------------------------------------------------

typedef struct {
    const char *broker; // endpoint
    const char *qs;     // the URL's query string
    int get;            // a record get rather than a query
    double until;       // when to stop
    double *lat;        // latencies, ms
    size_t n;           // samples taken
    size_t cap;         // room in lat
    long failed;        // calls that failed
} s_mdp_t;

static int s_args(kmx_qargs_t *a, const char *qs, int get) {
    kmx_qargs_init(a, get ? KMX_QARGS_GET : KMX_QARGS_QUERY);
    char *copy = strdup(qs), *save = NULL, err[KMX_GW_ERR_MAX];
    for (char *kv = strtok_r(copy, "&", &save); kv; kv = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(kv, '=');
        if (eq)
            *eq = '\0';
        // The values kept in a point into copy, which lives as long as the run.
        if (kmx_gw_param(a, kv, eq ? eq + 1 : NULL, err) < 0) {
            fprintf(stderr, "bench: %s\n", err);
            return -1;
        }
    }
    return kmx_qargs_finish(a);
}

static void *s_mdp_run(void *arg) {
    s_mdp_t *c = arg;
    kmx_qargs_t a;
    if (s_args(&a, c->qs, c->get) < 0)
        return NULL;
    Kmx__V1__QueryRequest q = KMX__V1__QUERY_REQUEST__INIT;
    Kmx__V1__Record key = KMX__V1__RECORD__INIT;
    Kmx__V1__Period period = KMX__V1__PERIOD__INIT;
    if (c->get ? kmx_qargs_get_key(&a, &key, &period) < 0 : (kmx_qargs_query_request(&a, &q), 0))
        return NULL;
    kmx_client_t *client = kmx_client_new(c->broker, 10000, 1);
    while (client && s_mono() < c->until && c->n < c->cap) {
        Kmx__V1__Response *resp = NULL;
        double t0 = s_mono();
        int rc = c->get ? kmx_client_get(client, &key, &resp) : kmx_client_query(client, &q, &resp);
        double ms = (s_mono() - t0) * 1e3;
        if (rc == 0)
            c->lat[c->n++] = ms;
        else
            c->failed++;
        if (resp)
            kmx__v1__response__free_unpacked(resp, NULL);
    }
    kmx_client_destroy(&client);
    return NULL;
}

static int s_mdp(int argc, char **argv) {
    if (argc != 7)
        return 2;
    int n = atoi(argv[3]);
    double secs = atof(argv[4]);
    int get = strcmp(argv[5], "get") == 0;
    if (n < 1 || n > S_THREADS_MAX || secs <= 0)
        return 2;
    static s_mdp_t c[S_THREADS_MAX];
    pthread_t th[S_THREADS_MAX];
    double t0 = s_mono();
    for (int i = 0; i < n; i++) {
        c[i] = (s_mdp_t){argv[2], argv[6], get, t0 + secs, NULL, 0, S_SAMPLES_MAX / (size_t)n, 0};
        c[i].lat = malloc(c[i].cap * sizeof(double));
        pthread_create(&th[i], NULL, s_mdp_run, &c[i]);
    }
    double *all = malloc(S_SAMPLES_MAX * sizeof(double));
    size_t total = 0;
    long failed = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        memcpy(all + total, c[i].lat, c[i].n * sizeof(double));
        total += c[i].n;
        failed += c[i].failed;
        free(c[i].lat);
    }
    double elapsed = s_mono() - t0;
    qsort(all, total, sizeof(double), s_cmp_double);
    printf("mdp %s: %zu answered in %.1f s with %d clients: %.0f requests/s, p50 %.3f ms, "
           "p99 %.3f ms (failed %ld)\n",
           argv[5], total, elapsed, n, (double)total / elapsed, s_pct(all, total, 0.5),
           s_pct(all, total, 0.99), failed);
    free(all);
    return failed == 0 && total > 0 ? 0 : 1;
}

// ---- sse ---------------------------------------------------------------------------------

typedef struct {
    int fd;           // the stream's socket
    char buf[65536];  // text not yet parsed
    size_t len;       // bytes in buf
    int headers_done; // the HTTP head was read
    uint64_t next;    // the id expected next
    uint64_t got;     // events received
    int bad;          // an id out of order
    int greeted;      // the greeting comment arrived
} s_stream_t;

static int s_connect(const char *host, int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, host, &a.sin_addr);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    // HTTP/1.0: the body comes unchunked, so messages can be split on blank lines alone.
    const char *req = "GET /v1/events HTTP/1.0\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n";
    if (write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
        close(fd);
        return -1;
    }
    return fd;
}

// Parses the complete messages in s->buf; latencies of events go to lat.
static void s_parse(s_stream_t *s, double *lat, size_t *nlat, size_t cap, double now_ms) {
    size_t off = 0;
    if (!s->headers_done) {
        char *end = memmem(s->buf, s->len, "\r\n\r\n", 4);
        if (!end)
            return;
        s->headers_done = 1;
        off = (size_t)(end - s->buf) + 4;
    }
    for (;;) {
        char *end = memmem(s->buf + off, s->len - off, "\n\n", 2);
        if (!end)
            break;
        char *msg = s->buf + off;
        size_t mlen = (size_t)(end - msg);
        // Cheap on purpose (the reader must keep up with 1,000 streams): an event starts
        // with "id: " and its JSON ends with "committed_ms":N}.
        if (!s->greeted && memmem(msg, mlen, "kmx events after", 16))
            s->greeted = 1;
        if (mlen > 4 && memcmp(msg, "id: ", 4) == 0) {
            uint64_t seq = strtoull(msg + 4, NULL, 10);
            if (s->next && seq != s->next)
                s->bad = 1;
            s->next = seq + 1;
            s->got++;
            size_t tail = mlen < 48 ? mlen : 48;
            char *cm = memmem(msg + mlen - tail, tail, "\"committed_ms\":", 15);
            if (cm && *nlat < cap)
                lat[(*nlat)++] = now_ms - strtod(cm + 15, NULL);
        }
        off = (size_t)(end - s->buf) + 2;
    }
    memmove(s->buf, s->buf + off, s->len - off);
    s->len -= off;
}

// Reads every stream until each has want events (or the deadline). Returns streams done.
static int s_pump(s_stream_t *st, int n, int ep, uint64_t want, double deadline, double *lat,
                  size_t *nlat, size_t cap, int wait_greeting) {
    struct epoll_event evs[256];
    int done = 0;
    while (s_mono() < deadline) {
        done = 0;
        for (int i = 0; i < n; i++)
            done += wait_greeting ? st[i].greeted : st[i].got >= want;
        if (done == n)
            break;
        int k = epoll_wait(ep, evs, 256, 100);
        double now = s_wall_ms();
        for (int e = 0; e < k; e++) {
            s_stream_t *s = evs[e].data.ptr;
            ssize_t r = read(s->fd, s->buf + s->len, sizeof(s->buf) - s->len - 1);
            if (r > 0) {
                s->len += (size_t)r;
                s_parse(s, lat, nlat, cap, now);
            }
        }
    }
    return done;
}

static int s_burst(const char *broker, int events) {
    kmx_client_t *client = kmx_client_new(broker, 30000, 1);
    int rc = client ? 0 : -1;
    for (int start = 0; rc == 0 && start < events; start += 500) {
        int n = events - start < 500 ? events - start : 500;
        Kmx__V1__Record recs[500], *ptrs[500];
        Kmx__V1__Period period = KMX__V1__PERIOD__INIT;
        Kmx__V1__Value values[500];
        char items[500][32];
        period.has_start = period.has_end = 1;
        period.start = 203001, period.end = 203012;
        for (int i = 0; i < n; i++) {
            kmx__v1__record__init(&recs[i]);
            kmx__v1__value__init(&values[i]);
            snprintf(items[i], sizeof items[i], "burst %d", start + i);
            values[i].has_amount = 1, values[i].amount = (int64_t)(start + i + 1) * 10000;
            values[i].unit = "USD";
            recs[i].has_kind = 1, recs[i].kind = KMX__V1__KIND__EXPORT;
            recs[i].period = &period, recs[i].market = "JP";
            recs[i].category = "bench_burst", recs[i].item = items[i];
            recs[i].source = "kmx bench", recs[i].value = &values[i];
            ptrs[i] = &recs[i];
        }
        Kmx__V1__Response *resp = NULL;
        rc = kmx_client_put(client, ptrs, (size_t)n, false, &resp);
        if (resp)
            kmx__v1__response__free_unpacked(resp, NULL);
    }
    kmx_client_destroy(&client);
    return rc;
}

static int s_sse(int argc, char **argv) {
    if (argc != 7)
        return 2;
    int n = atoi(argv[4]), events = atoi(argv[5]);
    s_stream_t *st = calloc((size_t)n, sizeof(*st));
    int ep = epoll_create1(0);
    for (int i = 0; i < n; i++) {
        st[i].fd = s_connect(argv[2], atoi(argv[3]));
        if (st[i].fd < 0) {
            fprintf(stderr, "bench: stream %d cannot connect: %s\n", i, strerror(errno));
            return 1;
        }
        struct epoll_event e = {EPOLLIN, {.ptr = &st[i]}};
        epoll_ctl(ep, EPOLL_CTL_ADD, st[i].fd, &e);
    }
    size_t cap = (size_t)n * (size_t)events, nlat = 0;
    double *lat = malloc(cap * sizeof(double));
    int ready = s_pump(st, n, ep, 0, s_mono() + 60, lat, &nlat, 0, 1);
    if (ready < n) {
        fprintf(stderr, "bench: only %d of %d streams opened\n", ready, n);
        return 1;
    }
    double t0 = s_mono();
    // The burst comes from a child process (one writer through kmx.ingest) while this one
    // reads every stream; no ZeroMQ context exists here before the fork.
    pid_t pid = fork();
    if (pid == 0)
        _exit(s_burst(argv[6], events) == 0 ? 0 : 1);
    int done = s_pump(st, n, ep, (uint64_t)events, s_mono() + 120, lat, &nlat, cap, 0);
    double elapsed = s_mono() - t0;
    int status = 1;
    if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
        fprintf(stderr, "bench: the burst's puts failed\n");
    int bad = 0;
    for (int i = 0; i < n; i++)
        bad += st[i].bad || st[i].got != (uint64_t)events;
    qsort(lat, nlat, sizeof(double), s_cmp_double);
    printf("sse: %d streams, burst of %d events: %d streams got every event in order, %d did "
           "not; %zu deliveries in %.2f s; delivery p50 %.1f ms, p99 %.1f ms, max %.1f ms\n",
           n, events, done < n ? done : n - bad, bad, nlat, elapsed, s_pct(lat, nlat, 0.5),
           s_pct(lat, nlat, 0.99), nlat ? lat[nlat - 1] : 0);
    for (int i = 0; i < n; i++)
        close(st[i].fd);
    free(st);
    free(lat);
    return bad == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
    int rc = 2;
    if (argc > 1 && strcmp(argv[1], "mdp") == 0)
        rc = s_mdp(argc, argv);
    else if (argc > 1 && strcmp(argv[1], "sse") == 0)
        rc = s_sse(argc, argv);
    if (rc == 2)
        fprintf(stderr, "usage: kmx_bench_gateway mdp BROKER CLIENTS SECONDS query|get "
                        "QUERYSTRING\n       kmx_bench_gateway sse HOST PORT CLIENTS EVENTS "
                        "BROKER\n");
    return rc;
}
