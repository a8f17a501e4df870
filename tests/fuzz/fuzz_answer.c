/*  libFuzzer harness for whole queries answered inside kmx-storage: any bytes are a
    QueryRequest body, answered by kmx_answer_query_opt over a small real LMDB store
    (full years of months, partial years and other spans, two units, three categories).
    Every answer must be a Response that decodes, and the answer with years of months
    folded into one row must be byte for byte the answer computed month by month. Queries
    the independent reference (answer_ref.c, from docs/queries.md) covers must also match
    it: sums, shares, top N, "(other)", growth, coverage and --complete.  */
#include "answer_data.h"
#include "answer_ref.h"
#include "kmx_answer.h"
#include "kmx_log.h"
#include "kmx_msg.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

// The data set as the reference sees it (answer_data.c).
static answer_ref_rec_t s_recs[ANSWER_DATA_MAX];
static size_t s_n;

static kmx_store_t *s_store(void) {
    char dir[] = "/tmp/kmx-fuzz-answer-XXXXXX";
    if (!mkdtemp(dir))
        abort();
    kmx_store_config_t cfg = {.sync = KMX_STORE_SYNC_NONE};
    kmx_store_t *store = NULL;
    if (kmx_store_open(dir, &cfg, &store) != 0)
        abort();
    s_n = answer_data_fill(store, s_recs);
    if (s_n == 0)
        abort();
    return store;
}

// Answers req; the reply must decode. Returns the packed reply (malloc'd) or NULL.
static uint8_t *s_answer(kmx_store_t *store, const Kmx__V1__Request *req, int fold, size_t *len) {
    uint8_t *out = NULL;
    if (kmx_answer_query_opt(store, req, fold, NULL, &out, len) != 0)
        return NULL; // nothing could be packed (out of memory)
    Kmx__V1__Response *resp = kmx_msg_response_unpack(out, *len);
    if (!resp)
        abort(); // every reply must decode
    kmx__v1__response__free_unpacked(resp, NULL);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static kmx_store_t *store;
    if (!store) {
        kmx_log_set_level("error");
        store = s_store();
    }
    Kmx__V1__QueryRequest *q = kmx__v1__query_request__unpack(NULL, size, data);
    if (!q)
        return 0;
    Kmx__V1__Request req = KMX__V1__REQUEST__INIT;
    req.request_id = "fuzz";
    req.body_case = KMX__V1__REQUEST__BODY_QUERY;
    req.query = q;
    size_t alen = 0, blen = 0;
    uint8_t *a = s_answer(store, &req, 1, &alen);
    uint8_t *b = s_answer(store, &req, 0, &blen);
    if (a && b && (alen != blen || memcmp(a, b, alen) != 0))
        abort(); // folding a year of months changed the answer
    if (a) {     // and the reference agrees where it covers the query
        Kmx__V1__Response *resp = kmx_msg_response_unpack(a, alen);
        char why[512];
        if (answer_ref_check(s_recs, s_n, q, resp, why, sizeof why) < 0) {
            fprintf(stderr, "fuzz_answer: the answer differs from the reference: %s\n", why);
            abort();
        }
        kmx__v1__response__free_unpacked(resp, NULL);
    }
    free(a);
    free(b);
    kmx__v1__query_request__free_unpacked(q, NULL);
    return 0;
}
