/*  kmx_bench_notify - how fast a committed change reaches subscribers, kmx beside Redis.
    "kmx latency": one writer puts one record at a time through kmx.ingest; a subscriber of
    the broker's event stream notes when each event arrives; latency is the arrival minus
    the moment the writer had its acknowledgement (negative: the event came first).
    "kmx fanout": S subscribers, a writer sustaining R events/s for T seconds; every
    subscriber must see every sequence number once, in order. "redis ...": the same with
    PUBLISH/SUBSCRIBE of a payload of the same size, and XADD/XREAD against kmx's event-log
    replay for reading back what was missed. Prints one "figure:" line per number.  */
#include "kmx_client.h"

#include <hiredis/hiredis.h>
#include <zmq.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_SUBS_MAX 256      // subscribers one run may hold
#define S_POLL_MS 200       // subscriber poll step
#define S_QUIET_MS 3000     // a fanout run ends this long after the last event arrived
#define S_BATCH_MAX 1000    // records per put in a fanout run
#define S_PAYLOAD_MAX 65536 // largest payload for the Redis side

static double s_now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int s_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

// Prints p50 and p99 of n latencies (microseconds) as "figure:" lines in ms.
static void s_report(const char *name, double *us, int n) {
    if (n <= 0) {
        printf("figure: %s p50 = nan ms\nfigure: %s p99 = nan ms\n", name, name);
        return;
    }
    qsort(us, (size_t)n, sizeof *us, s_cmp);
    printf("figure: %s p50 = %.4f ms\n", name, us[n / 2] / 1000.0);
    printf("figure: %s p99 = %.4f ms\n", name, us[(int)((n - 1) * 0.99)] / 1000.0);
}

// ---- kmx ----------------------------------------------------------------------------

// The sequence number of an UpdateEvent body without unpacking it: protobuf-c writes
// field 1 (seq, varint) first.
static uint64_t s_event_seq(const uint8_t *p, size_t n) {
    if (n < 2 || p[0] != 0x08)
        return 0;
    uint64_t v = 0;
    for (size_t i = 1, shift = 0; i < n && shift < 64; i++, shift += 7) {
        v |= (uint64_t)(p[i] & 0x7f) << shift;
        if (!(p[i] & 0x80))
            return v;
    }
    return 0;
}

typedef struct {
    void *ctx;          // shared ZeroMQ context
    const char *events; // broker XPUB endpoint
    int nsubs;          // subscribers in this thread
    uint64_t first;     // first sequence expected (0: take the first seen)
    uint64_t expect;    // events expected per subscriber
    double *arrival_us; // latency run: arrival time by seq - first (one subscriber)
    atomic_int *ready;  // subscribers connected and subscribed
    atomic_int *stop;   // set by the writer when done
    uint64_t got;       // events received, all subscribers of this thread
    uint64_t gaps;      // out-of-order or missing sequence numbers seen
    uint64_t dups;      // repeated sequence numbers seen
    double last_us;     // when the last event arrived
    uint64_t bytes;     // event body bytes received
} s_subs_t;

