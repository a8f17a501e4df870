/*  Tests for kmx_store against a real LMDB environment in a mkdtemp directory: puts with
    gap-free sequences, unchanged and updated records, the event log, reopening, schema
    version checks, map growth, filtered and paged scans, and replay.  */
#define _XOPEN_SOURCE 700 // nftw, to remove the test directory
#include "kmx_store.h"

#include "kmx_err.h"
#include "kmx_schema.h"

#include <ftw.h>
#include <lmdb.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#define S_STORED KMX__V1__RECORD_RESULT__OUTCOME__STORED
#define S_UNCHANGED KMX__V1__RECORD_RESULT__OUTCOME__UNCHANGED
#define S_REJECTED KMX__V1__RECORD_RESULT__OUTCOME__REJECTED

typedef struct {
    char dir[64];       // the mkdtemp directory
    kmx_store_t *store; // open store in dir
} s_fixture_t;

typedef struct {
    Kmx__V1__Kind kind;
    uint32_t start, end;
    const char *market, *category, *item, *unit;
    int64_t amount;
} s_spec_t;

typedef struct {
    Kmx__V1__Record rec;
    Kmx__V1__Period period;
    Kmx__V1__Value value;
} s_rec_t;

static void s_rec_init(s_rec_t *r, s_spec_t spec) {
    Kmx__V1__Record rec = KMX__V1__RECORD__INIT;
    Kmx__V1__Period period = KMX__V1__PERIOD__INIT;
    Kmx__V1__Value value = KMX__V1__VALUE__INIT;
    r->rec = rec;
    r->period = period;
    r->value = value;
    r->period.has_start = r->period.has_end = 1;
    r->period.start = spec.start;
    r->period.end = spec.end ? spec.end : spec.start;
    r->value.has_amount = 1;
    r->value.amount = spec.amount;
    r->value.unit = (char *)(spec.unit ? spec.unit : "USD");
    r->rec.has_kind = 1;
    r->rec.kind = spec.kind ? spec.kind : KMX__V1__KIND__EXPORT;
    r->rec.period = &r->period;
    r->rec.market = (char *)(spec.market ? spec.market : "JP");
    r->rec.category = (char *)(spec.category ? spec.category : "album");
    r->rec.item = (char *)(spec.item ? spec.item : "exports");
    r->rec.source = "kmx test";
    r->rec.value = &r->value;
}

