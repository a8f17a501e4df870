/*  kmx_query tests: the handlers against a real kmx-storage service running in a thread
    on tcp://127.0.0.1:* with an LMDB directory from mkdtemp (records are seeded straight
    through a storage link), and against a storage that never answers.  */
#include "kmx_err.h"
#include "kmx_msg.h"
#include "kmx_query.h"
#include "kmx_testkit.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include <cmocka.h>

#define S_MANY 2500 // records seeded to make a query walk several scan pages

typedef struct {
    kmx_testkit_storage_t *kit; // the real storage service, in a thread
    void *ctx;                  // its ZeroMQ context, borrowed
    kmx_link_t *link;           // the handlers' link to storage, also used to seed
    kmx_query_t *query;         // the handlers under test
} s_fixture_t;

// Stores records through the link, as kmx-ingest would.
static void s_seed(s_fixture_t *f, kmx_testkit_rec_t *recs, size_t n) {
    Kmx__V1__Record **ptrs = calloc(n, sizeof *ptrs);
    assert_non_null(ptrs);
    for (size_t i = 0; i < n; i++)
        ptrs[i] = &recs[i].rec;
    Kmx__V1__PutRequest put = KMX__V1__PUT_REQUEST__INIT;
    put.n_records = n;
    put.records = ptrs;
    Kmx__V1__Request req = KMX__V1__REQUEST__INIT;
    req.body_case = KMX__V1__REQUEST__BODY_PUT;
    req.put = &put;
    Kmx__V1__Response *resp = NULL;
    assert_int_equal(kmx_link_call(f->link, &req, 20000, &resp), 0);
    assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_PUT);
    assert_int_equal(resp->put->stored, n);
    kmx__v1__response__free_unpacked(resp, NULL);
    free(ptrs);
}

// Seeds: JP 2024 year 10.5 USD, JP 2024-H1 4 USD, US 2024-H1 2.25 USD, JP 2024 year 7 KRW.
static void s_seed_small(s_fixture_t *f) {
    kmx_testkit_rec_t r[4];
    kmx_testkit_rec_init(&r[0], "JP", 202401, 202412, 105000, "USD");
    kmx_testkit_rec_init(&r[1], "JP", 202401, 202406, 40000, "USD");
    kmx_testkit_rec_init(&r[2], "US", 202401, 202406, 22500, "USD");
    kmx_testkit_rec_init(&r[3], "JP", 202401, 202412, 70000, "KRW");
    // The unit is not part of the natural key: another item keeps it a separate record.
    snprintf(r[3].item, sizeof r[3].item, "album exports in won");
    s_seed(f, r, 4);
}

static int s_setup(void **state) {
    s_fixture_t *f = calloc(1, sizeof *f);
    if (!f || kmx_testkit_storage_open("kmx-query-test", &f->kit) != 0)
        return -1;
    f->ctx = kmx_testkit_storage_ctx(f->kit);
    f->link = kmx_link_new(f->ctx, kmx_testkit_storage_endpoint(f->kit));
    f->query = kmx_query_new(f->link, "query-test");
    if (!f->link || !f->query)
        return -1;
    *state = f;
    return 0;
}

static int s_teardown(void **state) {
    s_fixture_t *f = *state;
    kmx_query_destroy(&f->query);
    kmx_link_destroy(&f->link);
    kmx_testkit_storage_close(&f->kit);
    free(f);
    return 0;
}

static Kmx__V1__Response *s_handle_raw(kmx_query_t *query, const void *body, size_t size) {
    uint8_t *out = NULL;
    size_t len = 0;
    assert_int_equal(kmx_query_handle(query, body, size, &out, &len), 0);
    Kmx__V1__Response *resp = kmx_msg_response_unpack(out, len);
    free(out);
    assert_non_null(resp);
    return resp;
}

static Kmx__V1__Response *s_handle(kmx_query_t *query, const Kmx__V1__Request *req) {
    uint8_t *body = NULL;
    size_t size = 0;
    assert_int_equal(kmx_msg_pack_request(req, &body, &size), 0);
    Kmx__V1__Response *resp = s_handle_raw(query, body, size);
    free(body);
    return resp;
}

