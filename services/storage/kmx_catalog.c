/*  kmx_catalog - the catalog and the history index. A catalog key is [kind][tag][text],
    the text's segments separated by NUL; its value counts the records holding it, so a
    delete takes a value out of the catalog exactly when its last record goes. The catalog
    stays small (distinct values, not records): reading all of it is the catalog answer.  */
#include "kmx_catalog.h"

#include "kmx_err.h"
#include "kmx_keymap.h"
#include "kmx_market.h"
#include "kmx_mem.h"
#include "kmx_period.h"
#include "kmx_schema.h"
#include "kmx_unit.h"
#include "kmx_value.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

// Tags: what a catalog key holds after [kind].
#define S_MARKET 'm'   // market
#define S_UNIT 'u'     // unit
#define S_CATEGORY 'c' // category \0 unit \0 [period start u32 BE][period end u32 BE]
#define S_ITEM_CAT 'i' // category \0 item
#define S_ITEM 'j'     // item
#define S_SOURCE 's'   // source
#define S_COMPANY 'o'  // company
#define S_ARTIST 'a'   // artist

#define S_SUGGEST 3 // closest values an error names

int kmx_catalog_open(MDB_txn *txn, int create, kmx_catalog_dbs_t *dbs) {
    unsigned flags = create ? MDB_CREATE : 0;
    int rc = mdb_dbi_open(txn, KMX_DB_CATALOG, flags, &dbs->values);
    if (rc == 0)
        rc = mdb_dbi_open(txn, KMX_DB_HISTORY, flags | MDB_DUPSORT | MDB_DUPFIXED, &dbs->history);
    return rc;
}

