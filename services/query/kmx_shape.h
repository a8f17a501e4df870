/*  kmx_shape - turns "fine" rows (a query's groups further split by period, as storage's
    aggregate or kmx_agg return them) into the query's answer: the granularity rule that
    keeps a year from being added to its own months, growth versus the previous period,
    share of total, top N with an "other" bucket, time series with empty periods, latest
    value per group and averages; and the category split that keeps different statistics
    apart. Pure computation over rows; no sockets.  */
#ifndef KMX_SHAPE_H
#define KMX_SHAPE_H

#include "kmx.pb-c.h"
#include "kmx_period.h"

#include <stddef.h>
#include <stdint.h>

#define KMX_SHAPE_FIELDS_MAX 10   // group fields one query may name
#define KMX_SHAPE_ROWS_MAX 100000 // rows one answer may hold (series padding included)

typedef enum {
    KMX_SHAPE_GRAN_AUTO = 0, // drop spans covered by a coarser span of the same group
    KMX_SHAPE_GRAN_ANY,      // add everything (may double count; the caller asked for it)
    KMX_SHAPE_GRAN_ONE,      // only one granularity was fetched (filtered by storage)
} kmx_shape_gran_mode_t;

// What the caller asked for. Fill it with kmx_shape_spec_init, then set fields.
typedef struct {
    Kmx__V1__GroupField fields[KMX_SHAPE_FIELDS_MAX]; // the query's group_by, in order
    size_t n_fields;                                  // entries in fields
    int has_range;                                    // the filter named a period
    kmx_period_t range;                               // that period (canonical)
    kmx_shape_gran_mode_t gran_mode;                  // how spans combine
    kmx_gran_t gran;                                  // for KMX_SHAPE_GRAN_ONE
    uint32_t top;                                     // keep the N largest per unit; 0 = all
    int other;                                        // with top: add an "other" row
    int share;                                        // add each row's share of its unit
    Kmx__V1__Growth growth;                           // growth versus the previous period
    int series;                                       // pad empty period steps
    int latest;                                       // only the latest period per group
    int avg;                                          // add sum / count
    int minmax;                                       // keep min and max when known
    int category_added; // BY_CATEGORY was appended last to fields because the filter pins
                        // no single category: rank, share and fold per unit and category
    int level_added;    // BY_LEVEL was appended (before an added category) because the query
                        // groups by no market: levels are never added together
    int sum_asked;      // SUM was named in the metrics (refused for a unit that does not add)
    int unallocated;    // add "(unallocated)" rows: a stored total minus its listed parts
    int complete;       // keep only rows whose months cover their whole bucket
    int flow_units;     // the filter names units and every one adds over time (set by
                        // kmx_shape_spec_filter): no stock unit can be in the answer
} kmx_shape_spec_t;

typedef struct kmx_shape kmx_shape_t;

void kmx_shape_spec_init(kmx_shape_spec_t *spec);

// Sets spec's range and granularity from a canonical wire filter (as kmx_filter_wire
// gives it): its period, and granularity NULL/"auto" -> AUTO, "any" -> ANY, else ONE.
// Returns 0 or KMX_ERR_INVAL for a granularity that does not parse.
int kmx_shape_spec_filter(kmx_shape_spec_t *spec, const Kmx__V1__Filter *filter);

// Fills the rest of spec (range and granularity already set) from q's group fields,
// metrics and options, then checks it as kmx_shape_check does. When q's filter does not
// pin exactly one category and group_by lacks BY_CATEGORY, BY_CATEGORY is appended as the
// last field and category_added set: different statistics of one market and period are
// never added up (docs/queries.md). *need_minmax is set when min or max is asked. Returns
// 0 or KMX_ERR_INVAL with a sentence in why (also when no field is left for the category).
int kmx_shape_spec_query(kmx_shape_spec_t *spec, const Kmx__V1__QueryRequest *q, int *need_minmax,
                         char *why, size_t why_size);

// A query made ready to fetch its fine rows, the same way wherever it is answered
// (kmx-storage's kmx_answer and kmx-query's fallbacks): checked, its spec filled, the
// fields of the fine rows and the filter to read them with.
typedef struct {
    kmx_shape_spec_t spec;                                // what the caller asked for
    int need_minmax;                                      // min or max asked
    Kmx__V1__GroupField fields[KMX_SHAPE_FIELDS_MAX + 1]; // fields of the fine rows
    size_t n_fields;                                      // entries in fields
    Kmx__V1__Filter filter; // the filter to read: a shallow copy, period widened to hold the
                            // growth bases, granularity NULL unless one is named
    Kmx__V1__Period period; // the widened period filter points at
} kmx_shape_prep_t;

// Prepares q for fetching, with filter (canonical, as kmx_filter_wire gives it, but with
// granularity "any" kept; NULL for none) in place of q's own. p keeps pointers into
// filter's lists. Returns 0 or KMX_ERR_INVAL with a sentence in why.
int kmx_shape_prepare(kmx_shape_prep_t *p, const Kmx__V1__QueryRequest *q,
                      const Kmx__V1__Filter *filter, char *why, size_t why_size);

// Writes the fields to fetch fine rows by: spec's fields, plus BY_PERIOD when
// kmx_shape_needs_period says so and it is not among them. fields holds
// KMX_SHAPE_FIELDS_MAX + 1 entries. Returns how many were written.
size_t kmx_shape_fetch_fields(const kmx_shape_spec_t *spec, Kmx__V1__GroupField *fields);

// Checks the combination of options (series needs a period or year field and no top,
// growth without a period or year field needs a range, ...). Returns 0 or KMX_ERR_INVAL
// with a sentence in why.
int kmx_shape_check(const kmx_shape_spec_t *spec, char *why, size_t why_size);

// Returns nonzero when the fine rows must also be split by period (the caller then
// appends BY_PERIOD to the fetched fields unless the query groups by period already).
int kmx_shape_needs_period(const kmx_shape_spec_t *spec);

// Writes the period range to fetch: the query's range widened to hold the growth bases.
// Returns 0 when the whole history must be read (no range), else 1.
int kmx_shape_fetch_range(const kmx_shape_spec_t *spec, kmx_period_t *out);

// Shapes fine (borrowed): rows whose keys are spec->fields followed by a period key when
// kmx_shape_needs_period says so and BY_PERIOD is not among the fields. On 0 *out is
// yours (release with kmx_shape_destroy). Returns KMX_ERR_INVAL with why filled for a
// query the data cannot answer as asked (units in conflict, mixed granularities in a
// series), KMX_ERR_TOO_BIG beyond KMX_SHAPE_ROWS_MAX rows, KMX_ERR_DECODE for a fine row
// that does not parse, or KMX_ERR_NOMEM.
int kmx_shape_run(const kmx_shape_spec_t *spec, const Kmx__V1__QueryResult *fine, kmx_shape_t **out,
                  char *why, size_t why_size);
void kmx_shape_destroy(kmx_shape_t **self_p);

// Fills out (caller-allocated, KMX__V1__QUERY_RESULT__INIT) with the answer's rows and the
// fields their keys follow (group_by, the added category included). They belong to self
// and stay valid until kmx_shape_destroy.
void kmx_shape_result(const kmx_shape_t *self, Kmx__V1__QueryResult *out);

#endif
