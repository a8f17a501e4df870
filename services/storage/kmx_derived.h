/*  kmx_derived - the data kmx-storage derives from records: the five secondary indexes and
    the roll-ups. Every function works inside the caller's LMDB write transaction, so the
    derived entries commit or vanish together with the record change that caused them.  */
#ifndef KMX_DERIVED_H
#define KMX_DERIVED_H

#include "kmx.pb-c.h"
#include "kmx_rkey.h"
#include "kmx_schema.h"
#include "kmx_value.h"

#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>

// Database handles of the derived data.
typedef struct {
    MDB_dbi idx[KMX_RKEY_IDX_COUNT]; // one DUPSORT database per kmx_rkey_index_t
    MDB_dbi rollups;                 // KMX_DB_ROLLUPS: spans other than a month
    MDB_dbi rollups_month;           // KMX_DB_ROLLUPS_MONTH: months, one entry per year
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
int kmx_derived_index(MDB_txn *txn, const kmx_derived_dbs_t *dbs, const MDB_val *rkey, uint64_t seq,
                      const Kmx__V1__Record *rec, int add);

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

// Returns the month slot (0 = January) of a record whose period is one month, else -1.
int kmx_derived_month_slot(const Kmx__V1__Record *rec);

// Encodes the stored roll-up key of rec into buf: kmx_rkey_rollup's key, with the period
// widened to the whole year for a single month. *slot is the month slot (rollups_month)
// or -1 (rollups). Returns 0, KMX_ERR_INVAL or KMX_ERR_OVERFLOW.
int kmx_derived_rollup_key(const Kmx__V1__Record *rec, uint8_t *buf, size_t size, size_t *len,
                           int *slot);

// Decodes a rollups_month value into twelve sums and counts (January first). Returns 0
// or KMX_ERR_DECODE when val is not KMX_ROLLUP_MONTH_VALUE_LEN bytes.
int kmx_derived_months_decode(const MDB_val *val, kmx_i128 *sums, uint64_t *counts);

// One roll-up as the records imply it: the key kmx_rkey_rollup gives them, sum and count.
typedef struct {
    uint8_t *key;   // roll-up key (malloc'd)
    size_t len;     // bytes in key
    kmx_i128 sum;   // exact sum, ten-thousandths
    uint64_t count; // records
} kmx_derived_rollup_t;

// Reads every stored roll-up in txn, each month of rollups_month as its own entry, into a
// malloc'd array sorted by key (free it with kmx_derived_rollups_free). Used by the
// verifier and tests. Returns 0, KMX_ERR_DECODE, KMX_ERR_NOMEM or an LMDB code.
int kmx_derived_rollups_read(MDB_txn *txn, const kmx_derived_dbs_t *dbs, kmx_derived_rollup_t **out,
                             size_t *n);
void kmx_derived_rollups_free(kmx_derived_rollup_t **list, size_t n);

// Encodes and decodes a roll-up value (KMX_ROLLUP_VALUE_LEN bytes).
void kmx_derived_rollup_encode(kmx_i128 sum, uint64_t count, uint8_t *out);
int kmx_derived_rollup_decode(const MDB_val *val, kmx_i128 *sum, uint64_t *count);

// Returns the LMDB name of index idx (kmx_schema.h), or NULL.
const char *kmx_derived_index_name(kmx_rkey_index_t idx);

#endif
