/*  libFuzzer harness for files as Korean statistics come: the first byte picks the
    encoding, delimiter and layout, the second the period options, ignore_extra and whether
    the first line travels apart as header_data (as kmx import sends a chunk); the rest is
    a CSV document. Checked beyond "no crash": kmx_text_decode yields well-formed UTF-8 with
    every invalid byte placed on its line, in order; every record of a CSV document has
    UTF-8 strings and normalises or is refused; records and rejections add up to the
    document's slots, never past its limit.  */
#include "kmx_ingest_doc.h"
#include "kmx_record.h"
#include "kmx_text.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define S_CHECK(cond)                                                                              \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

static void s_check_decode(const uint8_t *data, size_t size, kmx_text_enc_t enc) {
    kmx_text_t t;
    if (kmx_text_decode(data, size, enc, &t) != 0)
        return;
    S_CHECK(kmx_text_is_utf8(t.data, t.len));
    S_CHECK(t.n_bad <= t.bad_total && t.n_bad <= KMX_TEXT_BAD_MAX);
    size_t line = 1, from = 0;
    for (size_t i = 0; i < t.n_bad; i++) {
        const kmx_text_bad_t *b = &t.bad[i];
        S_CHECK(b->offset < size && b->offset >= from && b->line_start <= b->offset);
        S_CHECK(data[b->offset] == b->byte);
        for (size_t k = from; k < b->offset; k++)
            line += data[k] == '\n';
        S_CHECK(b->line == line);
        from = b->offset;
    }
    kmx_text_fini(&t);
}

static int s_strings_are_utf8(const Kmx__V1__Record *r) {
    const char *s[] = {r->market, r->category, r->item, r->company, r->artist,
                       r->source, r->as_of,    r->note, r->url};
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) {
        if (s[i] && !kmx_text_is_utf8(s[i], strlen(s[i])))
            return 0;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2)
        return 0;
    static const char *const delims[] = {NULL, ",", ";", "\t", "|", "tab", "semicolon", "x"};
    uint8_t a = data[0], b = data[1];
    data += 2;
    size -= 2;
    s_check_decode(data, size, (kmx_text_enc_t)(a % 3));
    Kmx__V1__RawDocument doc = KMX__V1__RAW_DOCUMENT__INIT;
    doc.has_format = 1;
    doc.format = KMX__V1__RAW_DOCUMENT__FORMAT__CSV;
    doc.has_encoding = 1;
    doc.encoding = a % 3;
    doc.delimiter = (char *)delims[(a >> 2) & 7];
    doc.has_layout = 1;
    doc.layout = (a >> 5) % 3;
    doc.has_date_order = 1;
    doc.date_order = b % 3;
    doc.has_excel_dates = 1;
    doc.excel_dates = (b >> 2) & 1;
    doc.has_ignore_extra = 1;
    doc.ignore_extra = (b >> 3) & 1;
    const uint8_t *nl = memchr(data, '\n', size);
    if ((b >> 4) & 1 && nl) {
        doc.has_header_data = 1;
        doc.header_data.data = (uint8_t *)data;
        doc.header_data.len = (size_t)(nl - data);
        size -= (size_t)(nl + 1 - data);
        data = nl + 1;
        doc.has_first_line = 1;
        doc.first_line = 2;
    }
    static Kmx__V1__RawDocument__ColumnMap map = KMX__V1__RAW_DOCUMENT__COLUMN_MAP__INIT;
    static Kmx__V1__RawDocument__ColumnMap *maps[1] = {&map};
    if ((b >> 5) & 1) {
        map.header = "나라";
        map.field = "market";
        doc.n_columns = 1;
        doc.columns = maps;
    }
    doc.has_data = 1;
    doc.data.data = (uint8_t *)data;
    doc.data.len = size;
    kmx_doc_t out;
    char err[KMX_DOC_ERROR_MAX];
    if (kmx_doc_parse(&doc, &out, err, sizeof err) == 0) {
        S_CHECK(out.n + out.n_rejects == out.slots && out.slots <= KMX_DOC_RECORDS_MAX);
        for (size_t i = 0; i < out.n; i++) {
            S_CHECK(s_strings_are_utf8(out.records[i]));
            kmx_record_problem_t p;
            kmx_record_normalize(out.records[i], &p);
        }
    }
    kmx_doc_fini(&out);
    return 0;
}
