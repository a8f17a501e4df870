/*  kmx_watch - replay, then live, with gaps filled from the event log. Sequence numbers
    are gap-free across all topics, so a live event more than one ahead of what was seen,
    or a heartbeat ahead of it, means something was missed.  */
#include "kmx_watch.h"

#include "kmx_curve.h"
#include "kmx_err.h"
#include "kmx_msg.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#define S_REPLAY_PAGE 500

static int s_fail(kmx_watch_t *self, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int s_fail(kmx_watch_t *self, int rc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(self->err, sizeof(self->err), fmt, ap);
    va_end(ap);
    return rc;
}

static bool s_done(const kmx_watch_t *self) {
    return self->done && self->done(self->arg);
}

bool kmx_watch_matches(const kmx_watch_t *self, const char *topic) {
    if (self->nprefixes == 0)
        return true;
    for (size_t i = 0; i < self->nprefixes; i++) {
        if (strncmp(topic, self->prefixes[i], strlen(self->prefixes[i])) == 0)
            return true;
    }
    return false;
}

// Emits ev if it is new and wanted, advancing self->last.
static void s_emit(kmx_watch_t *self, const Kmx__V1__UpdateEvent *ev) {
    if (self->have_last && ev->seq <= self->last)
        return;
    self->last = ev->seq;
    self->have_last = true;
    const char *topic = ev->topic ? ev->topic : "";
    if (ev->type != KMX__V1__EVENT_TYPE__HEARTBEAT && kmx_watch_matches(self, topic) &&
        !s_done(self))
        self->emit(self->arg, ev);
}

static int s_replay_failed(kmx_watch_t *self, uint64_t cursor, int rc) {
    if (rc == KMX_ERR_RESYNC)
        return s_fail(self, rc,
                      "events after seq %llu are no longer kept; start again without a "
                      "starting sequence or with a newer one",
                      (unsigned long long)cursor);
    const char *why = kmx_client_last_error(self->client);
    return s_fail(self, rc, "event replay failed: %s", why && *why ? why : kmx_strerror(rc));
}

int kmx_watch_replay(kmx_watch_t *self, unsigned max_pages) {
    uint64_t cursor = self->last;
    for (unsigned pages = 0; max_pages == 0 || pages < max_pages; pages++) {
        Kmx__V1__Response *resp = NULL;
        int rc = kmx_client_replay(self->client, cursor, self->page ? self->page : S_REPLAY_PAGE,
                                   self->prefixes, self->nprefixes, &resp);
        if (rc < 0) {
            if (resp)
                kmx__v1__response__free_unpacked(resp, NULL);
            return s_replay_failed(self, cursor, rc);
        }
        const Kmx__V1__ReplayResult *res = resp->replay;
        for (size_t i = 0; i < res->n_events && !s_done(self); i++)
            s_emit(self, res->events[i]);
        bool more = res->n_events > 0 && res->events[res->n_events - 1]->seq > cursor &&
                    res->events[res->n_events - 1]->seq < res->last_seq;
        if (more)
            cursor = res->events[res->n_events - 1]->seq;
        else if (res->last_seq > self->last) {
            // Everything matching up to last_seq has been seen.
            self->last = res->last_seq;
            self->have_last = true;
        }
        kmx__v1__response__free_unpacked(resp, NULL);
        if (!more || s_done(self))
            return 0;
    }
    return 1;
}

int kmx_watch_on_event(kmx_watch_t *self, const Kmx__V1__UpdateEvent *ev, bool heartbeat) {
    if (heartbeat) {
        if (!self->have_last) {
            self->last = ev->seq;
            self->have_last = true;
            return 0;
        }
        return ev->seq > self->last ? kmx_watch_replay(self, 0) : 0;
    }
    if (self->have_last && ev->seq > self->last + 1) {
        // Sequence numbers are gap-free: something between may be ours and was missed.
        int rc = kmx_watch_replay(self, 0);
        if (rc != 0)
            return rc;
    }
    s_emit(self, ev);
    return 0;
}

int kmx_watch_receive(kmx_watch_t *self, void *sub) {
    zmq_msg_t frames[2];
    int nframes = 0;
    int more = 1;
    while (more) {
        zmq_msg_t part;
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, sub, 0) < 0) {
            zmq_msg_close(&part);
            for (int i = 0; i < nframes; i++)
                zmq_msg_close(&frames[i]);
            return errno == EINTR ? 0 : s_fail(self, KMX_ERR_IO, "events: %s", zmq_strerror(errno));
        }
        more = zmq_msg_more(&part);
        if (nframes < 2)
            frames[nframes++] = part;
        else
            zmq_msg_close(&part);
    }
    int rc = 0;
    if (nframes == 2 && zmq_msg_size(&frames[1]) <= KMX_MSG_MAX) {
        size_t tlen = zmq_msg_size(&frames[0]);
        bool heartbeat = tlen == strlen(KMX_WATCH_HEARTBEAT_TOPIC) &&
                         memcmp(zmq_msg_data(&frames[0]), KMX_WATCH_HEARTBEAT_TOPIC, tlen) == 0;
        Kmx__V1__UpdateEvent *ev =
            kmx__v1__update_event__unpack(NULL, zmq_msg_size(&frames[1]), zmq_msg_data(&frames[1]));
        if (ev) {
            heartbeat = heartbeat || ev->type == KMX__V1__EVENT_TYPE__HEARTBEAT;
            rc = kmx_watch_on_event(self, ev, heartbeat);
            kmx__v1__update_event__free_unpacked(ev, NULL);
        }
    }
    for (int i = 0; i < nframes; i++)
        zmq_msg_close(&frames[i]);
    return rc;
}

