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

static const char *const s_header[] = {"kind", "period",    "market", "category_or_dimension",
                                       "item", "value",     "unit",   "source",
                                       "url",  "confidence"};

static kmx_import_t *s_map(const char *const *header, size_t n) {
    kmx_import_t *map = NULL;
    kmx_import_error_t err;
    assert_int_equal(kmx_import_new(header, n, &map, &err), 0);
    assert_non_null(map);
    return map;
}

static void test_import_converts_sample_row_exactly(void **state) {
    (void)state;
    kmx_import_t *map = s_map(s_header, S_N(s_header));
    const char *row[] = {"export",
                         "2022",
                         "WORLD",
                         "physical_album_customs",
                         "album exports total",
                         "233.113",
                         "USD_million",
                         "Korea Customs Service",
                         "http://example.org/a",
                         "high"};
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

static void test_import_accepts_aliases_and_ignorable_columns(void **state) {
    (void)state;
    const char *const header[] = {" Kind ", "PERIOD", "dimension", "series", "Amount", "unit",
                                  "As-Of",  "Status", "notes",     "id",     "x_extra"};
    kmx_import_t *map = s_map(header, S_N(header));
    const char *row[] = {"consumption", "2024-Q3", "listening_device", "Smartphone",
                         "1,801.45",    "percent", "2024-10-01",       "Final",
                         " kept ",      "17",      "ignored"};
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

static void test_import_rejects_unknown_column_by_name(void **state) {
    (void)state;
    const char *const header[] = {"kind", "period", "category", "item", "value", "unit", "colour"};
    kmx_import_t *map = NULL;
    kmx_import_error_t err;
    assert_int_equal(kmx_import_new(header, S_N(header), &map, &err), KMX_ERR_INVAL);
    assert_null(map);
    assert_int_equal(err.row, 1);
    assert_string_equal(err.column, "colour");
    assert_non_null(strstr(err.reason, "unknown column"));
}

static void test_import_rejects_missing_and_duplicate_columns(void **state) {
    (void)state;
    const char *const missing[] = {"kind", "period", "category", "value", "unit"};
    kmx_import_t *map = NULL;
    kmx_import_error_t err;
    assert_int_equal(kmx_import_new(missing, S_N(missing), &map, &err), KMX_ERR_INVAL);
    assert_string_equal(err.column, "item");
    const char *const dup[] = {"kind", "period", "category", "dimension", "item", "value", "unit"};
    assert_int_equal(kmx_import_new(dup, S_N(dup), &map, &err), KMX_ERR_INVAL);
    assert_string_equal(err.column, "dimension");
    assert_non_null(strstr(err.reason, "repeats"));
}

// Converts a row expected to fail and checks the column and a word of the reason.
static void s_expect_row_error(const char **row, const char *column, const char *word) {
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

static void test_import_rejects_bad_period(void **state) {
    (void)state;
    const char *row[] = {"export", "2025-H3", "JP", "c", "i", "1", "USD", "s", "", ""};
    s_expect_row_error(row, "period", "invalid period");
}

static void test_import_rejects_unknown_unit(void **state) {
    (void)state;
    const char *row[] = {"export", "2025-H1", "JP", "c", "i", "1", "furlongs", "s", "", ""};
    s_expect_row_error(row, "unit", "unknown unit");
}

static void test_import_rejects_bad_value(void **state) {
    (void)state;
    const char *row[] = {"export", "2025-H1", "JP", "c", "i", "12abc", "USD", "s", "", ""};
    s_expect_row_error(row, "value", "invalid value");
    const char *sci[] = {"export", "2025-H1", "JP", "c", "i", "1e3", "USD", "s", "", ""};
    s_expect_row_error(sci, "value", "invalid value");
}

static void test_import_rejects_bad_kind_confidence_and_empty_required(void **state) {
    (void)state;
    const char *kind[] = {"import", "2025", "JP", "c", "i", "1", "USD", "s", "", ""};
    s_expect_row_error(kind, "kind", "unknown kind");
    const char *conf[] = {"export", "2025", "JP", "c", "i", "1", "USD", "s", "", "sure"};
    s_expect_row_error(conf, "confidence", "unknown confidence");
    const char *empty[] = {"export", "2025", "JP", "c", "  ", "1", "USD", "s", "", ""};
    s_expect_row_error(empty, "item", "empty");
}

static void test_import_rejects_wrong_cell_count(void **state) {
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

// ---- Korean files, maps, extra columns, wide layouts ---------------------------------

// Collects what kmx_import_row_each hands out.
typedef struct {
    Kmx__V1__Record *recs[16];   // records, in order
    size_t n;                    // records
    kmx_import_error_t errs[16]; // refusals, in order
    size_t n_errs;               // refusals
} s_sink_t;

static int s_sink(void *ctx, Kmx__V1__Record *rec, const kmx_import_error_t *err) {
    s_sink_t *k = ctx;
    if (rec && k->n < S_N(k->recs))
        k->recs[k->n++] = rec;
    else if (rec)
        kmx_import_record_free(&rec);
    else if (k->n_errs < S_N(k->errs))
        k->errs[k->n_errs++] = *err;
    return 0;
}

static void s_sink_free(s_sink_t *k) {
    for (size_t i = 0; i < k->n; i++)
        kmx_import_record_free(&k->recs[i]);
    memset(k, 0, sizeof *k);
}

// Every column has a Korean alias; each header below maps to the same record.
static void test_import_korean_aliases_for_every_column(void **state) {
    (void)state;
    static const char *const headers[][15] = {
        {"종류", "기간", "국가", "분류", "품목", "회사", "아티스트", "금액", "단위", "출처", "상태",
         "기준일", "비고", "링크", "신뢰도"},
        {"구분", "시점", "국가명", "부문", "항목", "기업", "가수", "수출액", "통화", "자료출처",
         "상태", "조회일", "주석", "주소", "신뢰도"},
        {"유형", "연도", "지역", "카테고리", "지표", "업체", "아티스트", "값", "단위", "기관",
         "상태", "작성일", "메모", "링크", "신뢰도"},
        {"kind", "년월", "시장", "차원", "품목명", "기획사", "가수", "수입액", "unit", "source",
         "status", "as_of", "note", "url", "confidence"},
    };
    const char *row[] = {"수출", "2023",       "일본",  "recorded", "album",
                         "HYBE", "BTS",        "1,234", "천달러",   "KCS",
                         "확정", "2024-01-31", "n",     "http://x", "높음"};
    for (size_t h = 0; h < S_N(headers); h++) {
        kmx_import_t *map = s_map(headers[h], S_N(headers[h]));
        Kmx__V1__Record *rec = NULL;
        kmx_import_error_t err;
        if (kmx_import_row(map, row, S_N(row), 2, &rec, &err) != 0)
            fail_msg("header %zu: %s: %s", h, err.column, err.reason);
        assert_int_equal(rec->kind, KMX__V1__KIND__EXPORT);
        assert_int_equal(rec->period->start, 202301);
        assert_string_equal(rec->market, "일본"); // canonicalised by kmx_record later
        assert_string_equal(rec->category, "recorded");
        assert_string_equal(rec->item, "album");
        assert_string_equal(rec->company, "HYBE");
        assert_string_equal(rec->artist, "BTS");
        assert_int_equal(rec->value->amount, INT64_C(1234000) * 10000);
        assert_string_equal(rec->value->unit, "USD");
        assert_string_equal(rec->source, "KCS");
        assert_int_equal(rec->status, KMX__V1__STATUS__FINAL);
        assert_string_equal(rec->as_of, "2024-01-31");
        assert_int_equal(rec->confidence, KMX__V1__CONFIDENCE__HIGH);
        kmx_import_record_free(&rec);
        kmx_import_destroy(&map);
    }
}

// A value column naming its unit in brackets, Korean or English.
static void test_import_value_column_names_korean_unit(void **state) {
    (void)state;
    static const struct {
        const char *column; // the value column
        int64_t amount;     // 1.5 in it, in ten-thousandths of the base
        const char *unit;   // base unit
    } cases[] = {
        {"수출액(천달러)", INT64_C(15000000), "USD"},
        {"금액 (백만원)", INT64_C(15000000000), "KRW"},
        {"수출액_억원", INT64_C(1500000000000), "KRW"},
        {"Value (USD million)", INT64_C(15000000000), "USD"},
        {"value(usd)", INT64_C(15000), "USD"},
    };
    for (size_t i = 0; i < S_N(cases); i++) {
        const char *header[] = {"kind", "period", "category", "item", cases[i].column};
        const char *row[] = {"export", "2023", "c", "i", "1.5"};
        kmx_import_t *map = s_map(header, S_N(header));
        Kmx__V1__Record *rec = NULL;
        kmx_import_error_t err;
        assert_int_equal(kmx_import_row(map, row, S_N(row), 2, &rec, &err), 0);
        assert_true(rec->value->amount == cases[i].amount);
        assert_string_equal(rec->value->unit, cases[i].unit);
        kmx_import_record_free(&rec);
        kmx_import_destroy(&map);
    }
}

// Every unknown column is named at once with its closest alias; --ignore-extra drops each
// with a warning; --map gives any header a field.
static void test_import_unknown_columns_maps_and_ignore_extra(void **state) {
    (void)state;
    const char *const header[] = {"kind",  "period", "category", "item",
                                  "valeu", "unit",   "수출국가", "colour"};
    kmx_import_t *map = NULL;
    kmx_import_error_t err;
    assert_int_equal(kmx_import_new(header, S_N(header), &map, &err), KMX_ERR_INVAL);
    assert_string_equal(err.column, "valeu");
    assert_non_null(strstr(err.reason, "unknown columns \"valeu\" (closest \"value\")"));
    assert_non_null(strstr(err.reason, "\"수출국가\" (closest alias \"수출국\", the market"));
    assert_non_null(strstr(err.reason, "\"colour\""));
    assert_non_null(strstr(err.reason, "--map HEADER=FIELD"));
    assert_non_null(strstr(err.reason, "--ignore-extra"));

    kmx_import_map_t maps[] = {{"valeu", "value"}, {"수출국가", "국가"}, {"absent", "note"}};
    kmx_import_opts_t opts = {.maps = maps, .nmaps = S_N(maps), .ignore_extra = 1};
    assert_int_equal(kmx_import_new_opts(header, S_N(header), &opts, &map, &err), 0);
    assert_int_equal(kmx_import_warning_count(map), 2);
    assert_non_null(strstr(kmx_import_warning(map, 0), "\"colour\""));
    assert_non_null(strstr(kmx_import_warning(map, 0), "ignored"));
    assert_non_null(strstr(kmx_import_warning(map, 1), "--map absent"));
    const char *row[] = {"export", "2023", "c", "i", "2", "USD", "미국", "red"};
    Kmx__V1__Record *rec = NULL;
    assert_int_equal(kmx_import_row(map, row, S_N(row), 2, &rec, &err), 0);
    assert_string_equal(rec->market, "미국");
    assert_int_equal(rec->value->amount, 20000);
    kmx_import_record_free(&rec);
    kmx_import_destroy(&map);

    kmx_import_map_t bad[] = {{"colour", "hue"}};
    kmx_import_opts_t bad_opts = {.maps = bad, .nmaps = 1};
    assert_int_equal(kmx_import_new_opts(header, S_N(header), &bad_opts, &map, &err),
                     KMX_ERR_INVAL);
    assert_non_null(strstr(err.reason, "\"hue\" is not a kmx field"));
    kmx_import_map_t ignore[] = {{"valeu", "value"}, {"수출국가", "ignore"}, {"colour", "IGNORE"}};
    kmx_import_opts_t ignore_opts = {.maps = ignore, .nmaps = 3};
    assert_int_equal(kmx_import_new_opts(header, S_N(header), &ignore_opts, &map, &err), 0);
    assert_int_equal(kmx_import_warning_count(map), 0);
    kmx_import_destroy(&map);
}

// Each header form of a period column makes a wide file: one record per cell.
static void test_import_wide_header_forms_unpivot(void **state) {
    (void)state;
    static const struct {
        const char *a, *b;                       // two period columns
        uint32_t a_start, a_end, b_start, b_end; // what they name
    } cases[] = {
        {"2019", "2020", 201901, 201912, 202001, 202012},
        {"2024.01", "2024.02", 202401, 202401, 202402, 202402},
        {"2024년 1월", "2024년 2월", 202401, 202401, 202402, 202402},
        {"2024-01", "2024-02", 202401, 202401, 202402, 202402},
        {"2024 1/4", "2024 2/4", 202401, 202403, 202404, 202406},
        {"2024 상반기", "2024 하반기", 202401, 202406, 202407, 202412},
        {"2023", "2024 p)", 202301, 202312, 202401, 202412},
    };
    for (size_t i = 0; i < S_N(cases); i++) {
        const char *header[] = {"종류", "국가",     "분류",     "품목",
                                "단위", cases[i].a, cases[i].b, "출처"};
        kmx_import_t *map = s_map(header, S_N(header));
        assert_true(kmx_import_is_wide(map));
        const char *row[] = {"수출", "일본", "c", "i", "천달러", "1,000", "2.5", "KCS"};
        s_sink_t k = {0};
        assert_int_equal(kmx_import_row_each(map, row, S_N(row), 3, s_sink, &k), 0);
        assert_int_equal(k.n, 2);
        assert_int_equal(k.n_errs, 0);
        assert_int_equal(k.recs[0]->period->start, cases[i].a_start);
        assert_int_equal(k.recs[0]->period->end, cases[i].a_end);
        assert_int_equal(k.recs[1]->period->start, cases[i].b_start);
        assert_int_equal(k.recs[1]->period->end, cases[i].b_end);
        assert_true(k.recs[0]->value->amount == INT64_C(1000000) * 10000);
        assert_true(k.recs[1]->value->amount == INT64_C(2500) * 10000);
        assert_string_equal(k.recs[1]->market, "일본");
        assert_string_equal(k.recs[1]->source, "KCS");
        // KOSIS marks a preliminary column "p)"; its figures carry that status.
        int marked = strstr(cases[i].b, "p)") != NULL;
        assert_int_equal(k.recs[1]->has_status, marked);
        assert_false(k.recs[0]->has_status);
        if (marked)
            assert_int_equal(k.recs[1]->status, KMX__V1__STATUS__PRELIMINARY);
        s_sink_free(&k);
        kmx_import_destroy(&map);
    }
}

// Empty and "-" cells are skipped and counted; a bad cell names its period column; a fault
// of the row (the kind) is reported once.
static void test_import_wide_skips_and_errors(void **state) {
    (void)state;
    const char *header[] = {"kind", "market", "category", "item", "unit",
                            "2021", "2022",   "2023",     "2024"};
    kmx_import_t *map = s_map(header, S_N(header));
    const char *row[] = {"export", "JP", "c", "i", "USD", "-", "", "12x", "5"};
    s_sink_t k = {0};
    assert_int_equal(kmx_import_row_each(map, row, S_N(row), 4, s_sink, &k), 2);
    assert_int_equal(k.n, 1);
    assert_int_equal(k.recs[0]->period->start, 202401);
    assert_int_equal(k.n_errs, 1);
    assert_string_equal(k.errs[0].column, "2023");
    assert_int_equal(k.errs[0].row, 4);
    s_sink_free(&k);
    const char *bad_kind[] = {"import", "JP", "c", "i", "USD", "1", "2", "3", "4"};
    assert_int_equal(kmx_import_row_each(map, bad_kind, S_N(bad_kind), 5, s_sink, &k), 0);
    assert_int_equal(k.n, 0);
    assert_int_equal(k.n_errs, 1);
    assert_string_equal(k.errs[0].column, "kind");
    s_sink_free(&k);
    Kmx__V1__Record *rec = NULL;
    kmx_import_error_t err;
    assert_int_equal(kmx_import_row(map, row, S_N(row), 4, &rec, &err), KMX_ERR_INVAL);
    kmx_import_destroy(&map);

    // --wide without period columns, a value column in a wide file, and --long.
    kmx_import_opts_t wide = {.layout = KMX_IMPORT_WIDE};
    const char *no_periods[] = {"kind", "period", "category", "item", "value", "unit"};
    assert_int_equal(kmx_import_new_opts(no_periods, S_N(no_periods), &wide, &map, &err),
                     KMX_ERR_INVAL);
    assert_non_null(strstr(err.reason, "--wide"));
    const char *with_value[] = {"kind", "category", "item", "value", "unit", "2023"};
    assert_int_equal(kmx_import_new_opts(with_value, S_N(with_value), NULL, &map, &err),
                     KMX_ERR_INVAL);
    assert_string_equal(err.column, "value");
    kmx_import_opts_t longf = {.layout = KMX_IMPORT_LONG};
    const char *periods[] = {"kind", "category", "item", "unit", "2023"};
    assert_int_equal(kmx_import_new_opts(periods, S_N(periods), &longf, &map, &err), KMX_ERR_INVAL);
    assert_string_equal(err.column, "2023");
}

// Period cells of a long file take the file forms; options come from kmx_import_opts_t.
static void test_import_period_cells_take_file_forms(void **state) {
    (void)state;
    const char *header[] = {"kind", "date", "category", "item", "value", "unit"};
    static const struct {
        const char *cell;   // the period cell
        int date_order;     // KMX_DATE_ORDER_*
        int excel;          // --excel-dates
        uint32_t start;     // first month, or 0 for a refusal
        const char *reason; // part of the refusal
    } cases[] = {
        {"2024-01-01", 0, 0, 202401, NULL},   {"2024년 3월", 0, 0, 202403, NULL},
        {"2024 2/4분기", 0, 0, 202404, NULL}, {"1/2/2024", 1, 0, 202401, NULL},
        {"1/2/2024", 2, 0, 202402, NULL},     {"1/2/2024", 0, 0, 0, "--date-order"},
        {"45292", 0, 1, 202401, NULL},        {"45292", 0, 0, 0, "--excel-dates"},
        {"FY2024", 0, 0, 202401, NULL},       {"2024-13-01", 0, 0, 0, "invalid period"},
    };
    for (size_t i = 0; i < S_N(cases); i++) {
        kmx_import_opts_t opts = {
            .period = {(kmx_date_order_t)cases[i].date_order, cases[i].excel}};
        kmx_import_t *map = NULL;
        kmx_import_error_t err;
        assert_int_equal(kmx_import_new_opts(header, S_N(header), &opts, &map, &err), 0);
        const char *row[] = {"consumption", cases[i].cell, "c", "i", "1", "%"};
        Kmx__V1__Record *rec = NULL;
        int rc = kmx_import_row(map, row, S_N(row), 2, &rec, &err);
        if (cases[i].start) {
            if (rc != 0)
                fail_msg("'%s': %s", cases[i].cell, err.reason);
            assert_int_equal(rec->period->start, cases[i].start);
            assert_int_equal(rec->kind, KMX__V1__KIND__CONSUMPTION);
        } else {
            assert_int_equal(rc, KMX_ERR_INVAL);
            assert_string_equal(err.column, "date");
            assert_non_null(strstr(err.reason, cases[i].reason));
        }
        kmx_import_record_free(&rec);
        kmx_import_destroy(&map);
    }
}

static void test_import_enum_names_round_trip(void **state) {
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

int main(void) {
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
        cmocka_unit_test(test_import_korean_aliases_for_every_column),
        cmocka_unit_test(test_import_value_column_names_korean_unit),
        cmocka_unit_test(test_import_unknown_columns_maps_and_ignore_extra),
        cmocka_unit_test(test_import_wide_header_forms_unpivot),
        cmocka_unit_test(test_import_wide_skips_and_errors),
        cmocka_unit_test(test_import_period_cells_take_file_forms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
