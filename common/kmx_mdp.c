/*  kmx_mdp - Majordomo 7/MDP endpoints. The worker keeps one DEALER to the broker, says
    READY, trades heartbeats and starts over with a fresh socket when the broker goes quiet
    or tells it to DISCONNECT. The client is a Lazy Pirate: one DEALER per try, thrown away
    on timeout so a late reply can never be mistaken for the answer to a later call.  */
#include "kmx_mdp.h"

#include "kmx_curve.h"
#include "kmx_err.h"
#include "kmx_log.h"
#include "kmx_msg.h"

#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_MAX_FRAMES 8         // more frames than any MDP message has: the rest is dropped
#define S_ADDR_MAX 255         // ZeroMQ routing ids are at most 255 bytes
#define S_LINGER_MS 200        // long enough to flush a DISCONNECT, short enough to exit
#define S_ENVELOPE_MAX 1024    // room for MDP frames on top of the largest body
#define S_DEFAULT_TIMEOUT 3000 // client per-try timeout, ms
#define S_DEFAULT_TRIES 3      // client tries per call
#define S_SLICE_MS 50          // how often a wait looks whether the connection is still there
#define S_RECONNECT_MS 50      // how soon ZeroMQ tries again to reach a broker that went away
#define S_CONNECT_WAIT_MS 200  // how long a new worker socket waits to connect before READY
#define S_DRAINED 2            // s_worker_handle: nothing was waiting on the socket
#define S_POLL_MAX (KMX_MDP_POLL_ALSO + 1) // descriptors one worker wait sleeps on

struct kmx_mdp_worker {
    void *ctx;                    // borrowed ZeroMQ context
    char *broker;                 // broker endpoint
    char *service;                // service offered
    char *identity;               // routing id, or NULL to let ZeroMQ choose
    void *sock;                   // DEALER to the broker, NULL until (re)connected
    int64_t heartbeat_at;         // when our next heartbeat is due, monotonic ms
    int64_t expiry_at;            // when the broker counts as dead unless it speaks
    int64_t tick_at;              // when s_worker_tick looks at the connection next
    uint8_t reply_to[S_ADDR_MAX]; // client envelope of the last request
    size_t reply_to_len;          // its length
    int has_request;              // a request is waiting for kmx_mdp_worker_send
    int linked;                   // the socket had a connection to the broker at the last look
    int need_ready;               // READY has not gone out on the current socket yet
    int quiet; // read to EAGAIN, and its ZMQ_FD not readable since: nothing to read there
};

struct kmx_mdp_client {
    void *ctx;      // borrowed ZeroMQ context
    char *broker;   // broker endpoint
    void *sock;     // DEALER of the current try, NULL after a timeout
    int timeout_ms; // per-try timeout
    int tries;      // tries per call
};

// One outgoing frame: borrowed bytes, copied by ZeroMQ.
typedef struct {
    const void *data; // frame bytes (may be NULL when size is 0)
    size_t size;      // frame length
} s_part_t;

static int64_t s_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void s_close_socket(void **sock_p) {
    if (*sock_p) {
        zmq_close(*sock_p);
        *sock_p = NULL;
    }
}

static void s_close_frames(zmq_msg_t *frames, int count) {
    for (int i = 0; i < count; i++)
        zmq_msg_close(&frames[i]);
}

// Sends parts as one multi-part message. Returns 0, KMX_ERR_TIMEOUT when the socket would
// block, or KMX_ERR_IO.
static int s_send_parts(void *sock, const s_part_t *parts, int count) {
    for (int i = 0; i < count; i++) {
        int flags = i + 1 < count ? ZMQ_SNDMORE : 0;
        if (zmq_send(sock, parts[i].data, parts[i].size, flags) < 0)
            return errno == EAGAIN ? KMX_ERR_TIMEOUT : KMX_ERR_IO;
    }
    return 0;
}

