/*  Tests for the kmx-storage service loop: the loop runs in a thread over a real LMDB
    environment; a DEALER on tcp://127.0.0.1 sends requests and a SUB (bound here, as the
    broker's XSUB would be) receives the published events.  */
#define _XOPEN_SOURCE 700 // nftw, to remove the test directory
#include "kmx_storage.h"

#include "kmx_err.h"
#include "kmx_msg.h"

#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include <cmocka.h>

#include "kmx_testkit.h"

typedef struct {
    char dir[64];              // LMDB directory from mkdtemp
    void *ctx;                 // ZeroMQ context shared with the service
    void *dealer;              // plays an ingest or query worker
    void *sub;                 // plays the broker's XSUB
    kmx_storage_t *storage;    // the service under test
    pthread_t thread;          // runs kmx_storage_run
    uint64_t corr;             // next correlation id
    kmx_testkit_socks_t socks; // a test's own sockets, closed by the teardown if still open
} s_fixture_t;

typedef struct {
    Kmx__V1__Record rec;
    Kmx__V1__Period period;
    Kmx__V1__Value value;
} s_rec_t;

static void s_rec_init(s_rec_t *r, const char *market, uint32_t month, int64_t amount,
                       const char *unit) {
    Kmx__V1__Record rec = KMX__V1__RECORD__INIT;
    Kmx__V1__Period period = KMX__V1__PERIOD__INIT;
    Kmx__V1__Value value = KMX__V1__VALUE__INIT;
    r->rec = rec;
    r->period = period;
    r->value = value;
    r->period.has_start = r->period.has_end = 1;
    r->period.start = r->period.end = month;
    r->value.has_amount = 1;
    r->value.amount = amount;
    r->value.unit = (char *)unit;
    r->rec.has_kind = 1;
    r->rec.kind = KMX__V1__KIND__EXPORT;
    r->rec.period = &r->period;
    r->rec.market = (char *)market;
    r->rec.category = "album";
    r->rec.item = "album exports";
    r->rec.source = "kmx test";
    r->rec.value = &r->value;
}

static int s_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void *s_run(void *arg) {
    kmx_storage_run(arg, NULL);
    return NULL;
}