static Kmx__V1__Response *s_query(kmx_query_t *query, Kmx__V1__Filter *filter,
                                  Kmx__V1__GroupField *by, size_t n_by, uint32_t top) {
    Kmx__V1__QueryRequest q = KMX__V1__QUERY_REQUEST__INIT;
    q.filter = filter;
    q.n_group_by = n_by;
    q.group_by = by;
    q.has_top = top > 0;
    q.top = top;
    Kmx__V1__Request req = KMX__V1__REQUEST__INIT;
    req.request_id = "q-1";
    req.body_case = KMX__V1__REQUEST__BODY_QUERY;
    req.query = &q;
    return s_handle(query, &req);
}

static void s_expect_error(Kmx__V1__Response *resp, Kmx__V1__ErrorCode code, const char *text) {
    assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_ERROR);
    assert_int_equal(resp->error->code, code);
    if (text)
        assert_non_null(strstr(resp->error->message, text));
    kmx__v1__response__free_unpacked(resp, NULL);
}

static void test_query_sums_across_scan_pages(void **state) {
    s_fixture_t *f = *state;
    kmx_testkit_rec_t *recs = calloc(S_MANY, sizeof *recs);
    assert_non_null(recs);
    for (int i = 0; i < S_MANY; i++) {
        // 0.1 each
        kmx_testkit_rec_init(&recs[i], i % 2 ? "JP" : "CN", 202401, 202412, 1000, "USD");
        snprintf(recs[i].item, sizeof recs[i].item, "item %d", i);
    }
    s_seed(f, recs, S_MANY);
    free(recs);
    Kmx__V1__GroupField by[] = {KMX__V1__GROUP_FIELD__BY_MARKET};
    Kmx__V1__Response *resp = s_query(f->query, NULL, by, 1, 0);
    assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_QUERY);
    assert_string_equal(resp->request_id, "q-1");
    Kmx__V1__QueryResult *res = resp->query;
    assert_int_equal(res->matched, S_MANY);
    assert_int_equal(res->n_rows, 2);
    assert_string_equal(res->rows[0]->keys[0], "CN");
    assert_string_equal(res->rows[0]->sum, "125");
    assert_int_equal(res->rows[0]->count, S_MANY / 2);
    assert_string_equal(res->rows[1]->keys[0], "JP");
    assert_string_equal(res->rows[1]->sum, "125");
    kmx__v1__response__free_unpacked(resp, NULL);
}

static void test_query_filters_groups_and_splits_units(void **state) {
    s_fixture_t *f = *state;
    s_seed_small(f);
    char *markets[] = {"japan"};
    Kmx__V1__Filter filter = KMX__V1__FILTER__INIT;
    filter.n_markets = 1;
    filter.markets = markets;
    Kmx__V1__GroupField by[] = {KMX__V1__GROUP_FIELD__BY_MARKET, KMX__V1__GROUP_FIELD__BY_YEAR};
    Kmx__V1__Response *resp = s_query(f->query, &filter, by, 2, 0);
    assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_QUERY);
    Kmx__V1__QueryResult *res = resp->query;
    // The default rule: JP's 2024 total wins over its own first half, which is left out.
    assert_int_equal(res->matched, 2);
    assert_int_equal(res->dropped, 1);
    assert_string_equal(res->granularity, "auto");
    assert_int_equal(res->n_rows, 2);
    assert_string_equal(res->rows[0]->unit, "KRW");
    assert_string_equal(res->rows[0]->sum, "7");
    assert_string_equal(res->rows[1]->unit, "USD");
    assert_string_equal(res->rows[1]->sum, "10.5");
    assert_string_equal(res->rows[1]->keys[1], "2024");
    kmx__v1__response__free_unpacked(resp, NULL);

    // Granularity "any": the year and its half both count (the caller asked for it).
    filter.granularity = "any";
    resp = s_query(f->query, &filter, by, 2, 0);
    assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_QUERY);
    assert_int_equal(resp->query->matched, 3);
    assert_string_equal(resp->query->rows[1]->sum, "14.5");
    kmx__v1__response__free_unpacked(resp, NULL);

    filter.granularity = "half";
    resp = s_query(f->query, &filter, NULL, 0, 0);
    assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_QUERY);
    assert_int_equal(resp->query->matched, 1);
    assert_string_equal(resp->query->rows[0]->sum, "4");
    kmx__v1__response__free_unpacked(resp, NULL);
}

