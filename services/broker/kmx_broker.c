/*  kmx_broker - Majordomo 7/MDP broker plus the XSUB/XPUB notification proxy. The broker's
    loop polls its ROUTER (and the ROUTER's monitor) only; the proxy forwards events on a
    thread of its own, so a burst of events never delays a request and a request never
    pays for polling the proxy's sockets. Each service keeps a FIFO of waiting workers (the
    head has been idle longest, so it gets the next request) and bounded FIFOs of pending
    requests, one for small requests (a put of a few records, a query) that go before the
    large documents waiting, a bounded number in a row. Everything read from the network
    is validated frame by frame; a bad peer is dropped, never trusted.  */
#include "kmx_broker.h"
#include "kmx_curve.h"
#include "kmx_err.h"
#include "kmx_log.h"
#include "kmx_mdp.h"
#include "kmx_msg.h"
#include "kmx_proc.h"

#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define S_MAX_FRAMES 8                   // longer messages are not MDP and are dropped whole
#define S_ID_MAX 255                     // ZeroMQ routing ids and MDP service names: 1..255 bytes
#define S_ID_TEXT_MAX (2 * S_ID_MAX + 3) // a routing id written as "0x" + hex
#define S_ENDPOINT_MAX 256               // longest endpoint text we keep
#define S_BATCH 1000                     // messages per socket per poll step, so no socket starves
#define S_SERVICES_MAX 4096              // distinct service names held at once
#define S_WORKERS_MAX 10000              // workers registered at once
#define S_SWEEP_MS 50                    // how often deadlines and expiry are checked
#define S_XPUB_HWM 100000                // subscribers may lag this many messages before losing any
#define S_ENVELOPE_MAX 1024              // room for MDP frames on top of the largest body
#define S_PROBES 5                       // heartbeats that test a worker whose connection closed
#define S_SMALL_BYTES (64 * 1024)        // requests up to this size go before larger ones waiting
#define S_SMALL_RUN 16                   // small requests handed out in a row while a large waits

typedef struct s_stat s_stat_t;
typedef struct s_worker s_worker_t;
typedef struct s_service s_service_t;
typedef struct s_request s_request_t;

// Statistics of one worker, kept after it leaves so its work stays visible.
struct s_stat {
    s_stat_t *next;             // next newer entry
    char service[S_ID_MAX + 1]; // service it served
    char worker[S_ID_TEXT_MAX]; // its routing id as text
    uint64_t requests;          // replies it returned
    uint64_t errors;            // of those, Error responses
    int alive;                  // still registered
};

struct s_worker {
    s_worker_t *next;      // next in the broker's list of all workers
    s_worker_t *wait_prev; // neighbours in the service's waiting list
    s_worker_t *wait_next;
    uint8_t id[S_ID_MAX];     // routing id
    size_t id_len;            // its length
    s_service_t *service;     // service it registered for
    s_stat_t *stat;           // its statistics entry
    int64_t expiry;           // expired unless it speaks before this, monotonic ms
    int waiting;              // idle, in service->wait_head list
    int busy;                 // a request was handed to it and its reply has not come
    uint8_t client[S_ID_MAX]; // while busy: the client it serves, the only one it may answer
    size_t client_len;        // its length
    int fd;                   // descriptor of its connection (ZMQ_SRCFD), -1 when unknown
    int probes;               // heartbeats left to test whether its connection is gone
    int64_t probe_at;         // when the next of them is due, monotonic ms
};

struct s_request {
    s_request_t *next;        // next newer request of the service
    uint8_t client[S_ID_MAX]; // client routing id
    size_t client_len;        // its length
    zmq_msg_t body;           // request body, owned
    size_t size;              // body bytes counted in the queues (the body reads 0 once sent)
    int64_t deadline;         // answered UNAVAILABLE after this if no worker exists
    int64_t queued;           // when it arrived, monotonic ms
    int64_t expires;          // when its sender stops waiting (its timeout_ms), 0: not said
};

// Pending requests, oldest first.
typedef struct {
    s_request_t *head; // oldest
    s_request_t *tail; // newest
} s_fifo_t;

struct s_service {
    s_service_t *next;       // next in the broker's list
    char name[S_ID_MAX + 1]; // service name
    s_fifo_t small;          // pending requests of at most S_SMALL_BYTES
    s_fifo_t large;          // the larger ones
    unsigned small_run;      // small requests handed out in a row while a large one waited
    size_t pending;          // requests queued
    size_t queued_bytes;     // body bytes of the queued requests
    s_worker_t *wait_head;   // worker idle longest
    s_worker_t *wait_tail;   // worker idle shortest
    size_t workers;          // registered workers, idle or busy
    size_t busy;             // of them, serving a request now
    uint64_t refused;        // requests refused because a queue limit was hit
    uint64_t bytes_in;       // request body bytes accepted into the queue, ever
};

struct kmx_broker {
    kmx_broker_config_t cfg;           // copy of the configuration (endpoints not used later)
    void *router;                      // MDP socket
    void *xsub;                        // publishers connect here; NULL without the proxy
    void *xpub;                        // subscribers connect here; NULL without the proxy
    void *proxy_pipe;                  // PAIR to the proxy thread: a message there stops it
    void *proxy_end;                   // the proxy thread's end of that pipe
    char proxy_endpoint[64];           // the pipe's inproc endpoint
    pthread_t proxy;                   // forwards XSUB <-> XPUB; owns xsub, xpub, proxy_end
    int proxy_running;                 // the proxy thread was started
    atomic_int proxy_failed;           // the proxy thread stopped on an error
    int64_t now;                       // monotonic ms, read once per wake-up of the loop
    int router_fd;                     // the ROUTER's ZMQ_FD: readable when it has news
    int monitor_fd;                    // the monitor's ZMQ_FD
    int router_ready;                  // the ROUTER may hold messages its descriptor missed
    int monitor_ready;                 // the monitor may hold events its descriptor missed
    char endpoints[3][S_ENDPOINT_MAX]; // bound endpoints by kmx_broker_socket_t
    s_service_t *services;             // every service with workers or requests
    size_t service_count;              // length of services
    s_worker_t *workers;               // every registered worker
    size_t worker_count;               // length of workers
    s_stat_t *stats;                   // statistics, oldest first
    size_t dead_stats;                 // entries of departed workers
    int64_t heartbeat_at;              // next heartbeat round
    int64_t sweep_at;                  // next expiry and deadline check
    char name[128];                    // "broker-<host>-<pid>"
    uint64_t routed;                   // requests handed to workers
    uint64_t replies;                  // replies returned to clients by workers
    atomic_uint_fast64_t events;       // messages forwarded from XSUB to XPUB (proxy thread)
    uint64_t unavailable;              // requests answered UNAVAILABLE by the broker
    uint64_t late;                     // requests whose timeout_ms passed in the queue
    uint64_t dropped;                  // malformed or undeliverable messages dropped
    uint64_t forbidden;                // requests refused for the sender's role (CURVE)
    uint64_t disconnected;             // workers dropped because their connection closed
    uint64_t expired;                  // workers dropped because they fell silent
    void *monitor;                     // PAIR receiving the ROUTER's disconnect events
    char monitor_endpoint[64];         // its inproc endpoint
    int64_t probe_at;                  // earliest due probe of a worker, INT64_MAX: none
    size_t queued_bytes;               // bytes of request bodies waiting in queues
    uint64_t bytes_in;                 // request body bytes accepted into queues, ever
    kmx_zap_t *zap;                    // the ZAP handler when CURVE is on, else NULL
};

// One outgoing frame: borrowed bytes, copied by ZeroMQ.
typedef struct {
    const void *data; // frame bytes
    size_t size;      // frame length
} s_part_t;

static int64_t s_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void s_close_frames(zmq_msg_t *frames, int count) {
    for (int i = 0; i < count; i++)
        zmq_msg_close(&frames[i]);
}

static int s_frame_is(zmq_msg_t *frame, const char *text) {
    size_t len = strlen(text);
    return zmq_msg_size(frame) == len && memcmp(zmq_msg_data(frame), text, len) == 0;
}

