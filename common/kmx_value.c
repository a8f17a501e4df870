/*  kmx_value - exact decimal parsing and formatting, and unit normalisation.
    Amounts never pass through floating point: decimal text is read as a 128-bit integer
    and a decimal exponent, then scaled exactly or refused.  */
#include "kmx_value.h"
#include "kmx_err.h"
#include "kmx_unit.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

// Magnitude words as sources write them, before or after the unit: "USD_million",
// "USD million", "KRW bn", "million USD", "users_k".
static const struct {
    const char *name; // the word, any case
    int64_t factor;   // what it multiplies by
} s_magnitudes[] = {{"thousand", 1000LL},
                    {"thousands", 1000LL},
                    {"k", 1000LL},
                    {"th", 1000LL},
                    {"million", 1000000LL},
                    {"millions", 1000000LL},
                    {"mn", 1000000LL},
                    {"mio", 1000000LL},
                    {"mil", 1000000LL},
                    {"m", 1000000LL},
                    {"billion", 1000000000LL},
                    {"billions", 1000000000LL},
                    {"bn", 1000000000LL},
                    {"b", 1000000000LL},
                    {"trillion", 1000000000000LL},
                    {"trillions", 1000000000000LL},
                    {"tn", 1000000000000LL}};

// Other spellings of base units.
static const struct {
    const char *name; // as written, any case
    const char *unit; // the base unit
} s_unit_aliases[] = {{"%", "percent"}, {"pct", "percent"}, {"US$", "USD"},
                      {"won", "KRW"},   {"yen", "JPY"},     {"percentage", "percent"}};

#define S_COUNT(a) (sizeof(a) / sizeof((a)[0]))

static int64_t s_magnitude(const char *word) {
    for (size_t i = 0; i < S_COUNT(s_magnitudes); i++) {
        if (strcasecmp(word, s_magnitudes[i].name) == 0)
            return s_magnitudes[i].factor;
    }
    return 0;
}

// Removes one magnitude word at the end ("USD_million", "USD million") or the start
// ("million USD") of base, returning its factor, or 1 when there is none.
static int64_t s_strip_magnitude(char *base) {
    char *sep = NULL;
    for (char *p = base; *p; p++) {
        if (*p == '_' || *p == ' ')
            sep = p;
    }
    int64_t f = sep ? s_magnitude(sep + 1) : 0;
    if (f) {
        while (sep > base && (sep[-1] == ' ' || sep[-1] == '_'))
            sep--;
        *sep = '\0';
        return f;
    }
    size_t n = strcspn(base, "_ ");
    if (base[n] == '\0')
        return 1;
    char saved = base[n];
    base[n] = '\0';
    f = s_magnitude(base);
    base[n] = saved;
    if (!f)
        return 1;
    size_t skip = n + strspn(base + n, "_ ");
    memmove(base, base + skip, strlen(base + skip) + 1);
    return f;
}

