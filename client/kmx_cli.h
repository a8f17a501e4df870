/*  kmx_cli - shared pieces of the `kmx` command: global options, exit codes, error
    printing, list arguments, and the entry point of each subcommand.  */
#ifndef KMX_CLI_H
#define KMX_CLI_H

#include "kmx_client.h"
#include "kmx_format.h"
#include "kmx_qargs.h"

#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#define KMX_EXIT_OK 0     // success
#define KMX_EXIT_INPUT 1  // usage error, bad input, rejected records, not found
#define KMX_EXIT_SERVER 2 // broker or service unreachable, or a server-side error

// Long-option values shared by every subcommand (beyond any single character).
enum {
    KMX_OPT_BROKER = 1000,
    KMX_OPT_EVENTS,
    KMX_OPT_TIMEOUT,
    KMX_OPT_RETRIES,
    KMX_OPT_FORMAT,
    KMX_OPT_HELP,
    KMX_OPT_DEADLINE,
    KMX_OPT_READ_SOCKET,
    KMX_OPT_FIRST_COMMAND // subcommands number their own options from here
};

#define KMX_CLI_COMMON_OPTIONS                                                                     \
    {"broker", required_argument, NULL, KMX_OPT_BROKER},                                           \
        {"events", required_argument, NULL, KMX_OPT_EVENTS},                                       \
        {"timeout", required_argument, NULL, KMX_OPT_TIMEOUT},                                     \
        {"retries", required_argument, NULL, KMX_OPT_RETRIES},                                     \
        {"format", required_argument, NULL, KMX_OPT_FORMAT},                                       \
        {"deadline", required_argument, NULL, KMX_OPT_DEADLINE},                                   \
        {"read-socket", required_argument, NULL, KMX_OPT_READ_SOCKET}, {                           \
        "help", no_argument, NULL, KMX_OPT_HELP                                                    \
    }

typedef struct {
    const char *broker;       // request endpoint (--broker, KMX_BROKER)
    const char *events;       // event endpoint (--events, KMX_EVENTS)
    int timeout_ms;           // per-try timeout (--timeout, KMX_TIMEOUT)
    int tries;                // tries per request (--retries, KMX_RETRIES)
    int deadline_ms;          // retry time per request (--deadline, KMX_DEADLINE), -1 unset
    const char *read_socket;  // reads on a local read socket (--read-socket, KMX_READ_SOCKET)
    kmx_format_kind_t format; // output format (--format)
    bool format_set;          // --format was given
    bool help;                // --help was given
} kmx_cli_opts_t;

// Set by SIGINT/SIGTERM; long-running commands poll it.
extern volatile sig_atomic_t kmx_cli_stop;

// A growing list of strings from repeatable or comma-separated options.
typedef kmx_qargs_list_t kmx_cli_list_t;

// Prints "kmx: <message>" on stderr.
void kmx_cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

// Handles a common option. Returns 1 if opt was one (and valid), 0 if not a common
// option, or -1 after printing an error for an invalid value.
int kmx_cli_common_option(kmx_cli_opts_t *opts, int opt, const char *arg);

// getopt_long without getopt's own messages: an unknown, ambiguous or misused option is
// reported as "kmx: COMMAND: ..." (argv[0] is the subcommand name), with the closest known
// option for a misspelt one ("did you mean --period?"), and '?' is returned.
int kmx_cli_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts);

// For commands whose output is a table or json only: returns -1 to continue, or prints
// why --format csv is refused (plus hint) and returns KMX_EXIT_INPUT.
int kmx_cli_refuse_csv(const kmx_cli_opts_t *opts, const char *command, const char *hint);

// Resets getopt for a subcommand's argv (argv[0] is the subcommand name).
void kmx_cli_getopt_reset(void);

// Connects to the broker. Prints an error and returns NULL on failure.
kmx_client_t *kmx_cli_connect(const kmx_cli_opts_t *opts);

// Maps a kmx error from a call to an exit code (bad request or not found -> 1, else 2)
// after printing the client's last error.
int kmx_cli_call_failed(kmx_client_t *client, int rc);

// Appends a copy of text as one item. Returns 0 or KMX_ERR_NOMEM.
int kmx_cli_list_push(kmx_cli_list_t *list, const char *text);

// Appends the comma-separated items of text to list. Returns 0 or KMX_ERR_NOMEM.
int kmx_cli_list_add(kmx_cli_list_t *list, const char *text);
void kmx_cli_list_free(kmx_cli_list_t *list);

// Parses a non-negative integer option. Returns 0 or KMX_ERR_INVAL.
int kmx_cli_parse_u64(const char *text, unsigned long long max, unsigned long long *out);

// Subcommands: argv[0] is the subcommand name. Each returns an exit code.
int kmx_cli_import(kmx_cli_opts_t *opts, int argc, char **argv);
int kmx_cli_put(kmx_cli_opts_t *opts, int argc, char **argv);
int kmx_cli_delete(kmx_cli_opts_t *opts, int argc, char **argv);
int kmx_cli_get(kmx_cli_opts_t *opts, int argc, char **argv);
int kmx_cli_query(kmx_cli_opts_t *opts, int argc, char **argv);
int kmx_cli_list(kmx_cli_opts_t *opts, int argc, char **argv);
int kmx_cli_history(kmx_cli_opts_t *opts, int argc, char **argv);
int kmx_cli_catalog(kmx_cli_opts_t *opts, int argc, char **argv);
int kmx_cli_watch(kmx_cli_opts_t *opts, int argc, char **argv);
int kmx_cli_stats(kmx_cli_opts_t *opts, int argc, char **argv);
int kmx_cli_ping(kmx_cli_opts_t *opts, int argc, char **argv);
int kmx_cli_keygen(kmx_cli_opts_t *opts, int argc, char **argv);

#endif
