/*  kmx_err - texts for the kmx error codes.  */
#include "kmx_err.h"

const char *kmx_strerror(int err) {
    switch (err) {
    case KMX_OK:
        return "ok";
#define KMX_ERR_TEXT(name, code, text)                                                             \
    case code:                                                                                     \
        return text;
        KMX_ERR_LIST(KMX_ERR_TEXT)
#undef KMX_ERR_TEXT
    default:
        return "unknown error";
    }
}

const char *kmx_err_name(int err) {
    switch (err) {
    case KMX_OK:
        return "OK";
#define KMX_ERR_SYM(name, code, text)                                                              \
    case code:                                                                                     \
        return #name;
        KMX_ERR_LIST(KMX_ERR_SYM)
#undef KMX_ERR_SYM
    default:
        return "UNKNOWN";
    }
}
