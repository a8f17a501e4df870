/*  kmx catalog: what the store holds, so a user can see which markets, categories, units,
    items and sources exist before asking (and why a filter value is refused). Storage
    answers it from the catalog it keeps on every write.  */
#include "kmx_cli.h"

#include "kmx_err.h"
#include "kmx_json.h"
#include "kmx_period.h"
#include "kmx_record.h"
#include "kmx_value.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char s_catalog_usage[] =
    "usage: kmx catalog [exports|consumption] [--format table|json|csv]\n"
    "Lists what the store holds: markets (code, name, level, region), regions with their\n"
    "member countries, categories (dimensions) with their unit, period range and record\n"
    "count, items per category, sources with record counts, quantities measured by\n"
    "several sources (alternatives: one row per measurement, preferred first), and the\n"
    "last sequence.\n"
    "CSV: one row per entry, its section in the first column.\n";

static const char *s_kind_name(Kmx__V1__Kind kind) {
    return kind == KMX__V1__KIND__EXPORT ? "export" : "consumption";
}

// The CSV and table columns of every entry; unused cells stay empty.
#define S_NCOLS 11
static const char *const s_cols[S_NCOLS] = {"section", "kind",    "value",  "name",
                                            "level",   "region",  "unit",   "first",
                                            "last",    "periods", "records"};

typedef struct {
    char cells[S_NCOLS][256]; // the row's text
} s_row_t;

static void s_row_init(s_row_t *r, const char *section, Kmx__V1__Kind kind) {
    memset(r, 0, sizeof(*r));
    snprintf(r->cells[0], sizeof r->cells[0], "%s", section);
    if (kind)
        snprintf(r->cells[1], sizeof r->cells[1], "%s", s_kind_name(kind));
}

static void s_set(s_row_t *r, int col, const char *text) {
    snprintf(r->cells[col], sizeof r->cells[col], "%s", text ? text : "");
}

static void s_set_u64(s_row_t *r, int col, uint64_t v) {
    snprintf(r->cells[col], sizeof r->cells[col], "%" PRIu64, v);
}

static void s_emit(const kmx_cli_opts_t *opts, kmx_format_table_t *t, const s_row_t *r) {
    const char *cells[S_NCOLS];
    for (int i = 0; i < S_NCOLS; i++)
        cells[i] = r->cells[i];
    if (opts->format == KMX_FORMAT_CSV)
        kmx_format_csv_row(stdout, cells, S_NCOLS);
    else if (t)
        kmx_format_table_add(t, cells);
}

static void s_entry_row(s_row_t *r, const char *section, const Kmx__V1__CatalogEntry *e) {
    s_row_init(r, section, e->kind);
    s_set(r, 2, e->value);
    s_set(r, 3, e->name ? e->name : e->category);
    s_set(r, 4, e->level);
    s_set(r, 5, e->region);
    s_set_u64(r, 10, e->records);
}

static void s_category_row(s_row_t *r, const Kmx__V1__CatalogCategory *c) {
    s_row_init(r, "category", c->kind);
    s_set(r, 2, c->name);
    s_set(r, 6, c->unit);
    if (c->period) {
        kmx_period_t first = {c->period->start, c->period->start};
        kmx_period_t last = {c->period->end, c->period->end};
        kmx_period_format(&first, r->cells[7], sizeof r->cells[7]);
        kmx_period_format(&last, r->cells[8], sizeof r->cells[8]);
    }
    s_set_u64(r, 9, c->periods);
    s_set_u64(r, 10, c->records);
}

// One row per measurement of a quantity several sources measure (preferred first):
// value is the quantity, name the amount and its source, region the market.
static void s_alternative_rows(const kmx_cli_opts_t *opts, kmx_format_table_t *t,
                               const Kmx__V1__CatalogAlternative *a) {
    for (size_t k = 0; k < a->n_measurements; k++) {
        const Kmx__V1__Record *m = a->measurements[k];
        char amount[48] = "?";
        if (m->value)
            kmx_decimal_format(m->value->amount, amount, sizeof amount);
        s_row_t r;
        s_row_init(&r, "alternative", a->kind);
        snprintf(r.cells[2], sizeof r.cells[2], "%s: %s", a->category, a->quantity);
        snprintf(r.cells[3], sizeof r.cells[3], "%s %s from %s", amount, a->unit, m->source);
        s_set(&r, 5, a->market);
        s_set(&r, 6, a->unit);
        if (a->period) {
            kmx_period_t p = {a->period->start, a->period->end};
            kmx_period_format(&p, r.cells[7], sizeof r.cells[7]);
            s_set(&r, 8, r.cells[7]);
        }
        s_set_u64(&r, 10, a->n_measurements);
        s_emit(opts, t, &r);
    }
}

