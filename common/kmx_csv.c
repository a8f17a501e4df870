/*  kmx_csv - streaming RFC 4180 reader. Bytes are pulled through a small input buffer so
    the reader can peek past a quote or a CR; one row is assembled into a growable buffer
    of NUL-separated fields, bounded by the limits.  */
#include "kmx_csv.h"

#include "kmx_err.h"

#include <assert.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define S_INBUF 16384

struct kmx_csv_reader {
    FILE *file;                // borrowed input, or NULL when reading memory
    const unsigned char *mem;  // borrowed input in memory (file is NULL)
    size_t mem_len;            // bytes at mem
    size_t mem_pos;            // next unread byte at mem
    unsigned char in[S_INBUF]; // input buffer
    size_t in_pos;             // next unread byte in `in`
    size_t in_len;             // bytes held in `in`
    int in_error;              // nonzero once fread failed
    int started;               // nonzero once the BOM check ran
    kmx_csv_limits_t limits;   // size bounds
    char *row;                 // current row: fields separated by NULs
    size_t row_len;            // bytes used in row
    size_t row_cap;            // bytes allocated for row
    size_t *offsets;           // start of each field in row
    const char **fields;       // pointers handed to the caller
    size_t nfields;            // fields in the current row
    size_t field_len;          // bytes in the field being read
    size_t line;               // line the current row started on
    size_t cur_line;           // line of the next unread byte
    int last;                  // the last byte consumed, or EOF
    char delim;                // field delimiter
    char error[200];           // last error sentence
};

kmx_csv_reader_t *kmx_csv_reader_new(FILE *file) {
    return kmx_csv_reader_new_limits(file, NULL);
}

kmx_csv_reader_t *kmx_csv_reader_new_mem(const void *data, size_t len,
                                         const kmx_csv_limits_t *limits) {
    static const unsigned char empty[1] = {0};
    kmx_csv_reader_t *self = kmx_csv_reader_new_limits(NULL, limits);
    if (self) {
        self->mem = data ? data : empty;
        self->mem_len = data ? len : 0;
    }
    return self;
}

kmx_csv_reader_t *kmx_csv_reader_new_limits(FILE *file, const kmx_csv_limits_t *limits) {
    kmx_csv_reader_t *self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    self->file = file;
    self->cur_line = 1;
    self->delim = ',';
    self->last = EOF;
    if (limits)
        self->limits = *limits;
    if (self->limits.field_max == 0)
        self->limits.field_max = KMX_CSV_FIELD_MAX;
    if (self->limits.row_max == 0)
        self->limits.row_max = KMX_CSV_ROW_MAX;
    if (self->limits.fields_max == 0)
        self->limits.fields_max = KMX_CSV_FIELDS_MAX;
    self->offsets = calloc(self->limits.fields_max, sizeof(*self->offsets));
    self->fields = calloc(self->limits.fields_max, sizeof(*self->fields));
    if (!self->offsets || !self->fields) {
        kmx_csv_reader_destroy(&self);
        return NULL;
    }
    return self;
}

void kmx_csv_reader_destroy(kmx_csv_reader_t **self_p) {
    if (!self_p || !*self_p)
        return;
    kmx_csv_reader_t *self = *self_p;
    free(self->row);
    free(self->offsets);
    free(self->fields);
    free(self);
    *self_p = NULL;
}

size_t kmx_csv_line(const kmx_csv_reader_t *self) {
    assert(self);
    return self->line;
}

const char *kmx_csv_error(const kmx_csv_reader_t *self) {
    assert(self);
    return self->error;
}

size_t kmx_csv_last_line(const kmx_csv_reader_t *self) {
    assert(self);
    return self->last == '\n' || self->last == '\r' ? self->cur_line - 1 : self->cur_line;
}

static int s_is_delimiter(char c) {
    return c == ',' || c == ';' || c == '\t' || c == '|';
}

int kmx_csv_set_delimiter(kmx_csv_reader_t *self, char delimiter) {
    assert(self);
    if (!s_is_delimiter(delimiter))
        return KMX_ERR_INVAL;
    self->delim = delimiter;
    return 0;
}

char kmx_csv_detect_delimiter(const char *line, size_t len) {
    static const char order[] = {',', ';', '\t', '|'};
    size_t count[4] = {0};
    int quoted = 0;
    for (size_t i = 0; i < len && (quoted || (line[i] != '\n' && line[i] != '\r')); i++) {
        if (line[i] == '"')
            quoted = !quoted;
        for (size_t k = 0; k < 4 && !quoted; k++)
            count[k] += line[i] == order[k];
    }
    size_t best = 0;
    for (size_t k = 1; k < 4; k++)
        best = count[k] > count[best] ? k : best;
    return order[best];
}

