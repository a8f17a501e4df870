/*  kmx get, query and list: the commands that read. Their options and the columns of a
    query answer are kmx_qargs's, shared with kmx-gateway; this file parses argv, prints
    tables and CSV, and walks list pages.  */
#include "kmx_cli.h"

#include "kmx_err.h"
#include "kmx_import.h"
#include "kmx_json.h"
#include "kmx_market.h"
#include "kmx_period.h"
#include "kmx_record.h"
#include "kmx_report.h"
#include "kmx_value.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_SCAN_PAGE 500
#define S_LONGOPTS_MAX 64

// The getopt table: the common options, then every kmx_qargs option.
static void s_longopts(struct option *out) {
    static const struct option common[] = {KMX_CLI_COMMON_OPTIONS};
    size_t n = 0;
    for (size_t i = 0; i < sizeof(common) / sizeof(common[0]); i++)
        out[n++] = common[i];
    for (const kmx_qargs_option_t *o = kmx_qargs_options; o->name && n + 1 < S_LONGOPTS_MAX; o++)
        out[n++] =
            (struct option){o->name, o->has_value ? required_argument : no_argument, NULL, o->code};
    out[n] = (struct option){NULL, 0, NULL, 0};
}

// Parses a command's options and its optional kind word. Returns -1 to continue, else
// an exit code.
static int s_parse_args(kmx_cli_opts_t *opts, kmx_qargs_t *a, int argc, char **argv,
                        const char *usage, bool kind_required) {
    struct option longopts[S_LONGOPTS_MAX];
    s_longopts(longopts);
    int opt;
    while ((opt = kmx_cli_getopt(argc, argv, "h", longopts)) != -1) {
        int rc = kmx_cli_common_option(opts, opt, optarg);
        if (rc == 0 && (rc = kmx_qargs_set(a, opt, optarg)) < 0)
            kmx_cli_error("%s", a->err);
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
        if (kmx_qargs_set_kind(a, argv[optind]) < 0) {
            kmx_cli_error("%s", a->err);
            return KMX_EXIT_INPUT;
        }
        optind++;
    }
    if (optind < argc || (kind_required && !a->has_kind)) {
        fputs(usage, stderr);
        return KMX_EXIT_INPUT;
    }
    if (kmx_qargs_finish(a) < 0) {
        kmx_cli_error("%s", a->err);
        return KMX_EXIT_INPUT;
    }
    return -1;
}

// ---- query --------------------------------------------------------------------------

static const char s_query_usage[] =
    "usage: kmx query exports|consumption [--period P | --from P --to P] [--market M ...]\n"
    "                 [--region R] [--category C] [--dimension D] [--item I] [--company X]\n"
    "                 [--artist X] [--unit U] [--source S] [--granularity G]\n"
    "                 [--by FIELD[,FIELD]] [--metrics sum,count,min,max,avg]\n"
    "                 [--top N [--other]] [--share] [--growth yoy|pop] [--time-series]\n"
    "                 [--latest] [--prefer] [--unallocated] [--complete]\n"
    "                 [--scale auto|thousand|million|billion] [--pivot FIELD]\n"
    "                 [--format table|json|csv]\n"
    "Sums matching values per group and unit, per category unless --category names one\n"
    "(different statistics never add up) and per market level unless grouped by market\n"
    "(WORLD is never added to its countries). FIELD: market, region, period, year,\n"
    "category, dimension, item, company, artist, source, unit, level. G: auto (default: a span\n"
    "covered by a coarser one of the same group is left out), year, half, quarter, month,\n"
    "range, any (add everything). Several values: repeat the flag; --market, --region,\n"
    "--category and --unit also take comma-separated lists. Item, company, artist and\n"
    "source are free text and never split at commas.\n"
    "Alternative measurements of one quantity (several sources) are never added: such a\n"
    "query is refused unless --source picks one, --by source shows them side by side, or\n"
    "--prefer adds the preferred one and lists what it set aside (docs/data-model.md).\n";

