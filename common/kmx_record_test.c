/*  Tests for kmx_record: normalisation of good records, one rejection per bad field.  */
#include "kmx_err.h"
#include "kmx_record.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// cmocka.h needs the headers above.
#include <cmocka.h>

// Builds a heap record the way protobuf-c's unpack would, so free_unpacked can free it.
static Kmx__V1__Record *s_record(void) {
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

static void s_expect_reject(Kmx__V1__Record *r, const char *field) {
    kmx_record_problem_t pr = {0};
    assert_int_equal(kmx_record_normalize(r, &pr), KMX_ERR_INVAL);
    assert_non_null(pr.field);
    assert_string_equal(pr.field, field);
    assert_true(strlen(pr.reason) > 0);
    kmx__v1__record__free_unpacked(r, NULL);
}

static void test_record_normalize_canonicalises(void **state) {
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

static void test_record_consumption_defaults_to_kr(void **state) {
    (void)state;
    Kmx__V1__Record *r = s_record();
    r->kind = KMX__V1__KIND__CONSUMPTION;
    free(r->market);
    r->market = NULL;
    assert_int_equal(kmx_record_normalize(r, NULL), 0);
    assert_string_equal(r->market, "KR");
    kmx__v1__record__free_unpacked(r, NULL);
}

static void test_record_rejects_each_bad_field(void **state) {
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

static void test_record_negative_percent_is_allowed(void **state) {
    (void)state;
    Kmx__V1__Record *r = s_record();
    free(r->value->unit);
    r->value->unit = strdup("percent_yoy");
    r->value->amount = -116000;
    r->as_of = strdup("2025-07-01");
    assert_int_equal(kmx_record_normalize(r, NULL), 0);
    kmx__v1__record__free_unpacked(r, NULL);
}

// Negative amounts: rows of the extended sample data, and their near misses.
static void test_record_negative_amounts_by_unit_and_words(void **state) {
    (void)state;
    static const struct {
        const char *unit, *category, *item;
        int ok; // accepted with a negative amount
    } cases[] = {
        {"KRW", "company_operating_profit", "YG Entertainment consolidated operating loss Q2", 1},
        {"KRW", "company_net_profit", "HYBE net loss", 1},
        {"KRW", "company_operating_profit_forecast", "YG operating loss consensus", 1},
        {"USD", "content_goods_customs", "content goods trade balance (deficit)", 1},
        {"users", "streaming_app_mau_android", "FLO app users YoY change (Android)", 1},
        {"percent_yoy", "album_sales_units", "female artists' album sales", 1},
        {"percent_change", "digital_music_usage", "usage change vs 2019", 1},
        {"percent_cagr", "content_goods_customs", "exports CAGR", 1},
        {"USD", "physical_album_customs", "album exports to Japan", 0},
        {"copies", "album_sales_units", "album sales", 0},
        {"percent_share", "album_sales_share", "share of top 10", 0},
        {"rank", "recorded_music_market", "rank change", 0},
        {"index_points", "song_chart_index", "index change", 0},
        {"USD", "physical_album_customs", "exchanged goods", 0}, // "change" only as a word
        {"USD", "profitable_titles", "sales", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Kmx__V1__Record *r = s_record();
        free(r->value->unit);
        free(r->category);
        free(r->item);
        r->value->unit = strdup(cases[i].unit);
        r->category = strdup(cases[i].category);
        r->item = strdup(cases[i].item);
        r->value->amount = -110000;
        kmx_record_problem_t pr = {0};
        int rc = kmx_record_normalize(r, &pr);
        assert_int_equal(
            kmx_record_may_be_negative(cases[i].unit, cases[i].category, cases[i].item),
            cases[i].ok);
        if (cases[i].ok && rc != 0)
            fail_msg("case %zu (%s, %s) refused: %s", i, cases[i].unit, cases[i].item, pr.reason);
        if (!cases[i].ok && rc == 0)
            fail_msg("case %zu (%s, %s) accepted", i, cases[i].unit, cases[i].item);
        if (!cases[i].ok && strcmp(cases[i].unit, "rank") != 0) {
            assert_string_equal(pr.field, "value");
            assert_non_null(strstr(pr.reason, "must not be negative"));
            assert_non_null(strstr(pr.reason, "percent_yoy")); // says how to fix it
        }
        kmx__v1__record__free_unpacked(r, NULL);
    }
    assert_false(kmx_record_may_be_negative("USD", NULL, NULL));
    assert_false(kmx_record_may_be_negative(NULL, "profit", "loss"));
}

// A deep copy through pack and unpack, freed with kmx__v1__record__free_unpacked.
static Kmx__V1__Record *s_copy(const Kmx__V1__Record *r) {
    uint8_t buf[4096];
    size_t len = kmx__v1__record__get_packed_size(r);
    assert_true(len <= sizeof buf);
    kmx__v1__record__pack(r, buf);
    Kmx__V1__Record *c = kmx__v1__record__unpack(NULL, len, buf);
    assert_non_null(c);
    return c;
}

// Changes field f of message m (allocated by unpack) to a value different from the one it
// has. Returns 0 for a field type the test cannot change (it then fails, naming it).
static int s_mutate(const ProtobufCFieldDescriptor *f, void *m) {
    char *base = m;
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING &&
        f->type != PROTOBUF_C_TYPE_MESSAGE)
        *(protobuf_c_boolean *)(base + f->quantifier_offset) = 1;
    void *field = base + f->offset;
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        char **sp = field;
        const char *old = *sp ? *sp : "";
        char *changed = malloc(strlen(old) + 2);
        assert_non_null(changed);
        snprintf(changed, strlen(old) + 2, "%sx", old);
        free(*sp);
        *sp = changed;
        return 1;
    }
    case PROTOBUF_C_TYPE_ENUM: {
        // Another value the enum really has.
        const ProtobufCEnumDescriptor *e = f->descriptor;
        int *v = field;
        for (unsigned i = 0; i < e->n_values; i++) {
            if (e->values[i].value != *v) {
                *v = e->values[i].value;
                return 1;
            }
        }
        return 0;
    }
    case PROTOBUF_C_TYPE_BOOL:
        *(protobuf_c_boolean *)field = !*(protobuf_c_boolean *)field;
        return 1;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        *(uint64_t *)field += 1;
        return 1;
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        *(uint32_t *)field += 1;
        return 1;
    default:
        return 0;
    }
}

// Every field of Record, and every field of the messages it holds (value, period), taken
// from the descriptor: changing any one of them makes the content differ. A field added to
// the proto later is covered without touching this test.
static void test_record_same_content_sees_every_field(void **state) {
    (void)state;
    Kmx__V1__Record *a = s_record();
    a->has_status = 1;
    a->status = KMX__V1__STATUS__FINAL;
    a->as_of = strdup("2025-07-01");
    a->note = strdup("a note");
    a->company = strdup("HYBE");
    const ProtobufCMessageDescriptor *d = &kmx__v1__record__descriptor;
    int checked = 0;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE) {
            Kmx__V1__Record *b = s_copy(a);
            assert_true(kmx_record_same_content(a, b));
            if (!s_mutate(f, b))
                fail_msg("field %s: type %d cannot be changed by this test", f->name, f->type);
            if (kmx_record_same_content(a, b))
                fail_msg("changing field %s left the content the same", f->name);
            kmx__v1__record__free_unpacked(b, NULL);
            checked++;
            continue;
        }
        const ProtobufCMessageDescriptor *sd = f->descriptor;
        for (unsigned j = 0; j < sd->n_fields; j++) {
            Kmx__V1__Record *b = s_copy(a);
            void **sub = (void **)((char *)b + f->offset);
            assert_non_null(*sub);
            if (!s_mutate(&sd->fields[j], *sub))
                fail_msg("field %s.%s cannot be changed by this test", f->name, sd->fields[j].name);
            if (kmx_record_same_content(a, b))
                fail_msg("changing field %s.%s left the content the same", f->name,
                         sd->fields[j].name);
            kmx__v1__record__free_unpacked(b, NULL);
            checked++;
        }
    }
    assert_true(checked >= 14);
    // Absent and empty are the same content: a note of "" is no note.
    Kmx__V1__Record *b = s_copy(a);
    free(b->artist);
    b->artist = strdup("");
    assert_true(kmx_record_same_content(a, b));
    kmx__v1__record__free_unpacked(b, NULL);
    kmx__v1__record__free_unpacked(a, NULL);
}

