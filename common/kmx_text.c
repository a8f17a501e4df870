/*  kmx_text - encoding detection and conversion to UTF-8. A valid UTF-8 document is used in
    place (no copy): the common case costs one validating pass. CP949 goes through iconv
    in one call per run of valid bytes; an invalid byte is replaced by U+FFFD, remembered
    with its line, and skipped, so one bad cell costs one row, not the document.  */
#include "kmx_text.h"

#include "kmx_err.h"
#include "kmx_mem.h"

#include <errno.h>
#include <iconv.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const unsigned char s_bom[3] = {0xEF, 0xBB, 0xBF};
static const char s_replacement[3] = {'\xEF', '\xBF', '\xBD'}; // U+FFFD

// Length of the well-formed UTF-8 sequence at p (at most n bytes), or 0 when it is not one.
static size_t s_utf8_seq(const unsigned char *p, size_t n) {
    unsigned char c = p[0];
    if (c < 0x80)
        return 1;
    size_t len = c >= 0xC2 && c <= 0xDF   ? 2
                 : c >= 0xE0 && c <= 0xEF ? 3
                 : c >= 0xF0 && c <= 0xF4 ? 4
                                          : 0;
    if (len == 0 || len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    }
    if ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] > 0x9F) || (c == 0xF0 && p[1] < 0x90) ||
        (c == 0xF4 && p[1] > 0x8F))
        return 0; // overlong, surrogate or above U+10FFFF
    return len;
}

// Offset of the first byte at p that does not start well-formed UTF-8, or len.
static size_t s_utf8_prefix(const unsigned char *p, size_t len) {
    size_t i = 0;
    while (i < len) {
        // Eight ASCII bytes at a time: the bulk of a statistics file.
        if (len - i >= 8) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            if ((w & 0x8080808080808080ULL) == 0) {
                i += 8;
                continue;
            }
        }
        size_t k = s_utf8_seq(p + i, len - i);
        if (k == 0)
            return i;
        i += k;
    }
    return len;
}

int kmx_text_is_utf8(const void *p, size_t len) {
    return p == NULL ? len == 0 : s_utf8_prefix(p, len) == len;
}

const char *kmx_text_enc_name(kmx_text_enc_t enc) {
    return enc == KMX_TEXT_UTF8 ? "UTF-8" : enc == KMX_TEXT_CP949 ? "CP949" : "auto";
}

int kmx_text_enc_parse(const char *name, kmx_text_enc_t *out) {
    static const struct {
        const char *name;   // as a user writes it
        kmx_text_enc_t enc; // what it means
    } names[] = {{"auto", KMX_TEXT_AUTO},   {"utf-8", KMX_TEXT_UTF8},   {"utf8", KMX_TEXT_UTF8},
                 {"cp949", KMX_TEXT_CP949}, {"euc-kr", KMX_TEXT_CP949}, {"euckr", KMX_TEXT_CP949},
                 {"uhc", KMX_TEXT_CP949},   {"ms949", KMX_TEXT_CP949}};
    for (size_t i = 0; name && i < sizeof names / sizeof names[0]; i++) {
        if (strcasecmp(name, names[i].name) == 0) {
            *out = names[i].enc;
            return 0;
        }
    }
    return KMX_ERR_INVAL;
}

void kmx_text_fini(kmx_text_t *out) {
    if (!out)
        return;
    free(out->owned);
    free(out->bad);
    memset(out, 0, sizeof *out);
}

// The converted text being built, and where the input's lines are.
typedef struct {
    kmx_text_t *t;           // result
    size_t cap;              // bytes allocated at t->owned
    size_t bad_cap;          // entries allocated at t->bad
    const unsigned char *in; // input
    size_t line;             // line of the byte at `scanned`
    size_t line_start;       // offset of that line's first byte
    size_t scanned;          // input offset lines have been counted up to
} s_out_t;

