/*  kmx_iargs tests: every reading option of kmx import by the names both the CLI
    and the gateway use, the RawDocument they fill (checked after a pack and unpack, as the
    server sees it), refusals naming the option and the value, and the limits.  */
#include "kmx_iargs.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

// doc as kmx.ingest receives it.
static Kmx__V1__RawDocument *s_wire(const Kmx__V1__RawDocument *doc) {
    size_t n = kmx__v1__raw_document__get_packed_size(doc);
    uint8_t *buf = malloc(n ? n : 1);
    assert_non_null(buf);
    kmx__v1__raw_document__pack(doc, buf);
    Kmx__V1__RawDocument *out = kmx__v1__raw_document__unpack(NULL, n, buf);
    free(buf);
    assert_non_null(out);
    return out;
}

static void test_every_option_fills_the_document(void **state) {
    (void)state;
    kmx_iargs_t o;
    kmx_iargs_init(&o);
    assert_int_equal(kmx_iargs_set(&o, "encoding", "euc-kr"), 0);
    assert_int_equal(kmx_iargs_set(&o, "delimiter", "semicolon"), 0);
    assert_int_equal(kmx_iargs_set(&o, "map", "a=b=market"), 0); // the last '=' splits
    assert_int_equal(kmx_iargs_set(&o, "map", "colour=ignore"), 0);
    assert_int_equal(kmx_iargs_set(&o, "default", "note=x=y"), 0); // the first '=' splits
    assert_int_equal(kmx_iargs_set(&o, "ignore-extra", NULL), 0);  // the CLI's bare switch
    assert_int_equal(kmx_iargs_set(&o, "excel_dates", "true"), 0); // the gateway's
    assert_int_equal(kmx_iargs_set(&o, "layout", "WIDE"), 0);
    assert_int_equal(kmx_iargs_set(&o, "date-order", "dmy"), 0);
    Kmx__V1__RawDocument doc = KMX__V1__RAW_DOCUMENT__INIT;
    kmx_iargs_apply(&o, &doc);
    Kmx__V1__RawDocument *w = s_wire(&doc);
    assert_true(w->has_encoding);
    assert_int_equal(w->encoding, KMX__V1__RAW_DOCUMENT__ENCODING__CP949);
    assert_string_equal(w->delimiter, "semicolon");
    assert_int_equal(w->n_columns, 2);
    assert_string_equal(w->columns[0]->header, "a=b");
    assert_string_equal(w->columns[0]->field, "market");
    assert_string_equal(w->columns[1]->header, "colour");
    assert_string_equal(w->columns[1]->field, "ignore");
    assert_int_equal(w->n_defaults, 1);
    assert_string_equal(w->defaults[0]->column, "note");
    assert_string_equal(w->defaults[0]->value, "x=y");
    assert_true(w->has_ignore_extra && w->ignore_extra);
    assert_true(w->has_excel_dates && w->excel_dates);
    assert_true(w->has_layout);
    assert_int_equal(w->layout, KMX__V1__RAW_DOCUMENT__LAYOUT__WIDE);
    assert_true(w->has_date_order);
    assert_int_equal(w->date_order, KMX__V1__RAW_DOCUMENT__DATE_ORDER__DMY);
    kmx__v1__raw_document__free_unpacked(w, NULL);
    kmx_iargs_fini(&o);
}

static void test_nothing_given_leaves_the_server_to_decide(void **state) {
    (void)state;
    kmx_iargs_t o;
    kmx_iargs_init(&o);
    // A later value wins; a switch can be turned off again.
    assert_int_equal(kmx_iargs_set(&o, "ignore_extra", "1"), 0);
    assert_int_equal(kmx_iargs_set(&o, "ignore_extra", "0"), 0);
    assert_int_equal(kmx_iargs_set(&o, "encoding", "utf-8"), 0);
    assert_int_equal(kmx_iargs_set(&o, "encoding", "auto"), 0);
    Kmx__V1__RawDocument doc = KMX__V1__RAW_DOCUMENT__INIT;
    kmx_iargs_apply(&o, &doc);
    Kmx__V1__RawDocument *w = s_wire(&doc);
    assert_false(w->has_encoding); // auto: detected by kmx.ingest
    assert_null(w->delimiter);
    assert_int_equal(w->n_columns, 0);
    assert_int_equal(w->n_defaults, 0);
    assert_false(w->ignore_extra);
    assert_false(w->has_layout);
    assert_false(w->has_date_order);
    assert_false(w->excel_dates);
    kmx__v1__raw_document__free_unpacked(w, NULL);
    kmx_iargs_fini(&o);
}

