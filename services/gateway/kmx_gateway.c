/*  kmx_gateway - HTTP on libmicrohttpd, one thread per connection: a request's thread
    takes an MDP client from the pool for its call, and an event stream's thread blocks in
    its reader until the hub has events for it. JSON comes from the CLI's own code
    (kmx_qargs, kmx_json), so an answer here is byte for byte what `kmx ... --format json`
    prints. Every refusal is {"error":{"status":N,"code":"...","message":"..."}}.  */
#include "kmx_gateway.h"

#include "kmx_client.h"
#include "kmx_err.h"
#include "kmx_gw_arena.h"
#include "kmx_gw_hub.h"
#include "kmx_gw_pool.h"
#include "kmx_iargs.h"
#include "kmx_json.h"
#include "kmx_log.h"
#include "kmx_record.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define S_STATIC_MAX (16u * 1024u * 1024u) // largest dashboard file served
#define S_LIST_DEFAULT 100                 // records per page of /v1/records
#define S_LIST_MAX 1000                    // most records per page
#define S_SSE_BLOCK 131072                 // bytes per event-stream read
#define S_POOL_WARM 8                      // MDP clients made at start
#define S_NENDPOINTS 11                    // kmx_gw_endpoint_t values

static const int s_statuses[] = {200, 400, 401, 403, 404, 405, 413, 414, 429, 500, 503};
#define S_NSTATUSES (sizeof(s_statuses) / sizeof(s_statuses[0]))

static const char *const s_endpoint_names[S_NENDPOINTS] = {
    "none",   "healthz", "metrics", "query",   "records", "record",
    "import", "events",  "static",  "catalog", "history"};

struct kmx_gateway {
    kmx_gateway_config_t cfg;                                 // settings (borrowed strings)
    struct MHD_Daemon *daemon;                                // the HTTP server
    kmx_gw_pool_t *pool;                                      // MDP clients
    kmx_gw_hub_t *hub;                                        // the event subscription
    atomic_uint streams;                                      // open event streams
    atomic_uint_fast64_t answered[S_NENDPOINTS][S_NSTATUSES]; // responses by status
    atomic_uint_fast64_t refused_streams;                     // 429s for streams
};

// One request in progress.
typedef struct {
    kmx_gw_route_t route; // what it asks for
    char *body;           // request body, malloc'd
    size_t len;           // bytes in body
    size_t cap;           // capacity of body
    bool too_big;         // the body passed the limit
    bool started;         // the first call has been seen
} s_req_t;

// One event stream's state, owned by its response.
typedef struct {
    kmx_gateway_t *gw;       // the gateway
    kmx_gw_stream_t *stream; // its position and pending text
    bool greeted;            // the retry: line was sent
    bool ended;              // a final message was sent; end at the next read
} s_sse_t;

// ---- responses -------------------------------------------------------------------------

static void s_count(kmx_gateway_t *self, kmx_gw_endpoint_t e, unsigned status) {
    for (size_t i = 0; i < S_NSTATUSES; i++) {
        if (s_statuses[i] == (int)status) {
            atomic_fetch_add(&self->answered[e][i], 1);
            return;
        }
    }
}

static enum MHD_Result s_send(kmx_gateway_t *self, struct MHD_Connection *c, const s_req_t *r,
                              unsigned status, char *text, size_t len, const char *type) {
    struct MHD_Response *resp =
        text ? MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE) : NULL;
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    if (status == 401)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"kmx\"");
    enum MHD_Result rc = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    s_count(self, r->route.endpoint, status);
    return rc;
}

// Sends doc (taken) as JSON with a trailing newline.
static enum MHD_Result s_json(kmx_gateway_t *self, struct MHD_Connection *c, const s_req_t *r,
                              unsigned status, json_t *doc) {
    size_t len = 0;
    char *text = doc ? kmx_json_dumps(doc, &len) : NULL;
    json_decref(doc);
    char *line = text ? realloc(text, len + 2) : NULL;
    if (!line) {
        free(text);
        return MHD_NO;
    }
    line[len] = '\n';
    line[len + 1] = '\0';
    return s_send(self, c, r, status, line, len + 1, "application/json; charset=utf-8");
}

static const char *s_code_name(unsigned status) {
    switch (status) {
    case 400:
        return "bad_request";
    case 401:
        return "unauthorized";
    case 403:
        return "forbidden";
    case 404:
        return "not_found";
    case 405:
        return "method_not_allowed";
    case 413:
        return "too_large";
    case 414:
        return "query_too_long";
    case 429:
        return "too_many_streams";
    case 503:
        return "unavailable";
    default:
        return "internal";
    }
}

static enum MHD_Result s_error(kmx_gateway_t *self, struct MHD_Connection *c, const s_req_t *r,
                               unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static enum MHD_Result s_error(kmx_gateway_t *self, struct MHD_Connection *c, const s_req_t *r,
                               unsigned status, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_t *doc = json_pack("{s:{s:i,s:s,s:o}}", "error", "status", (int)status, "code",
                            s_code_name(status), "message", kmx_json_string(msg));
    return s_json(self, c, r, status, doc);
}

// The HTTP status of a failed service call.
static unsigned s_call_status(int rc) {
    switch (rc) {
    case KMX_ERR_INVAL:
    case KMX_ERR_UNSUPPORTED:
    case KMX_ERR_OVERFLOW:
        return 400;
    case KMX_ERR_NOT_FOUND:
        return 404;
    case KMX_ERR_FORBIDDEN:
        return 403;
    case KMX_ERR_TOO_BIG:
        return 413;
    case KMX_ERR_TIMEOUT:
    case KMX_ERR_DEADLINE:
    case KMX_ERR_UNAVAILABLE:
    case KMX_ERR_IO:
    case KMX_ERR_BUSY:
        return 503;
    default:
        return 500;
    }
}

static enum MHD_Result s_call_failed(kmx_gateway_t *self, struct MHD_Connection *c,
                                     const s_req_t *r, kmx_client_t *client, int rc,
                                     const char *service) {
    const char *why = kmx_client_last_error(client);
    if (rc == KMX_ERR_TIMEOUT)
        return s_error(self, c, r, 503, "%s did not answer in time (is the broker running?)",
                       service);
    return s_error(self, c, r, s_call_status(rc), "%s", why && *why ? why : kmx_strerror(rc));
}

// ---- parameters ------------------------------------------------------------------------

typedef struct {
    kmx_qargs_t *args;        // where options go
    const char **skip;        // parameters the endpoint handles itself (NULL-terminated)
    char err[KMX_GW_ERR_MAX]; // the first refusal
    bool failed;              // a parameter was refused
} s_params_t;

static enum MHD_Result s_on_param(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value) {
    (void)kind;
    s_params_t *p = cls;
    for (const char **s = p->skip; s && *s; s++) {
        if (strcmp(key, *s) == 0)
            return MHD_YES;
    }
    if (!p->failed && kmx_gw_param(p->args, key, value, p->err) < 0)
        p->failed = true;
    return p->failed ? MHD_NO : MHD_YES;
}

// Applies every URL parameter to args. Returns 0 or -1 with err set.
static int s_params(struct MHD_Connection *c, kmx_qargs_t *args, const char **skip, char *err) {
    s_params_t p = {args, skip, {0}, false};
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, s_on_param, &p);
    if (!p.failed && kmx_qargs_finish(args) < 0) {
        snprintf(p.err, sizeof(p.err), "%s", args->err);
        p.failed = true;
    }
    if (p.failed)
        snprintf(err, KMX_GW_ERR_MAX, "%s", p.err);
    return p.failed ? -1 : 0;
}

