/*  kmx ping and kmx stats: operational commands. Both ask several services and report
    each one, failing (exit 2) when any did not answer. Their JSON (and kmx keygen's) is
    built with jansson (kmx_json) and printed as one line when every answer is in.  */
#include "kmx_cli.h"
#include "kmx_curve.h"

#include "kmx_err.h"
#include "kmx_json.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const s_services[] = {KMX_SERVICE_BROKER, KMX_SERVICE_INGEST, KMX_SERVICE_QUERY};
#define S_NSERVICES (sizeof(s_services) / sizeof(s_services[0]))

static int64_t s_now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

// Parses the options of a command taking an optional SERVICE word. Returns -1 to
// continue, else an exit code.
static int s_admin_options(kmx_cli_opts_t *opts, int argc, char **argv, const char *usage,
                           const char **service) {
    static const struct option longopts[] = {KMX_CLI_COMMON_OPTIONS, {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = kmx_cli_getopt(argc, argv, "h", longopts)) != -1) {
        int rc = kmx_cli_common_option(opts, opt, optarg);
        if (rc == 0)
            fputs(usage, stderr);
        if (rc <= 0)
            return KMX_EXIT_INPUT;
    }
    if (opts->help) {
        fputs(usage, stdout);
        return KMX_EXIT_OK;
    }
    if (optind + 1 < argc || (!service && optind < argc)) {
        fputs(usage, stderr);
        return KMX_EXIT_INPUT;
    }
    if (service)
        *service = optind < argc ? argv[optind] : NULL;
    return -1;
}

// ---- ping -------------------------------------------------------------------------------

static const char s_ping_usage[] =
    "usage: kmx ping [SERVICE] [--format table|json]\n"
    "Pings kmx.broker, kmx.ingest and kmx.query (or only SERVICE; \"ingest\" means\n"
    "kmx.ingest) and prints \"kmx.ingest ok (worker W, 1.2 ms)\" for each that answers.\n"
    "Without SERVICE, one the key's role may not use (a reader's kmx.ingest) is skipped,\n"
    "\"kmx.ingest skipped (permission denied: ...)\". Exit 2 when any asked does not\n"
    "answer, or none answers.\n";

// Prints doc (taken) as one line of JSON.
static void s_print_json(json_t *doc) {
    if (!doc || kmx_json_dumpf(doc, stdout) < 0)
        kmx_cli_error("out of memory");
    else
        fputc('\n', stdout);
    json_decref(doc);
}

// Pings one service and reports the outcome (in JSON: appended to list). Returns 0 when it
// answered, else the error. With may_skip a refusal for the key's role (FORBIDDEN) is
// reported as skipped, on stdout, and returns 1.
static int s_ping_one(const kmx_cli_opts_t *opts, kmx_client_t *client, const char *service,
                      bool may_skip, json_t *list) {
    int64_t t0 = s_now_us();
    Kmx__V1__Response *resp = NULL;
    int rc = kmx_client_ping(client, service, &resp);
    int64_t us = s_now_us() - t0;
    const Kmx__V1__PongResult *pong = rc == 0 ? resp->pong : NULL;
    const char *worker = pong && pong->worker && *pong->worker ? pong->worker : NULL;
    char ms[32];
    snprintf(ms, sizeof(ms), "%" PRId64 ".%" PRId64, us / 1000, (us % 1000) / 100);
    if (rc == KMX_ERR_FORBIDDEN && may_skip) {
        const char *why = kmx_client_last_error(client);
        size_t n = strlen(service); // "kmx.ingest: permission denied: ..." names it already
        if (strncmp(why, service, n) == 0 && strncmp(why + n, ": ", 2) == 0)
            why += n + 2;
        if (opts->format == KMX_FORMAT_JSON)
            json_array_append_new(list, json_pack("{s:o,s:b,s:b,s:n,s:n,s:n,s:o}", "service",
                                                  kmx_json_string(service), "ok", 0, "skipped", 1,
                                                  "worker", "version", "ms", "error",
                                                  kmx_json_string(why)));
        else
            printf("%s skipped (%s)\n", service, why);
        fflush(stdout);
        if (resp)
            kmx__v1__response__free_unpacked(resp, NULL);
        return 1;
    }
    if (opts->format == KMX_FORMAT_JSON) {
        // ms: the same one-decimal figure as the table's, as a JSON number.
        json_array_append_new(
            list,
            json_pack("{s:o,s:b,s:o,s:o,s:f,s:o}", "service", kmx_json_string(service), "ok",
                      rc == 0, "worker", kmx_json_string(worker), "version",
                      kmx_json_string(pong ? pong->version : NULL), "ms", strtod(ms, NULL), "error",
                      kmx_json_string(rc == 0 ? NULL : kmx_client_last_error(client))));
    } else if (rc == 0 && worker) {
        printf("%s ok (worker %s, %s ms)\n", service, worker, ms);
    } else if (rc == 0) {
        printf("%s ok (%s ms)\n", service, ms);
    }
    if (rc < 0)
        kmx_cli_error("%s", kmx_client_last_error(client));
    fflush(stdout);
    if (resp)
        kmx__v1__response__free_unpacked(resp, NULL);
    return rc;
}

