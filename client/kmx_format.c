/*  kmx_format - JSON, CSV and table output for the kmx CLI. Everything writes to a FILE so
    the same code serves stdout and, in tests, memory streams.  */
#include "kmx_format.h"

#include "kmx_err.h"
#include "kmx_import.h"
#include "kmx_json.h"
#include "kmx_period.h"
#include "kmx_record.h"
#include "kmx_value.h"

#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

int kmx_format_parse(const char *text, kmx_format_kind_t *out) {
    if (!text)
        return KMX_ERR_INVAL;
    if (strcmp(text, "table") == 0)
        *out = KMX_FORMAT_TABLE;
    else if (strcmp(text, "json") == 0)
        *out = KMX_FORMAT_JSON;
    else if (strcmp(text, "csv") == 0)
        *out = KMX_FORMAT_CSV;
    else
        return KMX_ERR_INVAL;
    return 0;
}

static int s_csv_needs_quotes(const char *s) {
    size_t n = strlen(s);
    if (n == 0)
        return 0;
    if (s[0] == ' ' || s[0] == '\t' || s[n - 1] == ' ' || s[n - 1] == '\t')
        return 1;
    return strpbrk(s, ",\"\r\n") != NULL;
}

void kmx_format_csv_field(FILE *out, const char *s) {
    if (!s)
        return;
    if (!s_csv_needs_quotes(s)) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', out);
        fputc(*s, out);
    }
    fputc('"', out);
}

void kmx_format_csv_row(FILE *out, const char *const *fields, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            fputc(',', out);
        kmx_format_csv_field(out, fields[i]);
    }
    fputc('\n', out);
}

// Decodes one UTF-8 sequence at p. Returns its length (1 for a stray byte) and the
// code point in *cp.
static size_t s_utf8_next(const unsigned char *p, uint32_t *cp) {
    size_t len;
    uint32_t c = p[0];
    if (c < 0x80)
        len = 1;
    else if ((c & 0xE0) == 0xC0)
        len = 2, c &= 0x1F;
    else if ((c & 0xF0) == 0xE0)
        len = 3, c &= 0x0F;
    else if ((c & 0xF8) == 0xF0)
        len = 4, c &= 0x07;
    else {
        *cp = 0xFFFD;
        return 1;
    }
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80) {
            *cp = 0xFFFD;
            return 1;
        }
        c = (c << 6) | (p[i] & 0x3F);
    }
    *cp = c;
    return len;
}

static size_t s_cp_width(uint32_t cp) {
    if ((cp >= 0x0300 && cp <= 0x036F) || (cp >= 0x200B && cp <= 0x200F))
        return 0;
    if ((cp >= 0x1100 && cp <= 0x115F) || (cp >= 0x2E80 && cp <= 0xA4CF) ||
        (cp >= 0xAC00 && cp <= 0xD7A3) || (cp >= 0xF900 && cp <= 0xFAFF) ||
        (cp >= 0xFE30 && cp <= 0xFE4F) || (cp >= 0xFF00 && cp <= 0xFF60) ||
        (cp >= 0xFFE0 && cp <= 0xFFE6) || (cp >= 0x1F300 && cp <= 0x1FAFF) ||
        (cp >= 0x20000 && cp <= 0x3FFFD))
        return 2;
    return 1;
}

size_t kmx_format_width(const char *text) {
    size_t width = 0;
    const unsigned char *p = (const unsigned char *)(text ? text : "");
    while (*p) {
        uint32_t cp;
        p += s_utf8_next(p, &cp);
        width += s_cp_width(cp);
    }
    return width;
}

// ---- tables ---------------------------------------------------------------------

struct kmx_format_table {
    size_t ncols;   // columns per row
    size_t nrows;   // rows held, header included
    size_t cap;     // rows allocated
    char **cells;   // nrows * ncols copies, row-major; row 0 is the header
    size_t *widths; // widest cell per column
    bool *right;    // right-aligned columns
};

kmx_format_table_t *kmx_format_table_new(const char *const *headers, size_t ncols) {
    assert(headers && ncols > 0);
    kmx_format_table_t *self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    self->ncols = ncols;
    self->widths = calloc(ncols, sizeof(*self->widths));
    self->right = calloc(ncols, sizeof(*self->right));
    if (!self->widths || !self->right || kmx_format_table_add(self, headers) < 0)
        kmx_format_table_destroy(&self);
    return self;
}

void kmx_format_table_destroy(kmx_format_table_t **self_p) {
    if (!self_p || !*self_p)
        return;
    kmx_format_table_t *self = *self_p;
    for (size_t i = 0; i < self->nrows * self->ncols; i++)
        free(self->cells[i]);
    free(self->cells);
    free(self->widths);
    free(self->right);
    free(self);
    *self_p = NULL;
}

void kmx_format_table_align_right(kmx_format_table_t *self, size_t col) {
    assert(self && col < self->ncols);
    self->right[col] = true;
}

