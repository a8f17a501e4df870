/*  Property tests for kmx_store: thousands of random upserts, updates and deletes applied
    both to a real store (starting from a 64 KiB map, so it must grow) and to an in-memory
    model; afterwards every record, every index entry and every roll-up must equal what
    the model implies, and both aggregate paths agree. Also: retention and the resync
    answer, and a write refused for lack of disk space leaving nothing behind.  */
#define _XOPEN_SOURCE 700 // nftw, to remove the test directory
#include "kmx_store.h"

#include "kmx_derived.h"
#include "kmx_err.h"
#include "kmx_schema.h"

#include <ftw.h>
#include <lmdb.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#define S_OPS 6000     // random operations per run
#define S_BATCH_MAX 40 // operations per write batch at most

static const char *const s_markets[] = {"JP", "US", "CN", "WORLD"};
static const uint32_t s_periods[][2] = {
    {202301, 202301}, {202302, 202302}, {202301, 202306}, {202401, 202412}, {202412, 202412}};
static const char *const s_categories[] = {"album", "digital", ""};
static const char *const s_items[] = {"exports", "streams"};
static const char *const s_companies[] = {"", "HYBE", "SM"};
static const char *const s_artists[] = {"", "BTS", "IU"};
static const char *const s_units[] = {"USD", "KRW"};

#define S_N(a) (sizeof(a) / sizeof((a)[0]))
#define S_KEYS                                                                                     \
    (2 * S_N(s_periods) * S_N(s_markets) * S_N(s_categories) * S_N(s_items) * S_N(s_companies) *   \
     S_N(s_artists))

// One natural key of the model and what it holds.
typedef struct {
    Kmx__V1__Record rec;    // key fields point at the pools; value at value
    Kmx__V1__Period period; // the record's period
    Kmx__V1__Value value;   // amount and unit while present
    int present;            // nonzero when the key holds a record
    uint64_t seq;           // sequence of its last change while present
} s_slot_t;

typedef struct {
    char dir[64];           // the mkdtemp directory
    kmx_store_t *store;     // the store under test
    s_slot_t slots[S_KEYS]; // the model: every possible key
    uint64_t seq;           // the model's last sequence number
    uint64_t rng;           // xorshift state
} s_fixture_t;

static uint64_t s_rand(s_fixture_t *f) {
    f->rng ^= f->rng << 13;
    f->rng ^= f->rng >> 7;
    f->rng ^= f->rng << 17;
    return f->rng;
}

