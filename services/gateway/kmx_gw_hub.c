/*  kmx_gw_hub - one subscriber, many Server-Sent Events streams. The ring holds every
    event in (base, covered] in sequence order: the hub's kmx_watch emits all topics
    without gap, and evicting the oldest entry moves base up to it. A stream whose cursor
    is below base (or that starts before the hub knows where it is) catches up through
    kmx_watch replays of its own, one page per read, and then reads the ring.  */
#include "kmx_gw_hub.h"

#include "kmx_err.h"
#include "kmx_json.h"
#include "kmx_log.h"
#include "kmx_watch.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#define S_RING_DEFAULT 65536
#define S_POLL_MS 200
#define S_BATCH 1024   // published messages taken before the streams are woken
#define S_RETRY_MS 500 // pause before a stream retries a failed replay

typedef struct {
    uint64_t seq; // the event's sequence
    char *topic;  // its topic, malloc'd
    char *text;   // "id: SEQ\ndata: JSON\n\n", malloc'd
    size_t len;   // bytes of text
} s_entry_t;

struct kmx_gw_hub {
    char *broker;             // request endpoint, malloc'd
    char *events;             // event endpoint, malloc'd
    int timeout_ms;           // per try of the hub's replays
    pthread_t thread;         // runs s_run
    bool started;             // thread was created
    pthread_mutex_t lock;     // guards what follows
    pthread_cond_t changed;   // new events, a new covered sequence, or stopping
    bool stop;                // the hub is stopping
    s_entry_t *ring;          // cap entries; oldest at head
    size_t cap;               // capacity
    size_t head;              // index of the oldest entry
    size_t n;                 // entries held
    uint64_t base;            // the ring holds every event after base
    uint64_t covered;         // ... up to covered
    bool ready;               // base and covered are known
    size_t taken;             // events taken since the streams were last woken
    kmx_gw_hub_stats_t stats; // counters (events, replays, failures)
};

struct kmx_gw_stream {
    kmx_gw_hub_t *hub;     // where live events come from
    char **prefixes;       // topic prefixes, malloc'd; none = all
    size_t n;              // number of prefixes
    uint64_t cursor;       // newest sequence delivered or known covered
    bool have_cursor;      // cursor is meaningful
    char *pending;         // replayed or oversized text not yet sent, malloc'd
    size_t plen;           // bytes in pending
    size_t pcap;           // capacity of pending
    size_t poff;           // bytes of pending already sent
    struct timespec quiet; // when the stream last wrote
};

// ---- SSE text -----------------------------------------------------------------------------

// Renders ev as one SSE message. Returns malloc'd text (length in *len) or NULL.
static char *s_render(const Kmx__V1__UpdateEvent *ev, size_t *len) {
    json_t *doc = kmx_json_event(ev);
    size_t jlen = 0;
    char *json = doc ? kmx_json_dumps(doc, &jlen) : NULL;
    json_decref(doc);
    if (!json)
        return NULL;
    size_t cap = jlen + 48;
    char *text = malloc(cap);
    int n = text ? snprintf(text, cap, "id: %" PRIu64 "\ndata: %s\n\n", ev->seq, json) : -1;
    free(json);
    if (n < 0 || (size_t)n >= cap) {
        free(text);
        return NULL;
    }
    *len = (size_t)n;
    return text;
}

// ---- the hub thread -------------------------------------------------------------------

static void s_entry_free(s_entry_t *e) {
    free(e->topic);
    free(e->text);
    memset(e, 0, sizeof(*e));
}

// kmx_watch's emit: appends the event to the ring (called on the hub thread).
static void s_take(void *arg, const Kmx__V1__UpdateEvent *ev) {
    kmx_gw_hub_t *self = arg;
    s_entry_t e = {ev->seq, strdup(ev->topic ? ev->topic : ""), NULL, 0};
    e.text = e.topic ? s_render(ev, &e.len) : NULL;
    pthread_mutex_lock(&self->lock);
    if (!e.text) {
        // Out of memory: the ring restarts after this event, streams replay around it.
        kmx_log_warn("gateway: cannot keep event seq=%" PRIu64 " in memory", ev->seq);
        for (; self->n > 0; self->n--, self->head = (self->head + 1) % self->cap)
            s_entry_free(&self->ring[self->head]);
        self->base = ev->seq;
        s_entry_free(&e);
    } else {
        if (self->n == self->cap) {
            self->base = self->ring[self->head].seq;
            s_entry_free(&self->ring[self->head]);
            self->head = (self->head + 1) % self->cap;
            self->n--;
        }
        self->ring[(self->head + self->n) % self->cap] = e;
        self->n++;
        self->stats.events++;
    }
    self->covered = ev->seq;
    self->taken++;
    // No broadcast per event: s_cover wakes the streams once per batch of messages, so a
    // burst does not wake a thousand threads a thousand times.
    pthread_mutex_unlock(&self->lock);
}

