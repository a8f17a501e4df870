/*  kmx_mem - growing arrays, see kmx_mem.h.  */
#include "kmx_mem.h"

#include "kmx_err.h"

#include <stdint.h>
#include <stdlib.h>

int kmx_reserve(void **items, size_t *cap, size_t n, size_t elem, size_t first) {
    if (n < *cap)
        return 0;
    if (*cap > SIZE_MAX / 2)
        return KMX_ERR_NOMEM;
    size_t next = *cap ? *cap * 2 : (first ? first : 16);
    if (elem == 0 || next > SIZE_MAX / elem)
        return KMX_ERR_NOMEM;
    void *grown = realloc(*items, next * elem);
    if (!grown)
        return KMX_ERR_NOMEM;
    *items = grown;
    *cap = next;
    return 0;
}