static void *s_subs_run(void *arg) {
    s_subs_t *t = arg;
    void *socks[S_SUBS_MAX];
    uint64_t next[S_SUBS_MAX];
    zmq_pollitem_t items[S_SUBS_MAX];
    int hwm = 1000000;
    for (int i = 0; i < t->nsubs; i++) {
        socks[i] = zmq_socket(t->ctx, ZMQ_SUB);
        zmq_setsockopt(socks[i], ZMQ_RCVHWM, &hwm, sizeof hwm);
        zmq_setsockopt(socks[i], ZMQ_SUBSCRIBE, "export.", 7);
        zmq_connect(socks[i], t->events);
        items[i] = (zmq_pollitem_t){socks[i], 0, ZMQ_POLLIN, 0};
        next[i] = t->first;
    }
    atomic_fetch_add(t->ready, t->nsubs);
    double quiet_since = s_now_us();
    while (1) {
        int rc = zmq_poll(items, t->nsubs, S_POLL_MS);
        double now = s_now_us();
        if (rc <= 0) {
            if (atomic_load(t->stop) && now - quiet_since > S_QUIET_MS * 1000.0)
                break;
            continue;
        }
        for (int i = 0; i < t->nsubs; i++) {
            if (!(items[i].revents & ZMQ_POLLIN))
                continue;
            zmq_msg_t topic, body;
            zmq_msg_init(&topic);
            zmq_msg_init(&body);
            while (zmq_msg_recv(&topic, socks[i], ZMQ_DONTWAIT) >= 0) {
                if (!zmq_msg_more(&topic) || zmq_msg_recv(&body, socks[i], 0) < 0)
                    continue;
                uint64_t seq = s_event_seq(zmq_msg_data(&body), zmq_msg_size(&body));
                double at = s_now_us();
                if (next[i] == 0)
                    next[i] = seq;
                if (seq == next[i]) {
                    next[i]++;
                    t->got++;
                } else if (seq < next[i]) {
                    t->dups++;
                } else {
                    t->gaps += seq - next[i];
                    t->got++;
                    next[i] = seq + 1;
                }
                if (t->arrival_us && seq >= t->first && seq - t->first < t->expect)
                    t->arrival_us[seq - t->first] = at;
                t->last_us = quiet_since = at;
                t->bytes += zmq_msg_size(&body);
            }
            zmq_msg_close(&topic);
            zmq_msg_close(&body);
        }
    }
    for (int i = 0; i < t->nsubs; i++)
        zmq_close(socks[i]);
    return NULL;
}

// A value part that differs between runs, so a record written again is a change (an
// event), never UNCHANGED.
static int s_nonce(void) {
    return (int)((uint64_t)s_now_us() % 9999) + 1;
}

// Fills n export records with distinct keys (market XX-free: item carries the index).
typedef struct {
    Kmx__V1__Record rec[S_BATCH_MAX];
    Kmx__V1__Period per[S_BATCH_MAX];
    Kmx__V1__Value val[S_BATCH_MAX];
    Kmx__V1__Record *ptr[S_BATCH_MAX];
    char item[S_BATCH_MAX][32];
} s_batch_t;

static void s_batch_fill(s_batch_t *b, size_t n, uint64_t base, int round) {
    for (size_t k = 0; k < n; k++) {
        kmx__v1__record__init(&b->rec[k]);
        kmx__v1__period__init(&b->per[k]);
        kmx__v1__value__init(&b->val[k]);
        b->per[k].has_start = b->per[k].has_end = 1;
        b->per[k].start = b->per[k].end = 202401 + (uint32_t)(k % 12);
        b->val[k].has_amount = 1;
        b->val[k].amount = (int64_t)(base + k) * 10000 + round;
        b->val[k].unit = "USD";
        snprintf(b->item[k], sizeof b->item[k], "notify %llu", (unsigned long long)(base + k));
        b->rec[k].has_kind = 1;
        b->rec[k].kind = KMX__V1__KIND__EXPORT;
        b->rec[k].period = &b->per[k];
        b->rec[k].market = "JP";
        b->rec[k].category = "bench_notify";
        b->rec[k].item = b->item[k];
        b->rec[k].source = "bench";
        b->rec[k].value = &b->val[k];
        b->ptr[k] = &b->rec[k];
    }
}

// Puts n records; returns the sequence of the last STORED one (0 on failure).
static uint64_t s_put(kmx_client_t *c, s_batch_t *b, size_t n) {
    Kmx__V1__Response *resp = NULL;
    uint64_t seq = 0;
    if (kmx_client_put(c, b->ptr, n, false, &resp) == 0 && resp->put) {
        for (size_t i = 0; i < resp->put->n_results; i++)
            if (resp->put->results[i]->has_seq && resp->put->results[i]->seq > seq)
                seq = resp->put->results[i]->seq;
    }
    if (resp)
        kmx__v1__response__free_unpacked(resp, NULL);
    return seq;
}

