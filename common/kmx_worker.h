/*  kmx_worker - the process around a stateless MDP worker service (kmx-ingest, kmx-query):
    flags and environment, signals, the storage link, registration with the broker, and
    the request/reply loop. A service supplies only its handler object.  */
#ifndef KMX_WORKER_H
#define KMX_WORKER_H

#include "kmx_handler.h"
#include "kmx_link.h"

#include <stddef.h>
#include <stdint.h>

// What a worker service plugs into the runner.
typedef struct {
    const char *program; // binary name for usage and logs ("kmx-ingest")
    const char *service; // MDP service name ("kmx.ingest")
    const char *role;    // first part of the worker name ("ingest")
    const char *summary; // one line for --help
    // Creates the service's handler object (NULL on failure); the runner hands it each
    // request with kmx_handler_handle and ends it with kmx_handler_destroy.
    kmx_handler_base_t *(*create)(kmx_link_t *link, const char *worker);
    // Optional (NULL: no --read-dir): answers reads on the link from storage's data
    // directory read_dir on this host (--read-dir, KMX_READ_DIR). Returns its state, ended
    // with detach, or NULL when out of memory.
    void *(*attach)(kmx_link_t *link, const char *read_dir);
    void (*detach)(void *state);
    // Nonzero: --local PATH (KMX_LOCAL_SOCKET) also answers processes of this host on a
    // unix socket, without the broker (kmx_local.h). For read services only: whoever may
    // open the socket file is answered.
    int local;
} kmx_worker_spec_t;

// Writes the worker's name "<role>-<host>-<pid>-<4 hex digits>" into buf. The random part
// keeps names unique where replicas share a host name and a pid (containers on the host
// network all run their service as the same pid under their own init).
void kmx_worker_name(const char *role, char *buf, size_t size);

// Runs a worker process: parses --broker, --storage, --log-level, --help, --version (with
// KMX_BROKER, KMX_STORAGE, KMX_LOG_LEVEL) and, when spec->attach is set, --read-dir
// (KMX_READ_DIR), serves until SIGINT/SIGTERM. Returns the exit
// status: 0 after a clean stop or --help, 1 when start-up failed, 2 for bad usage.
int kmx_worker_main(int argc, char **argv, const kmx_worker_spec_t *spec);

#endif
