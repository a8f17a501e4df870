/*  kmx_bench_mixed - readers in loops against kmx (through the broker) or PostgreSQL
    (libpq), for bench/mixed/run.sh: CLIENTS threads, each with its own connection, ask
    QUESTIONS in turn until SECONDS pass or SIGTERM/SIGINT arrives (the script stops them
    when an import or a COPY ends), and each answer is checked. The rows are those of
    bench/mixed/gen.py: row i of the base set is "base series i" with the fields
    bench/ingest/gen.py gives row i. Prints one line per question:
        result QUESTION n=N p50=MS p99=MS rate=PER_S
        kmx_bench_mixed kmx|pg TARGET CLIENTS QUESTIONS SECONDS BASE
    QUESTIONS: "mix" (a get, then a group-by), "get", "group", "page" or "top".  */
#define _POSIX_C_SOURCE 200809L
#include "kmx_client.h"

#include <libpq-fe.h>

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_MARKETS 20 // bench/ingest/gen.py's lists
#define S_CATS 4
#define S_COMPANIES 5
#define S_YEARS 26 // 2000 .. 2025

static const char *const s_markets[S_MARKETS] = {"JP", "US", "CN", "TW", "TH", "ID", "VN",
                                                 "PH", "MY", "SG", "FR", "DE", "GB", "BR",
                                                 "MX", "CA", "AU", "HK", "IN", "ES"};
static const char *const s_cats[S_CATS] = {"physical_album_customs", "digital_music",
                                           "concert_revenue", "merchandise"};
static const char *const s_companies[S_COMPANIES] = {"HYBE", "SM Entertainment",
                                                     "JYP Entertainment", "YG Entertainment", ""};

enum { Q_GET, Q_GROUP, Q_PAGE, Q_TOP, Q_N };
static const char *const s_qnames[Q_N] = {"get", "group", "page", "top"};

static atomic_int s_stop;

static void s_on_signal(int sig) {
    (void)sig;
    atomic_store(&s_stop, 1);
}

static double s_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

// Row i of bench/ingest/gen.py as kmx stores it.
typedef struct {
    uint32_t month;       // YYYYMM
    const char *market;   // market code
    const char *category; // category
    const char *company;  // company, "" for none
    char item[32];        // "base series <i>"
    const char *unit;     // USD or KRW
    int64_t amount;       // ten-thousandths of the unit
} s_row_t;

static void s_row(long i, s_row_t *r) {
    r->month = (uint32_t)((2000 + (i / 12) % S_YEARS) * 100 + i % 12 + 1);
    r->market = s_markets[i % S_MARKETS];
    r->category = s_cats[i % S_CATS];
    r->company = s_companies[i % S_COMPANIES];
    snprintf(r->item, sizeof r->item, "base series %ld", i);
    int64_t whole = (i * 7919) % 100000, cents = i % 100;
    // USD_thousand, USD, KRW_million: value x magnitude x 10^4
    static const int64_t mag[3] = {1000, 1, 1000000};
    r->unit = i % 3 == 2 ? "KRW" : "USD";
    r->amount = (whole * 100 + cents) * mag[i % 3] * 100;
}

// One reader thread's state.
typedef struct {
    int pg;           // nonzero: PostgreSQL
    char target[512]; // broker endpoint, local read socket or libpq conninfo
    int questions;    // -1 for mix, else one Q_*
    long base;        // rows in the base set
    unsigned seed;    // its own random sequence
    double *lat[Q_N]; // latencies per question, ms
    size_t n[Q_N], cap[Q_N];
    int failed;                // a question failed (printed)
    kmx_client_group_t *group; // kmx: the context every reader's client shares
    kmx_client_t *client;      // kmx
    PGconn *conn;              // PostgreSQL
    pthread_t thread;
} s_reader_t;

static long s_rand(s_reader_t *r, long n) {
    r->seed = r->seed * 1103515245u + 12345u;
    return (long)((r->seed >> 8) % (unsigned long)n);
}

