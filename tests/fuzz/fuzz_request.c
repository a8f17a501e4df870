/*  libFuzzer harness for request decoding and ingest validation: any bytes are a
    Request body handed to kmx_ingest_handle with no storage link, so puts and documents
    are decoded, validated and checked for repeats, then answered UNAVAILABLE (dry runs
    are answered in full). The reply must always be a Response that decodes.  */
#include "kmx_ingest.h"
#include "kmx_log.h"
#include "kmx_msg.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
        kmx__v1__response__free_unpacked(resp, NULL);
    }
    free(out);
    return 0;
}