static int s_setup(void **state) {
    s_fixture_t *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/kmx-storage-test-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    int timeout = 5000;
    char pub_ep[256], ep[256];
    size_t size = sizeof pub_ep;
    f->ctx = zmq_ctx_new();
    f->sub = kmx_testkit_socket(&f->socks, f->ctx, ZMQ_SUB);
    zmq_setsockopt(f->sub, ZMQ_SUBSCRIBE, "", 0);
    zmq_setsockopt(f->sub, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    if (zmq_bind(f->sub, "tcp://127.0.0.1:*") != 0 ||
        zmq_getsockopt(f->sub, ZMQ_LAST_ENDPOINT, pub_ep, &size) != 0)
        return -1;
    kmx_storage_config_t cfg = {
        "tcp://127.0.0.1:*", pub_ep, f->dir, 0, 100, KMX_STORE_SYNC_FULL, 0, 500, 0, 0, 0, 0};
    if (kmx_storage_new(f->ctx, &cfg, &f->storage) != 0 ||
        kmx_storage_endpoint(f->storage, ep, sizeof ep) != 0)
        return -1;
    f->dealer = kmx_testkit_socket(&f->socks, f->ctx, ZMQ_DEALER);
    zmq_setsockopt(f->dealer, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    if (zmq_connect(f->dealer, ep) != 0)
        return -1;
    if (pthread_create(&f->thread, NULL, s_run, f->storage) != 0)
        return -1;
    f->corr = 1000;
    *state = f;
    return 0;
}

static int s_teardown(void **state) {
    s_fixture_t *f = *state;
    zmq_ctx_shutdown(f->ctx); // wakes the service loop with ETERM
    pthread_join(f->thread, NULL);
    kmx_testkit_socks_close_all(&f->socks); // the fixture's and those a failed assertion left
    kmx_storage_destroy(&f->storage);
    zmq_ctx_term(f->ctx);
    nftw(f->dir, s_rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static void s_send_frames(void *sock, const void *const *frames, const size_t *sizes, size_t n) {
    for (size_t i = 0; i < n; i++)
        assert_true(zmq_send(sock, frames[i], sizes[i], i + 1 < n ? ZMQ_SNDMORE : 0) >= 0);
}

// Sends req on sock with correlation id id (written to corr).
static void s_send_on(void *sock, uint64_t id, const Kmx__V1__Request *req, uint8_t corr[8]) {
    for (int i = 7; i >= 0; i--, id >>= 8)
        corr[i] = (uint8_t)id;
    uint8_t *body = NULL;
    size_t len = 0;
    assert_int_equal(kmx_msg_pack_request(req, &body, &len), 0);
    const void *frames[] = {corr, body};
    size_t sizes[] = {8, len};
    s_send_frames(sock, frames, sizes, 2);
    free(body);
}

static void s_send_request(s_fixture_t *f, const Kmx__V1__Request *req, uint8_t corr[8]) {
    s_send_on(f->dealer, f->corr++, req, corr);
}

// Receives one reply on sock, checks its correlation id and returns the decoded response.
static Kmx__V1__Response *s_recv_on(void *sock, const uint8_t corr[8]) {
    uint8_t got[8];
    assert_int_equal(zmq_recv(sock, got, sizeof got, 0), 8);
    assert_memory_equal(got, corr, 8);
    int more = 0;
    size_t size = sizeof more;
    zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &size);
    assert_true(more);
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    assert_true(zmq_msg_recv(&msg, sock, 0) >= 0);
    Kmx__V1__Response *resp = kmx_msg_response_unpack(zmq_msg_data(&msg), zmq_msg_size(&msg));
    zmq_msg_close(&msg);
    assert_non_null(resp);
    return resp;
}

static Kmx__V1__Response *s_recv_reply(s_fixture_t *f, const uint8_t corr[8]) {
    return s_recv_on(f->dealer, corr);
}

static Kmx__V1__Response *s_call(s_fixture_t *f, const Kmx__V1__Request *req) {
    uint8_t corr[8];
    s_send_request(f, req, corr);
    return s_recv_reply(f, corr);
}

static Kmx__V1__Response *s_put(s_fixture_t *f, Kmx__V1__Record **recs, size_t n, int atomic) {
    Kmx__V1__PutRequest put = KMX__V1__PUT_REQUEST__INIT;
    Kmx__V1__Request req = KMX__V1__REQUEST__INIT;
    put.n_records = n;
    put.records = recs;
    put.has_atomic = 1;
    put.atomic = atomic;
    req.request_id = "put-1";
    req.body_case = KMX__V1__REQUEST__BODY_PUT;
    req.put = &put;
    return s_call(f, &req);
}

static Kmx__V1__Response *s_get(s_fixture_t *f, Kmx__V1__Record *key) {
    Kmx__V1__GetRequest get = KMX__V1__GET_REQUEST__INIT;
    Kmx__V1__Request req = KMX__V1__REQUEST__INIT;
    get.key = key;
    req.body_case = KMX__V1__REQUEST__BODY_GET;
    req.get = &get;
    return s_call(f, &req);
}

// Receives published events until one whose topic starts with prefix (bounded).
static Kmx__V1__UpdateEvent *s_wait_event(s_fixture_t *f, const char *prefix) {
    for (int i = 0; i < 200; i++) {
        char topic[256];
        int n = zmq_recv(f->sub, topic, sizeof topic - 1, 0);
        assert_true(n >= 0);
        topic[n < (int)sizeof topic - 1 ? n : (int)sizeof topic - 1] = '\0';
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        assert_true(zmq_msg_recv(&msg, f->sub, 0) >= 0);
        Kmx__V1__UpdateEvent *ev =
            kmx__v1__update_event__unpack(NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
        zmq_msg_close(&msg);
        assert_non_null(ev);
        if (strncmp(topic, prefix, strlen(prefix)) == 0) {
            assert_string_equal(ev->topic, topic);
            return ev;
        }
        kmx__v1__update_event__free_unpacked(ev, NULL);
    }
    fail_msg("no event with topic prefix %s", prefix);
    return NULL;
}

static uint64_t s_counter(const Kmx__V1__StatsResult *st, const char *name) {
    for (size_t i = 0; i < st->n_counters; i++) {
        if (strcmp(st->counters[i]->name, name) == 0)
            return st->counters[i]->value;
    }
    fail_msg("no counter %s", name);
    return 0;
}

static void test_storage_put_publishes_after_commit(void **state) {
    s_fixture_t *f = *state;
    // The heartbeat proves the subscription is live before anything is stored.
    Kmx__V1__UpdateEvent *hb = s_wait_event(f, "kmx.heartbeat");
    assert_int_equal(hb->type, KMX__V1__EVENT_TYPE__HEARTBEAT);
    assert_true(hb->seq == 0);
    kmx__v1__update_event__free_unpacked(hb, NULL);

    s_rec_t good, bad;
    s_rec_init(&good, "japan", 202503, 1234500, "USD");
    s_rec_init(&bad, "JP", 202504, 1, "bananas");
    Kmx__V1__Record *recs[] = {&good.rec, &bad.rec};
    Kmx__V1__Response *resp = s_put(f, recs, 2, 0);
    assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_PUT);
    assert_string_equal(resp->request_id, "put-1");
    const Kmx__V1__PutResult *put = resp->put;
    assert_int_equal(put->stored, 1);
    assert_int_equal(put->rejected, 1);
    assert_true(put->last_seq == 1);
    assert_int_equal(put->n_results, 2);
    assert_int_equal(put->results[0]->outcome, KMX__V1__RECORD_RESULT__OUTCOME__STORED);
    assert_true(put->results[0]->seq == 1);
    assert_int_equal(put->results[1]->index, 1);
    assert_int_equal(put->results[1]->outcome, KMX__V1__RECORD_RESULT__OUTCOME__REJECTED);
    assert_string_equal(put->results[1]->field, "unit");
    kmx__v1__response__free_unpacked(resp, NULL);

    Kmx__V1__UpdateEvent *ev = s_wait_event(f, "export.");
    assert_true(ev->seq == 1);
    assert_int_equal(ev->type, KMX__V1__EVENT_TYPE__UPSERT);
    assert_string_equal(ev->topic, "export.JP.2025-03.album");
    assert_string_equal(ev->record->market, "JP");
    kmx__v1__update_event__free_unpacked(ev, NULL);

    s_rec_t key;
    s_rec_init(&key, "JP", 202503, 0, "USD");
    resp = s_get(f, &key.rec);
    assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_GET);
    assert_true(resp->get->record->record->value->amount == 1234500);
    assert_true(resp->get->record->seq == 1);
    kmx__v1__response__free_unpacked(resp, NULL);

    // The same record again changes nothing and publishes nothing but heartbeats.
    Kmx__V1__Record *again[] = {&good.rec};
    resp = s_put(f, again, 1, 0);
    assert_int_equal(resp->put->unchanged, 1);
    assert_true(resp->put->last_seq == 1);
    kmx__v1__response__free_unpacked(resp, NULL);
    hb = s_wait_event(f, "kmx.heartbeat");
    assert_true(hb->seq == 1);
    kmx__v1__update_event__free_unpacked(hb, NULL);
}

static void test_storage_atomic_put_refuses_whole_batch(void **state) {
    s_fixture_t *f = *state;
    s_rec_t good, bad;
    s_rec_init(&good, "US", 202401, 5, "USD");
    s_rec_init(&bad, "Atlantis", 202402, 5, "USD");
    Kmx__V1__Record *recs[] = {&good.rec, &bad.rec};
    Kmx__V1__Response *resp = s_put(f, recs, 2, 1);
    assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_ERROR);
    assert_int_equal(resp->error->code, KMX__V1__ERROR_CODE__BAD_REQUEST);
    assert_int_equal(resp->error->n_records, 1);
    assert_int_equal(resp->error->records[0]->index, 1);
    assert_string_equal(resp->error->records[0]->field, "market");
    kmx__v1__response__free_unpacked(resp, NULL);
    resp = s_get(f, &good.rec);
    assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_ERROR);
    assert_int_equal(resp->error->code, KMX__V1__ERROR_CODE__NOT_FOUND);
    kmx__v1__response__free_unpacked(resp, NULL);
}

