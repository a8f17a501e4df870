/*  kmx_testkit - fixtures the unit tests share: temporary LMDB directories, the real
    kmx-storage service running in a thread on tcp://127.0.0.1:*, a storage that never
    answers, and records built on the caller's stack. No test framework inside: every
    function returns a code the test asserts on.  */
#ifndef KMX_TESTKIT_H
#define KMX_TESTKIT_H

#include "kmx.pb-c.h"

#include <stddef.h>
#include <stdint.h>

#define KMX_TESTKIT_DIR_MAX 64       // room for a temporary directory's path
#define KMX_TESTKIT_ENDPOINT_MAX 256 // room for a bound endpoint
#define KMX_TESTKIT_ITEM_MAX 32      // room for a test record's item

// ---- temporary directories ----------------------------------------------------------

// Makes a fresh directory /tmp/<name>-XXXXXX and writes its path to dir (size bytes).
// Returns 0 or KMX_ERR_IO (KMX_ERR_OVERFLOW when the path does not fit); on failure dir
// is "".
int kmx_testkit_dir_make(const char *name, char *dir, size_t size);

// Removes dir and everything below it. Accepts NULL or "".
void kmx_testkit_dir_remove(const char *dir);

// ---- storage in a thread --------------------------------------------------------------

typedef struct kmx_testkit_storage kmx_testkit_storage_t;

// Starts kmx-storage on tcp://127.0.0.1:* in its own ZeroMQ context and thread, with an
// LMDB directory from kmx_testkit_dir_make(name); its events go to an inproc PUB nobody
// reads. On 0 *out is yours: release it with kmx_testkit_storage_close. Returns 0 or a
// negative kmx_err_t.
int kmx_testkit_storage_open(const char *name, kmx_testkit_storage_t **out);

// Stops the service, terminates the context and removes the directory. Close every
// socket made in the context first. Accepts NULL and clears *self_p.
void kmx_testkit_storage_close(kmx_testkit_storage_t **self_p);

// The ZeroMQ context the service runs in; valid until close.
void *kmx_testkit_storage_ctx(const kmx_testkit_storage_t *self);

// The endpoint the service's ROUTER is bound to; valid until close.
const char *kmx_testkit_storage_endpoint(const kmx_testkit_storage_t *self);

// The service's LMDB directory; valid until close.
const char *kmx_testkit_storage_dir(const kmx_testkit_storage_t *self);

// ---- a storage that never answers -----------------------------------------------------

// Binds a ROUTER in ctx on tcp://127.0.0.1:* that accepts connections and never reads,
// playing a hung storage, and writes its endpoint to ep. Returns the socket (close it
// with zmq_close) or NULL.
void *kmx_testkit_hung_open(void *ctx, char *ep, size_t size);

// ---- raw sockets closed even when an assertion ends the test -----------------------

#define KMX_TESTKIT_SOCKS_MAX 32 // raw sockets one test may hold at once

// The raw sockets a test holds. zmq_ctx_term waits for every socket of its context, so a
// failed assertion that skips a zmq_close would hang the teardown until ctest's timeout:
// the teardown calls kmx_testkit_socks_close_all before it terminates the context.
typedef struct {
    void *socks[KMX_TESTKIT_SOCKS_MAX]; // open sockets; NULL slots are free
} kmx_testkit_socks_t;

// Opens a socket of type in ctx with linger 0 and records it in reg. Returns the socket
// (close it with kmx_testkit_socket_close) or NULL when zmq_socket fails or reg is full.
void *kmx_testkit_socket(kmx_testkit_socks_t *reg, void *ctx, int type);

// Closes sock and forgets it. Accepts NULL.
void kmx_testkit_socket_close(kmx_testkit_socks_t *reg, void *sock);

// Closes every socket still recorded in reg.
void kmx_testkit_socks_close_all(kmx_testkit_socks_t *reg);

// ---- mutated bodies -----------------------------------------------------------------

// Copies good (size bytes, size > 0) into body and flips 1 to 4 random bytes; in every
// third round (round % 3 == 0) the result is also cut short. Returns the length to send.
// seed carries rand_r's state from round to round.
size_t kmx_testkit_mutate(uint8_t *body, const uint8_t *good, size_t size, int round,
                          unsigned *seed);

// ---- records ------------------------------------------------------------------------

// A record built on the stack, pointing at its own period, value and item.
typedef struct {
    Kmx__V1__Record rec;
    Kmx__V1__Period period;
    Kmx__V1__Value value;
    char item[KMX_TESTKIT_ITEM_MAX];
} kmx_testkit_rec_t;

// Fills r with an EXPORT record of market (borrowed) for start..end (YYYYMM) worth
// amount (ten-thousandths) of unit (borrowed): category "album", item "album exports"
// (in r->item, free to rewrite), source "kmx test".
void kmx_testkit_rec_init(kmx_testkit_rec_t *r, const char *market, uint32_t start, uint32_t end,
                          int64_t amount, const char *unit);

#endif
