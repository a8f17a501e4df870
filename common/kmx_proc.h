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

#endif
