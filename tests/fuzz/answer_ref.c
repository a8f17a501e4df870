/*  answer_ref - see answer_ref.h. Everything here follows docs/queries.md:
    - rows: the records of the range, split by (market, category, unit); sum and count;
    - levels: WORLD is the total of the countries: its own row, never ranked nor folded
      into "(other)"; countries are compared only with countries;
    - share: a country's sum in percent of the WORLD row of its unit (and category when
      it was added) when the answer has one, else of its partition's total (unit, and
      category when added; countries only), two decimals, half away from zero, before the
      top-N cut; WORLD's own share is 100;
    - top N: per partition the N largest country sums; "(other)" sums the rest (count,
      share, and growth when every member has a base);
    - growth: the whole range against the range moved back 12 months (YoY) or by its own
      length (PoP); the base counts only when its months, moved forward, are exactly the
      row's months (like for like) and its sum is not zero;
    - coverage: every row but "(other)" reports the months its records cover out of the
      months of its bucket (the asked range), partial when fewer;
    - complete: a partial row is left out before anything else, as if its records were
      not there: it is not ranked, not in "(other)", and a partial total is no share
      base (the countries' shares are then of their own sum).  */
#include "answer_ref.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define S_GROUPS_MAX 512
#define S_MONTHS 1200 // month index 0 = 2000-01
#define S_WORDS (S_MONTHS / 64 + 1)

typedef struct {
    const char *market, *category, *unit;
    int64_t sum;
    uint64_t count;
    uint64_t months[S_WORDS]; // months holding a record
} s_group_t;

typedef struct {
    const char *market; // "(other)" for the other row
    const char *category, *unit;
    int other;
    int64_t sum;
    uint64_t count;
    int64_t share; // hundredths of a percent
    int has_prev, has_growth;
    int64_t prev, growth;
    int matched;     // seen in the answer
    int total;       // WORLD: the total of the countries, never ranked
    uint32_t months; // months of the asked range holding a record
} s_row_t;

static int s_month(uint32_t yyyymm) {
    uint32_t y = yyyymm / 100, m = yyyymm % 100;
    if (y < 2000 || y >= 2000 + S_MONTHS / 12 || m < 1 || m > 12)
        return -1;
    return (int)((y - 2000) * 12 + m - 1);
}

__extension__ typedef __int128 s_wide_t; // sums times 10^4 may exceed 64 bits

// num / den in percent, two decimals, half away from zero, as hundredths of a percent.
static int64_t s_pct(int64_t num, int64_t den) {
    s_wide_t n = (s_wide_t)num * 10000, q = n / den, r = n % den;
    if (r < 0)
        r = -r;
    s_wide_t d = den < 0 ? -(s_wide_t)den : den;
    if (2 * r >= d)
        q += ((n < 0) != (den < 0)) ? -1 : 1;
    return (int64_t)q;
}

// Parses a decimal string into an integer scaled by 10^digits. Returns 0, or -1 when text
// is not such a decimal (or has more fractional digits).
static int s_parse(const char *text, int digits, int64_t *out) {
    if (!text || !*text)
        return -1;
    int neg = *text == '-';
    const char *p = text + neg;
    int64_t v = 0;
    int frac = -1;
    for (; *p; p++) {
        if (*p == '.' && frac < 0) {
            frac = 0;
            continue;
        }
        if (*p < '0' || *p > '9' || v > INT64_MAX / 20)
            return -1;
        if (frac >= 0 && ++frac > digits)
            return -1;
        v = v * 10 + (*p - '0');
    }
    for (int i = frac < 0 ? 0 : frac; i < digits; i++)
        v *= 10;
    *out = neg ? -v : v;
    return 0;
}

static s_group_t *s_group(s_group_t *g, size_t *n, const answer_ref_rec_t *r) {
    for (size_t i = 0; i < *n; i++)
        if (!strcmp(g[i].market, r->market) && !strcmp(g[i].category, r->category) &&
            !strcmp(g[i].unit, r->unit))
            return &g[i];
    if (*n == S_GROUPS_MAX)
        return NULL;
    s_group_t *x = &g[(*n)++];
    memset(x, 0, sizeof *x);
    x->market = r->market;
    x->category = r->category;
    x->unit = r->unit;
    return x;
}

typedef struct {
    const Kmx__V1__Filter *f;
    int from, to; // month indexes
} s_scope_t;