// The newest committed sequence, from a replay asking for nothing.
static uint64_t s_last_seq(kmx_client_t *c) {
    Kmx__V1__Response *resp = NULL;
    uint64_t last = 0;
    char *none[] = {"none."};
    if (kmx_client_replay(c, UINT64_MAX - 1, 1, none, 1, &resp) == 0 && resp->replay)
        last = resp->replay->last_seq;
    if (resp)
        kmx__v1__response__free_unpacked(resp, NULL);
    return last;
}

static void s_wait_ready(atomic_int *ready, int n) {
    for (int i = 0; i < 500 && atomic_load(ready) < n; i++)
        nanosleep(&(struct timespec){0, 10000000}, NULL);
    nanosleep(&(struct timespec){0, 300000000}, NULL); // subscriptions travel upstream
}

static int s_kmx_latency(const char *broker, const char *events, int n) {
    kmx_client_t *c = kmx_client_new(broker, 5000, 3);
    void *ctx = zmq_ctx_new();
    static s_batch_t b;
    uint64_t first = s_last_seq(c) + 1;
    double *ack = calloc((size_t)n, sizeof *ack), *send = calloc((size_t)n, sizeof *send);
    double *arr = calloc((size_t)n, sizeof *arr);
    atomic_int ready = 0, stop = 0;
    s_subs_t t = {ctx, events, 1, first, (uint64_t)n, arr, &ready, &stop, 0, 0, 0, 0, 0};
    pthread_t th;
    pthread_create(&th, NULL, s_subs_run, &t);
    s_wait_ready(&ready, 1);
    int ok = 0;
    for (int i = 0; i < n; i++) {
        s_batch_fill(&b, 1, (uint64_t)i, s_nonce());
        double sent_at = s_now_us();
        uint64_t seq = s_put(c, &b, 1);
        double at = s_now_us();
        if (seq >= first && seq - first < (uint64_t)n) {
            ack[seq - first] = at;
            send[seq - first] = sent_at;
            ok++;
        }
    }
    atomic_store(&stop, 1);
    pthread_join(th, NULL);
    double *lat = calloc((size_t)n, sizeof *lat), *e2e = calloc((size_t)n, sizeof *e2e);
    int m = 0, before = 0;
    for (int i = 0; i < n; i++) {
        if (ack[i] > 0 && arr[i] > 0) {
            lat[m] = arr[i] - ack[i];
            e2e[m++] = arr[i] - send[i];
            before += arr[i] < ack[i];
        }
    }
    s_report("kmx ack-to-delivery", lat, m);
    s_report("kmx send-to-delivery", e2e, m);
    printf("figure: kmx latency events delivered = %d of %d (before the ack: %d)\n", m, n, before);
    printf("figure: kmx event size = %llu bytes\n",
           (unsigned long long)(t.got ? t.bytes / t.got : 0));
    free(ack), free(send), free(arr), free(lat), free(e2e);
    kmx_client_destroy(&c);
    zmq_ctx_term(ctx);
    return m == n && ok == n ? 0 : 1;
}

