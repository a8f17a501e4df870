/*  Tests for kmx_ingest_doc: a table of accepted forms (each with the record it must
    become) and of rejected inputs (each with its line, column and reason), for CSV and
    JSON Lines, plus the document-level limits.  */
#include "kmx_ingest_doc.h"

#include "kmx_err.h"
#include "kmx_record.h"

#include <iconv.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define S_HEADER "kind,period,market,category,item,value,unit,source\n"

// One accepted row: the cells after kind, as CSV, and what the record must hold.
typedef struct {
    const char *row;    // CSV data row (header S_HEADER)
    uint32_t start;     // period start
    uint32_t end;       // period end
    const char *market; // canonical market after normalisation
    int64_t amount;     // ten-thousandths
    const char *unit;   // base unit
} s_accept_t;

static const s_accept_t s_accepted[] = {
    {"export,2025,JP,c,i,1.5,USD_million,s", 202501, 202512, "JP", 15000000000LL, "USD"},
    {"export,2025-H1,Japan,c,i,1,USD,s", 202501, 202506, "JP", 10000, "USD"},
    {"export,1H 2025,japan,c,i,1,USD,s", 202501, 202506, "JP", 10000, "USD"},
    {"export,H2 2025,United States,c,i,1,USD,s", 202507, 202512, "US", 10000, "USD"},
    {"export,2024-Q3,WORLD,c,i,1,USD,s", 202407, 202409, "WORLD", 10000, "USD"},
    {"export,Q3 2024,CN,c,i,1,USD,s", 202407, 202409, "CN", 10000, "USD"},
    {"export,2024Q3,CN,c,i,1,USD,s", 202407, 202409, "CN", 10000, "USD"},
    {"export,2024-03,TW,c,i,1,USD,s", 202403, 202403, "TW", 10000, "USD"},
    {"export,Mar 2024,TW,c,i,1,USD,s", 202403, 202403, "TW", 10000, "USD"},
    {"export,2023-01/2023-04,JP+CN+US,c,i,1,USD,s", 202301, 202304, "JP+CN+US", 10000, "USD"},
    {"export,2024,JP,c,i,\"1,801.45\",USD,s", 202401, 202412, "JP", 18014500, "USD"},
    {"export,2024,JP,c,i,233.113,USD million,s", 202401, 202412, "JP", 2331130000000LL, "USD"},
    {"export,2024,JP,c,i,2,KRW bn,s", 202401, 202412, "JP", 20000000000000LL, "KRW"},
    {"export,2024,JP,c,i,0.0001,KRW_billion,s", 202401, 202412, "JP", 1000000000LL, "KRW"},
    {"consumption,2024,,c,i,41.5,%,s", 202401, 202412, "KR", 415000, "percent"},
    {"consumption,2024,,c,i,3.2,percent_share,s", 202401, 202412, "KR", 32000, "percent_share"},
    {"exports,2024,JP,c,i,5,rank,s", 202401, 202412, "JP", 50000, "rank"},
    {"consumption,2024,,c,i,-1.5,percent_yoy,s", 202401, 202412, "KR", -15000, "percent_yoy"},
};

// One rejected row: the data row, the column the error must name and a reason word.
typedef struct {
    const char *row;    // CSV data row (header S_HEADER)
    const char *column; // expected column ("" for the row as a whole)
    const char *word;   // expected in the reason
} s_reject_t;

static const s_reject_t s_rejected[] = {
    {"export,2024-13,JP,c,i,1,USD,s", "period", "invalid period"},
    {"export,2025-H3,JP,c,i,1,USD,s", "period", "invalid period"},
    {"export,Q5 2024,JP,c,i,1,USD,s", "period", "invalid period"},
    {"export,,JP,c,i,1,USD,s", "period", "empty"},
    {"imports,2024,JP,c,i,1,USD,s", "kind", "unknown kind"},
    {"export,2024,JP,c,i,1,dollars,s", "unit", "unknown unit"},
    {"export,2024,JP,c,i,1,percent_million,s", "unit", "unknown unit"},
    {"export,2024,JP,c,i,1.2.3,USD,s", "value", "invalid value"},
    {"export,2024,JP,c,i,1e3,USD,s", "value", "invalid value"},
    {"export,2024,JP,c,i,0.00001,USD,s", "value", "at most 4"},
    {"export,2024,JP,c,i,99999999999999,USD_trillion,s", "value", "out of range"},
    {"export,2024,JP,c,,1,USD,s", "item", "empty"},
    {"export,2024,JP,c,i,1,USD", "", "fields"},
    {"export,2024,JP,c,i,1,USD,s,extra", "", "fields"},
    {"export,2024,JP,c,\"open,1,USD,s", "", "quoted"},
};