// Reads one whole message into frames (up to max). Returns the frame count, 0 if nothing
// was waiting, KMX_ERR_TOO_BIG if it had more than max frames (all dropped), or
// KMX_ERR_INTERNAL on interruption or a terminated context.
static int s_recv_frames(void *sock, zmq_msg_t *frames, int max) {
    int count = 0;
    int more = 1;
    while (more) {
        zmq_msg_t part;
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, sock, count == 0 ? ZMQ_DONTWAIT : 0) < 0) {
            int err = errno;
            zmq_msg_close(&part);
            s_close_frames(frames, count < max ? count : max);
            if (err == EAGAIN && count == 0)
                return 0;
            return KMX_ERR_INTERNAL;
        }
        more = zmq_msg_more(&part);
        if (count < max)
            frames[count] = part;
        else
            zmq_msg_close(&part);
        count++;
    }
    if (count > max) {
        s_close_frames(frames, max);
        return KMX_ERR_TOO_BIG;
    }
    return count;
}

// Whether sock has a live connection. Sockets here are ZMQ_IMMEDIATE, so they are writable
// only while connected: a broker that died or restarted shows at once, not after heartbeats.
static int s_linked(void *sock) {
    zmq_pollitem_t item = {sock, 0, ZMQ_POLLOUT, 0};
    return zmq_poll(&item, 1, 0) > 0 && (item.revents & ZMQ_POLLOUT);
}

static int s_frame_is(zmq_msg_t *frame, const char *text) {
    size_t len = strlen(text);
    return zmq_msg_size(frame) == len && memcmp(zmq_msg_data(frame), text, len) == 0;
}

static void *s_dealer_new(void *ctx, const char *endpoint, const char *identity, int sndtimeo) {
    void *sock = zmq_socket(ctx, ZMQ_DEALER);
    if (!sock)
        return NULL;
    int linger = S_LINGER_MS;
    int one = 1;
    int reconnect = S_RECONNECT_MS;
    int64_t max_size = (int64_t)KMX_MSG_MAX + S_ENVELOPE_MAX;
    int rc = zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    // IMMEDIATE: nothing queues for a broker that is not there, and writability tells
    // whether it is (s_linked).
    if (rc == 0)
        rc = zmq_setsockopt(sock, ZMQ_IMMEDIATE, &one, sizeof one);
    if (rc == 0)
        rc = zmq_setsockopt(sock, ZMQ_RECONNECT_IVL, &reconnect, sizeof reconnect);
    if (rc == 0)
        rc = zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &max_size, sizeof max_size);
    if (rc == 0)
        rc = zmq_setsockopt(sock, ZMQ_SNDTIMEO, &sndtimeo, sizeof sndtimeo);
    if (rc == 0 && identity)
        rc = zmq_setsockopt(sock, ZMQ_ROUTING_ID, identity, strlen(identity));
    if (rc == 0 && kmx_curve_client(sock, KMX_CURVE_TO_BROKER) != 0)
        rc = -1; // logged: which setting is missing
    if (rc == 0)
        rc = zmq_connect(sock, endpoint);
    if (rc != 0) {
        kmx_log_error("mdp: cannot open socket endpoint=%s err=%s", endpoint, zmq_strerror(errno));
        zmq_close(sock);
        return NULL;
    }
    return sock;
}

// ---- worker ---------------------------------------------------------------------------

// Sends parts without waiting: a worker never blocks on a broker that is away.
static int s_worker_send(kmx_mdp_worker_t *self, const s_part_t *parts, int count) {
    self->quiet = 0; // a send may take in commands the descriptor will not signal again
    for (int i = 0; i < count; i++) {
        int flags = ZMQ_DONTWAIT | (i + 1 < count ? ZMQ_SNDMORE : 0);
        if (zmq_send(self->sock, parts[i].data, parts[i].size, flags) < 0)
            return errno == EAGAIN ? KMX_ERR_TIMEOUT : KMX_ERR_IO;
    }
    return 0;
}

static int s_worker_command(kmx_mdp_worker_t *self, uint8_t command) {
    s_part_t parts[] = {{"", 0}, {KMX_MDPW, strlen(KMX_MDPW)}, {&command, 1}};
    return s_worker_send(self, parts, 3);
}

// Sends READY when the socket is connected. Returns 0 (sent, or to be sent once connected)
// or KMX_ERR_IO.
static int s_worker_ready(kmx_mdp_worker_t *self) {
    self->linked = s_linked(self->sock);
    if (!self->linked)
        return 0;
    uint8_t ready = KMX_MDPW_READY;
    s_part_t parts[] = {
        {"", 0}, {KMX_MDPW, strlen(KMX_MDPW)}, {&ready, 1}, {self->service, strlen(self->service)}};
    int rc = s_worker_send(self, parts, 4);
    if (rc == KMX_ERR_IO)
        return rc;
    self->need_ready = rc != 0;
    if (rc == 0)
        kmx_log_debug("mdp: worker registered service=%s broker=%s", self->service, self->broker);
    return 0;
}

