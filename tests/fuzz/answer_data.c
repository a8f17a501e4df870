/*  answer_data - see answer_data.h. Deterministic: the same records on every run.  */
#include "answer_data.h"

#include <stdlib.h>

static const char *const s_markets[] = {"JP", "US", "CN", "WORLD", "TW"};
static const char *const s_categories[] = {"album", "digital", ""};

typedef struct {
    kmx_store_t *store;
    answer_ref_rec_t *recs;
    size_t n;
    int failed;
} s_fill_t;

// One record of the data set.
static void s_put(s_fill_t *f, const char *market, const char *category, const char *unit,
                  uint32_t start, uint32_t end, int64_t amount) {
    Kmx__V1__Record rec = KMX__V1__RECORD__INIT;
    Kmx__V1__Period period = KMX__V1__PERIOD__INIT;
    Kmx__V1__Value value = KMX__V1__VALUE__INIT;
    period.has_start = period.has_end = 1;
    period.start = start;
    period.end = end;
    value.has_amount = 1;
    value.amount = amount;
    value.unit = (char *)unit;
    rec.has_kind = 1;
    rec.kind = KMX__V1__KIND__EXPORT;
    rec.period = &period;
    rec.market = (char *)market;
    rec.category = (char *)category;
    rec.item = "exports";
    rec.source = "fuzz";
    rec.value = &value;
    Kmx__V1__Record *recs[] = {&rec};
    kmx_put_outcome_t out;
    if (f->failed || f->n == ANSWER_DATA_MAX ||
        kmx_store_put_batch(f->store, recs, 1, &out, NULL) != 0) {
        f->failed = 1;
        return;
    }
    f->recs[f->n++] = (answer_ref_rec_t){market, category, unit, start, end, amount};
}

size_t answer_data_fill(kmx_store_t *store, answer_ref_rec_t *recs) {
    s_fill_t f = {store, recs, 0, 0};
    unsigned seed = 7;
    for (size_t m = 0; m < sizeof s_markets / sizeof *s_markets; m++)
        for (size_t c = 0; c < sizeof s_categories / sizeof *s_categories; c++)
            for (uint32_t y = 2021; y <= 2024; y++) {
                int shape = rand_r(&seed) % 4; // 0 none, 1 some months, 2-3 every month
                for (uint32_t mo = 1; shape > 0 && mo <= 12; mo++)
                    if (shape > 1 || rand_r(&seed) % 3)
                        s_put(&f, s_markets[m], s_categories[c], m % 2 ? "KRW" : "USD",
                              y * 100 + mo, y * 100 + mo, 1 + rand_r(&seed) % 1000000);
                if (rand_r(&seed) % 5 == 0)
                    s_put(&f, s_markets[m], s_categories[c], "USD", y * 100 + 1, y * 100 + 12,
                          1 + rand_r(&seed) % 1000000);
                if (rand_r(&seed) % 7 == 0)
                    s_put(&f, s_markets[m], s_categories[c], "USD", y * 100 + 11, (y + 1) * 100 + 2,
                          1 + rand_r(&seed) % 1000000);
            }
    return f.failed ? 0 : f.n;
}
