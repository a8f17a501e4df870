/*  kmx_gw_parse - routes, parameters, tokens and addresses of kmx-gateway's requests.  */
#include "kmx_gw_parse.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct {
    const char *path;           // exact path
    kmx_gw_endpoint_t endpoint; // what it is
    const char *methods;        // allowed methods, space-separated
} s_routes[] = {
    {"/healthz", KMX_GW_HEALTHZ, "GET HEAD"},
    {"/metrics", KMX_GW_METRICS, "GET HEAD"},
    {"/v1/query", KMX_GW_QUERY, "GET"},
    {"/v1/query/exports", KMX_GW_QUERY, "GET"},
    {"/v1/query/consumption", KMX_GW_QUERY, "GET"},
    {"/v1/records", KMX_GW_RECORDS, "GET"},
    {"/v1/record", KMX_GW_RECORD, "GET HEAD DELETE"},
    {"/v1/import", KMX_GW_IMPORT, "POST"},
    {"/v1/events", KMX_GW_EVENTS, "GET"},
    {"/v1/catalog", KMX_GW_CATALOG, "GET HEAD"},
    {"/v1/history", KMX_GW_HISTORY, "GET HEAD"},
};

static bool s_method_in(const char *method, const char *list) {
    size_t n = strlen(method);
    for (const char *p = list; *p;) {
        const char *end = strchr(p, ' ');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && strncmp(p, method, n) == 0)
            return true;
        p += len + (end ? 1 : 0);
    }
    return false;
}

void kmx_gw_route(const char *method, const char *path, kmx_gw_route_t *out) {
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < sizeof(s_routes) / sizeof(s_routes[0]); i++) {
        if (strcmp(path, s_routes[i].path) != 0)
            continue;
        out->endpoint = s_routes[i].endpoint;
        out->method_ok = s_method_in(method, s_routes[i].methods);
        out->write = strcmp(method, "POST") == 0 || strcmp(method, "DELETE") == 0;
        if (strcmp(path, "/v1/query/exports") == 0)
            out->kind = "exports";
        else if (strcmp(path, "/v1/query/consumption") == 0)
            out->kind = "consumption";
        return;
    }
    bool api = strncmp(path, "/v1/", 4) == 0 || strcmp(path, "/v1") == 0;
    if (api || path[0] != '/' || strstr(path, "..") || strchr(path, '\\'))
        return;
    out->endpoint = KMX_GW_STATIC;
    out->method_ok = s_method_in(method, "GET HEAD");
}

static bool s_switch_on(const char *value, bool *on) {
    if (!value || !*value || strcmp(value, "1") == 0 || strcmp(value, "true") == 0)
        *on = true;
    else if (strcmp(value, "0") == 0 || strcmp(value, "false") == 0)
        *on = false;
    else
        return false;
    return true;
}

int kmx_gw_param(kmx_qargs_t *a, const char *key, const char *value, char *err) {
    if (strcmp(key, "kind") == 0 && a->cmd == KMX_QARGS_QUERY) {
        if (kmx_qargs_set_kind(a, value ? value : "") == 0)
            return 0;
        snprintf(err, KMX_GW_ERR_MAX, "kind: %.280s", a->err);
        return -1;
    }
    if (strcmp(key, "access_token") == 0)
        return 0;
    char name[64];
    snprintf(name, sizeof(name), "%s", key);
    for (char *p = name; *p; p++)
        *p = *p == '_' ? '-' : *p;
    const kmx_qargs_option_t *o = strlen(key) < sizeof(name) ? kmx_qargs_find(name) : NULL;
    if (!o) {
        snprintf(err, KMX_GW_ERR_MAX,
                 "unknown parameter \"%.60s\" (the options of kmx query, "
                 "list and get are the parameters, without the leading --)",
                 key);
        return -1;
    }
    bool on = true;
    if (!o->has_value && !s_switch_on(value, &on)) {
        snprintf(err, KMX_GW_ERR_MAX,
                 "%s is a switch: give it no value, 1/true or 0/false, "
                 "not \"%.60s\"",
                 key, value);
        return -1;
    }
    if (o->has_value && (!value || !*value)) {
        snprintf(err, KMX_GW_ERR_MAX, "%s wants a value", key);
        return -1;
    }
    if (!on)
        return 0;
    int rc = kmx_qargs_set(a, o->code, o->has_value ? value : NULL);
    if (rc == 0)
        snprintf(err, KMX_GW_ERR_MAX, "parameter \"%s\" does not apply here", key);
    else if (rc < 0)
        snprintf(err, KMX_GW_ERR_MAX, "%s", a->err);
    return rc == 1 ? 0 : -1;
}

int kmx_gw_seq_parse(const char *text, uint64_t *out) {
    unsigned long long v = 0;
    if (kmx_qargs_parse_u64(text, UINT64_MAX - 1, &v) < 0)
        return -1;
    *out = v;
    return 0;
}

