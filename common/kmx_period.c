/*  kmx_period - parsing and formatting of month-range periods.
    Parsing is strict: every form must be consumed whole, so "2024-Q3x" or "2024-13"
    is an error rather than a silently different period.  */
#include "kmx_period.h"
#include "kmx_err.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static uint32_t s_year(uint32_t m)
{
    return m / 100;
}

static uint32_t s_mon(uint32_t m)
{
    return m % 100;
}

static int s_month_is_valid(uint32_t m)
{
    return s_year(m) >= KMX_YEAR_MIN && s_year(m) <= KMX_YEAR_MAX && s_mon(m) >= 1 &&
           s_mon(m) <= 12;
}

// Reads exactly n digits at *p into *out and advances *p.
static int s_digits(const char **p, int n, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return KMX_ERR_INVAL;
        v = v * 10 + (uint32_t)((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

// Parses one of "YYYY", "YYYY-MM", "YYYY-Qn", "YYYY-Hn" starting at *p.
static int s_parse_single(const char **p, kmx_period_t *out)
{
    uint32_t year, n;
    if (s_digits(p, 4, &year) != 0)
        return KMX_ERR_INVAL;
    if (**p != '-') {
        out->start = year * 100 + 1;
        out->end = year * 100 + 12;
        return 0;
    }
    (*p)++;
    char c = (char)toupper((unsigned char)**p);
    if (c == 'Q' || c == 'H') {
        (*p)++;
        if (s_digits(p, 1, &n) != 0)
            return KMX_ERR_INVAL;
        uint32_t span = c == 'Q' ? 3 : 6, parts = c == 'Q' ? 4 : 2;
        if (n < 1 || n > parts)
            return KMX_ERR_INVAL;
        out->start = year * 100 + (n - 1) * span + 1;
        out->end = year * 100 + n * span;
        return 0;
    }
    if (s_digits(p, 2, &n) != 0 || n < 1 || n > 12)
        return KMX_ERR_INVAL;
    out->start = out->end = year * 100 + n;
    return 0;
}

int kmx_period_parse(const char *text, kmx_period_t *out)
{
    if (!text || !out)
        return KMX_ERR_INVAL;
    const char *p = text;
    kmx_period_t a, b;
    if (s_parse_single(&p, &a) != 0)
        return KMX_ERR_INVAL;
    if (*p == '/') {
        p++;
        if (s_parse_single(&p, &b) != 0)
            return KMX_ERR_INVAL;
        a.end = b.end;
    }
    if (*p != '\0' || !kmx_period_is_valid(&a))
        return KMX_ERR_INVAL;
    *out = a;
    return 0;
}

int kmx_period_is_valid(const kmx_period_t *p)
{
    return p && s_month_is_valid(p->start) && s_month_is_valid(p->end) && p->start <= p->end;
}

uint32_t kmx_period_months(const kmx_period_t *p)
{
    return (s_year(p->end) - s_year(p->start)) * 12 + s_mon(p->end) - s_mon(p->start) + 1;
}

kmx_gran_t kmx_period_granularity(const kmx_period_t *p)
{
    uint32_t months = kmx_period_months(p), first = s_mon(p->start);
    if (months == 1)
        return KMX_GRAN_MONTH;
    if (months == 3 && first % 3 == 1)
        return KMX_GRAN_QUARTER;
    if (months == 6 && (first == 1 || first == 7))
        return KMX_GRAN_HALF;
    if (months == 12 && first == 1)
        return KMX_GRAN_YEAR;
    return KMX_GRAN_RANGE;
}

static const char *const s_gran_names[] = {"month", "quarter", "half", "year", "range"};

const char *kmx_gran_name(kmx_gran_t g)
{
    return (unsigned)g <= KMX_GRAN_RANGE ? s_gran_names[g] : "unknown";
}

int kmx_gran_parse(const char *text, kmx_gran_t *out)
{
    for (int i = 0; text && i <= KMX_GRAN_RANGE; i++) {
        if (strcasecmp(text, s_gran_names[i]) == 0) {
            *out = (kmx_gran_t)i;
            return 0;
        }
    }
    return KMX_ERR_INVAL;
}

int kmx_period_format(const kmx_period_t *p, char *buf, size_t size)
{
    if (!kmx_period_is_valid(p) || !buf)
        return KMX_ERR_INVAL;
    unsigned y = s_year(p->start), m = s_mon(p->start);
    int n;
    switch (kmx_period_granularity(p)) {
    case KMX_GRAN_MONTH:
        n = snprintf(buf, size, "%04u-%02u", y, m);
        break;
    case KMX_GRAN_QUARTER:
        n = snprintf(buf, size, "%04u-Q%u", y, (m - 1) / 3 + 1);
        break;
    case KMX_GRAN_HALF:
        n = snprintf(buf, size, "%04u-H%u", y, m == 1 ? 1u : 2u);
        break;
    case KMX_GRAN_YEAR:
        n = snprintf(buf, size, "%04u", y);
        break;
    default:
        n = snprintf(buf, size, "%04u-%02u/%04u-%02u", y, m, s_year(p->end), s_mon(p->end));
        break;
    }
    return n < 0 || (size_t)n >= size ? KMX_ERR_OVERFLOW : 0;
}

int kmx_period_contains(const kmx_period_t *outer, const kmx_period_t *inner)
{
    return inner->start >= outer->start && inner->end <= outer->end;
}

uint32_t kmx_month_add(uint32_t yyyymm, int delta)
{
    int idx = (int)s_year(yyyymm) * 12 + (int)s_mon(yyyymm) - 1 + delta;
    return (uint32_t)(idx / 12) * 100 + (uint32_t)(idx % 12) + 1;
}
