/*  kmx_rkey - the only place LMDB keys are built.
    Record key (order-preserving, so range scans follow kind then period order):
      [kind u8][period.start u32 BE][period.end u32 BE]
      market 0x00 category 0x00 item 0x00 company 0x00 artist 0x00 source
    Strings never contain NUL (kmx_record_normalize refuses it).
    Event key: the sequence number as 8 big-endian bytes.
    Index keys: market -> "JP"; period -> [start u32 BE][end u32 BE]; category -> [kind u8]
    category; company -> company; artist -> artist. Each duplicate value under an index key
    is [seq u64 BE][record key], seq being the record's last change, so inserts append.
    Roll-up key: [kind u8][start u32 BE][end u32 BE] market 0x00 category 0x00 unit.  */
#ifndef KMX_RKEY_H
#define KMX_RKEY_H

#include "kmx.pb-c.h"

#include <stddef.h>
#include <stdint.h>

#define KMX_RKEY_MAX 511 // LMDB's default maximum key size

// The secondary indexes, in the order kmx_schema.h names their databases.
typedef enum {
    KMX_RKEY_IDX_MARKET = 0, // market -> [seq][record key] entries
    KMX_RKEY_IDX_PERIOD,     // period -> [seq][record key] entries
    KMX_RKEY_IDX_CATEGORY,   // kind and category (or dimension) -> entries
    KMX_RKEY_IDX_COMPANY,    // company -> entries (records with a company only)
    KMX_RKEY_IDX_ARTIST,     // artist -> entries (records with an artist only)
    KMX_RKEY_IDX_COUNT
} kmx_rkey_index_t;

// A decoded roll-up key. Strings are NUL-terminated copies.
typedef struct {
    uint8_t kind;      // kmx.v1.Kind number
    uint32_t start;    // period start, YYYYMM
    uint32_t end;      // period end, YYYYMM
    char market[64];   // canonical market
    char category[64]; // category or dimension ("" when absent)
    char unit[64];     // base unit
} kmx_rkey_rollup_t;

// Encodes the natural key of a normalised record into buf. Returns 0 with *len set,
// KMX_ERR_INVAL when a key field is missing, KMX_ERR_OVERFLOW when it exceeds size.
int kmx_rkey_record(const Kmx__V1__Record *rec, uint8_t *buf, size_t size, size_t *len);

// Encodes an event-log key.
void kmx_rkey_event(uint64_t seq, uint8_t out[8]);

// Decodes an event-log key. Returns 0 or KMX_ERR_INVAL if len != 8.
int kmx_rkey_event_seq(const void *key, size_t len, uint64_t *seq);

// Encodes rec's key in index idx. Returns 0 with *len set, KMX_ERR_NOT_FOUND when rec has
// no entry in that index (no company, no artist), KMX_ERR_INVAL for a bad record or index,
// KMX_ERR_OVERFLOW when it exceeds size.
int kmx_rkey_index(kmx_rkey_index_t idx, const Kmx__V1__Record *rec, uint8_t *buf, size_t size,
                   size_t *len);

// Encodes the roll-up key (kind, period, market, category, unit) of a normalised record.
// Returns 0, KMX_ERR_INVAL (missing key field or value) or KMX_ERR_OVERFLOW.
int kmx_rkey_rollup(const Kmx__V1__Record *rec, uint8_t *buf, size_t size, size_t *len);

// Decodes a roll-up key. Returns 0 or KMX_ERR_INVAL for a malformed key.
int kmx_rkey_rollup_parse(const void *key, size_t len, kmx_rkey_rollup_t *out);

#endif
