/*  kmx_text - the text encodings statistics files come in: UTF-8 (with or without a byte
    order mark) and CP949, the Windows superset of EUC-KR that KOSIS and the customs portal
    download. Detects which one a document is and converts it to UTF-8 with glibc's iconv,
    keeping the position of every byte that is not valid in it.  */
#ifndef KMX_TEXT_H
#define KMX_TEXT_H

#include <stddef.h>

#define KMX_TEXT_BAD_MAX 1000u // invalid bytes remembered (more are counted, not placed)

typedef enum {
    KMX_TEXT_AUTO = 0, // UTF-8 when the bytes are valid UTF-8, else CP949
    KMX_TEXT_UTF8,
    KMX_TEXT_CP949, // also EUC-KR, which it contains
} kmx_text_enc_t;

// One byte that is not valid in the encoding read (replaced by U+FFFD in the text).
typedef struct {
    size_t line;        // 1-based line of the input it is on
    size_t line_start;  // input offset of that line's first byte
    size_t offset;      // input offset of the byte
    unsigned char byte; // its value
} kmx_text_bad_t;

// A document as UTF-8. data points at the input when nothing needed converting.
typedef struct {
    const char *data;    // UTF-8 text (no BOM), len bytes; not NUL-terminated
    size_t len;          // bytes at data
    char *owned;         // the converted copy, or NULL when data is the input
    kmx_text_enc_t enc;  // the encoding read (never AUTO)
    int detected;        // nonzero when enc was detected rather than chosen
    kmx_text_bad_t *bad; // invalid bytes in input order (at most KMX_TEXT_BAD_MAX)
    size_t n_bad;        // entries in bad
    size_t bad_total;    // invalid bytes found, also those not kept in bad
} kmx_text_t;

// Converts len bytes at in (borrowed; must outlive out when nothing is converted) read as
// enc into *out (zeroed first). A leading UTF-8 BOM is dropped. Invalid bytes do not stop
// the conversion: each becomes U+FFFD and is listed in out->bad. Returns 0, KMX_ERR_NOMEM,
// or KMX_ERR_UNSUPPORTED when iconv lacks CP949 (glibc's gconv modules missing).
int kmx_text_decode(const void *in, size_t len, kmx_text_enc_t enc, kmx_text_t *out);

// Frees what out holds and zeroes it. Accepts NULL.
void kmx_text_fini(kmx_text_t *out);

// Returns nonzero when len bytes at p are well-formed UTF-8 (no overlong forms, no
// surrogates, nothing above U+10FFFF).
int kmx_text_is_utf8(const void *p, size_t len);

// The encoding's name: "UTF-8", "CP949" or "auto".
const char *kmx_text_enc_name(kmx_text_enc_t enc);

// Parses an encoding name: auto, utf-8, utf8, cp949, euc-kr, euckr, uhc, ms949 (any case).
// Returns 0 or KMX_ERR_INVAL.
int kmx_text_enc_parse(const char *name, kmx_text_enc_t *out);

#endif
