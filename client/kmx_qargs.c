/*  kmx_qargs - the read commands' options as requests, and query answers as columns.
    Markets, regions and units are put in canonical form before they are sent, so "japan"
    and "USD_million" filter the same as "JP" and "USD".  */
#include "kmx_qargs.h"

#include "kmx_err.h"
#include "kmx_json.h"
#include "kmx_market.h"
#include "kmx_period.h"
#include "kmx_record.h"
#include "kmx_value.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const kmx_qargs_option_t kmx_qargs_options[] = {{"period", true, KMX_QARG_PERIOD},
                                                {"from", true, KMX_QARG_FROM},
                                                {"to", true, KMX_QARG_TO},
                                                {"market", true, KMX_QARG_MARKET},
                                                {"markets", true, KMX_QARG_MARKET},
                                                {"region", true, KMX_QARG_REGION},
                                                {"category", true, KMX_QARG_CATEGORY},
                                                {"dimension", true, KMX_QARG_CATEGORY},
                                                {"item", true, KMX_QARG_ITEM},
                                                {"series", true, KMX_QARG_ITEM},
                                                {"company", true, KMX_QARG_COMPANY},
                                                {"artist", true, KMX_QARG_ARTIST},
                                                {"unit", true, KMX_QARG_UNIT},
                                                {"source", true, KMX_QARG_SOURCE},
                                                {"granularity", true, KMX_QARG_GRANULARITY},
                                                {"by", true, KMX_QARG_BY},
                                                {"top", true, KMX_QARG_TOP},
                                                {"kind", true, KMX_QARG_KIND},
                                                {"metrics", true, KMX_QARG_METRICS},
                                                {"metric", true, KMX_QARG_METRICS},
                                                {"other", false, KMX_QARG_OTHER},
                                                {"share", false, KMX_QARG_SHARE},
                                                {"growth", true, KMX_QARG_GROWTH},
                                                {"time-series", false, KMX_QARG_SERIES},
                                                {"latest", false, KMX_QARG_LATEST},
                                                {"prefer", false, KMX_QARG_PREFER},
                                                {"unallocated", false, KMX_QARG_UNALLOCATED},
                                                {"complete", false, KMX_QARG_COMPLETE},
                                                {"scale", true, KMX_QARG_SCALE},
                                                {"pivot", true, KMX_QARG_PIVOT},
                                                {"limit", true, KMX_QARG_LIMIT},
                                                {"page-token", true, KMX_QARG_PAGE_TOKEN},
                                                {NULL, false, 0}};

