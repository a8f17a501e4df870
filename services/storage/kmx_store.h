/*  kmx_store - kmx-storage's LMDB engine: records keyed by their natural key, a gap-free
    event log, secondary indexes and roll-ups, all written in the same transaction as each
    change, and filtered reads. No sockets here. One thread writes (kmx_store_write_batch,
    kmx_store_put_batch); any number of threads may read at the same time (get, scan,
    replay, aggregate, stats, check), each read on the last committed snapshot.  */
#ifndef KMX_STORE_H
#define KMX_STORE_H

#include "kmx.pb-c.h"
#include "kmx_group.h"
#include "kmx_record.h"
#include "kmx_rkey.h"

#include <stddef.h>
#include <stdint.h>

#define KMX_STORE_MAP_DEFAULT (1024u * 1024u * 1024u) // initial map size when cfg says 0
#define KMX_STORE_SCAN_VISIT_MAX 100000u              // records examined per scan page at most

typedef struct kmx_store kmx_store_t;

// How commits reach the disk. See docs/storage.md for what each risks.
typedef enum {
    KMX_STORE_SYNC_FULL = 0,   // fsync data and meta page on every commit (default)
    KMX_STORE_SYNC_NOMETASYNC, // MDB_NOMETASYNC: the last commits may roll back on power loss
    KMX_STORE_SYNC_NONE,       // MDB_NOSYNC: the OS flushes when it likes
} kmx_store_sync_t;

typedef struct {
    size_t map_size;        // initial map size in bytes; 0 = KMX_STORE_MAP_DEFAULT
    size_t map_size_max;    // the map never grows past this; 0 = no limit but the address space
    kmx_store_sync_t sync;  // durability of commits
    uint64_t retain_events; // newest events kept in the log; 0 = keep all
    int readonly;           // nonzero: open an existing store read-only (check, backup)
    int upgrade;      // nonzero: a store of schema KMX_STORE_UPGRADES_FROM is upgraded (kmx-storage
                      // upgrade; the service itself never changes a store's schema)
    int builder_nice; // steps the alternatives index's builder thread runs nicer (it serves
                      // queries, so it takes the readers' priority; 0 to 19)
} kmx_store_config_t;

// The oldest schema version kmx_store_open can upgrade (cfg->upgrade); every version from
// it up to KMX_SCHEMA_VERSION - 1 is upgraded.
#define KMX_STORE_UPGRADES_FROM 3u

// Parses "full", "nometasync" or "none". Returns 0 or KMX_ERR_INVAL.
int kmx_store_sync_parse(const char *text, kmx_store_sync_t *out);

// What a write did to one record; outcome uses the wire enum.
typedef struct {
    Kmx__V1__RecordResult__Outcome outcome; // STORED, UNCHANGED, NOT_FOUND, REJECTED (no key)
    uint64_t seq;                           // the event's sequence number when STORED
    int superseded; // UNCHANGED because the stored figure is a later revision (status)
} kmx_put_outcome_t;

typedef enum {
    KMX_STORE_OP_PUT = 0, // insert or update the record
    KMX_STORE_OP_DELETE,  // remove the record with this natural key
} kmx_store_op_kind_t;

// One change of a write batch.
typedef struct {
    kmx_store_op_kind_t kind; // put or delete
    Kmx__V1__Record *rec;     // borrowed; a normalised record (delete: its key fields)
} kmx_store_op_t;

// One committed change, ready to publish as [topic][data].
typedef struct {
    char topic[KMX_TOPIC_MAX]; // "<kind>.<market>.<period>.<category>"
    uint8_t *data;             // packed kmx.v1.UpdateEvent, malloc'd, owned by the list
    size_t len;                // bytes in data
    uint64_t seq;              // the event's sequence number
} kmx_store_event_t;

// Events produced by puts, in sequence order. Caller-allocated: kmx_store_events_init
// before use, kmx_store_events_fini after.
typedef struct {
    kmx_store_event_t *items; // n entries, capacity cap
    size_t n;                 // events held
    size_t cap;               // allocated entries
} kmx_store_events_t;

// One page of a scan. Caller-allocated; release with kmx_store_scan_page_fini.
typedef struct {
    Kmx__V1__StoredRecord **records; // n unpacked records, owned by the page
    size_t n;                        // records held
    uint8_t next[KMX_RKEY_MAX];      // page token: the last key visited
    size_t next_len;                 // 0 when the scan reached the end
    uint64_t last_seq;               // newest sequence committed when the page was read
} kmx_store_scan_page_t;

// What to scan.
typedef struct {
    const Kmx__V1__Filter *filter; // borrowed; NULL matches everything
    const uint8_t *after;          // resume strictly after this key (a page token); may be NULL
    size_t after_len;              // bytes in after; 0 = from the start
    uint32_t limit;                // at most this many matches; 0 = 1
} kmx_store_scan_t;

