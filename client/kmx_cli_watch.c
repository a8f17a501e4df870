/*  kmx watch: prints change events. The replay-then-live logic (subscribe first, replay,
    drop repeats by sequence number, replay the difference after a gap) is kmx_watch's,
    shared with kmx-gateway's event streams; this file parses options and prints.  */
#include "kmx_cli.h"
#include "kmx_watch.h"

#include "kmx_err.h"
#include "kmx_json.h"
#include "kmx_record.h"
#include "kmx_value.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define S_POLL_MS 250

static const char s_watch_usage[] =
    "usage: kmx watch [PREFIX...] [--since SEQ] [--count N] [--format table|json|csv]\n"
    "Prints change events whose topic (<kind>.<market>.<period>.<category>) starts with\n"
    "a PREFIX (all events when none is given). --since SEQ first prints the stored events\n"
    "after SEQ, then continues live without gap or duplicate. --count N exits after N\n"
    "events. Stops on SIGINT.\n";

typedef struct {
    kmx_cli_opts_t *opts;    // global options
    kmx_cli_list_t prefixes; // topic prefixes; empty = all
    bool all;                // no prefix filter
    bool has_since;          // --since was given
    uint64_t since;          // --since value
    uint64_t count;          // --count (0 = no limit)
    uint64_t printed;        // events printed so far
    kmx_watch_t watch;       // replay-then-live state
    kmx_client_t *client;    // request client for replays
    void *ctx;               // ZeroMQ context of the subscriber
    void *sub;               // SUB socket on the events endpoint
} s_watch_t;

static bool s_done(void *arg) {
    const s_watch_t *w = arg;
    return kmx_cli_stop || (w->count > 0 && w->printed >= w->count);
}

static void s_print_json(const Kmx__V1__UpdateEvent *ev) {
    json_t *doc = kmx_json_event(ev);
    if (!doc || kmx_json_dumpf(doc, stdout) < 0)
        kmx_cli_error("out of memory");
    json_decref(doc);
    fputc('\n', stdout);
}

static void s_print_event(void *arg, const Kmx__V1__UpdateEvent *ev) {
    s_watch_t *w = arg;
    const char *topic = ev->topic ? ev->topic : "";
    if (w->opts->format == KMX_FORMAT_JSON) {
        s_print_json(ev);
    } else {
        kmx_format_record_t fr;
        char seq[24];
        snprintf(seq, sizeof(seq), "%" PRIu64, ev->seq);
        if (ev->record)
            kmx_format_record_init(&fr, ev->record, ev->seq, 0);
        else
            memset(&fr, 0, sizeof(fr));
        // The status and the value before the change say whether this is a revision.
        char prev[48] = "";
        if (ev->previous && ev->previous->has_amount)
            kmx_decimal_format(ev->previous->amount, prev, sizeof(prev));
        const char *cells[] = {seq,          kmx_json_event_type(ev->type),
                               topic,        fr.cells[4],
                               fr.cells[7],  fr.cells[8],
                               fr.cells[10], prev};
        if (w->opts->format == KMX_FORMAT_CSV) {
            kmx_format_csv_row(stdout, cells, 8);
        } else {
            printf("%s  %s  %s  status=%s  previous=%s  %s  %s %s\n", cells[0], cells[1], cells[2],
                   cells[6] ? cells[6] : "-", prev[0] ? prev : "-", cells[3] ? cells[3] : "-",
                   cells[4] ? cells[4] : "-", cells[5] ? cells[5] : "");
        }
    }
    fflush(stdout);
    w->printed++;
}

// Maps a kmx_watch failure to an exit code after saying what failed.
static int s_failed(s_watch_t *w, int rc) {
    if (rc == KMX_ERR_RESYNC)
        kmx_cli_error("events after seq %" PRIu64 " are no longer kept; start again "
                      "without --since or with a newer one",
                      w->watch.last);
    else
        kmx_cli_error("%s", w->watch.err);
    return KMX_EXIT_SERVER;
}

static int s_subscribe(s_watch_t *w) {
    char err[KMX_WATCH_ERR_MAX];
    w->ctx = zmq_ctx_new();
    w->sub = w->ctx ? kmx_watch_subscribe(w->ctx, w->opts->events, w->watch.prefixes,
                                          w->watch.nprefixes, err)
                    : NULL;
    if (w->sub)
        return 0;
    kmx_cli_error("%s", w->ctx ? err : "cannot create a ZeroMQ context");
    return KMX_ERR_IO;
}

