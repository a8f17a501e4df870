/*  kmx_filter - validation, canonical form and matching of record filters. The filter is
    canonicalised once per request so matching each scanned record is plain comparison,
    and so storage receives the same spelling that it stored.  */
#include "kmx_filter.h"
#include "kmx_err.h"
#include "kmx_market.h"
#include "kmx_match.h"
#include "kmx_period.h"
#include "kmx_record.h"
#include "kmx_value.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef enum { S_TEXT, S_MARKET, S_REGION, S_UNIT } s_kind_t;

struct kmx_filter {
    Kmx__V1__Filter wire;   // canonical filter; its lists point at copies owned here
    Kmx__V1__Period period; // canonical period range, when wire.period is set
    int has_gran;           // nonzero when a granularity other than "any" was asked for
    int any;                // "any" was asked for explicitly (else "auto" applies)
    kmx_gran_t gran;        // the granularity asked for
    char gran_name[16];     // its canonical name, pointed at by wire.granularity
};

static void s_free_list(char **list, size_t n) {
    for (size_t i = 0; list && i < n; i++)
        free(list[i]);
    free(list);
}

void kmx_filter_destroy(kmx_filter_t **self_p) {
    if (!self_p || !*self_p)
        return;
    Kmx__V1__Filter *w = &(*self_p)->wire;
    s_free_list(w->markets, w->n_markets);
    s_free_list(w->regions, w->n_regions);
    s_free_list(w->categories, w->n_categories);
    s_free_list(w->items, w->n_items);
    s_free_list(w->companies, w->n_companies);
    s_free_list(w->artists, w->n_artists);
    s_free_list(w->units, w->n_units);
    s_free_list(w->sources, w->n_sources);
    free(*self_p);
    *self_p = NULL;
}

// Writes the canonical spelling of one entry into buf. Returns 0 or KMX_ERR_INVAL.
static int s_canonical(s_kind_t kind, const char *text, char *buf, size_t size) {
    int64_t multiplier = 0;
    switch (kind) {
    case S_MARKET:
        return kmx_market_canonical(text, buf, size);
    case S_REGION:
        return kmx_region_canonical(text, buf, size);
    case S_UNIT:
        // Units compare in base form; one kmx does not know simply matches nothing.
        if (kmx_unit_normalize(text, buf, size, &multiplier) == 0)
            return 0;
        break;
    default:
        break;
    }
    snprintf(buf, size, "%s", text);
    return 0;
}

static const char *s_kind_label(s_kind_t kind) {
    return kind == S_MARKET ? "market" : kind == S_REGION ? "region" : "entry";
}

// Copies a wire list into *out in canonical spelling.
static int s_copy_list(char *const *in, size_t n, s_kind_t kind, char ***out, size_t *n_out,
                       char *why, size_t why_size) {
    if (n > KMX_FILTER_LIST_MAX) {
        snprintf(why, why_size, "a filter list holds %zu entries; at most %d are allowed", n,
                 KMX_FILTER_LIST_MAX);
        return KMX_ERR_TOO_BIG;
    }
    *out = n ? calloc(n, sizeof **out) : NULL;
    if (n && !*out)
        return KMX_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        const char *text = in[i] ? in[i] : "";
        char buf[KMX_FILTER_TEXT_MAX];
        if (strlen(text) >= sizeof buf) {
            snprintf(why, why_size, "a filter %s is longer than %d bytes", s_kind_label(kind),
                     KMX_FILTER_TEXT_MAX - 1);
            return KMX_ERR_TOO_BIG;
        }
        if (s_canonical(kind, text, buf, sizeof buf) != 0) {
            snprintf(why, why_size, "unknown %s '%s' in filter", s_kind_label(kind), text);
            return KMX_ERR_INVAL;
        }
        (*out)[i] = strdup(buf);
        if (!(*out)[i])
            return KMX_ERR_NOMEM;
        (*n_out)++;
    }
    return 0;
}

static int s_copy_lists(const Kmx__V1__Filter *in, Kmx__V1__Filter *w, char *why, size_t sz) {
    int rc = s_copy_list(in->markets, in->n_markets, S_MARKET, &w->markets, &w->n_markets, why, sz);
    if (rc == 0)
        rc = s_copy_list(in->regions, in->n_regions, S_REGION, &w->regions, &w->n_regions, why, sz);
    if (rc == 0)
        rc = s_copy_list(in->categories, in->n_categories, S_TEXT, &w->categories, &w->n_categories,
                         why, sz);
    if (rc == 0)
        rc = s_copy_list(in->items, in->n_items, S_TEXT, &w->items, &w->n_items, why, sz);
    if (rc == 0)
        rc = s_copy_list(in->companies, in->n_companies, S_TEXT, &w->companies, &w->n_companies,
                         why, sz);
    if (rc == 0)
        rc = s_copy_list(in->artists, in->n_artists, S_TEXT, &w->artists, &w->n_artists, why, sz);
    if (rc == 0)
        rc = s_copy_list(in->units, in->n_units, S_UNIT, &w->units, &w->n_units, why, sz);
    if (rc == 0)
        rc = s_copy_list(in->sources, in->n_sources, S_TEXT, &w->sources, &w->n_sources, why, sz);
    return rc;
}

