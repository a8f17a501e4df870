/*  kmx_bench_floor - the least a ZeroMQ hop costs on this machine: a DEALER sends a
    40-byte message to a ROUTER in another thread that echoes it back, over
    tcp://127.0.0.1 and over ipc://, and the round trip is timed. A point get through
    client -> broker -> kmx-query -> kmx-storage makes three such round trips, so three
    times this floor is the fastest any get on this path can be, whatever the services
    do; with direct reads (kmx-query --read-dir) a get makes two. The same echo over a
    unix stream socket (blocking reads and writes, a 4-byte length before the bytes as on
    kmx-query's local read socket) is the least one round trip on that socket costs; a
    get asked there is answered by another process that waits in poll on its listener,
    its connections and its broker socket, so the same echo is also timed with the echo
    side in a child process waiting that way (an idle eventfd for the broker's socket):
    the floor of the hop a get on that socket makes. Printed beside the query benchmark
    (bench/query/run.sh) and bench/mixed. With --cpus ECHO,CLIENT only the unix-socket
    echoes are timed, the echo side on CPU ECHO and the timing side on CPU CLIENT: the
    floor of a get whose worker and client are kept on those CPUs (bench/mixed), since a
    round trip within one CPU and one between two cost very different wake-ups.
        kmx_bench_floor [ROUND_TRIPS] [--cpus ECHO,CLIENT]  */
#define _GNU_SOURCE // sched_setaffinity, CPU_SET
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define S_WARMUP 500 // round trips not timed

// The echo side: returns every message to its sender until the context ends.
static void *s_echo(void *router) {
    for (;;) {
        zmq_msg_t id, body;
        zmq_msg_init(&id);
        zmq_msg_init(&body);
        if (zmq_msg_recv(&id, router, 0) < 0 || zmq_msg_recv(&body, router, 0) < 0) {
            zmq_msg_close(&id);
            zmq_msg_close(&body);
            break;
        }
        zmq_msg_send(&id, router, ZMQ_SNDMORE);
        zmq_msg_send(&body, router, 0);
    }
    zmq_close(router);
    return NULL;
}

static int s_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double s_ms(const struct timespec *a, const struct timespec *b) {
    return (double)(b->tv_sec - a->tv_sec) * 1e3 + (double)(b->tv_nsec - a->tv_nsec) / 1e6;
}

// Times n round trips over endpoint bind (a wildcard tcp port is resolved). Writes p50
// and p99 in ms. Returns 0 or -1.
static int s_measure(const char *bind, int n, double *p50, double *p99) {
    void *ctx = zmq_ctx_new();
    void *router = zmq_socket(ctx, ZMQ_ROUTER);
    void *dealer = zmq_socket(ctx, ZMQ_DEALER);
    char ep[256];
    size_t len = sizeof ep;
    int linger = 0;
    zmq_setsockopt(dealer, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(router, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_bind(router, bind) != 0 || zmq_getsockopt(router, ZMQ_LAST_ENDPOINT, ep, &len) != 0 ||
        zmq_connect(dealer, ep) != 0) {
        fprintf(stderr, "floor: cannot bind or connect %s: %s\n", bind, zmq_strerror(errno));
        return -1;
    }
    pthread_t thread;
    if (pthread_create(&thread, NULL, s_echo, router) != 0)
        return -1;
    double *lat = malloc((size_t)n * sizeof *lat);
    char buf[64];
    memset(buf, 'k', sizeof buf);
    int rc = lat ? 0 : -1;
    for (int i = 0; rc == 0 && i < n + S_WARMUP; i++) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        if (zmq_send(dealer, buf, 40, 0) != 40 || zmq_recv(dealer, buf, sizeof buf, 0) != 40)
            rc = -1;
        clock_gettime(CLOCK_MONOTONIC, &b);
        if (i >= S_WARMUP && lat)
            lat[i - S_WARMUP] = s_ms(&a, &b);
    }
    if (rc == 0) {
        qsort(lat, (size_t)n, sizeof *lat, s_cmp);
        *p50 = lat[n / 2];
        *p99 = lat[(size_t)n * 99 / 100];
    }
    free(lat);
    zmq_close(dealer);
    zmq_ctx_shutdown(ctx); // ends the echo thread's receive
    pthread_join(thread, NULL);
    zmq_ctx_term(ctx);
    return rc;
}

