/*  kmx_iargs - parsing of the file-reading options of an import into the fields of
    a RawDocument.  */
#include "kmx_iargs.h"

#include "kmx_text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void kmx_iargs_init(kmx_iargs_t *self) {
    memset(self, 0, sizeof(*self));
}

void kmx_iargs_fini(kmx_iargs_t *self) {
    for (size_t i = 0; i < self->n_text; i++)
        free(self->text[i]);
    free(self->delimiter);
    kmx_iargs_init(self);
}

// A copy of value kept until fini, cut at byte at, or NULL when out of memory.
static char *s_keep(kmx_iargs_t *self, const char *value, size_t at) {
    char *copy = self->n_text < sizeof(self->text) / sizeof(self->text[0]) ? strdup(value) : NULL;
    if (!copy) {
        snprintf(self->err, sizeof self->err, "out of memory");
        return NULL;
    }
    copy[at] = '\0';
    self->text[self->n_text++] = copy;
    return copy;
}

static int s_default(kmx_iargs_t *self, const char *name, const char *value) {
    const char *eq = value ? strchr(value, '=') : NULL;
    if (!eq || eq == value || self->n_defaults >= KMX_IARGS_DEFAULTS_MAX) {
        snprintf(self->err, sizeof self->err,
                 "%s wants COLUMN=VALUE (at most %d of them), not \"%.60s\"", name,
                 KMX_IARGS_DEFAULTS_MAX, value ? value : "");
        return -1;
    }
    char *copy = s_keep(self, value, (size_t)(eq - value));
    if (!copy)
        return -1;
    Kmx__V1__RawDocument__Default *d = &self->defaults[self->n_defaults];
    kmx__v1__raw_document__default__init(d);
    d->column = copy;
    d->value = copy + (eq - value) + 1;
    self->default_ptrs[self->n_defaults++] = d;
    return 0;
}

// HEADER=FIELD split at the last '=', so a header may hold one.
static int s_map(kmx_iargs_t *self, const char *name, const char *value) {
    const char *eq = value ? strrchr(value, '=') : NULL;
    if (!eq || eq == value || !eq[1] || self->n_maps >= KMX_IARGS_MAPS_MAX) {
        snprintf(self->err, sizeof self->err,
                 "%s wants HEADER=FIELD, a header of the file and the field it holds (or "
                 "ignore), at most %d of them, not \"%.60s\"",
                 name, KMX_IARGS_MAPS_MAX, value ? value : "");
        return -1;
    }
    char *copy = s_keep(self, value, (size_t)(eq - value));
    if (!copy)
        return -1;
    Kmx__V1__RawDocument__ColumnMap *m = &self->maps[self->n_maps];
    kmx__v1__raw_document__column_map__init(m);
    m->header = copy;
    m->field = copy + (eq - value) + 1;
    self->map_ptrs[self->n_maps++] = m;
    return 0;
}

int kmx_iargs_switch(const char *value, bool *on) {
    if (!value || !*value || strcmp(value, "1") == 0 || strcmp(value, "true") == 0)
        *on = true;
    else if (strcmp(value, "0") == 0 || strcmp(value, "false") == 0)
        *on = false;
    else
        return -1;
    return 0;
}

static int s_switch(kmx_iargs_t *self, const char *name, const char *value, bool *on) {
    if (kmx_iargs_switch(value, on) == 0)
        return 0;
    snprintf(self->err, sizeof self->err, "%s is a switch: 1/true or 0/false, not \"%.20s\"", name,
             value);
    return -1;
}

// The names kmx_text_enc_parse takes.
static int s_encoding(kmx_iargs_t *self, const char *name, const char *value) {
    const char *v = value ? value : "";
    kmx_text_enc_t enc;
    if (kmx_text_enc_parse(v, &enc) != 0) {
        snprintf(self->err, sizeof self->err,
                 "%s wants auto, utf-8 or cp949 (euc-kr), not \"%.40s\"", name, v);
        return -1;
    }
    self->encoding = enc == KMX_TEXT_UTF8    ? KMX__V1__RAW_DOCUMENT__ENCODING__UTF8
                     : enc == KMX_TEXT_CP949 ? KMX__V1__RAW_DOCUMENT__ENCODING__CP949
                                             : KMX__V1__RAW_DOCUMENT__ENCODING__ENCODING_AUTO;
    return 0;
}

