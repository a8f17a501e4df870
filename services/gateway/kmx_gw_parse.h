/*  kmx_gw_parse - what kmx-gateway reads from an HTTP request before it asks a service:
    the route of a method and path, URL query parameters applied as `kmx` options, bearer
    tokens and their roles, sequence numbers (since, Last-Event-ID) and listen addresses.
    Pure functions over untrusted bytes (fuzzed by tests/fuzz/fuzz_gateway.c); every
    refusal carries a sentence naming what is wrong.  */
#ifndef KMX_GW_PARSE_H
#define KMX_GW_PARSE_H

#include "kmx_qargs.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KMX_GW_ERR_MAX 300       // longest refusal sentence, with NUL
#define KMX_GW_TOKENS_MAX 1024   // tokens in a token file
#define KMX_GW_TOKEN_LEN_MAX 256 // longest token, bytes
#define KMX_GW_PREFIXES_MAX 16   // topic prefixes of one event stream

// What a request asks for.
typedef enum {
    KMX_GW_NONE = 0, // no such path (404)
    KMX_GW_HEALTHZ,  // GET /healthz
    KMX_GW_METRICS,  // GET /metrics
    KMX_GW_QUERY,    // GET /v1/query/{exports|consumption}
    KMX_GW_RECORDS,  // GET /v1/records: one page of records
    KMX_GW_RECORD,   // GET /v1/record: one record by natural key; DELETE removes it
    KMX_GW_IMPORT,   // POST /v1/import
    KMX_GW_EVENTS,   // GET /v1/events (Server-Sent Events)
    KMX_GW_STATIC,   // GET of a dashboard file (/, /app.js, ...)
    KMX_GW_CATALOG,  // GET /v1/catalog: what the store holds
    KMX_GW_HISTORY,  // GET /v1/history: a figure's revisions
} kmx_gw_endpoint_t;

typedef enum { KMX_GW_ROLE_NONE = 0, KMX_GW_ROLE_READER, KMX_GW_ROLE_WRITER } kmx_gw_role_t;

typedef struct {
    kmx_gw_endpoint_t endpoint; // what is asked for
    bool write;                 // the request changes data (writer role)
    bool method_ok;             // the method is allowed on the path (else 405)
    const char *kind;           // KMX_GW_QUERY: "exports" or "consumption" (static text)
} kmx_gw_route_t;

// Routes method and path (without the query string). Paths outside /v1, /healthz and
// /metrics that contain no ".." are dashboard files.
void kmx_gw_route(const char *method, const char *path, kmx_gw_route_t *out);

// Applies one URL query parameter to a (a `kmx query|list|get` option of the same
// name, "time-series" or "time_series"). A switch takes "", "1" or "true". The
// gateway's own parameters (kind, access_token) are skipped. Returns 0, or -1 with err
// naming the parameter.
int kmx_gw_param(kmx_qargs_t *a, const char *key, const char *value, char *err);

// Parses a non-negative decimal sequence number (since=, Last-Event-ID). Returns 0 or -1.
int kmx_gw_seq_parse(const char *text, uint64_t *out);

// Parses "HOST:PORT" (IPv4 dotted quad or "localhost"; PORT 0-65535) into addr.
// Returns 0 or -1 with err saying why.
int kmx_gw_addr_parse(const char *text, struct sockaddr_in *addr, char *err);

// ---- tokens ------------------------------------------------------------------------------

typedef struct {
    char token[KMX_GW_TOKEN_LEN_MAX + 1]; // the secret
    kmx_gw_role_t role;                   // what it may do
} kmx_gw_token_t;

typedef struct {
    kmx_gw_token_t *items; // malloc'd
    size_t n;              // tokens held
} kmx_gw_tokens_t;

// Parses a token file: one "<token> <reader|writer> [name...]" per line, '#' comments,
// blank lines ignored. On 0 *out holds the tokens (free with kmx_gw_tokens_fini). Returns
// -1 with err naming the line for a bad role, a token that is too long or repeated,
// or too many tokens.
int kmx_gw_tokens_parse(const char *text, size_t len, kmx_gw_tokens_t *out, char *err);
void kmx_gw_tokens_fini(kmx_gw_tokens_t *tokens);

// The role of an Authorization header value ("Bearer <token>") or of a bare token, or
// KMX_GW_ROLE_NONE when it matches none. Compares in time independent of where a token
// differs.
kmx_gw_role_t kmx_gw_tokens_role(const kmx_gw_tokens_t *tokens, const char *header,
                                 const char *bare);

#endif