// Opens a fresh socket and registers with the broker. A pending request is forgotten: the
// broker that sent it no longer counts this worker as busy, so a reply would be refused.
static int s_worker_connect(kmx_mdp_worker_t *self) {
    s_close_socket(&self->sock);
    self->has_request = 0;
    self->sock = s_dealer_new(self->ctx, self->broker, self->identity, KMX_MDP_HEARTBEAT_MS);
    if (!self->sock)
        return KMX_ERR_IO;
    int64_t now = s_now_ms();
    self->heartbeat_at = now + KMX_MDP_HEARTBEAT_MS;
    self->expiry_at = now + (int64_t)KMX_MDP_HEARTBEAT_MS * KMX_MDP_LIVENESS;
    self->need_ready = 1;
    // A broker that is there connects within milliseconds: register now. One that is not
    // gets READY from s_worker_tick once it is.
    zmq_pollitem_t item = {self->sock, 0, ZMQ_POLLOUT, 0};
    zmq_poll(&item, 1, S_CONNECT_WAIT_MS);
    return s_worker_ready(self);
}

static char *s_strdup(const char *text) {
    size_t len = strlen(text) + 1;
    char *copy = malloc(len);
    if (copy)
        memcpy(copy, text, len);
    return copy;
}

kmx_mdp_worker_t *kmx_mdp_worker_new(void *ctx, const char *broker, const char *service,
                                     const char *identity) {
    if (!ctx || !broker || !service || !*service || strlen(service) > S_ADDR_MAX)
        return NULL;
    if (identity && (!*identity || strlen(identity) > S_ADDR_MAX))
        return NULL;
    kmx_mdp_worker_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->ctx = ctx;
    self->broker = s_strdup(broker);
    self->service = s_strdup(service);
    self->identity = identity ? s_strdup(identity) : NULL;
    if (!self->broker || !self->service || (identity && !self->identity) ||
        s_worker_connect(self) != 0) {
        kmx_mdp_worker_destroy(&self);
        return NULL;
    }
    return self;
}

void kmx_mdp_worker_destroy(kmx_mdp_worker_t **self_p) {
    if (!self_p || !*self_p)
        return;
    kmx_mdp_worker_t *self = *self_p;
    if (self->sock) {
        int nowait = 0;
        zmq_setsockopt(self->sock, ZMQ_SNDTIMEO, &nowait, sizeof nowait);
        s_worker_command(self, KMX_MDPW_DISCONNECT);
        s_close_socket(&self->sock);
    }
    free(self->broker);
    free(self->service);
    free(self->identity);
    free(self);
    *self_p = NULL;
}

// Keeps the request's client envelope and hands its body to the caller. Returns 1, or 0
// when the frames are not a well-formed REQUEST.
static int s_worker_take_request(kmx_mdp_worker_t *self, zmq_msg_t *frames, int count,
                                 zmq_msg_t *body) {
    size_t addr_len = count == 6 ? zmq_msg_size(&frames[3]) : 0;
    if (addr_len == 0 || addr_len > S_ADDR_MAX || zmq_msg_size(&frames[4]) != 0) {
        kmx_log_warn("mdp: malformed REQUEST from broker frames=%d", count);
        return 0;
    }
    memcpy(self->reply_to, zmq_msg_data(&frames[3]), addr_len);
    self->reply_to_len = addr_len;
    self->has_request = 1;
    zmq_msg_init(body);
    zmq_msg_move(body, &frames[5]);
    return 1;
}

