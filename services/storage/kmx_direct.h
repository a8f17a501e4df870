/*  kmx_direct - storage's LMDB environment read from another process on the same host and
    volume (kmx-query --read-dir): the store opened read-only beside the running
    kmx-storage, sharing its lock file, and each get, scan, replay and history answered by
    storage's own read handlers in a fresh read transaction. Everything else still goes
    to storage.  */
#ifndef KMX_DIRECT_H
#define KMX_DIRECT_H

#include "kmx.pb-c.h"

#include <stddef.h>
#include <stdint.h>

#define KMX_DIRECT_RETRY_MS 1000 // how often a closed environment is tried again

typedef struct kmx_direct kmx_direct_t;

// Creates a reader of the store in dir (copied). The environment is opened at the first
// answer, not here, so a worker may start before storage created it. Returns NULL when
// out of memory.
kmx_direct_t *kmx_direct_new(const char *dir);
void kmx_direct_destroy(kmx_direct_t **self_p);

// Whether a request with this body is answered here: get, scan, replay and history.
// Queries, aggregates and catalogs need storage's in-memory index of alternative
// measurements, and ping and stats describe the storage process: those go to storage.
int kmx_direct_handles(int body_case);

// Answers req from the environment into a malloc'd packed Response *out that the caller
// frees; errors the read itself meets (a bad filter, no such record) are answers too.
// Returns 0, KMX_ERR_UNSUPPORTED for a request that must go to storage,
// KMX_ERR_UNAVAILABLE while the environment cannot be opened (absent, not a kmx store,
// another schema version: tried again at most every KMX_DIRECT_RETRY_MS, the reason
// logged once), or KMX_ERR_NOMEM.
int kmx_direct_answer(kmx_direct_t *self, const Kmx__V1__Request *req, uint8_t **out, size_t *len);

// Whether the environment is open now (a read would be answered here).
int kmx_direct_is_open(const kmx_direct_t *self);

#endif
