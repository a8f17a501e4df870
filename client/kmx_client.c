/*  libkmx - request/response calls to kmx services over the broker. Owns its ZeroMQ
    context so embedding programs need not know about ZeroMQ; turns Error responses into
    kmx_err_t codes while still handing the Response back for its details.  */
#include "kmx_client.h"

#include "kmx_err.h"
#include "kmx_local.h"
#include "kmx_log.h"
#include "kmx_mdp.h"
#include "kmx_msg.h"

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define S_DEFAULT_TIMEOUT_MS 5000
#define S_DEFAULT_TRIES 3

static int64_t s_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void s_sleep_ms(int64_t ms) {
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

#define S_BACKOFF_FIRST_MS 50 // first pause before a retry within a deadline
#define S_BACKOFF_MAX_MS 200  // pauses double up to this: a restarted service is used soon

struct kmx_client_group {
    void *ctx; // the ZeroMQ context its clients share
};

struct kmx_client {
    void *ctx;                 // ZeroMQ context: the client's own, or its group's
    int own_ctx;               // ctx is the client's own, ended with it
    long pid;                  // this process, for request ids (getpid is a system call)
    kmx_mdp_client_t *mdp;     // MDP client socket with retries, or NULL for a local endpoint
    kmx_local_client_t *local; // the local read socket ("unix:PATH"), or NULL
    int local_warned;          // a read the socket could not take went to the broker
    uint64_t next_id;          // counter for request ids
    char last_error[1024];     // message of the last failure
    int timeout_ms;            // per-try timeout
    int tries;                 // tries per call without a deadline
    int deadline_ms;           // total time one call may take retrying, 0 = tries only
    uint64_t retries;          // tries beyond the first, over the client's life
    unsigned seed;             // jitter of the backoff
};

// A context whose sockets default to linger 0, so an unanswered request cannot hold up
// destroy. Returns NULL when ZeroMQ cannot make one.
static void *s_ctx_new(void) {
    void *ctx = zmq_ctx_new();
    if (ctx && zmq_ctx_set(ctx, ZMQ_BLOCKY, 0) != 0) {
        zmq_ctx_term(ctx);
        ctx = NULL;
    }
    return ctx;
}

kmx_client_group_t *kmx_client_group_new(void) {
    kmx_client_group_t *self = calloc(1, sizeof(*self));
    if (self && !(self->ctx = s_ctx_new())) {
        free(self);
        self = NULL;
    }
    return self;
}

void kmx_client_group_destroy(kmx_client_group_t **self_p) {
    if (!self_p || !*self_p)
        return;
    zmq_ctx_term((*self_p)->ctx);
    free(*self_p);
    *self_p = NULL;
}

static void s_set_timeout(kmx_client_t *self, int timeout_ms) {
    if (self->local)
        kmx_local_client_set_timeout(self->local, timeout_ms);
    if (self->mdp)
        kmx_mdp_client_set_timeout(self->mdp, timeout_ms);
}

static void s_set_retries(kmx_client_t *self, int tries) {
    if (self->local)
        kmx_local_client_set_retries(self->local, tries);
    if (self->mdp)
        kmx_mdp_client_set_retries(self->mdp, tries);
}

// The socket path of a "unix:PATH" endpoint; any other endpoint as it is.
static const char *s_local_path(const char *endpoint) {
    size_t prefix = strlen(KMX_LOCAL_PREFIX);
    return strncmp(endpoint, KMX_LOCAL_PREFIX, prefix) == 0 ? endpoint + prefix : endpoint;
}

kmx_client_t *kmx_client_new(const char *broker, int timeout_ms, int tries) {
    return kmx_client_new_in(NULL, broker, timeout_ms, tries);
}

kmx_client_t *kmx_client_new_in(kmx_client_group_t *group, const char *broker, int timeout_ms,
                                int tries) {
    if (!broker || !*broker)
        return NULL;
    kmx_client_t *self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    if (s_local_path(broker) != broker) {
        // A kmx-query worker's local read socket (kmx-query --local): no broker, no ZeroMQ.
        self->local = kmx_local_client_new(s_local_path(broker), timeout_ms, tries);
    } else {
        self->own_ctx = group == NULL;
        self->ctx = group ? group->ctx : s_ctx_new();
        if (self->ctx)
            self->mdp = kmx_mdp_client_new(self->ctx, broker);
    }
    if (!self->mdp && !self->local) {
        kmx_client_destroy(&self);
        return NULL;
    }
    self->pid = (long)getpid();
    self->timeout_ms = timeout_ms > 0 ? timeout_ms : S_DEFAULT_TIMEOUT_MS;
    self->tries = tries > 0 ? tries : S_DEFAULT_TRIES;
    self->seed = (unsigned)s_now_ms() ^ ((unsigned)self->pid << 16) ^ (unsigned)(uintptr_t)self;
    s_set_timeout(self, self->timeout_ms);
    s_set_retries(self, self->tries);
    return self;
}

void kmx_client_set_deadline(kmx_client_t *self, int deadline_ms) {
    assert(self);
    self->deadline_ms = deadline_ms > 0 ? deadline_ms : 0;
    // Within a deadline every try is one MDP try; this loop does the retrying.
    s_set_retries(self, self->deadline_ms ? 1 : self->tries);
}

int kmx_client_set_read_socket(kmx_client_t *self, const char *path) {
    assert(self);
    if (!self->mdp)
        return KMX_ERR_INVAL; // a unix: client has no other path to keep
    kmx_local_client_destroy(&self->local);
    path = path ? s_local_path(path) : NULL;
    if (!path || !*path)
        return 0;
    self->local = kmx_local_client_new(path, self->timeout_ms, self->tries);
    if (!self->local)
        return KMX_ERR_INVAL;
    s_set_retries(self, self->deadline_ms ? 1 : self->tries);
    return 0;
}

uint64_t kmx_client_retries(const kmx_client_t *self) {
    assert(self);
    return self->retries;
}

void kmx_client_destroy(kmx_client_t **self_p) {
    if (!self_p || !*self_p)
        return;
    kmx_client_t *self = *self_p;
    kmx_mdp_client_destroy(&self->mdp);
    kmx_local_client_destroy(&self->local);
    if (self->ctx && self->own_ctx)
        zmq_ctx_term(self->ctx);
    free(self);
    *self_p = NULL;
}

const char *kmx_client_last_error(const kmx_client_t *self) {
    assert(self);
    return self->last_error;
}

int kmx_client_error_code(Kmx__V1__ErrorCode code) {
    switch (code) {
    case KMX__V1__ERROR_CODE__BAD_REQUEST:
        return KMX_ERR_INVAL;
    case KMX__V1__ERROR_CODE__NOT_FOUND:
        return KMX_ERR_NOT_FOUND;
    case KMX__V1__ERROR_CODE__UNAVAILABLE:
        return KMX_ERR_UNAVAILABLE;
    case KMX__V1__ERROR_CODE__TOO_LARGE:
        return KMX_ERR_TOO_BIG;
    case KMX__V1__ERROR_CODE__UNSUPPORTED:
        return KMX_ERR_UNSUPPORTED;
    case KMX__V1__ERROR_CODE__RESYNC_NEEDED:
        return KMX_ERR_RESYNC;
    case KMX__V1__ERROR_CODE__STORAGE_FULL:
        return KMX_ERR_FULL;
    case KMX__V1__ERROR_CODE__FORBIDDEN:
        return KMX_ERR_FORBIDDEN;
    case KMX__V1__ERROR_CODE__DEADLINE_EXCEEDED:
        return KMX_ERR_DEADLINE;
    default:
        return KMX_ERR_INTERNAL;
    }
}

static int s_fail(kmx_client_t *self, int rc, const char *service, const char *message) {
    snprintf(self->last_error, sizeof(self->last_error), "%s: %s", service,
             message && *message ? message : kmx_strerror(rc));
    return rc;
}

// The exchange over the local read socket (a kmx.query call).
static int s_exchange_local(kmx_client_t *self, const char *service, const uint8_t *buf, size_t len,
                            Kmx__V1__Response **out) {
    uint8_t *data = NULL;
    size_t size = 0;
    int rc = kmx_local_client_call(self->local, buf, len, &data, &size);
    if (rc < 0)
        return s_fail(self, rc, service,
                      rc == KMX_ERR_TIMEOUT       ? "no reply (timed out)"
                      : rc == KMX_ERR_UNAVAILABLE ? "no kmx-query answers on this local read "
                                                    "socket (start one with --local PATH)"
                      : rc == KMX_ERR_TOO_BIG     ? "request too large for a local read socket: "
                                                    "send it to the broker"
                                                  : NULL);
    *out = kmx_msg_response_unpack(data, size);
    free(data);
    if (!*out)
        return s_fail(self, KMX_ERR_DECODE, service, "undecodable reply");
    return 0;
}

// Sends the packed request and unpacks the reply. Returns 0 with *out set, or an error.
// kmx.query calls go to the local read socket when there is one; one it cannot take (no
// worker listens there) goes to the broker when there is one too.
static int s_exchange(kmx_client_t *self, const char *service, const Kmx__V1__Request *req,
                      Kmx__V1__Response **out) {
    int read = strcmp(service, KMX_SERVICE_QUERY) == 0;
    if (!self->mdp && !read)
        return s_fail(self, KMX_ERR_UNSUPPORTED, service,
                      "a local read socket (unix:PATH) answers kmx.query only: send this to "
                      "the broker");
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = kmx_msg_pack_request(req, &buf, &len);
    if (rc < 0)
        return s_fail(self, rc, service, NULL);
    if (self->local && read) {
        rc = s_exchange_local(self, service, buf, len, out);
        if (rc != KMX_ERR_UNAVAILABLE || !self->mdp) {
            free(buf);
            return rc;
        }
        if (!self->local_warned)
            kmx_log_warn("client: %s; reads go to the broker", self->last_error);
        self->local_warned = 1; // once per client: a worker restarting is no news
        kmx_log_debug("client: %s, asking the broker instead", self->last_error);
        self->last_error[0] = '\0';
    }
    zmq_msg_t reply;
    rc = kmx_mdp_client_call(self->mdp, service, buf, len, &reply);
    free(buf);
    if (rc < 0)
        return s_fail(self, rc, service, rc == KMX_ERR_TIMEOUT ? "no reply (timed out)" : NULL);
    *out = kmx_msg_response_unpack(zmq_msg_data(&reply), zmq_msg_size(&reply));
    zmq_msg_close(&reply);
    if (!*out)
        return s_fail(self, KMX_ERR_DECODE, service, "undecodable reply");
    return 0;
}

// One try: the exchange and the mapping of an Error response to its code.
static int s_call_once(kmx_client_t *self, const char *service, const Kmx__V1__Request *req,
                       Kmx__V1__Response **out) {
    self->last_error[0] = '\0';
    int rc = s_exchange(self, service, req, out);
    if (rc < 0)
        return rc;
    Kmx__V1__Response *resp = *out;
    if (resp->result_case == KMX__V1__RESPONSE__RESULT_ERROR) {
        const Kmx__V1__Error *err = resp->error;
        rc = kmx_client_error_code(err->has_code ? err->code : KMX__V1__ERROR_CODE__INTERNAL);
        return s_fail(self, rc, service, err->message);
    }
    if (resp->result_case == KMX__V1__RESPONSE__RESULT__NOT_SET)
        return s_fail(self, KMX_ERR_DECODE, service, "empty reply");
    return 0;
}

// The pause before retry number n (1, 2, ...): doubling from S_BACKOFF_FIRST_MS up to
// S_BACKOFF_MAX_MS, of which a random half is taken off, so clients refused together do
// not all come back at the same moment.
static int64_t s_backoff_ms(kmx_client_t *self, int n) {
    int64_t cap = S_BACKOFF_FIRST_MS;
    for (int i = 1; i < n && cap < S_BACKOFF_MAX_MS; i++)
        cap *= 2;
    if (cap > S_BACKOFF_MAX_MS)
        cap = S_BACKOFF_MAX_MS;
    return cap / 2 + rand_r(&self->seed) % (cap / 2 + 1);
}

int kmx_client_call(kmx_client_t *self, const char *service, const Kmx__V1__Request *req,
                    Kmx__V1__Response **out) {
    assert(self && service && req && out);
    *out = NULL;
    Kmx__V1__Request copy = *req;
    char id[48];
    if (!copy.request_id || !*copy.request_id) {
        snprintf(id, sizeof(id), "kmx-%ld-%llu", self->pid, (unsigned long long)++self->next_id);
        copy.request_id = id;
    }
    // Each try tells the services how long it waits (Request.timeout_ms), so kmx-query
    // waits for storage that long and answers DEADLINE_EXCEEDED rather than go silent.
    int told = copy.has_timeout_ms && copy.timeout_ms > 0;
    if (!told) {
        copy.has_timeout_ms = 1;
        copy.timeout_ms = (uint32_t)self->timeout_ms;
    }
    if (self->deadline_ms == 0)
        return s_call_once(self, service, &copy, out);
    // Writes are upserts on a natural key, so a try whose answer was lost can be repeated:
    // the repeat finds its records stored and reports them unchanged.
    int64_t deadline = s_now_ms() + self->deadline_ms;
    for (int n = 1;; n++) {
        int64_t left = deadline - s_now_ms();
        int wait = left < self->timeout_ms ? (int)(left > 0 ? left : 1) : self->timeout_ms;
        s_set_timeout(self, wait);
        if (!told)
            copy.timeout_ms = (uint32_t)wait;
        int rc = s_call_once(self, service, &copy, out);
        if (rc != KMX_ERR_TIMEOUT && rc != KMX_ERR_UNAVAILABLE)
            return rc;
        int64_t pause = s_backoff_ms(self, n);
        if (s_now_ms() + pause >= deadline)
            return rc;
        if (*out)
            kmx__v1__response__free_unpacked(*out, NULL);
        *out = NULL;
        kmx_log_debug("client: %s from %s, retry %d in %lld ms", kmx_err_name(rc), service, n,
                      (long long)pause);
        s_sleep_ms(pause);
        self->retries++;
    }
}

// Calls and checks that the result has the expected type.
static int s_call_expect(kmx_client_t *self, const char *service, const Kmx__V1__Request *req,
                         Kmx__V1__Response__ResultCase expect, Kmx__V1__Response **out) {
    int rc = kmx_client_call(self, service, req, out);
    if (rc == 0 && (*out)->result_case != expect)
        return s_fail(self, KMX_ERR_DECODE, service, "reply of the wrong type");
    return rc;
}

int kmx_client_ping(kmx_client_t *self, const char *service, Kmx__V1__Response **out) {
    Kmx__V1__Request req = KMX__V1__REQUEST__INIT;
    Kmx__V1__PingRequest ping = KMX__V1__PING_REQUEST__INIT;
    req.body_case = KMX__V1__REQUEST__BODY_PING;
    req.ping = &ping;
    return s_call_expect(self, service, &req, KMX__V1__RESPONSE__RESULT_PONG, out);
}

int kmx_client_put(kmx_client_t *self, Kmx__V1__Record *const *records, size_t n, bool atomic,
                   Kmx__V1__Response **out) {
    Kmx__V1__Request req = KMX__V1__REQUEST__INIT;
    Kmx__V1__PutRequest put = KMX__V1__PUT_REQUEST__INIT;
    put.n_records = n;
    put.records = (Kmx__V1__Record **)records;
    put.has_atomic = atomic;
    put.atomic = atomic;
    req.body_case = KMX__V1__REQUEST__BODY_PUT;
    req.put = &put;
    return s_call_expect(self, KMX_SERVICE_INGEST, &req, KMX__V1__RESPONSE__RESULT_PUT, out);
}

int kmx_client_get(kmx_client_t *self, const Kmx__V1__Record *key, Kmx__V1__Response **out) {
    Kmx__V1__Request req = KMX__V1__REQUEST__INIT;
    Kmx__V1__GetRequest get = KMX__V1__GET_REQUEST__INIT;
    get.key = (Kmx__V1__Record *)key;
    req.body_case = KMX__V1__REQUEST__BODY_GET;
    req.get = &get;
    return s_call_expect(self, KMX_SERVICE_QUERY, &req, KMX__V1__RESPONSE__RESULT_GET, out);
}

int kmx_client_query(kmx_client_t *self, const Kmx__V1__QueryRequest *query,
                     Kmx__V1__Response **out) {
    Kmx__V1__Request req = KMX__V1__REQUEST__INIT;
    req.body_case = KMX__V1__REQUEST__BODY_QUERY;
    req.query = (Kmx__V1__QueryRequest *)query;
    return s_call_expect(self, KMX_SERVICE_QUERY, &req, KMX__V1__RESPONSE__RESULT_QUERY, out);
}

int kmx_client_scan(kmx_client_t *self, const Kmx__V1__ScanRequest *scan, Kmx__V1__Response **out) {
    Kmx__V1__Request req = KMX__V1__REQUEST__INIT;
    req.body_case = KMX__V1__REQUEST__BODY_SCAN;
    req.scan = (Kmx__V1__ScanRequest *)scan;
    return s_call_expect(self, KMX_SERVICE_QUERY, &req, KMX__V1__RESPONSE__RESULT_SCAN, out);
}

int kmx_client_replay(kmx_client_t *self, uint64_t since, uint32_t limit, char *const *prefixes,
                      size_t n, Kmx__V1__Response **out) {
    Kmx__V1__Request req = KMX__V1__REQUEST__INIT;
    Kmx__V1__ReplayRequest replay = KMX__V1__REPLAY_REQUEST__INIT;
    replay.has_since = 1;
    replay.since = since;
    replay.has_limit = limit > 0;
    replay.limit = limit;
    replay.n_prefixes = n;
    replay.prefixes = (char **)prefixes;
    req.body_case = KMX__V1__REQUEST__BODY_REPLAY;
    req.replay = &replay;
    return s_call_expect(self, KMX_SERVICE_QUERY, &req, KMX__V1__RESPONSE__RESULT_REPLAY, out);
}

int kmx_client_stats(kmx_client_t *self, const char *service, Kmx__V1__Response **out) {
    Kmx__V1__Request req = KMX__V1__REQUEST__INIT;
    Kmx__V1__StatsRequest stats = KMX__V1__STATS_REQUEST__INIT;
    req.body_case = KMX__V1__REQUEST__BODY_STATS;
    req.stats = &stats;
    // A query worker adds kmx-storage's stats (resp->stats->storage).
    stats.has_storage = stats.storage = strcmp(service, KMX_SERVICE_QUERY) == 0;
    return s_call_expect(self, service, &req, KMX__V1__RESPONSE__RESULT_STATS, out);
}

int kmx_client_catalog(kmx_client_t *self, Kmx__V1__Kind kind, Kmx__V1__Response **out) {
    Kmx__V1__Request req = KMX__V1__REQUEST__INIT;
    Kmx__V1__CatalogRequest cat = KMX__V1__CATALOG_REQUEST__INIT;
    cat.has_kind = kind != KMX__V1__KIND__KIND_UNSPECIFIED;
    cat.kind = kind;
    req.body_case = KMX__V1__REQUEST__BODY_CATALOG;
    req.catalog = &cat;
    return s_call_expect(self, KMX_SERVICE_QUERY, &req, KMX__V1__RESPONSE__RESULT_CATALOG, out);
}

int kmx_client_history(kmx_client_t *self, const Kmx__V1__Record *key, Kmx__V1__Response **out) {
    Kmx__V1__Request req = KMX__V1__REQUEST__INIT;
    Kmx__V1__HistoryRequest hist = KMX__V1__HISTORY_REQUEST__INIT;
    hist.key = (Kmx__V1__Record *)key;
    req.body_case = KMX__V1__REQUEST__BODY_HISTORY;
    req.history = &hist;
    return s_call_expect(self, KMX_SERVICE_QUERY, &req, KMX__V1__RESPONSE__RESULT_HISTORY, out);
}