static enum MHD_Result s_on_length(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value) {
    (void)kind;
    size_t *n = cls;
    *n += strlen(key) + 2 + (value ? strlen(value) : 0);
    return MHD_YES;
}

static size_t s_query_length(struct MHD_Connection *c) {
    size_t n = 0;
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, s_on_length, &n);
    return n;
}

// ---- /v1 handlers -----------------------------------------------------------------------

static enum MHD_Result s_query(kmx_gateway_t *self, struct MHD_Connection *c, const s_req_t *r) {
    kmx_qargs_t a;
    kmx_qargs_init(&a, KMX_QARGS_QUERY);
    char err[KMX_GW_ERR_MAX];
    if (r->route.kind)
        kmx_qargs_set_kind(&a, r->route.kind);
    if (s_params(c, &a, NULL, err) < 0) {
        kmx_qargs_fini(&a);
        return s_error(self, c, r, 400, "%s", err);
    }
    Kmx__V1__QueryRequest q = KMX__V1__QUERY_REQUEST__INIT;
    kmx_qargs_query_request(&a, &q);
    kmx_client_t *client = kmx_gw_pool_get(self->pool);
    Kmx__V1__Response *resp = NULL;
    int rc = client ? kmx_client_query(client, &q, &resp) : KMX_ERR_NOMEM;
    enum MHD_Result out;
    if (rc < 0) {
        out = s_call_failed(self, c, r, client, rc, "kmx.query");
    } else {
        kmx_qcols_t cols;
        kmx_qargs_columns(&a, resp->query, &cols);
        out = s_json(self, c, r, 200, kmx_qargs_json(&cols, resp->query));
    }
    if (resp)
        kmx__v1__response__free_unpacked(resp, NULL);
    kmx_gw_pool_put(self->pool, client);
    kmx_qargs_fini(&a);
    return out;
}

static json_t *s_records_json(const Kmx__V1__ScanResult *res) {
    json_t *records = json_array();
    for (size_t i = 0; records && i < res->n_records; i++) {
        const Kmx__V1__StoredRecord *sr = res->records[i];
        if (!sr->record)
            continue;
        kmx_format_record_t fr;
        kmx_format_record_init(&fr, sr->record, sr->seq, sr->updated_ms);
        if (json_array_append_new(records, kmx_json_record(&fr)) < 0) {
            json_decref(records);
            return NULL;
        }
    }
    char hex[2 * 2048 + 1];
    size_t len = res->has_next_page_token ? res->next_page_token.len : 0;
    json_t *token = json_null();
    if (len > 0 && kmx_qargs_token_hex(res->next_page_token.data, len, hex, sizeof hex) == 0)
        token = json_string(hex);
    return json_pack("{s:o,s:o,s:I}", "records", records, "next_page_token", token, "last_seq",
                     (json_int_t)res->last_seq);
}

static enum MHD_Result s_records(kmx_gateway_t *self, struct MHD_Connection *c, const s_req_t *r) {
    kmx_qargs_t a;
    kmx_qargs_init(&a, KMX_QARGS_LIST);
    char err[KMX_GW_ERR_MAX];
    Kmx__V1__ScanRequest scan = KMX__V1__SCAN_REQUEST__INIT;
    int bad = s_params(c, &a, NULL, err);
    if (bad == 0 && a.limit > S_LIST_MAX) {
        snprintf(err, sizeof err, "limit: at most %d records per page", S_LIST_MAX);
        bad = -1;
    }
    if (bad == 0 && a.page_token && kmx_qargs_page_token(&a, a.page_token, &scan) < 0) {
        snprintf(err, sizeof err, "page_token: not a token this API returned");
        bad = -1;
    }
    if (bad < 0) {
        kmx_qargs_fini(&a);
        free(scan.page_token.data);
        return s_error(self, c, r, 400, "%s", err);
    }
    scan.filter = &a.filter;
    scan.has_limit = 1;
    scan.limit = a.limit ? a.limit : S_LIST_DEFAULT;
    kmx_client_t *client = kmx_gw_pool_get(self->pool);
    Kmx__V1__Response *resp = NULL;
    int rc = client ? kmx_client_scan(client, &scan, &resp) : KMX_ERR_NOMEM;
    enum MHD_Result out = rc < 0 ? s_call_failed(self, c, r, client, rc, "kmx.query")
                                 : s_json(self, c, r, 200, s_records_json(resp->scan));
    if (resp)
        kmx__v1__response__free_unpacked(resp, NULL);
    kmx_gw_pool_put(self->pool, client);
    free(scan.page_token.data);
    kmx_qargs_fini(&a);
    return out;
}

// Parses a record key from the URL. Returns 0 or -1 with err set.
static int s_key(struct MHD_Connection *c, kmx_qargs_t *a, Kmx__V1__Record *key,
                 Kmx__V1__Period *period, bool delete, char *err) {
    kmx_qargs_init(a, KMX_QARGS_GET);
    if (s_params(c, a, NULL, err) < 0)
        return -1;
    if (kmx_qargs_get_key(a, key, period) < 0) {
        snprintf(err, KMX_GW_ERR_MAX, "%s", a->err);
        return -1;
    }
    const char *missing = !key->category ? "category" : !key->item ? "item" : "source";
    if (delete &&(!key->category || !key->item || !key->source)) {
        snprintf(err, KMX_GW_ERR_MAX, "a delete names the whole key: %s is missing", missing);
        return -1;
    }
    return 0;
}

