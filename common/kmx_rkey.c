/*  kmx_rkey - builds every LMDB key kmx writes. Record keys sort by kind, then period
    start, then period end, then the text fields, so a scan that fixes the kind (and a
    lower period bound) can seek straight to its first candidate. Event keys are the
    sequence number big-endian, so key order is sequence order.  */
#include "kmx_rkey.h"

#include "kmx_err.h"

#include <string.h>

static void s_put_u32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

// Appends text (NULL counts as empty) and, unless last, a NUL separator. Returns 0 or
// KMX_ERR_OVERFLOW.
static int s_put_text(uint8_t *buf, size_t size, size_t *pos, const char *text, int last) {
    size_t n = text ? strlen(text) : 0;
    size_t need = n + (last ? 0 : 1);
    if (need > size - *pos)
        return KMX_ERR_OVERFLOW;
    if (n > 0)
        memcpy(buf + *pos, text, n);
    *pos += n;
    if (!last)
        buf[(*pos)++] = 0;
    return 0;
}

int kmx_rkey_record(const Kmx__V1__Record *rec, uint8_t *buf, size_t size, size_t *len) {
    if (!rec || !buf || !len)
        return KMX_ERR_INVAL;
    if (rec->kind == KMX__V1__KIND__KIND_UNSPECIFIED || rec->kind > 255 || !rec->period ||
        !rec->market || rec->market[0] == '\0')
        return KMX_ERR_INVAL;
    if (size < 9)
        return KMX_ERR_OVERFLOW;
    buf[0] = (uint8_t)rec->kind;
    s_put_u32(buf + 1, rec->period->start);
    s_put_u32(buf + 5, rec->period->end);
    size_t pos = 9;
    const char *texts[] = {rec->market,  rec->category, rec->item,
                           rec->company, rec->artist,   rec->source};
    size_t count = sizeof texts / sizeof texts[0];
    for (size_t i = 0; i < count; i++) {
        int rc = s_put_text(buf, size, &pos, texts[i], i + 1 == count);
        if (rc != 0)
            return rc;
    }
    *len = pos;
    return 0;
}

void kmx_rkey_event(uint64_t seq, uint8_t out[8]) {
    for (int i = 7; i >= 0; i--) {
        out[i] = (uint8_t)seq;
        seq >>= 8;
    }
}

int kmx_rkey_event_seq(const void *key, size_t len, uint64_t *seq) {
    if (!key || len != 8 || !seq)
        return KMX_ERR_INVAL;
    const uint8_t *p = key;
    uint64_t v = 0;
    for (size_t i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    *seq = v;
    return 0;
}

// Writes one text field as the whole key; empty text has no entry.
static int s_text_key(const char *text, uint8_t *buf, size_t size, size_t *len) {
    size_t n = text ? strlen(text) : 0;
    if (n == 0)
        return KMX_ERR_NOT_FOUND;
    if (n > size)
        return KMX_ERR_OVERFLOW;
    memcpy(buf, text, n);
    *len = n;
    return 0;
}

int kmx_rkey_index(kmx_rkey_index_t idx, const Kmx__V1__Record *rec, uint8_t *buf, size_t size,
                   size_t *len) {
    if (!rec || !buf || !len || rec->kind == KMX__V1__KIND__KIND_UNSPECIFIED || rec->kind > 255 ||
        !rec->period || !rec->market || rec->market[0] == '\0')
        return KMX_ERR_INVAL;
    size_t pos = 0;
    switch (idx) {
    case KMX_RKEY_IDX_MARKET:
        return s_text_key(rec->market, buf, size, len);
    case KMX_RKEY_IDX_PERIOD:
        if (size < 8)
            return KMX_ERR_OVERFLOW;
        s_put_u32(buf, rec->period->start);
        s_put_u32(buf + 4, rec->period->end);
        *len = 8;
        return 0;
    case KMX_RKEY_IDX_CATEGORY:
        if (size < 1)
            return KMX_ERR_OVERFLOW;
        buf[pos++] = (uint8_t)rec->kind;
        if (s_put_text(buf, size, &pos, rec->category, 1) != 0)
            return KMX_ERR_OVERFLOW;
        *len = pos;
        return 0;
    case KMX_RKEY_IDX_COMPANY:
        return s_text_key(rec->company, buf, size, len);
    case KMX_RKEY_IDX_ARTIST:
        return s_text_key(rec->artist, buf, size, len);
    default:
        return KMX_ERR_INVAL;
    }
}

int kmx_rkey_rollup(const Kmx__V1__Record *rec, uint8_t *buf, size_t size, size_t *len) {
    if (!rec || !buf || !len || rec->kind == KMX__V1__KIND__KIND_UNSPECIFIED || rec->kind > 255 ||
        !rec->period || !rec->market || rec->market[0] == '\0' || !rec->value || !rec->value->unit)
        return KMX_ERR_INVAL;
    if (size < 9)
        return KMX_ERR_OVERFLOW;
    buf[0] = (uint8_t)rec->kind;
    s_put_u32(buf + 1, rec->period->start);
    s_put_u32(buf + 5, rec->period->end);
    size_t pos = 9;
    if (s_put_text(buf, size, &pos, rec->market, 0) != 0 ||
        s_put_text(buf, size, &pos, rec->category, 0) != 0 ||
        s_put_text(buf, size, &pos, rec->value->unit, 1) != 0)
        return KMX_ERR_OVERFLOW;
    *len = pos;
    return 0;
}

static uint32_t s_get_u32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

// Copies the field starting at *pos up to the next NUL (or the end when last).
static int s_take_text(const uint8_t *k, size_t len, size_t *pos, char *out, size_t size,
                       int last) {
    const uint8_t *nul = memchr(k + *pos, 0, len - *pos);
    if (last != (nul == NULL))
        return KMX_ERR_INVAL;
    size_t n = last ? len - *pos : (size_t)(nul - (k + *pos));
    if (n >= size)
        return KMX_ERR_INVAL;
    memcpy(out, k + *pos, n);
    out[n] = '\0';
    *pos += n + (last ? 0 : 1);
    return 0;
}

int kmx_rkey_rollup_parse(const void *key, size_t len, kmx_rkey_rollup_t *out) {
    const uint8_t *k = key;
    if (!k || !out || len < 9)
        return KMX_ERR_INVAL;
    out->kind = k[0];
    out->start = s_get_u32(k + 1);
    out->end = s_get_u32(k + 5);
    size_t pos = 9;
    if (s_take_text(k, len, &pos, out->market, sizeof out->market, 0) != 0 ||
        s_take_text(k, len, &pos, out->category, sizeof out->category, 0) != 0 ||
        s_take_text(k, len, &pos, out->unit, sizeof out->unit, 1) != 0)
        return KMX_ERR_INVAL;
    return 0;
}