size_t kmx_csv_field_at(const char *line, size_t len, size_t at, char delimiter) {
    size_t field = 1;
    int quoted = 0;
    for (size_t i = 0; i < at && i < len; i++) {
        if (line[i] == '"')
            quoted = !quoted;
        else if (!quoted && line[i] == delimiter)
            field++;
    }
    return field;
}

const char *kmx_csv_delimiter_name(char delimiter) {
    return delimiter == ';'    ? "semicolon"
           : delimiter == '\t' ? "tab"
           : delimiter == '|'  ? "pipe"
                               : "comma";
}

static int s_fill(kmx_csv_reader_t *self) {
    if (self->in_pos < self->in_len)
        return 1;
    if (self->in_error)
        return 0;
    if (!self->file) {
        size_t n = self->mem_len - self->mem_pos;
        self->in_len = n < sizeof(self->in) ? n : sizeof(self->in);
        memcpy(self->in, self->mem + self->mem_pos, self->in_len);
        self->mem_pos += self->in_len;
        self->in_pos = 0;
        return self->in_len > 0;
    }
    self->in_len = fread(self->in, 1, sizeof(self->in), self->file);
    self->in_pos = 0;
    if (self->in_len == 0 && ferror(self->file))
        self->in_error = 1;
    return self->in_len > 0;
}

// Returns the next byte without consuming it, or EOF.
static int s_peek(kmx_csv_reader_t *self) {
    return s_fill(self) ? self->in[self->in_pos] : EOF;
}

// Consumes one byte, counting lines (LF, CRLF, or a lone CR each end one line).
static int s_get(kmx_csv_reader_t *self) {
    if (!s_fill(self))
        return EOF;
    int c = self->in[self->in_pos++];
    self->last = c;
    if (c == '\n')
        self->cur_line++;
    else if (c == '\r' && s_peek(self) != '\n')
        self->cur_line++;
    return c;
}

static void s_skip_bom(kmx_csv_reader_t *self) {
    self->started = 1;
    // A BOM lies within the first fill unless the file is tiny; fill reads up to 16 KiB.
    if (!s_fill(self) || self->in_len - self->in_pos < 3)
        return;
    const unsigned char *p = self->in + self->in_pos;
    if (p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF)
        self->in_pos += 3;
}

