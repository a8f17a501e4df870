/*  kmx get, query and list: the commands that read. Query and list share the filter
    options; markets, regions and units are put in canonical form before they are sent so
    "japan" and "USD_million" filter the same as "JP" and "USD".  */
#include "kmx_cli.h"

#include "kmx_err.h"
#include "kmx_market.h"
#include "kmx_period.h"
#include "kmx_record.h"
#include "kmx_value.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_SCAN_PAGE 500
#define S_BY_MAX 10

// Option values beyond the common ones.
enum {
    O_PERIOD = KMX_OPT_FIRST_COMMAND,
    O_FROM,
    O_TO,
    O_MARKET,
    O_REGION,
    O_CATEGORY,
    O_ITEM,
    O_COMPANY,
    O_ARTIST,
    O_UNIT,
    O_SOURCE,
    O_GRANULARITY,
    O_BY,
    O_TOP,
    O_KIND,
    O_METRICS,
    O_OTHER,
    O_SHARE,
    O_GROWTH,
    O_SERIES,
    O_LATEST,
    O_LIMIT,
    O_PAGE_TOKEN,
};

static const struct option s_filter_options[] = {
    KMX_CLI_COMMON_OPTIONS,
    {"period", required_argument, NULL, O_PERIOD},
    {"from", required_argument, NULL, O_FROM},
    {"to", required_argument, NULL, O_TO},
    {"market", required_argument, NULL, O_MARKET},
    {"markets", required_argument, NULL, O_MARKET},
    {"region", required_argument, NULL, O_REGION},
    {"category", required_argument, NULL, O_CATEGORY},
    {"dimension", required_argument, NULL, O_CATEGORY},
    {"item", required_argument, NULL, O_ITEM},
    {"series", required_argument, NULL, O_ITEM},
    {"company", required_argument, NULL, O_COMPANY},
    {"artist", required_argument, NULL, O_ARTIST},
    {"unit", required_argument, NULL, O_UNIT},
    {"source", required_argument, NULL, O_SOURCE},
    {"granularity", required_argument, NULL, O_GRANULARITY},
    {"by", required_argument, NULL, O_BY},
    {"top", required_argument, NULL, O_TOP},
    {"kind", required_argument, NULL, O_KIND},
    {"metrics", required_argument, NULL, O_METRICS},
    {"metric", required_argument, NULL, O_METRICS},
    {"other", no_argument, NULL, O_OTHER},
    {"share", no_argument, NULL, O_SHARE},
    {"growth", required_argument, NULL, O_GROWTH},
    {"time-series", no_argument, NULL, O_SERIES},
    {"latest", no_argument, NULL, O_LATEST},
    {"limit", required_argument, NULL, O_LIMIT},
    {"page-token", required_argument, NULL, O_PAGE_TOKEN},
    {NULL, 0, NULL, 0}};

typedef struct {
    bool has_kind;            // a kind was named
    Kmx__V1__Kind kind;       // the kind
    const char *period;       // --period
    const char *from;         // --from
    const char *to;           // --to
    kmx_cli_list_t lists[8];  // markets, regions, categories, items, companies, artists,
                              // units, sources (in O_MARKET..O_SOURCE order)
    const char *granularity;  // --granularity
    kmx_cli_list_t by;        // --by fields as written
    unsigned top;             // --top
    kmx_cli_list_t metrics;   // --metrics as written
    bool other;               // --other
    bool share;               // --share
    Kmx__V1__Growth growth;   // --growth
    bool series;              // --series
    bool latest;              // --latest
    unsigned limit;           // list --limit: one page of this many records
    const char *page_token;   // list --page-token (hex)
    bool query;               // --by, --top and the analysis options are allowed
    Kmx__V1__Filter filter;   // the filter built from the above
    Kmx__V1__Period range;    // the filter's period
} s_args_t;

static void s_args_free(s_args_t *a)
{
    for (size_t i = 0; i < 8; i++)
        kmx_cli_list_free(&a->lists[i]);
    kmx_cli_list_free(&a->by);
    kmx_cli_list_free(&a->metrics);
}

// Handles the options only query takes. Returns 1 if handled, 0 if unknown, -1 if bad.
static int s_query_option(s_args_t *a, int opt, const char *arg)
{
    switch (opt) {
    case O_METRICS:
        return kmx_cli_list_add(&a->metrics, arg) < 0 ? -1 : 1;
    case O_OTHER:
        a->other = true;
        return 1;
    case O_SHARE:
        a->share = true;
        return 1;
    case O_SERIES:
        a->series = true;
        return 1;
    case O_LATEST:
        a->latest = true;
        return 1;
    case O_GROWTH:
        if (strcmp(arg, "yoy") == 0)
            a->growth = KMX__V1__GROWTH__YOY;
        else if (strcmp(arg, "pop") == 0 || strcmp(arg, "period") == 0)
            a->growth = KMX__V1__GROWTH__PERIOD_OVER_PERIOD;
        else {
            kmx_cli_error("--growth wants yoy or pop (period over period), not \"%s\"", arg);
            return -1;
        }
        return 1;
    default:
        return 0;
    }
}

