/*  kmx_keymap - a hash map from short byte keys to fixed-size values, walked in the order
    the keys were first added. Storage sums a write transaction's changes per derived key
    in one (roll-ups, catalog counts) and writes each key once at commit.  */
#ifndef KMX_KEYMAP_H
#define KMX_KEYMAP_H

#include <stddef.h>

typedef struct kmx_keymap kmx_keymap_t;

// Returns an empty map for keys of at most key_max bytes and values of value_size bytes
// (value_size > 0), or NULL when out of memory or an argument is 0. Values are aligned
// for any type (max_align_t). Release it with kmx_keymap_destroy.
kmx_keymap_t *kmx_keymap_new(size_t key_max, size_t value_size);
void kmx_keymap_destroy(kmx_keymap_t **self_p);

// Forgets every key; the memory is kept for the next use.
void kmx_keymap_clear(kmx_keymap_t *self);

// Returns the value of key (len bytes, 1 to key_max), added zero-filled when the key is
// new, or NULL when len is out of range or memory ran out (the map is then unchanged).
// The pointer stays valid until the next kmx_keymap_upsert, _clear or _destroy.
void *kmx_keymap_upsert(kmx_keymap_t *self, const void *key, size_t len);

// Returns the number of keys.
size_t kmx_keymap_size(const kmx_keymap_t *self);

// Returns the value of the i-th key in first-added order (i < kmx_keymap_size) and sets
// *key and *len to that key; valid as kmx_keymap_upsert's result is.
void *kmx_keymap_at(const kmx_keymap_t *self, size_t i, const void **key, size_t *len);

#endif