__attribute__((format(printf, 3, 4))) static int s_fail(kmx_csv_reader_t *self, int err,
                                                        const char *fmt, ...) {
    char what[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    snprintf(self->error, sizeof(self->error), "line %zu: %s", self->line, what);
    return err;
}

// Skips to just after the next line end so the following call starts on a fresh line.
static void s_skip_line(kmx_csv_reader_t *self) {
    for (;;) {
        int c = s_get(self);
        if (c == EOF || c == '\n')
            return;
        if (c == '\r') {
            if (s_peek(self) == '\n')
                s_get(self);
            return;
        }
    }
}

static int s_append(kmx_csv_reader_t *self, char c) {
    if (c != '\0' && self->field_len >= self->limits.field_max)
        return s_fail(self, KMX_ERR_TOO_BIG, "field %zu is longer than %zu bytes",
                      self->nfields + 1, self->limits.field_max);
    if (c != '\0' && self->row_len - self->nfields >= self->limits.row_max)
        return s_fail(self, KMX_ERR_TOO_BIG, "row is longer than %zu bytes", self->limits.row_max);
    if (self->row_len + 1 > self->row_cap) {
        size_t cap = self->row_cap ? self->row_cap * 2 : 256;
        char *row = realloc(self->row, cap);
        if (!row)
            return s_fail(self, KMX_ERR_NOMEM, "out of memory");
        self->row = row;
        self->row_cap = cap;
    }
    self->row[self->row_len++] = c;
    if (c != '\0')
        self->field_len++;
    return 0;
}

static int s_begin_field(kmx_csv_reader_t *self) {
    if (self->nfields >= self->limits.fields_max)
        return s_fail(self, KMX_ERR_TOO_BIG, "more than %zu fields", self->limits.fields_max);
    self->offsets[self->nfields] = self->row_len;
    self->field_len = 0;
    return 0;
}

static int s_end_field(kmx_csv_reader_t *self) {
    int rc = s_append(self, '\0');
    if (rc == 0)
        self->nfields++;
    return rc;
}

// Consumes a line end starting with c (CR, LF or CRLF). Returns nonzero if c was one.
static int s_eat_eol(kmx_csv_reader_t *self, int c) {
    if (c == '\r' && s_peek(self) == '\n')
        s_get(self);
    return c == '\r' || c == '\n';
}

// Reads a quoted field after its opening quote. Returns 1 when the row continues (a comma
// followed), 0 when it ended, or a negative error.
static int s_read_quoted(kmx_csv_reader_t *self) {
    size_t opened = self->cur_line;
    for (;;) {
        int c = s_get(self);
        if (c == EOF) {
            if (self->in_error)
                return s_fail(self, KMX_ERR_IO, "read error");
            return s_fail(self, KMX_ERR_INVAL, "unterminated quoted field (opened on line %zu)",
                          opened);
        }
        if (c != '"') {
            int rc = s_append(self, (char)c);
            if (rc < 0)
                return rc;
            continue;
        }
        int next = s_peek(self);
        if (next == '"') {
            s_get(self);
            int rc = s_append(self, '"');
            if (rc < 0)
                return rc;
            continue;
        }
        if (next == self->delim) {
            s_get(self);
            return 1;
        }
        if (next == EOF)
            return 0;
        c = s_get(self);
        if (s_eat_eol(self, c))
            return 0;
        return s_fail(self, KMX_ERR_INVAL, "unexpected character after closing quote in field %zu",
                      self->nfields + 1);
    }
}

// Reads an unquoted field starting with c. Returns 1 when a comma followed, 0 at the
// end of the row, or a negative error.
static int s_read_plain(kmx_csv_reader_t *self, int c) {
    for (;; c = s_get(self)) {
        if (c == EOF)
            return self->in_error ? s_fail(self, KMX_ERR_IO, "read error") : 0;
        if (c == self->delim)
            return 1;
        if (s_eat_eol(self, c))
            return 0;
        if (c == '"')
            return s_fail(self, KMX_ERR_INVAL, "quote inside unquoted field %zu",
                          self->nfields + 1);
        int rc = s_append(self, (char)c);
        if (rc < 0)
            return rc;
    }
}

// Reads one row into self->row. Returns 1 for a row, 0 for a blank line or the end of
// input (then *at_eof is set), or a negative kmx_err_t.
static int s_read_row(kmx_csv_reader_t *self, int *at_eof) {
    self->row_len = 0;
    self->nfields = 0;
    self->line = self->cur_line;
    int c = s_get(self);
    if (c == EOF) {
        *at_eof = 1;
        return self->in_error ? s_fail(self, KMX_ERR_IO, "read error") : 0;
    }
    if (s_eat_eol(self, c))
        return 0;
    for (;;) {
        int rc = s_begin_field(self);
        if (rc < 0)
            return rc;
        rc = c == '"' ? s_read_quoted(self) : s_read_plain(self, c);
        if (rc < 0)
            return rc;
        int more = rc;
        rc = s_end_field(self);
        if (rc < 0)
            return rc;
        if (!more)
            return 1;
        c = s_get(self);
        if (c == EOF || s_eat_eol(self, c)) {
            // A trailing comma ends the row with one more, empty field.
            rc = s_begin_field(self);
            if (rc == 0)
                rc = s_end_field(self);
            return rc < 0 ? rc : 1;
        }
    }
}

int kmx_csv_next(kmx_csv_reader_t *self, const char ***fields, size_t *nfields) {
    assert(self && fields && nfields);
    *fields = NULL;
    *nfields = 0;
    self->error[0] = '\0';
    if (!self->started)
        s_skip_bom(self);
    for (;;) {
        int at_eof = 0;
        int rc = s_read_row(self, &at_eof);
        if (rc < 0) {
            // Resynchronise on the next line; an unterminated quote has already consumed
            // the input, so there is nothing left to skip then.
            if ((rc == KMX_ERR_INVAL || rc == KMX_ERR_TOO_BIG) && s_peek(self) != EOF)
                s_skip_line(self);
            return rc;
        }
        if (rc == 1)
            break;
        if (at_eof)
            return 0;
    }
    for (size_t i = 0; i < self->nfields; i++)
        self->fields[i] = self->row + self->offsets[i];
    *fields = self->fields;
    *nfields = self->nfields;
    return 1;
}
