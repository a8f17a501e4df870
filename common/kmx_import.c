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
    S_COL_COUNT
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
    "",       "kind",   "period", "market", "category", "item",   "company",    "artist",
    "value",  "unit",   "source", "status", "as_of",    "note",   "url",        "confidence",
};

struct kmx_import {
    size_t ncols;                             // columns in the header
    s_col_t *cols;                            // field fed by each column
    char (*names)[KMX_IMPORT_COLUMN_MAX];     // each column as written, for errors
    size_t index[S_COL_COUNT];                // column of each field, or SIZE_MAX
    char *defaults[S_COL_COUNT];              // value of each field when absent or empty
    char header_unit[KMX_UNIT_MAX];           // unit named by the value column, or ""
};

__attribute__((format(printf, 4, 5))) static int
s_fail(kmx_import_error_t *err, size_t row, const char *column, const char *fmt, ...)
{
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
static void s_trim_copy(const char *text, char *out, size_t size)
{
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

// Lower case, '-' and ' ' as '_', brackets dropped: "Value (USD million)" is
// "value_usd_million".
static void s_normalise_name(const char *text, char *out, size_t size)
{
    s_trim_copy(text, out, size);
    char *w = out;
    for (char *p = out; *p; p++) {
        char c = *p;
        if (c == '(' || c == ')' || c == '[' || c == ']')
            continue;
        if (c == '-' || c == ' ')
            c = '_';
        if (c == '_' && w > out && w[-1] == '_')
            continue;
        *w++ = (char)tolower((unsigned char)c);
    }
    while (w > out && w[-1] == '_')
        w--;
    *w = '\0';
}

// "value_usd_million", "amount (KRW bn)": a value column naming its unit. Writes the
// unit text to unit and returns 1, or returns 0.
static int s_value_with_unit(const char *name, char *unit, size_t size)
{
    static const char *const prefixes[] = {"value_", "amount_"};
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        size_t n = strlen(prefixes[i]);
        if (strncmp(name, prefixes[i], n) != 0)
            continue;
        char base[KMX_UNIT_MAX];
        int64_t mult;
        if (kmx_unit_normalize(name + n, base, sizeof(base), &mult) == 0) {
            int w = snprintf(unit, size, "%s", name + n);
            return w >= 0 && (size_t)w < size;
        }
    }
    return 0;
}

// Maps one header name. Returns 0 with *col set (and unit filled for a value column that
// names its unit), or KMX_ERR_INVAL for an unknown name.
static int s_map_column(const char *text, s_col_t *col, char *unit, size_t unit_size)
{
    char name[KMX_IMPORT_COLUMN_MAX];
    s_normalise_name(text, name, sizeof(name));
    if (s_value_with_unit(name, unit, unit_size)) {
        *col = S_COL_VALUE;
        return 0;
    }
    for (size_t i = 0; i < sizeof(s_aliases) / sizeof(s_aliases[0]); i++) {
        if (strcmp(name, s_aliases[i].name) == 0) {
            *col = s_aliases[i].col;
            return 0;
        }
    }
    if (strncmp(name, "x_", 2) == 0 || name[0] == '_') {
        *col = S_COL_IGNORED;
        return 0;
    }
    return KMX_ERR_INVAL;
}

static int s_map_header(kmx_import_t *self, const char *const *header, kmx_import_error_t *err)
{
    for (size_t i = 0; i < self->ncols; i++) {
        snprintf(self->names[i], KMX_IMPORT_COLUMN_MAX, "%s", header[i] ? header[i] : "");
        s_col_t col;
        char unit[KMX_UNIT_MAX] = "";
        if (s_map_column(self->names[i], &col, unit, sizeof(unit)) < 0)
            return s_fail(err, 1, self->names[i], "unknown column \"%s\"", self->names[i]);
        if (col != S_COL_IGNORED && self->index[col] != SIZE_MAX)
            return s_fail(err, 1, self->names[i], "column \"%s\" repeats column \"%s\"",
                          self->names[i], self->names[self->index[col]]);
        self->cols[i] = col;
        if (col != S_COL_IGNORED)
            self->index[col] = i;
        if (unit[0])
            snprintf(self->header_unit, sizeof(self->header_unit), "%s", unit);
    }
    for (size_t i = 0; i < sizeof(s_required) / sizeof(s_required[0]); i++) {
        if (self->index[s_required[i].col] == SIZE_MAX && !self->defaults[s_required[i].col])
            return s_fail(err, 1, s_required[i].name, "required column \"%s\" is missing",
                          s_required[i].name);
    }
    return 0;
}

int kmx_import_new(const char *const *header, size_t ncols, kmx_import_t **out,
                   kmx_import_error_t *err)
{
    return kmx_import_new_defaults(header, ncols, NULL, 0, out, err);
}

// Stores the defaults by field. Returns 0, KMX_ERR_INVAL or KMX_ERR_NOMEM.
static int s_set_defaults(kmx_import_t *self, const kmx_import_default_t *defaults, size_t n,
                          kmx_import_error_t *err)
{
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
                            kmx_import_t **out, kmx_import_error_t *err)
{
    assert(out);
    *out = NULL;
    if (!header || ncols == 0)
        return s_fail(err, 1, NULL, "the header row is empty");
    kmx_import_t *self = calloc(1, sizeof(*self));
    if (!self)
        return KMX_ERR_NOMEM;
    self->ncols = ncols;
    self->cols = calloc(ncols, sizeof(*self->cols));
    self->names = calloc(ncols, sizeof(*self->names));
    if (!self->cols || !self->names) {
        kmx_import_destroy(&self);
        return KMX_ERR_NOMEM;
    }
    for (size_t i = 0; i < S_COL_COUNT; i++)
        self->index[i] = SIZE_MAX;
    int rc = s_set_defaults(self, defaults, ndefaults, err);
    if (rc == 0)
        rc = s_map_header(self, header, err);
    if (rc < 0) {
        kmx_import_destroy(&self);
        return rc;
    }
    *out = self;
    return 0;
}

void kmx_import_destroy(kmx_import_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->cols);
    free((*self_p)->names);
    for (size_t i = 0; i < S_COL_COUNT; i++)
        free((*self_p)->defaults[i]);
    free(*self_p);
    *self_p = NULL;
}

