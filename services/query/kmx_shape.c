/*  kmx_shape - the analysis layer of kmx-query. Storage answers a group-by split further
    by period ("fine rows"); everything an analyst asks beyond plain sums is computed here
    from those rows, so the roll-up push-down stays usable and no record is shipped. Each
    fine row becomes one or two memberships (current period, growth base) of a group keyed
    by the query's keys, its unit and that role; groups are built in one hash table.  */
#include "kmx_shape.h"
#include "kmx_err.h"
#include "kmx_group.h"
#include "kmx_market.h"
#include "kmx_unit.h"
#include "kmx_value.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define S_TEXT 48        // decimal text of a 128-bit amount
#define S_PARTS_MAX 1024 // distinct (unit, added category) pairs one ranking or share holds
#define S_CUR 0          // membership role: the asked period
#define S_BASE 1         // membership role: the growth base
static char s_other_key[] = "(other)";
static char s_unalloc_key[] = "(unallocated)";
#define S_NOTES_MAX 8 // sentences one answer's notes hold

// Rank classes: rows are ranked, folded and shared only within one class (like with like).
enum { S_CLS_TOTAL = 0, S_CLS_COUNTRY, S_CLS_REGION, S_CLS_AGGREGATE, S_CLS_GROUP, S_CLS_PANEL };
static char s_no_part[] = ""; // the partition of every group when no category was added

typedef struct {
    const Kmx__V1__Row *row; // the fine row, borrowed
    kmx_period_t period;     // its period
    kmx_i128 sum;            // its exact sum
} s_entry_t;

typedef struct {
    char *key;                              // keys, unit and role, each NUL-terminated (owned)
    size_t key_len;                         // bytes in key
    uint64_t hash;                          // FNV-1a of key
    const char *keys[KMX_SHAPE_FIELDS_MAX]; // segments of key
    const char *unit;                       // segment of key
    const char *part;     // the added category key (a segment of key), else s_no_part
    int role;             // S_CUR or S_BASE
    kmx_i128 sum;         // exact sum of kept memberships
    uint64_t count;       // records behind the sum
    int minmax;           // every kept fine row had min and max
    int64_t min, max;     // extremes
    int has_latest;       // latest: a period was chosen
    kmx_period_t latest;  // latest: the chosen period
    uint64_t cover;       // growth: signature of the kept spans (base: moved forward)
    int has_base;         // growth: a base group with the same spans exists
    kmx_i128 base;        // growth: its sum
    int other;            // the "other" bucket
    int all_bases;        // other: every member had a base
    int cls;              // rank class (S_CLS_*): totals are never ranked nor folded
    const char *level;    // the market's level name, or NULL when not grouped by market
    int adds;             // the unit adds up (kmx_unit_adds), and over time when needed
    int stock;            // a stock unit (users) over several periods: adds is then 0
    int unalloc;          // the "(unallocated)" row of a total
    int exceeds;          // a total whose listed parts add up to more than it
    kmx_i128 parts;       // a total: the sum of its listed parts
    int has_parts;        // a total: some part was listed
    uint32_t months;      // coverage: months of the bucket the kept spans cover
    uint32_t in_bucket;   // coverage: months in the row's bucket (0 = no bucket)
    uint32_t first, last; // coverage: first and last month covered (YYYYMM)
    size_t total_at;      // a part: index of its stored total's group, or SIZE_MAX
} s_group_t;

typedef struct {
    size_t entry;    // index into entries
    size_t group;    // index into groups
    uint32_t months; // the entry's span, for sorting coarsest first
    uint32_t start;  // the entry's first month
    int dropped;     // left out by the granularity rule
} s_member_t;

typedef struct {
    Kmx__V1__Row row;                 // the wire row
    char *keys[KMX_SHAPE_FIELDS_MAX]; // its keys
    char sum[S_TEXT], avg[S_TEXT];    // texts the row points at
    char share[S_TEXT], prev[S_TEXT]; // ...
    char growth[S_TEXT], period[KMX_PERIOD_TEXT_MAX];
    char share_of[S_TEXT], covered[KMX_PERIOD_TEXT_MAX];
} s_out_t;

struct kmx_shape {
    const kmx_shape_spec_t *spec; // borrowed for the run
    size_t period_at;             // index of the period key in fine rows, or SIZE_MAX
    size_t year_at;               // index of BY_YEAR in the fields, or SIZE_MAX
    size_t unit_field;            // index of BY_UNIT in the fields, or SIZE_MAX
    size_t category_at;           // index of the added BY_CATEGORY, or SIZE_MAX
    size_t market_at;             // index of BY_MARKET in the fields, or SIZE_MAX
    size_t region_at;             // index of BY_REGION in the fields, or SIZE_MAX
    size_t level_at;              // index of BY_LEVEL when rows are split by it, or SIZE_MAX
    size_t hidden_at;             // the added level when every row has one: not shown
    size_t n_shown;               // fields the answer's keys follow
    s_group_t *unallocs;          // "(unallocated)" rows, one per total with parts
    size_t n_unallocs;            // entries in unallocs
    char notes[S_NOTES_MAX][256]; // sentences about the answer (QueryResult.notes)
    char *note_ptrs[S_NOTES_MAX]; // pointers for QueryResult
    size_t n_notes;               // notes in use
    char share_base[8];           // "total", "rows", "mixed" or ""
    s_entry_t *entries;           // parsed fine rows
    size_t n_entries;             // entries in use
    s_member_t *members;          // (entry, group) pairs
    size_t n_members, cap_members;
    s_group_t *groups; // every group
    size_t n_groups, cap_groups;
    uint32_t *slots;                                  // hash table: group index + 1
    size_t n_slots;                                   // a power of two
    uint64_t matched;                                 // records in current groups
    uint64_t dropped;                                 // records left out by the auto rule
    s_group_t *buckets;                               // "other" buckets, one per partition
    s_out_t *out;                                     // answer rows
    Kmx__V1__Row **out_ptrs;                          // pointers for QueryResult
    size_t n_out;                                     // rows in the answer
    char gran_name[16];                               // the rule applied
    Kmx__V1__GroupField fields[KMX_SHAPE_FIELDS_MAX]; // the fields the keys follow
};

void kmx_shape_spec_init(kmx_shape_spec_t *spec) {
    memset(spec, 0, sizeof *spec);
    spec->gran_mode = KMX_SHAPE_GRAN_AUTO;
}

int kmx_shape_spec_filter(kmx_shape_spec_t *spec, const Kmx__V1__Filter *filter) {
    spec->has_range = 0;
    spec->gran_mode = KMX_SHAPE_GRAN_AUTO;
    spec->flow_units = 0;
    if (!filter)
        return 0;
    spec->flow_units = filter->n_units > 0;
    for (size_t i = 0; i < filter->n_units; i++)
        spec->flow_units &= kmx_unit_adds_over_time(filter->units[i]) != 0;
    const Kmx__V1__Period *p = filter->period;
    if (p && (p->has_start || p->has_end)) {
        spec->has_range = 1;
        spec->range.start = p->has_start ? p->start : p->end;
        spec->range.end = p->has_end ? p->end : p->start;
    }
    const char *g = filter->granularity;
    if (!g || g[0] == '\0' || strcasecmp(g, "auto") == 0)
        return 0;
    if (strcasecmp(g, "any") == 0) {
        spec->gran_mode = KMX_SHAPE_GRAN_ANY;
        return 0;
    }
    spec->gran_mode = KMX_SHAPE_GRAN_ONE;
    return kmx_gran_parse(g, &spec->gran) == 0 ? 0 : KMX_ERR_INVAL;
}

// Returns nonzero when filter names exactly one category (entries equal without regard to
// case count once, as the filter matches them).
static int s_pins_one_category(const Kmx__V1__Filter *filter) {
    if (!filter || filter->n_categories == 0 || !filter->categories[0])
        return 0;
    for (size_t i = 1; i < filter->n_categories; i++) {
        if (!filter->categories[i] || strcasecmp(filter->categories[i], filter->categories[0]))
            return 0;
    }
    return 1;
}

// Returns nonzero when every market the filter names has one level (all countries, say),
// so records of several levels cannot match.
static int s_pins_one_level(const Kmx__V1__Filter *filter) {
    if (!filter || filter->n_markets == 0 || filter->n_regions > 0)
        return 0;
    kmx_market_level_t lv = kmx_market_level(filter->markets[0]);
    for (size_t i = 1; i < filter->n_markets; i++) {
        if (kmx_market_level(filter->markets[i]) != lv)
            return 0;
    }
    return lv != KMX_MARKET_UNKNOWN;
}

// WORLD, a region, a group and a country are totals and parts of one another, so a query
// that does not group by market never adds them up: the market's level becomes a key
// (kmx_shape_run leaves it out of the answer when every record has one level).
static int s_add_level(kmx_shape_spec_t *spec, const Kmx__V1__Filter *filter, char *why,
                       size_t sz) {
    spec->level_added = 0;
    for (size_t i = 0; i < spec->n_fields; i++) {
        if (spec->fields[i] == KMX__V1__GROUP_FIELD__BY_MARKET ||
            spec->fields[i] == KMX__V1__GROUP_FIELD__BY_LEVEL)
            return 0;
    }
    if (s_pins_one_level(filter))
        return 0;
    if (spec->n_fields == KMX_SHAPE_FIELDS_MAX) {
        snprintf(why, sz,
                 "at most %d group fields, the market level included: records of different "
                 "market levels are kept apart unless the query groups by market",
                 KMX_SHAPE_FIELDS_MAX);
        return KMX_ERR_INVAL;
    }
    spec->fields[spec->n_fields++] = KMX__V1__GROUP_FIELD__BY_LEVEL;
    spec->level_added = 1;
    return 0;
}