static void s_trim(char *s) {
    size_t n = strlen(s), lead = strspn(s, " \t");
    while (n > lead && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    memmove(s, s + lead, n - lead);
    s[n - lead] = '\0';
}

static int s_korean_unit(const char *text, char *english, size_t size, int64_t *factor);

int kmx_unit_normalize(const char *text, char *unit_out, size_t size, int64_t *multiplier) {
    char korean[KMX_UNIT_MAX];
    int64_t korean_factor = 1;
    if (s_korean_unit(text, korean, sizeof korean, &korean_factor) == 0) {
        // 천달러 is USD thousand: the English unit, then the Korean magnitude.
        int64_t f = 1;
        int rc = kmx_unit_normalize(korean, unit_out, size, &f);
        kmx_unit_class_t cls = rc == 0 ? kmx_unit_class(unit_out) : KMX_UNIT_UNKNOWN;
        if (rc == 0 && korean_factor != 1 && cls != KMX_UNIT_MONEY && cls != KMX_UNIT_COUNT &&
            cls != KMX_UNIT_INDEX)
            return KMX_ERR_INVAL; // the English rule: no magnitude on a percent or a rank
        if (rc == 0 && multiplier)
            *multiplier = f * korean_factor;
        return rc;
    }
    char base[KMX_UNIT_MAX];
    if (!text || strlen(text) >= sizeof base)
        return KMX_ERR_INVAL;
    strcpy(base, text);
    s_trim(base);
    int64_t factor = s_strip_magnitude(base);
    for (char *p = base; *p; p++) {
        if (*p == ' ')
            *p = '_'; // "percent share" is percent_share
    }
    for (size_t i = 0; i < S_COUNT(s_unit_aliases); i++) {
        if (strcasecmp(base, s_unit_aliases[i].name) == 0)
            strcpy(base, s_unit_aliases[i].unit);
    }
    const char *cur = kmx_unit_currency(base);
    if (cur)
        strcpy(base, cur);
    kmx_unit_class_t cls = kmx_unit_class(base);
    if (cls == KMX_UNIT_UNKNOWN)
        return KMX_ERR_INVAL;
    // A million percent or a billion ranks is a mistake in the source, not a magnitude.
    if (factor != 1 && cls != KMX_UNIT_MONEY && cls != KMX_UNIT_COUNT && cls != KMX_UNIT_INDEX)
        return KMX_ERR_INVAL;
    if (strlen(base) >= size)
        return KMX_ERR_OVERFLOW;
    strcpy(unit_out, base);
    if (multiplier)
        *multiplier = factor;
    return 0;
}

// Reads [sign] digits [, digits]* [. digits] into *mant (all digits) and *frac_len.
static int s_read_decimal(const char *p, int *neg, kmx_i128 *mant, int *frac_len) {
    int digits = 0, group = -1, seen_dot = 0;
    *neg = 0;
    *mant = 0;
    *frac_len = 0;
    if (*p == '-' || *p == '+')
        *neg = *p++ == '-';
    for (; *p; p++) {
        if (isdigit((unsigned char)*p)) {
            if (++digits > 37)
                return KMX_ERR_OVERFLOW;
            *mant = *mant * 10 + (*p - '0');
            *frac_len += seen_dot;
            group += group >= 0 && !seen_dot;
        } else if (*p == ',' && !seen_dot && digits > 0 && (group == -1 || group == 3)) {
            group = 0;
        } else if (*p == '.' && !seen_dot && digits > 0) {
            seen_dot = 1;
        } else {
            return KMX_ERR_INVAL;
        }
    }
    if (digits == 0 || (group != -1 && group != 3) || (seen_dot && *frac_len == 0))
        return KMX_ERR_INVAL;
    return 0;
}

int kmx_decimal_parse(const char *text, int64_t multiplier, int64_t *out) {
    if (!text || !out || multiplier <= 0)
        return KMX_ERR_INVAL;
    int neg, frac_len;
    kmx_i128 mant, factor = (kmx_i128)multiplier * KMX_VALUE_SCALE;
    int rc = s_read_decimal(text, &neg, &mant, &frac_len);
    if (rc != 0)
        return rc;
    // Cancel powers of ten between the factor and the fraction before dividing, so the
    // result is exact or visibly not.
    while (frac_len > 0 && factor % 10 == 0) {
        factor /= 10;
        frac_len--;
    }
    for (; frac_len > 0; frac_len--) {
        if (mant % 10 != 0)
            return KMX_ERR_INVAL;
        mant /= 10;
    }
    if (mant > (kmx_i128)INT64_MAX / factor)
        return KMX_ERR_OVERFLOW;
    *out = (int64_t)(neg ? -(mant * factor) : mant * factor);
    return 0;
}

int kmx_decimal_format128(kmx_i128 amount, char *buf, size_t size) {
    char tmp[64];
    char *p = tmp + sizeof tmp;
    *--p = '\0';
    int neg = amount < 0;
    kmx_u128 mag = neg ? -(kmx_u128)amount : (kmx_u128)amount;
    unsigned frac = (unsigned)(mag % KMX_VALUE_SCALE);
    mag /= KMX_VALUE_SCALE;
    if (frac) {
        int width = KMX_VALUE_DIGITS;
        while (frac % 10 == 0) {
            frac /= 10;
            width--;
        }
        for (int i = 0; i < width; i++, frac /= 10)
            *--p = (char)('0' + frac % 10);
        *--p = '.';
    }
    do {
        *--p = (char)('0' + (int)(mag % 10));
        mag /= 10;
    } while (mag);
    if (neg)
        *--p = '-';
    size_t len = strlen(p);
    if (!buf || len >= size)
        return KMX_ERR_OVERFLOW;
    memcpy(buf, p, len + 1);
    return 0;
}

int kmx_decimal_format(int64_t amount, char *buf, size_t size) {
    return kmx_decimal_format128(amount, buf, size);
}

int kmx_decimal_parse128(const char *text, kmx_i128 *out) {
    int neg, frac_len;
    kmx_i128 mant;
    if (!text || !out || strchr(text, ','))
        return KMX_ERR_INVAL;
    int rc = s_read_decimal(text, &neg, &mant, &frac_len);
    if (rc != 0)
        return rc;
    if (frac_len > KMX_VALUE_DIGITS)
        return KMX_ERR_INVAL;
    for (; frac_len < KMX_VALUE_DIGITS; frac_len++) {
        if (mant > ((((kmx_i128)1) << 126) / 10))
            return KMX_ERR_OVERFLOW;
        mant *= 10;
    }
    *out = neg ? -mant : mant;
    return 0;
}

// ---- Korean units -------------------------------------------------------------------
// KOSIS, the customs portal and KOCCA write a magnitude glued to a unit word: 천달러,
// 백만달러, 억원, 조원, 천장. Each is rewritten as the English base unit and its factor.

static const struct {
    const char *word; // UTF-8, spaces removed
    int64_t factor;   // what it multiplies by
} s_korean_magnitudes[] = {
    {"천억", 100000000000LL}, {"백억", 10000000000LL}, {"십억", 1000000000LL}, {"천만", 10000000LL},
    {"백만", 1000000LL},      {"십만", 100000LL},      {"억", 100000000LL},    {"만", 10000LL},
    {"천", 1000LL},           {"조", 1000000000000LL},
};

static const struct {
    const char *word;    // UTF-8
    const char *english; // the unit kmx_unit_normalize knows
} s_korean_units[] = {
    {"원", "KRW"},   {"달러", "USD"},  {"미국달러", "USD"},   {"미달러", "USD"},
    {"US$", "USD"},  {"$", "USD"},     {"엔", "JPY"},         {"위안", "CNY"},
    {"유로", "EUR"}, {"장", "copies"}, {"매", "copies"},      {"명", "people"},
    {"건", "count"}, {"회", "count"},  {"퍼센트", "percent"}, {"%", "percent"},
    {"위", "rank"},
};

// Rewrites a Korean unit ("천달러", "억 원", "(백만달러)") as its English unit and factor.
// Returns 0, or KMX_ERR_INVAL when text is not one.
static int s_korean_unit(const char *text, char *english, size_t size, int64_t *factor) {
    char t[KMX_UNIT_MAX];
    size_t n = 0;
    int korean = 0;
    for (const char *p = text ? text : ""; *p; p++) {
        if (*p == ' ' || *p == '\t' || *p == '(' || *p == ')' || *p == '_')
            continue;
        if (n + 1 >= sizeof t)
            return KMX_ERR_INVAL;
        korean |= (unsigned char)*p >= 0x80;
        t[n++] = *p;
    }
    t[n] = '\0';
    if (!korean)
        return KMX_ERR_INVAL; // ASCII units go the English way
    const char *rest = t;
    *factor = 1;
    for (size_t i = 0; i < S_COUNT(s_korean_magnitudes); i++) {
        size_t k = strlen(s_korean_magnitudes[i].word);
        if (strncmp(t, s_korean_magnitudes[i].word, k) == 0 && t[k] != '\0') {
            *factor = s_korean_magnitudes[i].factor;
            rest = t + k;
            break;
        }
    }
    for (size_t i = 0; i < S_COUNT(s_korean_units); i++) {
        if (strcmp(rest, s_korean_units[i].word) == 0) {
            int w = snprintf(english, size, "%s", s_korean_units[i].english);
            return w > 0 && (size_t)w < size ? 0 : KMX_ERR_INVAL;
        }
    }
    return KMX_ERR_INVAL;
}
