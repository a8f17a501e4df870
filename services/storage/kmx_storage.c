/*  kmx_storage - kmx-storage's router thread and the service's life cycle. The router
    owns the ROUTER the workers talk to and sorts each request by its body: puts and
    deletes go to the one writer thread (kmx_storage_write.c) over an inproc PAIR; a
    point get or a ping it answers itself from a read transaction; every other read goes
    to the next free reader thread (kmx_storage_read.c) over inproc, or waits in a queue
    in arrival order until one is free. Replies from both come back through the router,
    which alone touches the ROUTER socket. So a read never waits for a commit, and a
    commit never waits for a read.  */
#include "kmx_storage_int.h"

#include "kmx_err.h"
#include "kmx_log.h"
#include "kmx_msg.h"
#include "kmx_store.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define S_FRAMES_MAX 5       // frames one held message may keep (a reader's reply has 4)
#define S_DRAIN_MAX 64       // frontend messages taken per turn, so replies are not starved
#define S_POLL_MS 100        // the router's longest sleep (it checks the stop flag between)
#define S_STOP_WAIT_MS 5000  // longest wait for the readers to finish when stopping
#define S_CLOSE_GRACE_MS 200 // pause between the last replies and closing the sockets

// One message as the router holds it: its first frames, still ZeroMQ's.
typedef struct {
    zmq_msg_t f[S_FRAMES_MAX]; // frames; an empty last one when more arrived than were kept
    size_t n;                  // frames held
} s_msg_t;

// Reads waiting for a free reader, oldest first (a ring).
struct kmx_storage_queue {
    s_msg_t items[KMX_STORAGE_READ_QUEUE_MAX]; // the ring
    size_t head;                               // index of the oldest
    size_t n;                                  // reads waiting
};

// ---- shared helpers --------------------------------------------------------------

void kmx_storage_debug_write_delay(kmx_storage_t *self) {
    for (unsigned slept = 0; slept < self->write_delay_ms && !atomic_load(&self->stopping);
         slept += 10) {
        struct timespec ts = {0, 10 * 1000000L};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
    }
}

uint64_t kmx_storage_clock_ms(void) {
    return kmx_storage_clock_us() / 1000u;
}

uint64_t kmx_storage_clock_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t kmx_storage_wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

const char *kmx_storage_request_id(const kmx_storage_req_t *m) {
    return m->req ? m->req->request_id : NULL;
}

int kmx_storage_error(kmx_storage_t *self, const kmx_storage_req_t *m, int err, const char *msg,
                      uint8_t **out, size_t *len) {
    self->count.errors++;
    return kmx_msg_pack_error(kmx_storage_request_id(m), err, msg, out, len);
}

int kmx_storage_bad_request(kmx_storage_t *self, const kmx_storage_req_t *m, uint8_t **out,
                            size_t *len, int *handled) {
    *handled = 1;
    if (m->bad_frames)
        return kmx_storage_error(self, m, KMX_ERR_INVAL, "expected [correlation id][request]", out,
                                 len);
    if (!m->req)
        return kmx_storage_error(self, m, KMX_ERR_DECODE, "request does not decode", out, len);
    *handled = 0;
    return 0;
}

void kmx_storage_req_clear(kmx_storage_req_t *m) {
    if (m->req)
        kmx__v1__request__free_unpacked(m->req, NULL);
    m->req = NULL;
}

// Fills m from one frame of a message (index i); the body is decoded.
static void s_take_frame(kmx_storage_req_t *m, size_t i, const void *data, size_t size) {
    if (i == 0 && size <= sizeof m->rid) {
        memcpy(m->rid, data, size);
        m->rid_len = size;
    } else if (i == 1 && size == sizeof m->corr) {
        memcpy(m->corr, data, size);
        m->has_corr = 1;
    } else if (i == 2 && m->has_corr) {
        m->req = kmx_msg_request_unpack(data, size);
    }
}