// Handles the options only list takes. Returns 1 if handled, 0 if unknown, -1 if bad.
static int s_list_option(s_args_t *a, int opt, const char *arg)
{
    unsigned long long v = 0;
    if (opt == O_PAGE_TOKEN) {
        a->page_token = arg;
        return 1;
    }
    if (opt != O_LIMIT)
        return 0;
    if (kmx_cli_parse_u64(arg, 1000000, &v) < 0 || v == 0) {
        kmx_cli_error("--limit wants a count from 1 to 1000000, not \"%s\"", arg);
        return -1;
    }
    a->limit = (unsigned)v;
    return 1;
}

// Handles one filter option. Returns 1 if handled, 0 if unknown, -1 on a bad value.
static int s_filter_option(s_args_t *a, int opt, const char *arg)
{
    unsigned long long v = 0;
    switch (opt) {
    case O_PERIOD:
        a->period = arg;
        return 1;
    case O_FROM:
        a->from = arg;
        return 1;
    case O_TO:
        a->to = arg;
        return 1;
    case O_GRANULARITY:
        a->granularity = arg;
        return 1;
    case O_KIND:
        if (kmx_kind_parse(arg, &a->kind) < 0) {
            kmx_cli_error("--kind wants export or consumption, not \"%s\"", arg);
            return -1;
        }
        a->has_kind = true;
        return 1;
    case O_BY:
        return a->query ? (kmx_cli_list_add(&a->by, arg) < 0 ? -1 : 1) : 0;
    case O_TOP:
        if (!a->query)
            return 0;
        if (kmx_cli_parse_u64(arg, UINT32_MAX, &v) < 0) {
            kmx_cli_error("--top wants a count, not \"%s\"", arg);
            return -1;
        }
        a->top = (unsigned)v;
        return 1;
    default:
        if (opt >= O_METRICS && opt <= O_LATEST)
            return a->query ? s_query_option(a, opt, arg) : 0;
        if (opt == O_LIMIT || opt == O_PAGE_TOKEN)
            return a->query ? 0 : s_list_option(a, opt, arg);
        if (opt < O_MARKET || opt > O_SOURCE)
            return 0;
        return kmx_cli_list_add(&a->lists[opt - O_MARKET], arg) < 0 ? -1 : 1;
    }
}

