/*  kmx_link - a worker's request/reply link to kmx-storage.
    DEALER to storage's ROUTER. Frames: [correlation id: 8 bytes BE][packed Request];
    storage answers [same correlation id][packed Response]. Replies whose id is not the
    one awaited (late answers to timed-out calls) are dropped.  */
#ifndef KMX_LINK_H
#define KMX_LINK_H

#include "kmx.pb-c.h"

#include <stddef.h>
#include <stdint.h>

typedef struct kmx_link kmx_link_t;

// Connects to storage at endpoint. ctx is borrowed. Returns NULL on failure.
kmx_link_t *kmx_link_new(void *ctx, const char *endpoint);
void kmx_link_destroy(kmx_link_t **self_p);

// Called at least every 50 ms while a call waits, and before each send: a worker sends its
// broker heartbeats from here, so a long request never makes it look dead. A nonzero
// return before a send drops the request (KMX_ERR_TIMEOUT): the worker knows the broker
// has given up on it (it was frozen), so the write must not land late.
typedef int (*kmx_link_tick_fn)(void *arg);
void kmx_link_set_tick(kmx_link_t *self, kmx_link_tick_fn tick, void *arg);

// Answers a request in this process instead of over the socket (kmx-query's direct reads
// of storage's environment, services/storage/kmx_direct.h). Returns 0 with the packed
// Response in a malloc'd *out that the caller frees, or nonzero when the request must go
// to storage.
typedef int (*kmx_link_local_fn)(void *arg, const Kmx__V1__Request *req, uint8_t **out,
                                 size_t *len);
// Every call first offers its request to local (NULL: none), then to the socket.
void kmx_link_set_local(kmx_link_t *self, kmx_link_local_fn local, void *arg);

// Sends req and waits up to timeout_ms for its reply. A link that was up and stays down
// for 250 ms refuses at once (one never up yet waits up to timeout_ms); a connection lost with the
// request in flight is waited for and the request sent again (requests must be idempotent). On 0,
// *out is yours: free it with kmx__v1__response__free_unpacked(*out, NULL). Returns
// KMX_ERR_UNAVAILABLE (the link is down), KMX_ERR_TIMEOUT (storage did not answer; the link stays
// usable), KMX_ERR_DECODE, KMX_ERR_IO or KMX_ERR_NOMEM.
int kmx_link_call(kmx_link_t *self, const Kmx__V1__Request *req, int timeout_ms,
                  Kmx__V1__Response **out);

// kmx_link_call, but the reply stays packed, as storage sent it: on 0 *out is a malloc'd
// packed Response (not checked to decode) that the caller frees; a worker relays it to
// its client without decoding and packing it again. Same returns, without KMX_ERR_DECODE.
int kmx_link_call_packed(kmx_link_t *self, const Kmx__V1__Request *req, int timeout_ms,
                         uint8_t **out, size_t *len);

#endif
