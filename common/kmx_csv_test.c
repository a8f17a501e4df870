/*  kmx_csv tests: quoting, line ends, BOM, errors with line numbers and resynchronisation,
    size limits. Input comes from fmemopen so each case reads a real FILE stream.  */
#include "kmx_csv.h"

#include "kmx_err.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

typedef struct {
    FILE *file;               // stream over the test text
    kmx_csv_reader_t *reader; // reader under test
    const char **fields;      // last row
    size_t n;                 // fields in the last row
} s_fixture_t;

static void s_open(s_fixture_t *f, const char *text, const kmx_csv_limits_t *limits) {
    // fmemopen refuses size 0, so an empty input gets a one-byte buffer opened at its end.
    f->file = fmemopen((void *)text, strlen(text) ? strlen(text) : 1, "r");
    assert_non_null(f->file);
    if (!strlen(text))
        fseek(f->file, 0, SEEK_END);
    f->reader = kmx_csv_reader_new_limits(f->file, limits);
    assert_non_null(f->reader);
}

static void s_close(s_fixture_t *f) {
    kmx_csv_reader_destroy(&f->reader);
    assert_null(f->reader);
    fclose(f->file);
}

static int s_next(s_fixture_t *f) {
    return kmx_csv_next(f->reader, &f->fields, &f->n);
}

// Each delimiter, detected from the header line and then used for every row, with RFC
// 4180 quoting: a quoted field keeps the delimiter and doubled quotes.
static void test_csv_delimiters_detected_and_quoted(void **state) {
    (void)state;
    static const struct {
        const char *text; // header and one row
        char delim;       // expected from the header
    } cases[] = {
        {"a,b,c\n1,\"x,y\",\"q\"\"\"\n", ','},
        {"a;b;c\n1;\"x;y\";\"q\"\"\"\n", ';'},
        {"a\tb\tc\n1\t\"x\ty\"\t\"q\"\"\"\n", '\t'},
        {"a|b|c\n1|\"x|y\"|\"q\"\"\"\n", '|'},
        // A comma inside a semicolon file's names does not win the count.
        {"\"a,1\";b;c\n1;\"x;y\";\"q\"\"\"\n", ';'},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char d = kmx_csv_detect_delimiter(cases[i].text, strlen(cases[i].text));
        assert_int_equal(d, cases[i].delim);
        s_fixture_t f;
        s_open(&f, cases[i].text, NULL);
        assert_int_equal(kmx_csv_set_delimiter(f.reader, d), 0);
        assert_int_equal(s_next(&f), 1);
        assert_int_equal(f.n, 3);
        assert_int_equal(s_next(&f), 1);
        assert_int_equal(f.n, 3);
        assert_string_equal(f.fields[0], "1");
        char want[4] = {'x', d, 'y', '\0'};
        assert_string_equal(f.fields[1], want);
        assert_string_equal(f.fields[2], "q\"");
        assert_int_equal(kmx_csv_last_line(f.reader), 2);
        s_close(&f);
    }
    assert_int_equal(kmx_csv_detect_delimiter("kind", 4), ',');
    assert_int_equal(kmx_csv_detect_delimiter("a;b\nc,d,e,f", 11), ';'); // first line only
    s_fixture_t f;
    s_open(&f, "a", NULL);
    assert_int_equal(kmx_csv_set_delimiter(f.reader, ':'), KMX_ERR_INVAL);
    s_close(&f);
    assert_int_equal(kmx_csv_field_at("a;\"b;c\";d", 9, 8, ';'), 3);
    assert_int_equal(kmx_csv_field_at("a;b", 3, 0, ';'), 1);
    assert_string_equal(kmx_csv_delimiter_name('\t'), "tab");
}

static void test_csv_last_line_of_multiline_row(void **state) {
    (void)state;
    s_fixture_t f;
    s_open(&f, "a,\"b\nc\nd\"\ne,f", NULL);
    assert_int_equal(s_next(&f), 1);
    assert_int_equal(kmx_csv_line(f.reader), 1);
    assert_int_equal(kmx_csv_last_line(f.reader), 3);
    assert_int_equal(s_next(&f), 1);
    assert_int_equal(kmx_csv_line(f.reader), 4);
    assert_int_equal(kmx_csv_last_line(f.reader), 4);
    s_close(&f);
}