// Replaces each item with its canonical form where fn knows one.
static int s_canonicalise(kmx_cli_list_t *list, int (*fn)(const char *, char *, size_t))
{
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

static int s_unit_base(const char *text, char *out, size_t size)
{
    int64_t mult = 1;
    return kmx_unit_normalize(text, out, size, &mult);
}

static int s_parse_period(const char *flag, const char *text, kmx_period_t *out)
{
    if (kmx_period_parse(text, out) == 0)
        return 0;
    kmx_cli_error("--%s: invalid period \"%s\" (e.g. 2023, 2025-H1, 2024-Q3, 2024-03, "
                  "2023-01/2023-04)",
                  flag, text);
    return KMX_ERR_INVAL;
}

static int s_build_period(s_args_t *a)
{
    if (!a->period && !a->from && !a->to)
        return 0;
    if (a->period && (a->from || a->to)) {
        kmx_cli_error("--period cannot be combined with --from/--to");
        return KMX_ERR_INVAL;
    }
    kmx_period_t p = {KMX_YEAR_MIN * 100 + 1, KMX_YEAR_MAX * 100 + 12};
    kmx_period_t q;
    if (a->period && s_parse_period("period", a->period, &p) < 0)
        return KMX_ERR_INVAL;
    if (a->from) {
        if (s_parse_period("from", a->from, &q) < 0)
            return KMX_ERR_INVAL;
        p.start = q.start;
    }
    if (a->to) {
        if (s_parse_period("to", a->to, &q) < 0)
            return KMX_ERR_INVAL;
        p.end = q.end;
    }
    if (p.end < p.start) {
        kmx_cli_error("--to comes before --from");
        return KMX_ERR_INVAL;
    }
    a->range.has_start = a->range.has_end = 1;
    a->range.start = p.start;
    a->range.end = p.end;
    a->filter.period = &a->range;
    return 0;
}

// Builds a->filter from the parsed options. Returns 0 or KMX_ERR_INVAL (reported).
static int s_build_filter(s_args_t *a)
{
    kmx__v1__filter__init(&a->filter);
    kmx__v1__period__init(&a->range);
    if (s_build_period(a) < 0)
        return KMX_ERR_INVAL;
    a->filter.has_kind = a->has_kind;
    a->filter.kind = a->kind;
    if (s_canonicalise(&a->lists[0], kmx_market_canonical) < 0 ||
        s_canonicalise(&a->lists[1], kmx_region_canonical) < 0 ||
        s_canonicalise(&a->lists[6], s_unit_base) < 0) {
        kmx_cli_error("out of memory");
        return KMX_ERR_NOMEM;
    }
    a->filter.n_markets = a->lists[0].n, a->filter.markets = a->lists[0].items;
    a->filter.n_regions = a->lists[1].n, a->filter.regions = a->lists[1].items;
    a->filter.n_categories = a->lists[2].n, a->filter.categories = a->lists[2].items;
    a->filter.n_items = a->lists[3].n, a->filter.items = a->lists[3].items;
    a->filter.n_companies = a->lists[4].n, a->filter.companies = a->lists[4].items;
    a->filter.n_artists = a->lists[5].n, a->filter.artists = a->lists[5].items;
    a->filter.n_units = a->lists[6].n, a->filter.units = a->lists[6].items;
    a->filter.n_sources = a->lists[7].n, a->filter.sources = a->lists[7].items;
    if (a->granularity) {
        kmx_gran_t g;
        if (strcmp(a->granularity, "any") != 0 && strcmp(a->granularity, "auto") != 0 &&
            kmx_gran_parse(a->granularity, &g) < 0) {
            kmx_cli_error("--granularity wants auto, year, half, quarter, month, range or any, "
                          "not \"%s\"",
                          a->granularity);
            return KMX_ERR_INVAL;
        }
        a->filter.granularity = (char *)a->granularity;
    }
    return 0;
}

// Parses a command's options and its optional kind word. Returns -1 to continue, else
// an exit code.
static int s_parse_args(kmx_cli_opts_t *opts, s_args_t *a, int argc, char **argv,
                        const char *usage, bool kind_required)
{
    int opt;
    while ((opt = kmx_cli_getopt(argc, argv, "h", s_filter_options)) != -1) {
        int rc = kmx_cli_common_option(opts, opt, optarg);
        if (rc == 0)
            rc = s_filter_option(a, opt, optarg);
        if (rc < 0)
            return KMX_EXIT_INPUT;
        if (rc == 0) {
            if (opt != '?')
                kmx_cli_error("%s does not take that option", argv[0]);
            fputs(usage, stderr);
            return KMX_EXIT_INPUT;
        }
    }
    if (opts->help) {
        fputs(usage, stdout);
        return KMX_EXIT_OK;
    }
    if (optind < argc) {
        if (kmx_kind_parse(argv[optind], &a->kind) < 0) {
            kmx_cli_error("expected exports or consumption, not \"%s\"", argv[optind]);
            return KMX_EXIT_INPUT;
        }
        a->has_kind = true;
        optind++;
    }
    if (optind < argc || (kind_required && !a->has_kind)) {
        fputs(usage, stderr);
        return KMX_EXIT_INPUT;
    }
    return s_build_filter(a) < 0 ? KMX_EXIT_INPUT : -1;
}

// ---- query --------------------------------------------------------------------------

static const char s_query_usage[] =
    "usage: kmx query exports|consumption [--period P | --from P --to P] [--market M ...]\n"
    "                 [--region R] [--category C] [--dimension D] [--item I] [--company X]\n"
    "                 [--artist X] [--unit U] [--source S] [--granularity G]\n"
    "                 [--by FIELD[,FIELD]] [--metrics sum,count,min,max,avg]\n"
    "                 [--top N [--other]] [--share] [--growth yoy|pop] [--time-series]\n"
    "                 [--latest] [--format table|json|csv]\n"
    "Sums matching values per group and unit, and per category unless --category names\n"
    "one (different statistics never add up). FIELD: market, region, period, year,\n"
    "category, dimension, item, company, artist, source, unit. G: auto (default: a span\n"
    "covered by a coarser one of the same group is left out), year, half, quarter, month,\n"
    "range, any (add everything). Lists may repeat the flag or separate values with commas.\n";

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
};

static int s_group_parse(const kmx_cli_list_t *by, Kmx__V1__GroupField *out)
{
    if (by->n > S_BY_MAX) {
        kmx_cli_error("--by takes at most %d fields", S_BY_MAX);
        return KMX_ERR_INVAL;
    }
    for (size_t i = 0; i < by->n; i++) {
        size_t k = 0;
        size_t nfields = sizeof(s_group_fields) / sizeof(s_group_fields[0]);
        while (k < nfields && strcmp(by->items[i], s_group_fields[k].name) != 0)
            k++;
        if (k == nfields) {
            kmx_cli_error("--by: unknown field \"%s\" (market, region, period, year, category, "
                          "dimension, item, company, artist, source, unit)",
                          by->items[i]);
            return KMX_ERR_INVAL;
        }
        out[i] = s_group_fields[k].field;
    }
    return 0;
}

