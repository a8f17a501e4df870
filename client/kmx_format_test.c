/*  kmx_format tests: JSON escaping, CSV quoting, table alignment with wide characters,
    and the record's JSON and CSV forms. Output goes to open_memstream buffers.  */
#include "kmx_format.h"

#include "kmx_err.h"
#include "kmx_json.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

typedef struct {
    FILE *file; // memory stream under test
    char *buf;  // its contents after s_done
    size_t len; // their length
} s_mem_t;

static FILE *s_open(s_mem_t *m) {
    memset(m, 0, sizeof(*m));
    m->file = open_memstream(&m->buf, &m->len);
    assert_non_null(m->file);
    return m->file;
}

static const char *s_done(s_mem_t *m) {
    fclose(m->file);
    return m->buf;
}

// Strings in kmx's JSON (kmx_json: jansson, and DEL escaped like the other controls).
static char *s_json_text(const char *str) {
    json_t *v = kmx_json_string(str);
    char *text = kmx_json_dumps(v, NULL);
    json_decref(v);
    return text;
}

static void test_format_json_escapes_quotes_backslash_and_controls(void **state) {
    (void)state;
    char *text = s_json_text("a\"b\\c\n\t\x01\x1f\x7f");
    assert_string_equal(text, "\"a\\\"b\\\\c\\n\\t\\u0001\\u001F\\u007f\"");
    free(text);
    // DEL anywhere in a long string (jansson hands the text over in pieces).
    char in[3001], want[3 * 6000];
    size_t w = 0;
    want[w++] = '"';
    for (size_t i = 0; i < 3000; i++) {
        in[i] = i % 7 == 3 ? 0x7f : (char)('a' + i % 26);
        if (in[i] == 0x7f)
            w += (size_t)sprintf(want + w, "\\u007f");
        else
            want[w++] = in[i];
    }
    in[3000] = '\0';
    want[w++] = '"';
    want[w] = '\0';
    text = s_json_text(in);
    assert_string_equal(text, want);
    free(text);
}

static void test_format_json_passes_utf8_and_writes_null(void **state) {
    (void)state;
    char *text = s_json_text("멜론 Melon");
    assert_string_equal(text, "\"멜론 Melon\"");
    free(text);
    text = s_json_text(NULL);
    assert_string_equal(text, "null");
    free(text);
    // A byte that starts no UTF-8 sequence becomes U+FFFD (the rest is kept).
    text = s_json_text("ok\xff!");
    assert_string_equal(text, "\"ok\xef\xbf\xbd!\"");
    free(text);
}

static void test_format_csv_quotes_only_when_needed(void **state) {
    (void)state;
    s_mem_t m;
    const char *fields[] = {"plain", "a,b", "say \"hi\"", "two\nlines", "", NULL, " pad"};
    kmx_format_csv_row(s_open(&m), fields, 7);
    assert_string_equal(s_done(&m), "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",,,\" pad\"\n");
    free(m.buf);
}

static void test_format_width_counts_hangul_as_two(void **state) {
    (void)state;
    assert_int_equal(kmx_format_width("abc"), 3);
    assert_int_equal(kmx_format_width("멜론"), 4);
    assert_int_equal(kmx_format_width("é"), 1);
    assert_int_equal(kmx_format_width(""), 0);
}

static void test_format_table_aligns_columns(void **state) {
    (void)state;
    const char *header[] = {"item", "sum"};
    kmx_format_table_t *t = kmx_format_table_new(header, 2);
    assert_non_null(t);
    kmx_format_table_align_right(t, 1);
    const char *r1[] = {"멜론", "5"};
    const char *r2[] = {"YouTube\tMusic", "1234"};
    assert_int_equal(kmx_format_table_add(t, r1), 0);
    assert_int_equal(kmx_format_table_add(t, r2), 0);
    s_mem_t m;
    kmx_format_table_print(t, s_open(&m));
    assert_string_equal(s_done(&m), "item            sum\n"
                                    "-------------  ----\n"
                                    "멜론              5\n"
                                    "YouTube Music  1234\n");
    free(m.buf);
    kmx_format_table_destroy(&t);
    assert_null(t);
}

static void test_format_record_json_and_csv(void **state) {
    (void)state;
    Kmx__V1__Record rec = KMX__V1__RECORD__INIT;
    Kmx__V1__Period period = KMX__V1__PERIOD__INIT;
    Kmx__V1__Value value = KMX__V1__VALUE__INIT;
    period.start = 202501, period.end = 202506;
    value.has_amount = 1, value.amount = INT64_C(391000000005), value.unit = "USD";
    rec.has_kind = 1, rec.kind = KMX__V1__KIND__EXPORT;
    rec.period = &period, rec.value = &value;
    rec.market = "JP", rec.category = "physical_album_customs", rec.item = "albums \"JP\"";
    rec.has_status = 1, rec.status = KMX__V1__STATUS__FINAL;
    rec.source = "KCS, monthly";
    kmx_format_record_t fr;
    kmx_format_record_init(&fr, &rec, 42, 0);
    s_mem_t m;
    kmx_format_record_json(s_open(&m), &fr);
    assert_string_equal(
        s_done(&m), "{\"kind\":\"export\",\"period\":\"2025-H1\",\"market\":\"JP\","
                    "\"category\":\"physical_album_customs\",\"item\":\"albums \\\"JP\\\"\","
                    "\"company\":null,\"artist\":null,\"value\":\"39100000.0005\",\"unit\":\"USD\","
                    "\"source\":\"KCS, monthly\",\"status\":\"final\",\"as_of\":null,\"note\":null,"
                    "\"url\":null,\"confidence\":null,\"seq\":42,\"updated_ms\":null}");
    free(m.buf);
    kmx_format_csv_row(s_open(&m), fr.cells, KMX_FORMAT_RECORD_NCOLS);
    assert_string_equal(s_done(&m), "export,2025-H1,JP,physical_album_customs,"
                                    "\"albums \"\"JP\"\"\",,,39100000.0005,USD,"
                                    "\"KCS, monthly\",final,,,,,42,\n");
    free(m.buf);
}

static void test_format_parse_names(void **state) {
    (void)state;
    kmx_format_kind_t k;
    assert_int_equal(kmx_format_parse("json", &k), 0);
    assert_int_equal(k, KMX_FORMAT_JSON);
    assert_int_equal(kmx_format_parse("csv", &k), 0);
    assert_int_equal(k, KMX_FORMAT_CSV);
    assert_int_equal(kmx_format_parse("yaml", &k), KMX_ERR_INVAL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_json_escapes_quotes_backslash_and_controls),
        cmocka_unit_test(test_format_json_passes_utf8_and_writes_null),
        cmocka_unit_test(test_format_csv_quotes_only_when_needed),
        cmocka_unit_test(test_format_width_counts_hangul_as_two),
        cmocka_unit_test(test_format_table_aligns_columns),
        cmocka_unit_test(test_format_record_json_and_csv),
        cmocka_unit_test(test_format_parse_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
