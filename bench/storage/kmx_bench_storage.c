/*  kmx_bench_storage - durable ingest throughput of kmx-storage measured straight over its
    ROUTER (no broker, no ingest), with 1, 4 and 16 concurrent writers sending batches of
    1 and 1000 records, next to the raw in-process LMDB rate (kmx_store_put_batch) for the
    same records and sync setting. Prints the ratios against the targets of issue 3.  */
#include "kmx_err.h"
#include "kmx_log.h"
#include "kmx_msg.h"
#include "kmx_storage.h"
#include "kmx_store.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define S_WRITERS_MAX 16

static const char *const s_markets[] = {"JP", "US", "CN", "TW", "TH", "VN", "WORLD"};

typedef struct {
    int batch1_records;    // records per batch-1 configuration
    int batch1000_records; // records per batch-1000 configuration
    kmx_store_sync_t sync; // durability for both paths
    const char *sync_name; // its name, for the report
    uint64_t wait_us;      // storage's batch wait
    const char *tmp;       // parent of the temporary stores
} s_opts_t;

// One writer's pre-built records and the requests packed from them.
typedef struct {
    Kmx__V1__Record *recs;    // n records
    Kmx__V1__Period *periods; // their periods
    Kmx__V1__Value *values;   // their values
    char (*items)[48];        // their item texts
    int n;                    // records
    uint8_t **reqs;           // packed put requests
    size_t *lens;             // their sizes
    int n_reqs;               // requests
    const char *endpoint;     // storage's ROUTER
    void *ctx;                // shared context
    int failed;               // nonzero when a reply was missing or an error
} s_writer_t;

static double s_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void s_build_records(s_writer_t *w, int writer, int n) {
    w->n = n;
    w->recs = calloc((size_t)n, sizeof *w->recs);
    w->periods = calloc((size_t)n, sizeof *w->periods);
    w->values = calloc((size_t)n, sizeof *w->values);
    w->items = calloc((size_t)n, sizeof *w->items);
    if (!w->recs || !w->periods || !w->values || !w->items) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (int i = 0; i < n; i++) {
        Kmx__V1__Record rec = KMX__V1__RECORD__INIT;
        Kmx__V1__Period period = KMX__V1__PERIOD__INIT;
        Kmx__V1__Value value = KMX__V1__VALUE__INIT;
        period.has_start = period.has_end = 1;
        period.start = period.end = (uint32_t)(2020 + i % 5) * 100 + (uint32_t)(1 + i % 12);
        value.has_amount = 1;
        value.amount = 10000 + i;
        value.unit = "USD";
        snprintf(w->items[i], sizeof w->items[i], "bench writer %d record %d", writer, i);
        rec.has_kind = 1;
        rec.kind = KMX__V1__KIND__EXPORT;
        rec.market = (char *)s_markets[i % (int)(sizeof s_markets / sizeof s_markets[0])];
        rec.category = "physical_album_customs";
        rec.item = w->items[i];
        rec.source = "kmx storage benchmark";
        w->periods[i] = period;
        w->values[i] = value;
        w->recs[i] = rec;
        w->recs[i].period = &w->periods[i];
        w->recs[i].value = &w->values[i];
    }
}

static void s_pack_requests(s_writer_t *w, int batch) {
    w->n_reqs = (w->n + batch - 1) / batch;
    w->reqs = calloc((size_t)w->n_reqs, sizeof *w->reqs);
    w->lens = calloc((size_t)w->n_reqs, sizeof *w->lens);
    Kmx__V1__Record **ptrs = calloc((size_t)batch, sizeof *ptrs);
    if (!w->reqs || !w->lens || !ptrs) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (int r = 0; r < w->n_reqs; r++) {
        int first = r * batch, n = w->n - first < batch ? w->n - first : batch;
        for (int i = 0; i < n; i++)
            ptrs[i] = &w->recs[first + i];
        Kmx__V1__PutRequest put = KMX__V1__PUT_REQUEST__INIT;
        Kmx__V1__Request req = KMX__V1__REQUEST__INIT;
        put.n_records = (size_t)n;
        put.records = ptrs;
        req.body_case = KMX__V1__REQUEST__BODY_PUT;
        req.put = &put;
        if (kmx_msg_pack_request(&req, &w->reqs[r], &w->lens[r]) != 0) {
            fprintf(stderr, "pack failed\n");
            exit(1);
        }
    }
    free(ptrs);
}

static void s_writer_free(s_writer_t *w) {
    for (int r = 0; r < w->n_reqs; r++)
        free(w->reqs[r]);
    free(w->reqs);
    free(w->lens);
    free(w->recs);
    free(w->periods);
    free(w->values);
    free(w->items);
    memset(w, 0, sizeof *w);
}