static void test_query_top_keeps_largest(void **state) {
    s_fixture_t *f = *state;
    s_seed_small(f);
    Kmx__V1__Filter filter = KMX__V1__FILTER__INIT;
    char *units[] = {"USD"};
    filter.n_units = 1;
    filter.units = units;
    Kmx__V1__GroupField by[] = {KMX__V1__GROUP_FIELD__BY_MARKET};
    Kmx__V1__Response *resp = s_query(f->query, &filter, by, 1, 1);
    assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_QUERY);
    assert_int_equal(resp->query->n_rows, 1);
    assert_string_equal(resp->query->rows[0]->keys[0], "JP");
    assert_string_equal(resp->query->rows[0]->sum, "10.5");
    kmx__v1__response__free_unpacked(resp, NULL);
}

// Seeds two statistics of the same markets and year, in USD: "album" JP 10, US 4, CN 3
// and "survey" CN 60, JP 50, US 20; plus "won" JP 7 KRW, a third statistic in its own unit.
static void s_seed_categories(s_fixture_t *f) {
    static const struct {
        const char *market, *category, *unit;
        int64_t amount;
    } rows[] = {{"JP", "album", "USD", 100000},  {"US", "album", "USD", 40000},
                {"CN", "album", "USD", 30000},   {"CN", "survey", "USD", 600000},
                {"JP", "survey", "USD", 500000}, {"US", "survey", "USD", 200000},
                {"JP", "won", "KRW", 70000}};
    kmx_testkit_rec_t r[7];
    for (size_t i = 0; i < 7; i++) {
        kmx_testkit_rec_init(&r[i], rows[i].market, 202401, 202412, rows[i].amount, rows[i].unit);
        r[i].rec.category = (char *)rows[i].category;
    }
    s_seed(f, r, 7);
}

static Kmx__V1__Response *s_ask(kmx_query_t *query, Kmx__V1__QueryRequest *q) {
    Kmx__V1__Request req = KMX__V1__REQUEST__INIT;
    req.request_id = "q-cat";
    req.body_case = KMX__V1__REQUEST__BODY_QUERY;
    req.query = q;
    return s_handle(query, &req);
}

// Checks one answer row: its keys (NULL-terminated), unit, sum and share (NULL: none).
static void s_expect_row(const Kmx__V1__Row *row, const char *const *keys, const char *unit,
                         const char *sum, const char *share) {
    size_t n = 0;
    for (; keys[n]; n++) {
        assert_true(n < row->n_keys);
        assert_string_equal(row->keys[n], keys[n]);
    }
    assert_int_equal(row->n_keys, n);
    assert_string_equal(row->unit, unit);
    assert_string_equal(row->sum, sum);
    if (share)
        assert_string_equal(row->share, share);
    else
        assert_null(row->share);
}

