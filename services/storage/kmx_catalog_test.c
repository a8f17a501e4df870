/*  Tests for kmx_catalog through kmx_store on a real LMDB environment: the catalog follows
    inserts, updates (a changed unit moves the category entry), deletes (a value leaves
    with its last record), the existence check names unknown values with the closest
    existing ones, and a figure's history lists each change in order.  */
#include "kmx_catalog.h"
#include "kmx_err.h"
#include "kmx_store.h"
#include "kmx_testkit.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

typedef struct {
    char dir[128];      // the mkdtemp directory
    kmx_store_t *store; // open store in dir
} s_fixture_t;

static int s_setup(void **state) {
    s_fixture_t *f = calloc(1, sizeof *f);
    if (!f || kmx_testkit_dir_make("catalog", f->dir, sizeof f->dir) != 0 ||
        kmx_store_open(f->dir, NULL, &f->store) != 0) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int s_teardown(void **state) {
    s_fixture_t *f = *state;
    kmx_store_close(&f->store);
    kmx_testkit_dir_remove(f->dir);
    free(f);
    return 0;
}

static void s_put(kmx_store_t *store, kmx_testkit_rec_t *r) {
    Kmx__V1__Record *recs[] = {&r->rec};
    kmx_put_outcome_t out;
    assert_int_equal(kmx_store_put_batch(store, recs, 1, &out, NULL), 0);
}

static void s_delete(kmx_store_t *store, kmx_testkit_rec_t *r) {
    kmx_store_op_t op = {KMX_STORE_OP_DELETE, &r->rec};
    kmx_put_outcome_t out;
    assert_int_equal(kmx_store_write_batch(store, &op, 1, &out, NULL), 0);
}

static const Kmx__V1__CatalogEntry *s_find(Kmx__V1__CatalogEntry *const *list, size_t n,
                                           const char *value) {
    for (size_t i = 0; i < n; i++) {
        if (strcmp(list[i]->value, value) == 0)
            return list[i];
    }
    return NULL;
}

static const Kmx__V1__CatalogCategory *s_category(const Kmx__V1__CatalogResult *c, const char *name,
                                                  const char *unit) {
    for (size_t i = 0; i < c->n_categories; i++) {
        if (strcmp(c->categories[i]->name, name) == 0 && strcmp(c->categories[i]->unit, unit) == 0)
            return c->categories[i];
    }
    return NULL;
}

static void test_catalog_follows_inserts_updates_and_deletes(void **state) {
    s_fixture_t *f = *state;
    kmx_testkit_rec_t jp, us, jp_h1;
    kmx_testkit_rec_init(&jp, "JP", 202401, 202412, 898000000, "USD");
    kmx_testkit_rec_init(&us, "US", 202401, 202412, 602900000, "USD");
    kmx_testkit_rec_init(&jp_h1, "JP", 202501, 202506, 391000000, "USD");
    s_put(f->store, &jp);
    s_put(f->store, &us);
    s_put(f->store, &jp_h1);
    Kmx__V1__CatalogResult *c = NULL;
    assert_int_equal(kmx_store_catalog(f->store, KMX__V1__KIND__EXPORT, &c), 0);
    assert_int_equal(c->records, 3);
    assert_int_equal(c->last_seq, 3);
    const Kmx__V1__CatalogEntry *m = s_find(c->markets, c->n_markets, "JP");
    assert_non_null(m);
    assert_int_equal(m->records, 2);
    assert_string_equal(m->level, "country");
    assert_string_equal(m->name, "Japan");
    const Kmx__V1__CatalogCategory *album = s_category(c, "album", "USD");
    assert_non_null(album);
    assert_int_equal(album->records, 3);
    assert_int_equal(album->periods, 2);
    assert_int_equal(album->period->start, 202401);
    assert_int_equal(album->period->end, 202506);
    assert_int_equal(c->n_regions, 2);
    kmx__v1__catalog_result__free_unpacked(c, NULL);

    // An update in another unit moves the record's category entry; a delete takes the
    // market out with its last record.
    kmx_testkit_rec_init(&us, "US", 202401, 202412, 100, "percent_share");
    s_put(f->store, &us);
    s_delete(f->store, &jp_h1);
    assert_int_equal(kmx_store_catalog(f->store, KMX__V1__KIND__KIND_UNSPECIFIED, &c), 0);
    assert_int_equal(c->records, 2);
    assert_non_null(s_category(c, "album", "percent_share"));
    album = s_category(c, "album", "USD");
    assert_non_null(album);
    assert_int_equal(album->records, 1);
    assert_int_equal(album->period->end, 202412);
    s_delete(f->store, &us);
    kmx__v1__catalog_result__free_unpacked(c, NULL);
    assert_int_equal(kmx_store_catalog(f->store, KMX__V1__KIND__EXPORT, &c), 0);
    assert_null(s_find(c->markets, c->n_markets, "US"));
    assert_null(s_category(c, "album", "percent_share"));
    assert_int_equal(c->n_sources, 1);
    assert_int_equal(c->sources[0]->records, 1);
    kmx__v1__catalog_result__free_unpacked(c, NULL);
    // Consumption holds nothing.
    assert_int_equal(kmx_store_catalog(f->store, KMX__V1__KIND__CONSUMPTION, &c), 0);
    assert_int_equal(c->n_markets, 0);
    kmx__v1__catalog_result__free_unpacked(c, NULL);
}

static void test_filter_check_names_unknown_values_and_the_closest(void **state) {
    s_fixture_t *f = *state;
    kmx_testkit_rec_t jp;
    kmx_testkit_rec_init(&jp, "JP", 202401, 202412, 898000000, "USD");
    jp.rec.category = "physical_album_customs";
    s_put(f->store, &jp);
    char why[512];
    char *cats[] = {"physical_albums"};
    Kmx__V1__Filter filter = KMX__V1__FILTER__INIT;
    filter.has_kind = 1;
    filter.kind = KMX__V1__KIND__EXPORT;
    filter.n_categories = 1;
    filter.categories = cats;
    assert_int_equal(kmx_store_filter_exists(f->store, &filter, why, sizeof why), KMX_ERR_INVAL);
    assert_non_null(strstr(why, "unknown category 'physical_albums'"));
    assert_non_null(strstr(why, "closest: physical_album_customs"));
    cats[0] = "PHYSICAL_ALBUM_CUSTOMS"; // the filter matches without regard to case
    assert_int_equal(kmx_store_filter_exists(f->store, &filter, why, sizeof why), 0);
    char *units[] = {"EUR"};
    filter.n_units = 1;
    filter.units = units;
    assert_int_equal(kmx_store_filter_exists(f->store, &filter, why, sizeof why), KMX_ERR_INVAL);
    assert_non_null(strstr(why, "unknown unit 'EUR'"));
    filter.n_units = 0;
    char *markets[] = {"JP", "CN"};
    filter.n_markets = 2;
    filter.markets = markets;
    assert_int_equal(kmx_store_filter_exists(f->store, &filter, why, sizeof why), KMX_ERR_INVAL);
    assert_non_null(strstr(why, "unknown market 'CN'"));
    // The other kind holds none of it.
    filter.n_markets = 0;
    filter.kind = KMX__V1__KIND__CONSUMPTION;
    assert_int_equal(kmx_store_filter_exists(f->store, &filter, why, sizeof why), KMX_ERR_INVAL);
    assert_non_null(strstr(why, "unknown dimension"));
}

static void test_history_lists_every_change_of_one_key(void **state) {
    s_fixture_t *f = *state;
    kmx_testkit_rec_t a, other;
    kmx_testkit_rec_init(&a, "WORLD", 202201, 202212, 2331130000000, "USD");
    kmx_testkit_rec_init(&other, "JP", 202201, 202212, 1, "USD");
    a.rec.has_status = 1;
    a.rec.status = KMX__V1__STATUS__PRELIMINARY;
    s_put(f->store, &a);
    s_put(f->store, &other);
    a.value.amount = 2313890000000;
    a.rec.status = KMX__V1__STATUS__REVISED;
    s_put(f->store, &a);
    kmx_store_history_t h;
    assert_int_equal(kmx_store_history(f->store, &a.rec, &h), 0);
    assert_int_equal(h.n, 2);
    assert_int_equal(h.events[0]->seq, 1);
    assert_int_equal(h.events[0]->record->status, KMX__V1__STATUS__PRELIMINARY);
    assert_int_equal(h.events[1]->seq, 3);
    assert_int_equal(h.events[1]->record->value->amount, 2313890000000);
    assert_int_equal(h.events[1]->previous->amount, 2331130000000);
    assert_int_equal(h.last_seq, 3);
    kmx_store_history_fini(&h);
    s_delete(f->store, &a);
    assert_int_equal(kmx_store_history(f->store, &a.rec, &h), 0);
    assert_int_equal(h.n, 3);
    assert_int_equal(h.events[2]->type, KMX__V1__EVENT_TYPE__DELETE);
    kmx_store_history_fini(&h);
    a.rec.market = "US";
    assert_int_equal(kmx_store_history(f->store, &a.rec, &h), 0);
    assert_int_equal(h.n, 0);
    kmx_store_history_fini(&h);
}

static void test_market_levels(void **state) {
    (void)state;
    assert_string_equal(kmx_catalog_market_level("WORLD"), "world");
    assert_string_equal(kmx_catalog_market_level("JP"), "country");
    assert_string_equal(kmx_catalog_market_level("JP+CN+US"), "group");
    assert_string_equal(kmx_catalog_market_level("panel:26 countries"), "panel");
    assert_string_equal(kmx_catalog_market_level("Southeast Asia"), "region");
    assert_string_equal(kmx_catalog_market_level("Asia"), "aggregate");
    assert_string_equal(kmx_catalog_market_level("non-Asia"), "aggregate");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_catalog_follows_inserts_updates_and_deletes, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_filter_check_names_unknown_values_and_the_closest,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_history_lists_every_change_of_one_key, s_setup,
                                        s_teardown),
        cmocka_unit_test(test_market_levels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