// Categories are different statistics (customs album exports, the industry survey, the
// all-content total), so like units they are never added together: unless the filter
// pins one or the caller groups by category, the category becomes the last key.
static int s_add_category(kmx_shape_spec_t *spec, const Kmx__V1__Filter *filter, char *why,
                          size_t sz) {
    spec->category_added = 0;
    for (size_t i = 0; i < spec->n_fields; i++) {
        if (spec->fields[i] == KMX__V1__GROUP_FIELD__BY_CATEGORY)
            return 0;
    }
    if (s_pins_one_category(filter))
        return 0;
    if (spec->n_fields == KMX_SHAPE_FIELDS_MAX) {
        snprintf(why, sz,
                 "at most %d group fields, the category included: the records are split by "
                 "category unless the filter names one",
                 KMX_SHAPE_FIELDS_MAX);
        return KMX_ERR_INVAL;
    }
    spec->fields[spec->n_fields++] = KMX__V1__GROUP_FIELD__BY_CATEGORY;
    spec->category_added = 1;
    return 0;
}

int kmx_shape_spec_query(kmx_shape_spec_t *spec, const Kmx__V1__QueryRequest *q, int *need_minmax,
                         char *why, size_t sz) {
    if (q->n_group_by > KMX_SHAPE_FIELDS_MAX) {
        snprintf(why, sz, "at most %d group fields, not %zu", KMX_SHAPE_FIELDS_MAX, q->n_group_by);
        return KMX_ERR_INVAL;
    }
    for (size_t i = 0; i < q->n_group_by; i++) {
        if (q->group_by[i] < KMX__V1__GROUP_FIELD__BY_MARKET ||
            q->group_by[i] > KMX__V1__GROUP_FIELD__BY_LEVEL) {
            snprintf(why, sz,
                     "unknown group field %d (market, region, period, year, category, "
                     "item, company, artist, source, unit or level)",
                     (int)q->group_by[i]);
            return KMX_ERR_INVAL;
        }
        spec->fields[i] = q->group_by[i];
    }
    spec->n_fields = q->n_group_by;
    if (s_add_level(spec, q->filter, why, sz) != 0 || s_add_category(spec, q->filter, why, sz) != 0)
        return KMX_ERR_INVAL;
    *need_minmax = 0;
    for (size_t i = 0; i < q->n_metrics; i++) {
        Kmx__V1__Metric m = q->metrics[i];
        if (m < KMX__V1__METRIC__SUM || m > KMX__V1__METRIC__AVG) {
            snprintf(why, sz, "unknown metric %d (sum, count, min, max or avg)", (int)m);
            return KMX_ERR_INVAL;
        }
        *need_minmax |= m == KMX__V1__METRIC__MIN || m == KMX__V1__METRIC__MAX;
        spec->avg |= m == KMX__V1__METRIC__AVG;
        spec->sum_asked |= m == KMX__V1__METRIC__SUM;
    }
    spec->minmax = 1; // shown whenever the fine rows know them
    spec->top = q->has_top ? q->top : 0;
    spec->other = q->has_other && q->other;
    spec->share = q->has_share && q->share;
    spec->growth = q->has_growth ? q->growth : KMX__V1__GROWTH__GROWTH_NONE;
    spec->series = q->has_series && q->series;
    spec->latest = q->has_latest && q->latest;
    spec->unallocated = q->has_unallocated && q->unallocated;
    spec->complete = q->has_complete && q->complete;
    return kmx_shape_check(spec, why, sz);
}

size_t kmx_shape_fetch_fields(const kmx_shape_spec_t *spec, Kmx__V1__GroupField *fields) {
    memcpy(fields, spec->fields, spec->n_fields * sizeof *fields);
    size_t n = spec->n_fields;
    int has_period = 0;
    for (size_t i = 0; i < n; i++)
        has_period |= fields[i] == KMX__V1__GROUP_FIELD__BY_PERIOD;
    if (!has_period && kmx_shape_needs_period(spec))
        fields[n++] = KMX__V1__GROUP_FIELD__BY_PERIOD;
    return n;
}

int kmx_shape_prepare(kmx_shape_prep_t *p, const Kmx__V1__QueryRequest *q,
                      const Kmx__V1__Filter *filter, char *why, size_t sz) {
    memset(p, 0, sizeof *p);
    kmx_shape_spec_init(&p->spec);
    if (kmx_shape_spec_filter(&p->spec, filter) != 0) {
        snprintf(why, sz, "unknown granularity in filter");
        return KMX_ERR_INVAL;
    }
    Kmx__V1__QueryRequest pinned = *q; // shallow: the canonical filter decides the split
    pinned.filter = (Kmx__V1__Filter *)filter;
    int err = kmx_shape_spec_query(&p->spec, &pinned, &p->need_minmax, why, sz);
    if (err != 0)
        return err;
    p->n_fields = kmx_shape_fetch_fields(&p->spec, p->fields);
    if (kmx_group_check_fields(p->fields, p->n_fields) != 0) {
        snprintf(why, sz, "unknown or too many group fields");
        return KMX_ERR_INVAL;
    }
    kmx__v1__filter__init(&p->filter);
    if (filter)
        p->filter = *filter; // shallow: period and granularity may be replaced
    if (p->spec.gran_mode != KMX_SHAPE_GRAN_ONE)
        p->filter.granularity = NULL; // "auto" and "any" read every granularity
    kmx_period_t r;
    if (kmx_shape_fetch_range(&p->spec, &r)) {
        kmx__v1__period__init(&p->period);
        p->period.has_start = p->period.has_end = 1;
        p->period.start = r.start;
        p->period.end = r.end;
        p->filter.period = &p->period;
    }
    return 0;
}

static size_t s_field_at(const kmx_shape_spec_t *spec, Kmx__V1__GroupField f) {
    for (size_t i = 0; i < spec->n_fields; i++) {
        if (spec->fields[i] == f)
            return i;
    }
    return SIZE_MAX;
}

// Growth is per row when the rows are periods or years, else the whole range compares.
static int s_per_row(const kmx_shape_spec_t *spec) {
    return s_field_at(spec, KMX__V1__GROUP_FIELD__BY_PERIOD) != SIZE_MAX ||
           s_field_at(spec, KMX__V1__GROUP_FIELD__BY_YEAR) != SIZE_MAX;
}

int kmx_shape_check(const kmx_shape_spec_t *spec, char *why, size_t sz) {
    if (spec->n_fields > KMX_SHAPE_FIELDS_MAX) {
        snprintf(why, sz, "at most %d group fields", KMX_SHAPE_FIELDS_MAX);
        return KMX_ERR_INVAL;
    }
    if (spec->growth != KMX__V1__GROWTH__GROWTH_NONE && spec->growth != KMX__V1__GROWTH__YOY &&
        spec->growth != KMX__V1__GROWTH__PERIOD_OVER_PERIOD) {
        snprintf(why, sz, "unknown growth %d (yoy or period-over-period)", (int)spec->growth);
        return KMX_ERR_INVAL;
    }
    if (spec->other && spec->top == 0) {
        snprintf(why, sz, "an \"other\" bucket needs top N");
        return KMX_ERR_INVAL;
    }
    if (spec->series && !s_per_row(spec)) {
        snprintf(why, sz, "a time series needs grouping by period or year");
        return KMX_ERR_INVAL;
    }
    if (spec->series && (spec->top > 0 || spec->latest)) {
        snprintf(why, sz, "a time series cannot be combined with top N or latest");
        return KMX_ERR_INVAL;
    }
    if (spec->latest && (s_per_row(spec) || spec->growth)) {
        snprintf(why, sz, "latest value per group cannot group by period or year, or take growth");
        return KMX_ERR_INVAL;
    }
    if (spec->growth && !s_per_row(spec) && !spec->has_range) {
        snprintf(why, sz,
                 "growth needs a period (--period, --from/--to) or grouping by period "
                 "or year");
        return KMX_ERR_INVAL;
    }
    return 0;
}

// The fine rows are split by period for the granularity rule, growth, series and latest,
// for coverage whenever a row has a bucket (the asked range or a year): a row must say
// which months it covers, and complete must drop the same rows, whatever the granularity;
// and unless every unit adds over time, to see a stock unit summed over several periods.
int kmx_shape_needs_period(const kmx_shape_spec_t *spec) {
    return spec->gran_mode == KMX_SHAPE_GRAN_AUTO || spec->growth || spec->series || spec->latest ||
           spec->has_range || !spec->flow_units ||
           s_field_at(spec, KMX__V1__GROUP_FIELD__BY_YEAR) != SIZE_MAX;
}

static kmx_period_t s_shift(kmx_period_t p, int months) {
    kmx_period_t q = {kmx_month_add(p.start, months), kmx_month_add(p.end, months)};
    return q;
}

// The range a whole-range growth compares with.
static kmx_period_t s_base_range(const kmx_shape_spec_t *spec) {
    int back = spec->growth == KMX__V1__GROWTH__YOY ? 12 : (int)kmx_period_months(&spec->range);
    return s_shift(spec->range, -back);
}

int kmx_shape_fetch_range(const kmx_shape_spec_t *spec, kmx_period_t *out) {
    if (!spec->has_range)
        return 0;
    *out = spec->range;
    if (spec->growth && s_per_row(spec))
        out->start = kmx_month_add(spec->range.start, -12);
    else if (spec->growth)
        out->start = s_base_range(spec).start;
    return 1;
}

