/*  kmx_store_int - kmx_store's private state, shared by its implementation files
    (kmx_store.c for writes and reads, kmx_store_check.c for the offline verifier and
    backup). Nothing outside services/storage includes this.  */
#ifndef KMX_STORE_INT_H
#define KMX_STORE_INT_H

#include "kmx_derived.h"
#include "kmx_store.h"

#include <lmdb.h>

struct kmx_store {
    MDB_env *env;              // the environment; owns the map
    MDB_dbi records;           // KMX_DB_RECORDS
    MDB_dbi events;            // KMX_DB_EVENTS
    MDB_dbi meta;              // KMX_DB_META
    kmx_derived_dbs_t derived; // indexes and roll-ups
    kmx_derived_pending_t *pending; // roll-up changes of the open write transaction
    uint64_t last_seq;         // newest committed sequence number
    size_t map_size;           // current map size in bytes
    size_t map_size_max;       // growth limit; 0 = none
    uint64_t retain_events;    // events kept in the log; 0 = all
    int readonly;              // opened with MDB_RDONLY (check, backup)
    int upgrade;               // cfg->upgrade: may upgrade an older schema
    int lock_fd;               // holds the writer's lock on the directory, or -1
    uint32_t upgraded_from;    // the schema version upgraded at open, 0 = none
};

// Converts an LMDB or errno code to a kmx code, logging the original once.
int kmx_store_mdb_err(int rc, const char *what);

// Begins a read-only transaction, adopting a map another process grew. Returns 0 or a
// kmx code.
int kmx_store_begin_read(kmx_store_t *self, MDB_txn **txn);

// Reads meta/last_seq inside txn (0 when absent). Returns 0 or a kmx code.
int kmx_store_read_last_seq(const kmx_store_t *self, MDB_txn *txn, uint64_t *out);

// Adds to group what the roll-ups in txn hold for filter (kmx_store_filter_is_rollup),
// folding years of months as fold allows (NULL: never; *folded counts the years folded).
// Returns 0 or a kmx code.
int kmx_store_rollup_aggregate(const kmx_store_t *self, MDB_txn *txn,
                               const Kmx__V1__Filter *filter, const kmx_store_fold_t *fold,
                               kmx_group_t *group, uint64_t *folded);

#endif