static void s_print_rows_json(const kmx_qcols_t *c, const Kmx__V1__QueryResult *res) {
    json_t *doc = kmx_qargs_json(c, res);
    if (!doc || kmx_json_dumpf(doc, stdout) < 0)
        kmx_cli_error("out of memory");
    json_decref(doc);
    fputc('\n', stdout);
}

// The cells of one answer row for a table or CSV, amounts of a unit that adds divided by
// 10^exp and the unit named with its scale ("291.8", "USD million").
static void s_row_cells(const kmx_qcols_t *c, const Kmx__V1__Row *row, int exp, const char **cells,
                        char bufs[][64]) {
    bool scaled = exp > 0 && (!row->has_adds || row->adds);
    for (size_t i = 0; i < c->n; i++) {
        char raw[64];
        const char *cell = kmx_qargs_cell(c, i, row, raw, sizeof raw);
        kmx_qcol_kind_t k = c->kind[i];
        bool amount = k == KMX_QCOL_SUM || k == KMX_QCOL_AVG || k == KMX_QCOL_MIN ||
                      k == KMX_QCOL_MAX || k == KMX_QCOL_PREV || k == KMX_QCOL_SHARE_OF;
        cells[i] = cell ? bufs[i] : NULL;
        if (!cell)
            continue;
        if (scaled && amount && kmx_report_scale_text(cell, exp, bufs[i], 64) == 0)
            continue;
        if (scaled && k == KMX_QCOL_UNIT) {
            snprintf(bufs[i], 64, "%s %s", cell, kmx_report_scale_word(exp));
            continue;
        }
        if (cell == raw)
            snprintf(bufs[i], 64, "%s", cell); // short: a count, an amount, months
        else
            cells[i] = cell; // a key or a name: it lives in the row
    }
}

static void s_print_footer(const kmx_cli_opts_t *opts, const Kmx__V1__QueryResult *res) {
    if (opts->format == KMX_FORMAT_TABLE) {
        printf("(%zu rows, %" PRIu64 " records", res->n_rows, res->matched);
        if (res->has_dropped && res->dropped > 0)
            printf("; %" PRIu64 " left out as covered by a coarser period", res->dropped);
        printf(")\n");
    }
    FILE *out = opts->format == KMX_FORMAT_TABLE ? stdout : stderr;
    for (size_t i = 0; i < res->n_set_aside; i++) // alternatives left out (--prefer)
        fprintf(out, "alternative: %s\n", res->set_aside[i]);
    for (size_t i = 0; i < res->n_notes; i++) // what the numbers mean (coverage, totals)
        fprintf(out, "note: %s\n", res->notes[i]);
}

static int s_print_rows_text(const kmx_cli_opts_t *opts, const kmx_qcols_t *c,
                             const Kmx__V1__QueryResult *res, int exp) {
    kmx_format_table_t *table = kmx_format_table_new(c->names, c->n);
    if (!table)
        return KMX_ERR_NOMEM;
    for (size_t i = 0; i < c->n; i++) {
        kmx_qcol_kind_t k = c->kind[i];
        if (k >= KMX_QCOL_SUM && k != KMX_QCOL_LEVEL && k != KMX_QCOL_SHARE_BASE &&
            k != KMX_QCOL_PARTIAL)
            kmx_format_table_align_right(table, i);
    }
    if (opts->format == KMX_FORMAT_CSV)
        kmx_format_csv_row(stdout, c->names, c->n);
    for (size_t r = 0; r < res->n_rows; r++) {
        const char *cells[KMX_QARGS_COLS_MAX];
        char bufs[KMX_QARGS_COLS_MAX][64];
        s_row_cells(c, res->rows[r], exp, cells, bufs);
        if (opts->format == KMX_FORMAT_CSV)
            kmx_format_csv_row(stdout, cells, c->n);
        else if (kmx_format_table_add(table, cells) < 0) {
            kmx_format_table_destroy(&table);
            return KMX_ERR_NOMEM;
        }
    }
    if (opts->format == KMX_FORMAT_TABLE)
        kmx_format_table_print(table, stdout);
    s_print_footer(opts, res);
    kmx_format_table_destroy(&table);
    return 0;
}

// ---- pivot ----------------------------------------------------------------------------

#define S_PIVOT_MAX 64 // columns a pivot spreads one field into