static int s_reserve(s_out_t *o, size_t more) {
    if (o->t->len + more <= o->cap)
        return 0;
    size_t cap = o->cap ? o->cap : 4096;
    while (cap < o->t->len + more) {
        if (cap > SIZE_MAX / 2)
            return KMX_ERR_NOMEM;
        cap *= 2;
    }
    char *p = realloc(o->t->owned, cap);
    if (!p)
        return KMX_ERR_NOMEM;
    o->t->owned = p;
    o->cap = cap;
    return 0;
}

static int s_put(s_out_t *o, const void *p, size_t n) {
    if (n == 0)
        return 0; // nothing to copy, and owned may still be NULL
    int rc = s_reserve(o, n);
    if (rc == 0) {
        memcpy(o->t->owned + o->t->len, p, n);
        o->t->len += n;
    }
    return rc;
}

// Records the invalid byte at input offset at and writes U+FFFD for it.
static int s_bad(s_out_t *o, size_t at) {
    const unsigned char *p = o->in + o->scanned, *end = o->in + at;
    while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        o->line++;
        o->line_start = (size_t)(++p - o->in);
    }
    o->scanned = at;
    kmx_text_t *t = o->t;
    t->bad_total++;
    if (t->n_bad < KMX_TEXT_BAD_MAX) {
        if (kmx_reserve((void **)&t->bad, &o->bad_cap, t->n_bad, sizeof *t->bad, 16) != 0)
            return KMX_ERR_NOMEM;
        t->bad[t->n_bad++] = (kmx_text_bad_t){o->line, o->line_start, at, o->in[at]};
    }
    return s_put(o, s_replacement, sizeof s_replacement);
}

// UTF-8 with invalid bytes: copies the valid runs, replacing each invalid byte.
static int s_utf8_repair(s_out_t *o, size_t from, size_t len) {
    while (from < len) {
        size_t ok = s_utf8_prefix(o->in + from, len - from);
        int rc = s_put(o, o->in + from, ok);
        from += ok;
        if (rc == 0 && from < len)
            rc = s_bad(o, from++);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int s_cp949(s_out_t *o, size_t from, size_t len) {
    iconv_t cd = iconv_open("UTF-8", "CP949");
    if (cd == (iconv_t)-1)
        return KMX_ERR_UNSUPPORTED;
    int rc = s_reserve(o, (len - from) + (len - from) / 2 + 16);
    char *inp = (char *)o->in + from;
    size_t left = len - from;
    while (rc == 0 && left > 0) {
        char *outp = o->t->owned + o->t->len;
        size_t room = o->cap - o->t->len;
        size_t r = iconv(cd, &inp, &left, &outp, &room);
        o->t->len = (size_t)(outp - o->t->owned);
        if (r != (size_t)-1)
            break;
        if (errno == E2BIG) {
            rc = s_reserve(o, left * 2 + 16);
        } else if (errno == EILSEQ || errno == EINVAL) {
            rc = s_bad(o, (size_t)((unsigned char *)inp - o->in));
            inp++;
            left--;
        } else {
            rc = KMX_ERR_INTERNAL;
        }
    }
    iconv_close(cd);
    return rc;
}

int kmx_text_decode(const void *in, size_t len, kmx_text_enc_t enc, kmx_text_t *out) {
    memset(out, 0, sizeof *out);
    const unsigned char *p = in ? in : s_bom;
    if (!in)
        len = 0;
    size_t from = len >= 3 && memcmp(p, s_bom, 3) == 0 ? 3 : 0;
    size_t valid = from + s_utf8_prefix(p + from, len - from);
    out->detected = enc == KMX_TEXT_AUTO;
    if (enc == KMX_TEXT_AUTO)
        enc = valid == len || from == 3 ? KMX_TEXT_UTF8 : KMX_TEXT_CP949;
    out->enc = enc;
    if (enc == KMX_TEXT_UTF8 && valid == len) {
        out->data = (const char *)p + from;
        out->len = len - from;
        return 0;
    }
    s_out_t o = {.t = out, .in = p, .line = 1};
    int rc = enc == KMX_TEXT_UTF8 ? s_utf8_repair(&o, from, len) : s_cp949(&o, from, len);
    if (rc != 0) {
        kmx_text_fini(out);
        return rc;
    }
    out->data = out->owned ? out->owned : "";
    return 0;
}
