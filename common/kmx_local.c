/*  kmx_local - the server side of the local read socket (see kmx_local.h). Connections are
    non-blocking; each has an input buffer that fills to one whole request and an output
    buffer that drains its answer. A connection with an answer still to write is not read,
    so a client that stops reading holds only its own connection.  */
#define _GNU_SOURCE // accept4
#include "kmx_local.h"

#include "kmx_err.h"
#include "kmx_log.h"
#include "kmx_msg.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define S_HEADER 4
#define S_MODE 0660 // owner and group: the socket file's permissions are its access control

#define S_IN_FIRST 4096      // a connection's input buffer to begin with: any usual request
#define S_CLIENT_FIRST 16384 // the client's first receive of an answer

typedef struct {
    int fd;          // -1: a free slot
    uint8_t *in;     // bytes received and not yet answered: whole requests, then a part
    size_t in_len;   // their count
    size_t in_cap;   // room in in
    uint8_t *out;    // answer being written: header and body
    size_t out_len;  // its length
    size_t out_done; // bytes of it written
    int closing;     // close once the answer is written
    int64_t since;   // when the current message (either way) began to wait, monotonic ms
} s_conn_t;

struct kmx_local {
    char *path;                 // socket file
    int listen_fd;              // listener
    kmx_local_handle_fn handle; // answers requests
    void *arg;                  // its argument
    s_conn_t conns[KMX_LOCAL_MAX_CONNS];
    int slot_of[KMX_LOCAL_FDS]; // per fd of the last kmx_local_fds: its slot, -1 the listener
    int idle_ms;                // a connection stuck inside a message this long is closed
    kmx_local_stats_t stats;
};

static int64_t s_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void s_put_len(uint8_t *p, size_t len) {
    p[0] = (uint8_t)(len >> 24);
    p[1] = (uint8_t)(len >> 16);
    p[2] = (uint8_t)(len >> 8);
    p[3] = (uint8_t)len;
}

static uint32_t s_get_len(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

_Static_assert(KMX_LOCAL_PATH_MAX + 1 == sizeof((struct sockaddr_un *)0)->sun_path,
               "KMX_LOCAL_PATH_MAX is sun_path less its NUL");

int kmx_local_path_ok(const char *path) {
    return path && *path && strlen(path) <= KMX_LOCAL_PATH_MAX;
}

// Whether a process listens on the socket file at addr.
static int s_in_use(const struct sockaddr_un *addr) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    int live = connect(fd, (const struct sockaddr *)addr, sizeof *addr) == 0;
    close(fd);
    return live;
}

kmx_local_t *kmx_local_listen(const char *path, kmx_local_handle_fn handle, void *arg,
                              const char **why) {
    assert(path && handle && why);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (!kmx_local_path_ok(path)) {
        *why = "the local socket path must be 1 to 107 bytes long: choose a shorter path";
        return NULL;
    }
    memcpy(addr.sun_path, path, strlen(path) + 1);
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            *why = "the local socket path exists and is not a socket: remove it or choose "
                   "another path";
            return NULL;
        }
        if (s_in_use(&addr)) {
            *why = "another process listens on the local socket path: give each kmx-query "
                   "worker a path of its own";
            return NULL;
        }
        unlink(path); // left by a worker that is gone
    }
    kmx_local_t *self = calloc(1, sizeof *self);
    if (!self || !(self->path = strdup(path))) {
        free(self);
        *why = "out of memory";
        return NULL;
    }
    self->handle = handle;
    self->arg = arg;
    self->idle_ms = KMX_LOCAL_IDLE_MS;
    for (int i = 0; i < KMX_LOCAL_MAX_CONNS; i++)
        self->conns[i].fd = -1;
    self->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    mode_t old = umask(0777 & ~S_MODE);
    int rc =
        self->listen_fd < 0 ? -1 : bind(self->listen_fd, (struct sockaddr *)&addr, sizeof addr);
    umask(old);
    if (rc != 0 || listen(self->listen_fd, 64) != 0) {
        *why = errno == EACCES || errno == EROFS
                   ? "the local socket cannot be made there (permission denied): choose a "
                     "directory the worker may write"
                   : "the local socket cannot be made: check that its directory exists";
        if (self->listen_fd >= 0)
            close(self->listen_fd);
        if (rc == 0)
            unlink(path);
        free(self->path);
        free(self);
        return NULL;
    }
    return self;
}

