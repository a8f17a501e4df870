/*  kmx_import - turns CSV rows into kmx.v1.Record messages for `kmx import`.
    A header row is mapped once to record fields (with aliases); each data row is then
    converted exactly: kind and period parsed, the value scaled into ten-thousandths of
    its base unit by decimal arithmetic, status and confidence read by name.

    Header names are matched case-insensitively after trimming blanks; '-' and ' ' count
    as '_'. Columns and their aliases:
        kind | type | direction              export | exports | consumption (required)
        period | time_period | year | date   2023, 2025-H1, 1H 2025, Q3 2024, 2024-03,
                                             Mar 2024, 2023-01/2023-04 (required)
        market | country | territory | region | destination
                                             JP, Japan, WORLD, a region, JP+CN+US, ...
        category | category_or_dimension | dimension | segment   (required)
        item | series | indicator | metric                       (required)
        company | label | agency
        artist | act
        value | amount                       decimal, "1,801.45" allowed (required); may
                                             end with its unit ("1.5 USD_million", "12%")
        value_<unit> | amount_<unit>         a value column naming its unit
                                             ("value_usd_million", "Value (KRW bn)")
        unit | units | currency | measure    USD, USD_million, USD million, KRW bn, %, ...
        source | publisher | source_name
        status | revision                    preliminary | revised | final
        as_of | asof | retrieved | published YYYY-MM-DD
        note | notes | remarks
        url | link | source_url
        confidence | quality                 low | medium | high
    A unit is required from one of: the unit column, the value column's name, the cell.
    Ignorable columns (read and dropped): id, seq, updated_ms, comment, comments, and any
    column whose name starts with "x_" or "_". Any other column is an error naming it.
    Empty cells leave the field unset.
    Every column also has Korean aliases (종류, 기간, 국가, 분류, 품목, 금액, 단위, 출처, ...:
    the table is in kmx_import.c and docs/cli.md), and kind, status and confidence cells
    may be Korean (수출, 소비; 잠정, 수정, 확정; 낮음, 보통, 높음).
    Wide files: when no column is the period but some header names are periods ("2019",
    "2024.01", "2024년 1월", "2024 1/4"), or when the layout is KMX_IMPORT_WIDE, each such
    column is a period and each of its cells one record's value; empty and "-" cells are
    skipped and counted.  */
#ifndef KMX_IMPORT_H
#define KMX_IMPORT_H

#include "kmx.pb-c.h"
#include "kmx_period.h"

#include <stddef.h>

#define KMX_IMPORT_COLUMN_MAX 64  // longest column name kept in an error, with NUL
#define KMX_IMPORT_REASON_MAX 600 // longest reason, with NUL (a header may list many columns)

typedef struct kmx_import kmx_import_t;

// A value for a column a file leaves out or empty ({"source", "KOCCA"}).
typedef struct {
    const char *column; // any column name or alias above
    const char *value;  // the cell text to use
} kmx_import_default_t;

// Where and why a header or row was refused.
typedef struct {
    size_t row;                         // line number the row started on (header = 1)
    char column[KMX_IMPORT_COLUMN_MAX]; // the column as written in the header, or ""
    char reason[KMX_IMPORT_REASON_MAX]; // a sentence saying what is wrong
} kmx_import_error_t;

// A header name given a field by the caller (--map HEADER=FIELD).
typedef struct {
    const char *header; // the column as written (compared like aliases)
    const char *field;  // any column name or alias above, or "ignore"
} kmx_import_map_t;

typedef enum { KMX_IMPORT_AUTO = 0, KMX_IMPORT_LONG, KMX_IMPORT_WIDE } kmx_import_layout_t;

// Everything that changes how a header is mapped and cells are read. Zero is the default.
typedef struct {
    const kmx_import_default_t *defaults; // values for absent or empty cells (borrowed)
    size_t ndefaults;                     // entries in defaults
    const kmx_import_map_t *maps;         // header names given a field (borrowed)
    size_t nmaps;                         // entries in maps
    int ignore_extra;                     // nonzero: unknown columns are dropped with a warning
    kmx_import_layout_t layout;           // long, wide, or decided from the header
    kmx_period_opts_t period;             // date order and Excel serials for period cells
} kmx_import_opts_t;

