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
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define S_HEADER 4
#define S_MODE 0660 // owner and group: the socket file's permissions are its access control

typedef struct {
    int fd; // -1: a free slot
    uint8_t head[S_HEADER];
    size_t have;     // bytes of the current request read so far, header included
    uint32_t want;   // the request's body length, once the header is in
    uint8_t *in;     // its body
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
    kmx_local_stats_t stats;
};

static int64_t s_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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
    if (!*path || strlen(path) >= sizeof addr.sun_path) {
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

int kmx_local_fds(kmx_local_t *self, struct pollfd *fds) {
    assert(self && fds);
    int n = 0;
    fds[n] = (struct pollfd){self->listen_fd, POLLIN, 0};
    self->slot_of[n++] = -1;
    for (int i = 0; i < KMX_LOCAL_MAX_CONNS; i++) {
        s_conn_t *c = &self->conns[i];
        if (c->fd < 0)
            continue;
        fds[n] = (struct pollfd){c->fd, c->out ? POLLOUT : POLLIN, 0};
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
    c->out[0] = (uint8_t)(len >> 24);
    c->out[1] = (uint8_t)(len >> 16);
    c->out[2] = (uint8_t)(len >> 8);
    c->out[3] = (uint8_t)len;
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
    c->since = 0;
    return c->closing ? -1 : 0;
}

// Answers the whole request in c->in. Returns 0, or -1 to close.
static int s_answer(kmx_local_t *self, s_conn_t *c) {
    uint8_t *out = NULL;
    size_t len = 0;
    int rc = self->handle(self->arg, c->in, c->want, &out, &len);
    free(c->in);
    c->in = NULL;
    c->have = 0;
    c->since = 0;
    if (rc != 0) {
        free(out);
        return -1;
    }
    self->stats.requests++;
    if (s_queue(c, out, len) != 0)
        return -1;
    return s_flush(c);
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
    if (s_queue(c, out, len) != 0)
        return -1;
    return s_flush(c);
}

// Reads what has arrived of the current request; answers it when whole. Returns 0, or -1
// to close (the peer went away, an error, or an answer that cannot be built).
static int s_read(kmx_local_t *self, s_conn_t *c) {
    for (;;) {
        uint8_t *to = c->have < S_HEADER ? c->head + c->have : c->in + (c->have - S_HEADER);
        size_t room = c->have < S_HEADER ? S_HEADER - c->have : c->want - (c->have - S_HEADER);
        ssize_t n = room ? recv(c->fd, to, room, 0) : 0;
        if (room && n == 0)
            return -1; // closed by the peer
        if (n < 0)
            return errno == EAGAIN || errno == EINTR ? 0 : -1;
        if (c->have == 0)
            c->since = s_now_ms();
        c->have += (size_t)n;
        if (c->have == S_HEADER && !c->in) {
            c->want = (uint32_t)c->head[0] << 24 | (uint32_t)c->head[1] << 16 |
                      (uint32_t)c->head[2] << 8 | c->head[3];
            if (c->want > KMX_LOCAL_REQUEST_MAX)
                return s_too_large(c, c->want);
            c->in = malloc(c->want ? c->want : 1);
            if (!c->in)
                return -1;
        }
        if (c->in && c->have == S_HEADER + c->want)
            return s_answer(self, c); // one request per turn: the others' turns come first
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
        if (!slot) {
            // Full: the client sees the connection close and says so (libkmx).
            self->stats.refused++;
            kmx_log_warn("local socket full: refused a connection path=%s open=%d", self->path,
                         KMX_LOCAL_MAX_CONNS);
            close(fd);
            continue;
        }
        memset(slot, 0, sizeof *slot);
        slot->fd = fd;
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
        int rc = 0;
        if (fds[i].revents & (POLLERR | POLLNVAL))
            rc = -1;
        else if (c->out && (fds[i].revents & (POLLOUT | POLLHUP)))
            rc = s_flush(c);
        else if (!c->out && (fds[i].revents & (POLLIN | POLLHUP)))
            rc = s_read(self, c);
        else if (c->since && now - c->since >= KMX_LOCAL_IDLE_MS) {
            kmx_log_warn("local socket: closed a connection stuck inside a message for %d ms",
                         KMX_LOCAL_IDLE_MS);
            rc = -1;
        }
        if (rc != 0)
            s_conn_close(self, c);
    }
    return (int)(self->stats.requests - before);
}

kmx_local_stats_t kmx_local_stats(const kmx_local_t *self) {
    assert(self);
    return self->stats;
}

// ---- client side ------------------------------------------------------------------------

struct kmx_local_client {
    struct sockaddr_un addr; // the socket file
    int fd;                  // connection of the current try, -1 until made
    int timeout_ms;          // per try
    int tries;               // per call
};

kmx_local_client_t *kmx_local_client_new(const char *path, int timeout_ms, int tries) {
    if (!path || !*path || strlen(path) >= sizeof((struct sockaddr_un *)0)->sun_path)
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

// Waits until fd is ready for events or deadline passes. Returns 0, KMX_ERR_TIMEOUT or
// KMX_ERR_IO.
static int s_wait(int fd, short events, int64_t deadline) {
    for (;;) {
        int64_t left = deadline - s_now_ms();
        if (left <= 0)
            return KMX_ERR_TIMEOUT;
        struct pollfd item = {fd, events, 0};
        int rc = poll(&item, 1, (int)left);
        if (rc > 0)
            return 0;
        if (rc < 0 && errno != EINTR)
            return KMX_ERR_IO;
    }
}

// Moves len bytes of buf over fd (send when out, else receive) by deadline. Returns 0,
// KMX_ERR_TIMEOUT, KMX_ERR_UNAVAILABLE (the other side closed) or KMX_ERR_IO.
static int s_move(int fd, uint8_t *buf, size_t len, int out, int64_t deadline) {
    size_t done = 0;
    while (done < len) {
        ssize_t n = out ? send(fd, buf + done, len - done, MSG_NOSIGNAL)
                        : recv(fd, buf + done, len - done, 0);
        if (n > 0) {
            done += (size_t)n;
            continue;
        }
        if (n == 0 || (n < 0 && (errno == EPIPE || errno == ECONNRESET)))
            return KMX_ERR_UNAVAILABLE;
        if (errno != EAGAIN && errno != EINTR)
            return KMX_ERR_IO;
        int rc = s_wait(fd, out ? POLLOUT : POLLIN, deadline);
        if (rc != 0)
            return rc;
    }
    return 0;
}

// One try on the current connection (made when there is none).
static int s_client_try(kmx_local_client_t *self, const void *body, size_t size, uint8_t **reply,
                        size_t *len) {
    int64_t deadline = s_now_ms() + self->timeout_ms;
    if (self->fd < 0) {
        self->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (self->fd < 0)
            return KMX_ERR_IO;
        if (connect(self->fd, (struct sockaddr *)&self->addr, sizeof self->addr) != 0) {
            int err = errno;
            s_client_close(self);
            // EAGAIN: the listener's backlog is full; the others: nobody listens there.
            return err == EAGAIN ? KMX_ERR_TIMEOUT : KMX_ERR_UNAVAILABLE;
        }
    }
    uint8_t head[S_HEADER] = {(uint8_t)(size >> 24), (uint8_t)(size >> 16), (uint8_t)(size >> 8),
                              (uint8_t)size};
    int rc = s_move(self->fd, head, S_HEADER, 1, deadline);
    if (rc == 0 && size)
        rc = s_move(self->fd, (uint8_t *)body, size, 1, deadline);
    if (rc == 0)
        rc = s_move(self->fd, head, S_HEADER, 0, deadline);
    if (rc != 0)
        return rc;
    uint32_t want =
        (uint32_t)head[0] << 24 | (uint32_t)head[1] << 16 | (uint32_t)head[2] << 8 | head[3];
    if (want > KMX_MSG_MAX)
        return KMX_ERR_DECODE;
    *reply = malloc(want ? want : 1);
    if (!*reply)
        return KMX_ERR_NOMEM;
    rc = s_move(self->fd, *reply, want, 0, deadline);
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
    int rc = KMX_ERR_TIMEOUT;
    int fresh_again = 1; // a kept connection the worker closed (it restarted) is made anew once
    for (int attempt = 1; attempt <= self->tries; attempt++) {
        int kept = self->fd >= 0;
        rc = s_client_try(self, body, size, reply, len);
        if (rc == 0)
            return 0;
        if (kept && rc == KMX_ERR_UNAVAILABLE && fresh_again) {
            fresh_again = 0;
            attempt--;
        }
        // A fresh connection for the next try: this one may hold half a message.
        s_client_close(self);
        if (rc != KMX_ERR_TIMEOUT && rc != KMX_ERR_UNAVAILABLE)
            return rc;
        kmx_log_debug("local: no answer (%s), try %d of %d path=%s", kmx_err_name(rc), attempt,
                      self->tries, self->addr.sun_path);
    }
    return rc;
}
