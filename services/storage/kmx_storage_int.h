/*  kmx_storage_int - kmx-storage's service state, shared by its three threads' files:
    kmx_storage.c (the router thread: the ROUTER for the workers, requests sorted to the
    writer or to the readers, replies sent back), kmx_storage_write.c (the one writer
    thread: group commit, then replies, then events) and kmx_storage_read.c (the reader
    threads: every read on its own LMDB read transaction). Nothing outside
    services/storage includes this.  */
#ifndef KMX_STORAGE_INT_H
#define KMX_STORAGE_INT_H

#include "kmx_storage.h"

#include "kmx_curve.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define KMX_STORAGE_ROUTING_ID_MAX 256    // ZeroMQ routing ids are at most 255 bytes
#define KMX_STORAGE_READER_CHECK_MS 10000 // stale LMDB reader slots cleared this often

typedef struct kmx_storage_writer kmx_storage_writer_t;
typedef struct kmx_storage_queue kmx_storage_queue_t;

// Service counters. Each is bumped by the thread that did the work and read by stats
// from any thread, so each is atomic on its own (a stats reply is not one snapshot).
typedef struct {
    _Atomic uint64_t requests;           // requests answered
    _Atomic uint64_t errors;             // error responses sent
    _Atomic uint64_t puts;               // put requests
    _Atomic uint64_t stored;             // records stored (new or changed)
    _Atomic uint64_t unchanged;          // records identical to what was stored
    _Atomic uint64_t rejected;           // records refused
    _Atomic uint64_t gets;               // get requests
    _Atomic uint64_t scans;              // scan requests
    _Atomic uint64_t replays;            // replay requests
    _Atomic uint64_t deletes;            // delete requests
    _Atomic uint64_t deleted;            // records deleted
    _Atomic uint64_t aggregates;         // aggregate and query requests
    _Atomic uint64_t waits;              // batches that waited for more writers
    _Atomic uint64_t batches;            // write transactions committed
    _Atomic uint64_t published;          // events published, heartbeats included
    _Atomic uint64_t commit_records;     // puts and deletes applied by committed transactions
    _Atomic uint64_t commit_records_max; // most of them in one transaction
    _Atomic uint64_t reads_queued;       // reads that waited in the router for a free reader
    _Atomic uint64_t refused;            // requests refused because a queue was full
} kmx_storage_counters_t;

// One request as the thread serving it received it: [routing id][correlation id][body].
typedef struct {
    uint8_t rid[KMX_STORAGE_ROUTING_ID_MAX]; // the worker's routing id
    size_t rid_len;                          // bytes in rid
    uint8_t corr[8];                         // the correlation id, echoed in the reply
    int has_corr;                            // nonzero when a valid correlation frame arrived
    int bad_frames;                          // nonzero when the frame layout was wrong
    Kmx__V1__Request *req;                   // the decoded body, or NULL
} kmx_storage_req_t;

// One reader thread.
typedef struct {
    kmx_storage_t *owner; // the service
    void *sock;           // DEALER to the router's reader socket (used by this thread only)
    pthread_t thread;     // runs kmx_storage_reader_main
    int started;          // the thread runs and must be joined
    uint8_t id[16];       // its routing id at the router
    size_t id_len;        // bytes in id
    int idle;             // router's view: waiting for a request
} kmx_storage_reader_t;

struct kmx_storage {
    // Shared by every thread; set before the threads start, then read-only.
    kmx_store_t *store;           // the LMDB engine (one writer, any number of readers)
    char worker[128];             // "kmx-storage-<host>-<pid>", for pongs and stats
    char endpoint[256];           // the ROUTER's bound endpoint
    size_t n_readers;             // reader threads
    int reader_nice;              // steps the reader threads run nicer (cfg->reader_nice)
    unsigned read_delay_ms;       // debug: readers' wait before a slow-path answer (cfg)
    unsigned write_delay_ms;      // debug: the writer's wait before each commit (cfg)
    atomic_int stopping;          // set by the router when the service stops
    kmx_storage_counters_t count; // service counters

