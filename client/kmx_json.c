/*  kmx_json - kmx's JSON documents through jansson. jansson leaves DEL (0x7f) unescaped;
    kmx escapes it like the other control characters, and since a 0x7f byte can only occur
    inside a string (never in JSON syntax, never inside a UTF-8 sequence), replacing the
    byte after dumping is exact.  */
#include "kmx_json.h"

#include "kmx_period.h"
#include "kmx_value.h"

#include <stdlib.h>
#include <string.h>

// Replaces every byte of s that starts no valid UTF-8 sequence with U+FFFD.
static char *s_utf8_repair(const char *s) {
    size_t n = strlen(s);
    char *out = malloc(3 * n + 1);
    size_t o = 0;
    for (size_t i = 0; out && i < n;) {
        size_t len = 1;
        unsigned char c = (unsigned char)s[i];
        len = c < 0x80             ? 1
              : (c & 0xE0) == 0xC0 ? 2
              : (c & 0xF0) == 0xE0 ? 3
              : (c & 0xF8) == 0xF0 ? 4
                                   : 0;
        bool ok = len > 0 && i + len <= n;
        for (size_t k = 1; ok && k < len; k++)
            ok = ((unsigned char)s[i + k] & 0xC0) == 0x80;
        if (ok && len > 1) {
            char one[5] = {0};
            memcpy(one, s + i, len);
            json_t *probe = json_string(one); // rejects overlong forms and surrogates
            ok = probe != NULL;
            json_decref(probe);
        }
        if (ok) {
            memcpy(out + o, s + i, len);
            o += len, i += len;
        } else {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3, i++;
        }
    }
    if (out)
        out[o] = '\0';
    return out;
}

json_t *kmx_json_string(const char *s) {
    if (!s)
        return json_null();
    json_t *v = json_string(s);
    if (v)
        return v;
    char *fixed = s_utf8_repair(s);
    v = fixed ? json_string(fixed) : NULL;
    free(fixed);
    return v;
}

json_t *kmx_json_amount(const Kmx__V1__Value *value) {
    char buf[48];
    if (value && value->has_amount && kmx_decimal_format(value->amount, buf, sizeof(buf)) == 0)
        return json_string(buf);
    return json_null();
}

json_t *kmx_json_record(const kmx_format_record_t *rec) {
    json_t *obj = json_object();
    for (size_t i = 0; obj && i < KMX_FORMAT_RECORD_NCOLS; i++) {
        const char *name = kmx_format_record_columns[i];
        bool number = strcmp(name, "seq") == 0 || strcmp(name, "updated_ms") == 0;
        json_t *v = number && rec->cells[i]
                        ? json_integer((json_int_t)strtoll(rec->cells[i], NULL, 10))
                        : kmx_json_string(rec->cells[i]);
        if (json_object_set_new(obj, name, v) < 0) {
            json_decref(obj);
            return NULL;
        }
    }
    return obj;
}

json_t *kmx_json_deleted(uint64_t seq) {
    return json_pack("{s:s,s:I}", "outcome", "deleted", "seq", (json_int_t)seq);
}

const char *kmx_json_event_type(Kmx__V1__EventType type) {
    switch (type) {
    case KMX__V1__EVENT_TYPE__UPSERT:
        return "upsert";
    case KMX__V1__EVENT_TYPE__DELETE:
        return "delete";
    case KMX__V1__EVENT_TYPE__HEARTBEAT:
        return "heartbeat";
    default:
        return "unknown";
    }
}

