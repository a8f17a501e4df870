/*  kmx import and kmx put: the commands that store records. import streams a CSV or
    JSON Lines file to kmx.ingest as raw document chunks (the server parses, so every
    client gets the same rules); several chunks are in flight at once, one per sender
    thread, so several ingest workers can be busy. put builds one record with kmx_import
    so a command-line flag is parsed by the same rules as a CSV cell.  */
#include "kmx_cli.h"

#include "kmx_csv.h"
#include "kmx_err.h"
#include "kmx_iargs.h"
#include "kmx_import.h"
#include "kmx_json.h"
#include "kmx_mem.h"
#include "kmx_period.h"
#include "kmx_record.h"
#include "kmx_text.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define S_BATCH_DEFAULT 5000               // rows per chunk
#define S_BATCH_MAX 100000                 // the server's KMX_DOC_RECORDS_MAX
#define S_CHUNK_BYTES (8u * 1024u * 1024u) // bytes per chunk before it is sent early
#define S_JOBS_DEFAULT 4                   // chunks in flight
#define S_JOBS_MAX 32
#define S_REJECTS_KEPT 100000 // rejections listed in full; the rest are only counted
#define S_PREVIEW 10          // records a dry run shows
#define S_WARNINGS_MAX 64     // distinct warnings kept
#define S_CELLS_MAX 100000    // the server's KMX_DOC_RECORDS_MAX: records one chunk may yield

typedef kmx_json_reject_t s_reject_t;

// One piece of the file: whole rows, with the file line of its first line.
typedef struct s_chunk {
    char *data;           // the rows' bytes, malloc'd
    size_t len;           // bytes in data
    size_t cap;           // capacity of data
    uint32_t first_line;  // file line of data's first line
    size_t rows;          // rows in it
    bool first;           // the file's first chunk (a dry run previews its records)
    struct s_chunk *next; // queue link
} s_chunk_t;

typedef struct {
    kmx_cli_opts_t *opts; // global options
    const char *path;     // the file, for messages
    bool jsonl;           // JSON Lines rather than CSV
    bool atomic;          // whole import or nothing
    bool dry_run;         // validate only
    bool tty;             // stderr is a terminal: show progress
    size_t batch_max;     // rows per chunk
    int jobs;             // sender threads
    kmx_iargs_t read;     // --encoding, --delimiter, --map, --default, --wide, ...
    char *header;         // CSV header line (no line break), malloc'd
    bool header_utf8;     // the header is valid UTF-8 (sent as text, else as bytes)
    off_t file_size;      // for the progress bar; 0 when unknown
    // Shared with the sender threads, under lock:
    pthread_mutex_t lock;           // guards what follows
    pthread_cond_t changed;         // queue or state changed
    s_chunk_t *head, *tail;         // chunks waiting to be sent
    size_t queued;                  // chunks in the queue
    bool reading_done;              // no more chunks will come
    bool validate_pass;             // this pass only validates (atomic pass 1, dry run)
    int failed;                     // an exit code once a chunk failed beyond its rows
    char fail_msg[1200];            // what failed
    size_t rows;                    // rows the server read
    size_t stored;                  // records stored
    size_t unchanged;               // records already stored
    size_t rejected;                // records rejected
    size_t duplicates;              // of them, repeats inside a chunk
    uint64_t last_seq;              // newest sequence reported
    s_reject_t *rejects;            // rejected rows (at most S_REJECTS_KEPT)
    size_t nrejects;                // entries in rejects
    size_t rejects_cap;             // capacity of rejects
    off_t bytes_read;               // bytes of the file read so far
    uint64_t retries;               // tries beyond the first the senders needed
    size_t skipped;                 // wide files: empty and "-" cells skipped
    size_t records;                 // records the rows yielded (wide: one per cell)
    char *warnings[S_WARNINGS_MAX]; // distinct warnings from the server, malloc'd
    size_t n_warnings;              // entries in warnings
    char encoding_read[16];         // the encoding the server read, or ""
    uint8_t *preview[S_PREVIEW];    // dry run: the first records, packed, malloc'd
    size_t preview_len[S_PREVIEW];  // bytes of each
    size_t n_preview;               // records in preview
} s_import_t;

#define S_IMPORT_DEADLINE_MS 60000 // how long one chunk may be retried unless --deadline says

static const char s_import_usage[] =
    "usage: kmx import FILE [--input csv|jsonl] [--batch N] [--jobs N] [--atomic] [--dry-run]\n"
    "                  [--default COLUMN=VALUE]... [--map HEADER=FIELD]... [--ignore-extra]\n"
    "                  [--encoding auto|utf-8|cp949] [--delimiter ,|;|tab|pipe]\n"
    "                  [--wide|--long] [--date-order mdy|dmy] [--excel-dates]\n"
    "                  [--format table|json]\n"
    "Sends a CSV file (header row first; see docs/cli.md for columns) or a JSON Lines file\n"
    "(one flat object per line) to kmx.ingest, which parses and stores it, N rows per\n"
    "request (default 5000), with up to --jobs requests in flight (default 4). FILE '-'\n"
    "reads stdin. --input defaults from the extension (.jsonl, .ndjson: JSON Lines).\n"
    "--default fills a column the file leaves out or empty (e.g. --default source=KOCCA).\n"
    "--map gives a header any field (or 'ignore'); --ignore-extra drops unknown columns,\n"
    "each named in a warning. --encoding defaults to auto (UTF-8, else CP949/EUC-KR),\n"
    "--delimiter to the header line's. A file with a column per period is read as wide\n"
    "(one record per cell) unless --long. --date-order reads 1/2/2024; --excel-dates\n"
    "reads serial day numbers.\n"
    "--atomic checks the whole file first and stores nothing if any row is bad.\n"
    "--dry-run only checks and shows the first records as they would be stored.\n"
    "Exit 0 when every row was stored or unchanged, 1 when any was rejected (or the file\n"
    "was refused), 2 when the server could not be reached or failed.\n";

