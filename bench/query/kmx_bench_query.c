/*  kmx_bench_query - read latency of kmx against PostgreSQL on the same 1,000,000 monthly
    export records. "load" writes the records straight into a fresh store with
    kmx_store_put_batch and the same rows as CSV for PostgreSQL's COPY; "run" times a
    point get, a filtered page of 100, a group-by market for one year and one category and
    a top-10 with growth (one category too) through the full path (client -> broker ->
    kmx-query -> kmx-storage) and the same questions over libpq, and prints p50/p99 side
    by side with the targets. With DIRECT_ENDPOINT, the local read socket ("unix:PATH")
    of a kmx-query that reads storage's environment itself (--read-dir --local), the same
    questions are timed on that path too, in the same run (client -> kmx-query).  */
#include "kmx_client.h"
#include "kmx_err.h"
#include "kmx_market.h"
#include "kmx_store.h"

#include <libpq-fe.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_MONTHS 120  // 2016-01 .. 2025-12
#define S_MARKETS 200 // countries from the market table
#define S_CATS 6      // export categories
#define S_ARTISTS 800 // artists
#define S_BATCH 5000  // records per store transaction when loading
#define S_YEAR0 2016  // first year of data

static const char *const s_cats[S_CATS] = {"physical_album", "digital",     "video",
                                           "concert",        "merchandise", "licensing"};

typedef struct {
    char markets[S_MARKETS][3]; // market codes
    long n;                     // records in the data set
    long per_month;             // records per month
} s_data_t;

// Fills the first S_MARKETS two-letter codes the market table knows as countries.
static int s_markets(s_data_t *d) {
    int n = 0;
    for (char a = 'A'; a <= 'Z' && n < S_MARKETS; a++) {
        for (char b = 'A'; b <= 'Z' && n < S_MARKETS; b++) {
            char code[3] = {a, b, 0};
            if (kmx_market_is_country(code))
                memcpy(d->markets[n++], code, 3);
        }
    }
    return n == S_MARKETS ? 0 : -1;
}

// The fields of record i: every (month, market, category, artist) is distinct.
typedef struct {
    uint32_t month;       // YYYYMM
    const char *market;   // market code
    const char *category; // category
    char artist[16];      // "artist NNN"
    char company[16];     // "label NN"
    int64_t amount;       // ten-thousandths of a USD
} s_rec_t;

static void s_rec(const s_data_t *d, long i, s_rec_t *r) {
    long m = i / d->per_month, j = i % d->per_month;
    long market = j % S_MARKETS, cat = (j / S_MARKETS) % S_CATS, k = j / (S_MARKETS * S_CATS);
    r->month = (uint32_t)((S_YEAR0 + m / 12) * 100 + m % 12 + 1);
    r->market = d->markets[market];
    r->category = s_cats[cat];
    long artist = (k * 100 + market * 3 + m * 11) % S_ARTISTS;
    snprintf(r->artist, sizeof r->artist, "artist %03ld", artist);
    snprintf(r->company, sizeof r->company, "label %02ld", artist % 40);
    uint64_t x = (uint64_t)i * 0x9e3779b97f4a7c15ull;
    x ^= x >> 29;
    r->amount = (int64_t)(x % 1000000000ull) + 10000;
}

static double s_now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

// ---- load -------------------------------------------------------------------------

static void s_fill(const s_rec_t *r, Kmx__V1__Record *rec, Kmx__V1__Period *p, Kmx__V1__Value *v) {
    kmx__v1__record__init(rec);
    kmx__v1__period__init(p);
    kmx__v1__value__init(v);
    p->has_start = p->has_end = 1;
    p->start = p->end = r->month;
    v->has_amount = 1;
    v->amount = r->amount;
    v->unit = "USD";
    rec->has_kind = 1;
    rec->kind = KMX__V1__KIND__EXPORT;
    rec->period = p;
    rec->market = (char *)r->market;
    rec->category = (char *)r->category;
    rec->item = "exports";
    rec->company = (char *)r->company;
    rec->artist = (char *)r->artist;
    rec->source = "bench";
    rec->value = v;
}

