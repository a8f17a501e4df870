/*  kmx_schema - the on-disk layout of kmx-storage's LMDB environment: database names,
    meta keys and the schema version. Keys themselves are built only by kmx_rkey_*.
    Bump KMX_SCHEMA_VERSION whenever a key or value encoding changes.  */
#ifndef KMX_SCHEMA_H
#define KMX_SCHEMA_H

// Record key (kmx_rkey_record) -> packed kmx.v1.StoredRecord.
#define KMX_DB_RECORDS "records"
// Sequence number, 8 bytes big-endian (kmx_rkey_event) -> packed kmx.v1.UpdateEvent.
#define KMX_DB_EVENTS "events"
// Bookkeeping: the keys below.
#define KMX_DB_META "meta"

// Meta key -> schema version as 4 bytes big-endian, written when the store is created.
#define KMX_META_SCHEMA_VERSION "schema_version"
// Meta key -> newest committed sequence number as 8 bytes big-endian.
#define KMX_META_LAST_SEQ "last_seq"

#define KMX_SCHEMA_VERSION 1u // the layout this build reads and writes
#define KMX_SCHEMA_MAX_DBS 4  // named databases the environment may hold

#endif
