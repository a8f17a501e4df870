/*  kmx_unit - the unit table: every base unit kmx accepts, its class and whether it adds.
    Three kinds of entry: the exact names below, currency codes, and two patterns
    ("percent" or "percent_<words>", "<unit>_per_capita"). A unit not matched here is
    refused at import, so an unknown unit never reaches a sum.  */
#include "kmx_unit.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#define S_COUNT(a) (sizeof(a) / sizeof((a)[0]))

// Currencies kmx knows. A short list on purpose: an unknown code is more often a typo.
static const char *const s_currencies[] = {"AUD", "BRL", "CAD", "CHF", "CNY", "EUR", "GBP",
                                           "HKD", "IDR", "INR", "JPY", "KRW", "MXN", "MYR",
                                           "PHP", "SGD", "THB", "TWD", "USD", "VND"};

typedef struct {
    const char *name;       // base unit, exact (lower case)
    kmx_unit_class_t cls;   // what it measures
    unsigned adds : 1;      // sum and share meaningful across markets and items
    unsigned over_time : 1; // consecutive periods add (a flow, not a level)
    unsigned negative : 1;  // the unit itself may be negative
} s_unit_t;

// Named units, sorted by name. Why each count adds or not (docs/data-model.md):
//   albums, concerts, performances, attendees, copies, streams, tracks, units, views:
//     things that happened in the period; different markets and periods hold different
//     ones, so they add both ways.
//   users, listeners, people: a level measured in the period (monthly active users).
//     Users of different markets are different people, so they add across markets, but
//     twelve months of MAU are not a year's users: they never add over time. Users of two
//     apps overlap; an item-by-item answer keeps apps apart.
//   artists, countries: how many distinct ones; the same artist or country is counted
//     again in another market or period, so neither sums nor shares mean anything.
//   respondents, count: a count of answers or things, adds both ways.
static const s_unit_t s_units[] = {
    {"albums", KMX_UNIT_COUNT, 1, 1, 0},       {"artists", KMX_UNIT_COUNT, 0, 0, 0},
    {"attendees", KMX_UNIT_COUNT, 1, 1, 0},    {"concerts", KMX_UNIT_COUNT, 1, 1, 0},
    {"copies", KMX_UNIT_COUNT, 1, 1, 0},       {"count", KMX_UNIT_COUNT, 1, 1, 0},
    {"countries", KMX_UNIT_COUNT, 0, 0, 0},    {"days", KMX_UNIT_DURATION, 0, 0, 0},
    {"hours", KMX_UNIT_DURATION, 0, 0, 0},     {"index_points", KMX_UNIT_INDEX, 0, 0, 0},
    {"listeners", KMX_UNIT_COUNT, 1, 0, 0},    {"minutes", KMX_UNIT_DURATION, 0, 0, 0},
    {"months", KMX_UNIT_DURATION, 0, 0, 0},    {"people", KMX_UNIT_COUNT, 1, 0, 0},
    {"performances", KMX_UNIT_COUNT, 1, 1, 0}, {"rank", KMX_UNIT_RANK, 0, 0, 0},
    {"respondents", KMX_UNIT_COUNT, 1, 1, 0},  {"streams", KMX_UNIT_COUNT, 1, 1, 0},
    {"tracks", KMX_UNIT_COUNT, 1, 1, 0},       {"units", KMX_UNIT_COUNT, 1, 1, 0},
    {"users", KMX_UNIT_COUNT, 1, 0, 0},        {"views", KMX_UNIT_COUNT, 1, 1, 0},
};

// Words after "percent_" that make the percentage a rate of change, which may be negative:
// percent_yoy, percent_mom, percent_qoq, percent_change, percent_cagr, percent_growth.
static const char *const s_growth_words[] = {"cagr", "change", "growth", "hoh",
                                             "mom",  "qoq",    "wow",    "yoy"};

static const s_unit_t s_money = {"", KMX_UNIT_MONEY, 1, 1, 0};
static const s_unit_t s_percent = {"", KMX_UNIT_PERCENT, 0, 0, 0};
static const s_unit_t s_growth = {"", KMX_UNIT_GROWTH, 0, 0, 1};
static const s_unit_t s_per_capita = {"", KMX_UNIT_PER_CAPITA, 0, 0, 0};

