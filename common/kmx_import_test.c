/*  kmx_import tests: header aliases, unknown and missing columns, exact value conversion,
    and each row error naming its row, column and reason.  */
#include "kmx_import.h"

#include "kmx_err.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#define S_N(a) (sizeof(a) / sizeof((a)[0]))

static const char *const s_header[] = {"kind",  "period", "market", "category_or_dimension",
                                       "item",  "value",  "unit",   "source",
                                       "url",   "confidence"};

static kmx_import_t *s_map(const char *const *header, size_t n)
{
    kmx_import_t *map = NULL;
    kmx_import_error_t err;
    assert_int_equal(kmx_import_new(header, n, &map, &err), 0);
    assert_non_null(map);
    return map;
}

static void test_import_converts_sample_row_exactly(void **state)
{
    (void)state;
    kmx_import_t *map = s_map(s_header, S_N(s_header));
    const char *row[] = {"export", "2022", "WORLD", "physical_album_customs",
                         "album exports total", "233.113", "USD_million",
                         "Korea Customs Service", "http://example.org/a", "high"};
    Kmx__V1__Record *rec = NULL;
    kmx_import_error_t err;
    assert_int_equal(kmx_import_row(map, row, S_N(row), 2, &rec, &err), 0);
    assert_non_null(rec);
    assert_true(rec->has_kind);
    assert_int_equal(rec->kind, KMX__V1__KIND__EXPORT);
    assert_int_equal(rec->period->start, 202201);
    assert_int_equal(rec->period->end, 202212);
    assert_string_equal(rec->market, "WORLD");
    assert_string_equal(rec->category, "physical_album_customs");
    assert_string_equal(rec->item, "album exports total");
    assert_int_equal(rec->value->amount, INT64_C(2331130000000));
    assert_string_equal(rec->value->unit, "USD");
    assert_string_equal(rec->source, "Korea Customs Service");
    assert_string_equal(rec->url, "http://example.org/a");
    assert_true(rec->has_confidence);
    assert_int_equal(rec->confidence, KMX__V1__CONFIDENCE__HIGH);
    assert_null(rec->company);
    assert_null(rec->artist);
    assert_false(rec->has_status);
    kmx_import_record_free(&rec);
    assert_null(rec);
    kmx_import_destroy(&map);
    assert_null(map);
}

static void test_import_accepts_aliases_and_ignorable_columns(void **state)
{
    (void)state;
    const char *const header[] = {" Kind ", "PERIOD", "dimension", "series", "Amount",
                                  "unit", "As-Of", "Status", "notes", "id", "x_extra"};
    kmx_import_t *map = s_map(header, S_N(header));
    const char *row[] = {"consumption", "2024-Q3", "listening_device", "Smartphone",
                         "1,801.45", "percent", "2024-10-01", "Final", " kept ", "17",
                         "ignored"};
    Kmx__V1__Record *rec = NULL;
    assert_int_equal(kmx_import_row(map, row, S_N(row), 5, &rec, NULL), 0);
    assert_int_equal(rec->kind, KMX__V1__KIND__CONSUMPTION);
    assert_int_equal(rec->period->start, 202407);
    assert_int_equal(rec->period->end, 202409);
    assert_string_equal(rec->category, "listening_device");
    assert_string_equal(rec->item, "Smartphone");
    assert_int_equal(rec->value->amount, INT64_C(18014500));
    assert_string_equal(rec->as_of, "2024-10-01");
    assert_int_equal(rec->status, KMX__V1__STATUS__FINAL);
    assert_string_equal(rec->note, "kept");
    assert_null(rec->market);
    kmx__v1__record__free_unpacked(rec, NULL);
    kmx_import_destroy(&map);
}

static void test_import_rejects_unknown_column_by_name(void **state)
{
    (void)state;
    const char *const header[] = {"kind", "period", "category", "item", "value", "unit",
                                  "colour"};
    kmx_import_t *map = NULL;
    kmx_import_error_t err;
    assert_int_equal(kmx_import_new(header, S_N(header), &map, &err), KMX_ERR_INVAL);
    assert_null(map);
    assert_int_equal(err.row, 1);
    assert_string_equal(err.column, "colour");
    assert_non_null(strstr(err.reason, "unknown column"));
}