// Writes a routing id as text: itself when printable, else "0x" and hex. Never fails.
static void s_id_text(const uint8_t *id, size_t len, char *out) {
    int printable = len > 0;
    for (size_t i = 0; i < len; i++)
        printable = printable && id[i] > 0x20 && id[i] < 0x7f;
    if (printable) {
        memcpy(out, id, len);
        out[len] = '\0';
        return;
    }
    static const char hex[] = "0123456789abcdef";
    out[0] = '0';
    out[1] = 'x';
    for (size_t i = 0; i < len; i++) {
        out[2 + 2 * i] = hex[id[i] >> 4];
        out[3 + 2 * i] = hex[id[i] & 0xf];
    }
    out[2 + 2 * len] = '\0';
}

// Copies a service name frame into out. Returns 0, or KMX_ERR_INVAL for an empty, too long
// or non-text name (control bytes would end up in logs and error messages).
static int s_name_take(zmq_msg_t *frame, char *out) {
    size_t len = zmq_msg_size(frame);
    const uint8_t *data = zmq_msg_data(frame);
    if (len == 0 || len > S_ID_MAX)
        return KMX_ERR_INVAL;
    for (size_t i = 0; i < len; i++) {
        if (data[i] < 0x20 || data[i] == 0x7f)
            return KMX_ERR_INVAL;
    }
    memcpy(out, data, len);
    out[len] = '\0';
    return 0;
}

// ---- sending --------------------------------------------------------------------------

// Sends parts, then last (if not NULL), as one message on the ROUTER; the first part is the
// peer's routing id. Never blocks. Returns 0 or KMX_ERR_IO (peer gone or too slow). last
// stays the caller's to close either way.
static int s_send(kmx_broker_t *self, const s_part_t *parts, int count, zmq_msg_t *last) {
    int total = count + (last != NULL);
    self->router_ready = 1; // a send may take the ROUTER's wake-up (see kmx_broker_poll_once)
    for (int i = 0; i < count; i++) {
        int flags = ZMQ_DONTWAIT | (i + 1 < total ? ZMQ_SNDMORE : 0);
        if (zmq_send(self->router, parts[i].data, parts[i].size, flags) < 0)
            return KMX_ERR_IO;
    }
    if (last && zmq_msg_send(last, self->router, ZMQ_DONTWAIT) < 0)
        return KMX_ERR_IO;
    return 0;
}

static int s_send_worker_command(kmx_broker_t *self, const uint8_t *id, size_t id_len,
                                 uint8_t command) {
    s_part_t parts[] = {{id, id_len}, {"", 0}, {KMX_MDPW, strlen(KMX_MDPW)}, {&command, 1}};
    return s_send(self, parts, 4, NULL);
}

// Sends an MDP client reply with body bytes.
static void s_reply_client(kmx_broker_t *self, const uint8_t *client, size_t client_len,
                           const char *service, const void *body, size_t size) {
    s_part_t parts[] = {{client, client_len},
                        {"", 0},
                        {KMX_MDPC, strlen(KMX_MDPC)},
                        {service, strlen(service)},
                        {body, size}};
    if (s_send(self, parts, 5, NULL) != 0) {
        self->dropped++;
        kmx_log_debug("broker: client gone, reply dropped service=%s", service);
    }
}

// Answers a client with an error Response in the broker's own name.
static void s_reply_error(kmx_broker_t *self, const uint8_t *client, size_t client_len,
                          const char *service, int err, const char *message) {
    uint8_t *buf = NULL;
    size_t len = 0;
    if (kmx_msg_pack_error(NULL, err, message, &buf, &len) != 0) {
        kmx_log_error("broker: cannot pack error reply service=%s", service);
        return;
    }
    s_reply_client(self, client, client_len, service, buf, len);
    free(buf);
}

// ---- statistics -----------------------------------------------------------------------

// Forgets the oldest departed workers beyond the history limit.
static void s_stats_trim(kmx_broker_t *self) {
    s_stat_t **link = &self->stats;
    while (self->dead_stats > self->cfg.history_max && *link) {
        s_stat_t *st = *link;
        if (st->alive) {
            link = &st->next;
            continue;
        }
        *link = st->next;
        free(st);
        self->dead_stats--;
    }
}

// Finds the entry of a returning worker or appends a new one. Returns NULL without memory.
static s_stat_t *s_stat_require(kmx_broker_t *self, const char *service, const char *worker) {
    s_stat_t **link = &self->stats;
    for (; *link; link = &(*link)->next) {
        s_stat_t *st = *link;
        if (!st->alive && strcmp(st->service, service) == 0 && strcmp(st->worker, worker) == 0) {
            st->alive = 1;
            self->dead_stats--;
            return st;
        }
    }
    s_stat_t *st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    snprintf(st->service, sizeof st->service, "%s", service);
    snprintf(st->worker, sizeof st->worker, "%s", worker);
    st->alive = 1;
    *link = st;
    return st;
}

// ---- services and workers -------------------------------------------------------------

static s_service_t *s_service_find(kmx_broker_t *self, const char *name) {
    for (s_service_t *svc = self->services; svc; svc = svc->next) {
        if (strcmp(svc->name, name) == 0)
            return svc;
    }
    return NULL;
}

// Returns the service, creating it. NULL when the service table is full or memory is out.
static s_service_t *s_service_require(kmx_broker_t *self, const char *name) {
    s_service_t *svc = s_service_find(self, name);
    if (svc || self->service_count >= S_SERVICES_MAX)
        return svc;
    svc = calloc(1, sizeof *svc);
    if (!svc)
        return NULL;
    snprintf(svc->name, sizeof svc->name, "%s", name);
    svc->next = self->services;
    self->services = svc;
    self->service_count++;
    return svc;
}

// Frees a request already taken out of its queue (s_request_pop).
static void s_request_free(s_request_t *req) {
    zmq_msg_close(&req->body);
    free(req);
}

static s_fifo_t *s_fifo_of(s_service_t *svc, const s_request_t *req) {
    return req->size <= S_SMALL_BYTES ? &svc->small : &svc->large;
}

// Takes the oldest request out of q, one of svc's queues; the byte counts drop by the size
// it was counted with at queueing, whatever its body holds now (a sent body reads 0).
static s_request_t *s_fifo_take(kmx_broker_t *self, s_service_t *svc, s_fifo_t *q) {
    s_request_t *req = q->head;
    if (req) {
        q->head = req->next;
        if (!q->head)
            q->tail = NULL;
        svc->pending--;
        svc->queued_bytes -= req->size;
        self->queued_bytes -= req->size;
        req->next = NULL;
    }
    return req;
}

// Takes the request svc's next worker gets: the oldest small one, unless a large one has
// waited while S_SMALL_RUN small ones went first. So a put of one record waits for at
// most the document a worker is busy with, not for every document queued before it, and
// a stream of small requests cannot hold a large one back for long.
static s_request_t *s_request_pop(kmx_broker_t *self, s_service_t *svc) {
    if (svc->small.head && (!svc->large.head || svc->small_run < S_SMALL_RUN)) {
        svc->small_run = svc->large.head ? svc->small_run + 1 : 0;
        return s_fifo_take(self, svc, &svc->small);
    }
    svc->small_run = 0;
    return s_fifo_take(self, svc, &svc->large);
}

static void s_request_push_back(kmx_broker_t *self, s_service_t *svc, s_request_t *req) {
    s_fifo_t *q = s_fifo_of(svc, req);
    req->next = NULL;
    if (q->tail)
        q->tail->next = req;
    else
        q->head = req;
    q->tail = req;
    svc->pending++;
    svc->queued_bytes += req->size;
    self->queued_bytes += req->size;
}

static void s_request_push_front(kmx_broker_t *self, s_service_t *svc, s_request_t *req) {
    s_fifo_t *q = s_fifo_of(svc, req);
    req->next = q->head;
    q->head = req;
    if (!q->tail)
        q->tail = req;
    svc->pending++;
    svc->queued_bytes += req->size;
    self->queued_bytes += req->size;
}

static void s_wait_remove(s_service_t *svc, s_worker_t *w) {
    if (!w->waiting)
        return;
    if (w->wait_prev)
        w->wait_prev->wait_next = w->wait_next;
    else
        svc->wait_head = w->wait_next;
    if (w->wait_next)
        w->wait_next->wait_prev = w->wait_prev;
    else
        svc->wait_tail = w->wait_prev;
    w->wait_prev = w->wait_next = NULL;
    w->waiting = 0;
}

