/*  kmx_qargs - the options of `kmx query`, `kmx list` and `kmx get` (filters, grouping,
    metrics, top N, share, growth, pages) turned into kmx.v1 requests, and a query answer
    turned into its named output columns. One definition for the CLI (getopt) and for
    kmx-gateway (URL query parameters of the same names), so both accept the same options
    and print the same columns. Errors are sentences in self->err, never printed here.  */
#ifndef KMX_QARGS_H
#define KMX_QARGS_H

#include "kmx.pb-c.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KMX_QARGS_BY_MAX 10                        // --by fields
#define KMX_QARGS_COLS_MAX (KMX_QARGS_BY_MAX + 16) // output columns of a query
#define KMX_QARGS_ERR_MAX 300                      // longest error sentence, with NUL

// Option codes (getopt values). Above any single character and the CLI's common options.
enum {
    KMX_QARG_PERIOD = 2000,
    KMX_QARG_FROM,
    KMX_QARG_TO,
    KMX_QARG_MARKET,
    KMX_QARG_REGION,
    KMX_QARG_CATEGORY,
    KMX_QARG_ITEM,
    KMX_QARG_COMPANY,
    KMX_QARG_ARTIST,
    KMX_QARG_UNIT,
    KMX_QARG_SOURCE,
    KMX_QARG_GRANULARITY,
    KMX_QARG_BY,
    KMX_QARG_TOP,
    KMX_QARG_KIND,
    KMX_QARG_METRICS,
    KMX_QARG_OTHER,
    KMX_QARG_SHARE,
    KMX_QARG_GROWTH,
    KMX_QARG_SERIES,
    KMX_QARG_LATEST,
    KMX_QARG_PREFER,
    KMX_QARG_UNALLOCATED,
    KMX_QARG_COMPLETE,
    KMX_QARG_SCALE,
    KMX_QARG_PIVOT,
    KMX_QARG_LIMIT,
    KMX_QARG_PAGE_TOKEN,
};

// One option: its long name, whether it takes a value, its code.
typedef struct {
    const char *name; // long option name ("period", "time-series")
    bool has_value;   // takes a value (--period 2024) or is a switch (--share)
    int code;         // KMX_QARG_*
} kmx_qargs_option_t;

// Every option, ending with {NULL, false, 0}.
extern const kmx_qargs_option_t kmx_qargs_options[];

// Which command the options are for: it decides which options are accepted.
typedef enum { KMX_QARGS_QUERY = 0, KMX_QARGS_LIST, KMX_QARGS_GET } kmx_qargs_cmd_t;

// A growing list of strings from repeatable or comma-separated options.
typedef struct {
    char **items; // malloc'd strings
    size_t n;     // number of items
} kmx_qargs_list_t;

typedef struct {
    kmx_qargs_cmd_t cmd;       // the command
    bool has_kind;             // a kind was named
    Kmx__V1__Kind kind;        // the kind
    const char *period;        // --period (borrowed)
    const char *from;          // --from (borrowed)
    const char *to;            // --to (borrowed)
    kmx_qargs_list_t lists[8]; // markets, regions, categories, items, companies,
                               // artists, units, sources (KMX_QARG_MARKET.. order)
    const char *granularity;   // --granularity (borrowed)
    kmx_qargs_list_t by;       // --by fields as written
    unsigned top;              // --top
    kmx_qargs_list_t metrics;  // --metrics as written
    bool other;                // --other
    bool share;                // --share
    Kmx__V1__Growth growth;    // --growth
    bool series;               // --time-series
    bool latest;               // --latest
    bool prefer;               // --prefer: one of each set of alternatives (data-model.md)
    bool unallocated;          // --unallocated: a stored total minus its listed parts
    bool complete;             // --complete: only rows covering their whole bucket
    const char *scale;         // --scale auto|thousand|million|billion (table and CSV)
    const char *pivot;         // --pivot FIELD: one column per value of FIELD
    unsigned limit;            // list --limit: one page of this many records
    const char *page_token;    // list --page-token (hex, borrowed)
    Kmx__V1__Filter filter;    // built by kmx_qargs_finish
    Kmx__V1__Period range;     // the filter's period
    Kmx__V1__GroupField group[KMX_QARGS_BY_MAX]; // --by as wire fields
    Kmx__V1__Metric metric[5];                   // --metrics as wire values
    char err[KMX_QARGS_ERR_MAX];                 // what was wrong, after a failure
} kmx_qargs_t;

// Appends a copy of text as one item. Returns 0 or KMX_ERR_NOMEM.
int kmx_qargs_list_push(kmx_qargs_list_t *list, const char *text);

