/*  kmx_store_int - kmx_store's private state, shared by its implementation files:
    kmx_store.c (open, close, what both sides share), kmx_store_write.c (the one writer),
    kmx_store_read.c (reads from any thread), kmx_store_rollup.c (aggregates from the
    roll-ups, called by the read side) and kmx_store_check.c (the offline verifier and
    backup). Nothing outside services/storage includes this.  */
#ifndef KMX_STORE_INT_H
#define KMX_STORE_INT_H

#include "kmx_catalog.h"
#include "kmx_derived.h"
#include "kmx_store.h"

#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>

// The alternatives cache (kmx_store_alt.c).
typedef struct kmx_store_alt kmx_store_alt_t;
kmx_store_alt_t *kmx_store_alt_new(void);
void kmx_store_alt_destroy(kmx_store_alt_t **alt_p);
// The writer's only part: after each commit (last_seq set), wakes the builder to follow it.
void kmx_store_alt_committed(kmx_store_t *self);
// Starts the builder, the thread that builds the first version (a writable store's open)
// and then brings it forward from the event log after each commit, so no check walks the
// records later. Returns 0, or KMX_ERR_NOMEM when the thread cannot start (the first
// check then builds it).
int kmx_store_alt_start(kmx_store_t *self);
// Stops and joins that thread, if any (close, before the environment goes). NULL is fine.
void kmx_store_alt_stop(kmx_store_t *self);
// For tests: while hold is nonzero the builder starts no round, so checks find the version
// behind and bring it forward themselves. NULL is fine.
void kmx_store_alt_hold(kmx_store_t *self, int hold);
// The sequence the current version describes, 0 before the first. For tests.
uint64_t kmx_store_alt_seq(kmx_store_t *self);
// Walks over all records a check made itself since open, for want of a version (0 while the
// builder keeps one at hand).
unsigned kmx_store_alt_walks(const kmx_store_t *self);
// Compares the current version, brought to the last commit, with one built by a full walk
// now: *same is 1 when they hold the same records. For tests; do not write meanwhile.
// Returns 0 or a kmx code.
int kmx_store_alt_verify(kmx_store_t *self, int *same);

struct kmx_store {
    MDB_env *env;                   // the environment; owns the map
    MDB_dbi records;                // KMX_DB_RECORDS
    MDB_dbi events;                 // KMX_DB_EVENTS
    MDB_dbi meta;                   // KMX_DB_META
    kmx_derived_dbs_t derived;      // indexes and roll-ups
    kmx_derived_pending_t *pending; // roll-up changes of the open write transaction
    kmx_catalog_dbs_t catalog;      // the catalog and the history index
    kmx_catalog_pending_t *cpend;   // catalog changes of the open write transaction
    _Atomic uint64_t last_seq;      // newest committed sequence number (set by the writer)
    size_t map_size;                // current map size in bytes (the writer's, under map_gate)
    size_t map_size_max;            // growth limit; 0 = none
    uint64_t retain_events;         // events kept in the log; 0 = all
    int builder_nice;               // the alternatives builder's nice steps (cfg->builder_nice)
    int readonly;                   // opened with MDB_RDONLY (check, backup)
    int upgrade;                    // cfg->upgrade: may upgrade an older schema
    int lock_fd;                    // holds the writer's lock on the directory, or -1
    uint32_t upgraded_from;         // the schema version upgraded at open, 0 = none
    // The map gate: LMDB may only resize the map while no transaction of this process is
    // open, so every read transaction holds the gate open and a resize closes it, waiting
    // for the readers inside to finish. A closing gate lets no new reader in (readers
    // cannot starve a resize); resizes are rare (the map doubles) and short.
    pthread_mutex_t gate_mutex; // guards the two fields below
    pthread_cond_t gate_cond;   // signalled when either changes
    unsigned gate_readers;      // read transactions open
    int gate_closed;            // nonzero while a resize waits or runs
    int gate_ready;             // the mutex and condition were initialised
    kmx_store_alt_t *alt;       // records holding alternatives, followed by its builder
};

static inline void kmx_store_put_be(uint8_t *p, uint64_t v, size_t bytes) {
    for (size_t i = bytes; i > 0; i--) {
        p[i - 1] = (uint8_t)v;
        v >>= 8;
    }
}

static inline uint64_t kmx_store_get_be(const uint8_t *p, size_t bytes) {
    uint64_t v = 0;
    for (size_t i = 0; i < bytes; i++)
        v = (v << 8) | p[i];
    return v;
}

// Converts an LMDB or errno code to a kmx code, logging the original once.
int kmx_store_mdb_err(int rc, const char *what);

// Begins a read-only transaction on the last committed snapshot, passing the map gate
// and adopting a map another process grew. Safe from any thread. End it with
// kmx_store_end_read. Returns 0 or a kmx code.
int kmx_store_begin_read(kmx_store_t *self, MDB_txn **txn);

// Ends a transaction from kmx_store_begin_read (NULL is ignored) and leaves the gate.
void kmx_store_end_read(kmx_store_t *self, MDB_txn *txn);

// Closes the map gate, waiting until no read transaction is open, runs the map resize
// (mdb_env_set_mapsize with size; 0 adopts the size on disk), and reopens the gate.
// Returns the LMDB code.
int kmx_store_resize_map(kmx_store_t *self, size_t size);

// Reads meta/last_seq inside txn (0 when absent). Returns 0 or a kmx code.
int kmx_store_read_last_seq(const kmx_store_t *self, MDB_txn *txn, uint64_t *out);

// Adds to group what the roll-ups in txn hold for filter (kmx_store_filter_is_rollup),
// folding years of months as fold allows (NULL: never; *folded counts the years folded).
// Returns 0 or a kmx code.
int kmx_store_rollup_aggregate(const kmx_store_t *self, MDB_txn *txn, const Kmx__V1__Filter *filter,
                               const kmx_store_fold_t *fold, kmx_group_t *group, uint64_t *folded);

#endif