static void s_wait_append(s_service_t *svc, s_worker_t *w) {
    if (w->waiting)
        return;
    w->wait_prev = svc->wait_tail;
    w->wait_next = NULL;
    if (svc->wait_tail)
        svc->wait_tail->wait_next = w;
    else
        svc->wait_head = w;
    svc->wait_tail = w;
    w->waiting = 1;
}

static s_worker_t *s_worker_find(kmx_broker_t *self, const uint8_t *id, size_t id_len) {
    for (s_worker_t *w = self->workers; w; w = w->next) {
        if (w->id_len == id_len && memcmp(w->id, id, id_len) == 0)
            return w;
    }
    return NULL;
}

// Forgets a worker. Its statistics stay, marked departed. A request it was serving is lost;
// the client's retry brings it back.
static void s_worker_delete(kmx_broker_t *self, s_worker_t *w) {
    if (w->busy) {
        // Its client would wait out its whole timeout for a reply that cannot come.
        char why[S_ID_MAX + 96];
        snprintf(why, sizeof why, "the %s worker serving this request went away; retry",
                 w->service->name);
        s_reply_error(self, w->client, w->client_len, w->service->name, KMX_ERR_UNAVAILABLE, why);
        self->unavailable++;
    }
    s_wait_remove(w->service, w);
    w->service->workers--;
    w->service->busy -= w->busy != 0;
    w->stat->alive = 0;
    self->dead_stats++;
    for (s_worker_t **link = &self->workers; *link; link = &(*link)->next) {
        if (*link == w) {
            *link = w->next;
            break;
        }
    }
    self->worker_count--;
    free(w);
    s_stats_trim(self);
}

// Tells a peer it broke the protocol and forgets it.
static void s_worker_reject(kmx_broker_t *self, const uint8_t *id, size_t id_len, const char *why) {
    char text[S_ID_TEXT_MAX];
    s_id_text(id, id_len, text);
    kmx_log_warn("broker: worker protocol violation, disconnecting peer=%s reason=%s", text, why);
    s_send_worker_command(self, id, id_len, KMX_MDPW_DISCONNECT);
    s_worker_t *w = s_worker_find(self, id, id_len);
    if (w)
        s_worker_delete(self, w);
}

// ---- request bodies: only top-level protobuf tags are read --------------------------

#define S_TIMEOUT_TAG ((2u << 3) | 0u) // Request.timeout_ms, a varint

// Reads one protobuf varint at p[*i..n). Returns 0, or -1 when it is cut off.
static int s_varint(const uint8_t *p, size_t n, size_t *i, uint64_t *out) {
    *out = 0;
    for (int shift = 0; *i < n && shift < 64; shift += 7) {
        uint8_t b = p[(*i)++];
        *out |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return 0;
    }
    return -1;
}

// Steps over the value of a field of wire type `type` at p[*i..n). Returns 0, or -1 when
// it is cut off or of a type a kmx message does not use.
static int s_skip(const uint8_t *p, size_t n, size_t *i, unsigned type) {
    uint64_t len;
    size_t width = type == 1 ? 8 : 4;
    switch (type) {
    case 0:
        return s_varint(p, n, i, &len);
    case 1:
    case 5:
        if (width > n - *i)
            return -1;
        *i += width;
        return 0;
    case 2:
        if (s_varint(p, n, i, &len) != 0 || len > n - *i)
            return -1;
        *i += (size_t)len;
        return 0;
    default:
        return -1;
    }
}

// The timeout_ms a request body carries (the last one, as any protobuf decoder takes it),
// or 0 when it gives none or does not parse (the worker decides then).
static uint64_t s_body_timeout(const uint8_t *p, size_t n) {
    size_t i = 0;
    uint64_t key, value, found = 0;
    while (i < n && s_varint(p, n, &i, &key) == 0) {
        if (key == S_TIMEOUT_TAG) {
            if (s_varint(p, n, &i, &value) != 0)
                return 0;
            found = value;
        } else if (s_skip(p, n, &i, (unsigned)(key & 7u)) != 0)
            return 0;
    }
    return i == n ? found : 0;
}

// Appends timeout_ms = left to req's body: decoders take a field's last value, so the
// worker waits for storage only as long as the sender still waits. Out of memory the body
// stays as it came (the worker then waits the time first given).
static void s_stamp(s_request_t *req, uint64_t left) {
    uint8_t tail[11];
    size_t k = 0;
    tail[k++] = S_TIMEOUT_TAG;
    do {
        tail[k] = (uint8_t)(left & 0x7f);
        left >>= 7;
        tail[k++] |= left ? 0x80 : 0;
    } while (left);
    size_t n = zmq_msg_size(&req->body);
    zmq_msg_t grown;
    if (zmq_msg_init_size(&grown, n + k) != 0)
        return;
    memcpy(zmq_msg_data(&grown), zmq_msg_data(&req->body), n);
    memcpy((uint8_t *)zmq_msg_data(&grown) + n, tail, k);
    zmq_msg_move(&req->body, &grown);
    zmq_msg_close(&grown);
}

// Whether req's sender stopped waiting while it was queued (its timeout_ms passed): then
// it is answered DEADLINE_EXCEEDED and freed instead of being handed to a worker. A
// request that waited and still has time is stamped with what is left.
static int s_request_late(kmx_broker_t *self, s_service_t *svc, s_request_t *req) {
    if (!req->expires || self->now <= req->queued)
        return 0;
    if (req->expires > self->now) {
        s_stamp(req, (uint64_t)(req->expires - self->now));
        return 0;
    }
    char message[S_ID_MAX + 200];
    snprintf(message, sizeof message,
             "waited %lld ms in the broker's queue for a free '%s' worker, the whole of the "
             "request's timeout of %lld ms; ask again with a longer --timeout, or add workers",
             (long long)(self->now - req->queued), svc->name,
             (long long)(req->expires - req->queued));
    kmx_log_info("broker: request dropped, its timeout passed in the queue service=%s", svc->name);
    s_reply_error(self, req->client, req->client_len, svc->name, KMX_ERR_DEADLINE, message);
    self->late++;
    s_request_free(req);
    return 1;
}

// Hands pending requests to idle workers, longest idle first.
static void s_dispatch(kmx_broker_t *self, s_service_t *svc) {
    while (svc->pending && svc->wait_head) {
        s_request_t *req = s_request_pop(self, svc);
        if (s_request_late(self, svc, req))
            continue;
        s_worker_t *w = svc->wait_head;
        s_wait_remove(svc, w);
        uint8_t command = KMX_MDPW_REQUEST;
        s_part_t parts[] = {{w->id, w->id_len},
                            {"", 0},
                            {KMX_MDPW, strlen(KMX_MDPW)},
                            {&command, 1},
                            {req->client, req->client_len},
                            {"", 0}};
        if (s_send(self, parts, 6, &req->body) != 0) {
            // The worker is gone or stuck; if it lives its next heartbeat gets DISCONNECT.
            kmx_log_warn("broker: worker unreachable, dropping it service=%s worker=%s", svc->name,
                         w->stat->worker);
            s_request_push_front(self, svc, req);
            s_worker_delete(self, w);
            continue;
        }
        self->routed++;
        w->busy = 1;
        memcpy(w->client, req->client, req->client_len);
        w->client_len = req->client_len;
        svc->busy++;
        s_request_free(req);
    }
}

static void s_worker_new(kmx_broker_t *self, s_service_t *svc, const uint8_t *id, size_t id_len,
                         int fd) {
    char text[S_ID_TEXT_MAX];
    s_id_text(id, id_len, text);
    s_worker_t *w = self->worker_count < S_WORKERS_MAX ? calloc(1, sizeof *w) : NULL;
    s_stat_t *st = w ? s_stat_require(self, svc->name, text) : NULL;
    if (!st) {
        free(w);
        kmx_log_warn("broker: cannot take more workers peer=%s", text);
        s_send_worker_command(self, id, id_len, KMX_MDPW_DISCONNECT);
        return;
    }
    memcpy(w->id, id, id_len);
    w->id_len = id_len;
    w->service = svc;
    w->stat = st;
    w->fd = fd;
    w->expiry = self->now + (int64_t)self->cfg.heartbeat_ms * self->cfg.liveness;
    w->next = self->workers;
    self->workers = w;
    self->worker_count++;
    svc->workers++;
    s_wait_append(svc, w);
    kmx_log_info("broker: worker ready service=%s worker=%s", svc->name, text);
    s_dispatch(self, svc);
}

