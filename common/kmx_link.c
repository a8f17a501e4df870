/*  kmx_link - a worker's request/reply link to kmx-storage over one DEALER socket.
    Every call gets a fresh correlation id; a reply carrying any other id is a late
    answer to a call that already timed out and is dropped, so a slow storage can never
    make a worker hand one client's answer to another.  */
#include "kmx_link.h"

#include "kmx_curve.h"
#include "kmx_err.h"
#include "kmx_log.h"
#include "kmx_msg.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#define S_ID_SIZE 8       // correlation id frame: 8 bytes big-endian
#define S_SLICE_MS 50     // how often a wait looks at the connection and ticks
#define S_GRACE_MS 250    // how long a call waits for a link that went down before refusing
#define S_RECONNECT_MS 50 // how soon ZeroMQ tries again to reach storage

struct kmx_link {
    void *sock;              // DEALER connected to storage's ROUTER
    uint64_t next_id;        // correlation id of the next call
    int ever_linked;         // the link has been connected once (before, calls wait to start)
    kmx_link_tick_fn tick;   // called while waiting (worker heartbeats), or NULL
    void *tick_arg;          // its argument
    kmx_link_local_fn local; // answers requests in this process first, or NULL
    void *local_arg;         // its argument
};

static int64_t s_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int s_remaining(int64_t deadline) {
    int64_t left = deadline - s_now_ms();
    return left > 0 ? (int)left : 0;
}

static void s_encode_id(uint64_t id, uint8_t out[S_ID_SIZE]) {
    for (int i = S_ID_SIZE - 1; i >= 0; i--) {
        out[i] = (uint8_t)(id & 0xff);
        id >>= 8;
    }
}

static uint64_t s_decode_id(const uint8_t in[S_ID_SIZE]) {
    uint64_t id = 0;
    for (int i = 0; i < S_ID_SIZE; i++)
        id = (id << 8) | in[i];
    return id;
}

static int s_set_int(void *sock, int option, int value) {
    return zmq_setsockopt(sock, option, &value, sizeof value);
}

kmx_link_t *kmx_link_new(void *ctx, const char *endpoint) {
    if (!ctx || !endpoint)
        return NULL;
    kmx_link_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->sock = zmq_socket(ctx, ZMQ_DEALER);
    int64_t max_size = (int64_t)KMX_MSG_MAX + 64;
    int reconnect = S_RECONNECT_MS;
    // IMMEDIATE keeps requests from queueing while storage is down: the call then
    // times out instead of storage applying a pile of stale requests when it returns.
    if (!self->sock || s_set_int(self->sock, ZMQ_LINGER, 0) != 0 ||
        s_set_int(self->sock, ZMQ_IMMEDIATE, 1) != 0 ||
        s_set_int(self->sock, ZMQ_RECONNECT_IVL, reconnect) != 0 ||
        zmq_setsockopt(self->sock, ZMQ_MAXMSGSIZE, &max_size, sizeof max_size) != 0 ||
        kmx_curve_client(self->sock, KMX_CURVE_TO_STORAGE) != 0 ||
        zmq_connect(self->sock, endpoint) != 0) {
        kmx_log_error("storage link failed endpoint=%s error=%s", endpoint,
                      zmq_strerror(zmq_errno()));
        kmx_link_destroy(&self);
        return NULL;
    }
    // Start from a clock-derived id so a restarted worker does not reuse recent ids.
    self->next_id = (uint64_t)s_now_ms() << 16;
    return self;
}

void kmx_link_destroy(kmx_link_t **self_p) {
    if (!self_p || !*self_p)
        return;
    kmx_link_t *self = *self_p;
    if (self->sock)
        zmq_close(self->sock);
    free(self);
    *self_p = NULL;
}

void kmx_link_set_tick(kmx_link_t *self, kmx_link_tick_fn tick, void *arg) {
    if (!self)
        return;
    self->tick = tick;
    self->tick_arg = arg;
}

void kmx_link_set_local(kmx_link_t *self, kmx_link_local_fn local, void *arg) {
    if (!self)
        return;
    self->local = local;
    self->local_arg = arg;
}

