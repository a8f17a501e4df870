/*  Property test of storage's query answers: on random stores mixing full years of
    months, partial years and other spans (years, halves, quarters, ranges across a new
    year), every random query answered with years of months folded into one row must be
    byte for byte the answer computed month by month, and every answer must mean what it
    says, checked against the records: no row adds two market levels, a unit that does not
    add, or a stock unit over several periods; each row's months are those of its records;
    --complete drops exactly the partial rows. Market levels, stock units: fixed cases.  */
#include "kmx_answer.h"
#include "kmx_err.h"
#include "kmx_market.h"
#include "kmx_period.h"
#include "kmx_testkit.h"
#include "kmx_unit.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define S_STORES 3    // random stores
#define S_QUERIES 300 // random queries per store
#define S_FIRST_YEAR 2020
#define S_YEARS 5

static const char *const s_markets[] = {"JP", "US", "CN", "GB", "TH", "WORLD", "JP+CN+US"};
static const char *const s_categories[] = {"album", "digital"};
// Money in two currencies, and a third unit: monthly users (a stock: adds across markets,
// not over time; months only), or for TH a percentage (does not add at all).
static const char *const s_units[] = {"USD", "KRW", "users"};
#define S_THIRD_UNIT(market) (strcmp((market), "TH") == 0 ? "percent_share" : "users")

#define S_N(a) (sizeof(a) / sizeof((a)[0]))

typedef struct {
    char dir[128];           // the store's directory
    kmx_store_t *store;      // the store under test
    unsigned seed;           // rand_r state
    kmx_testkit_rec_t *recs; // records of the current store
    size_t n, cap;           // held and allocated
} s_fixture_t;

static int s_setup(void **state) {
    s_fixture_t *f = calloc(1, sizeof *f);
    if (!f || kmx_testkit_dir_make("kmx-answer-test", f->dir, sizeof f->dir) != 0)
        return -1;
    const char *seed = getenv("KMX_SEED"); // repeats another run's data and queries
    f->seed = seed && *seed ? (unsigned)strtoul(seed, NULL, 10) : 20261123;
    printf("seed %u (repeat with KMX_SEED=%u)\n", f->seed, f->seed);
    *state = f;
    return 0;
}

static int s_teardown(void **state) {
    s_fixture_t *f = *state;
    kmx_store_close(&f->store);
    kmx_testkit_dir_remove(f->dir);
    free(f->recs);
    free(f);
    return 0;
}

static int s_rand(s_fixture_t *f, int n) {
    return rand_r(&f->seed) % n;
}

static void s_add(s_fixture_t *f, const char *market, const char *category, const char *unit,
                  uint32_t start, uint32_t end) {
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 1024;
        f->recs = realloc(f->recs, f->cap * sizeof *f->recs);
        assert_non_null(f->recs);
    }
    kmx_testkit_rec_t *r = &f->recs[f->n++];
    int64_t amount = 1 + s_rand(f, 1000000000);
    kmx_testkit_rec_init(r, market, start, end, amount, unit);
    r->rec.category = (char *)category;
    // One item per unit: the natural key has no unit, so one item in two units would be
    // one record revised, not two.
    snprintf(r->item, sizeof r->item, "exports in %s", unit);
}