// Publishes what the watch has covered (a heartbeat or replay may cover without events).
static void s_cover(kmx_gw_hub_t *self, const kmx_watch_t *w) {
    if (!w->have_last)
        return;
    pthread_mutex_lock(&self->lock);
    bool wake = self->taken > 0;
    if (!self->ready) {
        self->base = self->covered = w->last;
        self->ready = wake = true;
        kmx_log_info("gateway: event stream live seq=%" PRIu64, w->last);
    } else if (w->last > self->covered) {
        self->covered = w->last;
        wake = true;
    }
    self->stats.last_seq = self->covered;
    self->taken = 0;
    // Idle polls wake nobody: a thousand streams stay asleep until there is news.
    if (wake)
        pthread_cond_broadcast(&self->changed);
    pthread_mutex_unlock(&self->lock);
}

static bool s_stopping(kmx_gw_hub_t *self) {
    pthread_mutex_lock(&self->lock);
    bool stop = self->stop;
    pthread_mutex_unlock(&self->lock);
    return stop;
}

static void s_loop(kmx_gw_hub_t *self, kmx_watch_t *w, void *sub) {
    uint64_t failures = 0;
    while (!s_stopping(self)) {
        zmq_pollitem_t item = {sub, 0, ZMQ_POLLIN, 0};
        int rc = zmq_poll(&item, 1, S_POLL_MS);
        // Drain what has arrived (bounded), then wake the streams once.
        for (int n = 0; rc > 0 && n < S_BATCH; n++) {
            if (kmx_watch_receive(w, sub) < 0) {
                // Typically kmx.query or storage is restarting: the next event or
                // heartbeat shows the gap again and the replay is retried; nothing is
                // skipped.
                if (failures++ % 20 == 0)
                    kmx_log_warn("gateway: %s (retrying)", w->err);
                pthread_mutex_lock(&self->lock);
                self->stats.failures++;
                pthread_mutex_unlock(&self->lock);
                break;
            }
            rc = zmq_poll(&item, 1, 0);
        }
        s_cover(self, w);
    }
}

static void *s_run(void *arg) {
    kmx_gw_hub_t *self = arg;
    char err[KMX_WATCH_ERR_MAX];
    void *ctx = zmq_ctx_new();
    kmx_client_t *client = kmx_client_new(self->broker, self->timeout_ms, 1);
    void *sub = ctx ? kmx_watch_subscribe(ctx, self->events, NULL, 0, err) : NULL;
    if (!sub || !client) {
        kmx_log_error("gateway: cannot subscribe to events: %s", sub ? "no client" : err);
    } else {
        kmx_watch_t w;
        memset(&w, 0, sizeof(w));
        w.client = client;
        w.emit = s_take;
        w.arg = self;
        kmx_watch_start(&w, false, 0); // without kmx.query the first heartbeat starts it
        s_cover(self, &w);
        s_loop(self, &w, sub);
    }
    if (sub)
        zmq_close(sub);
    kmx_client_destroy(&client);
    if (ctx)
        zmq_ctx_term(ctx);
    return NULL;
}

kmx_gw_hub_t *kmx_gw_hub_new(const kmx_gw_hub_config_t *cfg) {
    kmx_gw_hub_t *self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    self->cap = cfg->ring ? cfg->ring : S_RING_DEFAULT;
    self->ring = calloc(self->cap, sizeof(*self->ring));
    self->broker = strdup(cfg->broker);
    self->events = strdup(cfg->events);
    self->timeout_ms = cfg->timeout_ms;
    pthread_mutex_init(&self->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&self->changed, &attr);
    pthread_condattr_destroy(&attr);
    if (!self->ring || !self->broker || !self->events ||
        pthread_create(&self->thread, NULL, s_run, self) != 0) {
        kmx_gw_hub_destroy(&self);
        return NULL;
    }
    self->started = true;
    return self;
}

void kmx_gw_hub_stop(kmx_gw_hub_t *self) {
    pthread_mutex_lock(&self->lock);
    self->stop = true;
    pthread_cond_broadcast(&self->changed);
    pthread_mutex_unlock(&self->lock);
}