// ---- the kmx.broker service -----------------------------------------------------------

static int s_pack_pong(kmx_broker_t *self, const char *request_id, uint8_t **out, size_t *len) {
    Kmx__V1__PongResult pong = KMX__V1__PONG_RESULT__INIT;
    pong.service = (char *)KMX_BROKER_SERVICE;
    pong.worker = self->name;
    pong.version = (char *)KMX_VERSION;
    Kmx__V1__Response resp = KMX__V1__RESPONSE__INIT;
    resp.request_id = (char *)request_id;
    resp.result_case = KMX__V1__RESPONSE__RESULT_PONG;
    resp.pong = &pong;
    return kmx_msg_pack_response(&resp, out, len);
}

static size_t s_count_services(const kmx_broker_t *self) {
    size_t n = 0;
    for (const s_service_t *svc = self->services; svc; svc = svc->next)
        n += svc->workers > 0;
    return n;
}

static size_t s_count_pending(const kmx_broker_t *self) {
    size_t n = 0;
    for (const s_service_t *svc = self->services; svc; svc = svc->next)
        n += svc->pending;
    return n;
}

// The broker's counters: its totals, its limits, its process, then per service.
typedef struct {
    Kmx__V1__Counter *items;      // counters, filled in order
    Kmx__V1__Counter **ptrs;      // pointers to them, for the reply
    char (*names)[S_ID_MAX + 32]; // per-service counter names ("kmx.ingest.queued_bytes")
    size_t n;                     // counters filled
    size_t cap;                   // room in items, ptrs and names
} s_counters_t;

static void s_counter_add(s_counters_t *c, const char *name, uint64_t value) {
    if (c->n >= c->cap)
        return;
    kmx__v1__counter__init(&c->items[c->n]);
    c->items[c->n].name = (char *)name;
    c->items[c->n].has_value = 1;
    c->items[c->n].value = value;
    c->ptrs[c->n] = &c->items[c->n];
    c->n++;
}

static void s_counter_add_service(s_counters_t *c, const s_service_t *svc, const char *what,
                                  uint64_t value) {
    if (c->n >= c->cap)
        return;
    snprintf(c->names[c->n], sizeof c->names[c->n], "%s.%s", svc->name, what);
    s_counter_add(c, c->names[c->n], value);
}

#define S_COUNTERS_FIXED 22 // the counters before the per-service ones
#define S_COUNTERS_PER_SERVICE 7

static void s_fill_counters(const kmx_broker_t *self, s_counters_t *c) {
    size_t busy = 0;
    for (const s_service_t *svc = self->services; svc; svc = svc->next)
        busy += svc->busy;
    kmx_proc_t proc;
    kmx_proc_sample(&proc);
    s_counter_add(c, "requests", self->routed);
    s_counter_add(c, "replies", self->replies);
    s_counter_add(c, "workers", self->worker_count);
    s_counter_add(c, "services", s_count_services(self));
    s_counter_add(c, "events", atomic_load_explicit(&self->events, memory_order_relaxed));
    s_counter_add(c, "pending", s_count_pending(self));
    s_counter_add(c, "unavailable", self->unavailable);
    s_counter_add(c, "late", self->late);
    s_counter_add(c, "dropped", self->dropped);
    s_counter_add(c, "forbidden", self->forbidden);
    s_counter_add(c, "workers_disconnected", self->disconnected);
    s_counter_add(c, "workers_expired", self->expired);
    s_counter_add(c, "queued_requests", s_count_pending(self));
    s_counter_add(c, "queued_bytes", self->queued_bytes);
    s_counter_add(c, "clients_waiting", s_count_pending(self) + busy);
    s_counter_add(c, "limit_queue_max", self->cfg.queue_max);
    s_counter_add(c, "limit_service_queue_bytes", self->cfg.service_bytes_max);
    s_counter_add(c, "limit_queue_bytes", self->cfg.queued_bytes_max);
    s_counter_add(c, "bytes_in", self->bytes_in);
    s_counter_add(c, "rss_bytes", proc.rss_bytes);
    s_counter_add(c, "open_fds", proc.open_fds);
    s_counter_add(c, "uptime_s", proc.uptime_s);
    for (const s_service_t *svc = self->services; svc; svc = svc->next) {
        s_counter_add_service(c, svc, "queued_requests", svc->pending);
        s_counter_add_service(c, svc, "queued_bytes", svc->queued_bytes);
        s_counter_add_service(c, svc, "clients_waiting", svc->pending + svc->busy);
        s_counter_add_service(c, svc, "workers", svc->workers);
        s_counter_add_service(c, svc, "workers_busy", svc->busy);
        s_counter_add_service(c, svc, "refused", svc->refused);
        s_counter_add_service(c, svc, "bytes_in", svc->bytes_in);
    }
}

static int s_pack_stats(kmx_broker_t *self, const char *request_id, uint8_t **out, size_t *len) {
    size_t n = 0;
    for (s_stat_t *st = self->stats; st; st = st->next)
        n++;
    s_counters_t c = {0};
    c.cap = S_COUNTERS_FIXED + S_COUNTERS_PER_SERVICE * self->service_count;
    c.items = calloc(c.cap, sizeof *c.items);
    c.ptrs = calloc(c.cap, sizeof *c.ptrs);
    c.names = calloc(c.cap, sizeof *c.names);
    Kmx__V1__WorkerStats *ws = calloc(n + 1, sizeof *ws);
    Kmx__V1__WorkerStats **wp = calloc(n + 1, sizeof *wp);
    int rc = KMX_ERR_NOMEM;
    if (ws && wp && c.items && c.ptrs && c.names) {
        size_t i = 0;
        for (s_stat_t *st = self->stats; st; st = st->next, i++) {
            kmx__v1__worker_stats__init(&ws[i]);
            ws[i].service = st->service;
            ws[i].worker = st->worker;
            ws[i].has_requests = 1;
            ws[i].requests = st->requests;
            ws[i].has_errors = 1;
            ws[i].errors = st->errors;
            ws[i].has_alive = 1;
            ws[i].alive = st->alive != 0;
            wp[i] = &ws[i];
        }
        s_fill_counters(self, &c);
        Kmx__V1__StatsResult stats = KMX__V1__STATS_RESULT__INIT;
        stats.service = (char *)KMX_BROKER_SERVICE;
        stats.worker = self->name;
        stats.n_counters = c.n;
        stats.counters = c.ptrs;
        stats.n_workers = n;
        stats.workers = wp;
        Kmx__V1__Response resp = KMX__V1__RESPONSE__INIT;
        resp.request_id = (char *)request_id;
        resp.result_case = KMX__V1__RESPONSE__RESULT_STATS;
        resp.stats = &stats;
        rc = kmx_msg_pack_response(&resp, out, len);
    }
    free(ws);
    free(wp);
    free(c.items);
    free(c.ptrs);
    free(c.names);
    return rc;
}

static void s_on_internal(kmx_broker_t *self, const uint8_t *client, size_t client_len,
                          zmq_msg_t *body) {
    Kmx__V1__Request *req = kmx_msg_request_unpack(zmq_msg_data(body), zmq_msg_size(body));
    uint8_t *out = NULL;
    size_t len = 0;
    int rc;
    if (!req)
        rc = kmx_msg_pack_error(NULL, KMX_ERR_DECODE, "body is not a kmx.v1.Request", &out, &len);
    else if (req->body_case == KMX__V1__REQUEST__BODY_PING)
        rc = s_pack_pong(self, req->request_id, &out, &len);
    else if (req->body_case == KMX__V1__REQUEST__BODY_STATS)
        rc = s_pack_stats(self, req->request_id, &out, &len);
    else
        rc = kmx_msg_pack_error(req->request_id, KMX_ERR_UNSUPPORTED,
                                "kmx.broker answers ping and stats only", &out, &len);
    if (req)
        kmx__v1__request__free_unpacked(req, NULL);
    if (rc == 0)
        s_reply_client(self, client, client_len, KMX_BROKER_SERVICE, out, len);
    else
        kmx_log_error("broker: cannot pack reply err=%s", kmx_strerror(rc));
    free(out);
}

