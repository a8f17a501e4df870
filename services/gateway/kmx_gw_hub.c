/*  kmx_gw_hub - one subscriber, many Server-Sent Events streams. The ring holds every
    event in (base, covered] in sequence order: the hub's kmx_watch emits all topics
    without gap, and evicting the oldest entry moves base up to it. Each event is rendered
    once per form and its text appended to that form's byte ring, so the texts of
    consecutive events lie back to back: a stream without prefixes sends everything after
    its cursor that fits in one write with one copy (two where the ring wraps), whatever
    the number of events, and its state is one sequence number. A stream whose cursor is
    below base (or that starts before the hub knows where it is) catches up through
    kmx_watch replays of its own, one page per read, and then reads the ring.
    Streams read the ring under a shared (read) lock, so a thousand of them woken at once
    copy side by side instead of queueing on one mutex; they sleep on a futex word the hub
    bumps when there is news, and the hub takes the lock exclusively only to change the
    ring.  */
#define _GNU_SOURCE // pthread_rwlockattr_setkind_np: the hub's writes go before new reads
#include "kmx_gw_hub.h"

#include "kmx_err.h"
#include "kmx_gw_arena.h"
#include "kmx_json.h"
#include "kmx_log.h"
#include "kmx_watch.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define S_RING_DEFAULT 65536
#define S_POLL_MS 200
#define S_BATCH 1024                   // published messages taken before the streams are woken
#define S_RETRY_MS 500                 // pause before a stream retries a failed replay
#define S_TEXT_FULL 512                // bytes of text per ring entry reserved for the full form
#define S_TEXT_COMPACT 192             // ... and for the compact form
#define S_TEXT_MAX ((size_t)256 << 20) // most bytes of text kept per form
#define S_WAKE_MS_PER_STREAM 0.01      // ... and per stream waiting
#define S_WAKE_MS 2 // longest a burst's rendered events wait for the streams' wake-up

typedef struct {
    uint64_t seq;               // the event's sequence
    char *topic;                // its topic, malloc'd
    uint64_t off[KMX_GW_FORMS]; // where its text starts in each form's byte ring
    uint32_t len[KMX_GW_FORMS]; // bytes of text ("id: SEQ\ndata: JSON\n\n")
} s_entry_t;

// One form's texts, back to back. Positions count every byte ever appended, so they only
// grow; byte pos lives at data[pos % cap]. [head, tail) is kept.
typedef struct {
    char *data;    // cap bytes, malloc'd
    size_t cap;    // capacity
    uint64_t head; // position of the oldest byte kept (the oldest entry's text)
    uint64_t tail; // position of the next byte appended
} s_bytes_t;

struct kmx_gw_hub {
    char *broker;                 // request endpoint, malloc'd
    char *events;                 // event endpoint, malloc'd
    int timeout_ms;               // per try of the hub's replays
    pthread_t thread;             // runs s_run
    bool started;                 // thread was created
    pthread_rwlock_t lock;        // guards what follows: streams read, the hub writes
    bool stop;                    // the hub is stopping
    s_entry_t *ring;              // cap entries; oldest at head
    s_bytes_t text[KMX_GW_FORMS]; // the entries' texts in each form
    size_t cap;                   // capacity
    size_t head;                  // index of the oldest entry
    size_t n;                     // entries held
    uint64_t base;                // the ring holds every event after base
    uint64_t covered;             // ... up to covered
    bool ready;                   // base and covered are known
    size_t taken;                 // events taken since the streams were last woken
    kmx_gw_hub_stats_t stats;     // counters (events, replays, failures)
    _Atomic uint32_t news;        // futex word, bumped (after the lock is released) for new
                                  // events, a new covered sequence, or stopping
    atomic_size_t waiting;        // streams waiting for news now
};

