/*  kmx_rkey - the only place LMDB keys are built.
    Record key (order-preserving, so range scans follow kind then period order):
      [kind u8][period.start u32 BE][period.end u32 BE]
      market 0x00 category 0x00 item 0x00 company 0x00 artist 0x00 source
    Strings never contain NUL (kmx_record_normalize refuses it).
    Event key: the sequence number as 8 big-endian bytes.  */
#ifndef KMX_RKEY_H
#define KMX_RKEY_H

#include "kmx.pb-c.h"

#include <stddef.h>
#include <stdint.h>

#define KMX_RKEY_MAX 511 // LMDB's default maximum key size

// Encodes the natural key of a normalised record into buf. Returns 0 with *len set,
// KMX_ERR_INVAL when a key field is missing, KMX_ERR_OVERFLOW when it exceeds size.
int kmx_rkey_record(const Kmx__V1__Record *rec, uint8_t *buf, size_t size, size_t *len);

// Encodes an event-log key.
void kmx_rkey_event(uint64_t seq, uint8_t out[8]);

// Decodes an event-log key. Returns 0 or KMX_ERR_INVAL if len != 8.
int kmx_rkey_event_seq(const void *key, size_t len, uint64_t *seq);

#endif
