/*  kmx-storage - the single LMDB writer of kmx. Parses flags and environment variables
    (flags win), installs the stop signals and runs the service loop until SIGTERM/SIGINT.  */
#include "kmx_err.h"
#include "kmx_log.h"
#include "kmx_storage.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

static volatile sig_atomic_t s_stop = 0;

typedef struct {
    const char *bind;      // --bind / KMX_STORAGE_BIND
    const char *publish;   // --publish / KMX_PUBLISH
    const char *data_dir;  // --data-dir / KMX_DATA_DIR
    const char *map_size;  // --map-size / KMX_MAP_SIZE, bytes
    const char *log_level; // --log-level / KMX_LOG_LEVEL
} s_options_t;

static void s_on_signal(int sig) {
    (void)sig;
    s_stop = 1;
}

static const char *s_env_or(const char *name, const char *fallback) {
    const char *v = getenv(name);
    return v && v[0] ? v : fallback;
}

static void s_usage(FILE *out) {
    fputs(
        "usage: kmx-storage [options]\n"
        "  --bind ENDPOINT      ROUTER for workers      (KMX_STORAGE_BIND, tcp://127.0.0.1:5560)\n"
        "  --publish ENDPOINT   broker XSUB to publish to (KMX_PUBLISH, tcp://127.0.0.1:5558)\n"
        "  --data-dir DIR       LMDB directory           (KMX_DATA_DIR, ./kmx-data)\n"
        "  --map-size BYTES     initial LMDB map size    (KMX_MAP_SIZE, 1073741824)\n"
        "  --log-level LEVEL    error, warn, info, debug (KMX_LOG_LEVEL, info)\n"
        "  --help, --version\n",
        out);
}

// Starts from the environment, falling back to the loopback defaults.
static void s_defaults(s_options_t *o) {
    o->bind = s_env_or("KMX_STORAGE_BIND", "tcp://127.0.0.1:5560");
    o->publish = s_env_or("KMX_PUBLISH", "tcp://127.0.0.1:5558");
    o->data_dir = s_env_or("KMX_DATA_DIR", "./kmx-data");
    o->map_size = s_env_or("KMX_MAP_SIZE", "1073741824");
    o->log_level = getenv("KMX_LOG_LEVEL");
}

// Returns 0 to run, 1 to exit successfully (help, version), 2 on a usage error.
static int s_parse(int argc, char **argv, s_options_t *o) {
    static const struct option longs[] = {
        {"bind", required_argument, NULL, 'b'},      {"publish", required_argument, NULL, 'p'},
        {"data-dir", required_argument, NULL, 'd'},  {"map-size", required_argument, NULL, 'm'},
        {"log-level", required_argument, NULL, 'l'}, {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},         {NULL, 0, NULL, 0}};
    s_defaults(o);
    int c;
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (c) {
        case 'b':
            o->bind = optarg;
            break;
        case 'p':
            o->publish = optarg;
            break;
        case 'd':
            o->data_dir = optarg;
            break;
        case 'm':
            o->map_size = optarg;
            break;
        case 'l':
            o->log_level = optarg;
            break;
        case 'h':
            s_usage(stdout);
            return 1;
        case 'V':
            printf("kmx-storage %s\n", KMX_VERSION);
            return 1;
        default:
            s_usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        s_usage(stderr);
        return 2;
    }
    return 0;
}

static int s_parse_size(const char *text, size_t *out) {
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < 65536 || v > SIZE_MAX / 2 ||
        text[0] == '-')
        return KMX_ERR_INVAL;
    *out = (size_t)v;
    return 0;
}

static void s_install_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal; // no SA_RESTART: zmq_poll must wake up with EINTR
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}

int main(int argc, char **argv) {
    s_options_t o;
    int rc = s_parse(argc, argv, &o);
    if (rc != 0)
        return rc == 1 ? 0 : 2;
    kmx_log_init("kmx-storage");
    if (o.log_level && kmx_log_set_level(o.log_level) != 0) {
        fprintf(stderr, "kmx-storage: unknown log level '%s'\n", o.log_level);
        return 2;
    }
    kmx_storage_config_t cfg = {o.bind, o.publish, o.data_dir, 0, 0};
    if (s_parse_size(o.map_size, &cfg.map_size) != 0) {
        fprintf(stderr, "kmx-storage: --map-size needs a byte count >= 65536\n");
        return 2;
    }
    s_install_signals();
    void *ctx = zmq_ctx_new();
    if (!ctx) {
        kmx_log_error("cannot create zmq context");
        return 1;
    }
    kmx_storage_t *storage = NULL;
    int err = kmx_storage_new(ctx, &cfg, &storage);
    if (err == 0)
        err = kmx_storage_run(storage, &s_stop);
    else
        kmx_log_error("cannot start: %s", kmx_strerror(err));
    kmx_storage_destroy(&storage);
    zmq_ctx_term(ctx);
    return err == 0 ? 0 : 1;
}
