/*  kmx - the command-line client. This file holds main: global options and their
    environment defaults, signal handling, dispatch to subcommands, and helpers they share.
    Exit codes: 0 ok, 1 usage or bad input, 2 unreachable or server error.  */
#include "kmx_cli.h"

#include "kmx_err.h"
#include "kmx_log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

volatile sig_atomic_t kmx_cli_stop = 0;

static const char s_usage[] =
    "usage: kmx [--broker EP] [--events EP] [--timeout MS] [--retries N] [--format F]\n"
    "           COMMAND [ARGS]\n"
    "\n"
    "commands:\n"
    "  import FILE [--batch N] [--atomic]     load a CSV file of records\n"
    "  put --kind K --period P ...            store one record\n"
    "  delete --kind K --period P ...         remove one record (a correction)\n"
    "  get --kind K --period P ...            print one record by its key\n"
    "  query exports|consumption [filters]    sum values, grouped with --by\n"
    "  list [exports|consumption] [filters]   print every matching record (alias: dump)\n"
    "  watch [PREFIX...] [--since SEQ]        print change events as they happen\n"
    "  stats                                  print broker and service statistics\n"
    "  ping [SERVICE]                         check that services answer\n"
    "  keygen                                 print a new CURVE key pair (docs/security.md)\n"
    "\n"
    "options:\n"
    "  --broker EP    broker endpoint (KMX_BROKER, default tcp://127.0.0.1:5555)\n"
    "  --events EP    event endpoint for watch (KMX_EVENTS, default tcp://127.0.0.1:5557)\n"
    "  --timeout MS   per-try timeout in ms (KMX_TIMEOUT, default 5000)\n"
    "  --retries N    tries per request (KMX_RETRIES, default 3)\n"
    "  --format F     table, json or csv\n"
    "  --help, --version\n"
    "\n"
    "Run 'kmx COMMAND --help' for a command's options. Exit status: 0 ok, 1 usage or bad\n"
    "input, 2 unreachable or server error.\n";