static void test_storage_pipelined_puts_get_gap_free_seqs(void **state) {
    s_fixture_t *f = *state;
    enum { N = 20 };
    s_rec_t r[N];
    uint8_t corr[N][8];
    for (int i = 0; i < N; i++) {
        s_rec_init(&r[i], "CN", (uint32_t)(202001 + (i % 12) + 100 * (i / 12)), i + 1, "USD");
        Kmx__V1__Record *one[] = {&r[i].rec};
        Kmx__V1__PutRequest put = KMX__V1__PUT_REQUEST__INIT;
        Kmx__V1__Request req = KMX__V1__REQUEST__INIT;
        put.n_records = 1;
        put.records = one;
        req.body_case = KMX__V1__REQUEST__BODY_PUT;
        req.put = &put;
        s_send_request(f, &req, corr[i]);
    }
    uint64_t seen = 0;
    for (int i = 0; i < N; i++) {
        Kmx__V1__Response *resp = s_recv_reply(f, corr[i]);
        assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_PUT);
        uint64_t seq = resp->put->results[0]->seq;
        assert_true(seq >= 1 && seq <= N);
        assert_false(seen & (UINT64_C(1) << seq));
        seen |= UINT64_C(1) << seq;
        kmx__v1__response__free_unpacked(resp, NULL);
    }
    assert_true(seen == ((UINT64_C(1) << (N + 1)) - 2));

    Kmx__V1__ReplayRequest replay = KMX__V1__REPLAY_REQUEST__INIT;
    Kmx__V1__Request req = KMX__V1__REQUEST__INIT;
    replay.has_since = 1;
    replay.since = N - 5;
    req.body_case = KMX__V1__REQUEST__BODY_REPLAY;
    req.replay = &replay;
    Kmx__V1__Response *resp = s_call(f, &req);
    assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_REPLAY);
    assert_int_equal(resp->replay->n_events, 5);
    assert_true(resp->replay->events[0]->seq == N - 4);
    assert_true(resp->replay->last_seq == N);
    kmx__v1__response__free_unpacked(resp, NULL);

    Kmx__V1__ScanRequest scan = KMX__V1__SCAN_REQUEST__INIT;
    req.body_case = KMX__V1__REQUEST__BODY_SCAN;
    req.scan = &scan;
    scan.has_limit = 1;
    scan.limit = 15;
    resp = s_call(f, &req);
    assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_SCAN);
    assert_int_equal(resp->scan->n_records, 15);
    assert_true(resp->scan->next_page_token.len > 0);
    uint8_t token[512];
    size_t token_len = resp->scan->next_page_token.len;
    memcpy(token, resp->scan->next_page_token.data, token_len);
    kmx__v1__response__free_unpacked(resp, NULL);
    scan.has_page_token = 1;
    scan.page_token.data = token;
    scan.page_token.len = token_len;
    resp = s_call(f, &req);
    assert_int_equal(resp->scan->n_records, 5);
    assert_int_equal(resp->scan->next_page_token.len, 0);
    kmx__v1__response__free_unpacked(resp, NULL);
}

