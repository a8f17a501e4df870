/*  kmx watch: prints change events. It subscribes before it replays, so nothing can fall
    between the replayed history and the live stream; live events already printed are
    dropped by sequence number. Because a subscription can miss messages (slow joiner,
    high-water mark), a live event that skips sequence numbers or a heartbeat ahead of
    what was seen makes it replay the difference from kmx.query.  */
#include "kmx_cli.h"
#include "kmx_curve.h"

#include "kmx_err.h"
#include "kmx_msg.h"
#include "kmx_record.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define S_HEARTBEAT_TOPIC "kmx.heartbeat"
#define S_REPLAY_PAGE 500
#define S_POLL_MS 250
#define S_TOPIC_MAX 512

static const char s_watch_usage[] =
    "usage: kmx watch [PREFIX...] [--since SEQ] [--count N] [--format table|json|csv]\n"
    "Prints change events whose topic (<kind>.<market>.<period>.<category>) starts with\n"
    "a PREFIX (all events when none is given). --since SEQ first prints the stored events\n"
    "after SEQ, then continues live without gap or duplicate. --count N exits after N\n"
    "events. Stops on SIGINT.\n";

typedef struct {
    kmx_cli_opts_t *opts;     // global options
    kmx_cli_list_t prefixes;  // topic prefixes; empty = all
    bool all;                 // no prefix filter
    bool has_since;           // --since was given
    uint64_t since;           // --since value
    uint64_t count;           // --count (0 = no limit)
    uint64_t printed;         // events printed so far
    uint64_t last;            // newest sequence printed or known covered
    bool have_last;           // last is meaningful
    kmx_client_t *client;     // request client for replays
    void *ctx;                // ZeroMQ context of the subscriber
    void *sub;                // SUB socket on the events endpoint
} s_watch_t;

static bool s_done(const s_watch_t *w)
{
    return kmx_cli_stop || (w->count > 0 && w->printed >= w->count);
}

static bool s_topic_matches(const s_watch_t *w, const char *topic)
{
    if (w->all)
        return true;
    for (size_t i = 0; i < w->prefixes.n; i++) {
        if (strncmp(topic, w->prefixes.items[i], strlen(w->prefixes.items[i])) == 0)
            return true;
    }
    return false;
}

