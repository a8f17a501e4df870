/*  kmx_store_rollup - aggregates answered from the roll-ups instead of the records: spans
    (years, halves, quarters, ranges) from `rollups`, single months from `rollups_month`,
    where one entry holds a whole year of them.

    A shaped answer may also *fold* a year of months into one row whose period is the whole
    year. For the granularity rule and like-for-like growth a year of months is then the
    same as its twelve months exactly when (a) every month of the year has records in the
    answer group, (b) the group has no other span at all (so nothing can overlap the year
    or be compared with it as if it were a published annual total) and (c) the query asks
    for whole years or no range (kmx_answer.c), so no year straddles the asked range or a
    growth base, and a base year and the year it is compared with fold alike. Folding
    turns the 12 x markets x categories month rows of a year into one row per answer
    group, so a group-by over a year of a million monthly records reads and groups a few
    hundred entries.  */
#include "kmx_store_int.h"

#include "kmx_err.h"
#include "kmx_log.h"
#include "kmx_market.h"
#include "kmx_match.h"
#include "kmx_mem.h"
#include "kmx_period.h"
#include "kmx_schema.h"
#include "kmx_unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define S_GKEY_MAX 1024      // bytes in an answer-group key
#define S_ALL_MONTHS 0x0fffu // one bit per month, January = bit 0

// The filter made ready for roll-up keys, decided once per aggregate.
typedef struct {
    const Kmx__V1__Filter *f; // the filter, or NULL (lists are tested per entry)
    int has_period;           // the filter names a period
    kmx_period_t outer;       // that period
    int has_gran;             // the filter restricts granularity
    kmx_gran_t want;          // the wanted granularity
    int kind;                 // the kind byte every key starts with, or -1
} s_rf_t;

// An answer-group key.
typedef struct {
    char *key;  // the bytes (malloc'd)
    size_t len; // bytes in key
} s_key_t;

// A year of months waiting for the fold decision (full fold mode only).
typedef struct {
    char *gkey;                        // answer-group key, then the year (malloc'd)
    size_t glen;                       // bytes in gkey
    uint32_t year;                     // the year
    unsigned months;                   // months with records in the read range
    kmx_rkey_rollup_t k;               // the decoded roll-up key
    kmx_i128 sum[KMX_ROLLUP_MONTHS];   // per month, 0 outside the read range
    uint64_t count[KMX_ROLLUP_MONTHS]; // per month, 0 outside the read range
} s_cand_t;

// One aggregate's state.
typedef struct {
    MDB_txn *txn;                  // the read transaction
    s_rf_t rf;                     // the filter
    const kmx_store_fold_t *fold;  // fold options, or NULL
    kmx_group_t *group;            // rows are added here
    s_key_t *spanned;              // answer-group keys (no year) that have a span, sorted
    size_t n_spanned, cap_spanned; // held and allocated
    s_cand_t *cands;               // years of months awaiting the fold decision
    size_t n_cands, cap_cands;     // held and allocated
    uint64_t folded;               // years of months added as one row
} s_agg_t;

static void s_rf_init(const Kmx__V1__Filter *f, s_rf_t *rf) {
    memset(rf, 0, sizeof *rf);
    rf->f = f;
    rf->kind = -1;
    if (!f)
        return;
    rf->has_period = kmx_match_period(f, &rf->outer);
    rf->has_gran = kmx_match_gran(f, &rf->want) > 0;
    if (f->has_kind && f->kind != KMX__V1__KIND__KIND_UNSPECIFIED)
        rf->kind = (int)f->kind & 0xff;
}

// Tests every dimension but the period. Item, company, artist and source lists never
// reach here (kmx_store_filter_is_rollup), so only records without them would match.
static int s_match_dims(const s_rf_t *rf, const kmx_rkey_rollup_t *k) {
    const Kmx__V1__Filter *f = rf->f;
    if (!f)
        return 1;
    if (rf->kind >= 0 && k->kind != (uint8_t)rf->kind)
        return 0;
    return kmx_match_in_list(f->markets, f->n_markets, k->market) &&
           (f->n_regions == 0 ||
            kmx_match_in_list(f->regions, f->n_regions, kmx_market_region(k->market))) &&
           kmx_match_in_list(f->categories, f->n_categories, k->category) &&
           kmx_match_in_list(f->units, f->n_units, k->unit);
}

