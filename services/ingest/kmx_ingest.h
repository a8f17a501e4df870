/*  kmx_ingest - the request handlers of kmx-ingest: validate put batches and raw
    documents (CSV, JSON Lines) record by record, report repeats of a key inside one
    request, forward the valid records to storage over the link and merge storage's
    per-record results back to the caller's indexes and rows; answer ping and stats.
    Holds only counters, no data.  */
#ifndef KMX_INGEST_H
#define KMX_INGEST_H

#include "kmx_handler.h"
#include "kmx_link.h"

#include <stddef.h>
#include <stdint.h>

#define KMX_INGEST_SERVICE "kmx.ingest"
#define KMX_INGEST_BATCH_MAX 10000 // records one put may carry
// Below the CLI's 5 s per-try timeout, so a client hears "storage did not answer"
// (UNAVAILABLE) from the worker instead of timing out itself and blaming the broker.
#define KMX_INGEST_TIMEOUT_MS 4000   // how long a put waits for storage
#define KMX_INGEST_FORWARD_MAX 10000 // records sent to storage per call (its own limit)

typedef struct kmx_ingest kmx_ingest_t;

// Creates the handlers. link is borrowed and must outlive the result; worker (copied)
// names this worker in pongs and stats. With a NULL link every request is still decoded
// and validated, and writes are answered UNAVAILABLE (dry runs still answer): the shape
// the fuzzer drives. Returns NULL when out of memory.
kmx_ingest_t *kmx_ingest_new(kmx_link_t *link, const char *worker);
void kmx_ingest_destroy(kmx_ingest_t **self_p);

// kmx_ingest_new as the worker runner takes it: the object's kmx_handler_base_t, handled
// with kmx_handler_handle and released with kmx_handler_destroy.
kmx_handler_base_t *kmx_ingest_handler_new(kmx_link_t *link, const char *worker);

// Sets how long a call waits for storage (default KMX_INGEST_TIMEOUT_MS).
void kmx_ingest_set_timeout(kmx_ingest_t *self, int timeout_ms);

// Handles one request body (borrowed, any bytes) and writes the packed Response to a
// malloc'd *out that the caller frees. Every input gets a reply: malformed bodies get a
// BAD_REQUEST error. Returns 0, or KMX_ERR_NOMEM when no reply could be built.
int kmx_ingest_handle(kmx_ingest_t *self, const void *body, size_t size, uint8_t **out,
                      size_t *len);

#endif
