/*  kmx_ingest_doc - RawDocument to records. The bytes are first made UTF-8 by kmx_text
    (every invalid byte remembered with its line); CSV then goes through kmx_csv (from
    memory, at the document's delimiter) and JSON Lines through kmx_jsonl; both feed
    kmx_import, so a cell means the same thing whichever way it arrived. A row holding an
    invalid byte is rejected whole, naming the byte, its line, its column and the encoding
    assumed. JSON Lines objects may differ in their members, so the column mapping is
    rebuilt only when a line's member names change.  */
#include "kmx_ingest_doc.h"
#include "kmx_csv.h"
#include "kmx_err.h"
#include "kmx_jsonl.h"
#include "kmx_mem.h"
#include "kmx_text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define S_DEFAULTS_MAX 32 // most defaults one document may carry
#define S_MAPS_MAX 64     // most column maps one document may carry

// The working state while one document is read.
typedef struct {
    const Kmx__V1__RawDocument *doc; // the request, borrowed
    kmx_doc_t *out;                  // what is being built
    kmx_import_default_t *defaults;  // doc->defaults as kmx_import wants them
    kmx_import_map_t *maps;          // doc->columns as kmx_import wants them
    kmx_import_opts_t opts;          // everything kmx_import is told
    uint32_t first_line;             // line number of data's first line
    char *err;                       // document-level error sentence
    size_t err_size;                 // bytes at err
    kmx_text_t data;                 // doc->data as UTF-8
    kmx_text_t header;               // doc->header_data or doc->header as UTF-8
    const char *raw;                 // doc->data's bytes, for placing invalid ones
    size_t bad_next;                 // next entry of data.bad not yet assigned to a row
    char delim;                      // CSV delimiter
    const kmx_import_t *map;         // the current column mapping
    uint32_t row;                    // line of the row being converted
} s_doc_t;

void kmx_doc_fini(kmx_doc_t *doc) {
    if (!doc)
        return;
    for (size_t i = 0; i < doc->n; i++)
        kmx_import_record_free(&doc->records[i]);
    free(doc->records);
    free(doc->index);
    free(doc->rows);
    free(doc->rejects);
    for (size_t i = 0; i < doc->n_warnings; i++)
        free(doc->warnings[i]);
    free(doc->warnings);
    memset(doc, 0, sizeof *doc);
}

__attribute__((format(printf, 3, 4))) static int s_fail(s_doc_t *d, int rc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->err, d->err_size, fmt, ap);
    va_end(ap);
    return rc;
}

// Counts one data row, refusing the one past the limit.
static int s_count_row(s_doc_t *d) {
    if (d->out->rows_read >= KMX_DOC_RECORDS_MAX)
        return s_fail(d, KMX_ERR_TOO_BIG,
                      "the document has more than %u rows; send at most "
                      "%u per request",
                      KMX_DOC_RECORDS_MAX, KMX_DOC_RECORDS_MAX);
    d->out->rows_read++;
    return 0;
}

// Takes the next index for a record or rejection, refusing one past the limit: a wide
// file's rows yield many records each.
static int s_take_slot(s_doc_t *d, uint32_t *index) {
    if (d->out->slots >= KMX_DOC_RECORDS_MAX)
        return s_fail(d, KMX_ERR_TOO_BIG,
                      "the document's rows yield more than %u records; send fewer rows per "
                      "request",
                      KMX_DOC_RECORDS_MAX);
    *index = (uint32_t)d->out->slots++;
    return 0;
}

static int s_reject(s_doc_t *d, uint32_t row, const char *column, const char *reason) {
    kmx_doc_t *o = d->out;
    uint32_t index = 0;
    int rc = s_take_slot(d, &index);
    if (rc != 0)
        return rc;
    if (kmx_reserve((void **)&o->rejects, &o->rejects_cap, o->n_rejects, sizeof *o->rejects, 16) !=
        0)
        return KMX_ERR_NOMEM;
    kmx_doc_reject_t *r = &o->rejects[o->n_rejects++];
    r->index = index;
    r->row = row;
    snprintf(r->column, sizeof r->column, "%s", column ? column : "");
    snprintf(r->reason, sizeof r->reason, "%s", reason && *reason ? reason : "invalid row");
    return 0;
}