int kmx_format_table_add(kmx_format_table_t *self, const char *const *cells) {
    assert(self && cells);
    if (self->nrows == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 16;
        char **grown = realloc(self->cells, cap * self->ncols * sizeof(*grown));
        if (!grown)
            return KMX_ERR_NOMEM;
        self->cells = grown;
        self->cap = cap;
    }
    char **row = self->cells + self->nrows * self->ncols;
    for (size_t i = 0; i < self->ncols; i++) {
        row[i] = strdup(cells[i] ? cells[i] : "");
        if (!row[i]) {
            while (i-- > 0)
                free(row[i]);
            return KMX_ERR_NOMEM;
        }
        for (char *p = row[i]; *p; p++) {
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                *p = ' ';
        }
        size_t w = kmx_format_width(row[i]);
        if (w > self->widths[i])
            self->widths[i] = w;
    }
    self->nrows++;
    return 0;
}

static void s_pad(FILE *out, size_t n) {
    while (n-- > 0)
        fputc(' ', out);
}

static void s_print_row(const kmx_format_table_t *self, char *const *row, FILE *out) {
    for (size_t i = 0; i < self->ncols; i++) {
        size_t pad = self->widths[i] - kmx_format_width(row[i]);
        bool last = i + 1 == self->ncols;
        if (i > 0)
            fputs("  ", out);
        if (self->right[i])
            s_pad(out, pad);
        fputs(row[i], out);
        if (!self->right[i] && !last)
            s_pad(out, pad);
    }
    fputc('\n', out);
}

void kmx_format_table_print(const kmx_format_table_t *self, FILE *out) {
    assert(self);
    for (size_t r = 0; r < self->nrows; r++) {
        s_print_row(self, self->cells + r * self->ncols, out);
        if (r > 0)
            continue;
        for (size_t i = 0; i < self->ncols; i++) {
            if (i > 0)
                fputs("  ", out);
            for (size_t k = 0; k < self->widths[i]; k++)
                fputc('-', out);
        }
        fputc('\n', out);
    }
}

// ---- records ----------------------------------------------------------------------

const char *const kmx_format_record_columns[KMX_FORMAT_RECORD_NCOLS] = {
    "kind",   "period", "market", "category", "item", "company",    "artist", "value",      "unit",
    "source", "status", "as_of",  "note",     "url",  "confidence", "seq",    "updated_ms",
};

enum {
    S_KIND = 0,
    S_PERIOD,
    S_MARKET,
    S_CATEGORY,
    S_ITEM,
    S_COMPANY,
    S_ARTIST,
    S_VALUE,
    S_UNIT,
    S_SOURCE,
    S_STATUS,
    S_AS_OF,
    S_NOTE,
    S_URL,
    S_CONFIDENCE,
    S_SEQ,
    S_UPDATED
};

static const char *s_nonempty(const char *s) {
    return s && *s ? s : NULL;
}

static void s_record_value(kmx_format_record_t *out, const Kmx__V1__Record *rec) {
    if (!rec->value)
        return;
    if (rec->value->has_amount &&
        kmx_decimal_format(rec->value->amount, out->value, sizeof(out->value)) == 0)
        out->cells[S_VALUE] = out->value;
    out->cells[S_UNIT] = s_nonempty(rec->value->unit);
}

void kmx_format_record_init(kmx_format_record_t *out, const Kmx__V1__Record *rec, uint64_t seq,
                            uint64_t updated_ms) {
    assert(out && rec);
    memset(out, 0, sizeof(*out));
    if (rec->has_kind)
        out->cells[S_KIND] = kmx_kind_name(rec->kind);
    if (rec->period) {
        kmx_period_t p = {rec->period->start, rec->period->end};
        if (kmx_period_format(&p, out->period, sizeof(out->period)) == 0)
            out->cells[S_PERIOD] = out->period;
    }
    out->cells[S_MARKET] = s_nonempty(rec->market);
    out->cells[S_CATEGORY] = s_nonempty(rec->category);
    out->cells[S_ITEM] = s_nonempty(rec->item);
    out->cells[S_COMPANY] = s_nonempty(rec->company);
    out->cells[S_ARTIST] = s_nonempty(rec->artist);
    s_record_value(out, rec);
    out->cells[S_SOURCE] = s_nonempty(rec->source);
    out->cells[S_STATUS] = rec->has_status ? kmx_import_status_name(rec->status) : NULL;
    out->cells[S_AS_OF] = s_nonempty(rec->as_of);
    out->cells[S_NOTE] = s_nonempty(rec->note);
    out->cells[S_URL] = s_nonempty(rec->url);
    out->cells[S_CONFIDENCE] =
        rec->has_confidence ? kmx_import_confidence_name(rec->confidence) : NULL;
    if (seq > 0) {
        snprintf(out->seq, sizeof(out->seq), "%" PRIu64, seq);
        out->cells[S_SEQ] = out->seq;
    }
    if (updated_ms > 0) {
        snprintf(out->updated_ms, sizeof(out->updated_ms), "%" PRIu64, updated_ms);
        out->cells[S_UPDATED] = out->updated_ms;
    }
}

void kmx_format_record_json(FILE *out, const kmx_format_record_t *rec) {
    json_t *doc = kmx_json_record(rec);
    if (!doc || kmx_json_dumpf(doc, out) < 0)
        fputs("null", out); // out of memory: still one JSON value per line
    json_decref(doc);
}