// ---- incoming messages ----------------------------------------------------------------

// Whether a request of size body bytes for svc (NULL: the service table is full) must be
// refused; why then names the limit that was hit, its value and the setting that raises it.
static int s_queue_refuses(const kmx_broker_t *self, const s_service_t *svc, const char *name,
                           size_t size, char *why, size_t why_size) {
    const kmx_broker_config_t *cfg = &self->cfg;
    if (!svc)
        snprintf(why, why_size,
                 "broker queue full: the broker serves at most %d services; try again later",
                 S_SERVICES_MAX);
    else if (svc->pending >= cfg->queue_max)
        snprintf(why, why_size,
                 "broker queue full: service '%s' has %zu requests waiting, the limit of %zu "
                 "(--queue-max, KMX_BROKER_QUEUE_MAX); try again later",
                 name, svc->pending, cfg->queue_max);
    else if (svc->queued_bytes + size > cfg->service_bytes_max)
        snprintf(why, why_size,
                 "broker queue full: service '%s' holds %zu bytes of requests, with %zu more "
                 "over the limit of %zu (--service-queue-bytes, KMX_BROKER_SERVICE_QUEUE_BYTES); "
                 "try again later",
                 name, svc->queued_bytes, size, cfg->service_bytes_max);
    else if (self->queued_bytes + size > cfg->queued_bytes_max)
        snprintf(why, why_size,
                 "broker queue full: all services hold %zu bytes of requests, with %zu more over "
                 "the limit of %zu (--queue-bytes, KMX_BROKER_QUEUE_BYTES); try again later",
                 self->queued_bytes, size, cfg->queued_bytes_max);
    else
        return 0;
    return 1;
}

// [client][empty][MDPC01][service][body]
static void s_on_client(kmx_broker_t *self, zmq_msg_t *frames, int count) {
    char name[S_ID_MAX + 1];
    if (count != 5 || s_name_take(&frames[3], name) != 0) {
        self->dropped++;
        kmx_log_debug("broker: dropping malformed client request frames=%d", count);
        return;
    }
    const uint8_t *client = zmq_msg_data(&frames[0]);
    size_t client_len = zmq_msg_size(&frames[0]);
    if (strcmp(name, KMX_BROKER_SERVICE) == 0) {
        s_on_internal(self, client, client_len, &frames[4]);
        return;
    }
    s_service_t *svc = s_service_require(self, name);
    size_t size = zmq_msg_size(&frames[4]);
    char why[S_ID_MAX + 192];
    if (s_queue_refuses(self, svc, name, size, why, sizeof why)) {
        kmx_log_warn("broker: request refused service=%s reason=\"%s\"", name, why);
        self->unavailable++;
        if (svc)
            svc->refused++;
        s_reply_error(self, client, client_len, name, KMX_ERR_UNAVAILABLE, why);
        return;
    }
    s_request_t *req = calloc(1, sizeof *req);
    if (!req) {
        self->dropped++;
        return;
    }
    memcpy(req->client, client, client_len);
    req->client_len = client_len;
    zmq_msg_init(&req->body);
    zmq_msg_move(&req->body, &frames[4]);
    req->size = size;
    req->deadline = self->now + self->cfg.request_timeout_ms;
    req->queued = self->now;
    uint64_t asked = s_body_timeout(zmq_msg_data(&req->body), size);
    req->expires = asked ? self->now + (int64_t)(asked < INT32_MAX ? asked : INT32_MAX) : 0;
    if (req->expires && req->expires < req->deadline)
        req->deadline = req->expires; // nobody waits for the "no worker" answer after that
    s_request_push_back(self, svc, req);
    svc->bytes_in += size;
    self->bytes_in += size;
    s_dispatch(self, svc);
}

// [worker][empty][MDPW01][READY][service]
static void s_on_ready(kmx_broker_t *self, s_worker_t *w, zmq_msg_t *frames, int count, int fd) {
    const uint8_t *id = zmq_msg_data(&frames[0]);
    size_t id_len = zmq_msg_size(&frames[0]);
    char name[S_ID_MAX + 1];
    if (count != 5 || s_name_take(&frames[4], name) != 0 || strcmp(name, KMX_BROKER_SERVICE) == 0) {
        s_worker_reject(self, id, id_len, "bad READY");
        return;
    }
    // A worker that reconnected keeps its routing id; start its session over.
    if (w)
        s_worker_delete(self, w);
    s_service_t *svc = s_service_require(self, name);
    if (!svc) {
        s_worker_reject(self, id, id_len, "too many services");
        return;
    }
    s_worker_new(self, svc, id, id_len, fd);
}

// Returns nonzero when a reply body is a kmx.v1.Response carrying an Error (field 2). Only
// the top-level tags are walked, so the broker counts each worker's error replies (the
// worker's own `errors` counter) without decoding answers.
static int s_body_is_error(const uint8_t *p, size_t n) {
    size_t i = 0;
    uint64_t key;
    while (i < n) {
        if (s_varint(p, n, &i, &key) != 0)
            return 0;
        if (key == ((2u << 3) | 2u))
            return 1;
        if (s_skip(p, n, &i, (unsigned)(key & 7u)) != 0)
            return 0;
    }
    return 0;
}

// [worker][empty][MDPW01][REPLY][client][empty][body]
static void s_on_reply(kmx_broker_t *self, s_worker_t *w, zmq_msg_t *frames, int count) {
    const uint8_t *id = zmq_msg_data(&frames[0]);
    size_t id_len = zmq_msg_size(&frames[0]);
    if (!w || count != 7 || zmq_msg_size(&frames[4]) == 0 || zmq_msg_size(&frames[4]) > S_ID_MAX ||
        zmq_msg_size(&frames[5]) != 0) {
        s_worker_reject(self, id, id_len, w ? "bad REPLY" : "REPLY before READY");
        return;
    }
    // A worker answers the one client it was handed, once: anything else is forged.
    if (!w->busy || zmq_msg_size(&frames[4]) != w->client_len ||
        memcmp(zmq_msg_data(&frames[4]), w->client, w->client_len) != 0) {
        self->dropped++;
        s_worker_reject(self, id, id_len, "REPLY to a client it was not serving");
        return;
    }
    if (s_body_is_error(zmq_msg_data(&frames[6]), zmq_msg_size(&frames[6])))
        w->stat->errors++;
    s_part_t parts[] = {{zmq_msg_data(&frames[4]), zmq_msg_size(&frames[4])},
                        {"", 0},
                        {KMX_MDPC, strlen(KMX_MDPC)},
                        {w->service->name, strlen(w->service->name)}};
    if (s_send(self, parts, 4, &frames[6]) != 0) {
        self->dropped++;
        kmx_log_debug("broker: client gone, reply dropped service=%s", w->service->name);
    }
    self->replies++;
    w->stat->requests++;
    w->service->busy -= w->busy != 0;
    w->busy = 0;
    s_wait_append(w->service, w);
    s_dispatch(self, w->service);
}

// [worker][empty][MDPW01][command][...]
static void s_on_worker(kmx_broker_t *self, zmq_msg_t *frames, int count) {
    const uint8_t *id = zmq_msg_data(&frames[0]);
    size_t id_len = zmq_msg_size(&frames[0]);
    s_worker_t *w = s_worker_find(self, id, id_len);
    // The descriptor of the connection it came in on: when that closes (a disconnect event
    // on the monitor) the worker is tested at once instead of waiting out its expiry.
    int fd = zmq_msg_get(&frames[0], ZMQ_SRCFD);
    if (w) {
        w->expiry = self->now + (int64_t)self->cfg.heartbeat_ms * self->cfg.liveness;
        w->fd = fd;
    }
    uint8_t command = 0;
    if (count >= 4 && zmq_msg_size(&frames[3]) == 1)
        command = *(const uint8_t *)zmq_msg_data(&frames[3]);
    switch (command) {
    case KMX_MDPW_READY:
        s_on_ready(self, w, frames, count, fd);
        break;
    case KMX_MDPW_REPLY:
        s_on_reply(self, w, frames, count);
        break;
    case KMX_MDPW_HEARTBEAT:
        if (!w || count != 4)
            s_worker_reject(self, id, id_len, w ? "bad HEARTBEAT" : "HEARTBEAT before READY");
        break;
    case KMX_MDPW_DISCONNECT:
        if (w) {
            kmx_log_info("broker: worker left service=%s worker=%s", w->service->name,
                         w->stat->worker);
            s_worker_delete(self, w);
        }
        break;
    default:
        s_worker_reject(self, id, id_len, "unknown command");
    }
}

