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

#endif
