/*  kmx_msg - the protobuf envelope: bounded unpacking that cannot crash, packing into
    fresh buffers, and the one mapping from kmx_err_t to a Response error.  */
#ifndef KMX_MSG_H
#define KMX_MSG_H

#include "kmx.pb-c.h"

#include <stddef.h>
#include <stdint.h>

#define KMX_MSG_MAX (64u * 1024u * 1024u) // largest body any kmx socket accepts

// Unpacks a Request. Returns NULL for empty, oversized or malformed input.
// Free the result with kmx__v1__request__free_unpacked(req, NULL).
Kmx__V1__Request *kmx_msg_request_unpack(const void *data, size_t size);

// Unpacks a Response. Returns NULL for empty, oversized or malformed input.
Kmx__V1__Response *kmx_msg_response_unpack(const void *data, size_t size);

// Packs into a malloc'd buffer that the caller frees. Returns 0 or KMX_ERR_NOMEM.
int kmx_msg_pack_request(const Kmx__V1__Request *req, uint8_t **out, size_t *len);
int kmx_msg_pack_response(const Kmx__V1__Response *resp, uint8_t **out, size_t *len);

// Maps a kmx error code to the wire error code.
Kmx__V1__ErrorCode kmx_msg_error_code(int kmx_err);

// Makes resp an error response pointing at err (both caller-allocated, e.g. on the stack)
// with the given message (borrowed). request_id is borrowed and may be NULL.
void kmx_msg_set_error(Kmx__V1__Response *resp, Kmx__V1__Error *err, const char *request_id,
                       int kmx_err, const char *message);

// Packs an error response straight into a malloc'd buffer. Returns 0 or KMX_ERR_NOMEM.
int kmx_msg_pack_error(const char *request_id, int kmx_err, const char *message, uint8_t **out,
                       size_t *len);

// Returns the name of a request's body ("put", "query", ...) or "none".
const char *kmx_msg_body_name(const Kmx__V1__Request *req);

// The case of a packed message's oneof (its message fields numbered first and up: the
// last of them present, as protobuf reads it) without decoding it, or 0 when none is
// present or the bytes are not well-formed wire format. For a Request first is
// KMX__V1__REQUEST__BODY_PING; for a Response KMX__V1__RESPONSE__RESULT_ERROR. When
// body_len is not NULL it gets the length of that field's packed message.
int kmx_msg_oneof_case(const void *data, size_t size, uint32_t first, size_t *body_len);

#endif