int kmx_storage_recv(void *sock, int flags, kmx_storage_req_t *m, int *terminated) {
    memset(m, 0, sizeof *m);
    size_t frames = 0, first_size = 0;
    int more = 1;
    while (more) {
        zmq_msg_t part;
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, sock, frames == 0 ? flags : 0) < 0) {
            int e = errno;
            zmq_msg_close(&part);
            if (frames == 0 && (e == EAGAIN || e == EINTR))
                return 0;
            *terminated = e == ETERM;
            if (!*terminated)
                kmx_log_error("receive failed: %s", zmq_strerror(e));
            kmx_storage_req_clear(m);
            return KMX_ERR_IO;
        }
        if (frames == 0)
            first_size = zmq_msg_size(&part);
        s_take_frame(m, frames, zmq_msg_data(&part), zmq_msg_size(&part));
        more = zmq_msg_more(&part);
        zmq_msg_close(&part);
        frames++;
    }
    if (frames == 1 && first_size == 0)
        return 2; // the router's stop
    m->bad_frames = frames != 3 || !m->has_corr;
    return 1;
}

int kmx_storage_send(void *sock, const kmx_storage_req_t *m, const uint8_t *body, size_t len) {
    if (zmq_send(sock, m->rid, m->rid_len, ZMQ_SNDMORE) < 0 ||
        zmq_send(sock, m->corr, sizeof m->corr, ZMQ_SNDMORE) < 0 ||
        zmq_send(sock, body, len, 0) < 0) {
        if (errno != ETERM) // the context ends: every thread is stopping
            kmx_log_warn("reply not sent: %s", zmq_strerror(errno));
        return KMX_ERR_IO;
    }
    return 0;
}

// ---- messages held by the router ---------------------------------------------------

static void s_msg_close(s_msg_t *msg) {
    for (size_t i = 0; i < msg->n; i++)
        zmq_msg_close(&msg->f[i]);
    msg->n = 0;
}

// Moves every frame of src into dst (dst's own frames must be released already).
static void s_msg_move(s_msg_t *dst, s_msg_t *src) {
    for (size_t i = 0; i < src->n; i++) {
        zmq_msg_init(&dst->f[i]);
        zmq_msg_move(&dst->f[i], &src->f[i]);
        zmq_msg_close(&src->f[i]);
    }
    dst->n = src->n;
    src->n = 0;
}

// Receives one whole message, keeping its first keep frames (and an empty one after
// them when there were more, so whoever answers sees the layout was wrong). Returns 1, 0
// when none waits (flags ZMQ_DONTWAIT), KMX_ERR_IO on failure (self->terminated on ETERM).
static int s_msg_recv(kmx_storage_t *self, void *sock, int flags, size_t keep, s_msg_t *msg) {
    msg->n = 0;
    int more = 1, extra = 0;
    while (more) {
        zmq_msg_t part;
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, sock, msg->n == 0 && !extra ? flags : 0) < 0) {
            int e = errno;
            zmq_msg_close(&part);
            s_msg_close(msg);
            if (e == EAGAIN || e == EINTR)
                return 0;
            self->terminated = e == ETERM;
            if (!self->terminated)
                kmx_log_error("router receive failed: %s", zmq_strerror(e));
            return KMX_ERR_IO;
        }
        more = zmq_msg_more(&part);
        if (msg->n < keep) {
            zmq_msg_init(&msg->f[msg->n]);
            zmq_msg_move(&msg->f[msg->n++], &part);
        } else if (!extra) {
            extra = 1;
            zmq_msg_init(&msg->f[msg->n++]); // the "too many frames" marker
        }
        zmq_msg_close(&part);
    }
    return 1;
}