// ---- results (called with the lock held) ------------------------------------------

static void s_add_reject(s_import_t *im, uint32_t row, const char *field, const char *reason) {
    if (im->nrejects >= S_REJECTS_KEPT)
        return;
    if (kmx_reserve((void **)&im->rejects, &im->rejects_cap, im->nrejects, sizeof *im->rejects,
                    64) != 0)
        return; // counted, not listed
    s_reject_t *r = &im->rejects[im->nrejects++];
    r->row = row;
    snprintf(r->field, sizeof(r->field), "%s", field ? field : "");
    snprintf(r->reason, sizeof(r->reason), "%s", reason && *reason ? reason : "rejected");
}

static void s_add_results(s_import_t *im, Kmx__V1__RecordResult **results, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const Kmx__V1__RecordResult *r = results[i];
        if (r && r->outcome == KMX__V1__RECORD_RESULT__OUTCOME__REJECTED)
            s_add_reject(im, r->has_row ? r->row : 0, r->column ? r->column : r->field, r->reason);
    }
}

// Keeps the warnings not seen yet (every chunk repeats the header's).
static void s_add_warnings(s_import_t *im, char **warnings, size_t n) {
    for (size_t i = 0; i < n && im->n_warnings < S_WARNINGS_MAX; i++) {
        bool seen = false;
        for (size_t k = 0; k < im->n_warnings && !seen; k++)
            seen = strcmp(im->warnings[k], warnings[i]) == 0;
        if (!seen && (im->warnings[im->n_warnings] = strdup(warnings[i])) != NULL)
            im->n_warnings++;
    }
}

static void s_keep_preview(s_import_t *im, Kmx__V1__Record **recs, size_t n) {
    for (size_t i = 0; i < n && im->n_preview < S_PREVIEW; i++) {
        size_t len = kmx__v1__record__get_packed_size(recs[i]);
        uint8_t *buf = malloc(len ? len : 1);
        if (!buf)
            return;
        kmx__v1__record__pack(recs[i], buf);
        im->preview[im->n_preview] = buf;
        im->preview_len[im->n_preview++] = len;
    }
}

static void s_on_put_result(s_import_t *im, const Kmx__V1__PutResult *put) {
    im->skipped += put->skipped;
    im->records += put->has_cells ? put->cells : put->records;
    s_add_warnings(im, put->warnings, put->n_warnings);
    if (put->encoding)
        snprintf(im->encoding_read, sizeof im->encoding_read, "%s", put->encoding);
    s_keep_preview(im, put->preview, put->n_preview);
    im->rows += put->records;
    im->stored += put->stored;
    im->unchanged += put->unchanged;
    im->rejected += put->rejected;
    im->duplicates += put->duplicates;
    if (put->last_seq > im->last_seq)
        im->last_seq = put->last_seq;
    s_add_results(im, put->results, put->n_results);
}

// An Error reply: an atomic chunk refused for its rows, or a failure of the chunk.
static void s_on_error(s_import_t *im, const s_chunk_t *c, const Kmx__V1__Error *err, int rc) {
    if (rc == KMX_ERR_INVAL && err->n_records > 0) {
        im->rows += c->rows;
        im->rejected += err->n_records;
        for (size_t i = 0; i < err->n_records; i++)
            im->duplicates += err->records[i]->has_duplicate_of;
        s_add_results(im, err->records, err->n_records);
        return;
    }
    if (!im->failed) {
        im->failed =
            rc == KMX_ERR_INVAL || rc == KMX_ERR_TOO_BIG ? KMX_EXIT_INPUT : KMX_EXIT_SERVER;
        const char *msg = err->message && *err->message ? err->message : kmx_strerror(rc);
        // The header is every chunk's: its refusal is the file's, not that chunk's rows'.
        if (strncmp(msg, "header", 6) == 0)
            snprintf(im->fail_msg, sizeof(im->fail_msg), "%s", msg);
        else
            snprintf(im->fail_msg, sizeof(im->fail_msg), "rows from line %u: %s", c->first_line,
                     msg);
    }
}

// ---- sender threads ---------------------------------------------------------------

