/*  kmx_testkit - shared unit-test fixtures.  */
#define _XOPEN_SOURCE 700 // nftw, to remove test directories
#include "kmx_testkit.h"
#include "kmx_err.h"
#include "kmx_storage.h"

#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

struct kmx_testkit_storage {
    char dir[KMX_TESTKIT_DIR_MAX];     // LMDB directory from mkdtemp
    char ep[KMX_TESTKIT_ENDPOINT_MAX]; // the ROUTER's endpoint
    void *ctx;                         // ZeroMQ context shared with the storage thread
    kmx_storage_t *storage;            // the real storage service
    pthread_t thread;                  // runs kmx_storage_run
    int running;                       // thread was started
};

int kmx_testkit_dir_make(const char *name, char *dir, size_t size) {
    int n = snprintf(dir, size, "/tmp/%s-XXXXXX", name);
    int rc = n < 0 || (size_t)n >= size ? KMX_ERR_OVERFLOW : 0;
    if (rc == 0 && !mkdtemp(dir))
        rc = KMX_ERR_IO;
    if (rc != 0 && size > 0)
        dir[0] = '\0'; // nothing made, so nothing for kmx_testkit_dir_remove to remove
    return rc;
}

static int s_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void kmx_testkit_dir_remove(const char *dir) {
    if (dir && dir[0])
        nftw(dir, s_rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static void *s_run(void *arg) {
    kmx_storage_run(arg, NULL);
    return NULL;
}

int kmx_testkit_storage_open(const char *name, kmx_testkit_storage_t **out) {
    kmx_testkit_storage_t *self = calloc(1, sizeof *self);
    if (!self)
        return KMX_ERR_NOMEM;
    *out = self;
    int rc = kmx_testkit_dir_make(name, self->dir, sizeof self->dir);
    self->ctx = rc == 0 ? zmq_ctx_new() : NULL;
    if (rc == 0 && !self->ctx)
        rc = KMX_ERR_NOMEM;
    char publish[128];
    snprintf(publish, sizeof publish, "inproc://%s-events", name);
    // Nothing listens for events here; the PUB just drops them.
    kmx_storage_config_t cfg = {.bind = "tcp://127.0.0.1:*",
                                .publish = publish,
                                .data_dir = self->dir,
                                .heartbeat_ms = 100};
    if (rc == 0)
        rc = kmx_storage_new(self->ctx, &cfg, &self->storage);
    if (rc == 0)
        rc = kmx_storage_endpoint(self->storage, self->ep, sizeof self->ep);
    if (rc == 0 && pthread_create(&self->thread, NULL, s_run, self->storage) != 0)
        rc = KMX_ERR_NOMEM;
    self->running = rc == 0;
    if (rc != 0)
        kmx_testkit_storage_close(out);
    return rc;
}

void kmx_testkit_storage_close(kmx_testkit_storage_t **self_p) {
    if (!self_p || !*self_p)
        return;
    kmx_testkit_storage_t *self = *self_p;
    if (self->ctx)
        zmq_ctx_shutdown(self->ctx); // wakes the storage loop with ETERM
    if (self->running)
        pthread_join(self->thread, NULL);
    kmx_storage_destroy(&self->storage);
    if (self->ctx)
        zmq_ctx_term(self->ctx);
    kmx_testkit_dir_remove(self->dir);
    free(self);
    *self_p = NULL;
}

void *kmx_testkit_storage_ctx(const kmx_testkit_storage_t *self) {
    return self->ctx;
}

const char *kmx_testkit_storage_endpoint(const kmx_testkit_storage_t *self) {
    return self->ep;
}

const char *kmx_testkit_storage_dir(const kmx_testkit_storage_t *self) {
    return self->dir;
}

void *kmx_testkit_hung_open(void *ctx, char *ep, size_t size) {
    void *hung = zmq_socket(ctx, ZMQ_ROUTER);
    if (!hung)
        return NULL;
    int linger = 0;
    size_t len = size;
    if (zmq_setsockopt(hung, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_bind(hung, "tcp://127.0.0.1:*") != 0 ||
        zmq_getsockopt(hung, ZMQ_LAST_ENDPOINT, ep, &len) != 0) {
        zmq_close(hung);
        return NULL;
    }
    return hung;
}

// Guards every registry: a test's helper threads open and close sockets of their own.
static pthread_mutex_t s_socks_lock = PTHREAD_MUTEX_INITIALIZER;

void *kmx_testkit_socket(kmx_testkit_socks_t *reg, void *ctx, int type) {
    void *sock = zmq_socket(ctx, type);
    if (!sock)
        return NULL;
    int linger = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    pthread_mutex_lock(&s_socks_lock);
    size_t slot = 0;
    while (slot < KMX_TESTKIT_SOCKS_MAX && reg->socks[slot])
        slot++;
    if (slot < KMX_TESTKIT_SOCKS_MAX)
        reg->socks[slot] = sock;
    pthread_mutex_unlock(&s_socks_lock);
    if (slot == KMX_TESTKIT_SOCKS_MAX) {
        zmq_close(sock);
        return NULL;
    }
    return sock;
}

void kmx_testkit_socket_close(kmx_testkit_socks_t *reg, void *sock) {
    if (!sock)
        return;
    pthread_mutex_lock(&s_socks_lock);
    for (size_t i = 0; i < KMX_TESTKIT_SOCKS_MAX; i++)
        if (reg->socks[i] == sock)
            reg->socks[i] = NULL;
    pthread_mutex_unlock(&s_socks_lock);
    zmq_close(sock);
}

void kmx_testkit_socks_close_all(kmx_testkit_socks_t *reg) {
    pthread_mutex_lock(&s_socks_lock);
    for (size_t i = 0; i < KMX_TESTKIT_SOCKS_MAX; i++)
        if (reg->socks[i]) {
            zmq_close(reg->socks[i]);
            reg->socks[i] = NULL;
        }
    pthread_mutex_unlock(&s_socks_lock);
}

size_t kmx_testkit_mutate(uint8_t *body, const uint8_t *good, size_t size, int round,
                          unsigned *seed) {
    memcpy(body, good, size);
    for (int flips = 1 + rand_r(seed) % 4; flips > 0; flips--)
        body[rand_r(seed) % size] = (uint8_t)rand_r(seed);
    return round % 3 == 0 ? (size_t)rand_r(seed) % size : size;
}

void kmx_testkit_rec_init(kmx_testkit_rec_t *r, const char *market, uint32_t start, uint32_t end,
                          int64_t amount, const char *unit) {
    kmx__v1__record__init(&r->rec);
    kmx__v1__period__init(&r->period);
    kmx__v1__value__init(&r->value);
    r->period.has_start = r->period.has_end = 1;
    r->period.start = start;
    r->period.end = end;
    r->value.has_amount = 1;
    r->value.amount = amount;
    r->value.unit = (char *)unit;
    r->rec.has_kind = 1;
    r->rec.kind = KMX__V1__KIND__EXPORT;
    r->rec.period = &r->period;
    r->rec.market = (char *)market;
    r->rec.category = "album";
    snprintf(r->item, sizeof r->item, "album exports");
    r->rec.item = r->item;
    r->rec.source = "kmx test";
    r->rec.value = &r->value;
}