static void test_storage_survives_garbage(void **state) {
    s_fixture_t *f = *state;
    const uint8_t corr[8] = {0, 0, 0, 0, 0, 0, 0, 42};
    const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x12, 0x99};
    // [corr][undecodable body] -> BAD_REQUEST with the same correlation id.
    const void *f1[] = {corr, junk};
    size_t s1[] = {8, sizeof junk};
    s_send_frames(f->dealer, f1, s1, 2);
    Kmx__V1__Response *resp = s_recv_reply(f, corr);
    assert_int_equal(resp->error->code, KMX__V1__ERROR_CODE__BAD_REQUEST);
    kmx__v1__response__free_unpacked(resp, NULL);
    // No correlation frame: dropped silently. Empty frames and short ids likewise.
    const void *f2[] = {junk};
    size_t s2[] = {sizeof junk};
    s_send_frames(f->dealer, f2, s2, 1);
    const void *f3[] = {junk, junk};
    size_t s3[] = {0, 3};
    s_send_frames(f->dealer, f3, s3, 2);
    // Too many frames after a correlation id: BAD_REQUEST.
    const void *f4[] = {corr, junk, junk, junk};
    size_t s4[] = {8, sizeof junk, 1, 0};
    s_send_frames(f->dealer, f4, s4, 4);
    resp = s_recv_reply(f, corr);
    assert_int_equal(resp->error->code, KMX__V1__ERROR_CODE__BAD_REQUEST);
    kmx__v1__response__free_unpacked(resp, NULL);
    // An empty body and a request with no body.
    const void *f5[] = {corr, junk};
    size_t s5[] = {8, 0};
    s_send_frames(f->dealer, f5, s5, 2);
    resp = s_recv_reply(f, corr);
    assert_int_equal(resp->error->code, KMX__V1__ERROR_CODE__BAD_REQUEST);
    kmx__v1__response__free_unpacked(resp, NULL);
    Kmx__V1__Request req = KMX__V1__REQUEST__INIT;
    req.request_id = "no-body";
    resp = s_call(f, &req);
    assert_int_equal(resp->error->code, KMX__V1__ERROR_CODE__UNSUPPORTED);
    kmx__v1__response__free_unpacked(resp, NULL);
    // A get without a key.
    Kmx__V1__GetRequest get = KMX__V1__GET_REQUEST__INIT;
    req.body_case = KMX__V1__REQUEST__BODY_GET;
    req.get = &get;
    resp = s_call(f, &req);
    assert_int_equal(resp->error->code, KMX__V1__ERROR_CODE__BAD_REQUEST);
    kmx__v1__response__free_unpacked(resp, NULL);

    // Still alive: ping and stats answer.
    Kmx__V1__PingRequest ping = KMX__V1__PING_REQUEST__INIT;
    req.body_case = KMX__V1__REQUEST__BODY_PING;
    req.ping = &ping;
    resp = s_call(f, &req);
    assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_PONG);
    assert_string_equal(resp->pong->service, "kmx.storage");
    kmx__v1__response__free_unpacked(resp, NULL);
    Kmx__V1__StatsRequest stats = KMX__V1__STATS_REQUEST__INIT;
    req.body_case = KMX__V1__REQUEST__BODY_STATS;
    req.stats = &stats;
    resp = s_call(f, &req);
    assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_STATS);
    assert_true(s_counter(resp->stats, "records") == 0);
    assert_true(s_counter(resp->stats, "errors") >= 5);
    assert_true(s_counter(resp->stats, "map_size") > 0);
    kmx__v1__response__free_unpacked(resp, NULL);
}