static int s_send_chunk(s_import_t *im, kmx_client_t *client, const s_chunk_t *c, bool validate) {
    Kmx__V1__RawDocument doc = KMX__V1__RAW_DOCUMENT__INIT;
    doc.has_format = 1;
    doc.format =
        im->jsonl ? KMX__V1__RAW_DOCUMENT__FORMAT__JSONL : KMX__V1__RAW_DOCUMENT__FORMAT__CSV;
    doc.has_data = 1;
    doc.data.data = (uint8_t *)c->data;
    doc.data.len = c->len;
    doc.has_atomic = doc.atomic = im->atomic;
    if (im->header_utf8) {
        doc.header = im->header;
    } else if (im->header) {
        doc.has_header_data = 1;
        doc.header_data.data = (uint8_t *)im->header;
        doc.header_data.len = strlen(im->header);
    }
    kmx_iargs_apply(&im->read, &doc);
    doc.has_preview = validate && im->dry_run && c->first;
    doc.preview = S_PREVIEW;
    doc.has_first_line = 1;
    doc.first_line = c->first_line;
    doc.has_validate_only = doc.validate_only = validate;
    Kmx__V1__Request req = KMX__V1__REQUEST__INIT;
    req.body_case = KMX__V1__REQUEST__BODY_DOCUMENT;
    req.document = &doc;
    Kmx__V1__Response *resp = NULL;
    int rc = kmx_client_call(client, KMX_SERVICE_INGEST, &req, &resp);
    pthread_mutex_lock(&im->lock);
    if (rc == 0 && resp->result_case == KMX__V1__RESPONSE__RESULT_PUT)
        s_on_put_result(im, resp->put);
    else if (resp && resp->result_case == KMX__V1__RESPONSE__RESULT_ERROR)
        s_on_error(im, c, resp->error, rc);
    else if (!im->failed) {
        im->failed = KMX_EXIT_SERVER;
        snprintf(im->fail_msg, sizeof(im->fail_msg), "rows from line %u: %s", c->first_line,
                 rc == KMX_ERR_TIMEOUT ? "kmx.ingest did not answer (is the broker running?)"
                                       : kmx_client_last_error(client));
    }
    pthread_cond_broadcast(&im->changed);
    pthread_mutex_unlock(&im->lock);
    if (resp)
        kmx__v1__response__free_unpacked(resp, NULL);
    return rc;
}

static void s_chunk_free(s_chunk_t *c) {
    if (c) {
        free(c->data);
        free(c);
    }
}

static void *s_sender(void *arg) {
    s_import_t *im = arg;
    kmx_client_t *client = kmx_client_new(im->opts->broker, im->opts->timeout_ms, im->opts->tries);
    if (client)
        kmx_client_set_deadline(client, im->opts->deadline_ms >= 0 ? im->opts->deadline_ms
                                                                   : S_IMPORT_DEADLINE_MS);
    for (;;) {
        pthread_mutex_lock(&im->lock);
        while (!im->head && !im->reading_done)
            pthread_cond_wait(&im->changed, &im->lock);
        s_chunk_t *c = im->head;
        if (c) {
            im->head = c->next;
            im->tail = im->head ? im->tail : NULL;
            im->queued--;
            pthread_cond_broadcast(&im->changed);
        }
        bool skip = im->failed != 0 || !client;
        if (!client && !im->failed) {
            im->failed = KMX_EXIT_SERVER;
            snprintf(im->fail_msg, sizeof(im->fail_msg), "cannot connect to %s", im->opts->broker);
        }
        bool validate = im->validate_pass;
        pthread_mutex_unlock(&im->lock);
        if (!c)
            break;
        if (!skip)
            s_send_chunk(im, client, c, validate);
        s_chunk_free(c);
    }
    if (client) {
        pthread_mutex_lock(&im->lock);
        im->retries += kmx_client_retries(client);
        pthread_mutex_unlock(&im->lock);
    }
    kmx_client_destroy(&client);
    return NULL;
}

// ---- reading ----------------------------------------------------------------------

// Counts the quotes in a CSV line: an odd total so far means a quoted field is open.
static bool s_quote_open(bool open, const char *line, size_t len) {
    for (size_t i = 0; i < len; i++)
        open ^= line[i] == '"';
    return open;
}

static double s_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void s_progress(s_import_t *im, bool final) {
    if (!im->tty)
        return;
    pthread_mutex_lock(&im->lock);
    size_t rows = im->rows, stored = im->stored, unchanged = im->unchanged;
    size_t rejected = im->rejected;
    off_t done = im->bytes_read;
    pthread_mutex_unlock(&im->lock);
    int pct = im->file_size > 0 ? (int)(done * 100 / im->file_size) : 0;
    char bar[31];
    for (int i = 0; i < 30; i++)
        bar[i] = i < pct * 30 / 100 ? '=' : (i == pct * 30 / 100 ? '>' : ' ');
    bar[30] = '\0';
    fprintf(stderr, "\r%s[%s] %3d%% %zu rows: %zu stored, %zu unchanged, %zu rejected",
            im->validate_pass ? "checking " : "", bar, pct, rows, stored, unchanged, rejected);
    if (final)
        fputc('\n', stderr);
}

// Hands a chunk to the senders, waiting while the queue is full. Takes *c.
static void s_enqueue(s_import_t *im, s_chunk_t **c) {
    pthread_mutex_lock(&im->lock);
    while (im->queued >= (size_t)im->jobs && !im->failed)
        pthread_cond_wait(&im->changed, &im->lock);
    (*c)->next = NULL;
    if (im->tail)
        im->tail->next = *c;
    else
        im->head = *c;
    im->tail = *c;
    im->queued++;
    *c = NULL;
    pthread_cond_broadcast(&im->changed);
    pthread_mutex_unlock(&im->lock);
}

static int s_append(s_chunk_t *c, const char *line, size_t len) {
    if (c->len + len + 1 > c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64 * 1024;
        while (cap < c->len + len + 1)
            cap *= 2;
        char *grown = realloc(c->data, cap);
        if (!grown)
            return KMX_ERR_NOMEM;
        c->data = grown;
        c->cap = cap;
    }
    memcpy(c->data + c->len, line, len);
    c->len += len;
    return 0;
}

