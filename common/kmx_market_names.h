/*  kmx_market_names - the names of countries beyond kmx_market's ISO English table: ISO
    3166-1 alpha-3 codes, Korean names as KOSIS and the customs portal write them, the
    Korean words for a total (전체, 합계, 총계, 세계 -> WORLD) and common English short
    names. Generated from Debian's iso-codes by scripts/gen_market_names.py.  */
#ifndef KMX_MARKET_NAMES_H
#define KMX_MARKET_NAMES_H

#include <stddef.h>

// Returns the alpha-2 code ("JP") or "WORLD" that the n bytes at p (trimmed, borrowed)
// name: an alpha-3 code in any case ("JPN", "kor"), a Korean name with or without spaces
// ("일본", "남아프리카 공화국"), a Korean total, or an English name of the extra table
// ("Holland"). Returns NULL when none; the result is a static string.
const char *kmx_market_name_lookup(const char *p, size_t n);

#endif
