/*  kmx_bench_qps - read throughput through the broker with C concurrent clients: each
    client thread asks a group-by of one year's export records by market (the question
    bench/query times) in a loop for S seconds; prints answered queries per second. Run
    by bench/scale/run.sh with 1, 2 and 4 kmx-query workers behind the broker.  */
#include "kmx_client.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_CLIENTS_MAX 64 // client threads one run may start

typedef struct {
    const char *broker; // broker endpoint
    double until;       // monotonic seconds at which to stop
    long done;          // queries answered with a result
    long failed;        // queries answered with an error or not at all
    int year;           // first year asked; each query moves on one year
} s_client_t;

static double s_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *s_run(void *arg) {
    s_client_t *c = arg;
    kmx_client_t *client = kmx_client_new(c->broker, 10000, 1);
    Kmx__V1__QueryRequest q = KMX__V1__QUERY_REQUEST__INIT;
    Kmx__V1__Filter f = KMX__V1__FILTER__INIT;
    Kmx__V1__Period p = KMX__V1__PERIOD__INIT;
    Kmx__V1__GroupField by = KMX__V1__GROUP_FIELD__BY_MARKET;
    char *cats[] = {"physical_album"};
    f.has_kind = 1;
    f.kind = KMX__V1__KIND__EXPORT;
    f.period = &p;
    f.categories = cats;
    f.n_categories = 1;
    p.has_start = p.has_end = 1;
    q.filter = &f;
    q.group_by = &by;
    q.n_group_by = 1;
    for (int i = 0; client && s_now() < c->until; i++) {
        int year = 2017 + (c->year + i) % 9;
        p.start = (uint32_t)(year * 100 + 1);
        p.end = (uint32_t)(year * 100 + 12);
        Kmx__V1__Response *resp = NULL;
        if (kmx_client_query(client, &q, &resp) == 0)
            c->done++;
        else
            c->failed++;
        if (resp)
            kmx__v1__response__free_unpacked(resp, NULL);
    }
    kmx_client_destroy(&client);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: kmx_bench_qps BROKER CLIENTS SECONDS\n");
        return 2;
    }
    int n = atoi(argv[2]);
    double secs = atof(argv[3]);
    if (n < 1 || n > S_CLIENTS_MAX || secs <= 0) {
        fprintf(stderr, "bench: 1..%d clients and a positive duration\n", S_CLIENTS_MAX);
        return 2;
    }
    s_client_t c[S_CLIENTS_MAX];
    pthread_t th[S_CLIENTS_MAX];
    double t0 = s_now();
    for (int i = 0; i < n; i++) {
        c[i] = (s_client_t){argv[1], t0 + secs, 0, 0, i};
        pthread_create(&th[i], NULL, s_run, &c[i]);
    }
    long done = 0, failed = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        done += c[i].done;
        failed += c[i].failed;
    }
    double t1 = s_now();
    printf("figure: group-by queries/s with %d clients = %.0f (failed %ld)\n", n,
           (double)done / (t1 - t0), failed);
    return failed == 0 && done > 0 ? 0 : 1;
}
