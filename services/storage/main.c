/*  kmx-storage - the single LMDB writer of kmx. Parses flags and environment variables
    (flags win), installs the stop signals and runs the service loop until SIGTERM/SIGINT.
    Offline subcommands share the binary: `check` verifies a store, `backup` copies it,
    `upgrade` brings a store of the previous schema to this one.  */
#include "kmx_err.h"
#include "kmx_log.h"
#include "kmx_schema.h"
#include "kmx_storage.h"
#include "kmx_store.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zmq.h>

static volatile sig_atomic_t s_stop = 0;

typedef struct {
    const char *bind;      // --bind / KMX_STORAGE_BIND
    const char *publish;   // --publish / KMX_PUBLISH
    const char *data_dir;  // --data-dir / KMX_DATA_DIR
    const char *map_size;  // --map-size / KMX_MAP_SIZE, bytes
    const char *log_level; // --log-level / KMX_LOG_LEVEL
    const char *sync;      // --sync / KMX_SYNC: full, nometasync, none
    const char *wait_us;   // --batch-wait-us / KMX_BATCH_WAIT_US
    const char *retain;    // --retain-events / KMX_RETAIN_EVENTS, 0 = all
    const char *readers;   // --readers / KMX_STORAGE_READERS: reader threads
    const char *nice;      // --reader-nice / KMX_STORAGE_READER_NICE: readers' nice steps
    const char *command;   // "serve", "check", "backup" or "upgrade"
    const char *dest;      // backup: the destination directory
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
        "usage: kmx-storage [options]              serve\n"
        "       kmx-storage check [--data-dir DIR]  verify indexes, roll-ups, event log\n"
        "       kmx-storage backup [--data-dir DIR] DEST   hot, compacted copy into DEST\n"
        "       kmx-storage upgrade [--data-dir DIR]  previous schema -> this one (stopped)\n"
        "  --bind ENDPOINT      ROUTER for workers      (KMX_STORAGE_BIND, tcp://127.0.0.1:5560)\n"
        "  --publish ENDPOINT   broker XSUB to publish to (KMX_PUBLISH, tcp://127.0.0.1:5558)\n"
        "  --data-dir DIR       LMDB directory           (KMX_DATA_DIR, ./kmx-data)\n"
        "  --map-size BYTES     initial LMDB map size    (KMX_MAP_SIZE, 1073741824)\n"
        "  --log-level LEVEL    error, warn, info, debug (KMX_LOG_LEVEL, info)\n"
        "  --sync MODE          full, nometasync, none   (KMX_SYNC, full)\n"
        "  --batch-wait-us N    wait for more writers    (KMX_BATCH_WAIT_US, 1000)\n"
        "  --retain-events N    events kept, 0 = all     (KMX_RETAIN_EVENTS, 0)\n"
        "  --readers N          reader threads, 1 to 64  (KMX_STORAGE_READERS, 4)\n"
        "  --reader-nice N      readers (and the alternatives builder) N steps nicer than\n"
        "                       the writer, 0 to 19\n"
        "                       (KMX_STORAGE_READER_NICE, 0)\n"
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
    o->sync = s_env_or("KMX_SYNC", "full");
    o->wait_us = s_env_or("KMX_BATCH_WAIT_US", "1000");
    o->retain = s_env_or("KMX_RETAIN_EVENTS", "0");
    o->readers = s_env_or("KMX_STORAGE_READERS", "4");
    o->nice = s_env_or("KMX_STORAGE_READER_NICE", "0");
    o->command = "serve";
    o->dest = NULL;
}

// Takes the subcommand and its operands from what getopt left over.
static int s_operands(int argc, char **argv, int first, s_options_t *o) {
    int n = argc - first;
    if (n == 0)
        return 0;
    o->command = argv[first];
    if ((strcmp(o->command, "check") == 0 || strcmp(o->command, "serve") == 0 ||
         strcmp(o->command, "upgrade") == 0) &&
        n == 1)
        return 0;
    if (strcmp(o->command, "backup") == 0 && n == 2) {
        o->dest = argv[first + 1];
        return 0;
    }
    s_usage(stderr);
    return 2;
}