// Tests one period against the filter's range and granularity.
static int s_match_period(const s_rf_t *rf, uint32_t start, uint32_t end) {
    kmx_period_t inner = {start, end};
    if (rf->has_period && !kmx_period_contains(&rf->outer, &inner))
        return 0;
    return !rf->has_gran || kmx_period_granularity(&inner) == rf->want;
}

// Adds (sum, count) for the period start..end of k to the group.
static int s_add(s_agg_t *a, const kmx_rkey_rollup_t *k, uint32_t start, uint32_t end, kmx_i128 sum,
                 uint64_t count) {
    Kmx__V1__Record rec = KMX__V1__RECORD__INIT;
    Kmx__V1__Period period = KMX__V1__PERIOD__INIT;
    Kmx__V1__Value value = KMX__V1__VALUE__INIT;
    period.has_start = period.has_end = 1;
    period.start = start;
    period.end = end;
    value.unit = (char *)k->unit;
    rec.has_kind = 1;
    rec.kind = (Kmx__V1__Kind)k->kind;
    rec.period = &period;
    rec.market = (char *)k->market;
    rec.category = (char *)k->category;
    rec.value = &value;
    return kmx_group_add(a->group, &rec, sum, count, 0);
}

// Appends text and its NUL to buf. Returns 0 or KMX_ERR_OVERFLOW.
static int s_put_text(char *buf, size_t *len, const char *text) {
    size_t n = strlen(text) + 1;
    if (*len + n > S_GKEY_MAX)
        return KMX_ERR_OVERFLOW;
    memcpy(buf + *len, text, n);
    *len += n;
    return 0;
}

// Builds the key of k's answer group, leaving out the year (groups one year apart are
// compared by growth, so they fold or not together). Returns 0 or KMX_ERR_OVERFLOW.
static int s_group_key(const kmx_store_fold_t *fold, const kmx_rkey_rollup_t *k, char *buf,
                       size_t *len) {
    *len = 0;
    for (size_t i = 0; i < fold->n_fields; i++) {
        const char *v = NULL;
        switch (fold->fields[i]) {
        case KMX__V1__GROUP_FIELD__BY_MARKET:
            v = k->market;
            break;
        case KMX__V1__GROUP_FIELD__BY_REGION:
            v = kmx_market_region(k->market);
            break;
        case KMX__V1__GROUP_FIELD__BY_CATEGORY:
            v = k->category;
            break;
        case KMX__V1__GROUP_FIELD__BY_UNIT:
            v = k->unit;
            break;
        case KMX__V1__GROUP_FIELD__BY_LEVEL:
            v = kmx_market_level_name(kmx_market_level(k->market));
            break;
        default: // BY_YEAR: left out (above); nothing else reaches the roll-ups
            continue;
        }
        if (s_put_text(buf, len, v ? v : "") != 0)
            return KMX_ERR_OVERFLOW;
    }
    return s_put_text(buf, len, k->unit);
}

static int s_bytes_cmp(const char *a, size_t alen, const char *b, size_t blen) {
    int c = memcmp(a, b, alen < blen ? alen : blen);
    return c != 0 ? c : (alen > blen) - (alen < blen);
}

// Remembers that the answer group of k has a span.
static int s_mark_spanned(s_agg_t *a, const kmx_rkey_rollup_t *k) {
    char buf[S_GKEY_MAX];
    size_t len = 0;
    if (s_group_key(a->fold, k, buf, &len) != 0)
        return KMX_ERR_INVAL;
    if (kmx_reserve((void **)&a->spanned, &a->cap_spanned, a->n_spanned, sizeof *a->spanned, 64))
        return KMX_ERR_NOMEM;
    s_key_t *at = &a->spanned[a->n_spanned];
    at->key = malloc(len);
    if (!at->key)
        return KMX_ERR_NOMEM;
    memcpy(at->key, buf, len);
    at->len = len;
    a->n_spanned++;
    return 0;
}

static int s_key_cmp(const void *x, const void *y) {
    const s_key_t *a = x, *b = y;
    return s_bytes_cmp(a->key, a->len, b->key, b->len);
}

// Whether the answer group key has a span (spanned sorted by s_key_cmp).
static int s_is_spanned(const s_agg_t *a, const char *key, size_t len) {
    s_key_t want = {(char *)key, len};
    return a->n_spanned > 0 &&
           bsearch(&want, a->spanned, a->n_spanned, sizeof *a->spanned, s_key_cmp) != NULL;
}

