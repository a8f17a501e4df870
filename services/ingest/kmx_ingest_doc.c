/*  kmx_ingest_doc - RawDocument to records. CSV goes through kmx_csv (from memory) and
    JSON Lines through kmx_jsonl; both feed kmx_import, so a cell means the same thing
    whichever way it arrived. JSON Lines objects may differ in their members, so the
    column mapping is rebuilt only when a line's member names change.  */
#include "kmx_ingest_doc.h"
#include "kmx_csv.h"
#include "kmx_err.h"
#include "kmx_mem.h"
#include "kmx_jsonl.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_DEFAULTS_MAX 32 // most defaults one document may carry

// The working state while one document is read.
typedef struct {
    const Kmx__V1__RawDocument *doc;   // the request, borrowed
    kmx_doc_t *out;                    // what is being built
    kmx_import_default_t *defaults;    // doc->defaults as kmx_import wants them
    size_t n_defaults;                 // defaults in use
    uint32_t first_line;               // line number of data's first line
    char *err;                         // document-level error sentence
    size_t err_size;                   // bytes at err
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
    memset(doc, 0, sizeof *doc);
}

__attribute__((format(printf, 3, 4))) static int s_fail(s_doc_t *d, int rc, const char *fmt,
                                                         ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->err, d->err_size, fmt, ap);
    va_end(ap);
    return rc;
}

// Counts one data row, refusing the one past the limit.
static int s_count_row(s_doc_t *d) {
    if (d->out->rows_read >= KMX_DOC_RECORDS_MAX)
        return s_fail(d, KMX_ERR_TOO_BIG, "the document has more than %u rows; send at most "
                                          "%u per request",
                      KMX_DOC_RECORDS_MAX, KMX_DOC_RECORDS_MAX);
    d->out->rows_read++;
    return 0;
}

static int s_reject(s_doc_t *d, uint32_t row, const char *column, const char *reason) {
    kmx_doc_t *o = d->out;
    if (kmx_reserve((void **)&o->rejects, &o->rejects_cap, o->n_rejects, sizeof *o->rejects,
                    16) != 0)
        return KMX_ERR_NOMEM;
    kmx_doc_reject_t *r = &o->rejects[o->n_rejects++];
    r->index = (uint32_t)(o->rows_read - 1);
    r->row = row;
    snprintf(r->column, sizeof r->column, "%s", column ? column : "");
    snprintf(r->reason, sizeof r->reason, "%s", reason && *reason ? reason : "invalid row");
    return 0;
}

static int s_add_record(s_doc_t *d, Kmx__V1__Record *rec, uint32_t row) {
    kmx_doc_t *o = d->out;
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 256;
        Kmx__V1__Record **recs = realloc(o->records, cap * sizeof *recs);
        if (recs)
            o->records = recs;
        uint32_t *index = realloc(o->index, cap * sizeof *index);
        if (index)
            o->index = index;
        uint32_t *rows = realloc(o->rows, cap * sizeof *rows);
        if (rows)
            o->rows = rows;
        if (!recs || !index || !rows) {
            kmx_import_record_free(&rec);
            return KMX_ERR_NOMEM;
        }
        o->cap = cap;
    }
    o->records[o->n] = rec;
    o->index[o->n] = (uint32_t)(o->rows_read - 1);
    o->rows[o->n++] = row;
    return 0;
}

// Converts one row's cells. Returns 0 (added or rejected) or KMX_ERR_NOMEM.
static int s_convert(s_doc_t *d, const kmx_import_t *map, const char *const *cells, size_t n,
                     uint32_t row) {
    Kmx__V1__Record *rec = NULL;
    kmx_import_error_t ie;
    int rc = kmx_import_row(map, cells, n, row, &rec, &ie);
    if (rc == KMX_ERR_INVAL)
        return s_reject(d, row, ie.column, ie.reason);
    if (rc < 0)
        return rc;
    return s_add_record(d, rec, row);
}

static uint32_t s_line(const s_doc_t *d, size_t line_in_data) {
    uint64_t line = (uint64_t)d->first_line + line_in_data - 1;
    return line > UINT32_MAX ? UINT32_MAX : (uint32_t)line;
}

// ---- CSV --------------------------------------------------------------------------

static const kmx_csv_limits_t s_csv_limits = {KMX_DOC_FIELD_MAX, KMX_DOC_FIELD_MAX * 16,
                                              KMX_DOC_FIELDS_MAX};