void kmx_gw_hub_destroy(kmx_gw_hub_t **self_p) {
    if (!self_p || !*self_p)
        return;
    kmx_gw_hub_t *self = *self_p;
    kmx_gw_hub_stop(self);
    if (self->started)
        pthread_join(self->thread, NULL);
    for (size_t i = 0; self->ring && i < self->n; i++)
        s_entry_free(&self->ring[(self->head + i) % self->cap]);
    free(self->ring);
    free(self->broker);
    free(self->events);
    pthread_cond_destroy(&self->changed);
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}

void kmx_gw_hub_stats(kmx_gw_hub_t *self, kmx_gw_hub_stats_t *out) {
    pthread_mutex_lock(&self->lock);
    *out = self->stats;
    out->held = self->n;
    out->last_seq = self->covered;
    pthread_mutex_unlock(&self->lock);
}

// ---- streams ----------------------------------------------------------------------------

kmx_gw_stream_t *kmx_gw_stream_new(kmx_gw_hub_t *hub, bool has_since, uint64_t since,
                                   char *const *prefixes, size_t n) {
    kmx_gw_stream_t *self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    self->hub = hub;
    self->prefixes = n ? calloc(n, sizeof(char *)) : NULL;
    for (size_t i = 0; i < n; i++) {
        self->prefixes[i] = self->prefixes ? strdup(prefixes[i]) : NULL;
        if (!self->prefixes[i]) {
            self->n = i;
            kmx_gw_stream_destroy(&self);
            return NULL;
        }
    }
    self->n = n;
    self->cursor = since;
    self->have_cursor = has_since;
    pthread_mutex_lock(&hub->lock);
    if (!has_since && hub->ready) {
        // A live-only stream starts at what is covered now, not at its first read.
        self->cursor = hub->covered;
        self->have_cursor = true;
    }
    pthread_mutex_unlock(&hub->lock);
    clock_gettime(CLOCK_MONOTONIC, &self->quiet);
    return self;
}

void kmx_gw_stream_destroy(kmx_gw_stream_t **self_p) {
    if (!self_p || !*self_p)
        return;
    kmx_gw_stream_t *self = *self_p;
    for (size_t i = 0; i < self->n; i++)
        free(self->prefixes[i]);
    free(self->prefixes);
    free(self->pending);
    free(self);
    *self_p = NULL;
}

uint64_t kmx_gw_stream_cursor(const kmx_gw_stream_t *self) {
    return self->cursor;
}

static bool s_matches(const kmx_gw_stream_t *self, const char *topic) {
    if (self->n == 0)
        return true;
    for (size_t i = 0; i < self->n; i++) {
        if (strncmp(topic, self->prefixes[i], strlen(self->prefixes[i])) == 0)
            return true;
    }
    return false;
}

static int s_pending_add(kmx_gw_stream_t *self, const char *text, size_t len) {
    if (self->poff == self->plen)
        self->poff = self->plen = 0;
    if (self->plen + len > self->pcap) {
        size_t cap = self->pcap ? self->pcap : 16384;
        while (cap < self->plen + len)
            cap *= 2;
        char *grown = realloc(self->pending, cap);
        if (!grown)
            return KMX_ERR_NOMEM;
        self->pending = grown;
        self->pcap = cap;
    }
    memcpy(self->pending + self->plen, text, len);
    self->plen += len;
    return 0;
}

static long s_pending_take(kmx_gw_stream_t *self, char *buf, size_t size) {
    size_t n = self->plen - self->poff;
    n = n < size ? n : size;
    memcpy(buf, self->pending + self->poff, n);
    self->poff += n;
    clock_gettime(CLOCK_MONOTONIC, &self->quiet);
    return (long)n;
}

// kmx_watch's emit for a stream's replay: the text waits in pending.
static void s_replayed(void *arg, const Kmx__V1__UpdateEvent *ev) {
    kmx_gw_stream_t *self = arg;
    size_t len = 0;
    char *text = s_render(ev, &len);
    if (text)
        s_pending_add(self, text, len);
    free(text);
}

static long s_comment(kmx_gw_stream_t *self, char *buf, size_t size, const char *what) {
    int n = snprintf(buf, size, ": %s %" PRIu64 "\n\n", what, self->cursor);
    clock_gettime(CLOCK_MONOTONIC, &self->quiet);
    return n > 0 && (size_t)n < size ? n : 0;
}

static void s_sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