static void test_query_splits_categories_unless_pinned(void **state) {
    s_fixture_t *f = *state;
    s_seed_categories(f);
    Kmx__V1__GroupField by[] = {KMX__V1__GROUP_FIELD__BY_MARKET};
    Kmx__V1__Response *resp = s_query(f->query, NULL, by, 1, 0);
    assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_QUERY);
    Kmx__V1__QueryResult *res = resp->query;
    // Never JP = 10 + 50 + 7: each statistic is its own row, the category the last key,
    // and the result says so.
    assert_int_equal(res->n_group_by, 2);
    assert_int_equal(res->group_by[0], KMX__V1__GROUP_FIELD__BY_MARKET);
    assert_int_equal(res->group_by[1], KMX__V1__GROUP_FIELD__BY_CATEGORY);
    assert_int_equal(res->n_rows, 7);
    s_expect_row(res->rows[0], (const char *[]){"CN", "album", NULL}, "USD", "3", NULL);
    s_expect_row(res->rows[1], (const char *[]){"CN", "survey", NULL}, "USD", "60", NULL);
    s_expect_row(res->rows[2], (const char *[]){"JP", "album", NULL}, "USD", "10", NULL);
    s_expect_row(res->rows[3], (const char *[]){"JP", "survey", NULL}, "USD", "50", NULL);
    s_expect_row(res->rows[4], (const char *[]){"JP", "won", NULL}, "KRW", "7", NULL);
    kmx__v1__response__free_unpacked(resp, NULL);

    // Pinned to one category (the filter ignores case): no category key.
    char *survey[] = {"survey", "SURVEY"};
    Kmx__V1__Filter filter = KMX__V1__FILTER__INIT;
    filter.n_categories = 2;
    filter.categories = survey;
    resp = s_query(f->query, &filter, by, 1, 0);
    assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_QUERY);
    assert_int_equal(resp->query->n_group_by, 1);
    assert_int_equal(resp->query->n_rows, 3);
    s_expect_row(resp->query->rows[0], (const char *[]){"CN", NULL}, "USD", "60", NULL);
    kmx__v1__response__free_unpacked(resp, NULL);

    // Two categories named: still split.
    char *two[] = {"album", "survey"};
    filter.categories = two;
    resp = s_query(f->query, &filter, NULL, 0, 0);
    assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_QUERY);
    assert_int_equal(resp->query->n_rows, 2);
    s_expect_row(resp->query->rows[0], (const char *[]){"album", NULL}, "USD", "17", NULL);
    s_expect_row(resp->query->rows[1], (const char *[]){"survey", NULL}, "USD", "130", NULL);
    kmx__v1__response__free_unpacked(resp, NULL);
}

static void test_query_ranks_within_an_added_category(void **state) {
    s_fixture_t *f = *state;
    s_seed_categories(f);
    Kmx__V1__GroupField by[] = {KMX__V1__GROUP_FIELD__BY_MARKET};
    Kmx__V1__QueryRequest q = KMX__V1__QUERY_REQUEST__INIT;
    q.n_group_by = 1;
    q.group_by = by;
    q.has_top = q.has_other = q.has_share = 1;
    q.top = 1;
    q.other = q.share = 1;
    Kmx__V1__Response *resp = s_ask(f->query, &q);
    assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_QUERY);
    Kmx__V1__QueryResult *res = resp->query;
    // Top 1 per (category, unit): album's JP, survey's CN, won's JP, each with an "other"
    // bucket of its own category and a share of its own category's total. Summed across
    // categories CN (63) would have beaten JP (60).
    assert_int_equal(res->n_rows, 5);
    s_expect_row(res->rows[0], (const char *[]){"JP", "album", NULL}, "USD", "10", "58.82");
    s_expect_row(res->rows[1], (const char *[]){"(other)", "album", NULL}, "USD", "7", "41.18");
    assert_true(res->rows[1]->other);
    s_expect_row(res->rows[2], (const char *[]){"CN", "survey", NULL}, "USD", "60", "46.15");
    s_expect_row(res->rows[3], (const char *[]){"(other)", "survey", NULL}, "USD", "70", "53.85");
    s_expect_row(res->rows[4], (const char *[]){"JP", "won", NULL}, "KRW", "7", "100");
    kmx__v1__response__free_unpacked(resp, NULL);

    // The walk (min and max read records) splits and ranks the same way.
    Kmx__V1__Metric metrics[] = {KMX__V1__METRIC__SUM, KMX__V1__METRIC__MIN};
    q.n_metrics = 2;
    q.metrics = metrics;
    q.has_other = q.other = 0;
    resp = s_ask(f->query, &q);
    assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_QUERY);
    assert_int_equal(resp->query->n_rows, 3);
    s_expect_row(resp->query->rows[1], (const char *[]){"CN", "survey", NULL}, "USD", "60",
                 "46.15");
    assert_true(resp->query->rows[1]->has_min);
    assert_int_equal(resp->query->rows[1]->min, 600000);
    kmx__v1__response__free_unpacked(resp, NULL);
}