static void s_conn_close(kmx_local_t *self, s_conn_t *c) {
    if (c->fd < 0)
        return;
    close(c->fd);
    free(c->in);
    free(c->out);
    memset(c, 0, sizeof *c);
    c->fd = -1;
    self->stats.open--;
}

void kmx_local_destroy(kmx_local_t **self_p) {
    if (!self_p || !*self_p)
        return;
    kmx_local_t *self = *self_p;
    for (int i = 0; i < KMX_LOCAL_MAX_CONNS; i++)
        s_conn_close(self, &self->conns[i]);
    close(self->listen_fd);
    unlink(self->path);
    free(self->path);
    free(self);
    *self_p = NULL;
}

// Whether c holds a whole request not yet answered (one that came behind another).
static int s_buffered(const s_conn_t *c) {
    return c->in_len >= S_HEADER && c->in_len >= S_HEADER + (size_t)s_get_len(c->in);
}

int kmx_local_fds(kmx_local_t *self, struct pollfd *fds) {
    assert(self && fds);
    int n = 0;
    fds[n] = (struct pollfd){self->listen_fd, POLLIN, 0};
    self->slot_of[n++] = -1;
    for (int i = 0; i < KMX_LOCAL_MAX_CONNS; i++) {
        s_conn_t *c = &self->conns[i];
        if (c->fd < 0)
            continue;
        // A buffered request waits for its answer to be writable: the socket almost always
        // is, so the poll returns at once and the request gets its turn.
        short events = c->out || s_buffered(c) ? POLLOUT : POLLIN;
        fds[n] = (struct pollfd){c->fd, events, 0};
        self->slot_of[n++] = i;
    }
    return n;
}

// Queues an answer (body of len bytes, taken) behind its length.
static int s_queue(s_conn_t *c, uint8_t *body, size_t len) {
    c->out = malloc(S_HEADER + len);
    if (!c->out) {
        free(body);
        return KMX_ERR_NOMEM;
    }
    s_put_len(c->out, len);
    if (len)
        memcpy(c->out + S_HEADER, body, len);
    free(body);
    c->out_len = S_HEADER + len;
    c->out_done = 0;
    return 0;
}

// Writes what the socket takes of the queued answer. Returns 0, or -1 to close.
static int s_flush(s_conn_t *c) {
    while (c->out_done < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_done, c->out_len - c->out_done, MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            return -1;
        if (n < 0) {
            if (!c->since)
                c->since = s_now_ms(); // a reader that stops reading is closed in time
            return 0;
        }
        c->out_done += (size_t)n;
    }
    free(c->out);
    c->out = NULL;
    c->since = c->in_len ? s_now_ms() : 0;
    return c->closing ? -1 : 0;
}

// Refuses a request longer than any read needs, naming the limit, and closes after it.
static int s_too_large(s_conn_t *c, uint32_t want) {
    char message[160];
    snprintf(message, sizeof message,
             "request of %u bytes over the local read socket's limit of %u: send it to the "
             "broker instead",
             (unsigned)want, (unsigned)KMX_LOCAL_REQUEST_MAX);
    uint8_t *out = NULL;
    size_t len = 0;
    if (kmx_msg_pack_error("", KMX_ERR_TOO_BIG, message, &out, &len) != 0)
        return -1;
    c->closing = 1;
    c->in_len = 0;
    if (s_queue(c, out, len) != 0)
        return -1;
    return s_flush(c);
}

