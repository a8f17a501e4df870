/*  kmx_ingest_doc - turns a RawDocument (CSV or JSON Lines, as a source published it)
    into records: the bytes are converted to UTF-8 from the document's encoding (UTF-8 or
    CP949, given or detected), CSV rows are split at the document's delimiter (given or
    detected from the header), read one by one with the document's limits and converted by
    kmx_import with the document's defaults, column maps and layout (a wide file yields a
    record per period cell); every row or cell that cannot become a record is kept as a
    rejection naming its line, column and reason.  */
#ifndef KMX_INGEST_DOC_H
#define KMX_INGEST_DOC_H

#include "kmx.pb-c.h"
#include "kmx_import.h"

#include <stddef.h>
#include <stdint.h>

#define KMX_DOC_BYTES_MAX (32u * 1024u * 1024u) // largest document data, bytes
#define KMX_DOC_RECORDS_MAX 100000u             // most data rows in one document
#define KMX_DOC_FIELD_MAX 4096u                 // longest cell, bytes
#define KMX_DOC_FIELDS_MAX 512u                 // most columns in a row (wide files: periods)
#define KMX_DOC_ERROR_MAX 1024                  // longest document-level error, with NUL
#define KMX_DOC_REASON_MAX 256                  // longest rejection reason kept, with NUL
#define KMX_DOC_PREVIEW_MAX 100u                // most records a dry run sends back

// A row that did not become a record.
typedef struct {
    uint32_t index;                     // data row ordinal in the document, from 0
    uint32_t row;                       // line the row started on
    char column[KMX_IMPORT_COLUMN_MAX]; // the column at fault, as written, or ""
    char reason[KMX_DOC_REASON_MAX];    // why
} kmx_doc_reject_t;

// The records of a document. Everything is owned; release with kmx_doc_fini.
typedef struct {
    Kmx__V1__Record **records; // converted records (malloc'd, free_unpacked-compatible)
    uint32_t *index;           // data row ordinal of each record
    uint32_t *rows;            // line of each record
    size_t n;                  // records
    size_t cap;                // capacity of records, index and rows
    kmx_doc_reject_t *rejects; // rows that did not convert, in document order
    size_t n_rejects;          // rejections
    size_t rejects_cap;        // capacity of rejects
    size_t rows_read;          // data rows read
    size_t slots;              // records and rejections so far (each one's index)
    size_t skipped;            // wide: empty and "-" cells skipped
    char **warnings;           // sentences about how the document was read, malloc'd
    size_t n_warnings;         // entries in warnings
    const char *encoding;      // the encoding read ("UTF-8", "CP949"), static
} kmx_doc_t;

// Parses doc into *out (zeroed first). Returns 0 even when rows were rejected, or for the
// document as a whole, with a sentence in err (size bytes):
//   KMX_ERR_INVAL   unknown format, encoding or delimiter, a bad header, map or defaults,
//                   a CSV without header, an invalid byte in the header;
//   KMX_ERR_TOO_BIG data over KMX_DOC_BYTES_MAX, more than KMX_DOC_RECORDS_MAX rows, or
//                   rows yielding more than KMX_DOC_RECORDS_MAX records (a wide file);
//   KMX_ERR_NOMEM   out of memory.
// On error *out holds nothing that needs freeing beyond what kmx_doc_fini releases.
int kmx_doc_parse(const Kmx__V1__RawDocument *doc, kmx_doc_t *out, char *err, size_t size);

// Frees everything out holds and zeroes it. Accepts a zeroed or NULL doc.
void kmx_doc_fini(kmx_doc_t *doc);

#endif