static void test_query_ranks_across_an_explicit_category(void **state) {
    s_fixture_t *f = *state;
    s_seed_categories(f);
    // Grouping by category is asking to compare the categories: they rank (and share)
    // against each other within a unit, like any other key.
    char *usd[] = {"USD"};
    Kmx__V1__Filter filter = KMX__V1__FILTER__INIT;
    filter.n_units = 1;
    filter.units = usd;
    Kmx__V1__GroupField by[] = {KMX__V1__GROUP_FIELD__BY_CATEGORY};
    Kmx__V1__QueryRequest q = KMX__V1__QUERY_REQUEST__INIT;
    q.filter = &filter;
    q.n_group_by = 1;
    q.group_by = by;
    q.has_top = q.has_share = 1;
    q.top = 1;
    q.share = 1;
    Kmx__V1__Response *resp = s_ask(f->query, &q);
    assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_QUERY);
    assert_int_equal(resp->query->n_group_by, 1);
    assert_int_equal(resp->query->n_rows, 1);
    s_expect_row(resp->query->rows[0], (const char *[]){"survey", NULL}, "USD", "130", "88.44");
    kmx__v1__response__free_unpacked(resp, NULL);

    // By market and category: the top pair of all, not one per category.
    Kmx__V1__GroupField both[] = {KMX__V1__GROUP_FIELD__BY_MARKET,
                                  KMX__V1__GROUP_FIELD__BY_CATEGORY};
    q.n_group_by = 2;
    q.group_by = both;
    q.has_share = q.share = 0;
    resp = s_ask(f->query, &q);
    assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_QUERY);
    assert_int_equal(resp->query->n_rows, 1);
    s_expect_row(resp->query->rows[0], (const char *[]){"CN", "survey", NULL}, "USD", "60", NULL);
    kmx__v1__response__free_unpacked(resp, NULL);
}

static void test_query_refuses_units_in_conflict_within_a_category(void **state) {
    s_fixture_t *f = *state;
    s_seed_categories(f);
    kmx_testkit_rec_t r;
    kmx_testkit_rec_init(&r, "US", 202401, 202412, 90000, "KRW");
    r.rec.category = "survey";
    snprintf(r.item, sizeof r.item, "survey in won");
    s_seed(f, &r, 1);
    Kmx__V1__GroupField by[] = {KMX__V1__GROUP_FIELD__BY_MARKET};
    s_expect_error(s_query(f->query, NULL, by, 1, 2), KMX__V1__ERROR_CODE__BAD_REQUEST,
                   "of category survey are in KRW and USD");
    // Ten fields leave no room for the category the answer must be split by.
    Kmx__V1__GroupField ten[10];
    for (size_t i = 0; i < 10; i++)
        ten[i] = KMX__V1__GROUP_FIELD__BY_MARKET;
    s_expect_error(s_query(f->query, NULL, ten, 10, 0), KMX__V1__ERROR_CODE__BAD_REQUEST,
                   "category");
}

static void test_query_refuses_bad_filters(void **state) {
    s_fixture_t *f = *state;
    char *markets[] = {"Narnia"};
    Kmx__V1__Filter filter = KMX__V1__FILTER__INIT;
    filter.n_markets = 1;
    filter.markets = markets;
    s_expect_error(s_query(f->query, &filter, NULL, 0, 0), KMX__V1__ERROR_CODE__BAD_REQUEST,
                   "Narnia");
    Kmx__V1__Period p = KMX__V1__PERIOD__INIT;
    p.has_start = p.has_end = 1;
    p.start = 202501;
    p.end = 202401;
    Kmx__V1__Filter inverted = KMX__V1__FILTER__INIT;
    inverted.period = &p;
    s_expect_error(s_query(f->query, &inverted, NULL, 0, 0), KMX__V1__ERROR_CODE__BAD_REQUEST,
                   "inverted");
    Kmx__V1__Filter gran = KMX__V1__FILTER__INIT;
    gran.granularity = "fortnight";
    s_expect_error(s_query(f->query, &gran, NULL, 0, 0), KMX__V1__ERROR_CODE__BAD_REQUEST,
                   "granularity");
    Kmx__V1__GroupField by[] = {(Kmx__V1__GroupField)77};
    s_expect_error(s_query(f->query, NULL, by, 1, 0), KMX__V1__ERROR_CODE__BAD_REQUEST, NULL);
}

