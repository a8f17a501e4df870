/*  kmx_bench_gateway - the two measurements bench/gateway/run.sh needs beside wrk:
      mdp BROKER CLIENTS SECONDS query|get QUERYSTRING
          the question a gateway URL asks (its query string, turned into the request by
          the gateway's own code), asked through 7/MDP by CLIENTS threads for SECONDS:
          requests/s, p50 and p99 in ms.
      sse HOST PORT CLIENTS EVENTS BROKER [PATH]
          CLIENTS Server-Sent Events streams on one gateway, then a burst of EVENTS
          records put through kmx.ingest: every stream must get every event once, in
          order; delivery latency is receipt time minus the event's commit time. Then the
          floor: the same bytes (the messages one stream got) released on the same
          schedule by a plain writer to CLIENTS loopback sockets, read by the same reader.
          PATH (default /v1/events) may ask for another form of the events.  */
#define _GNU_SOURCE // memmem
#include "kmx_client.h"
#include "kmx_gw_parse.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
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
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    qsort(all, total, sizeof(double), s_cmp_double);
    printf("mdp %s: %zu answered in %.1f s with %d clients: %.0f requests/s, p50 %.3f ms, "
           "p99 %.3f ms (failed %ld); the clients' CPU %.0f us per request\n",
           argv[5], total, elapsed, n, (double)total / elapsed, s_pct(all, total, 0.5),
           s_pct(all, total, 0.99), failed, total ? cpu * 1e6 / (double)total : 0);
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

// What one stream received, kept to replay the same bytes on the same schedule.
typedef struct {
    char *text;     // the events' SSE messages, back to back
    size_t len;     // bytes in text
    size_t cap;     // room in text
    size_t *ends;   // where each message ends in text
    double *commit; // each event's committed_ms
    size_t n;       // events kept
    size_t room;    // room in ends and commit
} s_capture_t;

// The reading side, the same for the gateway and the plain writer.
typedef struct {
    double *lat;            // delivery latencies, ms
    size_t nlat;            // latencies taken
    size_t cap;             // room in lat
    double shift;           // an event was released at committed_ms + shift
    const s_stream_t *kept; // the stream whose events go to capture
    s_capture_t *capture;   // or NULL
} s_reader_t;

static void s_capture_add(s_capture_t *c, const char *msg, size_t mlen, double commit) {
    if (c->len + mlen + 2 > c->cap) {
        c->cap = (c->len + mlen + 2) * 2;
        c->text = realloc(c->text, c->cap);
    }
    if (c->n == c->room) {
        c->room = c->room ? c->room * 2 : 1024;
        c->ends = realloc(c->ends, c->room * sizeof(size_t));
        c->commit = realloc(c->commit, c->room * sizeof(double));
    }
    memcpy(c->text + c->len, msg, mlen);
    memcpy(c->text + c->len + mlen, "\n\n", 2);
    c->len += mlen + 2;
    c->ends[c->n] = c->len;
    c->commit[c->n++] = commit;
}

static int s_connect(const char *host, int port, const char *path) {
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
    char req[512];
    int len = snprintf(req, sizeof req,
                       "GET %s HTTP/1.0\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n", path);
    if (write(fd, req, (size_t)len) != len) {
        close(fd);
        return -1;
    }
    return fd;
}

// Parses the complete messages in s->buf; latencies of events go to rd.
static void s_parse(s_stream_t *s, s_reader_t *rd, double now_ms) {
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
            double commit = cm ? strtod(cm + 15, NULL) : 0;
            if (cm && rd->nlat < rd->cap)
                rd->lat[rd->nlat++] = now_ms - commit - rd->shift;
            if (rd->capture && s == rd->kept)
                s_capture_add(rd->capture, msg, mlen, commit);
        }
        off = (size_t)(end - s->buf) + 2;
    }
    memmove(s->buf, s->buf + off, s->len - off);
    s->len -= off;
}

// Reads every stream until each has want events (or the deadline). Returns streams done.
static int s_pump(s_stream_t *st, int n, int ep, uint64_t want, double deadline, s_reader_t *rd,
                  int wait_greeting) {
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
                s_parse(s, rd, now);
            }
        }
    }
    return done;
}

