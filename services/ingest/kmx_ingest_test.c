/*  kmx_ingest tests: the handlers against a real kmx-storage service running in a thread
    on tcp://127.0.0.1:* with an LMDB directory from mkdtemp, and against a storage that
    never answers. Covers index merging, atomic refusal, limits and malformed input.  */
#include "kmx_err.h"
#include "kmx_ingest.h"
#include "kmx_msg.h"
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

typedef struct {
    kmx_testkit_storage_t *kit; // the real storage service, in a thread
    void *ctx;                  // its ZeroMQ context, borrowed
    kmx_link_t *link;           // the handlers' link to storage
    kmx_ingest_t *ingest;       // the handlers under test
} s_fixture_t;

typedef kmx_testkit_rec_t s_rec_t;

// An album export of one month in USD.
static void s_rec(s_rec_t *r, const char *market, uint32_t month, int64_t amount) {
    kmx_testkit_rec_init(r, market, month, month, amount, "USD");
}

static int s_setup(void **state) {
    s_fixture_t *f = calloc(1, sizeof *f);
    if (!f || kmx_testkit_storage_open("kmx-ingest-test", &f->kit) != 0)
        return -1;
    f->ctx = kmx_testkit_storage_ctx(f->kit);
    f->link = kmx_link_new(f->ctx, kmx_testkit_storage_endpoint(f->kit));
    f->ingest = kmx_ingest_new(f->link, "ingest-test");
    if (!f->link || !f->ingest)
        return -1;
    *state = f;
    return 0;
}

static int s_teardown(void **state) {
    s_fixture_t *f = *state;
    kmx_ingest_destroy(&f->ingest);
    kmx_link_destroy(&f->link);
    kmx_testkit_storage_close(&f->kit);
    free(f);
    return 0;
}

// Runs raw bytes through the handlers and decodes the reply.
static Kmx__V1__Response *s_handle_raw(kmx_ingest_t *ingest, const void *body, size_t size) {
    uint8_t *out = NULL;
    size_t len = 0;
    assert_int_equal(kmx_ingest_handle(ingest, body, size, &out, &len), 0);
    Kmx__V1__Response *resp = kmx_msg_response_unpack(out, len);
    free(out);
    assert_non_null(resp);
    return resp;
}

static Kmx__V1__Response *s_handle(kmx_ingest_t *ingest, const Kmx__V1__Request *req) {
    uint8_t *body = NULL;
    size_t size = 0;
    assert_int_equal(kmx_msg_pack_request(req, &body, &size), 0);
    Kmx__V1__Response *resp = s_handle_raw(ingest, body, size);
    free(body);
    return resp;
}

static Kmx__V1__Response *s_put(kmx_ingest_t *ingest, Kmx__V1__Record **recs, size_t n,
                                int atomic) {
    Kmx__V1__PutRequest put = KMX__V1__PUT_REQUEST__INIT;
    put.n_records = n;
    put.records = recs;
    put.has_atomic = 1;
    put.atomic = atomic;
    Kmx__V1__Request req = KMX__V1__REQUEST__INIT;
    req.request_id = "put-1";
    req.body_case = KMX__V1__REQUEST__BODY_PUT;
    req.put = &put;
    return s_handle(ingest, &req);
}

static void s_expect_error(Kmx__V1__Response *resp, Kmx__V1__ErrorCode code) {
    assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_ERROR);
    assert_int_equal(resp->error->code, code);
    assert_non_null(resp->error->message);
    kmx__v1__response__free_unpacked(resp, NULL);
}

static void test_ingest_answers_garbage_with_bad_request(void **state) {
    s_fixture_t *f = *state;
    const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
    s_expect_error(s_handle_raw(f->ingest, junk, sizeof junk), KMX__V1__ERROR_CODE__BAD_REQUEST);
    s_expect_error(s_handle_raw(f->ingest, junk, 0), KMX__V1__ERROR_CODE__BAD_REQUEST);
    // A request with no body at all is not something ingest serves.
    Kmx__V1__Request empty = KMX__V1__REQUEST__INIT;
    empty.request_id = "nothing";
    s_expect_error(s_handle(f->ingest, &empty), KMX__V1__ERROR_CODE__UNSUPPORTED);
}