// Fills a fresh store: per (market, category, unit, year) a full year of months, some
// months or none; now and then a span over the same group.
static void s_fill(s_fixture_t *f) {
    kmx_store_close(&f->store);
    kmx_testkit_dir_remove(f->dir);
    assert_int_equal(kmx_testkit_dir_make("kmx-answer-test", f->dir, sizeof f->dir), 0);
    kmx_store_config_t cfg = {.sync = KMX_STORE_SYNC_NONE};
    assert_int_equal(kmx_store_open(f->dir, &cfg, &f->store), 0);
    f->n = 0;
    for (size_t m = 0; m < S_N(s_markets); m++)
        for (size_t c = 0; c < S_N(s_categories); c++)
            for (size_t u = 0; u < S_N(s_units); u++)
                for (uint32_t y = S_FIRST_YEAR; y < S_FIRST_YEAR + S_YEARS; y++) {
                    const char *unit = u < 2 ? s_units[u] : S_THIRD_UNIT(s_markets[m]);
                    int shape = s_rand(f, 4); // 0 none, 1 some months, 2-3 every month
                    for (uint32_t mo = 1; shape > 0 && mo <= 12; mo++) {
                        if (shape > 1 || s_rand(f, 3) > 0)
                            s_add(f, s_markets[m], s_categories[c], unit, y * 100 + mo,
                                  y * 100 + mo);
                    }
                    if (u == 2 || s_rand(f, 8) != 0)
                        continue;
                    static const uint32_t spans[][2] = {{1, 12}, {1, 6}, {7, 12}, {4, 6}, {11, 14}};
                    const uint32_t *s = spans[s_rand(f, (int)S_N(spans))];
                    uint32_t end = s[1] > 12 ? (y + 1) * 100 + s[1] - 12 : y * 100 + s[1];
                    s_add(f, s_markets[m], s_categories[c], unit, y * 100 + s[0], end);
                }
    for (size_t i = 0; i < f->n; i++) { // the records moved when the array grew
        f->recs[i].rec.period = &f->recs[i].period;
        f->recs[i].rec.value = &f->recs[i].value;
        f->recs[i].rec.item = f->recs[i].item;
    }
    kmx_store_op_t *ops = calloc(f->n, sizeof *ops);
    kmx_put_outcome_t *out = calloc(f->n, sizeof *out);
    assert_non_null(ops);
    assert_non_null(out);
    for (size_t i = 0; i < f->n; i++)
        ops[i] = (kmx_store_op_t){KMX_STORE_OP_PUT, &f->recs[i].rec};
    assert_int_equal(kmx_store_write_batch(f->store, ops, f->n, out, NULL), 0);
    free(ops);
    free(out);
}

// A random query's parts, kept alive while it is answered.
typedef struct {
    Kmx__V1__Request req;
    Kmx__V1__QueryRequest q;
    Kmx__V1__Filter filter;
    Kmx__V1__Period period;
    Kmx__V1__GroupField by[4];
    char *units[1];
    char *categories[1];
    char *markets[2];
    char id[24];
} s_query_t;

static void s_random_query(s_fixture_t *f, s_query_t *x, uint64_t id) {
    static const Kmx__V1__GroupField fields[] = {
        KMX__V1__GROUP_FIELD__BY_MARKET, KMX__V1__GROUP_FIELD__BY_REGION,
        KMX__V1__GROUP_FIELD__BY_YEAR, KMX__V1__GROUP_FIELD__BY_CATEGORY,
        KMX__V1__GROUP_FIELD__BY_UNIT};
    memset(x, 0, sizeof *x);
    kmx__v1__request__init(&x->req);
    kmx__v1__query_request__init(&x->q);
    kmx__v1__filter__init(&x->filter);
    kmx__v1__period__init(&x->period);
    x->filter.has_kind = 1;
    x->filter.kind = KMX__V1__KIND__EXPORT;
    uint32_t y = S_FIRST_YEAR + (uint32_t)s_rand(f, S_YEARS);
    x->period.has_start = x->period.has_end = 1;
    switch (s_rand(f, 4)) {
    case 0: // no period
        break;
    case 1: // one year
        x->period.start = y * 100 + 1;
        x->period.end = y * 100 + 12;
        x->filter.period = &x->period;
        break;
    case 2: // two years
        x->period.start = y * 100 + 1;
        x->period.end = (y + 1) * 100 + 12;
        x->filter.period = &x->period;
        break;
    default: { // any months: across a new year, inside one, a single month
        uint32_t a = y * 100 + 1 + (uint32_t)s_rand(f, 12);
        uint32_t b = (y + (uint32_t)s_rand(f, 2)) * 100 + 1 + (uint32_t)s_rand(f, 12);
        x->period.start = a < b ? a : b;
        x->period.end = a < b ? b : a;
        x->filter.period = &x->period;
        break;
    }
    }
    int gran = s_rand(f, 6);
    x->filter.granularity = gran == 0 ? "any" : gran == 1 ? "year" : NULL;
    if (s_rand(f, 3) == 0) {
        x->units[0] = (char *)s_units[s_rand(f, (int)S_N(s_units))];
        x->filter.n_units = 1;
        x->filter.units = x->units;
    }
    if (s_rand(f, 3) == 0) {
        x->categories[0] = (char *)s_categories[s_rand(f, (int)S_N(s_categories))];
        x->filter.n_categories = 1;
        x->filter.categories = x->categories;
    }
    if (s_rand(f, 4) == 0) {
        x->markets[0] = "JP";
        x->markets[1] = "US";
        x->filter.n_markets = 2;
        x->filter.markets = x->markets;
    }
    size_t n = (size_t)s_rand(f, 4);
    for (size_t i = 0; i < n; i++) {
        Kmx__V1__GroupField g = fields[s_rand(f, (int)S_N(fields))];
        int dup = 0;
        for (size_t j = 0; j < x->q.n_group_by; j++)
            dup |= x->by[j] == g;
        if (!dup)
            x->by[x->q.n_group_by++] = g;
    }
    x->q.group_by = x->by;
    x->q.filter = &x->filter;
    int growth = s_rand(f, 3);
    x->q.has_growth = growth > 0;
    x->q.growth = growth == 1 ? KMX__V1__GROWTH__YOY : KMX__V1__GROWTH__PERIOD_OVER_PERIOD;
    x->q.has_top = s_rand(f, 3) == 0;
    x->q.top = 2;
    x->q.has_other = x->q.other = x->q.has_top && s_rand(f, 2);
    x->q.has_share = x->q.share = s_rand(f, 3) == 0;
    snprintf(x->id, sizeof x->id, "q%llu", (unsigned long long)id);
    x->req.request_id = x->id;
    x->req.body_case = KMX__V1__REQUEST__BODY_QUERY;
    x->req.query = &x->q;
}

