/*  kmx_csv - a streaming RFC 4180 reader: quoted fields holding the delimiter (comma by
    default; semicolon, tab or '|' when set or detected), quotes doubled inside quotes, line
    breaks inside quotes, CRLF or LF line ends, a leading UTF-8 BOM skipped. Field and row sizes are
   bounded so a hostile file cannot exhaust memory; every error names the line it happened on.  */
#ifndef KMX_CSV_H
#define KMX_CSV_H

#include <stddef.h>
#include <stdio.h>

#define KMX_CSV_FIELD_MAX (64u * 1024u) // default longest field, bytes
#define KMX_CSV_ROW_MAX (1024u * 1024u) // default longest row (all fields), bytes
#define KMX_CSV_FIELDS_MAX 256u         // default most fields in one row

typedef struct kmx_csv_reader kmx_csv_reader_t;

typedef struct {
    size_t field_max;  // longest field in bytes; 0 = KMX_CSV_FIELD_MAX
    size_t row_max;    // longest row in bytes (sum of fields); 0 = KMX_CSV_ROW_MAX
    size_t fields_max; // most fields in a row; 0 = KMX_CSV_FIELDS_MAX
} kmx_csv_limits_t;

// Creates a reader of file, which stays borrowed (the caller closes it after destroying
// the reader). limits may be NULL for the defaults. Returns NULL when out of memory.
kmx_csv_reader_t *kmx_csv_reader_new(FILE *file);
kmx_csv_reader_t *kmx_csv_reader_new_limits(FILE *file, const kmx_csv_limits_t *limits);
void kmx_csv_reader_destroy(kmx_csv_reader_t **self_p);

// Creates a reader of len bytes at data, which stay borrowed until the reader is
// destroyed. limits may be NULL. Returns NULL when out of memory.
kmx_csv_reader_t *kmx_csv_reader_new_mem(const void *data, size_t len,
                                         const kmx_csv_limits_t *limits);

// Reads the next row. Blank lines are skipped. Returns 1 with *fields pointing at
// *nfields NUL-terminated strings (owned by the reader, valid until the next call),
// 0 at end of input, or a negative kmx_err_t:
//   KMX_ERR_INVAL   bad quoting (a quote inside an unquoted field, text after a closing
//                   quote, a quoted field still open at end of input);
//   KMX_ERR_TOO_BIG a field, the row or the field count exceeds the limits;
//   KMX_ERR_IO      the file could not be read;
//   KMX_ERR_NOMEM   out of memory.
// After KMX_ERR_INVAL or KMX_ERR_TOO_BIG the rest of the offending line is skipped, so
// the next call resumes at the following line. kmx_csv_error() says what went wrong.
int kmx_csv_next(kmx_csv_reader_t *self, const char ***fields, size_t *nfields);

// Returns the 1-based line number on which the last row (or error) started.
size_t kmx_csv_line(const kmx_csv_reader_t *self);

// Returns the line on which the last row ended (its line break excluded).
size_t kmx_csv_last_line(const kmx_csv_reader_t *self);

// Sets the field delimiter (',', ';', '\t' or '|') for the rows read from now on.
// Returns 0, or KMX_ERR_INVAL for any other character.
int kmx_csv_set_delimiter(kmx_csv_reader_t *self, char delimiter);

// Returns the delimiter of a header line: whichever of ',', ';', '\t' and '|' occurs most
// often outside quotes in len bytes at line up to its first line break; ties go to that
// order, and a line with none of them is comma-separated.
char kmx_csv_detect_delimiter(const char *line, size_t len);

// Returns the 1-based field that byte offset `at` of a line (len bytes, borrowed) falls in,
// counting delimiters outside quotes from the line's start.
size_t kmx_csv_field_at(const char *line, size_t len, size_t at, char delimiter);

// Returns the name of a delimiter for messages: "comma", "semicolon", "tab", "pipe".
const char *kmx_csv_delimiter_name(char delimiter);

// Returns a sentence describing the last error, naming its line ("line 7: unterminated
// quoted field"), or "" when there was none. Valid until the next call.
const char *kmx_csv_error(const kmx_csv_reader_t *self);

#endif
