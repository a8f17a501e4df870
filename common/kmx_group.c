/*  kmx_group - an open-addressing hash from composite key (the group values and the unit,
    NUL-separated) to running sums. Sums stay 128-bit until formatted, so no grouping of
    ten-thousandths ever rounds or overflows.  */
#include "kmx_group.h"

#include "kmx_err.h"
#include "kmx_market.h"
#include "kmx_mem.h"
#include "kmx_period.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_SUM_TEXT 48 // kmx_decimal_format128 needs at most 46 bytes

// The composite key holds each field in turn, then the unit: texts NUL-terminated, a period
// as 8 bytes (start, end big-endian), a year as 4 bytes. Texts never hold NUL, so the
// encoding is prefix-free and equal keys mean equal groups. Periods and years are only
// formatted for the result, never per entry.
typedef struct {
    char *key;                             // composite key (above)
    size_t key_len;                        // bytes in key
    kmx_i128 sum;                          // exact sum in ten-thousandths
    uint64_t count;                        // records in the group
    int64_t min, max;                      // range of single values, valid when has_minmax
    int has_minmax;                        // nonzero while every entry carried min and max
    char sum_text[S_SUM_TEXT];             // formatted sum for the result
    char period_text[KMX_PERIOD_TEXT_MAX]; // formatted period for the result
    char year_text[12];                    // formatted year for the result
    char *keys[KMX_GROUP_FIELDS_MAX];      // pointers into key (or the texts) for the result row
} s_group_t;

struct kmx_group {
    Kmx__V1__GroupField fields[KMX_GROUP_FIELDS_MAX]; // the grouping
    size_t n_fields;                                  // entries in fields
    s_group_t *groups;                                // n groups in insertion order
    size_t n, cap;                                    // groups held and allocated
    size_t *slots;                                    // hash slots: group index + 1, 0 = free
    size_t n_slots;                                   // power of two
    uint64_t matched;                                 // sum of counts
    Kmx__V1__Row *rows;                               // result rows
    Kmx__V1__Row **row_ptrs;                          // pointers to rows, sorted
};

int kmx_group_check_fields(const Kmx__V1__GroupField *fields, size_t n) {
    if (n > KMX_GROUP_FIELDS_MAX || (n > 0 && !fields))
        return KMX_ERR_INVAL;
    for (size_t i = 0; i < n; i++) {
        if (fields[i] < KMX__V1__GROUP_FIELD__BY_MARKET ||
            fields[i] > KMX__V1__GROUP_FIELD__BY_LEVEL)
            return KMX_ERR_INVAL;
    }
    return 0;
}

int kmx_group_fields_rollup(const Kmx__V1__GroupField *fields, size_t n) {
    for (size_t i = 0; i < n; i++) {
        switch (fields[i]) {
        case KMX__V1__GROUP_FIELD__BY_MARKET:
        case KMX__V1__GROUP_FIELD__BY_REGION:
        case KMX__V1__GROUP_FIELD__BY_PERIOD:
        case KMX__V1__GROUP_FIELD__BY_YEAR:
        case KMX__V1__GROUP_FIELD__BY_CATEGORY:
        case KMX__V1__GROUP_FIELD__BY_UNIT:
        case KMX__V1__GROUP_FIELD__BY_LEVEL:
            break;
        default:
            return 0;
        }
    }
    return 1;
}

kmx_group_t *kmx_group_new(const Kmx__V1__GroupField *fields, size_t n) {
    if (kmx_group_check_fields(fields, n) != 0)
        return NULL;
    kmx_group_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    if (n > 0)
        memcpy(self->fields, fields, n * sizeof *fields);
    self->n_fields = n;
    self->n_slots = 1024;
    self->slots = calloc(self->n_slots, sizeof *self->slots);
    if (!self->slots)
        kmx_group_destroy(&self);
    return self;
}

void kmx_group_destroy(kmx_group_t **self_p) {
    if (!self_p || !*self_p)
        return;
    kmx_group_t *self = *self_p;
    for (size_t i = 0; i < self->n; i++)
        free(self->groups[i].key);
    free(self->groups);
    free(self->slots);
    free(self->rows);
    free(self->row_ptrs);
    free(self);
    *self_p = NULL;
}

static const char *s_str(const char *s) {
    return s ? s : "";
}

#define S_KEY_MAX 2048 // bytes in one composite key

static void s_put_u32(char *p, uint32_t v) {
    p[0] = (char)(v >> 24);
    p[1] = (char)(v >> 16);
    p[2] = (char)(v >> 8);
    p[3] = (char)v;
}

static uint32_t s_get_u32(const char *p) {
    const uint8_t *u = (const uint8_t *)p;
    return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
}

// Appends text and its NUL to key. Returns 0 or KMX_ERR_INVAL when it does not fit.
static int s_put_text(char *key, size_t *len, const char *text) {
    size_t n = strlen(text) + 1;
    if (*len + n > S_KEY_MAX)
        return KMX_ERR_INVAL;
    memcpy(key + *len, text, n);
    *len += n;
    return 0;
}

