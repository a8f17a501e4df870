/*  kmx_agg - query aggregation. Each group is identified by one composite key: the
    group-field values and the unit, each NUL-terminated, back to back; an open-addressing
    hash table maps that key to the group. Sums stay in 128-bit integers until formatted,
    so adding ten-thousandths never loses a digit however many records there are.  */
#include "kmx_agg.h"
#include "kmx_err.h"
#include "kmx_market.h"
#include "kmx_period.h"
#include "kmx_value.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_SUM_TEXT 48 // kmx_decimal_format128 needs at most 46 bytes

typedef struct {
    char *key;                 // field values then unit, each NUL-terminated
    size_t key_len;            // bytes in key, NULs included
    uint64_t hash;             // FNV-1a of key
    kmx_i128 sum;              // exact sum of amounts, ten-thousandths
    uint64_t count;            // records in the group
    int64_t min;               // smallest amount
    int64_t max;               // largest amount
    char sum_text[S_SUM_TEXT]; // sum as decimal text, written by kmx_agg_result
} s_group_t;

struct kmx_agg {
    Kmx__V1__GroupField fields[KMX_AGG_FIELDS_MAX]; // group-by fields, request order
    size_t n_fields;                                // fields in use
    s_group_t *groups;                              // every group, in creation order
    size_t n_groups;                                // groups in use
    size_t cap_groups;                              // groups allocated
    uint32_t *slots;                                // hash table: group index + 1, 0 = free
    size_t n_slots;                                 // table size, a power of two
    uint64_t matched;                               // records added
    Kmx__V1__Row *rows;                             // result rows
    Kmx__V1__Row **row_ptrs;                        // result row pointers, for QueryResult
    char **keys;                                    // result keys, n_fields per row
};

// Field values for one record; buffers for the values that must be formatted.
typedef struct {
    const char *vals[KMX_AGG_FIELDS_MAX + 1]; // field values, then the unit
    char period[KMX_PERIOD_TEXT_MAX];         // formatted period
    char year[16];                            // start year
} s_values_t;

int kmx_agg_check_fields(const Kmx__V1__GroupField *fields, size_t n) {
    if (n > KMX_AGG_FIELDS_MAX || (n > 0 && !fields))
        return KMX_ERR_INVAL;
    for (size_t i = 0; i < n; i++) {
        if (fields[i] < KMX__V1__GROUP_FIELD__BY_MARKET ||
            fields[i] > KMX__V1__GROUP_FIELD__BY_UNIT)
            return KMX_ERR_INVAL;
    }
    return 0;
}

kmx_agg_t *kmx_agg_new(const Kmx__V1__GroupField *fields, size_t n) {
    if (kmx_agg_check_fields(fields, n) != 0)
        return NULL;
    kmx_agg_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    if (n > 0)
        memcpy(self->fields, fields, n * sizeof *fields);
    self->n_fields = n;
    self->n_slots = 64;
    self->slots = calloc(self->n_slots, sizeof *self->slots);
    if (!self->slots)
        kmx_agg_destroy(&self);
    return self;
}

static void s_free_result(kmx_agg_t *self) {
    free(self->rows);
    free(self->row_ptrs);
    free(self->keys);
    self->rows = NULL;
    self->row_ptrs = NULL;
    self->keys = NULL;
}

void kmx_agg_destroy(kmx_agg_t **self_p) {
    if (!self_p || !*self_p)
        return;
    kmx_agg_t *self = *self_p;
    for (size_t i = 0; i < self->n_groups; i++)
        free(self->groups[i].key);
    free(self->groups);
    free(self->slots);
    s_free_result(self);
    free(self);
    *self_p = NULL;
}

static const char *s_str(const char *s) {
    return s ? s : "";
}

static const char *s_field_value(Kmx__V1__GroupField field, const Kmx__V1__Record *rec,
                                 s_values_t *v) {
    switch (field) {
    case KMX__V1__GROUP_FIELD__BY_MARKET:
        return s_str(rec->market);
    case KMX__V1__GROUP_FIELD__BY_REGION:
        return kmx_market_region(s_str(rec->market));
    case KMX__V1__GROUP_FIELD__BY_PERIOD:
        return v->period;
    case KMX__V1__GROUP_FIELD__BY_YEAR:
        return v->year;
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
    default: // BY_UNIT; kmx_agg_new refuses anything else
        return s_str(rec->value->unit);
    }
}