void kmx_import_record_free(Kmx__V1__Record **rec_p)
{
    if (!rec_p || !*rec_p)
        return;
    kmx__v1__record__free_unpacked(*rec_p, NULL);
    *rec_p = NULL;
}

static const char *const s_status_names[] = {NULL, "preliminary", "revised", "final"};
static const char *const s_confidence_names[] = {NULL, "low", "medium", "high"};

static int s_enum_parse(const char *text, const char *const *names, int count, int *out)
{
    char buf[32];
    s_trim_copy(text ? text : "", buf, sizeof(buf));
    for (int i = 1; i < count; i++) {
        if (strcasecmp(buf, names[i]) == 0) {
            *out = i;
            return 0;
        }
    }
    return KMX_ERR_INVAL;
}

int kmx_import_status_parse(const char *text, Kmx__V1__Status *out)
{
    int v = 0;
    int rc = s_enum_parse(text, s_status_names, 4, &v);
    if (rc == 0)
        *out = (Kmx__V1__Status)v;
    return rc;
}

int kmx_import_confidence_parse(const char *text, Kmx__V1__Confidence *out)
{
    int v = 0;
    int rc = s_enum_parse(text, s_confidence_names, 4, &v);
    if (rc == 0)
        *out = (Kmx__V1__Confidence)v;
    return rc;
}

const char *kmx_import_status_name(Kmx__V1__Status status)
{
    return (status > 0 && status < 4) ? s_status_names[status] : NULL;
}

const char *kmx_import_confidence_name(Kmx__V1__Confidence confidence)
{
    return (confidence > 0 && confidence < 4) ? s_confidence_names[confidence] : NULL;
}

// Per-row conversion state: the cells by field, trimmed, and where errors go.
typedef struct {
    const kmx_import_t *map;   // the header mapping
    char *cell[S_COL_COUNT];   // trimmed copy of each field's cell, or NULL when absent
    size_t row;                // line the row started on
    kmx_import_error_t *err;   // error out-parameter (may be NULL)
} s_row_t;

static const char *s_colname(const s_row_t *r, s_col_t col)
{
    size_t i = r->map->index[col];
    return i == SIZE_MAX ? s_col_names[col] : r->map->names[i];
}