static int s_add_record(s_doc_t *d, Kmx__V1__Record *rec, uint32_t row) {
    kmx_doc_t *o = d->out;
    uint32_t index = 0;
    int rc = s_take_slot(d, &index);
    if (rc != 0) {
        kmx_import_record_free(&rec);
        return rc;
    }
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 256;
        Kmx__V1__Record **recs = realloc(o->records, cap * sizeof *recs);
        if (recs)
            o->records = recs;
        uint32_t *idx = realloc(o->index, cap * sizeof *idx);
        if (idx)
            o->index = idx;
        uint32_t *rows = realloc(o->rows, cap * sizeof *rows);
        if (rows)
            o->rows = rows;
        if (!recs || !idx || !rows) {
            kmx_import_record_free(&rec);
            return KMX_ERR_NOMEM;
        }
        o->cap = cap;
    }
    o->records[o->n] = rec;
    o->index[o->n] = index;
    o->rows[o->n++] = row;
    return 0;
}

// Adds a warning unless the document already has it.
static int s_warn(s_doc_t *d, const char *text) {
    kmx_doc_t *o = d->out;
    for (size_t i = 0; i < o->n_warnings; i++) {
        if (strcmp(o->warnings[i], text) == 0)
            return 0;
    }
    char **w = realloc(o->warnings, (o->n_warnings + 1) * sizeof *w);
    if (!w)
        return KMX_ERR_NOMEM;
    o->warnings = w;
    w[o->n_warnings] = strdup(text);
    if (!w[o->n_warnings])
        return KMX_ERR_NOMEM;
    o->n_warnings++;
    return 0;
}

static int s_map_warnings(s_doc_t *d, const kmx_import_t *map) {
    for (size_t i = 0; i < kmx_import_warning_count(map); i++) {
        int rc = s_warn(d, kmx_import_warning(map, i));
        if (rc != 0)
            return rc;
    }
    return 0;
}

// Receives the records kmx_import makes of one row.
static int s_emit(void *ctx, Kmx__V1__Record *rec, const kmx_import_error_t *ie) {
    s_doc_t *d = ctx;
    if (rec)
        return s_add_record(d, rec, d->row);
    return s_reject(d, d->row, ie->column, ie->reason);
}

// Converts one row's cells. Returns 0 (added or rejected) or a document error.
static int s_convert(s_doc_t *d, const kmx_import_t *map, const char *const *cells, size_t n,
                     uint32_t row) {
    d->row = row;
    int rc = kmx_import_row_each(map, cells, n, row, s_emit, d);
    if (rc < 0)
        return rc;
    d->out->skipped += (size_t)rc;
    return 0;
}

static uint32_t s_line(const s_doc_t *d, size_t line_in_data) {
    uint64_t line = (uint64_t)d->first_line + line_in_data - 1;
    return line > UINT32_MAX ? UINT32_MAX : (uint32_t)line;
}

// ---- encodings --------------------------------------------------------------------

// Says why an invalid byte was read in the encoding it was.
static const char *s_assumed(const kmx_text_t *t) {
    if (!t->detected)
        return "the encoding given";
    return t->enc == KMX_TEXT_CP949 ? "detected because the data is not UTF-8; choose one "
                                      "with --encoding"
                                    : "detected; choose one with --encoding";
}

// Describes the invalid byte b of the data: its line, column and the encoding assumed.
static void s_describe_bad(const s_doc_t *d, const kmx_text_bad_t *b, char *column,
                           size_t column_size, char *reason, size_t size) {
    const char *line = d->raw + b->line_start;
    const char *nl = memchr(line, '\n', d->doc->data.len - b->line_start);
    size_t len = nl ? (size_t)(nl - line) : d->doc->data.len - b->line_start;
    size_t field = kmx_csv_field_at(line, len, b->offset - b->line_start, d->delim);
    const char *name = d->map ? kmx_import_column_name(d->map, field - 1) : NULL;
    snprintf(column, column_size, "%s", name ? name : "");
    snprintf(reason, size, "byte 0x%02X on line %u, column %zu%s%s%s is not valid %s (%s)", b->byte,
             s_line(d, b->line), field, name ? " (\"" : "", name ? name : "", name ? "\")" : "",
             kmx_text_enc_name(d->data.enc), s_assumed(&d->data));
}

