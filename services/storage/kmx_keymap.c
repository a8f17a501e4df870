/*  kmx_keymap - open addressing over a dense array of entries kept in first-added order:
    the slot table holds entry numbers, so growing it moves no entry, and walking the
    map in order is walking the array.  */
#include "kmx_keymap.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define S_SLOTS0 256 // initial slots (a power of two)

// An entry: this header, then key_max key bytes, then the value, at a stride that keeps
// every value aligned.
typedef struct {
    uint64_t hash; // FNV-1a of the key
    size_t len;    // bytes in the key
} s_head_t;

struct kmx_keymap {
    size_t key_max;    // longest key
    size_t value_size; // bytes in a value
    size_t value_off;  // offset of the value in an entry
    size_t stride;     // bytes per entry, a multiple of alignof(max_align_t)
    uint8_t *entries;  // n entries in first-added order, room for cap_entries
    size_t n;          // keys
    size_t cap_entries;
    uint32_t *slots; // entry number + 1, 0 = free; nslots is a power of two
    size_t nslots;
};

static size_t s_round(size_t n) {
    size_t a = alignof(max_align_t);
    return (n + a - 1) / a * a;
}

kmx_keymap_t *kmx_keymap_new(size_t key_max, size_t value_size) {
    if (key_max == 0 || value_size == 0)
        return NULL;
    kmx_keymap_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->key_max = key_max;
    self->value_size = value_size;
    self->value_off = s_round(sizeof(s_head_t) + key_max);
    self->stride = s_round(self->value_off + value_size);
    self->nslots = S_SLOTS0;
    self->slots = calloc(self->nslots, sizeof *self->slots);
    if (!self->slots)
        kmx_keymap_destroy(&self);
    return self;
}

void kmx_keymap_destroy(kmx_keymap_t **self_p) {
    if (!self_p || !*self_p)
        return;
    free((*self_p)->entries);
    free((*self_p)->slots);
    free(*self_p);
    *self_p = NULL;
}

static s_head_t *s_entry(const kmx_keymap_t *self, size_t i) {
    return (s_head_t *)(self->entries + i * self->stride);
}

void kmx_keymap_clear(kmx_keymap_t *self) {
    if (self->n > 0)
        memset(self->slots, 0, self->nslots * sizeof *self->slots);
    self->n = 0;
}

static uint64_t s_hash(const uint8_t *p, size_t len) {
    uint64_t h = 1469598103934665603u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 1099511628211u;
    return h;
}

// Returns the slot holding key, or the free slot where it belongs.
static size_t s_probe(const kmx_keymap_t *self, const uint32_t *slots, size_t nslots,
                      const void *key, size_t len, uint64_t hash) {
    size_t i = (size_t)hash & (nslots - 1);
    while (slots[i] != 0) {
        const s_head_t *e = s_entry(self, slots[i] - 1);
        if (e->hash == hash && e->len == len && memcmp(e + 1, key, len) == 0)
            break;
        i = (i + 1) & (nslots - 1);
    }
    return i;
}

// Makes room for one more key: the slot table at most half full, the entry array with a
// free entry. Returns 0 or -1 (out of memory; nothing changed).
static int s_reserve(kmx_keymap_t *self) {
    if (self->n == self->cap_entries) {
        size_t cap = self->cap_entries ? self->cap_entries * 2 : S_SLOTS0 / 2;
        if (cap > UINT32_MAX - 1)
            return -1;
        uint8_t *entries = realloc(self->entries, cap * self->stride);
        if (!entries)
            return -1;
        self->entries = entries;
        self->cap_entries = cap;
    }
    if ((self->n + 1) * 2 <= self->nslots)
        return 0;
    size_t nslots = self->nslots * 2;
    uint32_t *slots = calloc(nslots, sizeof *slots);
    if (!slots)
        return -1;
    for (size_t i = 0; i < self->n; i++) {
        const s_head_t *e = s_entry(self, i);
        slots[s_probe(self, slots, nslots, e + 1, e->len, e->hash)] = (uint32_t)i + 1;
    }
    free(self->slots);
    self->slots = slots;
    self->nslots = nslots;
    return 0;
}

void *kmx_keymap_upsert(kmx_keymap_t *self, const void *key, size_t len) {
    if (len == 0 || len > self->key_max)
        return NULL;
    uint64_t hash = s_hash(key, len);
    size_t i = s_probe(self, self->slots, self->nslots, key, len, hash);
    if (self->slots[i] == 0) {
        if (s_reserve(self) != 0)
            return NULL;
        i = s_probe(self, self->slots, self->nslots, key, len, hash); // the table may have grown
        s_head_t *e = s_entry(self, self->n);
        e->hash = hash;
        e->len = len;
        memcpy(e + 1, key, len);
        memset((uint8_t *)e + self->value_off, 0, self->value_size);
        self->slots[i] = (uint32_t)++self->n;
    }
    return (uint8_t *)s_entry(self, self->slots[i] - 1) + self->value_off;
}

size_t kmx_keymap_size(const kmx_keymap_t *self) {
    return self->n;
}

void *kmx_keymap_at(const kmx_keymap_t *self, size_t i, const void **key, size_t *len) {
    s_head_t *e = s_entry(self, i);
    *key = e + 1;
    *len = e->len;
    return (uint8_t *)e + self->value_off;
}