static enum MHD_Result s_record_get(kmx_gateway_t *self, struct MHD_Connection *c, const s_req_t *r,
                                    kmx_client_t *client, const Kmx__V1__Record *key) {
    Kmx__V1__Response *resp = NULL;
    int rc = kmx_client_get(client, key, &resp);
    if (rc == 0 && (!resp->get->record || !resp->get->record->record))
        rc = KMX_ERR_NOT_FOUND;
    enum MHD_Result out;
    if (rc == KMX_ERR_NOT_FOUND) {
        out = s_error(self, c, r, 404, "no record has that key");
    } else if (rc < 0) {
        out = s_call_failed(self, c, r, client, rc, "kmx.query");
    } else {
        const Kmx__V1__StoredRecord *sr = resp->get->record;
        kmx_format_record_t fr;
        kmx_format_record_init(&fr, sr->record, sr->seq, sr->updated_ms);
        out = s_json(self, c, r, 200, kmx_json_record(&fr));
    }
    if (resp)
        kmx__v1__response__free_unpacked(resp, NULL);
    return out;
}

static enum MHD_Result s_record_delete(kmx_gateway_t *self, struct MHD_Connection *c,
                                       const s_req_t *r, kmx_client_t *client,
                                       Kmx__V1__Record *key) {
    Kmx__V1__Record *keys[] = {key};
    Kmx__V1__DeleteRequest del = KMX__V1__DELETE_REQUEST__INIT;
    del.n_keys = 1;
    del.keys = keys;
    Kmx__V1__Request req = KMX__V1__REQUEST__INIT;
    req.body_case = KMX__V1__REQUEST__BODY_DELETE;
    req.delete_ = &del;
    Kmx__V1__Response *resp = NULL;
    int rc = kmx_client_call(client, KMX_SERVICE_INGEST, &req, &resp);
    enum MHD_Result out;
    if (rc == 0 && resp->result_case == KMX__V1__RESPONSE__RESULT_PUT && resp->put) {
        const Kmx__V1__PutResult *put = resp->put;
        const Kmx__V1__RecordResult *res = put->n_results > 0 ? put->results[0] : NULL;
        uint64_t seq = res && res->has_seq ? res->seq : put->last_seq;
        out = s_json(self, c, r, 200, kmx_json_deleted(seq));
    } else if (rc == KMX_ERR_NOT_FOUND) {
        out = s_error(self, c, r, 404, "no record has that key");
    } else if (rc == KMX_ERR_INVAL && resp && resp->error && resp->error->n_records > 0) {
        const Kmx__V1__RecordResult *res = resp->error->records[0];
        out = s_error(self, c, r, 400, "refused: %s%s%s", res->field ? res->field : "",
                      res->field ? ": " : "", res->reason ? res->reason : "");
    } else {
        out = s_call_failed(self, c, r, client, rc ? rc : KMX_ERR_DECODE, "kmx.ingest");
    }
    if (resp)
        kmx__v1__response__free_unpacked(resp, NULL);
    return out;
}

static enum MHD_Result s_record(kmx_gateway_t *self, struct MHD_Connection *c, const s_req_t *r,
                                bool delete) {
    kmx_qargs_t a;
    Kmx__V1__Record key = KMX__V1__RECORD__INIT;
    Kmx__V1__Period period = KMX__V1__PERIOD__INIT;
    char err[KMX_GW_ERR_MAX];
    enum MHD_Result out;
    if (s_key(c, &a, &key, &period, delete, err) < 0) {
        out = s_error(self, c, r, 400, "%s", err);
    } else {
        kmx_client_t *client = kmx_gw_pool_get(self->pool);
        if (!client)
            out = s_error(self, c, r, 500, "out of memory");
        else if (delete)
            out = s_record_delete(self, c, r, client, &key);
        else
            out = s_record_get(self, c, r, client, &key);
        kmx_gw_pool_put(self->pool, client);
    }
    kmx_qargs_fini(&a);
    return out;
}

// GET /v1/history: every change of one figure, oldest first, as kmx history prints them.
static enum MHD_Result s_history(kmx_gateway_t *self, struct MHD_Connection *c, const s_req_t *r) {
    kmx_qargs_t a;
    Kmx__V1__Record key = KMX__V1__RECORD__INIT;
    Kmx__V1__Period period = KMX__V1__PERIOD__INIT;
    char err[KMX_GW_ERR_MAX];
    if (s_key(c, &a, &key, &period, false, err) < 0) {
        kmx_qargs_fini(&a);
        return s_error(self, c, r, 400, "%s", err);
    }
    kmx_client_t *client = kmx_gw_pool_get(self->pool);
    Kmx__V1__Response *resp = NULL;
    int rc = client ? kmx_client_history(client, &key, &resp) : KMX_ERR_NOMEM;
    enum MHD_Result out;
    if (rc < 0) {
        out = s_call_failed(self, c, r, client, rc, "kmx.query");
    } else {
        json_t *events = json_array();
        for (size_t i = 0; events && i < resp->history->n_events; i++)
            json_array_append_new(events, kmx_json_event(resp->history->events[i]));
        out = s_json(self, c, r, 200,
                     json_pack("{s:o,s:I}", "events", events ? events : json_array(), "first_seq",
                               (json_int_t)resp->history->first_seq));
    }
    if (resp)
        kmx__v1__response__free_unpacked(resp, NULL);
    kmx_gw_pool_put(self->pool, client);
    kmx_qargs_fini(&a);
    return out;
}

// GET /v1/catalog[?kind=exports|consumption]: kmx catalog's document.
static enum MHD_Result s_catalog(kmx_gateway_t *self, struct MHD_Connection *c, const s_req_t *r) {
    Kmx__V1__Kind kind = KMX__V1__KIND__KIND_UNSPECIFIED;
    const char *word = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "kind");
    if (word && kmx_kind_parse(word, &kind) < 0)
        return s_error(self, c, r, 400, "kind wants exports or consumption, not \"%.40s\"", word);
    kmx_client_t *client = kmx_gw_pool_get(self->pool);
    Kmx__V1__Response *resp = NULL;
    int rc = client ? kmx_client_catalog(client, kind, &resp) : KMX_ERR_NOMEM;
    enum MHD_Result out = rc < 0 ? s_call_failed(self, c, r, client, rc, "kmx.query")
                                 : s_json(self, c, r, 200, kmx_json_catalog(resp->catalog));
    if (resp)
        kmx__v1__response__free_unpacked(resp, NULL);
    kmx_gw_pool_put(self->pool, client);
    return out;
}

// ---- import ----------------------------------------------------------------------------

#define S_PREVIEW 10 // records a dry run shows, as kmx import --dry-run

