/*  kmx_period - parsing and formatting of month-range periods.
    Parsing is strict: every form must be consumed whole, so "2024-Q3x" or "2024-13"
    is an error rather than a silently different period.  */
#include "kmx_period.h"
#include "kmx_err.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static uint32_t s_year(uint32_t m) {
    return m / 100;
}

static uint32_t s_mon(uint32_t m) {
    return m % 100;
}

static int s_month_is_valid(uint32_t m) {
    return s_year(m) >= KMX_YEAR_MIN && s_year(m) <= KMX_YEAR_MAX && s_mon(m) >= 1 &&
           s_mon(m) <= 12;
}

// Reads exactly n digits at *p into *out and advances *p.
static int s_digits(const char **p, int n, uint32_t *out) {
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
static int s_parse_single(const char **p, kmx_period_t *out) {
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

// ---- the forms sources write ------------------------------------------------------
// Reports and statistics offices write "1H 2025", "H1 2025", "Q3 2024", "2024Q3",
// "3Q 2024", "Mar 2024", "March 2024", "2024/03", "03.2024", "Jan-Apr 2023" and ranges
// joined by " to ". Such text is split into tokens (digit runs, letter runs) and matched
// against a short list of shapes; anything else stays an error.

#define S_TOKENS_MAX 6

typedef struct {
    char text[12]; // the token, upper case, NUL-terminated
    int digits;    // 1 when it is a run of digits
} s_token_t;

static const char *const s_month_names[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                            "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
static const char *const s_month_long[] = {"JANUARY",   "FEBRUARY", "MARCH",    "APRIL",
                                           "MAY",       "JUNE",     "JULY",     "AUGUST",
                                           "SEPTEMBER", "OCTOBER",  "NOVEMBER", "DECEMBER"};

// Splits text into at most S_TOKENS_MAX tokens. Separators are blanks and "-./,'".
static int s_tokenize(const char *text, s_token_t *tok, int *n) {
    *n = 0;
    for (const char *p = text; *p;) {
        unsigned char c = (unsigned char)*p;
        if (strchr(" \t-./,'", c)) {
            p++;
            continue;
        }
        if (!isalnum(c) || *n == S_TOKENS_MAX)
            return KMX_ERR_INVAL;
        int digits = isdigit(c) != 0;
        size_t len = 0;
        s_token_t *t = &tok[(*n)++];
        while (*p && isalnum((unsigned char)*p) && (isdigit((unsigned char)*p) != 0) == digits) {
            if (len + 1 >= sizeof t->text)
                return KMX_ERR_INVAL;
            t->text[len++] = (char)toupper((unsigned char)*p++);
        }
        t->text[len] = '\0';
        t->digits = digits;
    }
    return *n > 0 ? 0 : KMX_ERR_INVAL;
}

static int s_tok_year(const s_token_t *t, uint32_t *year) {
    if (!t->digits || strlen(t->text) != 4)
        return 0;
    *year = (uint32_t)atoi(t->text);
    return 1;
}

// A month as two digits ("03") or a month name ("Mar", "March").
static int s_tok_month(const s_token_t *t, uint32_t *month) {
    if (t->digits) {
        if (strlen(t->text) != 2)
            return 0;
        *month = (uint32_t)atoi(t->text);
        return *month >= 1 && *month <= 12;
    }
    for (uint32_t i = 0; i < 12; i++) {
        if (strcmp(t->text, s_month_names[i]) == 0 || strcmp(t->text, s_month_long[i]) == 0 ||
            (i == 8 && strcmp(t->text, "SEPT") == 0)) {
            *month = i + 1;
            return 1;
        }
    }
    return 0;
}

// "Q" + digit or digit + "Q" (and likewise H) as two tokens: sets *letter and *n.
static int s_tok_part(const s_token_t *a, const s_token_t *b, char *letter, uint32_t *n) {
    const s_token_t *l = a->digits ? b : a, *d = a->digits ? a : b;
    if (l->digits || !d->digits || strlen(d->text) != 1)
        return 0;
    if (strcmp(l->text, "Q") != 0 && strcmp(l->text, "H") != 0)
        return 0;
    *letter = l->text[0];
    *n = (uint32_t)(d->text[0] - '0');
    return 1;
}

static int s_set_part(uint32_t year, char letter, uint32_t n, kmx_period_t *out) {
    uint32_t span = letter == 'Q' ? 3 : 6, parts = letter == 'Q' ? 4 : 2;
    if (n < 1 || n > parts)
        return KMX_ERR_INVAL;
    out->start = year * 100 + (n - 1) * span + 1;
    out->end = year * 100 + n * span;
    return 0;
}

// Matches two tokens: year+month, month+year.
static int s_match_two(const s_token_t *t, kmx_period_t *out) {
    uint32_t year, month;
    if ((s_tok_year(&t[0], &year) && s_tok_month(&t[1], &month)) ||
        (s_tok_year(&t[1], &year) && s_tok_month(&t[0], &month))) {
        out->start = out->end = year * 100 + month;
        return 0;
    }
    return KMX_ERR_INVAL;
}

// Matches three tokens: a quarter or half with its year on either side ("2024 Q 3",
// "3 Q 2024", "H 1 2025"), or two month names and a year ("Jan Apr 2023").
static int s_match_three(const s_token_t *t, kmx_period_t *out) {
    uint32_t year, n, m1, m2;
    char letter;
    if (s_tok_year(&t[0], &year) && s_tok_part(&t[1], &t[2], &letter, &n))
        return s_set_part(year, letter, n, out);
    if (s_tok_year(&t[2], &year) && s_tok_part(&t[0], &t[1], &letter, &n))
        return s_set_part(year, letter, n, out);
    if (!t[0].digits && !t[1].digits && s_tok_month(&t[0], &m1) && s_tok_month(&t[1], &m2) &&
        s_tok_year(&t[2], &year)) {
        out->start = year * 100 + m1;
        out->end = year * 100 + m2;
        return 0;
    }
    return KMX_ERR_INVAL;
}

static int s_parse_loose_single(const char *text, kmx_period_t *out) {
    s_token_t tok[S_TOKENS_MAX];
    int n = 0;
    uint32_t year;
    if (s_tokenize(text, tok, &n) != 0)
        return KMX_ERR_INVAL;
    if (n == 1 && s_tok_year(&tok[0], &year)) {
        out->start = year * 100 + 1;
        out->end = year * 100 + 12;
        return 0;
    }
    if (n == 2)
        return s_match_two(tok, out);
    if (n == 3)
        return s_match_three(tok, out);
    return KMX_ERR_INVAL;
}

// Splits text at the first range separator (" to ", "~", "/" between two parsable
// periods) and parses both sides; otherwise parses it as one period.
static int s_parse_loose(const char *text, kmx_period_t *out) {
    char buf[64];
    size_t len = strlen(text);
    // Text must start and end with a letter or digit: "2024-03/" is a cut-off range.
    if (len == 0 || len >= sizeof buf || !isalnum((unsigned char)text[0]) ||
        !isalnum((unsigned char)text[len - 1]))
        return KMX_ERR_INVAL;
    strcpy(buf, text);
    static const char *const seps[] = {" to ", " TO ", " To ", "~", "/"};
    for (size_t i = 0; i < sizeof seps / sizeof seps[0]; i++) {
        char *at = strstr(buf, seps[i]);
        if (!at)
            continue;
        kmx_period_t a, b;
        char saved = *at;
        *at = '\0';
        int ok = s_parse_loose_single(buf, &a) == 0 &&
                 s_parse_loose_single(at + strlen(seps[i]), &b) == 0;
        *at = saved;
        if (ok) {
            out->start = a.start;
            out->end = b.end;
            return 0;
        }
    }
    return s_parse_loose_single(buf, out);
}

int kmx_period_parse(const char *text, kmx_period_t *out) {
    if (!text || !out)
        return KMX_ERR_INVAL;
    const char *p = text;
    kmx_period_t a, b;
    int rc = s_parse_single(&p, &a);
    if (rc == 0 && *p == '/') {
        p++;
        rc = s_parse_single(&p, &b);
        a.end = b.end;
    }
    if (rc != 0 || *p != '\0') {
        // Not a canonical form: try the forms sources write.
        if (s_parse_loose(text, &a) != 0)
            return KMX_ERR_INVAL;
    }
    if (!kmx_period_is_valid(&a))
        return KMX_ERR_INVAL;
    *out = a;
    return 0;
}

int kmx_period_is_valid(const kmx_period_t *p) {
    return p && s_month_is_valid(p->start) && s_month_is_valid(p->end) && p->start <= p->end;
}

uint32_t kmx_period_months(const kmx_period_t *p) {
    return (s_year(p->end) - s_year(p->start)) * 12 + s_mon(p->end) - s_mon(p->start) + 1;
}

kmx_gran_t kmx_period_granularity(const kmx_period_t *p) {
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

const char *kmx_gran_name(kmx_gran_t g) {
    return (unsigned)g <= KMX_GRAN_RANGE ? s_gran_names[g] : "unknown";
}

int kmx_gran_parse(const char *text, kmx_gran_t *out) {
    for (int i = 0; text && i <= KMX_GRAN_RANGE; i++) {
        if (strcasecmp(text, s_gran_names[i]) == 0) {
            *out = (kmx_gran_t)i;
            return 0;
        }
    }
    return KMX_ERR_INVAL;
}

int kmx_period_format(const kmx_period_t *p, char *buf, size_t size) {
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

int kmx_period_contains(const kmx_period_t *outer, const kmx_period_t *inner) {
    return inner->start >= outer->start && inner->end <= outer->end;
}

uint32_t kmx_month_add(uint32_t yyyymm, int delta) {
    int idx = (int)s_year(yyyymm) * 12 + (int)s_mon(yyyymm) - 1 + delta;
    return (uint32_t)(idx / 12) * 100 + (uint32_t)(idx % 12) + 1;
}

// ---- the forms statistics files carry ---------------------------------------------
// KOSIS, the customs portal and spreadsheet exports write days, Korean words, quarter
// fractions and serial numbers. Korean words are first rewritten as ASCII markers, then
// the text is split into digit runs, letter runs and '/', and matched against shapes.

#define S_EXT_TOKENS_MAX 8
#define S_EXT_TEXT_MAX 64

typedef struct {
    char text[12]; // the token, upper case
    int kind;      // 'd' digits, 'a' letters, '/' a slash
} s_xtok_t;

// Korean words and the ASCII they stand for. Longest first, so "년도" wins over "년".
static const struct {
    const char *ko;    // UTF-8
    const char *ascii; // replacement
} s_korean_words[] = {
    {"\xEC\x83\x81\xEB\xB0\x98\xEA\xB8\xB0", " H 1 "}, // 상반기
    {"\xED\x95\x98\xEB\xB0\x98\xEA\xB8\xB0", " H 2 "}, // 하반기
    {"\xEB\x85\x84\xEB\x8F\x84", " "},                 // 년도
    {"\xEB\xB6\x84\xEA\xB8\xB0", " Q "},               // 분기
    {"\xEB\x85\x84", " "},                             // 년
    {"\xEC\x9B\x94", " "},                             // 월
    {"\xEC\x9D\xBC", " "},                             // 일
};

// Rewrites the Korean words of text into out. Returns 0 or KMX_ERR_INVAL when too long.
static int s_korean_to_ascii(const char *text, char *out, size_t size) {
    size_t w = 0;
    for (const char *p = text; *p;) {
        const char *rep = NULL;
        size_t skip = 1;
        for (size_t i = 0; i < sizeof s_korean_words / sizeof s_korean_words[0]; i++) {
            size_t n = strlen(s_korean_words[i].ko);
            if (strncmp(p, s_korean_words[i].ko, n) == 0) {
                rep = s_korean_words[i].ascii;
                skip = n;
                break;
            }
        }
        size_t n = rep ? strlen(rep) : 1;
        if (w + n >= size)
            return KMX_ERR_INVAL;
        memcpy(out + w, rep ? rep : p, n);
        w += n;
        p += skip;
    }
    out[w] = '\0';
    return 0;
}

static int s_xtokenize(const char *text, s_xtok_t *tok, int *n) {
    *n = 0;
    for (const char *p = text; *p;) {
        unsigned char c = (unsigned char)*p;
        if (strchr(" \t-.,", c)) {
            p++;
            continue;
        }
        if (*n == S_EXT_TOKENS_MAX)
            return KMX_ERR_INVAL;
        s_xtok_t *t = &tok[(*n)++];
        if (c == '/') {
            strcpy(t->text, "/");
            t->kind = '/';
            p++;
            continue;
        }
        if (!isalnum(c))
            return KMX_ERR_INVAL;
        t->kind = isdigit(c) ? 'd' : 'a';
        size_t len = 0;
        while (*p && isalnum((unsigned char)*p) &&
               (isdigit((unsigned char)*p) ? 'd' : 'a') == t->kind) {
            if (len + 1 >= sizeof t->text)
                return KMX_ERR_INVAL;
            t->text[len++] = (char)toupper((unsigned char)*p++);
        }
        t->text[len] = '\0';
    }
    return *n > 0 ? 0 : KMX_ERR_INVAL;
}

// A run of 1 to max digits with a value in [lo, hi].
static int s_xnum(const s_xtok_t *t, size_t max, uint32_t lo, uint32_t hi, uint32_t *v) {
    size_t len = strlen(t->text);
    if (t->kind != 'd' || len == 0 || len > max)
        return 0;
    *v = (uint32_t)strtoul(t->text, NULL, 10);
    return *v >= lo && *v <= hi;
}

static int s_xyear(const s_xtok_t *t, uint32_t *year) {
    return strlen(t->text) == 4 && s_xnum(t, 4, KMX_YEAR_MIN, KMX_YEAR_MAX, year);
}

static int s_days_in_month(uint32_t year, uint32_t month) {
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 && leap ? 29 : days[month - 1];
}

static int s_set_month(uint32_t year, uint32_t month, kmx_period_t *out) {
    if (month < 1 || month > 12)
        return KMX_ERR_INVAL;
    out->start = out->end = year * 100 + month;
    return 0;
}

static int s_set_day(uint32_t year, uint32_t month, uint32_t day, kmx_period_t *out) {
    if (month < 1 || month > 12 || day < 1 || (int)day > s_days_in_month(year, month))
        return KMX_ERR_INVAL;
    return s_set_month(year, month, out);
}

// "202401" and "20240115".
static int s_ext_digits_only(const s_xtok_t *t, kmx_period_t *out) {
    size_t len = strlen(t->text);
    uint32_t v = (uint32_t)strtoul(t->text, NULL, 10);
    if (len == 6)
        return s_set_month(v / 100, v % 100, out);
    if (len == 8)
        return s_set_day(v / 10000, v / 100 % 100, v % 100, out);
    return KMX_ERR_INVAL;
}

// Excel's 1900 date system: serial 1 is 1900-01-01 and serial 60 the 1900-02-29 that never
// was, so from serial 61 on a serial counts days after 1899-12-30.
static int s_ext_excel(const s_xtok_t *t, kmx_period_t *out) {
    uint32_t serial;
    if (!s_xnum(t, 7, 10000, 2958465, &serial))
        return KMX_ERR_INVAL;
    // Days after 1899-12-30 to a civil date (Howard Hinnant's days_from_civil inverse).
    long z = (long)serial - 25569 + 719468; // 25569 = serial of 1970-01-01
    long era = z / 146097;
    long doe = z - era * 146097;
    long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    long mp = (5 * doy + 2) / 153;
    long month = mp < 10 ? mp + 3 : mp - 9;
    long year = yoe + era * 400 + (month <= 2);
    return s_set_month((uint32_t)year, (uint32_t)month, out);
}

static int s_ext_two(const s_xtok_t *t, kmx_period_t *out) {
    uint32_t year, month;
    if (s_xyear(&t[0], &year) && s_xnum(&t[1], 2, 1, 12, &month))
        return s_set_month(year, month, out); // 2024.1, 2024년 1월
    if (t[0].kind == 'a' && strcmp(t[0].text, "FY") == 0) {
        if (s_xyear(&t[1], &year) || (strlen(t[1].text) == 2 && s_xnum(&t[1], 2, 0, 99, &year))) {
            year += year < 100 ? 2000 : 0;
            out->start = year * 100 + 1; // the fiscal year is the calendar year
            out->end = year * 100 + 12;
            return 0;
        }
        return KMX_ERR_INVAL;
    }
    uint32_t yy;
    if (t[0].kind == 'a' && strlen(t[1].text) == 2 && s_xnum(&t[1], 2, 0, 99, &yy)) {
        static const char *const names[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                            "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
        for (uint32_t i = 0; i < 12; i++) {
            if (strcmp(t[0].text, names[i]) == 0)
                return s_set_month(2000 + yy, i + 1, out); // Jan-24
        }
    }
    return KMX_ERR_INVAL;
}

static int s_ext_three(const s_xtok_t *t, kmx_period_t *out) {
    uint32_t year, month, day, n;
    if (s_xyear(&t[0], &year) && s_xnum(&t[1], 2, 1, 12, &month) && s_xnum(&t[2], 2, 1, 31, &day))
        return s_set_day(year, month, day, out); // 2024-01-01, 2024. 1. 1., 2024/1/31
    if (s_xyear(&t[0], &year) && s_xnum(&t[1], 1, 1, 4, &n) && t[2].kind == 'a' &&
        strcmp(t[2].text, "Q") == 0)
        return s_set_part(year, 'Q', n, out); // 2024년 3분기
    if (s_xyear(&t[0], &year) && t[1].kind == 'a' && strcmp(t[1].text, "H") == 0 &&
        s_xnum(&t[2], 1, 1, 2, &n))
        return s_set_part(year, 'H', n, out); // 2024년 상반기
    return KMX_ERR_INVAL;
}

// "2024 1/4" and "2024 1/4분기": a quarter written as a fraction of the year.
static int s_ext_fraction(const s_xtok_t *t, int n, kmx_period_t *out) {
    uint32_t year, part;
    if (!s_xyear(&t[0], &year) || !s_xnum(&t[1], 1, 1, 4, &part) || t[2].kind != '/')
        return KMX_ERR_INVAL;
    if (n == 5 && (t[4].kind != 'a' || strcmp(t[4].text, "Q") != 0))
        return KMX_ERR_INVAL;
    if (strcmp(t[3].text, "4") == 0)
        return s_set_part(year, 'Q', part, out);
    if (strcmp(t[3].text, "2") == 0 && n == 4)
        return s_set_part(year, 'H', part, out);
    return KMX_ERR_INVAL;
}

// "1/31/2024" or "31/1/2024": the order decides; without one the text is refused.
static int s_ext_slashed(const s_xtok_t *t, const kmx_period_opts_t *opts, kmx_period_t *out,
                         const char **hint) {
    uint32_t a, b, year;
    if (s_xyear(&t[0], &year) && t[1].kind == '/' && t[3].kind == '/' &&
        s_xnum(&t[2], 2, 1, 12, &a) && s_xnum(&t[4], 2, 1, 31, &b))
        return s_set_day(year, a, b, out); // 2024/1/31: year first is never ambiguous
    if (!s_xnum(&t[0], 2, 1, 31, &a) || t[1].kind != '/' || !s_xnum(&t[2], 2, 1, 31, &b) ||
        t[3].kind != '/' || !s_xyear(&t[4], &year))
        return KMX_ERR_INVAL;
    kmx_date_order_t order = opts ? opts->date_order : KMX_DATE_ORDER_NONE;
    if (order == KMX_DATE_ORDER_MDY)
        return s_set_day(year, a, b, out);
    if (order == KMX_DATE_ORDER_DMY)
        return s_set_day(year, b, a, out);
    *hint = "a day/month/year date is ambiguous: choose --date-order mdy or dmy";
    return KMX_ERR_INVAL;
}

static int s_ext_match(const s_xtok_t *t, int n, const kmx_period_opts_t *opts, kmx_period_t *out,
                       const char **hint) {
    if (n == 1 && t[0].kind == 'd') {
        if (s_ext_digits_only(t, out) == 0)
            return 0;
        if (opts && opts->excel_dates)
            return s_ext_excel(t, out);
        uint32_t serial;
        size_t len = strlen(t->text);
        if (len != 6 && len != 8 && s_xnum(t, 7, 10000, 2958465, &serial))
            *hint = "a whole number read as a date is an Excel serial: add --excel-dates";
        return KMX_ERR_INVAL;
    }
    if (n == 2)
        return s_ext_two(t, out);
    if (n == 3)
        return s_ext_three(t, out);
    if (n == 4 || n == 5) {
        if (s_ext_fraction(t, n, out) == 0)
            return 0;
        if (n == 5)
            return s_ext_slashed(t, opts, out, hint);
    }
    return KMX_ERR_INVAL;
}

int kmx_period_parse_ext(const char *text, const kmx_period_opts_t *opts, kmx_period_t *out,
                         const char **hint) {
    const char *none = NULL;
    if (!hint)
        hint = &none;
    *hint = NULL;
    if (!text || !out)
        return KMX_ERR_INVAL;
    if (kmx_period_parse(text, out) == 0)
        return 0;
    char buf[S_EXT_TEXT_MAX];
    s_xtok_t tok[S_EXT_TOKENS_MAX];
    int n = 0;
    kmx_period_t p;
    if (s_korean_to_ascii(text, buf, sizeof buf) != 0 || s_xtokenize(buf, tok, &n) != 0)
        return KMX_ERR_INVAL;
    // A lone year after Korean words ("2024년") is a year.
    uint32_t year;
    if (n == 1 && s_xyear(&tok[0], &year) && strcmp(buf, text) != 0) {
        out->start = year * 100 + 1;
        out->end = year * 100 + 12;
        return 0;
    }
    if (s_ext_match(tok, n, opts, &p, hint) != 0 || !kmx_period_is_valid(&p))
        return KMX_ERR_INVAL;
    *out = p;
    return 0;
}