static int s_loop(s_watch_t *w) {
    while (!s_done(w)) {
        zmq_pollitem_t item = {w->sub, 0, ZMQ_POLLIN, 0};
        int rc = zmq_poll(&item, 1, S_POLL_MS);
        if (rc < 0 && errno != EINTR) {
            kmx_cli_error("events: %s", zmq_strerror(errno));
            return KMX_EXIT_SERVER;
        }
        if (rc > 0 && (rc = kmx_watch_receive(&w->watch, w->sub)) != 0)
            return s_failed(w, rc);
    }
    return KMX_EXIT_OK;
}

static int s_watch_options(s_watch_t *w, int argc, char **argv) {
    enum { O_SINCE = KMX_OPT_FIRST_COMMAND, O_COUNT };
    static const struct option longopts[] = {KMX_CLI_COMMON_OPTIONS,
                                             {"since", required_argument, NULL, O_SINCE},
                                             {"count", required_argument, NULL, O_COUNT},
                                             {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = kmx_cli_getopt(argc, argv, "h", longopts)) != -1) {
        int rc = kmx_cli_common_option(w->opts, opt, optarg);
        if (rc < 0)
            return KMX_EXIT_INPUT;
        if (rc > 0)
            continue;
        unsigned long long v = 0;
        if ((opt == O_SINCE || opt == O_COUNT) &&
            kmx_cli_parse_u64(optarg, UINT64_MAX - 1, &v) < 0) {
            kmx_cli_error("--%s wants a non-negative integer, not \"%s\"",
                          opt == O_SINCE ? "since" : "count", optarg);
            return KMX_EXIT_INPUT;
        }
        if (opt == O_SINCE)
            w->has_since = true, w->since = v;
        else if (opt == O_COUNT)
            w->count = v;
        else {
            fputs(s_watch_usage, stderr);
            return KMX_EXIT_INPUT;
        }
    }
    if (w->opts->help) {
        fputs(s_watch_usage, stdout);
        return KMX_EXIT_OK;
    }
    for (int i = optind; i < argc; i++) {
        if (argv[i][0] == '\0')
            w->all = true;
        else if (kmx_cli_list_push(&w->prefixes, argv[i]) < 0)
            return KMX_EXIT_SERVER;
    }
    w->all = w->all || w->prefixes.n == 0;
    w->watch.prefixes = w->all ? NULL : w->prefixes.items;
    w->watch.nprefixes = w->all ? 0 : w->prefixes.n;
    w->watch.emit = s_print_event;
    w->watch.done = s_done;
    w->watch.arg = w;
    return -1;
}

int kmx_cli_watch(kmx_cli_opts_t *opts, int argc, char **argv) {
    s_watch_t w;
    memset(&w, 0, sizeof(w));
    w.opts = opts;
    int rc = s_watch_options(&w, argc, argv);
    if (rc >= 0) { // --help or a usage error: nothing to watch
        kmx_cli_list_free(&w.prefixes);
        return rc;
    }
    // A watcher rides through restarts: its replays retry like an import's chunks.
    if (opts->deadline_ms < 0)
        opts->deadline_ms = 60000;
    w.client = w.watch.client = kmx_cli_connect(opts);
    rc = w.client && s_subscribe(&w) == 0 ? -1 : KMX_EXIT_SERVER;
    if (rc < 0 && opts->format == KMX_FORMAT_CSV) {
        const char *header[] = {"seq",   "type", "topic",  "item",
                                "value", "unit", "status", "previous"};
        kmx_format_csv_row(stdout, header, 8);
    }
    if (rc < 0 && (rc = kmx_watch_start(&w.watch, w.has_since, w.since)) < 0)
        rc = s_failed(&w, rc);
    if (rc == 0)
        rc = s_loop(&w);
    if (w.sub)
        zmq_close(w.sub);
    if (w.ctx)
        zmq_ctx_term(w.ctx);
    kmx_client_destroy(&w.client);
    kmx_cli_list_free(&w.prefixes);
    return rc;
}
