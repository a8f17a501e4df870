/*  libFuzzer harness for the document parsers: the first byte picks CSV or JSON Lines
    (and whether a separate header is used), the rest is the document. Every accepted
    row goes through kmx_import and kmx_record_normalize, as in kmx-ingest.
    Round trip: the records that normalized, written as `kmx list --format csv` writes
    them (kmx_format) and parsed again, are the same records, none rejected.  */
#include "kmx_format.h"
#include "kmx_ingest_doc.h"
#include "kmx_msg.h"
#include "kmx_record.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Packs a record for comparison. Returns a malloc'd buffer and its length in *len.
static uint8_t *s_pack(const Kmx__V1__Record *rec, size_t *len) {
    *len = kmx__v1__record__get_packed_size(rec);
    uint8_t *buf = malloc(*len ? *len : 1);
    if (!buf)
        abort();
    kmx__v1__record__pack(rec, buf);
    return buf;
}

// Writes recs as CSV (header and rows, all record columns), parses it and checks that
// every record comes back unchanged. Aborts on a difference.
static void s_round_trip(Kmx__V1__Record **recs, size_t n) {
    char *text = NULL;
    size_t text_len = 0;
    FILE *f = open_memstream(&text, &text_len);
    if (!f)
        abort();
    kmx_format_csv_row(f, kmx_format_record_columns, KMX_FORMAT_RECORD_NCOLS);
    for (size_t i = 0; i < n; i++) {
        kmx_format_record_t fr;
        kmx_format_record_init(&fr, recs[i], 0, 0);
        kmx_format_csv_row(f, fr.cells, KMX_FORMAT_RECORD_NCOLS);
    }
    fclose(f);
    Kmx__V1__RawDocument doc = KMX__V1__RAW_DOCUMENT__INIT;
    doc.format = KMX__V1__RAW_DOCUMENT__FORMAT__CSV;
    doc.data.data = (uint8_t *)text;
    doc.data.len = text_len;
    kmx_doc_t again;
    char err[KMX_DOC_ERROR_MAX];
    if (kmx_doc_parse(&doc, &again, err, sizeof err) != 0 || again.n != n || again.n_rejects) {
        fprintf(stderr, "round trip: %zu records written, %zu read back, %zu rejected (%s%s%s)\n%s",
                n, again.n, again.n_rejects, err, again.n_rejects ? ": " : "",
                again.n_rejects ? again.rejects[0].reason : "", text);
        abort();
    }
    for (size_t i = 0; i < n; i++) {
        kmx_record_problem_t p;
        if (kmx_record_normalize(again.records[i], &p) != 0) {
            fprintf(stderr, "round trip: record %zu no longer valid: %s: %s\n%s", i,
                    p.field ? p.field : "?", p.reason, text);
            abort();
        }
        size_t la = 0, lb = 0;
        uint8_t *a = s_pack(recs[i], &la);
        uint8_t *b = s_pack(again.records[i], &lb);
        if (la != lb || memcmp(a, b, la) != 0) {
            fprintf(stderr, "round trip: record %zu differs after CSV and back\n%s", i, text);
            abort();
        }
        free(a);
        free(b);
    }
    kmx_doc_fini(&again);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1)
        return 0;
    Kmx__V1__RawDocument doc = KMX__V1__RAW_DOCUMENT__INIT;
    doc.format =
        (data[0] & 1) ? KMX__V1__RAW_DOCUMENT__FORMAT__JSONL : KMX__V1__RAW_DOCUMENT__FORMAT__CSV;
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
        Kmx__V1__Record **valid = malloc((out.n ? out.n : 1) * sizeof *valid);
        size_t n = 0;
        if (!valid)
            abort();
        for (size_t i = 0; i < out.n; i++) {
            kmx_record_problem_t p;
            if (kmx_record_normalize(out.records[i], &p) == 0)
                valid[n++] = out.records[i];
        }
        s_round_trip(valid, n);
        free(valid);
    }
    kmx_doc_fini(&out);
    return 0;
}
