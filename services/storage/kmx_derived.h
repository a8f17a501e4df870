/*  kmx_derived - the data kmx-storage derives from records: the five secondary indexes and
    the roll-ups. Every function works inside the caller's LMDB write transaction, so the
    derived entries commit or vanish together with the record change that caused them.  */
#ifndef KMX_DERIVED_H
#define KMX_DERIVED_H

#include "kmx.pb-c.h"
#include "kmx_rkey.h"
#include "kmx_value.h"

#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>

// Database handles of the derived data.
typedef struct {
    MDB_dbi idx[KMX_RKEY_IDX_COUNT]; // one DUPSORT database per kmx_rkey_index_t
    MDB_dbi rollups;                 // KMX_DB_ROLLUPS
} kmx_derived_dbs_t;

// Opens the derived databases in txn, creating them when create is nonzero (txn must then
// be a write transaction). Returns 0 or an LMDB code (MDB_NOTFOUND when one is missing).
int kmx_derived_open(MDB_txn *txn, int create, kmx_derived_dbs_t *dbs);

// Bytes in an index entry's sequence prefix.
#define KMX_DERIVED_ENTRY_SEQ 8

// Encodes the index entry (the duplicate stored under each index key) of the record with
// key rkey whose last change has sequence seq: [seq u64 BE][record key]. Sequences only
// grow, so new entries append at the end of their index key's duplicates. size must be
// at least KMX_DERIVED_ENTRY_SEQ + rkey->mv_size. Returns 0 or KMX_ERR_OVERFLOW.
int kmx_derived_entry(uint64_t seq, const MDB_val *rkey, uint8_t *buf, size_t size, size_t *len);

// Adds (add != 0) or removes the index entries of rec, whose record key is rkey and whose
// last change has sequence seq (an update removes the entries of the old seq and adds
// those of the new). Returns 0 or an LMDB code (EINVAL when rec has no usable key).
int kmx_derived_index(MDB_txn *txn, const kmx_derived_dbs_t *dbs, const MDB_val *rkey,
                      uint64_t seq, const Kmx__V1__Record *rec, int add);

// Roll-up changes of one write transaction, summed per roll-up key in memory and written
// once per key by kmx_derived_pending_flush: a batch of 10 000 records touching 300
// roll-ups reads and writes 300 entries, not 20 000.
typedef struct kmx_derived_pending kmx_derived_pending_t;

// Returns an empty table (NULL when out of memory); release it with
// kmx_derived_pending_destroy.
kmx_derived_pending_t *kmx_derived_pending_new(void);
void kmx_derived_pending_destroy(kmx_derived_pending_t **self_p);

// Forgets every pending change (at the start of a transaction).
void kmx_derived_pending_clear(kmx_derived_pending_t *self);

// Adds rec's value to its roll-up (sign > 0) or takes it out (sign < 0), in memory.
// Returns 0, EINVAL when rec has no roll-up key, ENOMEM.
int kmx_derived_pending_add(kmx_derived_pending_t *self, const Kmx__V1__Record *rec, int sign);

// Applies every pending change to the roll-ups in txn and clears the table; an entry whose
// count reaches zero is deleted. Returns 0 or an LMDB code (EINVAL for a stored value that
// does not decode, EOVERFLOW when a sum leaves 128 bits or a count would go negative).
int kmx_derived_pending_flush(MDB_txn *txn, const kmx_derived_dbs_t *dbs,
                              kmx_derived_pending_t *self);

// Encodes and decodes a roll-up value (KMX_ROLLUP_VALUE_LEN bytes).
void kmx_derived_rollup_encode(kmx_i128 sum, uint64_t count, uint8_t *out);
int kmx_derived_rollup_decode(const MDB_val *val, kmx_i128 *sum, uint64_t *count);

// Returns the LMDB name of index idx (kmx_schema.h), or NULL.
const char *kmx_derived_index_name(kmx_rkey_index_t idx);

#endif