// Appends the comma-separated items of text (blanks around each trimmed, empty ones
// skipped). Returns 0 or KMX_ERR_NOMEM.
int kmx_qargs_list_add(kmx_qargs_list_t *list, const char *text);
void kmx_qargs_list_free(kmx_qargs_list_t *list);

// Parses a non-negative decimal integer of at most max. Returns 0 or KMX_ERR_INVAL.
int kmx_qargs_parse_u64(const char *text, unsigned long long max, unsigned long long *out);

// Starts empty arguments for cmd. Release with kmx_qargs_fini.
void kmx_qargs_init(kmx_qargs_t *self, kmx_qargs_cmd_t cmd);
void kmx_qargs_fini(kmx_qargs_t *self);

// Finds the option called name ("period"); NULL when there is none.
const kmx_qargs_option_t *kmx_qargs_find(const char *name);

// Applies option code with value arg (borrowed: must outlive self; NULL for a switch).
// Returns 1 when applied, 0 when cmd does not take that option, -1 for a bad value
// (self->err says why).
int kmx_qargs_set(kmx_qargs_t *self, int code, const char *arg);

// Sets the kind from "exports", "export", "consumption". Returns 0 or -1 (self->err).
int kmx_qargs_set_kind(kmx_qargs_t *self, const char *word);

// Builds the filter, group fields and metrics once every option is in. Returns 0, or -1
// with self->err set.
int kmx_qargs_finish(kmx_qargs_t *self);

// Fills q from finished query arguments (q points into self).
void kmx_qargs_query_request(kmx_qargs_t *self, Kmx__V1__QueryRequest *q);

// Builds the natural key of `get` into key and period (pointing into self). Returns 0 or
// -1 with self->err set.
int kmx_qargs_get_key(kmx_qargs_t *self, Kmx__V1__Record *key, Kmx__V1__Period *period);

// Decodes a page token (hex as kmx list prints it) into scan->page_token (malloc'd: free
// scan->page_token.data). "" means the first page. Returns 0 or -1 with self->err set.
int kmx_qargs_page_token(kmx_qargs_t *self, const char *hex, Kmx__V1__ScanRequest *scan);

// Writes a page token as lower-case hex into out (size >= 2 * len + 1). Returns 0, or -1
// when it does not fit.
int kmx_qargs_token_hex(const uint8_t *data, size_t len, char *out, size_t size);

// ---- query answers --------------------------------------------------------------------

// What one output column shows.
typedef enum {
    KMX_QCOL_KEY,
    KMX_QCOL_UNIT,
    KMX_QCOL_PERIOD,
    KMX_QCOL_SUM,
    KMX_QCOL_COUNT,
    KMX_QCOL_MIN,
    KMX_QCOL_MAX,
    KMX_QCOL_AVG,
    KMX_QCOL_SHARE,
    KMX_QCOL_PREV,
    KMX_QCOL_GROWTH,
    KMX_QCOL_LEVEL,      // the row's market level, or "total", "unallocated", "other"
    KMX_QCOL_SHARE_BASE, // what the share is of: "total" or "rows"
    KMX_QCOL_SHARE_OF,   // the amount the share is of
    KMX_QCOL_MONTHS,     // months of the bucket the row covers
    KMX_QCOL_OF_MONTHS,  // months in the row's bucket
    KMX_QCOL_PARTIAL,    // "partial" when the row covers part of its bucket
} kmx_qcol_kind_t;

typedef struct {
    const char *names[KMX_QARGS_COLS_MAX];    // header of each column
    kmx_qcol_kind_t kind[KMX_QARGS_COLS_MAX]; // what it shows
    size_t key[KMX_QARGS_COLS_MAX];           // for KMX_QCOL_KEY: index into the row's keys
    size_t n;                                 // columns in use
} kmx_qcols_t;

// The columns of an answer to the query self describes: the --by keys, the keys the
// server added, the market level (grouped by market or region), unit, the latest period,
// the metrics asked for (avg added when a unit does not add up; sum left out when no row
// can carry one), share with its base, the months covered (when some row covers only part
// of its bucket), previous and growth. Names point into self or static text.
void kmx_qargs_columns(const kmx_qargs_t *self, const Kmx__V1__QueryResult *res, kmx_qcols_t *out);

// The text of column i of row (NULL when absent); counts and amounts go through buf.
const char *kmx_qargs_cell(const kmx_qcols_t *cols, size_t i, const Kmx__V1__Row *row, char *buf,
                           size_t size);

// The answer as the JSON document `kmx query --format json` prints (docs/json.md), or
// NULL when out of memory. Yours: json_decref it.
json_t *kmx_qargs_json(const kmx_qcols_t *cols, const Kmx__V1__QueryResult *res);

#endif