static int s_load(const s_data_t *d, const char *dir, const char *csv_path) {
    kmx_store_config_t cfg = {.sync = KMX_STORE_SYNC_NONE};
    kmx_store_t *store = NULL;
    FILE *csv = fopen(csv_path, "w");
    if (!csv || kmx_store_open(dir, &cfg, &store) != 0) {
        fprintf(stderr, "bench: cannot open %s or %s\n", dir, csv_path);
        return 1;
    }
    static s_rec_t recs[S_BATCH];
    static Kmx__V1__Record wire[S_BATCH];
    static Kmx__V1__Period periods[S_BATCH];
    static Kmx__V1__Value values[S_BATCH];
    static Kmx__V1__Record *ptrs[S_BATCH];
    static kmx_put_outcome_t outcomes[S_BATCH];
    for (long i = 0; i < d->n; i += S_BATCH) {
        size_t n = (size_t)(d->n - i < S_BATCH ? d->n - i : S_BATCH);
        for (size_t k = 0; k < n; k++) {
            s_rec(d, i + (long)k, &recs[k]);
            s_fill(&recs[k], &wire[k], &periods[k], &values[k]);
            ptrs[k] = &wire[k];
            fprintf(csv, "1,%u,%u,%s,%s,exports,%s,%s,bench,%lld,USD\n", recs[k].month,
                    recs[k].month, recs[k].market, recs[k].category, recs[k].company,
                    recs[k].artist, (long long)recs[k].amount);
        }
        if (kmx_store_put_batch(store, ptrs, n, outcomes, NULL) != 0) {
            fprintf(stderr, "bench: put failed at record %ld\n", i);
            return 1;
        }
    }
    kmx_store_close(&store);
    return fclose(csv) == 0 ? 0 : 1;
}

// ---- timing -----------------------------------------------------------------------

typedef struct {
    double *us; // one latency per try
    int n;      // tries done
} s_lat_t;

static int s_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double s_pct(s_lat_t *l, double p) {
    qsort(l->us, (size_t)l->n, sizeof *l->us, s_cmp_double);
    int at = (int)(p * (l->n - 1) + 0.5);
    return l->us[at] / 1000.0;
}

typedef struct {
    const s_data_t *d;    // the data set
    kmx_client_t *client; // kmx through the broker
    PGconn *pg;           // PostgreSQL
    kmx_client_t *direct; // kmx on the local read socket of a kmx-query reading directly, or NULL
    unsigned seed;        // picks keys and years
    unsigned page;        // records per page: 100, fewer when a market's year holds fewer
} s_bench_t;

// Markets that hold records of the first s_cats_in() categories every month: all of them
// from S_MARKETS * S_CATS records a month, fewer in a small data set (growth runs).
static long s_markets_in(const s_data_t *d) {
    return d->per_month < S_MARKETS ? d->per_month : S_MARKETS;
}

// Categories every market of s_markets_in() holds each month (at least the first).
static long s_cats_in(const s_data_t *d) {
    long c = d->per_month / S_MARKETS;
    return c < 1 ? 1 : c > S_CATS ? S_CATS : c;
}

// Records a page asks for: 100, or what the smallest market's year holds.
static unsigned s_page_size(const s_data_t *d) {
    long per_year = 12 * (d->per_month / S_MARKETS > 0 ? d->per_month / S_MARKETS : 1);
    return per_year < 100 ? (unsigned)per_year : 100;
}

static long s_rand(s_bench_t *b, long n) {
    b->seed = b->seed * 1103515245u + 12345u;
    return (long)((b->seed >> 8) % (unsigned long)n);
}

// ---- the four questions, kmx side ---------------------------------------------------