// A period names one end or both; one end alone means that single month or span start.
// Text forms (Period.text, start_text, end_text) are read as the CLI reads --period,
// --from and --to.
static int s_check_period(kmx_filter_t *self, const Kmx__V1__Period *p, char *why, size_t sz) {
    kmx_period_t range;
    int text = kmx_record_period_text(p, 1, &range, why, sz);
    if (text < 0)
        return KMX_ERR_INVAL;
    if (!text && (!p || (!p->has_start && !p->has_end)))
        return 0;
    if (!text)
        range = (kmx_period_t){p->has_start ? p->start : p->end, p->has_end ? p->end : p->start};
    if (range.start > range.end) {
        snprintf(why, sz, "filter period is inverted: %u comes after %u", range.start, range.end);
        return KMX_ERR_INVAL;
    }
    if (!kmx_period_is_valid(&range)) {
        snprintf(why, sz, "filter period %u-%u is not a range of valid months (YYYYMM)",
                 range.start, range.end);
        return KMX_ERR_INVAL;
    }
    kmx__v1__period__init(&self->period);
    self->period.has_start = self->period.has_end = 1;
    self->period.start = range.start;
    self->period.end = range.end;
    self->wire.period = &self->period;
    return 0;
}

static int s_check_scalars(kmx_filter_t *self, const Kmx__V1__Filter *in, char *why, size_t sz) {
    if (in->has_kind && in->kind != KMX__V1__KIND__KIND_UNSPECIFIED) {
        if (in->kind != KMX__V1__KIND__EXPORT && in->kind != KMX__V1__KIND__CONSUMPTION) {
            snprintf(why, sz, "unknown kind %d in filter", (int)in->kind);
            return KMX_ERR_INVAL;
        }
        self->wire.has_kind = 1;
        self->wire.kind = in->kind;
    }
    const char *g = in->granularity;
    self->any = g && strcasecmp(g, "any") == 0;
    if (g && g[0] != '\0' && !self->any && strcasecmp(g, "auto") != 0) {
        if (strlen(g) > 32 || kmx_gran_parse(g, &self->gran) != 0) {
            snprintf(why, sz,
                     "unknown granularity '%.32s' (auto, year, half, quarter, month, range or "
                     "any)",
                     g);
            return KMX_ERR_INVAL;
        }
        self->has_gran = 1;
        snprintf(self->gran_name, sizeof self->gran_name, "%s", kmx_gran_name(self->gran));
        self->wire.granularity = self->gran_name;
    }
    return s_check_period(self, in->period, why, sz);
}

int kmx_filter_new(const Kmx__V1__Filter *in, kmx_filter_t **out, char *why, size_t why_size) {
    if (!out || !why || why_size == 0)
        return KMX_ERR_INVAL;
    *out = NULL;
    why[0] = '\0';
    kmx_filter_t *self = calloc(1, sizeof *self);
    if (!self)
        return KMX_ERR_NOMEM;
    kmx__v1__filter__init(&self->wire);
    int rc = 0;
    if (in) {
        rc = s_check_scalars(self, in, why, why_size);
        if (rc == 0)
            rc = s_copy_lists(in, &self->wire, why, why_size);
    }
    if (rc != 0) {
        kmx_filter_destroy(&self);
        return rc;
    }
    *out = self;
    return 0;
}

int kmx_filter_granularity(const kmx_filter_t *self, kmx_gran_t *out) {
    if (self->has_gran) {
        *out = self->gran;
        return 1;
    }
    return self->any ? 2 : 0;
}

int kmx_filter_period(const kmx_filter_t *self, kmx_period_t *out) {
    if (!self->wire.period)
        return 0;
    out->start = self->period.start;
    out->end = self->period.end;
    return 1;
}

const Kmx__V1__Filter *kmx_filter_wire(const kmx_filter_t *self) {
    return self ? &self->wire : NULL;
}

int kmx_filter_match(const kmx_filter_t *self, const Kmx__V1__Record *rec) {
    return self ? kmx_match_record(&self->wire, rec) : rec != NULL;
}
