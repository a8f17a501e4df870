/*  kmx - the command-line client. This file holds main: global options and their
    environment defaults, signal handling, dispatch to subcommands, and helpers they share.
    Exit codes: 0 ok, 1 usage or bad input, 2 unreachable or server error.  */
#include "kmx_cli.h"

#include "kmx_err.h"
#include "kmx_import.h"
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
    "  history --kind K --period P ...        print every value a figure has had\n"
    "  catalog [exports|consumption]          list markets, categories, items, sources\n"
    "  query exports|consumption [filters]    sum values, grouped with --by\n"
    "  list [exports|consumption] [filters]   print every matching record (alias: dump)\n"
    "  watch [PREFIX...] [--since SEQ]        print change events as they happen\n"
    "  stats                                  print broker and service statistics\n"
    "  ping [SERVICE]                         check that services answer\n"
    "  keygen                                 print a new CURVE key pair (docs/security.md)\n"
    "\n"
    "options:\n"
    "  --broker EP    broker endpoint (KMX_BROKER, default tcp://127.0.0.1:5555), or\n"
    "                 unix:PATH: reads only, on a kmx-query worker's local read socket\n"
    "  --read-socket PATH  reads on that local read socket, the rest to the broker;\n"
    "                 the broker answers a read the socket cannot (KMX_READ_SOCKET)\n"
    "  --events EP    event endpoint for watch (KMX_EVENTS, default tcp://127.0.0.1:5557)\n"
    "  --timeout MS   per-try timeout in ms (KMX_TIMEOUT, default 5000)\n"
    "  --retries N    tries per request (KMX_RETRIES, default 3)\n"
    "  --deadline MS  retry timeouts and UNAVAILABLE with backoff for up to MS in total\n"
    "                 (KMX_DEADLINE; default 0 = off, import and watch 60000)\n"
    "  --format F     table, json or csv\n"
    "  --help, --version\n"
    "\n"
    "Run 'kmx COMMAND --help' for a command's options. Exit status: 0 ok, 1 usage or bad\n"
    "input, 2 unreachable or server error.\n";

void kmx_cli_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("kmx: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int kmx_cli_parse_u64(const char *text, unsigned long long max, unsigned long long *out) {
    return kmx_qargs_parse_u64(text, max, out);
}

// name is a flag ("timeout": reported as --timeout) or an environment variable
// ("KMX_TIMEOUT": reported as it is).
static int s_parse_int(const char *name, const char *arg, int min, int *out) {
    unsigned long long v = 0;
    if (kmx_cli_parse_u64(arg, 1000000000ULL, &v) < 0 || (int)v < min) {
        kmx_cli_error("%s%s wants an integer of at least %d, not \"%s\"",
                      strncmp(name, "KMX_", 4) == 0 ? "" : "--", name, min, arg ? arg : "");
        return -1;
    }
    *out = (int)v;
    return 1;
}

// Reports why getopt_long refused argv[at] (the option text, "--name" or "--name=value").
static void s_option_error(const char *command, const char *text, const struct option *longopts,
                           int optopt_value) {
    char prefix[64] = "";
    if (command)
        snprintf(prefix, sizeof prefix, "%s: ", command);
    if (!text || strncmp(text, "--", 2) != 0) {
        if (optopt_value > 0 && optopt_value < 128)
            kmx_cli_error("%sunknown option '-%c'", prefix, optopt_value);
        else
            kmx_cli_error("%sunknown option '%s'", prefix, text ? text : "");
        return;
    }
    const char *name = text + 2;
    size_t len = strcspn(name, "=");
    size_t best = 99;
    const struct option *exact = NULL, *first = NULL; // named whole / first abbreviated
    int differ = 0; // the abbreviation fits options of different meanings
    const char *closest = NULL;
    char given[65]; // the name without its "=value"
    snprintf(given, sizeof given, "%.*s", (int)(len < 64 ? len : 64), name);
    for (const struct option *o = longopts; o->name; o++) {
        if (strncmp(o->name, name, len) == 0) {
            if (strlen(o->name) == len)
                exact = o;
            if (!first)
                first = o;
            else if (o->val != first->val)
                differ = 1;
        }
        size_t d = kmx_import_distance(given, o->name);
        if (d < best)
            best = d, closest = o->name;
    }
    const struct option *known = exact ? exact : first;
    int ambiguous = !exact && differ;
    if (known && !ambiguous) {
        // A known option (or its unambiguous prefix): its value is missing or not wanted.
        if (name[len] == '=')
            kmx_cli_error("%soption '--%s' takes no value", prefix, known->name);
        else
            kmx_cli_error("%soption '--%s' needs a value", prefix, known->name);
    } else if (known) {
        kmx_cli_error("%soption '--%.*s' is ambiguous (a prefix of several options)", prefix,
                      (int)len, name);
    } else if (closest && best <= (len > 5 ? 2u : 1u)) {
        kmx_cli_error("%sunknown option '--%.*s' (did you mean --%s?)", prefix, (int)len, name,
                      closest);
    } else {
        kmx_cli_error("%sunknown option '--%.*s' (see kmx %s%s--help)", prefix, (int)len, name,
                      command ? command : "", command ? " " : "");
    }
}

static int s_getopt(const char *command, int argc, char **argv, const char *shortopts,
                    const struct option *longopts) {
    opterr = 0;
    int opt = getopt_long(argc, argv, shortopts, longopts, NULL);
    if (opt == '?' || opt == ':') {
        int at = optind > 0 && optind <= argc ? optind - 1 : 0;
        s_option_error(command, at > 0 ? argv[at] : NULL, longopts, optopt);
        return '?';
    }
    return opt;
}

