/*  kmx_record - validation and normalisation of records before they reach storage.
    Validation names the field at fault and says why, because these messages go back
    to whoever sent the data, row by row.  */
#include "kmx_record.h"
#include "kmx_err.h"
#include "kmx_market.h"
#include "kmx_period.h"
#include "kmx_unit.h"
#include "kmx_value.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int s_fail(kmx_record_problem_t *pr, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int s_fail(kmx_record_problem_t *pr, const char *field, const char *fmt, ...) {
    if (pr) {
        pr->field = field;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(pr->reason, sizeof pr->reason, fmt, ap);
        va_end(ap);
    }
    return KMX_ERR_INVAL;
}

// Returns nonzero when s is well-formed UTF-8 without control characters.
static int s_text_is_clean(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int n = *p < 0x80             ? 0
                : (*p & 0xE0) == 0xC0 ? 1
                : (*p & 0xF0) == 0xE0 ? 2
                : (*p & 0xF8) == 0xF0 ? 3
                                      : -1;
        if (n < 0 || (n == 0 && (*p < 0x20 || *p == 0x7F)) || (n == 1 && *p < 0xC2))
            return 0;
        for (int i = 1; i <= n; i++) {
            if ((p[i] & 0xC0) != 0x80)
                return 0;
        }
        p += n + 1;
    }
    return 1;
}

// Trims surrounding white space in place; an empty result becomes NULL (absent).
static void s_trim(char **sp) {
    char *s = *sp;
    if (!s)
        return;
    size_t len = strlen(s), start = 0;
    while (start < len && isspace((unsigned char)s[start]))
        start++;
    while (len > start && isspace((unsigned char)s[len - 1]))
        len--;
    memmove(s, s + start, len - start);
    s[len - start] = '\0';
    if (*s == '\0') {
        free(s);
        *sp = NULL;
    }
}

// Checks a free-text field: trimmed, clean UTF-8, at most max bytes, present if required.
static int s_check_text(char **sp, const char *field, size_t max, int required,
                        kmx_record_problem_t *pr) {
    s_trim(sp);
    if (!*sp)
        return required ? s_fail(pr, field, "%s is required", field) : 0;
    if (strlen(*sp) > max)
        return s_fail(pr, field, "%s is longer than %zu bytes", field, max);
    if (!s_text_is_clean(*sp))
        return s_fail(pr, field, "%s is not valid UTF-8 text (control characters?)", field);
    return 0;
}

static int s_replace(char **sp, const char *text) {
    char *copy = strdup(text);
    if (!copy)
        return KMX_ERR_NOMEM;
    free(*sp);
    *sp = copy;
    return 0;
}

static int s_check_market(Kmx__V1__Record *rec, kmx_record_problem_t *pr) {
    char canon[KMX_MARKET_MAX];
    s_trim(&rec->market);
    if (!rec->market && rec->kind == KMX__V1__KIND__CONSUMPTION)
        return s_replace(&rec->market, "KR");
    if (!rec->market)
        return s_fail(pr, "market", "market is required for export records");
    if (kmx_market_canonical(rec->market, canon, sizeof canon) != 0)
        return s_fail(pr, "market",
                      "unknown market '%.60s' (use an ISO country code such as JP, WORLD, a "
                      "region, or a group such as JP+CN+US)",
                      rec->market);
    return strcmp(canon, rec->market) == 0 ? 0 : s_replace(&rec->market, canon);
}

static int s_check_category(Kmx__V1__Record *rec, kmx_record_problem_t *pr) {
    const char *name = rec->kind == KMX__V1__KIND__CONSUMPTION ? "dimension" : "category";
    int rc = s_check_text(&rec->category, "category", KMX_CATEGORY_MAX, 1, pr);
    if (rc != 0)
        return rc;
    for (char *p = rec->category; *p; p++) {
        *p = (char)tolower((unsigned char)*p);
        if (*p == ' ' || *p == '-')
            *p = '_';
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_'))
            return s_fail(pr, "category", "%s '%.60s' may hold only letters, digits and '_'", name,
                          rec->category);
    }
    return 0;
}

// Words naming a quantity that can fall below zero, matched as whole words of the category
// ("company_operating_profit") or the item ("FLO app users YoY change", "trade balance").
static const char *const s_negative_words[] = {
    "balance", "change", "changes", "deficit", "difference", "earnings", "ebitda",
    "growth",  "income", "loss",    "losses",  "profit",     "profits",  "surplus"};

