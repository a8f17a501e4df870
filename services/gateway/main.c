/*  kmx-gateway - kmx over HTTP: reads its settings from flags and the environment, starts
    kmx_gateway and serves until SIGTERM or SIGINT (docs/http.md).  */
#include "kmx_gateway.h"

#include "kmx_err.h"
#include "kmx_log.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#ifndef KMX_WEB_BUILD_DIR
#define KMX_WEB_BUILD_DIR ""
#endif

static volatile sig_atomic_t s_stop;

static const char s_usage[] =
    "usage: kmx-gateway [--bind HOST:PORT] [--broker ENDPOINT] [--events ENDPOINT]\n"
    "                   [--read-socket PATH[,PATH...]] [--web DIR] [--tokens FILE]\n"
    "                   [--log-level L] [--probe] [--version]\n"
    "Serves kmx over HTTP/JSON: /v1/query/{exports,consumption}, /v1/records, /v1/record,\n"
    "/v1/import, /v1/events (Server-Sent Events), /metrics, /healthz, and the dashboard at\n"
    "/. --read-socket sends the reads to kmx-query workers' local read sockets on this\n"
    "host (kmx-query --local), the rest to the broker. Each flag has a variable:\n"
    "KMX_GATEWAY_BIND (127.0.0.1:8480), KMX_BROKER, KMX_READ_SOCKET, KMX_EVENTS, KMX_GATEWAY_WEB, "
    "KMX_GATEWAY_TOKENS (lines \"TOKEN reader|writer\"); limits\n"
    "KMX_GATEWAY_MAX_BODY, KMX_GATEWAY_MAX_QUERY, KMX_GATEWAY_MAX_STREAMS,\n"
    "KMX_GATEWAY_MAX_CONNECTIONS, KMX_GATEWAY_HEARTBEAT_MS, KMX_GATEWAY_RING. See\n"
    "docs/http.md. --probe asks the gateway at the bind address for /healthz and exits 0\n"
    "when it answers 200 (a container health check).\n";

static void s_on_signal(int sig) {
    (void)sig;
    s_stop = 1;
}

typedef struct {
    const char *bind;   // --bind / KMX_GATEWAY_BIND
    const char *tokens; // --tokens / KMX_GATEWAY_TOKENS
    bool probe;         // --probe: ask a running gateway for /healthz
} s_paths_t;

static const char *s_env(const char *name, const char *dflt) {
    const char *v = getenv(name);
    return v && *v ? v : dflt;
}

// Reads a size variable. Returns 0 or -1 after logging which one is bad.
static int s_env_size(const char *name, unsigned long long min, unsigned long long max,
                      unsigned long long *out) {
    const char *v = getenv(name);
    if (!v || !*v)
        return 0;
    unsigned long long n = 0;
    if (kmx_qargs_parse_u64(v, max, &n) < 0 || n < min) {
        kmx_log_error("gateway: %s wants an integer from %llu to %llu, not \"%s\"", name, min, max,
                      v);
        return -1;
    }
    *out = n;
    return 0;
}

static int s_limits(kmx_gateway_config_t *cfg) {
    unsigned long long body = 8u << 20, query = 8192, streams = 2000, conns = 4096;
    unsigned long long heartbeat = 15000, ring = 65536, timeout = 5000, tries = 2;
    if (s_env_size("KMX_GATEWAY_MAX_BODY", 1, 32u << 20, &body) < 0 ||
        s_env_size("KMX_GATEWAY_MAX_QUERY", 64, 1u << 20, &query) < 0 ||
        s_env_size("KMX_GATEWAY_MAX_STREAMS", 0, 100000, &streams) < 0 ||
        s_env_size("KMX_GATEWAY_MAX_CONNECTIONS", 1, 100000, &conns) < 0 ||
        s_env_size("KMX_GATEWAY_HEARTBEAT_MS", 50, 3600000, &heartbeat) < 0 ||
        s_env_size("KMX_GATEWAY_RING", 16, 1u << 24, &ring) < 0 ||
        s_env_size("KMX_TIMEOUT", 1, 600000, &timeout) < 0 ||
        s_env_size("KMX_RETRIES", 1, 100, &tries) < 0)
        return -1;
    cfg->max_body = body, cfg->max_query = query, cfg->max_streams = (unsigned)streams;
    cfg->max_connections = (unsigned)conns, cfg->heartbeat_ms = (int)heartbeat;
    cfg->ring = ring, cfg->timeout_ms = (int)timeout, cfg->tries = (int)tries;
    return 0;
}

// Parses flags over the environment's defaults. Returns -1 to run, else an exit code.
static int s_options(int argc, char **argv, kmx_gateway_config_t *cfg, s_paths_t *paths) {
    static const struct option longopts[] = {{"bind", required_argument, NULL, 'b'},
                                             {"broker", required_argument, NULL, 'r'},
                                             {"events", required_argument, NULL, 'e'},
                                             {"read-socket", required_argument, NULL, 's'},
                                             {"web", required_argument, NULL, 'w'},
                                             {"tokens", required_argument, NULL, 't'},
                                             {"version", no_argument, NULL, 'V'},
                                             {"help", no_argument, NULL, 'h'},
                                             {"probe", no_argument, NULL, 'p'},
                                             {"log-level", required_argument, NULL, 'l'},
                                             {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "hV", longopts, NULL)) != -1) {
        switch (opt) {
        case 'b':
            paths->bind = optarg;
            break;
        case 'r':
            cfg->broker = optarg;
            break;
        case 'e':
            cfg->events = optarg;
            break;
        case 's':
            cfg->read_sockets = optarg;
            break;
        case 'w':
            cfg->web_dir = optarg;
            break;
        case 't':
            paths->tokens = optarg;
            break;
        case 'p':
            paths->probe = true;
            break;
        case 'l':
            if (kmx_log_set_level(optarg) < 0) {
                fprintf(stderr, "kmx-gateway: --log-level wants error, warn, info or debug\n");
                return 1;
            }
            break;
        case 'V':
            printf("kmx-gateway %s\n", KMX_VERSION);
            return 0;
        case 'h':
            fputs(s_usage, stdout);
            return 0;
        default:
            fputs(s_usage, stderr);
            return 1;
        }
    }
    if (optind < argc) {
        fputs(s_usage, stderr);
        return 1;
    }
    return -1;
}