// Returns 0 to run, 1 to exit successfully (help, version), 2 on a usage error.
static int s_parse(int argc, char **argv, s_options_t *o) {
    static const struct option longs[] = {{"bind", required_argument, NULL, 'b'},
                                          {"publish", required_argument, NULL, 'p'},
                                          {"data-dir", required_argument, NULL, 'd'},
                                          {"map-size", required_argument, NULL, 'm'},
                                          {"log-level", required_argument, NULL, 'l'},
                                          {"help", no_argument, NULL, 'h'},
                                          {"version", no_argument, NULL, 'V'},
                                          {"sync", required_argument, NULL, 's'},
                                          {"batch-wait-us", required_argument, NULL, 'w'},
                                          {"retain-events", required_argument, NULL, 'r'},
                                          {"readers", required_argument, NULL, 'R'},
                                          {"reader-nice", required_argument, NULL, 'N'},
                                          {NULL, 0, NULL, 0}};
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
        case 's':
            o->sync = optarg;
            break;
        case 'w':
            o->wait_us = optarg;
            break;
        case 'r':
            o->retain = optarg;
            break;
        case 'R':
            o->readers = optarg;
            break;
        case 'N':
            o->nice = optarg;
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
    return s_operands(argc, argv, optind, o);
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

static int s_parse_u64(const char *text, uint64_t max, uint64_t *out) {
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || text[0] == '-' || v > max)
        return KMX_ERR_INVAL;
    *out = v;
    return 0;
}

// Fills cfg's tuning fields from the options. Returns 0 or 2 (usage error, printed).
static int s_tuning(const s_options_t *o, kmx_storage_config_t *cfg) {
    if (s_parse_size(o->map_size, &cfg->map_size) != 0) {
        fprintf(stderr, "kmx-storage: --map-size needs a byte count >= 65536\n");
        return 2;
    }
    if (kmx_store_sync_parse(o->sync, &cfg->sync) != 0) {
        fprintf(stderr, "kmx-storage: --sync is full, nometasync or none\n");
        return 2;
    }
    if (s_parse_u64(o->wait_us, 1000000, &cfg->batch_wait_us) != 0) {
        fprintf(stderr, "kmx-storage: --batch-wait-us needs microseconds, 0 to 1000000\n");
        return 2;
    }
    if (s_parse_u64(o->retain, UINT64_MAX, &cfg->retain_events) != 0) {
        fprintf(stderr, "kmx-storage: --retain-events needs a count (0 keeps all)\n");
        return 2;
    }
    uint64_t readers = 0;
    if (s_parse_u64(o->readers, KMX_STORAGE_READERS_MAX, &readers) != 0 || readers == 0) {
        fprintf(stderr, "kmx-storage: --readers needs a thread count, 1 to %d\n",
                KMX_STORAGE_READERS_MAX);
        return 2;
    }
    cfg->readers = (size_t)readers;
    uint64_t nice = 0;
    if (s_parse_u64(o->nice, 19, &nice) != 0) {
        fprintf(stderr, "kmx-storage: --reader-nice needs a step count, 0 to 19\n");
        return 2;
    }
    cfg->reader_nice = (int)nice;
    // A debug knob for tests, deliberately without a flag (docs/operations.md).
    const char *delay = getenv("KMX_DEBUG_STORAGE_READ_DELAY_MS");
    uint64_t delay_ms = 0;
    if (delay && *delay && s_parse_u64(delay, 600000, &delay_ms) != 0) {
        fprintf(stderr, "kmx-storage: KMX_DEBUG_STORAGE_READ_DELAY_MS needs milliseconds, 0 to "
                        "600000\n");
        return 2;
    }
    cfg->read_delay_ms = (unsigned)delay_ms;
    delay = getenv("KMX_DEBUG_STORAGE_WRITE_DELAY_MS");
    delay_ms = 0;
    if (delay && *delay && s_parse_u64(delay, 600000, &delay_ms) != 0) {
        fprintf(stderr, "kmx-storage: KMX_DEBUG_STORAGE_WRITE_DELAY_MS needs milliseconds, 0 to "
                        "600000\n");
        return 2;
    }
    cfg->wr_delay_ms = (unsigned)delay_ms;
    return 0;
}

