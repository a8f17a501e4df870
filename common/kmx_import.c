/*  kmx_import - header mapping and row conversion for CSV import. Values go through
    kmx_unit_normalize and kmx_decimal_parse only, so an imported amount is exactly the
    decimal written in the file; no floating point is involved.  */
#include "kmx_import.h"

#include "kmx_err.h"
#include "kmx_period.h"
#include "kmx_record.h"
#include "kmx_value.h"

#include <assert.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef enum {
    S_COL_IGNORED = 0,
    S_COL_KIND,
    S_COL_PERIOD,
    S_COL_MARKET,
    S_COL_CATEGORY,
    S_COL_ITEM,
    S_COL_COMPANY,
    S_COL_ARTIST,
    S_COL_VALUE,
    S_COL_UNIT,
    S_COL_SOURCE,
    S_COL_STATUS,
    S_COL_AS_OF,
    S_COL_NOTE,
    S_COL_URL,
    S_COL_CONFIDENCE,
    S_COL_COUNT,
    S_COL_WIDE, // a period column of a wide file: its cells are values
} s_col_t;

typedef struct {
    const char *name; // normalised header name
    s_col_t col;      // record field it feeds
} s_alias_t;

static const s_alias_t s_aliases[] = {
    {"kind", S_COL_KIND},
    {"period", S_COL_PERIOD},
    {"market", S_COL_MARKET},
    {"category", S_COL_CATEGORY},
    {"category_or_dimension", S_COL_CATEGORY},
    {"dimension", S_COL_CATEGORY},
    {"item", S_COL_ITEM},
    {"series", S_COL_ITEM},
    {"company", S_COL_COMPANY},
    {"artist", S_COL_ARTIST},
    {"value", S_COL_VALUE},
    {"amount", S_COL_VALUE},
    {"unit", S_COL_UNIT},
    {"source", S_COL_SOURCE},
    {"status", S_COL_STATUS},
    {"as_of", S_COL_AS_OF},
    {"asof", S_COL_AS_OF},
    {"note", S_COL_NOTE},
    {"notes", S_COL_NOTE},
    {"url", S_COL_URL},
    {"confidence", S_COL_CONFIDENCE},
    {"type", S_COL_KIND},
    {"direction", S_COL_KIND},
    {"time_period", S_COL_PERIOD},
    {"year", S_COL_PERIOD},
    {"date", S_COL_PERIOD},
    {"country", S_COL_MARKET},
    {"territory", S_COL_MARKET},
    {"region", S_COL_MARKET},
    {"destination", S_COL_MARKET},
    {"segment", S_COL_CATEGORY},
    {"indicator", S_COL_ITEM},
    {"metric", S_COL_ITEM},
    {"label", S_COL_COMPANY},
    {"agency", S_COL_COMPANY},
    {"act", S_COL_ARTIST},
    {"units", S_COL_UNIT},
    {"currency", S_COL_UNIT},
    {"measure", S_COL_UNIT},
    {"publisher", S_COL_SOURCE},
    {"source_name", S_COL_SOURCE},
    {"revision", S_COL_STATUS},
    {"retrieved", S_COL_AS_OF},
    {"published", S_COL_AS_OF},
    {"remarks", S_COL_NOTE},
    {"link", S_COL_URL},
    {"source_url", S_COL_URL},
    {"quality", S_COL_CONFIDENCE},
    {"id", S_COL_IGNORED},
    {"seq", S_COL_IGNORED},
    {"updated_ms", S_COL_IGNORED},
    {"comment", S_COL_IGNORED},
    {"comments", S_COL_IGNORED},
};

// Korean column names as KOSIS, the customs portal and KOCCA's reports write them. A
// separate table so the English one above stays the documented list.
static const s_alias_t s_aliases_ko[] = {
    {"종류", S_COL_KIND},         {"구분", S_COL_KIND},       {"유형", S_COL_KIND},
    {"수출입", S_COL_KIND},       {"기간", S_COL_PERIOD},     {"연도", S_COL_PERIOD},
    {"년도", S_COL_PERIOD},       {"년월", S_COL_PERIOD},     {"연월", S_COL_PERIOD},
    {"시점", S_COL_PERIOD},       {"일자", S_COL_PERIOD},     {"날짜", S_COL_PERIOD},
    {"국가", S_COL_MARKET},       {"국가명", S_COL_MARKET},   {"지역", S_COL_MARKET},
    {"시장", S_COL_MARKET},       {"국가별", S_COL_MARKET},   {"대상국", S_COL_MARKET},
    {"수출국", S_COL_MARKET},     {"분류", S_COL_CATEGORY},   {"부문", S_COL_CATEGORY},
    {"카테고리", S_COL_CATEGORY}, {"차원", S_COL_CATEGORY},   {"업종", S_COL_CATEGORY},
    {"품목", S_COL_ITEM},         {"항목", S_COL_ITEM},       {"품목명", S_COL_ITEM},
    {"지표", S_COL_ITEM},         {"계열", S_COL_ITEM},       {"회사", S_COL_COMPANY},
    {"기업", S_COL_COMPANY},      {"업체", S_COL_COMPANY},    {"기획사", S_COL_COMPANY},
    {"레이블", S_COL_COMPANY},    {"아티스트", S_COL_ARTIST}, {"가수", S_COL_ARTIST},
    {"금액", S_COL_VALUE},        {"수출액", S_COL_VALUE},    {"수입액", S_COL_VALUE},
    {"값", S_COL_VALUE},          {"수치", S_COL_VALUE},      {"매출액", S_COL_VALUE},
    {"데이터", S_COL_VALUE},      {"단위", S_COL_UNIT},       {"통화", S_COL_UNIT},
    {"출처", S_COL_SOURCE},       {"자료출처", S_COL_SOURCE}, {"기관", S_COL_SOURCE},
    {"상태", S_COL_STATUS},       {"기준일", S_COL_AS_OF},    {"조회일", S_COL_AS_OF},
    {"작성일", S_COL_AS_OF},      {"비고", S_COL_NOTE},       {"주석", S_COL_NOTE},
    {"메모", S_COL_NOTE},         {"링크", S_COL_URL},        {"주소", S_COL_URL},
    {"신뢰도", S_COL_CONFIDENCE},
};