static int s_load_tokens(const char *path, kmx_gw_tokens_t *tokens) {
    FILE *f = fopen(path, "rb");
    char *text = f ? malloc(1u << 20) : NULL;
    size_t n = text ? fread(text, 1, 1u << 20, f) : 0;
    if (f)
        fclose(f);
    char err[KMX_GW_ERR_MAX] = "cannot read it";
    int rc = text && n < (1u << 20) ? kmx_gw_tokens_parse(text, n, tokens, err) : -1;
    free(text);
    if (rc < 0)
        kmx_log_error("gateway: token file %s: %s", path, err);
    else
        kmx_log_info("gateway: %zu bearer tokens from %s", tokens->n, path);
    return rc;
}

// The dashboard: KMX_GATEWAY_WEB, else the build tree's, else share/kmx/web beside bin/.
static const char *s_web_dir(const char *given, char *buf, size_t size) {
    struct stat st;
    if (given)
        return given;
    snprintf(buf, size, "%s/index.html", KMX_WEB_BUILD_DIR);
    if (*KMX_WEB_BUILD_DIR && stat(buf, &st) == 0) {
        snprintf(buf, size, "%s", KMX_WEB_BUILD_DIR);
        return buf;
    }
    char exe[2048];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    char *slash = n > 0 ? (exe[n] = '\0', strrchr(exe, '/')) : NULL;
    if (slash) {
        *slash = '\0';
        snprintf(buf, size, "%s/../share/kmx/web/index.html", exe);
        if (stat(buf, &st) == 0) {
            buf[strlen(buf) - strlen("/index.html")] = '\0';
            return buf;
        }
    }
    return NULL;
}

// GET /healthz from the gateway at addr (0.0.0.0 is asked on 127.0.0.1). Returns the exit
// code: 0 for a 200 answer, 1 otherwise.
static int s_probe(struct sockaddr_in addr) {
    if (addr.sin_addr.s_addr == htonl(INADDR_ANY))
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {3, 0};
    char buf[64] = {0};
    static const char req[] = "GET /healthz HTTP/1.0\r\nHost: probe\r\n\r\n";
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    }
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0 &&
              write(fd, req, sizeof(req) - 1) == (ssize_t)(sizeof(req) - 1) &&
              read(fd, buf, sizeof(buf) - 1) >= 12 && strncmp(buf, "HTTP/1.", 7) == 0 &&
              strncmp(buf + 9, "200", 3) == 0;
    if (fd >= 0)
        close(fd);
    fprintf(ok ? stdout : stderr, "kmx-gateway: /healthz %s\n", ok ? "ok" : "failed");
    return ok ? 0 : 1;
}

static void s_raise_fd_limit(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static int s_serve(kmx_gateway_config_t *cfg) {
    kmx_gateway_t *gw = kmx_gateway_new(cfg);
    if (!gw)
        return 2;
    char addr[64];
    inet_ntop(AF_INET, &cfg->bind.sin_addr, addr, sizeof(addr));
    kmx_log_info("gateway: listening on http://%s:%u broker=%s read_sockets=%s events=%s web=%s "
                 "tokens=%s",
                 addr, kmx_gateway_port(gw), cfg->broker,
                 cfg->read_sockets ? cfg->read_sockets : "none", cfg->events,
                 cfg->web_dir ? cfg->web_dir : "(none)", cfg->tokens ? "on" : "off");
    while (!s_stop) {
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
    }
    kmx_log_info("gateway: stopping");
    kmx_gateway_destroy(&gw);
    return 0;
}

int main(int argc, char **argv) {
    kmx_log_init("kmx-gateway");
    kmx_gateway_config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    s_paths_t paths = {s_env("KMX_GATEWAY_BIND", "127.0.0.1:8480"),
                       s_env("KMX_GATEWAY_TOKENS", NULL), false};
    cfg.broker = s_env("KMX_BROKER", "tcp://127.0.0.1:5555");
    cfg.events = s_env("KMX_EVENTS", "tcp://127.0.0.1:5557");
    cfg.read_sockets = s_env("KMX_READ_SOCKET", NULL);
    cfg.web_dir = s_env("KMX_GATEWAY_WEB", NULL);
    int rc = s_options(argc, argv, &cfg, &paths);
    if (rc >= 0)
        return rc;
    char err[KMX_GW_ERR_MAX];
    if (kmx_gw_addr_parse(paths.bind, &cfg.bind, err) < 0) {
        kmx_log_error("gateway: bind address: %s", err);
        return 1;
    }
    if (paths.probe)
        return s_probe(cfg.bind);
    if (s_limits(&cfg) < 0)
        return 1;
    kmx_gw_tokens_t tokens = {NULL, 0};
    if (paths.tokens && s_load_tokens(paths.tokens, &tokens) < 0)
        return 1;
    cfg.tokens = paths.tokens ? &tokens : NULL;
    char web[4096];
    cfg.web_dir = s_web_dir(cfg.web_dir, web, sizeof(web));
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = s_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    s_raise_fd_limit();
    rc = s_serve(&cfg);
    kmx_gw_tokens_fini(&tokens);
    return rc;
}