// Says which query failed, so it can be reproduced.
static void s_print_query(const s_query_t *x) {
    fprintf(stderr,
            "query: period=%u..%u granularity=%s growth=%d top=%s other=%d share=%d "
            "units=%zu categories=%zu markets=%zu group_by=",
            x->filter.period ? x->period.start : 0, x->filter.period ? x->period.end : 0,
            x->filter.granularity ? x->filter.granularity : "auto",
            x->q.has_growth ? (int)x->q.growth : 0, x->q.has_top ? "2" : "none", x->q.other,
            x->q.share, x->filter.n_units, x->filter.n_categories, x->filter.n_markets);
    for (size_t g = 0; g < x->q.n_group_by; g++)
        fprintf(stderr, "%s%d", g ? "," : "", (int)x->by[g]);
    fprintf(stderr, "\n");
}

// ---- what the answer means, checked against the records ------------------------------

static size_t s_rows_covered;   // rows whose months were counted from their records
static size_t s_rows_completed; // rows compared with the same query under --complete
static size_t s_rows_stock;     // rows of a stock unit over several periods (no sum)

// Whether record r matches x's filter (kind, period inside the range, markets, units,
// categories, a named granularity), as storage reads them for the asked range.
static int s_matches(const s_query_t *x, const Kmx__V1__Record *r) {
    const Kmx__V1__Filter *fl = &x->filter;
    kmx_period_t p = {r->period->start, r->period->end};
    if (fl->period && (p.start < x->period.start || p.end > x->period.end))
        return 0;
    kmx_gran_t g;
    if (fl->granularity && kmx_gran_parse(fl->granularity, &g) == 0 &&
        kmx_period_granularity(&p) != g)
        return 0;
    int ok = fl->n_markets == 0;
    for (size_t i = 0; i < fl->n_markets; i++)
        ok |= strcmp(fl->markets[i], r->market) == 0;
    if (!ok || (fl->n_units && strcmp(fl->units[0], r->value->unit) != 0))
        return 0;
    return !fl->n_categories || strcmp(fl->categories[0], r->category) == 0;
}

static size_t s_field_index(const Kmx__V1__QueryResult *a, Kmx__V1__GroupField f) {
    for (size_t i = 0; i < a->n_group_by; i++) {
        if (a->group_by[i] == f)
            return i;
    }
    return SIZE_MAX;
}