// The length, header included, of the request at the start of c->in when it has all
// arrived, else 0 (c->in then has room for all of it). -1 to close: no memory, or a
// request over the limit (its refusal is then being written).
static long s_whole(s_conn_t *c) {
    if (c->in_len < S_HEADER)
        return 0;
    uint32_t want = s_get_len(c->in);
    if (want > KMX_LOCAL_REQUEST_MAX)
        return s_too_large(c, want) == 0 && c->out ? 0 : -1;
    size_t total = S_HEADER + (size_t)want;
    if (c->in_len >= total)
        return (long)total;
    if (c->in_cap < total) {
        uint8_t *grown = realloc(c->in, total);
        if (!grown)
            return -1;
        c->in = grown;
        c->in_cap = total;
    }
    return 0;
}

// Answers the request of total bytes at the start of c->in and keeps what came after it.
// Returns 0, or -1 to close.
static int s_answer(kmx_local_t *self, s_conn_t *c, size_t total) {
    uint8_t *out = NULL;
    size_t len = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = self->handle(self->arg, c->in + S_HEADER, total - S_HEADER, &out, &len);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    self->stats.work_ns +=
        (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec));
    memmove(c->in, c->in + total, c->in_len - total);
    c->in_len -= total;
    c->since = 0;
    if (c->in_cap > S_IN_FIRST && c->in_len <= S_IN_FIRST) {
        // A large request's room goes back: 256 idle connections hold 1 MiB, not 256.
        uint8_t *smaller = realloc(c->in, S_IN_FIRST);
        if (smaller) {
            c->in = smaller;
            c->in_cap = S_IN_FIRST;
        }
    }
    if (rc != 0) {
        free(out);
        return -1;
    }
    self->stats.requests++;
    if (s_queue(c, out, len) != 0)
        return -1;
    return s_flush(c);
}

// Reads what has arrived and answers one whole request if there is one: the other
// connections' turns come before this one's next. Returns 0, or -1 to close (the peer
// went away, an error, a request over the limit, an answer that cannot be built).
static int s_read(kmx_local_t *self, s_conn_t *c) {
    for (;;) {
        long total = s_whole(c);
        if (total < 0)
            return -1;
        if (total > 0)
            return s_answer(self, c, (size_t)total);
        if (c->out)
            return 0; // a refusal is being written; nothing more is read
        ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (n == 0)
            return -1; // closed by the peer
        if (n < 0)
            return errno == EAGAIN || errno == EINTR ? 0 : -1;
        if (c->in_len == 0)
            c->since = s_now_ms();
        c->in_len += (size_t)n;
    }
}

