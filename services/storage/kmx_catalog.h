/*  kmx_catalog - what the store holds, kept on every write: the values of each record field
    with the number of records carrying them (markets, units, categories with their units
    and periods, items, sources, companies, artists), and an index from a record's key to
    the sequence numbers of its change events (its history). Both live in the caller's LMDB
    write transaction, so they commit or vanish with the record change. Reads answer the
    catalog, a figure's history and "does this filter value exist" without a scan.  */
#ifndef KMX_CATALOG_H
#define KMX_CATALOG_H

#include "kmx.pb-c.h"

#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>

#define KMX_CATALOG_KEY_MAX 256 // bytes in the longest catalog key (fields are bounded)

// Database handles of the catalog (KMX_DB_CATALOG) and the history index (KMX_DB_HISTORY).
typedef struct {
    MDB_dbi values;  // [kind u8][tag u8][text...] -> records holding it, u64 BE
    MDB_dbi history; // DUPSORT | DUPFIXED: record key -> seq u64 BE of each change event
} kmx_catalog_dbs_t;

// Opens both databases in txn, creating them when create is nonzero (txn must then be a
// write transaction). Returns 0 or an LMDB code (MDB_NOTFOUND when one is missing).
int kmx_catalog_open(MDB_txn *txn, int create, kmx_catalog_dbs_t *dbs);

// Catalog changes of one write transaction, summed per key in memory and written once per
// key by kmx_catalog_pending_flush (a batch of 10 000 records of one market touches the
// market's entry once).
typedef struct kmx_catalog_pending kmx_catalog_pending_t;

// Returns an empty table (NULL when out of memory); release with
// kmx_catalog_pending_destroy.
kmx_catalog_pending_t *kmx_catalog_pending_new(void);
void kmx_catalog_pending_destroy(kmx_catalog_pending_t **self_p);
void kmx_catalog_pending_clear(kmx_catalog_pending_t *self);

// Counts rec in (sign > 0) or out of (sign < 0) the catalog, in memory. Returns 0,
// EINVAL for a record without kind, period, market, category or value, or ENOMEM.
int kmx_catalog_pending_add(kmx_catalog_pending_t *self, const Kmx__V1__Record *rec, int sign);

// Writes every pending change into txn and clears the table; an entry whose count reaches
// zero is deleted. Returns 0 or an LMDB code (EOVERFLOW when a count would go negative).
int kmx_catalog_pending_flush(MDB_txn *txn, const kmx_catalog_dbs_t *dbs,
                              kmx_catalog_pending_t *self);

// Notes that the event with sequence seq changed the record with key rkey. Returns 0 or
// an LMDB code.
int kmx_catalog_history_add(MDB_txn *txn, const kmx_catalog_dbs_t *dbs, const MDB_val *rkey,
                            uint64_t seq);

// Reads the catalog of kind (KIND_UNSPECIFIED: both kinds) from txn. On 0 *out is yours,
// malloc'd throughout: free it with kmx__v1__catalog_result__free_unpacked(*out, NULL).
// last_seq is left for the caller. Returns 0, KMX_ERR_NOMEM, KMX_ERR_DECODE or a kmx code.
int kmx_catalog_read(MDB_txn *txn, const kmx_catalog_dbs_t *dbs, Kmx__V1__Kind kind,
                     Kmx__V1__CatalogResult **out);

// Checks that every market, category, item, company, artist, source and unit the filter
// names is held by some record of the filter's kind (either kind when unset), comparing
// without regard to case as the filter matches. Returns 0, or KMX_ERR_INVAL with a
// sentence in why naming the first value that does not exist and the closest values that
// do; or a kmx code when the catalog cannot be read.
int kmx_catalog_check(MDB_txn *txn, const kmx_catalog_dbs_t *dbs, const Kmx__V1__Filter *filter,
                      char *why, size_t why_size);

// Reads the change events of the record with key rkey from the event log events, oldest
// first, skipping events the log no longer keeps. On 0 *out is a malloc'd array of *n
// unpacked events (free each with kmx__v1__update_event__free_unpacked, then the array).
// Returns 0 (*n may be 0), KMX_ERR_NOMEM, KMX_ERR_DECODE or a kmx code.
int kmx_catalog_history_read(MDB_txn *txn, const kmx_catalog_dbs_t *dbs, MDB_dbi events,
                             const MDB_val *rkey, Kmx__V1__UpdateEvent ***out, size_t *n);

// Returns the level of a canonical market: "world", "country", "group" (JP+CN+US),
// "panel" (panel:...) or "region". Never NULL.
const char *kmx_catalog_market_level(const char *market);

#endif