// kmx import's options that apply to a body, as query parameters (docs/http.md): those
// saying how the body is read are kmx import's own (kmx_iargs).
typedef struct {
    int jsonl;                // -1 unknown, 0 CSV, 1 JSON Lines
    bool atomic;              // atomic=1
    bool dry_run;             // dry_run=1
    kmx_iargs_t read;         // encoding, delimiter, map, default, layout, ...
    char err[KMX_GW_ERR_MAX]; // the first refusal
    bool failed;              // a parameter was refused
} s_import_args_t;

static int s_import_switch(s_import_args_t *im, const char *key, const char *value, bool *on) {
    if (kmx_iargs_switch(value, on) == 0)
        return 0;
    snprintf(im->err, sizeof im->err, "%s is a switch: 1/true or 0/false", key);
    return -1;
}

// A parameter's name with '-' read as '_' (dry-run and dry_run are one), in out.
static const char *s_import_key(const char *key, char *out, size_t size) {
    size_t i = 0;
    for (; key[i] && i + 1 < size; i++)
        out[i] = key[i] == '-' ? '_' : key[i];
    out[i] = '\0';
    return out;
}

static enum MHD_Result s_on_import_param(void *cls, enum MHD_ValueKind kind, const char *key,
                                         const char *value) {
    (void)kind;
    s_import_args_t *im = cls;
    int rc = 0;
    char name[32];
    key = s_import_key(key, name, sizeof name);
    if (strcmp(key, "input") == 0) {
        im->jsonl = value && strcmp(value, "jsonl") == 0 ? 1
                    : value && strcmp(value, "csv") == 0 ? 0
                                                         : -2;
        if (im->jsonl == -2) {
            snprintf(im->err, sizeof im->err, "input wants csv or jsonl");
            rc = -1;
        }
    } else if (strcmp(key, "atomic") == 0) {
        rc = s_import_switch(im, key, value, &im->atomic);
    } else if (strcmp(key, "dry_run") == 0) {
        rc = s_import_switch(im, key, value, &im->dry_run);
    } else if ((rc = kmx_iargs_set(&im->read, key, value)) < 0) {
        snprintf(im->err, sizeof im->err, "%s", im->read.err);
    } else if (rc > 0 && strcmp(key, "access_token") == 0) {
        rc = 0;
    } else if (rc > 0) {
        snprintf(im->err, sizeof im->err,
                 "unknown parameter \"%.60s\" (import takes input, atomic, dry_run, default, "
                 "map, ignore_extra, encoding, delimiter, layout, date_order, excel_dates)",
                 key);
        rc = -1;
    }
    im->failed = rc < 0;
    return rc < 0 ? MHD_NO : MHD_YES;
}

// The body's format from input= or the Content-Type. Returns 0/1, or -1 when unknown.
static int s_import_format(struct MHD_Connection *c, const s_import_args_t *im) {
    if (im->jsonl >= 0)
        return im->jsonl;
    const char *type = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    if (!type)
        return -1;
    if (strncasecmp(type, "text/csv", 8) == 0)
        return 0;
    if (strncasecmp(type, "application/x-ndjson", 20) == 0 ||
        strncasecmp(type, "application/jsonl", 17) == 0 ||
        strncasecmp(type, "application/json-lines", 22) == 0 ||
        strncasecmp(type, "application/x-jsonlines", 23) == 0)
        return 1;
    return -1;
}

static void s_add_rejects(kmx_json_reject_t *rej, size_t *n, size_t cap,
                          Kmx__V1__RecordResult **results, size_t nresults) {
    for (size_t i = 0; i < nresults && *n < cap; i++) {
        const Kmx__V1__RecordResult *res = results[i];
        if (!res || res->outcome != KMX__V1__RECORD_RESULT__OUTCOME__REJECTED)
            continue;
        kmx_json_reject_t *x = &rej[(*n)++];
        x->row = res->has_row ? res->row : 0;
        snprintf(x->field, sizeof x->field, "%s",
                 res->column  ? res->column
                 : res->field ? res->field
                              : "");
        snprintf(x->reason, sizeof x->reason, "%s",
                 res->reason && *res->reason ? res->reason : "rejected");
    }
}

static int s_cmp_reject(const void *a, const void *b) {
    const kmx_json_reject_t *x = a, *y = b;
    return (x->row > y->row) - (x->row < y->row);
}

// The summary of an answered import, as kmx import --format json prints it.
static json_t *s_import_summary(const Kmx__V1__Response *resp, const s_import_args_t *im,
                                double seconds) {
    kmx_json_import_t sum;
    memset(&sum, 0, sizeof(sum));
    const Kmx__V1__PutResult *put =
        resp->result_case == KMX__V1__RESPONSE__RESULT_PUT ? resp->put : NULL;
    const Kmx__V1__Error *e =
        resp->result_case == KMX__V1__RESPONSE__RESULT_ERROR ? resp->error : NULL;
    size_t cap = put ? put->n_results : e ? e->n_records : 0;
    kmx_json_reject_t *rej = cap ? calloc(cap, sizeof(*rej)) : NULL;
    size_t nrej = 0;
    if (put) {
        sum.rows = put->records, sum.stored = put->stored, sum.unchanged = put->unchanged;
        sum.rejected = put->rejected, sum.duplicates = put->duplicates;
        sum.last_seq = put->last_seq;
        if (rej)
            s_add_rejects(rej, &nrej, cap, put->results, put->n_results);
    } else if (e) {
        sum.rejected = e->n_records;
        for (size_t i = 0; i < e->n_records; i++)
            sum.duplicates += e->records[i]->has_duplicate_of;
        if (rej)
            s_add_rejects(rej, &nrej, cap, e->records, e->n_records);
        sum.atomic_refused = im->atomic && sum.rejected > 0;
    }
    if (nrej > 1)
        qsort(rej, nrej, sizeof(*rej), s_cmp_reject);
    sum.seconds = seconds;
    sum.dry_run = im->dry_run;
    sum.rejects = rej;
    sum.nrejects = nrej;
    json_t *doc = kmx_json_import(&sum);
    free(rej);
    kmx_json_import_read_t read;
    memset(&read, 0, sizeof(read));
    json_t *preview = json_array();
    if (put) {
        read.records = put->has_cells ? put->cells : put->records;
        read.skipped = put->skipped;
        read.encoding = put->encoding && *put->encoding ? put->encoding : NULL;
        read.warnings = put->warnings;
        read.n_warnings = put->n_warnings;
        for (size_t i = 0; preview && i < put->n_preview; i++) {
            kmx_format_record_t fr;
            kmx_format_record_init(&fr, put->preview[i], 0, 0);
            json_array_append_new(preview, kmx_json_record(&fr));
        }
    }
    read.preview = preview;
    kmx_json_import_read(doc, &read);
    return doc;
}