// Sends msg's frames (after prefix, a routing id, when plen > 0) and releases them.
// Returns 0; 1 when the first frame could not be sent (flags ZMQ_DONTWAIT and no room):
// then nothing was sent and msg is intact; KMX_ERR_IO when sending failed midway.
static int s_msg_send(void *sock, const void *prefix, size_t plen, s_msg_t *msg, int flags) {
    if (plen > 0 && zmq_send(sock, prefix, plen, ZMQ_SNDMORE | flags) < 0)
        return 1;
    for (size_t i = 0; i < msg->n; i++) {
        int more = i + 1 < msg->n ? ZMQ_SNDMORE : 0;
        if (zmq_msg_send(&msg->f[i], sock, more | (i == 0 && plen == 0 ? flags : 0)) < 0) {
            if (i == 0 && plen == 0)
                return 1;
            kmx_log_warn("message not passed on: %s", zmq_strerror(errno));
            s_msg_close(msg);
            return KMX_ERR_IO;
        }
        zmq_msg_init(&msg->f[i]); // sent: ZeroMQ owns the content now
    }
    s_msg_close(msg);
    return 0;
}

// Fills m from a held message, decoding its body (the frames stay in msg).
static void s_msg_req(const s_msg_t *msg, kmx_storage_req_t *m) {
    memset(m, 0, sizeof *m);
    for (size_t i = 0; i < msg->n; i++)
        s_take_frame(m, i, zmq_msg_data((zmq_msg_t *)&msg->f[i]),
                     zmq_msg_size((zmq_msg_t *)&msg->f[i]));
    m->bad_frames = msg->n != 3 || !m->has_corr;
}

// The body case of a held message, 0 when its layout is wrong or it does not parse.
static int s_msg_body_case(s_msg_t *msg) {
    if (msg->n != 3 || zmq_msg_size(&msg->f[1]) != 8)
        return 0;
    return kmx_msg_oneof_case(zmq_msg_data(&msg->f[2]), zmq_msg_size(&msg->f[2]),
                              KMX__V1__REQUEST__BODY_PING, NULL);
}

// ---- the router --------------------------------------------------------------------

// Answers a request the router cannot pass on: a queue is full.
static void s_refuse(kmx_storage_t *self, s_msg_t *msg, const char *what) {
    kmx_storage_req_t m;
    s_msg_req(msg, &m);
    s_msg_close(msg);
    self->count.refused++;
    if (!m.has_corr) {
        kmx_storage_req_clear(&m);
        return;
    }
    char text[128];
    snprintf(text, sizeof text, "kmx-storage's %s queue is full; retry", what);
    uint8_t *body = NULL;
    size_t len = 0;
    self->count.requests++;
    if (kmx_storage_error(self, &m, KMX_ERR_UNAVAILABLE, text, &body, &len) == 0)
        kmx_storage_send(self->router, &m, body, len);
    free(body);
    kmx_storage_req_clear(&m);
}

// Answers a quick read here, on the router thread.
static void s_answer_here(kmx_storage_t *self, s_msg_t *msg) {
    kmx_storage_req_t m;
    s_msg_req(msg, &m);
    s_msg_close(msg);
    uint8_t *body = NULL;
    size_t len = 0;
    if (m.has_corr) {
        self->count.requests++;
        if (kmx_storage_read_answer(self, &m, &body, &len) == 0)
            kmx_storage_send(self->router, &m, body, len);
        else
            kmx_log_error("could not build a reply type=%s",
                          m.req ? kmx_msg_body_name(m.req) : "none");
    }
    free(body);
    kmx_storage_req_clear(&m);
}

static kmx_storage_reader_t *s_idle_reader(kmx_storage_t *self) {
    for (size_t i = 0; i < self->n_readers; i++) {
        if (self->readers[i].idle)
            return &self->readers[i];
    }
    return NULL;
}

// Hands msg to a free reader, or queues it until one is free.
static void s_to_reader(kmx_storage_t *self, s_msg_t *msg) {
    kmx_storage_reader_t *rd = s_idle_reader(self);
    if (rd) {
        rd->idle = 0;
        s_msg_send(self->to_readers, rd->id, rd->id_len, msg, 0);
        return;
    }
    kmx_storage_queue_t *q = self->wait;
    if (q->n == KMX_STORAGE_READ_QUEUE_MAX) {
        s_refuse(self, msg, "read");
        return;
    }
    s_msg_move(&q->items[(q->head + q->n++) % KMX_STORAGE_READ_QUEUE_MAX], msg);
    self->count.reads_queued++;
}