// Whether record r belongs to the answer row: its keys and unit.
static int s_in_row(const Kmx__V1__QueryResult *a, const Kmx__V1__Row *row,
                    const Kmx__V1__Record *r) {
    if (strcmp(row->unit, r->value->unit) != 0)
        return 0;
    for (size_t i = 0; i < a->n_group_by; i++) {
        char year[16];
        const char *v = NULL;
        switch (a->group_by[i]) {
        case KMX__V1__GROUP_FIELD__BY_MARKET:
            v = r->market;
            break;
        case KMX__V1__GROUP_FIELD__BY_REGION:
            v = kmx_market_region(r->market);
            break;
        case KMX__V1__GROUP_FIELD__BY_LEVEL:
            v = kmx_market_level_name(kmx_market_level(r->market));
            break;
        case KMX__V1__GROUP_FIELD__BY_CATEGORY:
            v = r->category;
            break;
        case KMX__V1__GROUP_FIELD__BY_YEAR:
            snprintf(year, sizeof year, "%u", r->period->start / 100);
            v = year;
            break;
        default: // BY_UNIT
            v = r->value->unit;
        }
        if (strcmp(v, row->keys[i]) != 0)
            return 0;
    }
    return 1;
}

// Additivity and coverage of every row of answer a to query x, against the records:
// - levels: an answer without a market key has a level key, or every record it could read
//   has one level (WORLD is never added to its countries);
// - a unit that does not add never has a sum; a stock (users, months only here) has one
//   only for a row of one month;
// - coverage: months never exceed the bucket and partial says so; with granularity "any"
//   (nothing left out) the months are exactly those of the row's records in its bucket.
static void s_check_meaning(const s_fixture_t *f, const s_query_t *x,
                            const Kmx__V1__QueryResult *a) {
    size_t at_year = s_field_index(a, KMX__V1__GROUP_FIELD__BY_YEAR);
    if (s_field_index(a, KMX__V1__GROUP_FIELD__BY_MARKET) == SIZE_MAX &&
        s_field_index(a, KMX__V1__GROUP_FIELD__BY_LEVEL) == SIZE_MAX) {
        int first = -1;
        for (size_t i = 0; i < f->n; i++) {
            if (!s_matches(x, &f->recs[i].rec))
                continue;
            int lv = (int)kmx_market_level(f->recs[i].rec.market);
            if (first >= 0 && lv != first)
                fail_msg("records of two levels (%s) added in one row", f->recs[i].rec.market);
            first = lv;
        }
    }
    int exact = x->filter.granularity && strcmp(x->filter.granularity, "any") == 0;
    for (size_t k = 0; k < a->n_rows; k++) {
        const Kmx__V1__Row *row = a->rows[k];
        s_rows_stock += kmx_unit_adds(row->unit) && !row->adds;
        if (!kmx_unit_adds(row->unit) && row->sum)
            fail_msg("a sum of %s, which does not add", row->unit);
        if (!kmx_unit_adds_over_time(row->unit) && row->sum && !(row->has_other && row->other) &&
            !(row->has_months && row->months == 1)) {
            s_print_query(x);
            fail_msg("a sum of %s over %u months", row->unit, row->months);
        }
        if (row->has_months_in_bucket && row->months_in_bucket > 0) {
            assert_true(row->months <= row->months_in_bucket);
            assert_int_equal(row->partial, row->months < row->months_in_bucket);
        }
        if (!exact || (row->has_other && row->other) || (!x->filter.period && at_year == SIZE_MAX))
            continue; // rows without a bucket need not say their months
        // The row's bucket: its year (clipped to the range), else the range, else none.
        uint32_t from = x->filter.period ? x->period.start : 0;
        uint32_t to = x->filter.period ? x->period.end : 999912;
        if (at_year != SIZE_MAX) {
            uint32_t y = (uint32_t)strtoul(row->keys[at_year], NULL, 10);
            from = from > y * 100 + 1 ? from : y * 100 + 1;
            to = to < y * 100 + 12 ? to : y * 100 + 12;
        }
        static unsigned char seen[(S_YEARS + 2) * 12];
        memset(seen, 0, sizeof seen);
        uint32_t months = 0;
        for (size_t i = 0; i < f->n; i++) {
            const Kmx__V1__Record *r = &f->recs[i].rec;
            if (!s_matches(x, r) || !s_in_row(a, row, r))
                continue;
            for (uint32_t m = r->period->start; m <= r->period->end; m = kmx_month_add(m, 1)) {
                int idx = (int)((m / 100 - S_FIRST_YEAR) * 12 + m % 100 - 1);
                if (m >= from && m <= to && idx >= 0 && idx < (int)sizeof seen && !seen[idx])
                    seen[idx] = 1, months++;
            }
        }
        s_rows_covered++;
        if (!row->has_months || row->months != months)
            fail_msg("row %zu (%s %s): covers %u months, its records %u", k,
                     row->n_keys ? row->keys[0] : "", row->unit, row->months, months);
        if (at_year != SIZE_MAX || x->filter.period) {
            kmx_period_t b = {from, to};
            assert_int_equal(row->months_in_bucket, kmx_period_months(&b));
        }
    }
}

