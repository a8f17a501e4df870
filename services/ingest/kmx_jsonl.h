/*  kmx_jsonl - reads one JSON Lines record: a flat JSON object whose members become
    (column, cell) pairs for kmx_import. Strings are unescaped to UTF-8, numbers keep
    their exact text (so "233.113" never passes through floating point), true/false
    become "true"/"false" and null an empty cell. Nested objects and arrays are refused.  */
#ifndef KMX_JSONL_H
#define KMX_JSONL_H

#include <stddef.h>

#define KMX_JSONL_ERROR_MAX 160 // longest error sentence, with NUL

typedef struct kmx_jsonl kmx_jsonl_t;

// Creates a reader refusing members longer than field_max bytes and objects with more
// than fields_max members. Returns NULL when out of memory.
kmx_jsonl_t *kmx_jsonl_new(size_t field_max, size_t fields_max);
void kmx_jsonl_destroy(kmx_jsonl_t **self_p);

// Parses line[0..len) (no line break). Returns the member count with *names and *cells
// pointing at NUL-terminated strings owned by the reader (valid until the next call), or
// KMX_ERR_INVAL (not a flat object, bad escape, NUL inside a string, a repeated name),
// KMX_ERR_TOO_BIG (a limit), KMX_ERR_NOMEM; kmx_jsonl_error() then says why.
int kmx_jsonl_parse(kmx_jsonl_t *self, const char *line, size_t len, const char ***names,
                    const char ***cells);

// The last error as a sentence, or "".
const char *kmx_jsonl_error(const kmx_jsonl_t *self);

#endif