static const char *s_text_value(Kmx__V1__GroupField f, const Kmx__V1__Record *rec) {
    switch (f) {
    case KMX__V1__GROUP_FIELD__BY_MARKET:
        return s_str(rec->market);
    case KMX__V1__GROUP_FIELD__BY_REGION:
        return kmx_market_region(s_str(rec->market));
    case KMX__V1__GROUP_FIELD__BY_CATEGORY:
        return s_str(rec->category);
    case KMX__V1__GROUP_FIELD__BY_ITEM:
        return s_str(rec->item);
    case KMX__V1__GROUP_FIELD__BY_COMPANY:
        return s_str(rec->company);
    case KMX__V1__GROUP_FIELD__BY_ARTIST:
        return s_str(rec->artist);
    case KMX__V1__GROUP_FIELD__BY_SOURCE:
        return s_str(rec->source);
    case KMX__V1__GROUP_FIELD__BY_LEVEL:
        return kmx_market_level_name(kmx_market_level(s_str(rec->market)));
    default: // BY_UNIT
        return s_str(rec->value->unit);
    }
}

// Builds rec's composite key into key (S_KEY_MAX bytes). Returns 0 or KMX_ERR_INVAL.
static int s_build_key(const kmx_group_t *self, const Kmx__V1__Record *rec, char *key,
                       size_t *len) {
    *len = 0;
    for (size_t i = 0; i < self->n_fields; i++) {
        Kmx__V1__GroupField f = self->fields[i];
        if (f == KMX__V1__GROUP_FIELD__BY_PERIOD || f == KMX__V1__GROUP_FIELD__BY_YEAR) {
            if (*len + 8 > S_KEY_MAX)
                return KMX_ERR_INVAL;
            int period = f == KMX__V1__GROUP_FIELD__BY_PERIOD;
            s_put_u32(key + *len, period ? rec->period->start : rec->period->start / 100);
            if (period)
                s_put_u32(key + *len + 4, rec->period->end);
            *len += period ? 8 : 4;
        } else if (s_put_text(key, len, s_text_value(f, rec)) != 0) {
            return KMX_ERR_INVAL;
        }
    }
    return s_put_text(key, len, s_str(rec->value->unit));
}

// Hashes the composite key 8 bytes at a time (a multiply-xorshift mix per word); keys are
// short, so this beats a byte-at-a-time hash on the hot path of every aggregate.
static uint64_t s_hash(const char *key, size_t len) {
    uint64_t h = 0x9e3779b97f4a7c15ull ^ len;
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, key, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
        key += 8;
        len -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, key, len);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 29);
}

static int s_rehash(kmx_group_t *self) {
    size_t n_slots = self->n_slots * 2;
    size_t *slots = calloc(n_slots, sizeof *slots);
    if (!slots)
        return KMX_ERR_NOMEM;
    for (size_t g = 0; g < self->n; g++) {
        size_t at = s_hash(self->groups[g].key, self->groups[g].key_len) & (n_slots - 1);
        while (slots[at])
            at = (at + 1) & (n_slots - 1);
        slots[at] = g + 1;
    }
    free(self->slots);
    self->slots = slots;
    self->n_slots = n_slots;
    return 0;
}

// Appends a new group owning key. Returns 0, KMX_ERR_TOO_BIG or KMX_ERR_NOMEM.
static int s_new_group(kmx_group_t *self, char *key, size_t len, size_t slot) {
    if (self->n >= KMX_GROUP_GROUPS_MAX)
        return KMX_ERR_TOO_BIG;
    if (kmx_reserve((void **)&self->groups, &self->cap, self->n, sizeof *self->groups, 64) != 0)
        return KMX_ERR_NOMEM;
    s_group_t *g = &self->groups[self->n];
    memset(g, 0, sizeof *g);
    g->key = key;
    g->key_len = len;
    g->has_minmax = 1;
    self->slots[slot] = ++self->n;
    if (self->n * 2 > self->n_slots)
        return s_rehash(self);
    return 0;
}

// Finds or creates the group of key. *out points into self->groups until the next call.
static int s_find(kmx_group_t *self, const char *key, size_t len, s_group_t **out) {
    size_t at = s_hash(key, len) & (self->n_slots - 1);
    for (; self->slots[at]; at = (at + 1) & (self->n_slots - 1)) {
        s_group_t *g = &self->groups[self->slots[at] - 1];
        if (g->key_len == len && memcmp(g->key, key, len) == 0) {
            *out = g;
            return 0;
        }
    }
    char *copy = malloc(len);
    if (!copy)
        return KMX_ERR_NOMEM;
    memcpy(copy, key, len);
    size_t index = self->n;
    int err = s_new_group(self, copy, len, at);
    if (err != 0) {
        if (self->n == index)
            free(copy);
        return err;
    }
    *out = &self->groups[index];
    return 0;
}