static void s_slot_init(s_slot_t *s, size_t index) {
    Kmx__V1__Record rec = KMX__V1__RECORD__INIT;
    Kmx__V1__Period period = KMX__V1__PERIOD__INIT;
    Kmx__V1__Value value = KMX__V1__VALUE__INIT;
    s->rec = rec;
    s->period = period;
    s->value = value;
    size_t i = index;
    s->rec.has_kind = 1;
    s->rec.kind = i % 2 ? KMX__V1__KIND__CONSUMPTION : KMX__V1__KIND__EXPORT;
    i /= 2;
    s->period.has_start = s->period.has_end = 1;
    s->period.start = s_periods[i % S_N(s_periods)][0];
    s->period.end = s_periods[i % S_N(s_periods)][1];
    i /= S_N(s_periods);
    s->rec.market = (char *)s_markets[i % S_N(s_markets)];
    i /= S_N(s_markets);
    s->rec.category = (char *)s_categories[i % S_N(s_categories)];
    i /= S_N(s_categories);
    s->rec.item = (char *)s_items[i % S_N(s_items)];
    i /= S_N(s_items);
    s->rec.company = (char *)s_companies[i % S_N(s_companies)];
    i /= S_N(s_companies);
    s->rec.artist = (char *)s_artists[i % S_N(s_artists)];
    s->rec.source = "kmx property test";
    s->rec.period = &s->period;
    s->value.has_amount = 1;
    s->rec.value = &s->value;
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
    snprintf(f->dir, sizeof f->dir, "/tmp/kmx-prop-test-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    for (size_t i = 0; i < S_KEYS; i++)
        s_slot_init(&f->slots[i], i);
    const char *seed = getenv("KMX_SEED"); // repeats another run's operations
    f->rng = seed && *seed ? strtoull(seed, NULL, 10) | 1 : 0x9e3779b97f4a7c15ull;
    printf("seed %llu (repeat with KMX_SEED=%llu)\n", (unsigned long long)f->rng,
           (unsigned long long)f->rng);
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

// ---- driving the store and the model ---------------------------------------------------

// The record one operation writes: a copy of the slot's key with a new value.
typedef struct {
    Kmx__V1__Record rec;  // what the store receives
    Kmx__V1__Value value; // its value
    size_t slot;          // the model slot
} s_op_rec_t;

// Picks an amount: mostly huge, so roll-up sums leave 64 bits.
static int64_t s_amount(s_fixture_t *f) {
    int64_t a = (int64_t)(s_rand(f) % 4000000000000000000ull);
    return s_rand(f) % 8 == 0 ? -(a / 1000) : a;
}

static void s_make_op(s_fixture_t *f, kmx_store_op_t *op, s_op_rec_t *r) {
    r->slot = s_rand(f) % S_KEYS;
    s_slot_t *s = &f->slots[r->slot];
    r->rec = s->rec;
    Kmx__V1__Value value = KMX__V1__VALUE__INIT;
    r->value = value;
    r->value.has_amount = 1;
    uint64_t dice = s_rand(f) % 100;
    if (dice < 30) {
        op->kind = KMX_STORE_OP_DELETE;
        r->rec.value = NULL;
    } else {
        op->kind = KMX_STORE_OP_PUT;
        int same = s->present && dice < 40; // rewrite the stored value: UNCHANGED
        r->value.amount = same ? s->value.amount : s_amount(f);
        r->value.unit = same ? s->value.unit : (char *)s_units[s_rand(f) % S_N(s_units)];
        r->rec.value = &r->value;
    }
    op->rec = &r->rec;
}

// Applies one operation to the model and checks the store's outcome against it.
static void s_model_apply(s_fixture_t *f, const kmx_store_op_t *op, const s_op_rec_t *r,
                          const kmx_put_outcome_t *o) {
    s_slot_t *s = &f->slots[r->slot];
    if (op->kind == KMX_STORE_OP_DELETE) {
        if (!s->present) {
            assert_int_equal(o->outcome, KMX__V1__RECORD_RESULT__OUTCOME__NOT_FOUND);
            return;
        }
        s->present = 0;
    } else {
        int same = s->present && s->value.amount == r->value.amount &&
                   strcmp(s->value.unit, r->value.unit) == 0;
        if (same) {
            assert_int_equal(o->outcome, KMX__V1__RECORD_RESULT__OUTCOME__UNCHANGED);
            return;
        }
        s->present = 1;
        s->value.amount = r->value.amount;
        s->value.unit = r->value.unit;
    }
    assert_int_equal(o->outcome, KMX__V1__RECORD_RESULT__OUTCOME__STORED);
    assert_int_equal(o->seq, ++f->seq);
    s->seq = o->seq;
}

static void s_run_ops(s_fixture_t *f, size_t total) {
    kmx_store_op_t ops[S_BATCH_MAX];
    s_op_rec_t recs[S_BATCH_MAX];
    kmx_put_outcome_t outcomes[S_BATCH_MAX];
    for (size_t done = 0; done < total;) {
        size_t n = 1 + s_rand(f) % S_BATCH_MAX;
        for (size_t i = 0; i < n; i++)
            s_make_op(f, &ops[i], &recs[i]);
        assert_int_equal(kmx_store_write_batch(f->store, ops, n, outcomes, NULL), 0);
        for (size_t i = 0; i < n; i++)
            s_model_apply(f, &ops[i], &recs[i], &outcomes[i]);
        assert_int_equal(kmx_store_last_seq(f->store), f->seq);
        done += n;
    }
}

// ---- comparing the raw databases with the model ------------------------------------------

// One (key, value) pair, owned.
typedef struct {
    uint8_t k[KMX_RKEY_MAX];                         // key bytes
    size_t klen;                                     // bytes in k
    uint8_t v[KMX_DERIVED_ENTRY_SEQ + KMX_RKEY_MAX]; // value bytes (an index entry at most)
    size_t vlen;                                     // bytes in v
} s_pair_t;

static int s_pair_cmp(const void *a, const void *b) {
    const s_pair_t *pa = a, *pb = b;
    size_t n = pa->klen < pb->klen ? pa->klen : pb->klen;
    int c = memcmp(pa->k, pb->k, n);
    if (c == 0)
        c = (pa->klen > pb->klen) - (pa->klen < pb->klen);
    if (c != 0)
        return c;
    n = pa->vlen < pb->vlen ? pa->vlen : pb->vlen;
    c = memcmp(pa->v, pb->v, n);
    return c != 0 ? c : (pa->vlen > pb->vlen) - (pa->vlen < pb->vlen);
}

// Reads every pair of database name (all duplicates too) in txn.
static s_pair_t *s_read_db(MDB_txn *txn, const char *name, unsigned flags, size_t *n) {
    MDB_dbi dbi;
    assert_int_equal(mdb_dbi_open(txn, name, flags, &dbi), 0);
    MDB_stat st;
    assert_int_equal(mdb_stat(txn, dbi, &st), 0);
    s_pair_t *pairs = calloc(st.ms_entries + 1, sizeof *pairs);
    assert_non_null(pairs);
    MDB_cursor *cur;
    assert_int_equal(mdb_cursor_open(txn, dbi, &cur), 0);
    MDB_val k, v;
    size_t i = 0;
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        assert_true(i < st.ms_entries);
        assert_true(k.mv_size <= KMX_RKEY_MAX);
        memcpy(pairs[i].k, k.mv_data, k.mv_size);
        pairs[i].klen = k.mv_size;
        pairs[i].vlen = v.mv_size <= sizeof pairs[i].v ? v.mv_size : sizeof pairs[i].v;
        memcpy(pairs[i].v, v.mv_data, pairs[i].vlen);
        i++;
    }
    mdb_cursor_close(cur);
    assert_int_equal(i, st.ms_entries);
    *n = i;
    return pairs;
}

static void s_expect_index(s_fixture_t *f, kmx_rkey_index_t idx, MDB_txn *txn) {
    s_pair_t *want = calloc(S_KEYS, sizeof *want);
    assert_non_null(want);
    size_t n_want = 0;
    for (size_t i = 0; i < S_KEYS; i++) {
        s_slot_t *s = &f->slots[i];
        if (!s->present)
            continue;
        s_pair_t *p = &want[n_want];
        int err = kmx_rkey_index(idx, &s->rec, p->k, sizeof p->k, &p->klen);
        if (err == KMX_ERR_NOT_FOUND)
            continue;
        assert_int_equal(err, 0);
        uint8_t rkey[KMX_RKEY_MAX];
        size_t rlen = 0;
        assert_int_equal(kmx_rkey_record(&s->rec, rkey, sizeof rkey, &rlen), 0);
        MDB_val rk = {rlen, rkey};
        assert_int_equal(kmx_derived_entry(s->seq, &rk, p->v, sizeof p->v, &p->vlen), 0);
        n_want++;
    }
    qsort(want, n_want, sizeof *want, s_pair_cmp);
    size_t n_have = 0;
    s_pair_t *have = s_read_db(txn, kmx_derived_index_name(idx), MDB_DUPSORT, &n_have);
    assert_int_equal(n_have, n_want);
    for (size_t i = 0; i < n_want; i++)
        assert_int_equal(s_pair_cmp(&want[i], &have[i]), 0);
    free(want);
    free(have);
}

static void s_expect_records(s_fixture_t *f, MDB_txn *txn) {
    size_t n_have = 0, n_want = 0;
    s_pair_t *have = s_read_db(txn, KMX_DB_RECORDS, 0, &n_have);
    free(have);
    MDB_dbi dbi;
    assert_int_equal(mdb_dbi_open(txn, KMX_DB_RECORDS, 0, &dbi), 0);
    for (size_t i = 0; i < S_KEYS; i++) {
        s_slot_t *s = &f->slots[i];
        uint8_t kbuf[KMX_RKEY_MAX];
        size_t klen = 0;
        assert_int_equal(kmx_rkey_record(&s->rec, kbuf, sizeof kbuf, &klen), 0);
        MDB_val k = {klen, kbuf}, v;
        int rc = mdb_get(txn, dbi, &k, &v);
        if (!s->present) {
            assert_int_equal(rc, MDB_NOTFOUND);
            continue;
        }
        n_want++;
        assert_int_equal(rc, 0);
        Kmx__V1__StoredRecord *sr = kmx__v1__stored_record__unpack(NULL, v.mv_size, v.mv_data);
        assert_non_null(sr);
        assert_int_equal(sr->record->value->amount, s->value.amount);
        assert_string_equal(sr->record->value->unit, s->value.unit);
        assert_int_equal(sr->seq, s->seq);
        kmx__v1__stored_record__free_unpacked(sr, NULL);
    }
    assert_int_equal(n_have, n_want);
}

// Expected roll-ups: one entry per distinct roll-up key of present records.
typedef struct {
    uint8_t k[KMX_RKEY_MAX]; // roll-up key
    size_t klen;             // bytes in k
    kmx_i128 sum;            // exact sum
    uint64_t count;          // records
} s_roll_t;

static int s_roll_cmp(const void *a, const void *b) {
    const s_roll_t *ra = a, *rb = b;
    size_t n = ra->klen < rb->klen ? ra->klen : rb->klen;
    int c = memcmp(ra->k, rb->k, n);
    return c != 0 ? c : (ra->klen > rb->klen) - (ra->klen < rb->klen);
}

static void s_expect_rollups(s_fixture_t *f, MDB_txn *txn) {
    s_roll_t *want = calloc(S_KEYS, sizeof *want);
    assert_non_null(want);
    size_t n = 0;
    for (size_t i = 0; i < S_KEYS; i++) {
        s_slot_t *s = &f->slots[i];
        if (!s->present)
            continue;
        s_roll_t r = {{0}, 0, s->value.amount, 1};
        assert_int_equal(kmx_rkey_rollup(&s->rec, r.k, sizeof r.k, &r.klen), 0);
        size_t j = 0;
        while (j < n && s_roll_cmp(&want[j], &r) != 0)
            j++;
        if (j == n)
            want[n++] = r;
        else {
            want[j].sum += r.sum;
            want[j].count++;
        }
    }
    qsort(want, n, sizeof *want, s_roll_cmp);
    kmx_derived_dbs_t dbs;
    assert_int_equal(kmx_derived_open(txn, 0, &dbs), 0);
    kmx_derived_rollup_t *have = NULL;
    size_t n_have = 0;
    assert_int_equal(kmx_derived_rollups_read(txn, &dbs, &have, &n_have), 0);
    assert_int_equal(n_have, n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(have[i].len, want[i].klen);
        assert_memory_equal(have[i].key, want[i].k, want[i].klen);
        assert_true(have[i].sum == want[i].sum);
        assert_int_equal(have[i].count, want[i].count);
    }
    // Months live in rollups_month, one entry per year; nothing else does.
    size_t n_months = 0, n_spans = 0;
    s_pair_t *months = s_read_db(txn, KMX_DB_ROLLUPS_MONTH, 0, &n_months);
    s_pair_t *spans = s_read_db(txn, KMX_DB_ROLLUPS, 0, &n_spans);
    for (size_t i = 0; i < n_months; i++) {
        kmx_rkey_rollup_t k;
        assert_int_equal(kmx_rkey_rollup_parse(months[i].k, months[i].klen, &k), 0);
        assert_int_equal(k.start % 100, 1);
        assert_int_equal(k.end, k.start + 11);
        assert_int_equal(months[i].vlen, KMX_ROLLUP_MONTH_VALUE_LEN);
    }
    for (size_t i = 0; i < n_spans; i++) {
        kmx_rkey_rollup_t k;
        assert_int_equal(kmx_rkey_rollup_parse(spans[i].k, spans[i].klen, &k), 0);
        assert_true(k.start != k.end);
    }
    kmx_derived_rollups_free(&have, n_have);
    free(want);
    free(months);
    free(spans);
}

static void s_expect_events(s_fixture_t *f, MDB_txn *txn) {
    size_t n = 0;
    s_pair_t *have = s_read_db(txn, KMX_DB_EVENTS, 0, &n);
    assert_int_equal(n, f->seq);
    for (size_t i = 0; i < n; i++) {
        uint64_t seq = 0;
        assert_int_equal(kmx_rkey_event_seq(have[i].k, have[i].klen, &seq), 0);
        assert_int_equal(seq, i + 1);
    }
    free(have);
}

// Closes the store and compares every database, read raw, with the model.
static void s_compare_raw(s_fixture_t *f) {
    kmx_store_close(&f->store);
    MDB_env *env;
    MDB_txn *txn;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, KMX_SCHEMA_MAX_DBS), 0);
    assert_int_equal(mdb_env_open(env, f->dir, MDB_RDONLY, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    s_expect_records(f, txn);
    for (int i = 0; i < KMX_RKEY_IDX_COUNT; i++)
        s_expect_index(f, (kmx_rkey_index_t)i, txn);
    s_expect_rollups(f, txn);
    s_expect_events(f, txn);
    mdb_txn_abort(txn);
    mdb_env_close(env);
}

// Groups by market and unit along both paths and checks they agree with the model.
static void s_compare_aggregates(s_fixture_t *f) {
    Kmx__V1__GroupField by[] = {KMX__V1__GROUP_FIELD__BY_MARKET};
    Kmx__V1__Filter filter = KMX__V1__FILTER__INIT;
    filter.has_kind = 1;
    filter.kind = KMX__V1__KIND__EXPORT;
    Kmx__V1__QueryResult a = KMX__V1__QUERY_RESULT__INIT, b = KMX__V1__QUERY_RESULT__INIT;
    kmx_group_t *ga = kmx_group_new(by, 1), *gb = kmx_group_new(by, 1);
    kmx_store_agg_info_t ia, ib;
    assert_int_equal(kmx_store_aggregate(f->store, &filter, ga, 1, NULL, &ia), 0);
    assert_int_equal(kmx_store_aggregate(f->store, &filter, gb, 0, NULL, &ib), 0);
    assert_true(ia.from_rollups);
    assert_false(ib.from_rollups);
    assert_int_equal(kmx_group_result(ga, &a), 0);
    assert_int_equal(kmx_group_result(gb, &b), 0);
    uint64_t matched = 0;
    for (size_t i = 0; i < S_KEYS; i++)
        matched += f->slots[i].present && f->slots[i].rec.kind == KMX__V1__KIND__EXPORT;
    assert_int_equal(a.matched, matched);
    assert_int_equal(b.matched, matched);
    assert_int_equal(a.n_rows, b.n_rows);
    for (size_t i = 0; i < a.n_rows; i++) {
        assert_string_equal(a.rows[i]->keys[0], b.rows[i]->keys[0]);
        assert_string_equal(a.rows[i]->unit, b.rows[i]->unit);
        assert_string_equal(a.rows[i]->sum, b.rows[i]->sum);
        assert_int_equal(a.rows[i]->count, b.rows[i]->count);
        assert_false(a.rows[i]->has_min);
        assert_true(b.rows[i]->has_min);
    }
    kmx_group_destroy(&ga);
    kmx_group_destroy(&gb);
}

static void s_open(s_fixture_t *f, size_t map_size, uint64_t retain) {
    kmx_store_config_t cfg = {
        .map_size = map_size, .sync = KMX_STORE_SYNC_NONE, .retain_events = retain};
    assert_int_equal(kmx_store_open(f->dir, &cfg, &f->store), 0);
}

static void test_store_random_ops_match_model(void **state) {
    s_fixture_t *f = *state;
    s_open(f, 65536, 0); // a tiny map: the run must grow it many times
    s_run_ops(f, S_OPS / 2);
    kmx_store_close(&f->store); // reopen halfway: nothing derived lives only in memory
    s_open(f, 65536, 0);
    s_run_ops(f, S_OPS / 2);
    kmx_store_check_t report;
    assert_int_equal(kmx_store_check(f->store, &report), 0);
    assert_int_equal(report.last_seq, f->seq);
    s_compare_aggregates(f);
    s_compare_raw(f);
}

static void test_store_check_finds_a_damaged_rollup(void **state) {
    s_fixture_t *f = *state;
    s_open(f, 0, 0);
    s_run_ops(f, 200);
    kmx_store_close(&f->store);
    // Damage one roll-up behind the store's back.
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_cursor *cur;
    MDB_val k, v;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, KMX_SCHEMA_MAX_DBS), 0);
    assert_int_equal(mdb_env_open(env, f->dir, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, KMX_DB_ROLLUPS, 0, &dbi), 0);
    assert_int_equal(mdb_cursor_open(txn, dbi, &cur), 0);
    assert_int_equal(mdb_cursor_get(cur, &k, &v, MDB_FIRST), 0);
    uint8_t bad[KMX_ROLLUP_MONTH_VALUE_LEN];
    kmx_derived_rollup_encode(1, 1, bad);
    MDB_val put = {KMX_ROLLUP_VALUE_LEN, bad};
    assert_int_equal(mdb_cursor_put(cur, &k, &put, MDB_CURRENT), 0);
    mdb_cursor_close(cur);
    // And one month of a year of months: its January now claims one record of 0.0001.
    assert_int_equal(mdb_dbi_open(txn, KMX_DB_ROLLUPS_MONTH, 0, &dbi), 0);
    assert_int_equal(mdb_cursor_open(txn, dbi, &cur), 0);
    assert_int_equal(mdb_cursor_get(cur, &k, &v, MDB_FIRST), 0);
    assert_int_equal(v.mv_size, KMX_ROLLUP_MONTH_VALUE_LEN);
    memcpy(bad, v.mv_data, v.mv_size);
    kmx_derived_rollup_encode(1, 1, bad);
    put.mv_size = KMX_ROLLUP_MONTH_VALUE_LEN;
    assert_int_equal(mdb_cursor_put(cur, &k, &put, MDB_CURRENT), 0);
    mdb_cursor_close(cur);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    s_open(f, 0, 0);
    kmx_store_check_t report;
    assert_int_equal(kmx_store_check(f->store, &report), KMX_ERR_INTERNAL);
    assert_int_equal(report.rollup_mismatch, 2);
    assert_int_equal(report.index_missing + report.index_extra + report.event_gaps, 0);
}