// With CURVE on, whether the sender's role (set by the ZAP handler) allows the message:
// workers need the service role; a reader may use kmx.query and kmx.broker only; writers
// and services may use every service. Refused client requests are answered FORBIDDEN.
static int s_allowed(kmx_broker_t *self, zmq_msg_t *frames, int count, int worker) {
    if (!self->zap)
        return 1;
    const char *role = kmx_curve_role(&frames[count - 1]);
    if (!role)
        role = "";
    if (worker) {
        if (strcmp(role, KMX_CURVE_SERVICE) == 0)
            return 1;
        self->forbidden++;
        kmx_log_warn("broker: worker refused, its key has role '%s', not service", role);
        s_worker_reject(self, zmq_msg_data(&frames[0]), zmq_msg_size(&frames[0]),
                        "worker key without the service role");
        return 0;
    }
    char name[S_ID_MAX + 1];
    if (count != 5 || s_name_take(&frames[3], name) != 0)
        return 1; // malformed: s_on_client drops it
    if (strcmp(role, KMX_CURVE_WRITER) == 0 || strcmp(role, KMX_CURVE_SERVICE) == 0 ||
        (strcmp(role, KMX_CURVE_READER) == 0 &&
         (strcmp(name, "kmx.query") == 0 || strcmp(name, KMX_BROKER_SERVICE) == 0)))
        return 1;
    self->forbidden++;
    char why[S_ID_MAX + 96];
    snprintf(why, sizeof why, "permission denied: a %.20s key may not use %s",
             role[0] ? role : "key without a role", name);
    kmx_log_warn("broker: request refused service=%s role=%s", name, role);
    s_reply_error(self, zmq_msg_data(&frames[0]), zmq_msg_size(&frames[0]), name, KMX_ERR_FORBIDDEN,
                  why);
    return 0;
}

static void s_on_message(kmx_broker_t *self, zmq_msg_t *frames, int count) {
    if (count >= 3 && zmq_msg_size(&frames[1]) == 0) {
        if (s_frame_is(&frames[2], KMX_MDPC)) {
            if (s_allowed(self, frames, count, 0))
                s_on_client(self, frames, count);
            return;
        }
        if (s_frame_is(&frames[2], KMX_MDPW)) {
            if (s_allowed(self, frames, count, 1))
                s_on_worker(self, frames, count);
            return;
        }
    }
    self->dropped++;
    char text[S_ID_TEXT_MAX];
    s_id_text(zmq_msg_data(&frames[0]), zmq_msg_size(&frames[0]), text);
    kmx_log_debug("broker: dropping non-MDP message peer=%s frames=%d", text, count);
}