// Sorts one request from a worker to the writer, to this thread or to a reader.
static void s_route(kmx_storage_t *self, s_msg_t *msg) {
    int body = s_msg_body_case(msg);
    if (kmx_storage_is_write(body)) {
        if (s_msg_send(self->to_writer, NULL, 0, msg, ZMQ_DONTWAIT) == 1)
            s_refuse(self, msg, "write");
    } else if (kmx_storage_is_quick(body)) {
        s_answer_here(self, msg);
    } else {
        s_to_reader(self, msg); // bad frames and bodies too: a reader answers the error
    }
}

// Takes what the readers sent: a reply (passed to its worker) or "ready"; either frees
// the reader for the oldest waiting read.
static void s_from_readers(kmx_storage_t *self) {
    for (;;) {
        s_msg_t msg;
        if (s_msg_recv(self, self->to_readers, ZMQ_DONTWAIT, 4, &msg) <= 0)
            return;
        size_t id_len = zmq_msg_size(&msg.f[0]);
        const uint8_t *id = zmq_msg_data(&msg.f[0]);
        kmx_storage_reader_t *rd = NULL;
        for (size_t i = 0; i < self->n_readers && !rd; i++) {
            if (self->readers[i].id_len == id_len && memcmp(self->readers[i].id, id, id_len) == 0)
                rd = &self->readers[i];
        }
        if (msg.n == 4) { // [reader][rid][corr][body]: pass the reply on
            s_msg_t reply = {.n = 3};
            for (size_t i = 0; i < 3; i++) {
                zmq_msg_init(&reply.f[i]);
                zmq_msg_move(&reply.f[i], &msg.f[i + 1]);
            }
            s_msg_send(self->router, NULL, 0, &reply, 0);
        }
        s_msg_close(&msg);
        if (!rd)
            continue;
        rd->idle = 1;
        kmx_storage_queue_t *q = self->wait;
        if (q->n > 0) {
            s_msg_t next;
            s_msg_move(&next, &q->items[q->head]);
            q->head = (q->head + 1) % KMX_STORAGE_READ_QUEUE_MAX;
            q->n--;
            rd->idle = 0;
            s_msg_send(self->to_readers, rd->id, rd->id_len, &next, 0);
        }
    }
}

// Passes the writer's replies on to their workers.
static void s_from_writer(kmx_storage_t *self) {
    for (;;) {
        s_msg_t msg;
        if (s_msg_recv(self, self->to_writer, ZMQ_DONTWAIT, 3, &msg) <= 0)
            return;
        s_msg_send(self->router, NULL, 0, &msg, 0);
    }
}

static void s_from_workers(kmx_storage_t *self) {
    for (int i = 0; i < S_DRAIN_MAX; i++) {
        s_msg_t msg;
        if (s_msg_recv(self, self->router, ZMQ_DONTWAIT, 3, &msg) <= 0)
            return;
        s_route(self, &msg);
    }
}

// One turn of the router: waits up to timeout_ms, then moves what arrived.
static int s_turn(kmx_storage_t *self, long timeout_ms, int take_requests) {
    zmq_pollitem_t items[] = {{self->to_readers, 0, ZMQ_POLLIN, 0},
                              {self->to_writer, 0, ZMQ_POLLIN, 0},
                              {self->router, 0, take_requests ? ZMQ_POLLIN : 0, 0}};
    int rc = zmq_poll(items, 3, timeout_ms);
    if (rc < 0 && errno == EINTR)
        return 0;
    if (rc < 0) {
        self->terminated = errno == ETERM;
        if (!self->terminated)
            kmx_log_error("poll failed: %s", zmq_strerror(errno));
        return KMX_ERR_IO;
    }
    if (items[0].revents & ZMQ_POLLIN)
        s_from_readers(self);
    if (items[1].revents & ZMQ_POLLIN)
        s_from_writer(self);
    if (items[2].revents & ZMQ_POLLIN)
        s_from_workers(self);
    return 0;
}

// ---- threads -------------------------------------------------------------------------