// One page of replay after the cursor. Returns 0, or a negative kmx code.
static int s_catch_up(kmx_gw_stream_t *self, kmx_gw_pool_t *pool, bool start) {
    kmx_client_t *client = kmx_gw_pool_get(pool);
    if (!client)
        return KMX_ERR_NOMEM;
    kmx_watch_t w;
    memset(&w, 0, sizeof(w));
    w.client = client;
    w.prefixes = self->prefixes;
    w.nprefixes = self->n;
    w.emit = s_replayed;
    w.arg = self;
    w.last = self->cursor;
    w.have_last = self->have_cursor;
    int rc = start ? kmx_watch_start(&w, false, 0) : kmx_watch_replay(&w, 1);
    kmx_gw_pool_put(pool, client);
    if (rc >= 0 && w.have_last) {
        self->cursor = w.last;
        self->have_cursor = true;
    }
    if (rc >= 0 && start && !w.have_last)
        rc = KMX_ERR_UNAVAILABLE;
    return rc < 0 ? rc : 0;
}

// Copies the ring's matching entries after the cursor into buf (lock held). Returns the
// bytes written; an entry larger than buf goes to pending.
static long s_from_ring(kmx_gw_stream_t *self, char *buf, size_t size) {
    kmx_gw_hub_t *hub = self->hub;
    size_t lo = 0, hi = hub->n; // first entry with seq > cursor
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (hub->ring[(hub->head + mid) % hub->cap].seq <= self->cursor)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t wrote = 0;
    for (size_t i = lo; i < hub->n; i++) {
        const s_entry_t *e = &hub->ring[(hub->head + i) % hub->cap];
        if (s_matches(self, e->topic)) {
            if (wrote + e->len > size && wrote > 0)
                return (long)wrote;
            if (e->len > size) {
                if (s_pending_add(self, e->text, e->len) < 0)
                    return (long)wrote;
            } else {
                memcpy(buf + wrote, e->text, e->len);
                wrote += e->len;
            }
        }
        self->cursor = e->seq;
    }
    if (hub->covered > self->cursor)
        self->cursor = hub->covered;
    return (long)wrote;
}

static struct timespec s_deadline(const struct timespec *from, int ms) {
    struct timespec t = *from;
    t.tv_sec += ms / 1000;
    t.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L)
        t.tv_sec++, t.tv_nsec -= 1000000000L;
    return t;
}

static bool s_past(const struct timespec *t) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > t->tv_sec || (now.tv_sec == t->tv_sec && now.tv_nsec >= t->tv_nsec);
}

// The stream's position relative to the ring (lock held): 1 serve from the ring, 0 replay
// first, -1 start (no cursor yet, hub not ready).
static int s_position(kmx_gw_stream_t *self) {
    kmx_gw_hub_t *hub = self->hub;
    if (!self->have_cursor && hub->ready) {
        self->cursor = hub->covered;
        self->have_cursor = true;
    }
    if (!self->have_cursor)
        return -1;
    return hub->ready && self->cursor >= hub->base ? 1 : 0;
}

long kmx_gw_stream_read(kmx_gw_stream_t *self, kmx_gw_pool_t *pool, char *buf, size_t size,
                        int heartbeat_ms) {
    kmx_gw_hub_t *hub = self->hub;
    struct timespec deadline = s_deadline(&self->quiet, heartbeat_ms);
    for (;;) {
        if (self->poff < self->plen)
            return s_pending_take(self, buf, size);
        pthread_mutex_lock(&hub->lock);
        if (hub->stop) {
            pthread_mutex_unlock(&hub->lock);
            return 0;
        }
        int where = s_position(self);
        long n = where == 1 ? s_from_ring(self, buf, size) : 0;
        if (where == 1 && n == 0 && self->poff == self->plen &&
            pthread_cond_timedwait(&hub->changed, &hub->lock, &deadline) == ETIMEDOUT) {
            pthread_mutex_unlock(&hub->lock);
            return s_comment(self, buf, size, "heartbeat");
        }
        pthread_mutex_unlock(&hub->lock);
        if (n > 0) {
            clock_gettime(CLOCK_MONOTONIC, &self->quiet);
            return n;
        }
        if (where == 1)
            continue;
        uint64_t before = self->cursor;
        int rc = s_catch_up(self, pool, where < 0);
        if (rc == KMX_ERR_RESYNC)
            return rc;
        if (rc < 0) {
            s_sleep_ms(S_RETRY_MS);
            return s_comment(self, buf, size, "waiting for kmx.query after");
        }
        if (self->poff == self->plen && self->cursor == before) {
            // Caught up while the hub is not live yet: wait a little, keep heartbeats.
            s_sleep_ms(S_POLL_MS);
            if (s_past(&deadline))
                return s_comment(self, buf, size, "heartbeat");
        }
    }
}