static int s_kmx_fanout(const char *broker, const char *events, int subs, int rate, int secs) {
    kmx_client_t *c = kmx_client_new(broker, 10000, 3);
    void *ctx = zmq_ctx_new();
    static s_batch_t b;
    int nthreads = subs < 4 ? subs : 4;
    s_subs_t t[4];
    pthread_t th[4];
    atomic_int ready = 0, stop = 0;
    uint64_t first = s_last_seq(c) + 1;
    for (int i = 0; i < nthreads; i++) {
        int share = subs / nthreads + (i < subs % nthreads);
        t[i] = (s_subs_t){ctx, events, share, first, 0, NULL, &ready, &stop, 0, 0, 0, 0, 0};
        pthread_create(&th[i], NULL, s_subs_run, &t[i]);
    }
    s_wait_ready(&ready, subs);
    size_t per = (size_t)(rate / 100 > 0 ? rate / 100 : 1); // a put every 10 ms
    if (per > S_BATCH_MAX)
        per = S_BATCH_MAX;
    long total = (long)rate * secs, sent = 0;
    int nonce = s_nonce();
    double t0 = s_now_us();
    while (sent < total) {
        size_t n = (size_t)(total - sent) < per ? (size_t)(total - sent) : per;
        s_batch_fill(&b, n, (uint64_t)sent, nonce);
        if (s_put(c, &b, n) == 0)
            break;
        sent += (long)n;
        double due = t0 + (double)sent / rate * 1e6, now = s_now_us();
        if (due > now)
            nanosleep(&(struct timespec){0, (long)((due - now) * 1000)}, NULL);
    }
    double t1 = s_now_us();
    atomic_store(&stop, 1);
    uint64_t got = 0, gaps = 0, dups = 0;
    double last = t1;
    for (int i = 0; i < nthreads; i++) {
        pthread_join(th[i], NULL);
        got += t[i].got, gaps += t[i].gaps, dups += t[i].dups;
        if (t[i].last_us > last)
            last = t[i].last_us;
    }
    uint64_t want = (uint64_t)sent * (uint64_t)subs;
    printf("figure: kmx fanout %d subs offered = %.0f events/s\n", subs, sent / ((t1 - t0) / 1e6));
    printf("figure: kmx fanout %d subs delivered = %.0f events/s\n", subs,
           (double)got / ((last - t0) / 1e6));
    printf("figure: kmx fanout %d subs lost = %llu of %llu (gaps %llu, duplicates %llu)\n", subs,
           (unsigned long long)(want > got ? want - got : 0), (unsigned long long)want,
           (unsigned long long)gaps, (unsigned long long)dups);
    kmx_client_destroy(&c);
    zmq_ctx_term(ctx);
    return sent == total && got == want && dups == 0 ? 0 : 1;
}

// Reads n events back from the event log by pages, as `kmx watch --since` does.
static int s_kmx_replay(const char *broker, long n) {
    kmx_client_t *c = kmx_client_new(broker, 10000, 3);
    uint64_t last = s_last_seq(c), since = last > (uint64_t)n ? last - (uint64_t)n : 0;
    long got = 0;
    double t0 = s_now_us();
    while (got < n) {
        Kmx__V1__Response *resp = NULL;
        if (kmx_client_replay(c, since, 1000, NULL, 0, &resp) != 0 || !resp->replay ||
            resp->replay->n_events == 0) {
            if (resp)
                kmx__v1__response__free_unpacked(resp, NULL);
            break;
        }
        got += (long)resp->replay->n_events;
        since = resp->replay->events[resp->replay->n_events - 1]->seq;
        kmx__v1__response__free_unpacked(resp, NULL);
    }
    double t1 = s_now_us();
    printf("figure: kmx replay = %.0f events/s (%ld events)\n", got / ((t1 - t0) / 1e6), got);
    kmx_client_destroy(&c);
    return got >= n ? 0 : 1;
}

// ---- Redis ----------------------------------------------------------------------------

typedef struct {
    const char *sock;   // unix socket path
    long expect;        // messages to receive
    double *arrival_us; // by message index (latency run), or NULL
    atomic_int *ready;  // subscribed connections
    long got;           // received
    long gaps;          // missing or out-of-order indexes
    double last_us;     // last arrival
} s_rsub_t;