static int s_start_threads(kmx_storage_t *self) {
    if (pthread_create(&self->writer_thread, NULL, kmx_storage_writer_main, self) != 0) {
        kmx_log_error("cannot start the writer thread");
        return KMX_ERR_NOMEM;
    }
    self->writer_started = 1;
    for (size_t i = 0; i < self->n_readers; i++) {
        kmx_storage_reader_t *rd = &self->readers[i];
        if (pthread_create(&rd->thread, NULL, kmx_storage_reader_main, rd) != 0) {
            kmx_log_error("cannot start reader thread %zu", i);
            return KMX_ERR_NOMEM;
        }
        rd->started = 1;
    }
    return 0;
}

static size_t s_busy_readers(const kmx_storage_t *self) {
    size_t busy = 0;
    for (size_t i = 0; i < self->n_readers; i++)
        busy += self->readers[i].started && !self->readers[i].idle;
    return busy;
}

// Stops the threads: the writer commits and answers every write it was given; the
// readers finish the reads in hand and those waiting (bounded); all replies go out.
static void s_stop_threads(kmx_storage_t *self) {
    atomic_store(&self->stopping, 1);
    if (!self->terminated && self->writer_started)
        zmq_send(self->to_writer, "", 0, ZMQ_DONTWAIT);
    uint64_t deadline = kmx_storage_clock_ms() + S_STOP_WAIT_MS;
    while (!self->terminated && (s_busy_readers(self) > 0 || self->wait->n > 0) &&
           kmx_storage_clock_ms() < deadline)
        s_turn(self, 10, 0);
    for (size_t i = 0; i < self->n_readers; i++) {
        kmx_storage_reader_t *rd = &self->readers[i];
        if (!self->terminated && rd->started) {
            zmq_send(self->to_readers, rd->id, rd->id_len, ZMQ_SNDMORE | ZMQ_DONTWAIT);
            zmq_send(self->to_readers, "", 0, ZMQ_DONTWAIT);
        }
    }
    if (self->writer_started)
        pthread_join(self->writer_thread, NULL);
    self->writer_started = 0;
    for (size_t i = 0; i < self->n_readers; i++) {
        if (self->readers[i].started)
            pthread_join(self->readers[i].thread, NULL);
        self->readers[i].started = 0;
    }
    if (!self->terminated) {
        s_from_writer(self); // the last batch's replies
        s_from_readers(self);
    }
    kmx_storage_queue_t *q = self->wait;
    for (; q->n > 0; q->n--, q->head = (q->head + 1) % KMX_STORAGE_READ_QUEUE_MAX)
        s_msg_close(&q->items[q->head]); // left unanswered: the worker's timeout retries
    // The last replies are on their way; a worker that sees the connection close before
    // it read one (its link is ZMQ_IMMEDIATE) loses it, so the sockets stay open a moment.
    if (!self->terminated) {
        struct timespec pause = {0, S_CLOSE_GRACE_MS * 1000000L};
        nanosleep(&pause, NULL);
    }
}

// ---- lifecycle ---------------------------------------------------------------------

static void *s_socket(void *ctx, int type, int *failed) {
    void *sock = zmq_socket(ctx, type);
    if (!sock) {
        kmx_log_error("cannot create a socket: %s", zmq_strerror(errno));
        *failed = 1;
        return NULL;
    }
    int linger = 1000;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    return sock;
}

static void s_set_int(void *sock, int option, int value) {
    if (sock)
        zmq_setsockopt(sock, option, &value, sizeof value);
}