static void s_put_be(uint8_t *p, uint64_t v, size_t bytes) {
    for (size_t i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
}

static uint64_t s_get_be(const uint8_t *p, size_t bytes) {
    uint64_t v = 0;
    for (size_t i = 0; i < bytes; i++)
        v = v << 8 | p[i];
    return v;
}

// ---- keys ---------------------------------------------------------------------------

typedef struct {
    uint8_t buf[KMX_CATALOG_KEY_MAX]; // the key
    size_t len;                       // bytes used
    int bad;                          // a segment did not fit
} s_key_t;

static void s_key_init(s_key_t *k, int kind, int tag) {
    k->buf[0] = (uint8_t)kind;
    k->buf[1] = (uint8_t)tag;
    k->len = 2;
    k->bad = 0;
}

// Appends text, NUL-terminated when more segments follow (last == 0).
static void s_key_text(s_key_t *k, const char *text, int last) {
    size_t n = strlen(text) + (last ? 0 : 1);
    if (k->len + n > sizeof k->buf) {
        k->bad = 1;
        return;
    }
    memcpy(k->buf + k->len, text, n);
    k->len += n;
}

static void s_key_u32(s_key_t *k, uint32_t v) {
    if (k->len + 4 > sizeof k->buf) {
        k->bad = 1;
        return;
    }
    s_put_be(k->buf + k->len, v, 4);
    k->len += 4;
}

// ---- pending changes ----------------------------------------------------------------

// The pending table maps a catalog key to the net number of records added (int64_t).
struct kmx_catalog_pending {
    kmx_keymap_t *map;
};

kmx_catalog_pending_t *kmx_catalog_pending_new(void) {
    kmx_catalog_pending_t *self = calloc(1, sizeof *self);
    if (self && !(self->map = kmx_keymap_new(KMX_CATALOG_KEY_MAX, sizeof(int64_t))))
        kmx_catalog_pending_destroy(&self);
    return self;
}

void kmx_catalog_pending_destroy(kmx_catalog_pending_t **self_p) {
    if (!self_p || !*self_p)
        return;
    kmx_keymap_destroy(&(*self_p)->map);
    free(*self_p);
    *self_p = NULL;
}

void kmx_catalog_pending_clear(kmx_catalog_pending_t *self) {
    kmx_keymap_clear(self->map);
}

static int s_pending_key(kmx_catalog_pending_t *self, const s_key_t *k, int sign) {
    if (k->bad)
        return EINVAL;
    int64_t *delta = kmx_keymap_upsert(self->map, k->buf, k->len);
    if (!delta)
        return ENOMEM;
    *delta += sign < 0 ? -1 : 1;
    return 0;
}

// Counts one text field of rec under tag, when it is set.
static int s_pending_text(kmx_catalog_pending_t *self, int kind, int tag, const char *text,
                          int sign) {
    if (!text || !text[0])
        return 0;
    s_key_t k;
    s_key_init(&k, kind, tag);
    s_key_text(&k, text, 1);
    return s_pending_key(self, &k, sign);
}

int kmx_catalog_pending_add(kmx_catalog_pending_t *self, const Kmx__V1__Record *rec, int sign) {
    if (!rec->has_kind || !rec->period || !rec->market || !rec->category || !rec->value ||
        !rec->value->unit)
        return EINVAL;
    int kind = (int)rec->kind;
    s_key_t k;
    s_key_init(&k, kind, S_CATEGORY);
    s_key_text(&k, rec->category, 0);
    s_key_text(&k, rec->value->unit, 0);
    s_key_u32(&k, rec->period->start);
    s_key_u32(&k, rec->period->end);
    int rc = s_pending_key(self, &k, sign);
    if (rc == 0 && rec->item && rec->item[0]) {
        s_key_init(&k, kind, S_ITEM_CAT);
        s_key_text(&k, rec->category, 0);
        s_key_text(&k, rec->item, 1);
        rc = s_pending_key(self, &k, sign);
    }
    if (rc == 0)
        rc = s_pending_text(self, kind, S_MARKET, rec->market, sign);
    if (rc == 0)
        rc = s_pending_text(self, kind, S_UNIT, rec->value->unit, sign);
    if (rc == 0)
        rc = s_pending_text(self, kind, S_ITEM, rec->item, sign);
    if (rc == 0)
        rc = s_pending_text(self, kind, S_SOURCE, rec->source, sign);
    if (rc == 0)
        rc = s_pending_text(self, kind, S_COMPANY, rec->company, sign);
    if (rc == 0)
        rc = s_pending_text(self, kind, S_ARTIST, rec->artist, sign);
    return rc;
}

static int s_pending_apply(MDB_txn *txn, const kmx_catalog_dbs_t *dbs, const void *k, size_t len,
                           int64_t delta) {
    if (delta == 0)
        return 0;
    MDB_val key = {len, (void *)k}, val;
    uint64_t count = 0;
    int rc = mdb_get(txn, dbs->values, &key, &val);
    if (rc == 0 && val.mv_size == 8)
        count = s_get_be(val.mv_data, 8);
    else if (rc == 0)
        return EINVAL;
    else if (rc != MDB_NOTFOUND)
        return rc;
    if (delta < 0 && (uint64_t)(-delta) > count)
        return EOVERFLOW; // taking out records that were never counted
    count = delta < 0 ? count - (uint64_t)(-delta) : count + (uint64_t)delta;
    if (count == 0)
        return mdb_del(txn, dbs->values, &key, NULL);
    uint8_t buf[8];
    s_put_be(buf, count, 8);
    MDB_val put = {sizeof buf, buf};
    return mdb_put(txn, dbs->values, &key, &put, 0);
}

int kmx_catalog_pending_flush(MDB_txn *txn, const kmx_catalog_dbs_t *dbs,
                              kmx_catalog_pending_t *self) {
    int rc = 0;
    for (size_t i = 0; i < kmx_keymap_size(self->map) && rc == 0; i++) {
        const void *key;
        size_t len;
        const int64_t *delta = kmx_keymap_at(self->map, i, &key, &len);
        rc = s_pending_apply(txn, dbs, key, len, *delta);
    }
    kmx_catalog_pending_clear(self);
    return rc;
}

int kmx_catalog_history_add(MDB_txn *txn, const kmx_catalog_dbs_t *dbs, const MDB_val *rkey,
                            uint64_t seq) {
    uint8_t buf[8];
    s_put_be(buf, seq, 8);
    MDB_val key = *rkey, val = {sizeof buf, buf};
    return mdb_put(txn, dbs->history, &key, &val, 0);
}

// ---- reading ------------------------------------------------------------------------

const char *kmx_catalog_market_level(const char *market) {
    return kmx_market_level_name(kmx_market_level(market)); // the one table (kmx_market.h)
}

// One catalog entry as read: kind, tag and up to three text segments.
typedef struct {
    int kind;            // Kmx__V1__Kind
    int tag;             // S_*
    const char *seg[2];  // text segments (point into the copy below)
    uint32_t start, end; // S_CATEGORY: the period
    uint64_t count;      // records
    char copy[KMX_CATALOG_KEY_MAX + 1];
} s_entry_t;

// Decodes one catalog entry. Returns 0 or KMX_ERR_DECODE.
static int s_entry(const MDB_val *key, const MDB_val *val, s_entry_t *e) {
    if (key->mv_size < 2 || key->mv_size > KMX_CATALOG_KEY_MAX || val->mv_size != 8)
        return KMX_ERR_DECODE;
    const uint8_t *p = key->mv_data;
    e->kind = p[0];
    e->tag = p[1];
    e->count = s_get_be(val->mv_data, 8);
    size_t n = key->mv_size - 2;
    memcpy(e->copy, p + 2, n);
    e->copy[n] = '\0';
    e->seg[0] = e->copy;
    e->seg[1] = "";
    if (e->tag == S_ITEM_CAT || e->tag == S_CATEGORY) {
        size_t a = strnlen(e->copy, n);
        if (a >= n)
            return KMX_ERR_DECODE;
        e->seg[1] = e->copy + a + 1;
    }
    if (e->tag == S_CATEGORY) {
        size_t a = strlen(e->seg[0]) + 1, b = strnlen(e->seg[1], n - a);
        if (a + b + 1 + 8 != n)
            return KMX_ERR_DECODE;
        const uint8_t *q = (const uint8_t *)e->copy + a + b + 1;
        e->start = (uint32_t)s_get_be(q, 4);
        e->end = (uint32_t)s_get_be(q + 4, 4);
    }
    return 0;
}

// Appends a zeroed message of size bytes to a repeated field. Returns it or NULL.
static void *s_append(void ***list, size_t *n, size_t size) {
    void **grown = realloc(*list, (*n + 1) * sizeof *grown);
    if (!grown)
        return NULL;
    *list = grown;
    void *m = calloc(1, size);
    if (m)
        grown[(*n)++] = m;
    return m;
}

static Kmx__V1__CatalogEntry *s_add_entry(Kmx__V1__CatalogEntry ***list, size_t *n,
                                          const s_entry_t *e) {
    Kmx__V1__CatalogEntry *c = s_append((void ***)list, n, sizeof *c);
    if (!c)
        return NULL;
    kmx__v1__catalog_entry__init(c);
    c->value = strdup(e->seg[e->tag == S_ITEM_CAT ? 1 : 0]);
    c->has_records = c->has_kind = 1;
    c->records = e->count;
    c->kind = (Kmx__V1__Kind)e->kind;
    return c->value ? c : NULL;
}

static int s_add_market(Kmx__V1__CatalogResult *r, const s_entry_t *e) {
    Kmx__V1__CatalogEntry *c = s_add_entry(&r->markets, &r->n_markets, e);
    if (!c)
        return KMX_ERR_NOMEM;
    const char *name = kmx_market_country_name(e->seg[0]);
    c->name = name ? strdup(name) : NULL;
    c->level = strdup(kmx_catalog_market_level(e->seg[0]));
    c->region = strdup(kmx_market_region(e->seg[0]));
    r->records += e->count; // every record has exactly one market
    r->has_records = 1;
    return (name && !c->name) || !c->level || !c->region ? KMX_ERR_NOMEM : 0;
}

// Adds a category entry (one period of one category and unit) to the last category
// when it has the same kind, name and unit, else starts a new one.
static int s_add_category(Kmx__V1__CatalogResult *r, const s_entry_t *e) {
    Kmx__V1__CatalogCategory *c = r->n_categories ? r->categories[r->n_categories - 1] : NULL;
    if (!c || (int)c->kind != e->kind || strcmp(c->name, e->seg[0]) != 0 ||
        strcmp(c->unit, e->seg[1]) != 0) {
        c = s_append((void ***)&r->categories, &r->n_categories, sizeof *c);
        if (!c)
            return KMX_ERR_NOMEM;
        kmx__v1__catalog_category__init(c);
        c->period = calloc(1, sizeof *c->period);
        c->name = strdup(e->seg[0]);
        c->unit = strdup(e->seg[1]);
        if (!c->period || !c->name || !c->unit)
            return KMX_ERR_NOMEM;
        kmx__v1__period__init(c->period);
        c->has_kind = c->has_records = c->has_periods = c->has_adds = 1;
        c->kind = (Kmx__V1__Kind)e->kind;
        c->adds = kmx_unit_adds(c->unit) != 0;
        c->period->has_start = c->period->has_end = 1;
        c->period->start = e->start;
        c->period->end = e->end;
    }
    c->records += e->count;
    c->periods++;
    c->period->start = e->start < c->period->start ? e->start : c->period->start;
    c->period->end = e->end > c->period->end ? e->end : c->period->end;
    return 0;
}

static int s_cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

// Adds country to region g unless it is listed (the same country under both kinds).
static int s_add_member(Kmx__V1__CatalogRegion *g, const char *country) {
    for (size_t k = 0; k < g->n_members; k++) {
        if (strcmp(g->members[k], country) == 0)
            return 0;
    }
    char **grown = realloc(g->members, (g->n_members + 1) * sizeof *grown);
    if (!grown)
        return KMX_ERR_NOMEM;
    g->members = grown;
    if (!(g->members[g->n_members] = strdup(country)))
        return KMX_ERR_NOMEM;
    g->n_members++;
    return 0;
}

// Groups the country markets by region, members sorted.
static int s_regions(Kmx__V1__CatalogResult *r) {
    int rc = 0;
    for (size_t i = 0; i < r->n_markets && rc == 0; i++) {
        const Kmx__V1__CatalogEntry *m = r->markets[i];
        if (strcmp(m->level, "country") != 0)
            continue;
        Kmx__V1__CatalogRegion *g = NULL;
        for (size_t k = 0; k < r->n_regions && !g; k++)
            g = strcmp(r->regions[k]->name, m->region) == 0 ? r->regions[k] : NULL;
        if (!g) {
            g = s_append((void ***)&r->regions, &r->n_regions, sizeof *g);
            if (!g)
                return KMX_ERR_NOMEM;
            kmx__v1__catalog_region__init(g);
            if (!(g->name = strdup(m->region)))
                return KMX_ERR_NOMEM;
        }
        rc = s_add_member(g, m->value);
    }
    for (size_t k = 0; k < r->n_regions; k++)
        qsort(r->regions[k]->members, r->regions[k]->n_members, sizeof(char *), s_cmp_str);
    return rc;
}

static int s_read_entry(Kmx__V1__CatalogResult *r, const s_entry_t *e) {
    Kmx__V1__CatalogEntry *c = NULL;
    switch (e->tag) {
    case S_MARKET:
        return s_add_market(r, e);
    case S_CATEGORY:
        return s_add_category(r, e);
    case S_ITEM_CAT:
        c = s_add_entry(&r->items, &r->n_items, e);
        if (c && !(c->category = strdup(e->seg[0])))
            return KMX_ERR_NOMEM;
        break;
    case S_SOURCE:
        c = s_add_entry(&r->sources, &r->n_sources, e);
        break;
    case S_COMPANY:
        c = s_add_entry(&r->companies, &r->n_companies, e);
        break;
    case S_ARTIST:
        c = s_add_entry(&r->artists, &r->n_artists, e);
        break;
    default:
        return 0; // units and items alone serve the existence check
    }
    return c ? 0 : KMX_ERR_NOMEM;
}

int kmx_catalog_read(MDB_txn *txn, const kmx_catalog_dbs_t *dbs, Kmx__V1__Kind kind,
                     Kmx__V1__CatalogResult **out) {
    Kmx__V1__CatalogResult *r = calloc(1, sizeof *r);
    s_entry_t *e = malloc(sizeof *e);
    MDB_cursor *cur = NULL;
    int err = r && e ? 0 : KMX_ERR_NOMEM;
    if (r)
        kmx__v1__catalog_result__init(r);
    int rc = err == 0 ? mdb_cursor_open(txn, dbs->values, &cur) : 0;
    if (rc != 0)
        err = KMX_ERR_STORAGE;
    MDB_val key = {0, NULL}, val;
    uint8_t first = (uint8_t)kind;
    if (kind != KMX__V1__KIND__KIND_UNSPECIFIED)
        key = (MDB_val){1, &first};
    rc = err == 0 ? mdb_cursor_get(cur, &key, &val, key.mv_size ? MDB_SET_RANGE : MDB_FIRST) : 0;
    for (; err == 0 && rc == 0; rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        err = s_entry(&key, &val, e);
        if (err == 0 && kind != KMX__V1__KIND__KIND_UNSPECIFIED && e->kind != (int)kind)
            break;
        if (err == 0)
            err = s_read_entry(r, e);
    }
    if (err == 0 && rc != 0 && rc != MDB_NOTFOUND)
        err = KMX_ERR_STORAGE;
    if (cur)
        mdb_cursor_close(cur);
    if (err == 0)
        err = s_regions(r);
    free(e);
    if (err != 0 && r) {
        kmx__v1__catalog_result__free_unpacked(r, NULL);
        r = NULL;
    }
    *out = r;
    return err;
}

// ---- does a value exist -------------------------------------------------------------

// Levenshtein distance without regard to case, for suggestions; texts are bounded by the
// record field limits (at most KMX_CATALOG_KEY_MAX bytes).
static size_t s_distance(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    if (na > KMX_CATALOG_KEY_MAX || nb > KMX_CATALOG_KEY_MAX)
        return SIZE_MAX;
    size_t row[KMX_CATALOG_KEY_MAX + 1];
    for (size_t j = 0; j <= nb; j++)
        row[j] = j;
    for (size_t i = 1; i <= na; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= nb; j++) {
            size_t up = row[j];
            size_t cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            size_t best = diag + cost;
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[nb];
}

// The closest values seen so far.
typedef struct {
    char text[S_SUGGEST][KMX_CATALOG_KEY_MAX]; // closest first
    size_t dist[S_SUGGEST];                    // their distances
    size_t n;                                  // entries in use
} s_near_t;

static void s_near_add(s_near_t *n, const char *text, size_t dist) {
    for (size_t i = 0; i < n->n; i++) {
        if (strcmp(n->text[i], text) == 0)
            return; // the same value under the other kind, or another unit
    }
    size_t at = n->n < S_SUGGEST ? n->n : S_SUGGEST;
    while (at > 0 && n->dist[at - 1] > dist)
        at--;
    if (at >= S_SUGGEST)
        return;
    size_t last = n->n < S_SUGGEST ? n->n : S_SUGGEST - 1;
    for (size_t i = last; i > at; i--) {
        memcpy(n->text[i], n->text[i - 1], sizeof n->text[i]);
        n->dist[i] = n->dist[i - 1];
    }
    snprintf(n->text[at], sizeof n->text[at], "%s", text);
    n->dist[at] = dist;
    if (n->n < S_SUGGEST)
        n->n++;
}

// Looks for text among the entries of (kind, tag): an exact key first (S_CATEGORY: the
// first key with the category's prefix), then every entry without regard to case, noting
// the closest. Returns 1 when found, 0 when not, or a negative kmx code.
static int s_find_kind(MDB_cursor *cur, int kind, int tag, const char *text, s_near_t *near) {
    s_key_t k;
    s_key_init(&k, kind, tag);
    s_key_text(&k, text, tag != S_CATEGORY);
    if (k.bad)
        return 0;
    MDB_val key = {k.len, k.buf}, val;
    int rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    if (rc == 0 && key.mv_size >= k.len && memcmp(key.mv_data, k.buf, k.len) == 0 &&
        (tag == S_CATEGORY || key.mv_size == k.len))
        return 1;
    uint8_t prefix[2] = {(uint8_t)kind, (uint8_t)tag};
    key = (MDB_val){2, prefix};
    s_entry_t *e = malloc(sizeof *e);
    if (!e)
        return KMX_ERR_NOMEM;
    int found = 0;
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE); rc == 0 && !found;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        if (key.mv_size < 2 || memcmp(key.mv_data, prefix, 2) != 0 || s_entry(&key, &val, e) != 0)
            break;
        found = strcasecmp(e->seg[0], text) == 0;
        if (!found)
            s_near_add(near, e->seg[0], s_distance(e->seg[0], text));
    }
    free(e);
    return found;
}

