/*  kmx_worker - the shared main loop of kmx's stateless worker services.
    Configuration comes from flags, then environment variables, then loopback defaults.  */
#include "kmx_worker.h"
#include "kmx_err.h"
#include "kmx_local.h"
#include "kmx_log.h"
#include "kmx_mdp.h"
#include "kmx_proc.h"

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define S_POLL_MS 1000 // how often the loop looks at the stop flag

typedef struct {
    const char *broker;    // broker endpoint to register with
    const char *storage;   // storage endpoint to connect to
    const char *log_level; // error, warn, info or debug; NULL keeps KMX_LOG_LEVEL
    const char *read_dir;  // storage's data directory read directly, or NULL (spec->attach)
    int nice;              // added to the process's nice value at start (0 to 19)
    const char *cpu;       // CPU list the process is kept on (--cpu), or NULL
    const char *local;     // local read socket path (--local, spec->local), or NULL
} s_config_t;

static volatile sig_atomic_t s_stop = 0;

static void s_on_signal(int sig) {
    (void)sig;
    s_stop = 1;
}

static void s_usage(FILE *to, const kmx_worker_spec_t *spec) {
    fprintf(
        to,
        "usage: %s [options]\n"
        "%s\n"
        "  --broker ENDPOINT    broker to register with (KMX_BROKER, tcp://127.0.0.1:5555)\n"
        "  --storage ENDPOINT   storage to connect to (KMX_STORAGE, tcp://127.0.0.1:5560)\n"
        "  --log-level LEVEL    error, warn, info or debug (KMX_LOG_LEVEL, info)\n"
        "  --nice N             run N steps nicer, 0 to 19 (KMX_NICE, 0)\n"
        "  --cpu LIST           keep the process on these CPUs (\"1\", \"0,2-3\"; unset: any)\n"
        "%s%s"
        "  --help               show this help\n"
        "  --version            show the version\n",
        spec->program, spec->summary,
        spec->attach
            ? "  --read-dir DIR       read storage's data directory DIR directly, same host\n"
              "                       and volume only (KMX_READ_DIR, unset: via storage)\n"
            : "",
        spec->local
            ? "  --local PATH         also answer processes of this host on the unix socket\n"
              "                       PATH, without the broker (KMX_LOCAL_SOCKET, unset: none)\n"
            : "");
}

static const char *s_env(const char *name, const char *fallback) {
    const char *v = getenv(name);
    return v && *v ? v : fallback;
}

// Reads "--flag value" or "--flag=value" at argv[*i]. Returns the value or NULL.
static const char *s_flag(int argc, char **argv, int *i, const char *flag) {
    size_t n = strlen(flag);
    if (strncmp(argv[*i], flag, n) != 0)
        return NULL;
    if (argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (argv[*i][n] != '\0' || *i + 1 >= argc)
        return NULL;
    return argv[++*i];
}

// Reads a nice increment, 0 to 19. Returns 0 or -1.
static int s_parse_nice(const char *text, int *out) {
    char *end = NULL;
    long v = strtol(text, &end, 10);
    if (end == text || *end != '\0' || v < 0 || v > 19)
        return -1;
    *out = (int)v;
    return 0;
}

// Fills cfg. Returns -1 to continue, or the exit status when the process should end now.
static int s_parse(int argc, char **argv, const kmx_worker_spec_t *spec, s_config_t *cfg) {
    cfg->broker = s_env("KMX_BROKER", "tcp://127.0.0.1:5555");
    cfg->storage = s_env("KMX_STORAGE", "tcp://127.0.0.1:5560");
    cfg->log_level = NULL;
    cfg->cpu = NULL;
    cfg->read_dir = spec->attach ? s_env("KMX_READ_DIR", NULL) : NULL;
    cfg->local = spec->local ? s_env("KMX_LOCAL_SOCKET", NULL) : NULL;
    const char *nice_text = s_env("KMX_NICE", "0");
    for (int i = 1; i < argc; i++) {
        const char *v;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            s_usage(stdout, spec);
            return 0;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("%s %s\n", spec->program, KMX_VERSION);
            return 0;
        } else if ((v = s_flag(argc, argv, &i, "--broker")) != NULL) {
            cfg->broker = v;
        } else if ((v = s_flag(argc, argv, &i, "--storage")) != NULL) {
            cfg->storage = v;
        } else if ((v = s_flag(argc, argv, &i, "--log-level")) != NULL) {
            cfg->log_level = v;
        } else if ((v = s_flag(argc, argv, &i, "--nice")) != NULL) {
            nice_text = v;
        } else if ((v = s_flag(argc, argv, &i, "--cpu")) != NULL) {
            cfg->cpu = v;
        } else if (spec->attach && (v = s_flag(argc, argv, &i, "--read-dir")) != NULL) {
            cfg->read_dir = v[0] ? v : NULL;
        } else if (spec->local && (v = s_flag(argc, argv, &i, "--local")) != NULL) {
            cfg->local = v[0] ? v : NULL;
        } else {
            fprintf(stderr, "%s: unknown or incomplete option '%s'\n", spec->program, argv[i]);
            s_usage(stderr, spec);
            return 2;
        }
    }
    if (s_parse_nice(nice_text, &cfg->nice) != 0) {
        fprintf(stderr, "%s: --nice needs a step count, 0 to 19\n", spec->program);
        return 2;
    }
    if (cfg->log_level && kmx_log_set_level(cfg->log_level) != 0) {
        fprintf(stderr, "%s: unknown log level '%s'\n", spec->program, cfg->log_level);
        return 2;
    }
    return -1;
}

