/*  kmx_group - the group-by behind storage's aggregate answer and kmx-query's walk over scan
    pages (min and max over records): rows keyed by GroupFields (always also by unit) with
    exact 128-bit sums and counts, fed either one record at a time (min and max known) or
    one roll-up entry at a time (sum and count only).  */
#ifndef KMX_GROUP_H
#define KMX_GROUP_H

#include "kmx.pb-c.h"
#include "kmx_value.h"

#include <stddef.h>
#include <stdint.h>

#define KMX_GROUP_FIELDS_MAX 10     // group fields one request may name
#define KMX_GROUP_GROUPS_MAX 100000 // distinct groups one answer may hold

typedef struct kmx_group kmx_group_t;

// Returns 0 when every field is a known GroupField and there are at most
// KMX_GROUP_FIELDS_MAX, else KMX_ERR_INVAL.
int kmx_group_check_fields(const Kmx__V1__GroupField *fields, size_t n);

// Returns nonzero when every field can be answered from roll-ups (market, region, period,
// year, category, unit).
int kmx_group_fields_rollup(const Kmx__V1__GroupField *fields, size_t n);

// Creates a grouping by fields (copied; check them first). Returns NULL on bad fields or
// out of memory. Release with kmx_group_destroy.
kmx_group_t *kmx_group_new(const Kmx__V1__GroupField *fields, size_t n);
void kmx_group_destroy(kmx_group_t **self_p);

// Adds sum and count to the group of rec (borrowed; needs period and value.unit). When
// has_minmax is nonzero min and max widen the group's range; a group that ever gets an
// entry without them reports none. Returns 0, KMX_ERR_INVAL (rec lacks period or value),
// KMX_ERR_TOO_BIG (group KMX_GROUP_GROUPS_MAX + 1), KMX_ERR_OVERFLOW or KMX_ERR_NOMEM.
int kmx_group_add(kmx_group_t *self, const Kmx__V1__Record *rec, kmx_i128 sum, uint64_t count,
                  int has_minmax);

// Takes one record added earlier (rec: same keys and amount) out of its group again: its
// amount from the sum, one from the count, and the group's min and max become unknown. A
// group left with no record is no row of the result. Returns 0, KMX_ERR_NOT_FOUND when its
// group holds no record, KMX_ERR_INVAL, KMX_ERR_OVERFLOW or KMX_ERR_NOMEM.
int kmx_group_remove(kmx_group_t *self, const Kmx__V1__Record *rec);

// Fills out (caller-allocated) with one row per group, sorted by keys then unit, and
// matched = the sum of counts. The rows belong to self and stay valid until the next
// kmx_group_result or kmx_group_destroy. Returns 0 or KMX_ERR_NOMEM.
int kmx_group_result(kmx_group_t *self, Kmx__V1__QueryResult *out);

#endif