// kmx-storage check: exit 0 when consistent, 1 on a mismatch or an error.
static int s_run_check(const char *dir) {
    kmx_store_config_t scfg = {.sync = KMX_STORE_SYNC_FULL, .readonly = 1};
    kmx_store_t *store = NULL;
    int err = kmx_store_open(dir, &scfg, &store);
    if (err != 0) {
        kmx_log_error("cannot open store dir=%s: %s", dir, kmx_strerror(err));
        return 1;
    }
    kmx_store_check_t r;
    err = kmx_store_check(store, &r);
    kmx_store_close(&store);
    printf("records=%llu events=%llu first_seq=%llu last_seq=%llu index_missing=%llu "
           "index_extra=%llu rollup_mismatch=%llu event_gaps=%llu bad_values=%llu\n",
           (unsigned long long)r.records, (unsigned long long)r.events,
           (unsigned long long)r.first_seq, (unsigned long long)r.last_seq,
           (unsigned long long)r.index_missing, (unsigned long long)r.index_extra,
           (unsigned long long)r.rollup_mismatch, (unsigned long long)r.event_gaps,
           (unsigned long long)r.bad_values);
    if (err != 0 && err != KMX_ERR_INTERNAL)
        kmx_log_error("check failed: %s", kmx_strerror(err));
    printf("%s\n", err == 0 ? "ok" : "MISMATCH");
    return err == 0 ? 0 : 1;
}

// kmx-storage backup: a compacted copy that a running service does not notice.
static int s_run_backup(const char *dir, const char *dest) {
    kmx_store_config_t scfg = {.sync = KMX_STORE_SYNC_FULL, .readonly = 1};
    kmx_store_t *store = NULL;
    int err = kmx_store_open(dir, &scfg, &store);
    if (err == 0)
        err = kmx_store_backup(store, dest);
    kmx_store_close(&store);
    if (err != 0) {
        kmx_log_error("backup failed dir=%s dest=%s: %s", dir, dest, kmx_strerror(err));
        return 1;
    }
    printf("backup of %s written to %s\n", dir, dest);
    return 0;
}

// kmx-storage upgrade: brings a store of schema KMX_STORE_UPGRADES_FROM to this version in
// one transaction, then verifies it like check. Exit 0 when the store is (now) current.
static int s_run_upgrade(const char *dir) {
    // A missing store is an error here, never a new empty one.
    char path[4096];
    struct stat st;
    if (snprintf(path, sizeof path, "%s/data.mdb", dir) >= (int)sizeof path ||
        stat(path, &st) != 0) {
        kmx_log_error("no kmx store to upgrade in dir=%s", dir);
        return 1;
    }
    kmx_store_config_t scfg = {.sync = KMX_STORE_SYNC_FULL, .upgrade = 1};
    kmx_store_t *store = NULL;
    int err = kmx_store_open(dir, &scfg, &store);
    if (err != 0) {
        kmx_log_error("cannot upgrade store dir=%s: %s", dir, kmx_strerror(err));
        return 1;
    }
    uint32_t from = kmx_store_upgraded_from(store);
    kmx_store_close(&store);
    if (from)
        printf("upgraded %s from schema %u to %u\n", dir, from, KMX_SCHEMA_VERSION);
    else
        printf("%s is already at schema %u\n", dir, KMX_SCHEMA_VERSION);
    return s_run_check(dir);
}

static void s_install_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal; // no SA_RESTART: zmq_poll must wake up with EINTR
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    // A file size limit (ulimit -f) then fails the write with EFBIG, answered as a full
    // disk, instead of killing the service.
    signal(SIGXFSZ, SIG_IGN);
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
    if (strcmp(o.command, "check") == 0)
        return s_run_check(o.data_dir);
    if (strcmp(o.command, "backup") == 0)
        return s_run_backup(o.data_dir, o.dest);
    if (strcmp(o.command, "upgrade") == 0)
        return s_run_upgrade(o.data_dir);
    if (strcmp(o.command, "serve") != 0) {
        s_usage(stderr);
        return 2;
    }
    kmx_storage_config_t cfg = {
        .bind = o.bind, .publish = o.publish, .data_dir = o.data_dir, .sync = KMX_STORE_SYNC_FULL};
    if ((rc = s_tuning(&o, &cfg)) != 0)
        return rc;
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
