/*  kmx_err - one negative error-code set for every kmx module.
    The enum and the messages come from one X-macro list so they cannot drift.
    Functions return 0 or a negative kmx_err_t; kmx_strerror() names it.  */
#ifndef KMX_ERR_H
#define KMX_ERR_H

#define KMX_ERR_LIST(X)                                                                            \
    X(INVAL, -1, "invalid argument")                                                               \
    X(NOT_FOUND, -2, "no such record")                                                             \
    X(DECODE, -3, "malformed message")                                                             \
    X(NOMEM, -4, "out of memory")                                                                  \
    X(IO, -5, "input/output error")                                                                \
    X(UNAVAILABLE, -6, "service unavailable")                                                      \
    X(TIMEOUT, -7, "timed out")                                                                    \
    X(TOO_BIG, -8, "request too large")                                                            \
    X(STORAGE, -9, "storage error")                                                                \
    X(FULL, -10, "storage full")                                                                   \
    X(VERSION, -11, "unsupported on-disk version")                                                 \
    X(UNSUPPORTED, -12, "unsupported request")                                                     \
    X(OVERFLOW, -13, "numeric overflow")                                                           \
    X(INTERNAL, -14, "internal error")                                                             \
    X(RESYNC, -15, "events no longer kept; resync needed")                                         \
    X(FORBIDDEN, -16, "permission denied")                                                         \
    X(BUSY, -17, "data directory in use by another kmx-storage")                                   \
    X(DEADLINE, -18, "not answered within the caller's timeout")

typedef enum {
    KMX_OK = 0,
#define KMX_ERR_ENUM(name, code, text) KMX_ERR_##name = code,
    KMX_ERR_LIST(KMX_ERR_ENUM)
#undef KMX_ERR_ENUM
} kmx_err_t;

// Returns a static, never-NULL description of a kmx error code (0 = "ok").
const char *kmx_strerror(int err);

// Returns the short symbolic name of a code ("INVAL", "NOT_FOUND", "OK").
const char *kmx_err_name(int err);

#endif