// Returns nonzero when text holds one of s_negative_words as a whole word, any case.
static int s_names_negative_quantity(const char *text) {
    for (const char *p = text; p && *p;) {
        while (*p && !isalnum((unsigned char)*p))
            p++;
        size_t n = 0;
        while (isalnum((unsigned char)p[n]))
            n++;
        for (size_t i = 0; n && i < sizeof s_negative_words / sizeof s_negative_words[0]; i++) {
            if (strlen(s_negative_words[i]) == n && strncasecmp(p, s_negative_words[i], n) == 0)
                return 1;
        }
        p += n;
    }
    return 0;
}

int kmx_record_may_be_negative(const char *unit, const char *category, const char *item) {
    if (kmx_unit_may_be_negative(unit))
        return 1;
    kmx_unit_class_t cls = kmx_unit_class(unit);
    if (cls != KMX_UNIT_MONEY && cls != KMX_UNIT_COUNT && cls != KMX_UNIT_PERCENT)
        return 0; // ranks, indexes, durations and per-capita figures are never negative
    return s_names_negative_quantity(category) || s_names_negative_quantity(item);
}

static int s_check_value(const Kmx__V1__Record *rec, kmx_record_problem_t *pr) {
    const Kmx__V1__Value *v = rec->value;
    if (!v || !v->has_amount)
        return s_fail(pr, "value", "value is required");
    if (!v->unit || !kmx_unit_is_known(v->unit))
        return s_fail(pr, "unit", "unknown unit '%.40s'", v->unit ? v->unit : "");
    if (v->amount < 0 && !kmx_record_may_be_negative(v->unit, rec->category, rec->item))
        return s_fail(pr, "value",
                      "%s amount must not be negative (allowed for growth units such as "
                      "percent_yoy, or a category or item naming a profit, loss, balance or "
                      "change)",
                      v->unit);
    if (strcmp(v->unit, "rank") == 0 && v->amount < 1)
        return s_fail(pr, "value", "a rank starts at 1");
    return 0;
}

static int s_check_as_of(const char *s, kmx_record_problem_t *pr) {
    unsigned y, m, d;
    char tail;
    static const unsigned mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (!s)
        return 0;
    if (strlen(s) != 10 || sscanf(s, "%4u-%2u-%2u%c", &y, &m, &d, &tail) != 3 || s[4] != '-' ||
        s[7] != '-' || y < KMX_YEAR_MIN || y > KMX_YEAR_MAX || m < 1 || m > 12 || d < 1 ||
        d > mdays[m - 1])
        return s_fail(pr, "as_of", "as_of '%.20s' is not a date YYYY-MM-DD", s);
    return 0;
}

static int s_check_enums(const Kmx__V1__Record *rec, kmx_record_problem_t *pr) {
    if (rec->has_status && (rec->status < 0 || rec->status > KMX__V1__STATUS__FINAL))
        return s_fail(pr, "status", "unknown status %d", (int)rec->status);
    if (rec->has_confidence && (rec->confidence < 0 || rec->confidence > KMX__V1__CONFIDENCE__HIGH))
        return s_fail(pr, "confidence", "unknown confidence %d", (int)rec->confidence);
    return 0;
}

// Parses one text form for the named field into *out, or says why not.
static int s_period_text(const char *field, const char *text, kmx_period_t *out, char *why,
                         size_t size) {
    if (kmx_period_parse(text, out) == 0)
        return 0;
    snprintf(why, size,
             "%s '%.40s' is not a period (e.g. 2023, 2025-H1, 2024-Q3, 2024-03, "
             "2023-01/2023-04)",
             field, text);
    return KMX_ERR_INVAL;
}