static void test_store_retention_answers_resync(void **state) {
    s_fixture_t *f = *state;
    s_open(f, 0, 5);
    for (int i = 0; i < 20; i++) {
        kmx_store_op_t op = {KMX_STORE_OP_PUT, &f->slots[i].rec};
        kmx_put_outcome_t o;
        f->slots[i].value.amount = i + 1;
        f->slots[i].value.unit = "USD";
        assert_int_equal(kmx_store_write_batch(f->store, &op, 1, &o, NULL), 0);
        assert_int_equal(o.seq, (uint64_t)i + 1);
    }
    kmx_store_replay_t q = {0, 100, NULL, 0};
    kmx_store_replay_page_t page;
    kmx_store_replay_page_init(&page);
    assert_int_equal(kmx_store_replay(f->store, &q, &page), KMX_ERR_RESYNC);
    assert_int_equal(page.first_seq, 16);
    assert_int_equal(page.last_seq, 20);
    kmx_store_replay_page_fini(&page);
    q.since = 15; // exactly at the window's edge: served
    kmx_store_replay_page_init(&page);
    assert_int_equal(kmx_store_replay(f->store, &q, &page), 0);
    assert_int_equal(page.n, 5);
    assert_int_equal(page.events[0]->seq, 16);
    kmx_store_replay_page_fini(&page);
    // The snapshot a lagging reader takes instead: a scan says which sequence it reflects.
    kmx_store_scan_t sq = {NULL, NULL, 0, 1000};
    kmx_store_scan_page_t sp;
    kmx_store_scan_page_init(&sp);
    assert_int_equal(kmx_store_scan(f->store, &sq, &sp), 0);
    assert_int_equal(sp.n, 20);
    assert_int_equal(sp.last_seq, 20);
    kmx_store_scan_page_fini(&sp);
    kmx_store_check_t report;
    assert_int_equal(kmx_store_check(f->store, &report), 0);
    assert_int_equal(report.events, 5);
    assert_int_equal(report.first_seq, 16);
}