static double s_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static enum MHD_Result s_import_send(kmx_gateway_t *self, struct MHD_Connection *c,
                                     const s_req_t *r, const s_import_args_t *im, bool jsonl) {
    Kmx__V1__RawDocument doc = KMX__V1__RAW_DOCUMENT__INIT;
    doc.has_format = 1;
    doc.format = jsonl ? KMX__V1__RAW_DOCUMENT__FORMAT__JSONL : KMX__V1__RAW_DOCUMENT__FORMAT__CSV;
    doc.has_data = 1;
    doc.data.data = (uint8_t *)r->body;
    doc.data.len = r->len;
    doc.has_atomic = doc.atomic = im->atomic;
    doc.has_first_line = 1;
    doc.first_line = 1;
    kmx_iargs_apply(&im->read, &doc);
    doc.has_validate_only = doc.validate_only = im->dry_run;
    doc.has_preview = im->dry_run;
    doc.preview = S_PREVIEW;
    Kmx__V1__Request req = KMX__V1__REQUEST__INIT;
    req.body_case = KMX__V1__REQUEST__BODY_DOCUMENT;
    req.document = &doc;
    kmx_client_t *client = kmx_gw_pool_get(self->pool);
    Kmx__V1__Response *resp = NULL;
    double t0 = s_now();
    int rc = client ? kmx_client_call(client, KMX_SERVICE_INGEST, &req, &resp) : KMX_ERR_NOMEM;
    bool rows_refused = rc == KMX_ERR_INVAL && resp &&
                        resp->result_case == KMX__V1__RESPONSE__RESULT_ERROR &&
                        resp->error->n_records > 0;
    enum MHD_Result out;
    if ((rc == 0 && resp->result_case == KMX__V1__RESPONSE__RESULT_PUT) || rows_refused)
        out = s_json(self, c, r, 200, s_import_summary(resp, im, s_now() - t0));
    else
        out = s_call_failed(self, c, r, client, rc ? rc : KMX_ERR_DECODE, "kmx.ingest");
    if (resp)
        kmx__v1__response__free_unpacked(resp, NULL);
    kmx_gw_pool_put(self->pool, client);
    return out;
}

static enum MHD_Result s_import(kmx_gateway_t *self, struct MHD_Connection *c, const s_req_t *r) {
    s_import_args_t im;
    memset(&im, 0, sizeof(im));
    im.jsonl = -1;
    kmx_iargs_init(&im.read);
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, s_on_import_param, &im);
    int jsonl = im.failed ? -1 : s_import_format(c, &im);
    enum MHD_Result out;
    if (im.failed)
        out = s_error(self, c, r, 400, "%s", im.err);
    else if (jsonl < 0)
        out = s_error(self, c, r, 400,
                      "say what the body is: Content-Type text/csv or application/x-ndjson, "
                      "or input=csv|jsonl");
    else if (r->len == 0)
        out = s_error(self, c, r, 400,
                      "empty body: send a CSV file (header row first) or "
                      "JSON Lines");
    else
        out = s_import_send(self, c, r, &im, jsonl == 1);
    kmx_iargs_fini(&im.read);
    return out;
}

// ---- events ----------------------------------------------------------------------------

#define S_SINCE_NONE UINT64_MAX

typedef struct {
    char *prefixes[KMX_GW_PREFIXES_MAX]; // borrowed from MHD
    size_t n;                            // prefixes given
    bool all;                            // an empty prefix: every topic
    uint64_t since;                      // since=, or S_SINCE_NONE
    kmx_gw_form_t form;                  // form=
    char err[KMX_GW_ERR_MAX];            // the first refusal
    bool failed;                         // a parameter was refused
} s_events_args_t;

static enum MHD_Result s_on_events_param(void *cls, enum MHD_ValueKind kind, const char *key,
                                         const char *value) {
    (void)kind;
    s_events_args_t *ev = cls;
    if (strcmp(key, "prefix") == 0) {
        if (!value || !*value)
            ev->all = true;
        else if (ev->n < KMX_GW_PREFIXES_MAX && strlen(value) <= 256)
            ev->prefixes[ev->n++] = (char *)value;
        else {
            snprintf(ev->err, sizeof ev->err, "at most %d prefixes of at most 256 bytes",
                     KMX_GW_PREFIXES_MAX);
            ev->failed = true;
        }
    } else if (strcmp(key, "since") == 0) {
        if (!value || kmx_gw_seq_parse(value, &ev->since) < 0) {
            snprintf(ev->err, sizeof ev->err, "since wants a sequence number, not \"%.40s\"",
                     value ? value : "");
            ev->failed = true;
        }
    } else if (strcmp(key, "form") == 0) {
        if (value && strcmp(value, "full") == 0)
            ev->form = KMX_GW_FORM_FULL;
        else if (value && strcmp(value, "compact") == 0)
            ev->form = KMX_GW_FORM_COMPACT;
        else {
            snprintf(ev->err, sizeof ev->err, "form wants full or compact, not \"%.40s\"",
                     value ? value : "");
            ev->failed = true;
        }
    } else if (strcmp(key, "access_token") != 0) {
        snprintf(ev->err, sizeof ev->err,
                 "unknown parameter \"%.60s\" (events take prefix, since and form)", key);
        ev->failed = true;
    }
    return ev->failed ? MHD_NO : MHD_YES;
}

static ssize_t s_sse_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    s_sse_t *sse = cls;
    if (sse->ended)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (!sse->greeted) {
        sse->greeted = true;
        int n = snprintf(buf, max, "retry: 1000\n: kmx events after %" PRIu64 "\n\n",
                         kmx_gw_stream_cursor(sse->stream));
        if (n > 0 && (size_t)n < max)
            return n;
    }
    long n = kmx_gw_stream_read(sse->stream, sse->gw->pool, buf, max, sse->gw->cfg.heartbeat_ms);
    if (n > 0)
        return n;
    if (n == KMX_ERR_RESYNC) {
        sse->ended = true;
        int m = snprintf(buf, max,
                         "event: resync\ndata: {\"error\":{\"status\":410,\"code\":\"resync\","
                         "\"message\":\"events after seq %" PRIu64 " are no longer kept; "
                         "reload the data and reconnect without Last-Event-ID\"}}\n\n",
                         kmx_gw_stream_cursor(sse->stream));
        if (m > 0 && (size_t)m < max)
            return m;
    }
    return MHD_CONTENT_READER_END_OF_STREAM;
}