void kmx_shape_destroy(kmx_shape_t **self_p) {
    if (!self_p || !*self_p)
        return;
    kmx_shape_t *self = *self_p;
    for (size_t i = 0; i < self->n_groups; i++)
        free(self->groups[i].key);
    free(self->groups);
    free(self->slots);
    free(self->members);
    free(self->entries);
    free(self->buckets);
    for (size_t i = 0; i < self->n_unallocs; i++)
        free(self->unallocs[i].key);
    free(self->unallocs);
    free(self->out);
    free(self->out_ptrs);
    free(self);
    *self_p = NULL;
}

// ---- groups -------------------------------------------------------------------------

static void s_classify(const kmx_shape_t *self, s_group_t *g);
static int s_kept(const kmx_shape_t *self, const s_group_t *g);
static int s_cmp_keys(const s_group_t *a, const s_group_t *b);
static void s_keys_text(const kmx_shape_t *self, const s_group_t *g, char *buf, size_t size);

static uint64_t s_hash(const char *key, size_t len) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)key[i]) * 1099511628211ull;
    return h;
}

// Builds the composite key of keys (n_fields entries), unit and role into a malloc'd buffer.
static char *s_key(const kmx_shape_t *self, const char *const *keys, const char *unit, int role,
                   size_t *len) {
    size_t n = self->spec->n_fields;
    size_t total = strlen(unit) + 3;
    for (size_t i = 0; i < n; i++)
        total += strlen(keys[i]) + 1;
    char *key = malloc(total);
    if (!key)
        return NULL;
    char *at = key;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(keys[i]) + 1;
        memcpy(at, keys[i], l);
        at += l;
    }
    size_t l = strlen(unit) + 1;
    memcpy(at, unit, l);
    at += l;
    at[0] = (char)('0' + role);
    at[1] = '\0';
    *len = total;
    return key;
}

static size_t s_slot(const kmx_shape_t *self, const char *key, size_t len, uint64_t hash) {
    size_t mask = self->n_slots - 1;
    size_t i = (size_t)hash & mask;
    while (self->slots[i] != 0) {
        const s_group_t *g = &self->groups[self->slots[i] - 1];
        if (g->hash == hash && g->key_len == len && memcmp(g->key, key, len) == 0)
            return i;
        i = (i + 1) & mask;
    }
    return i;
}

static int s_grow(kmx_shape_t *self) {
    if (self->n_groups >= KMX_SHAPE_ROWS_MAX * 2)
        return KMX_ERR_TOO_BIG;
    if (self->n_groups == self->cap_groups) {
        size_t cap = self->cap_groups ? self->cap_groups * 2 : 64;
        s_group_t *g = realloc(self->groups, cap * sizeof *g);
        if (!g)
            return KMX_ERR_NOMEM;
        self->groups = g;
        self->cap_groups = cap;
    }
    if ((self->n_groups + 1) * 2 <= self->n_slots)
        return 0;
    size_t n = self->n_slots ? self->n_slots * 2 : 128;
    uint32_t *slots = calloc(n, sizeof *slots);
    if (!slots)
        return KMX_ERR_NOMEM;
    free(self->slots);
    self->slots = slots;
    self->n_slots = n;
    for (size_t g = 0; g < self->n_groups; g++) {
        size_t i = (size_t)self->groups[g].hash & (n - 1);
        while (slots[i] != 0)
            i = (i + 1) & (n - 1);
        slots[i] = (uint32_t)(g + 1);
    }
    return 0;
}

// Finds the group of (keys, unit, role); creates it when create is set. Writes its index
// to *at. Returns 0, 1 when absent (create unset), or a negative code.
static int s_group(kmx_shape_t *self, const char *const *keys, const char *unit, int role,
                   int create, size_t *at) {
    size_t len = 0;
    char *key = s_key(self, keys, unit, role, &len);
    if (!key)
        return KMX_ERR_NOMEM;
    uint64_t hash = s_hash(key, len);
    size_t slot = self->n_slots ? s_slot(self, key, len, hash) : 0;
    if (self->n_slots && self->slots[slot] != 0) {
        free(key);
        *at = self->slots[slot] - 1;
        return 0;
    }
    int rc = create ? s_grow(self) : 1;
    if (rc != 0) {
        free(key);
        return rc;
    }
    s_group_t *g = &self->groups[self->n_groups];
    memset(g, 0, sizeof *g);
    g->key = key;
    g->key_len = len;
    g->hash = hash;
    g->role = role;
    g->minmax = 1;
    const char *seg = key;
    for (size_t i = 0; i < self->spec->n_fields; i++, seg += strlen(seg) + 1)
        g->keys[i] = seg;
    g->unit = seg;
    g->part = self->category_at < self->spec->n_fields ? g->keys[self->category_at] : s_no_part;
    g->total_at = SIZE_MAX;
    g->cls = S_CLS_COUNTRY;
    s_classify(self, g);
    self->slots[s_slot(self, key, len, hash)] = (uint32_t)(self->n_groups + 1);
    *at = self->n_groups++;
    return 0;
}

// ---- fine rows ----------------------------------------------------------------------

static int s_parse_entry(kmx_shape_t *self, const Kmx__V1__Row *row, s_entry_t *e) {
    size_t want = self->spec->n_fields + (self->period_at == self->spec->n_fields);
    if (!row || row->n_keys != want || !row->unit || !row->sum)
        return KMX_ERR_DECODE;
    for (size_t i = 0; i < row->n_keys; i++) {
        if (!row->keys[i])
            return KMX_ERR_DECODE;
    }
    e->row = row;
    if (kmx_period_parse(row->keys[self->period_at], &e->period) != 0 ||
        kmx_decimal_parse128(row->sum, &e->sum) != 0)
        return KMX_ERR_DECODE;
    return 0;
}

static int s_add_member(kmx_shape_t *self, size_t entry, int role) {
    size_t g = 0;
    const Kmx__V1__Row *row = self->entries[entry].row;
    int rc = s_group(self, (const char *const *)row->keys, row->unit, role, 1, &g);
    if (rc != 0)
        return rc;
    if (self->n_members == self->cap_members) {
        size_t cap = self->cap_members ? self->cap_members * 2 : 256;
        s_member_t *m = realloc(self->members, cap * sizeof *m);
        if (!m)
            return KMX_ERR_NOMEM;
        self->members = m;
        self->cap_members = cap;
    }
    s_member_t *m = &self->members[self->n_members++];
    m->entry = entry;
    m->group = g;
    m->months = kmx_period_months(&self->entries[entry].period);
    m->start = self->entries[entry].period.start;
    m->dropped = 0;
    return 0;
}

// Every fine row joins the current groups when it lies in the asked range, and the base
// groups when it lies where growth looks for its bases.
static int s_load(kmx_shape_t *self, const Kmx__V1__QueryResult *fine) {
    const kmx_shape_spec_t *spec = self->spec;
    self->entries = calloc(fine->n_rows ? fine->n_rows : 1, sizeof *self->entries);
    if (!self->entries)
        return KMX_ERR_NOMEM;
    kmx_period_t base = spec->has_range ? s_base_range(spec) : spec->range;
    if (spec->has_range && s_per_row(spec))
        base.start = kmx_month_add(spec->range.start, -12), base.end = spec->range.end;
    for (size_t i = 0; i < fine->n_rows; i++) {
        s_entry_t *e = &self->entries[self->n_entries];
        int rc = s_parse_entry(self, fine->rows[i], e);
        if (rc != 0)
            return rc;
        size_t at = self->n_entries++;
        if (!spec->has_range || kmx_period_contains(&spec->range, &e->period))
            rc = s_add_member(self, at, S_CUR);
        if (rc == 0 && spec->growth && (!spec->has_range || kmx_period_contains(&base, &e->period)))
            rc = s_add_member(self, at, S_BASE);
        if (rc != 0)
            return rc;
    }
    return 0;
}

// ---- the granularity rule -----------------------------------------------------------

static int s_cmp_members(const void *pa, const void *pb) {
    const s_member_t *a = pa, *b = pb;
    if (a->group != b->group)
        return a->group < b->group ? -1 : 1;
    if (a->months != b->months)
        return a->months > b->months ? -1 : 1; // coarsest first
    return a->start < b->start ? -1 : a->start > b->start;
}

static int s_overlaps(const kmx_period_t *a, const kmx_period_t *b) {
    return a->start <= b->end && b->start <= a->end;
}