int kmx_gw_addr_parse(const char *text, struct sockaddr_in *addr, char *err) {
    const char *colon = strrchr(text, ':');
    char host[64];
    unsigned long long port = 0;
    if (!colon || (size_t)(colon - text) >= sizeof(host) ||
        kmx_qargs_parse_u64(colon + 1, 65535, &port) < 0) {
        snprintf(err, KMX_GW_ERR_MAX, "\"%.80s\" is not HOST:PORT (e.g. 127.0.0.1:8480)", text);
        return -1;
    }
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';
    memset(addr, 0, sizeof(*addr));
    addr->sin_family = AF_INET;
    addr->sin_port = htons((uint16_t)port);
    if (strcmp(host, "localhost") == 0)
        snprintf(host, sizeof(host), "127.0.0.1");
    if (inet_pton(AF_INET, host, &addr->sin_addr) != 1) {
        snprintf(err, KMX_GW_ERR_MAX, "\"%s\" is not an IPv4 address", host);
        return -1;
    }
    return 0;
}

// ---- tokens ------------------------------------------------------------------------------

void kmx_gw_tokens_fini(kmx_gw_tokens_t *tokens) {
    free(tokens->items);
    tokens->items = NULL;
    tokens->n = 0;
}

// Splits the next blank-separated word off *p (within end). Returns its length.
static size_t s_word(const char **p, const char *end, const char **word) {
    while (*p < end && (**p == ' ' || **p == '\t'))
        (*p)++;
    *word = *p;
    while (*p < end && **p != ' ' && **p != '\t')
        (*p)++;
    return (size_t)(*p - *word);
}

static int s_token_line(kmx_gw_tokens_t *out, const char *p, const char *end, size_t line,
                        char *err) {
    const char *tok, *role;
    size_t tlen = s_word(&p, end, &tok);
    if (tlen == 0 || *tok == '#')
        return 0;
    size_t rlen = s_word(&p, end, &role);
    kmx_gw_role_t r = rlen == 6 && strncmp(role, "reader", 6) == 0   ? KMX_GW_ROLE_READER
                      : rlen == 6 && strncmp(role, "writer", 6) == 0 ? KMX_GW_ROLE_WRITER
                                                                     : KMX_GW_ROLE_NONE;
    if (r == KMX_GW_ROLE_NONE) {
        snprintf(err, KMX_GW_ERR_MAX, "line %zu: the role must be reader or writer", line);
        return -1;
    }
    if (tlen > KMX_GW_TOKEN_LEN_MAX || tlen < 16) {
        snprintf(err, KMX_GW_ERR_MAX, "line %zu: a token has 16 to %d characters", line,
                 KMX_GW_TOKEN_LEN_MAX);
        return -1;
    }
    for (size_t i = 0; i < out->n; i++) {
        if (strlen(out->items[i].token) == tlen && memcmp(out->items[i].token, tok, tlen) == 0) {
            snprintf(err, KMX_GW_ERR_MAX, "line %zu: the token is listed twice", line);
            return -1;
        }
    }
    if (out->n >= KMX_GW_TOKENS_MAX) {
        snprintf(err, KMX_GW_ERR_MAX, "line %zu: more than %d tokens", line, KMX_GW_TOKENS_MAX);
        return -1;
    }
    kmx_gw_token_t *t = &out->items[out->n++];
    memcpy(t->token, tok, tlen);
    t->token[tlen] = '\0';
    t->role = r;
    return 0;
}

int kmx_gw_tokens_parse(const char *text, size_t len, kmx_gw_tokens_t *out, char *err) {
    memset(out, 0, sizeof(*out));
    out->items = calloc(KMX_GW_TOKENS_MAX, sizeof(*out->items));
    if (!out->items) {
        snprintf(err, KMX_GW_ERR_MAX, "out of memory");
        return -1;
    }
    const char *p = text, *end = text + len;
    for (size_t line = 1; p < end; line++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl ? nl : end;
        if (stop > p && stop[-1] == '\r')
            stop--;
        if (memchr(p, '\0', (size_t)(stop - p))) {
            snprintf(err, KMX_GW_ERR_MAX, "line %zu: a NUL byte", line);
            kmx_gw_tokens_fini(out);
            return -1;
        }
        if (s_token_line(out, p, stop, line, err) < 0) {
            kmx_gw_tokens_fini(out);
            return -1;
        }
        p = nl ? nl + 1 : end;
    }
    return 0;
}

// Compares without stopping at the first difference, so timing tells nothing.
static bool s_same(const char *a, size_t alen, const char *b) {
    size_t blen = strlen(b);
    unsigned char diff = (unsigned char)(alen != blen);
    for (size_t i = 0; i < alen && i < blen; i++)
        diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

kmx_gw_role_t kmx_gw_tokens_role(const kmx_gw_tokens_t *tokens, const char *header,
                                 const char *bare) {
    const char *tok = bare;
    if (header) {
        if (strncasecmp(header, "Bearer ", 7) != 0)
            return KMX_GW_ROLE_NONE;
        tok = header + 7;
        while (*tok == ' ')
            tok++;
    }
    if (!tok || !*tok)
        return KMX_GW_ROLE_NONE;
    size_t len = strlen(tok);
    while (len > 0 && (tok[len - 1] == ' ' || tok[len - 1] == '\t'))
        len--;
    kmx_gw_role_t role = KMX_GW_ROLE_NONE;
    for (size_t i = 0; i < tokens->n; i++) {
        if (s_same(tok, len, tokens->items[i].token))
            role = tokens->items[i].role;
    }
    return role;
}