static void s_sse_free(void *cls) {
    s_sse_t *sse = cls;
    kmx_gw_stream_destroy(&sse->stream);
    atomic_fetch_sub(&sse->gw->streams, 1);
    free(sse);
}

// Where a stream starts: Last-Event-ID (a reconnecting browser) wins over since=.
static int s_events_since(struct MHD_Connection *c, s_events_args_t *ev) {
    const char *last = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Last-Event-ID");
    if (!last || !*last)
        return 0;
    if (kmx_gw_seq_parse(last, &ev->since) < 0) {
        snprintf(ev->err, sizeof ev->err, "Last-Event-ID wants a sequence number, not \"%.40s\"",
                 last);
        return -1;
    }
    return 0;
}

static enum MHD_Result s_events(kmx_gateway_t *self, struct MHD_Connection *c, const s_req_t *r) {
    s_events_args_t ev;
    memset(&ev, 0, sizeof(ev));
    ev.since = S_SINCE_NONE;
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, s_on_events_param, &ev);
    if (ev.failed || s_events_since(c, &ev) < 0)
        return s_error(self, c, r, 400, "%s", ev.err);
    if (atomic_fetch_add(&self->streams, 1) >= self->cfg.max_streams) {
        atomic_fetch_sub(&self->streams, 1);
        atomic_fetch_add(&self->refused_streams, 1);
        return s_error(self, c, r, 429,
                       "%u event streams are open, the most this gateway "
                       "serves (KMX_GATEWAY_MAX_STREAMS); retry later or use another gateway",
                       self->cfg.max_streams);
    }
    s_sse_t *sse = calloc(1, sizeof(*sse));
    size_t n = ev.all ? 0 : ev.n;
    if (sse) {
        sse->gw = self;
        kmx_gw_stream_config_t sc = {ev.since != S_SINCE_NONE,
                                     ev.since == S_SINCE_NONE ? 0 : ev.since, ev.prefixes, n,
                                     ev.form};
        sse->stream = kmx_gw_stream_new(self->hub, &sc);
    }
    struct MHD_Response *resp =
        sse && sse->stream ? MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, S_SSE_BLOCK,
                                                               s_sse_read, sse, s_sse_free)
                           : NULL;
    if (!resp) {
        if (sse)
            kmx_gw_stream_destroy(&sse->stream);
        free(sse);
        atomic_fetch_sub(&self->streams, 1);
        return s_error(self, c, r, 500, "out of memory");
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream; charset=utf-8");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    enum MHD_Result rc = MHD_queue_response(c, 200, resp);
    MHD_destroy_response(resp);
    s_count(self, r->route.endpoint, 200);
    return rc;
}

// ---- /healthz, /metrics -----------------------------------------------------------------

static enum MHD_Result s_healthz(kmx_gateway_t *self, struct MHD_Connection *c, const s_req_t *r) {
    kmx_client_t *client = kmx_gw_pool_get(self->pool);
    Kmx__V1__Response *resp = NULL;
    int rc = client ? kmx_client_ping(client, KMX_SERVICE_BROKER, &resp) : KMX_ERR_NOMEM;
    if (resp)
        kmx__v1__response__free_unpacked(resp, NULL);
    kmx_gw_pool_put(self->pool, client);
    kmx_gw_hub_stats_t hs;
    kmx_gw_hub_stats(self->hub, &hs);
    json_t *doc = json_pack("{s:b,s:s,s:I,s:i}", "ok", rc == 0, "broker",
                            rc == 0 ? "up" : kmx_strerror(rc), "last_seq", (json_int_t)hs.last_seq,
                            "event_streams", (int)atomic_load(&self->streams));
    return s_json(self, c, r, rc == 0 ? 200 : 503, doc);
}

// Writes a label value with Prometheus escaping (backslash, quote, newline).
static void s_label(FILE *out, const char *s) {
    for (; s && *s; s++) {
        if (*s == '\\' || *s == '"')
            fputc('\\', out);
        if (*s == '\n')
            fputs("\\n", out);
        else
            fputc(*s, out);
    }
}

// A Prometheus metric name from a service and a counter ("kmx.storage", "records" ->
// kmx_storage_records): anything but [a-zA-Z0-9_] becomes '_'.
static void s_metric_name(FILE *out, const char *service, const char *counter) {
    char name[160];
    snprintf(name, sizeof(name), "%s_%s", service ? service : "kmx", counter ? counter : "x");
    for (char *p = name; *p; p++) {
        bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                  (*p >= '0' && *p <= '9') || *p == '_';
        *p = ok ? *p : '_';
    }
    fputs(strncmp(name, "kmx_", 4) == 0 ? "" : "kmx_", out);
    fputs(name, out);
}

static void s_metrics_workers(FILE *out, const Kmx__V1__StatsResult *st) {
    for (size_t i = 0; i < st->n_workers; i++) {
        const Kmx__V1__WorkerStats *w = st->workers[i];
        const char *names[] = {"kmx_worker_requests_total", "kmx_worker_errors_total",
                               "kmx_worker_alive"};
        uint64_t values[] = {w->requests, w->errors, (uint64_t)w->alive};
        for (int k = 0; k < 3; k++) {
            fprintf(out, "%s{service=\"", names[k]);
            s_label(out, w->service);
            fputs("\",worker=\"", out);
            s_label(out, w->worker);
            fprintf(out, "\"} %" PRIu64 "\n", values[k]);
        }
    }
}

static void s_metrics_counters(FILE *out, const Kmx__V1__StatsResult *st) {
    for (size_t i = 0; i < st->n_counters; i++) {
        s_metric_name(out, st->service, st->counters[i]->name);
        fputs("{worker=\"", out);
        s_label(out, st->worker);
        fprintf(out, "\"} %" PRIu64 "\n", st->counters[i]->value);
    }
}

static void s_metrics_service(FILE *out, kmx_client_t *client, const char *service) {
    Kmx__V1__Response *resp = NULL;
    int rc = client ? kmx_client_stats(client, service, &resp) : KMX_ERR_NOMEM;
    fprintf(out, "kmx_up{service=\"%s\"} %d\n", service, rc == 0);
    if (rc == 0) {
        const Kmx__V1__StatsResult *st = resp->stats;
        s_metrics_counters(out, st);
        if (strcmp(service, KMX_SERVICE_BROKER) == 0)
            s_metrics_workers(out, st);
        // kmx-storage is not behind the broker: a kmx.query worker relays its counters.
        if (strcmp(service, KMX_SERVICE_QUERY) == 0) {
            fprintf(out, "kmx_up{service=\"kmx.storage\"} %d\n", st->storage != NULL);
            if (st->storage)
                s_metrics_counters(out, st->storage);
        }
    }
    if (resp)
        kmx__v1__response__free_unpacked(resp, NULL);
}

