/*  kmx_answer - answers a whole query inside kmx-storage: the aggregate split by period
    (from roll-ups when it can), then kmx_shape's granularity rule, growth, share, top N,
    series and latest, in process. Only the answer's rows leave storage, never the fine
    rows behind them.  */
#ifndef KMX_ANSWER_H
#define KMX_ANSWER_H

#include "kmx.pb-c.h"
#include "kmx_store.h"

#include <stddef.h>
#include <stdint.h>

// Answers req (a QUERY request whose filter kmx-query already checked and made canonical)
// from store and packs the Response for req's request id into *out (malloc'd, yours):
// a QueryResult, or an error naming the problem. Declines with UNSUPPORTED when min or
// max is asked of an answer roll-ups would give (the caller then walks the records).
// Returns 0, or a negative kmx_err_t when nothing could be packed.
int kmx_answer_query(kmx_store_t *store, const Kmx__V1__Request *req, uint8_t **out, size_t *len);

// kmx_answer_query with the fold of a year of months into one row (kmx_store_fold_t)
// allowed (may_fold nonzero, what kmx_answer_query does) or not; the answer must be the
// same byte for byte (tests compare). *folded (may be NULL) counts the years folded.
int kmx_answer_query_opt(kmx_store_t *store, const Kmx__V1__Request *req, int may_fold,
                         uint64_t *folded, uint8_t **out, size_t *len);

#endif