static void test_ingest_refuses_requests_of_other_services(void **state) {
    s_fixture_t *f = *state;
    Kmx__V1__QueryRequest query = KMX__V1__QUERY_REQUEST__INIT;
    Kmx__V1__Request req = KMX__V1__REQUEST__INIT;
    req.request_id = "q";
    req.body_case = KMX__V1__REQUEST__BODY_QUERY;
    req.query = &query;
    Kmx__V1__Response *resp = s_handle(f->ingest, &req);
    assert_string_equal(resp->request_id, "q");
    s_expect_error(resp, KMX__V1__ERROR_CODE__UNSUPPORTED);
}

static void test_ingest_ping_and_stats_describe_the_worker(void **state) {
    s_fixture_t *f = *state;
    Kmx__V1__PingRequest ping = KMX__V1__PING_REQUEST__INIT;
    Kmx__V1__Request req = KMX__V1__REQUEST__INIT;
    req.body_case = KMX__V1__REQUEST__BODY_PING;
    req.ping = &ping;
    Kmx__V1__Response *resp = s_handle(f->ingest, &req);
    assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_PONG);
    assert_string_equal(resp->pong->service, "kmx.ingest");
    assert_string_equal(resp->pong->worker, "ingest-test");
    assert_string_equal(resp->pong->version, KMX_VERSION);
    kmx__v1__response__free_unpacked(resp, NULL);

    Kmx__V1__StatsRequest stats = KMX__V1__STATS_REQUEST__INIT;
    req.body_case = KMX__V1__REQUEST__BODY_STATS;
    req.stats = &stats;
    resp = s_handle(f->ingest, &req);
    assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_STATS);
    assert_string_equal(resp->stats->service, "kmx.ingest");
    assert_true(resp->stats->n_counters >= 5);
    assert_string_equal(resp->stats->counters[0]->name, "requests");
    assert_int_equal(resp->stats->counters[0]->value, 2);
    kmx__v1__response__free_unpacked(resp, NULL);
}

static void test_ingest_put_merges_results_to_caller_indexes(void **state) {
    s_fixture_t *f = *state;
    s_rec_t r[4];
    s_rec(&r[0], "JP", 202401, 10000);
    r[0].rec.source = NULL; // refused: no source
    s_rec(&r[1], "japan", 202402, 20000);
    s_rec(&r[2], "Narnia", 202403, 30000); // refused: unknown market
    s_rec(&r[3], "US", 202404, 40000);
    Kmx__V1__Record *recs[] = {&r[0].rec, &r[1].rec, &r[2].rec, &r[3].rec};

    Kmx__V1__Response *resp = s_put(f->ingest, recs, 4, 0);
    assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_PUT);
    assert_string_equal(resp->request_id, "put-1");
    Kmx__V1__PutResult *put = resp->put;
    assert_int_equal(put->stored, 2);
    assert_int_equal(put->unchanged, 0);
    assert_int_equal(put->rejected, 2);
    assert_true(put->last_seq >= 2);
    assert_int_equal(put->n_results, 4);
    const Kmx__V1__RecordResult__Outcome want[] = {
        KMX__V1__RECORD_RESULT__OUTCOME__REJECTED, KMX__V1__RECORD_RESULT__OUTCOME__STORED,
        KMX__V1__RECORD_RESULT__OUTCOME__REJECTED, KMX__V1__RECORD_RESULT__OUTCOME__STORED};
    for (uint32_t i = 0; i < 4; i++) {
        assert_int_equal(put->results[i]->index, i);
        assert_int_equal(put->results[i]->outcome, want[i]);
    }
    assert_string_equal(put->results[0]->field, "source");
    assert_string_equal(put->results[2]->field, "market");
    assert_true(put->results[1]->seq > 0);
    kmx__v1__response__free_unpacked(resp, NULL);

    // Sent again, the valid records change nothing: retries are safe.
    resp = s_put(f->ingest, recs, 4, 0);
    assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_PUT);
    assert_int_equal(resp->put->stored, 0);
    assert_int_equal(resp->put->unchanged, 2);
    assert_int_equal(resp->put->results[3]->outcome, KMX__V1__RECORD_RESULT__OUTCOME__UNCHANGED);
    kmx__v1__response__free_unpacked(resp, NULL);
}