// Reads one whole message into frames (up to max). Returns the frame count, 0 if nothing
// was waiting, KMX_ERR_TOO_BIG if it had more than max frames (all dropped), or
// KMX_ERR_INTERNAL when the context was terminated.
static int s_recv_frames(void *sock, zmq_msg_t *frames, int max) {
    int count = 0;
    int more = 1;
    while (more) {
        zmq_msg_t part;
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, sock, ZMQ_DONTWAIT) < 0) {
            int err = errno;
            zmq_msg_close(&part);
            s_close_frames(frames, count < max ? count : max);
            return err == EAGAIN && count == 0 ? 0 : KMX_ERR_INTERNAL;
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

static int s_drain_router(kmx_broker_t *self) {
    for (int i = 0; i < S_BATCH; i++) {
        zmq_msg_t frames[S_MAX_FRAMES];
        int count = s_recv_frames(self->router, frames, S_MAX_FRAMES);
        if (count == 0) {
            self->router_ready = 0; // read to EAGAIN, with the socket's commands processed
            return 0;
        }
        if (count == KMX_ERR_INTERNAL)
            return count;
        if (count == KMX_ERR_TOO_BIG) {
            self->dropped++;
            kmx_log_debug("broker: dropping message with too many frames");
            continue;
        }
        s_on_message(self, frames, count);
        s_close_frames(frames, count);
    }
    self->router_ready = 1; // more may wait: the next turn does not sleep
    return 0;
}

// Moves whole messages from one proxy socket to the other, frame by frame, so multi-part
// messages arrive whole. Returns 0 or KMX_ERR_INTERNAL.
static int s_forward(void *from, void *to, atomic_uint_fast64_t *counter) {
    for (int i = 0; i < S_BATCH; i++) {
        int more = 1;
        int first = 1;
        int sent = 1;
        while (more) {
            zmq_msg_t part;
            zmq_msg_init(&part);
            if (zmq_msg_recv(&part, from, ZMQ_DONTWAIT) < 0) {
                int err = errno;
                zmq_msg_close(&part);
                return first && err == EAGAIN ? 0 : KMX_ERR_INTERNAL;
            }
            first = 0;
            more = zmq_msg_more(&part);
            if (sent && zmq_msg_send(&part, to, ZMQ_DONTWAIT | (more ? ZMQ_SNDMORE : 0)) < 0)
                sent = 0;
            zmq_msg_close(&part);
        }
        if (sent && counter)
            atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
    }
    return 0;
}

// The notification proxy's loop, on its own thread: forwards events from publishers to
// subscribers and subscriptions back, whole messages, up to S_BATCH per socket per wake-up,
// until a message on its pipe says stop. On an error it flags proxy_failed, which ends the
// broker's loop too. It closes its sockets itself before it returns.
static void *s_proxy_run(void *arg) {
    kmx_broker_t *self = arg;
    zmq_pollitem_t items[3] = {{self->xsub, 0, ZMQ_POLLIN, 0},
                               {self->xpub, 0, ZMQ_POLLIN, 0},
                               {self->proxy_end, 0, ZMQ_POLLIN, 0}};
    for (;;) {
        int rc = zmq_poll(items, 3, -1);
        if (rc >= 0 && (items[2].revents & ZMQ_POLLIN))
            break;
        if (rc >= 0 && (items[0].revents & ZMQ_POLLIN))
            rc = s_forward(self->xsub, self->xpub, &self->events);
        if (rc >= 0 && (items[1].revents & ZMQ_POLLIN))
            rc = s_forward(self->xpub, self->xsub, NULL);
        if (rc < 0 && errno != EINTR) {
            kmx_log_error("broker: event proxy stopped err=%s", zmq_strerror(errno));
            atomic_store(&self->proxy_failed, 1);
            break;
        }
    }
    zmq_close(self->xsub);
    zmq_close(self->xpub);
    zmq_close(self->proxy_end);
    return NULL;
}

// ---- timers ---------------------------------------------------------------------------

static void s_send_heartbeats(kmx_broker_t *self) {
    s_worker_t *next = NULL;
    for (s_worker_t *w = self->workers; w; w = next) {
        next = w->next;
        if (w->waiting && s_send_worker_command(self, w->id, w->id_len, KMX_MDPW_HEARTBEAT) != 0) {
            kmx_log_info("broker: worker unreachable service=%s worker=%s", w->service->name,
                         w->stat->worker);
            s_worker_delete(self, w);
        }
    }
}

static void s_purge_workers(kmx_broker_t *self, int64_t now) {
    s_worker_t *next = NULL;
    for (s_worker_t *w = self->workers; w; w = next) {
        next = w->next;
        if (now >= w->expiry) {
            kmx_log_warn("broker: worker expired service=%s worker=%s", w->service->name,
                         w->stat->worker);
            self->expired++;
            s_worker_delete(self, w);
        }
    }
}

// Tests the workers whose connection may have closed with a heartbeat each: the ROUTER
// refuses it (EHOSTUNREACH) once the connection is gone, so a killed worker is dropped, and
// the client of the request it held answered UNAVAILABLE, within milliseconds of its death
// instead of after its 7.5 s expiry. The event can come before the ROUTER has taken the
// connection down, so a worker is tried again a few times over half a second; a live one
// (its descriptor reused by a new connection) just gets a few extra heartbeats.
static void s_probe_workers(kmx_broker_t *self, int64_t now) {
    static const int after[S_PROBES] = {1, 5, 25, 100, 0}; // ms from one heartbeat to the next
    if (now < self->probe_at)
        return;
    self->probe_at = INT64_MAX;
    s_worker_t *next = NULL;
    for (s_worker_t *w = self->workers; w; w = next) {
        next = w->next;
        if (w->probes == 0)
            continue;
        if (now >= w->probe_at) {
            uint8_t command = KMX_MDPW_HEARTBEAT;
            s_part_t parts[] = {
                {w->id, w->id_len}, {"", 0}, {KMX_MDPW, strlen(KMX_MDPW)}, {&command, 1}};
            if (s_send(self, parts, 4, NULL) != 0 && errno == EHOSTUNREACH) {
                kmx_log_warn("broker: worker connection closed service=%s worker=%s",
                             w->service->name, w->stat->worker);
                self->disconnected++;
                s_worker_delete(self, w);
                continue;
            }
            w->probe_at = now + after[S_PROBES - w->probes];
            w->probes--;
        }
        if (w->probes > 0 && w->probe_at < self->probe_at)
            self->probe_at = w->probe_at;
    }
}

// Reads the ROUTER's disconnect events: each names the descriptor of a connection that
// closed; the workers that came in on it (or whose descriptor is unknown) are tested.
static int s_drain_monitor(kmx_broker_t *self) {
    for (int i = 0; i < S_BATCH; i++) {
        zmq_msg_t frames[2];
        int count = s_recv_frames(self->monitor, frames, 2);
        if (count == 0) {
            self->monitor_ready = 0;
            return 0;
        }
        if (count == KMX_ERR_INTERNAL)
            return count;
        if (count < 0)
            continue;
        uint16_t event = 0;
        uint32_t fd = 0;
        if (zmq_msg_size(&frames[0]) == 6) {
            memcpy(&event, zmq_msg_data(&frames[0]), sizeof event);
            memcpy(&fd, (const uint8_t *)zmq_msg_data(&frames[0]) + 2, sizeof fd);
        }
        s_close_frames(frames, count);
        if (event != ZMQ_EVENT_DISCONNECTED)
            continue;
        int64_t now = self->now;
        for (s_worker_t *w = self->workers; w; w = w->next) {
            if (w->fd < 0 || (uint32_t)w->fd == fd) {
                w->probes = S_PROBES;
                w->probe_at = now;
                self->probe_at = now;
            }
        }
    }
    self->monitor_ready = 1;
    return 0;
}

// Answers requests that waited too long for a service without workers, and forgets
// services that have neither workers nor requests.
static void s_expire_requests(kmx_broker_t *self, int64_t now) {
    for (s_service_t **link = &self->services; *link;) {
        s_service_t *svc = *link;
        for (int lane = 0; lane < 2 && svc->workers == 0; lane++) {
            s_fifo_t *q = lane ? &svc->large : &svc->small;
            while (q->head && now >= q->head->deadline) {
                s_request_t *req = s_fifo_take(self, svc, q);
                char message[S_ID_MAX + 64];
                snprintf(message, sizeof message, "no worker for service '%s'", svc->name);
                kmx_log_info("broker: no worker, request answered UNAVAILABLE service=%s",
                             svc->name);
                s_reply_error(self, req->client, req->client_len, svc->name, KMX_ERR_UNAVAILABLE,
                              message);
                self->unavailable++;
                s_request_free(req);
            }
        }
        if (svc->workers == 0 && !svc->pending) {
            *link = svc->next;
            self->service_count--;
            free(svc);
        } else
            link = &svc->next;
    }
}

static void s_tick(kmx_broker_t *self) {
    int64_t now = self->now;
    s_probe_workers(self, now);
    if (now >= self->heartbeat_at) {
        s_send_heartbeats(self);
        self->heartbeat_at = now + self->cfg.heartbeat_ms;
    }
    if (now >= self->sweep_at) {
        s_purge_workers(self, now);
        s_expire_requests(self, now);
        self->sweep_at = now + S_SWEEP_MS;
    }
}

// ---- lifecycle ------------------------------------------------------------------------

void kmx_broker_config_init(kmx_broker_config_t *cfg) {
    assert(cfg);
    cfg->bind = "tcp://127.0.0.1:5555";
    cfg->publish_bind = "tcp://127.0.0.1:5558";
    cfg->events_bind = "tcp://127.0.0.1:5557";
    cfg->heartbeat_ms = KMX_MDP_HEARTBEAT_MS;
    cfg->liveness = KMX_MDP_LIVENESS;
    cfg->request_timeout_ms = 3000;
    cfg->queue_max = 10000;
    cfg->service_bytes_max = 384u * 1024u * 1024u;
    cfg->queued_bytes_max = 512u * 1024u * 1024u;
    cfg->history_max = 1024;
}

// Opens and binds one socket, recording the endpoint it really got.
static void *s_bind(void *ctx, int type, const char *endpoint, char *bound) {
    void *sock = zmq_socket(ctx, type);
    if (!sock) {
        kmx_log_error("broker: cannot create socket err=%s", zmq_strerror(errno));
        return NULL;
    }
    int zero = 0;
    int one = 1;
    int hwm = S_XPUB_HWM;
    int64_t max_size = (int64_t)KMX_MSG_MAX + S_ENVELOPE_MAX;
    int rc = zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero);
    if (rc == 0 && type != ZMQ_XPUB)
        rc = zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &max_size, sizeof max_size);
    if (rc == 0 && type == ZMQ_ROUTER)
        rc = zmq_setsockopt(sock, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    if (rc == 0 && type == ZMQ_ROUTER)
        rc = zmq_setsockopt(sock, ZMQ_ROUTER_HANDOVER, &one, sizeof one);
    if (rc == 0 && type == ZMQ_XPUB)
        rc = zmq_setsockopt(sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    const char *domain = type == ZMQ_ROUTER ? KMX_CURVE_DOMAIN_CLIENTS
                         : type == ZMQ_XSUB ? KMX_CURVE_DOMAIN_PUBLISHERS
                                            : KMX_CURVE_DOMAIN_EVENTS;
    if (rc == 0 && kmx_curve_server(sock, domain) != 0) {
        zmq_close(sock);
        return NULL; // logged: which setting is missing
    }
    if (rc == 0)
        rc = zmq_bind(sock, endpoint);
    size_t size = S_ENDPOINT_MAX;
    if (rc == 0)
        rc = zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, bound, &size);
    if (rc != 0) {
        kmx_log_error("broker: cannot bind endpoint=%s err=%s", endpoint, zmq_strerror(errno));
        zmq_close(sock);
        return NULL;
    }
    return sock;
}

static int s_fd_of(void *sock, int *fd) {
    size_t size = sizeof *fd;
    return zmq_getsockopt(sock, ZMQ_FD, fd, &size);
}

// Has the ROUTER report each connection that closes to a PAIR of the broker's own, so a
// worker that dies (its process killed, its host gone) is noticed at once. ZMQ_ROUTER_NOTIFY
// would say it in-band but is a draft option Debian's libzmq 4.3.4 does not build.
static int s_monitor_start(kmx_broker_t *self, void *ctx) {
    snprintf(self->monitor_endpoint, sizeof self->monitor_endpoint, "inproc://kmx-broker-%p",
             (void *)self);
    int zero = 0;
    if (zmq_socket_monitor(self->router, self->monitor_endpoint, ZMQ_EVENT_DISCONNECTED) != 0 ||
        !(self->monitor = zmq_socket(ctx, ZMQ_PAIR)) ||
        zmq_setsockopt(self->monitor, ZMQ_LINGER, &zero, sizeof zero) != 0 ||
        zmq_connect(self->monitor, self->monitor_endpoint) != 0 ||
        s_fd_of(self->router, &self->router_fd) != 0 ||
        s_fd_of(self->monitor, &self->monitor_fd) != 0) {
        kmx_log_error("broker: cannot monitor its socket err=%s", zmq_strerror(errno));
        return KMX_ERR_INTERNAL;
    }
    return 0;
}