#define S_NALIASES (sizeof(s_aliases) / sizeof(s_aliases[0]))
#define S_NALIASES_KO (sizeof(s_aliases_ko) / sizeof(s_aliases_ko[0]))

// The i-th alias of both tables.
static const s_alias_t *s_alias_at(size_t i) {
    return i < S_NALIASES ? &s_aliases[i] : &s_aliases_ko[i - S_NALIASES];
}

// Columns a header must have, with the name used when one is missing.
// The unit is not among them: it may also come from the value column's name
// ("value_usd_million") or follow the amount in its cell ("1.5 USD_million").
static const struct {
    s_col_t col;      // required field
    const char *name; // its canonical column name
} s_required[] = {
    {S_COL_KIND, "kind"}, {S_COL_PERIOD, "period"}, {S_COL_CATEGORY, "category"},
    {S_COL_ITEM, "item"}, {S_COL_VALUE, "value"},
};

// Canonical column names by field, for defaults and errors.
static const char *const s_col_names[S_COL_COUNT] = {
    "",      "kind", "period", "market", "category", "item", "company", "artist",
    "value", "unit", "source", "status", "as_of",    "note", "url",     "confidence",
};

struct kmx_import {
    size_t ncols;                         // columns in the header
    s_col_t *cols;                        // field fed by each column
    char (*names)[KMX_IMPORT_COLUMN_MAX]; // each column as written, for errors
    kmx_period_t *periods;                // wide: the period each S_COL_WIDE column names
    unsigned char *preliminary;           // wide: the column's header marks it "p)"
    int wide;                             // nonzero for a wide file
    size_t index[S_COL_COUNT];            // column of each field, or SIZE_MAX
    char *defaults[S_COL_COUNT];          // value of each field when absent or empty
    char header_unit[KMX_UNIT_MAX];       // unit named by the value column, or ""
    kmx_period_opts_t period_opts;        // how period cells are read
    char **warnings;                      // sentences about the header, malloc'd
    size_t n_warnings;                    // entries in warnings
};

__attribute__((format(printf, 4, 5))) static int s_fail(kmx_import_error_t *err, size_t row,
                                                        const char *column, const char *fmt, ...) {
    if (!err)
        return KMX_ERR_INVAL;
    err->row = row;
    snprintf(err->column, sizeof(err->column), "%s", column ? column : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->reason, sizeof(err->reason), fmt, ap);
    va_end(ap);
    return KMX_ERR_INVAL;
}

// Copies text without surrounding blanks into out (bounded, NUL-terminated).
static void s_trim_copy(const char *text, char *out, size_t size) {
    while (*text == ' ' || *text == '\t')
        text++;
    size_t n = strlen(text);
    while (n > 0 && (text[n - 1] == ' ' || text[n - 1] == '\t'))
        n--;
    if (n >= size)
        n = size - 1;
    memcpy(out, text, n);
    out[n] = '\0';
}

// Lower case, '-', ' ' and brackets as '_', runs of '_' as one: "Value (USD million)" and
// "수출액(천달러)" are "value_usd_million" and "수출액_천달러".
static void s_normalise_name(const char *text, char *out, size_t size) {
    s_trim_copy(text, out, size);
    char *w = out;
    for (char *p = out; *p; p++) {
        char c = *p;
        if (c == '(' || c == ')' || c == '[' || c == ']' || c == '-' || c == ' ')
            c = '_';
        if (c == '_' && w > out && w[-1] == '_')
            continue;
        *w++ = (char)tolower((unsigned char)c);
    }
    while (w > out && w[-1] == '_')
        w--;
    *w = '\0';
    if (out[0] == '_' && text[strspn(text, " \t")] != '_')
        memmove(out, out + 1, strlen(out)); // "(x)" is not an ignorable "_x"
}

// "value_usd_million", "amount (KRW bn)", "수출액(천달러)": a value alias, '_', a unit.
// Writes the unit text to unit and returns 1, or returns 0.
static int s_value_with_unit(const char *name, char *unit, size_t size) {
    for (size_t i = 0; i < S_NALIASES + S_NALIASES_KO; i++) {
        const s_alias_t *a = s_alias_at(i);
        size_t n = strlen(a->name);
        if (a->col != S_COL_VALUE || strncmp(name, a->name, n) != 0 || name[n] != '_')
            continue;
        char base[KMX_UNIT_MAX];
        int64_t mult;
        if (kmx_unit_normalize(name + n + 1, base, sizeof(base), &mult) == 0) {
            int w = snprintf(unit, size, "%s", name + n + 1);
            return w >= 0 && (size_t)w < size;
        }
    }
    return 0;
}

// Maps one header name. Returns 0 with *col set (and unit filled for a value column that
// names its unit), or KMX_ERR_INVAL for an unknown name.
static int s_map_column(const char *text, s_col_t *col, char *unit, size_t unit_size) {
    char name[KMX_IMPORT_COLUMN_MAX];
    s_normalise_name(text, name, sizeof(name));
    if (s_value_with_unit(name, unit, unit_size)) {
        *col = S_COL_VALUE;
        return 0;
    }
    for (size_t i = 0; i < S_NALIASES + S_NALIASES_KO; i++) {
        if (strcmp(name, s_alias_at(i)->name) == 0) {
            *col = s_alias_at(i)->col;
            return 0;
        }
    }
    if (strncmp(name, "x_", 2) == 0 || name[0] == '_') {
        *col = S_COL_IGNORED;
        return 0;
    }
    return KMX_ERR_INVAL;
}