int kmx_record_period_text(const Kmx__V1__Period *p, int open, kmx_period_t *out, char *why,
                           size_t size) {
    if (!p || (!p->text && !p->start_text && !p->end_text))
        return 0;
    if (p->has_start || p->has_end) {
        snprintf(why, size, "a period gives either start/end or its text forms, not both");
        return KMX_ERR_INVAL;
    }
    kmx_period_t q;
    if (p->text) {
        if (p->start_text || p->end_text) {
            snprintf(why, size, "a period gives text or start_text/end_text, not both");
            return KMX_ERR_INVAL;
        }
        return s_period_text("period", p->text, out, why, size) == 0 ? 1 : KMX_ERR_INVAL;
    }
    if (!open && (!p->start_text || !p->end_text)) {
        snprintf(why, size, "a record's period needs both start_text and end_text (or text)");
        return KMX_ERR_INVAL;
    }
    *out = (kmx_period_t){KMX_YEAR_MIN * 100 + 1, KMX_YEAR_MAX * 100 + 12};
    if (p->start_text) {
        if (s_period_text("start_text", p->start_text, &q, why, size) != 0)
            return KMX_ERR_INVAL;
        out->start = q.start;
    }
    if (p->end_text) {
        if (s_period_text("end_text", p->end_text, &q, why, size) != 0)
            return KMX_ERR_INVAL;
        out->end = q.end;
    }
    if (out->end < out->start) {
        snprintf(why, size, "end_text '%.40s' comes before start_text '%.40s'", p->end_text,
                 p->start_text);
        return KMX_ERR_INVAL;
    }
    return 1;
}

// Replaces a record's period text forms by the numbers they name.
static int s_period_resolve(Kmx__V1__Period *p, kmx_record_problem_t *pr) {
    kmx_period_t q;
    char why[sizeof pr->reason];
    int rc = kmx_record_period_text(p, 0, &q, why, sizeof why);
    if (rc < 0)
        return s_fail(pr, "period", "%s", why);
    if (rc == 0)
        return 0;
    free(p->text);
    free(p->start_text);
    free(p->end_text);
    p->text = p->start_text = p->end_text = NULL;
    p->has_start = p->has_end = 1;
    p->start = q.start;
    p->end = q.end;
    return 0;
}

int kmx_record_normalize(Kmx__V1__Record *rec, kmx_record_problem_t *pr) {
    int rc;
    if (!rec)
        return s_fail(pr, "record", "record is missing");
    if (rec->kind != KMX__V1__KIND__EXPORT && rec->kind != KMX__V1__KIND__CONSUMPTION)
        return s_fail(pr, "kind", "kind must be export or consumption");
    if ((rc = s_period_resolve(rec->period, pr)) != 0)
        return rc;
    kmx_period_t p = {0, 0};
    if (rec->period)
        p = (kmx_period_t){rec->period->start, rec->period->end};
    if (!rec->period || !kmx_period_is_valid(&p))
        return s_fail(pr, "period", "period is missing or not a valid month range");
    if ((rc = s_check_market(rec, pr)) != 0 || (rc = s_check_category(rec, pr)) != 0 ||
        (rc = s_check_text(&rec->item, "item", KMX_ITEM_MAX, 1, pr)) != 0 ||
        (rc = s_check_text(&rec->company, "company", KMX_COMPANY_MAX, 0, pr)) != 0 ||
        (rc = s_check_text(&rec->artist, "artist", KMX_ARTIST_MAX, 0, pr)) != 0 ||
        (rc = s_check_text(&rec->source, "source", KMX_SOURCE_MAX, 1, pr)) != 0 ||
        (rc = s_check_text(&rec->note, "note", KMX_NOTE_MAX, 0, pr)) != 0 ||
        (rc = s_check_text(&rec->url, "url", KMX_URL_MAX, 0, pr)) != 0 ||
        (rc = s_check_text(&rec->as_of, "as_of", 10, 0, pr)) != 0)
        return rc;
    if ((rc = s_check_as_of(rec->as_of, pr)) != 0 || (rc = s_check_value(rec, pr)) != 0)
        return rc;
    return s_check_enums(rec, pr);
}

const char *kmx_kind_name(Kmx__V1__Kind kind) {
    switch (kind) {
    case KMX__V1__KIND__EXPORT:
        return "export";
    case KMX__V1__KIND__CONSUMPTION:
        return "consumption";
    default:
        return "unknown";
    }
}

int kmx_kind_parse(const char *text, Kmx__V1__Kind *out) {
    if (!text)
        return KMX_ERR_INVAL;
    if (strcasecmp(text, "export") == 0 || strcasecmp(text, "exports") == 0)
        *out = KMX__V1__KIND__EXPORT;
    else if (strcasecmp(text, "consumption") == 0)
        *out = KMX__V1__KIND__CONSUMPTION;
    else
        return KMX_ERR_INVAL;
    return 0;
}