// --complete keeps exactly the rows that cover their whole bucket, unchanged (checked
// where nothing ranks or shares rows, which complete then compares differently).
static void s_check_complete(s_fixture_t *f, s_query_t *x, const Kmx__V1__QueryResult *a) {
    if (x->q.has_top || x->q.share)
        return;
    x->q.has_complete = x->q.complete = 1;
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(kmx_answer_query_opt(f->store, &x->req, 1, NULL, &buf, &len), 0);
    x->q.has_complete = x->q.complete = 0;
    Kmx__V1__Response *r = kmx__v1__response__unpack(NULL, len, buf);
    free(buf);
    assert_non_null(r);
    if (r->result_case != KMX__V1__RESPONSE__RESULT_QUERY) {
        // Refused only when a sum, share or growth was asked and every whole row is of a
        // unit that does not add (here): the rows that added were all partial.
        assert_non_null(strstr(r->error->message, "means nothing"));
        for (size_t i = 0; i < a->n_rows; i++) {
            if (!a->rows[i]->partial && a->rows[i]->adds) {
                s_print_query(x);
                fail_msg("complete refused an answer whose whole rows add: %s", r->error->message);
            }
        }
        kmx__v1__response__free_unpacked(r, NULL);
        return;
    }
    size_t j = 0;
    for (size_t i = 0; i < a->n_rows; i++) {
        if (a->rows[i]->partial)
            continue;
        if (j == r->query->n_rows)
            fail_msg("complete dropped a whole row (%zu of %zu kept)", j, a->n_rows);
        // A total's exceeds_total compares it with the parts listed, which complete may
        // leave out; everything else stays as it was.
        Kmx__V1__Row ra = *a->rows[i], rb = *r->query->rows[j];
        ra.has_exceeds_total = ra.exceeds_total = rb.has_exceeds_total = rb.exceeds_total = 0;
        size_t la = kmx__v1__row__get_packed_size(&ra);
        size_t lb = kmx__v1__row__get_packed_size(&rb);
        uint8_t *pa = malloc(la + 1), *pb = malloc(lb + 1);
        assert_non_null(pa);
        assert_non_null(pb);
        kmx__v1__row__pack(&ra, pa);
        kmx__v1__row__pack(&rb, pb);
        if (la != lb || memcmp(pa, pb, la) != 0) {
            s_print_query(x);
            fail_msg("complete changed row %zu: %s %s sum %s count %llu prev %s, now %s %s sum "
                     "%s count %llu prev %s",
                     i, ra.n_keys ? ra.keys[0] : "", ra.unit, ra.sum ? ra.sum : "-",
                     (unsigned long long)ra.count, ra.previous ? ra.previous : "-",
                     rb.n_keys ? rb.keys[0] : "", rb.unit, rb.sum ? rb.sum : "-",
                     (unsigned long long)rb.count, rb.previous ? rb.previous : "-");
        }
        free(pa);
        free(pb);
        j++;
        s_rows_completed++;
    }
    assert_int_equal(j, r->query->n_rows);
    kmx__v1__response__free_unpacked(r, NULL);
}

