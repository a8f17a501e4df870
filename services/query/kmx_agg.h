/*  kmx_agg - groups records by a query's GroupFields (always also by unit) and computes
    exact sums in 128-bit fixed point, counts, minima and maxima per group. Records are
    added one at a time, so a query can stream scan pages through it; no sockets here.  */
#ifndef KMX_AGG_H
#define KMX_AGG_H

#include "kmx.pb-c.h"

#include <stddef.h>
#include <stdint.h>

#define KMX_AGG_FIELDS_MAX 10     // group fields one query may name
#define KMX_AGG_GROUPS_MAX 100000 // distinct groups one query may produce

typedef struct kmx_agg kmx_agg_t;

// Returns 0 when every field is a known GroupField and there are at most
// KMX_AGG_FIELDS_MAX of them, else KMX_ERR_INVAL.
int kmx_agg_check_fields(const Kmx__V1__GroupField *fields, size_t n);

// Creates an aggregation grouping by fields (copied; check them first). Returns NULL on
// bad fields or out of memory. Release with kmx_agg_destroy().
kmx_agg_t *kmx_agg_new(const Kmx__V1__GroupField *fields, size_t n);
void kmx_agg_destroy(kmx_agg_t **self_p);

// Adds one record (borrowed; nothing of it is kept). It counts as matched; a record
// without a value or period counts but joins no group. Returns 0, KMX_ERR_TOO_BIG when
// it would open group number KMX_AGG_GROUPS_MAX + 1, or KMX_ERR_NOMEM.
int kmx_agg_add(kmx_agg_t *self, const Kmx__V1__Record *rec);

// Adds n stored records, stopping at the first error.
int kmx_agg_add_stored(kmx_agg_t *self, Kmx__V1__StoredRecord *const *recs, size_t n);

// Returns the number of records added so far.
uint64_t kmx_agg_matched(const kmx_agg_t *self);

// Returns the number of groups so far.
size_t kmx_agg_groups(const kmx_agg_t *self);

// Fills out (caller-allocated, e.g. KMX__V1__QUERY_RESULT__INIT) with one row per group:
// keys in group-field order, unit, exact decimal sum, count, min and max. Rows are sorted
// by keys then unit; when top > 0 they are sorted by sum, largest first (ties by keys),
// and only the first top are kept. The rows' memory belongs to self and stays valid until
// the next call of kmx_agg_result or kmx_agg_destroy. Returns 0 or KMX_ERR_NOMEM.
int kmx_agg_result(kmx_agg_t *self, uint32_t top, Kmx__V1__QueryResult *out);

#endif