// ---- unknown columns ----------------------------------------------------------------

// Decodes the UTF-8 at text into at most max code points (bytes >= 0x80 that do not start
// a sequence count as one each). Returns how many.
static size_t s_code_points(const char *text, uint32_t *out, size_t max) {
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p && n < max; n++) {
        size_t len = *p >= 0xF0 ? 4 : *p >= 0xE0 ? 3 : *p >= 0xC0 ? 2 : 1;
        uint32_t cp = len == 1 ? *p : *p & (0x3F >> (len - 1));
        size_t i = 1;
        for (; i < len && (p[i] & 0xC0) == 0x80; i++)
            cp = (cp << 6) | (p[i] & 0x3F);
        out[n] = cp;
        p += i;
    }
    return n;
}

#define S_NAME_CP_MAX 64

// Edit distance between two names, counted in code points so 수출앤 is one from 수출액.
size_t kmx_import_distance(const char *a, const char *b) {
    uint32_t x[S_NAME_CP_MAX], y[S_NAME_CP_MAX];
    size_t n = s_code_points(a, x, S_NAME_CP_MAX), m = s_code_points(b, y, S_NAME_CP_MAX);
    size_t row[S_NAME_CP_MAX + 1];
    for (size_t j = 0; j <= m; j++)
        row[j] = j;
    for (size_t i = 1; i <= n; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= m; j++) {
            size_t up = row[j];
            size_t best = diag + (x[i - 1] != y[j - 1]);
            best = up + 1 < best ? up + 1 : best;
            best = row[j - 1] + 1 < best ? row[j - 1] + 1 : best;
            row[j] = best;
            diag = up;
        }
    }
    return row[m];
}

// The alias closest to name (normalised), and the field it feeds.
static const s_alias_t *s_closest(const char *name) {
    const s_alias_t *best = NULL;
    size_t best_d = SIZE_MAX;
    for (size_t i = 0; i < S_NALIASES + S_NALIASES_KO; i++) {
        const s_alias_t *a = s_alias_at(i);
        if (a->col == S_COL_IGNORED)
            continue;
        size_t d = kmx_import_distance(name, a->name);
        if (d < best_d) {
            best = a;
            best_d = d;
        }
    }
    return best;
}

// Writes `"name" (closest alias "x", the y column)` for an unknown column into out.
static void s_describe_unknown(const char *written, char *out, size_t size) {
    char name[KMX_IMPORT_COLUMN_MAX];
    s_normalise_name(written, name, sizeof(name));
    const s_alias_t *a = s_closest(name);
    if (a && strcmp(a->name, s_col_names[a->col]) != 0)
        snprintf(out, size, "\"%s\" (closest alias \"%s\", the %s column)", written, a->name,
                 s_col_names[a->col]);
    else if (a)
        snprintf(out, size, "\"%s\" (closest \"%s\")", written, a->name);
    else
        snprintf(out, size, "\"%s\"", written);
}