static void test_folded_answers_equal_month_by_month(void **state) {
    s_fixture_t *f = *state;
    uint64_t folded = 0, answered = 0;
    for (int s = 0; s < S_STORES; s++) {
        s_fill(f);
        for (int i = 0; i < S_QUERIES; i++) {
            s_query_t x;
            s_random_query(f, &x, (uint64_t)i + 1);
            uint8_t *a = NULL, *b = NULL;
            size_t alen = 0, blen = 0;
            uint64_t fa = 0, fb = 0;
            assert_int_equal(kmx_answer_query_opt(f->store, &x.req, 1, &fa, &a, &alen), 0);
            assert_int_equal(kmx_answer_query_opt(f->store, &x.req, 0, &fb, &b, &blen), 0);
            assert_int_equal(fb, 0);
            if (alen != blen || memcmp(a, b, alen) != 0) {
                s_print_query(&x);
                fail_msg("store %d query %d differs when folded (%llu years folded)", s, i,
                         (unsigned long long)fa);
            }
            Kmx__V1__Response *r = kmx__v1__response__unpack(NULL, alen, a);
            assert_non_null(r);
            answered += r->result_case == KMX__V1__RESPONSE__RESULT_QUERY;
            if (r->result_case == KMX__V1__RESPONSE__RESULT_QUERY) {
                s_check_meaning(f, &x, r->query);
                s_check_complete(f, &x, r->query);
            }
            kmx__v1__response__free_unpacked(r, NULL);
            folded += fa;
            free(a);
            free(b);
        }
    }
    // The comparison means something only if many answers folded and succeeded.
    assert_true(answered > S_STORES * S_QUERIES / 3);
    assert_true(folded > 1000);
    printf("%zu rows' months counted from their records, %zu compared under --complete, %zu "
           "rows of a stock over several periods\n",
           s_rows_covered, s_rows_completed, s_rows_stock);
    assert_true(s_rows_covered > 100 && s_rows_completed > 100 && s_rows_stock > 10);
}

// Answers q over f's store; returns the unpacked response, an answer or an error (the
// caller frees it).
static Kmx__V1__Response *s_ask_any(s_fixture_t *f, Kmx__V1__QueryRequest *q) {
    Kmx__V1__Request req = KMX__V1__REQUEST__INIT;
    req.request_id = "fixed";
    req.body_case = KMX__V1__REQUEST__BODY_QUERY;
    req.query = q;
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(kmx_answer_query_opt(f->store, &req, 1, NULL, &buf, &len), 0);
    Kmx__V1__Response *r = kmx__v1__response__unpack(NULL, len, buf);
    free(buf);
    assert_non_null(r);
    return r;
}

// Answers q, which must be answered (not refused).
static Kmx__V1__Response *s_ask(s_fixture_t *f, Kmx__V1__QueryRequest *q) {
    Kmx__V1__Response *r = s_ask_any(f, q);
    assert_int_equal(r->result_case, KMX__V1__RESPONSE__RESULT_QUERY);
    return r;
}