    // The router thread's.
    kmx_zap_t *zap;                // the ZAP handler when CURVE is on, else NULL
    void *router;                  // ROUTER for the workers
    void *to_writer;               // PAIR to the writer thread
    void *to_readers;              // ROUTER to the reader threads' DEALERs
    kmx_storage_reader_t *readers; // n_readers entries
    kmx_storage_queue_t *wait;     // reads waiting for a free reader
    int terminated;                // the context was shut down under us

    // The writer thread's (kmx_storage_write.c).
    void *writer_sock;        // PAIR to the router
    void *pub;                // PUB towards the broker's XSUB
    pthread_t writer_thread;  // runs kmx_storage_writer_main
    int writer_started;       // the thread runs and must be joined
    kmx_storage_writer_t *wr; // the writer's batch state
};

// Receives one message's frames from sock into m (flags: 0 or ZMQ_DONTWAIT for the first
// frame) and decodes the body. Returns 1 when a message was read, 0 when none is
// waiting, KMX_ERR_IO when the socket failed (*terminated set on ETERM).
int kmx_storage_recv(void *sock, int flags, kmx_storage_req_t *m, int *terminated);

// Sends [rid][corr][body] on sock. Returns 0 or KMX_ERR_IO (logged).
int kmx_storage_send(void *sock, const kmx_storage_req_t *m, const uint8_t *body, size_t len);

// Frees m's decoded body.
void kmx_storage_req_clear(kmx_storage_req_t *m);

// The request's id (NULL when it did not decode).
const char *kmx_storage_request_id(const kmx_storage_req_t *m);

// Packs an error reply to m and counts it.
int kmx_storage_error(kmx_storage_t *self, const kmx_storage_req_t *m, int err, const char *msg,
                      uint8_t **out, size_t *len);

// The answer for a request no handler takes, or whose frames or body are bad (NULL when
// it is well formed): every thread answers those the same way.
int kmx_storage_bad_request(kmx_storage_t *self, const kmx_storage_req_t *m, uint8_t **out,
                            size_t *len, int *handled);

// The debug knob KMX_DEBUG_STORAGE_WRITE_DELAY_MS: the writer waits write_delay_ms before
// committing a batch (sliced, so a stopping service does not wait it out); off when 0.
void kmx_storage_debug_write_delay(kmx_storage_t *self);

// Milliseconds and microseconds of the monotonic and the wall clock.
uint64_t kmx_storage_clock_ms(void);
uint64_t kmx_storage_clock_us(void);
uint64_t kmx_storage_wall_ms(void);

// ---- the writer (kmx_storage_write.c) ------------------------------------------------

// Allocates the writer's batch state. Returns 0 or KMX_ERR_NOMEM.
int kmx_storage_writer_new(kmx_storage_t *self, const kmx_storage_config_t *cfg);
void kmx_storage_writer_destroy(kmx_storage_t *self);

// The writer thread: serves writes from writer_sock until the router says stop (an empty
// one-frame message once stopping is set) or the context ends.
void *kmx_storage_writer_main(void *arg);

// ---- the readers (kmx_storage_read.c) ------------------------------------------------

// Whether a request with this body is a write (answered by the writer thread).
int kmx_storage_is_write(int body_case);

// Whether a read with this body is bounded and cheap enough for the router to answer
// itself (a point get, a ping), saving two thread hand-offs.
int kmx_storage_is_quick(int body_case);

// Answers one read (or a bad request) into *out. Safe from any thread.
int kmx_storage_read_answer(kmx_storage_t *self, const kmx_storage_req_t *m, uint8_t **out,
                            size_t *len);

// A reader thread (arg is its kmx_storage_reader_t): announces itself, then answers each
// request the router hands it, until an empty one-frame message once stopping is set.
void *kmx_storage_reader_main(void *arg);

#endif
