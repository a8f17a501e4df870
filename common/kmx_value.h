/*  kmx_value - exact fixed-point amounts and their units.
    An amount is an int64 count of ten-thousandths of its unit. Text is parsed digit by
    digit (never through floating point); magnitude suffixes such as "_million" are folded
    into the amount, so "233.113" "USD_million" becomes 2331130000000 "USD".  */
#ifndef KMX_VALUE_H
#define KMX_VALUE_H

#include <stddef.h>
#include <stdint.h>

#include "kmx_unit.h" // the unit table: kmx_unit_is_known, kmx_unit_class, ...

#define KMX_VALUE_SCALE 10000 // amounts are ten-thousandths of the unit
#define KMX_VALUE_DIGITS 4    // decimal places kept
#define KMX_UNIT_MAX 40       // longest unit name, including NUL

__extension__ typedef __int128 kmx_i128;          // sums of amounts never overflow in practice
__extension__ typedef unsigned __int128 kmx_u128; // magnitudes while formatting

// Normalises a unit as sources write it ("USD_million", "KRW_billion", "percent",
// "copies_million") into a base unit ("USD", "KRW", "percent", "copies") written to
// unit_out, and the magnitude (1, 1e3, 1e6, 1e9, 1e12) to *multiplier.
// Returns 0, KMX_ERR_INVAL for an unknown unit, KMX_ERR_OVERFLOW if unit_out is too small.
int kmx_unit_normalize(const char *text, char *unit_out, size_t size, int64_t *multiplier);

// Parses a decimal ("1,801.45", "-2", "0.5", "1e3" is refused) multiplied by multiplier
// into ten-thousandths. Returns 0; KMX_ERR_INVAL for malformed text or more precision than
// four decimal places after scaling; KMX_ERR_OVERFLOW when it does not fit in int64.
int kmx_decimal_parse(const char *text, int64_t multiplier, int64_t *out);

// Writes amount / 10^4 as exact decimal text without trailing zeros ("2331130000000" ->
// "233113000", 5 -> "0.0005"). Returns 0 or KMX_ERR_OVERFLOW when buf is too small.
int kmx_decimal_format(int64_t amount, char *buf, size_t size);

// Same as kmx_decimal_format for 128-bit sums. Needs at most 46 bytes.
int kmx_decimal_format128(kmx_i128 amount, char *buf, size_t size);

// Parses text written by kmx_decimal_format128 back into ten-thousandths.
// Returns 0, KMX_ERR_INVAL or KMX_ERR_OVERFLOW.
int kmx_decimal_parse128(const char *text, kmx_i128 *out);

#endif
