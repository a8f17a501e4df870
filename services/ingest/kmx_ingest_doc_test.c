/*  Tests for kmx_ingest_doc: a table of accepted forms (each with the record it must
    become) and of rejected inputs (each with its line, column and reason), for CSV and
    JSON Lines, plus the document-level limits.  */
#include "kmx_ingest_doc.h"
#include "kmx_err.h"
#include "kmx_record.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    {"export,2024,JP,c,i,233.113,USD million,s", 202401, 202412, "JP", 2331130000000LL,
     "USD"},
    {"export,2024,JP,c,i,2,KRW bn,s", 202401, 202412, "JP", 20000000000000LL, "KRW"},
    {"export,2024,JP,c,i,0.0001,KRW_billion,s", 202401, 202412, "JP", 1000000000LL, "KRW"},
    {"consumption,2024,,c,i,41.5,%,s", 202401, 202412, "KR", 415000, "percent"},
    {"consumption,2024,,c,i,3.2,percent_share,s", 202401, 202412, "KR", 32000,
     "percent_share"},
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
        if (strcmp(out.rejects[0].column, r->column) != 0 || !strstr(out.rejects[0].reason, r->word))
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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_doc_accepts_the_forms_sources_write),
        cmocka_unit_test(test_doc_rejects_bad_rows_with_line_column_and_reason),
        cmocka_unit_test(test_doc_reads_json_lines_and_numbers_exactly),
        cmocka_unit_test(test_doc_chunk_with_header_defaults_and_first_line),
        cmocka_unit_test(test_doc_refuses_whole_documents_with_clear_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
