/*  kmx_handler - what every worker's request handler shares: the pong and stats replies
    and the walk of a table from body type to handler, with the UNSUPPORTED error for a
    body no entry handles.  */
#ifndef KMX_HANDLER_H
#define KMX_HANDLER_H

#include "kmx.pb-c.h"

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

#endif