// Checks one reply: every record of the put must be STORED.
static int s_reply_ok(const uint8_t *data, size_t len) {
    Kmx__V1__Response *resp = kmx_msg_response_unpack(data, len);
    int ok = resp && resp->result_case == KMX__V1__RESPONSE__RESULT_PUT && resp->put->rejected == 0;
    if (resp)
        kmx__v1__response__free_unpacked(resp, NULL);
    return ok;
}

// Sends each request and waits for its durable acknowledgement before the next.
static void *s_writer_run(void *arg) {
    s_writer_t *w = arg;
    void *dealer = zmq_socket(w->ctx, ZMQ_DEALER);
    int timeout = 60000, linger = 0;
    zmq_setsockopt(dealer, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt(dealer, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_connect(dealer, w->endpoint) != 0) {
        w->failed = 1;
        zmq_close(dealer);
        return NULL;
    }
    for (int r = 0; r < w->n_reqs && !w->failed; r++) {
        uint8_t corr[8] = {
            0, 0, 0, 0, (uint8_t)(r >> 24), (uint8_t)(r >> 16), (uint8_t)(r >> 8), (uint8_t)r};
        uint8_t got[8];
        zmq_msg_t body;
        if (zmq_send(dealer, corr, sizeof corr, ZMQ_SNDMORE) < 0 ||
            zmq_send(dealer, w->reqs[r], w->lens[r], 0) < 0 ||
            zmq_recv(dealer, got, sizeof got, 0) != 8) {
            w->failed = 1;
            break;
        }
        zmq_msg_init(&body);
        if (zmq_msg_recv(&body, dealer, 0) < 0 || memcmp(got, corr, 8) != 0 ||
            !s_reply_ok(zmq_msg_data(&body), zmq_msg_size(&body)))
            w->failed = 1;
        zmq_msg_close(&body);
    }
    zmq_close(dealer);
    return NULL;
}

static void *s_storage_run(void *arg) {
    kmx_storage_run(arg, NULL);
    return NULL;
}

// Makes a fresh store directory under opts->tmp.
static void s_fresh_dir(const s_opts_t *o, char *dir, size_t size) {
    snprintf(dir, size, "%s/kmx-bench-XXXXXX", o->tmp);
    if (!mkdtemp(dir)) {
        fprintf(stderr, "mkdtemp %s: %s\n", dir, strerror(errno));
        exit(1);
    }
}

static void s_remove_dir(const char *dir) {
    char path[512];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/lock.mdb", dir);
    unlink(path);
    rmdir(dir);
}

// Service rate in records per second with `writers` concurrent writers.
static double s_service_rate(const s_opts_t *o, int writers, int batch, int total) {
    char dir[256];
    s_fresh_dir(o, dir, sizeof dir);
    void *ctx = zmq_ctx_new();
    kmx_storage_config_t cfg = {
        "tcp://127.0.0.1:*", "tcp://127.0.0.1:1", dir, 0, 0, o->sync, 0, o->wait_us, 0, 0, 0, 0};
    kmx_storage_t *storage = NULL;
    char ep[256];
    if (kmx_storage_new(ctx, &cfg, &storage) != 0 ||
        kmx_storage_endpoint(storage, ep, sizeof ep) != 0) {
        fprintf(stderr, "cannot start storage\n");
        exit(1);
    }
    pthread_t st, wt[S_WRITERS_MAX];
    s_writer_t w[S_WRITERS_MAX];
    memset(w, 0, sizeof w);
    for (int i = 0; i < writers; i++) {
        s_build_records(&w[i], i, total / writers);
        s_pack_requests(&w[i], batch);
        w[i].endpoint = ep;
        w[i].ctx = ctx;
    }
    pthread_create(&st, NULL, s_storage_run, storage);
    double t0 = s_now();
    for (int i = 0; i < writers; i++)
        pthread_create(&wt[i], NULL, s_writer_run, &w[i]);
    int failed = 0, done = 0;
    for (int i = 0; i < writers; i++) {
        pthread_join(wt[i], NULL);
        failed |= w[i].failed;
        done += w[i].n;
    }
    double elapsed = s_now() - t0;
    zmq_ctx_shutdown(ctx);
    pthread_join(st, NULL);
    kmx_storage_destroy(&storage);
    zmq_ctx_term(ctx);
    for (int i = 0; i < writers; i++)
        s_writer_free(&w[i]);
    s_remove_dir(dir);
    if (failed) {
        fprintf(stderr, "a writer failed (writers=%d batch=%d)\n", writers, batch);
        exit(1);
    }
    return done / elapsed;
}

// Raw rate: the same records put straight into kmx_store, `batch` records per transaction.
static double s_raw_rate(const s_opts_t *o, int batch, int total) {
    char dir[256];
    s_fresh_dir(o, dir, sizeof dir);
    kmx_store_config_t cfg = {.sync = o->sync};
    kmx_store_t *store = NULL;
    if (kmx_store_open(dir, &cfg, &store) != 0) {
        fprintf(stderr, "cannot open store\n");
        exit(1);
    }
    s_writer_t w;
    memset(&w, 0, sizeof w);
    s_build_records(&w, 0, total);
    Kmx__V1__Record **ptrs = calloc((size_t)batch, sizeof *ptrs);
    kmx_put_outcome_t *out = calloc((size_t)batch, sizeof *out);
    double t0 = s_now();
    for (int first = 0; first < total; first += batch) {
        int n = total - first < batch ? total - first : batch;
        for (int i = 0; i < n; i++)
            ptrs[i] = &w.recs[first + i];
        if (kmx_store_put_batch(store, ptrs, (size_t)n, out, NULL) != 0) {
            fprintf(stderr, "raw put failed\n");
            exit(1);
        }
    }
    double elapsed = s_now() - t0;
    free(ptrs);
    free(out);
    s_writer_free(&w);
    kmx_store_close(&store);
    s_remove_dir(dir);
    return total / elapsed;
}

static void s_parse(int argc, char **argv, s_opts_t *o) {
    o->batch1_records = 3200;
    o->batch1000_records = 160000;
    o->sync = KMX_STORE_SYNC_FULL;
    o->sync_name = "full";
    o->wait_us = KMX_STORAGE_BATCH_WAIT_US;
    o->tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--batch1-records") == 0)
            o->batch1_records = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--batch1000-records") == 0)
            o->batch1000_records = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--sync") == 0 && kmx_store_sync_parse(argv[i + 1], &o->sync) == 0)
            o->sync_name = argv[i + 1];
        else if (strcmp(argv[i], "--batch-wait-us") == 0)
            o->wait_us = (uint64_t)strtoull(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--dir") == 0)
            o->tmp = argv[i + 1];
        else {
            fprintf(stderr, "usage: kmx_bench_storage [--batch1-records N] [--batch1000-records N]"
                            " [--sync full|nometasync|none] [--batch-wait-us N] [--dir DIR]\n");
            exit(2);
        }
    }
    if (o->batch1_records < 16 || o->batch1000_records < 16000) {
        fprintf(stderr, "need at least 16 batch-1 records and 16000 batch-1000 records\n");
        exit(2);
    }
}

int main(int argc, char **argv) {
    s_opts_t o;
    s_parse(argc, argv, &o);
    kmx_log_init("kmx-bench");
    kmx_log_set_level("error");
    static const int writers[] = {1, 4, 16};
    static const int batches[] = {1, 1000};
    double rate[2][3], raw[2];
    printf("kmx-storage durable ingest, sync=%s batch_wait_us=%llu dir=%s\n", o.sync_name,
           (unsigned long long)o.wait_us, o.tmp);
    printf("%-8s %-6s %10s %14s %14s %8s\n", "writers", "batch", "records", "service rec/s",
           "raw rec/s", "ratio");
    for (int b = 0; b < 2; b++) {
        int total = batches[b] == 1 ? o.batch1_records : o.batch1000_records;
        raw[b] = s_raw_rate(&o, batches[b], total);
        for (int w = 0; w < 3; w++) {
            rate[b][w] = s_service_rate(&o, writers[w], batches[b], total);
            printf("%-8d %-6d %10d %14.0f %14.0f %7.0f%%\n", writers[w], batches[b], total,
                   rate[b][w], raw[b], 100.0 * rate[b][w] / raw[b]);
            fflush(stdout);
        }
    }
    double worst1000 = rate[1][0];
    for (int w = 1; w < 3; w++)
        worst1000 = rate[1][w] < worst1000 ? rate[1][w] : worst1000;
    double gc = rate[0][2] / rate[0][0];
    printf("\ntarget: batch 1000 >= 50%% of raw        measured: %.0f%% (worst of 1/4/16 writers) "
           "%s\n",
           100.0 * worst1000 / raw[1], worst1000 >= 0.5 * raw[1] ? "MET" : "NOT MET");
    printf("target: 16 single-record writers >= 5x one   measured: %.1fx %s\n", gc,
           gc >= 5.0 ? "MET" : "NOT MET");
    return 0;
}
