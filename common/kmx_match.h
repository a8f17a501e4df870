/*  kmx_match - whether a record passes a wire Filter. One definition for every reader:
    storage's scans and record aggregates, its roll-up reads, and kmx-query's walk.
    Lists match without regard to case; an empty list matches everything.  */
#ifndef KMX_MATCH_H
#define KMX_MATCH_H

#include "kmx.pb-c.h"
#include "kmx_period.h"

#include <stddef.h>

// Returns nonzero when list (n entries) is empty or holds value (NULL = "").
int kmx_match_in_list(char *const *list, size_t n, const char *value);

// Returns nonzero when f names a period (an empty Period does not); *out is then the
// range, one end alone meaning that month.
int kmx_match_period(const Kmx__V1__Filter *f, kmx_period_t *out);

// Returns 1 when f restricts granularity (*gran the wanted one), 0 when it does not
// (absent, empty or "any"), -1 when its granularity does not parse.
int kmx_match_gran(const Kmx__V1__Filter *f, kmx_gran_t *gran);

// Checks f's period and granularity. Returns 0 or KMX_ERR_INVAL.
int kmx_match_check(const Kmx__V1__Filter *f);

// Returns nonzero when rec passes f (NULL f = everything; NULL rec = nothing). f must
// have passed kmx_match_check.
int kmx_match_record(const Kmx__V1__Filter *f, const Kmx__V1__Record *rec);

#endif