// What one output column shows.
typedef enum {
    C_KEY, C_UNIT, C_PERIOD, C_SUM, C_COUNT, C_MIN, C_MAX, C_AVG, C_SHARE, C_PREV, C_GROWTH
} s_col_kind_t;

#define S_COLS_MAX (S_BY_MAX + 11)

typedef struct {
    const char *names[S_COLS_MAX]; // header of each column
    s_col_kind_t kind[S_COLS_MAX]; // what it shows
    size_t key[S_COLS_MAX];        // for C_KEY: index into the row's keys
    size_t n;                      // columns in use
} s_cols_t;

static void s_col(s_cols_t *c, const char *name, s_col_kind_t kind, size_t key)
{
    c->names[c->n] = name;
    c->kind[c->n] = kind;
    c->key[c->n++] = key;
}

static bool s_has_metric(const Kmx__V1__Metric *m, size_t n, Kmx__V1__Metric want)
{
    for (size_t i = 0; i < n; i++) {
        if (m[i] == want)
            return true;
    }
    return false;
}

// The name of a key the server added beyond --by (QueryResult.group_by): the category,
// which consumption records call their dimension, when the filter did not pin one.
static const char *s_added_key_name(const s_args_t *a, Kmx__V1__GroupField field)
{
    if (field == KMX__V1__GROUP_FIELD__BY_CATEGORY)
        return a->kind == KMX__V1__KIND__CONSUMPTION ? "dimension" : "category";
    for (size_t k = 0; k < sizeof(s_group_fields) / sizeof(s_group_fields[0]); k++) {
        if (s_group_fields[k].field == field)
            return s_group_fields[k].name;
    }
    return "key";
}

// The columns: the --by keys, then the keys the server added (unit has its own column),
// unit, the latest period, the metrics asked for (sum and count by default), share,
// previous and growth.
static void s_columns(const s_args_t *a, const Kmx__V1__Metric *m, size_t nm,
                      const Kmx__V1__QueryResult *res, s_cols_t *c)
{
    c->n = 0;
    for (size_t i = 0; i < a->by.n; i++) {
        if (strcmp(a->by.items[i], "unit") != 0)
            s_col(c, a->by.items[i], C_KEY, i);
    }
    for (size_t i = a->by.n; i < res->n_group_by && c->n < S_BY_MAX; i++) {
        if (res->group_by[i] != KMX__V1__GROUP_FIELD__BY_UNIT)
            s_col(c, s_added_key_name(a, res->group_by[i]), C_KEY, i);
    }
    s_col(c, "unit", C_UNIT, 0);
    if (a->latest)
        s_col(c, "period", C_PERIOD, 0);
    static const struct {
        Kmx__V1__Metric metric; // --metrics word's wire value
        const char *name;       // its column
        s_col_kind_t kind;      // what it shows
    } metrics[] = {{KMX__V1__METRIC__SUM, "sum", C_SUM},
                   {KMX__V1__METRIC__COUNT, "count", C_COUNT},
                   {KMX__V1__METRIC__MIN, "min", C_MIN},
                   {KMX__V1__METRIC__MAX, "max", C_MAX},
                   {KMX__V1__METRIC__AVG, "avg", C_AVG}};
    for (size_t i = 0; i < 5; i++) {
        bool dflt = nm == 0 && i < 2;
        if (dflt || s_has_metric(m, nm, metrics[i].metric))
            s_col(c, metrics[i].name, metrics[i].kind, 0);
    }
    if (a->share)
        s_col(c, "share_pct", C_SHARE, 0);
    if (a->growth) {
        s_col(c, "previous", C_PREV, 0);
        s_col(c, "growth_pct", C_GROWTH, 0);
    }
}

static int s_metrics_parse(const kmx_cli_list_t *list, Kmx__V1__Metric *out)
{
    static const char *const names[] = {"sum", "count", "min", "max", "avg"};
    if (list->n > 5) {
        kmx_cli_error("--metrics takes at most 5 names");
        return KMX_ERR_INVAL;
    }
    for (size_t i = 0; i < list->n; i++) {
        size_t k = 0;
        while (k < 5 && strcmp(list->items[i], names[k]) != 0)
            k++;
        if (k == 5) {
            kmx_cli_error("--metrics: unknown metric \"%s\" (sum, count, min, max, avg)",
                          list->items[i]);
            return KMX_ERR_INVAL;
        }
        out[i] = (Kmx__V1__Metric)(KMX__V1__METRIC__SUM + (int)k);
    }
    return 0;
}