static int s_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int s_setup(void **state) {
    s_fixture_t *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/kmx-store-test-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    if (kmx_store_open(f->dir, NULL, &f->store) != 0) {
        nftw(f->dir, s_rm_entry, 8, FTW_DEPTH | FTW_PHYS);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int s_teardown(void **state) {
    s_fixture_t *f = *state;
    kmx_store_close(&f->store);
    nftw(f->dir, s_rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static void s_put_one(kmx_store_t *store, s_rec_t *r, Kmx__V1__RecordResult__Outcome want,
                      uint64_t want_seq) {
    Kmx__V1__Record *recs[] = {&r->rec};
    kmx_put_outcome_t out;
    assert_int_equal(kmx_store_put_batch(store, recs, 1, &out, NULL), 0);
    assert_int_equal(out.outcome, want);
    assert_true(out.seq == want_seq);
}

static void test_store_put_get_gap_free(void **state) {
    s_fixture_t *f = *state;
    s_rec_t r[3];
    s_rec_init(&r[0], (s_spec_t){.start = 202401, .end = 202412, .amount = 10});
    s_rec_init(&r[1], (s_spec_t){.start = 202401, .end = 202412, .market = "US", .amount = 20});
    s_rec_init(&r[2], (s_spec_t){.kind = KMX__V1__KIND__CONSUMPTION,
                                 .start = 202403,
                                 .market = "KR",
                                 .category = "streaming",
                                 .unit = "users",
                                 .amount = 30});
    Kmx__V1__Record *recs[] = {&r[0].rec, &r[1].rec, &r[2].rec};
    kmx_put_outcome_t out[3];
    kmx_store_events_t events;
    kmx_store_events_init(&events);
    assert_int_equal(kmx_store_put_batch(f->store, recs, 3, out, &events), 0);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(out[i].outcome, S_STORED);
        assert_true(out[i].seq == i + 1);
        Kmx__V1__StoredRecord *got = NULL;
        assert_int_equal(kmx_store_get(f->store, &r[i].rec, &got), 0);
        assert_true(got->seq == i + 1);
        assert_true(got->updated_ms > 0);
        assert_true(got->record->value->amount == (int64_t)(10 * (i + 1)));
        kmx__v1__stored_record__free_unpacked(got, NULL);
    }
    assert_true(kmx_store_last_seq(f->store) == 3);
    assert_int_equal(events.n, 3);
    assert_string_equal(events.items[0].topic, "export.JP.2024.album");
    assert_string_equal(events.items[2].topic, "consumption.KR.2024-03.streaming");
    Kmx__V1__UpdateEvent *ev =
        kmx__v1__update_event__unpack(NULL, events.items[1].len, events.items[1].data);
    assert_non_null(ev);
    assert_true(ev->seq == 2);
    assert_int_equal(ev->type, KMX__V1__EVENT_TYPE__UPSERT);
    assert_string_equal(ev->record->market, "US");
    assert_null(ev->previous);
    kmx__v1__update_event__free_unpacked(ev, NULL);
    kmx_store_events_fini(&events);
}

static void test_store_get_missing_and_bad_key(void **state) {
    s_fixture_t *f = *state;
    s_rec_t r;
    s_rec_init(&r, (s_spec_t){.start = 202401, .amount = 1});
    Kmx__V1__StoredRecord *got = NULL;
    assert_int_equal(kmx_store_get(f->store, &r.rec, &got), KMX_ERR_NOT_FOUND);
    assert_null(got);
    r.rec.market = NULL;
    assert_int_equal(kmx_store_get(f->store, &r.rec, &got), KMX_ERR_INVAL);
}

static void test_store_unchanged_and_update_keep_previous(void **state) {
    s_fixture_t *f = *state;
    s_rec_t r;
    s_rec_init(&r, (s_spec_t){.start = 202501, .end = 202506, .amount = 5000});
    s_put_one(f->store, &r, S_STORED, 1);
    s_put_one(f->store, &r, S_UNCHANGED, 0);
    assert_true(kmx_store_last_seq(f->store) == 1);

    r.value.amount = 7000;
    kmx_store_events_t events;
    kmx_store_events_init(&events);
    Kmx__V1__Record *recs[] = {&r.rec};
    kmx_put_outcome_t out;
    assert_int_equal(kmx_store_put_batch(f->store, recs, 1, &out, &events), 0);
    assert_int_equal(out.outcome, S_STORED);
    assert_true(out.seq == 2);
    assert_int_equal(events.n, 1);
    Kmx__V1__UpdateEvent *ev =
        kmx__v1__update_event__unpack(NULL, events.items[0].len, events.items[0].data);
    assert_non_null(ev);
    assert_non_null(ev->previous);
    assert_true(ev->previous->amount == 5000);
    assert_true(ev->record->value->amount == 7000);
    kmx__v1__update_event__free_unpacked(ev, NULL);
    kmx_store_events_fini(&events);

    // The event log holds the same previous value.
    kmx_store_replay_t q = {.since = 1, .limit = 10};
    kmx_store_replay_page_t page;
    kmx_store_replay_page_init(&page);
    assert_int_equal(kmx_store_replay(f->store, &q, &page), 0);
    assert_int_equal(page.n, 1);
    assert_true(page.events[0]->seq == 2);
    assert_true(page.events[0]->previous->amount == 5000);
    kmx_store_replay_page_fini(&page);

    Kmx__V1__StoredRecord *got = NULL;
    assert_int_equal(kmx_store_get(f->store, &r.rec, &got), 0);
    assert_true(got->record->value->amount == 7000);
    assert_true(got->seq == 2);
    kmx__v1__stored_record__free_unpacked(got, NULL);
}

static void test_store_same_key_twice_in_one_batch(void **state) {
    s_fixture_t *f = *state;
    s_rec_t a, b, c;
    s_rec_init(&a, (s_spec_t){.start = 202401, .amount = 1});
    s_rec_init(&b, (s_spec_t){.start = 202401, .amount = 1});
    s_rec_init(&c, (s_spec_t){.start = 202401, .amount = 2});
    Kmx__V1__Record *recs[] = {&a.rec, &b.rec, &c.rec};
    kmx_put_outcome_t out[3];
    assert_int_equal(kmx_store_put_batch(f->store, recs, 3, out, NULL), 0);
    assert_int_equal(out[0].outcome, S_STORED);
    assert_int_equal(out[1].outcome, S_UNCHANGED);
    assert_int_equal(out[2].outcome, S_STORED);
    assert_true(out[2].seq == 2);
}

static void test_store_unkeyed_record_rejected_without_seq(void **state) {
    s_fixture_t *f = *state;
    s_rec_t a, bad, c;
    s_rec_init(&a, (s_spec_t){.start = 202401, .amount = 1});
    s_rec_init(&bad, (s_spec_t){.start = 202402, .amount = 1});
    bad.rec.market = NULL;
    s_rec_init(&c, (s_spec_t){.start = 202403, .amount = 1});
    Kmx__V1__Record *recs[] = {&a.rec, &bad.rec, &c.rec};
    kmx_put_outcome_t out[3];
    assert_int_equal(kmx_store_put_batch(f->store, recs, 3, out, NULL), 0);
    assert_int_equal(out[1].outcome, S_REJECTED);
    assert_true(out[0].seq == 1);
    assert_true(out[2].seq == 2);
}

static void test_store_reopen_keeps_records_and_last_seq(void **state) {
    s_fixture_t *f = *state;
    s_rec_t r[4];
    for (int i = 0; i < 4; i++)
        s_rec_init(&r[i], (s_spec_t){.start = (uint32_t)(202401 + i), .amount = i + 1});
    for (int i = 0; i < 4; i++)
        s_put_one(f->store, &r[i], S_STORED, (uint64_t)i + 1);
    kmx_store_close(&f->store);
    assert_null(f->store);
    assert_int_equal(kmx_store_open(f->dir, NULL, &f->store), 0);
    assert_true(kmx_store_last_seq(f->store) == 4);
    Kmx__V1__StoredRecord *got = NULL;
    assert_int_equal(kmx_store_get(f->store, &r[2].rec, &got), 0);
    assert_true(got->seq == 3);
    kmx__v1__stored_record__free_unpacked(got, NULL);
    s_put_one(f->store, &r[0], S_UNCHANGED, 0);
    r[0].value.amount = 99;
    s_put_one(f->store, &r[0], S_STORED, 5);
    kmx_store_stats_t st;
    assert_int_equal(kmx_store_stats(f->store, &st), 0);
    assert_true(st.records == 4);
    assert_true(st.events == 5);
    assert_true(st.last_seq == 5);
}

// Rewrites the schema version stored in dir (with the store closed).
static void s_write_version(const char *dir, uint32_t version) {
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, KMX_SCHEMA_MAX_DBS), 0);
    assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, KMX_DB_META, 0, &dbi), 0);
    uint8_t buf[4] = {(uint8_t)(version >> 24), (uint8_t)(version >> 16), (uint8_t)(version >> 8),
                      (uint8_t)version};
    MDB_val key = {strlen(KMX_META_SCHEMA_VERSION), KMX_META_SCHEMA_VERSION};
    MDB_val val = {sizeof buf, buf};
    assert_int_equal(mdb_put(txn, dbi, &key, &val, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

static void test_store_refuses_other_schema_versions(void **state) {
    s_fixture_t *f = *state;
    kmx_store_close(&f->store);
    kmx_store_t *other = NULL;
    s_write_version(f->dir, KMX_SCHEMA_VERSION + 1);
    assert_int_equal(kmx_store_open(f->dir, NULL, &other), KMX_ERR_VERSION);
    assert_null(other);
    s_write_version(f->dir, KMX_SCHEMA_VERSION - 1);
    assert_int_equal(kmx_store_open(f->dir, NULL, &other), KMX_ERR_VERSION);
    s_write_version(f->dir, KMX_SCHEMA_VERSION);
    assert_int_equal(kmx_store_open(f->dir, NULL, &f->store), 0);
}

// Turns the closed store in dir into the schema 3 layout: version 3, month roll-ups in
// `rollups` (here: junk, which the upgrade must not trust), no `rollups_month`.
static void s_make_v3(const char *dir) {
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi months, spans;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, KMX_SCHEMA_MAX_DBS), 0);
    assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, KMX_DB_ROLLUPS_MONTH, 0, &months), 0);
    assert_int_equal(mdb_drop(txn, months, 1), 0);
    assert_int_equal(mdb_dbi_open(txn, KMX_DB_ROLLUPS, 0, &spans), 0);
    uint8_t junk[KMX_ROLLUP_VALUE_LEN] = {0};
    junk[KMX_ROLLUP_VALUE_LEN - 1] = 7;
    MDB_val key = {5, "junk!"}, val = {sizeof junk, junk};
    assert_int_equal(mdb_put(txn, spans, &key, &val, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    s_write_version(dir, KMX_STORE_UPGRADES_FROM);
}

static void test_store_upgrade_from_schema_3_rebuilds_rollups(void **state) {
    s_fixture_t *f = *state;
    s_rec_t r[14];
    for (int i = 0; i < 12; i++)
        s_rec_init(&r[i], (s_spec_t){.start = 202401 + (uint32_t)i, .amount = 100 + i});
    s_rec_init(&r[12], (s_spec_t){.start = 202401, .end = 202412, .amount = 5000});
    s_rec_init(&r[13], (s_spec_t){.start = 202501, .market = "US", .amount = 7});
    for (int i = 0; i < 14; i++)
        s_put_one(f->store, &r[i], S_STORED, (uint64_t)i + 1);
    kmx_store_close(&f->store);
    s_make_v3(f->dir);
    // The service refuses it and changes nothing; read-only tools too.
    assert_int_equal(kmx_store_open(f->dir, NULL, &f->store), KMX_ERR_VERSION);
    kmx_store_config_t ro = {.readonly = 1, .upgrade = 1};
    assert_int_equal(kmx_store_open(f->dir, &ro, &f->store), KMX_ERR_VERSION);
    kmx_store_config_t up = {.upgrade = 1};
    assert_int_equal(kmx_store_open(f->dir, &up, &f->store), 0);
    assert_int_equal(kmx_store_upgraded_from(f->store), KMX_STORE_UPGRADES_FROM);
    kmx_store_check_t report;
    assert_int_equal(kmx_store_check(f->store, &report), 0);
    assert_int_equal(report.records, 14);
    assert_int_equal(report.last_seq, 14);
    // Both aggregate paths give the same sums after the upgrade.
    Kmx__V1__GroupField by[] = {KMX__V1__GROUP_FIELD__BY_PERIOD};
    kmx_group_t *ga = kmx_group_new(by, 1), *gb = kmx_group_new(by, 1);
    kmx_store_agg_info_t ia, ib;
    assert_int_equal(kmx_store_aggregate(f->store, NULL, ga, 1, NULL, &ia), 0);
    assert_int_equal(kmx_store_aggregate(f->store, NULL, gb, 0, NULL, &ib), 0);
    Kmx__V1__QueryResult a = KMX__V1__QUERY_RESULT__INIT, b = KMX__V1__QUERY_RESULT__INIT;
    assert_int_equal(kmx_group_result(ga, &a), 0);
    assert_int_equal(kmx_group_result(gb, &b), 0);
    assert_true(ia.from_rollups);
    assert_int_equal(a.n_rows, 14);
    assert_int_equal(a.n_rows, b.n_rows);
    for (size_t i = 0; i < a.n_rows; i++) {
        assert_string_equal(a.rows[i]->keys[0], b.rows[i]->keys[0]);
        assert_string_equal(a.rows[i]->sum, b.rows[i]->sum);
    }
    kmx_group_destroy(&ga);
    kmx_group_destroy(&gb);
    // Upgraded once: a second open is plain, and writes go on from the same sequence.
    kmx_store_close(&f->store);
    assert_int_equal(kmx_store_open(f->dir, &up, &f->store), 0);
    assert_int_equal(kmx_store_upgraded_from(f->store), 0);
    s_rec_t more;
    s_rec_init(&more, (s_spec_t){.start = 202502, .market = "US", .amount = 8});
    s_put_one(f->store, &more, S_STORED, 15);
    assert_int_equal(kmx_store_check(f->store, &report), 0);
    // Older schemas are not upgraded.
    kmx_store_close(&f->store);
    s_write_version(f->dir, KMX_STORE_UPGRADES_FROM - 1);
    assert_int_equal(kmx_store_open(f->dir, &up, &f->store), KMX_ERR_VERSION);
    assert_null(f->store);
    s_write_version(f->dir, KMX_SCHEMA_VERSION);
    assert_int_equal(kmx_store_open(f->dir, NULL, &f->store), 0);
}

// One writer per directory: a second open for writing is refused while the first holds
// it, read-only opens (check, backup) are not, and closing releases it.
static void test_store_one_writer_per_directory(void **state) {
    s_fixture_t *f = *state;
    kmx_store_t *second = NULL;
    assert_int_equal(kmx_store_open(f->dir, NULL, &second), KMX_ERR_BUSY);
    assert_null(second);
    kmx_store_config_t ro = {.readonly = 1};
    assert_int_equal(kmx_store_open(f->dir, &ro, &second), 0);
    kmx_store_close(&second);
    kmx_store_close(&f->store);
    assert_int_equal(kmx_store_open(f->dir, NULL, &second), 0);
    f->store = second;
}

static void test_store_map_grows_from_64k(void **state) {
    s_fixture_t *f = *state;
    kmx_store_close(&f->store);
    kmx_store_config_t cfg = {.map_size = 64 * 1024};
    assert_int_equal(kmx_store_open(f->dir, &cfg, &f->store), 0);
    enum { BATCHES = 20, PER = 150 };
    static s_rec_t r[PER];
    static char items[PER][32];
    uint64_t seq = 0;
    for (int b = 0; b < BATCHES; b++) {
        Kmx__V1__Record *recs[PER];
        kmx_put_outcome_t out[PER];
        for (int i = 0; i < PER; i++) {
            snprintf(items[i], sizeof items[i], "item %d", b * PER + i);
            s_rec_init(&r[i], (s_spec_t){.start = 202001, .item = items[i], .amount = i});
            r[i].rec.note = "a note long enough to make every record take some room in the map";
            recs[i] = &r[i].rec;
        }
        assert_int_equal(kmx_store_put_batch(f->store, recs, PER, out, NULL), 0);
        for (int i = 0; i < PER; i++)
            assert_true(out[i].outcome == S_STORED && out[i].seq == ++seq);
    }
    kmx_store_stats_t st;
    assert_int_equal(kmx_store_stats(f->store, &st), 0);
    assert_true(st.records == BATCHES * PER);
    assert_true(st.last_seq == BATCHES * PER);
    assert_true(st.map_size > 64 * 1024);
    kmx_store_close(&f->store);
    assert_int_equal(kmx_store_open(f->dir, &cfg, &f->store), 0);
    assert_true(kmx_store_last_seq(f->store) == BATCHES * PER);
}

static void test_store_full_map_fails_whole_batch(void **state) {
    s_fixture_t *f = *state;
    kmx_store_close(&f->store);
    kmx_store_config_t cfg = {.map_size = 64 * 1024, .map_size_max = 128 * 1024};
    assert_int_equal(kmx_store_open(f->dir, &cfg, &f->store), 0);
    s_rec_t first;
    s_rec_init(&first, (s_spec_t){.start = 201901, .amount = 1});
    s_put_one(f->store, &first, S_STORED, 1);
    enum { PER = 2000 };
    static s_rec_t r[PER];
    static char items[PER][32];
    static Kmx__V1__Record *recs[PER];
    static kmx_put_outcome_t out[PER];
    for (int i = 0; i < PER; i++) {
        snprintf(items[i], sizeof items[i], "item %d", i);
        s_rec_init(&r[i], (s_spec_t){.start = 202001, .item = items[i], .amount = i});
        r[i].rec.note = "a note long enough to make every record take some room in the map";
        recs[i] = &r[i].rec;
    }
    kmx_store_events_t events;
    kmx_store_events_init(&events);
    assert_int_equal(kmx_store_put_batch(f->store, recs, PER, out, &events), KMX_ERR_FULL);
    assert_int_equal(events.n, 0);
    assert_true(kmx_store_last_seq(f->store) == 1);
    // Nothing of the failed batch exists; the next change takes the next number.
    Kmx__V1__StoredRecord *got = NULL;
    assert_int_equal(kmx_store_get(f->store, &r[0].rec, &got), KMX_ERR_NOT_FOUND);
    first.value.amount = 2;
    s_put_one(f->store, &first, S_STORED, 2);
    kmx_store_events_fini(&events);
}

// ---- scans ---------------------------------------------------------------------------

enum { S_SCAN_N = 8 };

static void s_scan_fill(kmx_store_t *store, s_rec_t *r) {
    const s_spec_t specs[S_SCAN_N] = {
        {.start = 202301, .end = 202312, .market = "JP", .amount = 1},
        {.start = 202401, .end = 202412, .market = "JP", .amount = 2},
        {.start = 202401, .end = 202406, .market = "US", .amount = 3},
        {.start = 202407, .end = 202409, .market = "CN", .category = "digital", .amount = 4},
        {.start = 202403, .market = "JP", .unit = "KRW", .amount = 5},
        {.start = 202501, .end = 202512, .market = "TH", .amount = 6},
        {.kind = KMX__V1__KIND__CONSUMPTION,
         .start = 202401,
         .end = 202412,
         .market = "KR",
         .category = "streaming",
         .unit = "users",
         .amount = 7},
        {.kind = KMX__V1__KIND__CONSUMPTION,
         .start = 202301,
         .end = 202312,
         .market = "KR",
         .category = "streaming",
         .unit = "users",
         .amount = 8},
    };
    Kmx__V1__Record *recs[S_SCAN_N];
    kmx_put_outcome_t out[S_SCAN_N];
    for (int i = 0; i < S_SCAN_N; i++) {
        s_rec_init(&r[i], specs[i]);
        recs[i] = &r[i].rec;
    }
    assert_int_equal(kmx_store_put_batch(store, recs, S_SCAN_N, out, NULL), 0);
}

// Scans every page of filter with the given page size; returns the bitmask of amounts seen.
static unsigned s_scan_all(kmx_store_t *store, const Kmx__V1__Filter *filter, uint32_t limit,
                           size_t *pages) {
    uint8_t token[KMX_RKEY_MAX];
    size_t token_len = 0;
    unsigned seen = 0;
    *pages = 0;
    for (int guard = 0; guard < 100; guard++) {
        kmx_store_scan_t q = {filter, token, token_len, limit};
        kmx_store_scan_page_t page;
        kmx_store_scan_page_init(&page);
        assert_int_equal(kmx_store_scan(store, &q, &page), 0);
        assert_true(page.n <= limit);
        for (size_t i = 0; i < page.n; i++) {
            unsigned bit = 1u << page.records[i]->record->value->amount;
            assert_false(seen & bit); // never the same record twice
            seen |= bit;
        }
        (*pages)++;
        memcpy(token, page.next, page.next_len);
        token_len = page.next_len;
        kmx_store_scan_page_fini(&page);
        if (token_len == 0)
            return seen;
    }
    fail_msg("scan did not finish");
    return 0;
}

#define S_BITS(...) s_bits((const int[]){__VA_ARGS__, -1})
static unsigned s_bits(const int *amounts) {
    unsigned m = 0;
    for (; *amounts >= 0; amounts++)
        m |= 1u << *amounts;
    return m;
}

static void test_store_scan_filters(void **state) {
    s_fixture_t *f = *state;
    s_rec_t r[S_SCAN_N];
    s_scan_fill(f->store, r);
    size_t pages = 0;
    assert_int_equal(s_scan_all(f->store, NULL, 100, &pages), S_BITS(1, 2, 3, 4, 5, 6, 7, 8));

    Kmx__V1__Filter flt = KMX__V1__FILTER__INIT;
    Kmx__V1__Period p2024 = KMX__V1__PERIOD__INIT;
    p2024.has_start = p2024.has_end = 1;
    p2024.start = 202401;
    p2024.end = 202412;
    flt.has_kind = 1;
    flt.kind = KMX__V1__KIND__EXPORT;
    assert_int_equal(s_scan_all(f->store, &flt, 100, &pages), S_BITS(1, 2, 3, 4, 5, 6));
    flt.period = &p2024;
    assert_int_equal(s_scan_all(f->store, &flt, 100, &pages), S_BITS(2, 3, 4, 5));
    flt.has_kind = 0;
    assert_int_equal(s_scan_all(f->store, &flt, 100, &pages), S_BITS(2, 3, 4, 5, 7));

    char *markets[] = {"JP", "cn"};
    flt.n_markets = 2;
    flt.markets = markets;
    assert_int_equal(s_scan_all(f->store, &flt, 100, &pages), S_BITS(2, 4, 5));
    flt.n_markets = 0;

    char *units[] = {"KRW"};
    flt.n_units = 1;
    flt.units = units;
    assert_int_equal(s_scan_all(f->store, &flt, 100, &pages), S_BITS(5));
    flt.n_units = 0;

    char *cats[] = {"digital"};
    flt.n_categories = 1;
    flt.categories = cats;
    assert_int_equal(s_scan_all(f->store, &flt, 100, &pages), S_BITS(4));
    flt.n_categories = 0;

    flt.granularity = "half";
    assert_int_equal(s_scan_all(f->store, &flt, 100, &pages), S_BITS(3));
    flt.granularity = "year";
    assert_int_equal(s_scan_all(f->store, &flt, 100, &pages), S_BITS(2, 7));
    flt.granularity = "any";
    assert_int_equal(s_scan_all(f->store, &flt, 100, &pages), S_BITS(2, 3, 4, 5, 7));
    flt.granularity = NULL;

    char *regions[] = {"North America", "greater china"};
    flt.n_regions = 2;
    flt.regions = regions;
    assert_int_equal(s_scan_all(f->store, &flt, 100, &pages), S_BITS(3, 4));
    flt.n_regions = 0;

    char *items[] = {"nothing like this"};
    flt.n_items = 1;
    flt.items = items;
    assert_int_equal(s_scan_all(f->store, &flt, 100, &pages), 0);
}

// Canonical markets let the scan seek from one named market to the next inside each
// (kind, period); pages of one must still see every match once, in key order.
static void test_store_scan_named_markets_skip(void **state) {
    s_fixture_t *f = *state;
    s_rec_t r[S_SCAN_N];
    s_scan_fill(f->store, r);
    size_t pages = 0;
    Kmx__V1__Filter flt = KMX__V1__FILTER__INIT;
    flt.has_kind = 1;
    flt.kind = KMX__V1__KIND__EXPORT;
    char *markets[] = {"TH", "CN", "JP"};
    flt.n_markets = 3;
    flt.markets = markets;
    for (uint32_t limit = 1; limit <= 4; limit++)
        assert_int_equal(s_scan_all(f->store, &flt, limit, &pages), S_BITS(1, 2, 4, 5, 6));
    assert_int_equal(s_scan_all(f->store, &flt, 1, &pages), S_BITS(1, 2, 4, 5, 6));
    assert_int_equal(pages, 5);
    Kmx__V1__Period p2024 = KMX__V1__PERIOD__INIT;
    p2024.has_start = p2024.has_end = 1;
    p2024.start = 202401;
    p2024.end = 202412;
    flt.period = &p2024;
    assert_int_equal(s_scan_all(f->store, &flt, 1, &pages), S_BITS(2, 4, 5));
    char *us[] = {"US"};
    flt.n_markets = 1;
    flt.markets = us;
    assert_int_equal(s_scan_all(f->store, &flt, 1, &pages), S_BITS(3));
    char *none[] = {"ZW", "AA"};
    flt.n_markets = 2;
    flt.markets = none;
    assert_int_equal(s_scan_all(f->store, &flt, 1, &pages), 0);
    flt.kind = KMX__V1__KIND__CONSUMPTION;
    char *kr[] = {"KR"};
    flt.n_markets = 1;
    flt.markets = kr;
    flt.period = NULL;
    assert_int_equal(s_scan_all(f->store, &flt, 1, &pages), S_BITS(7, 8));
}

static void test_store_scan_pages(void **state) {
    s_fixture_t *f = *state;
    s_rec_t r[S_SCAN_N];
    s_scan_fill(f->store, r);
    size_t pages = 0;
    assert_int_equal(s_scan_all(f->store, NULL, 3, &pages), S_BITS(1, 2, 3, 4, 5, 6, 7, 8));
    assert_int_equal(pages, 3);
    assert_int_equal(s_scan_all(f->store, NULL, 1, &pages), S_BITS(1, 2, 3, 4, 5, 6, 7, 8));
    assert_int_equal(pages, 8);

    Kmx__V1__Filter flt = KMX__V1__FILTER__INIT;
    flt.has_kind = 1;
    flt.kind = KMX__V1__KIND__EXPORT;
    assert_int_equal(s_scan_all(f->store, &flt, 2, &pages), S_BITS(1, 2, 3, 4, 5, 6));
    assert_int_equal(pages, 3);
    flt.kind = KMX__V1__KIND__CONSUMPTION;
    assert_int_equal(s_scan_all(f->store, &flt, 1, &pages), S_BITS(7, 8));
    assert_int_equal(pages, 2);
}

static void test_store_scan_rejects_bad_filter_and_token(void **state) {
    s_fixture_t *f = *state;
    Kmx__V1__Filter flt = KMX__V1__FILTER__INIT;
    flt.granularity = "fortnight";
    kmx_store_scan_t q = {&flt, NULL, 0, 10};
    kmx_store_scan_page_t page;
    kmx_store_scan_page_init(&page);
    assert_int_equal(kmx_store_scan(f->store, &q, &page), KMX_ERR_INVAL);
    Kmx__V1__Period bad = KMX__V1__PERIOD__INIT;
    bad.has_start = bad.has_end = 1;
    bad.start = 202413;
    bad.end = 202401;
    flt.granularity = NULL;
    flt.period = &bad;
    assert_int_equal(kmx_store_scan(f->store, &q, &page), KMX_ERR_INVAL);
    static uint8_t big[KMX_RKEY_MAX + 1];
    kmx_store_scan_t q2 = {NULL, big, sizeof big, 10};
    assert_int_equal(kmx_store_scan(f->store, &q2, &page), KMX_ERR_INVAL);
    // A token that is not a stored key still resumes in key order.
    uint8_t odd[] = {1, 0xff};
    s_rec_t r[S_SCAN_N];
    s_scan_fill(f->store, r);
    kmx_store_scan_t q3 = {NULL, odd, sizeof odd, 100};
    assert_int_equal(kmx_store_scan(f->store, &q3, &page), 0);
    assert_int_equal(page.n, 2); // only the consumption records sort after it
    kmx_store_scan_page_fini(&page);
}

// ---- replay ----------------------------------------------------------------------------

static void test_store_replay_since(void **state) {
    s_fixture_t *f = *state;
    s_rec_t r[S_SCAN_N];
    s_scan_fill(f->store, r);
    kmx_store_replay_page_t page;
    kmx_store_replay_page_init(&page);
    kmx_store_replay_t q = {.since = 0, .limit = 100};
    assert_int_equal(kmx_store_replay(f->store, &q, &page), 0);
    assert_int_equal(page.n, S_SCAN_N);
    assert_true(page.first_seq == 1 && page.last_seq == S_SCAN_N);
    for (size_t i = 0; i < page.n; i++)
        assert_true(page.events[i]->seq == i + 1);
    kmx_store_replay_page_fini(&page);

    q.since = 5;
    q.limit = 2;
    assert_int_equal(kmx_store_replay(f->store, &q, &page), 0);
    assert_int_equal(page.n, 2);
    assert_true(page.events[0]->seq == 6 && page.events[1]->seq == 7);
    kmx_store_replay_page_fini(&page);

    char *prefixes[] = {"consumption.", "export.CN"};
    q.since = 0;
    q.limit = 100;
    q.prefixes = prefixes;
    q.n_prefixes = 2;
    assert_int_equal(kmx_store_replay(f->store, &q, &page), 0);
    assert_int_equal(page.n, 3);
    assert_string_equal(page.events[0]->topic, "export.CN.2024-Q3.digital");
    assert_string_equal(page.events[1]->topic, "consumption.KR.2024.streaming");
    kmx_store_replay_page_fini(&page);

    q.since = S_SCAN_N;
    q.n_prefixes = 0;
    assert_int_equal(kmx_store_replay(f->store, &q, &page), 0);
    assert_int_equal(page.n, 0);
    assert_true(page.last_seq == S_SCAN_N);
    kmx_store_replay_page_fini(&page);
    q.since = UINT64_MAX;
    assert_int_equal(kmx_store_replay(f->store, &q, &page), 0);
    assert_int_equal(page.n, 0);
    kmx_store_replay_page_fini(&page);
}

static void test_store_replay_empty_store(void **state) {
    s_fixture_t *f = *state;
    kmx_store_replay_page_t page;
    kmx_store_replay_page_init(&page);
    kmx_store_replay_t q = {.since = 0, .limit = 10};
    assert_int_equal(kmx_store_replay(f->store, &q, &page), 0);
    assert_int_equal(page.n, 0);
    assert_true(page.first_seq == 0 && page.last_seq == 0);
    kmx_store_replay_page_fini(&page);
}

static void test_store_open_creates_directory(void **state) {
    s_fixture_t *f = *state;
    char sub[128];
    snprintf(sub, sizeof sub, "%s/nested/deeper", f->dir);
    kmx_store_t *s = NULL;
    assert_int_equal(kmx_store_open(sub, NULL, &s), 0);
    kmx_store_close(&s);
    assert_null(s);
    kmx_store_close(NULL);
    assert_int_equal(access(sub, F_OK), 0);
    char file[160];
    snprintf(file, sizeof file, "%s/data.mdb", sub);
    assert_int_equal(kmx_store_open(file, NULL, &s), KMX_ERR_IO);
}

// Readers in other threads while the writer grows the map many times: the map gate
// keeps every resize away from open read transactions, so each read answers whole.
typedef struct {
    kmx_store_t *store; // shared
    atomic_int *stop;   // set when the writes are done
    s_rec_t *key;       // a record stored before the threads start
    int failures;       // reads that did not answer as they should
    uint64_t reads;     // reads done
    pthread_t thread;   // runs s_read_loop
} s_reader_t;

static void *s_read_loop(void *arg) {
    s_reader_t *rd = arg;
    while (!atomic_load(rd->stop)) {
        Kmx__V1__StoredRecord *got = NULL;
        if (kmx_store_get(rd->store, &rd->key->rec, &got) != 0 || !got ||
            got->record->value->amount != rd->key->value.amount)
            rd->failures++;
        if (got)
            kmx__v1__stored_record__free_unpacked(got, NULL);
        kmx_store_scan_page_t page;
        kmx_store_scan_page_init(&page);
        kmx_store_scan_t q = {.limit = 50};
        if (kmx_store_scan(rd->store, &q, &page) != 0 || page.n == 0)
            rd->failures++;
        kmx_store_scan_page_fini(&page);
        rd->reads += 2;
    }
    return NULL;
}

static void test_store_readers_beside_map_growth(void **state) {
    s_fixture_t *f = *state;
    kmx_store_close(&f->store);
    kmx_store_config_t cfg = {.map_size = 64 * 1024};
    assert_int_equal(kmx_store_open(f->dir, &cfg, &f->store), 0);
    s_rec_t key;
    s_rec_init(&key, (s_spec_t){.start = 201901, .item = "known", .amount = 77});
    s_put_one(f->store, &key, S_STORED, 1);
    atomic_int stop = 0;
    enum { READERS = 3, BATCHES = 20, PER = 150 };
    s_reader_t rd[READERS];
    for (int i = 0; i < READERS; i++) {
        rd[i] = (s_reader_t){f->store, &stop, &key, 0, 0, 0};
        assert_int_equal(pthread_create(&rd[i].thread, NULL, s_read_loop, &rd[i]), 0);
    }
    static s_rec_t r[PER];
    static char items[PER][32];
    for (int b = 0; b < BATCHES; b++) {
        Kmx__V1__Record *recs[PER];
        kmx_put_outcome_t out[PER];
        for (int i = 0; i < PER; i++) {
            snprintf(items[i], sizeof items[i], "item %d", b * PER + i);
            s_rec_init(&r[i], (s_spec_t){.start = 202001, .item = items[i], .amount = i});
            r[i].rec.note = "a note long enough to make every record take some room in the map";
            recs[i] = &r[i].rec;
        }
        assert_int_equal(kmx_store_put_batch(f->store, recs, PER, out, NULL), 0);
    }
    atomic_store(&stop, 1);
    uint64_t reads = 0;
    for (int i = 0; i < READERS; i++) {
        pthread_join(rd[i].thread, NULL);
        assert_int_equal(rd[i].failures, 0);
        reads += rd[i].reads;
    }
    kmx_store_stats_t st;
    assert_int_equal(kmx_store_stats(f->store, &st), 0);
    assert_true(st.map_size > 64 * 1024);
    assert_true(st.records == 1 + BATCHES * PER);
    print_message("%llu reads beside the writer while the map grew to %llu bytes\n",
                  (unsigned long long)reads, (unsigned long long)st.map_size);
}

// A process that dies inside a read transaction leaves its reader slot taken; the check
// (at open, and periodically in the service) clears it.
static void test_store_reader_check_clears_dead_slot(void **state) {
    s_fixture_t *f = *state;
    int dead = -1;
    assert_int_equal(kmx_store_reader_check(f->store, &dead), 0);
    assert_int_equal(dead, 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        MDB_env *env = NULL;
        MDB_txn *txn = NULL;
        if (mdb_env_create(&env) != 0 || mdb_env_set_maxdbs(env, KMX_SCHEMA_MAX_DBS) != 0 ||
            mdb_env_open(env, f->dir, MDB_RDONLY | MDB_NOTLS, 0600) != 0 ||
            mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) != 0)
            _exit(1);
        _exit(0); // dies holding the slot
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(kmx_store_reader_check(f->store, &dead), 0);
    assert_int_equal(dead, 1);
    assert_int_equal(kmx_store_reader_check(f->store, &dead), 0);
    assert_int_equal(dead, 0);
}

// Whether an answer over everything (no group by source) would add alternatives, asked
// of the store as it follows writes, and of a fresh open of the same directory (which
// walks the records once): both must agree.
static int s_alt_both(s_fixture_t *f) {
    char why[512];
    int followed = kmx_store_alternatives_check(f->store, NULL, NULL, 0, why, sizeof why);
    assert_true(followed == 0 || followed == 1);
    kmx_store_close(&f->store);
    assert_int_equal(kmx_store_open(f->dir, NULL, &f->store), 0);
    int walked = kmx_store_alternatives_check(f->store, NULL, NULL, 0, why, sizeof why);
    assert_int_equal(followed, walked);
    return followed;
}

static void s_write(kmx_store_t *store, kmx_store_op_kind_t kind, s_rec_t *r) {
    kmx_store_op_t op = {kind, &r->rec};
    kmx_put_outcome_t out;
    assert_int_equal(kmx_store_write_batch(store, &op, 1, &out, NULL), 0);
    assert_int_equal(out.outcome, S_STORED);
}

// The alternatives the store keeps in memory follow puts, deletes and unit changes
// without walking the records again.
static void test_store_alternatives_follow_writes(void **state) {
    s_fixture_t *f = *state;
    char why[512];
    s_rec_t a, b, c, other;
    s_rec_init(&a, (s_spec_t){.start = 202301, .item = "album sales", .amount = 10});
    s_rec_init(&b, (s_spec_t){.start = 202301, .item = "album sales (as cited)", .amount = 11});
    s_rec_init(&c, (s_spec_t){.start = 202301, .item = "album sales 2", .amount = 12});
    s_rec_init(&other, (s_spec_t){.start = 202302, .item = "album sales", .amount = 13});
    b.rec.source = c.rec.source = "another outlet";
    s_write(f->store, KMX_STORE_OP_PUT, &a);
    s_write(f->store, KMX_STORE_OP_PUT, &c); // another quantity: "album sales 2"
    s_write(f->store, KMX_STORE_OP_PUT, &other);
    assert_int_equal(s_alt_both(f), 0);
    // Built now; every change below is followed by the writer.
    assert_int_equal(kmx_store_alternatives_check(f->store, NULL, NULL, 0, why, sizeof why), 0);
    s_write(f->store, KMX_STORE_OP_PUT, &b); // the same quantity as a, another source
    assert_int_equal(kmx_store_alternatives_check(f->store, NULL, NULL, 0, why, sizeof why), 1);
    assert_non_null(strstr(why, "another outlet"));
    Kmx__V1__GroupField by_source[] = {KMX__V1__GROUP_FIELD__BY_SOURCE};
    assert_int_equal(kmx_store_alternatives_check(f->store, NULL, by_source, 1, why, sizeof why),
                     0);
    Kmx__V1__Filter feb = KMX__V1__FILTER__INIT;
    Kmx__V1__Period p = KMX__V1__PERIOD__INIT;
    p.has_start = p.has_end = 1;
    p.start = p.end = 202302;
    feb.period = &p;
    assert_int_equal(kmx_store_alternatives_check(f->store, &feb, NULL, 0, why, sizeof why), 0);
    assert_int_equal(s_alt_both(f), 1);
    assert_int_equal(kmx_store_alternatives_check(f->store, NULL, NULL, 0, why, sizeof why), 1);
    b.value.unit = "KRW"; // another unit: another quantity
    s_write(f->store, KMX_STORE_OP_PUT, &b);
    assert_int_equal(kmx_store_alternatives_check(f->store, NULL, NULL, 0, why, sizeof why), 0);
    b.value.unit = "USD";
    s_write(f->store, KMX_STORE_OP_PUT, &b);
    assert_int_equal(kmx_store_alternatives_check(f->store, NULL, NULL, 0, why, sizeof why), 1);
    s_write(f->store, KMX_STORE_OP_DELETE, &a);
    assert_int_equal(kmx_store_alternatives_check(f->store, NULL, NULL, 0, why, sizeof why), 0);
    assert_int_equal(s_alt_both(f), 0);
}

#define S_T(fn) cmocka_unit_test_setup_teardown(fn, s_setup, s_teardown)

int main(void) {
    const struct CMUnitTest tests[] = {
        S_T(test_store_put_get_gap_free),
        S_T(test_store_get_missing_and_bad_key),
        S_T(test_store_unchanged_and_update_keep_previous),
        S_T(test_store_same_key_twice_in_one_batch),
        S_T(test_store_unkeyed_record_rejected_without_seq),
        S_T(test_store_reopen_keeps_records_and_last_seq),
        S_T(test_store_refuses_other_schema_versions),
        S_T(test_store_upgrade_from_schema_3_rebuilds_rollups),
        S_T(test_store_one_writer_per_directory),
        S_T(test_store_map_grows_from_64k),
        S_T(test_store_full_map_fails_whole_batch),
        S_T(test_store_scan_filters),
        S_T(test_store_scan_pages),
        S_T(test_store_scan_named_markets_skip),
        S_T(test_store_scan_rejects_bad_filter_and_token),
        S_T(test_store_replay_since),
        S_T(test_store_replay_empty_store),
        S_T(test_store_open_creates_directory),
        S_T(test_store_readers_beside_map_growth),
        S_T(test_store_reader_check_clears_dead_slot),
        S_T(test_store_alternatives_follow_writes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