// Moves the cell of col into *dst (malloc'd), leaving NULL for an empty cell.
static void s_take(s_row_t *r, s_col_t col, char **dst)
{
    *dst = r->cell[col];
    r->cell[col] = NULL;
}

static int s_as_of_is_valid(const char *t)
{
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

static int s_convert_kind_period(s_row_t *r, Kmx__V1__Record *rec)
{
    Kmx__V1__Kind kind;
    if (kmx_kind_parse(r->cell[S_COL_KIND], &kind) < 0)
        return s_fail(r->err, r->row, s_colname(r, S_COL_KIND),
                      "unknown kind \"%s\" (expected export or consumption)",
                      r->cell[S_COL_KIND]);
    rec->has_kind = 1;
    rec->kind = kind;
    kmx_period_t p;
    if (kmx_period_parse(r->cell[S_COL_PERIOD], &p) < 0)
        return s_fail(r->err, r->row, s_colname(r, S_COL_PERIOD),
                      "invalid period \"%s\" (expected e.g. 2023, 2025-H1, 2024-Q3, 2024-03, "
                      "2023-01/2023-04)",
                      r->cell[S_COL_PERIOD]);
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
static int s_split_value(const char *cell, char *amount, char *unit)
{
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
static int s_find_unit(s_row_t *r, const char **unit_text, const char **amount_text,
                       char *amount, char *unit)
{
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

static int s_convert_value(s_row_t *r, Kmx__V1__Record *rec)
{
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

static int s_convert_enums(s_row_t *r, Kmx__V1__Record *rec)
{
    const char *status = r->cell[S_COL_STATUS];
    if (status) {
        if (kmx_import_status_parse(status, &rec->status) < 0)
            return s_fail(r->err, r->row, s_colname(r, S_COL_STATUS),
                          "unknown status \"%s\" (expected preliminary, revised or final)",
                          status);
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

static int s_convert(s_row_t *r, Kmx__V1__Record *rec)
{
    for (size_t i = 0; i < sizeof(s_required) / sizeof(s_required[0]); i++) {
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
    s_take(r, S_COL_MARKET, &rec->market);
    s_take(r, S_COL_CATEGORY, &rec->category);
    s_take(r, S_COL_ITEM, &rec->item);
    s_take(r, S_COL_COMPANY, &rec->company);
    s_take(r, S_COL_ARTIST, &rec->artist);
    s_take(r, S_COL_SOURCE, &rec->source);
    s_take(r, S_COL_AS_OF, &rec->as_of);
    s_take(r, S_COL_NOTE, &rec->note);
    s_take(r, S_COL_URL, &rec->url);
    return 0;
}

// Fills r->cell with trimmed malloc'd copies of the non-empty cells.
static int s_collect(s_row_t *r, const char *const *fields)
{
    for (size_t i = 0; i < r->map->ncols; i++) {
        s_col_t col = r->map->cols[i];
        if (col == S_COL_IGNORED)
            continue;
        const char *text = fields[i] ? fields[i] : "";
        size_t n = strlen(text) + 1;
        char *cell = malloc(n);
        if (!cell)
            return KMX_ERR_NOMEM;
        s_trim_copy(text, cell, n);
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

int kmx_import_row(const kmx_import_t *self, const char *const *fields, size_t nfields,
                   size_t row, Kmx__V1__Record **out, kmx_import_error_t *err)
{
    assert(self && out);
    *out = NULL;
    if (nfields != self->ncols)
        return s_fail(err, row, NULL, "row has %zu fields but the header has %zu", nfields,
                      self->ncols);
    s_row_t r = {.map = self, .row = row, .err = err};
    Kmx__V1__Record *rec = malloc(sizeof(*rec));
    if (!rec)
        return KMX_ERR_NOMEM;
    kmx__v1__record__init(rec);
    int rc = s_collect(&r, fields);
    if (rc == 0)
        rc = s_convert(&r, rec);
    for (size_t i = 0; i < S_COL_COUNT; i++)
        free(r.cell[i]);
    if (rc < 0) {
        kmx__v1__record__free_unpacked(rec, NULL);
        return rc;
    }
    *out = rec;
    return 0;
}