static void s_values(const kmx_agg_t *self, const Kmx__V1__Record *rec, s_values_t *v) {
    kmx_period_t p = {rec->period->start, rec->period->end};
    // Stored periods are valid; a damaged one still gets a stable, visible key.
    if (kmx_period_format(&p, v->period, sizeof v->period) != 0)
        snprintf(v->period, sizeof v->period, "%u/%u", p.start, p.end);
    snprintf(v->year, sizeof v->year, "%u", p.start / 100);
    for (size_t i = 0; i < self->n_fields; i++)
        v->vals[i] = s_field_value(self->fields[i], rec, v);
    v->vals[self->n_fields] = s_str(rec->value->unit);
}

// Builds the composite key into a malloc'd buffer. Returns it, or NULL out of memory.
static char *s_key(const s_values_t *v, size_t n_vals, size_t *len, uint64_t *hash) {
    size_t total = 0;
    for (size_t i = 0; i < n_vals; i++)
        total += strlen(v->vals[i]) + 1;
    char *key = malloc(total);
    if (!key)
        return NULL;
    char *at = key;
    for (size_t i = 0; i < n_vals; i++) {
        size_t n = strlen(v->vals[i]) + 1;
        memcpy(at, v->vals[i], n);
        at += n;
    }
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < total; i++)
        h = (h ^ (uint8_t)key[i]) * 1099511628211ull;
    *len = total;
    *hash = h;
    return key;
}

// Returns the slot holding key, or the free slot where it belongs.
static size_t s_find(const kmx_agg_t *self, const char *key, size_t len, uint64_t hash) {
    size_t mask = self->n_slots - 1;
    size_t i = (size_t)hash & mask;
    while (self->slots[i] != 0) {
        const s_group_t *g = &self->groups[self->slots[i] - 1];
        if (g->hash == hash && g->key_len == len && memcmp(g->key, key, len) == 0)
            return i;
        i = (i + 1) & mask;
    }
    return i;
}

// Doubles the hash table once it is half full, keeping probe chains short.
static int s_grow_slots(kmx_agg_t *self) {
    if ((self->n_groups + 1) * 2 <= self->n_slots)
        return 0;
    size_t n = self->n_slots * 2;
    uint32_t *slots = calloc(n, sizeof *slots);
    if (!slots)
        return KMX_ERR_NOMEM;
    free(self->slots);
    self->slots = slots;
    self->n_slots = n;
    for (size_t g = 0; g < self->n_groups; g++) {
        size_t i = (size_t)self->groups[g].hash & (n - 1);
        while (slots[i] != 0)
            i = (i + 1) & (n - 1);
        slots[i] = (uint32_t)(g + 1);
    }
    return 0;
}

static int s_grow_groups(kmx_agg_t *self) {
    if (self->n_groups < self->cap_groups)
        return 0;
    size_t cap = self->cap_groups ? self->cap_groups * 2 : 16;
    s_group_t *groups = realloc(self->groups, cap * sizeof *groups);
    if (!groups)
        return KMX_ERR_NOMEM;
    self->groups = groups;
    self->cap_groups = cap;
    return 0;
}

// Opens a group for key (taken over on success). Returns its index or a negative code.
static int s_open_group(kmx_agg_t *self, char *key, size_t len, uint64_t hash) {
    if (self->n_groups >= KMX_AGG_GROUPS_MAX)
        return KMX_ERR_TOO_BIG;
    if (s_grow_slots(self) != 0 || s_grow_groups(self) != 0)
        return KMX_ERR_NOMEM;
    s_group_t *g = &self->groups[self->n_groups];
    memset(g, 0, sizeof *g);
    g->key = key;
    g->key_len = len;
    g->hash = hash;
    self->slots[s_find(self, key, len, hash)] = (uint32_t)(self->n_groups + 1);
    return (int)self->n_groups++;
}