static int s_fail(kmx_qargs_t *self, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int s_fail(kmx_qargs_t *self, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(self->err, sizeof(self->err), fmt, ap);
    va_end(ap);
    return -1;
}

int kmx_qargs_list_push(kmx_qargs_list_t *list, const char *text) {
    char **grown = realloc(list->items, (list->n + 1) * sizeof(*grown));
    if (!grown)
        return KMX_ERR_NOMEM;
    list->items = grown;
    list->items[list->n] = strdup(text);
    if (!list->items[list->n])
        return KMX_ERR_NOMEM;
    list->n++;
    return 0;
}

int kmx_qargs_list_add(kmx_qargs_list_t *list, const char *text) {
    const char *p = text;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        while (len > 0 && (*p == ' ' || *p == '\t'))
            p++, len--;
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if (len > 0) {
            char *item = strndup(p, len);
            int rc = item ? kmx_qargs_list_push(list, item) : KMX_ERR_NOMEM;
            free(item);
            if (rc < 0)
                return rc;
        }
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

void kmx_qargs_list_free(kmx_qargs_list_t *list) {
    for (size_t i = 0; i < list->n; i++)
        free(list->items[i]);
    free(list->items);
    list->items = NULL;
    list->n = 0;
}

int kmx_qargs_parse_u64(const char *text, unsigned long long max, unsigned long long *out) {
    if (!text || *text < '0' || *text > '9')
        return KMX_ERR_INVAL;
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0' || v > max)
        return KMX_ERR_INVAL;
    *out = v;
    return 0;
}

void kmx_qargs_init(kmx_qargs_t *self, kmx_qargs_cmd_t cmd) {
    memset(self, 0, sizeof(*self));
    self->cmd = cmd;
}

void kmx_qargs_fini(kmx_qargs_t *self) {
    for (size_t i = 0; i < 8; i++)
        kmx_qargs_list_free(&self->lists[i]);
    kmx_qargs_list_free(&self->by);
    kmx_qargs_list_free(&self->metrics);
}

const kmx_qargs_option_t *kmx_qargs_find(const char *name) {
    for (const kmx_qargs_option_t *o = kmx_qargs_options; o->name; o++) {
        if (strcmp(o->name, name) == 0)
            return o;
    }
    return NULL;
}

static int s_added(kmx_qargs_t *self, int rc) {
    return rc < 0 ? s_fail(self, "out of memory") : 1;
}

int kmx_qargs_set_kind(kmx_qargs_t *self, const char *word) {
    if (kmx_kind_parse(word, &self->kind) < 0)
        return s_fail(self, "expected exports or consumption, not \"%s\"", word);
    self->has_kind = true;
    return 0;
}

// The options only query takes. Returns 1 if handled, 0 if unknown, -1 if bad.
static int s_query_option(kmx_qargs_t *self, int code, const char *arg) {
    switch (code) {
    case KMX_QARG_METRICS:
        return s_added(self, kmx_qargs_list_add(&self->metrics, arg));
    case KMX_QARG_OTHER:
        self->other = true;
        return 1;
    case KMX_QARG_SHARE:
        self->share = true;
        return 1;
    case KMX_QARG_SERIES:
        self->series = true;
        return 1;
    case KMX_QARG_LATEST:
        self->latest = true;
        return 1;
    case KMX_QARG_PREFER:
        self->prefer = true;
        return 1;
    case KMX_QARG_UNALLOCATED:
        self->unallocated = true;
        return 1;
    case KMX_QARG_COMPLETE:
        self->complete = true;
        return 1;
    case KMX_QARG_SCALE:
        if (strcmp(arg, "auto") && strcmp(arg, "thousand") && strcmp(arg, "million") &&
            strcmp(arg, "billion") && strcmp(arg, "none"))
            return s_fail(self,
                          "--scale wants auto, thousand, million, billion or none, not "
                          "\"%s\"",
                          arg);
        self->scale = arg;
        return 1;
    case KMX_QARG_PIVOT:
        self->pivot = arg;
        return 1;
    case KMX_QARG_GROWTH:
        if (strcmp(arg, "yoy") == 0)
            self->growth = KMX__V1__GROWTH__YOY;
        else if (strcmp(arg, "pop") == 0 || strcmp(arg, "period") == 0)
            self->growth = KMX__V1__GROWTH__PERIOD_OVER_PERIOD;
        else
            return s_fail(self, "--growth wants yoy or pop (period over period), not \"%s\"", arg);
        return 1;
    default:
        return 0;
    }
}

// The options only list takes. Returns 1 if handled, 0 if unknown, -1 if bad.
static int s_list_option(kmx_qargs_t *self, int code, const char *arg) {
    unsigned long long v = 0;
    if (code == KMX_QARG_PAGE_TOKEN) {
        self->page_token = arg;
        return 1;
    }
    if (code != KMX_QARG_LIMIT)
        return 0;
    if (kmx_qargs_parse_u64(arg, 1000000, &v) < 0 || v == 0)
        return s_fail(self, "--limit wants a count from 1 to 1000000, not \"%s\"", arg);
    self->limit = (unsigned)v;
    return 1;
}

static int s_top_option(kmx_qargs_t *self, const char *arg) {
    unsigned long long v = 0;
    if (kmx_qargs_parse_u64(arg, UINT32_MAX, &v) < 0)
        return s_fail(self, "--top wants a count, not \"%s\"", arg);
    self->top = (unsigned)v;
    return 1;
}

int kmx_qargs_set(kmx_qargs_t *self, int code, const char *arg) {
    bool query = self->cmd == KMX_QARGS_QUERY;
    switch (code) {
    case KMX_QARG_PERIOD:
        self->period = arg;
        return 1;
    case KMX_QARG_FROM:
        self->from = arg;
        return 1;
    case KMX_QARG_TO:
        self->to = arg;
        return 1;
    case KMX_QARG_GRANULARITY:
        self->granularity = arg;
        return 1;
    case KMX_QARG_KIND:
        if (kmx_kind_parse(arg, &self->kind) < 0)
            return s_fail(self, "--kind wants export or consumption, not \"%s\"", arg);
        self->has_kind = true;
        return 1;
    case KMX_QARG_BY:
        return query ? s_added(self, kmx_qargs_list_add(&self->by, arg)) : 0;
    case KMX_QARG_TOP:
        return query ? s_top_option(self, arg) : 0;
    default:
        if (code >= KMX_QARG_METRICS && code <= KMX_QARG_PIVOT)
            return query ? s_query_option(self, code, arg) : 0;
        if (code == KMX_QARG_LIMIT || code == KMX_QARG_PAGE_TOKEN)
            return self->cmd == KMX_QARGS_LIST ? s_list_option(self, code, arg) : 0;
        if (code < KMX_QARG_MARKET || code > KMX_QARG_SOURCE)
            return 0;
        // Free text (items, companies, artists, sources) holds commas of its own ("music
        // industry exports, preliminary estimate"): one flag is one value, and several
        // values come from repeating the flag. Code-like fields split at commas.
        if (code == KMX_QARG_ITEM || code == KMX_QARG_COMPANY || code == KMX_QARG_ARTIST ||
            code == KMX_QARG_SOURCE)
            return s_added(self, kmx_qargs_list_push(&self->lists[code - KMX_QARG_MARKET], arg));
        return s_added(self, kmx_qargs_list_add(&self->lists[code - KMX_QARG_MARKET], arg));
    }
}

// Replaces each item with its canonical form where fn knows one.
static int s_canonicalise(kmx_qargs_list_t *list, int (*fn)(const char *, char *, size_t)) {
    for (size_t i = 0; i < list->n; i++) {
        char buf[KMX_UNIT_MAX > KMX_MARKET_MAX ? KMX_UNIT_MAX : KMX_MARKET_MAX];
        if (fn(list->items[i], buf, sizeof(buf)) < 0)
            continue;
        char *copy = strdup(buf);
        if (!copy)
            return KMX_ERR_NOMEM;
        free(list->items[i]);
        list->items[i] = copy;
    }
    return 0;
}

static int s_unit_base(const char *text, char *out, size_t size) {
    int64_t mult = 1;
    return kmx_unit_normalize(text, out, size, &mult);
}

static int s_parse_period(kmx_qargs_t *self, const char *flag, const char *text,
                          kmx_period_t *out) {
    if (kmx_period_parse(text, out) == 0)
        return 0;
    return s_fail(self,
                  "--%s: invalid period \"%s\" (e.g. 2023, 2025-H1, 2024-Q3, 2024-03, "
                  "2023-01/2023-04)",
                  flag, text);
}

static int s_build_period(kmx_qargs_t *self) {
    if (!self->period && !self->from && !self->to)
        return 0;
    if (self->period && (self->from || self->to))
        return s_fail(self, "--period cannot be combined with --from/--to");
    kmx_period_t p = {KMX_YEAR_MIN * 100 + 1, KMX_YEAR_MAX * 100 + 12};
    kmx_period_t q;
    if (self->period && s_parse_period(self, "period", self->period, &p) < 0)
        return -1;
    if (self->from) {
        if (s_parse_period(self, "from", self->from, &q) < 0)
            return -1;
        p.start = q.start;
    }
    if (self->to) {
        if (s_parse_period(self, "to", self->to, &q) < 0)
            return -1;
        p.end = q.end;
    }
    if (p.end < p.start)
        return s_fail(self, "--to comes before --from");
    self->range.has_start = self->range.has_end = 1;
    self->range.start = p.start;
    self->range.end = p.end;
    self->filter.period = &self->range;
    return 0;
}

static int s_build_granularity(kmx_qargs_t *self) {
    kmx_gran_t g;
    const char *text = self->granularity;
    if (!text)
        return 0;
    if (strcmp(text, "any") != 0 && strcmp(text, "auto") != 0 && kmx_gran_parse(text, &g) < 0)
        return s_fail(self,
                      "--granularity wants auto, year, half, quarter, month, range or any, "
                      "not \"%s\"",
                      text);
    self->filter.granularity = (char *)text;
    return 0;
}

static int s_build_filter(kmx_qargs_t *self) {
    Kmx__V1__Filter *f = &self->filter;
    kmx__v1__filter__init(f);
    kmx__v1__period__init(&self->range);
    if (s_build_period(self) < 0)
        return -1;
    f->has_kind = self->has_kind;
    f->kind = self->kind;
    if (s_canonicalise(&self->lists[0], kmx_market_canonical) < 0 ||
        s_canonicalise(&self->lists[1], kmx_region_canonical) < 0 ||
        s_canonicalise(&self->lists[6], s_unit_base) < 0)
        return s_fail(self, "out of memory");
    kmx_qargs_list_t *l = self->lists;
    f->n_markets = l[0].n, f->markets = l[0].items;
    f->n_regions = l[1].n, f->regions = l[1].items;
    f->n_categories = l[2].n, f->categories = l[2].items;
    f->n_items = l[3].n, f->items = l[3].items;
    f->n_companies = l[4].n, f->companies = l[4].items;
    f->n_artists = l[5].n, f->artists = l[5].items;
    f->n_units = l[6].n, f->units = l[6].items;
    f->n_sources = l[7].n, f->sources = l[7].items;
    return s_build_granularity(self);
}

static const struct {
    const char *name;          // --by word
    Kmx__V1__GroupField field; // wire group field
} s_group_fields[] = {
    {"market", KMX__V1__GROUP_FIELD__BY_MARKET},
    {"region", KMX__V1__GROUP_FIELD__BY_REGION},
    {"period", KMX__V1__GROUP_FIELD__BY_PERIOD},
    {"year", KMX__V1__GROUP_FIELD__BY_YEAR},
    {"category", KMX__V1__GROUP_FIELD__BY_CATEGORY},
    {"dimension", KMX__V1__GROUP_FIELD__BY_CATEGORY},
    {"item", KMX__V1__GROUP_FIELD__BY_ITEM},
    {"series", KMX__V1__GROUP_FIELD__BY_ITEM},
    {"company", KMX__V1__GROUP_FIELD__BY_COMPANY},
    {"artist", KMX__V1__GROUP_FIELD__BY_ARTIST},
    {"source", KMX__V1__GROUP_FIELD__BY_SOURCE},
    {"unit", KMX__V1__GROUP_FIELD__BY_UNIT},
    {"level", KMX__V1__GROUP_FIELD__BY_LEVEL},
};
#define S_NGROUP_FIELDS (sizeof(s_group_fields) / sizeof(s_group_fields[0]))

static int s_group_parse(kmx_qargs_t *self) {
    if (self->by.n > KMX_QARGS_BY_MAX)
        return s_fail(self, "--by takes at most %d fields", KMX_QARGS_BY_MAX);
    for (size_t i = 0; i < self->by.n; i++) {
        size_t k = 0;
        while (k < S_NGROUP_FIELDS && strcmp(self->by.items[i], s_group_fields[k].name) != 0)
            k++;
        if (k == S_NGROUP_FIELDS)
            return s_fail(self,
                          "--by: unknown field \"%s\" (market, region, period, year, category, "
                          "dimension, item, company, artist, source, unit, level)",
                          self->by.items[i]);
        self->group[i] = s_group_fields[k].field;
    }
    return 0;
}

static int s_metrics_parse(kmx_qargs_t *self) {
    static const char *const names[] = {"sum", "count", "min", "max", "avg"};
    if (self->metrics.n > 5)
        return s_fail(self, "--metrics takes at most 5 names");
    for (size_t i = 0; i < self->metrics.n; i++) {
        size_t k = 0;
        while (k < 5 && strcmp(self->metrics.items[i], names[k]) != 0)
            k++;
        if (k == 5)
            return s_fail(self, "--metrics: unknown metric \"%s\" (sum, count, min, max, avg)",
                          self->metrics.items[i]);
        self->metric[i] = (Kmx__V1__Metric)(KMX__V1__METRIC__SUM + (int)k);
    }
    return 0;
}

// A series needs its period column: --time-series alone groups by period.
static int s_series_by(kmx_qargs_t *self) {
    if (!self->series)
        return 0;
    for (size_t i = 0; i < self->by.n; i++) {
        if (strcmp(self->by.items[i], "period") == 0 || strcmp(self->by.items[i], "year") == 0)
            return 0;
    }
    return kmx_qargs_list_push(&self->by, "period") < 0 ? s_fail(self, "out of memory") : 0;
}

int kmx_qargs_finish(kmx_qargs_t *self) {
    if (s_build_filter(self) < 0)
        return -1;
    if (self->cmd != KMX_QARGS_QUERY)
        return 0;
    if (!self->has_kind)
        return s_fail(self, "query needs a kind: exports or consumption");
    if (s_series_by(self) < 0 || s_group_parse(self) < 0 || s_metrics_parse(self) < 0)
        return -1;
    return 0;
}

void kmx_qargs_query_request(kmx_qargs_t *self, Kmx__V1__QueryRequest *q) {
    q->filter = &self->filter;
    q->n_group_by = self->by.n;
    q->group_by = self->group;
    q->has_top = self->top > 0;
    q->top = self->top;
    q->n_metrics = self->metrics.n;
    q->metrics = self->metric;
    q->has_other = self->other;
    q->other = self->other;
    q->has_share = self->share;
    q->share = self->share;
    q->has_growth = self->growth != KMX__V1__GROWTH__GROWTH_NONE;
    q->growth = self->growth;
    q->has_series = self->series;
    q->series = self->series;
    q->has_latest = self->latest;
    q->latest = self->latest;
    q->has_prefer = self->prefer;
    q->prefer = self->prefer;
    q->has_unallocated = self->unallocated;
    q->unallocated = self->unallocated;
    q->has_complete = self->complete;
    q->complete = self->complete;
}

int kmx_qargs_get_key(kmx_qargs_t *self, Kmx__V1__Record *key, Kmx__V1__Period *period) {
    if (!self->has_kind || !self->period)
        return s_fail(self, "get needs --kind and --period");
    for (size_t i = 0; i < 8; i++) {
        bool allowed = i == 0 || i == 2 || i == 3 || i == 4 || i == 5 || i == 7;
        if (self->lists[i].n > 1 || (!allowed && self->lists[i].n > 0))
            return s_fail(self, "get takes one value per key field and no --region or --unit");
    }
    if (self->from || self->to || self->granularity)
        return s_fail(self, "get takes --period, not --from/--to/--granularity");
    key->has_kind = 1;
    key->kind = self->kind;
    *period = self->range;
    key->period = period;
    kmx_qargs_list_t *l = self->lists;
    key->market = l[0].n ? l[0].items[0] : NULL;
    key->category = l[2].n ? l[2].items[0] : NULL;
    key->item = l[3].n ? l[3].items[0] : NULL;
    key->company = l[4].n ? l[4].items[0] : NULL;
    key->artist = l[5].n ? l[5].items[0] : NULL;
    key->source = l[7].n ? l[7].items[0] : NULL;
    return 0;
}

int kmx_qargs_page_token(kmx_qargs_t *self, const char *hex, Kmx__V1__ScanRequest *scan) {
    size_t n = strlen(hex);
    if (n == 0)
        return 0;
    if (n % 2 != 0 || n > 4096 || strspn(hex, "0123456789abcdef") != n)
        return s_fail(self, "--page-token: not a token kmx list printed");
    scan->page_token.data = malloc(n / 2);
    if (!scan->page_token.data)
        return s_fail(self, "out of memory");
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v = 0;
        sscanf(hex + 2 * i, "%2x", &v);
        scan->page_token.data[i] = (uint8_t)v;
    }
    scan->page_token.len = n / 2;
    scan->has_page_token = 1;
    return 0;
}

int kmx_qargs_token_hex(const uint8_t *data, size_t len, char *out, size_t size) {
    if (size < 2 * len + 1)
        return -1;
    for (size_t i = 0; i < len; i++)
        snprintf(out + 2 * i, 3, "%02x", data[i]);
    out[2 * len] = '\0';
    return 0;
}

// ---- columns --------------------------------------------------------------------------

static void s_col(kmx_qcols_t *c, const char *name, kmx_qcol_kind_t kind, size_t key) {
    c->names[c->n] = name;
    c->kind[c->n] = kind;
    c->key[c->n++] = key;
}

static bool s_has_metric(const Kmx__V1__Metric *m, size_t n, Kmx__V1__Metric want) {
    for (size_t i = 0; i < n; i++) {
        if (m[i] == want)
            return true;
    }
    return false;
}

// The name of a key the server added beyond --by (QueryResult.group_by): the category,
// which consumption records call their dimension, when the filter did not pin one.
static const char *s_added_key_name(const kmx_qargs_t *self, Kmx__V1__GroupField field) {
    if (field == KMX__V1__GROUP_FIELD__BY_CATEGORY)
        return self->kind == KMX__V1__KIND__CONSUMPTION ? "dimension" : "category";
    for (size_t k = 0; k < S_NGROUP_FIELDS; k++) {
        if (s_group_fields[k].field == field)
            return s_group_fields[k].name;
    }
    return "key";
}

// The metric columns; the default sum column is left out when no row can carry one (every
// unit of the answer does not add up: those rows show their average).
static void s_metric_columns(const kmx_qargs_t *self, kmx_qcols_t *c, bool sums) {
    static const struct {
        Kmx__V1__Metric metric; // --metrics word's wire value
        const char *name;       // its column
        kmx_qcol_kind_t kind;   // what it shows
    } metrics[] = {{KMX__V1__METRIC__SUM, "sum", KMX_QCOL_SUM},
                   {KMX__V1__METRIC__COUNT, "count", KMX_QCOL_COUNT},
                   {KMX__V1__METRIC__MIN, "min", KMX_QCOL_MIN},
                   {KMX__V1__METRIC__MAX, "max", KMX_QCOL_MAX},
                   {KMX__V1__METRIC__AVG, "avg", KMX_QCOL_AVG}};
    size_t nm = self->metrics.n;
    for (size_t i = 0; i < 5; i++) {
        bool dflt = nm == 0 && i < 2 && (sums || i == 1);
        if (dflt || s_has_metric(self->metric, nm, metrics[i].metric))
            s_col(c, metrics[i].name, metrics[i].kind, 0);
    }
}

// What the rows of an answer carry beyond their metrics.
typedef struct {
    bool level;  // some row has a market level (grouped by market or region)
    bool months; // some row covers only part of its bucket (its months then show)
    bool no_sum; // some row is of a unit that does not add (it carries avg, not sum)
    bool sum;    // some row carries a sum
} s_carries_t;

static s_carries_t s_carries(const Kmx__V1__QueryResult *res) {
    s_carries_t k = {false, false, false, false};
    for (size_t r = 0; r < res->n_rows; r++) {
        const Kmx__V1__Row *row = res->rows[r];
        k.level |= row->level != NULL || row->total;
        k.months |= row->partial;
        k.no_sum |= row->has_adds && !row->adds;
        k.sum |= row->sum != NULL;
    }
    return k;
}

void kmx_qargs_columns(const kmx_qargs_t *self, const Kmx__V1__QueryResult *res, kmx_qcols_t *c) {
    c->n = 0;
    s_carries_t k = s_carries(res);
    for (size_t i = 0; i < self->by.n; i++) {
        if (strcmp(self->by.items[i], "unit") != 0)
            s_col(c, self->by.items[i], KMX_QCOL_KEY, i);
    }
    for (size_t i = self->by.n; i < res->n_group_by && c->n < KMX_QARGS_BY_MAX; i++) {
        if (res->group_by[i] != KMX__V1__GROUP_FIELD__BY_UNIT)
            s_col(c, s_added_key_name(self, res->group_by[i]), KMX_QCOL_KEY, i);
    }
    bool level_key = false; // split by level: the key column says it (world is the total)
    for (size_t i = 0; i < res->n_group_by; i++)
        level_key |= res->group_by[i] == KMX__V1__GROUP_FIELD__BY_LEVEL;
    if (k.level && !level_key)
        s_col(c, "level", KMX_QCOL_LEVEL, 0);
    s_col(c, "unit", KMX_QCOL_UNIT, 0);
    if (self->latest)
        s_col(c, "period", KMX_QCOL_PERIOD, 0);
    s_metric_columns(self, c, k.sum || !k.no_sum);
    if (k.no_sum && !s_has_metric(self->metric, self->metrics.n, KMX__V1__METRIC__AVG))
        s_col(c, "avg", KMX_QCOL_AVG, 0); // what a unit that does not add shows instead
    if (self->share) {
        s_col(c, "share_pct", KMX_QCOL_SHARE, 0);
        s_col(c, "share_base", KMX_QCOL_SHARE_BASE, 0);
        s_col(c, "share_of", KMX_QCOL_SHARE_OF, 0);
    }
    if (k.months) {
        s_col(c, "months", KMX_QCOL_MONTHS, 0);
        s_col(c, "of_months", KMX_QCOL_OF_MONTHS, 0);
        s_col(c, "partial", KMX_QCOL_PARTIAL, 0);
    }
    if (self->growth) {
        s_col(c, "previous", KMX_QCOL_PREV, 0);
        s_col(c, "growth_pct", KMX_QCOL_GROWTH, 0);
    }
}

const char *kmx_qargs_cell(const kmx_qcols_t *c, size_t i, const Kmx__V1__Row *row, char *buf,
                           size_t size) {
    switch (c->kind[i]) {
    case KMX_QCOL_KEY:
        return c->key[i] < row->n_keys ? row->keys[c->key[i]] : NULL;
    case KMX_QCOL_UNIT:
        return row->unit;
    case KMX_QCOL_PERIOD:
        return row->period;
    case KMX_QCOL_SUM:
        return row->sum;
    case KMX_QCOL_COUNT:
        snprintf(buf, size, "%" PRIu64, row->count);
        return buf;
    case KMX_QCOL_MIN:
    case KMX_QCOL_MAX:
        if (!(c->kind[i] == KMX_QCOL_MIN ? row->has_min : row->has_max))
            return NULL;
        if (kmx_decimal_format(c->kind[i] == KMX_QCOL_MIN ? row->min : row->max, buf, size) < 0)
            return NULL;
        return buf;
    case KMX_QCOL_AVG:
        return row->avg;
    case KMX_QCOL_SHARE:
        return row->share;
    case KMX_QCOL_PREV:
        return row->previous;
    case KMX_QCOL_LEVEL:
        return row->other         ? "other"
               : row->unallocated ? "unallocated"
               : row->total       ? "total"
                                  : row->level;
    case KMX_QCOL_SHARE_BASE:
        return row->share_base;
    case KMX_QCOL_SHARE_OF:
        return row->share_of;
    case KMX_QCOL_MONTHS:
    case KMX_QCOL_OF_MONTHS:
        if (!row->has_months_in_bucket || row->months_in_bucket == 0)
            return NULL;
        snprintf(buf, size, "%u",
                 c->kind[i] == KMX_QCOL_MONTHS ? row->months : row->months_in_bucket);
        return buf;
    case KMX_QCOL_PARTIAL:
        return row->partial ? "partial" : NULL;
    default:
        return row->growth;
    }
}

// The JSON value of a meaning column: the level's text ("total", "unallocated", "other" or
// the market level), numbers for months, a boolean for partial, the share's base when
// there is one, strings (or null) otherwise. Returns 0 or -1.
static int s_meaning_json(json_t *obj, const kmx_qcols_t *c, size_t i, const Kmx__V1__Row *row) {
    char buf[48];
    const char *cell = kmx_qargs_cell(c, i, row, buf, sizeof buf);
    json_t *v = NULL;
    switch (c->kind[i]) {
    case KMX_QCOL_MONTHS:
    case KMX_QCOL_OF_MONTHS:
        v = cell ? json_integer(strtoll(cell, NULL, 10)) : json_null();
        break;
    case KMX_QCOL_PARTIAL:
        v = json_boolean(row->partial);
        break;
    case KMX_QCOL_SHARE_BASE:
    case KMX_QCOL_SHARE_OF:
        if (!cell)
            return 0; // no share: the row keeps share_pct null and says no base
        v = kmx_json_string(cell);
        break;
    default:
        v = kmx_json_string(cell);
    }
    return json_object_set_new(obj, c->names[i], v);
}

static json_t *s_row_json(const kmx_qcols_t *c, const Kmx__V1__Row *row) {
    json_t *obj = json_object();
    for (size_t i = 0; obj && i < c->n; i++) {
        if (c->kind[i] >= KMX_QCOL_LEVEL) {
            if (s_meaning_json(obj, c, i, row) < 0) {
                json_decref(obj);
                return NULL;
            }
            continue;
        }
        char buf[48];
        const char *cell = kmx_qargs_cell(c, i, row, buf, sizeof buf);
        json_t *v = c->kind[i] == KMX_QCOL_COUNT ? json_integer((json_int_t)row->count)
                                                 : kmx_json_string(cell);
        if (json_object_set_new(obj, c->names[i], v) < 0) {
            json_decref(obj);
            return NULL;
        }
    }
    if (obj && row->other && json_object_set_new(obj, "other", json_true()) < 0) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

json_t *kmx_qargs_json(const kmx_qcols_t *c, const Kmx__V1__QueryResult *res) {
    json_t *rows = json_array();
    for (size_t r = 0; rows && r < res->n_rows; r++) {
        if (json_array_append_new(rows, s_row_json(c, res->rows[r])) < 0) {
            json_decref(rows);
            return NULL;
        }
    }
    json_t *doc = rows ? json_object() : NULL;
    int rc = doc ? json_object_set_new(doc, "rows", rows) : -1;
    if (rc == 0)
        rc = json_object_set_new(doc, "matched", json_integer((json_int_t)res->matched));
    if (rc == 0 && res->granularity)
        rc = json_object_set_new(doc, "granularity", kmx_json_string(res->granularity));
    if (rc == 0 && res->has_dropped)
        rc = json_object_set_new(doc, "dropped", json_integer((json_int_t)res->dropped));
    json_t *aside = rc == 0 && res->n_set_aside ? json_array() : NULL;
    for (size_t i = 0; aside && i < res->n_set_aside && rc == 0; i++)
        rc = json_array_append_new(aside, kmx_json_string(res->set_aside[i]));
    if (rc == 0 && aside)
        rc = json_object_set_new(doc, "set_aside", aside);
    if (rc == 0 && res->share_base)
        rc = json_object_set_new(doc, "share_base", kmx_json_string(res->share_base));
    json_t *notes = rc == 0 && res->n_notes ? json_array() : NULL;
    for (size_t i = 0; notes && i < res->n_notes && rc == 0; i++)
        rc = json_array_append_new(notes, kmx_json_string(res->notes[i]));
    if (rc == 0 && notes)
        rc = json_object_set_new(doc, "notes", notes);
    if (rc < 0) {
        json_decref(doc ? doc : rows);
        return NULL;
    }
    return doc;
}