static void s_metrics_gateway(kmx_gateway_t *self, FILE *out) {
    fputs("# HELP kmx_gateway_requests_total HTTP responses of this gateway by endpoint and "
          "status.\n# TYPE kmx_gateway_requests_total counter\n",
          out);
    for (size_t e = 0; e < S_NENDPOINTS; e++) {
        for (size_t s = 0; s < S_NSTATUSES; s++) {
            uint64_t n = atomic_load(&self->answered[e][s]);
            if (n > 0)
                fprintf(out,
                        "kmx_gateway_requests_total{endpoint=\"%s\",status=\"%d\"} %" PRIu64 "\n",
                        s_endpoint_names[e], s_statuses[s], n);
        }
    }
    kmx_gw_hub_stats_t hs;
    kmx_gw_hub_stats(self->hub, &hs);
    fprintf(out,
            "# TYPE kmx_gateway_event_streams gauge\nkmx_gateway_event_streams %u\n"
            "# TYPE kmx_gateway_event_streams_refused_total counter\n"
            "kmx_gateway_event_streams_refused_total %" PRIu64 "\n"
            "# TYPE kmx_gateway_events_total counter\nkmx_gateway_events_total %" PRIu64 "\n"
            "# TYPE kmx_gateway_events_held gauge\nkmx_gateway_events_held %zu\n"
            "# TYPE kmx_gateway_last_seq gauge\nkmx_gateway_last_seq %" PRIu64 "\n"
            "# TYPE kmx_gateway_replay_failures_total counter\n"
            "kmx_gateway_replay_failures_total %" PRIu64 "\n",
            atomic_load(&self->streams), (uint64_t)atomic_load(&self->refused_streams), hs.events,
            hs.held, hs.last_seq, hs.failures);
}

static enum MHD_Result s_metrics(kmx_gateway_t *self, struct MHD_Connection *c, const s_req_t *r) {
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (!out)
        return MHD_NO;
    s_metrics_gateway(self, out);
    fputs("# Counters of the services, as `kmx stats` shows them (untyped).\n", out);
    kmx_client_t *client = kmx_gw_pool_get(self->pool);
    s_metrics_service(out, client, KMX_SERVICE_BROKER);
    s_metrics_service(out, client, KMX_SERVICE_INGEST);
    s_metrics_service(out, client, KMX_SERVICE_QUERY);
    kmx_gw_pool_put(self->pool, client);
    fclose(out);
    return s_send(self, c, r, 200, text, len, "text/plain; version=0.0.4; charset=utf-8");
}

// ---- dashboard files --------------------------------------------------------------------

static const char *s_mime(const char *path) {
    static const struct {
        const char *ext;  // file name ending
        const char *type; // Content-Type
    } types[] = {{".html", "text/html; charset=utf-8"},
                 {".js", "text/javascript; charset=utf-8"},
                 {".mjs", "text/javascript; charset=utf-8"},
                 {".css", "text/css; charset=utf-8"},
                 {".json", "application/json"},
                 {".svg", "image/svg+xml"},
                 {".png", "image/png"},
                 {".ico", "image/x-icon"},
                 {".txt", "text/plain; charset=utf-8"}};
    size_t n = strlen(path);
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        size_t e = strlen(types[i].ext);
        if (n >= e && strcmp(path + n - e, types[i].ext) == 0)
            return types[i].type;
    }
    return "application/octet-stream";
}

static char *s_read_file(const char *path, size_t *len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0)
        return NULL;
    char *data = NULL;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (size_t)st.st_size <= S_STATIC_MAX)
        data = malloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (data && got < (size_t)st.st_size) {
        ssize_t n = read(fd, data + got, (size_t)st.st_size - got);
        if (n <= 0) {
            free(data);
            data = NULL;
        } else {
            got += (size_t)n;
        }
    }
    close(fd);
    *len = got;
    return data;
}

static enum MHD_Result s_static(kmx_gateway_t *self, struct MHD_Connection *c, const s_req_t *r,
                                const char *url) {
    if (!self->cfg.web_dir)
        return s_error(self, c, r, 404,
                       "the dashboard is not built into this gateway "
                       "(KMX_GATEWAY_WEB names its directory); the API is "
                       "under /v1");
    char path[4096];
    const char *file = strcmp(url, "/") == 0 ? "/index.html" : url;
    int n = snprintf(path, sizeof(path), "%s%s", self->cfg.web_dir, file);
    size_t len = 0;
    char *data = n > 0 && (size_t)n < sizeof(path) ? s_read_file(path, &len) : NULL;
    if (!data)
        return s_error(self, c, r, 404, "no such file: %.200s", url);
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(data);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, s_mime(file));
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    enum MHD_Result rc = MHD_queue_response(c, 200, resp);
    MHD_destroy_response(resp);
    s_count(self, r->route.endpoint, 200);
    return rc;
}

// ---- dispatch ---------------------------------------------------------------------------

// Refuses what may not proceed: unknown path, wrong method, missing or weak token, long
// query string, oversized body. Returns 1 when a refusal was queued (*out set), else 0.
static int s_refuse(kmx_gateway_t *self, struct MHD_Connection *c, const s_req_t *r,
                    const char *method, enum MHD_Result *out) {
    const kmx_gw_route_t *rt = &r->route;
    if (rt->endpoint == KMX_GW_NONE)
        *out = s_error(self, c, r, 404,
                       "no such endpoint: see docs/http.md (/v1/query/exports, "
                       "/v1/records, /v1/record, /v1/import, /v1/events, "
                       "/metrics, /healthz)");
    else if (!rt->method_ok)
        *out = s_error(self, c, r, 405, "%s is not allowed here", method);
    else if (s_query_length(c) > self->cfg.max_query)
        *out = s_error(self, c, r, 414,
                       "the query string is longer than %zu bytes "
                       "(KMX_GATEWAY_MAX_QUERY)",
                       self->cfg.max_query);
    else if (self->cfg.tokens && rt->endpoint != KMX_GW_HEALTHZ && rt->endpoint != KMX_GW_STATIC) {
        const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
        const char *bare = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "access_token");
        kmx_gw_role_t role = kmx_gw_tokens_role(self->cfg.tokens, auth, auth ? NULL : bare);
        if (role == KMX_GW_ROLE_NONE)
            *out = s_error(self, c, r, 401,
                           "a bearer token is required (Authorization: "
                           "Bearer TOKEN, or access_token= for event streams)");
        else if (rt->write && role != KMX_GW_ROLE_WRITER)
            *out = s_error(self, c, r, 403,
                           "this token has the reader role; %s needs a "
                           "writer token",
                           method);
        else
            return 0;
    } else {
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        unsigned long long n = 0;
        if (!cl || kmx_qargs_parse_u64(cl, UINT64_MAX, &n) < 0 || n <= self->cfg.max_body)
            return 0;
        *out = s_error(self, c, r, 413,
                       "the body is larger than %zu bytes "
                       "(KMX_GATEWAY_MAX_BODY): split the file",
                       self->cfg.max_body);
    }
    return 1;
}

