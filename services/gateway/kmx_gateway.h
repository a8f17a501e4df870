/*  kmx_gateway - kmx over HTTP/JSON: the /v1 API (query, records, record, import, events
    as Server-Sent Events), /metrics for Prometheus, /healthz, and the dashboard's files.
    An MDP client of the broker and a subscriber of its event stream, holding no data of
    its own, so any number of gateways can run side by side (docs/http.md).  */
#ifndef KMX_GATEWAY_H
#define KMX_GATEWAY_H

#include "kmx_gw_parse.h"

#include <netinet/in.h>
#include <stddef.h>

typedef struct {
    struct sockaddr_in bind;       // where to listen (KMX_GATEWAY_BIND)
    const char *broker;            // request endpoint (KMX_BROKER)
    const char *read_sockets;      // "PATH[,PATH...]": reads on local read sockets, or NULL
    const char *events;            // event endpoint (KMX_EVENTS)
    const char *web_dir;           // dashboard files, or NULL (KMX_GATEWAY_WEB)
    const kmx_gw_tokens_t *tokens; // bearer tokens, or NULL: every request allowed
    size_t max_body;               // largest request body, bytes (KMX_GATEWAY_MAX_BODY)
    size_t max_query;              // longest query string, bytes (KMX_GATEWAY_MAX_QUERY)
    unsigned max_streams;          // concurrent event streams (KMX_GATEWAY_MAX_STREAMS)
    unsigned max_connections;      // concurrent connections (KMX_GATEWAY_MAX_CONNECTIONS)
    int heartbeat_ms;              // SSE heartbeat comment interval (KMX_GATEWAY_HEARTBEAT_MS)
    int timeout_ms;                // per-try timeout of service calls (KMX_TIMEOUT)
    int tries;                     // tries per service call (KMX_RETRIES)
    size_t ring;                   // events kept in memory for streams (KMX_GATEWAY_RING)
} kmx_gateway_config_t;

typedef struct kmx_gateway kmx_gateway_t;

// Starts listening and serving (threads of its own). Returns NULL after logging why (the
// port is taken, the hub cannot subscribe, out of memory).
kmx_gateway_t *kmx_gateway_new(const kmx_gateway_config_t *cfg);

// The port actually bound (useful with port 0).
unsigned kmx_gateway_port(const kmx_gateway_t *self);

// Stops serving: open event streams end, requests in flight finish. Accepts NULL.
void kmx_gateway_destroy(kmx_gateway_t **self_p);

#endif