// Reports a service not asked because the broker itself did not answer: asking would
// only wait out another timeout.
static void s_ping_skipped(const kmx_cli_opts_t *opts, const char *service, json_t *list) {
    static const char reason[] = "not asked: the broker did not answer";
    if (opts->format == KMX_FORMAT_JSON)
        json_array_append_new(list, json_pack("{s:o,s:b,s:n,s:n,s:n,s:s}", "service",
                                              kmx_json_string(service), "ok", 0, "worker",
                                              "version", "ms", "error", reason));
    kmx_cli_error("%s: %s", service, reason);
}

int kmx_cli_ping(kmx_cli_opts_t *opts, int argc, char **argv) {
    const char *service = NULL;
    int rc = s_admin_options(opts, argc, argv, s_ping_usage, &service);
    if (rc < 0)
        rc = kmx_cli_refuse_csv(opts, "ping", NULL);
    if (rc >= 0)
        return rc;
    char named[64];
    if (service && !strchr(service, '.')) {
        snprintf(named, sizeof(named), "kmx.%s", service);
        service = named;
    }
    kmx_client_t *client = kmx_cli_connect(opts);
    if (!client)
        return KMX_EXIT_SERVER;
    bool ok = true;
    json_t *list = json_array();
    if (service) {
        ok = s_ping_one(opts, client, service, false, list) == 0;
    } else {
        bool broker_down = false;
        size_t answered = 0;
        for (size_t i = 0; i < S_NSERVICES; i++) {
            if (broker_down) {
                s_ping_skipped(opts, s_services[i], list);
                continue;
            }
            rc = s_ping_one(opts, client, s_services[i], true, list);
            ok = ok && rc >= 0; // a service the role may not use (1) is no failure ...
            answered += rc == 0;
            broker_down = i == 0 && rc == KMX_ERR_TIMEOUT;
        }
        ok = ok && answered > 0; // ... unless the key may use none
    }
    if (opts->format == KMX_FORMAT_JSON)
        s_print_json(json_pack("{s:o,s:b}", "services", list, "ok", ok));
    else
        json_decref(list);
    kmx_client_destroy(&client);
    return ok ? KMX_EXIT_OK : KMX_EXIT_SERVER;
}

// ---- stats ----------------------------------------------------------------------------

// The services asked, then kmx-storage, whose stats a kmx.query worker relays.
#define S_STORAGE "kmx.storage"
static const char *const s_stats_services[] = {KMX_SERVICE_BROKER, KMX_SERVICE_INGEST,
                                               KMX_SERVICE_QUERY, S_STORAGE};
#define S_NSTATS (sizeof(s_stats_services) / sizeof(s_stats_services[0]))

static const char s_stats_usage[] =
    "usage: kmx stats [--format table|json|csv]\n"
    "Prints every worker the broker knows with the requests it served, and the counters\n"
    "of kmx.broker, kmx.ingest, kmx.query and kmx-storage (asked through kmx.query),\n"
    "each with its process's rss_bytes, open_fds and uptime_s. Exit 2 when any service\n"
    "does not answer.\n";

// Appends each worker of st to list.
static void s_workers_json(const Kmx__V1__StatsResult *st, json_t *list) {
    for (size_t i = 0; i < st->n_workers; i++) {
        const Kmx__V1__WorkerStats *w = st->workers[i];
        json_array_append_new(list, json_pack("{s:o,s:o,s:I,s:I,s:b}", "service",
                                              kmx_json_string(w->service), "worker",
                                              kmx_json_string(w->worker), "requests",
                                              (json_int_t)w->requests, "errors",
                                              (json_int_t)w->errors, "alive", w->alive));
    }
}