// A wide table: one column per value of the pivot field, one line per combination of the
// other keys and unit; cells hold the sum (the average for a unit that does not add).
typedef struct {
    const char *values[S_PIVOT_MAX]; // the pivot field's values, in answer order
    size_t n_values;
    size_t *line;  // per answer row: its line
    size_t *first; // per line: the first answer row on it
    size_t n_lines;
} s_pivot_t;

// Whether rows a and b have the same keys (except the pivot column) and unit.
static bool s_same_line(const kmx_qcols_t *c, size_t pc, const Kmx__V1__Row *a,
                        const Kmx__V1__Row *b) {
    for (size_t i = 0; i < c->n; i++) {
        if (c->kind[i] != KMX_QCOL_KEY || i == pc)
            continue;
        const char *x = a->keys[c->key[i]], *y = b->keys[c->key[i]];
        if (strcmp(x ? x : "", y ? y : "") != 0)
            return false;
    }
    return strcmp(a->unit ? a->unit : "", b->unit ? b->unit : "") == 0;
}

static int s_pivot_build(const kmx_qcols_t *c, size_t pc, const Kmx__V1__QueryResult *res,
                         s_pivot_t *p) {
    p->line = calloc(res->n_rows + 1, sizeof *p->line);
    p->first = calloc(res->n_rows + 1, sizeof *p->first);
    if (!p->line || !p->first)
        return KMX_ERR_NOMEM;
    for (size_t r = 0; r < res->n_rows; r++) {
        const char *v = res->rows[r]->keys[c->key[pc]];
        size_t k = 0;
        while (k < p->n_values && strcmp(p->values[k], v) != 0)
            k++;
        if (k == p->n_values) {
            if (p->n_values == S_PIVOT_MAX)
                return KMX_ERR_TOO_BIG;
            p->values[p->n_values++] = v;
        }
        size_t l = 0;
        while (l < p->n_lines && !s_same_line(c, pc, res->rows[p->first[l]], res->rows[r]))
            l++;
        if (l == p->n_lines)
            p->first[p->n_lines++] = r;
        p->line[r] = l;
    }
    return 0;
}

// Prints the pivot of res on the key column named field. Returns 0, KMX_ERR_INVAL
// (reported) when field is not a key column, or another code.
static int s_print_pivot(const kmx_cli_opts_t *opts, const kmx_qcols_t *c,
                         const Kmx__V1__QueryResult *res, const char *field, int exp) {
    size_t pc = 0;
    while (pc < c->n && !(c->kind[pc] == KMX_QCOL_KEY && strcmp(c->names[pc], field) == 0))
        pc++;
    if (pc == c->n) {
        kmx_cli_error("--pivot wants one of the answer's key fields (a --by field), not \"%s\"",
                      field);
        return KMX_ERR_INVAL;
    }
    s_pivot_t p;
    memset(&p, 0, sizeof p);
    int rc = s_pivot_build(c, pc, res, &p);
    const char *names[KMX_QARGS_COLS_MAX + S_PIVOT_MAX];
    size_t nc = 0, lead = 0;
    for (size_t i = 0; rc == 0 && i < c->n; i++) {
        if ((c->kind[i] == KMX_QCOL_KEY && i != pc) || c->kind[i] == KMX_QCOL_UNIT)
            names[nc++] = c->names[i];
    }
    lead = nc;
    for (size_t k = 0; rc == 0 && k < p.n_values; k++)
        names[nc++] = p.values[k];
    kmx_format_table_t *table = rc == 0 ? kmx_format_table_new(names, nc) : NULL;
    if (rc == 0 && !table)
        rc = KMX_ERR_NOMEM;
    for (size_t i = lead; table && i < nc; i++)
        kmx_format_table_align_right(table, i);
    if (table && opts->format == KMX_FORMAT_CSV)
        kmx_format_csv_row(stdout, names, nc);
    for (size_t l = 0; table && l < p.n_lines; l++) {
        const char *cells[KMX_QARGS_COLS_MAX + S_PIVOT_MAX] = {NULL};
        char bufs[KMX_QARGS_COLS_MAX][64], vals[S_PIVOT_MAX][64];
        const char *row_cells[KMX_QARGS_COLS_MAX];
        s_row_cells(c, res->rows[p.first[l]], exp, row_cells, bufs);
        size_t at = 0;
        for (size_t i = 0; i < c->n; i++) {
            if ((c->kind[i] == KMX_QCOL_KEY && i != pc) || c->kind[i] == KMX_QCOL_UNIT)
                cells[at++] = row_cells[i];
        }
        for (size_t r = 0; r < res->n_rows; r++) {
            if (p.line[r] != l)
                continue;
            const Kmx__V1__Row *row = res->rows[r];
            const char *v = row->sum ? row->sum : row->avg;
            size_t k = 0;
            while (strcmp(p.values[k], row->keys[c->key[pc]]) != 0)
                k++;
            bool scaled = exp > 0 && (!row->has_adds || row->adds);
            if (v && !(scaled && kmx_report_scale_text(v, exp, vals[k], 64) == 0))
                snprintf(vals[k], 64, "%s", v);
            cells[lead + k] = v ? vals[k] : NULL;
        }
        if (opts->format == KMX_FORMAT_CSV)
            kmx_format_csv_row(stdout, cells, nc);
        else if (kmx_format_table_add(table, cells) < 0)
            rc = KMX_ERR_NOMEM;
    }
    if (table && rc == 0 && opts->format == KMX_FORMAT_TABLE)
        kmx_format_table_print(table, stdout);
    if (rc == 0)
        s_print_footer(opts, res);
    kmx_format_table_destroy(&table);
    free(p.line);
    free(p.first);
    if (rc == KMX_ERR_TOO_BIG)
        kmx_cli_error("--pivot: more than %d values of %s; narrow the query", S_PIVOT_MAX, field);
    return rc;
}