// Ticks before a request goes to storage. A nonzero tick means the request is stale (its
// worker was frozen past the broker's expiry, whose client was told to retry): applying it
// now could overwrite a newer write that client has since made, so it is dropped.
static int s_stale(kmx_link_t *self) {
    if (!self->tick || self->tick(self->tick_arg) == 0)
        return 0;
    kmx_log_warn("request dropped: its worker was silent past the broker's expiry");
    return 1;
}

// Whether the link has a connection now. The socket is ZMQ_IMMEDIATE, so it is writable
// only while storage is connected; a storage that died shows at once.
static int s_linked(void *sock) {
    zmq_pollitem_t item = {sock, 0, ZMQ_POLLOUT, 0};
    return zmq_poll(&item, 1, 0) > 0 && (item.revents & ZMQ_POLLOUT);
}

// Waits until the socket reports events or the deadline passes, in slices that call the
// tick. With POLLIN, also gives up when the connection is lost (*lost set). Returns 1 when
// ready, 0 on timeout or loss, KMX_ERR_IO on a socket error. Signals do not shorten it.
static int s_wait(kmx_link_t *self, short events, int64_t deadline, int *lost) {
    for (;;) {
        int left = s_remaining(deadline);
        zmq_pollitem_t item = {self->sock, 0, events, 0};
        int rc = zmq_poll(&item, 1, left < S_SLICE_MS ? left : S_SLICE_MS);
        if (rc > 0)
            return 1;
        if (rc < 0 && zmq_errno() != EINTR)
            return KMX_ERR_IO;
        if (self->tick)
            self->tick(self->tick_arg); // while waiting its verdict changes nothing
        if (lost && !s_linked(self->sock)) {
            // A reply that came in just before the connection went is still readable.
            zmq_pollitem_t last = {self->sock, 0, ZMQ_POLLIN, 0};
            if (zmq_poll(&last, 1, 0) > 0)
                return 1;
            *lost = 1;
            return 0;
        }
        if (s_remaining(deadline) == 0)
            return 0;
    }
}

static int s_send(kmx_link_t *self, uint64_t id, const uint8_t *buf, size_t len, int64_t deadline) {
    int rc = s_wait(self, ZMQ_POLLOUT, deadline, NULL);
    if (rc <= 0)
        return rc == 0 ? KMX_ERR_TIMEOUT : rc;
    uint8_t id_frame[S_ID_SIZE];
    s_encode_id(id, id_frame);
    if (zmq_send(self->sock, id_frame, sizeof id_frame, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return zmq_errno() == EAGAIN ? KMX_ERR_TIMEOUT : KMX_ERR_IO;
    // Once the first frame is queued the second cannot fail for lack of room.
    if (zmq_send(self->sock, buf, len, ZMQ_DONTWAIT) < 0)
        return KMX_ERR_IO;
    return 0;
}

// Receives one whole multipart message. Returns 1 with *id and *body set when it has the
// link's two-frame shape, 0 for a malformed message (already discarded), or KMX_ERR_IO.
static int s_recv_one(void *sock, uint64_t *id, zmq_msg_t *body) {
    zmq_msg_t part;
    int frames = 0;
    int shaped = 1;
    int more = 1;
    while (more) {
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, sock, ZMQ_DONTWAIT) < 0) {
            int err = zmq_errno();
            zmq_msg_close(&part);
            if (frames > 0)
                zmq_msg_close(body);
            return frames == 0 && err == EAGAIN ? 0 : KMX_ERR_IO;
        }
        more = zmq_msg_more(&part);
        if (frames == 0) {
            shaped = zmq_msg_size(&part) == S_ID_SIZE;
            if (shaped)
                *id = s_decode_id(zmq_msg_data(&part));
            zmq_msg_close(&part);
            zmq_msg_init(body);
        } else if (frames == 1) {
            zmq_msg_move(body, &part);
            zmq_msg_close(&part);
        } else {
            shaped = 0;
            zmq_msg_close(&part);
        }
        frames++;
    }
    if (frames == 2 && shaped)
        return 1;
    zmq_msg_close(body);
    return 0;
}

