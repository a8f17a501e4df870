/*  answer_ref - an independent reference for kmx's query answers (docs/queries.md), written
    from the documentation alone, for the queries it understands: monthly records only
    (granularity "month"), grouped by market (the category added unless the filter pins
    one), any market filter and month range, with share, top N, other, growth (YoY or
    period over period over the whole range) and complete; each row's coverage is checked.
    It shares no code with kmx_shape: sums, shares, ranks, the "(other)" row and
    like-for-like growth bases are computed here by brute force over the records.  */
#ifndef KMX_ANSWER_REF_H
#define KMX_ANSWER_REF_H

#include "kmx.pb-c.h"

#include <stddef.h>
#include <stdint.h>

// One stored record as the reference sees it (the data set the answer was computed on).
typedef struct {
    const char *market;
    const char *category;
    const char *unit;
    uint32_t start, end; // YYYYMM
    int64_t amount;      // ten-thousandths of the unit
} answer_ref_rec_t;

// Compares resp (kmx's answer to q over recs) with the reference. Returns 1 when q is
// not a query the reference covers (nothing checked), 0 when the answer matches, -1 when
// it does not, with a sentence in why.
int answer_ref_check(const answer_ref_rec_t *recs, size_t n, const Kmx__V1__QueryRequest *q,
                     const Kmx__V1__Response *resp, char *why, size_t why_size);

#endif