static json_t *s_service_json(const char *service, const Kmx__V1__StatsResult *st) {
    json_t *counters = json_object();
    for (size_t i = 0; counters && i < st->n_counters; i++) {
        const char *name = st->counters[i]->name ? st->counters[i]->name : "";
        json_object_set_new(counters, name, json_integer((json_int_t)st->counters[i]->value));
    }
    json_t *workers = json_array();
    if (workers)
        s_workers_json(st, workers);
    return json_pack("{s:o,s:o,s:o,s:o}", "service",
                     kmx_json_string(st->service && *st->service ? st->service : service), "worker",
                     kmx_json_string(st->worker && *st->worker ? st->worker : NULL), "counters",
                     counters, "workers", workers);
}

// Adds a result's workers and counters to the two tables.
static int s_stats_rows(const char *service, const Kmx__V1__StatsResult *st,
                        kmx_format_table_t *workers, kmx_format_table_t *counters) {
    const char *svc = st->service && *st->service ? st->service : service;
    for (size_t i = 0; i < st->n_workers; i++) {
        const Kmx__V1__WorkerStats *w = st->workers[i];
        char req[24], err[24];
        snprintf(req, sizeof(req), "%" PRIu64, w->requests);
        snprintf(err, sizeof(err), "%" PRIu64, w->errors);
        const char *cells[] = {w->service, w->worker, req, err, w->alive ? "yes" : "no"};
        if (kmx_format_table_add(workers, cells) < 0)
            return KMX_ERR_NOMEM;
    }
    for (size_t i = 0; i < st->n_counters; i++) {
        char value[24];
        snprintf(value, sizeof(value), "%" PRIu64, st->counters[i]->value);
        const char *cells[] = {svc, st->worker, st->counters[i]->name, value};
        if (kmx_format_table_add(counters, cells) < 0)
            return KMX_ERR_NOMEM;
    }
    return 0;
}

static void s_stats_csv(const char *service, const Kmx__V1__StatsResult *st) {
    const char *svc = st->service && *st->service ? st->service : service;
    for (size_t i = 0; i < st->n_workers; i++) {
        const Kmx__V1__WorkerStats *w = st->workers[i];
        char req[24], err[24];
        snprintf(req, sizeof(req), "%" PRIu64, w->requests);
        snprintf(err, sizeof(err), "%" PRIu64, w->errors);
        const char *a[] = {w->service, w->worker, "requests", req};
        const char *b[] = {w->service, w->worker, "errors", err};
        const char *c[] = {w->service, w->worker, "alive", w->alive ? "1" : "0"};
        kmx_format_csv_row(stdout, a, 4);
        kmx_format_csv_row(stdout, b, 4);
        kmx_format_csv_row(stdout, c, 4);
    }
    for (size_t i = 0; i < st->n_counters; i++) {
        char value[24];
        snprintf(value, sizeof(value), "%" PRIu64, st->counters[i]->value);
        const char *cells[] = {svc, st->worker, st->counters[i]->name, value};
        kmx_format_csv_row(stdout, cells, 4);
    }
}

// The answers of the services asked, in s_stats_services order; NULL where none came.
typedef struct {
    Kmx__V1__Response *resps[S_NSTATS];       // each answer, freed by the caller
    const Kmx__V1__StatsResult *st[S_NSTATS]; // each result (storage's inside query's)
    bool ok;                                  // every service answered
} s_stats_t;

static void s_stats_print_json(const s_stats_t *acc) {
    // Every worker the broker (or anyone) reported, at the top level for scripts.
    json_t *workers = json_array(), *services = json_array();
    for (size_t i = 0; workers && services && i < S_NSTATS; i++) {
        if (acc->st[i]) {
            s_workers_json(acc->st[i], workers);
            json_array_append_new(services, s_service_json(s_stats_services[i], acc->st[i]));
        }
    }
    s_print_json(
        json_pack("{s:o,s:o,s:b}", "workers", workers, "services", services, "ok", acc->ok));
}

static int s_stats_print_table(const s_stats_t *acc) {
    static const char *const wh[] = {"service", "worker", "requests", "errors", "alive"};
    static const char *const ch[] = {"service", "worker", "counter", "value"};
    kmx_format_table_t *workers = kmx_format_table_new(wh, 5);
    kmx_format_table_t *counters = kmx_format_table_new(ch, 4);
    int rc = workers && counters ? 0 : KMX_ERR_NOMEM;
    bool any = false;
    for (size_t i = 0; i < S_NSTATS && rc == 0; i++) {
        if (acc->st[i]) {
            rc = s_stats_rows(s_stats_services[i], acc->st[i], workers, counters);
            any = true;
        }
    }
    if (rc == 0 && any) {
        kmx_format_table_align_right(workers, 2);
        kmx_format_table_align_right(workers, 3);
        kmx_format_table_align_right(counters, 3);
        kmx_format_table_print(workers, stdout);
        fputc('\n', stdout);
        kmx_format_table_print(counters, stdout);
    }
    kmx_format_table_destroy(&workers);
    kmx_format_table_destroy(&counters);
    return rc;
}