// Reads replies until the one for want arrives, the deadline passes or the connection is
// lost (KMX_ERR_UNAVAILABLE: the request went down with storage). The reply's bytes are
// copied to a malloc'd *out.
static int s_await(kmx_link_t *self, uint64_t want, int64_t deadline, uint8_t **out, size_t *len) {
    for (;;) {
        int lost = 0;
        int rc = s_wait(self, ZMQ_POLLIN, deadline, &lost);
        if (rc == 0 && lost)
            return KMX_ERR_UNAVAILABLE;
        if (rc <= 0)
            return rc == 0 ? KMX_ERR_TIMEOUT : rc;
        uint64_t id = 0;
        zmq_msg_t body;
        rc = s_recv_one(self->sock, &id, &body);
        if (rc < 0)
            return rc;
        if (rc == 0) {
            kmx_log_warn("storage link dropped a malformed reply");
            continue;
        }
        if (id != want) {
            kmx_log_debug("storage link dropped a late reply id=%llu awaited=%llu",
                          (unsigned long long)id, (unsigned long long)want);
            zmq_msg_close(&body);
            continue;
        }
        *len = zmq_msg_size(&body);
        *out = malloc(*len ? *len : 1);
        if (*out)
            memcpy(*out, zmq_msg_data(&body), *len);
        zmq_msg_close(&body);
        return *out ? 0 : KMX_ERR_NOMEM;
    }
}

int kmx_link_call_packed(kmx_link_t *self, const Kmx__V1__Request *req, int timeout_ms,
                         uint8_t **out, size_t *len) {
    if (!self || !req || !out || !len)
        return KMX_ERR_INVAL;
    *out = NULL;
    *len = 0;
    // A local answer ticks too: a query walking many pages keeps its worker alive.
    if (self->local && s_stale(self))
        return KMX_ERR_TIMEOUT;
    if (self->local && self->local(self->local_arg, req, out, len) == 0)
        return 0;
    int64_t deadline = s_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    uint8_t *buf = NULL;
    size_t blen = 0;
    int rc = kmx_msg_pack_request(req, &buf, &blen);
    if (rc != 0)
        return rc;
    // A link that went down (storage stopped or restarting) refuses after a short grace,
    // so the client hears UNAVAILABLE at once rather than after the whole timeout; one that
    // never came up yet (a worker just started) waits the whole timeout for storage.
    int64_t grace = self->ever_linked ? s_now_ms() + S_GRACE_MS : deadline;
    if (s_stale(self)) {
        free(buf);
        return KMX_ERR_TIMEOUT;
    }
    rc = s_send(self, self->next_id, buf, blen, grace < deadline ? grace : deadline);
    self->ever_linked |= rc == 0;
    if (rc == KMX_ERR_TIMEOUT)
        rc = KMX_ERR_UNAVAILABLE;
    // Storage lost with the request in flight: send it again once the link is back, within
    // the deadline. Requests are idempotent (puts are upserts), so a repeat of one that was
    // committed comes back unchanged; the first reply, if any, is dropped as late.
    while (rc == 0) {
        rc = s_await(self, self->next_id++, deadline, out, len);
        if (rc != KMX_ERR_UNAVAILABLE)
            break;
        kmx_log_info("storage link lost with a request in flight; resending when it is back");
        if (s_stale(self)) {
            rc = KMX_ERR_TIMEOUT;
            break;
        }
        rc = s_send(self, self->next_id, buf, blen, deadline);
        if (rc == KMX_ERR_TIMEOUT)
            rc = KMX_ERR_UNAVAILABLE;
    }
    free(buf);
    return rc;
}

int kmx_link_call(kmx_link_t *self, const Kmx__V1__Request *req, int timeout_ms,
                  Kmx__V1__Response **out) {
    if (out)
        *out = NULL;
    if (!out)
        return KMX_ERR_INVAL;
    uint8_t *body = NULL;
    size_t len = 0;
    int rc = kmx_link_call_packed(self, req, timeout_ms, &body, &len);
    if (rc == 0 && !(*out = kmx_msg_response_unpack(body, len)))
        rc = KMX_ERR_DECODE;
    free(body);
    return rc;
}