static void test_refusals_name_the_option_and_value(void **state) {
    (void)state;
    static const struct {
        const char *name;  // as the caller names it
        const char *value; // refused
    } bad[] = {{"encoding", "latin1"}, {"delimiter", "tabs"}, {"delimiter", NULL},
               {"map", "nofield"},     {"map", "=market"},    {"map", "header="},
               {"default", "novalue"}, {"default", "=x"},     {"layout", "tall"},
               {"date-order", "ymd"},  {"date_order", NULL},  {"excel_dates", "maybe"},
               {"ignore-extra", "2"}};
    kmx_iargs_t o;
    kmx_iargs_init(&o);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(kmx_iargs_set(&o, bad[i].name, bad[i].value), -1);
        assert_non_null(strstr(o.err, bad[i].name));
        if (bad[i].value)
            assert_non_null(strstr(o.err, bad[i].value));
    }
    // Refused values change nothing.
    Kmx__V1__RawDocument doc = KMX__V1__RAW_DOCUMENT__INIT;
    kmx_iargs_apply(&o, &doc);
    assert_false(doc.has_encoding || doc.delimiter || doc.n_columns || doc.n_defaults ||
                 doc.has_layout || doc.has_date_order || doc.excel_dates || doc.ignore_extra);
    // Not one of these options: 1, so the caller can try its own (atomic, input, ...).
    assert_int_equal(kmx_iargs_set(&o, "atomic", "1"), 1);
    assert_int_equal(kmx_iargs_set(&o, "", "1"), 1);
    assert_int_equal(kmx_iargs_set(&o, "encoding_and_a_name_longer_than_any_option", "x"), 1);
    kmx_iargs_fini(&o);
}

static void test_maps_and_defaults_are_bounded(void **state) {
    (void)state;
    kmx_iargs_t o;
    kmx_iargs_init(&o);
    char arg[32];
    for (int i = 0; i < KMX_IARGS_MAPS_MAX; i++) {
        snprintf(arg, sizeof arg, "h%d=item", i);
        assert_int_equal(kmx_iargs_set(&o, "map", arg), 0);
    }
    assert_int_equal(kmx_iargs_set(&o, "map", "one=more"), -1);
    assert_non_null(strstr(o.err, "at most 64"));
    for (int i = 0; i < KMX_IARGS_DEFAULTS_MAX; i++) {
        snprintf(arg, sizeof arg, "c%d=v", i);
        assert_int_equal(kmx_iargs_set(&o, "default", arg), 0);
    }
    assert_int_equal(kmx_iargs_set(&o, "default", "one=more"), -1);
    Kmx__V1__RawDocument doc = KMX__V1__RAW_DOCUMENT__INIT;
    kmx_iargs_apply(&o, &doc);
    assert_int_equal(doc.n_columns, KMX_IARGS_MAPS_MAX);
    assert_int_equal(doc.n_defaults, KMX_IARGS_DEFAULTS_MAX);
    assert_string_equal(doc.columns[63]->header, "h63");
    assert_string_equal(doc.defaults[31]->column, "c31");
    kmx_iargs_fini(&o);
    assert_int_equal(o.n_maps, 0); // fini leaves an empty set, ready for reuse
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_option_fills_the_document),
        cmocka_unit_test(test_nothing_given_leaves_the_server_to_decide),
        cmocka_unit_test(test_refusals_name_the_option_and_value),
        cmocka_unit_test(test_maps_and_defaults_are_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