// Returns the text of one cell (NULL when absent); count and amounts go through buf.
static const char *s_cell(const s_cols_t *c, size_t i, const Kmx__V1__Row *row, char *buf,
                          size_t size)
{
    switch (c->kind[i]) {
    case C_KEY:
        return c->key[i] < row->n_keys ? row->keys[c->key[i]] : NULL;
    case C_UNIT:
        return row->unit;
    case C_PERIOD:
        return row->period;
    case C_SUM:
        return row->sum;
    case C_COUNT:
        snprintf(buf, size, "%" PRIu64, row->count);
        return buf;
    case C_MIN:
    case C_MAX:
        if (!(c->kind[i] == C_MIN ? row->has_min : row->has_max))
            return NULL;
        if (kmx_decimal_format(c->kind[i] == C_MIN ? row->min : row->max, buf, size) < 0)
            return NULL;
        return buf;
    case C_AVG:
        return row->avg;
    case C_SHARE:
        return row->share;
    case C_PREV:
        return row->previous;
    default:
        return row->growth;
    }
}

static void s_print_rows_json(const s_cols_t *c, const Kmx__V1__QueryResult *res)
{
    fputs("{\"rows\":[", stdout);
    for (size_t r = 0; r < res->n_rows; r++) {
        fputs(r ? ",{" : "{", stdout);
        for (size_t i = 0; i < c->n; i++) {
            char buf[48];
            const char *cell = s_cell(c, i, res->rows[r], buf, sizeof buf);
            printf("%s\"%s\":", i ? "," : "", c->names[i]);
            if (c->kind[i] == C_COUNT)
                fputs(cell, stdout);
            else
                kmx_format_json_string(stdout, cell);
        }
        if (res->rows[r]->other)
            fputs(",\"other\":true", stdout);
        fputc('}', stdout);
    }
    printf("],\"matched\":%" PRIu64, res->matched);
    if (res->granularity) {
        fputs(",\"granularity\":", stdout);
        kmx_format_json_string(stdout, res->granularity);
    }
    if (res->has_dropped)
        printf(",\"dropped\":%" PRIu64, res->dropped);
    fputs("}\n", stdout);
}

static int s_print_rows_text(const kmx_cli_opts_t *opts, const s_cols_t *c,
                             const Kmx__V1__QueryResult *res)
{
    kmx_format_table_t *table = kmx_format_table_new(c->names, c->n);
    if (!table)
        return KMX_ERR_NOMEM;
    for (size_t i = 0; i < c->n; i++) {
        if (c->kind[i] >= C_SUM)
            kmx_format_table_align_right(table, i);
    }
    if (opts->format == KMX_FORMAT_CSV)
        kmx_format_csv_row(stdout, c->names, c->n);
    for (size_t r = 0; r < res->n_rows; r++) {
        const char *cells[S_COLS_MAX];
        char bufs[S_COLS_MAX][48];
        for (size_t i = 0; i < c->n; i++)
            cells[i] = s_cell(c, i, res->rows[r], bufs[i], sizeof bufs[i]);
        if (opts->format == KMX_FORMAT_CSV)
            kmx_format_csv_row(stdout, cells, c->n);
        else if (kmx_format_table_add(table, cells) < 0) {
            kmx_format_table_destroy(&table);
            return KMX_ERR_NOMEM;
        }
    }
    if (opts->format == KMX_FORMAT_TABLE) {
        kmx_format_table_print(table, stdout);
        printf("(%zu rows, %" PRIu64 " records", res->n_rows, res->matched);
        if (res->has_dropped && res->dropped > 0)
            printf("; %" PRIu64 " left out as covered by a coarser period", res->dropped);
        printf(")\n");
    }
    kmx_format_table_destroy(&table);
    return 0;
}

// A series needs its period column: --time-series alone groups by period.
static int s_query_prepare(s_args_t *a)
{
    if (!a->series)
        return 0;
    for (size_t i = 0; i < a->by.n; i++) {
        if (strcmp(a->by.items[i], "period") == 0 || strcmp(a->by.items[i], "year") == 0)
            return 0;
    }
    return kmx_cli_list_push(&a->by, "period");
}