// Prints a query answer as a table or CSV: scaled when asked (--scale), wide (--pivot).
static int s_print_answer(const kmx_cli_opts_t *opts, const kmx_qargs_t *a, const kmx_qcols_t *c,
                          const Kmx__V1__QueryResult *res) {
    int exp = 0;
    kmx_report_scale_parse(a->scale, &exp); // checked when the option was read
    if (exp == KMX_REPORT_SCALE_AUTO)
        exp = kmx_report_scale_auto(res);
    if (a->pivot)
        return s_print_pivot(opts, c, res, a->pivot, exp);
    return s_print_rows_text(opts, c, res, exp);
}

int kmx_cli_query(kmx_cli_opts_t *opts, int argc, char **argv) {
    kmx_qargs_t a;
    kmx_qargs_init(&a, KMX_QARGS_QUERY);
    int rc = s_parse_args(opts, &a, argc, argv, s_query_usage, true);
    kmx_client_t *client = rc < 0 ? kmx_cli_connect(opts) : NULL;
    if (rc < 0 && !client)
        rc = KMX_EXIT_SERVER;
    if (rc < 0) {
        Kmx__V1__QueryRequest q = KMX__V1__QUERY_REQUEST__INIT;
        kmx_qargs_query_request(&a, &q);
        kmx_qcols_t cols;
        Kmx__V1__Response *resp = NULL;
        rc = kmx_client_query(client, &q, &resp);
        if (rc >= 0)
            kmx_qargs_columns(&a, resp->query, &cols);
        if (rc < 0)
            rc = kmx_cli_call_failed(client, rc);
        else if (opts->format == KMX_FORMAT_JSON)
            s_print_rows_json(&cols, resp->query);
        else if ((rc = s_print_answer(opts, &a, &cols, resp->query)) == KMX_ERR_INVAL)
            rc = KMX_EXIT_INPUT;
        else if (rc < 0) {
            kmx_cli_error("%s", rc == KMX_ERR_TOO_BIG ? "the pivot is too wide" : "out of memory");
            rc = KMX_EXIT_SERVER;
        } else
            rc = KMX_EXIT_OK;
        if (resp)
            kmx__v1__response__free_unpacked(resp, NULL);
    }
    kmx_client_destroy(&client);
    kmx_qargs_fini(&a);
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
                         const Kmx__V1__StoredRecord *sr) {
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
static int s_next_page(Kmx__V1__ScanRequest *scan, const Kmx__V1__ScanResult *res) {
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

static void s_token_print(const Kmx__V1__ScanRequest *scan, int more) {
    fputs("next_page_token=", stderr);
    for (size_t i = 0; more == 1 && i < scan->page_token.len; i++)
        fprintf(stderr, "%02x", scan->page_token.data[i]);
    fputc('\n', stderr);
}

// Walks the scan pages: every page, or with --limit exactly that many records. Returns 0
// or an exit code.
static int s_list_pages(kmx_cli_opts_t *opts, kmx_client_t *client, kmx_qargs_t *a,
                        kmx_format_table_t *table) {
    Kmx__V1__ScanRequest scan = KMX__V1__SCAN_REQUEST__INIT;
    scan.filter = &a->filter;
    scan.has_limit = 1;
    scan.limit = S_SCAN_PAGE;
    int more = 1;
    int exit_code = 0;
    if (a->page_token && kmx_qargs_page_token(a, a->page_token, &scan) < 0) {
        kmx_cli_error("%s", a->err);
        exit_code = KMX_EXIT_INPUT;
    }
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

int kmx_cli_list(kmx_cli_opts_t *opts, int argc, char **argv) {
    kmx_qargs_t a;
    kmx_qargs_init(&a, KMX_QARGS_LIST);
    int rc = s_parse_args(opts, &a, argc, argv, s_list_usage, false);
    if (rc >= 0) {
        kmx_qargs_fini(&a);
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
    kmx_qargs_fini(&a);
    return rc;
}

// ---- get ------------------------------------------------------------------------------

static const char s_get_usage[] =
    "usage: kmx get --kind K --period P [--market M] --category C --item I [--company X]\n"
    "               [--artist X] [--source S] [--format table|json|csv]\n"
    "Prints the record with that natural key; exit 1 when there is none.\n";

// Builds the key record from the options. Returns -1 to continue, else an exit code.
static int s_get_key(kmx_qargs_t *a, Kmx__V1__Record *key, Kmx__V1__Period *period) {
    if (kmx_qargs_get_key(a, key, period) == 0)
        return -1;
    kmx_cli_error("%s", a->err);
    if (!a->has_kind || !a->period)
        fputs(s_get_usage, stderr);
    return KMX_EXIT_INPUT;
}

static void s_print_record(const kmx_cli_opts_t *opts, const Kmx__V1__StoredRecord *sr) {
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

// Runs get or history: the key flags, one call, the answer printed. Returns an exit code.
static int s_keyed(kmx_cli_opts_t *opts, int argc, char **argv, const char *usage, bool history);

int kmx_cli_get(kmx_cli_opts_t *opts, int argc, char **argv) {
    return s_keyed(opts, argc, argv, s_get_usage, false);
}

// ---- history --------------------------------------------------------------------------

static const char s_history_usage[] =
    "usage: kmx history --kind K --period P [--market M] --category C --item I [--company X]\n"
    "                   [--artist X] [--source S] [--format table|json|csv]\n"
    "Prints every value the figure with that natural key has had, oldest first: the\n"
    "change's sequence, commit time, type, status and value (from the event log).\n"
    "Exit 1 when the event log holds no change of that key.\n";

// Writes a commit time in milliseconds since the epoch as UTC ISO 8601.
static void s_time_ms(uint64_t ms, char *buf, size_t size) {
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&secs, &tm) || strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
        snprintf(buf, size, "%" PRIu64, ms);
        return;
    }
    size_t n = strlen(buf);
    snprintf(buf + n, size - n, ".%03uZ", (unsigned)(ms % 1000));
}

static void s_history_row(const Kmx__V1__UpdateEvent *ev, char cells[7][48]) {
    const Kmx__V1__Record *rec = ev->record;
    snprintf(cells[0], 48, "%" PRIu64, ev->seq);
    s_time_ms(ev->committed_ms, cells[1], 48);
    snprintf(cells[2], 48, "%s", ev->type == KMX__V1__EVENT_TYPE__DELETE ? "delete" : "upsert");
    snprintf(cells[3], 48, "%s",
             rec && rec->has_status && rec->status ? kmx_import_status_name(rec->status) : "");
    cells[4][0] = cells[5][0] = cells[6][0] = '\0';
    if (rec && rec->value && rec->value->has_amount)
        kmx_decimal_format(rec->value->amount, cells[4], 48);
    if (rec && rec->value && rec->value->unit)
        snprintf(cells[5], 48, "%s", rec->value->unit);
    if (ev->previous && ev->previous->has_amount)
        kmx_decimal_format(ev->previous->amount, cells[6], 48);
}

static void s_print_history(const kmx_cli_opts_t *opts, const Kmx__V1__HistoryResult *h) {
    static const char *const names[] = {"seq",   "committed", "type",    "status",
                                        "value", "unit",      "previous"};
    kmx_format_table_t *table =
        opts->format == KMX_FORMAT_TABLE ? kmx_format_table_new(names, 7) : NULL;
    if (table) {
        kmx_format_table_align_right(table, 0);
        kmx_format_table_align_right(table, 4);
        kmx_format_table_align_right(table, 6);
    }
    if (opts->format == KMX_FORMAT_CSV)
        kmx_format_csv_row(stdout, names, 7);
    for (size_t i = 0; i < h->n_events; i++) {
        const Kmx__V1__UpdateEvent *ev = h->events[i];
        char cells[7][48];
        s_history_row(ev, cells);
        const char *row[7] = {cells[0], cells[1], cells[2], cells[3], cells[4], cells[5], cells[6]};
        if (opts->format == KMX_FORMAT_JSON) {
            // The event as kmx watch prints it: seq, type, topic, record, previous, time.
            json_t *doc = kmx_json_event(ev);
            if (doc && kmx_json_dumpf(doc, stdout) == 0)
                fputc('\n', stdout);
            json_decref(doc);
        } else if (opts->format == KMX_FORMAT_CSV) {
            kmx_format_csv_row(stdout, row, 7);
        } else if (table) {
            kmx_format_table_add(table, row);
        }
    }
    if (table) {
        kmx_format_table_print(table, stdout);
        printf("(%zu changes; the event log keeps seq %" PRIu64 " onward)\n", h->n_events,
               h->first_seq);
    }
    kmx_format_table_destroy(&table);
}

int kmx_cli_history(kmx_cli_opts_t *opts, int argc, char **argv) {
    return s_keyed(opts, argc, argv, s_history_usage, true);
}

static int s_keyed(kmx_cli_opts_t *opts, int argc, char **argv, const char *usage, bool history) {
    kmx_qargs_t a;
    kmx_qargs_init(&a, KMX_QARGS_GET);
    int rc = s_parse_args(opts, &a, argc, argv, usage, false);
    Kmx__V1__Record key = KMX__V1__RECORD__INIT;
    Kmx__V1__Period period = KMX__V1__PERIOD__INIT;
    if (rc < 0)
        rc = s_get_key(&a, &key, &period);
    kmx_client_t *client = rc < 0 ? kmx_cli_connect(opts) : NULL;
    if (rc < 0 && !client)
        rc = KMX_EXIT_SERVER;
    if (rc < 0) {
        Kmx__V1__Response *resp = NULL;
        rc =
            history ? kmx_client_history(client, &key, &resp) : kmx_client_get(client, &key, &resp);
        if (rc == 0 && !history && (!resp->get->record || !resp->get->record->record))
            rc = KMX_ERR_NOT_FOUND;
        if (rc == KMX_ERR_NOT_FOUND && !history) {
            kmx_cli_error("no such record");
            rc = KMX_EXIT_INPUT;
        } else if (rc < 0) {
            rc = kmx_cli_call_failed(client, rc);
        } else {
            if (history)
                s_print_history(opts, resp->history);
            else
                s_print_record(opts, resp->get->record);
            rc = KMX_EXIT_OK;
        }
        if (resp)
            kmx__v1__response__free_unpacked(resp, NULL);
    }
    kmx_client_destroy(&client);
    kmx_qargs_fini(&a);
    return rc;
}