// Fills one batch of n distinct new records (the caller frees nothing: all borrowed).
static int s_big_batch(s_fixture_t *f, size_t n, uint64_t *seq_after) {
    Kmx__V1__Record *recs = calloc(n, sizeof *recs);
    Kmx__V1__Record **ptrs = calloc(n, sizeof *ptrs);
    char(*items)[32] = calloc(n, sizeof *items);
    kmx_put_outcome_t *outcomes = calloc(n, sizeof *outcomes);
    assert_true(recs && ptrs && items && outcomes);
    for (size_t i = 0; i < n; i++) {
        recs[i] = f->slots[0].rec;
        recs[i].value = &f->slots[0].value;
        snprintf(items[i], sizeof items[i], "bulk item %zu", i);
        recs[i].item = items[i];
        ptrs[i] = &recs[i];
    }
    int err = kmx_store_put_batch(f->store, ptrs, n, outcomes, NULL);
    *seq_after = kmx_store_last_seq(f->store);
    free(recs);
    free(ptrs);
    free(items);
    free(outcomes);
    return err;
}

static void test_store_disk_full_leaves_nothing_behind(void **state) {
    s_fixture_t *f = *state;
    s_open(f, 0, 0);
    f->slots[0].value.amount = 7;
    f->slots[0].value.unit = "USD";
    uint64_t seq = 0;
    assert_int_equal(s_big_batch(f, 10, &seq), 0);
    assert_int_equal(seq, 10);
    char path[128];
    struct stat st;
    snprintf(path, sizeof path, "%s/data.mdb", f->dir);
    assert_int_equal(stat(path, &st), 0);
    // The file may not grow: writes past its end fail as on a full disk.
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = (rlim_t)st.st_size;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    int err = s_big_batch(f, 3000, &seq);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    assert_true(err == KMX_ERR_FULL || err == KMX_ERR_IO);
    assert_int_equal(seq, 10);
    kmx_store_check_t report;
    assert_int_equal(kmx_store_check(f->store, &report), 0);
    assert_int_equal(report.records, 10);
    assert_int_equal(report.last_seq, 10);
    // With room again the same batch goes through whole.
    assert_int_equal(s_big_batch(f, 3000, &seq), 0);
    assert_int_equal(seq, 10 + 3000 - 10);
    assert_int_equal(kmx_store_check(f->store, &report), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_store_random_ops_match_model, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_store_check_finds_a_damaged_rollup, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_store_retention_answers_resync, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_store_disk_full_leaves_nothing_behind, s_setup,
                                        s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