// Positions cur at the first key of the filter's kind whose period starts at lo or
// later, and calls fn on every entry until the kind changes or a period starts after the
// filter's end. Returns 0 or a kmx code.
static int s_walk(s_agg_t *a, MDB_dbi dbi, uint32_t lo,
                  int (*fn)(s_agg_t *, const kmx_rkey_rollup_t *, const MDB_val *)) {
    MDB_cursor *cur = NULL;
    int rc = mdb_cursor_open(a->txn, dbi, &cur);
    if (rc != 0)
        return kmx_store_mdb_err(rc, "cursor open");
    uint8_t seek[5];
    MDB_val key = {0, seek}, val;
    if (a->rf.kind >= 0) {
        seek[0] = (uint8_t)a->rf.kind;
        for (int b = 0; b < 4; b++)
            seek[1 + b] = (uint8_t)(lo >> (24 - 8 * b));
        key.mv_size = sizeof seek;
        rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    } else {
        rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
    }
    int err = 0;
    for (; rc == 0 && err == 0; rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        kmx_rkey_rollup_t k;
        if (kmx_rkey_rollup_parse(key.mv_data, key.mv_size, &k) != 0) {
            kmx_log_warn("aggregate skipped a roll-up key that does not decode");
            continue;
        }
        // Keys sort by kind, then period start: past the filter's end nothing more matches.
        if (a->rf.kind >= 0 &&
            (k.kind != (uint8_t)a->rf.kind || (a->rf.has_period && k.start > a->rf.outer.end)))
            break;
        err = fn(a, &k, &val);
    }
    mdb_cursor_close(cur);
    if (err != 0)
        return err;
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : kmx_store_mdb_err(rc, "aggregate");
}

// One entry of `rollups`.
static int s_on_span(s_agg_t *a, const kmx_rkey_rollup_t *k, const MDB_val *val) {
    kmx_i128 sum = 0;
    uint64_t count = 0;
    if (kmx_derived_rollup_decode(val, &sum, &count) != 0) {
        kmx_log_warn("aggregate skipped a roll-up entry that does not decode");
        return 0;
    }
    if (!s_match_dims(&a->rf, k) || !s_match_period(&a->rf, k->start, k->end))
        return 0;
    if (a->fold && a->fold->by_period) {
        int err = s_mark_spanned(a, k);
        if (err != 0)
            return err;
    }
    return s_add(a, k, k->start, k->end, sum, count);
}

// Adds every month of a year with records (sum and count 0 outside the read range).
static int s_add_months(s_agg_t *a, const kmx_rkey_rollup_t *k, const kmx_i128 *sum,
                        const uint64_t *count) {
    int err = 0;
    for (int m = 0; m < KMX_ROLLUP_MONTHS && err == 0; m++) {
        if (count[m] > 0)
            err = s_add(a, k, k->start + (uint32_t)m, k->start + (uint32_t)m, sum[m], count[m]);
    }
    return err;
}

// Adds a year of months as one row of the whole year.
static int s_add_year(s_agg_t *a, const kmx_rkey_rollup_t *k, const kmx_i128 *sum,
                      const uint64_t *count) {
    kmx_i128 total = 0;
    uint64_t n = 0;
    for (int m = 0; m < KMX_ROLLUP_MONTHS; m++) {
        if (__builtin_add_overflow(total, sum[m], &total))
            return KMX_ERR_OVERFLOW;
        n += count[m];
    }
    a->folded++;
    return n > 0 ? s_add(a, k, k->start, k->start + KMX_ROLLUP_MONTHS - 1, total, n) : 0;
}

// Keeps a year of months for the fold decision.
static int s_keep(s_agg_t *a, const kmx_rkey_rollup_t *k, unsigned months, const kmx_i128 *sum,
                  const uint64_t *count) {
    char buf[S_GKEY_MAX + 4];
    size_t len = 0;
    if (s_group_key(a->fold, k, buf, &len) != 0)
        return KMX_ERR_INVAL;
    uint32_t year = k->start / 100;
    memcpy(buf + len, &year, sizeof year);
    len += sizeof year;
    if (kmx_reserve((void **)&a->cands, &a->cap_cands, a->n_cands, sizeof *a->cands, 256))
        return KMX_ERR_NOMEM;
    s_cand_t *c = &a->cands[a->n_cands];
    c->gkey = malloc(len);
    if (!c->gkey)
        return KMX_ERR_NOMEM;
    memcpy(c->gkey, buf, len);
    c->glen = len;
    c->year = year;
    c->months = months;
    c->k = *k;
    memcpy(c->sum, sum, sizeof c->sum);
    memcpy(c->count, count, sizeof c->count);
    a->n_cands++;
    return 0;
}