static Kmx__V1__Response *s_delete(s_fixture_t *f, Kmx__V1__Record **keys, size_t n) {
    Kmx__V1__DeleteRequest del = KMX__V1__DELETE_REQUEST__INIT;
    Kmx__V1__Request req = KMX__V1__REQUEST__INIT;
    del.n_keys = n;
    del.keys = keys;
    req.body_case = KMX__V1__REQUEST__BODY_DELETE;
    req.delete_ = &del;
    return s_call(f, &req);
}

static Kmx__V1__Response *s_aggregate(s_fixture_t *f, Kmx__V1__GroupField *by, size_t n,
                                      const char *item) {
    Kmx__V1__AggregateRequest agg = KMX__V1__AGGREGATE_REQUEST__INIT;
    Kmx__V1__Filter filter = KMX__V1__FILTER__INIT;
    Kmx__V1__Request req = KMX__V1__REQUEST__INIT;
    char *items[] = {(char *)item};
    filter.n_items = item ? 1 : 0;
    filter.items = items;
    agg.filter = &filter;
    agg.n_group_by = n;
    agg.group_by = by;
    req.body_case = KMX__V1__REQUEST__BODY_AGGREGATE;
    req.aggregate = &agg;
    return s_call(f, &req);
}

static void test_storage_delete_and_aggregate(void **state) {
    s_fixture_t *f = *state;
    kmx__v1__update_event__free_unpacked(s_wait_event(f, "kmx.heartbeat"), NULL); // SUB is live
    s_rec_t a, b, c;
    s_rec_init(&a, "JP", 202501, 10000, "USD"); // 1 USD
    s_rec_init(&b, "JP", 202502, 25000, "USD"); // 2.5 USD
    s_rec_init(&c, "US", 202501, 5, "USD");     // 0.0005 USD
    Kmx__V1__Record *recs[] = {&a.rec, &b.rec, &c.rec};
    Kmx__V1__Response *resp = s_put(f, recs, 3, 1);
    assert_int_equal(resp->put->stored, 3);
    kmx__v1__response__free_unpacked(resp, NULL);

    Kmx__V1__GroupField by[] = {KMX__V1__GROUP_FIELD__BY_MARKET};
    resp = s_aggregate(f, by, 1, NULL);
    assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_QUERY);
    assert_true(resp->query->from_rollups);
    assert_true(resp->query->last_seq == 3);
    assert_int_equal(resp->query->n_rows, 2);
    assert_string_equal(resp->query->rows[0]->keys[0], "JP");
    assert_string_equal(resp->query->rows[0]->sum, "3.5");
    assert_true(resp->query->rows[0]->count == 2);
    assert_false(resp->query->rows[0]->has_min);
    assert_string_equal(resp->query->rows[1]->sum, "0.0005");
    kmx__v1__response__free_unpacked(resp, NULL);

    // A key loosely written ("japan") deletes the stored record; a DELETE event follows.
    s_rec_t key;
    s_rec_init(&key, "japan", 202502, 0, "USD");
    key.rec.value = NULL;
    Kmx__V1__Record *keys[] = {&key.rec};
    resp = s_delete(f, keys, 1);
    assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_PUT);
    assert_int_equal(resp->put->stored, 1);
    assert_true(resp->put->results[0]->seq == 4);
    kmx__v1__response__free_unpacked(resp, NULL);
    Kmx__V1__UpdateEvent *ev = s_wait_event(f, "export.JP.2025-02"); // the upsert, seq 2
    for (int i = 0; i < 3 && ev->seq != 4; i++) {
        kmx__v1__update_event__free_unpacked(ev, NULL);
        ev = s_wait_event(f, "export.JP.2025-02");
    }
    assert_int_equal(ev->type, KMX__V1__EVENT_TYPE__DELETE);
    assert_true(ev->seq == 4);
    assert_true(ev->previous->amount == 25000);
    kmx__v1__update_event__free_unpacked(ev, NULL);

    resp = s_delete(f, keys, 1); // gone now
    assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_ERROR);
    assert_int_equal(resp->error->code, KMX__V1__ERROR_CODE__NOT_FOUND);
    assert_int_equal(resp->error->n_records, 1);
    assert_int_equal(resp->error->records[0]->outcome, KMX__V1__RECORD_RESULT__OUTCOME__NOT_FOUND);
    kmx__v1__response__free_unpacked(resp, NULL);

    // A filter on item needs the records: min and max come back.
    resp = s_aggregate(f, by, 1, "album exports");
    assert_false(resp->query->from_rollups);
    assert_int_equal(resp->query->n_rows, 2);
    assert_string_equal(resp->query->rows[0]->sum, "1");
    assert_true(resp->query->rows[0]->has_min && resp->query->rows[0]->min == 10000);
    assert_true(resp->query->matched == 2);
    kmx__v1__response__free_unpacked(resp, NULL);
}

