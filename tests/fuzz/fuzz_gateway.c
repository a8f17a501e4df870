/*  libFuzzer harness of kmx-gateway's request parsing: any bytes taken as a method, a path,
    a query string (split and %-decoded as libmicrohttpd hands it over), an Authorization
    header, a Last-Event-ID and a token file. Every parameter goes through kmx_gw_param
    for each command, the arguments are finished into requests and a query's columns are
    rendered as JSON; nothing may crash, leak or read out of bounds, and a refusal must
    always carry its sentence.  */
#include "kmx_gw_parse.h"

#include "kmx_json.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

// Splits data at the first '\n' into a NUL-terminated copy; advances *p.
static char *s_line(const uint8_t **p, const uint8_t *end) {
    const uint8_t *nl = memchr(*p, '\n', (size_t)(end - *p));
    size_t n = nl ? (size_t)(nl - *p) : (size_t)(end - *p);
    char *s = malloc(n + 1);
    memcpy(s, *p, n);
    s[n] = '\0';
    *p = nl ? nl + 1 : end;
    return s;
}

static int s_hex(char c) {
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

// %-decodes s in place ('+' is a blank), as libmicrohttpd does for arguments.
static void s_unescape(char *s) {
    char *o = s;
    for (char *p = s; *p; p++) {
        if (*p == '%' && s_hex(p[1]) >= 0 && s_hex(p[2]) >= 0) {
            *o++ = (char)(s_hex(p[1]) * 16 + s_hex(p[2]));
            p += 2;
        } else {
            *o++ = *p == '+' ? ' ' : *p;
        }
    }
    *o = '\0';
}

static void s_apply(kmx_qargs_cmd_t cmd, char *query) {
    kmx_qargs_t a;
    kmx_qargs_init(&a, cmd);
    char err[KMX_GW_ERR_MAX];
    char *copy = strdup(query);
    char *save = NULL;
    int failed = 0;
    for (char *pair = strtok_r(copy, "&", &save); pair && !failed;
         pair = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(pair, '=');
        if (eq)
            *eq = '\0';
        s_unescape(pair);
        if (eq)
            s_unescape(eq + 1);
        err[0] = '\0';
        failed = kmx_gw_param(&a, pair, eq ? eq + 1 : NULL, err) < 0;
        if (failed && !err[0])
            abort(); // a refusal without its sentence
    }
    if (!failed && kmx_qargs_finish(&a) == 0) {
        if (cmd == KMX_QARGS_QUERY) {
            Kmx__V1__QueryRequest q = KMX__V1__QUERY_REQUEST__INIT;
            kmx_qargs_query_request(&a, &q);
            Kmx__V1__QueryResult res = KMX__V1__QUERY_RESULT__INIT;
            kmx_qcols_t cols;
            kmx_qargs_columns(&a, &res, &cols);
            json_decref(kmx_qargs_json(&cols, &res));
        } else if (cmd == KMX_QARGS_GET) {
            Kmx__V1__Record key = KMX__V1__RECORD__INIT;
            Kmx__V1__Period period = KMX__V1__PERIOD__INIT;
            kmx_qargs_get_key(&a, &key, &period);
        } else if (a.page_token) {
            Kmx__V1__ScanRequest scan = KMX__V1__SCAN_REQUEST__INIT;
            kmx_qargs_page_token(&a, a.page_token, &scan);
            free(scan.page_token.data);
        }
    }
    kmx_qargs_fini(&a);
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *p = data, *end = data + size;
    char *method = s_line(&p, end), *path = s_line(&p, end), *query = s_line(&p, end);
    char *auth = s_line(&p, end), *last = s_line(&p, end);
    kmx_gw_route_t route;
    kmx_gw_route(method, path, &route);
    s_apply(KMX_QARGS_QUERY, query);
    s_apply(KMX_QARGS_LIST, query);
    s_apply(KMX_QARGS_GET, query);
    uint64_t seq = 0;
    kmx_gw_seq_parse(last, &seq);
    struct sockaddr_in addr;
    char err[KMX_GW_ERR_MAX];
    kmx_gw_addr_parse(last, &addr, err);
    kmx_gw_tokens_t tokens;
    if (kmx_gw_tokens_parse((const char *)p, (size_t)(end - p), &tokens, err) == 0) {
        kmx_gw_tokens_role(&tokens, auth, NULL);
        kmx_gw_tokens_role(&tokens, NULL, auth);
        kmx_gw_tokens_fini(&tokens);
    }
    free(method), free(path), free(query), free(auth), free(last);
    return 0;
}