static int s_kmx_get(s_bench_t *b, long i) {
    s_rec_t r;
    s_rec(b->d, i, &r);
    Kmx__V1__Record key;
    Kmx__V1__Period p;
    Kmx__V1__Value v;
    s_fill(&r, &key, &p, &v);
    Kmx__V1__Response *resp = NULL;
    int rc = kmx_client_get(b->client, &key, &resp);
    if (rc == 0 && (!resp->get->record || resp->get->record->record->value->amount != r.amount))
        rc = KMX_ERR_INTERNAL;
    kmx__v1__response__free_unpacked(resp, NULL);
    return rc;
}

static int s_kmx_page(s_bench_t *b, const char *market, int year) {
    char *markets[] = {(char *)market};
    Kmx__V1__Period p = KMX__V1__PERIOD__INIT;
    p.has_start = p.has_end = 1;
    p.start = (uint32_t)year * 100 + 1;
    p.end = (uint32_t)year * 100 + 12;
    Kmx__V1__Filter f = KMX__V1__FILTER__INIT;
    f.has_kind = 1;
    f.kind = KMX__V1__KIND__EXPORT;
    f.period = &p;
    f.n_markets = 1;
    f.markets = markets;
    Kmx__V1__ScanRequest scan = KMX__V1__SCAN_REQUEST__INIT;
    scan.filter = &f;
    scan.has_limit = 1;
    scan.limit = b->page;
    Kmx__V1__Response *resp = NULL;
    int rc = kmx_client_scan(b->client, &scan, &resp);
    if (rc == 0 && resp->scan->n_records != b->page) {
        fprintf(stderr, "bench: a page for %s in %d holds %zu records, not %u\n", market, year,
                resp->scan->n_records, b->page);
        rc = KMX_ERR_INTERNAL;
    }
    kmx__v1__response__free_unpacked(resp, NULL);
    return rc;
}

// Group-by market (or top 10 with growth) of one year and one category: a query that
// names no single category would be split by category (docs/queries.md), which is not
// the question PostgreSQL's GROUP BY market answers.
static int s_kmx_group(s_bench_t *b, int year, const char *category, int top_growth) {
    Kmx__V1__Period p = KMX__V1__PERIOD__INIT;
    p.has_start = p.has_end = 1;
    p.start = (uint32_t)year * 100 + 1;
    p.end = (uint32_t)year * 100 + 12;
    char *units[] = {"USD"};
    char *categories[] = {(char *)category};
    Kmx__V1__Filter f = KMX__V1__FILTER__INIT;
    f.has_kind = 1;
    f.kind = KMX__V1__KIND__EXPORT;
    f.period = &p;
    f.n_units = 1;
    f.units = units;
    f.n_categories = 1;
    f.categories = categories;
    Kmx__V1__GroupField by[] = {KMX__V1__GROUP_FIELD__BY_MARKET};
    Kmx__V1__QueryRequest q = KMX__V1__QUERY_REQUEST__INIT;
    q.filter = &f;
    q.n_group_by = 1;
    q.group_by = by;
    if (top_growth) {
        q.has_top = q.has_growth = 1;
        q.top = 10;
        q.growth = KMX__V1__GROWTH__YOY;
    }
    Kmx__V1__Response *resp = NULL;
    int rc = kmx_client_query(b->client, &q, &resp);
    size_t markets = (size_t)s_markets_in(b->d);
    size_t want = top_growth ? (markets < 10 ? markets : 10) : markets;
    if (rc == 0 && (resp->query->n_rows != want || resp->query->n_group_by != 1 ||
                    (top_growth && !resp->query->rows[0]->growth)))
        rc = KMX_ERR_INTERNAL;
    kmx__v1__response__free_unpacked(resp, NULL);
    return rc;
}

// What the store holds (kmx catalog): markets, categories with their units and periods,
// items, sources, companies, artists, from storage's catalog; every market must be there.
static int s_kmx_catalog(s_bench_t *b) {
    Kmx__V1__Response *resp = NULL;
    int rc = kmx_client_catalog(b->client, KMX__V1__KIND__EXPORT, &resp);
    if (rc == 0 && resp->catalog->n_markets != (size_t)s_markets_in(b->d))
        rc = KMX_ERR_INTERNAL;
    kmx__v1__response__free_unpacked(resp, NULL);
    return rc;
}