static int s_selected(const s_scope_t *s, const answer_ref_rec_t *r, int shift) {
    if (r->start != r->end)
        return 0; // granularity month: only monthly records
    int m = s_month(r->start);
    if (m < 0 || m < s->from - shift || m > s->to - shift)
        return 0;
    // Filter lists match without regard to case (docs/queries.md).
    if (s->f->n_categories && strcasecmp(s->f->categories[0], r->category))
        return 0;
    if (s->f->n_units && strcasecmp(s->f->units[0], r->unit))
        return 0;
    if (!s->f->n_markets)
        return 1;
    for (size_t i = 0; i < s->f->n_markets; i++)
        if (!strcmp(s->f->markets[i], r->market))
            return 1;
    return 0;
}

// Groups the records selected with the range moved back by shift months; months are
// recorded moved forward again.
static int s_collect(const answer_ref_rec_t *recs, size_t n, const s_scope_t *s, int shift,
                     s_group_t *g, size_t *ng) {
    *ng = 0;
    for (size_t i = 0; i < n; i++) {
        if (!s_selected(s, &recs[i], shift))
            continue;
        s_group_t *x = s_group(g, ng, &recs[i]);
        if (!x)
            return -1;
        int m = s_month(recs[i].start) + shift;
        x->sum += recs[i].amount;
        x->count++;
        x->months[m / 64] |= 1ull << (m % 64);
    }
    return 0;
}

static int s_same_partition(const s_row_t *a, const s_row_t *b, int added) {
    return !strcmp(a->unit, b->unit) && (!added || !strcmp(a->category, b->category)) &&
           a->total == b->total;
}

// The share base of row r: the WORLD row of its unit and category, else the sum of the
// countries of its partition. Returns the base.
static int64_t s_share_base(const s_row_t *rows, size_t n, const s_row_t *r, int added) {
    int64_t total = 0;
    for (size_t j = 0; j < n; j++) {
        if (rows[j].total && !strcmp(rows[j].unit, r->unit) &&
            (!added || !strcmp(rows[j].category, r->category)))
            return rows[j].sum;
        if (s_same_partition(r, &rows[j], added))
            total += rows[j].sum;
    }
    return total;
}

static int s_by_sum_desc(const void *a, const void *b) {
    const s_row_t *x = a, *y = b;
    return x->sum < y->sum ? 1 : x->sum > y->sum ? -1 : 0;
}

// Is q a query the reference covers? Fills the scope.
static int s_covered(const Kmx__V1__QueryRequest *q, s_scope_t *s, const answer_ref_rec_t *recs,
                     size_t n) {
    const Kmx__V1__Filter *f = q->filter;
    if (!f || !f->period || !f->period->has_start || !f->period->has_end || f->period->text ||
        f->period->start_text || f->period->end_text)
        return 0;
    if ((f->has_kind && f->kind != KMX__V1__KIND__EXPORT) || f->n_regions || f->n_items ||
        f->n_companies || f->n_artists || f->n_units > 1 || f->n_sources || f->n_categories > 1)
        return 0;
    if (!f->granularity || strcmp(f->granularity, "month"))
        return 0;
    if ((f->n_categories && !*f->categories[0]) ||
        (f->n_units && strcasecmp(f->units[0], "USD") && strcasecmp(f->units[0], "KRW")))
        return 0;
    for (size_t i = 0; i < f->n_markets; i++) {
        int ok = 0;
        for (size_t k = 0; k < n && !ok; k++)
            ok = !strcmp(f->markets[i], recs[k].market);
        if (!ok)
            return 0; // canonicalisation is not the reference's business
    }
    if (q->n_group_by != 1 || q->group_by[0] != KMX__V1__GROUP_FIELD__BY_MARKET || q->n_metrics ||
        q->series || q->latest || (q->has_unallocated && q->unallocated) || (q->other && !q->top) ||
        (q->has_growth && q->growth != KMX__V1__GROWTH__GROWTH_NONE &&
         q->growth != KMX__V1__GROWTH__YOY && q->growth != KMX__V1__GROWTH__PERIOD_OVER_PERIOD))
        return 0;
    s->f = f;
    s->from = s_month(f->period->start);
    s->to = s_month(f->period->end);
    return s->from >= 0 && s->to >= s->from;
}

#define S_WHY(...) (snprintf(why, why_size, __VA_ARGS__), -1)

