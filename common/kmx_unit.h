/*  kmx_unit - what a stored unit measures: its class and whether its amounts add.
    One table (kmx_unit.c) lists every base unit kmx accepts (after kmx_unit_normalize
    has folded "_million" and the like away), with a class and three flags:
      adds            sum and share are meaningful across markets and items, and growth
                      compares two such sums: money, copies, listeners, concerts...
      adds_over_time  amounts of consecutive periods add into the longer period (a flow:
                      money earned, copies sold); a level measured at a time (monthly
                      active users, the number of destination countries) does not
      may_be_negative the unit itself can be negative (growth rates); money can be
                      negative only where the record says so (see kmx_record.h)
    Percentages, growth rates, ranks, indexes, per-capita figures and durations never add.
    docs/data-model.md explains every row of the table.  */
#ifndef KMX_UNIT_H
#define KMX_UNIT_H

// What a unit measures.
typedef enum {
    KMX_UNIT_UNKNOWN = 0, // not a unit kmx accepts
    KMX_UNIT_MONEY,       // a currency amount: USD, KRW, ...
    KMX_UNIT_COUNT,       // a quantity of things or people: copies, users, concerts, ...
    KMX_UNIT_PERCENT,     // a part of a whole or of respondents: percent_share, ...
    KMX_UNIT_GROWTH,      // a rate of change: percent_yoy, percent_mom, percent_cagr, ...
    KMX_UNIT_RANK,        // a position in an ordering, 1 first
    KMX_UNIT_INDEX,       // points on a chart or survey index
    KMX_UNIT_PER_CAPITA,  // an average per person: <count unit>_per_capita
    KMX_UNIT_DURATION,    // a length of time: months, days, minutes, hours
} kmx_unit_class_t;

// Returns the class of a base unit ("USD" money, "users" count, "percent_yoy" growth,
// "performances_per_capita" per capita), KMX_UNIT_UNKNOWN for NULL or an unknown unit.
kmx_unit_class_t kmx_unit_class(const char *unit);

// Returns the class as a lower-case word: "money", "count", "percent", "growth", "rank",
// "index", "per_capita", "duration" or "unknown". Never NULL.
const char *kmx_unit_class_name(kmx_unit_class_t cls);

// Returns nonzero when sums, shares and growth of unit are meaningful across markets and
// items (money and most counts). Zero for unknown units.
int kmx_unit_adds(const char *unit);

// Returns nonzero when amounts of consecutive periods add into the longer one (money,
// copies, concerts). Zero for levels such as "users" (monthly active users: twelve
// months do not add into a year) and "countries", and for every unit that does not add.
int kmx_unit_adds_over_time(const char *unit);

// Returns nonzero when the unit itself may hold negative amounts (growth rates).
int kmx_unit_may_be_negative(const char *unit);

// Returns nonzero when unit is a base unit kmx stores ("USD", "percent_share", "rank", ...).
int kmx_unit_is_known(const char *unit);

// Returns nonzero when unit is a currency code.
int kmx_unit_is_currency(const char *unit);

// Returns the canonical (upper-case) currency code matching code in any case, or NULL.
const char *kmx_unit_currency(const char *code);

#endif
