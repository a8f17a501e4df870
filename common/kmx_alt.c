/*  kmx_alt - the rule for alternative measurements of one quantity (kmx_alt.h).  */
#include "kmx_alt.h"

#include "kmx_err.h"
#include "kmx_period.h"
#include "kmx_record.h"
#include "kmx_value.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *s_str(const char *s) {
    return s ? s : "";
}

size_t kmx_alt_item_base(const char *item) {
    size_t n = item ? strlen(item) : 0;
    if (n < 3 || item[n - 1] != ')')
        return n;
    int depth = 0;
    size_t i = n;
    while (i > 0) {
        char c = item[--i];
        depth += c == ')' ? 1 : c == '(' ? -1 : 0;
        if (depth == 0)
            break;
    }
    if (depth != 0 || i == 0 || item[i - 1] != ' ')
        return n; // unbalanced, or the whole item is in parentheses, or "x(y)"
    while (i > 0 && item[i - 1] == ' ')
        i--;
    return i > 0 ? i : n;
}

static int s_cmp_str(const char *a, const char *b) {
    return strcmp(s_str(a), s_str(b));
}

static int s_cmp_item(const char *a, const char *b) {
    size_t na = kmx_alt_item_base(a), nb = kmx_alt_item_base(b);
    int c = memcmp(s_str(a), s_str(b), na < nb ? na : nb);
    return c != 0 ? c : (na > nb) - (na < nb);
}

static uint32_t s_start(const Kmx__V1__Record *r) {
    return r->period ? r->period->start : 0;
}

static uint32_t s_end(const Kmx__V1__Record *r) {
    return r->period ? r->period->end : 0;
}

static const char *s_unit(const Kmx__V1__Record *r) {
    return r->value ? r->value->unit : NULL;
}

// Orders records by their quantity (everything but the source); 0 means one quantity.
static int s_cmp_quantity(const Kmx__V1__Record *a, const Kmx__V1__Record *b) {
    int c;
    if (a->kind != b->kind)
        return a->kind < b->kind ? -1 : 1;
    if (s_start(a) != s_start(b))
        return s_start(a) < s_start(b) ? -1 : 1;
    if (s_end(a) != s_end(b))
        return s_end(a) < s_end(b) ? -1 : 1;
    if ((c = s_cmp_str(a->market, b->market)) != 0 ||
        (c = s_cmp_str(a->category, b->category)) != 0 ||
        (c = s_cmp_str(a->company, b->company)) != 0 ||
        (c = s_cmp_str(a->artist, b->artist)) != 0 || (c = s_cmp_str(s_unit(a), s_unit(b))) != 0)
        return c;
    return s_cmp_item(a->item, b->item);
}

int kmx_alt_cmp_quantity(const Kmx__V1__Record *a, const Kmx__V1__Record *b) {
    return s_cmp_quantity(a, b);
}

int kmx_alt_same_quantity(const Kmx__V1__Record *a, const Kmx__V1__Record *b) {
    return a && b && s_cmp_quantity(a, b) == 0;
}

int kmx_alt_is_alternative(const Kmx__V1__Record *a, const Kmx__V1__Record *b) {
    return a && b && s_cmp_quantity(a, b) == 0 && s_cmp_str(a->source, b->source) != 0;
}

typedef struct {
    const Kmx__V1__Record *rec; // borrowed
    size_t index;               // position in the caller's array
} s_entry_t;

static int s_cmp_entry(const void *x, const void *y) {
    const s_entry_t *a = x, *b = y;
    int c = s_cmp_quantity(a->rec, b->rec);
    return c != 0 ? c : (a->index > b->index) - (a->index < b->index);
}

int kmx_alt_find(const Kmx__V1__Record *const *recs, size_t n, size_t *first, size_t *second) {
    if (n < 2)
        return 0;
    s_entry_t *e = malloc(n * sizeof *e);
    if (!e)
        return KMX_ERR_NOMEM;
    for (size_t i = 0; i < n; i++)
        e[i] = (s_entry_t){recs[i], i};
    qsort(e, n, sizeof *e, s_cmp_entry);
    int found = 0;
    // Within a run of one quantity, any record whose source differs from the run's first.
    for (size_t run = 0, i = 1; i <= n && !found; i++) {
        if (i == n || s_cmp_quantity(e[run].rec, e[i].rec) != 0) {
            run = i;
            continue;
        }
        if (s_cmp_str(e[run].rec->source, e[i].rec->source) != 0) {
            size_t a = e[run].index, b = e[i].index;
            *first = a < b ? a : b;
            *second = a < b ? b : a;
            found = 1;
        }
    }
    free(e);
    return found;
}