int kmx_cli_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts) {
    return s_getopt(argv[0], argc, argv, shortopts, longopts);
}

int kmx_cli_common_option(kmx_cli_opts_t *opts, int opt, const char *arg) {
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
    case KMX_OPT_DEADLINE:
        return s_parse_int("deadline", arg, 0, &opts->deadline_ms);
    case KMX_OPT_READ_SOCKET:
        opts->read_socket = arg;
        return 1;
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

int kmx_cli_refuse_csv(const kmx_cli_opts_t *opts, const char *command, const char *hint) {
    if (opts->format != KMX_FORMAT_CSV)
        return -1;
    kmx_cli_error("%s: --format csv is not an output of %s; it prints a table or json%s", command,
                  command, hint ? hint : "");
    return KMX_EXIT_INPUT;
}

void kmx_cli_getopt_reset(void) {
    // glibc re-initialises getopt completely (including permutation state) on optind 0.
    optind = 0;
    opterr = 1;
}

kmx_client_t *kmx_cli_connect(const kmx_cli_opts_t *opts) {
    kmx_client_t *client = kmx_client_new(opts->broker, opts->timeout_ms, opts->tries);
    if (!client) {
        kmx_cli_error("cannot set up a connection to %s", opts->broker);
        return NULL;
    }
    if (opts->deadline_ms > 0)
        kmx_client_set_deadline(client, opts->deadline_ms);
    if (opts->read_socket && *opts->read_socket &&
        kmx_client_set_read_socket(client, opts->read_socket) != 0) {
        kmx_cli_error("--read-socket %s: a unix socket path of at most 107 bytes, beside a "
                      "broker endpoint (not a unix: one)",
                      opts->read_socket);
        kmx_client_destroy(&client);
    }
    return client;
}

int kmx_cli_call_failed(kmx_client_t *client, int rc) {
    const char *msg = kmx_client_last_error(client);
    if (rc == KMX_ERR_TIMEOUT)
        kmx_cli_error("%s (is the broker at the given endpoint running?)", msg);
    else
        kmx_cli_error("%s", *msg ? msg : kmx_strerror(rc));
    return rc == KMX_ERR_INVAL || rc == KMX_ERR_NOT_FOUND ? KMX_EXIT_INPUT : KMX_EXIT_SERVER;
}

int kmx_cli_list_push(kmx_cli_list_t *list, const char *text) {
    return kmx_qargs_list_push(list, text);
}

int kmx_cli_list_add(kmx_cli_list_t *list, const char *text) {
    return kmx_qargs_list_add(list, text);
}

void kmx_cli_list_free(kmx_cli_list_t *list) {
    kmx_qargs_list_free(list);
}

static void s_on_signal(int sig) {
    (void)sig;
    kmx_cli_stop = 1;
}

static void s_install_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = s_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

// Returns 0, or -1 after naming an environment variable whose value is not usable.
static int s_defaults(kmx_cli_opts_t *opts) {
    const char *env;
    opts->broker = (env = getenv("KMX_BROKER")) && *env ? env : "tcp://127.0.0.1:5555";
    opts->events = (env = getenv("KMX_EVENTS")) && *env ? env : "tcp://127.0.0.1:5557";
    opts->read_socket = getenv("KMX_READ_SOCKET");
    opts->timeout_ms = 5000;
    opts->tries = 3;
    if ((env = getenv("KMX_TIMEOUT")) && *env &&
        s_parse_int("KMX_TIMEOUT", env, 1, &opts->timeout_ms) < 0)
        return -1;
    if ((env = getenv("KMX_RETRIES")) && *env &&
        s_parse_int("KMX_RETRIES", env, 1, &opts->tries) < 0)
        return -1;
    opts->deadline_ms = -1;
    if ((env = getenv("KMX_DEADLINE")) && *env &&
        s_parse_int("KMX_DEADLINE", env, 0, &opts->deadline_ms) < 0)
        return -1;
    return 0;
}

typedef struct {
    const char *name;                                        // subcommand word
    int (*run)(kmx_cli_opts_t *opts, int argc, char **argv); // its entry point
} s_command_t;

static const s_command_t s_commands[] = {
    {"import", kmx_cli_import},   {"put", kmx_cli_put},       {"delete", kmx_cli_delete},
    {"get", kmx_cli_get},         {"query", kmx_cli_query},   {"list", kmx_cli_list},
    {"dump", kmx_cli_list},       {"watch", kmx_cli_watch},   {"stats", kmx_cli_stats},
    {"ping", kmx_cli_ping},       {"keygen", kmx_cli_keygen}, {"history", kmx_cli_history},
    {"catalog", kmx_cli_catalog},
};

// Parses options before the subcommand. Returns -1 to continue, else an exit code.
static int s_parse_global(kmx_cli_opts_t *opts, int argc, char **argv) {
    static const struct option longopts[] = {
        KMX_CLI_COMMON_OPTIONS, {"version", no_argument, NULL, 'V'}, {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = s_getopt(NULL, argc, argv, "+hV", longopts)) != -1) {
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

int main(int argc, char **argv) {
    kmx_log_init("kmx");
    if (!getenv("KMX_LOG_LEVEL"))
        kmx_log_set_level("error");
    kmx_cli_opts_t opts;
    memset(&opts, 0, sizeof(opts));
    if (s_defaults(&opts) < 0) {
        fputs("kmx: unset the variable or give it a valid value\n", stderr);
        return KMX_EXIT_INPUT;
    }
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
