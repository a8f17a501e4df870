/*  kmx import and kmx put: the commands that store records. Both build records with
    kmx_import so a CSV cell and a command-line flag are parsed by the same rules.  */
#include "kmx_cli.h"

#include "kmx_csv.h"
#include "kmx_err.h"
#include "kmx_import.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_BATCH_DEFAULT 500
#define S_BATCH_MAX 100000

typedef struct {
    size_t row;                         // line the row started on
    char field[KMX_IMPORT_COLUMN_MAX];  // column or record field at fault
    char reason[KMX_IMPORT_REASON_MAX]; // why it was refused
} s_reject_t;

typedef struct {
    kmx_cli_opts_t *opts;     // global options
    const char *path;         // the CSV file, for messages
    kmx_client_t *client;     // connection to the broker
    size_t batch_max;         // records per PutRequest
    bool atomic;              // all-or-nothing batches
    bool tty;                 // stderr is a terminal: show progress
    Kmx__V1__Record **recs;   // records waiting to be sent
    size_t *lines;            // line of each waiting record
    size_t n;                 // records waiting
    size_t cap;               // capacity of recs and lines
    size_t rows;              // data rows read
    size_t stored;            // records stored by the server
    size_t unchanged;         // records the server already had
    uint64_t last_seq;        // newest sequence reported by the server
    s_reject_t *rejects;      // every rejected row
    size_t nrejects;          // rows rejected
    size_t rejects_cap;       // capacity of rejects
} s_import_t;

static const char s_import_usage[] =
    "usage: kmx import FILE [--batch N] [--atomic] [--format table|json]\n"
    "Reads a CSV file with a header row (see docs/cli.md for columns) and stores its\n"
    "records through kmx.ingest, N per request (default 500). FILE '-' reads stdin.\n"
    "--atomic refuses a whole batch when any record in it is bad, and sends nothing when\n"
    "a row fails to parse. Exit 0 when every row was stored or unchanged, 1 when any was\n"
    "rejected, 2 when the server could not be reached or failed.\n";

static int s_reject(s_import_t *im, size_t row, const char *field, const char *reason)
{
    if (im->nrejects == im->rejects_cap) {
        size_t cap = im->rejects_cap ? im->rejects_cap * 2 : 16;
        s_reject_t *grown = realloc(im->rejects, cap * sizeof(*grown));
        if (!grown)
            return KMX_ERR_NOMEM;
        im->rejects = grown;
        im->rejects_cap = cap;
    }
    s_reject_t *r = &im->rejects[im->nrejects++];
    r->row = row;
    snprintf(r->field, sizeof(r->field), "%s", field ? field : "");
    snprintf(r->reason, sizeof(r->reason), "%s", reason && *reason ? reason : "rejected");
    return 0;
}

static void s_drop_batch(s_import_t *im)
{
    for (size_t i = 0; i < im->n; i++)
        kmx_import_record_free(&im->recs[i]);
    im->n = 0;
}

static void s_progress(const s_import_t *im)
{
    if (im->tty)
        fprintf(stderr, "\rread %zu rows: %zu stored, %zu unchanged, %zu rejected", im->rows,
                im->stored, im->unchanged, im->nrejects);
}

// Records the outcome of a PutResult for the batch just sent.
static int s_on_put_result(s_import_t *im, const Kmx__V1__PutResult *put)
{
    im->stored += put->stored;
    im->unchanged += put->unchanged;
    if (put->has_last_seq && put->last_seq > im->last_seq)
        im->last_seq = put->last_seq;
    size_t listed = 0;
    for (size_t i = 0; i < put->n_results; i++) {
        const Kmx__V1__RecordResult *r = put->results[i];
        if (r->outcome != KMX__V1__RECORD_RESULT__OUTCOME__REJECTED)
            continue;
        size_t row = r->index < im->n ? im->lines[r->index] : 0;
        if (s_reject(im, row, r->field, r->reason) < 0)
            return KMX_ERR_NOMEM;
        listed++;
    }
    // A server that counts rejections without listing them still has them counted.
    for (; listed < put->rejected; listed++) {
        if (s_reject(im, 0, "", "rejected by the server") < 0)
            return KMX_ERR_NOMEM;
    }
    return 0;
}