// Mixes one span into a group's coverage signature (order-independent: a sum of hashes).
static uint64_t s_span_hash(const kmx_period_t *p) {
    uint64_t x = ((uint64_t)p->start << 32 | p->end) + 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

// How far a base group's spans lie before the current spans they compare with.
static int s_base_shift(const kmx_shape_t *self, const s_group_t *g) {
    const kmx_shape_spec_t *spec = self->spec;
    if (spec->growth == KMX__V1__GROWTH__YOY)
        return 12;
    if (!s_per_row(spec))
        return (int)kmx_period_months(&spec->range);
    kmx_period_t p;
    if (self->period_at < spec->n_fields && kmx_period_parse(g->keys[self->period_at], &p) == 0)
        return (int)kmx_period_months(&p);
    return 12;
}

static void s_take(const kmx_shape_t *self, s_group_t *g, const s_entry_t *e) {
    if (self->spec->growth) {
        kmx_period_t p = g->role == S_BASE ? s_shift(e->period, s_base_shift(self, g)) : e->period;
        g->cover += s_span_hash(&p);
    }
    g->sum += e->sum;
    g->count += e->row->count;
    if (!e->row->has_min || !e->row->has_max) {
        g->minmax = 0;
        return;
    }
    if (g->count == e->row->count || e->row->min < g->min)
        g->min = e->row->min;
    if (g->count == e->row->count || e->row->max > g->max)
        g->max = e->row->max;
}

// Keeps, within one group's members [from, to) sorted coarsest first, each span that
// overlaps no span kept before it: a year wins over its halves and months.
static void s_keep_run(kmx_shape_t *self, size_t from, size_t to) {
    s_group_t *g = &self->groups[self->members[from].group];
    for (size_t i = from; i < to; i++) {
        const s_entry_t *e = &self->entries[self->members[i].entry];
        int clash = 0;
        // Equal periods are one fine row, so only a coarser span or a free range can clash.
        for (size_t k = from; k < i && !clash; k++) {
            if (!self->members[k].dropped)
                clash = s_overlaps(&self->entries[self->members[k].entry].period, &e->period);
        }
        if (clash) {
            self->members[i].dropped = 1;
            if (g->role == S_CUR)
                self->dropped += e->row->count;
        } else {
            s_take(self, g, e);
        }
    }
}

static void s_keep_latest(kmx_shape_t *self, size_t from, size_t to) {
    s_group_t *g = &self->groups[self->members[from].group];
    const s_entry_t *best = NULL;
    for (size_t i = from; i < to; i++) {
        const s_entry_t *e = &self->entries[self->members[i].entry];
        if (!best || e->period.end > best->period.end ||
            (e->period.end == best->period.end && e->period.start > best->period.start))
            best = e;
    }
    s_take(self, g, best);
    g->has_latest = 1;
    g->latest = best->period;
}

static void s_apply_rule(kmx_shape_t *self) {
    if (self->n_members > 1) // members is NULL when no fine row matched
        qsort(self->members, self->n_members, sizeof *self->members, s_cmp_members);
    size_t i = 0;
    while (i < self->n_members) {
        size_t j = i + 1;
        while (j < self->n_members && self->members[j].group == self->members[i].group)
            j++;
        if (self->spec->latest)
            s_keep_latest(self, i, j);
        else if (self->spec->gran_mode == KMX_SHAPE_GRAN_AUTO)
            s_keep_run(self, i, j);
        else
            for (size_t k = i; k < j; k++)
                s_take(self, &self->groups[self->members[i].group],
                       &self->entries[self->members[k].entry]);
        i = j;
    }
}

// A unit that adds across markets but not over time (a stock such as monthly users) does
// not add up in a row holding several of its periods: such a row is like a unit that
// does not add (no sum, share or growth; its average instead). Members are sorted by
// group after the rule, and one fine row holds one period of a group.
static void s_mark_stock(kmx_shape_t *self) {
    for (size_t i = 0; i < self->n_members;) {
        size_t j = i, kept = 0;
        for (; j < self->n_members && self->members[j].group == self->members[i].group; j++)
            kept += !self->members[j].dropped;
        s_group_t *g = &self->groups[self->members[i].group];
        if (g->adds && kept > 1 && !kmx_unit_adds_over_time(g->unit))
            g->adds = 0, g->stock = 1;
        i = j;
    }
}

// ---- series -------------------------------------------------------------------------

// The one granularity of the current periods, for series steps. Returns 0 or INVAL.
static int s_series_gran(const kmx_shape_t *self, kmx_gran_t *out, char *why, size_t sz) {
    if (self->spec->gran_mode == KMX_SHAPE_GRAN_ONE) {
        *out = self->spec->gran;
    } else {
        int seen[KMX_GRAN_RANGE + 1] = {0};
        for (size_t i = 0; i < self->n_members; i++) {
            if (!self->members[i].dropped && self->groups[self->members[i].group].role == S_CUR)
                seen[kmx_period_granularity(&self->entries[self->members[i].entry].period)] = 1;
        }
        int n = 0;
        for (int g = 0; g <= KMX_GRAN_RANGE; g++) {
            if (seen[g])
                *out = (kmx_gran_t)g, n++;
        }
        if (n > 1) {
            snprintf(why, sz,
                     "a time series by period needs one granularity, but the records "
                     "come at several; choose one with --granularity");
            return KMX_ERR_INVAL;
        }
        if (n == 0)
            *out = KMX_GRAN_YEAR;
    }
    if (*out == KMX_GRAN_RANGE) {
        snprintf(why, sz, "a time series needs year, half, quarter or month periods, not ranges");
        return KMX_ERR_INVAL;
    }
    return 0;
}

// The months the series covers: the asked range, else the span of the current rows.
static int s_series_range(const kmx_shape_t *self, kmx_period_t *out) {
    if (self->spec->has_range) {
        *out = self->spec->range;
        return 1;
    }
    int any = 0;
    for (size_t i = 0; i < self->n_entries; i++) {
        const kmx_period_t *p = &self->entries[i].period;
        if (!any || p->start < out->start)
            out->start = p->start;
        if (!any || p->end > out->end)
            out->end = p->end;
        any = 1;
    }
    return any;
}

// Adds an empty current group for every step the rows lack, for every combination of
// the other keys and unit that has rows.
static int s_pad_series(kmx_shape_t *self, char *why, size_t sz) {
    kmx_gran_t gran = KMX_GRAN_YEAR;
    int rc = self->period_at < self->spec->n_fields ? s_series_gran(self, &gran, why, sz) : 0;
    kmx_period_t span;
    if (rc != 0 || !s_series_range(self, &span))
        return rc;
    uint32_t step = gran == KMX_GRAN_MONTH     ? 1
                    : gran == KMX_GRAN_QUARTER ? 3
                    : gran == KMX_GRAN_HALF    ? 6
                                               : 12;
    size_t n = self->n_groups;
    for (size_t gi = 0; gi < n && rc == 0; gi++) {
        if (self->groups[gi].role != S_CUR || self->groups[gi].count == 0)
            continue;
        const char *keys[KMX_SHAPE_FIELDS_MAX];
        memcpy(keys, self->groups[gi].keys, sizeof keys);
        char unit[256];
        snprintf(unit, sizeof unit, "%s", self->groups[gi].unit);
        // Months aligned to the step: January for years, the quarter's first month...
        uint32_t m = span.start / 100 * 100 + 1;
        for (; m <= span.end && rc == 0; m = kmx_month_add(m, (int)step)) {
            kmx_period_t p = {m, kmx_month_add(m, (int)step - 1)};
            if (p.start < span.start || p.end > span.end)
                continue;
            char ptext[KMX_PERIOD_TEXT_MAX], ytext[16];
            kmx_period_format(&p, ptext, sizeof ptext);
            snprintf(ytext, sizeof ytext, "%u", p.start / 100);
            if (self->period_at < self->spec->n_fields)
                keys[self->period_at] = ptext;
            if (self->year_at != SIZE_MAX)
                keys[self->year_at] = ytext;
            size_t at;
            rc = s_group(self, keys, unit, S_CUR, 1, &at);
            if (self->n_groups > KMX_SHAPE_ROWS_MAX)
                rc = KMX_ERR_TOO_BIG;
        }
    }
    return rc;
}

// ---- levels, totals and coverage ---------------------------------------------------

// Sets g's unit class and, grouped by market or region, its level and rank class: rows
// are compared like with like, and WORLD (region "World") is the total of the others.
static void s_classify(const kmx_shape_t *self, s_group_t *g) {
    g->adds = kmx_unit_adds(g->unit);
    if (self->market_at != SIZE_MAX) {
        kmx_market_level_t lv = kmx_market_level(g->keys[self->market_at]);
        g->level = kmx_market_level_name(lv);
        g->cls = lv == KMX_MARKET_WORLD       ? S_CLS_TOTAL
                 : lv == KMX_MARKET_COUNTRY   ? S_CLS_COUNTRY
                 : lv == KMX_MARKET_REGION    ? S_CLS_REGION
                 : lv == KMX_MARKET_AGGREGATE ? S_CLS_AGGREGATE
                 : lv == KMX_MARKET_PANEL     ? S_CLS_PANEL
                                              : S_CLS_GROUP;
    } else if (self->level_at != SIZE_MAX) {
        // Split by level: like with like within each level, "world" the total.
        const char *lv = g->keys[self->level_at];
        g->level = lv;
        g->cls = strcmp(lv, "world") == 0       ? S_CLS_TOTAL
                 : strcmp(lv, "country") == 0   ? S_CLS_COUNTRY
                 : strcmp(lv, "region") == 0    ? S_CLS_REGION
                 : strcmp(lv, "aggregate") == 0 ? S_CLS_AGGREGATE
                 : strcmp(lv, "panel") == 0     ? S_CLS_PANEL
                                                : S_CLS_GROUP;
    } else if (self->region_at != SIZE_MAX) {
        const char *r = g->keys[self->region_at];
        int world = strcmp(r, "World") == 0, multiple = strcmp(r, "Multiple") == 0;
        g->level = world ? "world" : multiple ? "group" : "region";
        g->cls = world ? S_CLS_TOTAL : multiple ? S_CLS_GROUP : S_CLS_REGION;
    }
}

// The field a total's key differs from its parts' by: the market, else the level, else
// the region. SIZE_MAX when the answer has no totals.
static size_t s_total_field(const kmx_shape_t *self) {
    return self->market_at != SIZE_MAX  ? self->market_at
           : self->level_at != SIZE_MAX ? self->level_at
                                        : self->region_at;
}

// Returns nonzero when a and b have the same keys except the one at skip, and one unit.
static int s_same_but(const kmx_shape_t *self, const s_group_t *a, const s_group_t *b,
                      size_t skip) {
    for (size_t i = 0; i < self->spec->n_fields; i++) {
        if (i != skip && strcmp(a->keys[i], b->keys[i]) != 0)
            return 0;
    }
    return strcmp(a->unit, b->unit) == 0;
}

// A region (or continent) listed beside member countries is their total, not one more
// market to rank against them.
static void s_mark_region_totals(kmx_shape_t *self) {
    if (self->market_at == SIZE_MAX)
        return;
    for (size_t i = 0; i < self->n_groups; i++) {
        s_group_t *r = &self->groups[i];
        if (r->role != S_CUR || (r->cls != S_CLS_REGION && r->cls != S_CLS_AGGREGATE))
            continue;
        for (size_t k = 0; k < self->n_groups && r->cls != S_CLS_TOTAL; k++) {
            const s_group_t *c = &self->groups[k];
            if (c->role == S_CUR && c->cls == S_CLS_COUNTRY && c->count > 0 &&
                s_same_but(self, r, c, self->market_at) &&
                kmx_market_contains(r->keys[self->market_at], c->keys[self->market_at]) == 1)
                r->cls = S_CLS_TOTAL;
        }
    }
}

// Links every part (a country, or a region when grouped by region) to the stored total of
// the same keys (WORLD, region "World") and sums the parts of each total. Rows left out by
// complete are neither: a partial total is no share base, a partial part is not listed.
static int s_link_totals(kmx_shape_t *self) {
    size_t at_field = s_total_field(self);
    if (at_field == SIZE_MAX)
        return 0;
    const char *world = self->market_at != SIZE_MAX  ? "WORLD"
                        : self->level_at != SIZE_MAX ? "world"
                                                     : "World";
    int part_cls =
        self->market_at != SIZE_MAX || self->level_at != SIZE_MAX ? S_CLS_COUNTRY : S_CLS_REGION;
    for (size_t i = 0; i < self->n_groups; i++) {
        s_group_t *g = &self->groups[i];
        if (g->role != S_CUR || g->cls == S_CLS_TOTAL || g->count == 0 || !s_kept(self, g))
            continue;
        const char *keys[KMX_SHAPE_FIELDS_MAX];
        memcpy(keys, g->keys, sizeof keys);
        keys[at_field] = world;
        if (at_field == self->level_at && self->region_at != SIZE_MAX)
            keys[self->region_at] = "World"; // WORLD's region
        size_t t = 0;
        int rc = s_group(self, keys, g->unit, S_CUR, 0, &t);
        if (rc < 0)
            return rc;
        g = &self->groups[i];
        if (rc != 0 || self->groups[t].count == 0 || self->groups[t].cls != S_CLS_TOTAL ||
            !s_kept(self, &self->groups[t]))
            continue;
        g->total_at = t;
        if (g->cls == part_cls) {
            self->groups[t].parts += g->sum;
            self->groups[t].has_parts = 1;
        }
    }
    return 0;
}

static void s_note(kmx_shape_t *self, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void s_note(kmx_shape_t *self, const char *fmt, ...) {
    if (self->n_notes == S_NOTES_MAX)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(self->notes[self->n_notes], sizeof self->notes[0], fmt, ap);
    va_end(ap);
    self->note_ptrs[self->n_notes] = self->notes[self->n_notes];
    self->n_notes++;
}

// Flags totals whose listed parts exceed them, and builds the "(unallocated)" rows (the
// total minus its parts) when asked.
static int s_unallocated(kmx_shape_t *self) {
    size_t n = 0;
    for (size_t i = 0; i < self->n_groups; i++)
        n += self->groups[i].has_parts;
    if (n == 0)
        return 0;
    self->unallocs = calloc(n, sizeof *self->unallocs);
    if (!self->unallocs)
        return KMX_ERR_NOMEM;
    size_t at_field = s_total_field(self);
    size_t exceeded = 0;
    const s_group_t *example = NULL; // the first by keys: notes never depend on row order
    for (size_t i = 0; i < self->n_groups; i++) {
        s_group_t *t = &self->groups[i];
        if (!t->has_parts || !t->adds)
            continue;
        if (t->parts > t->sum) {
            t->exceeds = 1;
            exceeded++;
            example = !example || s_cmp_keys(t, example) < 0 ? t : example;
        }
        if (!self->spec->unallocated)
            continue;
        s_group_t *u = &self->unallocs[self->n_unallocs];
        *u = *t;
        u->keys[at_field] = s_unalloc_key;
        u->key = s_key(self, u->keys, u->unit, S_CUR, &u->key_len); // for sorting; owned
        if (!u->key)
            return KMX_ERR_NOMEM;
        self->n_unallocs++;
        const char *seg = u->key; // the keys and unit now point into u's own key
        for (size_t f = 0; f < self->spec->n_fields; f++, seg += strlen(seg) + 1)
            u->keys[f] = seg;
        u->unit = seg;
        u->part = self->category_at < self->spec->n_fields ? u->keys[self->category_at] : s_no_part;
        u->sum = t->sum - t->parts;
        u->count = 0;
        u->minmax = 0;
        u->has_base = 0;
        u->cls = self->market_at != SIZE_MAX || self->level_at != SIZE_MAX ? S_CLS_COUNTRY
                                                                           : S_CLS_REGION;
        u->level = NULL;
        u->unalloc = 1;
        u->exceeds = u->has_parts = 0;
        u->total_at = i;
    }
    if (example) {
        char keys[160], a[S_TEXT], b[S_TEXT];
        s_keys_text(self, example, keys, sizeof keys);
        kmx_decimal_format128(example->parts, a, sizeof a);
        kmx_decimal_format128(example->sum, b, sizeof b);
        s_note(self,
               "%zu total%s smaller than the parts listed (e.g. %s %.40s: parts %s, total %s)",
               exceeded, exceeded == 1 ? " is" : "s are", keys, example->unit, a, b);
    }
    return 0;
}

typedef struct {
    uint32_t start, end; // a kept span, clipped to the bucket
} s_span_t;

static int s_cmp_span(const void *pa, const void *pb) {
    const s_span_t *a = pa, *b = pb;
    return a->start < b->start ? -1 : a->start > b->start;
}

// The bucket of g's months: its period, its year, or the asked range (clipped to the asked
// range). Returns 0 when the row has none.
static int s_bucket(const kmx_shape_t *self, const s_group_t *g, kmx_period_t *out) {
    const kmx_shape_spec_t *spec = self->spec;
    if (self->period_at < spec->n_fields) {
        if (kmx_period_parse(g->keys[self->period_at], out) != 0)
            return 0;
    } else if (self->year_at != SIZE_MAX) {
        long y = strtol(g->keys[self->year_at], NULL, 10);
        if (y < KMX_YEAR_MIN || y > KMX_YEAR_MAX)
            return 0;
        out->start = (uint32_t)y * 100 + 1;
        out->end = (uint32_t)y * 100 + 12;
    } else if (spec->has_range) {
        *out = spec->range;
    } else {
        return 0;
    }
    if (spec->has_range) {
        out->start = out->start < spec->range.start ? spec->range.start : out->start;
        out->end = out->end > spec->range.end ? spec->range.end : out->end;
    }
    return out->start <= out->end;
}

// Counts the months the kept spans of one group's members [from, to) cover.
static void s_cover_run(kmx_shape_t *self, size_t from, size_t to, s_span_t *spans) {
    s_group_t *g = &self->groups[self->members[from].group];
    kmx_period_t b = {0, 0};
    int has_bucket = s_bucket(self, g, &b);
    g->in_bucket = has_bucket ? kmx_period_months(&b) : 0;
    size_t n = 0;
    for (size_t i = from; i < to; i++) {
        if (self->members[i].dropped)
            continue;
        kmx_period_t p = self->entries[self->members[i].entry].period;
        if (has_bucket && (p.end < b.start || p.start > b.end))
            continue;
        spans[n].start = has_bucket && p.start < b.start ? b.start : p.start;
        spans[n].end = has_bucket && p.end > b.end ? b.end : p.end;
        n++;
    }
    if (n > 1)
        qsort(spans, n, sizeof *spans, s_cmp_span);
    g->months = 0;
    for (size_t i = 0; i < n;) {
        kmx_period_t run = {spans[i].start, spans[i].end};
        size_t k = i + 1;
        while (k < n && spans[k].start <= run.end) {
            run.end = spans[k].end > run.end ? spans[k].end : run.end;
            k++;
        }
        g->months += kmx_period_months(&run);
        g->first = i == 0 ? run.start : g->first;
        g->last = run.end;
        i = k;
    }
}

// Coverage of every current group (members are sorted by group after the rule).
static int s_coverage(kmx_shape_t *self) {
    if (self->period_at == SIZE_MAX || self->spec->latest || self->n_members == 0)
        return 0;
    s_span_t *spans = malloc(self->n_members * sizeof *spans);
    if (!spans)
        return KMX_ERR_NOMEM;
    for (size_t i = 0; i < self->n_members;) {
        size_t j = i + 1;
        while (j < self->n_members && self->members[j].group == self->members[i].group)
            j++;
        if (self->groups[self->members[i].group].role == S_CUR)
            s_cover_run(self, i, j, spans);
        i = j;
    }
    free(spans);
    return 0;
}

// Refuses a sum, share, growth or "other" bucket when every unit of the answer does not
// add up (the question means nothing); when only some do, their rows carry none of those
// and a note says so.
static int s_check_adds(kmx_shape_t *self, char *why, size_t sz) {
    const kmx_shape_spec_t *spec = self->spec;
    if (!spec->sum_asked && !spec->share && !spec->growth && !spec->other)
        return 0;
    const s_group_t *bad = NULL;
    int adds = 0;
    for (size_t i = 0; i < self->n_groups; i++) {
        const s_group_t *g = &self->groups[i];
        if (g->role != S_CUR || g->count == 0 || !s_kept(self, g))
            continue;
        adds |= g->adds;
        bad = !g->adds && (!bad || strcmp(g->unit, bad->unit) < 0) ? g : bad;
    }
    if (!bad)
        return 0;
    const char *what = spec->share    ? "a share"
                       : spec->growth ? "growth"
                       : spec->other  ? "an \"other\" bucket (a sum)"
                                      : "a sum";
    const char *cls = kmx_unit_class_name(kmx_unit_class(bad->unit));
    const char *carried = spec->share ? "share" : spec->growth ? "growth" : "sum";
    if (adds && bad->stock) {
        s_note(self,
               "%.60s adds across markets but not over time: rows holding several periods carry "
               "no %s, only avg",
               bad->unit, carried);
        return 0;
    }
    if (adds) {
        s_note(self, "%.60s is a %s and does not add up: its rows carry no %s, only avg", bad->unit,
               cls, carried);
        return 0;
    }
    if (bad->stock) {
        snprintf(why, sz,
                 "%s of %.60s over several periods means nothing: %.60s is a level measured at a "
                 "time (monthly users, a count at a date) that adds across markets but not over "
                 "time; ask for latest, avg, min, max or a series (--latest, --metrics "
                 "count,avg,min,max, --time-series), or group by period",
                 what, bad->unit, bad->unit);
        return KMX_ERR_INVAL;
    }
    snprintf(why, sz,
             "%s of %.60s means nothing: %.60s is a %s and does not add up; ask for latest, avg, "
             "min, max or a series (--latest, --metrics count,avg,min,max, --time-series), or "
             "pick an additive unit with --unit",
             what, bad->unit, bad->unit, cls);
    return KMX_ERR_INVAL;
}

// ---- growth, share, top -------------------------------------------------------------

// Writes the keys of g's growth base: the same keys with the period or year moved back.
static void s_base_keys(const kmx_shape_t *self, const s_group_t *g, const char **keys, char *ptext,
                        char *ytext) {
    memcpy(keys, g->keys, sizeof g->keys);
    if (!s_per_row(self->spec))
        return;
    if (self->period_at < self->spec->n_fields) {
        kmx_period_t p;
        if (kmx_period_parse(g->keys[self->period_at], &p) != 0)
            return;
        int back = self->spec->growth == KMX__V1__GROWTH__YOY ? 12 : (int)kmx_period_months(&p);
        p = s_shift(p, -back);
        kmx_period_format(&p, ptext, KMX_PERIOD_TEXT_MAX);
        keys[self->period_at] = ptext;
        snprintf(ytext, 16, "%u", p.start / 100);
    } else {
        long y = strtol(g->keys[self->year_at], NULL, 10) - 1;
        snprintf(ytext, 16, "%ld", y > 0 && y < 100000 ? y : 0L);
    }
    if (self->year_at != SIZE_MAX)
        keys[self->year_at] = ytext;
}

static int s_find_bases(kmx_shape_t *self) {
    for (size_t i = 0; i < self->n_groups; i++) {
        s_group_t *g = &self->groups[i];
        if (g->role != S_CUR)
            continue;
        const char *keys[KMX_SHAPE_FIELDS_MAX];
        char ptext[KMX_PERIOD_TEXT_MAX], ytext[16];
        s_base_keys(self, g, keys, ptext, ytext);
        size_t at;
        int rc = s_group(self, keys, g->unit, S_BASE, 0, &at);
        if (rc < 0)
            return rc;
        g = &self->groups[i];
        // Like with like: a 2024 total has no base in a 2023 first half alone.
        if (rc == 0 && self->groups[at].count > 0 && self->groups[at].cover == g->cover) {
            g->has_base = 1;
            g->base = self->groups[at].sum;
        }
    }
    return 0;
}

static kmx_i128 s_abs(kmx_i128 v) {
    return v < 0 ? -v : v;
}

// Writes round(num * 10000 / den) hundredths (a percent with two decimals, half away
// from zero) as decimal text. Returns 0, or 1 when den is 0 or the value is out of range.
static int s_percent(kmx_i128 num, kmx_i128 den, char *buf, size_t size) {
    const kmx_i128 lim = (kmx_i128)1 << 100;
    if (den == 0 || s_abs(num) > lim)
        return 1;
    kmx_i128 a = num * 10000;
    kmx_i128 b = s_abs(den);
    kmx_i128 q = a / b, r = s_abs(a % b);
    if (2 * r >= b)
        q += a < 0 ? -1 : 1;
    return kmx_decimal_format128(q * 100, buf, size) != 0;
}

// Partitions of the current groups: rankings and shares never compare rows of different
// units, nor of different categories when the category was added (different statistics),
// nor of different market levels (countries with countries, regions with regions).
typedef struct {
    const s_group_t *first[S_PARTS_MAX]; // the first group seen of each partition
    kmx_i128 total[S_PARTS_MAX];         // sum of the partition's current groups
    size_t n;                            // partitions held
} s_parts_t;

// Returns the index of g's partition in t (by added category; by unit and rank class when
// ranked is set), adding it when absent; SIZE_MAX when t is full.
static size_t s_part_at(s_parts_t *t, const s_group_t *g, int ranked) {
    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(t->first[i]->part, g->part) == 0 &&
            (!ranked || (t->first[i]->cls == g->cls && strcmp(t->first[i]->unit, g->unit) == 0)))
            return i;
    }
    if (t->n == S_PARTS_MAX)
        return SIZE_MAX;
    t->first[t->n] = g;
    t->total[t->n] = 0;
    return t->n++;
}