// ---- the same questions, PostgreSQL side --------------------------------------------

static int s_pg(s_bench_t *b, const char *sql, int n, const char *const *params, int want) {
    PGresult *res = PQexecPrepared(b->pg, sql, n, params, NULL, NULL, 0);
    int ok = PQresultStatus(res) == PGRES_TUPLES_OK && (want < 0 || PQntuples(res) == want);
    if (!ok)
        fprintf(stderr, "bench: %s: %s (%d rows)\n", sql, PQerrorMessage(b->pg), PQntuples(res));
    PQclear(res);
    return ok ? 0 : -1;
}

static int s_pg_prepare(PGconn *pg) {
    static const char *const stmts[][2] = {
        {"get", "SELECT amount, unit FROM records WHERE kind = 1 AND period_start = $1 AND "
                "period_end = $1 AND market = $2 AND category = $3 AND item = 'exports' AND "
                "company = $4 AND artist = $5 AND source = 'bench'"},
        {"page", "SELECT * FROM records WHERE kind = 1 AND market = $1 AND period_start >= $2 "
                 "AND period_end <= $3 ORDER BY kind, period_start, period_end, market, "
                 "category, item, company, artist, source LIMIT $4"},
        {"group", "SELECT market, unit, sum(amount), count(*) FROM records WHERE kind = 1 AND "
                  "category = $1 AND period_start >= $2 AND period_end <= $3 AND unit = 'USD' "
                  "GROUP BY market, unit"},
        {"top", "WITH cur AS (SELECT market, sum(amount) s FROM records WHERE kind = 1 AND "
                "category = $1 AND period_start >= $2 AND period_end <= $3 AND unit = 'USD' "
                "GROUP BY market), prev AS (SELECT market, sum(amount) s FROM records WHERE "
                "kind = 1 AND category = $1 AND period_start >= $2 - 100 AND "
                "period_end <= $3 - 100 AND unit = 'USD' GROUP BY market) "
                "SELECT cur.market, cur.s, prev.s, "
                "round((cur.s - prev.s) * 100.0 / NULLIF(prev.s, 0), 2) FROM cur LEFT JOIN "
                "prev USING (market) ORDER BY cur.s DESC, cur.market LIMIT 10"},
        {"catalog", "SELECT DISTINCT market FROM records WHERE kind = 1"},
    };
    for (size_t i = 0; i < sizeof stmts / sizeof stmts[0]; i++) {
        PGresult *res = PQprepare(pg, stmts[i][0], stmts[i][1], 0, NULL);
        int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
        if (!ok)
            fprintf(stderr, "bench: prepare %s: %s\n", stmts[i][0], PQerrorMessage(pg));
        PQclear(res);
        if (!ok)
            return -1;
    }
    return 0;
}

static int s_pg_get(s_bench_t *b, long i) {
    s_rec_t r;
    s_rec(b->d, i, &r);
    char month[16];
    snprintf(month, sizeof month, "%u", r.month);
    const char *params[] = {month, r.market, r.category, r.company, r.artist};
    return s_pg(b, "get", 5, params, 1);
}

// Runs stmt for one year; key is its first parameter (the market of a page, the category
// of a group-by or top 10).
static int s_pg_year(s_bench_t *b, const char *stmt, const char *key, int year, int want) {
    char from[16], to[16];
    snprintf(from, sizeof from, "%d", year * 100 + 1);
    snprintf(to, sizeof to, "%d", year * 100 + 12);
    char limit[16];
    snprintf(limit, sizeof limit, "%d", want);
    const char *params[] = {key, from, to, limit}; // only the page takes a limit
    return s_pg(b, stmt, strcmp(stmt, "page") == 0 ? 4 : 3, params, want);
}

// ---- run --------------------------------------------------------------------------

enum { Q_GET, Q_PAGE, Q_GROUP, Q_TOP, Q_CATALOG, Q_N };

