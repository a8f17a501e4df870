/*  kmx_market - markets: ISO 3166-1 alpha-2 countries, WORLD, regions and groups, and the
    built-in country -> region table used to group by region.  */
#ifndef KMX_MARKET_H
#define KMX_MARKET_H

#include <stddef.h>

#define KMX_MARKET_MAX 41 // longest canonical market, including NUL

// Writes the canonical form of a market to out:
//   "jp", "JP", "Japan", "japan"          -> "JP"        (country code, upper case)
//   "world", "World", "WORLD"             -> "WORLD"
//   "southeast asia", "Southeast Asia"    -> "Southeast Asia"   (a region, canonical name)
//   "JP+CN+US", "Japan + China + US"      -> "JP+CN+US"  (a group: members canonical, order kept)
//   "panel:26 countries (KOFICE panel)"   -> kept as is (a survey panel of unnamed countries)
// Returns 0, KMX_ERR_INVAL for an unknown market, KMX_ERR_OVERFLOW when it does not fit.
int kmx_market_canonical(const char *text, char *out, size_t size);

// Returns the region name of a canonical market: a country's region from the table,
// "World" for WORLD, the region itself for a region, the shared region of a group whose
// members all share one, else "Multiple". Never NULL.
const char *kmx_market_region(const char *canonical);

// Writes the canonical region name for text ("north america" -> "North America").
// Regions: Greater China, Japan, Southeast Asia, North America, Europe, Latin America,
// Middle East, Oceania, Africa, Other, plus World and Multiple. Returns 0 or KMX_ERR_INVAL.
int kmx_region_canonical(const char *text, char *out, size_t size);

// Returns nonzero when code is an ISO 3166-1 alpha-2 code (upper case).
int kmx_market_is_country(const char *code);

// Returns the English short name of a country code, or NULL.
const char *kmx_market_country_name(const char *code);

// What a canonical market is. A query ranks and shares like with like: countries among
// countries, regions among regions; WORLD and aggregates are totals of their members.
typedef enum {
    KMX_MARKET_UNKNOWN = 0, // not a market kmx accepts
    KMX_MARKET_COUNTRY,     // "JP"
    KMX_MARKET_REGION,      // "Southeast Asia", "North America", "Europe", ... (the region table)
    KMX_MARKET_GROUP,       // "JP+CN+US", "North America+Europe": listed members, order kept
    KMX_MARKET_PANEL,       // "panel:26 countries": members not named
    KMX_MARKET_AGGREGATE,   // a continent or its complement: "Asia", "non-Asia"
    KMX_MARKET_WORLD,       // "WORLD"
} kmx_market_level_t;

// Returns the level of a market written in canonical form (see kmx_market_canonical),
// KMX_MARKET_UNKNOWN for NULL or text that is not a market.
kmx_market_level_t kmx_market_level(const char *canonical);

// Returns "country", "region", "group", "panel", "aggregate", "world" or "unknown".
const char *kmx_market_level_name(kmx_market_level_t level);

// Aggregates: "Asia" is every country of the regions Greater China, Japan, Southeast Asia
// and Middle East, plus KR, KP, MN and South and Central Asia (AF BD BT IN KG KZ LK MV NP PK
// TJ TM UZ); RU, TR and the Caucasus stay in Europe as in the region table. "non-Asia" is
// every other country. Both are accepted as written in any case ("asia", "Non-Asia",
// "outside Asia").

// Returns 1 when the country code is a member of market, 0 when it is not, and
// KMX_ERR_NOT_FOUND when market's members are not defined (a panel), KMX_ERR_INVAL when
// market is not a canonical market or country not a country code. Members: a country is
// its own; a region its countries; a group the union of its members'; WORLD every country.
int kmx_market_contains(const char *market, const char *country);

// Writes up to cap member country codes of market (static strings, ISO order) to codes
// and their total number to *count, so a caller may ask with cap 0 first. Returns 0,
// KMX_ERR_NOT_FOUND for a panel, KMX_ERR_INVAL for an unknown market.
int kmx_market_members(const char *market, const char **codes, size_t cap, size_t *count);

#endif