static void test_import_rejects_missing_and_duplicate_columns(void **state)
{
    (void)state;
    const char *const missing[] = {"kind", "period", "category", "value", "unit"};
    kmx_import_t *map = NULL;
    kmx_import_error_t err;
    assert_int_equal(kmx_import_new(missing, S_N(missing), &map, &err), KMX_ERR_INVAL);
    assert_string_equal(err.column, "item");
    const char *const dup[] = {"kind", "period", "category", "dimension", "item", "value",
                               "unit"};
    assert_int_equal(kmx_import_new(dup, S_N(dup), &map, &err), KMX_ERR_INVAL);
    assert_string_equal(err.column, "dimension");
    assert_non_null(strstr(err.reason, "repeats"));
}

// Converts a row expected to fail and checks the column and a word of the reason.
static void s_expect_row_error(const char **row, const char *column, const char *word)
{
    kmx_import_t *map = s_map(s_header, S_N(s_header));
    Kmx__V1__Record *rec = NULL;
    kmx_import_error_t err;
    assert_int_equal(kmx_import_row(map, row, S_N(s_header), 9, &rec, &err), KMX_ERR_INVAL);
    assert_null(rec);
    assert_int_equal(err.row, 9);
    assert_string_equal(err.column, column);
    assert_non_null(strstr(err.reason, word));
    kmx_import_destroy(&map);
}

static void test_import_rejects_bad_period(void **state)
{
    (void)state;
    const char *row[] = {"export", "2025-H3", "JP", "c", "i", "1", "USD", "s", "", ""};
    s_expect_row_error(row, "period", "invalid period");
}

static void test_import_rejects_unknown_unit(void **state)
{
    (void)state;
    const char *row[] = {"export", "2025-H1", "JP", "c", "i", "1", "furlongs", "s", "", ""};
    s_expect_row_error(row, "unit", "unknown unit");
}

static void test_import_rejects_bad_value(void **state)
{
    (void)state;
    const char *row[] = {"export", "2025-H1", "JP", "c", "i", "12abc", "USD", "s", "", ""};
    s_expect_row_error(row, "value", "invalid value");
    const char *sci[] = {"export", "2025-H1", "JP", "c", "i", "1e3", "USD", "s", "", ""};
    s_expect_row_error(sci, "value", "invalid value");
}

static void test_import_rejects_bad_kind_confidence_and_empty_required(void **state)
{
    (void)state;
    const char *kind[] = {"import", "2025", "JP", "c", "i", "1", "USD", "s", "", ""};
    s_expect_row_error(kind, "kind", "unknown kind");
    const char *conf[] = {"export", "2025", "JP", "c", "i", "1", "USD", "s", "", "sure"};
    s_expect_row_error(conf, "confidence", "unknown confidence");
    const char *empty[] = {"export", "2025", "JP", "c", "  ", "1", "USD", "s", "", ""};
    s_expect_row_error(empty, "item", "empty");
}

static void test_import_rejects_wrong_cell_count(void **state)
{
    (void)state;
    kmx_import_t *map = s_map(s_header, S_N(s_header));
    const char *row[] = {"export", "2025"};
    Kmx__V1__Record *rec = NULL;
    kmx_import_error_t err;
    assert_int_equal(kmx_import_row(map, row, S_N(row), 4, &rec, &err), KMX_ERR_INVAL);
    assert_int_equal(err.row, 4);
    assert_non_null(strstr(err.reason, "2 fields"));
    kmx_import_destroy(&map);
}

static void test_import_enum_names_round_trip(void **state)
{
    (void)state;
    Kmx__V1__Status st;
    assert_int_equal(kmx_import_status_parse("REVISED", &st), 0);
    assert_string_equal(kmx_import_status_name(st), "revised");
    Kmx__V1__Confidence c;
    assert_int_equal(kmx_import_confidence_parse("medium", &c), 0);
    assert_string_equal(kmx_import_confidence_name(c), "medium");
    assert_null(kmx_import_status_name(KMX__V1__STATUS__STATUS_UNSPECIFIED));
    assert_int_equal(kmx_import_confidence_parse("", &c), KMX_ERR_INVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_import_converts_sample_row_exactly),
        cmocka_unit_test(test_import_accepts_aliases_and_ignorable_columns),
        cmocka_unit_test(test_import_rejects_unknown_column_by_name),
        cmocka_unit_test(test_import_rejects_missing_and_duplicate_columns),
        cmocka_unit_test(test_import_rejects_bad_period),
        cmocka_unit_test(test_import_rejects_unknown_unit),
        cmocka_unit_test(test_import_rejects_bad_value),
        cmocka_unit_test(test_import_rejects_bad_kind_confidence_and_empty_required),
        cmocka_unit_test(test_import_rejects_wrong_cell_count),
        cmocka_unit_test(test_import_enum_names_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
