/*  kmx_qargs and kmx_json tests: options by name as the gateway passes them, the errors
    that name what is wrong, the request and columns they make, and the JSON forms of a
    query answer, an event and an import summary (DEL escaped, bad UTF-8 repaired).  */
#include "kmx_qargs.h"

#include "kmx_json.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static int s_set(kmx_qargs_t *a, const char *name, const char *value) {
    const kmx_qargs_option_t *o = kmx_qargs_find(name);
    assert_non_null(o);
    return kmx_qargs_set(a, o->code, value);
}

static void test_qargs_query_options_by_name_build_the_request(void **state) {
    (void)state;
    kmx_qargs_t a;
    kmx_qargs_init(&a, KMX_QARGS_QUERY);
    assert_int_equal(kmx_qargs_set_kind(&a, "exports"), 0);
    assert_int_equal(s_set(&a, "period", "2024"), 1);
    assert_int_equal(s_set(&a, "market", "japan, US"), 1);
    assert_int_equal(s_set(&a, "by", "market"), 1);
    assert_int_equal(s_set(&a, "top", "3"), 1);
    assert_int_equal(s_set(&a, "share", NULL), 1);
    assert_int_equal(s_set(&a, "growth", "yoy"), 1);
    assert_int_equal(s_set(&a, "unit", "USD_million"), 1);
    assert_int_equal(kmx_qargs_finish(&a), 0);
    Kmx__V1__QueryRequest q = KMX__V1__QUERY_REQUEST__INIT;
    kmx_qargs_query_request(&a, &q);
    assert_int_equal(q.filter->n_markets, 2);
    assert_string_equal(q.filter->markets[0], "JP");
    assert_string_equal(q.filter->units[0], "USD");
    assert_int_equal(q.filter->period->start, 202401);
    assert_int_equal(q.filter->period->end, 202412);
    assert_int_equal(q.n_group_by, 1);
    assert_int_equal(q.group_by[0], KMX__V1__GROUP_FIELD__BY_MARKET);
    assert_true(q.has_top && q.top == 3 && q.share);
    assert_int_equal(q.growth, KMX__V1__GROWTH__YOY);
    kmx_qargs_fini(&a);
}

static void test_qargs_errors_name_the_option_and_value(void **state) {
    (void)state;
    kmx_qargs_t a;
    kmx_qargs_init(&a, KMX_QARGS_QUERY);
    assert_int_equal(s_set(&a, "growth", "weekly"), -1);
    assert_non_null(strstr(a.err, "--growth"));
    assert_non_null(strstr(a.err, "weekly"));
    assert_int_equal(s_set(&a, "limit", "5"), 0); // list's option, not query's
    assert_int_equal(s_set(&a, "by", "colour"), 1);
    assert_int_equal(kmx_qargs_set_kind(&a, "exports"), 0);
    assert_int_equal(kmx_qargs_finish(&a), -1);
    assert_non_null(strstr(a.err, "colour"));
    kmx_qargs_fini(&a);
    kmx_qargs_init(&a, KMX_QARGS_LIST);
    assert_int_equal(s_set(&a, "period", "2025-H3"), 1);
    assert_int_equal(kmx_qargs_finish(&a), -1);
    assert_non_null(strstr(a.err, "2025-H3"));
    assert_int_equal(s_set(&a, "top", "3"), 0); // query's option, not list's
    Kmx__V1__ScanRequest scan = KMX__V1__SCAN_REQUEST__INIT;
    assert_int_equal(kmx_qargs_page_token(&a, "0g", &scan), -1);
    assert_int_equal(kmx_qargs_page_token(&a, "00ff", &scan), 0);
    assert_int_equal(scan.page_token.len, 2);
    char hex[8];
    assert_int_equal(kmx_qargs_token_hex(scan.page_token.data, 2, hex, sizeof hex), 0);
    assert_string_equal(hex, "00ff");
    free(scan.page_token.data);
    kmx_qargs_fini(&a);
}