// One key sent several times in one batch: a later revision (preliminary -> revised ->
// final) is applied after the copy before it; any other repeat is refused, naming it.
static void test_ingest_batch_revisions_apply_in_order(void **state) {
    s_fixture_t *f = *state;
    static const Kmx__V1__Status status[] = {
        KMX__V1__STATUS__PRELIMINARY, KMX__V1__STATUS__REVISED,
        KMX__V1__STATUS__PRELIMINARY, KMX__V1__STATUS__REVISED,
        KMX__V1__STATUS__FINAL,       KMX__V1__STATUS__STATUS_UNSPECIFIED};
    s_rec_t r[6];
    Kmx__V1__Record *recs[6];
    for (int i = 0; i < 6; i++) {
        s_rec(&r[i], "JP", 202201, 10000 * (i + 1));
        r[i].rec.has_status = status[i] != KMX__V1__STATUS__STATUS_UNSPECIFIED;
        r[i].rec.status = status[i];
        recs[i] = &r[i].rec;
    }
    Kmx__V1__Response *resp = s_put(f->ingest, recs, 6, 0);
    assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_PUT);
    Kmx__V1__PutResult *put = resp->put;
    assert_int_equal(put->stored, 3); // preliminary, revised, final
    assert_int_equal(put->rejected, 3);
    const Kmx__V1__RecordResult__Outcome want[] = {
        KMX__V1__RECORD_RESULT__OUTCOME__STORED,   KMX__V1__RECORD_RESULT__OUTCOME__STORED,
        KMX__V1__RECORD_RESULT__OUTCOME__REJECTED, KMX__V1__RECORD_RESULT__OUTCOME__REJECTED,
        KMX__V1__RECORD_RESULT__OUTCOME__STORED,   KMX__V1__RECORD_RESULT__OUTCOME__REJECTED};
    for (uint32_t i = 0; i < 6; i++) {
        assert_int_equal(put->results[i]->index, i);
        assert_int_equal(put->results[i]->outcome, want[i]);
    }
    assert_true(put->results[0]->seq < put->results[1]->seq); // applied in order
    assert_true(put->results[1]->seq < put->results[4]->seq);
    assert_int_equal(put->results[2]->duplicate_of, 1); // compared with the latest copy
    assert_int_equal(put->results[3]->duplicate_of, 1); // revised again: a plain repeat
    assert_int_equal(put->results[5]->duplicate_of, 4);
    kmx__v1__response__free_unpacked(resp, NULL);

    // Later, an earlier revision alone leaves the final figure in place.
    Kmx__V1__Record *late[] = {&r[0].rec};
    resp = s_put(f->ingest, late, 1, 0);
    assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_PUT);
    assert_int_equal(resp->put->unchanged, 1);
    assert_string_equal(resp->put->results[0]->field, "status");
    kmx__v1__response__free_unpacked(resp, NULL);
}

static void test_ingest_atomic_batch_with_bad_record_stores_nothing(void **state) {
    s_fixture_t *f = *state;
    s_rec_t r[2];
    s_rec(&r[0], "CN", 202405, 10000);
    s_rec(&r[1], "CN", 202406, 10000);
    r[1].value.unit = "bananas";
    Kmx__V1__Record *recs[] = {&r[0].rec, &r[1].rec};
    Kmx__V1__Response *resp = s_put(f->ingest, recs, 2, 1);
    assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_ERROR);
    assert_int_equal(resp->error->code, KMX__V1__ERROR_CODE__BAD_REQUEST);
    assert_int_equal(resp->error->n_records, 1);
    assert_int_equal(resp->error->records[0]->index, 1);
    assert_int_equal(resp->error->records[0]->outcome, KMX__V1__RECORD_RESULT__OUTCOME__REJECTED);
    kmx__v1__response__free_unpacked(resp, NULL);

    // The good record was not stored: putting it alone now stores it.
    resp = s_put(f->ingest, recs, 1, 1);
    assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_PUT);
    assert_int_equal(resp->put->stored, 1);
    kmx__v1__response__free_unpacked(resp, NULL);
}