int kmx_record_topic(const Kmx__V1__Record *rec, char *buf, size_t size) {
    char period[KMX_PERIOD_TEXT_MAX];
    kmx_period_t p = {rec->period ? rec->period->start : 0, rec->period ? rec->period->end : 0};
    if (kmx_period_format(&p, period, sizeof period) != 0)
        return KMX_ERR_INVAL;
    int n = snprintf(buf, size, "%s.%s.%s.%s", kmx_kind_name(rec->kind),
                     rec->market ? rec->market : "", period, rec->category ? rec->category : "");
    return n < 0 || (size_t)n >= size ? KMX_ERR_OVERFLOW : 0;
}

// ---- content comparison through the descriptor ------------------------------------

static int s_message_equal(const ProtobufCMessageDescriptor *d, const void *a, const void *b);

// Whether an optional or oneof field is present in message m.
static int s_field_present(const ProtobufCFieldDescriptor *f, const void *m) {
    const char *base = m;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return *(const uint32_t *)(base + f->quantifier_offset) == f->id;
    if (f->type == PROTOBUF_C_TYPE_MESSAGE || f->type == PROTOBUF_C_TYPE_STRING)
        return *(const void *const *)(base + f->offset) != NULL;
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL)
        return *(const protobuf_c_boolean *)(base + f->quantifier_offset) != 0;
    return 1;
}

// Size of one value of type t in a message (or in a repeated field's array).
static size_t s_element_size(ProtobufCType t) {
    switch (t) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    default:
        return 4;
    }
}

// Compares one value of type f->type at pa and pb (NULL = the field's default).
static int s_value_equal(const ProtobufCFieldDescriptor *f, const void *pa, const void *pb) {
    static const uint64_t zero[2] = {0, 0};
    const void *dflt = f->default_value ? f->default_value : zero;
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *sa = pa ? *(char *const *)pa : NULL, *sb = pb ? *(char *const *)pb : NULL;
        const char *sd = f->default_value ? (const char *)f->default_value : "";
        return strcmp(sa ? sa : sd, sb ? sb : sd) == 0;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *ba = pa ? pa : dflt, *bb = pb ? pb : dflt;
        return ba->len == bb->len && (ba->len == 0 || memcmp(ba->data, bb->data, ba->len) == 0);
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        return s_message_equal(f->descriptor, pa ? *(void *const *)pa : NULL,
                               pb ? *(void *const *)pb : NULL);
    case PROTOBUF_C_TYPE_BOOL:
        return !*(const protobuf_c_boolean *)(pa ? pa : dflt) ==
               !*(const protobuf_c_boolean *)(pb ? pb : dflt);
    default: // integers, floating point and enums: the bytes of the value
        return memcmp(pa ? pa : dflt, pb ? pb : dflt, s_element_size(f->type)) == 0;
    }
}

static int s_repeated_equal(const ProtobufCFieldDescriptor *f, const void *a, const void *b) {
    size_t na = a ? *(const size_t *)((const char *)a + f->quantifier_offset) : 0;
    size_t nb = b ? *(const size_t *)((const char *)b + f->quantifier_offset) : 0;
    if (na != nb)
        return 0;
    const char *ea = na ? *(char *const *)((const char *)a + f->offset) : NULL;
    const char *eb = nb ? *(char *const *)((const char *)b + f->offset) : NULL;
    size_t size = s_element_size(f->type);
    for (size_t i = 0; i < na; i++) {
        if (!s_value_equal(f, ea + i * size, eb + i * size))
            return 0;
    }
    return 1;
}

// Field by field, as the descriptor lists them: an absent field equals its default and a
// missing message equals an empty one, so "not given" and "given empty" never differ.
static int s_message_equal(const ProtobufCMessageDescriptor *d, const void *a, const void *b) {
    if (a == b)
        return 1;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            if (!s_repeated_equal(f, a, b))
                return 0;
            continue;
        }
        const void *pa = a && s_field_present(f, a) ? (const char *)a + f->offset : NULL;
        const void *pb = b && s_field_present(f, b) ? (const char *)b + f->offset : NULL;
        if (!s_value_equal(f, pa, pb))
            return 0;
    }
    return 1;
}

int kmx_record_same_content(const Kmx__V1__Record *a, const Kmx__V1__Record *b) {
    return s_message_equal(&kmx__v1__record__descriptor, a, b);
}
