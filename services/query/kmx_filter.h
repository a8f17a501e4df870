/*  kmx_filter - a query's or scan's record filter, validated and canonicalised once:
    markets and regions in canonical spelling, units in base form, the period range
    checked, the granularity resolved. Matching follows storage's rules (string lists
    compare without regard to case; an empty list matches everything).  */
#ifndef KMX_FILTER_H
#define KMX_FILTER_H

#include "kmx.pb-c.h"
#include "kmx_period.h"

#include <stddef.h>

#define KMX_FILTER_LIST_MAX 256 // entries one filter list may hold
#define KMX_FILTER_TEXT_MAX 256 // bytes one filter entry may hold

typedef struct kmx_filter kmx_filter_t;

// Validates in (borrowed; NULL means "everything") and builds its canonical form. On 0,
// *out is yours; release it with kmx_filter_destroy(). On KMX_ERR_INVAL (unknown market,
// region, kind or granularity, invalid or inverted period) or KMX_ERR_TOO_BIG (a list or
// entry beyond the limits) a sentence naming the fault is written to why.
// Returns KMX_ERR_NOMEM when memory runs out.
int kmx_filter_new(const Kmx__V1__Filter *in, kmx_filter_t **out, char *why, size_t why_size);
void kmx_filter_destroy(kmx_filter_t **self_p);

// Returns the canonical filter as a wire message, to forward to storage. It belongs to
// self. Granularity "any" and "auto" are sent as no granularity.
const Kmx__V1__Filter *kmx_filter_wire(const kmx_filter_t *self);

// Returns 1 and writes the granularity to *out when one was named, 2 for "any", 0 for
// "auto" or none (the query default).
int kmx_filter_granularity(const kmx_filter_t *self, kmx_gran_t *out);

// Returns 1 and writes the canonical period range to *out when the filter has one, else 0.
int kmx_filter_period(const kmx_filter_t *self, kmx_period_t *out);

// Returns nonzero when rec passes the filter.
int kmx_filter_match(const kmx_filter_t *self, const Kmx__V1__Record *rec);

#endif