// Reads the header row, from doc->header when given, else from the data.
static int s_csv_header(s_doc_t *d, kmx_csv_reader_t *data, kmx_import_t **map) {
    const Kmx__V1__RawDocument *doc = d->doc;
    int from_data = !doc->header || !doc->header[0];
    kmx_csv_reader_t *r =
        from_data ? data : kmx_csv_reader_new_mem(doc->header, strlen(doc->header), &s_csv_limits);
    if (!r)
        return KMX_ERR_NOMEM;
    const char **fields = NULL;
    size_t n = 0;
    int rc = kmx_csv_next(r, &fields, &n);
    if (rc == 0)
        rc = s_fail(d, KMX_ERR_INVAL, "the CSV document has no header row");
    else if (rc < 0)
        rc = s_fail(d, rc == KMX_ERR_NOMEM ? rc : KMX_ERR_INVAL, "header: %s",
                    kmx_csv_error(r));
    else {
        kmx_import_error_t ie;
        rc = kmx_import_new_defaults(fields, n, d->defaults, d->n_defaults, map, &ie);
        if (rc == KMX_ERR_INVAL)
            s_fail(d, rc, "header: %s", ie.reason);
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
        if (crc != 0)
            return crc;
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
    kmx_csv_reader_t *r =
        kmx_csv_reader_new_mem(d->doc->data.data, d->doc->data.len, &s_csv_limits);
    if (!r)
        return KMX_ERR_NOMEM;
    kmx_import_t *map = NULL;
    int rc = s_csv_header(d, r, &map);
    // When the header came from the data, data line 1 is the header: rows keep the
    // file's numbering either way because first_line names data's first line.
    if (rc == 0)
        rc = s_csv_rows(d, r, map);
    kmx_import_destroy(&map);
    kmx_csv_reader_destroy(&r);
    return rc;
}

// ---- JSON Lines -------------------------------------------------------------------

// The column mapping of the last line, reused while member names stay the same.
typedef struct {
    kmx_import_t *map;  // mapping for names
    char *names;        // the member names, NUL-separated
    size_t names_len;   // bytes in names
    size_t n;           // members
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
    int rc = kmx_import_new_defaults(names, n, d->defaults, d->n_defaults, &m->map, ie);
    if (rc == 0)
        m->n = n;
    return rc;
}

static int s_jsonl_line(s_doc_t *d, kmx_jsonl_t *js, s_jsonl_map_t *m, const char *line,
                        size_t len, uint32_t row) {
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
    const char *p = (const char *)d->doc->data.data;
    const char *end = p ? p + d->doc->data.len : NULL; // an empty bytes field may be NULL
    int rc = 0;
    for (size_t line = 1; p && p < end && rc == 0; line++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (line == 1 && len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) {
            p += 3; // a UTF-8 byte order mark
            len -= 3;
        }
        if (!s_is_blank(p, len)) {
            rc = s_count_row(d);
            if (rc == 0)
                rc = s_jsonl_line(d, js, &m, p, len, s_line(d, line));
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
        d->defaults[d->n_defaults].column = doc->defaults[i]->column;
        d->defaults[d->n_defaults++].value = doc->defaults[i]->value;
    }
    // Check them once up front, so a bad default is a document error, not every row's.
    const char *none[] = {"x_"};
    kmx_import_t *probe = NULL;
    kmx_import_error_t ie;
    int rc = kmx_import_new_defaults(none, 1, d->defaults, d->n_defaults, &probe, &ie);
    kmx_import_destroy(&probe);
    if (rc == KMX_ERR_INVAL && strstr(ie.reason, "defaults"))
        return s_fail(d, rc, "%s", ie.reason);
    return rc == KMX_ERR_NOMEM ? rc : 0;
}

int kmx_doc_parse(const Kmx__V1__RawDocument *doc, kmx_doc_t *out, char *err, size_t size) {
    if (!out || !err || size == 0)
        return KMX_ERR_INVAL;
    memset(out, 0, sizeof *out);
    err[0] = '\0';
    s_doc_t d = {doc, out, NULL, 0, 1, err, size};
    if (!doc)
        return s_fail(&d, KMX_ERR_INVAL, "no document");
    if (doc->data.len > KMX_DOC_BYTES_MAX)
        return s_fail(&d, KMX_ERR_TOO_BIG, "the document is %zu bytes; send at most %u per "
                                           "request",
                      doc->data.len, KMX_DOC_BYTES_MAX);
    if (doc->has_first_line && doc->first_line > 0)
        d.first_line = doc->first_line;
    int rc = s_defaults(&d);
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
    free(d.defaults);
    return rc;
}
