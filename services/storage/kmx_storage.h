/*  kmx_storage - the kmx-storage service: a ROUTER answering ingest and query workers;
    one writer thread committing every waiting put and delete in one LMDB transaction
    (group commit) and publishing each committed change (and an idle heartbeat) after
    the commit; reads answered beside it from LMDB read transactions, by a pool of reader
    threads and, for point gets, by the router thread itself.  */
#ifndef KMX_STORAGE_H
#define KMX_STORAGE_H

#include "kmx_store.h"

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#define KMX_STORAGE_BATCH_MAX 256        // requests drained per group commit
#define KMX_STORAGE_RECORDS_MAX 10000    // records one put request may carry
#define KMX_STORAGE_BATCH_RECORDS 50000  // records drained per group commit (then it commits)
#define KMX_STORAGE_SCAN_DEFAULT 100     // scan page size when the request names none
#define KMX_STORAGE_SCAN_MAX 1000        // largest scan page served
#define KMX_STORAGE_REPLAY_DEFAULT 1000  // replay page size when the request names none
#define KMX_STORAGE_REPLAY_MAX 1000      // largest replay page served
#define KMX_STORAGE_HEARTBEAT_MS 1000    // idle time before a heartbeat is published
#define KMX_STORAGE_BATCH_WAIT_US 1000   // default longest wait for more writers per batch
#define KMX_STORAGE_READERS 4            // reader threads when the config names none
#define KMX_STORAGE_READERS_MAX 64       // most reader threads
#define KMX_STORAGE_READ_QUEUE_MAX 1024  // reads waiting for a free reader, then refused
#define KMX_STORAGE_WRITE_QUEUE_MAX 2000 // writes waiting for the writer, then refused

typedef struct kmx_storage kmx_storage_t;

typedef struct {
    const char *bind;       // ROUTER endpoint to bind ("tcp://127.0.0.1:5560")
    const char *publish;    // endpoint the PUB socket connects to (the broker's XSUB)
    const char *data_dir;   // LMDB environment directory, created if missing
    size_t map_size;        // initial LMDB map size in bytes; 0 = the store's default
    int heartbeat_ms;       // idle time before a heartbeat; 0 = KMX_STORAGE_HEARTBEAT_MS
    kmx_store_sync_t sync;  // durability of commits (KMX_STORE_SYNC_FULL = 0 by default)
    uint64_t retain_events; // newest events kept in the log; 0 = all
    uint64_t batch_wait_us; // longest wait for more writers once a write arrived; 0 = none
    size_t readers;         // reader threads; 0 = KMX_STORAGE_READERS
    int reader_nice;        // steps the reader threads run nicer than the writer (0 to 19)
    unsigned read_delay_ms; // tests only: readers wait this long before each scan, aggregate or
                            // query answer (KMX_DEBUG_STORAGE_READ_DELAY_MS); 0, off, by default
    unsigned wr_delay_ms;   // tests only: the writer waits this long before committing each
                            // batch (KMX_DEBUG_STORAGE_WRITE_DELAY_MS); 0, off, by default
} kmx_storage_config_t;

// Opens the store and the sockets in ctx (borrowed; it must outlive the service).
// On 0 *out is yours: release it with kmx_storage_destroy. Returns the store's error
// (KMX_ERR_VERSION, KMX_ERR_IO, ...), KMX_ERR_IO when a socket cannot bind or connect,
// KMX_ERR_INVAL or KMX_ERR_NOMEM.
int kmx_storage_new(void *ctx, const kmx_storage_config_t *cfg, kmx_storage_t **out);

// Closes the sockets and the store and clears *self_p. Accepts NULL.
void kmx_storage_destroy(kmx_storage_t **self_p);

// Writes the ROUTER's bound endpoint (with the real port when bound to ":*").
// Returns 0 or KMX_ERR_OVERFLOW.
int kmx_storage_endpoint(const kmx_storage_t *self, char *buf, size_t size);

// Starts the writer and reader threads and routes requests in the calling thread until
// *stop (may be NULL) becomes nonzero or ctx is shut down; then every write handed to
// the writer is committed and answered and the reads in hand are answered before the
// threads are joined. Returns 0 or KMX_ERR_IO.
int kmx_storage_run(kmx_storage_t *self, volatile sig_atomic_t *stop);

#endif
