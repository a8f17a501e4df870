/*  kmx_gw_hub - the gateway's one subscription to the event stream, fanned out to every
    Server-Sent Events client. A thread runs kmx_watch over all topics (replay-then-live,
    gaps filled from the event log) and keeps the newest events, already rendered as SSE
    text in each form, in a ring; each stream reads the ring from its own sequence number. A stream
    that starts before the ring (or finds it moved on) replays from the event log with
    kmx_watch until it reaches the ring, so every stream gets every matching event once,
    in order.  */
#ifndef KMX_GW_HUB_H
#define KMX_GW_HUB_H

#include "kmx_gw_pool.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kmx_gw_hub kmx_gw_hub_t;

typedef struct {
    const char *broker; // request endpoint, for replays
    const char *events; // event endpoint (the broker's XPUB)
    size_t ring;        // events kept in memory (0: 65536)
    int timeout_ms;     // per-try timeout of replay requests
} kmx_gw_hub_config_t;

// Starts the hub thread. Returns NULL when the socket or thread cannot be set up.
kmx_gw_hub_t *kmx_gw_hub_new(const kmx_gw_hub_config_t *cfg);
// Wakes every waiting stream and makes them end (their reads return 0); the thread stops.
void kmx_gw_hub_stop(kmx_gw_hub_t *self);
// Stops the thread, wakes every waiting stream and frees the hub.
void kmx_gw_hub_destroy(kmx_gw_hub_t **self_p);

// Counters for /metrics.
typedef struct {
    uint64_t events;   // events taken into the ring
    uint64_t last_seq; // newest sequence known covered
    uint64_t replays;  // replays the hub made to fill gaps
    uint64_t failures; // replays that failed (retried at the next event or heartbeat)
    size_t held;       // events in the ring now
} kmx_gw_hub_stats_t;
void kmx_gw_hub_stats(kmx_gw_hub_t *self, kmx_gw_hub_stats_t *out);

typedef struct kmx_gw_stream kmx_gw_stream_t;

// What each event's data: line carries (docs/http.md, GET /v1/events).
typedef enum {
    KMX_GW_FORM_FULL = 0,    // the event as kmx watch --format json prints it
    KMX_GW_FORM_COMPACT = 1, // seq, type, topic, value, unit, previous, committed_ms
} kmx_gw_form_t;
#define KMX_GW_FORMS 2

typedef struct {
    bool has_since;        // start after since, not at what is committed now
    uint64_t since;        // ... this sequence
    char *const *prefixes; // topic prefixes (copied); none = all
    size_t n;              // number of prefixes
    kmx_gw_form_t form;    // the events' form
} kmx_gw_stream_config_t;

// A stream of the events after since (has_since), or of those committed from now on,
// whose topic starts with one of the prefixes. Returns NULL when out of memory.
kmx_gw_stream_t *kmx_gw_stream_new(kmx_gw_hub_t *hub, const kmx_gw_stream_config_t *cfg);
void kmx_gw_stream_destroy(kmx_gw_stream_t **self_p);

// Fills buf with SSE text: the next events ("id: SEQ\ndata: JSON\n\n"), waiting up to
// heartbeat_ms for one and writing a heartbeat comment (": heartbeat SEQ\n\n") when none
// came. Replays with a client of pool when the stream is behind the ring; while replays
// fail (storage restarting) it writes a comment saying so and tries again. Returns the
// bytes written (> 0), 0 when the hub is stopping, or KMX_ERR_RESYNC when the events
// after the stream's sequence are no longer kept.
long kmx_gw_stream_read(kmx_gw_stream_t *self, kmx_gw_pool_t *pool, char *buf, size_t size,
                        int heartbeat_ms);

// The sequence the stream has delivered or knows covered.
uint64_t kmx_gw_stream_cursor(const kmx_gw_stream_t *self);

#endif