static const char *const s_names[Q_N] = {"point get", "filtered page of 100",
                                         "group-by market, one cat", "top-10 with growth, one cat",
                                         "catalog / SELECT DISTINCT"};

enum { S_KMX, S_PG, S_DIRECT, S_SYSTEMS }; // the paths timed

// Runs question q once on kmx (S_KMX, S_DIRECT) or PostgreSQL (S_PG).
static int s_ask_on(s_bench_t *b, int q, int system) {
    long i = s_rand(b, b->d->n);
    int year = S_YEAR0 + 1 + (int)s_rand(b, S_MONTHS / 12 - 1);
    const char *market = b->d->markets[s_rand(b, s_markets_in(b->d))];
    const char *category = s_cats[s_rand(b, s_cats_in(b->d))];
    switch (q) {
    case Q_GET:
        return system ? s_pg_get(b, i) : s_kmx_get(b, i);
    case Q_PAGE:
        return system ? s_pg_year(b, "page", market, year, (int)b->page)
                      : s_kmx_page(b, market, year);
    case Q_GROUP:
        return system ? s_pg_year(b, "group", category, year, (int)s_markets_in(b->d))
                      : s_kmx_group(b, year, category, 0);
    case Q_CATALOG:
        return system ? s_pg(b, "catalog", 0, NULL, (int)s_markets_in(b->d)) : s_kmx_catalog(b);
    default:
        return system ? s_pg_year(b, "top", category, year,
                                  (int)(s_markets_in(b->d) < 10 ? s_markets_in(b->d) : 10))
                      : s_kmx_group(b, year, category, 1);
    }
}

static int s_ask(s_bench_t *b, int q, int system) {
    if (system != S_DIRECT)
        return s_ask_on(b, q, system);
    kmx_client_t *socket = b->client;
    b->client = b->direct;
    int rc = s_ask_on(b, q, S_KMX);
    b->client = socket;
    return rc;
}

static int s_measure(s_bench_t *b, int q, int system, int tries, s_lat_t *l) {
    for (int w = 0; w < tries / 10 + 1; w++) {
        if (s_ask(b, q, system) != 0)
            return -1;
    }
    l->n = 0;
    for (int t = 0; t < tries; t++) {
        double t0 = s_now_us();
        if (s_ask(b, q, system) != 0)
            return -1;
        l->us[l->n++] = s_now_us() - t0;
    }
    return 0;
}

static void s_report(const s_bench_t *b, double res[Q_N][S_SYSTEMS][2]) {
    int d = b->direct != NULL;
    printf("\nread latency, %ld monthly export records (ms; kmx through broker -> "
           "kmx-query -> kmx-storage%s)\n",
           b->d->n, d ? "; direct: kmx-query's local read socket, reading the environment" : "");
    printf("  %-28s %9s %9s", "question", "kmx p50", "kmx p99");
    if (d)
        printf(" %9s %9s", "direct50", "direct99");
    printf(" %9s %9s  %s\n", "PG p50", "PG p99", d ? "target (direct)" : "target");
    for (int q = 0; q < Q_N; q++) {
        const double *k = res[q][d ? S_DIRECT : S_KMX], *pg = res[q][S_PG];
        char target[128];
        if (q == Q_GET)
            snprintf(target, sizeof target, "p50 < PG p50 and p99 < 2 ms: %s",
                     k[0] < pg[0] && k[1] < 2.0 ? "met" : "NOT met");
        else if (q == Q_PAGE)
            snprintf(target, sizeof target, "p50 <= PG p50: %s (PG/kmx p50 = %.2fx)",
                     k[0] <= pg[0] ? "met" : "NOT met", pg[0] / k[0]);
        else if (q == Q_CATALOG)
            snprintf(target, sizeof target, "kmx p50 < 10 ms: %s (PG/kmx p50 = %.1fx)",
                     k[0] < 10.0 ? "met" : "NOT met", pg[0] / k[0]);
        else
            snprintf(target, sizeof target, ">= 10x faster than PG p50: %.1fx, %s", pg[0] / k[0],
                     pg[0] >= 10 * k[0] ? "met" : "NOT met");
        printf("  %-28s %9.3f %9.3f", s_names[q], res[q][S_KMX][0], res[q][S_KMX][1]);
        if (d)
            printf(" %9.3f %9.3f", res[q][S_DIRECT][0], res[q][S_DIRECT][1]);
        printf(" %9.3f %9.3f  %s\n", pg[0], pg[1], target);
    }
    printf("figure: get p50 ms socket = %.4f\n", res[Q_GET][S_KMX][0]);
    if (d)
        printf("figure: get p50 ms direct = %.4f\n", res[Q_GET][S_DIRECT][0]);
}