static void s_rows(const kmx_cli_opts_t *opts, kmx_format_table_t *t,
                   const Kmx__V1__CatalogResult *c) {
    s_row_t r;
    for (size_t i = 0; i < c->n_markets; i++)
        s_entry_row(&r, "market", c->markets[i]), s_emit(opts, t, &r);
    for (size_t i = 0; i < c->n_regions; i++) {
        s_row_init(&r, "region", KMX__V1__KIND__KIND_UNSPECIFIED);
        s_set(&r, 2, c->regions[i]->name);
        size_t at = 0;
        for (size_t k = 0; k < c->regions[i]->n_members && at < sizeof r.cells[3] - 4; k++)
            at += (size_t)snprintf(r.cells[3] + at, sizeof r.cells[3] - at, "%s%s", k ? " " : "",
                                   c->regions[i]->members[k]);
        s_set_u64(&r, 10, c->regions[i]->n_members);
        s_emit(opts, t, &r);
    }
    for (size_t i = 0; i < c->n_categories; i++)
        s_category_row(&r, c->categories[i]), s_emit(opts, t, &r);
    for (size_t i = 0; i < c->n_items; i++)
        s_entry_row(&r, "item", c->items[i]), s_emit(opts, t, &r);
    for (size_t i = 0; i < c->n_sources; i++)
        s_entry_row(&r, "source", c->sources[i]), s_emit(opts, t, &r);
    for (size_t i = 0; i < c->n_alternatives; i++)
        s_alternative_rows(opts, t, c->alternatives[i]);
}

static void s_json(const Kmx__V1__CatalogResult *c) {
    json_t *doc = kmx_json_catalog(c);
    if (!doc || kmx_json_dumpf(doc, stdout) < 0)
        kmx_cli_error("out of memory");
    json_decref(doc);
    fputc('\n', stdout);
}

static void s_print(const kmx_cli_opts_t *opts, const Kmx__V1__CatalogResult *c) {
    if (opts->format == KMX_FORMAT_JSON) {
        s_json(c);
        return;
    }
    kmx_format_table_t *t =
        opts->format == KMX_FORMAT_TABLE ? kmx_format_table_new(s_cols, S_NCOLS) : NULL;
    if (t) {
        for (int i = 9; i < S_NCOLS; i++)
            kmx_format_table_align_right(t, (size_t)i);
    }
    if (opts->format == KMX_FORMAT_CSV)
        kmx_format_csv_row(stdout, s_cols, S_NCOLS);
    s_rows(opts, t, c);
    if (t) {
        kmx_format_table_print(t, stdout);
        printf("(%" PRIu64 " records, %zu markets, %zu categories, %zu items, %zu sources, "
               "%zu companies, %zu artists, %zu quantities with alternatives; last_seq=%" PRIu64
               ")\n",
               c->records, c->n_markets, c->n_categories, c->n_items, c->n_sources, c->n_companies,
               c->n_artists, c->n_alternatives, c->last_seq);
    }
    kmx_format_table_destroy(&t);
}

int kmx_cli_catalog(kmx_cli_opts_t *opts, int argc, char **argv) {
    static const struct option longopts[] = {KMX_CLI_COMMON_OPTIONS, {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = kmx_cli_getopt(argc, argv, "h", longopts)) != -1) {
        int rc = kmx_cli_common_option(opts, opt, optarg);
        if (rc == 0)
            fputs(s_catalog_usage, stderr);
        if (rc <= 0)
            return KMX_EXIT_INPUT;
    }
    if (opts->help) {
        fputs(s_catalog_usage, stdout);
        return KMX_EXIT_OK;
    }
    Kmx__V1__Kind kind = KMX__V1__KIND__KIND_UNSPECIFIED;
    if (optind < argc && kmx_kind_parse(argv[optind++], &kind) < 0) {
        kmx_cli_error("expected exports or consumption, not \"%s\"", argv[optind - 1]);
        return KMX_EXIT_INPUT;
    }
    if (optind < argc) {
        fputs(s_catalog_usage, stderr);
        return KMX_EXIT_INPUT;
    }
    kmx_client_t *client = kmx_cli_connect(opts);
    if (!client)
        return KMX_EXIT_SERVER;
    Kmx__V1__Response *resp = NULL;
    int rc = kmx_client_catalog(client, kind, &resp);
    if (rc < 0)
        rc = kmx_cli_call_failed(client, rc);
    else {
        s_print(opts, resp->catalog);
        rc = KMX_EXIT_OK;
    }
    if (resp)
        kmx__v1__response__free_unpacked(resp, NULL);
    kmx_client_destroy(&client);
    return rc;
}