// Reads or writes all len bytes. Returns 0 or -1.
static int s_full(int fd, char *buf, size_t len, int out) {
    for (size_t done = 0; done < len;) {
        ssize_t n = out ? write(fd, buf + done, len - done) : read(fd, buf + done, len - done);
        if (n <= 0)
            return -1;
        done += (size_t)n;
    }
    return 0;
}

// Keeps the calling thread on cpu (none when negative).
static void s_pin(int cpu) {
    if (cpu < 0)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0)
        fprintf(stderr, "floor: cannot keep a thread on CPU %d: %s\n", cpu, strerror(errno));
}

typedef struct {
    int listener; // the echo side's listening socket
    int cpu;      // its CPU, or -1
} s_echo_arg_t;

// The unix-socket echo side: one connection, each framed message back, until it closes.
static void *s_unix_echo(void *arg) {
    const s_echo_arg_t *a = arg;
    s_pin(a->cpu);
    int listener = a->listener;
    int fd = accept(listener, NULL, NULL);
    char buf[64];
    while (fd >= 0 && s_full(fd, buf, 44, 0) == 0 && s_full(fd, buf, 44, 1) == 0)
        ;
    if (fd >= 0)
        close(fd);
    return NULL;
}

// The same echo as kmx-query's worker waits: in poll on the listener, the connection and
// an idle eventfd (the broker socket's descriptor) before each message.
static void s_unix_echo_polled(int listener) {
    int fd = accept(listener, NULL, NULL), idle = eventfd(0, EFD_NONBLOCK);
    char buf[64];
    for (;;) {
        struct pollfd fds[3] = {{.fd = idle, .events = POLLIN},
                                {.fd = listener, .events = POLLIN},
                                {.fd = fd, .events = POLLIN}};
        if (fd < 0 || poll(fds, 3, -1) < 0 || s_full(fd, buf, 44, 0) != 0 ||
            s_full(fd, buf, 44, 1) != 0)
            break;
    }
    if (fd >= 0)
        close(fd);
    if (idle >= 0)
        close(idle);
}

static double s_cpu_us(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

// Times n round trips of a 4-byte length and 40 bytes over a unix stream socket at path,
// the echo side a thread blocking in read or, polled, a child process waiting in poll
// (s_unix_echo_polled); *cpu_us is the CPU both sides spent per timed round trip (user
// and system), for the thread echo only: a child's is not told apart from its start.
static int s_measure_unix(const char *path, int polled, const int cpus[2], int n, double *p50,
                          double *p99, double *cpu_us) {
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof addr.sun_path)
        return -1;
    memcpy(addr.sun_path, path, strlen(path) + 1);
    unlink(path);
    int listener = socket(AF_UNIX, SOCK_STREAM, 0);
    if (listener < 0 || bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        listen(listener, 1) != 0) {
        fprintf(stderr, "floor: cannot listen on %s: %s\n", path, strerror(errno));
        return -1;
    }
    pthread_t thread;
    s_echo_arg_t echo = {listener, cpus[0]};
    pid_t child = polled ? fork() : -1;
    if (child == 0) {
        s_pin(cpus[0]);
        s_unix_echo_polled(listener);
        _exit(0);
    }
    if (polled ? child < 0 : pthread_create(&thread, NULL, s_unix_echo, &echo) != 0)
        return -1;
    cpu_set_t was;
    int restore = cpus[1] >= 0 && sched_getaffinity(0, sizeof was, &was) == 0;
    s_pin(cpus[1]);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    double *lat = malloc((size_t)n * sizeof *lat);
    int rc = lat && fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0 ? 0 : -1;
    char buf[64];
    memset(buf, 'k', sizeof buf);
    double cpu0 = 0;
    for (int i = 0; rc == 0 && i < n + S_WARMUP; i++) {
        if (i == S_WARMUP)
            cpu0 = s_cpu_us();
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        if (s_full(fd, buf, 44, 1) != 0 || s_full(fd, buf, 44, 0) != 0)
            rc = -1;
        clock_gettime(CLOCK_MONOTONIC, &b);
        if (i >= S_WARMUP)
            lat[i - S_WARMUP] = s_ms(&a, &b);
    }
    double self_us = s_cpu_us() - cpu0;
    if (restore)
        sched_setaffinity(0, sizeof was, &was);
    if (fd >= 0)
        close(fd); // ends the echo side
    if (rc != 0)
        shutdown(listener, SHUT_RDWR);
    if (polled)
        waitpid(child, NULL, 0);
    else
        pthread_join(thread, NULL);
    if (rc == 0) {
        *cpu_us = self_us / n; // the echo thread's CPU is this process's too
        qsort(lat, (size_t)n, sizeof *lat, s_cmp);
        *p50 = lat[n / 2];
        *p99 = lat[(size_t)n * 99 / 100];
    }
    free(lat);
    close(listener);
    unlink(path);
    return rc;
}