static const char *s_tag_name(int tag) {
    switch (tag) {
    case S_MARKET:
        return "market";
    case S_UNIT:
        return "unit";
    case S_CATEGORY:
        return "category";
    case S_ITEM:
        return "item";
    case S_SOURCE:
        return "source";
    case S_COMPANY:
        return "company";
    default:
        return "artist";
    }
}

static void s_unknown(const Kmx__V1__Filter *f, int tag, const char *text, const s_near_t *near,
                      char *why, size_t sz) {
    int kind = f->has_kind ? (int)f->kind : 0;
    const char *kname = kind == KMX__V1__KIND__EXPORT        ? " of the exports"
                        : kind == KMX__V1__KIND__CONSUMPTION ? " of the consumption records"
                                                             : "";
    const char *field =
        tag == S_CATEGORY && kind == KMX__V1__KIND__CONSUMPTION ? "dimension" : s_tag_name(tag);
    int at = snprintf(why, sz, "unknown %s '%.80s': no record%s has it", field, text, kname);
    for (size_t i = 0; i < near->n && at > 0 && (size_t)at < sz; i++)
        at +=
            snprintf(why + at, sz - (size_t)at, "%s%.80s", i ? ", " : "; closest: ", near->text[i]);
    if (at > 0 && (size_t)at < sz)
        snprintf(why + at, sz - (size_t)at, " (kmx catalog lists what exists)");
}