// A DEALER of its own, as a second worker would have.
static void *s_dealer(s_fixture_t *f) {
    char ep[256];
    int timeout = 10000;
    assert_int_equal(kmx_storage_endpoint(f->storage, ep, sizeof ep), 0);
    void *sock = kmx_testkit_socket(&f->socks, f->ctx, ZMQ_DEALER);
    assert_non_null(sock);
    zmq_setsockopt(sock, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    assert_int_equal(zmq_connect(sock, ep), 0);
    return sock;
}

static Kmx__V1__Response *s_get_on(void *sock, uint64_t id, Kmx__V1__Record *key) {
    Kmx__V1__GetRequest get = KMX__V1__GET_REQUEST__INIT;
    Kmx__V1__Request req = KMX__V1__REQUEST__INIT;
    get.key = key;
    req.body_case = KMX__V1__REQUEST__BODY_GET;
    req.get = &get;
    uint8_t corr[8];
    s_send_on(sock, id, &req, corr);
    return s_recv_on(sock, corr);
}

// Records with distinct keys (item "item-<i>"), for big batches.
typedef struct {
    s_rec_t *r;             // n records
    char (*item)[32];       // their item names
    Kmx__V1__Record **ptrs; // &r[i].rec
    size_t n;               // records
} s_many_t;

static void s_many_init(s_many_t *m, size_t n, const char *market, int64_t amount) {
    m->r = calloc(n, sizeof *m->r);
    m->item = calloc(n, sizeof *m->item);
    m->ptrs = calloc(n, sizeof *m->ptrs);
    assert_true(m->r && m->item && m->ptrs);
    m->n = n;
    for (size_t i = 0; i < n; i++) {
        s_rec_init(&m->r[i], market, 202401, amount, "USD");
        snprintf(m->item[i], sizeof m->item[i], "item-%zu", i);
        m->r[i].rec.item = m->item[i];
        m->ptrs[i] = &m->r[i].rec;
    }
}

static void s_many_fini(s_many_t *m) {
    free(m->r);
    free(m->item);
    free(m->ptrs);
}

static void s_send_put_on(void *sock, uint64_t id, Kmx__V1__Record **recs, size_t n,
                          uint8_t corr[8]) {
    Kmx__V1__PutRequest put = KMX__V1__PUT_REQUEST__INIT;
    Kmx__V1__Request req = KMX__V1__REQUEST__INIT;
    put.n_records = n;
    put.records = recs;
    req.body_case = KMX__V1__REQUEST__BODY_PUT;
    req.put = &put;
    s_send_on(sock, id, &req, corr);
}

// A read right after an acknowledged write sees it, also when another worker asks.
static void test_storage_read_after_ack_sees_write(void **state) {
    s_fixture_t *f = *state;
    void *reader = s_dealer(f);
    for (int i = 0; i < 100; i++) {
        s_rec_t rec;
        s_rec_init(&rec, "TW", (uint32_t)(201001 + (i % 12) + 100 * (i / 12)), 1000 + i, "USD");
        Kmx__V1__Record *one[] = {&rec.rec};
        Kmx__V1__Response *resp = s_put(f, one, 1, 0);
        assert_int_equal(resp->put->stored, 1);
        uint64_t seq = resp->put->results[0]->seq;
        kmx__v1__response__free_unpacked(resp, NULL);
        resp = s_get_on(reader, (uint64_t)i + 1, &rec.rec);
        assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_GET);
        assert_true(resp->get->record->record->value->amount == 1000 + i);
        assert_true(resp->get->record->seq == seq);
        kmx__v1__response__free_unpacked(resp, NULL);
    }
    kmx_testkit_socket_close(&f->socks, reader);
}