#define S_PER_CAPITA "_per_capita"

const char *kmx_unit_currency(const char *code) {
    for (size_t i = 0; code && i < S_COUNT(s_currencies); i++) {
        if (strcasecmp(code, s_currencies[i]) == 0)
            return s_currencies[i];
    }
    return NULL;
}

int kmx_unit_is_currency(const char *unit) {
    const char *c = kmx_unit_currency(unit);
    return c && strcmp(c, unit) == 0;
}

static const s_unit_t *s_named(const char *name, size_t n) {
    for (size_t i = 0; i < S_COUNT(s_units); i++) {
        if (strlen(s_units[i].name) == n && strncmp(s_units[i].name, name, n) == 0)
            return &s_units[i];
    }
    return NULL;
}

// "percent" or "percent_" followed by lower-case words joined by single underscores;
// growth when one of the words is a rate-of-change word.
static const s_unit_t *s_percent_unit(const char *u) {
    if (strncmp(u, "percent", 7) != 0 || (u[7] != '\0' && u[7] != '_'))
        return NULL;
    if (u[7] == '\0')
        return &s_percent;
    const s_unit_t *found = &s_percent;
    for (const char *w = u + 8;;) {
        size_t n = 0;
        while (islower((unsigned char)w[n]) || isdigit((unsigned char)w[n]))
            n++;
        if (n == 0 || (w[n] != '\0' && w[n] != '_'))
            return NULL;
        for (size_t i = 0; i < S_COUNT(s_growth_words); i++) {
            if (strlen(s_growth_words[i]) == n && strncmp(w, s_growth_words[i], n) == 0)
                found = &s_growth;
        }
        if (w[n] == '\0')
            return found;
        w += n + 1;
    }
}

static const s_unit_t *s_lookup(const char *unit) {
    if (!unit)
        return NULL;
    if (kmx_unit_is_currency(unit))
        return &s_money;
    const s_unit_t *u = s_percent_unit(unit);
    if (u)
        return u;
    size_t len = strlen(unit), pc = strlen(S_PER_CAPITA);
    if (len > pc && strcmp(unit + len - pc, S_PER_CAPITA) == 0) {
        char base[48];
        if (len - pc >= sizeof base)
            return NULL;
        memcpy(base, unit, len - pc);
        base[len - pc] = '\0';
        const s_unit_t *b = s_named(base, len - pc);
        int ok = kmx_unit_is_currency(base) || (b && b->cls == KMX_UNIT_COUNT);
        return ok ? &s_per_capita : NULL;
    }
    return s_named(unit, len);
}

kmx_unit_class_t kmx_unit_class(const char *unit) {
    const s_unit_t *u = s_lookup(unit);
    return u ? u->cls : KMX_UNIT_UNKNOWN;
}

const char *kmx_unit_class_name(kmx_unit_class_t cls) {
    switch (cls) {
    case KMX_UNIT_MONEY:
        return "money";
    case KMX_UNIT_COUNT:
        return "count";
    case KMX_UNIT_PERCENT:
        return "percent";
    case KMX_UNIT_GROWTH:
        return "growth";
    case KMX_UNIT_RANK:
        return "rank";
    case KMX_UNIT_INDEX:
        return "index";
    case KMX_UNIT_PER_CAPITA:
        return "per_capita";
    case KMX_UNIT_DURATION:
        return "duration";
    default:
        return "unknown";
    }
}

int kmx_unit_adds(const char *unit) {
    const s_unit_t *u = s_lookup(unit);
    return u && u->adds;
}

int kmx_unit_adds_over_time(const char *unit) {
    const s_unit_t *u = s_lookup(unit);
    return u && u->adds && u->over_time;
}

int kmx_unit_may_be_negative(const char *unit) {
    const s_unit_t *u = s_lookup(unit);
    return u && u->negative;
}

int kmx_unit_is_known(const char *unit) {
    return s_lookup(unit) != NULL;
}
