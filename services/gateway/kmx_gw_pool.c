/*  kmx_gw_pool - a locked free list of libkmx clients. Idle clients are kept up to a
    bound; beyond it a returned client is closed, so a burst does not pin sockets. All of
    them are one client group: one ZeroMQ context and I/O thread for the gateway's calls,
    not one per client.  */
#include "kmx_gw_pool.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define S_IDLE_MAX 64

struct kmx_gw_pool {
    pthread_mutex_t lock;           // guards idle and nidle
    kmx_client_t *idle[S_IDLE_MAX]; // clients not in use
    size_t nidle;                   // entries in idle
    kmx_client_group_t *group;      // the context every client of the pool shares
    char *broker;                   // endpoint, malloc'd
    int timeout_ms;                 // per try
    int tries;                      // tries per call
};

kmx_gw_pool_t *kmx_gw_pool_new(const char *broker, int timeout_ms, int tries) {
    kmx_gw_pool_t *self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    self->broker = strdup(broker);
    self->group = self->broker ? kmx_client_group_new() : NULL;
    if (!self->group) {
        free(self->broker);
        free(self);
        return NULL;
    }
    self->timeout_ms = timeout_ms;
    self->tries = tries;
    pthread_mutex_init(&self->lock, NULL);
    return self;
}

void kmx_gw_pool_destroy(kmx_gw_pool_t **self_p) {
    if (!self_p || !*self_p)
        return;
    kmx_gw_pool_t *self = *self_p;
    for (size_t i = 0; i < self->nidle; i++)
        kmx_client_destroy(&self->idle[i]);
    kmx_client_group_destroy(&self->group); // every client is back: the gateway's threads ended
    pthread_mutex_destroy(&self->lock);
    free(self->broker);
    free(self);
    *self_p = NULL;
}

kmx_client_t *kmx_gw_pool_get(kmx_gw_pool_t *self) {
    kmx_client_t *client = NULL;
    pthread_mutex_lock(&self->lock);
    if (self->nidle > 0)
        client = self->idle[--self->nidle];
    pthread_mutex_unlock(&self->lock);
    return client ? client
                  : kmx_client_new_in(self->group, self->broker, self->timeout_ms, self->tries);
}

void kmx_gw_pool_put(kmx_gw_pool_t *self, kmx_client_t *client) {
    if (!client)
        return;
    pthread_mutex_lock(&self->lock);
    if (self->nidle < S_IDLE_MAX) {
        self->idle[self->nidle++] = client;
        client = NULL;
    }
    pthread_mutex_unlock(&self->lock);
    kmx_client_destroy(&client);
}
