/*  kmx_log - one line per event on stderr: time, level, service, message, key=value context.
    The level comes from KMX_LOG_LEVEL (error, warn, info, debug); default info.  */
#ifndef KMX_LOG_H
#define KMX_LOG_H

typedef enum { KMX_LOG_ERROR = 0, KMX_LOG_WARN, KMX_LOG_INFO, KMX_LOG_DEBUG } kmx_log_level_t;

// Sets the service name shown on every line and reads KMX_LOG_LEVEL. Call once from main.
void kmx_log_init(const char *service);

// Sets the level from text ("error", "warn", "info", "debug"). Returns 0 or KMX_ERR_INVAL.
int kmx_log_set_level(const char *text);

// Returns nonzero when a message at this level would be printed.
int kmx_log_is_enabled(kmx_log_level_t level);

void kmx_log_write(kmx_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define kmx_log_error(...) kmx_log_write(KMX_LOG_ERROR, __VA_ARGS__)
#define kmx_log_warn(...) kmx_log_write(KMX_LOG_WARN, __VA_ARGS__)
#define kmx_log_info(...) kmx_log_write(KMX_LOG_INFO, __VA_ARGS__)
#define kmx_log_debug(...)                                                                         \
    do {                                                                                           \
        if (kmx_log_is_enabled(KMX_LOG_DEBUG))                                                     \
            kmx_log_write(KMX_LOG_DEBUG, __VA_ARGS__);                                             \
    } while (0)

#endif