// What to replay.
typedef struct {
    uint64_t since;        // events with seq > since
    uint32_t limit;        // at most this many events; 0 = 1
    char *const *prefixes; // topic prefixes (borrowed); none = all topics
    size_t n_prefixes;     // entries in prefixes
} kmx_store_replay_t;

// One page of a replay. Caller-allocated; release with kmx_store_replay_page_fini.
typedef struct {
    Kmx__V1__UpdateEvent **events; // n unpacked events in sequence order, owned by the page
    size_t n;                      // events held
    uint64_t first_seq;            // oldest sequence kept in the log (0 when empty)
    uint64_t last_seq;             // newest committed sequence
} kmx_store_replay_page_t;

typedef struct {
    uint64_t records;    // records stored
    uint64_t events;     // events in the log
    uint64_t last_seq;   // newest committed sequence
    uint64_t map_size;   // current map size in bytes
    uint64_t used_pages; // pages in use (last page number + 1)
    uint64_t page_size;  // bytes per page
} kmx_store_stats_t;

// Opens (creating dir and the databases if needed) the store in dir. cfg may be NULL.
// Clears stale reader slots left by dead processes. On 0 *out is yours; release it with
// kmx_store_close. Returns KMX_ERR_VERSION for a store of another schema version,
// KMX_ERR_IO when dir cannot be created, KMX_ERR_STORAGE or KMX_ERR_NOMEM otherwise.
int kmx_store_open(const char *dir, const kmx_store_config_t *cfg, kmx_store_t **out);

// The schema version kmx_store_open upgraded this store from (cfg->upgrade), 0 = none.
uint32_t kmx_store_upgraded_from(const kmx_store_t *self);

// Closes the environment and clears *self_p. Accepts NULL.
void kmx_store_close(kmx_store_t **self_p);

// Applies n normalised records in one write transaction. For each: new key -> STORED with
// the next sequence number; same content as stored -> UNCHANGED; else updated -> STORED.
// Each STORED record appends an UpdateEvent (with the previous value on update) to the
// event log in the same transaction and, after the commit, to events (may be NULL).
// outcomes (n entries) are final only when 0 is returned. A full map is grown and the
// transaction retried. Returns KMX_ERR_FULL when the map cannot grow further,
// KMX_ERR_STORAGE or KMX_ERR_NOMEM; then nothing was written and events is unchanged.
int kmx_store_put_batch(kmx_store_t *self, Kmx__V1__Record **recs, size_t n,
                        kmx_put_outcome_t *outcomes, kmx_store_events_t *events);

// Applies n changes in one write transaction, in order. A put behaves as in
// kmx_store_put_batch. A delete of a present key removes the record, its index entries
// and its share of the roll-ups, takes the next sequence number and appends a DELETE
// event carrying the record as it was (previous = its value): STORED. A delete of an
// absent key is NOT_FOUND and uses no sequence. Events older than the retention are
// dropped in the same transaction. Errors as kmx_store_put_batch; KMX_ERR_FULL also when
// the disk is full (ENOSPC, EFBIG, EDQUOT); then nothing of the batch was written.
int kmx_store_write_batch(kmx_store_t *self, const kmx_store_op_t *ops, size_t n,
                          kmx_put_outcome_t *outcomes, kmx_store_events_t *events);

// After kmx_store_write_batch returned err in this thread: writes to msg (size bytes) the
// error a client sees, naming the cause (no space left on the device, a disk quota, the
// process's file size limit, a map that may not grow, an I/O error) with the data
// directory and the fix, and returns the code to answer (KMX_ERR_FULL for the first
// four). A write that came back short (LMDB's EIO) counts as a full disk when the data
// file is near RLIMIT_FSIZE or the file system has under 4 MiB free.
int kmx_store_write_failure(kmx_store_t *self, int err, char *msg, size_t size);

// Looks up the record with key's natural key. On 0 *out is yours: free it with
// kmx__v1__stored_record__free_unpacked(*out, NULL). Returns KMX_ERR_NOT_FOUND,
// KMX_ERR_INVAL (key fields missing), KMX_ERR_DECODE or KMX_ERR_STORAGE.
int kmx_store_get(kmx_store_t *self, const Kmx__V1__Record *key, Kmx__V1__StoredRecord **out);

// Walks records in key order after q->after, keeping those q->filter matches, until
// q->limit matches or KMX_STORE_SCAN_VISIT_MAX visits. page->next is the last key visited
// (pass it back as q->after) or empty at the end; a page may hold fewer than limit records
// and still have a next token. Fills page (init it with kmx_store_scan_page_init first).
// Returns KMX_ERR_INVAL for a bad filter or token, KMX_ERR_NOMEM, KMX_ERR_STORAGE.
int kmx_store_scan(kmx_store_t *self, const kmx_store_scan_t *q, kmx_store_scan_page_t *page);