// A refused batch (atomic, or invalid as a whole): every record in it counts as rejected,
// with the server's reason where it named the record.
static int s_on_batch_refused(s_import_t *im, const Kmx__V1__Error *err)
{
    for (size_t i = 0; i < im->n; i++) {
        const char *field = "";
        const char *reason = NULL;
        for (size_t k = 0; k < err->n_records; k++) {
            if (err->records[k]->index == i) {
                field = err->records[k]->field;
                reason = err->records[k]->reason;
            }
        }
        char buf[KMX_IMPORT_REASON_MAX];
        if (!reason) {
            snprintf(buf, sizeof(buf), "not stored: the batch was refused (%s)",
                     err->message && *err->message ? err->message : "bad request");
            reason = buf;
        }
        if (s_reject(im, im->lines[i], field, reason) < 0)
            return KMX_ERR_NOMEM;
    }
    return 0;
}

// Sends the waiting records. Returns 0, or an exit code > 0 after a server error.
static int s_flush(s_import_t *im)
{
    if (im->n == 0)
        return 0;
    Kmx__V1__Response *resp = NULL;
    int rc = kmx_client_put(im->client, im->recs, im->n, im->atomic, &resp);
    int exit_code = 0;
    if (rc == 0)
        rc = s_on_put_result(im, resp->put);
    else if (rc == KMX_ERR_INVAL && resp && resp->error)
        rc = s_on_batch_refused(im, resp->error);
    if (rc == KMX_ERR_NOMEM) {
        kmx_cli_error("out of memory");
        exit_code = KMX_EXIT_SERVER;
    } else if (rc < 0) {
        kmx_cli_call_failed(im->client, rc);
        exit_code = KMX_EXIT_SERVER;
    }
    if (resp)
        kmx__v1__response__free_unpacked(resp, NULL);
    s_drop_batch(im);
    s_progress(im);
    return exit_code;
}

static int s_enqueue(s_import_t *im, Kmx__V1__Record *rec, size_t line)
{
    if (im->n == im->cap) {
        size_t cap = im->cap ? im->cap * 2 : 64;
        Kmx__V1__Record **recs = realloc(im->recs, cap * sizeof(*recs));
        if (recs)
            im->recs = recs;
        size_t *lines = realloc(im->lines, cap * sizeof(*lines));
        if (lines)
            im->lines = lines;
        if (!recs || !lines) {
            kmx_import_record_free(&rec);
            return KMX_ERR_NOMEM;
        }
        im->cap = cap;
    }
    im->recs[im->n] = rec;
    im->lines[im->n] = line;
    im->n++;
    return 0;
}

// Converts one CSV row. Returns 0 (queued or rejected) or KMX_ERR_NOMEM.
static int s_take_row(s_import_t *im, const kmx_import_t *map, const char **fields,
                      size_t nfields, size_t line)
{
    Kmx__V1__Record *rec = NULL;
    kmx_import_error_t err;
    int rc = kmx_import_row(map, fields, nfields, line, &rec, &err);
    if (rc == KMX_ERR_INVAL)
        return s_reject(im, err.row, err.column, err.reason);
    if (rc < 0)
        return rc;
    return s_enqueue(im, rec, line);
}