// Reads and handles one message from the broker without waiting. Returns 1 with *body set
// for a request, 0 when the message was handled or dropped, S_DRAINED when none was
// waiting, KMX_ERR_INTERNAL when interrupted.
static int s_worker_handle(kmx_mdp_worker_t *self, zmq_msg_t *body) {
    zmq_msg_t frames[S_MAX_FRAMES];
    int count = s_recv_frames(self->sock, frames, S_MAX_FRAMES);
    if (count == 0)
        return S_DRAINED;
    if (count == KMX_ERR_INTERNAL)
        return count;
    if (count == KMX_ERR_TOO_BIG) {
        kmx_log_warn("mdp: dropping message with too many frames from broker");
        return 0;
    }
    if (count < 3 || zmq_msg_size(&frames[0]) != 0 || !s_frame_is(&frames[1], KMX_MDPW) ||
        zmq_msg_size(&frames[2]) != 1) {
        kmx_log_warn("mdp: dropping non-MDP message from broker frames=%d", count);
        s_close_frames(frames, count > 0 ? count : 0);
        return 0;
    }
    self->expiry_at = s_now_ms() + (int64_t)KMX_MDP_HEARTBEAT_MS * KMX_MDP_LIVENESS;
    uint8_t command = *(uint8_t *)zmq_msg_data(&frames[2]);
    int rc = 0;
    if (command == KMX_MDPW_REQUEST)
        rc = s_worker_take_request(self, frames, count, body);
    else if (command == KMX_MDPW_DISCONNECT) {
        kmx_log_info("mdp: broker asked to reconnect service=%s", self->service);
        s_close_socket(&self->sock);
    } else if (command != KMX_MDPW_HEARTBEAT)
        kmx_log_warn("mdp: unexpected command from broker command=%u", command);
    s_close_frames(frames, count);
    return rc;
}

// Sends a heartbeat when due and starts over when the broker has been silent too long.
// A connection that comes back (a restarted broker) gets READY at once, so the new broker
// knows this worker within a reconnect interval instead of after a heartbeat round.
static int s_worker_tick(kmx_mdp_worker_t *self) {
    int64_t now = s_now_ms();
    if (self->sock && now >= self->expiry_at) {
        kmx_log_warn("mdp: broker silent, reconnecting service=%s broker=%s", self->service,
                     self->broker);
        s_close_socket(&self->sock);
    }
    if (!self->sock)
        return s_worker_connect(self);
    int was_linked = self->linked;
    self->linked = s_linked(self->sock);
    if (was_linked && !self->linked)
        kmx_log_info("mdp: broker connection lost service=%s broker=%s", self->service,
                     self->broker);
    if (self->linked && (self->need_ready || !was_linked)) {
        self->need_ready = 1;
        if (s_worker_ready(self) != 0)
            return KMX_ERR_IO;
        self->expiry_at = now + (int64_t)KMX_MDP_HEARTBEAT_MS * KMX_MDP_LIVENESS;
    }
    if (now >= self->heartbeat_at) {
        self->heartbeat_at = now + KMX_MDP_HEARTBEAT_MS;
        if (s_worker_command(self, KMX_MDPW_HEARTBEAT) == KMX_ERR_IO)
            return KMX_ERR_IO;
    }
    return 0;
}

// Waits on the socket's ZMQ_FD with poll(2) rather than zmq_poll, which asks the socket
// for its events before and after it sleeps (two more system calls each turn). The
// descriptor turns readable when commands reach the socket and stays so until the socket
// processes them, which any send or receive may do; so the socket is read to EAGAIN (its
// commands processed, nothing left) before each sleep, and a wake-up without a message
// just reads again. The connection is looked at (s_worker_tick) every S_SLICE_MS, not at
// every message.
int kmx_mdp_worker_wait(kmx_mdp_worker_t *self, int timeout_ms, zmq_msg_t *body,
                        struct pollfd *also, int n_also) {
    assert(self && body && n_also >= 0 && n_also < S_POLL_MAX);
    int64_t now = s_now_ms();
    int64_t deadline = timeout_ms < 0 ? -1 : now + timeout_ms;
    for (;;) {
        if (!self->sock || now >= self->tick_at) {
            if (s_worker_tick(self) != 0)
                return KMX_ERR_INTERNAL;
            self->quiet = 0;
            self->tick_at =
                now + S_SLICE_MS < self->heartbeat_at ? now + S_SLICE_MS : self->heartbeat_at;
        }
        // A socket read to EAGAIN whose descriptor has not turned readable since, and that
        // nothing was sent on, has nothing to read: waking for the other descriptors does
        // not read it again (each read costs libzmq two system calls).
        int rc = self->sock && !self->quiet ? s_worker_handle(self, body) : S_DRAINED;
        if (rc != 0 && rc != S_DRAINED)
            return rc; // a request, or interrupted
        now = s_now_ms();
        if (deadline >= 0 && now >= deadline)
            return 0;
        if (rc == 0)
            continue; // a command handled: more may wait
        int64_t wait = self->tick_at - now;
        if (deadline >= 0 && deadline - now < wait)
            wait = deadline - now;
        int fd = -1;
        size_t size = sizeof fd;
        if (self->sock && zmq_getsockopt(self->sock, ZMQ_FD, &fd, &size) != 0)
            return KMX_ERR_INTERNAL;
        struct pollfd items[S_POLL_MAX];
        items[0] = (struct pollfd){fd, POLLIN, 0};
        int n = fd >= 0 ? 1 : 0;
        for (int i = 0; i < n_also; i++)
            items[n + i] = also[i];
        int polled = wait > 0 || n_also;
        if (polled && poll(items, (nfds_t)(n + n_also), wait > 0 ? (int)wait : 0) < 0)
            return KMX_ERR_INTERNAL; // interrupted: the caller looks at its stop flag
        self->quiet = polled && n && !items[0].revents;
        int other = 0;
        for (int i = 0; i < n_also; i++)
            other |= (also[i].revents = items[n + i].revents) != 0;
        if (other)
            return KMX_MDP_OTHER;
        now = s_now_ms();
    }
}