static Kmx__V1__RawDocument s_doc(const char *text, int jsonl) {
    Kmx__V1__RawDocument doc = KMX__V1__RAW_DOCUMENT__INIT;
    doc.format = jsonl ? KMX__V1__RAW_DOCUMENT__FORMAT__JSONL : KMX__V1__RAW_DOCUMENT__FORMAT__CSV;
    doc.data.data = (uint8_t *)text;
    doc.data.len = strlen(text);
    return doc;
}

static void test_doc_accepts_the_forms_sources_write(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof s_accepted / sizeof s_accepted[0]; i++) {
        const s_accept_t *a = &s_accepted[i];
        char text[512];
        snprintf(text, sizeof text, S_HEADER "%s\n", a->row);
        Kmx__V1__RawDocument doc = s_doc(text, 0);
        kmx_doc_t out;
        char err[KMX_DOC_ERROR_MAX];
        assert_int_equal(kmx_doc_parse(&doc, &out, err, sizeof err), 0);
        if (out.n != 1)
            fail_msg("row '%s' rejected: %s", a->row, out.n_rejects ? out.rejects[0].reason : "");
        Kmx__V1__Record *rec = out.records[0];
        kmx_record_problem_t p;
        if (kmx_record_normalize(rec, &p) != 0)
            fail_msg("row '%s' invalid: %s", a->row, p.reason);
        assert_int_equal(out.rows[0], 2);
        assert_int_equal(rec->period->start, a->start);
        assert_int_equal(rec->period->end, a->end);
        assert_string_equal(rec->market, a->market);
        if (rec->value->amount != a->amount)
            fail_msg("row '%s': amount %lld", a->row, (long long)rec->value->amount);
        assert_string_equal(rec->value->unit, a->unit);
        kmx_doc_fini(&out);
    }
}

static void test_doc_rejects_bad_rows_with_line_column_and_reason(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof s_rejected / sizeof s_rejected[0]; i++) {
        const s_reject_t *r = &s_rejected[i];
        char text[512];
        // A good row first, so the bad one is line 3 and data row 1.
        snprintf(text, sizeof text, S_HEADER "export,2024,JP,c,i,1,USD,s\n%s\n", r->row);
        Kmx__V1__RawDocument doc = s_doc(text, 0);
        kmx_doc_t out;
        char err[KMX_DOC_ERROR_MAX];
        assert_int_equal(kmx_doc_parse(&doc, &out, err, sizeof err), 0);
        if (out.n_rejects != 1)
            fail_msg("row '%s' was accepted", r->row);
        assert_int_equal(out.n, 1);
        assert_int_equal(out.rejects[0].row, 3);
        assert_int_equal(out.rejects[0].index, 1);
        if (strcmp(out.rejects[0].column, r->column) != 0 ||
            !strstr(out.rejects[0].reason, r->word))
            fail_msg("row '%s': column '%s' reason '%s'", r->row, out.rejects[0].column,
                     out.rejects[0].reason);
        kmx_doc_fini(&out);
    }
}