// Checks one filter list. Returns 0, KMX_ERR_INVAL (why set) or a kmx code.
static int s_check_list(MDB_cursor *cur, const Kmx__V1__Filter *f, int tag, char *const *list,
                        size_t n, char *why, size_t sz) {
    for (size_t i = 0; i < n; i++) {
        if (!list[i] || !list[i][0])
            continue;
        s_near_t near = {.n = 0};
        int found = 0;
        for (int kind = 1; kind <= 2 && found == 0; kind++) {
            if (f->has_kind && f->kind != KMX__V1__KIND__KIND_UNSPECIFIED && (int)f->kind != kind)
                continue;
            found = s_find_kind(cur, kind, tag, list[i], &near);
        }
        if (found < 0)
            return found;
        if (!found) {
            s_unknown(f, tag, list[i], &near, why, sz);
            return KMX_ERR_INVAL;
        }
    }
    return 0;
}

int kmx_catalog_check(MDB_txn *txn, const kmx_catalog_dbs_t *dbs, const Kmx__V1__Filter *f,
                      char *why, size_t sz) {
    if (!f)
        return 0;
    MDB_cursor *cur = NULL;
    if (mdb_cursor_open(txn, dbs->values, &cur) != 0)
        return KMX_ERR_STORAGE;
    int rc = s_check_list(cur, f, S_CATEGORY, f->categories, f->n_categories, why, sz);
    if (rc == 0)
        rc = s_check_list(cur, f, S_MARKET, f->markets, f->n_markets, why, sz);
    if (rc == 0)
        rc = s_check_list(cur, f, S_UNIT, f->units, f->n_units, why, sz);
    if (rc == 0)
        rc = s_check_list(cur, f, S_ITEM, f->items, f->n_items, why, sz);
    if (rc == 0)
        rc = s_check_list(cur, f, S_SOURCE, f->sources, f->n_sources, why, sz);
    if (rc == 0)
        rc = s_check_list(cur, f, S_COMPANY, f->companies, f->n_companies, why, sz);
    if (rc == 0)
        rc = s_check_list(cur, f, S_ARTIST, f->artists, f->n_artists, why, sz);
    mdb_cursor_close(cur);
    return rc;
}

