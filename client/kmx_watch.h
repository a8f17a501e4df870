/*  kmx_watch - change events without gap or duplicate: replay from the event log through
    kmx.query, then live events from a SUB socket, dropping by sequence number what was
    already seen and replaying the difference when a live event skips sequence numbers or
    a heartbeat shows events that were missed (slow joiner, high-water mark, a storage
    restart). One definition for `kmx watch` and kmx-gateway's event streams.

    Subscribe before the first replay, so nothing can fall between the replayed history
    and the live stream.  */
#ifndef KMX_WATCH_H
#define KMX_WATCH_H

#include "kmx.pb-c.h"
#include "kmx_client.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KMX_WATCH_HEARTBEAT_TOPIC "kmx.heartbeat"
#define KMX_WATCH_ERR_MAX 300 // longest error sentence, with NUL

typedef struct kmx_watch kmx_watch_t;

// Called for each new event whose topic matches, in sequence order.
typedef void (*kmx_watch_emit_fn)(void *arg, const Kmx__V1__UpdateEvent *ev);
// Returns true when no more events are wanted (optional).
typedef bool (*kmx_watch_done_fn)(void *arg);

struct kmx_watch {
    kmx_client_t *client;        // request client for replays (borrowed)
    char *const *prefixes;       // topic prefixes (borrowed); none = every topic
    size_t nprefixes;            // number of prefixes
    kmx_watch_emit_fn emit;      // receives the events
    kmx_watch_done_fn done;      // stops emitting when it says so; may be NULL
    void *arg;                   // for emit and done
    uint32_t page;               // events per replay request (0: 500)
    uint64_t last;               // newest sequence emitted or known covered
    bool have_last;              // last is meaningful
    char err[KMX_WATCH_ERR_MAX]; // what failed, after an error
};

// Starts where printing begins: after since (replaying the stored events after it) when
// has_since, else after the newest event committed now. Returns 0 or a negative kmx code
// with self->err set (KMX_ERR_RESYNC: events after since are no longer kept).
int kmx_watch_start(kmx_watch_t *self, bool has_since, uint64_t since);

// Replays the stored events after self->last, at most max_pages requests (0: until the
// newest). Returns 0 when caught up, 1 when more remain, or a negative kmx code with
// self->err set.
int kmx_watch_replay(kmx_watch_t *self, unsigned max_pages);

// Handles one published event (heartbeat: a heartbeat topic or type). Replays first
// when it shows missed events. Returns 0 or a negative kmx code with self->err set; the
// event is then not emitted and the next one replays again.
int kmx_watch_on_event(kmx_watch_t *self, const Kmx__V1__UpdateEvent *ev, bool heartbeat);

// Receives one [topic][UpdateEvent] message from sub and handles it. Returns 0 (also for
// a message that is not an event, or EINTR) or a negative kmx code with self->err set.
int kmx_watch_receive(kmx_watch_t *self, void *sub);

// Whether topic starts with one of the prefixes (always, without prefixes).
bool kmx_watch_matches(const kmx_watch_t *self, const char *topic);

// Opens a SUB socket in ctx on the events endpoint, subscribed to the prefixes (all
// when n is 0) and the heartbeat topic, a CURVE client of the broker when CURVE is on.
// Returns the socket, or NULL with err (of size KMX_WATCH_ERR_MAX) saying why.
void *kmx_watch_subscribe(void *ctx, const char *endpoint, char *const *prefixes, size_t n,
                          char *err);

#endif