static void test_doc_reads_json_lines_and_numbers_exactly(void **state) {
    (void)state;
    const char *text =
        "{\"kind\":\"export\",\"period\":\"1H 2025\",\"country\":\"Japan\",\"category\":\"c\","
        "\"item\":\"i\",\"value\":233.113,\"unit\":\"USD_million\",\"source\":\"s\"}\n"
        "\n"
        "{\"kind\":\"export\",\"period\":\"2024\",\"market\":\"JP\",\"category\":\"c\","
        "\"item\":\"caf\\u00e9\",\"value\":\"12%\",\"source\":null}\n"
        "{\"kind\":\"export\",\"period\":{\"y\":2024}}\n"
        "[1,2]\n"
        "{\"kind\":\"export\",\"kind\":\"export\"}\n";
    Kmx__V1__RawDocument doc = s_doc(text, 1);
    kmx_doc_t out;
    char err[KMX_DOC_ERROR_MAX];
    assert_int_equal(kmx_doc_parse(&doc, &out, err, sizeof err), 0);
    assert_int_equal(out.rows_read, 5);
    assert_int_equal(out.n, 2);
    assert_true(out.records[0]->value->amount == 2331130000000LL);
    assert_int_equal(out.rows[1], 3);
    assert_string_equal(out.records[1]->item, "caf\xc3\xa9");
    assert_string_equal(out.records[1]->value->unit, "percent");
    assert_int_equal(out.n_rejects, 3);
    assert_int_equal(out.rejects[0].row, 4);
    assert_non_null(strstr(out.rejects[0].reason, "nested"));
    assert_non_null(strstr(out.rejects[1].reason, "object"));
    assert_non_null(strstr(out.rejects[2].reason, "twice"));
    kmx_doc_fini(&out);
}

static void test_doc_chunk_with_header_defaults_and_first_line(void **state) {
    (void)state;
    Kmx__V1__RawDocument doc = s_doc("export,2024,JP,c,i,1\nexport,2024,JP,c,i,x\n", 0);
    doc.header = "kind,period,market,category,item,value";
    doc.has_first_line = 1;
    doc.first_line = 1000;
    Kmx__V1__RawDocument__Default d1 = KMX__V1__RAW_DOCUMENT__DEFAULT__INIT;
    Kmx__V1__RawDocument__Default d2 = KMX__V1__RAW_DOCUMENT__DEFAULT__INIT;
    d1.column = "unit";
    d1.value = "KRW bn";
    d2.column = "publisher";
    d2.value = "KOCCA";
    Kmx__V1__RawDocument__Default *dp[] = {&d1, &d2};
    doc.n_defaults = 2;
    doc.defaults = dp;
    kmx_doc_t out;
    char err[KMX_DOC_ERROR_MAX];
    assert_int_equal(kmx_doc_parse(&doc, &out, err, sizeof err), 0);
    assert_int_equal(out.n, 1);
    assert_int_equal(out.rows[0], 1000);
    assert_string_equal(out.records[0]->source, "KOCCA");
    assert_string_equal(out.records[0]->value->unit, "KRW");
    assert_int_equal(out.rejects[0].row, 1001);
    assert_string_equal(out.rejects[0].column, "value");
    kmx_doc_fini(&out);
}

static void test_doc_refuses_whole_documents_with_clear_errors(void **state) {
    (void)state;
    kmx_doc_t out;
    char err[KMX_DOC_ERROR_MAX];
    Kmx__V1__RawDocument doc = s_doc("kind,period,colour\n", 0);
    assert_int_equal(kmx_doc_parse(&doc, &out, err, sizeof err), KMX_ERR_INVAL);
    assert_non_null(strstr(err, "colour"));
    kmx_doc_fini(&out);
    doc = s_doc("", 0);
    assert_int_equal(kmx_doc_parse(&doc, &out, err, sizeof err), KMX_ERR_INVAL);
    assert_non_null(strstr(err, "header"));
    kmx_doc_fini(&out);
    doc = s_doc("x", 0);
    doc.format = KMX__V1__RAW_DOCUMENT__FORMAT__FORMAT_UNSPECIFIED;
    assert_int_equal(kmx_doc_parse(&doc, &out, err, sizeof err), KMX_ERR_INVAL);
    assert_non_null(strstr(err, "format"));
    kmx_doc_fini(&out);
    doc = s_doc("x", 0);
    doc.data.len = KMX_DOC_BYTES_MAX + 1u; // the length is checked before any byte is read
    assert_int_equal(kmx_doc_parse(&doc, &out, err, sizeof err), KMX_ERR_TOO_BIG);
    assert_non_null(strstr(err, "at most"));
    kmx_doc_fini(&out);
    // One row more than a document may carry.
    size_t n = KMX_DOC_RECORDS_MAX + 1u;
    char *big = malloc(n * 3 + 64);
    assert_non_null(big);
    char *p = big;
    for (size_t i = 0; i < n; i++, p += 3)
        memcpy(p, "{}\n", 3);
    *p = '\0';
    doc = s_doc(big, 1);
    doc.data.len = (size_t)(p - big);
    assert_int_equal(kmx_doc_parse(&doc, &out, err, sizeof err), KMX_ERR_TOO_BIG);
    assert_non_null(strstr(err, "rows"));
    kmx_doc_fini(&out);
    free(big);
}