// Reads sent after big writes are answered while those writes commit: a read never waits
// for a commit. Only ordering is checked: gets answered before the last put's
// acknowledgement.
static void test_storage_reads_answer_during_commits(void **state) {
    s_fixture_t *f = *state;
    enum { PUTS = 5, PER_PUT = 10000 };
    s_many_t m[PUTS];
    uint8_t corr[PUTS][8];
    s_rec_t known;
    s_rec_init(&known, "SG", 201901, 7, "USD");
    Kmx__V1__Record *one[] = {&known.rec};
    kmx__v1__response__free_unpacked(s_put(f, one, 1, 0), NULL);
    for (int i = 0; i < PUTS; i++) {
        char market[8];
        snprintf(market, sizeof market, "%s", (const char *[]){"US", "JP", "CN", "DE", "FR"}[i]);
        s_many_init(&m[i], PER_PUT, market, i + 1);
        s_send_put_on(f->dealer, 5000u + (uint64_t)i, m[i].ptrs, m[i].n, corr[i]);
    }
    void *reader = s_dealer(f);
    int acked = 0, before = 0;
    for (uint64_t id = 1; acked < PUTS && id < 1000000; id++) {
        Kmx__V1__Response *resp = s_get_on(reader, id, &known.rec);
        assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_GET);
        kmx__v1__response__free_unpacked(resp, NULL);
        before += acked < PUTS;
        zmq_pollitem_t items[] = {{f->dealer, 0, ZMQ_POLLIN, 0}};
        while (acked < PUTS && zmq_poll(items, 1, 0) == 1) {
            resp = s_recv_on(f->dealer, corr[acked]);
            assert_int_equal(resp->put->stored, PER_PUT);
            kmx__v1__response__free_unpacked(resp, NULL);
            acked++;
        }
    }
    print_message("gets answered while %d puts of %d records committed: %d\n", PUTS, PER_PUT,
                  before);
    assert_int_equal(acked, PUTS);
    assert_true(before > 0);
    for (int i = 0; i < PUTS; i++)
        s_many_fini(&m[i]);
    kmx_testkit_socket_close(&f->socks, reader);
}

// A thread asking reads in a loop until told to stop.
typedef struct {
    s_fixture_t *f;    // the fixture
    atomic_int *stop;  // set when the writes are done
    uint64_t answered; // reads answered
    pthread_t thread;  // runs s_hammer
} s_hammer_t;

static void *s_hammer(void *arg) {
    s_hammer_t *h = arg;
    void *sock = s_dealer(h->f);
    s_rec_t key;
    s_rec_init(&key, "SG", 201901, 0, "USD");
    Kmx__V1__AggregateRequest agg = KMX__V1__AGGREGATE_REQUEST__INIT;
    Kmx__V1__GroupField by[] = {KMX__V1__GROUP_FIELD__BY_MARKET};
    agg.n_group_by = 1;
    agg.group_by = by;
    Kmx__V1__ScanRequest scan = KMX__V1__SCAN_REQUEST__INIT;
    for (uint64_t id = 1; !atomic_load(h->stop); id++) {
        Kmx__V1__Request req = KMX__V1__REQUEST__INIT;
        if (id % 3 == 0) {
            req.body_case = KMX__V1__REQUEST__BODY_AGGREGATE;
            req.aggregate = &agg;
        } else if (id % 3 == 1) {
            req.body_case = KMX__V1__REQUEST__BODY_SCAN;
            req.scan = &scan;
        } else {
            Kmx__V1__GetRequest get = KMX__V1__GET_REQUEST__INIT;
            get.key = &key.rec;
            req.body_case = KMX__V1__REQUEST__BODY_GET;
            req.get = &get;
            uint8_t corr[8];
            s_send_on(sock, id, &req, corr);
            Kmx__V1__Response *resp = s_recv_on(sock, corr);
            h->answered += resp->result_case == KMX__V1__RESPONSE__RESULT_GET;
            kmx__v1__response__free_unpacked(resp, NULL);
            continue;
        }
        uint8_t corr[8];
        s_send_on(sock, id, &req, corr);
        Kmx__V1__Response *resp = s_recv_on(sock, corr);
        h->answered += resp->result_case != KMX__V1__RESPONSE__RESULT_ERROR;
        kmx__v1__response__free_unpacked(resp, NULL);
    }
    kmx_testkit_socket_close(&h->f->socks, sock);
    return NULL;
}