// ---- history ------------------------------------------------------------------------

static int s_history_event(MDB_txn *txn, MDB_dbi events, const MDB_val *seqval,
                           Kmx__V1__UpdateEvent ***out, size_t *n, size_t *cap) {
    if (seqval->mv_size != 8)
        return KMX_ERR_DECODE;
    MDB_val key = {8, seqval->mv_data}, val;
    int rc = mdb_get(txn, events, &key, &val);
    if (rc == MDB_NOTFOUND)
        return 0; // trimmed from the log
    if (rc != 0)
        return KMX_ERR_STORAGE;
    Kmx__V1__UpdateEvent *ev = kmx__v1__update_event__unpack(NULL, val.mv_size, val.mv_data);
    if (!ev)
        return KMX_ERR_DECODE;
    if (kmx_reserve((void **)out, cap, *n, sizeof **out, 8) != 0) {
        kmx__v1__update_event__free_unpacked(ev, NULL);
        return KMX_ERR_NOMEM;
    }
    (*out)[(*n)++] = ev;
    return 0;
}

int kmx_catalog_history_read(MDB_txn *txn, const kmx_catalog_dbs_t *dbs, MDB_dbi events,
                             const MDB_val *rkey, Kmx__V1__UpdateEvent ***out, size_t *n) {
    *out = NULL;
    *n = 0;
    size_t cap = 0;
    MDB_cursor *cur = NULL;
    if (mdb_cursor_open(txn, dbs->history, &cur) != 0)
        return KMX_ERR_STORAGE;
    MDB_val key = *rkey, val;
    int err = 0;
    int rc = mdb_cursor_get(cur, &key, &val, MDB_SET_KEY);
    for (; rc == 0 && err == 0; rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT_DUP))
        err = s_history_event(txn, events, &val, out, n, &cap);
    mdb_cursor_close(cur);
    if (err == 0 && rc != MDB_NOTFOUND)
        err = KMX_ERR_STORAGE;
    if (err != 0) {
        for (size_t i = 0; i < *n; i++)
            kmx__v1__update_event__free_unpacked((*out)[i], NULL);
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return err;
}