static int s_burst(const char *broker, int events) {
    kmx_client_t *client = kmx_client_new(broker, 30000, 1);
    int rc = client ? 0 : -1;
    int run = (int)getpid(); // each run's records are new ones, so every put is an event
    for (int start = 0; rc == 0 && start < events; start += 500) {
        int n = events - start < 500 ? events - start : 500;
        Kmx__V1__Record recs[500], *ptrs[500];
        Kmx__V1__Period period = KMX__V1__PERIOD__INIT;
        Kmx__V1__Value values[500];
        char items[500][48];
        period.has_start = period.has_end = 1;
        period.start = 203001, period.end = 203012;
        for (int i = 0; i < n; i++) {
            kmx__v1__record__init(&recs[i]);
            kmx__v1__value__init(&values[i]);
            snprintf(items[i], sizeof items[i], "burst %d %d", run, start + i);
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

static double s_cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

// ---- the floor: a plain writer of the same bytes to as many loopback sockets ----------------

typedef struct {
    const int *fds;          // the writer's sockets, non-blocking
    int n;                   // how many
    const s_capture_t *what; // the messages and when each was committed
    double shift;            // message i is released at commit[i] + shift (wall ms)
    double cpu;              // the writer's CPU seconds
    int failed;              // a write failed
} s_writer_t;

// Writes every released message to every socket, as much per write as the socket takes
// (what an ideal server does: the bytes are shared, a socket's state is one offset).
static void *s_write_run(void *arg) {
    s_writer_t *w = arg;
    const s_capture_t *c = w->what;
    size_t *off = calloc((size_t)w->n, sizeof(size_t));
    char *blocked = calloc((size_t)w->n, 1);
    int ep = epoll_create1(0);
    for (int i = 0; i < w->n; i++) {
        struct epoll_event e = {EPOLLOUT | EPOLLET, {.u32 = (uint32_t)i}};
        epoll_ctl(ep, EPOLL_CTL_ADD, w->fds[i], &e);
    }
    double cpu0 = s_cpu_s();
    size_t released = 0;
    for (int done = 0; done < w->n && !w->failed;) {
        double now = s_wall_ms();
        while (released < c->n && c->commit[released] + w->shift <= now)
            released++;
        size_t avail = released ? c->ends[released - 1] : 0;
        done = 0;
        for (int i = 0; i < w->n; i++) {
            while (!blocked[i] && off[i] < avail) {
                size_t k = avail - off[i] < 131072 ? avail - off[i] : 131072;
                ssize_t r = write(w->fds[i], c->text + off[i], k);
                if (r > 0)
                    off[i] += (size_t)r;
                else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                    blocked[i] = 1;
                else
                    w->failed = 1, blocked[i] = 1;
            }
            done += off[i] == c->len;
        }
        double next = released < c->n ? c->commit[released] + w->shift - now : 100;
        int timeout = next < 0 ? 0 : next > 100 ? 100 : (int)next + 1;
        struct epoll_event evs[256];
        int k = done < w->n ? epoll_wait(ep, evs, 256, timeout) : 0;
        for (int e = 0; e < k; e++)
            blocked[evs[e].data.u32] = 0;
    }
    w->cpu = s_cpu_s() - cpu0;
    close(ep);
    free(off);
    free(blocked);
    return NULL;
}

// n loopback connections: the reading ends in st (set up as streams without a head), the
// writing ends in fds. Returns 0 or -1.
static int s_floor_connect(s_stream_t *st, int *fds, int n, int ep) {
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    socklen_t alen = sizeof(a);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd, 64) < 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &alen) < 0)
        return -1;
    for (int i = 0; i < n; i++) {
        memset(&st[i], 0, sizeof(st[i]));
        st[i].fd = socket(AF_INET, SOCK_STREAM, 0);
        st[i].headers_done = st[i].greeted = 1;
        if (st[i].fd < 0 || connect(st[i].fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
            (fds[i] = accept(lfd, NULL, NULL)) < 0)
            return -1;
        fcntl(fds[i], F_SETFL, O_NONBLOCK);
        struct epoll_event e = {EPOLLIN, {.ptr = &st[i]}};
        epoll_ctl(ep, EPOLL_CTL_ADD, st[i].fd, &e);
    }
    close(lfd);
    return 0;
}

// The same messages as the gateway delivered, released on the same schedule (each at its
// commit time, shifted to now) by a plain writer to n loopback sockets and read by the same
// reader: the best delivery these bytes can have on this machine.
static int s_floor(int n, const s_capture_t *c) {
    s_stream_t *st = calloc((size_t)n, sizeof(*st));
    int *fds = calloc((size_t)n, sizeof(int));
    int ep = epoll_create1(0);
    if (c->n == 0 || s_floor_connect(st, fds, n, ep) < 0) {
        fprintf(stderr, "bench: floor: cannot set up %d loopback sockets: %s\n", n,
                strerror(errno));
        return 1;
    }
    s_reader_t rd = {malloc((size_t)n * c->n * sizeof(double)), 0, (size_t)n * c->n, 0, NULL, NULL};
    rd.shift = s_wall_ms() + 50 - c->commit[0];
    s_writer_t w = {fds, n, c, rd.shift, 0, 0};
    pthread_t th;
    double t0 = s_mono() + 0.05, cpu0 = s_cpu_s();
    pthread_create(&th, NULL, s_write_run, &w);
    int done = s_pump(st, n, ep, (uint64_t)c->n, s_mono() + 120, &rd, 0);
    double elapsed = s_mono() - t0, cpu = s_cpu_s() - cpu0;
    pthread_join(th, NULL);
    double mb = (double)c->len * n / 1e6;
    double span = (c->commit[c->n - 1] - c->commit[0]) / 1e3;
    qsort(rd.lat, rd.nlat, sizeof(double), s_cmp_double);
    printf("floor: a plain writer of the same %.0f MB (%d streams x %zu events, %.0f bytes "
           "each) on the same schedule (commits spread over %.2f s): %d streams complete in "
           "%.2f s, %.0f MB/s through loopback; delivery p50 %.1f ms, p99 %.1f ms; the reader "
           "used %.2f CPU s (%.0f MB/s consumed), the writer %.2f CPU s (%.0f MB/s)\n",
           mb, n, c->n, (double)c->len / (double)c->n, span, done, elapsed, mb / elapsed,
           s_pct(rd.lat, rd.nlat, 0.5), s_pct(rd.lat, rd.nlat, 0.99), cpu, cpu > 0 ? mb / cpu : 0,
           w.cpu, w.cpu > 0 ? mb / w.cpu : 0);
    for (int i = 0; i < n; i++)
        close(st[i].fd), close(fds[i]);
    close(ep);
    free(st);
    free(fds);
    free(rd.lat);
    return done == n && !w.failed ? 0 : 1;
}

static int s_sse(int argc, char **argv) {
    if (argc != 7 && argc != 8)
        return 2;
    int n = atoi(argv[4]), events = atoi(argv[5]);
    const char *path = argc == 8 ? argv[7] : "/v1/events";
    s_stream_t *st = calloc((size_t)n, sizeof(*st));
    int ep = epoll_create1(0);
    for (int i = 0; i < n; i++) {
        st[i].fd = s_connect(argv[2], atoi(argv[3]), path);
        if (st[i].fd < 0) {
            fprintf(stderr, "bench: stream %d cannot connect: %s\n", i, strerror(errno));
            return 1;
        }
        struct epoll_event e = {EPOLLIN, {.ptr = &st[i]}};
        epoll_ctl(ep, EPOLL_CTL_ADD, st[i].fd, &e);
    }
    s_capture_t capture;
    memset(&capture, 0, sizeof(capture));
    size_t cap = (size_t)n * (size_t)events;
    s_reader_t rd = {malloc(cap * sizeof(double)), 0, 0, 0, &st[0], &capture};
    int ready = s_pump(st, n, ep, 0, s_mono() + 60, &rd, 1);
    if (ready < n) {
        fprintf(stderr, "bench: only %d of %d streams opened\n", ready, n);
        return 1;
    }
    rd.cap = cap;
    double t0 = s_mono(), cpu0 = s_cpu_s();
    // The burst comes from a child process (one writer through kmx.ingest) while this one
    // reads every stream; no ZeroMQ context exists here before the fork.
    pid_t pid = fork();
    if (pid == 0)
        _exit(s_burst(argv[6], events) == 0 ? 0 : 1);
    int done = s_pump(st, n, ep, (uint64_t)events, s_mono() + 120, &rd, 0);
    double elapsed = s_mono() - t0, cpu = s_cpu_s() - cpu0;
    int status = 1;
    if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
        fprintf(stderr, "bench: the burst's puts failed\n");
    int bad = 0;
    for (int i = 0; i < n; i++)
        bad += st[i].bad || st[i].got != (uint64_t)events;
    qsort(rd.lat, rd.nlat, sizeof(double), s_cmp_double);
    printf("sse %s: %d streams, burst of %d events: %d streams got every event in order, %d did "
           "not; %zu deliveries in %.2f s; delivery p50 %.1f ms, p99 %.1f ms, max %.1f ms; "
           "the reader used %.2f CPU s\n",
           path, n, events, done < n ? done : n - bad, bad, rd.nlat, elapsed,
           s_pct(rd.lat, rd.nlat, 0.5), s_pct(rd.lat, rd.nlat, 0.99),
           rd.nlat ? rd.lat[rd.nlat - 1] : 0, cpu);
    fflush(stdout);
    for (int i = 0; i < n; i++)
        close(st[i].fd);
    free(st);
    free(rd.lat);
    close(ep);
    int frc = bad == 0 ? s_floor(n, &capture) : 0;
    free(capture.text);
    free(capture.ends);
    free(capture.commit);
    return bad == 0 && frc == 0 ? 0 : 1;
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
                        "BROKER [PATH]\n");
    return rc;
}