static void test_query_get_scan_and_replay_reach_storage(void **state) {
    s_fixture_t *f = *state;
    s_seed_small(f);
    kmx_testkit_rec_t key;
    kmx_testkit_rec_init(&key, "japan", 202401, 202406, 0, "USD");
    Kmx__V1__GetRequest get = KMX__V1__GET_REQUEST__INIT;
    get.key = &key.rec;
    Kmx__V1__Request req = KMX__V1__REQUEST__INIT;
    req.request_id = "g";
    req.body_case = KMX__V1__REQUEST__BODY_GET;
    req.get = &get;
    Kmx__V1__Response *resp = s_handle(f->query, &req);
    assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_GET);
    assert_string_equal(resp->request_id, "g");
    assert_int_equal(resp->get->record->record->value->amount, 40000);
    kmx__v1__response__free_unpacked(resp, NULL);
    key.period.start = key.period.end = 202403;
    s_expect_error(s_handle(f->query, &req), KMX__V1__ERROR_CODE__NOT_FOUND, NULL);
    key.rec.market = "Narnia";
    s_expect_error(s_handle(f->query, &req), KMX__V1__ERROR_CODE__BAD_REQUEST, "Narnia");

    Kmx__V1__ScanRequest scan = KMX__V1__SCAN_REQUEST__INIT;
    scan.has_limit = 1;
    scan.limit = 3;
    req.body_case = KMX__V1__REQUEST__BODY_SCAN;
    req.scan = &scan;
    resp = s_handle(f->query, &req);
    assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_SCAN);
    assert_int_equal(resp->scan->n_records, 3);
    assert_true(resp->scan->next_page_token.len > 0);
    kmx__v1__response__free_unpacked(resp, NULL);

    Kmx__V1__ReplayRequest replay = KMX__V1__REPLAY_REQUEST__INIT;
    replay.has_since = 1;
    replay.since = 0;
    req.body_case = KMX__V1__REQUEST__BODY_REPLAY;
    req.replay = &replay;
    resp = s_handle(f->query, &req);
    assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_REPLAY);
    assert_int_equal(resp->replay->n_events, 4);
    kmx__v1__response__free_unpacked(resp, NULL);
}

static void test_query_answers_bad_bodies_and_other_services(void **state) {
    s_fixture_t *f = *state;
    const uint8_t junk[] = {0x0a, 0xff, 0xff};
    s_expect_error(s_handle_raw(f->query, junk, sizeof junk), KMX__V1__ERROR_CODE__BAD_REQUEST,
                   NULL);
    Kmx__V1__PutRequest put = KMX__V1__PUT_REQUEST__INIT;
    Kmx__V1__Request req = KMX__V1__REQUEST__INIT;
    req.body_case = KMX__V1__REQUEST__BODY_PUT;
    req.put = &put;
    s_expect_error(s_handle(f->query, &req), KMX__V1__ERROR_CODE__UNSUPPORTED, NULL);
    Kmx__V1__PingRequest ping = KMX__V1__PING_REQUEST__INIT;
    req.body_case = KMX__V1__REQUEST__BODY_PING;
    req.ping = &ping;
    Kmx__V1__Response *resp = s_handle(f->query, &req);
    assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_PONG);
    assert_string_equal(resp->pong->service, "kmx.query");
    assert_string_equal(resp->pong->worker, "query-test");
    kmx__v1__response__free_unpacked(resp, NULL);
    Kmx__V1__StatsRequest stats = KMX__V1__STATS_REQUEST__INIT;
    req.body_case = KMX__V1__REQUEST__BODY_STATS;
    req.stats = &stats;
    resp = s_handle(f->query, &req);
    assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_STATS);
    assert_string_equal(resp->stats->counters[1]->name, "errors");
    assert_int_equal(resp->stats->counters[1]->value, 2);
    kmx__v1__response__free_unpacked(resp, NULL);
}

