/*  kmx_curve - CurveZMQ encryption and authentication for every kmx socket, off unless
    keys are configured. Configuration comes from the environment, the same for every
    binary (docs/security.md):

      KMX_CURVE_SECRET   this process's secret key; CURVE is on when it is set
      KMX_CURVE_BROKER   the broker's public key (clients, workers, storage's publisher)
      KMX_CURVE_STORAGE  kmx-storage's public key (ingest and query workers)
      KMX_CURVE_ALLOW    the allow-list file of the servers (broker, storage)

    Keys are 64 hex digits (32 bytes; `kmx keygen` makes a pair) or 40-character Z85.
    The allow-list holds one key per line, "<public key> <role> [name]", '#' starts a
    comment; roles are `reader` (queries, gets, listings, events), `writer` (also puts and
    deletes) and `service` (kmx processes: workers, storage). A ZAP handler thread in the
    broker's and storage's context checks every connecting key against it and tags the
    connection with its role; kmx_curve_role() reads the tag back from a message.  */
#ifndef KMX_CURVE_H
#define KMX_CURVE_H

#include <stddef.h>
#include <zmq.h>

// Which public key a client socket expects its server to have.
typedef enum {
    KMX_CURVE_TO_BROKER = 0, // KMX_CURVE_BROKER
    KMX_CURVE_TO_STORAGE,    // KMX_CURVE_STORAGE
} kmx_curve_peer_t;

// The ZAP domain of a server socket: which roles it admits.
#define KMX_CURVE_DOMAIN_CLIENTS "kmx.clients"       // broker ROUTER: every role
#define KMX_CURVE_DOMAIN_EVENTS "kmx.events"         // broker XPUB: every role
#define KMX_CURVE_DOMAIN_PUBLISHERS "kmx.publishers" // broker XSUB: service
#define KMX_CURVE_DOMAIN_STORAGE "kmx.storage"       // storage ROUTER: service

// Roles, as kmx_curve_role() returns them.
#define KMX_CURVE_READER "reader"
#define KMX_CURVE_WRITER "writer"
#define KMX_CURVE_SERVICE "service"

// Returns nonzero when KMX_CURVE_SECRET is set (CURVE on).
int kmx_curve_enabled(void);

// Decodes a key (64 hex digits or 40 Z85 characters) into 32 bytes. Returns 0 or
// KMX_ERR_INVAL.
int kmx_curve_key_decode(const char *text, unsigned char out[32]);

// Makes a new key pair as 64 hex digits each (buffers of 65 bytes). Returns 0 or
// KMX_ERR_UNSUPPORTED when libzmq was built without CURVE.
int kmx_curve_keygen(char public_hex[65], char secret_hex[65]);

// Makes sock a CURVE client of peer when CURVE is on (call before connect). Returns 0 (also
// when CURVE is off) or KMX_ERR_INVAL after logging which setting is missing or bad.
int kmx_curve_client(void *sock, kmx_curve_peer_t peer);

// Makes sock a CURVE server in ZAP domain when CURVE is on (call before bind). Returns 0
// or KMX_ERR_INVAL after logging why.
int kmx_curve_server(void *sock, const char *domain);

// The role the ZAP handler gave the connection msg came from, or NULL (a message from no
// authenticated peer). Cheap: callers on a hot path test "CURVE on" once, not per message.
const char *kmx_curve_role(zmq_msg_t *msg);

typedef struct kmx_zap kmx_zap_t;

// Loads the allow-list (KMX_CURVE_ALLOW) and starts the ZAP handler thread in ctx, before
// any server socket binds. When CURVE is off, *out is NULL and 0 is returned. Returns
// KMX_ERR_INVAL (logged: which line of which file) or KMX_ERR_NOMEM.
int kmx_zap_start(void *ctx, kmx_zap_t **out);

// Stops the handler thread and frees it. Accepts NULL and clears *self_p.
void kmx_zap_stop(kmx_zap_t **self_p);

#endif