static void test_csv_reads_plain_rows_with_lf(void **state) {
    (void)state;
    s_fixture_t f;
    s_open(&f, "a,b,c\n1,2,3\n", NULL);
    assert_int_equal(s_next(&f), 1);
    assert_int_equal(f.n, 3);
    assert_string_equal(f.fields[0], "a");
    assert_string_equal(f.fields[2], "c");
    assert_int_equal(kmx_csv_line(f.reader), 1);
    assert_int_equal(s_next(&f), 1);
    assert_string_equal(f.fields[1], "2");
    assert_int_equal(kmx_csv_line(f.reader), 2);
    assert_int_equal(s_next(&f), 0);
    s_close(&f);
}

static void test_csv_quoted_fields_keep_commas_and_doubled_quotes(void **state) {
    (void)state;
    s_fixture_t f;
    s_open(&f, "x,\"music exports, \"\"early 2025\"\"\",\"\"\n", NULL);
    assert_int_equal(s_next(&f), 1);
    assert_int_equal(f.n, 3);
    assert_string_equal(f.fields[0], "x");
    assert_string_equal(f.fields[1], "music exports, \"early 2025\"");
    assert_string_equal(f.fields[2], "");
    s_close(&f);
}

static void test_csv_crlf_and_newline_inside_quotes(void **state) {
    (void)state;
    s_fixture_t f;
    s_open(&f, "a,b\r\n\"two\r\nlines\",z\r\nlast,row", NULL);
    assert_int_equal(s_next(&f), 1);
    assert_string_equal(f.fields[1], "b");
    assert_int_equal(s_next(&f), 1);
    assert_string_equal(f.fields[0], "two\r\nlines");
    assert_string_equal(f.fields[1], "z");
    assert_int_equal(kmx_csv_line(f.reader), 2);
    assert_int_equal(s_next(&f), 1);
    assert_int_equal(kmx_csv_line(f.reader), 4);
    assert_string_equal(f.fields[0], "last");
    assert_string_equal(f.fields[1], "row");
    assert_int_equal(s_next(&f), 0);
    s_close(&f);
}

static void test_csv_skips_utf8_bom_and_blank_lines(void **state) {
    (void)state;
    s_fixture_t f;
    s_open(&f, "\xEF\xBB\xBFkind,period\n\nexport,2023\n", NULL);
    assert_int_equal(s_next(&f), 1);
    assert_string_equal(f.fields[0], "kind");
    assert_int_equal(s_next(&f), 1);
    assert_string_equal(f.fields[0], "export");
    assert_int_equal(kmx_csv_line(f.reader), 3);
    assert_int_equal(s_next(&f), 0);
    s_close(&f);
}

static void test_csv_trailing_comma_gives_empty_last_field(void **state) {
    (void)state;
    s_fixture_t f;
    s_open(&f, "a,\n", NULL);
    assert_int_equal(s_next(&f), 1);
    assert_int_equal(f.n, 2);
    assert_string_equal(f.fields[1], "");
    s_close(&f);
}

static void test_csv_empty_input_is_end(void **state) {
    (void)state;
    s_fixture_t f;
    s_open(&f, "", NULL);
    assert_int_equal(s_next(&f), 0);
    s_close(&f);
}

static void test_csv_rejects_quote_in_unquoted_field_and_resyncs(void **state) {
    (void)state;
    s_fixture_t f;
    s_open(&f, "ok,1\nba\"d,2\nnext,3\n", NULL);
    assert_int_equal(s_next(&f), 1);
    assert_int_equal(s_next(&f), KMX_ERR_INVAL);
    assert_int_equal(kmx_csv_line(f.reader), 2);
    assert_non_null(strstr(kmx_csv_error(f.reader), "line 2"));
    assert_int_equal(s_next(&f), 1);
    assert_string_equal(f.fields[0], "next");
    assert_int_equal(kmx_csv_line(f.reader), 3);
    s_close(&f);
}

