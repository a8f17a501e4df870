/*  kmx_record - validation, normalisation and naming of export and consumption records.
    Every record entering storage has passed kmx_record_normalize: canonical market,
    known unit, bounded UTF-8 fields, a valid period.  */
#ifndef KMX_RECORD_H
#define KMX_RECORD_H

#include "kmx.pb-c.h"
#include "kmx_period.h"

#include <stddef.h>

// Field limits in bytes. Together they keep a natural key under LMDB's 511-byte limit.
#define KMX_CATEGORY_MAX 40
#define KMX_ITEM_MAX 120
#define KMX_COMPANY_MAX 60
#define KMX_ARTIST_MAX 60
#define KMX_SOURCE_MAX 160
#define KMX_NOTE_MAX 1000
#define KMX_URL_MAX 1000
#define KMX_TOPIC_MAX 160

typedef struct {
    const char *field; // the field at fault ("market", "value.unit", ...), static
    char reason[160];  // a sentence saying what is wrong
} kmx_record_problem_t;

// Validates rec and normalises it in place: canonical market (consumption defaults to
// "KR"), trimmed strings. Replaced strings are allocated with malloc, as protobuf-c's
// default allocator does, so free_unpacked(rec, NULL) still frees everything.
// Returns 0, or KMX_ERR_INVAL with *problem filled; rec may then be partly normalised.
int kmx_record_normalize(Kmx__V1__Record *rec, kmx_record_problem_t *problem);

// Returns nonzero when an amount in unit may be negative: the unit is a rate of change
// (percent_yoy, percent_cagr, ...), or the unit is money, a count or a percentage and the
// category or the item names, as a whole word, a quantity that can fall below zero:
// profit(s), income, loss(es), earnings, ebitda, balance, surplus, deficit, change(s),
// difference, growth ("company_operating_profit", "FLO app users YoY change"). Ranks,
// indexes, durations and per-capita figures never are. category and item may be NULL.
int kmx_record_may_be_negative(const char *unit, const char *category, const char *item);

// The month range a wire period names (proto/kmx.proto, Period): its numbers, or its text
// forms read with kmx_period_parse, the parser of the CLI, so every client accepts the same
// text. `text` is the whole period; `start_text` / `end_text` give the first month of one
// period and the last month of another. With open set (filters) either end given alone
// leaves the other open (KMX_YEAR_MIN-01 / KMX_YEAR_MAX-12, like `kmx query --from`);
// otherwise (records, keys) both ends are needed. Returns 1 with *out set when a text form
// was given, 0 when p has none (the numbers apply, unchecked), or KMX_ERR_INVAL with a
// sentence naming the bad text in why.
int kmx_record_period_text(const Kmx__V1__Period *p, int open, kmx_period_t *out, char *why,
                           size_t size);

// Writes the notification topic "<kind>.<market>.<period>.<category>" of a valid record
// ("export.JP.2025-H1.physical_album_customs"). Returns 0 or KMX_ERR_OVERFLOW.
int kmx_record_topic(const Kmx__V1__Record *rec, char *buf, size_t size);

// Returns "export" or "consumption" (or "unknown").
const char *kmx_kind_name(Kmx__V1__Kind kind);

// Parses "export"/"exports"/"consumption". Returns 0 or KMX_ERR_INVAL.
int kmx_kind_parse(const char *text, Kmx__V1__Kind *out);

// Returns nonzero when two records carry the same content in every field, compared
// through the protobuf descriptor (so a field added to Record later is compared too; an
// absent field equals its default), i.e. storing b over a would change nothing.
int kmx_record_same_content(const Kmx__V1__Record *a, const Kmx__V1__Record *b);

#endif
