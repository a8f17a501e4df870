/*  kmx_gw_pool - MDP clients of the broker shared by kmx-gateway's connection threads. A
    libkmx client belongs to one thread at a time: a thread takes one for a call and puts
    it back, so a few clients serve many connections and no request waits for another.  */
#ifndef KMX_GW_POOL_H
#define KMX_GW_POOL_H

#include "kmx_client.h"

typedef struct kmx_gw_pool kmx_gw_pool_t;

// A pool of clients of broker (copied), each call waiting timeout_ms per try, tries
// tries, sharing one ZeroMQ context (kmx_client_group_t). With read_sockets
// ("PATH[,PATH...]", local read sockets of kmx-query workers on this host; NULL or "":
// none), each new client sends its reads to the next of them in turn
// (kmx_client_set_read_socket) and the rest to the broker. Returns NULL when out of
// memory or when a path is too long for a unix socket (*why then says so).
// Destroy it once every client taken has been put back.
kmx_gw_pool_t *kmx_gw_pool_new(const char *broker, const char *read_sockets, int timeout_ms,
                               int tries, const char **why);
void kmx_gw_pool_destroy(kmx_gw_pool_t **self_p);

// Takes an idle client or makes one. NULL when none can be made. Give it back with put.
kmx_client_t *kmx_gw_pool_get(kmx_gw_pool_t *self);
void kmx_gw_pool_put(kmx_gw_pool_t *self, kmx_client_t *client);

#endif