// ---- encodings, delimiters, Korean wide files ----------------------------------------

// Encodes UTF-8 text as CP949 with glibc's iconv, as a Windows spreadsheet saves it.
static char *s_cp949(const char *utf8, size_t *len) {
    iconv_t cd = iconv_open("CP949", "UTF-8");
    assert_true(cd != (iconv_t)-1);
    size_t in_left = strlen(utf8), out_left = in_left + 1;
    char *out = malloc(out_left), *outp = out, *inp = (char *)utf8;
    assert_true(iconv(cd, &inp, &in_left, &outp, &out_left) != (size_t)-1);
    iconv_close(cd);
    *len = (size_t)(outp - out);
    return out;
}

#define S_KO_WIDE                                                                                  \
    "종류,국가,분류,품목,단위,2022,2023,2024 1/4,출처\n"                               \
    "수출,일본,physical_album_customs,음반,천달러,\"1,000\",-,5,관세청\n"              \
    "수출,미국,physical_album_customs,음반,천달러,,2.5,-,관세청\n"                     \
    "수출,합계,physical_album_customs,음반,천달러,10,20,30,관세청\n"

static void test_doc_reads_cp949_wide_file(void **state) {
    (void)state;
    size_t len = 0;
    char *cp = s_cp949(S_KO_WIDE, &len);
    assert_false(len == strlen(S_KO_WIDE)); // really re-encoded
    static const int encodings[] = {KMX__V1__RAW_DOCUMENT__ENCODING__ENCODING_AUTO,
                                    KMX__V1__RAW_DOCUMENT__ENCODING__CP949};
    for (size_t e = 0; e < 2; e++) {
        Kmx__V1__RawDocument doc = s_doc("", 0);
        doc.data.data = (uint8_t *)cp;
        doc.data.len = len;
        doc.has_encoding = 1;
        doc.encoding = encodings[e];
        kmx_doc_t out;
        char err[KMX_DOC_ERROR_MAX];
        if (kmx_doc_parse(&doc, &out, err, sizeof err) != 0)
            fail_msg("%s", err);
        assert_string_equal(out.encoding, "CP949");
        assert_int_equal(out.rows_read, 3);
        assert_int_equal(out.n, 6);
        assert_int_equal(out.skipped, 3);
        assert_int_equal(out.n_rejects, 0);
        static const struct {
            const char *market;  // after normalisation
            uint32_t start, end; // period
            int64_t amount;      // ten-thousandths of a USD
        } want[] = {{"JP", 202201, 202212, 10000000000LL}, {"JP", 202401, 202403, 50000000},
                    {"US", 202301, 202312, 25000000},      {"WORLD", 202201, 202212, 100000000},
                    {"WORLD", 202301, 202312, 200000000},  {"WORLD", 202401, 202403, 300000000}};
        for (size_t i = 0; i < 6; i++) {
            kmx_record_problem_t p;
            Kmx__V1__Record *rec = out.records[i];
            if (kmx_record_normalize(rec, &p) != 0)
                fail_msg("record %zu: %s", i, p.reason);
            assert_string_equal(rec->market, want[i].market);
            assert_int_equal(rec->period->start, want[i].start);
            assert_int_equal(rec->period->end, want[i].end);
            assert_true(rec->value->amount == want[i].amount);
            assert_string_equal(rec->value->unit, "USD");
            assert_string_equal(rec->source, "관세청");
            assert_int_equal(out.index[i], i);
        }
        assert_int_equal(out.rows[5], 4);
        kmx_doc_fini(&out);
    }
    free(cp);
}