// Starts the proxy thread. Its sockets are made and bound here, so a failure is reported by
// kmx_broker_new; from pthread_create on (a full memory barrier, what ZeroMQ asks of a socket
// that changes threads) they belong to that thread alone. It runs with signals blocked, so
// SIGINT and SIGTERM interrupt the broker's own poll.
static int s_proxy_start(kmx_broker_t *self, void *ctx) {
    snprintf(self->proxy_endpoint, sizeof self->proxy_endpoint, "inproc://kmx-broker-proxy-%p",
             (void *)self);
    int zero = 0;
    if (!(self->proxy_pipe = zmq_socket(ctx, ZMQ_PAIR)) ||
        zmq_setsockopt(self->proxy_pipe, ZMQ_LINGER, &zero, sizeof zero) != 0 ||
        zmq_bind(self->proxy_pipe, self->proxy_endpoint) != 0 ||
        !(self->proxy_end = zmq_socket(ctx, ZMQ_PAIR)) ||
        zmq_setsockopt(self->proxy_end, ZMQ_LINGER, &zero, sizeof zero) != 0 ||
        zmq_connect(self->proxy_end, self->proxy_endpoint) != 0) {
        kmx_log_error("broker: cannot make the event proxy's pipe err=%s", zmq_strerror(errno));
        return KMX_ERR_INTERNAL;
    }
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(&self->proxy, NULL, s_proxy_run, self);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        kmx_log_error("broker: cannot start the event proxy thread err=%s", strerror(rc));
        return KMX_ERR_INTERNAL;
    }
    self->proxy_running = 1;
    return 0;
}

// Stops the proxy thread, which closes its sockets, or closes them when it never started.
static void s_proxy_stop(kmx_broker_t *self) {
    if (self->proxy_running) {
        if (zmq_send(self->proxy_pipe, "", 0, ZMQ_DONTWAIT) != 0)
            kmx_log_warn("broker: cannot stop the event proxy err=%s", zmq_strerror(errno));
        pthread_join(self->proxy, NULL);
        self->proxy_running = 0;
    } else {
        if (self->xsub)
            zmq_close(self->xsub);
        if (self->xpub)
            zmq_close(self->xpub);
        if (self->proxy_end)
            zmq_close(self->proxy_end);
    }
    self->xsub = self->xpub = self->proxy_end = NULL;
    if (self->proxy_pipe)
        zmq_close(self->proxy_pipe);
    self->proxy_pipe = NULL;
}

static int s_config_is_valid(const kmx_broker_config_t *cfg) {
    return cfg->bind && cfg->heartbeat_ms > 0 && cfg->liveness > 0 &&
           cfg->request_timeout_ms >= 0 && cfg->queue_max > 0 && cfg->service_bytes_max > 0 &&
           cfg->queued_bytes_max > 0 && (cfg->publish_bind == NULL) == (cfg->events_bind == NULL);
}

kmx_broker_t *kmx_broker_new(void *ctx, const kmx_broker_config_t *cfg) {
    assert(ctx && cfg);
    if (!s_config_is_valid(cfg)) {
        kmx_log_error("broker: invalid configuration");
        return NULL;
    }
    kmx_broker_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->cfg = *cfg;
    // The ZAP handler must listen before any CURVE server socket binds.
    if (kmx_zap_start(ctx, &self->zap) != 0) {
        free(self);
        return NULL;
    }
    self->router = s_bind(ctx, ZMQ_ROUTER, cfg->bind, self->endpoints[KMX_BROKER_ROUTER]);
    int ok = self->router != NULL;
    if (ok && cfg->publish_bind) {
        self->xsub = s_bind(ctx, ZMQ_XSUB, cfg->publish_bind, self->endpoints[KMX_BROKER_XSUB]);
        self->xpub = self->xsub
                         ? s_bind(ctx, ZMQ_XPUB, cfg->events_bind, self->endpoints[KMX_BROKER_XPUB])
                         : NULL;
        ok = self->xpub != NULL;
    }
    if (ok)
        ok = s_monitor_start(self, ctx) == 0;
    if (ok && self->xsub)
        ok = s_proxy_start(self, ctx) == 0;
    char host[64] = "localhost";
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = '\0';
    snprintf(self->name, sizeof self->name, "broker-%s-%ld", host, (long)getpid());
    int64_t now = s_now_ms();
    self->now = now;
    self->heartbeat_at = now + cfg->heartbeat_ms;
    self->sweep_at = now + S_SWEEP_MS;
    self->probe_at = INT64_MAX;
    self->router_ready = self->monitor_ready = 1;
    if (!ok)
        kmx_broker_destroy(&self);
    return self;
}

void kmx_broker_destroy(kmx_broker_t **self_p) {
    if (!self_p || !*self_p)
        return;
    kmx_broker_t *self = *self_p;
    s_proxy_stop(self);
    while (self->workers)
        s_worker_delete(self, self->workers);
    while (self->services) {
        s_service_t *svc = self->services;
        self->services = svc->next;
        for (s_request_t *req = s_request_pop(self, svc); req; req = s_request_pop(self, svc))
            s_request_free(req);
        free(svc);
    }
    while (self->stats) {
        s_stat_t *st = self->stats;
        self->stats = st->next;
        free(st);
    }
    if (self->monitor) {
        zmq_socket_monitor(self->router, NULL, 0);
        zmq_close(self->monitor);
    }
    if (self->router)
        zmq_close(self->router);
    kmx_zap_stop(&self->zap);
    free(self);
    *self_p = NULL;
}

const char *kmx_broker_endpoint(const kmx_broker_t *self, kmx_broker_socket_t which) {
    assert(self);
    if (which == KMX_BROKER_ROUTER)
        return self->endpoints[which];
    if ((which == KMX_BROKER_XSUB || which == KMX_BROKER_XPUB) && self->endpoints[which][0])
        return self->endpoints[which];
    return NULL;
}

// Sleeps in poll(2) on the two sockets' ZMQ_FD descriptors instead of zmq_poll, which asks
// every socket for its events before and after it sleeps (a system call each). That is
// sound because of how the descriptor works: it turns readable when commands reach the
// socket (a message arriving on a drained pipe sends one) and stays so until the socket
// processes them, which any send or receive may do. So a socket read to EAGAIN (its
// commands processed, nothing left) wakes the loop for its next message, and one that may
// have missed that (a drain cut at S_BATCH, a send since its last drain) is marked ready:
// the next turn reads it without sleeping.
int kmx_broker_poll_once(kmx_broker_t *self, int timeout_ms) {
    assert(self);
    struct pollfd fds[2] = {{self->router_fd, POLLIN, 0}, {self->monitor_fd, POLLIN, 0}};
    int64_t now = s_now_ms();
    int64_t next = self->heartbeat_at < self->sweep_at ? self->heartbeat_at : self->sweep_at;
    if (self->probe_at < next)
        next = self->probe_at;
    int64_t wait = next > now ? next - now : 0;
    if (timeout_ms >= 0 && timeout_ms < wait)
        wait = timeout_ms;
    if (self->router_ready || self->monitor_ready)
        wait = 0;
    if (poll(fds, 2, (int)wait) < 0) {
        if (errno == EINTR)
            return 0;
        kmx_log_error("broker: poll failed err=%s", strerror(errno));
        return KMX_ERR_INTERNAL;
    }
    if (atomic_load(&self->proxy_failed))
        return KMX_ERR_INTERNAL; // logged by the proxy thread
    self->now = s_now_ms();
    // Disconnects first: a message read afterwards may come from a new connection that
    // reuses a closed one's descriptor (its worker then answers the probe and stays).
    int rc = 0;
    if (self->monitor_ready || fds[1].revents)
        rc = s_drain_monitor(self);
    if (rc == 0 && (self->router_ready || fds[0].revents))
        rc = s_drain_router(self);
    if (rc != 0)
        return errno == EINTR ? 0 : KMX_ERR_INTERNAL;
    s_tick(self);
    return 0;
}

int kmx_broker_run(kmx_broker_t *self, const volatile sig_atomic_t *stop) {
    assert(self && stop);
    while (!*stop) {
        int rc = kmx_broker_poll_once(self, 500);
        if (rc != 0)
            return rc;
    }
    return 0;
}
