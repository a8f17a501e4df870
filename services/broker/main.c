/*  kmx-broker - command line front of kmx_broker: reads flags and environment, installs the
    signal handlers and runs the poll loop until SIGINT or SIGTERM.  */
#include "kmx_broker.h"
#include "kmx_err.h"
#include "kmx_log.h"
#include "kmx_proc.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

static volatile sig_atomic_t s_stop = 0;

static void s_on_signal(int sig) {
    (void)sig;
    s_stop = 1;
}

static void s_usage(FILE *out) {
    fputs(
        "usage: kmx-broker [options]\n"
        "  --bind ENDPOINT          ROUTER for MDP clients and workers\n"
        "                           (KMX_BROKER_BIND, default tcp://127.0.0.1:5555)\n"
        "  --publish-bind ENDPOINT  XSUB where publishers connect\n"
        "                           (KMX_PUBLISH_BIND, default tcp://127.0.0.1:5558)\n"
        "  --events-bind ENDPOINT   XPUB where subscribers connect\n"
        "                           (KMX_EVENTS_BIND, default tcp://127.0.0.1:5557)\n"
        "  --request-timeout MS     how long a request waits for a service with no worker\n"
        "                           (KMX_REQUEST_TIMEOUT, default 3000)\n"
        "  --queue-max N            requests waiting per service\n"
        "                           (KMX_BROKER_QUEUE_MAX, default 10000)\n"
        "  --service-queue-bytes N  request bytes waiting per service\n"
        "                           (KMX_BROKER_SERVICE_QUEUE_BYTES, default 402653184 = 384 MiB)\n"
        "  --queue-bytes N          request bytes waiting across all services\n"
        "                           (KMX_BROKER_QUEUE_BYTES, default 536870912 = 512 MiB)\n"
        "  --log-level LEVEL        error, warn, info, debug (KMX_LOG_LEVEL, default info)\n"
        "  --cpu LIST               keep the broker on these CPUs (\"0\", \"0,2-3\"; default any)\n"
        "  --help                   show this help\n"
        "  --version                show the version\n",
        out);
}

// Parses a timeout in milliseconds. Returns 0 or KMX_ERR_INVAL.
static int s_parse_ms(const char *text, int *out) {
    char *end = NULL;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < 0 || value > 3600000)
        return KMX_ERR_INVAL;
    *out = (int)value;
    return 0;
}

// Parses a positive count or size. Returns 0 or KMX_ERR_INVAL.
static int s_parse_size(const char *text, size_t *out) {
    char *end = NULL;
    errno = 0;
    unsigned long long value = strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value == 0 || text[0] == '-' ||
        value > (unsigned long long)SIZE_MAX / 2)
        return KMX_ERR_INVAL;
    *out = (size_t)value;
    return 0;
}

// The size settings: flag, variable, where the value goes.
typedef struct {
    const char *flag; // command-line flag
    const char *env;  // environment variable
    const char *text; // the value given, or NULL
    size_t *target;   // the configuration field
} s_size_opt_t;

static void s_env(const char *name, const char **target) {
    const char *value = getenv(name);
    if (value && *value)
        *target = value;
}