// Rejects the row on lines [first, last] of the data when it holds an invalid byte.
// Returns 1 when it did, 0 when the row is clean, or a document error.
static int s_reject_bad_bytes(s_doc_t *d, size_t first, size_t last, uint32_t row) {
    const kmx_text_t *t = &d->data;
    while (d->bad_next < t->n_bad && t->bad[d->bad_next].line < first)
        d->bad_next++;
    if (d->bad_next >= t->n_bad || t->bad[d->bad_next].line > last) {
        // More invalid bytes than were placed: the rest of the document is suspect.
        if (t->bad_total > t->n_bad && t->n_bad > 0 && t->bad[t->n_bad - 1].line < first) {
            int rc = s_reject(d, row, "",
                              "this row follows more invalid bytes than kmx "
                              "places; fix the encoding of the file");
            return rc < 0 ? rc : 1;
        }
        return 0;
    }
    char column[KMX_IMPORT_COLUMN_MAX], reason[KMX_DOC_REASON_MAX];
    s_describe_bad(d, &t->bad[d->bad_next], column, sizeof column, reason, sizeof reason);
    while (d->bad_next < t->n_bad && t->bad[d->bad_next].line <= last)
        d->bad_next++;
    int rc = s_reject(d, row, column, reason);
    return rc < 0 ? rc : 1;
}

static int s_encoding(s_doc_t *d, kmx_text_enc_t *enc) {
    const Kmx__V1__RawDocument *doc = d->doc;
    switch (doc->has_encoding ? doc->encoding : KMX__V1__RAW_DOCUMENT__ENCODING__ENCODING_AUTO) {
    case KMX__V1__RAW_DOCUMENT__ENCODING__ENCODING_AUTO:
        *enc = KMX_TEXT_AUTO;
        return 0;
    case KMX__V1__RAW_DOCUMENT__ENCODING__UTF8:
        *enc = KMX_TEXT_UTF8;
        return 0;
    case KMX__V1__RAW_DOCUMENT__ENCODING__CP949:
        *enc = KMX_TEXT_CP949;
        return 0;
    default:
        return s_fail(d, KMX_ERR_INVAL, "unknown encoding %d (use UTF-8 or CP949)",
                      (int)doc->encoding);
    }
}

// Decodes the data and the header in one encoding: the given one, or UTF-8 when both are
// valid UTF-8 and CP949 otherwise, so a chunk and its header are never read differently.
static int s_decode(s_doc_t *d) {
    const Kmx__V1__RawDocument *doc = d->doc;
    kmx_text_enc_t enc = KMX_TEXT_AUTO;
    int rc = s_encoding(d, &enc);
    if (rc != 0)
        return rc;
    const void *hp =
        doc->has_header_data ? (const void *)doc->header_data.data : (const void *)doc->header;
    size_t hlen = doc->has_header_data ? doc->header_data.len
                  : doc->header        ? strlen(doc->header)
                                       : 0;
    if (hlen > KMX_DOC_FIELD_MAX * 16u)
        return s_fail(d, KMX_ERR_TOO_BIG, "the header is %zu bytes; a header has at most %u", hlen,
                      KMX_DOC_FIELD_MAX * 16u);
    int detected = enc == KMX_TEXT_AUTO;
    if (detected) {
        kmx_text_t probe;
        rc = kmx_text_decode(hp, hlen, KMX_TEXT_AUTO, &probe);
        enc = rc == 0 && probe.enc == KMX_TEXT_UTF8 && probe.n_bad == 0 ? KMX_TEXT_AUTO
                                                                        : KMX_TEXT_CP949;
        kmx_text_fini(&probe);
    }
    rc = kmx_text_decode(doc->data.data, doc->data.len, enc, &d->data);
    if (rc == 0)
        rc = kmx_text_decode(hp, hlen, d->data.enc, &d->header);
    if (rc == KMX_ERR_UNSUPPORTED)
        return s_fail(d, rc,
                      "this kmx-ingest cannot convert CP949 (glibc's gconv modules "
                      "are missing)");
    if (rc != 0)
        return rc;
    d->data.detected = d->header.detected = detected;
    d->out->encoding = kmx_text_enc_name(d->data.enc);
    return 0;
}

// ---- CSV --------------------------------------------------------------------------

static const kmx_csv_limits_t s_csv_limits = {KMX_DOC_FIELD_MAX, KMX_DOC_FIELD_MAX * 16,
                                              KMX_DOC_FIELDS_MAX};