static void s_fill(const s_row_t *row, Kmx__V1__Record *rec, Kmx__V1__Period *p) {
    kmx__v1__record__init(rec);
    kmx__v1__period__init(p);
    p->has_start = p->has_end = 1;
    p->start = p->end = row->month;
    rec->has_kind = 1;
    rec->kind = KMX__V1__KIND__EXPORT;
    rec->period = p;
    rec->market = (char *)row->market;
    rec->category = (char *)row->category;
    rec->item = (char *)row->item;
    rec->company = (char *)row->company;
    rec->source = "kmx bench";
}

// ---- kmx --------------------------------------------------------------------------

static int s_kmx_get(s_reader_t *r, const s_row_t *row) {
    Kmx__V1__Record key;
    Kmx__V1__Period p;
    s_fill(row, &key, &p);
    Kmx__V1__Response *resp = NULL;
    int rc = kmx_client_get(r->client, &key, &resp);
    if (rc == 0 && (!resp->get->record || resp->get->record->record->value->amount != row->amount))
        rc = -1;
    kmx__v1__response__free_unpacked(resp, NULL);
    return rc;
}

static void s_year_filter(Kmx__V1__Filter *f, Kmx__V1__Period *p, int year) {
    kmx__v1__filter__init(f);
    kmx__v1__period__init(p);
    p->has_start = p->has_end = 1;
    p->start = (uint32_t)year * 100 + 1;
    p->end = (uint32_t)year * 100 + 12;
    f->has_kind = 1;
    f->kind = KMX__V1__KIND__EXPORT;
    f->period = p;
}

// Group-by market of one category, one year, in USD (or the top 10 with growth).
static int s_kmx_group(s_reader_t *r, const char *cat, int year, int top) {
    Kmx__V1__Filter f;
    Kmx__V1__Period p;
    s_year_filter(&f, &p, year);
    char *units[] = {"USD"}, *cats[] = {(char *)cat};
    f.n_units = f.n_categories = 1;
    f.units = units;
    f.categories = cats;
    Kmx__V1__GroupField by[] = {KMX__V1__GROUP_FIELD__BY_MARKET};
    Kmx__V1__QueryRequest q = KMX__V1__QUERY_REQUEST__INIT;
    q.filter = &f;
    q.n_group_by = 1;
    q.group_by = by;
    if (top) {
        q.has_top = q.has_growth = 1;
        q.top = 10;
        q.growth = KMX__V1__GROWTH__YOY;
    }
    Kmx__V1__Response *resp = NULL;
    int rc = kmx_client_query(r->client, &q, &resp);
    if (rc == 0 && resp->query->n_rows == 0)
        rc = -1;
    kmx__v1__response__free_unpacked(resp, NULL);
    return rc;
}

static int s_kmx_page(s_reader_t *r, const char *market, int year) {
    Kmx__V1__Filter f;
    Kmx__V1__Period p;
    s_year_filter(&f, &p, year);
    char *markets[] = {(char *)market};
    f.n_markets = 1;
    f.markets = markets;
    Kmx__V1__ScanRequest scan = KMX__V1__SCAN_REQUEST__INIT;
    scan.filter = &f;
    scan.has_limit = 1;
    scan.limit = 100;
    Kmx__V1__Response *resp = NULL;
    int rc = kmx_client_scan(r->client, &scan, &resp);
    if (rc == 0 && resp->scan->n_records == 0)
        rc = -1;
    kmx__v1__response__free_unpacked(resp, NULL);
    return rc;
}

// ---- PostgreSQL ---------------------------------------------------------------------

static int s_pg(s_reader_t *r, const char *stmt, int n, const char *const *params) {
    PGresult *res = PQexecPrepared(r->conn, stmt, n, params, NULL, NULL, 0);
    int ok = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0;
    if (!ok)
        fprintf(stderr, "bench: %s: %s (%d rows)\n", stmt, PQerrorMessage(r->conn), PQntuples(res));
    PQclear(res);
    return ok ? 0 : -1;
}