static char *s_dump(json_t *doc) {
    assert_non_null(doc);
    char *text = kmx_json_dumps(doc, NULL);
    json_decref(doc);
    assert_non_null(text);
    return text;
}

static void test_qargs_json_of_a_query_answer(void **state) {
    (void)state;
    kmx_qargs_t a;
    kmx_qargs_init(&a, KMX_QARGS_QUERY);
    assert_int_equal(kmx_qargs_set_kind(&a, "exports"), 0);
    assert_int_equal(s_set(&a, "by", "market"), 1);
    assert_int_equal(s_set(&a, "share", NULL), 1);
    assert_int_equal(kmx_qargs_finish(&a), 0);
    char *keys[] = {"J\x7fP", "physical_album_customs"};
    Kmx__V1__Row row = KMX__V1__ROW__INIT;
    row.n_keys = 2, row.keys = keys, row.unit = "USD", row.sum = "89800000";
    row.has_count = 1, row.count = 1, row.share = "30.77";
    Kmx__V1__Row *rows[] = {&row};
    Kmx__V1__GroupField gb[] = {KMX__V1__GROUP_FIELD__BY_MARKET, KMX__V1__GROUP_FIELD__BY_CATEGORY};
    Kmx__V1__QueryResult res = KMX__V1__QUERY_RESULT__INIT;
    res.n_rows = 1, res.rows = rows, res.has_matched = 1, res.matched = 1;
    res.n_group_by = 2, res.group_by = gb, res.granularity = "auto";
    kmx_qcols_t cols;
    kmx_qargs_columns(&a, &res, &cols);
    char *text = s_dump(kmx_qargs_json(&cols, &res));
    assert_string_equal(text, "{\"rows\":[{\"market\":\"J\\u007fP\","
                              "\"category\":\"physical_album_customs\",\"unit\":\"USD\","
                              "\"sum\":\"89800000\",\"count\":1,\"share_pct\":\"30.77\"}],"
                              "\"matched\":1,\"granularity\":\"auto\"}");
    free(text);
    kmx_qargs_fini(&a);
}

static void test_json_event_and_import_summary(void **state) {
    (void)state;
    Kmx__V1__UpdateEvent ev = KMX__V1__UPDATE_EVENT__INIT;
    ev.has_seq = 1, ev.seq = 7, ev.has_type = 1, ev.type = KMX__V1__EVENT_TYPE__DELETE;
    ev.topic = "export.JP.2024.x\xff";
    char *text = s_dump(kmx_json_event(&ev));
    assert_string_equal(text,
                        "{\"seq\":7,\"type\":\"delete\",\"topic\":\"export.JP.2024.x\xEF\xBF\xBD\","
                        "\"record\":null,\"previous\":null,\"committed_ms\":0}");
    free(text);
    kmx_json_reject_t rej = {3, "period", "invalid period \"2025-H3\""};
    kmx_json_import_t sum = {4, 2, 1, 1, 0, 12, 0.25, false, false, &rej, 1, 0};
    text = s_dump(kmx_json_import(&sum));
    assert_string_equal(text,
                        "{\"rows\":4,\"stored\":2,\"unchanged\":1,\"rejected\":1,"
                        "\"duplicates\":0,\"last_seq\":12,\"seconds\":0.25,"
                        "\"atomic_refused\":false,\"dry_run\":false,\"rejected_rows\":[{\"row\":3,"
                        "\"field\":\"period\",\"reason\":\"invalid period "
                        "\\\"2025-H3\\\"\"}],\"retries\":0}");
    free(text);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_qargs_query_options_by_name_build_the_request),
        cmocka_unit_test(test_qargs_errors_name_the_option_and_value),
        cmocka_unit_test(test_qargs_json_of_a_query_answer),
        cmocka_unit_test(test_json_event_and_import_summary),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
