/*  kmx_jsonl - a small, strict JSON object reader for JSON Lines documents. Every cursor
    move is checked against the end of the line, so any bytes are safe input; decoded
    text never outgrows the line, so one buffer of the line's size holds every string.  */
#include "kmx_jsonl.h"
#include "kmx_err.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct kmx_jsonl {
    size_t field_max;                // longest member name or value, bytes
    size_t fields_max;               // most members in one object
    char *buf;                       // decoded strings, NUL-terminated, back to back
    size_t buf_cap;                  // capacity of buf
    const char **names;              // member names, into buf
    const char **cells;              // member values, into buf
    char error[KMX_JSONL_ERROR_MAX]; // the last error
};

// The parse state of one line.
typedef struct {
    kmx_jsonl_t *self; // the reader
    const char *p;     // next byte
    const char *end;   // one past the last byte
    char *out;         // next free byte of self->buf
} s_cur_t;

kmx_jsonl_t *kmx_jsonl_new(size_t field_max, size_t fields_max) {
    kmx_jsonl_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->field_max = field_max ? field_max : 65536;
    self->fields_max = fields_max ? fields_max : 256;
    self->names = calloc(self->fields_max, sizeof *self->names);
    self->cells = calloc(self->fields_max, sizeof *self->cells);
    if (!self->names || !self->cells)
        kmx_jsonl_destroy(&self);
    return self;
}

void kmx_jsonl_destroy(kmx_jsonl_t **self_p) {
    if (!self_p || !*self_p)
        return;
    free((*self_p)->buf);
    free((*self_p)->names);
    free((*self_p)->cells);
    free(*self_p);
    *self_p = NULL;
}

const char *kmx_jsonl_error(const kmx_jsonl_t *self) {
    return self ? self->error : "";
}

__attribute__((format(printf, 3, 4))) static int s_fail(s_cur_t *c, int rc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->self->error, sizeof c->self->error, fmt, ap);
    va_end(ap);
    return rc;
}

static void s_skip_ws(s_cur_t *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\r'))
        c->p++;
}

static int s_hex4(s_cur_t *c, uint32_t *out) {
    if (c->end - c->p < 4)
        return KMX_ERR_INVAL;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char h = c->p[i];
        int d = h >= '0' && h <= '9'   ? h - '0'
                : h >= 'a' && h <= 'f' ? h - 'a' + 10
                : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                       : -1;
        if (d < 0)
            return KMX_ERR_INVAL;
        v = v * 16 + (uint32_t)d;
    }
    c->p += 4;
    *out = v;
    return 0;
}

// Writes a code point as UTF-8 (at most 4 bytes; a "\uXXXX" escape is 6 or 12 bytes, so
// decoded text stays shorter than its source).
static void s_put_utf8(s_cur_t *c, uint32_t cp) {
    if (cp < 0x80) {
        *c->out++ = (char)cp;
    } else if (cp < 0x800) {
        *c->out++ = (char)(0xC0 | (cp >> 6));
        *c->out++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *c->out++ = (char)(0xE0 | (cp >> 12));
        *c->out++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *c->out++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *c->out++ = (char)(0xF0 | (cp >> 18));
        *c->out++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *c->out++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *c->out++ = (char)(0x80 | (cp & 0x3F));
    }
}

// Decodes "\uXXXX", joining a surrogate pair. c->p is just after the 'u'.
static int s_unicode(s_cur_t *c) {
    uint32_t cp;
    if (s_hex4(c, &cp) != 0)
        return s_fail(c, KMX_ERR_INVAL, "bad \\u escape");
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        uint32_t lo;
        if (c->end - c->p < 2 || c->p[0] != '\\' || c->p[1] != 'u')
            return s_fail(c, KMX_ERR_INVAL, "unpaired surrogate in \\u escape");
        c->p += 2;
        if (s_hex4(c, &lo) != 0 || lo < 0xDC00 || lo > 0xDFFF)
            return s_fail(c, KMX_ERR_INVAL, "unpaired surrogate in \\u escape");
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
        return s_fail(c, KMX_ERR_INVAL, "unpaired surrogate in \\u escape");
    }
    if (cp == 0)
        return s_fail(c, KMX_ERR_INVAL, "a string holds a NUL character");
    s_put_utf8(c, cp);
    return 0;
}

static int s_escape(s_cur_t *c) {
    if (c->p >= c->end)
        return s_fail(c, KMX_ERR_INVAL, "unterminated string");
    char e = *c->p++;
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    const char *hit = e ? strchr(from, e) : NULL;
    if (hit) {
        *c->out++ = to[hit - from];
        return 0;
    }
    if (e == 'u')
        return s_unicode(c);
    return s_fail(c, KMX_ERR_INVAL, "bad escape \\%c", e >= ' ' && e < 127 ? e : '?');
}