void kmx_cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("kmx: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int kmx_cli_parse_u64(const char *text, unsigned long long max, unsigned long long *out)
{
    if (!text || *text < '0' || *text > '9')
        return KMX_ERR_INVAL;
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0' || v > max)
        return KMX_ERR_INVAL;
    *out = v;
    return 0;
}

static int s_parse_int(const char *name, const char *arg, int min, int *out)
{
    unsigned long long v = 0;
    if (kmx_cli_parse_u64(arg, 1000000000ULL, &v) < 0 || (int)v < min) {
        kmx_cli_error("--%s wants an integer of at least %d, not \"%s\"", name, min,
                      arg ? arg : "");
        return -1;
    }
    *out = (int)v;
    return 1;
}

int kmx_cli_common_option(kmx_cli_opts_t *opts, int opt, const char *arg)
{
    switch (opt) {
    case KMX_OPT_BROKER:
        opts->broker = arg;
        return 1;
    case KMX_OPT_EVENTS:
        opts->events = arg;
        return 1;
    case KMX_OPT_TIMEOUT:
        return s_parse_int("timeout", arg, 1, &opts->timeout_ms);
    case KMX_OPT_RETRIES:
        return s_parse_int("retries", arg, 1, &opts->tries);
    case KMX_OPT_FORMAT:
        if (kmx_format_parse(arg, &opts->format) < 0) {
            kmx_cli_error("--format wants table, json or csv, not \"%s\"", arg);
            return -1;
        }
        opts->format_set = true;
        return 1;
    case KMX_OPT_HELP:
    case 'h':
        opts->help = true;
        return 1;
    default:
        return 0;
    }
}

void kmx_cli_getopt_reset(void)
{
    // glibc re-initialises getopt completely (including permutation state) on optind 0.
    optind = 0;
    opterr = 1;
}

kmx_client_t *kmx_cli_connect(const kmx_cli_opts_t *opts)
{
    kmx_client_t *client = kmx_client_new(opts->broker, opts->timeout_ms, opts->tries);
    if (!client)
        kmx_cli_error("cannot set up a connection to %s", opts->broker);
    return client;
}

int kmx_cli_call_failed(kmx_client_t *client, int rc)
{
    const char *msg = kmx_client_last_error(client);
    if (rc == KMX_ERR_TIMEOUT)
        kmx_cli_error("%s (is the broker at the given endpoint running?)", msg);
    else
        kmx_cli_error("%s", *msg ? msg : kmx_strerror(rc));
    return rc == KMX_ERR_INVAL || rc == KMX_ERR_NOT_FOUND ? KMX_EXIT_INPUT : KMX_EXIT_SERVER;
}

int kmx_cli_list_push(kmx_cli_list_t *list, const char *text)
{
    char **grown = realloc(list->items, (list->n + 1) * sizeof(*grown));
    if (!grown)
        return KMX_ERR_NOMEM;
    list->items = grown;
    list->items[list->n] = strdup(text);
    if (!list->items[list->n])
        return KMX_ERR_NOMEM;
    list->n++;
    return 0;
}

int kmx_cli_list_add(kmx_cli_list_t *list, const char *text)
{
    const char *p = text;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        while (len > 0 && (*p == ' ' || *p == '\t'))
            p++, len--;
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if (len > 0) {
            char *item = strndup(p, len);
            int rc = item ? kmx_cli_list_push(list, item) : KMX_ERR_NOMEM;
            free(item);
            if (rc < 0)
                return rc;
        }
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

void kmx_cli_list_free(kmx_cli_list_t *list)
{
    for (size_t i = 0; i < list->n; i++)
        free(list->items[i]);
    free(list->items);
    list->items = NULL;
    list->n = 0;
}

static void s_on_signal(int sig)
{
    (void)sig;
    kmx_cli_stop = 1;
}

static void s_install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = s_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static void s_defaults(kmx_cli_opts_t *opts)
{
    const char *env;
    opts->broker = (env = getenv("KMX_BROKER")) && *env ? env : "tcp://127.0.0.1:5555";
    opts->events = (env = getenv("KMX_EVENTS")) && *env ? env : "tcp://127.0.0.1:5557";
    opts->timeout_ms = 5000;
    opts->tries = 3;
    if ((env = getenv("KMX_TIMEOUT")) && *env && s_parse_int("timeout", env, 1,
                                                             &opts->timeout_ms) < 0)
        opts->timeout_ms = 5000;
    if ((env = getenv("KMX_RETRIES")) && *env && s_parse_int("retries", env, 1,
                                                             &opts->tries) < 0)
        opts->tries = 3;
}

typedef struct {
    const char *name;                                  // subcommand word
    int (*run)(kmx_cli_opts_t *opts, int argc, char **argv); // its entry point
} s_command_t;

static const s_command_t s_commands[] = {
    {"import", kmx_cli_import}, {"put", kmx_cli_put},     {"delete", kmx_cli_delete},
    {"get", kmx_cli_get},
    {"query", kmx_cli_query},   {"list", kmx_cli_list},   {"dump", kmx_cli_list},
    {"watch", kmx_cli_watch},   {"stats", kmx_cli_stats}, {"ping", kmx_cli_ping},
    {"keygen", kmx_cli_keygen},
};

// Parses options before the subcommand. Returns -1 to continue, else an exit code.
static int s_parse_global(kmx_cli_opts_t *opts, int argc, char **argv)
{
    static const struct option longopts[] = {KMX_CLI_COMMON_OPTIONS,
                                             {"version", no_argument, NULL, 'V'},
                                             {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "+hV", longopts, NULL)) != -1) {
        if (opt == 'V') {
            printf("kmx %s\n", KMX_VERSION);
            return KMX_EXIT_OK;
        }
        int rc = kmx_cli_common_option(opts, opt, optarg);
        if (rc <= 0) {
            fputs(s_usage, stderr);
            return KMX_EXIT_INPUT;
        }
    }
    if (opts->help) {
        fputs(s_usage, stdout);
        return KMX_EXIT_OK;
    }
    if (optind >= argc) {
        fputs(s_usage, stderr);
        return KMX_EXIT_INPUT;
    }
    return -1;
}

int main(int argc, char **argv)
{
    kmx_log_init("kmx");
    if (!getenv("KMX_LOG_LEVEL"))
        kmx_log_set_level("error");
    kmx_cli_opts_t opts;
    memset(&opts, 0, sizeof(opts));
    s_defaults(&opts);
    int rc = s_parse_global(&opts, argc, argv);
    if (rc >= 0)
        return rc;
    const char *name = argv[optind];
    for (size_t i = 0; i < sizeof(s_commands) / sizeof(s_commands[0]); i++) {
        if (strcmp(name, s_commands[i].name) == 0) {
            s_install_signals();
            int sub_argc = argc - optind;
            char **sub_argv = argv + optind;
            kmx_cli_getopt_reset();
            return s_commands[i].run(&opts, sub_argc, sub_argv);
        }
    }
    kmx_cli_error("unknown command \"%s\"", name);
    fputs(s_usage, stderr);
    return KMX_EXIT_INPUT;
}