static void s_accept(kmx_local_t *self) {
    for (;;) {
        int fd = accept4(self->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        s_conn_t *slot = NULL;
        for (int i = 0; i < KMX_LOCAL_MAX_CONNS && !slot; i++)
            slot = self->conns[i].fd < 0 ? &self->conns[i] : NULL;
        uint8_t *in = slot ? malloc(S_IN_FIRST) : NULL;
        if (!in) {
            // Full: the client sees the connection close and says so (libkmx).
            self->stats.refused++;
            kmx_log_warn("local socket full: refused a connection path=%s open=%d", self->path,
                         KMX_LOCAL_MAX_CONNS);
            close(fd);
            continue;
        }
        memset(slot, 0, sizeof *slot);
        slot->fd = fd;
        slot->in = in;
        slot->in_cap = S_IN_FIRST;
        self->stats.accepted++;
        self->stats.open++;
    }
}

int kmx_local_step(kmx_local_t *self, const struct pollfd *fds, int n) {
    assert(self && fds);
    uint64_t before = self->stats.requests;
    int64_t now = s_now_ms();
    for (int i = 0; i < n; i++) {
        int slot = self->slot_of[i];
        if (slot < 0) {
            if (fds[i].revents & POLLIN)
                s_accept(self);
            continue;
        }
        s_conn_t *c = &self->conns[slot];
        if (c->fd != fds[i].fd)
            continue;
        short ev = fds[i].revents;
        int rc = 0;
        if (ev & (POLLERR | POLLNVAL))
            rc = -1;
        else if (c->out && (ev & (POLLOUT | POLLHUP)))
            rc = s_flush(c);
        else if (!c->out && (ev & (POLLIN | POLLOUT | POLLHUP)))
            rc = s_read(self, c);
        else if (c->since && now - c->since >= self->idle_ms) {
            kmx_log_warn("local socket: closed a connection stuck inside a message for %d ms",
                         self->idle_ms);
            rc = -1;
        }
        if (rc != 0)
            s_conn_close(self, c);
    }
    return (int)(self->stats.requests - before);
}

void kmx_local_set_idle_ms(kmx_local_t *self, int ms) {
    assert(self);
    self->idle_ms = ms > 0 ? ms : KMX_LOCAL_IDLE_MS;
}

kmx_local_stats_t kmx_local_stats(const kmx_local_t *self) {
    assert(self);
    return self->stats;
}

// ---- client side ------------------------------------------------------------------------

struct kmx_local_client {
    struct sockaddr_un addr; // the socket file
    int fd;                  // connection of the current try, -1 until made
    int fd_timeout_ms;       // the timeouts set on fd
    int timeout_ms;          // per try
    int tries;               // per call
};

kmx_local_client_t *kmx_local_client_new(const char *path, int timeout_ms, int tries) {
    if (!kmx_local_path_ok(path))
        return NULL;
    kmx_local_client_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->addr.sun_family = AF_UNIX;
    memcpy(self->addr.sun_path, path, strlen(path) + 1);
    self->fd = -1;
    kmx_local_client_set_timeout(self, timeout_ms);
    kmx_local_client_set_retries(self, tries);
    return self;
}

static void s_client_close(kmx_local_client_t *self) {
    if (self->fd >= 0)
        close(self->fd);
    self->fd = -1;
}

void kmx_local_client_destroy(kmx_local_client_t **self_p) {
    if (!self_p || !*self_p)
        return;
    s_client_close(*self_p);
    free(*self_p);
    *self_p = NULL;
}

void kmx_local_client_set_timeout(kmx_local_client_t *self, int timeout_ms) {
    assert(self);
    self->timeout_ms = timeout_ms > 0 ? timeout_ms : 1;
}

void kmx_local_client_set_retries(kmx_local_client_t *self, int tries) {
    assert(self);
    self->tries = tries > 0 ? tries : 1;
}

// Sets fd's send and receive timeouts to ms, so a blocking call waits at most that long.
static int s_set_timeouts(int fd, int ms) {
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    return setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) == 0 &&
                   setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0
               ? 0
               : KMX_ERR_IO;
}

// Moves len bytes of buf over the blocking fd (send when out, else receive) by deadline.
// Returns 0, KMX_ERR_TIMEOUT, KMX_ERR_UNAVAILABLE (the other side closed) or KMX_ERR_IO.
static int s_move(int fd, uint8_t *buf, size_t len, int out, int64_t deadline) {
    size_t done = 0;
    while (done < len) {
        ssize_t n = out ? send(fd, buf + done, len - done, MSG_NOSIGNAL)
                        : recv(fd, buf + done, len - done, 0);
        if (n > 0)
            done += (size_t)n;
        else if (n == 0 || errno == EPIPE || errno == ECONNRESET)
            return KMX_ERR_UNAVAILABLE;
        else if (errno == EAGAIN || errno == EWOULDBLOCK)
            return KMX_ERR_TIMEOUT; // the socket's timeout ran out
        else if (errno != EINTR)
            return KMX_ERR_IO;
        if (done < len && s_now_ms() >= deadline)
            return KMX_ERR_TIMEOUT;
    }
    return 0;
}