int answer_ref_check(const answer_ref_rec_t *recs, size_t n, const Kmx__V1__QueryRequest *q,
                     const Kmx__V1__Response *resp, char *why, size_t why_size) {
    s_scope_t s;
    if (!s_covered(q, &s, recs, n))
        return 1;
    int growth = q->has_growth ? (int)q->growth : 0;
    int shift = growth == KMX__V1__GROWTH__YOY ? 12 : s.to - s.from + 1;
    if (growth && s.from - shift < 0)
        return 1;
    int added = q->filter->n_categories != 1;
    static s_group_t cur[S_GROUPS_MAX], base[S_GROUPS_MAX];
    static s_row_t rows[S_GROUPS_MAX * 2];
    size_t ncur = 0, nbase = 0, nrows = 0;
    if (s_collect(recs, n, &s, 0, cur, &ncur) != 0 ||
        (growth && s_collect(recs, n, &s, shift, base, &nbase) != 0))
        return 1;
    uint32_t in_bucket = (uint32_t)(s.to - s.from + 1);
    int complete = q->has_complete && q->complete;
    for (size_t i = 0; i < ncur; i++) {
        uint32_t months = 0;
        for (size_t w = 0; w < S_WORDS; w++)
            months += (uint32_t)__builtin_popcountll(cur[i].months[w]);
        if (complete && months < in_bucket)
            continue; // a partial bucket is left out before ranking and shares
        s_row_t *r = &rows[nrows++];
        memset(r, 0, sizeof *r);
        r->market = cur[i].market;
        r->category = cur[i].category;
        r->unit = cur[i].unit;
        r->sum = cur[i].sum;
        r->count = cur[i].count;
        r->total = !strcmp(r->market, "WORLD");
        r->months = months;
        for (size_t j = 0; growth && j < nbase; j++)
            if (!strcmp(base[j].market, r->market) && !strcmp(base[j].category, r->category) &&
                !strcmp(base[j].unit, r->unit) &&
                !memcmp(base[j].months, cur[i].months, sizeof cur[i].months)) {
                r->has_prev = 1;
                r->prev = base[j].sum;
            }
    }
    // A ranking or a share needs one unit per category (per partition when the category
    // was added, else over the whole answer): BAD_REQUEST otherwise.
    if (q->share || q->top) {
        for (size_t i = 0; i < nrows; i++)
            for (size_t j = 0; j < nrows; j++)
                if ((!added || !strcmp(rows[i].category, rows[j].category)) &&
                    strcmp(rows[i].unit, rows[j].unit)) {
                    if (resp && resp->result_case == KMX__V1__RESPONSE__RESULT_ERROR &&
                        resp->error->code == KMX__V1__ERROR_CODE__BAD_REQUEST &&
                        resp->error->message && strstr(resp->error->message, "conflicting units"))
                        return 0;
                    return S_WHY("mixed units in a ranking or share must be refused (%s and %s)",
                                 rows[i].unit, rows[j].unit);
                }
    }
    // Shares, then top N and "(other)", per partition.
    size_t n_kept = nrows;
    for (size_t i = 0; i < nrows; i++) {
        int64_t of = rows[i].total ? rows[i].sum : s_share_base(rows, nrows, &rows[i], added);
        rows[i].share = of ? s_pct(rows[i].sum, of) : 0;
    }
    if (q->top) {
        static s_row_t part[S_GROUPS_MAX], kept[S_GROUPS_MAX * 2];
        size_t nk = 0;
        int done[S_GROUPS_MAX] = {0};
        for (size_t i = 0; i < nrows; i++) {
            if (done[i])
                continue;
            if (rows[i].total) { // a total is kept, never ranked
                done[i] = 1;
                kept[nk++] = rows[i];
                continue;
            }
            size_t np = 0;
            int64_t total = s_share_base(rows, nrows, &rows[i], added);
            for (size_t j = i; j < nrows; j++)
                if (!done[j] && s_same_partition(&rows[i], &rows[j], added)) {
                    done[j] = 1;
                    part[np++] = rows[j];
                }
            qsort(part, np, sizeof *part, s_by_sum_desc);
            if (np > q->top && part[q->top - 1].sum == part[q->top].sum)
                return 1; // a tie at the cut: which row is kept depends on key order
            for (size_t j = 0; j < np && j < q->top; j++)
                kept[nk++] = part[j];
            if (q->other && np > q->top) {
                s_row_t *o = &kept[nk++];
                memset(o, 0, sizeof *o);
                o->market = "(other)";
                o->category = part[0].category;
                o->unit = part[0].unit;
                o->other = 1;
                o->has_prev = 1;
                for (size_t j = q->top; j < np; j++) {
                    o->sum += part[j].sum;
                    o->count += part[j].count;
                    o->prev += part[j].prev;
                    o->has_prev &= part[j].has_prev;
                }
                o->share = total ? s_pct(o->sum, total) : 0;
            }
        }
        memcpy(rows, kept, nk * sizeof *kept);
        n_kept = nk;
    }
    for (size_t i = 0; i < n_kept; i++) {
        rows[i].has_prev = growth && rows[i].has_prev;
        rows[i].has_growth = rows[i].has_prev && rows[i].prev != 0;
        if (rows[i].has_growth)
            rows[i].growth = s_pct(rows[i].sum - rows[i].prev, rows[i].prev);
    }

    // The answer.
    if (!resp || resp->result_case != KMX__V1__RESPONSE__RESULT_QUERY)
        return S_WHY("not a query result: %s",
                     resp && resp->result_case == KMX__V1__RESPONSE__RESULT_ERROR &&
                             resp->error->message
                         ? resp->error->message
                         : "?");
    const Kmx__V1__QueryResult *a = resp->query;
    size_t want_fields = added ? 2 : 1;
    if (a->n_group_by != want_fields || a->group_by[0] != KMX__V1__GROUP_FIELD__BY_MARKET ||
        (added && a->group_by[1] != KMX__V1__GROUP_FIELD__BY_CATEGORY))
        return S_WHY("group_by has %zu fields, want market%s", a->n_group_by,
                     added ? ", category" : "");
    if (a->n_rows != n_kept)
        return S_WHY("%zu rows, the reference has %zu", a->n_rows, n_kept);
    for (size_t i = 0; i < a->n_rows; i++) {
        const Kmx__V1__Row *r = a->rows[i];
        if (r->n_keys != want_fields || !r->unit)
            return S_WHY("row %zu: %zu keys", i, r->n_keys);
        const char *category = added ? r->keys[1] : q->filter->categories[0];
        s_row_t *w = NULL;
        for (size_t j = 0; j < n_kept && !w; j++)
            if (!rows[j].matched && !strcmp(rows[j].market, r->keys[0]) &&
                !strcasecmp(rows[j].category, category) && !strcmp(rows[j].unit, r->unit) &&
                rows[j].other == (r->has_other && r->other))
                w = &rows[j];
        if (!w)
            return S_WHY("row %zu (%s %s %s) is not in the reference", i, r->keys[0], category,
                         r->unit);
        w->matched = 1;
        int64_t v = 0;
        if (s_parse(r->sum, 4, &v) != 0 || v != w->sum || r->count != w->count)
            return S_WHY("%s %s %s: sum %s count %llu, want %lld/10^4 count %llu", w->market,
                         category, w->unit, r->sum ? r->sum : "(none)",
                         (unsigned long long)r->count, (long long)w->sum,
                         (unsigned long long)w->count);
        if (q->share && (s_parse(r->share, 2, &v) != 0 || v != w->share))
            return S_WHY("%s %s %s: share %s, want %lld/100", w->market, category, w->unit,
                         r->share ? r->share : "(none)", (long long)w->share);
        if (!q->share && r->share)
            return S_WHY("%s: a share nobody asked for", w->market);
        if (w->other
                ? r->has_months
                : !r->has_months || r->months != w->months || r->months_in_bucket != in_bucket ||
                      r->partial != (w->months < in_bucket))
            return S_WHY("%s %s %s: covers %u of %u months%s, want %u of %u", w->market, category,
                         w->unit, r->months, r->months_in_bucket, r->partial ? " (partial)" : "",
                         w->months, in_bucket);
        if ((r->previous != NULL) != w->has_prev ||
            (w->has_prev && (s_parse(r->previous, 4, &v) != 0 || v != w->prev)))
            return S_WHY("%s %s %s: previous %s, want %s%lld/10^4", w->market, category, w->unit,
                         r->previous ? r->previous : "(none)", w->has_prev ? "" : "none, not ",
                         (long long)w->prev);
        if ((r->growth != NULL) != w->has_growth ||
            (w->has_growth && (s_parse(r->growth, 2, &v) != 0 || v != w->growth)))
            return S_WHY("%s %s %s: growth %s, want %s%lld/100", w->market, category, w->unit,
                         r->growth ? r->growth : "(none)", w->has_growth ? "" : "none, not ",
                         (long long)w->growth);
    }
    return 0;
}