static void test_ingest_refuses_oversized_batch(void **state) {
    s_fixture_t *f = *state;
    s_rec_t r;
    s_rec(&r, "JP", 202401, 1);
    size_t n = KMX_INGEST_BATCH_MAX + 1;
    Kmx__V1__Record **recs = calloc(n, sizeof *recs);
    assert_non_null(recs);
    for (size_t i = 0; i < n; i++)
        recs[i] = &r.rec;
    s_expect_error(s_put(f->ingest, recs, n, 0), KMX__V1__ERROR_CODE__TOO_LARGE);
    free(recs);
}

static void test_ingest_answers_unavailable_when_storage_is_silent(void **state) {
    s_fixture_t *f = *state;
    // A ROUTER that accepts connections and never reads plays a hung storage.
    char ep[KMX_TESTKIT_ENDPOINT_MAX];
    void *hung = kmx_testkit_hung_open(f->ctx, ep, sizeof ep);
    assert_non_null(hung);
    kmx_link_t *link = kmx_link_new(f->ctx, ep);
    kmx_ingest_t *ingest = kmx_ingest_new(link, "ingest-hung");
    assert_non_null(ingest);
    kmx_ingest_set_timeout(ingest, 200);
    s_rec_t r;
    s_rec(&r, "JP", 202401, 1);
    Kmx__V1__Record *recs[] = {&r.rec};
    s_expect_error(s_put(ingest, recs, 1, 0), KMX__V1__ERROR_CODE__UNAVAILABLE);
    s_expect_error(s_put(ingest, recs, 1, 0), KMX__V1__ERROR_CODE__UNAVAILABLE);
    kmx_ingest_destroy(&ingest);
    kmx_link_destroy(&link);
    zmq_close(hung);
}

static void test_ingest_survives_mutated_bodies(void **state) {
    s_fixture_t *f = *state;
    s_rec_t r[2];
    s_rec(&r[0], "JP", 202401, 10000);
    s_rec(&r[1], "KR", 202402, 20000);
    Kmx__V1__Record *recs[] = {&r[0].rec, &r[1].rec};
    Kmx__V1__PutRequest put = KMX__V1__PUT_REQUEST__INIT;
    put.n_records = 2;
    put.records = recs;
    Kmx__V1__Request req = KMX__V1__REQUEST__INIT;
    req.request_id = "fuzz";
    req.body_case = KMX__V1__REQUEST__BODY_PUT;
    req.put = &put;
    uint8_t *good = NULL;
    size_t size = 0;
    assert_int_equal(kmx_msg_pack_request(&req, &good, &size), 0);
    uint8_t *body = malloc(size);
    assert_non_null(body);
    unsigned seed = 12345;
    // Every mutation must still get a reply that decodes; the sanitizers catch the rest.
    for (int round = 0; round < 2000; round++) {
        size_t cut = kmx_testkit_mutate(body, good, size, round, &seed);
        kmx__v1__response__free_unpacked(s_handle_raw(f->ingest, body, cut), NULL);
    }
    free(body);
    free(good);
}

int main(void) {
#define S_T(name) cmocka_unit_test_setup_teardown(name, s_setup, s_teardown)
    const struct CMUnitTest tests[] = {
        S_T(test_ingest_answers_garbage_with_bad_request),
        S_T(test_ingest_refuses_requests_of_other_services),
        S_T(test_ingest_ping_and_stats_describe_the_worker),
        S_T(test_ingest_put_merges_results_to_caller_indexes),
        S_T(test_ingest_batch_revisions_apply_in_order),
        S_T(test_ingest_atomic_batch_with_bad_record_stores_nothing),
        S_T(test_ingest_refuses_oversized_batch),
        S_T(test_ingest_answers_unavailable_when_storage_is_silent),
        S_T(test_ingest_survives_mutated_bodies),
    };
#undef S_T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
