/*  kmx_schema - the on-disk layout of kmx-storage's LMDB environment: database names,
    meta keys and the schema version. Keys themselves are built only by kmx_rkey_*.
    Bump KMX_SCHEMA_VERSION whenever a database, a key or a value encoding changes.  */
#ifndef KMX_SCHEMA_H
#define KMX_SCHEMA_H

// Record key (kmx_rkey_record) -> packed kmx.v1.StoredRecord.
#define KMX_DB_RECORDS "records"
// Sequence number, 8 bytes big-endian (kmx_rkey_event) -> packed kmx.v1.UpdateEvent.
#define KMX_DB_EVENTS "events"
// Bookkeeping: the keys below.
#define KMX_DB_META "meta"

// Secondary indexes (MDB_DUPSORT): index key (kmx_rkey_index) -> one duplicate per record,
// [seq of the record's last change: u64 BE][record key] (kmx_derived_entry), so entries
// append in sequence order. The order matches kmx_rkey_index_t.
#define KMX_DB_IDX_MARKET "idx_market"
#define KMX_DB_IDX_PERIOD "idx_period"
#define KMX_DB_IDX_CATEGORY "idx_category"
#define KMX_DB_IDX_COMPANY "idx_company"
#define KMX_DB_IDX_ARTIST "idx_artist"

// Roll-ups of every span that is not a single month (years, halves, quarters, ranges):
// roll-up key (kmx_rkey_rollup: kind, period, market, category, unit) ->
// [sum: 16 bytes, two's complement big-endian, ten-thousandths][count: u64 big-endian].
// An entry exists exactly when its count is nonzero.
#define KMX_DB_ROLLUPS "rollups"
#define KMX_ROLLUP_VALUE_LEN 24 // bytes in a roll-up value

// Roll-ups of single months, one entry per year: the roll-up key of the year
// (kmx_rkey_rollup with period YYYY01..YYYY12) -> twelve roll-up values, January first
// (KMX_ROLLUP_VALUE_LEN bytes each; a month without records has sum 0 and count 0). An
// entry exists exactly when one of its counts is nonzero.
#define KMX_DB_ROLLUPS_MONTH "rollups_month"
#define KMX_ROLLUP_MONTHS 12
#define KMX_ROLLUP_MONTH_VALUE_LEN (KMX_ROLLUP_MONTHS * KMX_ROLLUP_VALUE_LEN)

// The catalog (kmx_catalog.h): [kind u8][tag u8][text segments] -> records holding that
// value, u64 BE. Tags: 'm' market, 'u' unit, 'c' category NUL unit NUL [start u32 BE]
// [end u32 BE] (one entry per period), 'i' category NUL item, 'j' item, 's' source,
// 'o' company, 'a' artist. An entry exists exactly when its count is nonzero.
#define KMX_DB_CATALOG "catalog"
// History index (MDB_DUPSORT | MDB_DUPFIXED): record key (kmx_rkey_record) -> one
// duplicate per change event of that key, its sequence as 8 bytes big-endian.
#define KMX_DB_HISTORY "history"

// Meta key -> schema version as 4 bytes big-endian, written when the store is created.
#define KMX_META_SCHEMA_VERSION "schema_version"
// Meta key -> newest committed sequence number as 8 bytes big-endian.
#define KMX_META_LAST_SEQ "last_seq"

// Version history: 1 = records, events, meta; 2 = adds the five indexes and roll-ups;
// 3 = index entries lead with the sequence of the record's last change; 4 = monthly
// roll-ups move to rollups_month, one entry per year; 5 = adds the catalog and the
// history index.
#define KMX_SCHEMA_VERSION 5u // the layout this build reads and writes
#define KMX_SCHEMA_MAX_DBS 16 // named databases the environment may hold

#endif
