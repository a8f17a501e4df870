/*  kmx_query - the request handlers of kmx-query: get, scan and replay are checked and
    forwarded to storage; query walks storage's scan pages through a filter and an
    aggregation; ping and stats describe this worker. Holds only counters, no data.  */
#ifndef KMX_QUERY_H
#define KMX_QUERY_H

#include "kmx_handler.h"
#include "kmx_link.h"

#include <stddef.h>
#include <stdint.h>

#define KMX_QUERY_SERVICE "kmx.query"
// Below the CLI's 5 s per-try timeout (see KMX_INGEST_TIMEOUT_MS).
#define KMX_QUERY_TIMEOUT_MS 4000 // how long one storage call may take
#define KMX_QUERY_PAGE 1000       // records asked for per scan page
#define KMX_QUERY_PAGES_MAX 10000 // scan pages one query may walk
#define KMX_QUERY_TOKEN_MAX 1024  // largest page token passed on

typedef struct kmx_query kmx_query_t;

// Creates the handlers. link is borrowed and must outlive the result; worker (copied)
// names this worker in pongs and stats. Returns NULL when out of memory.
kmx_query_t *kmx_query_new(kmx_link_t *link, const char *worker);
void kmx_query_destroy(kmx_query_t **self_p);

// kmx_query_new as the worker runner takes it: the object's kmx_handler_base_t, handled
// with kmx_handler_handle and released with kmx_handler_destroy.
kmx_handler_base_t *kmx_query_handler_new(kmx_link_t *link, const char *worker);

// Sets how long each storage call waits (default KMX_QUERY_TIMEOUT_MS).
void kmx_query_set_timeout(kmx_query_t *self, int timeout_ms);

// Handles one request body (borrowed, any bytes) and writes the packed Response to a
// malloc'd *out that the caller frees. Every input gets a reply: malformed bodies get a
// BAD_REQUEST error. Returns 0, or KMX_ERR_NOMEM when no reply could be built.
int kmx_query_handle(kmx_query_t *self, const void *body, size_t size, uint8_t **out, size_t *len);

#endif