// Reads a string (c->p at the opening quote) into the buffer; *out points at it.
static int s_string(s_cur_t *c, const char **out) {
    c->p++;
    char *start = c->out;
    while (c->p < c->end && *c->p != '"') {
        unsigned char ch = (unsigned char)*c->p;
        if (ch < 0x20)
            return s_fail(c, KMX_ERR_INVAL, "a control character inside a string");
        if (ch == '\\') {
            c->p++;
            int rc = s_escape(c);
            if (rc != 0)
                return rc;
        } else {
            *c->out++ = (char)ch;
            c->p++;
        }
        if ((size_t)(c->out - start) > c->self->field_max)
            return s_fail(c, KMX_ERR_TOO_BIG, "a string is longer than %zu bytes",
                          c->self->field_max);
    }
    if (c->p >= c->end)
        return s_fail(c, KMX_ERR_INVAL, "unterminated string");
    c->p++;
    *c->out++ = '\0';
    *out = start;
    return 0;
}

// Copies a bare token (number, true, false, null) if it is well formed.
static int s_bare(s_cur_t *c, const char **out) {
    const char *start = c->p;
    while (c->p < c->end && strchr("+-.0123456789eEtrufalsn", *c->p) && *c->p)
        c->p++;
    size_t n = (size_t)(c->p - start);
    if (n == 0)
        return s_fail(c, KMX_ERR_INVAL, "expected a string, number, true, false or null");
    if (n > c->self->field_max)
        return s_fail(c, KMX_ERR_TOO_BIG, "a number is longer than %zu bytes", c->self->field_max);
    int word =
        (n == 4 && memcmp(start, "true", 4) == 0) || (n == 5 && memcmp(start, "false", 5) == 0);
    int null = n == 4 && memcmp(start, "null", 4) == 0;
    int number = *start == '-' || (*start >= '0' && *start <= '9');
    for (size_t i = 0; i < n && number; i++)
        number = strchr("+-.0123456789eE", start[i]) != NULL; // the line has no NUL here
    if (!word && !null && !number)
        return s_fail(c, KMX_ERR_INVAL, "expected a string, number, true, false or null");
    *out = c->out;
    if (!null) {
        memcpy(c->out, start, n);
        c->out += n;
    }
    *c->out++ = '\0';
    return 0;
}

static int s_value(s_cur_t *c, const char **out) {
    if (c->p >= c->end)
        return s_fail(c, KMX_ERR_INVAL, "a member has no value");
    if (*c->p == '"')
        return s_string(c, out);
    if (*c->p == '{' || *c->p == '[')
        return s_fail(c, KMX_ERR_INVAL,
                      "nested objects and arrays are not supported; "
                      "use flat members");
    return s_bare(c, out);
}

static int s_check_repeat(s_cur_t *c, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (strcmp(c->self->names[i], c->self->names[n]) == 0)
            return s_fail(c, KMX_ERR_INVAL, "member \"%.60s\" appears twice", c->self->names[n]);
    }
    return 0;
}

// Reads one "name": value pair as member n.
static int s_member(s_cur_t *c, size_t n) {
    if (n >= c->self->fields_max)
        return s_fail(c, KMX_ERR_TOO_BIG, "an object has more than %zu members",
                      c->self->fields_max);
    s_skip_ws(c);
    if (c->p >= c->end || *c->p != '"')
        return s_fail(c, KMX_ERR_INVAL, "expected a member name in quotes");
    int rc = s_string(c, &c->self->names[n]);
    if (rc == 0)
        rc = s_check_repeat(c, n);
    if (rc != 0)
        return rc;
    s_skip_ws(c);
    if (c->p >= c->end || *c->p != ':')
        return s_fail(c, KMX_ERR_INVAL, "expected ':' after member \"%.60s\"", c->self->names[n]);
    c->p++;
    s_skip_ws(c);
    return s_value(c, &c->self->cells[n]);
}

static int s_members(s_cur_t *c) {
    size_t n = 0;
    s_skip_ws(c);
    if (c->p < c->end && *c->p == '}') {
        c->p++;
        return 0;
    }
    for (;;) {
        int rc = s_member(c, n);
        if (rc != 0)
            return rc;
        n++;
        s_skip_ws(c);
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            continue;
        }
        if (c->p < c->end && *c->p == '}') {
            c->p++;
            return (int)n;
        }
        return s_fail(c, KMX_ERR_INVAL, "expected ',' or '}' after a member");
    }
}

int kmx_jsonl_parse(kmx_jsonl_t *self, const char *line, size_t len, const char ***names,
                    const char ***cells) {
    if (!self || !line || !names || !cells)
        return KMX_ERR_INVAL;
    self->error[0] = '\0';
    // Every member adds at most one NUL per decoded string; "null" writes one byte.
    if (self->buf_cap < len + 2) {
        char *grown = realloc(self->buf, len + 2);
        if (!grown)
            return KMX_ERR_NOMEM;
        self->buf = grown;
        self->buf_cap = len + 2;
    }
    s_cur_t c = {self, line, line + len, self->buf};
    s_skip_ws(&c);
    if (c.p >= c.end || *c.p != '{')
        return s_fail(&c, KMX_ERR_INVAL, "a JSON Lines record must be an object");
    c.p++;
    int n = s_members(&c);
    if (n < 0)
        return n;
    s_skip_ws(&c);
    if (c.p != c.end)
        return s_fail(&c, KMX_ERR_INVAL, "text after the object's closing '}'");
    *names = self->names;
    *cells = self->cells;
    return n;
}
