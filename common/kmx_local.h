/*  kmx_local - the local read socket: a unix stream socket on which a kmx-query worker
    answers kmx.query requests from processes on its own host, without the broker in
    between (docs/architecture.md, "The local read socket").

    Each message is a 4-byte big-endian length and that many bytes: a packed kmx.v1.Request
    one way, the packed kmx.v1.Response the other, one answer per request, in order. A
    request over KMX_LOCAL_REQUEST_MAX is answered with a TOO_LARGE Error and the connection closed.

    The server side lives in the worker's single thread beside its broker socket: it never
    blocks on a connection (non-blocking sockets, a buffer per connection), reads no
    further request from a connection whose answer is not yet written, and holds at most
    KMX_LOCAL_MAX_CONNS connections. The client side is in libkmx (endpoint "unix:PATH").  */
#ifndef KMX_LOCAL_H
#define KMX_LOCAL_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>

#define KMX_LOCAL_PREFIX "unix:"         // an endpoint naming a local read socket
#define KMX_LOCAL_MAX_CONNS 256          // connections one worker holds; more are refused
#define KMX_LOCAL_REQUEST_MAX (1u << 20) // largest request: reads are small
#define KMX_LOCAL_IDLE_MS 30000          // a connection stuck inside a message this long is closed
#define KMX_LOCAL_FDS (KMX_LOCAL_MAX_CONNS + 1)
#define KMX_LOCAL_PATH_MAX 107 // longest socket path: a unix socket's sun_path less its NUL

// Whether path can name a local read socket: 1 to KMX_LOCAL_PATH_MAX bytes.
int kmx_local_path_ok(const char *path);

typedef struct kmx_local kmx_local_t;

// Answers one request: body/size is the packed Request; sets *out (malloc'd, the caller
// frees it) and *len to the packed Response. Returns 0, or nonzero when no answer could be
// built (the connection is then closed).
typedef int (*kmx_local_handle_fn)(void *arg, const uint8_t *body, size_t size, uint8_t **out,
                                   size_t *len);

// Listens on path. A socket file left by a process that is gone is replaced; a path that
// another process listens on, or that is not a socket, is refused. Returns NULL with
// *why set to a message naming the problem and its fix.
kmx_local_t *kmx_local_listen(const char *path, kmx_local_handle_fn handle, void *arg,
                              const char **why);

// Closes every connection and the listener and removes the socket file.
void kmx_local_destroy(kmx_local_t **self_p);

// Fills fds (room for KMX_LOCAL_FDS) with what to wait on. Returns their count.
int kmx_local_fds(kmx_local_t *self, struct pollfd *fds);

// After a poll over the fds of kmx_local_fds: accepts, reads, answers and writes what is
// ready without waiting, at most one request per connection, and closes connections that
// ended, failed or sat inside a message for KMX_LOCAL_IDLE_MS. Returns the number of
// requests answered.
int kmx_local_step(kmx_local_t *self, const struct pollfd *fds, int n);

// Sets how long a connection may sit inside a message before it is closed (default
// KMX_LOCAL_IDLE_MS; values <= 0 restore it).
void kmx_local_set_idle_ms(kmx_local_t *self, int ms);

// Counters since listen: requests answered, connections accepted and refused (full),
// connections open, and the nanoseconds spent in the handler (decoding, answering,
// encoding: a request's own work, without its reads and writes on the socket).
typedef struct {
    uint64_t requests, accepted, refused, open, work_ns;
} kmx_local_stats_t;
kmx_local_stats_t kmx_local_stats(const kmx_local_t *self);

// ---- client side (libkmx) --------------------------------------------------------------

typedef struct kmx_local_client kmx_local_client_t;

// A client of the local read socket at path (without KMX_LOCAL_PREFIX). Connects on first
// use. Each call waits up to timeout_ms per try and tries `tries` times (as the MDP client:
// a fresh connection per try, so a late answer can never be taken for a later call's).
kmx_local_client_t *kmx_local_client_new(const char *path, int timeout_ms, int tries);
void kmx_local_client_destroy(kmx_local_client_t **self_p);
void kmx_local_client_set_timeout(kmx_local_client_t *self, int timeout_ms);
void kmx_local_client_set_retries(kmx_local_client_t *self, int tries);

// Sends body and waits for the answer. On 0, *reply (malloc'd, yours) and *len hold it.
// Returns KMX_ERR_UNAVAILABLE when no process listens on the path or each try's connection
// was closed before its answer, KMX_ERR_TIMEOUT when no try was answered in time,
// KMX_ERR_TOO_BIG for a body over KMX_LOCAL_REQUEST_MAX, KMX_ERR_DECODE for an answer over
// KMX_MSG_MAX, KMX_ERR_IO or KMX_ERR_NOMEM.
int kmx_local_client_call(kmx_local_client_t *self, const void *body, size_t size, uint8_t **reply,
                          size_t *len);

#endif