// WORLD, a group and countries of one year, read by year: never one sum of them all, but
// one row per level, the countries' share of the world total; naming countries only, or
// records of one level only, adds no level key.
static void test_levels_are_never_added_without_a_market_key(void **state) {
    s_fixture_t *f = *state;
    static const struct {
        const char *market;
        int64_t amount;
    } recs[] = {{"WORLD", 2918000}, {"JP", 898000}, {"US", 602900}, {"JP+CN+US", 2098800}};
    kmx_testkit_rec_t r[4];
    kmx_store_op_t ops[4];
    kmx_put_outcome_t out[4];
    for (size_t i = 0; i < 4; i++) {
        kmx_testkit_rec_init(&r[i], recs[i].market, 202401, 202412, recs[i].amount, "USD");
        r[i].rec.category = "album";
        ops[i] = (kmx_store_op_t){KMX_STORE_OP_PUT, &r[i].rec};
    }
    kmx_store_close(&f->store);
    kmx_testkit_dir_remove(f->dir);
    assert_int_equal(kmx_testkit_dir_make("kmx-answer-test", f->dir, sizeof f->dir), 0);
    kmx_store_config_t cfg = {.sync = KMX_STORE_SYNC_NONE};
    assert_int_equal(kmx_store_open(f->dir, &cfg, &f->store), 0);
    assert_int_equal(kmx_store_write_batch(f->store, ops, 4, out, NULL), 0);

    Kmx__V1__QueryRequest q = KMX__V1__QUERY_REQUEST__INIT;
    Kmx__V1__Filter filter = KMX__V1__FILTER__INIT;
    Kmx__V1__GroupField by = KMX__V1__GROUP_FIELD__BY_YEAR;
    filter.has_kind = 1;
    filter.kind = KMX__V1__KIND__EXPORT;
    q.filter = &filter;
    q.n_group_by = 1;
    q.group_by = &by;
    q.has_share = q.share = 1;
    Kmx__V1__Response *resp = s_ask(f, &q);
    const Kmx__V1__QueryResult *a = resp->query;
    assert_int_equal(a->n_group_by, 3); // year, level, the added category
    assert_int_equal(a->group_by[1], KMX__V1__GROUP_FIELD__BY_LEVEL);
    static const char *const want[][4] = {{"country", "150.09", "51.44", "total"},
                                          {"group", "209.88", "71.93", "total"},
                                          {"world", "291.8", "100", "total"}};
    assert_int_equal(a->n_rows, 3);
    for (size_t i = 0; i < 3; i++) {
        const Kmx__V1__Row *row = a->rows[i];
        assert_string_equal(row->keys[0], "2024");
        assert_string_equal(row->keys[1], want[i][0]);
        assert_string_equal(row->sum, want[i][1]);
        assert_string_equal(row->share, want[i][2]);
        assert_string_equal(row->share_base, want[i][3]);
    }
    kmx__v1__response__free_unpacked(resp, NULL);

    // Countries only: nothing to keep apart, no level key.
    char *markets[] = {"JP", "US"};
    filter.n_markets = 2;
    filter.markets = markets;
    resp = s_ask(f, &q);
    assert_int_equal(resp->query->n_group_by, 2);
    assert_int_equal(resp->query->n_rows, 1);
    assert_string_equal(resp->query->rows[0]->sum, "150.09");
    kmx__v1__response__free_unpacked(resp, NULL);
    // WORLD alone (records of one level, not named by the filter): no level key either.
    filter.n_markets = 0;
    char *world[] = {"WORLD"};
    filter.n_regions = 0;
    filter.n_markets = 1;
    filter.markets = world;
    resp = s_ask(f, &q);
    assert_int_equal(resp->query->n_group_by, 2);
    assert_string_equal(resp->query->rows[0]->sum, "291.8");
    kmx__v1__response__free_unpacked(resp, NULL);
}

