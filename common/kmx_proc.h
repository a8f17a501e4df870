/*  kmx_proc - what a kmx process costs the machine right now: resident memory, open file
    descriptors and time since start, read from /proc so every service reports the same
    three figures in its stats.  */
#ifndef KMX_PROC_H
#define KMX_PROC_H

#include <stdint.h>

typedef struct {
    uint64_t rss_bytes; // resident set size (pages in RAM times the page size)
    uint64_t open_fds;  // entries in /proc/self/fd, sockets and LMDB files included
    uint64_t uptime_s;  // seconds since the process started
} kmx_proc_t;

// Samples the calling process. A figure /proc cannot give (not Linux, /proc not mounted)
// reads 0. Returns 0, or KMX_ERR_IO when none of the three could be read.
int kmx_proc_sample(kmx_proc_t *out);

// Lowers the calling thread's priority by steps (0: nothing). On Linux the nice value is
// per thread (PRIO_PROCESS with who 0 names the calling thread) and threads started after
// inherit it. what names the thread in the warning logged when the change is refused.
// Returns 0 or KMX_ERR_IO.
int kmx_proc_nice(int steps, const char *what);

// Keeps the calling thread, and the threads it starts afterwards (ZeroMQ's I/O threads
// when called before zmq_ctx_new), on the CPUs of list: numbers and ranges with commas
// ("1", "0,2", "0-3"). NULL or "" changes nothing. A service whose threads share one CPU
// hands each message between them without waking another CPU (docs/operations.md). what
// names the process in the warning logged when the kernel refuses. Returns 0,
// KMX_ERR_INVAL for a list that is not one, or KMX_ERR_IO (also where Linux's
// sched_setaffinity is missing).
int kmx_proc_pin(const char *list, const char *what);

// Names the calling thread (at most 15 bytes are kept; Linux only, elsewhere nothing), so
// top -H, /proc/PID/task/TID/comm and perf tell a service's threads apart.
void kmx_proc_name_thread(const char *name);

#endif