// Maps a header row with options (opts may be NULL). On 0, *out is yours. On KMX_ERR_INVAL,
// err names the problem: every unknown column at once, each with its closest alias; a
// repeated column; a missing required one; an unknown default or map field.
int kmx_import_new_opts(const char *const *header, size_t ncols, const kmx_import_opts_t *opts,
                        kmx_import_t **out, kmx_import_error_t *err);

// Returns the i-th column's name as the header wrote it, or NULL past the last column.
const char *kmx_import_column_name(const kmx_import_t *self, size_t i);

// Returns nonzero when the mapping reads a wide file (a column per period).
int kmx_import_is_wide(const kmx_import_t *self);

// Returns the number of warnings the header produced (ignored columns, unused maps) and
// the i-th as a sentence, valid while self lives.
size_t kmx_import_warning_count(const kmx_import_t *self);
const char *kmx_import_warning(const kmx_import_t *self, size_t i);

// Receives each record (yours, or NULL with err saying why the cell or row was refused) of
// a row. Returns 0 to go on or a negative kmx_err_t to stop.
typedef int (*kmx_import_emit_fn)(void *ctx, Kmx__V1__Record *rec, const kmx_import_error_t *err);

// Converts one data row into its records: one for a long file, one per non-empty period
// cell for a wide file, handed to emit in column order. Returns the number of empty and
// "-" cells skipped (>= 0), KMX_ERR_NOMEM, or what emit returned.
int kmx_import_row_each(const kmx_import_t *self, const char *const *fields, size_t nfields,
                        size_t row, kmx_import_emit_fn emit, void *ctx);

// Maps a header row (ncols names, borrowed) to record fields. On 0, *out is yours; release
// it with kmx_import_destroy(). Returns KMX_ERR_INVAL with *err filled (row 1) for an
// unknown or duplicated column or a missing required one, or KMX_ERR_NOMEM.
int kmx_import_new(const char *const *header, size_t ncols, kmx_import_t **out,
                   kmx_import_error_t *err);
void kmx_import_destroy(kmx_import_t **self_p);

// Same as kmx_import_new with defaults (borrowed, copied) for absent or empty cells; a
// required column may then be missing from the header. An unknown default column is
// KMX_ERR_INVAL with err->column naming it.
int kmx_import_new_defaults(const char *const *header, size_t ncols,
                            const kmx_import_default_t *defaults, size_t ndefaults,
                            kmx_import_t **out, kmx_import_error_t *err);

// Converts one data row (nfields cells, borrowed) that started on line `row` into a new
// Record. On 0, *out is yours: every string and submessage is malloc'd, so free it with
// kmx__v1__record__free_unpacked(*out, NULL) (or kmx_import_record_free). Returns
// KMX_ERR_INVAL with *err filled (row, column, reason) for a wrong cell count, a missing
// required cell, or a kind, period, unit, value, status, as_of or confidence that does
// not parse; KMX_ERR_NOMEM when out of memory. A wide mapping is KMX_ERR_INVAL: use
// kmx_import_row_each.
int kmx_import_row(const kmx_import_t *self, const char *const *fields, size_t nfields, size_t row,
                   Kmx__V1__Record **out, kmx_import_error_t *err);

// Frees a record made by kmx_import_row and clears the pointer. Accepts NULL.
void kmx_import_record_free(Kmx__V1__Record **rec_p);

// The edit distance (Levenshtein, in code points, of the first 64) between two names: how
// misspelt column names and CLI options find the name meant.
size_t kmx_import_distance(const char *a, const char *b);

// Parses "preliminary", "revised", "final" (any case; also 잠정, 수정, 확정). Returns 0 or
// KMX_ERR_INVAL.
int kmx_import_status_parse(const char *text, Kmx__V1__Status *out);

// Parses "low", "medium", "high" (any case; also 낮음, 보통, 높음). Returns 0 or KMX_ERR_INVAL.
int kmx_import_confidence_parse(const char *text, Kmx__V1__Confidence *out);

// Returns the lower-case name of a status or confidence ("final", "high"), or NULL when
// unspecified or unknown.
const char *kmx_import_status_name(Kmx__V1__Status status);
const char *kmx_import_confidence_name(Kmx__V1__Confidence confidence);

#endif
