/*  kmx_broker - the Majordomo 7/MDP broker and the notification proxy of kmx. The caller's
    thread runs the request loop over a ROUTER (clients and workers); a thread of the
    broker's own forwards between an XSUB (publishers) and an XPUB (subscribers). It also
    answers the built-in service "kmx.broker" (ping, stats).  */
#ifndef KMX_BROKER_H
#define KMX_BROKER_H

#include <signal.h>
#include <stddef.h>

#define KMX_BROKER_SERVICE "kmx.broker" // the service the broker answers itself

typedef struct kmx_broker kmx_broker_t;

typedef struct {
    const char *bind;         // ROUTER endpoint for MDP clients and workers
    const char *publish_bind; // XSUB endpoint for publishers; NULL = no proxy
    const char *events_bind;  // XPUB endpoint for subscribers; NULL = no proxy
    int heartbeat_ms;         // heartbeat interval to idle workers
    int liveness;             // heartbeats a worker may miss before it is expired
    int request_timeout_ms;   // how long a request waits for a service with no worker
    size_t queue_max;         // pending requests kept per service
    size_t service_bytes_max; // request body bytes kept per service
    size_t queued_bytes_max;  // request body bytes kept across all services
    size_t history_max;       // departed workers kept in the statistics
} kmx_broker_config_t;

// Fills cfg with the defaults: the loopback endpoints of docs/architecture.md, heartbeat
// KMX_MDP_HEARTBEAT_MS, liveness KMX_MDP_LIVENESS, 3000 ms request timeout, 10000 pending
// requests and 384 MiB per service, 512 MiB across services, 1024 departed workers.
void kmx_broker_config_init(kmx_broker_config_t *cfg);

// Creates a broker and binds its sockets in ctx (borrowed; it must outlive the broker).
// cfg is copied. Returns NULL when a socket cannot be bound (logged) or memory runs out.
kmx_broker_t *kmx_broker_new(void *ctx, const kmx_broker_config_t *cfg);

// Stops the event proxy's thread, closes the sockets and frees every queued request.
// Accepts NULL; clears *self_p.
void kmx_broker_destroy(kmx_broker_t **self_p);

typedef enum {
    KMX_BROKER_ROUTER = 0, // the MDP socket
    KMX_BROKER_XSUB,       // where publishers connect
    KMX_BROKER_XPUB,       // where subscribers connect
} kmx_broker_socket_t;

// Returns the endpoint a socket is actually bound to (a wildcard port resolved), valid
// while the broker lives, or NULL for a socket the broker does not have.
const char *kmx_broker_endpoint(const kmx_broker_t *self, kmx_broker_socket_t which);

// Waits up to timeout_ms for requests and replies, handles everything waiting (up to 1000
// messages) and runs due timers (heartbeats, expiry, request deadlines). Returns 0 (also
// when interrupted by a signal) or KMX_ERR_INTERNAL when the context was terminated or
// the event proxy's thread stopped on an error.
int kmx_broker_poll_once(kmx_broker_t *self, int timeout_ms);

// Runs poll steps until *stop becomes nonzero. Returns 0 or KMX_ERR_INTERNAL.
int kmx_broker_run(kmx_broker_t *self, const volatile sig_atomic_t *stop);

#endif