// The delimiter: the document's, else the one its header line uses most.
static int s_delimiter(s_doc_t *d) {
    const char *given = d->doc->delimiter;
    if (given && *given) {
        static const struct {
            const char *name; // as a request may spell it
            char c;           // the delimiter
        } names[] = {{",", ','},     {";", ';'},         {"\t", '\t'},  {"|", '|'},   {"\\t", '\t'},
                     {"comma", ','}, {"semicolon", ';'}, {"tab", '\t'}, {"pipe", '|'}};
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
            if (strcasecmp(given, names[i].name) == 0) {
                d->delim = names[i].c;
                return 0;
            }
        }
        return s_fail(d, KMX_ERR_INVAL,
                      "unknown delimiter \"%.20s\" (use comma, semicolon, tab or pipe)", given);
    }
    const kmx_text_t *h = d->header.len ? &d->header : &d->data;
    d->delim = kmx_csv_detect_delimiter(h->data, h->len);
    return 0;
}

// Refuses a header holding an invalid byte: no row could be read right after it.
static int s_header_bytes(s_doc_t *d, int from_data) {
    const kmx_text_t *t = from_data ? &d->data : &d->header;
    if (t->bad_total == 0 || (from_data && t->bad[0].line > 1))
        return 0;
    return s_fail(d, KMX_ERR_INVAL, "header: byte 0x%02X at byte %zu is not valid %s (%s)",
                  t->bad[0].byte, t->bad[0].offset + 1, kmx_text_enc_name(t->enc), s_assumed(t));
}

// Reads the header row, from doc's header when given, else from the data.
static int s_csv_header(s_doc_t *d, kmx_csv_reader_t *data, kmx_import_t **map) {
    int from_data = d->header.len == 0;
    int rc = s_header_bytes(d, from_data);
    if (rc != 0)
        return rc;
    kmx_csv_reader_t *r =
        from_data ? data : kmx_csv_reader_new_mem(d->header.data, d->header.len, &s_csv_limits);
    if (!r)
        return KMX_ERR_NOMEM;
    kmx_csv_set_delimiter(r, d->delim);
    const char **fields = NULL;
    size_t n = 0;
    rc = kmx_csv_next(r, &fields, &n);
    if (rc == 0)
        rc = s_fail(d, KMX_ERR_INVAL, "the CSV document has no header row");
    else if (rc < 0)
        rc = s_fail(d, rc == KMX_ERR_NOMEM ? rc : KMX_ERR_INVAL, "header: %s", kmx_csv_error(r));
    else {
        kmx_import_error_t ie;
        rc = kmx_import_new_opts(fields, n, &d->opts, map, &ie);
        if (rc == KMX_ERR_INVAL)
            s_fail(d, rc, "header (%s-separated, %s): %s", kmx_csv_delimiter_name(d->delim),
                   kmx_text_enc_name(d->data.enc), ie.reason);
        else if (rc == 0)
            rc = s_map_warnings(d, *map);
    }
    if (!from_data)
        kmx_csv_reader_destroy(&r);
    return rc;
}

static int s_csv_rows(s_doc_t *d, kmx_csv_reader_t *r, const kmx_import_t *map) {
    for (;;) {
        const char **fields = NULL;
        size_t n = 0;
        int rc = kmx_csv_next(r, &fields, &n);
        if (rc == 0)
            return 0;
        if (rc == KMX_ERR_NOMEM || rc == KMX_ERR_IO)
            return s_fail(d, KMX_ERR_NOMEM, "out of memory");
        uint32_t row = s_line(d, kmx_csv_line(r));
        int crc = s_count_row(d);
        if (crc == 0)
            crc = s_reject_bad_bytes(d, kmx_csv_line(r), kmx_csv_last_line(r), row);
        if (crc < 0)
            return crc;
        if (crc == 1)
            continue;
        if (rc < 0) {
            // The reader's message starts with "line N: ", which the row already says.
            const char *msg = kmx_csv_error(r);
            const char *colon = strstr(msg, ": ");
            crc = s_reject(d, row, "", colon ? colon + 2 : msg);
        } else {
            crc = s_convert(d, map, fields, n, row);
        }
        if (crc != 0)
            return crc;
    }
}

static int s_parse_csv(s_doc_t *d) {
    int rc = s_delimiter(d);
    if (rc != 0)
        return rc;
    kmx_csv_reader_t *r = kmx_csv_reader_new_mem(d->data.data, d->data.len, &s_csv_limits);
    if (!r)
        return KMX_ERR_NOMEM;
    kmx_csv_set_delimiter(r, d->delim);
    kmx_import_t *map = NULL;
    rc = s_csv_header(d, r, &map);
    d->map = map;
    // When the header came from the data, data line 1 is the header: rows keep the
    // file's numbering either way because first_line names data's first line.
    if (rc == 0)
        rc = s_csv_rows(d, r, map);
    d->map = NULL;
    kmx_import_destroy(&map);
    kmx_csv_reader_destroy(&r);
    return rc;
}