// Reads every data row, sending full batches unless atomic. Returns an exit code or -1
// to continue.
static int s_read_rows(s_import_t *im, kmx_csv_reader_t *reader, const kmx_import_t *map)
{
    for (;;) {
        const char **fields = NULL;
        size_t nfields = 0;
        int rc = kmx_csv_next(reader, &fields, &nfields);
        if (rc == 0)
            return -1;
        if (rc == KMX_ERR_IO || rc == KMX_ERR_NOMEM) {
            kmx_cli_error("%s: %s", im->path, kmx_csv_error(reader));
            return KMX_EXIT_INPUT;
        }
        im->rows++;
        if (rc < 0) {
            // The reader's message starts with "line N: ", which the report already says.
            const char *msg = kmx_csv_error(reader);
            const char *colon = strstr(msg, ": ");
            rc = s_reject(im, kmx_csv_line(reader), "", colon ? colon + 2 : msg);
        }
        else
            rc = s_take_row(im, map, fields, nfields, kmx_csv_line(reader));
        if (rc < 0) {
            kmx_cli_error("out of memory");
            return KMX_EXIT_SERVER;
        }
        if (!im->atomic && im->n >= im->batch_max && (rc = s_flush(im)) > 0)
            return rc;
        if (kmx_cli_stop) {
            kmx_cli_error("interrupted");
            return KMX_EXIT_INPUT;
        }
    }
}

// Sends what atomic mode held back: nothing at all when a row already failed.
static int s_flush_atomic(s_import_t *im)
{
    if (im->nrejects > 0) {
        for (size_t i = 0; i < im->n; i++) {
            if (s_reject(im, im->lines[i], "", "not stored: another row was rejected") < 0)
                return KMX_EXIT_SERVER;
        }
        s_drop_batch(im);
        return 0;
    }
    Kmx__V1__Record **all = im->recs;
    size_t *all_lines = im->lines;
    size_t total = im->n;
    int rc = 0;
    for (size_t off = 0; off < total && rc == 0; off += im->batch_max) {
        im->recs = all + off;
        im->lines = all_lines + off;
        im->n = total - off < im->batch_max ? total - off : im->batch_max;
        rc = s_flush(im);
    }
    for (size_t i = 0; i < total; i++)
        kmx_import_record_free(&all[i]);
    im->recs = all;
    im->lines = all_lines;
    im->n = 0;
    return rc;
}

static int s_cmp_reject(const void *a, const void *b)
{
    const s_reject_t *x = a, *y = b;
    return (x->row > y->row) - (x->row < y->row);
}

static void s_print_summary(const s_import_t *im)
{
    size_t rejected = im->nrejects;
    if (im->tty)
        fputc('\n', stderr);
    if (im->opts->format == KMX_FORMAT_JSON) {
        printf("{\"rows\":%zu,\"stored\":%zu,\"unchanged\":%zu,\"rejected\":%zu,"
               "\"last_seq\":%" PRIu64 ",\"rejected_rows\":[",
               im->rows, im->stored, im->unchanged, rejected, im->last_seq);
        for (size_t i = 0; i < im->nrejects; i++) {
            printf("%s{\"row\":%zu,\"field\":", i ? "," : "", im->rejects[i].row);
            kmx_format_json_string(stdout, im->rejects[i].field);
            fputs(",\"reason\":", stdout);
            kmx_format_json_string(stdout, im->rejects[i].reason);
            fputc('}', stdout);
        }
        fputs("]}\n", stdout);
        return;
    }
    for (size_t i = 0; i < im->nrejects; i++) {
        const s_reject_t *r = &im->rejects[i];
        fprintf(stderr, "kmx: %s: row %zu: %s%s%s\n", im->path, r->row, r->field,
                *r->field ? ": " : "", r->reason);
    }
    printf("read %zu rows: %zu stored, %zu unchanged, %zu rejected\n", im->rows, im->stored,
           im->unchanged, rejected);
}