static void *s_rsub_run(void *arg) {
    s_rsub_t *t = arg;
    redisContext *r = redisConnectUnix(t->sock);
    redisReply *reply = redisCommand(r, "SUBSCRIBE bench");
    freeReplyObject(reply);
    atomic_fetch_add(t->ready, 1);
    struct timeval tv = {S_QUIET_MS / 1000, 0};
    redisSetTimeout(r, tv);
    long next = 0;
    while (t->got < t->expect && redisGetReply(r, (void **)&reply) == REDIS_OK) {
        double at = s_now_us();
        if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 3) {
            long idx = atol(reply->element[2]->str);
            if (idx != next)
                t->gaps++;
            next = idx + 1;
            if (t->arrival_us && idx >= 0 && idx < t->expect)
                t->arrival_us[idx] = at;
            t->got++;
            t->last_us = at;
        }
        freeReplyObject(reply);
    }
    redisFree(r);
    return NULL;
}

// A payload of size bytes that starts with the message index.
static void s_payload(char *buf, size_t size, long idx) {
    memset(buf, 'x', size);
    int n = snprintf(buf, size, "%ld ", idx);
    if (n > 0 && (size_t)n < size)
        buf[n] = ' ';
    buf[size - 1] = '\0';
}

static int s_redis_latency(const char *sock, int n, size_t size) {
    redisContext *r = redisConnectUnix(sock);
    double *ack = calloc((size_t)n, sizeof *ack), *arr = calloc((size_t)n, sizeof *arr);
    atomic_int ready = 0;
    s_rsub_t t = {sock, n, arr, &ready, 0, 0, 0};
    pthread_t th;
    pthread_create(&th, NULL, s_rsub_run, &t);
    s_wait_ready(&ready, 1);
    static char buf[S_PAYLOAD_MAX];
    for (int i = 0; i < n; i++) {
        s_payload(buf, size, i);
        redisReply *reply = redisCommand(r, "PUBLISH bench %s", buf);
        ack[i] = s_now_us();
        freeReplyObject(reply);
    }
    pthread_join(th, NULL);
    double *lat = calloc((size_t)n, sizeof *lat);
    int m = 0;
    for (int i = 0; i < n; i++)
        if (arr[i] > 0)
            lat[m++] = arr[i] - ack[i];
    s_report("redis pubsub ack-to-delivery", lat, m);
    printf("figure: redis latency messages delivered = %d of %d\n", m, n);
    free(ack), free(arr), free(lat);
    redisFree(r);
    return m == n ? 0 : 1;
}

static int s_redis_fanout(const char *sock, int subs, int rate, int secs, size_t size) {
    redisContext *r = redisConnectUnix(sock);
    long total = (long)rate * secs;
    s_rsub_t *t = calloc((size_t)subs, sizeof *t);
    pthread_t *th = calloc((size_t)subs, sizeof *th);
    atomic_int ready = 0;
    for (int i = 0; i < subs; i++) {
        t[i] = (s_rsub_t){sock, total, NULL, &ready, 0, 0, 0};
        pthread_create(&th[i], NULL, s_rsub_run, &t[i]);
    }
    s_wait_ready(&ready, subs);
    static char buf[S_PAYLOAD_MAX];
    long per = rate / 100 > 0 ? rate / 100 : 1;
    double t0 = s_now_us();
    for (long sent = 0; sent < total;) {
        for (long k = 0; k < per && sent < total; k++, sent++) {
            s_payload(buf, size, sent);
            redisAppendCommand(r, "PUBLISH bench %s", buf);
        }
        redisReply *reply;
        for (long k = 0; k < per; k++)
            if (redisGetReply(r, (void **)&reply) == REDIS_OK)
                freeReplyObject(reply);
        double due = t0 + (double)sent / rate * 1e6, now = s_now_us();
        if (due > now)
            nanosleep(&(struct timespec){0, (long)((due - now) * 1000)}, NULL);
    }
    double t1 = s_now_us(), last = t1;
    long got = 0, gaps = 0;
    for (int i = 0; i < subs; i++) {
        pthread_join(th[i], NULL);
        got += t[i].got, gaps += t[i].gaps;
        if (t[i].last_us > last)
            last = t[i].last_us;
    }
    long want = total * subs;
    printf("figure: redis fanout %d subs offered = %.0f events/s\n", subs,
           total / ((t1 - t0) / 1e6));
    printf("figure: redis fanout %d subs delivered = %.0f events/s\n", subs,
           (double)got / ((last - t0) / 1e6));
    printf("figure: redis fanout %d subs lost = %ld of %ld (gaps %ld)\n", subs,
           want > got ? want - got : 0, want, gaps);
    free(t), free(th);
    redisFree(r);
    return 0;
}