// Wakes every stream waiting for news.
static void s_wake(kmx_gw_hub_t *self) {
    atomic_fetch_add(&self->news, 1);
    syscall(SYS_futex, &self->news, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

// Sleeps until news moves past seen or the CLOCK_MONOTONIC deadline passes. Returns
// ETIMEDOUT at the deadline, else 0 (news, or a spurious wake: look again).
static int s_wait(kmx_gw_hub_t *self, uint32_t seen, const struct timespec *deadline) {
    long rc = syscall(SYS_futex, &self->news, FUTEX_WAIT_BITSET_PRIVATE, seen, deadline, NULL,
                      FUTEX_BITSET_MATCH_ANY);
    return rc < 0 && errno == ETIMEDOUT ? ETIMEDOUT : 0;
}

struct kmx_gw_stream {
    kmx_gw_hub_t *hub;     // where live events come from
    char **prefixes;       // topic prefixes, malloc'd; none = all
    kmx_gw_form_t form;    // which text of each event it sends
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

// The compact form: which record changed, to what, and when; no record fields.
static json_t *s_compact(const Kmx__V1__UpdateEvent *ev) {
    const Kmx__V1__Record *r = ev->record;
    json_t *value = kmx_json_amount(r ? r->value : NULL);
    json_t *unit = kmx_json_string(r && r->value ? r->value->unit : NULL);
    return json_pack("{s:I,s:s,s:o,s:o?,s:o?,s:o?,s:I}", "seq", (json_int_t)ev->seq, "type",
                     kmx_json_event_type(ev->type), "topic",
                     kmx_json_string(ev->topic ? ev->topic : ""), "value", value, "unit", unit,
                     "previous", kmx_json_amount(ev->previous), "committed_ms",
                     (json_int_t)ev->committed_ms);
}

// Renders ev as one SSE message in form. Returns malloc'd text (length in *len) or NULL.
static char *s_render(const Kmx__V1__UpdateEvent *ev, kmx_gw_form_t form, size_t *len) {
    kmx_gw_arena_begin(); // the document lives only here (kmx_json_dumps' text is malloc's)
    json_t *doc = form == KMX_GW_FORM_COMPACT ? s_compact(ev) : kmx_json_event(ev);
    size_t jlen = 0;
    char *json = doc ? kmx_json_dumps(doc, &jlen) : NULL;
    json_decref(doc);
    kmx_gw_arena_end();
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

// Copies len bytes from position pos of b into dst (in two parts where the ring wraps).
static void s_bytes_get(const s_bytes_t *b, uint64_t pos, size_t len, char *dst) {
    size_t at = (size_t)(pos % b->cap), first = len < b->cap - at ? len : b->cap - at;
    memcpy(dst, b->data + at, first);
    memcpy(dst + first, b->data, len - first);
}

static void s_bytes_put(s_bytes_t *b, const char *src, size_t len) {
    size_t at = (size_t)(b->tail % b->cap), first = len < b->cap - at ? len : b->cap - at;
    memcpy(b->data + at, src, first);
    memcpy(b->data, src + first, len - first);
    b->tail += len;
}

// Drops the oldest entry (lock held): base moves up to it, its text's bytes are free.
static void s_evict(kmx_gw_hub_t *self) {
    s_entry_t *e = &self->ring[self->head];
    self->base = e->seq;
    for (int f = 0; f < KMX_GW_FORMS; f++)
        self->text[f].head = e->off[f] + e->len[f];
    free(e->topic);
    memset(e, 0, sizeof(*e));
    self->head = (self->head + 1) % self->cap;
    self->n--;
}

static bool s_has_room(const kmx_gw_hub_t *self, const size_t *len) {
    bool room = self->n < self->cap;
    for (int f = 0; f < KMX_GW_FORMS; f++)
        room = room && self->text[f].tail - self->text[f].head + len[f] <= self->text[f].cap;
    return room;
}

// Appends the event and its texts (lock held). Returns false when a text cannot be kept.
static bool s_append(kmx_gw_hub_t *self, const Kmx__V1__UpdateEvent *ev, char *topic,
                     char *const *text, const size_t *len) {
    bool ok = topic != NULL;
    for (int f = 0; f < KMX_GW_FORMS; f++)
        ok = ok && text[f] && len[f] <= self->text[f].cap && len[f] <= UINT32_MAX;
    if (!ok)
        return false;
    while (!s_has_room(self, len))
        s_evict(self);
    s_entry_t *e = &self->ring[(self->head + self->n) % self->cap];
    e->seq = ev->seq;
    e->topic = topic;
    for (int f = 0; f < KMX_GW_FORMS; f++) {
        e->off[f] = self->text[f].tail;
        e->len[f] = (uint32_t)len[f];
        s_bytes_put(&self->text[f], text[f], len[f]);
    }
    self->n++;
    self->stats.events++;
    return true;
}

// kmx_watch's emit: appends the event to the ring (called on the hub thread).
static void s_take(void *arg, const Kmx__V1__UpdateEvent *ev) {
    kmx_gw_hub_t *self = arg;
    char *topic = strdup(ev->topic ? ev->topic : ""), *text[KMX_GW_FORMS];
    size_t len[KMX_GW_FORMS] = {0};
    for (int f = 0; f < KMX_GW_FORMS; f++)
        text[f] = s_render(ev, (kmx_gw_form_t)f, &len[f]);
    pthread_rwlock_wrlock(&self->lock);
    if (!s_append(self, ev, topic, text, len)) {
        // Out of memory: the ring restarts after this event, streams replay around it.
        kmx_log_warn("gateway: cannot keep event seq=%" PRIu64 " in memory", ev->seq);
        while (self->n > 0)
            s_evict(self);
        self->base = ev->seq;
        free(topic);
    }
    for (int f = 0; f < KMX_GW_FORMS; f++)
        free(text[f]);
    self->covered = ev->seq;
    self->taken++;
    // No broadcast per event: s_cover wakes the streams once per batch of messages, so a
    // burst does not wake a thousand threads a thousand times.
    pthread_rwlock_unlock(&self->lock);
}

// Publishes what the watch has covered (a heartbeat or replay may cover without events).
static void s_cover(kmx_gw_hub_t *self, const kmx_watch_t *w) {
    if (!w->have_last)
        return;
    pthread_rwlock_wrlock(&self->lock);
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
    pthread_rwlock_unlock(&self->lock);
    // Idle polls wake nobody: a thousand streams stay asleep until there is news.
    if (wake)
        s_wake(self);
}

static bool s_stopping(kmx_gw_hub_t *self) {
    pthread_rwlock_rdlock(&self->lock);
    bool stop = self->stop;
    pthread_rwlock_unlock(&self->lock);
    return stop;
}

static double s_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double s_wake_ms(kmx_gw_hub_t *self) {
    size_t waiting = atomic_load(&self->waiting);
    return S_WAKE_MS + (double)waiting * S_WAKE_MS_PER_STREAM;
}

static void s_loop(kmx_gw_hub_t *self, kmx_watch_t *w, void *sub) {
    uint64_t failures = 0;
    while (!s_stopping(self)) {
        zmq_pollitem_t item = {sub, 0, ZMQ_POLLIN, 0};
        int rc = zmq_poll(&item, 1, S_POLL_MS);
        // Drain what has arrived (bounded), then wake the streams once; during a long
        // burst also every S_WAKE_MS, so the first events go out while later ones are
        // still being rendered.
        // A wake-up costs a context switch per waiting stream: the more there are, the
        // longer the pause between wake-ups (2 ms, plus 10 us per stream).
        double woke = s_now_ms();
        for (int n = 0; rc > 0 && n < S_BATCH; n++) {
            if (s_now_ms() - woke >= s_wake_ms(self)) {
                s_cover(self, w);
                woke = s_now_ms();
            }
            if (kmx_watch_receive(w, sub) < 0) {
                // Typically kmx.query or storage is restarting: the next event or
                // heartbeat shows the gap again and the replay is retried; nothing is
                // skipped.
                if (failures++ % 20 == 0)
                    kmx_log_warn("gateway: %s (retrying)", w->err);
                pthread_rwlock_wrlock(&self->lock);
                self->stats.failures++;
                pthread_rwlock_unlock(&self->lock);
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
    // Text room for the ring's events at their usual size, at most S_TEXT_MAX per form:
    // past that, the byte rings evict before the entry ring does (streams replay).
    size_t full = self->cap * S_TEXT_FULL, compact = self->cap * S_TEXT_COMPACT;
    self->text[KMX_GW_FORM_FULL].cap = full < S_TEXT_MAX ? full : S_TEXT_MAX;
    self->text[KMX_GW_FORM_COMPACT].cap = compact < S_TEXT_MAX ? compact : S_TEXT_MAX;
    bool texts = true;
    for (int f = 0; f < KMX_GW_FORMS; f++) {
        self->text[f].data = malloc(self->text[f].cap); // pages are touched as events come
        texts = texts && self->text[f].data;
    }
    self->broker = strdup(cfg->broker);
    self->events = strdup(cfg->events);
    self->timeout_ms = cfg->timeout_ms;
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    // A writer waiting goes before new readers: a thousand streams taking turns at reading
    // cannot hold the hub off the ring.
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&self->lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    if (!self->ring || !texts || !self->broker || !self->events ||
        pthread_create(&self->thread, NULL, s_run, self) != 0) {
        kmx_gw_hub_destroy(&self);
        return NULL;
    }
    self->started = true;
    return self;
}

void kmx_gw_hub_stop(kmx_gw_hub_t *self) {
    pthread_rwlock_wrlock(&self->lock);
    self->stop = true;
    pthread_rwlock_unlock(&self->lock);
    s_wake(self);
}

void kmx_gw_hub_destroy(kmx_gw_hub_t **self_p) {
    if (!self_p || !*self_p)
        return;
    kmx_gw_hub_t *self = *self_p;
    kmx_gw_hub_stop(self);
    if (self->started)
        pthread_join(self->thread, NULL);
    while (self->ring && self->n > 0)
        s_evict(self);
    free(self->ring);
    for (int f = 0; f < KMX_GW_FORMS; f++)
        free(self->text[f].data);
    free(self->broker);
    free(self->events);
    pthread_rwlock_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}

void kmx_gw_hub_stats(kmx_gw_hub_t *self, kmx_gw_hub_stats_t *out) {
    pthread_rwlock_rdlock(&self->lock);
    *out = self->stats;
    out->held = self->n;
    out->last_seq = self->covered;
    pthread_rwlock_unlock(&self->lock);
}

// ---- streams ----------------------------------------------------------------------------

kmx_gw_stream_t *kmx_gw_stream_new(kmx_gw_hub_t *hub, const kmx_gw_stream_config_t *cfg) {
    kmx_gw_stream_t *self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    bool has_since = cfg->has_since;
    uint64_t since = cfg->since;
    char *const *prefixes = cfg->prefixes;
    size_t n = cfg->n;
    self->hub = hub;
    self->form = cfg->form;
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
    pthread_rwlock_rdlock(&hub->lock);
    if (!has_since && hub->ready) {
        // A live-only stream starts at what is covered now, not at its first read.
        self->cursor = hub->covered;
        self->have_cursor = true;
    }
    pthread_rwlock_unlock(&hub->lock);
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
    char *text = s_render(ev, self->form, &len);
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

// The index (from head) of the first entry after the cursor (lock held).
static size_t s_first_after(const kmx_gw_stream_t *self) {
    const kmx_gw_hub_t *hub = self->hub;
    size_t lo = 0, hi = hub->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (hub->ring[(hub->head + mid) % hub->cap].seq <= self->cursor)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static const s_entry_t *s_at(const kmx_gw_hub_t *hub, size_t i) {
    return &hub->ring[(hub->head + i) % hub->cap];
}

// Every entry from lo on, as many as fit in size (lock held): one run of bytes. Returns
// the bytes written; an entry larger than size goes to pending.
static long s_run_from(kmx_gw_stream_t *self, size_t lo, char *buf, size_t size) {
    const kmx_gw_hub_t *hub = self->hub;
    const s_bytes_t *b = &hub->text[self->form];
    uint64_t start = s_at(hub, lo)->off[self->form];
    size_t good = lo, bad = hub->n; // the last entry that fits is in [good, bad)
    while (bad - good > 1) {
        size_t mid = good + (bad - good) / 2;
        const s_entry_t *e = s_at(hub, mid);
        if (e->off[self->form] + e->len[self->form] - start <= size)
            good = mid;
        else
            bad = mid;
    }
    const s_entry_t *last = s_at(hub, good);
    size_t len = (size_t)(last->off[self->form] + last->len[self->form] - start);
    if (len <= size) {
        s_bytes_get(b, start, len, buf);
        self->cursor = last->seq;
        return (long)len;
    }
    // One entry larger than a write: it goes out through pending (out of memory: the
    // cursor stays, the next read tries again).
    char *big = malloc(len);
    if (big)
        s_bytes_get(b, start, len, big);
    if (big && s_pending_add(self, big, len) == 0)
        self->cursor = last->seq;
    free(big);
    return 0;
}

// The matching entries from lo on, as many as fit in size (lock held). Returns the bytes
// written; an entry larger than size goes to pending.
static long s_matching_from(kmx_gw_stream_t *self, size_t lo, char *buf, size_t size) {
    const kmx_gw_hub_t *hub = self->hub;
    const s_bytes_t *b = &hub->text[self->form];
    size_t wrote = 0;
    for (size_t i = lo; i < hub->n; i++) {
        const s_entry_t *e = s_at(hub, i);
        size_t len = e->len[self->form];
        if (s_matches(self, e->topic)) {
            if (wrote + len > size && wrote > 0)
                return (long)wrote;
            if (len > size)
                return s_run_from(self, i, buf, size);
            s_bytes_get(b, e->off[self->form], len, buf + wrote);
            wrote += len;
        }
        self->cursor = e->seq;
    }
    return (long)wrote;
}

// Copies the ring's matching entries after the cursor into buf (lock held). Returns the
// bytes written; an entry larger than buf goes to pending.
static long s_from_ring(kmx_gw_stream_t *self, char *buf, size_t size) {
    kmx_gw_hub_t *hub = self->hub;
    size_t lo = s_first_after(self);
    long wrote = 0;
    if (lo < hub->n)
        wrote =
            self->n == 0 ? s_run_from(self, lo, buf, size) : s_matching_from(self, lo, buf, size);
    if (self->cursor >= s_at(hub, hub->n ? hub->n - 1 : 0)->seq && hub->covered > self->cursor)
        self->cursor = hub->covered;
    return wrote;
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
        // The news seen before looking: a change the hub makes after the look bumps it.
        uint32_t seen = atomic_load(&hub->news);
        pthread_rwlock_rdlock(&hub->lock);
        if (hub->stop) {
            pthread_rwlock_unlock(&hub->lock);
            return 0;
        }
        int where = s_position(self);
        long n = where == 1 ? s_from_ring(self, buf, size) : 0;
        bool idle = where == 1 && n == 0 && self->poff == self->plen;
        pthread_rwlock_unlock(&hub->lock);
        if (idle) {
            atomic_fetch_add(&hub->waiting, 1);
            int waited = s_wait(hub, seen, &deadline);
            atomic_fetch_sub(&hub->waiting, 1);
            if (waited == ETIMEDOUT)
                return s_comment(self, buf, size, "heartbeat");
        }
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
