/*  kmx_json - kmx's JSON documents built with jansson: records, amounts, change events and
    import summaries, in the shapes docs/json.md fixes, written compactly with keys in
    insertion order. The CLI and kmx-gateway both print through here, so one record or
    one event has one JSON form wherever it is seen.  */
#ifndef KMX_JSON_H
#define KMX_JSON_H

#include "kmx.pb-c.h"
#include "kmx_format.h"
#include "kmx_import.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define KMX_JSON_FIELD_MAX KMX_IMPORT_COLUMN_MAX // longest field of a rejected row, with NUL
#define KMX_JSON_REASON_MAX 256                  // longest reason kept, with NUL

// A string value: null for NULL, the text for valid UTF-8, and for invalid UTF-8 the text
// with each bad byte replaced by U+FFFD (jansson holds only valid UTF-8). NULL when out
// of memory.
json_t *kmx_json_string(const char *s);

// A Value's amount as an exact decimal string, or null.
json_t *kmx_json_amount(const Kmx__V1__Value *value);

// A record as rendered by kmx_format_record_init: every column, null when absent, seq and
// updated_ms as integers. NULL when out of memory.
json_t *kmx_json_record(const kmx_format_record_t *rec);

// A change event as `kmx watch --format json` prints it: seq, type, topic, record,
// previous, committed_ms. NULL when out of memory.
json_t *kmx_json_event(const Kmx__V1__UpdateEvent *ev);

// The catalog as `kmx catalog --format json` prints it: last_seq, records, markets,
// regions, categories (with unit, first and last period), items, sources, companies,
// artists. NULL when out of memory.
json_t *kmx_json_catalog(const Kmx__V1__CatalogResult *catalog);

// A delete's answer as `kmx delete --format json` prints it: {"outcome":"deleted","seq":N}
// with the sequence of the delete event. NULL when out of memory.
json_t *kmx_json_deleted(uint64_t seq);

// The event type's name: "upsert", "delete", "heartbeat" or "unknown".
const char *kmx_json_event_type(Kmx__V1__EventType type);

// One row an import refused.
typedef struct {
    uint32_t row;                     // line the row started on (header = 1)
    char field[KMX_JSON_FIELD_MAX];   // column or record field at fault, or ""
    char reason[KMX_JSON_REASON_MAX]; // why it was refused
} kmx_json_reject_t;

// What an import did, as `kmx import --format json` reports it.
typedef struct {
    size_t rows;                      // rows the server read
    size_t stored;                    // records stored
    size_t unchanged;                 // records already stored (or earlier revisions)
    size_t rejected;                  // records rejected
    size_t duplicates;                // of them, repeats of a key earlier in the input
    uint64_t last_seq;                // newest sequence reported
    double seconds;                   // time taken
    bool atomic_refused;              // an atomic import stored nothing: rows were bad
    bool dry_run;                     // only checked, nothing stored
    const kmx_json_reject_t *rejects; // rejected rows, ordered by row (borrowed)
    size_t nrejects;                  // entries in rejects
    uint64_t retries;                 // tries beyond the first the import needed
} kmx_json_import_t;

// The import summary document. NULL when out of memory.
json_t *kmx_json_import(const kmx_json_import_t *summary);

// How an import's input was read, as the summary reports it after the counts.
typedef struct {
    size_t records;        // records the rows yielded (a wide file: one per cell)
    size_t skipped;        // empty and "-" cells of a wide file skipped
    const char *encoding;  // the encoding the server read, or NULL
    char *const *warnings; // what was read other than as written (borrowed)
    size_t n_warnings;     // entries in warnings
    json_t *preview;       // a dry run's first records (taken; NULL: none)
    const char *error;     // why the input was refused whole, or NULL
} kmx_json_import_read_t;

// Appends records, skipped, encoding, warnings, preview and error to an import summary
// (doc may be NULL: nothing is done but preview is released).
void kmx_json_import_read(json_t *doc, const kmx_json_import_read_t *read);

// Writes doc compactly (no newline). DEL is written as \u007f like the other control
// characters. Returns 0, or -1 when out of memory or the write failed.
int kmx_json_dumpf(const json_t *doc, FILE *out);

// doc as a malloc'd NUL-terminated string (yours: free it), length in *len when len is
// not NULL; NULL when out of memory.
char *kmx_json_dumps(const json_t *doc, size_t *len);

#endif
