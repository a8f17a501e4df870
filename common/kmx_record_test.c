/*  Tests for kmx_record: normalisation of good records, one rejection per bad field.  */
#include "kmx_record.h"
#include "kmx_err.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

// Builds a heap record the way protobuf-c's unpack would, so free_unpacked can free it.
static Kmx__V1__Record *s_record(void)
{
    Kmx__V1__Record *r = calloc(1, sizeof *r);
    kmx__v1__record__init(r);
    r->has_kind = 1;
    r->kind = KMX__V1__KIND__EXPORT;
    r->period = calloc(1, sizeof *r->period);
    kmx__v1__period__init(r->period);
    r->period->has_start = r->period->has_end = 1;
    r->period->start = 202501;
    r->period->end = 202506;
    r->market = strdup(" jp ");
    r->category = strdup("Physical_Album_Customs");
    r->item = strdup("album exports to Japan H1");
    r->source = strdup("Korea Customs Service");
    r->value = calloc(1, sizeof *r->value);
    kmx__v1__value__init(r->value);
    r->value->has_amount = 1;
    r->value->amount = 391000000000LL;
    r->value->unit = strdup("USD");
    return r;
}

static void s_expect_reject(Kmx__V1__Record *r, const char *field)
{
    kmx_record_problem_t pr = {0};
    assert_int_equal(kmx_record_normalize(r, &pr), KMX_ERR_INVAL);
    assert_non_null(pr.field);
    assert_string_equal(pr.field, field);
    assert_true(strlen(pr.reason) > 0);
    kmx__v1__record__free_unpacked(r, NULL);
}

static void test_record_normalize_canonicalises(void **state)
{
    (void)state;
    Kmx__V1__Record *r = s_record();
    free(r->company);
    r->company = strdup("   ");
    kmx_record_problem_t pr = {0};
    assert_int_equal(kmx_record_normalize(r, &pr), 0);
    assert_string_equal(r->market, "JP");
    assert_string_equal(r->category, "physical_album_customs");
    assert_null(r->company);
    char topic[KMX_TOPIC_MAX];
    assert_int_equal(kmx_record_topic(r, topic, sizeof topic), 0);
    assert_string_equal(topic, "export.JP.2025-H1.physical_album_customs");
    kmx__v1__record__free_unpacked(r, NULL);
}

static void test_record_consumption_defaults_to_kr(void **state)
{
    (void)state;
    Kmx__V1__Record *r = s_record();
    r->kind = KMX__V1__KIND__CONSUMPTION;
    free(r->market);
    r->market = NULL;
    assert_int_equal(kmx_record_normalize(r, NULL), 0);
    assert_string_equal(r->market, "KR");
    kmx__v1__record__free_unpacked(r, NULL);
}

static void test_record_rejects_each_bad_field(void **state)
{
    (void)state;
    Kmx__V1__Record *r = s_record();
    r->kind = KMX__V1__KIND__KIND_UNSPECIFIED;
    s_expect_reject(r, "kind");

    r = s_record();
    r->period->end = 202413;
    s_expect_reject(r, "period");

    r = s_record();
    free(r->market);
    r->market = strdup("Atlantis");
    s_expect_reject(r, "market");

    r = s_record();
    free(r->market);
    r->market = NULL;
    s_expect_reject(r, "market");

    r = s_record();
    free(r->category);
    r->category = strdup("albums.customs");
    s_expect_reject(r, "category");

    r = s_record();
    free(r->item);
    r->item = NULL;
    s_expect_reject(r, "item");

    r = s_record();
    free(r->source);
    r->source = malloc(KMX_SOURCE_MAX + 2);
    memset(r->source, 'x', KMX_SOURCE_MAX + 1);
    r->source[KMX_SOURCE_MAX + 1] = '\0';
    s_expect_reject(r, "source");

    r = s_record();
    free(r->artist);
    r->artist = strdup("bad\x01name");
    s_expect_reject(r, "artist");

    r = s_record();
    free(r->artist);
    r->artist = strdup("\xC3\x28");
    s_expect_reject(r, "artist");

    r = s_record();
    r->value->amount = -1;
    s_expect_reject(r, "value");

    r = s_record();
    free(r->value->unit);
    r->value->unit = strdup("USD_million");
    s_expect_reject(r, "unit");

    r = s_record();
    r->value->has_amount = 0;
    s_expect_reject(r, "value");

    r = s_record();
    r->as_of = strdup("2025-02-30");
    s_expect_reject(r, "as_of");

    r = s_record();
    r->has_status = 1;
    r->status = 42;
    s_expect_reject(r, "status");
}

static void test_record_negative_percent_is_allowed(void **state)
{
    (void)state;
    Kmx__V1__Record *r = s_record();
    free(r->value->unit);
    r->value->unit = strdup("percent_yoy");
    r->value->amount = -116000;
    r->as_of = strdup("2025-07-01");
    assert_int_equal(kmx_record_normalize(r, NULL), 0);
    kmx__v1__record__free_unpacked(r, NULL);
}

static void test_record_same_content(void **state)
{
    (void)state;
    Kmx__V1__Record *a = s_record(), *b = s_record();
    assert_true(kmx_record_same_content(a, b));
    b->value->amount++;
    assert_false(kmx_record_same_content(a, b));
    b->value->amount--;
    b->note = strdup("revised");
    assert_false(kmx_record_same_content(a, b));
    kmx__v1__record__free_unpacked(a, NULL);
    kmx__v1__record__free_unpacked(b, NULL);
}

static void test_kind_parse(void **state)
{
    (void)state;
    Kmx__V1__Kind k;
    assert_int_equal(kmx_kind_parse("Exports", &k), 0);
    assert_int_equal(k, KMX__V1__KIND__EXPORT);
    assert_int_equal(kmx_kind_parse("consumption", &k), 0);
    assert_int_equal(k, KMX__V1__KIND__CONSUMPTION);
    assert_int_equal(kmx_kind_parse("imports", &k), KMX_ERR_INVAL);
    assert_string_equal(kmx_kind_name(KMX__V1__KIND__CONSUMPTION), "consumption");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_normalize_canonicalises),
        cmocka_unit_test(test_record_consumption_defaults_to_kr),
        cmocka_unit_test(test_record_rejects_each_bad_field),
        cmocka_unit_test(test_record_negative_percent_is_allowed),
        cmocka_unit_test(test_record_same_content),
        cmocka_unit_test(test_kind_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