int kmx_watch_start(kmx_watch_t *self, bool has_since, uint64_t since) {
    if (has_since) {
        self->last = since;
        self->have_last = true;
        return kmx_watch_replay(self, 0);
    }
    Kmx__V1__Response *resp = NULL;
    int rc = kmx_client_replay(self->client, UINT64_MAX - 1, 1, NULL, 0, &resp);
    if (rc == 0) {
        self->last = resp->replay->last_seq;
        self->have_last = true;
    }
    // Without kmx.query the first live event or heartbeat sets the starting point.
    if (resp)
        kmx__v1__response__free_unpacked(resp, NULL);
    return 0;
}

void *kmx_watch_subscribe(void *ctx, const char *endpoint, char *const *prefixes, size_t n,
                          char *err) {
    void *sub = zmq_socket(ctx, ZMQ_SUB);
    if (!sub) {
        snprintf(err, KMX_WATCH_ERR_MAX, "events: %s", zmq_strerror(errno));
        return NULL;
    }
    int zero = 0, hwm = 100000;
    zmq_setsockopt(sub, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_setsockopt(sub, ZMQ_RCVHWM, &hwm, sizeof(hwm));
    if (n == 0)
        zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "", 0);
    for (size_t i = 0; i < n; i++)
        zmq_setsockopt(sub, ZMQ_SUBSCRIBE, prefixes[i], strlen(prefixes[i]));
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, KMX_WATCH_HEARTBEAT_TOPIC,
                   strlen(KMX_WATCH_HEARTBEAT_TOPIC));
    if (kmx_curve_client(sub, KMX_CURVE_TO_BROKER) != 0) {
        snprintf(err, KMX_WATCH_ERR_MAX, "events: CURVE settings are missing or bad (logged)");
        zmq_close(sub);
        return NULL;
    }
    if (zmq_connect(sub, endpoint) < 0) {
        snprintf(err, KMX_WATCH_ERR_MAX, "cannot connect to %s: %s", endpoint, zmq_strerror(errno));
        zmq_close(sub);
        return NULL;
    }
    return sub;
}