// Passed on as given: kmx.ingest reads the words and the characters alike.
static int s_delimiter(kmx_iargs_t *self, const char *name, const char *value) {
    static const char *const ok[] = {",",     ";",         "\t",  "|",   "\\t",
                                     "comma", "semicolon", "tab", "pipe"};
    for (size_t i = 0; value && i < sizeof(ok) / sizeof(ok[0]); i++) {
        if (strcasecmp(value, ok[i]) == 0) {
            char *copy = strdup(value);
            if (!copy) {
                snprintf(self->err, sizeof self->err, "out of memory");
                return -1;
            }
            free(self->delimiter);
            self->delimiter = copy;
            return 0;
        }
    }
    snprintf(self->err, sizeof self->err,
             "%s wants , ; tab or | (or comma, semicolon, pipe), not \"%.20s\"", name,
             value ? value : "");
    return -1;
}

// layout and date_order: one of two words.
static int s_choice(kmx_iargs_t *self, const char *name, const char *value, bool layout) {
    const char *v = value ? value : "";
    const char *a = layout ? "wide" : "mdy", *b = layout ? "long" : "dmy";
    if (strcasecmp(v, a) != 0 && strcasecmp(v, b) != 0) {
        snprintf(self->err, sizeof self->err, "%s wants %s or %s, not \"%.40s\"", name, a, b, v);
        return -1;
    }
    bool first = strcasecmp(v, a) == 0;
    if (layout)
        self->layout =
            first ? KMX__V1__RAW_DOCUMENT__LAYOUT__WIDE : KMX__V1__RAW_DOCUMENT__LAYOUT__LONG;
    else
        self->date_order =
            first ? KMX__V1__RAW_DOCUMENT__DATE_ORDER__MDY : KMX__V1__RAW_DOCUMENT__DATE_ORDER__DMY;
    return 0;
}

int kmx_iargs_set(kmx_iargs_t *self, const char *name, const char *value) {
    char key[32];
    size_t i = 0;
    for (; name[i] && i + 1 < sizeof key; i++)
        key[i] = name[i] == '-' ? '_' : name[i];
    key[i] = '\0';
    self->err[0] = '\0';
    if (name[i])
        return 1;
    if (strcmp(key, "encoding") == 0)
        return s_encoding(self, name, value);
    if (strcmp(key, "delimiter") == 0)
        return s_delimiter(self, name, value);
    if (strcmp(key, "map") == 0)
        return s_map(self, name, value);
    if (strcmp(key, "default") == 0)
        return s_default(self, name, value);
    if (strcmp(key, "ignore_extra") == 0)
        return s_switch(self, name, value, &self->ignore_extra);
    if (strcmp(key, "excel_dates") == 0)
        return s_switch(self, name, value, &self->excel_dates);
    if (strcmp(key, "layout") == 0)
        return s_choice(self, name, value, true);
    if (strcmp(key, "date_order") == 0)
        return s_choice(self, name, value, false);
    return 1;
}

void kmx_iargs_apply(const kmx_iargs_t *self, Kmx__V1__RawDocument *doc) {
    doc->has_encoding = self->encoding != 0;
    doc->encoding = self->encoding;
    doc->delimiter = self->delimiter;
    doc->n_columns = self->n_maps;
    doc->columns = (Kmx__V1__RawDocument__ColumnMap **)self->map_ptrs;
    doc->has_ignore_extra = doc->ignore_extra = self->ignore_extra;
    doc->has_layout = self->layout != 0;
    doc->layout = self->layout;
    doc->has_date_order = self->date_order != 0;
    doc->date_order = self->date_order;
    doc->has_excel_dates = doc->excel_dates = self->excel_dates;
    doc->n_defaults = self->n_defaults;
    doc->defaults = (Kmx__V1__RawDocument__Default **)self->default_ptrs;
}
