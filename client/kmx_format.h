/*  kmx_format - output for the kmx CLI: JSON string escaping, RFC 4180 CSV fields,
    aligned text tables, and the one mapping from a record to named output columns so
    table, CSV and JSON agree on field names (documented in docs/json.md).  */
#ifndef KMX_FORMAT_H
#define KMX_FORMAT_H

#include "kmx.pb-c.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum { KMX_FORMAT_TABLE = 0, KMX_FORMAT_JSON, KMX_FORMAT_CSV } kmx_format_kind_t;

// Parses "table", "json", "csv". Returns 0 or KMX_ERR_INVAL.
int kmx_format_parse(const char *text, kmx_format_kind_t *out);

// Writes s as one CSV field, quoted (with doubled quotes) when it holds a comma, quote,
// CR or LF, or starts or ends with a blank. NULL is written as an empty field.
void kmx_format_csv_field(FILE *out, const char *s);

// Writes n fields as one CSV row ending in CRLF-free "\n".
void kmx_format_csv_row(FILE *out, const char *const *fields, size_t n);

// Returns the number of terminal columns text occupies (wide CJK and Hangul count 2).
size_t kmx_format_width(const char *text);

// ---- tables ---------------------------------------------------------------------

typedef struct kmx_format_table kmx_format_table_t;

// Creates a table with ncols columns named by headers (copied). Returns NULL on failure.
kmx_format_table_t *kmx_format_table_new(const char *const *headers, size_t ncols);
void kmx_format_table_destroy(kmx_format_table_t **self_p);

// Right-aligns column col (for numbers).
void kmx_format_table_align_right(kmx_format_table_t *self, size_t col);

// Appends a row of ncols cells (copied; NULL prints as empty). Returns 0 or KMX_ERR_NOMEM.
int kmx_format_table_add(kmx_format_table_t *self, const char *const *cells);

// Prints the header, a rule and the rows with columns two spaces apart. Control
// characters inside cells print as spaces so one row stays one line.
void kmx_format_table_print(const kmx_format_table_t *self, FILE *out);

// ---- records ----------------------------------------------------------------------

// Output columns of a record, in order. "seq" and "updated_ms" come from StoredRecord.
#define KMX_FORMAT_RECORD_NCOLS 17
extern const char *const kmx_format_record_columns[KMX_FORMAT_RECORD_NCOLS];

// A record rendered as text cells; cells point into the record or into this struct.
typedef struct {
    const char *cells[KMX_FORMAT_RECORD_NCOLS]; // one per column; NULL when absent
    char period[32];                            // formatted period
    char value[48];                             // exact decimal amount
    char seq[24];                               // sequence number, if known
    char updated_ms[24];                        // commit time, if known
} kmx_format_record_t;

// Renders rec (borrowed; must outlive out). seq and updated_ms are shown when nonzero.
void kmx_format_record_init(kmx_format_record_t *out, const Kmx__V1__Record *rec, uint64_t seq,
                            uint64_t updated_ms);

// Writes the record as one JSON object (no newline; kmx_json_record's shape): strings,
// exact decimal strings for the value, numbers for seq and updated_ms, null for absent
// fields.
void kmx_format_record_json(FILE *out, const kmx_format_record_t *rec);

#endif