static int s_run(s_bench_t *b, int tries_get, int tries_agg) {
    s_lat_t l = {calloc((size_t)(tries_get > tries_agg ? tries_get : tries_agg), sizeof(double)),
                 0};
    double res[Q_N][S_SYSTEMS][2] = {{{0}}};
    if (!l.us)
        return 1;
    static const char *const names[S_SYSTEMS] = {"kmx", "PostgreSQL", "kmx direct"};
    for (int q = 0; q < Q_N; q++) {
        for (int system = 0; system < (b->direct ? S_SYSTEMS : S_DIRECT); system++) {
            int tries = q <= Q_PAGE ? tries_get : tries_agg;
            if (s_measure(b, q, system, tries, &l) != 0) {
                fprintf(stderr, "bench: %s on %s failed: %s\n", s_names[q], names[system],
                        system == S_PG
                            ? PQerrorMessage(b->pg)
                            : kmx_client_last_error(system == S_KMX ? b->client : b->direct));
                free(l.us);
                return 1;
            }
            res[q][system][0] = s_pct(&l, 0.50);
            res[q][system][1] = s_pct(&l, 0.99);
            fprintf(stderr, "bench: %s on %s: p50 %.3f ms\n", s_names[q], names[system],
                    res[q][system][0]);
        }
    }
    free(l.us);
    s_report(b, res);
    return 0;
}

int main(int argc, char **argv) {
    static s_data_t d;
    if (argc < 4 || s_markets(&d) != 0) {
        fprintf(stderr, "usage: kmx_bench_query load DIR CSV [N]\n"
                        "       kmx_bench_query run BROKER PGCONNINFO [N [GETS [AGGS "
                        "[DIRECT_ENDPOINT]]]]\n");
        return 2;
    }
    d.n = argc > 4 ? atol(argv[4]) : 1000000;
    if (d.n < S_MONTHS * 10)
        d.n = S_MONTHS * 10; // at least ten markets a month, so a top 10 has ten rows
    d.n -= d.n % S_MONTHS;   // every month alike, so every year holds the same records
    d.per_month = (d.n + S_MONTHS - 1) / S_MONTHS;
    if (strcmp(argv[1], "load") == 0)
        return s_load(&d, argv[2], argv[3]);
    s_bench_t b = {&d,
                   kmx_client_new(argv[2], 30000, 1),
                   PQconnectdb(argv[3]),
                   argc > 7 ? kmx_client_new(argv[7], 30000, 1) : NULL,
                   12345,
                   s_page_size(&d)};
    if (b.page < 100)
        fprintf(stderr, "bench: %ld records: pages of %u (a market's year holds no more)\n", d.n,
                b.page);
    int rc = 1;
    if (!b.client || PQstatus(b.pg) != CONNECTION_OK || (argc > 7 && !b.direct))
        fprintf(stderr, "bench: cannot connect: %s\n", PQerrorMessage(b.pg));
    else if (s_pg_prepare(b.pg) == 0)
        rc = s_run(&b, argc > 5 ? atoi(argv[5]) : 2000, argc > 6 ? atoi(argv[6]) : 100);
    kmx_client_destroy(&b.client);
    kmx_client_destroy(&b.direct);
    PQfinish(b.pg);
    return rc;
}