static void test_query_answers_unavailable_when_storage_is_silent(void **state) {
    s_fixture_t *f = *state;
    char ep[KMX_TESTKIT_ENDPOINT_MAX];
    void *hung = kmx_testkit_hung_open(f->ctx, ep, sizeof ep);
    assert_non_null(hung);
    kmx_link_t *link = kmx_link_new(f->ctx, ep);
    kmx_query_t *query = kmx_query_new(link, "query-hung");
    assert_non_null(query);
    kmx_query_set_timeout(query, 200);
    s_expect_error(s_query(query, NULL, NULL, 0, 0), KMX__V1__ERROR_CODE__UNAVAILABLE, NULL);
    Kmx__V1__ReplayRequest replay = KMX__V1__REPLAY_REQUEST__INIT;
    Kmx__V1__Request req = KMX__V1__REQUEST__INIT;
    req.body_case = KMX__V1__REQUEST__BODY_REPLAY;
    req.replay = &replay;
    s_expect_error(s_handle(query, &req), KMX__V1__ERROR_CODE__UNAVAILABLE, NULL);
    // A request that says how long its sender waits is answered within that time, with
    // the error that names it instead of the retry hint.
    req.has_timeout_ms = 1;
    req.timeout_ms = 150;
    s_expect_error(s_handle(query, &req), KMX__V1__ERROR_CODE__DEADLINE_EXCEEDED,
                   "not answered within the request's timeout of 150 ms");
    // One whose time is over on arrival is answered at once, storage not asked.
    req.timeout_ms = 1;
    s_expect_error(s_handle(query, &req), KMX__V1__ERROR_CODE__DEADLINE_EXCEEDED, "of 1 ms");
    kmx_query_destroy(&query);
    kmx_link_destroy(&link);
    zmq_close(hung);
}

static void test_query_survives_mutated_bodies(void **state) {
    s_fixture_t *f = *state;
    s_seed_small(f);
    char *markets[] = {"JP", "US"};
    Kmx__V1__Period p = KMX__V1__PERIOD__INIT;
    p.has_start = p.has_end = 1;
    p.start = 202401;
    p.end = 202412;
    Kmx__V1__Filter filter = KMX__V1__FILTER__INIT;
    filter.n_markets = 2;
    filter.markets = markets;
    filter.period = &p;
    filter.granularity = "year";
    Kmx__V1__GroupField by[] = {KMX__V1__GROUP_FIELD__BY_MARKET, KMX__V1__GROUP_FIELD__BY_PERIOD};
    Kmx__V1__QueryRequest q = KMX__V1__QUERY_REQUEST__INIT;
    q.filter = &filter;
    q.n_group_by = 2;
    q.group_by = by;
    Kmx__V1__Request req = KMX__V1__REQUEST__INIT;
    req.request_id = "fuzz";
    req.body_case = KMX__V1__REQUEST__BODY_QUERY;
    req.query = &q;
    uint8_t *good = NULL;
    size_t size = 0;
    assert_int_equal(kmx_msg_pack_request(&req, &good, &size), 0);
    uint8_t *body = malloc(size);
    assert_non_null(body);
    unsigned seed = 4242;
    // Every mutation must still get a reply that decodes; the sanitizers catch the rest.
    for (int round = 0; round < 1000; round++) {
        size_t cut = kmx_testkit_mutate(body, good, size, round, &seed);
        kmx__v1__response__free_unpacked(s_handle_raw(f->query, body, cut), NULL);
    }
    free(body);
    free(good);
}

int main(void) {
#define S_T(name) cmocka_unit_test_setup_teardown(name, s_setup, s_teardown)
    const struct CMUnitTest tests[] = {
        S_T(test_query_sums_across_scan_pages),
        S_T(test_query_filters_groups_and_splits_units),
        S_T(test_query_top_keeps_largest),
        S_T(test_query_splits_categories_unless_pinned),
        S_T(test_query_ranks_within_an_added_category),
        S_T(test_query_ranks_across_an_explicit_category),
        S_T(test_query_refuses_units_in_conflict_within_a_category),
        S_T(test_query_refuses_bad_filters),
        S_T(test_query_get_scan_and_replay_reach_storage),
        S_T(test_query_answers_bad_bodies_and_other_services),
        S_T(test_query_answers_unavailable_when_storage_is_silent),
        S_T(test_query_survives_mutated_bodies),
    };
#undef S_T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