// Returns nonzero when rec passes filter (NULL filter = everything). filter must have
// passed kmx_store_filter_check.
int kmx_store_filter_match(const Kmx__V1__Filter *filter, const Kmx__V1__Record *rec);

// Checks whether an answer over filter grouped by fields would add alternative
// measurements of one quantity (kmx_alt.h): two records the filter matches that measure
// one quantity from different sources, with no BY_SOURCE among fields to keep them apart.
// Returns 1 with a sentence naming them and how to choose in why, 0 when there are none,
// or KMX_ERR_INVAL, KMX_ERR_NOMEM, KMX_ERR_STORAGE. The records holding alternatives are
// found by one walk over the store and reused until its sequence moves.
int kmx_store_alternatives_check(kmx_store_t *self, const Kmx__V1__Filter *filter,
                                 const Kmx__V1__GroupField *fields, size_t n_fields, char *why,
                                 size_t size);

// Alternatives an answer with QueryRequest.prefer leaves out of its sums: of every set of
// alternatives the filter matches and one row would add, all but the preferred one
// (kmx_alt_prefer_cmp). Fini it with kmx_store_set_aside_fini.
typedef struct {
    Kmx__V1__Record **records; // the records set aside (owned copies)
    char **notes;              // per record, kmx_alt_describe_set_aside's sentence
    size_t n;                  // entries in both
} kmx_store_set_aside_t;

// Fills *out (empty when rows are split by source or nothing is set aside). Returns 0,
// KMX_ERR_INVAL, KMX_ERR_NOMEM or KMX_ERR_STORAGE.
int kmx_store_alternatives_set_aside(kmx_store_t *self, const Kmx__V1__Filter *filter,
                                     const Kmx__V1__GroupField *fields, size_t n_fields,
                                     kmx_store_set_aside_t *out);
void kmx_store_set_aside_fini(kmx_store_set_aside_t *s);

// Checks a filter's granularity and period. Returns 0 or KMX_ERR_INVAL.
int kmx_store_filter_check(const Kmx__V1__Filter *filter);

// Collects events with seq > q->since in order whose topic starts with one of q->prefixes,
// up to q->limit. Returns KMX_ERR_RESYNC when events after since are no longer kept,
// KMX_ERR_NOMEM, KMX_ERR_DECODE or KMX_ERR_STORAGE.
int kmx_store_replay(kmx_store_t *self, const kmx_store_replay_t *q, kmx_store_replay_page_t *page);

// What an aggregate answer was computed from.
typedef struct {
    int from_rollups;  // nonzero: read roll-ups (rows have no min or max)
    uint64_t last_seq; // the sequence the answer reflects
    uint64_t folded;   // years of months added as one row each (kmx_store_fold_t)
} kmx_store_agg_info_t;

// When an aggregate read from roll-ups may add a year of months as one row whose period
// is the whole year (kmx_store_rollup.c says when that changes no answer).
typedef struct {
    const Kmx__V1__GroupField *fields; // the answer's group fields (never BY_PERIOD)
    size_t n_fields;                   // entries in fields
    int by_period; // the group's rows also split by period (BY_PERIOD appended to fields
                   // for the granularity rule or growth): fold only where that is exact;
                   // 0: rows carry no period, every year of months folds
} kmx_store_fold_t;

// Adds to group (created by the caller with the request's fields) every record filter
// matches, reading the roll-ups when the filter and group's fields only involve roll-up
// dimensions (kind, period, granularity, markets, regions, categories, units), else the
// records, all in one read transaction. fold (NULL: never) lets roll-up reads add a
// year of months as one row. Returns KMX_ERR_INVAL for a bad filter, KMX_ERR_TOO_BIG when
// there are too many groups, KMX_ERR_NOMEM or KMX_ERR_STORAGE.
int kmx_store_aggregate(kmx_store_t *self, const Kmx__V1__Filter *filter, kmx_group_t *group,
                        int fields_rollup, const kmx_store_fold_t *fold,
                        kmx_store_agg_info_t *info);

// Returns nonzero when filter only involves roll-up dimensions.
int kmx_store_filter_is_rollup(const Kmx__V1__Filter *filter);

// What kmx_store_check found. Counts of mismatches are zero for a consistent store.
typedef struct {
    uint64_t records;         // records read
    uint64_t events;          // events in the log
    uint64_t first_seq;       // oldest event kept (0 when none)
    uint64_t last_seq;        // meta last_seq
    uint64_t index_missing;   // index entries a record implies that are absent
    uint64_t index_extra;     // index entries no record implies
    uint64_t rollup_mismatch; // roll-up entries that differ from the records' totals
    uint64_t event_gaps;      // sequence numbers missing between first_seq and last_seq
    uint64_t bad_values;      // records or events that do not decode, or seq > last_seq
} kmx_store_check_t;