int kmx_mdp_worker_recv(kmx_mdp_worker_t *self, int timeout_ms, zmq_msg_t *body) {
    return kmx_mdp_worker_wait(self, timeout_ms, body, NULL, 0);
}

int kmx_mdp_worker_send(kmx_mdp_worker_t *self, const void *data, size_t size) {
    assert(self);
    if (!self->has_request || !self->sock || (size > 0 && !data))
        return KMX_ERR_IO;
    self->has_request = 0;
    uint8_t reply = KMX_MDPW_REPLY;
    s_part_t parts[] = {{"", 0},     {KMX_MDPW, strlen(KMX_MDPW)},
                        {&reply, 1}, {self->reply_to, self->reply_to_len},
                        {"", 0},     {data, size}};
    if (s_worker_send(self, parts, 6) != 0) {
        kmx_log_warn("mdp: reply not sent service=%s err=%s", self->service, zmq_strerror(errno));
        return KMX_ERR_IO;
    }
    return 0;
}

int kmx_mdp_worker_heartbeat(kmx_mdp_worker_t *self) {
    assert(self);
    int64_t now = s_now_ms();
    if (!self->sock || now < self->heartbeat_at)
        return 0;
    // Silent for the broker's whole expiry (frozen, starved): it has dropped this worker
    // and told the client to retry.
    int expired =
        now >= self->heartbeat_at + (int64_t)KMX_MDP_HEARTBEAT_MS * (KMX_MDP_LIVENESS - 1);
    self->heartbeat_at = now + KMX_MDP_HEARTBEAT_MS;
    // The broker heartbeats idle workers only; a busy worker does not judge its silence.
    self->expiry_at = now + (int64_t)KMX_MDP_HEARTBEAT_MS * KMX_MDP_LIVENESS;
    if (s_worker_command(self, KMX_MDPW_HEARTBEAT) == KMX_ERR_IO)
        return KMX_ERR_IO;
    return expired ? KMX_ERR_TIMEOUT : 0;
}

// ---- client ---------------------------------------------------------------------------

kmx_mdp_client_t *kmx_mdp_client_new(void *ctx, const char *broker) {
    if (!ctx || !broker)
        return NULL;
    kmx_mdp_client_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->ctx = ctx;
    self->timeout_ms = S_DEFAULT_TIMEOUT;
    self->tries = S_DEFAULT_TRIES;
    self->broker = s_strdup(broker);
    if (self->broker)
        self->sock = s_dealer_new(ctx, broker, NULL, self->timeout_ms);
    if (!self->sock) {
        kmx_mdp_client_destroy(&self);
        return NULL;
    }
    return self;
}

void kmx_mdp_client_destroy(kmx_mdp_client_t **self_p) {
    if (!self_p || !*self_p)
        return;
    kmx_mdp_client_t *self = *self_p;
    s_close_socket(&self->sock);
    free(self->broker);
    free(self);
    *self_p = NULL;
}

void kmx_mdp_client_set_timeout(kmx_mdp_client_t *self, int timeout_ms) {
    assert(self);
    self->timeout_ms = timeout_ms > 0 ? timeout_ms : 1;
    if (self->sock)
        zmq_setsockopt(self->sock, ZMQ_SNDTIMEO, &self->timeout_ms, sizeof self->timeout_ms);
}