int kmx_group_add(kmx_group_t *self, const Kmx__V1__Record *rec, kmx_i128 sum, uint64_t count,
                  int has_minmax) {
    if (!self || !rec || !rec->period || !rec->value)
        return KMX_ERR_INVAL;
    char key[S_KEY_MAX];
    size_t len = 0;
    if (s_build_key(self, rec, key, &len) != 0)
        return KMX_ERR_INVAL;
    s_group_t *g = NULL;
    int err = s_find(self, key, len, &g);
    if (err != 0)
        return err;
    if (__builtin_add_overflow(g->sum, sum, &g->sum))
        return KMX_ERR_OVERFLOW;
    int first = g->count == 0;
    g->count += count;
    self->matched += count;
    if (!has_minmax) {
        g->has_minmax = 0;
        return 0;
    }
    int64_t a = rec->value->amount;
    g->min = first || a < g->min ? a : g->min;
    g->max = first || a > g->max ? a : g->max;
    return 0;
}

int kmx_group_remove(kmx_group_t *self, const Kmx__V1__Record *rec) {
    if (!self || !rec || !rec->period || !rec->value)
        return KMX_ERR_INVAL;
    char key[S_KEY_MAX];
    size_t len = 0;
    if (s_build_key(self, rec, key, &len) != 0)
        return KMX_ERR_INVAL;
    s_group_t *g = NULL;
    int err = s_find(self, key, len, &g);
    if (err != 0)
        return err;
    if (g->count == 0)
        return KMX_ERR_NOT_FOUND; // never added (s_find made it; it stays empty)
    if (__builtin_sub_overflow(g->sum, (kmx_i128)rec->value->amount, &g->sum))
        return KMX_ERR_OVERFLOW;
    g->count--;
    self->matched--;
    g->has_minmax = 0; // the removed amount may have been the minimum or the maximum
    return 0;
}

// Orders rows by their keys, field by field, then by unit.
static int s_row_cmp(const void *a, const void *b) {
    const Kmx__V1__Row *ra = *(Kmx__V1__Row *const *)a, *rb = *(Kmx__V1__Row *const *)b;
    for (size_t i = 0; i < ra->n_keys; i++) {
        int c = strcmp(ra->keys[i], rb->keys[i]);
        if (c != 0)
            return c;
    }
    return strcmp(ra->unit, rb->unit);
}

static void s_fill_row(kmx_group_t *self, s_group_t *g, Kmx__V1__Row *row) {
    Kmx__V1__Row init = KMX__V1__ROW__INIT;
    *row = init;
    char *at = g->key;
    for (size_t i = 0; i < self->n_fields; i++) {
        if (self->fields[i] == KMX__V1__GROUP_FIELD__BY_PERIOD) {
            kmx_period_t p = {s_get_u32(at), s_get_u32(at + 4)};
            if (kmx_period_format(&p, g->period_text, sizeof g->period_text) != 0)
                snprintf(g->period_text, sizeof g->period_text, "%u/%u", p.start, p.end);
            g->keys[i] = g->period_text;
            at += 8;
        } else if (self->fields[i] == KMX__V1__GROUP_FIELD__BY_YEAR) {
            snprintf(g->year_text, sizeof g->year_text, "%u", s_get_u32(at));
            g->keys[i] = g->year_text;
            at += 4;
        } else {
            g->keys[i] = at;
            at += strlen(at) + 1;
        }
    }
    if (kmx_decimal_format128(g->sum, g->sum_text, sizeof g->sum_text) != 0)
        snprintf(g->sum_text, sizeof g->sum_text, "overflow");
    row->n_keys = self->n_fields;
    row->keys = g->keys;
    row->unit = at;
    row->sum = g->sum_text;
    row->has_count = 1;
    row->count = g->count;
    row->has_min = row->has_max = g->has_minmax;
    row->min = g->min;
    row->max = g->max;
}

int kmx_group_result(kmx_group_t *self, Kmx__V1__QueryResult *out) {
    free(self->rows);
    free(self->row_ptrs);
    self->rows = calloc(self->n ? self->n : 1, sizeof *self->rows);
    self->row_ptrs = calloc(self->n ? self->n : 1, sizeof *self->row_ptrs);
    if (!self->rows || !self->row_ptrs)
        return KMX_ERR_NOMEM;
    size_t kept = 0;
    for (size_t i = 0; i < self->n; i++) {
        if (self->groups[i].count == 0)
            continue; // every record removed (kmx_group_remove)
        s_fill_row(self, &self->groups[i], &self->rows[kept]);
        self->row_ptrs[kept] = &self->rows[kept];
        kept++;
    }
    qsort(self->row_ptrs, kept, sizeof *self->row_ptrs, s_row_cmp);
    out->n_rows = kept;
    out->rows = self->row_ptrs;
    out->has_matched = 1;
    out->matched = self->matched;
    return 0;
}
