/*  libFuzzer harness for request decoding and ingest validation: any bytes are a
    Request body handed to kmx_ingest_handle with no storage link, so puts and documents
    are decoded, validated and checked for repeats, then answered UNAVAILABLE (dry runs
    are answered in full). Oracle, besides "every reply decodes":
    - bytes that are no Request are answered BAD_REQUEST;
    - ping and stats are answered with their results;
    - a dry run (validate_only, not atomic) of a document that parses is answered with a
      PutResult counting every row read, never an error;
    - nothing is answered INTERNAL (the service's own fault).  */
#include "kmx_ingest.h"
#include "kmx_ingest_doc.h"
#include "kmx_log.h"
#include "kmx_msg.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void s_expect(int ok, const char *what, const Kmx__V1__Response *resp) {
    if (ok)
        return;
    fprintf(stderr, "fuzz_request: %s; reply: %s%s\n", what,
            resp->result_case == KMX__V1__RESPONSE__RESULT_ERROR ? "error " : "result",
            resp->result_case == KMX__V1__RESPONSE__RESULT_ERROR && resp->error->message
                ? resp->error->message
                : "");
    abort();
}

// The rows kmx_doc_parse reads from the document, or -1 when it refuses it whole.
static long s_rows_read(const Kmx__V1__RawDocument *raw) {
    kmx_doc_t doc;
    char err[KMX_DOC_ERROR_MAX];
    long rows = kmx_doc_parse(raw, &doc, err, sizeof err) == 0 ? (long)doc.rows_read : -1;
    kmx_doc_fini(&doc);
    return rows;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static kmx_ingest_t *ingest;
    if (!ingest) {
        kmx_log_set_level("error"); // one info line per request would drown the output
        ingest = kmx_ingest_new(NULL, "fuzz");
    }
    uint8_t *out = NULL;
    size_t len = 0;
    if (kmx_ingest_handle(ingest, data, size, &out, &len) == 0) {
        Kmx__V1__Response *resp = kmx_msg_response_unpack(out, len);
        if (!resp)
            abort(); // every reply must decode
        int is_error = resp->result_case == KMX__V1__RESPONSE__RESULT_ERROR;
        s_expect(!is_error || resp->error->code != KMX__V1__ERROR_CODE__INTERNAL,
                 "answered INTERNAL", resp);
        Kmx__V1__Request *req = kmx_msg_request_unpack(data, size);
        if (!req) {
            s_expect(is_error && resp->error->code == KMX__V1__ERROR_CODE__BAD_REQUEST,
                     "bytes that are no Request not answered BAD_REQUEST", resp);
        } else if (req->body_case == KMX__V1__REQUEST__BODY_PING) {
            s_expect(resp->result_case == KMX__V1__RESPONSE__RESULT_PONG, "ping not answered",
                     resp);
        } else if (req->body_case == KMX__V1__REQUEST__BODY_STATS) {
            s_expect(resp->result_case == KMX__V1__RESPONSE__RESULT_STATS, "stats not answered",
                     resp);
        } else if (req->body_case == KMX__V1__REQUEST__BODY_DOCUMENT &&
                   req->document->validate_only && !req->document->atomic) {
            long rows = s_rows_read(req->document);
            if (rows >= 0) {
                s_expect(resp->result_case == KMX__V1__RESPONSE__RESULT_PUT,
                         "a dry run of a document that parses was refused", resp);
                s_expect((long)resp->put->records == rows, "a dry run miscounted its rows", resp);
            }
        }
        kmx__v1__request__free_unpacked(req, NULL);
        kmx__v1__response__free_unpacked(resp, NULL);
    }
    free(out);
    return 0;
}