// The inproc pairs between the router and its threads. Replies never wait for room
// (HWM 0); requests to the writer queue up to KMX_STORAGE_WRITE_QUEUE_MAX, then are
// refused rather than blocking the router.
static int s_open_inproc(kmx_storage_t *self, void *ctx) {
    char ep[96];
    int failed = 0;
    self->to_writer = s_socket(ctx, ZMQ_PAIR, &failed);
    self->writer_sock = s_socket(ctx, ZMQ_PAIR, &failed);
    self->to_readers = s_socket(ctx, ZMQ_ROUTER, &failed);
    s_set_int(self->to_writer, ZMQ_SNDHWM, KMX_STORAGE_WRITE_QUEUE_MAX / 2);
    s_set_int(self->writer_sock, ZMQ_RCVHWM, KMX_STORAGE_WRITE_QUEUE_MAX / 2);
    s_set_int(self->to_writer, ZMQ_RCVHWM, 0);
    s_set_int(self->writer_sock, ZMQ_SNDHWM, 0);
    s_set_int(self->to_readers, ZMQ_SNDHWM, 0);
    s_set_int(self->to_readers, ZMQ_RCVHWM, 0);
    if (failed)
        return KMX_ERR_IO;
    snprintf(ep, sizeof ep, "inproc://kmx-storage-writer-%p", (void *)self);
    if (zmq_bind(self->to_writer, ep) != 0 || zmq_connect(self->writer_sock, ep) != 0)
        return KMX_ERR_IO;
    snprintf(ep, sizeof ep, "inproc://kmx-storage-readers-%p", (void *)self);
    if (zmq_bind(self->to_readers, ep) != 0)
        return KMX_ERR_IO;
    for (size_t i = 0; i < self->n_readers; i++) {
        kmx_storage_reader_t *rd = &self->readers[i];
        rd->owner = self;
        rd->id_len = (size_t)snprintf((char *)rd->id, sizeof rd->id, "reader-%zu", i);
        rd->sock = s_socket(ctx, ZMQ_DEALER, &failed);
        s_set_int(rd->sock, ZMQ_SNDHWM, 0);
        s_set_int(rd->sock, ZMQ_RCVHWM, 0);
        if (failed || zmq_setsockopt(rd->sock, ZMQ_ROUTING_ID, rd->id, rd->id_len) != 0 ||
            zmq_connect(rd->sock, ep) != 0)
            return KMX_ERR_IO;
    }
    return 0;
}

static int s_open_sockets(kmx_storage_t *self, void *ctx, const kmx_storage_config_t *cfg) {
    int failed = 0;
    self->router = s_socket(ctx, ZMQ_ROUTER, &failed);
    self->pub = s_socket(ctx, ZMQ_PUB, &failed);
    if (failed)
        return KMX_ERR_IO;
    // A peer sending more than any body may be is disconnected before it costs memory.
    int64_t max_msg = KMX_MSG_MAX;
    zmq_setsockopt(self->router, ZMQ_MAXMSGSIZE, &max_msg, sizeof max_msg);
    // With CURVE on, only service keys reach storage, and events go out encrypted.
    if (kmx_zap_start(ctx, &self->zap) != 0 ||
        kmx_curve_server(self->router, KMX_CURVE_DOMAIN_STORAGE) != 0 ||
        kmx_curve_client(self->pub, KMX_CURVE_TO_BROKER) != 0)
        return KMX_ERR_INVAL; // logged: which setting is missing or bad
    if (zmq_bind(self->router, cfg->bind) != 0) {
        kmx_log_error("cannot bind endpoint=%s: %s", cfg->bind, zmq_strerror(errno));
        return KMX_ERR_IO;
    }
    if (zmq_connect(self->pub, cfg->publish) != 0) {
        kmx_log_error("cannot connect endpoint=%s: %s", cfg->publish, zmq_strerror(errno));
        return KMX_ERR_IO;
    }
    size_t size = sizeof self->endpoint;
    if (zmq_getsockopt(self->router, ZMQ_LAST_ENDPOINT, self->endpoint, &size) != 0)
        snprintf(self->endpoint, sizeof self->endpoint, "%s", cfg->bind);
    if (s_open_inproc(self, ctx) != 0) {
        kmx_log_error("cannot open the inproc sockets to the threads: %s", zmq_strerror(errno));
        return KMX_ERR_IO;
    }
    return 0;
}