static int s_pg_prepare(PGconn *pg) {
    static const char *const stmts[][2] = {
        {"get", "SELECT amount, unit FROM records WHERE kind = 1 AND period_start = $1 AND "
                "period_end = $1 AND market = $2 AND category = $3 AND item = $4 AND "
                "company = $5 AND artist = '' AND source = 'kmx bench'"},
        {"group", "SELECT market, unit, sum(amount), count(*) FROM records WHERE kind = 1 AND "
                  "category = $1 AND period_start >= $2 AND period_end <= $3 AND unit = 'USD' "
                  "GROUP BY market, unit"},
        {"page", "SELECT * FROM records WHERE kind = 1 AND market = $1 AND period_start >= $2 "
                 "AND period_end <= $3 ORDER BY kind, period_start, period_end, market, "
                 "category, item, company, artist, source LIMIT 100"},
        {"top", "WITH cur AS (SELECT market, sum(amount) s FROM records WHERE kind = 1 AND "
                "category = $1 AND period_start >= $2 AND period_end <= $3 AND unit = 'USD' "
                "GROUP BY market), prev AS (SELECT market, sum(amount) s FROM records WHERE "
                "kind = 1 AND category = $1 AND period_start >= $2 - 100 AND "
                "period_end <= $3 - 100 AND unit = 'USD' GROUP BY market) "
                "SELECT cur.market, cur.s, prev.s, "
                "round((cur.s - prev.s) * 100.0 / NULLIF(prev.s, 0), 2) FROM cur LEFT JOIN "
                "prev USING (market) ORDER BY cur.s DESC, cur.market LIMIT 10"},
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

static int s_pg_get(s_reader_t *r, const s_row_t *row) {
    char month[16];
    snprintf(month, sizeof month, "%u", row->month);
    const char *params[] = {month, row->market, row->category, row->item, row->company};
    return s_pg(r, "get", 5, params);
}

static int s_pg_year(s_reader_t *r, const char *stmt, const char *key, int year) {
    char from[16], to[16];
    snprintf(from, sizeof from, "%d", year * 100 + 1);
    snprintf(to, sizeof to, "%d", year * 100 + 12);
    const char *params[] = {key, from, to};
    return s_pg(r, stmt, 3, params);
}

// ---- the loop ---------------------------------------------------------------------

static int s_ask(s_reader_t *r, int q) {
    s_row_t row;
    s_row(s_rand(r, r->base), &row);
    // Years the base set covers with every category (and a year before, for growth).
    long years = r->base / (12 * S_CATS) < S_YEARS - 1 ? r->base / (12 * S_CATS) : S_YEARS - 1;
    int year = 2001 + (int)s_rand(r, years > 1 ? years - 1 : 1);
    const char *cat = s_cats[s_rand(r, S_CATS)];
    const char *market = s_markets[s_rand(r, S_MARKETS)];
    switch (q) {
    case Q_GET:
        return r->pg ? s_pg_get(r, &row) : s_kmx_get(r, &row);
    case Q_GROUP:
        return r->pg ? s_pg_year(r, "group", cat, year) : s_kmx_group(r, cat, year, 0);
    case Q_PAGE:
        return r->pg ? s_pg_year(r, "page", market, year) : s_kmx_page(r, market, year);
    default:
        return r->pg ? s_pg_year(r, "top", cat, year) : s_kmx_group(r, cat, year, 1);
    }
}

static int s_keep(s_reader_t *r, int q, double ms) {
    if (r->n[q] == r->cap[q]) {
        size_t cap = r->cap[q] ? r->cap[q] * 2 : 4096;
        double *p = realloc(r->lat[q], cap * sizeof *p);
        if (!p)
            return -1;
        r->lat[q] = p;
        r->cap[q] = cap;
    }
    r->lat[q][r->n[q]++] = ms;
    return 0;
}

static double s_deadline_ms;

static void *s_loop(void *arg) {
    s_reader_t *r = arg;
    for (long turn = 0; !atomic_load(&s_stop) && s_now_ms() < s_deadline_ms; turn++) {
        int q = r->questions >= 0 ? r->questions : (int)(turn % 2); // mix: get, group-by
        double t0 = s_now_ms();
        if (s_ask(r, q) != 0) {
            fprintf(stderr, "bench: %s %s failed%s%s\n", r->pg ? "PostgreSQL" : "kmx", s_qnames[q],
                    r->pg ? "" : ": ", r->pg ? "" : kmx_client_last_error(r->client));
            r->failed = 1;
            break;
        }
        if (s_keep(r, q, s_now_ms() - t0) != 0)
            break;
    }
    return NULL;
}

static int s_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

// Reader i's target: TARGET is one endpoint or conninfo, or for kmx a list "A,B,..." of
// which reader i takes entry i mod its length (one local read socket per kmx-query worker).
static void s_target(const char *list, int pg, int i, char *out, size_t size) {
    if (pg) {
        snprintf(out, size, "%s", list);
        return;
    }
    int n = 1;
    for (const char *p = list; (p = strchr(p, ',')) != NULL; p++)
        n++;
    const char *at = list;
    for (int k = 0; k < i % n; k++)
        at = strchr(at, ',') + 1;
    const char *end = strchr(at, ',');
    size_t len = end ? (size_t)(end - at) : strlen(at);
    snprintf(out, size, "%.*s", (int)(len < size ? len : size - 1), at);
}

static int s_connect(s_reader_t *r) {
    if (!r->pg) {
        r->client = kmx_client_new_in(r->group, r->target, 30000, 1);
        return r->client ? 0 : -1;
    }
    r->conn = PQconnectdb(r->target);
    if (PQstatus(r->conn) != CONNECTION_OK) {
        fprintf(stderr, "bench: cannot connect: %s\n", PQerrorMessage(r->conn));
        return -1;
    }
    return s_pg_prepare(r->conn);
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: kmx_bench_mixed kmx|pg TARGET[,TARGET...] CLIENTS "
                        "mix|get|group|page|top SECONDS BASE\n");
        return 2;
    }
    int pg = strcmp(argv[1], "pg") == 0, clients = atoi(argv[3]);
    int questions = -1;
    for (int q = 0; q < Q_N; q++)
        questions = strcmp(argv[4], s_qnames[q]) == 0 ? q : questions;
    double seconds = atof(argv[5]);
    long base = atol(argv[6]);
    if (clients < 1 || clients > 64 || seconds <= 0 || base < 12 * S_CATS * 2 ||
        (questions < 0 && strcmp(argv[4], "mix") != 0)) {
        fprintf(stderr, "kmx_bench_mixed: bad arguments\n");
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    s_reader_t *r = calloc((size_t)clients, sizeof *r);
    // One context for the process's clients, as ZeroMQ advises (kmx_client_group_new).
    kmx_client_group_t *group = pg ? NULL : kmx_client_group_new();
    if (!r || (!pg && !group))
        return 1;
    int rc = 0;
    for (int i = 0; i < clients && rc == 0; i++) {
        r[i] = (s_reader_t){.pg = pg, .questions = questions, .base = base, .group = group};
        s_target(argv[2], pg, i, r[i].target, sizeof r[i].target);
        r[i].seed = 12345u + 7919u * (unsigned)i;
        rc = s_connect(&r[i]);
    }
    double t0 = s_now_ms();
    s_deadline_ms = t0 + seconds * 1000;
    for (int i = 0; i < clients && rc == 0; i++)
        rc = pthread_create(&r[i].thread, NULL, s_loop, &r[i]);
    for (int i = 0; i < clients && rc == 0; i++)
        pthread_join(r[i].thread, NULL);
    double elapsed = (s_now_ms() - t0) / 1000;
    for (int q = 0; q < Q_N && rc == 0; q++) {
        size_t n = 0;
        for (int i = 0; i < clients; i++)
            n += r[i].n[q];
        if (n == 0)
            continue;
        double *all = malloc(n * sizeof *all);
        if (!all)
            return 1;
        n = 0;
        for (int i = 0; i < clients; i++) {
            memcpy(all + n, r[i].lat[q], r[i].n[q] * sizeof *all);
            n += r[i].n[q];
        }
        qsort(all, n, sizeof *all, s_cmp);
        printf("result %s n=%zu p50=%.3f p99=%.3f rate=%.1f\n", s_qnames[q], n, all[n / 2],
               all[(n * 99) / 100], n / elapsed);
        free(all);
    }
    for (int i = 0; i < clients; i++) {
        rc |= r[i].failed;
        for (int q = 0; q < Q_N; q++)
            free(r[i].lat[q]);
        kmx_client_destroy(&r[i].client);
        if (r[i].conn)
            PQfinish(r[i].conn);
    }
    free(r);
    kmx_client_group_destroy(&group);
    return rc ? 1 : 0;
}