// Writes keep committing while readers ask as fast as they can: every put is answered
// (within the socket timeout) and the readers keep being answered too.
static void test_storage_writes_commit_while_readers_hammer(void **state) {
    s_fixture_t *f = *state;
    enum { HAMMERS = 6, PUTS = 30, PER_PUT = 500 };
    s_rec_t known;
    s_rec_init(&known, "SG", 201901, 7, "USD");
    Kmx__V1__Record *one[] = {&known.rec};
    kmx__v1__response__free_unpacked(s_put(f, one, 1, 0), NULL);
    atomic_int stop = 0;
    s_hammer_t h[HAMMERS];
    for (int i = 0; i < HAMMERS; i++) {
        h[i] = (s_hammer_t){f, &stop, 0, 0};
        assert_int_equal(pthread_create(&h[i].thread, NULL, s_hammer, &h[i]), 0);
    }
    s_many_t m;
    s_many_init(&m, PER_PUT, "KR", 1);
    for (int i = 0; i < PUTS; i++) {
        for (size_t k = 0; k < m.n; k++)
            m.r[k].value.amount = i + 1; // every put changes every record
        Kmx__V1__Response *resp = s_put(f, m.ptrs, m.n, 0);
        assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_PUT);
        assert_int_equal(resp->put->stored, PER_PUT);
        kmx__v1__response__free_unpacked(resp, NULL);
    }
    atomic_store(&stop, 1);
    uint64_t answered = 0;
    for (int i = 0; i < HAMMERS; i++) {
        pthread_join(h[i].thread, NULL);
        assert_true(h[i].answered > 0);
        answered += h[i].answered;
    }
    print_message("%d puts of %d records committed while %d readers got %llu answers\n", PUTS,
                  PER_PUT, HAMMERS, (unsigned long long)answered);
    s_many_fini(&m);
}

// Replays beside a running import, as kmx watch --since makes them: every page is one
// committed snapshot, so its events run on from since without a gap, and a page shorter
// than its limit ends exactly at the last_seq it reports (the live events after it are
// published only once committed, so a watcher misses none).
static void test_storage_replay_beside_writes_is_gap_free(void **state) {
    s_fixture_t *f = *state;
    enum { PUTS = 8, PER_PUT = 2000 };
    s_many_t m[PUTS];
    uint8_t corr[PUTS][8];
    for (int i = 0; i < PUTS; i++) {
        char market[8];
        snprintf(market, sizeof market, "%s",
                 (const char *[]){"US", "JP", "CN", "DE", "FR", "GB", "TW", "TH"}[i]);
        s_many_init(&m[i], PER_PUT, market, i + 1);
        s_send_put_on(f->dealer, 7000u + (uint64_t)i, m[i].ptrs, m[i].n, corr[i]);
    }
    void *reader = s_dealer(f);
    uint64_t since = 0, pages = 0;
    for (uint64_t id = 1; since < (uint64_t)PUTS * PER_PUT && id < 100000; id++) {
        Kmx__V1__ReplayRequest rr = KMX__V1__REPLAY_REQUEST__INIT;
        Kmx__V1__Request req = KMX__V1__REQUEST__INIT;
        rr.has_since = rr.has_limit = 1;
        rr.since = since;
        rr.limit = 1000;
        req.body_case = KMX__V1__REQUEST__BODY_REPLAY;
        req.replay = &rr;
        uint8_t c[8];
        s_send_on(reader, id, &req, c);
        Kmx__V1__Response *resp = s_recv_on(reader, c);
        assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_REPLAY);
        const Kmx__V1__ReplayResult *page = resp->replay;
        for (size_t i = 0; i < page->n_events; i++)
            assert_true(page->events[i]->seq == since + 1 + i);
        if (page->n_events < 1000)
            assert_true(page->last_seq == since + page->n_events);
        since += page->n_events;
        pages++;
        if (page->n_events == 0) { // nothing committed since: wait a moment
            struct timespec ms = {0, 1000000};
            nanosleep(&ms, NULL);
        }
        kmx__v1__response__free_unpacked(resp, NULL);
    }
    assert_true(since == (uint64_t)PUTS * PER_PUT);
    for (int i = 0; i < PUTS; i++) {
        Kmx__V1__Response *resp = s_recv_on(f->dealer, corr[i]);
        assert_int_equal(resp->put->stored, PER_PUT);
        kmx__v1__response__free_unpacked(resp, NULL);
        s_many_fini(&m[i]);
    }
    print_message("%llu replay pages beside %d puts, gap-free\n", (unsigned long long)pages, PUTS);
    kmx_testkit_socket_close(&f->socks, reader);
}

#define S_T(fn) cmocka_unit_test_setup_teardown(fn, s_setup, s_teardown)

int main(void) {
    const struct CMUnitTest tests[] = {
        S_T(test_storage_put_publishes_after_commit),
        S_T(test_storage_atomic_put_refuses_whole_batch),
        S_T(test_storage_pipelined_puts_get_gap_free_seqs),
        S_T(test_storage_survives_garbage),
        S_T(test_storage_delete_and_aggregate),
        S_T(test_storage_read_after_ack_sees_write),
        S_T(test_storage_reads_answer_during_commits),
        S_T(test_storage_writes_commit_while_readers_hammer),
        S_T(test_storage_replay_beside_writes_is_gap_free),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