// One try on the current connection (made when there is none): the length and the body
// in one send, the answer's first part in one receive, so a small exchange is one system
// call each way, each blocking at most the per-try timeout.
static int s_client_try(kmx_local_client_t *self, const uint8_t *msg, size_t size, uint8_t **reply,
                        size_t *len) {
    int64_t deadline = s_now_ms() + self->timeout_ms;
    if (self->fd < 0) {
        self->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (self->fd < 0)
            return KMX_ERR_IO;
        self->fd_timeout_ms = self->timeout_ms;
        if (s_set_timeouts(self->fd, self->timeout_ms) != 0)
            return KMX_ERR_IO;
        if (connect(self->fd, (struct sockaddr *)&self->addr, sizeof self->addr) != 0) {
            int err = errno;
            s_client_close(self);
            // EAGAIN: the listener's backlog stayed full; the others: nobody listens there.
            return err == EAGAIN || err == EINPROGRESS ? KMX_ERR_TIMEOUT : KMX_ERR_UNAVAILABLE;
        }
    } else if (self->fd_timeout_ms != self->timeout_ms) {
        self->fd_timeout_ms = self->timeout_ms;
        if (s_set_timeouts(self->fd, self->timeout_ms) != 0)
            return KMX_ERR_IO;
    }
    int rc = s_move(self->fd, (uint8_t *)msg, size, 1, deadline);
    uint8_t first[S_CLIENT_FIRST];
    size_t got = 0;
    while (rc == 0 && got < S_HEADER) {
        ssize_t n = recv(self->fd, first + got, sizeof first - got, 0);
        if (n > 0)
            got += (size_t)n;
        else if (n == 0 || errno == ECONNRESET)
            rc = KMX_ERR_UNAVAILABLE;
        else if (errno == EAGAIN || errno == EWOULDBLOCK)
            rc = KMX_ERR_TIMEOUT;
        else if (errno != EINTR)
            rc = KMX_ERR_IO;
        else if (s_now_ms() >= deadline)
            rc = KMX_ERR_TIMEOUT;
    }
    if (rc != 0)
        return rc;
    uint32_t want = s_get_len(first);
    if (want > KMX_MSG_MAX || got > S_HEADER + (size_t)want)
        return KMX_ERR_DECODE; // not an answer of this protocol
    *reply = malloc(want ? want : 1);
    if (!*reply)
        return KMX_ERR_NOMEM;
    memcpy(*reply, first + S_HEADER, got - S_HEADER);
    size_t have = got - S_HEADER;
    rc = s_move(self->fd, *reply + have, want - have, 0, deadline);
    if (rc != 0) {
        free(*reply);
        *reply = NULL;
        return rc;
    }
    *len = want;
    return 0;
}

int kmx_local_client_call(kmx_local_client_t *self, const void *body, size_t size, uint8_t **reply,
                          size_t *len) {
    assert(self && reply && len);
    *reply = NULL;
    *len = 0;
    if (size > KMX_LOCAL_REQUEST_MAX)
        return KMX_ERR_TOO_BIG;
    uint8_t *msg = malloc(S_HEADER + size);
    if (!msg)
        return KMX_ERR_NOMEM;
    s_put_len(msg, size);
    if (size)
        memcpy(msg + S_HEADER, body, size);
    int rc = KMX_ERR_TIMEOUT;
    int fresh_again = 1; // a kept connection the worker closed (it restarted) is made anew once
    for (int attempt = 1; attempt <= self->tries; attempt++) {
        int kept = self->fd >= 0;
        rc = s_client_try(self, msg, S_HEADER + size, reply, len);
        if (rc == 0)
            break;
        if (kept && rc == KMX_ERR_UNAVAILABLE && fresh_again) {
            fresh_again = 0;
            attempt--;
        }
        // A fresh connection for the next try: this one may hold half a message.
        s_client_close(self);
        if (rc != KMX_ERR_TIMEOUT && rc != KMX_ERR_UNAVAILABLE)
            break;
        kmx_log_debug("local: no answer (%s), try %d of %d path=%s", kmx_err_name(rc), attempt,
                      self->tries, self->addr.sun_path);
    }
    free(msg);
    return rc;
}