int kmx_storage_new(void *ctx, const kmx_storage_config_t *cfg, kmx_storage_t **out) {
    if (!ctx || !cfg || !cfg->bind || !cfg->publish || !cfg->data_dir || !out ||
        cfg->readers > KMX_STORAGE_READERS_MAX || cfg->reader_nice < 0 || cfg->reader_nice > 19)
        return KMX_ERR_INVAL;
    *out = NULL;
    kmx_storage_t *self = calloc(1, sizeof *self);
    if (!self)
        return KMX_ERR_NOMEM;
    char host[64] = "localhost";
    gethostname(host, sizeof host - 1);
    snprintf(self->worker, sizeof self->worker, "kmx-storage-%s-%ld", host, (long)getpid());
    self->n_readers = cfg->readers ? cfg->readers : KMX_STORAGE_READERS;
    self->reader_nice = cfg->reader_nice;
    self->read_delay_ms = cfg->read_delay_ms;
    if (self->read_delay_ms)
        kmx_log_warn("debug: every scan, aggregate and query waits read_delay_ms=%u before its "
                     "answer (KMX_DEBUG_STORAGE_READ_DELAY_MS, for tests only)",
                     self->read_delay_ms);
    self->write_delay_ms = cfg->wr_delay_ms;
    if (self->write_delay_ms)
        kmx_log_warn("debug: every write batch waits write_delay_ms=%u before its commit "
                     "(KMX_DEBUG_STORAGE_WRITE_DELAY_MS, for tests only)",
                     self->write_delay_ms);
    self->readers = calloc(self->n_readers, sizeof *self->readers);
    self->wait = calloc(1, sizeof *self->wait);
    int err = !self->readers || !self->wait ? KMX_ERR_NOMEM : kmx_storage_writer_new(self, cfg);
    kmx_store_config_t scfg = {.map_size = cfg->map_size,
                               .sync = cfg->sync,
                               .retain_events = cfg->retain_events,
                               .builder_nice = cfg->reader_nice};
    if (err == 0)
        err = kmx_store_open(cfg->data_dir, &scfg, &self->store);
    if (err == 0)
        err = s_open_sockets(self, ctx, cfg);
    if (err != 0) {
        kmx_storage_destroy(&self);
        return err;
    }
    kmx_log_info("storage ready bind=%s publish=%s data_dir=%s sync=%d batch_wait_us=%llu "
                 "retain_events=%llu readers=%zu reader_nice=%d",
                 self->endpoint, cfg->publish, cfg->data_dir, (int)cfg->sync,
                 (unsigned long long)cfg->batch_wait_us, (unsigned long long)cfg->retain_events,
                 self->n_readers, self->reader_nice);
    *out = self;
    return 0;
}

static void s_close(void **sock) {
    if (*sock)
        zmq_close(*sock);
    *sock = NULL;
}

void kmx_storage_destroy(kmx_storage_t **self_p) {
    if (!self_p || !*self_p)
        return;
    kmx_storage_t *self = *self_p;
    for (size_t i = 0; self->readers && i < self->n_readers; i++)
        s_close(&self->readers[i].sock);
    s_close(&self->to_readers);
    s_close(&self->to_writer);
    s_close(&self->writer_sock);
    s_close(&self->router);
    s_close(&self->pub);
    kmx_zap_stop(&self->zap);
    kmx_storage_writer_destroy(self);
    kmx_store_close(&self->store);
    free(self->readers);
    free(self->wait);
    free(self);
    *self_p = NULL;
}

int kmx_storage_endpoint(const kmx_storage_t *self, char *buf, size_t size) {
    int n = snprintf(buf, size, "%s", self->endpoint);
    return n < 0 || (size_t)n >= size ? KMX_ERR_OVERFLOW : 0;
}

int kmx_storage_run(kmx_storage_t *self, volatile sig_atomic_t *stop) {
    int err = s_start_threads(self);
    while (err == 0 && !self->terminated && (!stop || !*stop))
        err = s_turn(self, S_POLL_MS, 1);
    s_stop_threads(self);
    kmx_log_info("storage stopping last_seq=%llu",
                 (unsigned long long)kmx_store_last_seq(self->store));
    return self->terminated ? 0 : err;
}