// Recomputes every index entry and roll-up from the records and compares them with what
// is stored, and checks the event log is gap-free up to last_seq, in one read
// transaction. Mismatches are logged (at most a few per kind). Returns 0 when the store
// is consistent, KMX_ERR_INTERNAL when it found a mismatch (report filled either way),
// KMX_ERR_NOMEM or KMX_ERR_STORAGE.
int kmx_store_check(kmx_store_t *self, kmx_store_check_t *report);

// Writes a compacted, consistent copy of the environment into dest (created if missing;
// must not already hold a data.mdb). Safe while another process writes the store.
// Returns 0, KMX_ERR_INVAL (dest holds a store), KMX_ERR_IO or KMX_ERR_STORAGE.
int kmx_store_backup(kmx_store_t *self, const char *dest);

// Returns the newest committed sequence number (0 for an empty store). Safe from any
// thread; a read's own answer carries the sequence of the snapshot it read.
uint64_t kmx_store_last_seq(const kmx_store_t *self);

// Clears the reader slots of processes that died inside a read transaction, so they pin
// no old pages (kmx_store_open does this once). Safe from any thread. *dead (may be NULL)
// is how many were cleared. Returns 0 or KMX_ERR_STORAGE.
int kmx_store_reader_check(kmx_store_t *self, int *dead);

// Fills *out. Returns 0 or KMX_ERR_STORAGE.
int kmx_store_stats(kmx_store_t *self, kmx_store_stats_t *out);

// Counts the reader slots holding a read transaction now (every process on this
// environment) and the slots there are. Returns 0 or KMX_ERR_STORAGE.
int kmx_store_readers(kmx_store_t *self, uint64_t *active, uint64_t *max);

void kmx_store_events_init(kmx_store_events_t *events);
// Frees every event's data and empties the list (it stays usable).
void kmx_store_events_fini(kmx_store_events_t *events);

void kmx_store_scan_page_init(kmx_store_scan_page_t *page);
void kmx_store_scan_page_fini(kmx_store_scan_page_t *page);
void kmx_store_replay_page_init(kmx_store_replay_page_t *page);
void kmx_store_replay_page_fini(kmx_store_replay_page_t *page);

// ---- catalog and history (kmx_store_catalog.c) ------------------------------------

// Reads what the store holds for kind (KIND_UNSPECIFIED: both) from the catalog kept on
// every write, with the sequence it reflects. On 0 *out is yours: free it with
// kmx__v1__catalog_result__free_unpacked(*out, NULL). Returns 0 or a kmx code.
int kmx_store_catalog(kmx_store_t *self, Kmx__V1__Kind kind, Kmx__V1__CatalogResult **out);

#define KMX_STORE_CATALOG_ALTERNATIVES_MAX 10000 // quantities one catalog lists

// Appends to cat (as kmx_store_catalog made it: freed by free_unpacked with the default
// allocator) every quantity of kind (KIND_UNSPECIFIED: both) that several sources measure,
// with its measurements in preference order (kmx_store_alt.c): the first
// KMX_STORE_CATALOG_ALTERNATIVES_MAX in quantity order. Returns 0, KMX_ERR_NOMEM or
// KMX_ERR_STORAGE.
int kmx_store_alternatives_catalog(kmx_store_t *self, Kmx__V1__Kind kind,
                                   Kmx__V1__CatalogResult *cat);

// Checks that every value filter names (markets, categories, items, companies, artists,
// sources, units) is held by a record of the filter's kind. Returns 0, KMX_ERR_INVAL with
// a sentence in why naming the value and the closest existing ones, or a kmx code.
int kmx_store_filter_exists(kmx_store_t *self, const Kmx__V1__Filter *filter, char *why,
                            size_t why_size);

// One figure's change events, oldest first.
typedef struct {
    Kmx__V1__UpdateEvent **events; // unpacked events (owned)
    size_t n;                      // events
    uint64_t last_seq;             // newest sequence committed
    uint64_t first_seq;            // oldest event the log keeps (0 when empty)
} kmx_store_history_t;

// Reads the history of the record with key's natural key (key fields only) through the
// history index. Fills *out (release with kmx_store_history_fini; n may be 0). Returns 0,
// KMX_ERR_INVAL for a key that does not encode, or a kmx code.
int kmx_store_history(kmx_store_t *self, const Kmx__V1__Record *key, kmx_store_history_t *out);
void kmx_store_history_fini(kmx_store_history_t *h);

#endif
