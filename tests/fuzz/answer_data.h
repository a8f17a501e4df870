/*  answer_data - the fixed data set fuzz.answer answers its queries over, shared with
    unit.answer_ref so a case the fuzzer found is kept there as a regression case: five
    markets (WORLD among them) in two units, three categories, 2021..2024 with full years
    of months, partial years, annual totals and ranges across a new year.  */
#ifndef KMX_ANSWER_DATA_H
#define KMX_ANSWER_DATA_H

#include "answer_ref.h"
#include "kmx_store.h"

#include <stddef.h>

#define ANSWER_DATA_MAX 4096 // records the data set holds at most

// Writes the data set into store (open, empty) and, as the reference sees it, into recs
// (ANSWER_DATA_MAX entries). Returns the number of records, or 0 when a write failed.
size_t answer_data_fill(kmx_store_t *store, answer_ref_rec_t *recs);

#endif