// The ZeroMQ round trips over tcp://127.0.0.1 and ipc://, printed. Returns 0 or -1.
static int s_zmq_floors(int n) {
    char ipc[128];
    snprintf(ipc, sizeof ipc, "ipc:///tmp/kmx-bench-floor-%d.ipc", (int)getpid());
    const char *eps[] = {"tcp://127.0.0.1:*", ipc};
    printf("\nfloor: one ZeroMQ round trip (DEALER -> ROUTER echo, 40 bytes, %d tries; ms)\n", n);
    printf("  %-20s %9s %9s  %9s %9s\n", "transport", "p50", "p99", "3 hops", "2 hops");
    for (size_t i = 0; i < sizeof eps / sizeof eps[0]; i++) {
        double p50 = 0, p99 = 0;
        if (s_measure(eps[i], n, &p50, &p99) != 0)
            return -1;
        printf("  %-20s %9.4f %9.4f  %9.4f %9.4f\n", i == 0 ? "tcp 127.0.0.1" : "ipc", p50, p99,
               3 * p50, 2 * p50);
        if (i == 0)
            printf("figure: floor tcp round trip p50 ms = %.4f\n", p50);
    }
    unlink(ipc + strlen("ipc://"));
    return 0;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 5000;
    int cpus[2] = {-1, -1};
    if (argc == 4 &&
        (strcmp(argv[2], "--cpus") != 0 || sscanf(argv[3], "%d,%d", &cpus[0], &cpus[1]) != 2 ||
         cpus[0] < 0 || cpus[1] < 0))
        n = 0;
    if (n < 100 || argc == 3 || argc > 4) {
        fprintf(stderr, "usage: kmx_bench_floor [ROUND_TRIPS >= 100] [--cpus ECHO,CLIENT]\n");
        return 2;
    }
    if (argc != 4 && s_zmq_floors(n) != 0)
        return 1;
    double p50 = 0, p99 = 0, cpu_us = 0;
    char path[128];
    snprintf(path, sizeof path, "/tmp/kmx-bench-floor-%d.sock", (int)getpid());
    // The polled echo first: kmx-query's worker answers that way, so it is the floor a
    // get on the local read socket is held against (bench/mixed, bench/query).
    static const char *const what[2] = {
        "echo thread blocking in read",
        "1 hop: kmx-query's local read socket, echo process in poll"};
    for (int polled = 1; polled >= 0; polled--) {
        if (s_measure_unix(path, polled, cpus, n, &p50, &p99, &cpu_us) != 0)
            return 1;
        char where[64] = "";
        if (cpus[0] >= 0)
            snprintf(where, sizeof where, "; echo on CPU %d, client on CPU %d", cpus[0], cpus[1]);
        printf("  %-20s %9.4f %9.4f  %9s %9s   (%s%s)\n", polled ? "unix polled" : "unix stream",
               p50, p99, "-", "-", what[polled], where);
        if (!polled)
            printf("figure: floor unix cpu per round trip = %.2f us (both sides, user and "
                   "system)\n",
                   cpu_us);
    }
    return 0;
}