// Refuses several units within one partition when the answer ranks or shares rows and the
// rows are not grouped by unit.
static int s_check_units(const kmx_shape_t *self, char *why, size_t sz) {
    const kmx_shape_spec_t *spec = self->spec;
    if ((spec->top == 0 && !spec->share) || self->unit_field != SIZE_MAX)
        return 0;
    s_parts_t *t = malloc(sizeof *t);
    const char **lo = malloc(S_PARTS_MAX * sizeof *lo), **hi = malloc(S_PARTS_MAX * sizeof *hi);
    int rc = t && lo && hi ? 0 : KMX_ERR_NOMEM;
    if (t)
        t->n = 0;
    // Per partition the two smallest units, so the sentence names the same pair whatever
    // order the rows came in (folded or month by month).
    for (size_t i = 0; i < self->n_groups && rc == 0; i++) {
        const s_group_t *g = &self->groups[i];
        if (g->role != S_CUR || g->count == 0 || !s_kept(self, g))
            continue; // rows left out by complete are not compared
        size_t n = t->n, at = s_part_at(t, g, 0);
        if (at == SIZE_MAX) {
            rc = KMX_ERR_TOO_BIG;
            break;
        }
        if (at == n) {
            lo[at] = g->unit, hi[at] = NULL;
        } else if (strcmp(g->unit, lo[at]) < 0) {
            hi[at] = lo[at], lo[at] = g->unit;
        } else if (strcmp(g->unit, lo[at]) > 0 && (!hi[at] || strcmp(g->unit, hi[at]) < 0)) {
            hi[at] = g->unit;
        }
    }
    const s_group_t *bad = NULL;
    size_t bad_at = 0;
    for (size_t i = 0; rc == 0 && i < t->n; i++) {
        if (hi[i] && (!bad || strcmp(t->first[i]->part, bad->part) < 0))
            bad = t->first[i], bad_at = i;
    }
    if (bad) {
        snprintf(why, sz,
                 "conflicting units: the matching records%s%.60s are in %.60s and %.60s; a "
                 "ranking or share needs one unit%s (choose it with --unit, or group by unit)",
                 bad->part[0] ? " of category " : "", bad->part, lo[bad_at], hi[bad_at],
                 bad->part[0] ? " per category" : "");
        rc = KMX_ERR_INVAL;
    }
    free(t);
    free(lo);
    free(hi);
    return rc;
}

