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

// How a slashed day-month-year date ("1/2/2024") is read; NONE refuses it as ambiguous.
typedef enum { KMX_DATE_ORDER_NONE = 0, KMX_DATE_ORDER_MDY, KMX_DATE_ORDER_DMY } kmx_date_order_t;

// Options for the forms files carry beyond kmx_period_parse's.
typedef struct {
    kmx_date_order_t date_order; // slashed dates; NONE refuses them
    int excel_dates;             // nonzero: whole numbers 10000..2958465 are Excel serial days
} kmx_period_opts_t;

// Parses what kmx_period_parse does, plus the forms statistics files carry, each read as
// the month range it falls in:
//   "2024-01-01", "2024.01.15", "2024/1/31", "2024. 1. 1."  a day: its month
//   "20240115", "202401"                                   a day or a month, digits only
//   "2024.1", "2024 1", "2024년 1월", "2024년 01월"          a month
//   "2024년", "2024년도"                                    a year
//   "2024년 상반기", "2024 하반기"                          a half
//   "2024 1/4", "2024 1/4분기", "2024년 3분기"              a quarter
//   "1/31/2024" (MDY), "31/1/2024" (DMY)                   a day, with opts->date_order
//   "45292"                                                an Excel serial day, with
//                                                          opts->excel_dates (1900 system)
//   "FY2024", "FY 2024", "FY24"                            the fiscal year: Korea's fiscal
//                                                          year is the calendar year, so 2024
//   "Jan-24", "Mar-2024"                                   a month (two-digit years are 20YY)
// opts may be NULL. Returns 0, or KMX_ERR_INVAL with *hint (when hint is not NULL) set to a
// static sentence saying which option would read the text, or NULL when none would.
int kmx_period_parse_ext(const char *text, const kmx_period_opts_t *opts, kmx_period_t *out,
                         const char **hint);

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