// Monthly users (a stock: adds across markets, not over time) beside monthly dollars: a
// row holding several months of users carries no sum (its average instead), a sum or
// share of it is refused naming the unit, and one month per row adds across markets.
static void test_stock_units_never_add_over_time(void **state) {
    s_fixture_t *f = *state;
    kmx_store_close(&f->store);
    kmx_testkit_dir_remove(f->dir);
    assert_int_equal(kmx_testkit_dir_make("kmx-answer-test", f->dir, sizeof f->dir), 0);
    kmx_store_config_t cfg = {.sync = KMX_STORE_SYNC_NONE};
    assert_int_equal(kmx_store_open(f->dir, &cfg, &f->store), 0);
    kmx_testkit_rec_t r[24];
    kmx_store_op_t ops[24];
    kmx_put_outcome_t out[24];
    size_t n = 0;
    static const char *const markets[] = {"JP", "US"};
    static const char *const units[] = {"users", "USD"};
    for (uint32_t y = 2023; y <= 2024; y++)
        for (size_t m = 0; m < 2; m++)
            for (size_t u = 0; u < 2; u++)
                for (uint32_t mo = 1; mo <= 3; mo++, n++) {
                    kmx_testkit_rec_init(&r[n], markets[m], y * 100 + mo, y * 100 + mo,
                                         (int64_t)(m + 1) * 10000 * mo, units[u]);
                    r[n].rec.category = u == 0 ? "mau" : "revenue";
                    ops[n] = (kmx_store_op_t){KMX_STORE_OP_PUT, &r[n].rec};
                }
    assert_int_equal(kmx_store_write_batch(f->store, ops, n, out, NULL), 0);

    Kmx__V1__QueryRequest q = KMX__V1__QUERY_REQUEST__INIT;
    Kmx__V1__Filter filter = KMX__V1__FILTER__INIT;
    Kmx__V1__Period period = KMX__V1__PERIOD__INIT;
    Kmx__V1__GroupField by = KMX__V1__GROUP_FIELD__BY_MARKET;
    char *users[] = {"users"};
    period.has_start = period.has_end = 1;
    period.start = 202401;
    period.end = 202403;
    filter.has_kind = 1;
    filter.kind = KMX__V1__KIND__EXPORT;
    filter.period = &period;
    filter.n_units = 1;
    filter.units = users;
    q.filter = &filter;
    q.n_group_by = 1;
    q.group_by = &by;
    // Three months of users per market: no sum, the average (JP 2, US 4).
    Kmx__V1__Response *resp = s_ask_any(f, &q);
    assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_QUERY);
    assert_int_equal(resp->query->n_rows, 2);
    assert_null(resp->query->rows[0]->sum);
    assert_false(resp->query->rows[0]->adds);
    assert_string_equal(resp->query->rows[0]->avg, "2");
    assert_string_equal(resp->query->rows[1]->avg, "4");
    kmx__v1__response__free_unpacked(resp, NULL);
    // A sum, share or growth of it is refused naming the unit and what works.
    Kmx__V1__Metric sum = KMX__V1__METRIC__SUM;
    for (int k = 0; k < 3; k++) {
        q.n_metrics = k == 0;
        q.metrics = &sum;
        q.has_share = q.share = k == 1;
        q.has_growth = k == 2;
        q.growth = KMX__V1__GROWTH__YOY;
        resp = s_ask_any(f, &q);
        assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_ERROR);
        assert_int_equal(resp->error->code, KMX__V1__ERROR_CODE__BAD_REQUEST);
        assert_non_null(strstr(resp->error->message, "users"));
        assert_non_null(strstr(resp->error->message, "not over time"));
        assert_non_null(strstr(resp->error->message, "latest"));
        kmx__v1__response__free_unpacked(resp, NULL);
    }
    // One month per row (by period) adds across markets: January is 1 + 2.
    q.n_metrics = 0;
    q.share = q.has_share = 0;
    by = KMX__V1__GROUP_FIELD__BY_PERIOD;
    resp = s_ask_any(f, &q);
    assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_QUERY);
    assert_int_equal(resp->query->n_rows, 3);
    assert_string_equal(resp->query->rows[0]->sum, "3");
    assert_true(resp->query->rows[0]->adds);
    assert_non_null(resp->query->rows[0]->growth); // 2024-01 against 2023-01
    kmx__v1__response__free_unpacked(resp, NULL);
    // One month, by market with shares: JP 1 of 3.
    q.has_growth = 0;
    q.has_share = q.share = 1;
    by = KMX__V1__GROUP_FIELD__BY_MARKET;
    period.end = 202401;
    resp = s_ask_any(f, &q);
    assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_QUERY);
    assert_string_equal(resp->query->rows[0]->share, "33.33");
    kmx__v1__response__free_unpacked(resp, NULL);
    // Users beside dollars, over two years by market: dollars sum, users show their
    // average, and a note says why.
    q.has_share = q.share = 0;
    filter.n_units = 0;
    filter.period = NULL;
    resp = s_ask_any(f, &q);
    assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_QUERY);
    for (size_t i = 0; i < resp->query->n_rows; i++) {
        const Kmx__V1__Row *row = resp->query->rows[i];
        assert_int_equal(row->sum != NULL, strcmp(row->unit, "USD") == 0);
    }
    kmx__v1__response__free_unpacked(resp, NULL);
    q.n_metrics = 1;
    resp = s_ask_any(f, &q);
    assert_int_equal(resp->result_case, KMX__V1__RESPONSE__RESULT_QUERY);
    assert_true(resp->query->n_notes >= 1);
    assert_non_null(strstr(resp->query->notes[0], "not over time"));
    kmx__v1__response__free_unpacked(resp, NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stock_units_never_add_over_time, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_levels_are_never_added_without_a_market_key, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_folded_answers_equal_month_by_month, s_setup,
                                        s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
