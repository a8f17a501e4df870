/*  kmx_mdp - Majordomo 7/MDP endpoints: the worker side (MDPW01: READY, REQUEST, REPLY,
    HEARTBEAT, DISCONNECT, reconnection) and the client side (MDPC01 with Lazy Pirate
    retries). The broker lives in services/broker.  */
#ifndef KMX_MDP_H
#define KMX_MDP_H

#include <poll.h>
#include <stddef.h>
#include <zmq.h>

#define KMX_MDPC "MDPC01"
#define KMX_MDPW "MDPW01"
#define KMX_MDPW_READY 0x01
#define KMX_MDPW_REQUEST 0x02
#define KMX_MDPW_REPLY 0x03
#define KMX_MDPW_HEARTBEAT 0x04
#define KMX_MDPW_DISCONNECT 0x05

#define KMX_MDP_HEARTBEAT_MS 2500 // interval between heartbeats, both directions
#define KMX_MDP_LIVENESS 3        // heartbeats missed before a peer counts as dead

typedef struct kmx_mdp_worker kmx_mdp_worker_t;
typedef struct kmx_mdp_client kmx_mdp_client_t;

// Creates a worker of service at broker endpoint. identity names the worker for the
// broker's statistics (e.g. "ingest-<host>-<pid>"); NULL lets ZeroMQ choose. ctx is
// borrowed. Returns NULL on failure. Destroy sends DISCONNECT.
kmx_mdp_worker_t *kmx_mdp_worker_new(void *ctx, const char *broker, const char *service,
                                     const char *identity);
void kmx_mdp_worker_destroy(kmx_mdp_worker_t **self_p);

// Waits up to timeout_ms (-1 = forever) for the next request, sending heartbeats and
// reconnecting to the broker as needed. On 1, *body is an initialised message holding the
// request body, yours to close; the worker remembers whom to reply to. Returns 0 on timeout,
// KMX_ERR_INTERNAL if interrupted (EINTR, context terminated).
int kmx_mdp_worker_recv(kmx_mdp_worker_t *self, int timeout_ms, zmq_msg_t *body);

// As kmx_mdp_worker_recv, and also wakes for the n_also (< KMX_MDP_POLL_ALSO) descriptors
// in also, whose revents it sets: returns KMX_MDP_OTHER when any of them is ready. The
// broker's socket is read first at every turn, so neither side can keep the other out.
#define KMX_MDP_OTHER 2
#define KMX_MDP_POLL_ALSO 320
int kmx_mdp_worker_wait(kmx_mdp_worker_t *self, int timeout_ms, zmq_msg_t *body,
                        struct pollfd *also, int n_also);

// Replies to the last request received. data is copied. Returns 0 or KMX_ERR_IO.
int kmx_mdp_worker_send(kmx_mdp_worker_t *self, const void *data, size_t size);

// Sends a heartbeat if one is due. Call it while handling a long request, so the broker
// does not expire a worker that is slow but alive. Returns 0, KMX_ERR_IO, or
// KMX_ERR_TIMEOUT when this worker had been silent for the broker's whole expiry (it was
// frozen): the broker has dropped it and answered its client, so the request in hand is
// stale and must not be applied.
int kmx_mdp_worker_heartbeat(kmx_mdp_worker_t *self);

// Creates a client of the broker at endpoint. ctx is borrowed. Returns NULL on failure.
kmx_mdp_client_t *kmx_mdp_client_new(void *ctx, const char *broker);
void kmx_mdp_client_destroy(kmx_mdp_client_t **self_p);

// Sets the per-try timeout (default 3000 ms) and the number of tries (default 3).
void kmx_mdp_client_set_timeout(kmx_mdp_client_t *self, int timeout_ms);
void kmx_mdp_client_set_retries(kmx_mdp_client_t *self, int tries);

// Sends body to service and waits for its reply, retrying with a fresh socket after each
// timeout (Lazy Pirate). On 0, *reply is an initialised message holding the reply body,
// yours to close. Returns KMX_ERR_TIMEOUT when no try was answered, KMX_ERR_IO on socket
// errors, KMX_ERR_DECODE on a reply that is not MDP.
int kmx_mdp_client_call(kmx_mdp_client_t *self, const char *service, const void *body, size_t size,
                        zmq_msg_t *reply);

#endif