// A wide file yields a record per cell, and the server takes at most S_CELLS_MAX records
// per document: a chunk holds at most that many cells. The header also decides how it is
// sent (UTF-8 text, or bytes for the server to convert).
static void s_bound_chunk_rows(s_import_t *im, size_t len) {
    const char *d = im->read.delimiter;
    char delim = d && strlen(d) == 1                    ? d[0]
                 : d && strcasecmp(d, "tab") == 0       ? '\t'
                 : d && strcasecmp(d, "semicolon") == 0 ? ';'
                 : d && strcasecmp(d, "pipe") == 0      ? '|'
                                                        : kmx_csv_detect_delimiter(im->header, len);
    size_t cols = kmx_csv_field_at(im->header, len, len, delim);
    size_t rows = S_CELLS_MAX / (cols ? cols : 1);
    if (rows < im->batch_max)
        im->batch_max = rows ? rows : 1;
    im->header_utf8 = kmx_text_is_utf8(im->header, len);
}

// Reads the file into chunks of whole rows. Returns -1 when read through, else an exit
// code. The first CSV row becomes im->header.
static int s_read_chunks(s_import_t *im, FILE *file) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    uint32_t lineno = 0;
    bool open = false, need_header = !im->jsonl && !im->header, first_chunk = true;
    s_chunk_t *c = NULL;
    int rc = -1;
    double last = 0;
    while ((n = getline(&line, &cap, file)) > 0 && rc < 0) {
        lineno++;
        const char *text = line;
        if (lineno == 1 && n >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
            text += 3; // a UTF-8 byte order mark
            n -= 3;
        }
        if (need_header) {
            // A header's quoted names do not span lines in practice; keep it one line.
            size_t hl = (size_t)n;
            while (hl > 0 && (text[hl - 1] == '\n' || text[hl - 1] == '\r'))
                hl--;
            im->header = strndup(text, hl);
            need_header = false;
            if (!im->header)
                rc = KMX_EXIT_SERVER;
            else
                s_bound_chunk_rows(im, hl);
            continue;
        }
        if (!c) {
            c = calloc(1, sizeof(*c));
            if (!c) {
                rc = KMX_EXIT_SERVER;
                break;
            }
            c->first_line = lineno;
            c->first = first_chunk;
            first_chunk = false;
        }
        if (s_append(c, text, (size_t)n) != 0) {
            rc = KMX_EXIT_SERVER;
            break;
        }
        bool was_open = open;
        open = !im->jsonl && s_quote_open(open, text, (size_t)n);
        if (!was_open)
            c->rows++;
        pthread_mutex_lock(&im->lock);
        im->bytes_read += n;
        bool failed = im->failed != 0;
        pthread_mutex_unlock(&im->lock);
        if (failed || kmx_cli_stop)
            rc = failed ? 0 : KMX_EXIT_INPUT;
        if (!open && (c->rows >= im->batch_max || c->len >= S_CHUNK_BYTES))
            s_enqueue(im, &c);
        if (s_now() - last > 0.2) {
            s_progress(im, false);
            last = s_now();
        }
    }
    if (rc < 0 && ferror(file)) {
        kmx_cli_error("%s: read error: %s", im->path, strerror(errno));
        rc = KMX_EXIT_INPUT;
    }
    if (c && c->len > 0 && rc < 0)
        s_enqueue(im, &c);
    s_chunk_free(c);
    free(line);
    if (rc == 0)
        rc = -1; // a sender failed: the caller reports it
    if (rc == KMX_EXIT_INPUT && kmx_cli_stop)
        kmx_cli_error("interrupted");
    return rc;
}

