/*  kmx_log - stderr logging. The service name and level are written once in main and
    read-only afterwards, as the style guide allows for configuration.  */
#include "kmx_log.h"
#include "kmx_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static const char *s_service = "kmx";
static kmx_log_level_t s_level = KMX_LOG_INFO;
static const char *const s_names[] = {"error", "warn", "info", "debug"};

void kmx_log_init(const char *service) {
    if (service)
        s_service = service;
    const char *env = getenv("KMX_LOG_LEVEL");
    if (env && *env && kmx_log_set_level(env) != 0)
        fprintf(stderr, "%s: ignoring unknown KMX_LOG_LEVEL '%s'\n", s_service, env);
}

int kmx_log_set_level(const char *text) {
    for (int i = 0; i <= KMX_LOG_DEBUG; i++) {
        if (strcasecmp(text, s_names[i]) == 0) {
            s_level = (kmx_log_level_t)i;
            return 0;
        }
    }
    return KMX_ERR_INVAL;
}

int kmx_log_is_enabled(kmx_log_level_t level) {
    return level <= s_level;
}

void kmx_log_write(kmx_log_level_t level, const char *fmt, ...) {
    if (!kmx_log_is_enabled(level))
        return;
    char line[1024];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s[%d] ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, s_names[level], s_service, (int)getpid());
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof line)
        vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    // One write per line keeps lines from several processes unmixed.
    fprintf(stderr, "%s\n", line);
}
