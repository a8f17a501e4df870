/*  kmx_proc - samples of the process's resident memory, descriptors and age from /proc.
    Nothing is kept between calls: the start time comes from /proc/self/stat, so no global
    start stamp is needed.  */
#ifdef __linux__
#define _GNU_SOURCE // sched_setaffinity and the CPU_* macros
#endif
#include "kmx_proc.h"
#include "kmx_err.h"

#include "kmx_log.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#ifdef __linux__
#include <sched.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#include <time.h>
#include <unistd.h>

// Resident pages from /proc/self/statm (second field). Returns 0 or KMX_ERR_IO.
static int s_rss(uint64_t *out) {
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return KMX_ERR_IO;
    unsigned long long size = 0, resident = 0;
    int n = fscanf(f, "%llu %llu", &size, &resident);
    fclose(f);
    long page = sysconf(_SC_PAGESIZE);
    if (n != 2 || page <= 0)
        return KMX_ERR_IO;
    *out = (uint64_t)resident * (uint64_t)page;
    return 0;
}

// Counts /proc/self/fd, leaving out the descriptor the walk itself holds open.
static int s_fds(uint64_t *out) {
    DIR *dir = opendir("/proc/self/fd");
    if (!dir)
        return KMX_ERR_IO;
    uint64_t n = 0;
    for (struct dirent *e = readdir(dir); e; e = readdir(dir))
        n += e->d_name[0] != '.';
    closedir(dir);
    *out = n > 0 ? n - 1 : 0;
    return 0;
}

// Field 22 of /proc/self/stat is the start time in clock ticks since boot; the command
// name (field 2) may hold spaces and parentheses, so fields are counted after its last ')'.
static int s_uptime(uint64_t *out) {
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f)
        return KMX_ERR_IO;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    unsigned long long start = 0;
    // After ") " come fields 3..: skip 19 of them to reach field 22.
    if (!p || sscanf(p + 2,
                     "%*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s "
                     "%*s %*s %*s %llu",
                     &start) != 1)
        return KMX_ERR_IO;
    long hz = sysconf(_SC_CLK_TCK);
    struct timespec now;
    if (hz <= 0 || clock_gettime(CLOCK_BOOTTIME, &now) != 0)
        return KMX_ERR_IO;
    uint64_t started = (uint64_t)start / (uint64_t)hz;
    *out = (uint64_t)now.tv_sec > started ? (uint64_t)now.tv_sec - started : 0;
    return 0;
}

int kmx_proc_sample(kmx_proc_t *out) {
    memset(out, 0, sizeof *out);
    int failed = (s_rss(&out->rss_bytes) != 0) + (s_fds(&out->open_fds) != 0) +
                 (s_uptime(&out->uptime_s) != 0);
    return failed == 3 ? KMX_ERR_IO : 0;
}

int kmx_proc_nice(int steps, const char *what) {
    if (steps == 0)
        return 0;
    errno = 0;
    int now = getpriority(PRIO_PROCESS, 0);
    if ((now == -1 && errno != 0) || setpriority(PRIO_PROCESS, 0, now + steps) != 0) {
        kmx_log_warn("cannot lower the priority of %s nice=%d: %s", what, steps, strerror(errno));
        return KMX_ERR_IO;
    }
    return 0;
}

#ifdef __linux__
// Reads a CPU number at *p, advancing it. Returns the number or -1.
static long s_cpu_number(const char **p) {
    if (!isdigit((unsigned char)**p))
        return -1;
    char *end = NULL;
    long v = strtol(*p, &end, 10);
    *p = end;
    return v < CPU_SETSIZE ? v : -1;
}

// Fills set from list ("0,2-3"). Returns 0 or KMX_ERR_INVAL.
static int s_cpu_list(const char *list, cpu_set_t *set) {
    CPU_ZERO(set);
    const char *p = list;
    for (;;) {
        long from = s_cpu_number(&p), to = from;
        if (from >= 0 && *p == '-') {
            p++;
            to = s_cpu_number(&p);
        }
        if (from < 0 || to < from)
            return KMX_ERR_INVAL;
        for (long c = from; c <= to; c++)
            CPU_SET((int)c, set);
        if (*p == '\0')
            return 0;
        if (*p++ != ',')
            return KMX_ERR_INVAL;
    }
}
#endif

int kmx_proc_pin(const char *list, const char *what) {
    if (!list || !*list)
        return 0;
#ifdef __linux__
    cpu_set_t set;
    if (s_cpu_list(list, &set) != 0)
        return KMX_ERR_INVAL;
    if (sched_setaffinity(0, sizeof set, &set) != 0) {
        kmx_log_warn("cannot keep %s on cpus=%s: %s", what, list, strerror(errno));
        return KMX_ERR_IO;
    }
    return 0;
#else
    kmx_log_warn("cannot keep %s on cpus=%s: not supported here", what, list);
    return KMX_ERR_IO;
#endif
}

void kmx_proc_name_thread(const char *name) {
#ifdef __linux__
    (void)prctl(PR_SET_NAME, (unsigned long)name, 0, 0, 0);
#else
    (void)name;
#endif
}
