/*  kmx_handler - the request-handler object every worker service is made of (kmx-ingest,
    kmx-query): its common part (service, link, worker name, timeout, request and error
    counts), the decode-find-dispatch of one request through a table from body type to
    handler, and the pong, stats and error replies.  */
#ifndef KMX_HANDLER_H
#define KMX_HANDLER_H

#include "kmx.pb-c.h"
#include "kmx_link.h"

#include <stddef.h>
#include <stdint.h>

// Handles one request for the service context self, packing the reply into a malloc'd
// *out. Returns 0 or a negative kmx_err_t.
typedef int (*kmx_handler_fn)(void *self, const Kmx__V1__Request *req, uint8_t **out, size_t *len);

typedef struct {
    Kmx__V1__Request__BodyCase body; // request type
    kmx_handler_fn fn;               // its handler
} kmx_handler_t;

// One named counter of a stats reply.
typedef struct {
    const char *name;
    uint64_t value;
} kmx_handler_counter_t;

// Returns the entry of table[0..n) for req's body type, or NULL when none handles it or
// the body is missing.
const kmx_handler_t *kmx_handler_find(const kmx_handler_t *table, size_t n,
                                      const Kmx__V1__Request *req);

// Packs the UNSUPPORTED error service sends for a body type it does not handle.
// Returns 0 or KMX_ERR_NOMEM.
int kmx_handler_pack_unsupported(const char *service, const Kmx__V1__Request *req, uint8_t **out,
                                 size_t *len);

// Packs the error a worker sends when its storage call failed with rc (logged here):
// INTERNAL for a reply that does not decode, NOMEM, else UNAVAILABLE (retry).
// Returns 0 or KMX_ERR_NOMEM.
int kmx_handler_pack_link_error(const Kmx__V1__Request *req, int rc, uint8_t **out, size_t *len);

// Packs the pong of worker of service (this build's version) under req's request id.
// Strings are borrowed. Returns 0 or KMX_ERR_NOMEM.
int kmx_handler_pack_pong(const char *service, const char *worker, const Kmx__V1__Request *req,
                          uint8_t **out, size_t *len);

// Packs the stats of worker of service, the n counters in order and then the process's
// rss_bytes, open_fds and uptime_s (kmx_proc), under req's request id.
// Strings are borrowed. Returns 0, KMX_ERR_INVAL (n over KMX_HANDLER_COUNTERS_MAX) or
// KMX_ERR_NOMEM.
#define KMX_HANDLER_COUNTERS_MAX 64
int kmx_handler_pack_stats(const char *service, const char *worker,
                           const kmx_handler_counter_t *counters, size_t n,
                           const Kmx__V1__Request *req, uint8_t **out, size_t *len);

// As kmx_handler_pack_stats, with relayed (borrowed, may be NULL) carried as the result's
// storage field: the stats a worker fetched from kmx-storage for its caller.
int kmx_handler_pack_stats_relay(const char *service, const char *worker,
                                 const kmx_handler_counter_t *counters, size_t n,
                                 Kmx__V1__StatsResult *relayed, const Kmx__V1__Request *req,
                                 uint8_t **out, size_t *len);

typedef struct kmx_handler_base kmx_handler_base_t;

// What makes a service's handler object: its name, its table, its storage timeout and the
// size of its object (whose first member is a kmx_handler_base_t).
typedef struct {
    const char *service;        // MDP service name ("kmx.ingest")
    const kmx_handler_t *table; // body type -> handler
    size_t n_table;             // entries in table
    int timeout_ms;             // default wait for one storage call
    size_t size;                // sizeof the service's object
} kmx_handler_class_t;

// The first member of every service's handler object (kmx_ingest_t, kmx_query_t), so the
// worker runner handles and destroys any of them through it.
struct kmx_handler_base {
    const kmx_handler_class_t *cls; // the service's class, static
    kmx_link_t *link;               // link to storage, borrowed (NULL: no storage)
    char worker[128];               // this worker's name, for pongs and stats
    int timeout_ms;                 // how long one storage call waits
    uint32_t asked_ms;              // the request in hand's timeout_ms (0: its sender did not say)
    int64_t deadline;               // monotonic ms by which that request is to be answered
    uint64_t requests;              // requests answered
    uint64_t errors;                // error replies sent
    const struct kmx_local *local;  // the worker's local read socket (borrowed), or NULL
};

// Allocates a zeroed object of cls->size whose base is filled (link borrowed, worker copied;
// NULL takes the service's name). Release it with kmx_handler_destroy. NULL without memory.
kmx_handler_base_t *kmx_handler_new(const kmx_handler_class_t *cls, kmx_link_t *link,
                                    const char *worker);

// Handles one request body (borrowed, any bytes): decodes it, finds its handler in the
// table and packs its reply into a malloc'd *out. Every input gets a reply (BAD_REQUEST,
// UNSUPPORTED). Returns 0, KMX_ERR_INVAL for NULL arguments or KMX_ERR_NOMEM.
int kmx_handler_handle(kmx_handler_base_t *self, const void *body, size_t size, uint8_t **out,
                       size_t *len);

// Frees the object self is the first member of. Accepts NULL; clears *self_p.
void kmx_handler_destroy(kmx_handler_base_t **self_p);

// Sets how long a storage call waits (values <= 0 keep the current one).
void kmx_handler_set_timeout(kmx_handler_base_t *self, int timeout_ms);

// How long a storage call for the request in hand may wait: what is left of the sender's
// timeout_ms less a tenth of it (at most KMX_HANDLER_RESERVE_MS) kept for the answer's way
// back, so a request whose time ran out is answered DEADLINE_EXCEEDED before its sender
// gives up; 0 once that is over. A request without timeout_ms gets the service's own wait
// (kmx_handler_set_timeout) for each call, as before the field existed.
#define KMX_HANDLER_RESERVE_MS 250
int kmx_handler_left_ms(const kmx_handler_base_t *self);

// Calls storage for the request in hand, waiting no longer than its sender waits for the
// answer (kmx_handler_left_ms): KMX_ERR_TIMEOUT at once, nothing sent, when that time is
// over; KMX_ERR_UNAVAILABLE without a link. Otherwise as kmx_link_call (*resp NULL on error).
int kmx_handler_call(kmx_handler_base_t *self, const Kmx__V1__Request *fwd,
                     Kmx__V1__Response **resp);

// Packs an error reply for req (may be NULL) and counts it. Returns 0 or KMX_ERR_NOMEM.
int kmx_handler_error(kmx_handler_base_t *self, const Kmx__V1__Request *req, int err,
                      const char *msg, uint8_t **out, size_t *len);

// kmx_handler_pack_link_error for req, counted; a timeout once the request's own time is
// over (kmx_handler_left_ms is 0) is DEADLINE_EXCEEDED, naming that time, instead of the
// UNAVAILABLE that asks to retry. Returns 0 or KMX_ERR_NOMEM.
int kmx_handler_link_error(kmx_handler_base_t *self, const Kmx__V1__Request *req, int rc,
                           uint8_t **out, size_t *len);

// The ping entry every table has: self is the kmx_handler_base_t.
int kmx_handler_on_ping(void *self, const Kmx__V1__Request *req, uint8_t **out, size_t *len);

#endif