// Runs one pass over the file with the sender threads. Returns -1 or an exit code.
static int s_pass(s_import_t *im, FILE *file, bool validate) {
    pthread_t threads[S_JOBS_MAX];
    im->validate_pass = validate;
    im->reading_done = false;
    im->bytes_read = 0;
    int started = 0;
    for (; started < im->jobs; started++) {
        if (pthread_create(&threads[started], NULL, s_sender, im) != 0)
            break;
    }
    int rc = started > 0 ? s_read_chunks(im, file) : KMX_EXIT_SERVER;
    pthread_mutex_lock(&im->lock);
    im->reading_done = true;
    pthread_cond_broadcast(&im->changed);
    pthread_mutex_unlock(&im->lock);
    for (int i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    s_progress(im, true);
    return rc;
}

// ---- options and summary ----------------------------------------------------------

// The import options beyond the common ones.
enum {
    O_BATCH = KMX_OPT_FIRST_COMMAND,
    O_ATOMIC,
    O_INPUT,
    O_JOBS,
    O_DEFAULT,
    O_DRY,
    O_MAP,
    O_IGNORE_EXTRA,
    O_ENCODING,
    O_DELIMITER,
    O_WIDE,
    O_LONG,
    O_DATE_ORDER,
    O_EXCEL_DATES,
};

// The options saying how the file is read (kmx_iargs), named as kmx-gateway's
// /v1/import names them.
static int s_read_option(s_import_t *im, int opt, const char *arg) {
    const char *name = opt == O_DEFAULT        ? "default"
                       : opt == O_MAP          ? "map"
                       : opt == O_IGNORE_EXTRA ? "ignore-extra"
                       : opt == O_ENCODING     ? "encoding"
                       : opt == O_DELIMITER    ? "delimiter"
                       : opt == O_DATE_ORDER   ? "date-order"
                       : opt == O_EXCEL_DATES  ? "excel-dates"
                                               : "layout";
    if (opt == O_WIDE || opt == O_LONG)
        arg = opt == O_WIDE ? "wide" : "long";
    if (kmx_iargs_set(&im->read, name, arg) == 0)
        return 0;
    kmx_cli_error("--%s", im->read.err);
    return KMX_ERR_INVAL;
}

static int s_import_option(s_import_t *im, int opt, char *arg) {
    unsigned long long v = 0;
    if (opt == O_ATOMIC)
        im->atomic = true;
    else if (opt == O_DRY)
        im->dry_run = true;
    else if (opt == O_DEFAULT || opt == O_MAP || opt == O_IGNORE_EXTRA || opt == O_ENCODING ||
             opt == O_DELIMITER || opt == O_WIDE || opt == O_LONG || opt == O_DATE_ORDER ||
             opt == O_EXCEL_DATES)
        return s_read_option(im, opt, arg);
    else if (opt == O_BATCH && kmx_cli_parse_u64(arg, S_BATCH_MAX, &v) == 0 && v > 0)
        im->batch_max = (size_t)v;
    else if (opt == O_JOBS && kmx_cli_parse_u64(arg, S_JOBS_MAX, &v) == 0 && v > 0)
        im->jobs = (int)v;
    else if (opt == O_INPUT && (strcmp(arg, "csv") == 0 || strcmp(arg, "jsonl") == 0))
        im->jsonl = strcmp(arg, "jsonl") == 0;
    else {
        if (opt == O_BATCH)
            kmx_cli_error("--batch wants 1 to %d, not \"%s\"", S_BATCH_MAX, arg);
        else if (opt == O_JOBS)
            kmx_cli_error("--jobs wants 1 to %d, not \"%s\"", S_JOBS_MAX, arg);
        else if (opt == O_INPUT)
            kmx_cli_error("--input wants csv or jsonl, not \"%s\"", arg);
        return KMX_ERR_INVAL;
    }
    return 0;
}

static bool s_has_suffix(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcasecmp(s + n - k, suffix) == 0;
}

// Parses the import options. Returns -1 to continue, else an exit code.
static int s_import_options(s_import_t *im, int argc, char **argv) {
    static const struct option longopts[] = {KMX_CLI_COMMON_OPTIONS,
                                             {"batch", required_argument, NULL, O_BATCH},
                                             {"atomic", no_argument, NULL, O_ATOMIC},
                                             {"input", required_argument, NULL, O_INPUT},
                                             {"jobs", required_argument, NULL, O_JOBS},
                                             {"default", required_argument, NULL, O_DEFAULT},
                                             {"dry-run", no_argument, NULL, O_DRY},
                                             {"map", required_argument, NULL, O_MAP},
                                             {"ignore-extra", no_argument, NULL, O_IGNORE_EXTRA},
                                             {"encoding", required_argument, NULL, O_ENCODING},
                                             {"delimiter", required_argument, NULL, O_DELIMITER},
                                             {"wide", no_argument, NULL, O_WIDE},
                                             {"long", no_argument, NULL, O_LONG},
                                             {"date-order", required_argument, NULL, O_DATE_ORDER},
                                             {"excel-dates", no_argument, NULL, O_EXCEL_DATES},
                                             {NULL, 0, NULL, 0}};
    int opt;
    int input_set = 0;
    while ((opt = kmx_cli_getopt(argc, argv, "h", longopts)) != -1) {
        int rc = kmx_cli_common_option(im->opts, opt, optarg);
        if (rc < 0)
            return KMX_EXIT_INPUT;
        if (rc > 0)
            continue;
        input_set |= opt == O_INPUT;
        if (opt == '?' || s_import_option(im, opt, optarg) != 0) {
            fputs(s_import_usage, stderr);
            return KMX_EXIT_INPUT;
        }
    }
    if (im->opts->help) {
        fputs(s_import_usage, stdout);
        return KMX_EXIT_OK;
    }
    int refused =
        kmx_cli_refuse_csv(im->opts, "import", " (--input csv|jsonl names the file's format)");
    if (refused >= 0)
        return refused;
    if (optind + 1 != argc) {
        kmx_cli_error("import wants exactly one FILE");
        fputs(s_import_usage, stderr);
        return KMX_EXIT_INPUT;
    }
    im->path = argv[optind];
    if (!input_set)
        im->jsonl = s_has_suffix(im->path, ".jsonl") || s_has_suffix(im->path, ".ndjson");
    return -1;
}

static int s_cmp_reject(const void *a, const void *b) {
    const s_reject_t *x = a, *y = b;
    return (x->row > y->row) - (x->row < y->row);
}

// Adds the dry run's first records to the summary's preview array.
static void s_preview_json(const s_import_t *im, json_t *array) {
    for (size_t i = 0; array && i < im->n_preview; i++) {
        Kmx__V1__Record *rec = kmx__v1__record__unpack(NULL, im->preview_len[i], im->preview[i]);
        if (!rec)
            continue;
        kmx_format_record_t fr;
        kmx_format_record_init(&fr, rec, 0, 0);
        json_array_append_new(array, kmx_json_record(&fr));
        kmx__v1__record__free_unpacked(rec, NULL);
    }
}

// The import summary (kmx_json_import) with how the file was read: the records its rows
// yielded, the cells skipped, the encoding, warnings, the dry run's first records, and
// error, NULL unless the file was refused whole.
static void s_print_json(const s_import_t *im, double seconds, bool nothing_stored,
                         const char *error) {
    bool refused = nothing_stored && im->atomic && im->rejected > 0;
    kmx_json_import_t sum = {im->rows,       im->stored,   im->unchanged, im->rejected,
                             im->duplicates, im->last_seq, seconds,       refused,
                             im->dry_run,    im->rejects,  im->nrejects,  im->retries};
    json_t *doc = kmx_json_import(&sum);
    json_t *preview = json_array();
    s_preview_json(im, preview);
    kmx_json_import_read_t read = {
        im->records,  im->skipped,    im->encoding_read[0] ? im->encoding_read : NULL,
        im->warnings, im->n_warnings, preview,
        error};
    kmx_json_import_read(doc, &read);
    if (!doc || kmx_json_dumpf(doc, stdout) < 0)
        kmx_cli_error("out of memory");
    json_decref(doc);
    fputc('\n', stdout);
}

// Prints the dry run's first records as a table on stdout.
static void s_preview_table(const s_import_t *im) {
    static const size_t cols[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    const char *names[sizeof cols / sizeof cols[0]];
    for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++)
        names[i] = kmx_format_record_columns[cols[i]];
    kmx_format_table_t *table = kmx_format_table_new(names, sizeof cols / sizeof cols[0]);
    for (size_t i = 0; table && i < im->n_preview; i++) {
        Kmx__V1__Record *rec = kmx__v1__record__unpack(NULL, im->preview_len[i], im->preview[i]);
        if (!rec)
            continue;
        kmx_format_record_t fr;
        kmx_format_record_init(&fr, rec, 0, 0);
        const char *cells[sizeof cols / sizeof cols[0]];
        for (size_t k = 0; k < sizeof cols / sizeof cols[0]; k++)
            cells[k] = fr.cells[cols[k]];
        kmx_format_table_add(table, cells);
        kmx__v1__record__free_unpacked(rec, NULL);
    }
    if (table && im->n_preview > 0) {
        printf("first %zu records as they would be stored:\n", im->n_preview);
        kmx_format_table_print(table, stdout);
    }
    kmx_format_table_destroy(&table);
}

static void s_print_summary(const s_import_t *im, double seconds, bool nothing_stored,
                            const char *error) {
    double rate = seconds > 0 ? (double)im->rows / seconds : 0;
    if (im->opts->format == KMX_FORMAT_JSON) {
        s_print_json(im, seconds, nothing_stored, error);
        return;
    }
    for (size_t i = 0; i < im->n_warnings; i++)
        fprintf(stderr, "kmx: %s: warning: %s\n", im->path, im->warnings[i]);
    for (size_t i = 0; i < im->nrejects; i++) {
        const s_reject_t *r = &im->rejects[i];
        fprintf(stderr, "kmx: %s: row %u: %s%s%s\n", im->path, r->row, r->field,
                *r->field ? ": " : "", r->reason);
    }
    if (im->rejected > im->nrejects)
        fprintf(stderr, "kmx: %s: ... and %zu more rejected rows\n", im->path,
                im->rejected - im->nrejects);
    if (nothing_stored)
        fprintf(stderr, "kmx: %s: %s: nothing was stored\n", im->path,
                im->dry_run ? "dry run" : "atomic import refused");
    if (error)
        return;
    s_preview_table(im);
    printf("read %zu rows: %zu stored, %zu unchanged, %zu rejected", im->rows, im->stored,
           im->unchanged, im->rejected);
    if (im->duplicates)
        printf(" (%zu repeated)", im->duplicates);
    if (im->records != im->rows)
        printf("; %zu records from the cells", im->records);
    if (im->skipped)
        printf(", %zu empty or \"-\" cells skipped", im->skipped);
    bool cells = im->records != im->rows;
    if (cells)
        rate = seconds > 0 ? (double)im->records / seconds : 0;
    printf(" in %.1f s (%.0f %s/s)", seconds, rate, cells ? "records" : "rows");
    if (im->retries)
        printf(", %" PRIu64 " retries", im->retries);
    putchar('\n');
}

// Copies stdin to an unlinked temporary file, so an atomic import can read it twice.
static FILE *s_spool_stdin(void) {
    FILE *tmp = tmpfile();
    char buf[65536];
    size_t n;
    while (tmp && (n = fread(buf, 1, sizeof(buf), stdin)) > 0) {
        if (fwrite(buf, 1, n, tmp) != n) {
            fclose(tmp);
            return NULL;
        }
    }
    if (tmp)
        rewind(tmp);
    return tmp;
}

// Atomic: a validating pass over the whole file, then the storing pass if it was clean.
static int s_run(s_import_t *im, FILE *file, bool *nothing_stored) {
    bool check_first = im->atomic || im->dry_run;
    int rc = s_pass(im, file, check_first);
    if (rc >= 0 || im->failed || !check_first)
        return rc;
    if (im->rejected > 0 || im->dry_run) {
        *nothing_stored = true;
        return -1;
    }
    rewind(file);
    free(im->header);
    im->header = NULL;
    im->rows = im->records = im->skipped = 0;
    return s_pass(im, file, false);
}

static int s_import_file(s_import_t *im, FILE *file) {
    double t0 = s_now();
    bool nothing_stored = false;
    int rc = s_run(im, file, &nothing_stored);
    double seconds = s_now() - t0;
    char error[sizeof im->fail_msg + 64] = "";
    if (im->failed) {
        snprintf(error, sizeof error, "%s", im->fail_msg);
        if (rc < 0)
            rc = im->failed;
    }
    if (rc < 0 && !im->jsonl && !im->header) {
        snprintf(error, sizeof error, "empty file, expected a header row");
        rc = KMX_EXIT_INPUT;
    }
    if (error[0])
        kmx_cli_error("%s: %s", im->path, error);
    if (im->nrejects > 1)
        qsort(im->rejects, im->nrejects, sizeof(*im->rejects), s_cmp_reject);
    // JSON always prints its one object, a refused file included.
    if (rc < 0 || rc == KMX_EXIT_SERVER || im->rows > 0 || im->opts->format == KMX_FORMAT_JSON)
        s_print_summary(im, seconds, nothing_stored, error[0] ? error : NULL);
    if (rc < 0)
        rc = im->rejected > 0 ? KMX_EXIT_INPUT : KMX_EXIT_OK;
    return rc;
}

static void s_import_free(s_import_t *im) {
    free(im->header);
    free(im->rejects);
    for (size_t i = 0; i < im->n_warnings; i++)
        free(im->warnings[i]);
    for (size_t i = 0; i < im->n_preview; i++)
        free(im->preview[i]);
    kmx_iargs_fini(&im->read);
}

int kmx_cli_import(kmx_cli_opts_t *opts, int argc, char **argv) {
    s_import_t im;
    memset(&im, 0, sizeof(im));
    im.opts = opts;
    im.batch_max = S_BATCH_DEFAULT;
    im.jobs = S_JOBS_DEFAULT;
    kmx_iargs_init(&im.read);
    int rc = s_import_options(&im, argc, argv);
    if (rc >= 0) {
        kmx_iargs_fini(&im.read);
        return rc;
    }
    im.tty = isatty(STDERR_FILENO) && opts->format != KMX_FORMAT_JSON;
    bool is_stdin = strcmp(im.path, "-") == 0;
    FILE *file = NULL;
    if (is_stdin)
        file = im.atomic || im.dry_run ? s_spool_stdin() : stdin;
    else
        file = fopen(im.path, "rb");
    if (!file) {
        char error[300];
        snprintf(error, sizeof error, "cannot open: %s", strerror(errno));
        kmx_cli_error("%s: %s", im.path, error);
        if (opts->format == KMX_FORMAT_JSON)
            s_print_json(&im, 0, false, error);
        kmx_iargs_fini(&im.read);
        return KMX_EXIT_INPUT;
    }
    struct stat st;
    if (fstat(fileno(file), &st) == 0 && S_ISREG(st.st_mode))
        im.file_size = st.st_size;
    pthread_mutex_init(&im.lock, NULL);
    pthread_cond_init(&im.changed, NULL);
    rc = s_import_file(&im, file);
    pthread_cond_destroy(&im.changed);
    pthread_mutex_destroy(&im.lock);
    if (file != stdin)
        fclose(file);
    s_import_free(&im);
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
    "kind", "period", "market", "category", "item", "company", "artist",     "value",
    "unit", "source", "status", "as_of",    "note", "url",     "confidence",
};
#define S_PUT_NCOLS (sizeof(s_put_columns) / sizeof(s_put_columns[0]))

static int s_put_options(kmx_cli_opts_t *opts, int argc, char **argv, const char **cells,
                         const char *usage) {
    enum { O_FIRST = KMX_OPT_FIRST_COMMAND, O_DIMENSION = O_FIRST + S_PUT_NCOLS, O_SERIES };
    static const struct option longopts[] = {KMX_CLI_COMMON_OPTIONS,
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
    while ((opt = kmx_cli_getopt(argc, argv, "h", longopts)) != -1) {
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
            fputs(usage, stderr);
            return KMX_EXIT_INPUT;
        }
    }
    if (opts->help) {
        fputs(usage, stdout);
        return KMX_EXIT_OK;
    }
    if (optind != argc) {
        kmx_cli_error("this command takes no positional arguments (\"%s\")", argv[optind]);
        return KMX_EXIT_INPUT;
    }
    return kmx_cli_refuse_csv(opts, argv[0], NULL);
}

// Builds the record from the given flags. Returns -1 with *out set, else an exit code.
static int s_put_record(const char **cells, Kmx__V1__Record **out) {
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

static int s_print_put_result(const kmx_cli_opts_t *opts, const Kmx__V1__PutResult *put) {
    const Kmx__V1__RecordResult *r = put->n_results > 0 ? put->results[0] : NULL;
    bool rejected =
        put->rejected > 0 || (r && r->outcome == KMX__V1__RECORD_RESULT__OUTCOME__REJECTED);
    uint64_t seq = r && r->has_seq ? r->seq : put->last_seq;
    const char *outcome = rejected ? "rejected" : put->stored > 0 ? "stored" : "unchanged";
    // Unchanged because the stored figure is a later revision: say so.
    bool superseded =
        !rejected && put->stored == 0 && r && r->field && strcmp(r->field, "status") == 0;
    bool explain = rejected || superseded;
    if (opts->format == KMX_FORMAT_JSON) {
        json_t *doc =
            json_pack("{s:s,s:o,s:o,s:o}", "outcome", outcome, "seq",
                      !rejected && put->stored > 0 ? json_integer((json_int_t)seq) : json_null(),
                      "field", kmx_json_string(explain && r ? r->field : NULL), "reason",
                      kmx_json_string(explain && r ? r->reason : NULL));
        if (!doc || kmx_json_dumpf(doc, stdout) < 0)
            kmx_cli_error("out of memory");
        else
            fputc('\n', stdout);
        json_decref(doc);
    } else if (!rejected) {
        if (put->stored > 0)
            printf("stored seq %" PRIu64 "\n", seq);
        else if (superseded)
            printf("unchanged: %s\n", r->reason ? r->reason : "a later revision is stored");
        else
            printf("unchanged\n");
    }
    if (rejected)
        kmx_cli_error("rejected: %s%s%s", r && r->field ? r->field : "",
                      r && r->field && *r->field ? ": " : "",
                      r && r->reason ? r->reason : "no reason given");
    return rejected ? KMX_EXIT_INPUT : KMX_EXIT_OK;
}

int kmx_cli_put(kmx_cli_opts_t *opts, int argc, char **argv) {
    const char *cells[S_PUT_NCOLS] = {NULL};
    int rc = s_put_options(opts, argc, argv, cells, s_put_usage);
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
        kmx_cli_error("rejected: %s: %s", r->field ? r->field : "", r->reason ? r->reason : "");
        rc = KMX_EXIT_INPUT;
    } else
        rc = kmx_cli_call_failed(client, rc);
    if (resp)
        kmx__v1__response__free_unpacked(resp, NULL);
    kmx_import_record_free(&rec);
    kmx_client_destroy(&client);
    return rc;
}

// ---- delete -------------------------------------------------------------------------

static const char s_delete_usage[] =
    "usage: kmx delete --kind K --period P --market M --category C --item I [--company X]\n"
    "                  [--artist A] --source S\n"
    "Removes the record with that natural key (a correction). Storage keeps a DELETE event\n"
    "with the old record, so watchers see it and the history stays. Exit 1 when no record\n"
    "has that key.\n";

// Builds the key record from the flags; strings are borrowed from argv.
// Returns -1 to continue, else an exit code.
static int s_delete_key(const char **cells, Kmx__V1__Record *key, Kmx__V1__Period *period) {
    static const int required[] = {0, 1, 3, 4, 9}; // kind, period, category, item, source
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        if (!cells[required[i]]) {
            kmx_cli_error("--%s is required", s_put_columns[required[i]]);
            return KMX_EXIT_INPUT;
        }
    }
    for (size_t i = 7; i < S_PUT_NCOLS; i++) {
        if (cells[i] && i != 9) {
            kmx_cli_error("delete takes only key flags, not --%s", s_put_columns[i]);
            return KMX_EXIT_INPUT;
        }
    }
    Kmx__V1__Kind kind;
    kmx_period_t p;
    if (kmx_kind_parse(cells[0], &kind) != 0) {
        kmx_cli_error("--kind: \"%s\" is neither export nor consumption", cells[0]);
        return KMX_EXIT_INPUT;
    }
    if (kmx_period_parse(cells[1], &p) != 0) {
        kmx_cli_error("--period: \"%s\" is not a period (2024, 2025-H1, 2024-Q3, ...)", cells[1]);
        return KMX_EXIT_INPUT;
    }
    period->has_start = period->has_end = 1;
    period->start = p.start;
    period->end = p.end;
    key->has_kind = 1;
    key->kind = kind;
    key->period = period;
    key->market = (char *)cells[2];
    key->category = (char *)cells[3];
    key->item = (char *)cells[4];
    key->company = (char *)cells[5];
    key->artist = (char *)cells[6];
    key->source = (char *)cells[9];
    return -1;
}