static enum MHD_Result s_dispatch(kmx_gateway_t *self, struct MHD_Connection *c, const s_req_t *r,
                                  const char *url, const char *method) {
    if (r->too_big)
        return s_error(self, c, r, 413,
                       "the body is larger than %zu bytes "
                       "(KMX_GATEWAY_MAX_BODY): split the file",
                       self->cfg.max_body);
    switch (r->route.endpoint) {
    case KMX_GW_HEALTHZ:
        return s_healthz(self, c, r);
    case KMX_GW_METRICS:
        return s_metrics(self, c, r);
    case KMX_GW_QUERY:
        return s_query(self, c, r);
    case KMX_GW_RECORDS:
        return s_records(self, c, r);
    case KMX_GW_RECORD:
        return s_record(self, c, r, strcmp(method, "DELETE") == 0);
    case KMX_GW_IMPORT:
        return s_import(self, c, r);
    case KMX_GW_EVENTS:
        return s_events(self, c, r);
    case KMX_GW_CATALOG:
        return s_catalog(self, c, r);
    case KMX_GW_HISTORY:
        return s_history(self, c, r);
    default:
        return s_static(self, c, r, url);
    }
}

static int s_append(s_req_t *r, const char *data, size_t n, size_t max) {
    if (r->too_big || r->len + n > max) {
        r->too_big = true;
        return 0;
    }
    if (r->len + n + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 65536;
        while (cap < r->len + n + 1)
            cap *= 2;
        char *grown = realloc(r->body, cap);
        if (!grown)
            return -1;
        r->body = grown;
        r->cap = cap;
    }
    memcpy(r->body + r->len, data, n);
    r->len += n;
    r->body[r->len] = '\0';
    return 0;
}

static enum MHD_Result s_access_in(kmx_gateway_t *self, struct MHD_Connection *c, const char *url,
                                   const char *method, const char *upload_data,
                                   size_t *upload_data_size, void **con_cls) {
    s_req_t *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof(*r));
        if (!r)
            return MHD_NO;
        *con_cls = r;
        kmx_gw_route(method, url, &r->route);
        enum MHD_Result out;
        if (s_refuse(self, c, r, method, &out))
            return out;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        int rc = s_append(r, upload_data, *upload_data_size, self->cfg.max_body);
        *upload_data_size = 0;
        return rc < 0 ? MHD_NO : MHD_YES;
    }
    return s_dispatch(self, c, r, url, method);
}

// Each call's JSON is built, dumped and freed in the thread's arena (kmx_gw_arena).
static enum MHD_Result s_access(void *cls, struct MHD_Connection *c, const char *url,
                                const char *method, const char *version, const char *upload_data,
                                size_t *upload_data_size, void **con_cls) {
    (void)version;
    kmx_gw_arena_begin();
    enum MHD_Result out = s_access_in(cls, c, url, method, upload_data, upload_data_size, con_cls);
    kmx_gw_arena_end();
    return out;
}

static void s_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                        enum MHD_RequestTerminationCode toe) {
    (void)cls, (void)c, (void)toe;
    s_req_t *r = *con_cls;
    if (r) {
        free(r->body);
        free(r);
    }
    *con_cls = NULL;
}

static void s_mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    kmx_log_warn("gateway: http: %s", msg);
}

kmx_gateway_t *kmx_gateway_new(const kmx_gateway_config_t *cfg) {
    kmx_gateway_t *self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    self->cfg = *cfg;
    kmx_gw_arena_install(); // before the hub's thread uses jansson
    const char *why = NULL;
    self->pool = kmx_gw_pool_new(cfg->broker, cfg->read_sockets, cfg->timeout_ms, cfg->tries, &why);
    if (!self->pool)
        kmx_log_error("gateway: cannot make its clients (read sockets %s): %s",
                      cfg->read_sockets ? cfg->read_sockets : "none", why);
    // A few clients connected before the first request, so it pays no connect.
    kmx_client_t *warm[S_POOL_WARM] = {NULL};
    for (size_t i = 0; self->pool && i < S_POOL_WARM; i++)
        warm[i] = kmx_gw_pool_get(self->pool);
    for (size_t i = 0; self->pool && i < S_POOL_WARM; i++)
        kmx_gw_pool_put(self->pool, warm[i]);
    kmx_gw_hub_config_t hc = {cfg->broker, cfg->events, cfg->ring, cfg->timeout_ms};
    self->hub = self->pool ? kmx_gw_hub_new(&hc) : NULL;
    if (!self->hub) {
        kmx_log_error("gateway: cannot start the event hub");
        kmx_gateway_destroy(&self);
        return NULL;
    }
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_POLL | MHD_USE_ERROR_LOG;
    self->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, s_access, self, MHD_OPTION_EXTERNAL_LOGGER, s_mhd_log, self,
        MHD_OPTION_SOCK_ADDR, &self->cfg.bind, MHD_OPTION_CONNECTION_LIMIT, cfg->max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120, MHD_OPTION_NOTIFY_COMPLETED, s_completed,
        self, MHD_OPTION_THREAD_STACK_SIZE, (size_t)(512 * 1024),
        MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1, MHD_OPTION_END);
    if (!self->daemon) {
        kmx_log_error("gateway: cannot listen on the bind address: %s", strerror(errno));
        kmx_gateway_destroy(&self);
        return NULL;
    }
    return self;
}

unsigned kmx_gateway_port(const kmx_gateway_t *self) {
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(self->daemon, MHD_DAEMON_INFO_BIND_PORT);
    return info ? info->port : 0;
}

void kmx_gateway_destroy(kmx_gateway_t **self_p) {
    if (!self_p || !*self_p)
        return;
    kmx_gateway_t *self = *self_p;
    // The hub first: waiting streams wake and end, so their threads can be joined.
    if (self->hub)
        kmx_gw_hub_stop(self->hub);
    if (self->daemon)
        MHD_stop_daemon(self->daemon);
    kmx_gw_hub_destroy(&self->hub);
    kmx_gw_pool_destroy(&self->pool);
    free(self);
    *self_p = NULL;
}