json_t *kmx_json_event(const Kmx__V1__UpdateEvent *ev) {
    json_t *record = json_null();
    if (ev->record) {
        kmx_format_record_t fr;
        kmx_format_record_init(&fr, ev->record, ev->seq, 0);
        record = kmx_json_record(&fr);
    }
    json_t *obj = json_object();
    int rc = obj && record ? 0 : -1;
    if (rc == 0)
        rc = json_object_set_new(obj, "seq", json_integer((json_int_t)ev->seq));
    if (rc == 0)
        rc = json_object_set_new(obj, "type", json_string(kmx_json_event_type(ev->type)));
    if (rc == 0)
        rc = json_object_set_new(obj, "topic", kmx_json_string(ev->topic ? ev->topic : ""));
    if (rc == 0) {
        rc = json_object_set_new(obj, "record", record);
        record = NULL;
    }
    if (rc == 0)
        rc = json_object_set_new(obj, "previous", kmx_json_amount(ev->previous));
    if (rc == 0)
        rc = json_object_set_new(obj, "committed_ms", json_integer((json_int_t)ev->committed_ms));
    json_decref(record);
    if (rc < 0) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

static json_t *s_rejects(const kmx_json_import_t *s) {
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < s->nrejects; i++) {
        const kmx_json_reject_t *r = &s->rejects[i];
        json_t *o = json_pack("{s:I,s:o,s:o}", "row", (json_int_t)r->row, "field",
                              kmx_json_string(r->field), "reason", kmx_json_string(r->reason));
        if (json_array_append_new(arr, o) < 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

json_t *kmx_json_import(const kmx_json_import_t *s) {
    return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:b,s:b,s:o,s:I}", "rows", (json_int_t)s->rows,
                     "stored", (json_int_t)s->stored, "unchanged", (json_int_t)s->unchanged,
                     "rejected", (json_int_t)s->rejected, "duplicates", (json_int_t)s->duplicates,
                     "last_seq", (json_int_t)s->last_seq, "seconds",
                     (double)(long long)(s->seconds * 1000 + 0.5) / 1000.0, "atomic_refused",
                     (int)s->atomic_refused, "dry_run", (int)s->dry_run, "rejected_rows",
                     s_rejects(s), "retries", (json_int_t)s->retries);
}

void kmx_json_import_read(json_t *doc, const kmx_json_import_read_t *r) {
    json_t *preview = r->preview ? r->preview : json_array();
    json_t *warnings = json_array();
    for (size_t i = 0; warnings && i < r->n_warnings; i++)
        json_array_append_new(warnings, kmx_json_string(r->warnings[i]));
    if (!doc) {
        json_decref(preview);
        json_decref(warnings);
        return;
    }
    json_object_set_new(doc, "records", json_integer((json_int_t)r->records));
    json_object_set_new(doc, "skipped", json_integer((json_int_t)r->skipped));
    json_object_set_new(doc, "encoding", kmx_json_string(r->encoding));
    json_object_set_new(doc, "warnings", warnings ? warnings : json_array());
    json_object_set_new(doc, "preview", preview ? preview : json_array());
    json_object_set_new(doc, "error", kmx_json_string(r->error));
}

static const char *s_kind_name(Kmx__V1__Kind kind) {
    return kind == KMX__V1__KIND__EXPORT ? "export" : "consumption";
}

// Appends one catalog entry object to arr; name, level and region only for markets that
// have them, category only for items.
static int s_catalog_entry(json_t *arr, const Kmx__V1__CatalogEntry *e) {
    json_t *o =
        json_pack("{s:s,s:o}", "kind", s_kind_name(e->kind), "value", kmx_json_string(e->value));
    if (o && (e->name || e->level || e->region)) {
        json_object_set_new(o, "name", kmx_json_string(e->name));
        json_object_set_new(o, "level", kmx_json_string(e->level));
        json_object_set_new(o, "region", kmx_json_string(e->region));
    }
    if (o && e->category)
        json_object_set_new(o, "category", kmx_json_string(e->category));
    if (o)
        json_object_set_new(o, "records", json_integer((json_int_t)e->records));
    return json_array_append_new(arr, o);
}

static json_t *s_catalog_entries(Kmx__V1__CatalogEntry *const *list, size_t n) {
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        if (s_catalog_entry(arr, list[i]) < 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

static json_t *s_catalog_category(const Kmx__V1__CatalogCategory *k) {
    char first[KMX_PERIOD_TEXT_MAX] = "", last[KMX_PERIOD_TEXT_MAX] = "";
    if (k->period) {
        kmx_period_t a = {k->period->start, k->period->start};
        kmx_period_t b = {k->period->end, k->period->end};
        kmx_period_format(&a, first, sizeof first);
        kmx_period_format(&b, last, sizeof last);
    }
    return json_pack("{s:s,s:o,s:o,s:s,s:s,s:I,s:I,s:b}", "kind", s_kind_name(k->kind), "name",
                     kmx_json_string(k->name), "unit", kmx_json_string(k->unit), "first", first,
                     "last", last, "periods", (json_int_t)k->periods, "records",
                     (json_int_t)k->records, "adds", (int)(k->has_adds && k->adds));
}

static json_t *s_catalog_regions(const Kmx__V1__CatalogResult *c) {
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < c->n_regions; i++) {
        json_t *members = json_array();
        for (size_t k = 0; members && k < c->regions[i]->n_members; k++)
            json_array_append_new(members, kmx_json_string(c->regions[i]->members[k]));
        json_array_append_new(arr,
                              json_pack("{s:o,s:o}", "name", kmx_json_string(c->regions[i]->name),
                                        "members", members ? members : json_array()));
    }
    return arr;
}

// Quantities several sources measure, each with its measurements (preferred first).
static json_t *s_catalog_alternatives(const Kmx__V1__CatalogResult *c) {
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < c->n_alternatives; i++) {
        const Kmx__V1__CatalogAlternative *a = c->alternatives[i];
        char period[KMX_PERIOD_TEXT_MAX] = "";
        if (a->period) {
            kmx_period_t p = {a->period->start, a->period->end};
            kmx_period_format(&p, period, sizeof period);
        }
        json_t *ms = json_array();
        for (size_t k = 0; ms && k < a->n_measurements; k++) {
            const Kmx__V1__Record *m = a->measurements[k];
            json_array_append_new(ms, json_pack("{s:o,s:o,s:o}", "item", kmx_json_string(m->item),
                                                "source", kmx_json_string(m->source), "value",
                                                kmx_json_amount(m->value)));
        }
        json_array_append_new(
            arr,
            json_pack("{s:s,s:s,s:o,s:o,s:o,s:o,s:o}", "kind", s_kind_name(a->kind), "period",
                      period, "market", kmx_json_string(a->market), "category",
                      kmx_json_string(a->category), "quantity", kmx_json_string(a->quantity),
                      "unit", kmx_json_string(a->unit), "measurements", ms ? ms : json_array()));
    }
    return arr;
}

json_t *kmx_json_catalog(const Kmx__V1__CatalogResult *c) {
    json_t *cats = json_array();
    for (size_t i = 0; cats && i < c->n_categories; i++)
        json_array_append_new(cats, s_catalog_category(c->categories[i]));
    return json_pack(
        "{s:I,s:I,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "last_seq", (json_int_t)c->last_seq, "records",
        (json_int_t)c->records, "markets", s_catalog_entries(c->markets, c->n_markets), "regions",
        s_catalog_regions(c), "categories", cats, "items", s_catalog_entries(c->items, c->n_items),
        "sources", s_catalog_entries(c->sources, c->n_sources), "companies",
        s_catalog_entries(c->companies, c->n_companies), "artists",
        s_catalog_entries(c->artists, c->n_artists), "alternatives", s_catalog_alternatives(c));
}

#define S_DUMP_FLAGS (JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY | JSON_REAL_PRECISION(6))

typedef struct {
    char *text; // malloc'd (never jansson's allocator: callers free it with free())
    size_t len; // bytes written
    size_t cap; // capacity
    bool failed;
} s_dump_t;

// json_dump_callback's sink: appends, escaping DEL on the way (see the top of the file).
static int s_dump_chunk(const char *buf, size_t size, void *arg) {
    s_dump_t *d = arg;
    if (d->len + 6 * size + 1 > d->cap) {
        size_t cap = d->cap ? d->cap : 4096;
        while (cap < d->len + 6 * size + 1)
            cap *= 2;
        char *grown = realloc(d->text, cap);
        if (!grown) {
            d->failed = true;
            return -1;
        }
        d->text = grown;
        d->cap = cap;
    }
    const char *del = memchr(buf, 0x7f, size);
    if (!del) {
        memcpy(d->text + d->len, buf, size);
        d->len += size;
        return 0;
    }
    for (size_t i = 0; i < size; i++) {
        if (buf[i] == 0x7f) {
            memcpy(d->text + d->len, "\\u007f", 6);
            d->len += 6;
        } else {
            d->text[d->len++] = buf[i];
        }
    }
    return 0;
}

char *kmx_json_dumps(const json_t *doc, size_t *len) {
    s_dump_t d = {NULL, 0, 0, false};
    if (!doc || json_dump_callback(doc, s_dump_chunk, &d, S_DUMP_FLAGS) < 0 || d.failed) {
        free(d.text);
        return NULL;
    }
    if (!d.text && !(d.text = malloc(1)))
        return NULL;
    d.text[d.len] = '\0';
    if (len)
        *len = d.len;
    return d.text;
}

int kmx_json_dumpf(const json_t *doc, FILE *out) {
    size_t n = 0;
    char *text = kmx_json_dumps(doc, &n);
    if (!text)
        return -1;
    int rc = fwrite(text, 1, n, out) == n ? 0 : -1;
    free(text);
    return rc;
}