__attribute__((format(printf, 2, 3))) static int s_warn(kmx_import_t *self, const char *fmt, ...) {
    char text[KMX_IMPORT_REASON_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    char **w = realloc(self->warnings, (self->n_warnings + 1) * sizeof(*w));
    if (!w)
        return KMX_ERR_NOMEM;
    self->warnings = w;
    w[self->n_warnings] = strdup(text);
    if (!w[self->n_warnings])
        return KMX_ERR_NOMEM;
    self->n_warnings++;
    return 0;
}

// Names every unknown column at once: an error, or with ignore_extra one warning each.
static int s_unknown_columns(kmx_import_t *self, const size_t *unknown, size_t n,
                             const kmx_import_opts_t *opts, kmx_import_error_t *err) {
    if (n == 0)
        return 0;
    char list[KMX_IMPORT_REASON_MAX] = "";
    size_t used = 0;
    for (size_t k = 0; k < n; k++) {
        char one[KMX_IMPORT_COLUMN_MAX * 3 + 64];
        s_describe_unknown(self->names[unknown[k]], one, sizeof(one));
        if (opts->ignore_extra) {
            if (s_warn(self, "column %s is not a kmx column and was ignored", one) != 0)
                return KMX_ERR_NOMEM;
            continue;
        }
        int w = snprintf(list + used, sizeof(list) - used, "%s%s", k ? ", " : "", one);
        if (w < 0 || (size_t)w >= sizeof(list) - used - 120)
            break; // keep room for the advice; the first columns are named
        used += (size_t)w;
    }
    if (opts->ignore_extra)
        return 0;
    return s_fail(err, 1, self->names[unknown[0]],
                  "unknown column%s %s; map each with --map HEADER=FIELD or drop them with "
                  "--ignore-extra",
                  n > 1 ? "s" : "", list);
}

// ---- header -------------------------------------------------------------------------

// Finds the field a --map gives the column written as text: 0 with *col set, 1 when no map
// names it, or KMX_ERR_INVAL for a map to an unknown field.
static int s_mapped(const kmx_import_opts_t *opts, const char *text, s_col_t *col,
                    kmx_import_error_t *err) {
    char name[KMX_IMPORT_COLUMN_MAX], want[KMX_IMPORT_COLUMN_MAX];
    s_normalise_name(text, name, sizeof(name));
    for (size_t i = 0; i < opts->nmaps; i++) {
        s_normalise_name(opts->maps[i].header ? opts->maps[i].header : "", want, sizeof(want));
        if (strcmp(name, want) != 0)
            continue;
        const char *field = opts->maps[i].field ? opts->maps[i].field : "";
        char unit[KMX_UNIT_MAX] = "";
        if (strcasecmp(field, "ignore") == 0) {
            *col = S_COL_IGNORED;
            return 0;
        }
        if (s_map_column(field, col, unit, sizeof(unit)) < 0 || *col == S_COL_IGNORED || unit[0])
            return s_fail(err, 1, text, "--map %s=%s: \"%s\" is not a kmx field", text, field,
                          field);
        return 0;
    }
    return 1;
}

// Warns about maps that named no column of the header.
static int s_unused_maps(kmx_import_t *self, const kmx_import_opts_t *opts) {
    for (size_t m = 0; m < opts->nmaps; m++) {
        char want[KMX_IMPORT_COLUMN_MAX], name[KMX_IMPORT_COLUMN_MAX];
        s_normalise_name(opts->maps[m].header ? opts->maps[m].header : "", want, sizeof(want));
        int found = 0;
        for (size_t i = 0; i < self->ncols && !found; i++) {
            s_normalise_name(self->names[i], name, sizeof(name));
            found = strcmp(name, want) == 0;
        }
        if (!found && s_warn(self, "--map %s: the header has no such column",
                             opts->maps[m].header ? opts->maps[m].header : "") != 0)
            return KMX_ERR_NOMEM;
    }
    return 0;
}

// A wide file's period header: a period, or one KOSIS marks preliminary ("2023 p)").
static int s_period_header(const char *text, kmx_period_t *p, unsigned char *preliminary) {
    char buf[KMX_IMPORT_COLUMN_MAX];
    snprintf(buf, sizeof buf, "%s", text);
    size_t n = strlen(buf);
    *preliminary = n > 2 && (buf[n - 2] == 'p' || buf[n - 2] == 'P') && buf[n - 1] == ')';
    if (*preliminary)
        buf[n - 2] = '\0';
    char period[KMX_IMPORT_COLUMN_MAX];
    s_trim_copy(buf, period, sizeof period);
    return kmx_period_parse_ext(period, NULL, p, NULL);
}

// Sets column i to col, refusing a second column for the same field.
static int s_assign(kmx_import_t *self, size_t i, s_col_t col, kmx_import_error_t *err) {
    if (col != S_COL_IGNORED && col != S_COL_WIDE && self->index[col] != SIZE_MAX)
        return s_fail(err, 1, self->names[i], "column \"%s\" repeats column \"%s\"", self->names[i],
                      self->names[self->index[col]]);
    self->cols[i] = col;
    if (col != S_COL_IGNORED && col != S_COL_WIDE)
        self->index[col] = i;
    return 0;
}

// Decides whether the file is wide: its period-named columns become value columns.
static int s_decide_layout(kmx_import_t *self, const kmx_import_opts_t *opts, size_t n_period,
                           kmx_import_error_t *err) {
    int has_period = self->index[S_COL_PERIOD] != SIZE_MAX;
    if (opts->layout == KMX_IMPORT_WIDE && n_period == 0)
        return s_fail(err, 1, "",
                      "--wide: no column of the header names a period (such as "
                      "2019, 2024.01, 2024년 1월 or 2024 1/4)");
    if (opts->layout == KMX_IMPORT_WIDE && has_period)
        return s_fail(err, 1, self->names[self->index[S_COL_PERIOD]],
                      "a wide file has its periods in the header, not in column \"%s\"",
                      self->names[self->index[S_COL_PERIOD]]);
    self->wide = n_period > 0 && opts->layout != KMX_IMPORT_LONG &&
                 (opts->layout == KMX_IMPORT_WIDE || !has_period);
    if (self->wide && self->index[S_COL_VALUE] != SIZE_MAX)
        return s_fail(err, 1, self->names[self->index[S_COL_VALUE]],
                      "a wide file has its values under the period columns, not in column "
                      "\"%s\"",
                      self->names[self->index[S_COL_VALUE]]);
    return 0;
}

static int s_map_header(kmx_import_t *self, const char *const *header,
                        const kmx_import_opts_t *opts, kmx_import_error_t *err) {
    size_t *unknown = calloc(self->ncols, sizeof(*unknown));
    if (!unknown)
        return KMX_ERR_NOMEM;
    size_t n_unknown = 0, n_period = 0;
    int rc = 0;
    for (size_t i = 0; i < self->ncols && rc == 0; i++) {
        snprintf(self->names[i], KMX_IMPORT_COLUMN_MAX, "%s", header[i] ? header[i] : "");
        s_col_t col = S_COL_IGNORED;
        char unit[KMX_UNIT_MAX] = "";
        char trimmed[KMX_IMPORT_COLUMN_MAX];
        s_trim_copy(self->names[i], trimmed, sizeof(trimmed));
        if (trimmed[0] == '\0') {
            // Spreadsheets leave unnamed columns after the last one; their cells are dropped.
            rc = s_warn(self, "column %zu has no name and was ignored", i + 1);
            continue;
        }
        rc = s_mapped(opts, self->names[i], &col, err);
        if (rc == 1) {
            rc = 0;
            if (s_map_column(self->names[i], &col, unit, sizeof(unit)) < 0) {
                if (s_period_header(trimmed, &self->periods[i], &self->preliminary[i]) == 0) {
                    col = S_COL_WIDE;
                    n_period++;
                } else {
                    unknown[n_unknown++] = i;
                    continue;
                }
            }
        }
        if (rc == 0)
            rc = s_assign(self, i, col, err);
        if (unit[0])
            snprintf(self->header_unit, sizeof(self->header_unit), "%s", unit);
    }
    if (rc == 0)
        rc = s_decide_layout(self, opts, n_period, err);
    // In a long file a period-named column is an unknown one.
    for (size_t i = 0; rc == 0 && !self->wide && i < self->ncols; i++) {
        if (self->cols[i] == S_COL_WIDE) {
            self->cols[i] = S_COL_IGNORED;
            unknown[n_unknown++] = i;
        }
    }
    if (rc == 0)
        rc = s_unknown_columns(self, unknown, n_unknown, opts, err);
    free(unknown);
    if (rc == 0)
        rc = s_unused_maps(self, opts);
    for (size_t i = 0; rc == 0 && i < sizeof(s_required) / sizeof(s_required[0]); i++) {
        s_col_t col = s_required[i].col;
        if (self->wide && (col == S_COL_PERIOD || col == S_COL_VALUE))
            continue;
        if (self->index[col] == SIZE_MAX && !self->defaults[col])
            rc = s_fail(err, 1, s_required[i].name, "required column \"%s\" is missing",
                        s_required[i].name);
    }
    return rc;
}

int kmx_import_new(const char *const *header, size_t ncols, kmx_import_t **out,
                   kmx_import_error_t *err) {
    return kmx_import_new_opts(header, ncols, NULL, out, err);
}

// Stores the defaults by field. Returns 0, KMX_ERR_INVAL or KMX_ERR_NOMEM.
static int s_set_defaults(kmx_import_t *self, const kmx_import_default_t *defaults, size_t n,
                          kmx_import_error_t *err) {
    for (size_t i = 0; i < n; i++) {
        s_col_t col;
        char unit[KMX_UNIT_MAX] = "";
        const char *name = defaults[i].column ? defaults[i].column : "";
        if (s_map_column(name, &col, unit, sizeof(unit)) < 0 || col == S_COL_IGNORED || unit[0])
            return s_fail(err, 0, name, "unknown column \"%s\" in the defaults", name);
        char value[KMX_IMPORT_REASON_MAX];
        s_trim_copy(defaults[i].value ? defaults[i].value : "", value, sizeof(value));
        free(self->defaults[col]);
        self->defaults[col] = value[0] ? strdup(value) : NULL;
        if (value[0] && !self->defaults[col])
            return KMX_ERR_NOMEM;
    }
    return 0;
}

int kmx_import_new_defaults(const char *const *header, size_t ncols,
                            const kmx_import_default_t *defaults, size_t ndefaults,
                            kmx_import_t **out, kmx_import_error_t *err) {
    kmx_import_opts_t opts = {.defaults = defaults, .ndefaults = ndefaults};
    return kmx_import_new_opts(header, ncols, &opts, out, err);
}

int kmx_import_new_opts(const char *const *header, size_t ncols, const kmx_import_opts_t *opts,
                        kmx_import_t **out, kmx_import_error_t *err) {
    assert(out);
    static const kmx_import_opts_t none = {0};
    opts = opts ? opts : &none;
    *out = NULL;
    if (!header || ncols == 0)
        return s_fail(err, 1, NULL, "the header row is empty");
    kmx_import_t *self = calloc(1, sizeof(*self));
    if (!self)
        return KMX_ERR_NOMEM;
    self->ncols = ncols;
    self->period_opts = opts->period;
    self->cols = calloc(ncols, sizeof(*self->cols));
    self->names = calloc(ncols, sizeof(*self->names));
    self->periods = calloc(ncols, sizeof(*self->periods));
    self->preliminary = calloc(ncols, sizeof(*self->preliminary));
    if (!self->cols || !self->names || !self->periods || !self->preliminary) {
        kmx_import_destroy(&self);
        return KMX_ERR_NOMEM;
    }
    for (size_t i = 0; i < S_COL_COUNT; i++)
        self->index[i] = SIZE_MAX;
    int rc = s_set_defaults(self, opts->defaults, opts->ndefaults, err);
    if (rc == 0)
        rc = s_map_header(self, header, opts, err);
    if (rc < 0) {
        kmx_import_destroy(&self);
        return rc;
    }
    *out = self;
    return 0;
}

const char *kmx_import_column_name(const kmx_import_t *self, size_t i) {
    return self && i < self->ncols ? self->names[i] : NULL;
}

int kmx_import_is_wide(const kmx_import_t *self) {
    return self && self->wide;
}

size_t kmx_import_warning_count(const kmx_import_t *self) {
    return self ? self->n_warnings : 0;
}

const char *kmx_import_warning(const kmx_import_t *self, size_t i) {
    return self && i < self->n_warnings ? self->warnings[i] : NULL;
}

void kmx_import_destroy(kmx_import_t **self_p) {
    if (!self_p || !*self_p)
        return;
    free((*self_p)->cols);
    free((*self_p)->names);
    free((*self_p)->periods);
    free((*self_p)->preliminary);
    for (size_t i = 0; i < (*self_p)->n_warnings; i++)
        free((*self_p)->warnings[i]);
    free((*self_p)->warnings);
    for (size_t i = 0; i < S_COL_COUNT; i++)
        free((*self_p)->defaults[i]);
    free(*self_p);
    *self_p = NULL;
}

void kmx_import_record_free(Kmx__V1__Record **rec_p) {
    if (!rec_p || !*rec_p)
        return;
    kmx__v1__record__free_unpacked(*rec_p, NULL);
    *rec_p = NULL;
}

static const char *const s_status_names[] = {NULL, "preliminary", "revised", "final"};
static const char *const s_confidence_names[] = {NULL, "low", "medium", "high"};

// Korean words for statuses and confidences, by the value they stand for.
static const struct {
    const char *word; // UTF-8
    int value;        // the Kmx__V1__Status or Kmx__V1__Confidence
} s_status_ko[] = {{"잠정", 1},   {"잠정치", 1}, {"예비", 1},   {"수정", 2},
                   {"수정치", 2}, {"확정", 3},   {"확정치", 3}, {"최종", 3}},
  s_confidence_ko[] = {{"낮음", 1}, {"보통", 2}, {"중간", 2}, {"높음", 3}};

static int s_enum_parse(const char *text, const char *const *names, int count, int *out) {
    char buf[32];
    s_trim_copy(text ? text : "", buf, sizeof(buf));
    for (int i = 1; i < count; i++) {
        if (strcasecmp(buf, names[i]) == 0) {
            *out = i;
            return 0;
        }
    }
    int status = names == s_status_names;
    size_t n = status ? sizeof s_status_ko / sizeof s_status_ko[0]
                      : sizeof s_confidence_ko / sizeof s_confidence_ko[0];
    for (size_t i = 0; i < n; i++) {
        if (strcmp(buf, status ? s_status_ko[i].word : s_confidence_ko[i].word) == 0) {
            *out = status ? s_status_ko[i].value : s_confidence_ko[i].value;
            return 0;
        }
    }
    return KMX_ERR_INVAL;
}

// export | exports | consumption, or 수출 | 소비.
static int s_kind_parse(const char *text, Kmx__V1__Kind *kind) {
    if (strcmp(text, "수출") == 0) {
        *kind = KMX__V1__KIND__EXPORT;
        return 0;
    }
    if (strcmp(text, "소비") == 0) {
        *kind = KMX__V1__KIND__CONSUMPTION;
        return 0;
    }
    return kmx_kind_parse(text, kind);
}

int kmx_import_status_parse(const char *text, Kmx__V1__Status *out) {
    int v = 0;
    int rc = s_enum_parse(text, s_status_names, 4, &v);
    if (rc == 0)
        *out = (Kmx__V1__Status)v;
    return rc;
}

int kmx_import_confidence_parse(const char *text, Kmx__V1__Confidence *out) {
    int v = 0;
    int rc = s_enum_parse(text, s_confidence_names, 4, &v);
    if (rc == 0)
        *out = (Kmx__V1__Confidence)v;
    return rc;
}

const char *kmx_import_status_name(Kmx__V1__Status status) {
    return (status > 0 && status < 4) ? s_status_names[status] : NULL;
}

const char *kmx_import_confidence_name(Kmx__V1__Confidence confidence) {
    return (confidence > 0 && confidence < 4) ? s_confidence_names[confidence] : NULL;
}

// Per-row conversion state: the cells by field, trimmed, and where errors go.
typedef struct {
    const kmx_import_t *map; // the header mapping
    char *cell[S_COL_COUNT]; // trimmed copy of each field's cell, or NULL when absent
    size_t row;              // line the row started on
    kmx_import_error_t *err; // error out-parameter (may be NULL)
    size_t wide_col;         // wide: the period column being read, else SIZE_MAX
    int copy;                // nonzero: copy cells into records (a wide row makes many)
    int refused;             // the last record was refused
} s_row_t;

static const char *s_colname(const s_row_t *r, s_col_t col) {
    if (r->wide_col != SIZE_MAX && (col == S_COL_VALUE || col == S_COL_PERIOD))
        return r->map->names[r->wide_col];
    size_t i = r->map->index[col];
    return i == SIZE_MAX ? s_col_names[col] : r->map->names[i];
}

// Hands the cell of col to *dst (malloc'd; moved, or copied for a wide row), leaving NULL
// for an empty cell. Returns 0 or KMX_ERR_NOMEM.
static int s_take(s_row_t *r, s_col_t col, char **dst) {
    if (!r->copy || !r->cell[col]) {
        *dst = r->cell[col];
        r->cell[col] = NULL;
        return 0;
    }
    *dst = strdup(r->cell[col]);
    return *dst ? 0 : KMX_ERR_NOMEM;
}

static int s_as_of_is_valid(const char *t) {
    if (strlen(t) != 10 || t[4] != '-' || t[7] != '-')
        return 0;
    for (int i = 0; i < 10; i++) {
        if (i != 4 && i != 7 && !isdigit((unsigned char)t[i]))
            return 0;
    }
    int month = (t[5] - '0') * 10 + (t[6] - '0');
    int day = (t[8] - '0') * 10 + (t[9] - '0');
    return month >= 1 && month <= 12 && day >= 1 && day <= 31;
}

static int s_convert_kind_period(s_row_t *r, Kmx__V1__Record *rec) {
    Kmx__V1__Kind kind;
    if (s_kind_parse(r->cell[S_COL_KIND], &kind) < 0)
        return s_fail(r->err, r->row, s_colname(r, S_COL_KIND),
                      "unknown kind \"%s\" (expected export or consumption)", r->cell[S_COL_KIND]);
    rec->has_kind = 1;
    rec->kind = kind;
    kmx_period_t p;
    const char *hint = NULL;
    if (r->wide_col != SIZE_MAX)
        p = r->map->periods[r->wide_col];
    else if (kmx_period_parse_ext(r->cell[S_COL_PERIOD], &r->map->period_opts, &p, &hint) < 0)
        return s_fail(r->err, r->row, s_colname(r, S_COL_PERIOD), "invalid period \"%.80s\" (%s)",
                      r->cell[S_COL_PERIOD],
                      hint ? hint
                           : "expected e.g. 2023, 2025-H1, 2024-Q3, 2024-03, 2024-01-15, "
                             "2023-01/2023-04, 2024년 1월, 2024 1/4분기");
    rec->period = malloc(sizeof(*rec->period));
    if (!rec->period)
        return KMX_ERR_NOMEM;
    kmx__v1__period__init(rec->period);
    rec->period->has_start = rec->period->has_end = 1;
    rec->period->start = p.start;
    rec->period->end = p.end;
    return 0;
}

// Room for an amount split off its unit; longer amounts are not numbers kmx can hold.
#define S_AMOUNT_MAX 64

// Splits "1,801.45 USD_million" or "12.5%" into the amount and the unit after it, copied
// into amount (S_AMOUNT_MAX bytes) and unit (KMX_UNIT_MAX bytes). Returns 0 or
// KMX_ERR_INVAL.
static int s_split_value(const char *cell, char *amount, char *unit) {
    size_t n = strspn(cell, "+-0123456789.,");
    if (n == 0 || n >= S_AMOUNT_MAX || cell[n] == '\0')
        return KMX_ERR_INVAL;
    const char *rest = cell + n + strspn(cell + n, " ");
    if (*rest == '\0' || strlen(rest) >= KMX_UNIT_MAX)
        return KMX_ERR_INVAL;
    memcpy(amount, cell, n);
    amount[n] = '\0';
    strcpy(unit, rest);
    return 0;
}

// Finds the unit: its column, else the value column's name, else the end of the value
// cell. Points *amount_text at the amount's text (the cell, or a copy in amount).
static int s_find_unit(s_row_t *r, const char **unit_text, const char **amount_text, char *amount,
                       char *unit) {
    *amount_text = r->cell[S_COL_VALUE];
    *unit_text = r->cell[S_COL_UNIT];
    if (*unit_text)
        return 0;
    if (r->map->header_unit[0]) {
        *unit_text = r->map->header_unit;
        return 0;
    }
    if (s_split_value(r->cell[S_COL_VALUE], amount, unit) == 0) {
        *amount_text = amount;
        *unit_text = unit;
        return 0;
    }
    return s_fail(r->err, r->row, s_colname(r, S_COL_UNIT),
                  "unit is missing (add a unit column, name it in the value column as in "
                  "\"value_usd_million\", or write it after the amount as in \"1.5 "
                  "USD_million\")");
}

static int s_convert_value(s_row_t *r, Kmx__V1__Record *rec) {
    const char *unit_text = NULL, *amount_text = NULL;
    char amount_buf[S_AMOUNT_MAX], unit_buf[KMX_UNIT_MAX];
    int rc = s_find_unit(r, &unit_text, &amount_text, amount_buf, unit_buf);
    if (rc < 0)
        return rc;
    char unit[KMX_UNIT_MAX];
    int64_t mult = 1;
    if (kmx_unit_normalize(unit_text, unit, sizeof(unit), &mult) < 0)
        return s_fail(r->err, r->row, s_colname(r, S_COL_UNIT), "unknown unit \"%.60s\"",
                      unit_text);
    int64_t amount = 0;
    rc = kmx_decimal_parse(amount_text, mult, &amount);
    if (rc == KMX_ERR_OVERFLOW)
        return s_fail(r->err, r->row, s_colname(r, S_COL_VALUE),
                      "value \"%.40s\" %.40s is out of range", amount_text, unit_text);
    if (rc < 0)
        return s_fail(r->err, r->row, s_colname(r, S_COL_VALUE),
                      "invalid value \"%.60s\" (expected a decimal number with at most %d "
                      "places in the base unit)",
                      amount_text, KMX_VALUE_DIGITS);
    rec->value = malloc(sizeof(*rec->value));
    if (!rec->value)
        return KMX_ERR_NOMEM;
    kmx__v1__value__init(rec->value);
    rec->value->has_amount = 1;
    rec->value->amount = amount;
    rec->value->unit = strdup(unit);
    if (!rec->value->unit)
        return KMX_ERR_NOMEM;
    return 0;
}

static int s_convert_enums(s_row_t *r, Kmx__V1__Record *rec) {
    const char *status = r->cell[S_COL_STATUS];
    if (status) {
        if (kmx_import_status_parse(status, &rec->status) < 0)
            return s_fail(r->err, r->row, s_colname(r, S_COL_STATUS),
                          "unknown status \"%s\" (expected preliminary, revised or final)", status);
        rec->has_status = 1;
    }
    const char *conf = r->cell[S_COL_CONFIDENCE];
    if (conf) {
        if (kmx_import_confidence_parse(conf, &rec->confidence) < 0)
            return s_fail(r->err, r->row, s_colname(r, S_COL_CONFIDENCE),
                          "unknown confidence \"%s\" (expected low, medium or high)", conf);
        rec->has_confidence = 1;
    }
    const char *as_of = r->cell[S_COL_AS_OF];
    if (as_of && !s_as_of_is_valid(as_of))
        return s_fail(r->err, r->row, s_colname(r, S_COL_AS_OF),
                      "invalid as_of \"%s\" (expected YYYY-MM-DD)", as_of);
    return 0;
}

static int s_convert(s_row_t *r, Kmx__V1__Record *rec) {
    for (size_t i = 0; i < sizeof(s_required) / sizeof(s_required[0]); i++) {
        if (r->wide_col != SIZE_MAX && s_required[i].col == S_COL_PERIOD)
            continue;
        if (!r->cell[s_required[i].col])
            return s_fail(r->err, r->row, s_colname(r, s_required[i].col), "%s is empty",
                          s_colname(r, s_required[i].col));
    }
    int rc = s_convert_kind_period(r, rec);
    if (rc == 0)
        rc = s_convert_value(r, rec);
    if (rc == 0)
        rc = s_convert_enums(r, rec);
    if (rc < 0)
        return rc;
    static const s_col_t cols[] = {S_COL_MARKET,  S_COL_CATEGORY, S_COL_ITEM,
                                   S_COL_COMPANY, S_COL_ARTIST,   S_COL_SOURCE,
                                   S_COL_AS_OF,   S_COL_NOTE,     S_COL_URL};
    char **dst[] = {&rec->market, &rec->category, &rec->item, &rec->company, &rec->artist,
                    &rec->source, &rec->as_of,    &rec->note, &rec->url};
    for (size_t i = 0; rc == 0 && i < sizeof cols / sizeof cols[0]; i++)
        rc = s_take(r, cols[i], dst[i]);
    return rc;
}

// A malloc'd copy of text (NULL: "") without surrounding blanks, or NULL when out of memory.
static char *s_trimmed_dup(const char *text) {
    text = text ? text : "";
    size_t n = strlen(text) + 1;
    char *cell = malloc(n);
    if (cell)
        s_trim_copy(text, cell, n);
    return cell;
}

// Fills r->cell with trimmed malloc'd copies of the non-empty cells.
static int s_collect(s_row_t *r, const char *const *fields) {
    for (size_t i = 0; i < r->map->ncols; i++) {
        s_col_t col = r->map->cols[i];
        if (col == S_COL_IGNORED || col == S_COL_WIDE)
            continue;
        char *cell = s_trimmed_dup(fields[i]);
        if (!cell)
            return KMX_ERR_NOMEM;
        if (cell[0] == '\0') {
            free(cell);
            continue;
        }
        free(r->cell[col]);
        r->cell[col] = cell;
    }
    for (size_t col = 1; col < S_COL_COUNT; col++) {
        if (!r->cell[col] && r->map->defaults[col]) {
            r->cell[col] = strdup(r->map->defaults[col]);
            if (!r->cell[col])
                return KMX_ERR_NOMEM;
        }
    }
    return 0;
}

// Converts the row's cells (collected in r) into one record handed to emit.
static int s_emit_one(s_row_t *r, kmx_import_emit_fn emit, void *ctx) {
    kmx_import_error_t local;
    kmx_import_error_t *err = r->err ? r->err : &local;
    r->err = err;
    Kmx__V1__Record *rec = malloc(sizeof(*rec));
    if (!rec)
        return KMX_ERR_NOMEM;
    kmx__v1__record__init(rec);
    int rc = s_convert(r, rec);
    r->refused = rc == KMX_ERR_INVAL;
    if (rc == KMX_ERR_INVAL) {
        kmx__v1__record__free_unpacked(rec, NULL);
        return emit(ctx, NULL, err);
    }
    if (rc < 0) {
        kmx__v1__record__free_unpacked(rec, NULL);
        return rc;
    }
    return emit(ctx, rec, NULL);
}

// A wide row: one record per period cell; empty and "-" cells are skipped and counted.
static int s_emit_wide(s_row_t *r, const char *const *fields, kmx_import_emit_fn emit, void *ctx) {
    int skipped = 0;
    r->copy = 1;
    for (size_t i = 0; i < r->map->ncols; i++) {
        if (r->map->cols[i] != S_COL_WIDE)
            continue;
        char *cell = s_trimmed_dup(fields[i]);
        if (!cell)
            return KMX_ERR_NOMEM;
        if (cell[0] == '\0' || strcmp(cell, "-") == 0) {
            free(cell);
            skipped++;
            continue;
        }
        r->cell[S_COL_VALUE] = cell;
        r->wide_col = i;
        // A "p)" column's figures are preliminary unless the row says otherwise.
        int mark = r->map->preliminary[i] && !r->cell[S_COL_STATUS];
        if (mark)
            r->cell[S_COL_STATUS] = (char *)"preliminary";
        int rc = s_emit_one(r, emit, ctx);
        if (mark)
            r->cell[S_COL_STATUS] = NULL;
        free(r->cell[S_COL_VALUE]);
        r->cell[S_COL_VALUE] = NULL;
        if (rc < 0)
            return rc;
        // A fault outside the cell (kind, unit, status, ...) is the row's: said once.
        if (r->refused && strcmp(r->err->column, r->map->names[i]) != 0)
            break;
    }
    return skipped;
}

int kmx_import_row_each(const kmx_import_t *self, const char *const *fields, size_t nfields,
                        size_t row, kmx_import_emit_fn emit, void *ctx) {
    assert(self && emit);
    kmx_import_error_t err;
    if (nfields != self->ncols) {
        s_fail(&err, row, NULL, "row has %zu fields but the header has %zu", nfields, self->ncols);
        return emit(ctx, NULL, &err);
    }
    s_row_t r = {.map = self, .row = row, .err = &err, .wide_col = SIZE_MAX};
    int rc = s_collect(&r, fields);
    if (rc == 0)
        rc = self->wide ? s_emit_wide(&r, fields, emit, ctx) : s_emit_one(&r, emit, ctx);
    for (size_t i = 0; i < S_COL_COUNT; i++)
        free(r.cell[i]);
    return rc;
}

// kmx_import_row's emit: keeps the one record.
static int s_keep(void *ctx, Kmx__V1__Record *rec, const kmx_import_error_t *err) {
    (void)err;
    *(Kmx__V1__Record **)ctx = rec;
    return rec ? 0 : KMX_ERR_INVAL;
}

int kmx_import_row(const kmx_import_t *self, const char *const *fields, size_t nfields, size_t row,
                   Kmx__V1__Record **out, kmx_import_error_t *err) {
    assert(self && out);
    *out = NULL;
    if (self->wide)
        return s_fail(err, row, NULL, "a wide file yields several records per row");
    if (nfields != self->ncols)
        return s_fail(err, row, NULL, "row has %zu fields but the header has %zu", nfields,
                      self->ncols);
    s_row_t r = {.map = self, .row = row, .err = err, .wide_col = SIZE_MAX};
    int rc = s_collect(&r, fields);
    if (rc == 0)
        rc = s_emit_one(&r, s_keep, out);
    for (size_t i = 0; i < S_COL_COUNT; i++)
        free(r.cell[i]);
    return rc;
}