static void s_query_request(const s_args_t *a, Kmx__V1__GroupField *group, Kmx__V1__Metric *m,
                            Kmx__V1__QueryRequest *q)
{
    q->filter = (Kmx__V1__Filter *)&a->filter;
    q->n_group_by = a->by.n;
    q->group_by = group;
    q->has_top = a->top > 0;
    q->top = a->top;
    q->n_metrics = a->metrics.n;
    q->metrics = m;
    q->has_other = a->other;
    q->other = a->other;
    q->has_share = a->share;
    q->share = a->share;
    q->has_growth = a->growth != KMX__V1__GROWTH__GROWTH_NONE;
    q->growth = a->growth;
    q->has_series = a->series;
    q->series = a->series;
    q->has_latest = a->latest;
    q->latest = a->latest;
}

int kmx_cli_query(kmx_cli_opts_t *opts, int argc, char **argv)
{
    s_args_t a;
    memset(&a, 0, sizeof(a));
    a.query = true;
    Kmx__V1__GroupField group[S_BY_MAX];
    Kmx__V1__Metric metrics[5];
    int rc = s_parse_args(opts, &a, argc, argv, s_query_usage, true);
    if (rc < 0 && s_query_prepare(&a) < 0)
        rc = KMX_EXIT_SERVER;
    if (rc < 0 && (s_group_parse(&a.by, group) < 0 || s_metrics_parse(&a.metrics, metrics) < 0))
        rc = KMX_EXIT_INPUT;
    kmx_client_t *client = rc < 0 ? kmx_cli_connect(opts) : NULL;
    if (rc < 0 && !client)
        rc = KMX_EXIT_SERVER;
    if (rc < 0) {
        Kmx__V1__QueryRequest q = KMX__V1__QUERY_REQUEST__INIT;
        s_query_request(&a, group, metrics, &q);
        s_cols_t cols;
        Kmx__V1__Response *resp = NULL;
        rc = kmx_client_query(client, &q, &resp);
        if (rc >= 0)
            s_columns(&a, metrics, a.metrics.n, resp->query, &cols);
        if (rc < 0)
            rc = kmx_cli_call_failed(client, rc);
        else if (opts->format == KMX_FORMAT_JSON)
            s_print_rows_json(&cols, resp->query);
        else if (s_print_rows_text(opts, &cols, resp->query) < 0) {
            kmx_cli_error("out of memory");
            rc = KMX_EXIT_SERVER;
        }
        if (resp)
            kmx__v1__response__free_unpacked(resp, NULL);
    }
    kmx_client_destroy(&client);
    s_args_free(&a);
    return rc;
}

// ---- list -----------------------------------------------------------------------------

static const char s_list_usage[] =
    "usage: kmx list [exports|consumption] [--period P | --from P --to P] [--market M ...]\n"
    "                [--region R] [--category C] [--item I] [--company X] [--artist X]\n"
    "                [--unit U] [--source S] [--granularity G] [--format table|json|csv]\n"
    "                [--limit N [--page-token T]]\n"
    "Prints every matching record in key order: JSON Lines with --format json, CSV with a\n"
    "header row (importable with kmx import) with --format csv. With --limit, prints one\n"
    "page of N records and then 'next_page_token=T' on stderr (empty after the last page);\n"
    "pass T back with --page-token for the next page. 'kmx dump' is the same command.\n";

// Columns of the list table: a readable subset of the record columns.
static const size_t s_list_table_cols[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15};
#define S_LIST_TABLE_NCOLS (sizeof(s_list_table_cols) / sizeof(s_list_table_cols[0]))

static int s_list_record(const kmx_cli_opts_t *opts, kmx_format_table_t *table,
                         const Kmx__V1__StoredRecord *sr)
{
    if (!sr->record)
        return 0;
    kmx_format_record_t fr;
    kmx_format_record_init(&fr, sr->record, sr->seq, sr->updated_ms);
    if (opts->format == KMX_FORMAT_JSON) {
        kmx_format_record_json(stdout, &fr);
        fputc('\n', stdout);
        return 0;
    }
    if (opts->format == KMX_FORMAT_CSV) {
        kmx_format_csv_row(stdout, fr.cells, KMX_FORMAT_RECORD_NCOLS);
        return 0;
    }
    const char *cells[S_LIST_TABLE_NCOLS];
    for (size_t i = 0; i < S_LIST_TABLE_NCOLS; i++)
        cells[i] = fr.cells[s_list_table_cols[i]];
    return kmx_format_table_add(table, cells);
}

// Keeps a copy of the next page token in scan (the response owning it is about to be
// freed). Returns 1 when there is another page, 0 after the last, or an exit code > 1.
static int s_next_page(Kmx__V1__ScanRequest *scan, const Kmx__V1__ScanResult *res)
{
    size_t len = res->has_next_page_token ? res->next_page_token.len : 0;
    if (len > 0 && scan->page_token.len == len &&
        memcmp(scan->page_token.data, res->next_page_token.data, len) == 0) {
        // A server repeating its token would keep us paging forever.
        kmx_cli_error("the server repeated a page token");
        return KMX_EXIT_SERVER;
    }
    free(scan->page_token.data);
    scan->page_token.data = NULL;
    scan->page_token.len = 0;
    scan->has_page_token = 0;
    if (len == 0)
        return 0;
    scan->page_token.data = malloc(len);
    if (!scan->page_token.data) {
        kmx_cli_error("out of memory");
        return KMX_EXIT_SERVER;
    }
    memcpy(scan->page_token.data, res->next_page_token.data, len);
    scan->page_token.len = len;
    scan->has_page_token = 1;
    return 1;
}