// ---- JSON Lines -------------------------------------------------------------------

// The column mapping of the last line, reused while member names stay the same.
typedef struct {
    kmx_import_t *map; // mapping for names
    char *names;       // the member names, NUL-separated
    size_t names_len;  // bytes in names
    size_t n;          // members
} s_jsonl_map_t;

static int s_same_names(const s_jsonl_map_t *m, const char *const *names, size_t n) {
    if (!m->map || m->n != n)
        return 0;
    const char *p = m->names;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(p, names[i]) != 0)
            return 0;
        p += strlen(p) + 1;
    }
    return 1;
}

// Makes m map names. Returns 0, KMX_ERR_INVAL with ie filled, or KMX_ERR_NOMEM.
static int s_jsonl_remap(s_doc_t *d, s_jsonl_map_t *m, const char *const *names, size_t n,
                         kmx_import_error_t *ie) {
    if (s_same_names(m, names, n))
        return 0;
    kmx_import_destroy(&m->map);
    free(m->names);
    m->names = NULL;
    m->n = 0;
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += strlen(names[i]) + 1;
    m->names = malloc(len ? len : 1);
    if (!m->names)
        return KMX_ERR_NOMEM;
    char *p = m->names;
    for (size_t i = 0; i < n; i++) {
        size_t k = strlen(names[i]) + 1;
        memcpy(p, names[i], k);
        p += k;
    }
    kmx_import_opts_t opts = d->opts;
    opts.layout = KMX_IMPORT_LONG; // one object is one record
    int rc = kmx_import_new_opts(names, n, &opts, &m->map, ie);
    if (rc == 0) {
        m->n = n;
        rc = s_map_warnings(d, m->map);
    }
    return rc;
}

static int s_jsonl_line(s_doc_t *d, kmx_jsonl_t *js, s_jsonl_map_t *m, const char *line, size_t len,
                        uint32_t row) {
    const char **names = NULL, **cells = NULL;
    int n = kmx_jsonl_parse(js, line, len, &names, &cells);
    if (n == KMX_ERR_NOMEM)
        return n;
    if (n < 0)
        return s_reject(d, row, "", kmx_jsonl_error(js));
    kmx_import_error_t ie;
    int rc = s_jsonl_remap(d, m, names, (size_t)n, &ie);
    if (rc == KMX_ERR_INVAL)
        return s_reject(d, row, ie.column, ie.reason);
    if (rc < 0)
        return rc;
    return s_convert(d, m->map, cells, (size_t)n, row);
}

static int s_is_blank(const char *p, size_t len) {
    for (size_t i = 0; i < len; i++) {
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
            return 0;
    }
    return 1;
}

static int s_parse_jsonl(s_doc_t *d) {
    kmx_jsonl_t *js = kmx_jsonl_new(KMX_DOC_FIELD_MAX, KMX_DOC_FIELDS_MAX);
    if (!js)
        return KMX_ERR_NOMEM;
    s_jsonl_map_t m = {0};
    d->delim = ',';
    const char *p = d->data.data;
    const char *end = p ? p + d->data.len : NULL; // an empty document may have no bytes
    int rc = 0;
    for (size_t line = 1; p && p < end && rc == 0; line++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (!s_is_blank(p, len)) {
            rc = s_count_row(d);
            if (rc == 0)
                rc = s_reject_bad_bytes(d, line, line, s_line(d, line));
            if (rc == 0)
                rc = s_jsonl_line(d, js, &m, p, len, s_line(d, line));
            rc = rc == 1 ? 0 : rc;
        }
        p = nl ? nl + 1 : end;
    }
    kmx_import_destroy(&m.map);
    free(m.names);
    kmx_jsonl_destroy(&js);
    return rc;
}

// ---- entry ------------------------------------------------------------------------

