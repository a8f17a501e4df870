/*  kmx_gw_pool - a locked free list of libkmx clients. Idle clients are kept up to a
    bound; beyond it a returned client is closed, so a burst does not pin sockets. All of
    them are one client group: one ZeroMQ context and I/O thread for the gateway's calls,
    not one per client. With read sockets, new clients take them in turn for their reads.  */
#include "kmx_gw_pool.h"

#include "kmx_local.h"

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
    char *reads;                    // the read sockets, NUL-separated, malloc'd, or NULL
    size_t n_reads;                 // how many
    size_t next_read;               // the one the next new client takes (guarded by lock)
    int timeout_ms;                 // per try
    int tries;                      // tries per call
};

// Splits list ("PATH[,PATH...]") in place into NUL-separated paths. Returns how many, or
// 0 when one of them (an empty one too) cannot name a local read socket.
static size_t s_split_reads(char *list) {
    size_t n = 0;
    for (char *p = list; p; n++) {
        char *end = strchr(p, ',');
        if (end)
            *end = '\0';
        if (!kmx_local_path_ok(p))
            return 0;
        p = end ? end + 1 : NULL;
    }
    return n;
}

kmx_gw_pool_t *kmx_gw_pool_new(const char *broker, const char *read_sockets, int timeout_ms,
                               int tries, const char **why) {
    *why = "out of memory";
    kmx_gw_pool_t *self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    int reads = read_sockets && *read_sockets;
    self->broker = strdup(broker);
    self->reads = reads ? strdup(read_sockets) : NULL;
    int ok = self->broker && (!reads || self->reads);
    if (ok && reads && (self->n_reads = s_split_reads(self->reads)) == 0) {
        *why = "each read socket is a unix socket path of 1 to 107 bytes, separated by commas";
        ok = 0;
    }
    self->group = ok ? kmx_client_group_new() : NULL;
    if (!self->group) {
        free(self->reads);
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
    free(self->reads);
    free(self->broker);
    free(self);
    *self_p = NULL;
}

// The read socket the next new client takes, in turn, or NULL without any. Call locked.
static const char *s_next_read(kmx_gw_pool_t *self) {
    if (!self->n_reads)
        return NULL;
    const char *p = self->reads;
    for (size_t k = self->next_read++ % self->n_reads; k > 0; k--)
        p += strlen(p) + 1;
    return p;
}

kmx_client_t *kmx_gw_pool_get(kmx_gw_pool_t *self) {
    kmx_client_t *client = NULL;
    const char *read = NULL;
    pthread_mutex_lock(&self->lock);
    if (self->nidle > 0)
        client = self->idle[--self->nidle];
    else
        read = s_next_read(self);
    pthread_mutex_unlock(&self->lock);
    if (client)
        return client;
    client = kmx_client_new_in(self->group, self->broker, self->timeout_ms, self->tries);
    if (client && read)
        kmx_client_set_read_socket(client, read); // checked in kmx_gw_pool_new
    return client;
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