// Decodes a --page-token (hex) into scan. Returns 0 or KMX_ERR_INVAL (reported).
static int s_token_decode(const char *hex, Kmx__V1__ScanRequest *scan)
{
    size_t n = strlen(hex);
    if (n == 0)
        return 0;
    if (n % 2 != 0 || n > 4096 || strspn(hex, "0123456789abcdef") != n) {
        kmx_cli_error("--page-token: not a token kmx list printed");
        return KMX_ERR_INVAL;
    }
    scan->page_token.data = malloc(n / 2);
    if (!scan->page_token.data)
        return KMX_ERR_NOMEM;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v = 0;
        sscanf(hex + 2 * i, "%2x", &v);
        scan->page_token.data[i] = (uint8_t)v;
    }
    scan->page_token.len = n / 2;
    scan->has_page_token = 1;
    return 0;
}

static void s_token_print(const Kmx__V1__ScanRequest *scan, int more)
{
    fputs("next_page_token=", stderr);
    for (size_t i = 0; more == 1 && i < scan->page_token.len; i++)
        fprintf(stderr, "%02x", scan->page_token.data[i]);
    fputc('\n', stderr);
}

// Walks the scan pages: every page, or with --limit exactly that many records. Returns 0
// or an exit code.
static int s_list_pages(kmx_cli_opts_t *opts, kmx_client_t *client, s_args_t *a,
                        kmx_format_table_t *table)
{
    Kmx__V1__ScanRequest scan = KMX__V1__SCAN_REQUEST__INIT;
    scan.filter = &a->filter;
    scan.has_limit = 1;
    scan.limit = S_SCAN_PAGE;
    int more = 1;
    int exit_code = a->page_token && s_token_decode(a->page_token, &scan) < 0 ? KMX_EXIT_INPUT : 0;
    size_t left = a->limit;
    while (more == 1 && exit_code == 0 && (a->limit == 0 || left > 0)) {
        if (a->limit)
            scan.limit = left < S_SCAN_PAGE ? (uint32_t)left : S_SCAN_PAGE;
        if (kmx_cli_stop) {
            kmx_cli_error("interrupted");
            exit_code = KMX_EXIT_INPUT;
            break;
        }
        Kmx__V1__Response *resp = NULL;
        int rc = kmx_client_scan(client, &scan, &resp);
        if (rc < 0) {
            exit_code = kmx_cli_call_failed(client, rc);
        } else {
            const Kmx__V1__ScanResult *res = resp->scan;
            for (size_t i = 0; i < res->n_records && rc == 0; i++)
                rc = s_list_record(opts, table, res->records[i]);
            left -= left >= res->n_records ? res->n_records : left;
            more = rc < 0 ? KMX_EXIT_SERVER : s_next_page(&scan, res);
            exit_code = more > 1 ? more : 0;
        }
        if (resp)
            kmx__v1__response__free_unpacked(resp, NULL);
        fflush(stdout);
    }
    if (exit_code == 0 && a->limit)
        s_token_print(&scan, more);
    free(scan.page_token.data);
    return exit_code;
}

int kmx_cli_list(kmx_cli_opts_t *opts, int argc, char **argv)
{
    s_args_t a;
    memset(&a, 0, sizeof(a));
    int rc = s_parse_args(opts, &a, argc, argv, s_list_usage, false);
    if (rc >= 0) {
        s_args_free(&a);
        return rc;
    }
    const char *names[S_LIST_TABLE_NCOLS];
    for (size_t i = 0; i < S_LIST_TABLE_NCOLS; i++)
        names[i] = kmx_format_record_columns[s_list_table_cols[i]];
    kmx_format_table_t *table = kmx_format_table_new(names, S_LIST_TABLE_NCOLS);
    kmx_client_t *client = table ? kmx_cli_connect(opts) : NULL;
    rc = client ? 0 : KMX_EXIT_SERVER;
    if (rc == 0) {
        kmx_format_table_align_right(table, 7);
        if (opts->format == KMX_FORMAT_CSV)
            kmx_format_csv_row(stdout, kmx_format_record_columns, KMX_FORMAT_RECORD_NCOLS);
        rc = s_list_pages(opts, client, &a, table);
    }
    if (rc == 0 && opts->format == KMX_FORMAT_TABLE)
        kmx_format_table_print(table, stdout);
    kmx_format_table_destroy(&table);
    kmx_client_destroy(&client);
    s_args_free(&a);
    return rc;
}

