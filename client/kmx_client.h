/*  libkmx - the kmx client library: sends kmx.v1 Requests to the services behind a kmx
    broker (Majordomo MDPC01 with Lazy Pirate retries) and returns their Responses.
    One client belongs to one thread. Link with pkg-config `kmx`.  */
#ifndef KMX_CLIENT_H
#define KMX_CLIENT_H

#include "kmx.pb-c.h"
#include "kmx_err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KMX_SERVICE_BROKER "kmx.broker"
#define KMX_SERVICE_INGEST "kmx.ingest"
#define KMX_SERVICE_QUERY "kmx.query"

typedef struct kmx_client kmx_client_t;

// Creates a client of the broker at endpoint ("tcp://127.0.0.1:5555"), or of one kmx-query
// worker's local read socket on this host ("unix:/run/kmx/query-1.sock", kmx-query --local),
// which answers kmx.query calls without the broker's hop and refuses the others with
// KMX_ERR_UNSUPPORTED (docs/architecture.md, "The local read socket"). Each call waits
// up to timeout_ms per try and tries `tries` times (values <= 0 take 5000 ms and 3).
// Returns NULL when the socket cannot be set up.
kmx_client_t *kmx_client_new(const char *broker, int timeout_ms, int tries);
void kmx_client_destroy(kmx_client_t **self_p);

// Clients of one process that share a ZeroMQ context, as ZeroMQ advises for a program with
// several: each client made with kmx_client_new has a context of its own, and with it an
// I/O thread that wakes for each of its messages; clients of a group share one I/O thread,
// which serves whichever of them have messages in one wake-up. Each client still belongs
// to one thread at a time. Destroy the group after all its clients. Returns NULL when the
// context cannot be made.
typedef struct kmx_client_group kmx_client_group_t;
kmx_client_group_t *kmx_client_group_new(void);
void kmx_client_group_destroy(kmx_client_group_t **self_p);

// As kmx_client_new, in group (NULL: a context of its own).
kmx_client_t *kmx_client_new_in(kmx_client_group_t *group, const char *broker, int timeout_ms,
                                int tries);

// Lets each call retry for up to deadline_ms in total (0, the default, turns it off: then
// only timeouts are retried, `tries` times). Within the deadline a call is tried again
// after a timeout or an UNAVAILABLE answer (a broker queue limit, a worker whose storage
// is down), after pauses that double from 50 ms to 200 ms with random jitter; each try waits
// at most the per-try timeout. The last try's result is returned when time runs out.
void kmx_client_set_deadline(kmx_client_t *self, int deadline_ms);

// Sends this client's kmx.query calls (gets, queries, lists, replays, catalogs, histories)
// to one kmx-query worker's local read socket on this host (path, "unix:" optional;
// kmx-query --local) and everything else to the broker. A read the socket cannot take (no
// worker listens there, or each try's connection closed before its answer) goes to the
// broker instead. NULL or "" goes back to the broker for all. Returns 0, or KMX_ERR_INVAL
// for a path too long for a unix socket or a client made with a unix: endpoint.
int kmx_client_set_read_socket(kmx_client_t *self, const char *path);

// Tries beyond the first that calls needed since the client was created.
uint64_t kmx_client_retries(const kmx_client_t *self);

// Sends req to service and waits for the reply. A request_id is filled in when req has
// none, and timeout_ms (how long this try waits, so kmx-query waits for storage as long
// and answers DEADLINE_EXCEEDED, KMX_ERR_DEADLINE, when the answer is not ready in time;
// never retried) when req has none. Whenever a Response arrived, *out is set and is yours: free it
// with kmx__v1__response__free_unpacked(*out, NULL). Returns 0 for a result, or the kmx code of an
// Error response (see kmx_client_error_code; *out then holds the Error with its message and any
// rejected records), KMX_ERR_TIMEOUT when no try was answered, KMX_ERR_DECODE for an undecodable
// reply, KMX_ERR_IO or KMX_ERR_NOMEM.
int kmx_client_call(kmx_client_t *self, const char *service, const Kmx__V1__Request *req,
                    Kmx__V1__Response **out);

// Maps a wire error code to a kmx_err_t (BAD_REQUEST -> KMX_ERR_INVAL, ...).
int kmx_client_error_code(Kmx__V1__ErrorCode code);

// The message of the last Error response or failure, or "" (valid until the next call).
const char *kmx_client_last_error(const kmx_client_t *self);

// Convenience calls. Each builds the request, calls the right service and, like
// kmx_client_call, sets *out whenever a Response arrived. They also return
// KMX_ERR_DECODE when the response carries a result of the wrong type.

// Pings service ("kmx.broker", "kmx.ingest", "kmx.query"); the result is resp->pong.
int kmx_client_ping(kmx_client_t *self, const char *service, Kmx__V1__Response **out);

// Stores n records (borrowed) through kmx.ingest; the result is resp->put.
int kmx_client_put(kmx_client_t *self, Kmx__V1__Record *const *records, size_t n, bool atomic,
                   Kmx__V1__Response **out);

// Reads the record with key's natural key (borrowed); the result is resp->get.
int kmx_client_get(kmx_client_t *self, const Kmx__V1__Record *key, Kmx__V1__Response **out);

// Runs an aggregate query (borrowed); the result is resp->query.
int kmx_client_query(kmx_client_t *self, const Kmx__V1__QueryRequest *query,
                     Kmx__V1__Response **out);

// Reads one page of records (borrowed request); the result is resp->scan.
int kmx_client_scan(kmx_client_t *self, const Kmx__V1__ScanRequest *scan, Kmx__V1__Response **out);

// Reads events with seq > since whose topic starts with one of the n prefixes (none =
// all), at most limit of them (0 = server default); the result is resp->replay.
int kmx_client_replay(kmx_client_t *self, uint64_t since, uint32_t limit, char *const *prefixes,
                      size_t n, Kmx__V1__Response **out);

// Lists what the store holds for kind (KIND_UNSPECIFIED: both); the result is
// resp->catalog.
int kmx_client_catalog(kmx_client_t *self, Kmx__V1__Kind kind, Kmx__V1__Response **out);

// Reads every value the record with key's natural key (borrowed) has had; the result is
// resp->history.
int kmx_client_history(kmx_client_t *self, const Kmx__V1__Record *key, Kmx__V1__Response **out);

// Asks service for its statistics; the result is resp->stats. A kmx.query worker also
// relays kmx-storage's in resp->stats->storage (storage is not behind the broker; NULL
// when storage did not answer).
int kmx_client_stats(kmx_client_t *self, const char *service, Kmx__V1__Response **out);

#endif