static void test_record_same_content(void **state) {
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

// A record's period given as text is read with kmx_period_parse and kept as numbers only.
static void test_record_period_text(void **state) {
    (void)state;
    Kmx__V1__Record *r = s_record();
    r->period->has_start = r->period->has_end = 0;
    r->period->text = strdup("H1 2025");
    kmx_record_problem_t pr = {0};
    assert_int_equal(kmx_record_normalize(r, &pr), 0);
    assert_int_equal(r->period->start, 202501);
    assert_int_equal(r->period->end, 202506);
    assert_null(r->period->text);
    kmx__v1__record__free_unpacked(r, NULL);

    r = s_record();
    r->period->has_start = r->period->has_end = 0;
    r->period->start_text = strdup("2023-Q2");
    r->period->end_text = strdup("2024");
    assert_int_equal(kmx_record_normalize(r, &pr), 0);
    assert_int_equal(r->period->start, 202304);
    assert_int_equal(r->period->end, 202412);
    kmx__v1__record__free_unpacked(r, NULL);

    r = s_record();
    r->period->has_start = r->period->has_end = 0;
    r->period->text = strdup("2025-H3");
    assert_int_equal(kmx_record_normalize(r, &pr), KMX_ERR_INVAL);
    assert_string_equal(pr.field, "period");
    assert_non_null(strstr(pr.reason, "'2025-H3' is not a period"));
    kmx__v1__record__free_unpacked(r, NULL);

    r = s_record(); // numbers and text at once
    r->period->text = strdup("2025");
    assert_int_equal(kmx_record_normalize(r, &pr), KMX_ERR_INVAL);
    assert_string_equal(pr.field, "period");
    kmx__v1__record__free_unpacked(r, NULL);

    r = s_record(); // a record needs both ends
    r->period->has_start = r->period->has_end = 0;
    r->period->start_text = strdup("2023");
    assert_int_equal(kmx_record_normalize(r, &pr), KMX_ERR_INVAL);
    kmx__v1__record__free_unpacked(r, NULL);

    // In a filter one end alone leaves the other open; an inverted pair is refused.
    Kmx__V1__Period p = KMX__V1__PERIOD__INIT;
    kmx_period_t out;
    char why[200];
    p.start_text = "2024-03";
    assert_int_equal(kmx_record_period_text(&p, 1, &out, why, sizeof why), 1);
    assert_int_equal(out.start, 202403);
    assert_int_equal(out.end, KMX_YEAR_MAX * 100 + 12);
    p.end_text = "2023";
    assert_int_equal(kmx_record_period_text(&p, 1, &out, why, sizeof why), KMX_ERR_INVAL);
    assert_non_null(strstr(why, "comes before"));
    p.start_text = p.end_text = NULL;
    assert_int_equal(kmx_record_period_text(&p, 1, &out, why, sizeof why), 0);
}

static void test_kind_parse(void **state) {
    (void)state;
    Kmx__V1__Kind k;
    assert_int_equal(kmx_kind_parse("Exports", &k), 0);
    assert_int_equal(k, KMX__V1__KIND__EXPORT);
    assert_int_equal(kmx_kind_parse("consumption", &k), 0);
    assert_int_equal(k, KMX__V1__KIND__CONSUMPTION);
    assert_int_equal(kmx_kind_parse("imports", &k), KMX_ERR_INVAL);
    assert_string_equal(kmx_kind_name(KMX__V1__KIND__CONSUMPTION), "consumption");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_normalize_canonicalises),
        cmocka_unit_test(test_record_consumption_defaults_to_kr),
        cmocka_unit_test(test_record_rejects_each_bad_field),
        cmocka_unit_test(test_record_negative_percent_is_allowed),
        cmocka_unit_test(test_record_negative_amounts_by_unit_and_words),
        cmocka_unit_test(test_record_same_content),
        cmocka_unit_test(test_record_same_content_sees_every_field),
        cmocka_unit_test(test_kind_parse),
        cmocka_unit_test(test_record_period_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