// One entry of `rollups_month`.
static int s_on_months(s_agg_t *a, const kmx_rkey_rollup_t *k, const MDB_val *val) {
    kmx_i128 sum[KMX_ROLLUP_MONTHS];
    uint64_t count[KMX_ROLLUP_MONTHS];
    if (!s_match_dims(&a->rf, k))
        return 0; // before decoding: most entries of a year belong to other groups
    if (k->start % 100 != 1 || kmx_derived_months_decode(val, sum, count) != 0) {
        kmx_log_warn("aggregate skipped a monthly roll-up entry that does not decode");
        return 0;
    }
    unsigned months = 0;
    for (int m = 0; m < KMX_ROLLUP_MONTHS; m++) {
        uint32_t month = k->start + (uint32_t)m;
        if (count[m] > 0 && s_match_period(&a->rf, month, month))
            months |= 1u << m;
        else
            sum[m] = 0, count[m] = 0;
    }
    if (months == 0)
        return 0;
    if (!a->fold || !kmx_unit_adds_over_time(k->unit))
        return s_add_months(a, k, sum, count); // a stock's months never fold into a year
    if (!a->fold->by_period)
        return s_add_year(a, k, sum, count); // no period in the rows: only the sum counts
    return s_keep(a, k, months, sum, count);
}

static int s_cand_cmp(const void *x, const void *y) {
    const s_cand_t *a = x, *b = y;
    return s_bytes_cmp(a->gkey, a->glen, b->gkey, b->glen);
}

// Decides, per answer group and year, whether its months fold, and adds them.
static int s_flush_cands(s_agg_t *a) {
    qsort(a->cands, a->n_cands, sizeof *a->cands, s_cand_cmp);
    if (a->n_spanned > 0)
        qsort(a->spanned, a->n_spanned, sizeof *a->spanned, s_key_cmp);
    int err = 0;
    for (size_t i = 0; i < a->n_cands && err == 0;) {
        size_t j = i;
        unsigned months = 0;
        for (; j < a->n_cands && s_cand_cmp(&a->cands[i], &a->cands[j]) == 0; j++)
            months |= a->cands[j].months;
        const s_cand_t *c = &a->cands[i];
        int fold = months == S_ALL_MONTHS && !s_is_spanned(a, c->gkey, c->glen - sizeof c->year);
        for (; i < j && err == 0; i++) {
            const s_cand_t *d = &a->cands[i];
            err = fold ? s_add_year(a, &d->k, d->sum, d->count)
                       : s_add_months(a, &d->k, d->sum, d->count);
        }
    }
    return err;
}

static void s_agg_fini(s_agg_t *a) {
    for (size_t i = 0; i < a->n_spanned; i++)
        free(a->spanned[i].key);
    free(a->spanned);
    for (size_t i = 0; i < a->n_cands; i++)
        free(a->cands[i].gkey);
    free(a->cands);
}

int kmx_store_rollup_aggregate(const kmx_store_t *self, MDB_txn *txn, const Kmx__V1__Filter *filter,
                               const kmx_store_fold_t *fold, kmx_group_t *group, uint64_t *folded) {
    s_agg_t a;
    memset(&a, 0, sizeof a);
    a.txn = txn;
    a.fold = fold;
    a.group = group;
    s_rf_init(filter, &a.rf);
    uint32_t lo = a.rf.has_period ? a.rf.outer.start : 0;
    int err = 0;
    if (!a.rf.has_gran || a.rf.want != KMX_GRAN_MONTH)
        err = s_walk(&a, self->derived.rollups, lo, s_on_span);
    if (err == 0 && (!a.rf.has_gran || a.rf.want == KMX_GRAN_MONTH))
        err = s_walk(&a, self->derived.rollups_month, lo - lo % 100 + (lo ? 1 : 0), s_on_months);
    if (err == 0 && a.n_cands > 0)
        err = s_flush_cands(&a);
    *folded = a.folded;
    s_agg_fini(&a);
    return err;
}