// Reads environment then flags (flags win). Returns 0, 1 when the program should exit
// successfully (--help, --version), or KMX_ERR_INVAL.
static int s_configure(int argc, char **argv, kmx_broker_config_t *cfg, const char **cpu) {
    const char *timeout = NULL;
    const char *level = NULL;
    s_size_opt_t sizes[] = {
        {"--queue-max", "KMX_BROKER_QUEUE_MAX", NULL, &cfg->queue_max},
        {"--service-queue-bytes", "KMX_BROKER_SERVICE_QUEUE_BYTES", NULL, &cfg->service_bytes_max},
        {"--queue-bytes", "KMX_BROKER_QUEUE_BYTES", NULL, &cfg->queued_bytes_max},
    };
    const size_t n_sizes = sizeof sizes / sizeof sizes[0];
    for (size_t k = 0; k < n_sizes; k++)
        s_env(sizes[k].env, &sizes[k].text);
    s_env("KMX_BROKER_BIND", &cfg->bind);
    s_env("KMX_PUBLISH_BIND", &cfg->publish_bind);
    s_env("KMX_EVENTS_BIND", &cfg->events_bind);
    s_env("KMX_REQUEST_TIMEOUT", &timeout);
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0) {
            s_usage(stdout);
            return 1;
        }
        if (strcmp(arg, "--version") == 0) {
            printf("kmx-broker %s\n", KMX_VERSION);
            return 1;
        }
        const char **target = strcmp(arg, "--bind") == 0              ? &cfg->bind
                              : strcmp(arg, "--publish-bind") == 0    ? &cfg->publish_bind
                              : strcmp(arg, "--events-bind") == 0     ? &cfg->events_bind
                              : strcmp(arg, "--request-timeout") == 0 ? &timeout
                              : strcmp(arg, "--log-level") == 0       ? &level
                              : strcmp(arg, "--cpu") == 0             ? cpu
                                                                      : NULL;
        for (size_t k = 0; k < n_sizes && !target; k++)
            target = strcmp(arg, sizes[k].flag) == 0 ? &sizes[k].text : NULL;
        if (!target || i + 1 >= argc) {
            fprintf(stderr, "kmx-broker: %s '%s'\n",
                    target ? "missing value for" : "unknown option", arg);
            s_usage(stderr);
            return KMX_ERR_INVAL;
        }
        *target = argv[++i];
    }
    if (level && kmx_log_set_level(level) != 0) {
        fprintf(stderr, "kmx-broker: bad log level '%s'\n", level);
        return KMX_ERR_INVAL;
    }
    for (size_t k = 0; k < n_sizes; k++) {
        if (sizes[k].text && s_parse_size(sizes[k].text, sizes[k].target) != 0) {
            fprintf(stderr, "kmx-broker: bad value '%s' for %s (%s): give a positive integer\n",
                    sizes[k].text, sizes[k].flag, sizes[k].env);
            return KMX_ERR_INVAL;
        }
    }
    if (timeout && s_parse_ms(timeout, &cfg->request_timeout_ms) != 0) {
        fprintf(stderr, "kmx-broker: bad request timeout '%s'\n", timeout);
        return KMX_ERR_INVAL;
    }
    return 0;
}

static void s_install_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int main(int argc, char **argv) {
    kmx_log_init("kmx-broker");
    kmx_broker_config_t cfg;
    kmx_broker_config_init(&cfg);
    const char *cpu = NULL;
    int rc = s_configure(argc, argv, &cfg, &cpu);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    // Before zmq_ctx_new, so ZeroMQ's I/O thread stays beside the request loop.
    if (kmx_proc_pin(cpu, "the broker") == KMX_ERR_INVAL) {
        fprintf(stderr, "kmx-broker: --cpu needs CPU numbers and ranges, like 0 or 0,2-3\n");
        return 2;
    }
    s_install_signals();
    void *ctx = zmq_ctx_new();
    if (!ctx) {
        kmx_log_error("cannot create ZeroMQ context");
        return 1;
    }
    kmx_broker_t *broker = kmx_broker_new(ctx, &cfg);
    if (broker) {
        kmx_log_info("broker started bind=%s publish=%s events=%s version=%s",
                     kmx_broker_endpoint(broker, KMX_BROKER_ROUTER),
                     kmx_broker_endpoint(broker, KMX_BROKER_XSUB),
                     kmx_broker_endpoint(broker, KMX_BROKER_XPUB), KMX_VERSION);
        rc = kmx_broker_run(broker, &s_stop);
        kmx_log_info("broker stopping err=%s", kmx_strerror(rc));
        kmx_broker_destroy(&broker);
    } else
        rc = KMX_ERR_IO;
    zmq_ctx_term(ctx);
    return rc == 0 ? 0 : 1;
}
