/*  kmx_iargs - the options of an import that say how a file is read, shared by
    `kmx import` (--encoding, --delimiter, --map, --default, --ignore-extra, --wide/--long,
    --date-order, --excel-dates) and kmx-gateway's POST /v1/import (the same names as query
    parameters), so both fill a RawDocument the same way and refuse the same values with
    the same words.  */
#ifndef KMX_IARGS_H
#define KMX_IARGS_H

#include "kmx.pb-c.h"

#include <stdbool.h>
#include <stddef.h>

#define KMX_IARGS_DEFAULTS_MAX 32 // default= / --default
#define KMX_IARGS_MAPS_MAX 64     // map= / --map
#define KMX_IARGS_ERR_MAX 256     // longest refusal

typedef struct {
    Kmx__V1__RawDocument__Encoding encoding;    // encoding=auto|utf-8|cp949 (0: auto)
    char *delimiter;                            // delimiter=, ; tab | ..., malloc'd, or NULL
    bool ignore_extra;                          // ignore_extra
    Kmx__V1__RawDocument__Layout layout;        // layout=wide|long (0: by the header)
    Kmx__V1__RawDocument__DateOrder date_order; // date_order=mdy|dmy (0: unset)
    bool excel_dates;                           // excel_dates
    Kmx__V1__RawDocument__Default defaults[KMX_IARGS_DEFAULTS_MAX]; // default=COLUMN=VALUE
    Kmx__V1__RawDocument__Default *default_ptrs[KMX_IARGS_DEFAULTS_MAX];
    size_t n_defaults;                                        // defaults given
    Kmx__V1__RawDocument__ColumnMap maps[KMX_IARGS_MAPS_MAX]; // map=HEADER=FIELD
    Kmx__V1__RawDocument__ColumnMap *map_ptrs[KMX_IARGS_MAPS_MAX];
    size_t n_maps;                                           // maps given
    char *text[KMX_IARGS_DEFAULTS_MAX + KMX_IARGS_MAPS_MAX]; // malloc'd copies split at '='
    size_t n_text;                                           // entries in text
    char err[KMX_IARGS_ERR_MAX]; // why the last kmx_iargs_set refused its value
} kmx_iargs_t;

void kmx_iargs_init(kmx_iargs_t *self);
void kmx_iargs_fini(kmx_iargs_t *self);

// Takes one option. name is its name with '-' or '_' between words ("date-order" and
// "date_order" are one); value is its value, NULL for a switch given bare. Switches
// (ignore_extra, excel_dates) take no value, "", 1/true or 0/false. Returns 0 when taken,
// 1 when name is none of these options (nothing changed), -1 with err set ("NAME wants
// ..., not \"VALUE\"", NAME as given) when the value is refused or memory ran out.
int kmx_iargs_set(kmx_iargs_t *self, const char *name, const char *value);

// Reads a switch's value as kmx_iargs_set does (NULL, "", 1/true: on; 0/false:
// off). Returns 0, or -1 for any other value.
int kmx_iargs_switch(const char *value, bool *on);

// Fills doc's fields for these options. doc then points into self: keep self until doc
// has been packed.
void kmx_iargs_apply(const kmx_iargs_t *self, Kmx__V1__RawDocument *doc);

#endif