static const char *s_event_type(Kmx__V1__EventType t)
{
    switch (t) {
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

static void s_print_json(const Kmx__V1__UpdateEvent *ev, const char *topic)
{
    printf("{\"seq\":%" PRIu64 ",\"type\":\"%s\",\"topic\":", ev->seq, s_event_type(ev->type));
    kmx_format_json_string(stdout, topic);
    fputs(",\"record\":", stdout);
    if (ev->record) {
        kmx_format_record_t fr;
        kmx_format_record_init(&fr, ev->record, ev->seq, 0);
        kmx_format_record_json(stdout, &fr);
    } else {
        fputs("null", stdout);
    }
    fputs(",\"previous\":", stdout);
    kmx_format_amount_json(stdout, ev->previous);
    printf(",\"committed_ms\":%" PRIu64 "}\n", ev->committed_ms);
}

static void s_print_event(s_watch_t *w, const Kmx__V1__UpdateEvent *ev)
{
    const char *topic = ev->topic ? ev->topic : "";
    if (w->opts->format == KMX_FORMAT_JSON) {
        s_print_json(ev, topic);
    } else {
        kmx_format_record_t fr;
        char seq[24];
        snprintf(seq, sizeof(seq), "%" PRIu64, ev->seq);
        if (ev->record)
            kmx_format_record_init(&fr, ev->record, ev->seq, 0);
        else
            memset(&fr, 0, sizeof(fr));
        const char *cells[] = {seq, s_event_type(ev->type), topic, fr.cells[4], fr.cells[7],
                               fr.cells[8]};
        if (w->opts->format == KMX_FORMAT_CSV) {
            kmx_format_csv_row(stdout, cells, 6);
        } else {
            printf("%s  %s  %s  %s  %s %s\n", cells[0], cells[1], cells[2],
                   cells[3] ? cells[3] : "-", cells[4] ? cells[4] : "-",
                   cells[5] ? cells[5] : "");
        }
    }
    fflush(stdout);
    w->printed++;
}

// Prints ev if it is new and wanted, advancing w->last.
static void s_emit(s_watch_t *w, const Kmx__V1__UpdateEvent *ev)
{
    if (w->have_last && ev->seq <= w->last)
        return;
    w->last = ev->seq;
    w->have_last = true;
    const char *topic = ev->topic ? ev->topic : "";
    if (ev->type != KMX__V1__EVENT_TYPE__HEARTBEAT && s_topic_matches(w, topic) && !s_done(w))
        s_print_event(w, ev);
}

// Replays events after w->last up to the newest committed one. Returns 0 or an exit code.
static int s_replay(s_watch_t *w)
{
    uint64_t cursor = w->last;
    for (;;) {
        Kmx__V1__Response *resp = NULL;
        int rc = kmx_client_replay(w->client, cursor, S_REPLAY_PAGE,
                                   w->all ? NULL : w->prefixes.items,
                                   w->all ? 0 : w->prefixes.n, &resp);
        if (rc < 0) {
            if (rc == KMX_ERR_RESYNC)
                kmx_cli_error("events after seq %" PRIu64 " are no longer kept; start again "
                              "without --since or with a newer one",
                              cursor);
            else
                kmx_cli_call_failed(w->client, rc);
            if (resp)
                kmx__v1__response__free_unpacked(resp, NULL);
            return KMX_EXIT_SERVER;
        }
        const Kmx__V1__ReplayResult *res = resp->replay;
        for (size_t i = 0; i < res->n_events && !s_done(w); i++)
            s_emit(w, res->events[i]);
        bool more = res->n_events > 0 && res->events[res->n_events - 1]->seq > cursor &&
                    res->events[res->n_events - 1]->seq < res->last_seq;
        if (more)
            cursor = res->events[res->n_events - 1]->seq;
        else if (res->last_seq > w->last) {
            // Everything matching up to last_seq has been seen.
            w->last = res->last_seq;
            w->have_last = true;
        }
        kmx__v1__response__free_unpacked(resp, NULL);
        if (!more || s_done(w))
            return 0;
    }
}

// Handles one published event. Returns 0 or an exit code.
static int s_on_event(s_watch_t *w, const Kmx__V1__UpdateEvent *ev, bool heartbeat)
{
    if (heartbeat) {
        if (!w->have_last) {
            w->last = ev->seq;
            w->have_last = true;
            return 0;
        }
        return ev->seq > w->last ? s_replay(w) : 0;
    }
    if (w->have_last && ev->seq > w->last + 1) {
        // Sequence numbers are gap-free: something between may be ours and was missed.
        int rc = s_replay(w);
        if (rc != 0)
            return rc;
    }
    s_emit(w, ev);
    return 0;
}

// Receives one [topic][UpdateEvent] message. Returns 0 or an exit code.
static int s_receive(s_watch_t *w)
{
    zmq_msg_t frames[2];
    int nframes = 0;
    int more = 1;
    while (more) {
        zmq_msg_t part;
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, w->sub, 0) < 0) {
            zmq_msg_close(&part);
            for (int i = 0; i < nframes; i++)
                zmq_msg_close(&frames[i]);
            return errno == EINTR ? 0 : KMX_EXIT_SERVER;
        }
        more = zmq_msg_more(&part);
        if (nframes < 2)
            frames[nframes++] = part;
        else
            zmq_msg_close(&part);
    }
    int rc = 0;
    if (nframes == 2 && zmq_msg_size(&frames[1]) <= KMX_MSG_MAX) {
        size_t tlen = zmq_msg_size(&frames[0]);
        bool heartbeat = tlen == strlen(S_HEARTBEAT_TOPIC) &&
                         memcmp(zmq_msg_data(&frames[0]), S_HEARTBEAT_TOPIC, tlen) == 0;
        Kmx__V1__UpdateEvent *ev = kmx__v1__update_event__unpack(
            NULL, zmq_msg_size(&frames[1]), zmq_msg_data(&frames[1]));
        if (ev) {
            heartbeat = heartbeat || ev->type == KMX__V1__EVENT_TYPE__HEARTBEAT;
            rc = s_on_event(w, ev, heartbeat);
            kmx__v1__update_event__free_unpacked(ev, NULL);
        }
    }
    for (int i = 0; i < nframes; i++)
        zmq_msg_close(&frames[i]);
    return rc;
}