// Parses the import options. Returns -1 to continue, else an exit code.
static int s_import_options(s_import_t *im, int argc, char **argv)
{
    enum { O_BATCH = KMX_OPT_FIRST_COMMAND, O_ATOMIC };
    static const struct option longopts[] = {KMX_CLI_COMMON_OPTIONS,
                                             {"batch", required_argument, NULL, O_BATCH},
                                             {"atomic", no_argument, NULL, O_ATOMIC},
                                             {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        unsigned long long v = 0;
        int rc = kmx_cli_common_option(im->opts, opt, optarg);
        if (rc < 0)
            return KMX_EXIT_INPUT;
        if (rc > 0)
            continue;
        if (opt == O_ATOMIC)
            im->atomic = true;
        else if (opt == O_BATCH && kmx_cli_parse_u64(optarg, S_BATCH_MAX, &v) == 0 && v > 0)
            im->batch_max = (size_t)v;
        else {
            if (opt == O_BATCH)
                kmx_cli_error("--batch wants 1 to %d, not \"%s\"", S_BATCH_MAX, optarg);
            fputs(s_import_usage, stderr);
            return KMX_EXIT_INPUT;
        }
    }
    if (im->opts->help) {
        fputs(s_import_usage, stdout);
        return KMX_EXIT_OK;
    }
    if (optind + 1 != argc) {
        kmx_cli_error("import wants exactly one FILE");
        fputs(s_import_usage, stderr);
        return KMX_EXIT_INPUT;
    }
    im->path = argv[optind];
    return -1;
}

// Reads the header. Returns -1 to continue with *map set, else an exit code.
static int s_read_header(s_import_t *im, kmx_csv_reader_t *reader, kmx_import_t **map)
{
    const char **fields = NULL;
    size_t n = 0;
    int rc = kmx_csv_next(reader, &fields, &n);
    if (rc == 0) {
        kmx_cli_error("%s: empty file, expected a header row", im->path);
        return KMX_EXIT_INPUT;
    }
    if (rc < 0) {
        kmx_cli_error("%s: %s", im->path, kmx_csv_error(reader));
        return KMX_EXIT_INPUT;
    }
    kmx_import_error_t err;
    rc = kmx_import_new(fields, n, map, &err);
    if (rc == KMX_ERR_INVAL) {
        kmx_cli_error("%s: line %zu: %s", im->path, kmx_csv_line(reader), err.reason);
        return KMX_EXIT_INPUT;
    }
    if (rc < 0) {
        kmx_cli_error("out of memory");
        return KMX_EXIT_SERVER;
    }
    return -1;
}

static int s_import_file(s_import_t *im, FILE *file)
{
    kmx_csv_reader_t *reader = kmx_csv_reader_new(file);
    kmx_import_t *map = NULL;
    if (!reader) {
        kmx_cli_error("out of memory");
        return KMX_EXIT_SERVER;
    }
    int rc = s_read_header(im, reader, &map);
    if (rc < 0) {
        im->client = kmx_cli_connect(im->opts);
        rc = im->client ? -1 : KMX_EXIT_SERVER;
    }
    if (rc < 0)
        rc = s_read_rows(im, reader, map);
    if (rc < 0)
        rc = im->atomic ? s_flush_atomic(im) : s_flush(im);
    if (im->client && rc <= KMX_EXIT_OK) {
        if (im->nrejects > 1)
            qsort(im->rejects, im->nrejects, sizeof(*im->rejects), s_cmp_reject);
        s_print_summary(im);
        rc = im->nrejects > 0 ? KMX_EXIT_INPUT : KMX_EXIT_OK;
    } else if (im->client && rc == KMX_EXIT_SERVER) {
        s_print_summary(im);
    }
    kmx_import_destroy(&map);
    kmx_csv_reader_destroy(&reader);
    return rc;
}

int kmx_cli_import(kmx_cli_opts_t *opts, int argc, char **argv)
{
    s_import_t im;
    memset(&im, 0, sizeof(im));
    im.opts = opts;
    im.batch_max = S_BATCH_DEFAULT;
    int rc = s_import_options(&im, argc, argv);
    if (rc >= 0)
        return rc;
    im.tty = isatty(STDERR_FILENO) && opts->format != KMX_FORMAT_JSON;
    bool is_stdin = strcmp(im.path, "-") == 0;
    FILE *file = is_stdin ? stdin : fopen(im.path, "rb");
    if (!file) {
        kmx_cli_error("%s: cannot open: %s", im.path, strerror(errno));
        return KMX_EXIT_INPUT;
    }
    rc = s_import_file(&im, file);
    if (!is_stdin)
        fclose(file);
    s_drop_batch(&im);
    free(im.recs);
    free(im.lines);
    free(im.rejects);
    kmx_client_destroy(&im.client);
    return rc;
}

// ---- put --------------------------------------------------------------------------

static const char s_put_usage[] =
    "usage: kmx put --kind K --period P --market M --category C --item I [--company X]\n"
    "               [--artist X] --value V --unit U --source S [--status S] [--as-of D]\n"
    "               [--note T] [--url U] [--confidence C] [--format table|json]\n"
    "Stores one record through kmx.ingest and prints \"stored seq N\" or \"unchanged\".\n"
    "--dimension is an alias of --category, --series of --item.\n";

// The record columns put accepts, in kmx_import's names; flags spell '_' as '-'.
static const char *const s_put_columns[] = {
    "kind",   "period", "market", "category", "item",   "company",    "artist", "value",
    "unit",   "source", "status", "as_of",    "note",   "url",        "confidence",
};
#define S_PUT_NCOLS (sizeof(s_put_columns) / sizeof(s_put_columns[0]))

static int s_put_options(kmx_cli_opts_t *opts, int argc, char **argv, const char **cells)
{
    enum { O_FIRST = KMX_OPT_FIRST_COMMAND, O_DIMENSION = O_FIRST + S_PUT_NCOLS, O_SERIES };
    static const struct option longopts[] = {
        KMX_CLI_COMMON_OPTIONS,
        {"kind", required_argument, NULL, O_FIRST + 0},
        {"period", required_argument, NULL, O_FIRST + 1},
        {"market", required_argument, NULL, O_FIRST + 2},
        {"category", required_argument, NULL, O_FIRST + 3},
        {"item", required_argument, NULL, O_FIRST + 4},
        {"company", required_argument, NULL, O_FIRST + 5},
        {"artist", required_argument, NULL, O_FIRST + 6},
        {"value", required_argument, NULL, O_FIRST + 7},
        {"unit", required_argument, NULL, O_FIRST + 8},
        {"source", required_argument, NULL, O_FIRST + 9},
        {"status", required_argument, NULL, O_FIRST + 10},
        {"as-of", required_argument, NULL, O_FIRST + 11},
        {"note", required_argument, NULL, O_FIRST + 12},
        {"url", required_argument, NULL, O_FIRST + 13},
        {"confidence", required_argument, NULL, O_FIRST + 14},
        {"dimension", required_argument, NULL, O_DIMENSION},
        {"series", required_argument, NULL, O_SERIES},
        {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        int rc = kmx_cli_common_option(opts, opt, optarg);
        if (rc < 0)
            return KMX_EXIT_INPUT;
        if (rc > 0)
            continue;
        if (opt >= O_FIRST && opt < O_FIRST + (int)S_PUT_NCOLS)
            cells[opt - O_FIRST] = optarg;
        else if (opt == O_DIMENSION)
            cells[3] = optarg;
        else if (opt == O_SERIES)
            cells[4] = optarg;
        else {
            fputs(s_put_usage, stderr);
            return KMX_EXIT_INPUT;
        }
    }
    if (opts->help) {
        fputs(s_put_usage, stdout);
        return KMX_EXIT_OK;
    }
    if (optind != argc) {
        kmx_cli_error("put takes no positional arguments (\"%s\")", argv[optind]);
        return KMX_EXIT_INPUT;
    }
    return -1;
}

// Builds the record from the given flags. Returns -1 with *out set, else an exit code.
static int s_put_record(const char **cells, Kmx__V1__Record **out)
{
    const char *header[S_PUT_NCOLS];
    const char *row[S_PUT_NCOLS];
    size_t n = 0;
    for (size_t i = 0; i < S_PUT_NCOLS; i++) {
        if (cells[i]) {
            header[n] = s_put_columns[i];
            row[n++] = cells[i];
        }
    }
    kmx_import_t *map = NULL;
    kmx_import_error_t err;
    int rc = kmx_import_new(header, n, &map, &err);
    if (rc == 0)
        rc = kmx_import_row(map, row, n, 0, out, &err);
    kmx_import_destroy(&map);
    if (rc == KMX_ERR_INVAL) {
        char flag[KMX_IMPORT_COLUMN_MAX];
        snprintf(flag, sizeof(flag), "%s", err.column);
        for (char *p = flag; *p; p++)
            *p = *p == '_' ? '-' : *p;
        if (strstr(err.reason, "is missing"))
            kmx_cli_error("--%s is required", flag);
        else
            kmx_cli_error("--%s: %s", flag, err.reason);
        return KMX_EXIT_INPUT;
    }
    if (rc < 0) {
        kmx_cli_error("out of memory");
        return KMX_EXIT_SERVER;
    }
    return -1;
}

static int s_print_put_result(const kmx_cli_opts_t *opts, const Kmx__V1__PutResult *put)
{
    const Kmx__V1__RecordResult *r = put->n_results > 0 ? put->results[0] : NULL;
    bool rejected = put->rejected > 0 ||
                    (r && r->outcome == KMX__V1__RECORD_RESULT__OUTCOME__REJECTED);
    uint64_t seq = r && r->has_seq ? r->seq : put->last_seq;
    const char *outcome = rejected ? "rejected" : put->stored > 0 ? "stored" : "unchanged";
    if (opts->format == KMX_FORMAT_JSON) {
        printf("{\"outcome\":\"%s\",\"seq\":", outcome);
        if (!rejected && put->stored > 0)
            printf("%" PRIu64, seq);
        else
            fputs("null", stdout);
        fputs(",\"field\":", stdout);
        kmx_format_json_string(stdout, rejected && r ? r->field : NULL);
        fputs(",\"reason\":", stdout);
        kmx_format_json_string(stdout, rejected && r ? r->reason : NULL);
        fputs("}\n", stdout);
    } else if (!rejected) {
        if (put->stored > 0)
            printf("stored seq %" PRIu64 "\n", seq);
        else
            printf("unchanged\n");
    }
    if (rejected)
        kmx_cli_error("rejected: %s%s%s", r && r->field ? r->field : "",
                      r && r->field && *r->field ? ": " : "",
                      r && r->reason ? r->reason : "no reason given");
    return rejected ? KMX_EXIT_INPUT : KMX_EXIT_OK;
}

int kmx_cli_put(kmx_cli_opts_t *opts, int argc, char **argv)
{
    const char *cells[S_PUT_NCOLS] = {NULL};
    int rc = s_put_options(opts, argc, argv, cells);
    if (rc >= 0)
        return rc;
    Kmx__V1__Record *rec = NULL;
    rc = s_put_record(cells, &rec);
    if (rc >= 0)
        return rc;
    kmx_client_t *client = kmx_cli_connect(opts);
    if (!client) {
        kmx_import_record_free(&rec);
        return KMX_EXIT_SERVER;
    }
    Kmx__V1__Response *resp = NULL;
    rc = kmx_client_put(client, &rec, 1, false, &resp);
    if (rc == 0)
        rc = s_print_put_result(opts, resp->put);
    else if (rc == KMX_ERR_INVAL && resp && resp->error && resp->error->n_records > 0) {
        const Kmx__V1__RecordResult *r = resp->error->records[0];
        kmx_cli_error("rejected: %s: %s", r->field ? r->field : "",
                      r->reason ? r->reason : "");
        rc = KMX_EXIT_INPUT;
    } else
        rc = kmx_cli_call_failed(client, rc);
    if (resp)
        kmx__v1__response__free_unpacked(resp, NULL);
    kmx_import_record_free(&rec);
    kmx_client_destroy(&client);
    return rc;
}
