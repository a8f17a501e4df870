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