static int s_subscribe(s_watch_t *w)
{
    w->ctx = zmq_ctx_new();
    w->sub = w->ctx ? zmq_socket(w->ctx, ZMQ_SUB) : NULL;
    if (!w->sub)
        return KMX_ERR_IO;
    int zero = 0, hwm = 100000;
    zmq_setsockopt(w->sub, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_setsockopt(w->sub, ZMQ_RCVHWM, &hwm, sizeof(hwm));
    if (w->all)
        zmq_setsockopt(w->sub, ZMQ_SUBSCRIBE, "", 0);
    for (size_t i = 0; i < w->prefixes.n; i++)
        zmq_setsockopt(w->sub, ZMQ_SUBSCRIBE, w->prefixes.items[i],
                       strlen(w->prefixes.items[i]));
    zmq_setsockopt(w->sub, ZMQ_SUBSCRIBE, S_HEARTBEAT_TOPIC, strlen(S_HEARTBEAT_TOPIC));
    if (kmx_curve_client(w->sub, KMX_CURVE_TO_BROKER) != 0)
        return KMX_ERR_INVAL; // logged: which setting is missing
    if (zmq_connect(w->sub, w->opts->events) < 0) {
        kmx_cli_error("cannot connect to %s: %s", w->opts->events, zmq_strerror(errno));
        return KMX_ERR_IO;
    }
    return 0;
}

// Establishes where printing starts: after --since (replaying history), or after the
// newest event committed now, so events committed while subscribing are not lost.
static int s_start(s_watch_t *w)
{
    if (w->has_since) {
        w->last = w->since;
        w->have_last = true;
        return s_replay(w);
    }
    Kmx__V1__Response *resp = NULL;
    int rc = kmx_client_replay(w->client, UINT64_MAX - 1, 1, NULL, 0, &resp);
    if (rc == 0) {
        w->last = resp->replay->last_seq;
        w->have_last = true;
    }
    // Without kmx.query the first live event or heartbeat sets the starting point.
    if (resp)
        kmx__v1__response__free_unpacked(resp, NULL);
    return 0;
}

static int s_loop(s_watch_t *w)
{
    while (!s_done(w)) {
        zmq_pollitem_t item = {w->sub, 0, ZMQ_POLLIN, 0};
        int rc = zmq_poll(&item, 1, S_POLL_MS);
        if (rc < 0 && errno != EINTR) {
            kmx_cli_error("events: %s", zmq_strerror(errno));
            return KMX_EXIT_SERVER;
        }
        if (rc > 0 && (rc = s_receive(w)) != 0)
            return rc;
    }
    return KMX_EXIT_OK;
}

static int s_watch_options(s_watch_t *w, int argc, char **argv)
{
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
    return -1;
}

int kmx_cli_watch(kmx_cli_opts_t *opts, int argc, char **argv)
{
    s_watch_t w;
    memset(&w, 0, sizeof(w));
    w.opts = opts;
    int rc = s_watch_options(&w, argc, argv);
    if (rc >= 0) { // --help or a usage error: nothing to watch
        kmx_cli_list_free(&w.prefixes);
        return rc;
    }
    w.client = kmx_cli_connect(opts);
    rc = w.client && s_subscribe(&w) == 0 ? -1 : KMX_EXIT_SERVER;
    if (rc < 0 && opts->format == KMX_FORMAT_CSV) {
        const char *header[] = {"seq", "type", "topic", "item", "value", "unit"};
        kmx_format_csv_row(stdout, header, 6);
    }
    if (rc < 0)
        rc = s_start(&w);
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