static int s_print_delete_result(const kmx_cli_opts_t *opts, const Kmx__V1__PutResult *put) {
    const Kmx__V1__RecordResult *r = put->n_results > 0 ? put->results[0] : NULL;
    uint64_t seq = r && r->has_seq ? r->seq : put->last_seq;
    if (opts->format == KMX_FORMAT_JSON) {
        json_t *doc = kmx_json_deleted(seq);
        if (!doc || kmx_json_dumpf(doc, stdout) < 0)
            kmx_cli_error("out of memory");
        json_decref(doc);
        fputc('\n', stdout);
    } else {
        printf("deleted seq %" PRIu64 "\n", seq);
    }
    return KMX_EXIT_OK;
}

int kmx_cli_delete(kmx_cli_opts_t *opts, int argc, char **argv) {
    const char *cells[S_PUT_NCOLS] = {NULL};
    int rc = s_put_options(opts, argc, argv, cells, s_delete_usage);
    if (rc >= 0)
        return rc;
    Kmx__V1__Record key = KMX__V1__RECORD__INIT;
    Kmx__V1__Period period = KMX__V1__PERIOD__INIT;
    rc = s_delete_key(cells, &key, &period);
    if (rc >= 0)
        return rc;
    kmx_client_t *client = kmx_cli_connect(opts);
    if (!client)
        return KMX_EXIT_SERVER;
    Kmx__V1__Record *keys[] = {&key};
    Kmx__V1__DeleteRequest del = KMX__V1__DELETE_REQUEST__INIT;
    del.n_keys = 1;
    del.keys = keys;
    Kmx__V1__Request req = KMX__V1__REQUEST__INIT;
    req.body_case = KMX__V1__REQUEST__BODY_DELETE;
    req.delete_ = &del;
    Kmx__V1__Response *resp = NULL;
    rc = kmx_client_call(client, "kmx.ingest", &req, &resp);
    if (rc == 0 && resp->result_case == KMX__V1__RESPONSE__RESULT_PUT && resp->put)
        rc = s_print_delete_result(opts, resp->put);
    else if (rc == KMX_ERR_NOT_FOUND) {
        kmx_cli_error("no record has that key");
        rc = KMX_EXIT_INPUT;
    } else if (rc == KMX_ERR_INVAL && resp && resp->error) {
        const Kmx__V1__RecordResult *r = resp->error->n_records ? resp->error->records[0] : NULL;
        kmx_cli_error("refused: %s%s%s", r && r->field ? r->field : "", r && r->field ? ": " : "",
                      r && r->reason ? r->reason : resp->error->message);
        rc = KMX_EXIT_INPUT;
    } else
        rc = kmx_cli_call_failed(client, rc ? rc : KMX_ERR_DECODE);
    if (resp)
        kmx__v1__response__free_unpacked(resp, NULL);
    kmx_client_destroy(&client);
    return rc;
}