int kmx_agg_add(kmx_agg_t *self, const Kmx__V1__Record *rec) {
    if (!self || !rec)
        return KMX_ERR_INVAL;
    self->matched++;
    if (!rec->value || !rec->period)
        return 0;
    s_values_t v;
    s_values(self, rec, &v);
    size_t len = 0;
    uint64_t hash = 0;
    char *key = s_key(&v, self->n_fields + 1, &len, &hash);
    if (!key)
        return KMX_ERR_NOMEM;
    size_t slot = s_find(self, key, len, hash);
    int index;
    if (self->slots[slot] != 0) {
        free(key);
        index = (int)self->slots[slot] - 1;
    } else {
        index = s_open_group(self, key, len, hash);
        if (index < 0) {
            free(key);
            return index;
        }
    }
    s_group_t *g = &self->groups[index];
    int64_t amount = rec->value->amount;
    if (g->count == 0 || amount < g->min)
        g->min = amount;
    if (g->count == 0 || amount > g->max)
        g->max = amount;
    g->sum += amount;
    g->count++;
    return 0;
}

int kmx_agg_add_stored(kmx_agg_t *self, Kmx__V1__StoredRecord *const *recs, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (!recs[i] || !recs[i]->record)
            continue;
        int rc = kmx_agg_add(self, recs[i]->record);
        if (rc != 0)
            return rc;
    }
    return 0;
}

uint64_t kmx_agg_matched(const kmx_agg_t *self) {
    return self ? self->matched : 0;
}

size_t kmx_agg_groups(const kmx_agg_t *self) {
    return self ? self->n_groups : 0;
}

// Compares composite keys segment by segment, so "a" sorts before "a b" whatever follows.
static int s_cmp_keys(const s_group_t *a, const s_group_t *b) {
    size_t ia = 0, ib = 0;
    while (ia < a->key_len && ib < b->key_len) {
        int c = strcmp(a->key + ia, b->key + ib);
        if (c != 0)
            return c;
        ia += strlen(a->key + ia) + 1;
        ib += strlen(b->key + ib) + 1;
    }
    return (ia < a->key_len) - (ib < b->key_len);
}

static int s_cmp_by_keys(const void *pa, const void *pb) {
    return s_cmp_keys(*(const s_group_t *const *)pa, *(const s_group_t *const *)pb);
}

static int s_cmp_by_sum(const void *pa, const void *pb) {
    const s_group_t *a = *(const s_group_t *const *)pa;
    const s_group_t *b = *(const s_group_t *const *)pb;
    if (a->sum != b->sum)
        return a->sum > b->sum ? -1 : 1;
    return s_cmp_keys(a, b);
}

static void s_fill_row(const kmx_agg_t *self, s_group_t *g, Kmx__V1__Row *row, char **keys) {
    kmx__v1__row__init(row);
    const char *at = g->key;
    for (size_t f = 0; f < self->n_fields; f++) {
        keys[f] = (char *)at;
        at += strlen(at) + 1;
    }
    row->n_keys = self->n_fields;
    row->keys = self->n_fields ? keys : NULL;
    row->unit = (char *)at;
    if (kmx_decimal_format128(g->sum, g->sum_text, sizeof g->sum_text) != 0)
        snprintf(g->sum_text, sizeof g->sum_text, "overflow");
    row->sum = g->sum_text;
    row->has_count = row->has_min = row->has_max = 1;
    row->count = g->count;
    row->min = g->min;
    row->max = g->max;
}

int kmx_agg_result(kmx_agg_t *self, uint32_t top, Kmx__V1__QueryResult *out) {
    if (!self || !out)
        return KMX_ERR_INVAL;
    s_free_result(self);
    size_t n = self->n_groups;
    size_t alloc = n ? n : 1;
    s_group_t **order = malloc(alloc * sizeof *order);
    self->rows = malloc(alloc * sizeof *self->rows);
    self->row_ptrs = malloc(alloc * sizeof *self->row_ptrs);
    self->keys = malloc(alloc * (self->n_fields ? self->n_fields : 1) * sizeof *self->keys);
    if (!order || !self->rows || !self->row_ptrs || !self->keys) {
        free(order);
        s_free_result(self);
        return KMX_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++)
        order[i] = &self->groups[i];
    qsort(order, n, sizeof *order, top > 0 ? s_cmp_by_sum : s_cmp_by_keys);
    if (top > 0 && top < n)
        n = top;
    for (size_t i = 0; i < n; i++) {
        s_fill_row(self, order[i], &self->rows[i], &self->keys[i * self->n_fields]);
        self->row_ptrs[i] = &self->rows[i];
    }
    free(order);
    out->n_rows = n;
    out->rows = self->row_ptrs;
    out->has_matched = 1;
    out->matched = self->matched;
    return 0;
}
