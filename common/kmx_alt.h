/*  kmx_alt - alternative measurements: records that measure one quantity, side by side.
    Two records are alternatives when they have the same kind, period, market, category
    (or dimension), company, artist and unit, the same item once a trailing annotation in
    parentheses is set aside ("album exports total (precise; as cited Jan 2026)" measures
    "album exports total"), and different sources: one year's album sales by two cut-off
    windows, one month's users from two outlets, a filing and its re-report. Both are kept;
    an answer must never add them (docs/data-model.md).  */
#ifndef KMX_ALT_H
#define KMX_ALT_H

#include "kmx.pb-c.h"

#include <stddef.h>

// Returns the length of item's quantity name: item without one trailing " (...)" and the
// blanks before it. "Melon MAU (approx.)" -> 9; "YouTube" -> 7; NULL -> 0.
size_t kmx_alt_item_base(const char *item);

// Orders records by their quantity (everything the rule compares but the source), so that
// alternatives sort next to each other; 0 when a and b measure one quantity.
int kmx_alt_cmp_quantity(const Kmx__V1__Record *a, const Kmx__V1__Record *b);

// Returns nonzero when a and b measure one quantity (the rule above, sources aside).
int kmx_alt_same_quantity(const Kmx__V1__Record *a, const Kmx__V1__Record *b);

// Returns nonzero when a and b measure one quantity (the rule above) but come from
// different sources.
int kmx_alt_is_alternative(const Kmx__V1__Record *a, const Kmx__V1__Record *b);

// Looks for alternatives among n records. Returns 1 and sets *first < *second to the
// indexes of one pair (the pair whose quantity sorts first), 0 when there are none, or
// KMX_ERR_NOMEM. O(n log n); recs is not reordered.
int kmx_alt_find(const Kmx__V1__Record *const *recs, size_t n, size_t *first, size_t *second);

// Sets marks[i] to 1 for every record among n that has an alternative among them, else
// 0. Returns how many were marked, or KMX_ERR_NOMEM. O(n log n).
int kmx_alt_mark(const Kmx__V1__Record *const *recs, size_t n, unsigned char *marks);

// Writes the sentence a query refusing to add a and b answers with: the quantity, both
// sources and values, and how to choose ("--source", or "--by source" to compare them).
// Returns 0 or KMX_ERR_OVERFLOW (why then holds a truncated sentence).
int kmx_alt_describe(const Kmx__V1__Record *a, const Kmx__V1__Record *b, char *why, size_t size);

// Orders two alternatives by preference, the preferred first (< 0 when a is preferred):
// the later status (final, revised, none, preliminary), then the higher confidence (high,
// medium, low, none), then the more precise amount (fewer trailing zero digits: 291.82
// before 291.8, an exact count before a rounded million), then the source in byte order.
int kmx_alt_prefer_cmp(const Kmx__V1__Record *a, const Kmx__V1__Record *b);

// Writes the note an answer carries for an alternative it left out: the quantity, the
// value and source set aside and the value and source kept. Returns 0 or KMX_ERR_OVERFLOW.
int kmx_alt_describe_set_aside(const Kmx__V1__Record *kept, const Kmx__V1__Record *aside, char *buf,
                               size_t size);

#endif
