/*  libFuzzer harness for the document parsers: the first byte picks CSV or JSON Lines
    (and whether a separate header is used), the rest is the document. Every accepted
    row goes through kmx_import and kmx_record_normalize, as in kmx-ingest.  */
#include "kmx_ingest_doc.h"
#include "kmx_record.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1)
        return 0;
    Kmx__V1__RawDocument doc = KMX__V1__RAW_DOCUMENT__INIT;
    doc.format = (data[0] & 1) ? KMX__V1__RAW_DOCUMENT__FORMAT__JSONL
                               : KMX__V1__RAW_DOCUMENT__FORMAT__CSV;
    if (data[0] & 2)
        doc.header = "kind,period,market,category,item,value,unit,source";
    if (data[0] & 4) {
        static Kmx__V1__RawDocument__Default d = KMX__V1__RAW_DOCUMENT__DEFAULT__INIT;
        static Kmx__V1__RawDocument__Default *dp[1] = {&d};
        d.column = "unit";
        d.value = "USD million";
        doc.n_defaults = 1;
        doc.defaults = dp;
    }
    doc.has_first_line = 1;
    doc.first_line = data[0] >> 3;
    doc.data.data = (uint8_t *)data + 1;
    doc.data.len = size - 1;
    kmx_doc_t out;
    char err[KMX_DOC_ERROR_MAX];
    if (kmx_doc_parse(&doc, &out, err, sizeof err) == 0) {
        for (size_t i = 0; i < out.n; i++) {
            kmx_record_problem_t p;
            kmx_record_normalize(out.records[i], &p);
        }
    }
    kmx_doc_fini(&out);
    return 0;
}
