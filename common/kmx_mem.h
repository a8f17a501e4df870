/*  kmx_mem - growing arrays: the one place that doubles a buffer.  */
#ifndef KMX_MEM_H
#define KMX_MEM_H

#include <stddef.h>

// Makes room for element n of *items (cap allocated, each elem bytes): when n == *cap the
// array grows to twice *cap, or to first elements when it is empty. Call it as
// kmx_reserve((void **)&array, &cap, n, sizeof *array, first). Returns 0, or
// KMX_ERR_NOMEM with *items and *cap unchanged.
int kmx_reserve(void **items, size_t *cap, size_t n, size_t elem, size_t first);

#endif
