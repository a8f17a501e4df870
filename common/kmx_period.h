/*  kmx_period - periods as inclusive month ranges: parse, format, compare.
    A month is written YYYYMM (202403). Text forms: "2023", "2025-H1", "2024-Q3", "2024-03",
    and ranges "2023-01/2023-04". Formatting picks the shortest form that fits.  */
#ifndef KMX_PERIOD_H
#define KMX_PERIOD_H

#include <stddef.h>
#include <stdint.h>

#define KMX_PERIOD_TEXT_MAX 32 // enough for any formatted period plus NUL
#define KMX_YEAR_MIN 1900
#define KMX_YEAR_MAX 2999

typedef struct {
    uint32_t start; // first month, YYYYMM
    uint32_t end;   // last month, YYYYMM, >= start
} kmx_period_t;

typedef enum {
    KMX_GRAN_MONTH = 0,
    KMX_GRAN_QUARTER,
    KMX_GRAN_HALF,
    KMX_GRAN_YEAR,
    KMX_GRAN_RANGE, // any other span: year-to-date and the like
} kmx_gran_t;

// Parses a period's text form into *out. Returns 0, or KMX_ERR_INVAL for anything else
// (unknown form, month 13, H3, Q5, a range whose end precedes its start).
int kmx_period_parse(const char *text, kmx_period_t *out);

// Writes the canonical text form into buf. Returns 0, KMX_ERR_INVAL for an invalid
// period, or KMX_ERR_OVERFLOW when buf is too small.
int kmx_period_format(const kmx_period_t *p, char *buf, size_t size);

// Returns nonzero when both ends are real months between KMX_YEAR_MIN and KMX_YEAR_MAX
// and start <= end.
int kmx_period_is_valid(const kmx_period_t *p);

// Returns whether a valid period is a month, quarter, half, year or another range.
kmx_gran_t kmx_period_granularity(const kmx_period_t *p);

// Returns the granularity's name ("month", "quarter", "half", "year", "range").
const char *kmx_gran_name(kmx_gran_t g);

// Parses a granularity name. Returns 0 or KMX_ERR_INVAL.
int kmx_gran_parse(const char *text, kmx_gran_t *out);

// Returns nonzero when inner lies wholly inside outer.
int kmx_period_contains(const kmx_period_t *outer, const kmx_period_t *inner);

// Returns the month delta months after (or before, if negative) yyyymm.
uint32_t kmx_month_add(uint32_t yyyymm, int delta);

// Returns the number of months a valid period spans (1 for a month, 12 for a year).
uint32_t kmx_period_months(const kmx_period_t *p);

#endif