void kmx_mdp_client_set_retries(kmx_mdp_client_t *self, int tries) {
    assert(self);
    self->tries = tries > 0 ? tries : 1;
}

// Sleeps until sock's ZMQ_FD is readable or ms pass (see kmx_mdp_worker_recv). Returns 0
// or KMX_ERR_IO; a signal just ends the sleep.
static int s_sleep_on(void *sock, int64_t ms) {
    int fd = -1;
    size_t size = sizeof fd;
    if (zmq_getsockopt(sock, ZMQ_FD, &fd, &size) != 0)
        return KMX_ERR_IO;
    struct pollfd item = {fd, POLLIN, 0};
    if (ms > 0 && poll(&item, 1, (int)ms) < 0 && errno != EINTR)
        return KMX_ERR_IO;
    return 0;
}

// Waits for the reply to service on the current socket, reading it to EAGAIN before each
// sleep on its descriptor (as kmx_mdp_worker_recv does) and looking whether the
// connection is still there after each S_SLICE_MS without a reply. Returns 0 with *reply
// set, KMX_ERR_TIMEOUT, KMX_ERR_IO or KMX_ERR_DECODE.
static int s_client_wait(kmx_mdp_client_t *self, const char *service, zmq_msg_t *reply) {
    int64_t now = s_now_ms();
    int64_t deadline = now + self->timeout_ms;
    int64_t look_at = now + S_SLICE_MS;
    for (;;) {
        zmq_msg_t frames[S_MAX_FRAMES];
        int count = s_recv_frames(self->sock, frames, S_MAX_FRAMES);
        if (count == KMX_ERR_INTERNAL)
            return KMX_ERR_IO;
        if (count == 0) {
            now = s_now_ms();
            if (now >= deadline)
                return KMX_ERR_TIMEOUT;
            if (now >= look_at) {
                // Read to EAGAIN just now, so a reply that came in before the connection
                // went has been taken: waiting longer cannot bring it.
                if (!s_linked(self->sock)) {
                    kmx_log_debug("mdp: broker connection lost while waiting service=%s", service);
                    return KMX_ERR_TIMEOUT;
                }
                look_at = now + S_SLICE_MS;
            }
            int rc = s_sleep_on(self->sock, (look_at < deadline ? look_at : deadline) - now);
            if (rc != 0)
                return rc;
            continue;
        }
        if (count != 4 || zmq_msg_size(&frames[0]) != 0 || !s_frame_is(&frames[1], KMX_MDPC)) {
            kmx_log_warn("mdp: reply is not MDP frames=%d", count);
            s_close_frames(frames, count > 0 ? count : 0);
            return KMX_ERR_DECODE;
        }
        int match = s_frame_is(&frames[2], service);
        if (match) {
            zmq_msg_init(reply);
            zmq_msg_move(reply, &frames[3]);
        } else
            kmx_log_debug("mdp: dropping reply for another service expected=%s", service);
        s_close_frames(frames, count);
        if (match)
            return 0;
    }
}

int kmx_mdp_client_call(kmx_mdp_client_t *self, const char *service, const void *body, size_t size,
                        zmq_msg_t *reply) {
    assert(self && reply);
    if (!service || !*service || strlen(service) > S_ADDR_MAX || (size > 0 && !body) ||
        size > KMX_MSG_MAX)
        return KMX_ERR_INVAL;
    s_part_t parts[] = {
        {"", 0}, {KMX_MDPC, strlen(KMX_MDPC)}, {service, strlen(service)}, {body, size}};
    for (int attempt = 1; attempt <= self->tries; attempt++) {
        if (!self->sock)
            self->sock = s_dealer_new(self->ctx, self->broker, NULL, self->timeout_ms);
        if (!self->sock)
            return KMX_ERR_IO;
        int rc = s_send_parts(self->sock, parts, 4);
        if (rc == 0)
            rc = s_client_wait(self, service, reply);
        if (rc != KMX_ERR_TIMEOUT)
            return rc;
        kmx_log_debug("mdp: no reply, retrying service=%s try=%d of=%d", service, attempt,
                      self->tries);
        // A fresh socket per try: the old one may hold a half-sent request or a late reply.
        s_close_socket(&self->sock);
    }
    return KMX_ERR_TIMEOUT;
}