// ---- get ------------------------------------------------------------------------------

static const char s_get_usage[] =
    "usage: kmx get --kind K --period P [--market M] --category C --item I [--company X]\n"
    "               [--artist X] [--source S] [--format table|json|csv]\n"
    "Prints the record with that natural key; exit 1 when there is none.\n";

// Builds the key record from the options. Returns -1 to continue, else an exit code.
static int s_get_key(const s_args_t *a, Kmx__V1__Record *key, Kmx__V1__Period *period)
{
    if (!a->has_kind || !a->period) {
        kmx_cli_error("get needs --kind and --period");
        fputs(s_get_usage, stderr);
        return KMX_EXIT_INPUT;
    }
    for (size_t i = 0; i < 8; i++) {
        bool allowed = i == 0 || i == 2 || i == 3 || i == 4 || i == 5 || i == 7;
        if (a->lists[i].n > 1 || (!allowed && a->lists[i].n > 0)) {
            kmx_cli_error("get takes one value per key field and no --region or --unit");
            return KMX_EXIT_INPUT;
        }
    }
    if (a->from || a->to || a->granularity) {
        kmx_cli_error("get takes --period, not --from/--to/--granularity");
        return KMX_EXIT_INPUT;
    }
    key->has_kind = 1;
    key->kind = a->kind;
    *period = a->range;
    key->period = period;
    key->market = a->lists[0].n ? a->lists[0].items[0] : NULL;
    key->category = a->lists[2].n ? a->lists[2].items[0] : NULL;
    key->item = a->lists[3].n ? a->lists[3].items[0] : NULL;
    key->company = a->lists[4].n ? a->lists[4].items[0] : NULL;
    key->artist = a->lists[5].n ? a->lists[5].items[0] : NULL;
    key->source = a->lists[7].n ? a->lists[7].items[0] : NULL;
    return -1;
}

static void s_print_record(const kmx_cli_opts_t *opts, const Kmx__V1__StoredRecord *sr)
{
    kmx_format_record_t fr;
    kmx_format_record_init(&fr, sr->record, sr->seq, sr->updated_ms);
    if (opts->format == KMX_FORMAT_JSON) {
        kmx_format_record_json(stdout, &fr);
        fputc('\n', stdout);
        return;
    }
    if (opts->format == KMX_FORMAT_CSV) {
        kmx_format_csv_row(stdout, kmx_format_record_columns, KMX_FORMAT_RECORD_NCOLS);
        kmx_format_csv_row(stdout, fr.cells, KMX_FORMAT_RECORD_NCOLS);
        return;
    }
    size_t width = 0;
    for (size_t i = 0; i < KMX_FORMAT_RECORD_NCOLS; i++) {
        size_t w = strlen(kmx_format_record_columns[i]);
        width = w > width ? w : width;
    }
    for (size_t i = 0; i < KMX_FORMAT_RECORD_NCOLS; i++) {
        if (fr.cells[i])
            printf("%-*s  %s\n", (int)width, kmx_format_record_columns[i], fr.cells[i]);
    }
}

int kmx_cli_get(kmx_cli_opts_t *opts, int argc, char **argv)
{
    s_args_t a;
    memset(&a, 0, sizeof(a));
    int rc = s_parse_args(opts, &a, argc, argv, s_get_usage, false);
    Kmx__V1__Record key = KMX__V1__RECORD__INIT;
    Kmx__V1__Period period = KMX__V1__PERIOD__INIT;
    if (rc < 0)
        rc = s_get_key(&a, &key, &period);
    kmx_client_t *client = rc < 0 ? kmx_cli_connect(opts) : NULL;
    if (rc < 0 && !client)
        rc = KMX_EXIT_SERVER;
    if (rc < 0) {
        Kmx__V1__Response *resp = NULL;
        rc = kmx_client_get(client, &key, &resp);
        if (rc == 0 && (!resp->get->record || !resp->get->record->record))
            rc = KMX_ERR_NOT_FOUND;
        if (rc == KMX_ERR_NOT_FOUND) {
            kmx_cli_error("no such record");
            rc = KMX_EXIT_INPUT;
        } else if (rc < 0) {
            rc = kmx_cli_call_failed(client, rc);
        } else {
            s_print_record(opts, resp->get->record);
            rc = KMX_EXIT_OK;
        }
        if (resp)
            kmx__v1__response__free_unpacked(resp, NULL);
    }
    kmx_client_destroy(&client);
    s_args_free(&a);
    return rc;
}