// An invalid byte rejects its row naming the byte, line, column and encoding assumed.
static void test_doc_invalid_bytes_name_line_column_and_encoding(void **state) {
    (void)state;
    static const struct {
        const char *data;     // the document
        int encoding;         // RawDocument.Encoding
        uint32_t row;         // the rejected row
        const char *column;   // its column
        const char *words[3]; // in the reason
    } cases[] = {
        {"kind,period,market,category,item,value,unit\n"
         "export,2024,JP,c,i,1,USD\nexport,2024,JP,c\xFF,i,1,USD\n",
         KMX__V1__RAW_DOCUMENT__ENCODING__UTF8,
         3,
         "category",
         {"0xFF on line 3, column 4", "UTF-8", "the encoding given"}},
        {"kind,period,market,category,item,value,unit\n"
         "export,2024,\xC0\xCF\xBA\xBB,c,i,1,USD\nexport,2024,JP,c,i,\"1\xFF\",USD\n",
         KMX__V1__RAW_DOCUMENT__ENCODING__ENCODING_AUTO,
         3,
         "value",
         {"0xFF on line 3, column 6", "CP949", "detected because the data is not UTF-8"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Kmx__V1__RawDocument doc = s_doc(cases[i].data, 0);
        doc.has_encoding = 1;
        doc.encoding = cases[i].encoding;
        kmx_doc_t out;
        char err[KMX_DOC_ERROR_MAX];
        assert_int_equal(kmx_doc_parse(&doc, &out, err, sizeof err), 0);
        assert_int_equal(out.n, 1);
        assert_int_equal(out.n_rejects, 1);
        assert_int_equal(out.rejects[0].row, cases[i].row);
        assert_string_equal(out.rejects[0].column, cases[i].column);
        for (size_t w = 0; w < 3; w++) {
            if (!strstr(out.rejects[0].reason, cases[i].words[w]))
                fail_msg("case %zu: '%s' lacks '%s'", i, out.rejects[0].reason, cases[i].words[w]);
        }
        kmx_doc_fini(&out);
    }
    // In the header, no row can be read: the document is refused.
    Kmx__V1__RawDocument doc = s_doc("kind,\xFF\n", 0);
    doc.has_encoding = 1;
    doc.encoding = KMX__V1__RAW_DOCUMENT__ENCODING__UTF8;
    kmx_doc_t out;
    char err[KMX_DOC_ERROR_MAX];
    assert_int_equal(kmx_doc_parse(&doc, &out, err, sizeof err), KMX_ERR_INVAL);
    assert_non_null(strstr(err, "header: byte 0xFF"));
    kmx_doc_fini(&out);
}

// Semicolon, tab and pipe files, detected or given; a CP949 header sent apart from the data.
static void test_doc_delimiters_maps_and_warnings(void **state) {
    (void)state;
    static const struct {
        const char *data;  // the document
        const char *given; // RawDocument.delimiter, or NULL
    } cases[] = {
        {"kind;period;market;category;item;value;unit\nexport;2024;JP;c;i;\"1,500\";USD\n", NULL},
        {"kind\tperiod\tmarket\tcategory\titem\tvalue\tunit\nexport\t2024\tJP\tc\ti\t1,500\tUSD\n",
         NULL},
        {"kind|period|market|category|item|value|unit\nexport|2024|JP|c|i|1,500|USD\n", "|"},
        {"kind;period;market;category;item;value;unit\nexport;2024;JP;c;i;1,500;USD\n",
         "semicolon"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Kmx__V1__RawDocument doc = s_doc(cases[i].data, 0);
        doc.delimiter = (char *)cases[i].given;
        kmx_doc_t out;
        char err[KMX_DOC_ERROR_MAX];
        if (kmx_doc_parse(&doc, &out, err, sizeof err) != 0)
            fail_msg("case %zu: %s", i, err);
        if (out.n != 1)
            fail_msg("case %zu: %s", i, out.rejects[0].reason);
        assert_true(out.records[0]->value->amount == 15000000); // "1,500" is 1500
        kmx_doc_fini(&out);
    }
    Kmx__V1__RawDocument doc = s_doc("a;b\n", 0);
    doc.delimiter = ":";
    kmx_doc_t out;
    char err[KMX_DOC_ERROR_MAX];
    assert_int_equal(kmx_doc_parse(&doc, &out, err, sizeof err), KMX_ERR_INVAL);
    assert_non_null(strstr(err, "unknown delimiter"));
    kmx_doc_fini(&out);

    // A chunk: the header travels as CP949 bytes, the data from line 500 on.
    size_t hlen = 0, dlen = 0;
    char *header = s_cp949("종류;기간;나라;분류;품목;금액;단위;색\n", &hlen);
    char *data = s_cp949("수출;2024년 1월;일본;c;i;7;백만달러;빨강\n", &dlen);
    doc = s_doc("", 0);
    doc.data.data = (uint8_t *)data;
    doc.data.len = dlen;
    doc.has_header_data = 1;
    doc.header_data.data = (uint8_t *)header;
    doc.header_data.len = hlen;
    doc.has_first_line = 1;
    doc.first_line = 500;
    assert_int_equal(kmx_doc_parse(&doc, &out, err, sizeof err), KMX_ERR_INVAL);
    assert_non_null(strstr(err, "semicolon-separated, CP949"));
    assert_non_null(strstr(err, "\"나라\""));
    assert_non_null(strstr(err, "\"색\""));
    kmx_doc_fini(&out);
    Kmx__V1__RawDocument__ColumnMap m = KMX__V1__RAW_DOCUMENT__COLUMN_MAP__INIT;
    m.header = "나라";
    m.field = "market";
    Kmx__V1__RawDocument__ColumnMap *mp[] = {&m};
    doc.n_columns = 1;
    doc.columns = mp;
    doc.has_ignore_extra = doc.ignore_extra = 1;
    assert_int_equal(kmx_doc_parse(&doc, &out, err, sizeof err), 0);
    assert_int_equal(out.n, 1);
    assert_int_equal(out.rows[0], 500);
    assert_int_equal(out.records[0]->period->start, 202401);
    assert_true(out.records[0]->value->amount == 70000000000LL);
    assert_int_equal(out.n_warnings, 1);
    assert_non_null(strstr(out.warnings[0], "\"색\""));
    kmx_doc_fini(&out);
    free(header);
    free(data);
    // A header sent apart is bounded like a row, before anything is converted.
    char *big = malloc(KMX_DOC_FIELD_MAX * 16u + 2);
    assert_non_null(big);
    memset(big, 'a', KMX_DOC_FIELD_MAX * 16u + 1);
    doc = s_doc("", 0);
    doc.has_header_data = 1;
    doc.header_data.data = (uint8_t *)big;
    doc.header_data.len = KMX_DOC_FIELD_MAX * 16u + 1;
    assert_int_equal(kmx_doc_parse(&doc, &out, err, sizeof err), KMX_ERR_TOO_BIG);
    assert_non_null(strstr(err, "the header is"));
    kmx_doc_fini(&out);
    free(big);
}

// A wide file's rows may yield more records than a document may carry: refused whole.
static void test_doc_wide_records_are_bounded(void **state) {
    (void)state;
    size_t rows = KMX_DOC_RECORDS_MAX / 4 + 1;
    size_t cap = 64 + rows * 32;
    char *text = malloc(cap);
    assert_non_null(text);
    size_t n = (size_t)snprintf(text, cap, "kind,category,item,unit,2021,2022,2023,2024\n");
    for (size_t i = 0; i < rows; i++)
        n += (size_t)snprintf(text + n, cap - n, "export,c,i%zu,USD,1,2,3,4\n", i);
    Kmx__V1__RawDocument doc = s_doc(text, 0);
    kmx_doc_t out;
    char err[KMX_DOC_ERROR_MAX];
    assert_int_equal(kmx_doc_parse(&doc, &out, err, sizeof err), KMX_ERR_TOO_BIG);
    assert_non_null(strstr(err, "yield more than"));
    kmx_doc_fini(&out);
    free(text);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_doc_accepts_the_forms_sources_write),
        cmocka_unit_test(test_doc_rejects_bad_rows_with_line_column_and_reason),
        cmocka_unit_test(test_doc_reads_json_lines_and_numbers_exactly),
        cmocka_unit_test(test_doc_chunk_with_header_defaults_and_first_line),
        cmocka_unit_test(test_doc_refuses_whole_documents_with_clear_errors),
        cmocka_unit_test(test_doc_reads_cp949_wide_file),
        cmocka_unit_test(test_doc_invalid_bytes_name_line_column_and_encoding),
        cmocka_unit_test(test_doc_delimiters_maps_and_warnings),
        cmocka_unit_test(test_doc_wide_records_are_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