// Compares composite keys segment by segment ("a" before "a b" whatever follows).
static int s_cmp_keys(const s_group_t *a, const s_group_t *b) {
    size_t ia = 0, ib = 0;
    while (ia < a->key_len && ib < b->key_len) {
        int c = strcmp(a->key + ia, b->key + ib);
        if (c != 0)
            return c;
        ia += strlen(a->key + ia) + 1;
        ib += strlen(b->key + ib) + 1;
    }
    return (ia < a->key_len) - (ib < b->key_len);
}

static int s_cmp_by_keys(const void *pa, const void *pb) {
    return s_cmp_keys(*(const s_group_t *const *)pa, *(const s_group_t *const *)pb);
}

// Compares the values rows rank by: sums, or averages for a unit that does not add.
static int s_cmp_value(const s_group_t *a, const s_group_t *b) {
    if (a->adds || a->count == 0 || b->count == 0) {
        if (a->sum != b->sum)
            return a->sum > b->sum ? -1 : 1;
        return 0;
    }
    kmx_i128 x = a->sum * (kmx_i128)b->count, y = b->sum * (kmx_i128)a->count;
    return x > y ? -1 : x < y;
}

// Partition (added category, unit, rank class: totals first), then the largest first;
// an "(unallocated)" row closes its class.
static int s_cmp_by_sum(const void *pa, const void *pb) {
    const s_group_t *a = *(const s_group_t *const *)pa, *b = *(const s_group_t *const *)pb;
    int c = strcmp(a->part, b->part);
    if (c == 0)
        c = strcmp(a->unit, b->unit);
    if (c == 0)
        c = (a->cls > b->cls) - (a->cls < b->cls);
    if (c == 0)
        c = a->unalloc - b->unalloc;
    if (c == 0)
        c = s_cmp_value(a, b);
    return c != 0 ? c : s_cmp_keys(a, b);
}