static void s_install_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigemptyset(&sa.sa_mask);
    // No SA_RESTART: a signal must interrupt the poll so the loop sees the flag at once.
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

// The link's tick: heartbeats to the broker while a request is being handled.
static int s_heartbeat(void *worker) {
    return kmx_mdp_worker_heartbeat(worker) == KMX_ERR_TIMEOUT;
}

// Answers one request body with the service's handler (kmx_local_handle_fn).
static int s_handle(void *handler, const uint8_t *body, size_t size, uint8_t **out, size_t *len) {
    return kmx_handler_handle(handler, body, size, out, len);
}

// Serves requests from the broker, and from the local read socket when there is one, until
// a signal asks to stop.
static void s_serve(kmx_mdp_worker_t *worker, kmx_handler_base_t *handler, kmx_local_t *local) {
    struct pollfd fds[KMX_LOCAL_FDS];
    while (!s_stop) {
        int n = local ? kmx_local_fds(local, fds) : 0;
        zmq_msg_t body;
        int rc = kmx_mdp_worker_wait(worker, S_POLL_MS, &body, fds, n);
        if (rc == 1) {
            uint8_t *reply = NULL;
            size_t len = 0;
            int built = s_handle(handler, zmq_msg_data(&body), zmq_msg_size(&body), &reply, &len);
            zmq_msg_close(&body);
            if (built != 0)
                kmx_log_error("no reply could be built error=%s", kmx_err_name(built));
            else if (kmx_mdp_worker_send(worker, reply, len) != 0)
                kmx_log_warn("reply could not be sent to the broker");
            free(reply);
        }
        if (!local)
            continue; // timeout or interrupted: the loop condition decides
        // The local side's turn after every wake-up: after a broker request too (a broker
        // with a full queue would otherwise hand this worker one after another and keep the
        // local clients out), and after a timeout, so connections stuck inside a message
        // close.
        if (rc == 1 ? poll(fds, (nfds_t)n, 0) <= 0 : rc != KMX_MDP_OTHER)
            for (int i = 0; i < n; i++)
                fds[i].revents = 0;
        kmx_local_step(local, fds, n);
    }
}

void kmx_worker_name(const char *role, char *buf, size_t size) {
    char host[64] = "localhost";
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = '\0';
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned tag = (unsigned)(ts.tv_nsec ^ (ts.tv_sec << 8) ^ ((long)getpid() << 16)) & 0xffffu;
    snprintf(buf, size, "%s-%s-%d-%04x", role, host, (int)getpid(), tag);
}

int kmx_worker_main(int argc, char **argv, const kmx_worker_spec_t *spec) {
    kmx_log_init(spec->program);
    s_config_t cfg;
    int status = s_parse(argc, argv, spec, &cfg);
    if (status >= 0)
        return status;
    s_install_signals();
    char identity[128];
    kmx_worker_name(spec->role, identity, sizeof identity);

    status = 1;
    // Before any thread starts, so ZeroMQ's I/O threads inherit it: reads beside a long
    // import leave the cores to the writer first (docs/operations.md).
    kmx_proc_nice(cfg.nice, "the worker");
    if (kmx_proc_pin(cfg.cpu, "the worker") == KMX_ERR_INVAL) {
        fprintf(stderr, "%s: --cpu needs CPU numbers and ranges, like 1 or 0,2-3\n", spec->program);
        return 2;
    }
    kmx_local_t *local = NULL;
    void *ctx = zmq_ctx_new();
    kmx_link_t *link = ctx ? kmx_link_new(ctx, cfg.storage) : NULL;
    kmx_handler_base_t *handler = link ? spec->create(link, identity) : NULL;
    void *direct = handler && cfg.read_dir ? spec->attach(link, cfg.read_dir) : NULL;
    if (handler && cfg.read_dir && !direct)
        kmx_handler_destroy(&handler); // out of memory: startup fails below
    kmx_mdp_worker_t *worker =
        handler ? kmx_mdp_worker_new(ctx, cfg.broker, spec->service, identity) : NULL;
    if (!worker) {
        kmx_log_error("startup failed broker=%s storage=%s", cfg.broker, cfg.storage);
        goto out;
    }
    kmx_link_set_tick(link, s_heartbeat, worker);
    const char *why = NULL;
    local = cfg.local ? kmx_local_listen(cfg.local, s_handle, handler, &why) : NULL;
    handler->local = local;
    if (cfg.local && !local) {
        kmx_log_error("cannot listen on the local read socket path=%s: %s", cfg.local, why);
        fprintf(stderr, "%s: --local %s: %s\n", spec->program, cfg.local, why);
        goto out;
    }
    kmx_log_info("serving service=%s worker=%s broker=%s storage=%s read_dir=%s local=%s "
                 "nice=%d cpu=%s",
                 spec->service, identity, cfg.broker, cfg.storage,
                 cfg.read_dir ? cfg.read_dir : "none", cfg.local ? cfg.local : "none", cfg.nice,
                 cfg.cpu ? cfg.cpu : "any");
    s_serve(worker, handler, local);
    kmx_log_info("stopping worker=%s", identity);
    status = 0;
out:
    kmx_local_destroy(&local);
    kmx_mdp_worker_destroy(&worker);
    kmx_handler_destroy(&handler);
    if (direct)
        spec->detach(direct);
    kmx_link_destroy(&link);
    if (ctx)
        zmq_ctx_term(ctx);
    return status;
}