static void test_csv_rejects_text_after_closing_quote(void **state) {
    (void)state;
    s_fixture_t f;
    s_open(&f, "\"ab\"c,1\n", NULL);
    assert_int_equal(s_next(&f), KMX_ERR_INVAL);
    assert_non_null(strstr(kmx_csv_error(f.reader), "line 1"));
    assert_int_equal(s_next(&f), 0);
    s_close(&f);
}

static void test_csv_rejects_unterminated_quote(void **state) {
    (void)state;
    s_fixture_t f;
    s_open(&f, "a,b\nc,\"open\nstill open\n", NULL);
    assert_int_equal(s_next(&f), 1);
    assert_int_equal(s_next(&f), KMX_ERR_INVAL);
    assert_non_null(strstr(kmx_csv_error(f.reader), "unterminated"));
    assert_non_null(strstr(kmx_csv_error(f.reader), "line 2"));
    assert_int_equal(s_next(&f), 0);
    s_close(&f);
}

static void test_csv_rejects_over_long_field_and_resyncs(void **state) {
    (void)state;
    kmx_csv_limits_t limits = {.field_max = 8};
    s_fixture_t f;
    s_open(&f, "short,12345678\ntoo,123456789\nfine,1\n", &limits);
    assert_int_equal(s_next(&f), 1);
    assert_string_equal(f.fields[1], "12345678");
    assert_int_equal(s_next(&f), KMX_ERR_TOO_BIG);
    assert_non_null(strstr(kmx_csv_error(f.reader), "line 2"));
    assert_non_null(strstr(kmx_csv_error(f.reader), "field 2"));
    assert_int_equal(s_next(&f), 1);
    assert_string_equal(f.fields[0], "fine");
    s_close(&f);
}

static void test_csv_rejects_over_long_row_and_too_many_fields(void **state) {
    (void)state;
    kmx_csv_limits_t limits = {.row_max = 10, .fields_max = 3};
    s_fixture_t f;
    s_open(&f, "12345,67890,x\na,b,c,d\n1,2,3\n", &limits);
    assert_int_equal(s_next(&f), KMX_ERR_TOO_BIG);
    assert_non_null(strstr(kmx_csv_error(f.reader), "row"));
    assert_int_equal(s_next(&f), KMX_ERR_TOO_BIG);
    assert_non_null(strstr(kmx_csv_error(f.reader), "fields"));
    assert_int_equal(s_next(&f), 1);
    assert_int_equal(f.n, 3);
    s_close(&f);
}

static void test_csv_reads_rows_longer_than_input_buffer(void **state) {
    (void)state;
    static char text[70000];
    memset(text, 'x', 40000);
    text[40000] = ',';
    memset(text + 40001, 'y', 20000);
    strcpy(text + 60001, "\n\"q\"\n");
    s_fixture_t f;
    s_open(&f, text, NULL);
    assert_int_equal(s_next(&f), 1);
    assert_int_equal(strlen(f.fields[0]), 40000);
    assert_int_equal(strlen(f.fields[1]), 20000);
    assert_int_equal(s_next(&f), 1);
    assert_string_equal(f.fields[0], "q");
    s_close(&f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csv_delimiters_detected_and_quoted),
        cmocka_unit_test(test_csv_last_line_of_multiline_row),
        cmocka_unit_test(test_csv_reads_plain_rows_with_lf),
        cmocka_unit_test(test_csv_quoted_fields_keep_commas_and_doubled_quotes),
        cmocka_unit_test(test_csv_crlf_and_newline_inside_quotes),
        cmocka_unit_test(test_csv_skips_utf8_bom_and_blank_lines),
        cmocka_unit_test(test_csv_trailing_comma_gives_empty_last_field),
        cmocka_unit_test(test_csv_empty_input_is_end),
        cmocka_unit_test(test_csv_rejects_quote_in_unquoted_field_and_resyncs),
        cmocka_unit_test(test_csv_rejects_text_after_closing_quote),
        cmocka_unit_test(test_csv_rejects_unterminated_quote),
        cmocka_unit_test(test_csv_rejects_over_long_field_and_resyncs),
        cmocka_unit_test(test_csv_rejects_over_long_row_and_too_many_fields),
        cmocka_unit_test(test_csv_reads_rows_longer_than_input_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