static int s_redis_streams(const char *sock, long n, size_t size) {
    redisContext *r = redisConnectUnix(sock);
    static char buf[S_PAYLOAD_MAX];
    freeReplyObject(redisCommand(r, "DEL events"));
    for (long i = 0; i < n; i += 1000) {
        long m = n - i < 1000 ? n - i : 1000;
        for (long k = 0; k < m; k++) {
            s_payload(buf, size, i + k);
            redisAppendCommand(r, "XADD events * e %s", buf);
        }
        redisReply *reply;
        for (long k = 0; k < m; k++)
            if (redisGetReply(r, (void **)&reply) == REDIS_OK)
                freeReplyObject(reply);
    }
    char last[64] = "0-0";
    long got = 0;
    double t0 = s_now_us();
    while (got < n) {
        redisReply *reply = redisCommand(r, "XREAD COUNT 1000 STREAMS events %s", last);
        if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements == 0) {
            freeReplyObject(reply);
            break;
        }
        redisReply *entries = reply->element[0]->element[1];
        got += (long)entries->elements;
        snprintf(last, sizeof last, "%s", entries->element[entries->elements - 1]->element[0]->str);
        freeReplyObject(reply);
    }
    double t1 = s_now_us();
    printf("figure: redis streams xread = %.0f events/s (%ld events)\n", got / ((t1 - t0) / 1e6),
           got);
    redisFree(r);
    return got >= n ? 0 : 1;
}

int main(int argc, char **argv) {
    const char *usage = "usage: kmx_bench_notify kmx-latency BROKER EVENTS N\n"
                        "       kmx_bench_notify kmx-fanout BROKER EVENTS SUBS RATE SECONDS\n"
                        "       kmx_bench_notify kmx-replay BROKER N\n"
                        "       kmx_bench_notify redis-latency SOCKET N BYTES\n"
                        "       kmx_bench_notify redis-fanout SOCKET SUBS RATE SECONDS BYTES\n"
                        "       kmx_bench_notify redis-streams SOCKET N BYTES\n";
    if (argc < 3) {
        fputs(usage, stderr);
        return 2;
    }
    const char *mode = argv[1];
    if (strcmp(mode, "kmx-latency") == 0 && argc == 5)
        return s_kmx_latency(argv[2], argv[3], atoi(argv[4]));
    if (strcmp(mode, "kmx-fanout") == 0 && argc == 7) {
        int subs = atoi(argv[4]);
        if (subs < 1 || subs > S_SUBS_MAX)
            return fprintf(stderr, "bench: 1..%d subscribers\n", S_SUBS_MAX), 2;
        return s_kmx_fanout(argv[2], argv[3], subs, atoi(argv[5]), atoi(argv[6]));
    }
    if (strcmp(mode, "kmx-replay") == 0 && argc == 4)
        return s_kmx_replay(argv[2], atol(argv[3]));
    size_t bytes = argc > 4 ? (size_t)atol(argv[argc - 1]) : 0;
    if (bytes < 16 || bytes > S_PAYLOAD_MAX) {
        fputs(usage, stderr);
        return 2;
    }
    if (strcmp(mode, "redis-latency") == 0 && argc == 5)
        return s_redis_latency(argv[2], atoi(argv[3]), bytes);
    if (strcmp(mode, "redis-fanout") == 0 && argc == 7)
        return s_redis_fanout(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), bytes);
    if (strcmp(mode, "redis-streams") == 0 && argc == 5)
        return s_redis_streams(argv[2], atol(argv[3]), bytes);
    fputs(usage, stderr);
    return 2;
}
