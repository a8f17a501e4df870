/*  kmx_report - query answers as a report prints them: amounts in thousands, millions or
    billions of their unit ("291.8 USD million"), exactly (the decimal point moves; nothing
    is rounded through floating point). JSON never goes through here: it keeps the exact
    decimal strings in the base unit.  */
#ifndef KMX_REPORT_H
#define KMX_REPORT_H

#include "kmx.pb-c.h"

#include <stddef.h>

#define KMX_REPORT_SCALE_AUTO (-1) // pick the scale from the answer's largest amount

// Parses "auto", "none", "thousand", "million", "billion" into a power of ten (0, 3, 6,
// 9) or KMX_REPORT_SCALE_AUTO. NULL means none (0). Returns 0 or KMX_ERR_INVAL.
int kmx_report_scale_parse(const char *name, int *out);

// The power of ten a report of res reads best in: the largest of 9, 6, 3 that the largest
// sum of a unit that adds reaches, else 0.
int kmx_report_scale_auto(const Kmx__V1__QueryResult *res);

// The word for a power of ten: "thousand", "million", "billion", or "" for 0.
const char *kmx_report_scale_word(int exp);

// Writes the exact decimal text dec divided by 10^exp into out ("291800000", 6 -> "291.8"),
// trailing zeros of the fraction dropped. Returns 0, or KMX_ERR_INVAL when dec is not a
// decimal or out is too small.
int kmx_report_scale_text(const char *dec, int exp, char *out, size_t size);

#endif