static int s_defaults(s_doc_t *d) {
    const Kmx__V1__RawDocument *doc = d->doc;
    if (doc->n_defaults > S_DEFAULTS_MAX)
        return s_fail(d, KMX_ERR_TOO_BIG, "at most %d defaults", S_DEFAULTS_MAX);
    d->defaults = calloc(doc->n_defaults ? doc->n_defaults : 1, sizeof *d->defaults);
    if (!d->defaults)
        return KMX_ERR_NOMEM;
    for (size_t i = 0; i < doc->n_defaults; i++) {
        if (!doc->defaults[i])
            continue;
        d->defaults[d->opts.ndefaults].column = doc->defaults[i]->column;
        d->defaults[d->opts.ndefaults++].value = doc->defaults[i]->value;
    }
    d->opts.defaults = d->defaults;
    // Check them once up front, so a bad default is a document error, not every row's.
    const char *none[] = {"x_"};
    kmx_import_t *probe = NULL;
    kmx_import_error_t ie;
    kmx_import_opts_t opts = {.defaults = d->defaults, .ndefaults = d->opts.ndefaults};
    int rc = kmx_import_new_opts(none, 1, &opts, &probe, &ie);
    kmx_import_destroy(&probe);
    if (rc == KMX_ERR_INVAL && strstr(ie.reason, "defaults"))
        return s_fail(d, rc, "%s", ie.reason);
    return rc == KMX_ERR_NOMEM ? rc : 0;
}

// Reads the column maps, layout and period options into d->opts.
static int s_options(s_doc_t *d) {
    const Kmx__V1__RawDocument *doc = d->doc;
    if (doc->n_columns > S_MAPS_MAX)
        return s_fail(d, KMX_ERR_TOO_BIG, "at most %d column maps", S_MAPS_MAX);
    d->maps = calloc(doc->n_columns ? doc->n_columns : 1, sizeof *d->maps);
    if (!d->maps)
        return KMX_ERR_NOMEM;
    for (size_t i = 0; i < doc->n_columns; i++) {
        if (!doc->columns[i])
            continue;
        d->maps[d->opts.nmaps].header = doc->columns[i]->header;
        d->maps[d->opts.nmaps++].field = doc->columns[i]->field;
    }
    d->opts.maps = d->maps;
    d->opts.ignore_extra = doc->has_ignore_extra && doc->ignore_extra;
    if (doc->has_layout && doc->layout == KMX__V1__RAW_DOCUMENT__LAYOUT__WIDE)
        d->opts.layout = KMX_IMPORT_WIDE;
    else if (doc->has_layout && doc->layout == KMX__V1__RAW_DOCUMENT__LAYOUT__LONG)
        d->opts.layout = KMX_IMPORT_LONG;
    if (doc->has_date_order && doc->date_order == KMX__V1__RAW_DOCUMENT__DATE_ORDER__MDY)
        d->opts.period.date_order = KMX_DATE_ORDER_MDY;
    else if (doc->has_date_order && doc->date_order == KMX__V1__RAW_DOCUMENT__DATE_ORDER__DMY)
        d->opts.period.date_order = KMX_DATE_ORDER_DMY;
    d->opts.period.excel_dates = doc->has_excel_dates && doc->excel_dates;
    return s_defaults(d);
}

int kmx_doc_parse(const Kmx__V1__RawDocument *doc, kmx_doc_t *out, char *err, size_t size) {
    if (!out || !err || size == 0)
        return KMX_ERR_INVAL;
    memset(out, 0, sizeof *out);
    err[0] = '\0';
    s_doc_t d = {.doc = doc, .out = out, .first_line = 1, .err = err, .err_size = size};
    if (!doc)
        return s_fail(&d, KMX_ERR_INVAL, "no document");
    if (doc->data.len > KMX_DOC_BYTES_MAX)
        return s_fail(&d, KMX_ERR_TOO_BIG,
                      "the document is %zu bytes; send at most %u per "
                      "request",
                      doc->data.len, KMX_DOC_BYTES_MAX);
    if (doc->has_first_line && doc->first_line > 0)
        d.first_line = doc->first_line;
    d.raw = doc->data.data ? (const char *)doc->data.data : "";
    int rc = s_options(&d);
    if (rc == 0)
        rc = s_decode(&d);
    if (rc == 0) {
        if (doc->format == KMX__V1__RAW_DOCUMENT__FORMAT__CSV)
            rc = s_parse_csv(&d);
        else if (doc->format == KMX__V1__RAW_DOCUMENT__FORMAT__JSONL)
            rc = s_parse_jsonl(&d);
        else
            rc = s_fail(&d, KMX_ERR_INVAL, "unknown document format (use csv or jsonl)");
    }
    if (rc == KMX_ERR_NOMEM && !err[0])
        s_fail(&d, rc, "out of memory");
    kmx_text_fini(&d.data);
    kmx_text_fini(&d.header);
    free(d.defaults);
    free(d.maps);
    return rc;
}