int kmx_alt_mark(const Kmx__V1__Record *const *recs, size_t n, unsigned char *marks) {
    if (n > 0)
        memset(marks, 0, n);
    if (n < 2)
        return 0;
    s_entry_t *e = malloc(n * sizeof *e);
    if (!e)
        return KMX_ERR_NOMEM;
    for (size_t i = 0; i < n; i++)
        e[i] = (s_entry_t){recs[i], i};
    qsort(e, n, sizeof *e, s_cmp_entry);
    int marked = 0;
    for (size_t run = 0, i = 1; i <= n; i++) {
        if (i < n && s_cmp_quantity(e[run].rec, e[i].rec) == 0)
            continue;
        int mixed = 0; // the run [run, i) holds more than one source
        for (size_t k = run + 1; k < i && !mixed; k++)
            mixed = s_cmp_str(e[run].rec->source, e[k].rec->source) != 0;
        for (size_t k = run; mixed && k < i; k++, marked++)
            marks[e[k].index] = 1;
        run = i;
    }
    free(e);
    return marked;
}

int kmx_alt_describe(const Kmx__V1__Record *a, const Kmx__V1__Record *b, char *why, size_t size) {
    char period[KMX_PERIOD_TEXT_MAX] = "", va[48] = "?", vb[48] = "?";
    kmx_period_t p = {s_start(a), s_end(a)};
    if (kmx_period_format(&p, period, sizeof period) != 0)
        snprintf(period, sizeof period, "?");
    if (a->value)
        kmx_decimal_format(a->value->amount, va, sizeof va);
    if (b->value)
        kmx_decimal_format(b->value->amount, vb, sizeof vb);
    int n = snprintf(why, size,
                     "%s %s %s %s '%.*s' has alternative measurements, never added: pick one "
                     "with --source, or compare them with --by source: '%s' (%s %s), '%s' "
                     "(%s %s)",
                     kmx_kind_name(a->kind), period, s_str(a->market), s_str(a->category),
                     (int)kmx_alt_item_base(a->item), s_str(a->item), s_str(a->source), va,
                     s_str(s_unit(a)), s_str(b->source), vb, s_str(s_unit(b)));
    return n < 0 || (size_t)n >= size ? KMX_ERR_OVERFLOW : 0;
}

// Ranks of status and confidence: higher is preferred.
static int s_status_rank(const Kmx__V1__Record *r) {
    if (!r->has_status)
        return 1;
    switch (r->status) {
    case KMX__V1__STATUS__FINAL:
        return 3;
    case KMX__V1__STATUS__REVISED:
        return 2;
    case KMX__V1__STATUS__PRELIMINARY:
        return 0;
    default:
        return 1;
    }
}

static int s_confidence_rank(const Kmx__V1__Record *r) {
    return r->has_confidence ? (int)r->confidence : -1;
}

static int s_trailing_zeros(const Kmx__V1__Record *r) {
    int64_t v = r->value ? r->value->amount : 0;
    int n = 0;
    while (v != 0 && v % 10 == 0 && n < 19) {
        v /= 10;
        n++;
    }
    return v == 0 ? 19 : n;
}

int kmx_alt_prefer_cmp(const Kmx__V1__Record *a, const Kmx__V1__Record *b) {
    int c = s_status_rank(b) - s_status_rank(a);
    if (c == 0)
        c = s_confidence_rank(b) - s_confidence_rank(a);
    if (c == 0)
        c = s_trailing_zeros(a) - s_trailing_zeros(b);
    return c != 0 ? c : s_cmp_str(a->source, b->source);
}

int kmx_alt_describe_set_aside(const Kmx__V1__Record *kept, const Kmx__V1__Record *aside, char *buf,
                               size_t size) {
    char period[KMX_PERIOD_TEXT_MAX] = "", vk[48] = "?", va[48] = "?";
    kmx_period_t p = {s_start(aside), s_end(aside)};
    if (kmx_period_format(&p, period, sizeof period) != 0)
        snprintf(period, sizeof period, "?");
    if (kept->value)
        kmx_decimal_format(kept->value->amount, vk, sizeof vk);
    if (aside->value)
        kmx_decimal_format(aside->value->amount, va, sizeof va);
    int n =
        snprintf(buf, size, "%s %s %s %s '%.*s': kept %s %s from '%s', set aside %s from '%s'",
                 kmx_kind_name(aside->kind), period, s_str(aside->market), s_str(aside->category),
                 (int)kmx_alt_item_base(aside->item), s_str(aside->item), vk, s_str(s_unit(kept)),
                 s_str(kept->source), va, s_str(aside->source));
    return n < 0 || (size_t)n >= size ? KMX_ERR_OVERFLOW : 0;
}
