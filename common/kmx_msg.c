/*  kmx_msg - envelope helpers. Unpacking is bounded before protobuf-c sees the bytes, and
    protobuf-c itself refuses truncated or malformed input, so network bytes cannot crash
    a service here.  */
#include "kmx_msg.h"
#include "kmx_err.h"

#include <stdlib.h>

Kmx__V1__Request *kmx_msg_request_unpack(const void *data, size_t size) {
    if (!data || size == 0 || size > KMX_MSG_MAX)
        return NULL;
    return kmx__v1__request__unpack(NULL, size, data);
}

Kmx__V1__Response *kmx_msg_response_unpack(const void *data, size_t size) {
    if (!data || size == 0 || size > KMX_MSG_MAX)
        return NULL;
    return kmx__v1__response__unpack(NULL, size, data);
}

static int s_pack(const ProtobufCMessage *msg, uint8_t **out, size_t *len) {
    size_t n = protobuf_c_message_get_packed_size(msg);
    // An empty message packs to zero bytes; keep one byte so the buffer is never NULL.
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return KMX_ERR_NOMEM;
    *len = protobuf_c_message_pack(msg, buf);
    *out = buf;
    return 0;
}

int kmx_msg_pack_request(const Kmx__V1__Request *req, uint8_t **out, size_t *len) {
    return s_pack(&req->base, out, len);
}

int kmx_msg_pack_response(const Kmx__V1__Response *resp, uint8_t **out, size_t *len) {
    return s_pack(&resp->base, out, len);
}

Kmx__V1__ErrorCode kmx_msg_error_code(int kmx_err) {
    switch (kmx_err) {
    case KMX_ERR_INVAL:
    case KMX_ERR_DECODE:
        return KMX__V1__ERROR_CODE__BAD_REQUEST;
    case KMX_ERR_NOT_FOUND:
        return KMX__V1__ERROR_CODE__NOT_FOUND;
    case KMX_ERR_UNAVAILABLE:
    case KMX_ERR_TIMEOUT:
        return KMX__V1__ERROR_CODE__UNAVAILABLE;
    case KMX_ERR_TOO_BIG:
        return KMX__V1__ERROR_CODE__TOO_LARGE;
    case KMX_ERR_UNSUPPORTED:
        return KMX__V1__ERROR_CODE__UNSUPPORTED;
    case KMX_ERR_RESYNC:
        return KMX__V1__ERROR_CODE__RESYNC_NEEDED;
    case KMX_ERR_FULL:
        return KMX__V1__ERROR_CODE__STORAGE_FULL;
    case KMX_ERR_FORBIDDEN:
        return KMX__V1__ERROR_CODE__FORBIDDEN;
    case KMX_ERR_DEADLINE:
        return KMX__V1__ERROR_CODE__DEADLINE_EXCEEDED;
    default:
        return KMX__V1__ERROR_CODE__INTERNAL;
    }
}

void kmx_msg_set_error(Kmx__V1__Response *resp, Kmx__V1__Error *err, const char *request_id,
                       int kmx_err, const char *message) {
    kmx__v1__response__init(resp);
    kmx__v1__error__init(err);
    err->has_code = 1;
    err->code = kmx_msg_error_code(kmx_err);
    err->message = (char *)(message ? message : kmx_strerror(kmx_err));
    resp->request_id = (char *)request_id;
    resp->result_case = KMX__V1__RESPONSE__RESULT_ERROR;
    resp->error = err;
}

int kmx_msg_pack_error(const char *request_id, int kmx_err, const char *message, uint8_t **out,
                       size_t *len) {
    Kmx__V1__Response resp;
    Kmx__V1__Error err;
    kmx_msg_set_error(&resp, &err, request_id, kmx_err, message);
    return kmx_msg_pack_response(&resp, out, len);
}

const char *kmx_msg_body_name(const Kmx__V1__Request *req) {
    switch (req ? req->body_case : KMX__V1__REQUEST__BODY__NOT_SET) {
    case KMX__V1__REQUEST__BODY_PING:
        return "ping";
    case KMX__V1__REQUEST__BODY_PUT:
        return "put";
    case KMX__V1__REQUEST__BODY_GET:
        return "get";
    case KMX__V1__REQUEST__BODY_QUERY:
        return "query";
    case KMX__V1__REQUEST__BODY_SCAN:
        return "scan";
    case KMX__V1__REQUEST__BODY_REPLAY:
        return "replay";
    case KMX__V1__REQUEST__BODY_STATS:
        return "stats";
    default:
        return "none";
    }
}

// ---- peeking at packed messages ----------------------------------------------------

// Reads one varint of protobuf wire format. Returns 0, or -1 when it runs past end.
static int s_varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
    *v = 0;
    for (unsigned shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return 0;
    }
    return -1;
}

int kmx_msg_oneof_case(const void *data, size_t len, uint32_t first, size_t *body_len) {
    const uint8_t *p = data, *end = p + len;
    int body = 0;
    if (body_len)
        *body_len = 0;
    while (p < end) {
        uint64_t key, size;
        if (s_varint(&p, end, &key) != 0)
            return 0;
        switch (key & 7) {
        case 0:
            if (s_varint(&p, end, &size) != 0)
                return 0;
            break;
        case 1:
        case 5:
            size = (key & 7) == 1 ? 8 : 4;
            if (size > (uint64_t)(end - p))
                return 0;
            p += size;
            break;
        case 2:
            if (s_varint(&p, end, &size) != 0 || size > (uint64_t)(end - p))
                return 0;
            p += size;
            if (key >> 3 >= first && key >> 3 <= UINT32_MAX) {
                body = (int)(key >> 3);
                if (body_len)
                    *body_len = (size_t)size;
            }
            break;
        default:
            return 0;
        }
    }
    return body;
}