// ---- rows ---------------------------------------------------------------------------

// A row's share base: the stored total of the same keys when one is in the answer, a
// total's own sum, else the sum of the rows compared (its partition).
static void s_share(const kmx_shape_t *self, const s_group_t *g, kmx_i128 rows_total,
                    int has_rows_total, s_out_t *o) {
    Kmx__V1__Row *row = &o->row;
    kmx_i128 base = rows_total;
    const char *kind = "rows";
    if (g->total_at != SIZE_MAX) {
        base = self->groups[g->total_at].sum;
        kind = "total";
    } else if (g->cls == S_CLS_TOTAL && !g->other) {
        base = g->sum;
        kind = "total";
    } else if (!has_rows_total) {
        return;
    }
    if (s_percent(g->sum, base, o->share, sizeof o->share) != 0)
        return;
    row->share = o->share;
    row->share_base = (char *)kind;
    kmx_decimal_format128(base, o->share_of, sizeof o->share_of);
    row->share_of = o->share_of;
}

// What a row is and which months it covers (docs/queries.md).
static void s_fill_meaning(const s_group_t *g, s_out_t *o) {
    Kmx__V1__Row *row = &o->row;
    row->has_adds = 1;
    row->adds = g->adds != 0;
    row->level = (char *)(g->unalloc ? NULL : g->level);
    row->has_total = g->cls == S_CLS_TOTAL && !g->other;
    row->total = row->has_total;
    row->has_unallocated = row->unallocated = g->unalloc;
    row->has_exceeds_total = row->exceeds_total = g->exceeds;
    if (g->other || (g->in_bucket == 0 && g->months == 0))
        return;
    row->has_months = row->has_months_in_bucket = row->has_partial = 1;
    row->months = g->months;
    row->months_in_bucket = g->in_bucket;
    row->partial = g->in_bucket > 0 && g->months < g->in_bucket;
    kmx_period_t p = {g->first, g->last};
    if (g->months > 0 && kmx_period_months(&p) == g->months) { // one run, no gap
        kmx_period_format(&p, o->covered, sizeof o->covered);
        row->covered = o->covered;
    }
}

static void s_fill(const kmx_shape_t *self, const s_group_t *g, kmx_i128 total, int has_total,
                   s_out_t *o) {
    const kmx_shape_spec_t *spec = self->spec;
    Kmx__V1__Row *row = &o->row;
    kmx__v1__row__init(row);
    size_t nk = 0;
    for (size_t i = 0; i < spec->n_fields; i++) {
        if (i != self->hidden_at)
            o->keys[nk++] =
                g->other && i != self->unit_field && i != self->category_at && i != self->level_at
                    ? s_other_key
                    : (char *)g->keys[i];
    }
    row->n_keys = nk;
    row->keys = nk ? o->keys : NULL;
    row->unit = (char *)g->unit;
    row->has_count = 1;
    row->count = g->count;
    row->has_other = g->other;
    row->other = g->other;
    s_fill_meaning(g, o);
    if (g->count == 0 && !g->unalloc)
        return; // an empty step of a series: no sum, not a zero
    kmx_decimal_format128(g->sum, o->sum, sizeof o->sum);
    if (g->adds)
        row->sum = o->sum; // a unit that does not add shows its average, never a sum
    if (spec->minmax && g->minmax) {
        row->has_min = row->has_max = 1;
        row->min = g->min;
        row->max = g->max;
    }
    if ((spec->avg || !g->adds) && g->count > 0) {
        kmx_i128 q = g->sum / (kmx_i128)g->count, r = s_abs(g->sum % (kmx_i128)g->count);
        if (2 * r >= (kmx_i128)g->count)
            q += g->sum < 0 ? -1 : 1;
        kmx_decimal_format128(q, o->avg, sizeof o->avg);
        row->avg = o->avg;
    }
    if (spec->share && g->adds)
        s_share(self, g, total, has_total, o);
    if (spec->growth && g->adds && g->has_base && (!g->other || g->all_bases)) {
        kmx_decimal_format128(g->base, o->prev, sizeof o->prev);
        row->previous = o->prev;
        if (s_percent(g->sum - g->base, g->base, o->growth, sizeof o->growth) == 0)
            row->growth = o->growth;
    }
    if (g->has_latest) {
        kmx_period_format(&g->latest, o->period, sizeof o->period);
        row->period = o->period;
    }
}

// Folds the groups ranked below top (per partition) into one "other" group per partition,
// which is appended to the groups; the order array then lists the kept groups and the
// buckets.
static int s_fold_other(kmx_shape_t *self, s_group_t **order, size_t *n, size_t n_parts) {
    size_t kept = 0, rank = 0, n_buckets = 0;
    if (self->spec->other) {
        self->buckets = calloc(n_parts ? n_parts : 1, sizeof *self->buckets);
        if (!self->buckets)
            return KMX_ERR_NOMEM;
    }
    size_t total = *n;
    s_group_t *bucket = NULL;
    const s_group_t *prev = NULL;
    for (size_t i = 0; i < total; i++) {
        s_group_t *g = order[i]; // order[i] may be overwritten below: kept <= i
        // A total and what it leaves unallocated are never ranked against its parts; split
        // by level (no market key), the world rows rank among themselves.
        if ((g->cls == S_CLS_TOTAL && self->level_at == SIZE_MAX) || g->unalloc) {
            order[kept++] = g;
            continue;
        }
        if (!prev || strcmp(g->unit, prev->unit) != 0 || strcmp(g->part, prev->part) != 0 ||
            g->cls != prev->cls)
            rank = 0, bucket = NULL;
        prev = g;
        if (++rank <= self->spec->top) {
            order[kept++] = g;
            continue;
        }
        if (!self->spec->other || !g->adds)
            continue; // the rest of a unit that does not add is left out, never summed
        if (!bucket) {
            if (n_buckets == n_parts)
                return KMX_ERR_INTERNAL;
            bucket = &self->buckets[n_buckets++];
            bucket->other = 1;
            bucket->unit = g->unit;
            bucket->part = g->part;
            bucket->minmax = 1;
            bucket->all_bases = 1;
            bucket->cls = g->cls;
            bucket->adds = g->adds;
            bucket->level = g->level;
            bucket->total_at = g->total_at;
            memcpy(bucket->keys, g->keys, sizeof bucket->keys);
            order[kept++] = bucket;
        }
        if (!kmx_unit_adds_over_time(g->unit)) {
            // A stock's "(other)" adds only rows of one and the same period.
            uint32_t a = g->has_latest ? g->latest.start : g->first;
            uint32_t b = g->has_latest ? g->latest.end : g->last;
            if (bucket->count == 0)
                bucket->first = a, bucket->last = b;
            else if (a != bucket->first || b != bucket->last || g->months > 1)
                bucket->adds = 0, bucket->stock = 1;
        }
        bucket->min = bucket->count == 0 || g->min < bucket->min ? g->min : bucket->min;
        bucket->max = bucket->count == 0 || g->max > bucket->max ? g->max : bucket->max;
        bucket->minmax &= g->minmax;
        bucket->sum += g->sum;
        bucket->count += g->count;
        bucket->base += g->has_base ? g->base : 0;
        bucket->has_base |= g->has_base;
        bucket->all_bases &= g->has_base;
    }
    *n = kept;
    return 0;
}

// Whether a current group becomes a row: it has records (or is a series step), and is
// not a partial bucket when only complete ones are asked for.
static int s_kept(const kmx_shape_t *self, const s_group_t *g) {
    if (g->role != S_CUR || (g->count == 0 && !self->spec->series))
        return 0;
    return !self->spec->complete || g->in_bucket == 0 || g->months >= g->in_bucket;
}

// The totals of each (added category, unit) partition, for shares and "other" buckets;
// only computed when the answer ranks or shares rows.
static int s_totals(const kmx_shape_t *self, s_parts_t *t) {
    t->n = 0;
    if (self->spec->top == 0 && !self->spec->share)
        return 0;
    for (size_t i = 0; i < self->n_groups; i++) {
        const s_group_t *g = &self->groups[i];
        if (!s_kept(self, g))
            continue;
        size_t at = s_part_at(t, g, 1);
        if (at == SIZE_MAX)
            return KMX_ERR_TOO_BIG;
        t->total[at] += g->sum;
    }
    return 0;
}

static int s_lookup_total(const s_parts_t *t, const s_group_t *g, kmx_i128 *out) {
    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(t->first[i]->unit, g->unit) == 0 && strcmp(t->first[i]->part, g->part) == 0 &&
            t->first[i]->cls == g->cls) {
            *out = t->total[i];
            return 1;
        }
    }
    return 0;
}

// Writes g's keys as "k1 k2 ..." (at most three) for a sentence.
static void s_keys_text(const kmx_shape_t *self, const s_group_t *g, char *buf, size_t size) {
    size_t at = 0;
    buf[0] = '\0';
    for (size_t i = 0, n = 0; i < self->spec->n_fields && n < 3 && at < size; i++) {
        if (i != self->hidden_at)
            at += (size_t)snprintf(buf + at, size - at, "%s%.40s", n++ ? " " : "", g->keys[i]);
    }
}