static void s_stats_print(const kmx_cli_opts_t *opts, const s_stats_t *acc) {
    if (opts->format == KMX_FORMAT_JSON) {
        s_stats_print_json(acc);
    } else if (opts->format == KMX_FORMAT_CSV) {
        static const char *const ch[] = {"service", "worker", "counter", "value"};
        kmx_format_csv_row(stdout, ch, 4);
        for (size_t i = 0; i < S_NSTATS; i++) {
            if (acc->st[i])
                s_stats_csv(s_stats_services[i], acc->st[i]);
        }
    } else if (s_stats_print_table(acc) < 0) {
        kmx_cli_error("out of memory");
    }
}

int kmx_cli_stats(kmx_cli_opts_t *opts, int argc, char **argv) {
    int rc = s_admin_options(opts, argc, argv, s_stats_usage, NULL);
    if (rc >= 0)
        return rc;
    kmx_client_t *client = kmx_cli_connect(opts);
    if (!client)
        return KMX_EXIT_SERVER;
    s_stats_t acc = {.ok = true};
    bool broker_down = false;
    for (size_t i = 0; i < S_NSTATS; i++) {
        if (strcmp(s_stats_services[i], S_STORAGE) == 0) {
            const Kmx__V1__Response *q = acc.resps[i - 1];
            acc.st[i] = q && q->stats ? q->stats->storage : NULL;
            // Storage's own health shows in the workers' answers; its stats are extra.
            if (q && !acc.st[i])
                kmx_cli_error("%s: kmx-storage did not answer kmx.query", S_STORAGE);
            continue;
        }
        if (broker_down) {
            // Asking the others would only time out again.
            kmx_cli_error("%s: not asked: the broker did not answer", s_stats_services[i]);
            continue;
        }
        rc = kmx_client_stats(client, s_stats_services[i], &acc.resps[i]);
        if (rc < 0) {
            kmx_cli_error("%s", kmx_client_last_error(client));
            if (acc.resps[i])
                kmx__v1__response__free_unpacked(acc.resps[i], NULL);
            acc.resps[i] = NULL;
            acc.ok = false;
        }
        acc.st[i] = acc.resps[i] ? acc.resps[i]->stats : NULL;
        broker_down = i == 0 && rc == KMX_ERR_TIMEOUT;
    }
    s_stats_print(opts, &acc);
    for (size_t i = 0; i < S_NSTATS; i++) {
        if (acc.resps[i])
            kmx__v1__response__free_unpacked(acc.resps[i], NULL);
    }
    kmx_client_destroy(&client);
    return acc.ok ? KMX_EXIT_OK : KMX_EXIT_SERVER;
}

// ---- keygen -----------------------------------------------------------------------------

static const char s_keygen_usage[] =
    "usage: kmx keygen [--format table|json]\n"
    "Prints a new CURVE key pair as 64 hex digits each: public=... and secret=... lines\n"
    "(or one JSON object). Put the secret in KMX_CURVE_SECRET of the process that owns it\n"
    "and the public key in the servers' allow-list or KMX_CURVE_BROKER/KMX_CURVE_STORAGE\n"
    "(docs/security.md). Nothing is sent anywhere.\n";

int kmx_cli_keygen(kmx_cli_opts_t *opts, int argc, char **argv) {
    int rc = s_admin_options(opts, argc, argv, s_keygen_usage, NULL);
    if (rc < 0)
        rc = kmx_cli_refuse_csv(opts, "keygen", NULL);
    if (rc >= 0)
        return rc;
    char pub[65], sec[65];
    if (kmx_curve_keygen(pub, sec) != 0) {
        kmx_cli_error("this libzmq was built without CURVE");
        return KMX_EXIT_SERVER;
    }
    if (opts->format == KMX_FORMAT_JSON)
        s_print_json(json_pack("{s:s,s:s}", "public", pub, "secret", sec));
    else
        printf("public=%s\nsecret=%s\n", pub, sec);
    return KMX_EXIT_OK;
}
