/*  kmx_match - record filters, see kmx_match.h.  */
#include "kmx_match.h"

#include "kmx_err.h"
#include "kmx_market.h"

#include <strings.h>

int kmx_match_in_list(char *const *list, size_t n, const char *value) {
    if (n == 0)
        return 1;
    const char *v = value ? value : "";
    for (size_t i = 0; i < n; i++) {
        if (list[i] && strcasecmp(list[i], v) == 0)
            return 1;
    }
    return 0;
}

int kmx_match_period(const Kmx__V1__Filter *f, kmx_period_t *out) {
    if (!f->period || (!f->period->has_start && !f->period->has_end))
        return 0;
    out->start = f->period->has_start ? f->period->start : f->period->end;
    out->end = f->period->has_end ? f->period->end : f->period->start;
    return 1;
}

int kmx_match_gran(const Kmx__V1__Filter *f, kmx_gran_t *gran) {
    const char *g = f->granularity;
    if (!g || g[0] == '\0' || strcasecmp(g, "any") == 0)
        return 0;
    return kmx_gran_parse(g, gran) == 0 ? 1 : -1;
}

int kmx_match_check(const Kmx__V1__Filter *f) {
    if (!f)
        return 0;
    kmx_period_t p;
    kmx_gran_t g;
    if (kmx_match_period(f, &p) && !kmx_period_is_valid(&p))
        return KMX_ERR_INVAL;
    return kmx_match_gran(f, &g) < 0 ? KMX_ERR_INVAL : 0;
}

static int s_match_period(const Kmx__V1__Filter *f, const Kmx__V1__Record *rec) {
    kmx_period_t outer, inner;
    kmx_gran_t want;
    int has_period = kmx_match_period(f, &outer);
    int has_gran = kmx_match_gran(f, &want) > 0;
    if (!has_period && !has_gran)
        return 1;
    if (!rec->period)
        return 0;
    inner.start = rec->period->start;
    inner.end = rec->period->end;
    if (has_period && !kmx_period_contains(&outer, &inner))
        return 0;
    return !has_gran || kmx_period_granularity(&inner) == want;
}

int kmx_match_record(const Kmx__V1__Filter *f, const Kmx__V1__Record *rec) {
    if (!rec)
        return 0;
    if (!f)
        return 1;
    if (f->has_kind && f->kind != KMX__V1__KIND__KIND_UNSPECIFIED && rec->kind != f->kind)
        return 0;
    if (!s_match_period(f, rec))
        return 0;
    const char *unit = rec->value ? rec->value->unit : NULL;
    const char *market = rec->market ? rec->market : "";
    return kmx_match_in_list(f->markets, f->n_markets, market) &&
           (f->n_regions == 0 ||
            kmx_match_in_list(f->regions, f->n_regions, kmx_market_region(market))) &&
           kmx_match_in_list(f->categories, f->n_categories, rec->category) &&
           kmx_match_in_list(f->items, f->n_items, rec->item) &&
           kmx_match_in_list(f->companies, f->n_companies, rec->company) &&
           kmx_match_in_list(f->artists, f->n_artists, rec->artist) &&
           kmx_match_in_list(f->units, f->n_units, unit) &&
           kmx_match_in_list(f->sources, f->n_sources, rec->source);
}