// Notes on coverage: partial rows, left-out partial rows, and parts whose months differ
// from their total's.
static void s_coverage_notes(kmx_shape_t *self) {
    size_t partial = 0, left_out = 0;
    const s_group_t *example = NULL, *differs = NULL;
    for (size_t i = 0; i < self->n_groups; i++) {
        const s_group_t *g = &self->groups[i];
        if (g->role != S_CUR || g->count == 0 || g->in_bucket == 0)
            continue;
        // Examples are the first by keys, so the note does not depend on the order the
        // fine rows came in (a folded year and its months give the same answer).
        if (g->months < g->in_bucket) {
            partial++;
            left_out += self->spec->complete;
            example = !example || s_cmp_keys(g, example) < 0 ? g : example;
        }
        const s_group_t *t = g->total_at != SIZE_MAX ? &self->groups[g->total_at] : NULL;
        if (t && t->months != g->months && (!differs || s_cmp_keys(g, differs) < 0))
            differs = g;
    }
    if (example) {
        char keys[160];
        s_keys_text(self, example, keys, sizeof keys);
        s_note(self, "%zu row%s cover%s only part of %s bucket%s (e.g. %s: %u of %u months)%s",
               partial, partial == 1 ? "" : "s", partial == 1 ? "s" : "",
               partial == 1 ? "its" : "their", partial == 1 ? "" : "s", keys, example->months,
               example->in_bucket,
               left_out ? "; left out (--complete)" : "; --complete keeps whole buckets only");
    }
    if (differs) {
        const s_group_t *t = &self->groups[differs->total_at];
        size_t at = s_total_field(self);
        char keys[160];
        s_keys_text(self, differs, keys, sizeof keys);
        s_note(self, "rows compared cover different months: %s covers %u, its total %.40s %u", keys,
               differs->months, t->keys[at], t->months);
    }
}

static int s_cmp_note(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

// The answer's share base: "total", "rows" or "mixed".
static void s_share_summary(kmx_shape_t *self) {
    int total = 0, rows = 0;
    for (size_t i = 0; i < self->n_out; i++) {
        const char *b = self->out[i].row.share_base;
        total |= b && b[0] == 't';
        rows |= b && b[0] == 'r';
    }
    snprintf(self->share_base, sizeof self->share_base, "%s",
             total && rows ? "mixed"
             : total       ? "total"
             : rows        ? "rows"
                           : "");
}

static int s_build_rows(kmx_shape_t *self) {
    size_t n = 0;
    int rc = s_unallocated(self);
    s_group_t **order = malloc((self->n_groups + self->n_unallocs + 1) * sizeof *order);
    s_parts_t *totals = malloc(sizeof *totals);
    if (rc == 0)
        rc = order && totals ? s_totals(self, totals) : KMX_ERR_NOMEM;
    for (size_t i = 0; rc == 0 && i < self->n_groups; i++) {
        if (s_kept(self, &self->groups[i]))
            order[n++] = &self->groups[i];
    }
    for (size_t i = 0; rc == 0 && i < self->n_unallocs; i++)
        order[n++] = &self->unallocs[i];
    if (rc == 0 && n > KMX_SHAPE_ROWS_MAX)
        rc = KMX_ERR_TOO_BIG;
    if (rc == 0)
        qsort(order, n, sizeof *order, self->spec->top ? s_cmp_by_sum : s_cmp_by_keys);
    if (rc == 0 && self->spec->top)
        rc = s_fold_other(self, order, &n, totals->n);
    if (rc == 0) {
        self->out = calloc(n ? n : 1, sizeof *self->out);
        self->out_ptrs = calloc(n ? n : 1, sizeof *self->out_ptrs);
        rc = self->out && self->out_ptrs ? 0 : KMX_ERR_NOMEM;
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        kmx_i128 total = 0;
        int has_total = s_lookup_total(totals, order[i], &total);
        s_fill(self, order[i], total, has_total, &self->out[i]);
        self->out_ptrs[i] = &self->out[i].row;
        self->n_out = i + 1;
    }
    if (rc == 0) {
        s_coverage_notes(self);
        s_share_summary(self);
        qsort(self->note_ptrs, self->n_notes, sizeof *self->note_ptrs, s_cmp_note);
    }
    free(order);
    free(totals);
    return rc;
}

static void s_count_matched(kmx_shape_t *self) {
    for (size_t i = 0; i < self->n_groups; i++) {
        if (self->groups[i].role == S_CUR)
            self->matched += self->groups[i].count;
    }
}

// Where the added level is, and whether the fine rows hold several levels: an answer whose
// records all have one level (every consumption record is KR) is not split by it.
static void s_find_level(kmx_shape_t *self, const Kmx__V1__QueryResult *fine) {
    const kmx_shape_spec_t *spec = self->spec;
    self->level_at = self->hidden_at = SIZE_MAX;
    if (self->market_at != SIZE_MAX)
        return;
    size_t at = s_field_at(spec, KMX__V1__GROUP_FIELD__BY_LEVEL);
    if (at == SIZE_MAX)
        return;
    int split = !spec->level_added;
    for (size_t i = 1; i < fine->n_rows && !split; i++) {
        const Kmx__V1__Row *a = fine->rows[0], *b = fine->rows[i];
        split = a && b && a->n_keys > at && b->n_keys > at && a->keys[at] && b->keys[at] &&
                strcmp(a->keys[at], b->keys[at]) != 0;
    }
    if (split)
        self->level_at = at;
    else
        self->hidden_at = at;
}

int kmx_shape_run(const kmx_shape_spec_t *spec, const Kmx__V1__QueryResult *fine, kmx_shape_t **out,
                  char *why, size_t why_size) {
    if (!spec || !fine || !out || spec->n_fields > KMX_SHAPE_FIELDS_MAX)
        return KMX_ERR_INVAL;
    *out = NULL;
    kmx_shape_t *self = calloc(1, sizeof *self);
    if (!self)
        return KMX_ERR_NOMEM;
    self->spec = spec;
    self->period_at = s_field_at(spec, KMX__V1__GROUP_FIELD__BY_PERIOD);
    if (self->period_at == SIZE_MAX && kmx_shape_needs_period(spec))
        self->period_at = spec->n_fields;
    self->year_at = s_field_at(spec, KMX__V1__GROUP_FIELD__BY_YEAR);
    self->unit_field = s_field_at(spec, KMX__V1__GROUP_FIELD__BY_UNIT);
    self->category_at = spec->category_added ? spec->n_fields - 1 : SIZE_MAX;
    self->market_at = s_field_at(spec, KMX__V1__GROUP_FIELD__BY_MARKET);
    self->region_at = s_field_at(spec, KMX__V1__GROUP_FIELD__BY_REGION);
    s_find_level(self, fine);
    for (size_t i = 0; i < spec->n_fields; i++) {
        if (i != self->hidden_at)
            self->fields[self->n_shown++] = spec->fields[i];
    }
    snprintf(self->gran_name, sizeof self->gran_name, "%s",
             spec->gran_mode == KMX_SHAPE_GRAN_AUTO  ? "auto"
             : spec->gran_mode == KMX_SHAPE_GRAN_ANY ? "any"
                                                     : kmx_gran_name(spec->gran));
    int rc = self->period_at == SIZE_MAX ? 0 : s_load(self, fine);
    if (self->period_at == SIZE_MAX) {
        // No period key: nothing to drop or compare; each fine row is one group.
        self->entries = calloc(fine->n_rows ? fine->n_rows : 1, sizeof *self->entries);
        rc = self->entries ? 0 : KMX_ERR_NOMEM;
        for (size_t i = 0; rc == 0 && i < fine->n_rows; i++) {
            const Kmx__V1__Row *row = fine->rows[i];
            s_entry_t *e = &self->entries[self->n_entries];
            if (!row || row->n_keys != spec->n_fields || !row->unit || !row->sum ||
                kmx_decimal_parse128(row->sum, &e->sum) != 0)
                rc = KMX_ERR_DECODE;
            else {
                e->row = row;
                rc = s_add_member(self, self->n_entries++, S_CUR);
            }
        }
    }
    if (rc == 0) {
        s_apply_rule(self);
        if (!spec->latest)
            s_mark_stock(self);
        s_count_matched(self);
        rc = s_coverage(self);
    }
    if (rc == 0) {
        s_mark_region_totals(self);
        rc = s_check_units(self, why, why_size);
    }
    if (rc == 0)
        rc = s_check_adds(self, why, why_size);
    if (rc == 0 && spec->series)
        rc = s_pad_series(self, why, why_size);
    if (rc == 0 && spec->growth)
        rc = s_find_bases(self);
    if (rc == 0)
        rc = s_link_totals(self);
    if (rc == 0)
        rc = s_build_rows(self);
    if (rc != 0) {
        kmx_shape_destroy(&self);
        return rc;
    }
    *out = self;
    return 0;
}

void kmx_shape_result(const kmx_shape_t *self, Kmx__V1__QueryResult *out) {
    out->n_rows = self->n_out;
    out->rows = self->out_ptrs;
    out->has_matched = 1;
    out->matched = self->matched;
    out->granularity = (char *)self->gran_name;
    out->has_dropped = self->spec->gran_mode == KMX_SHAPE_GRAN_AUTO;
    out->dropped = self->dropped;
    out->n_group_by = self->n_shown;
    out->group_by = self->n_shown ? (Kmx__V1__GroupField *)self->fields : NULL;
    out->share_base = self->share_base[0] ? (char *)self->share_base : NULL;
    out->n_notes = self->n_notes;
    out->notes = self->n_notes ? (char **)self->note_ptrs : NULL;
}
