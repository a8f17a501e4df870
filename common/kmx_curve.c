/*  kmx_curve - CurveZMQ for kmx sockets and the ZAP handler behind the servers, see
    kmx_curve.h. The handler speaks ZAP 1.0 (rfc.zeromq.org/spec/27) on
    inproc://zeromq.zap.01 in the server's context.  */
#include "kmx_curve.h"

#include "kmx_err.h"
#include "kmx_log.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_ALLOW_MAX 4096  // keys an allow-list may hold
#define S_LINE_MAX 512    // bytes in one allow-list line
#define S_ZAP_FRAMES 8    // frames a ZAP request may have
#define S_ZAP_POLL_MS 100 // how often the handler looks at its stop flag

int kmx_curve_enabled(void) {
    const char *s = getenv("KMX_CURVE_SECRET");
    return s && s[0];
}

static int s_hex(int c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int kmx_curve_key_decode(const char *text, unsigned char out[32]) {
    if (!text)
        return KMX_ERR_INVAL;
    size_t len = strlen(text);
    if (len == 64) {
        for (size_t i = 0; i < 32; i++) {
            int hi = s_hex((unsigned char)text[2 * i]), lo = s_hex((unsigned char)text[2 * i + 1]);
            if (hi < 0 || lo < 0)
                return KMX_ERR_INVAL;
            out[i] = (unsigned char)(hi << 4 | lo);
        }
        return 0;
    }
    if (len == 40 && zmq_z85_decode(out, text) != NULL)
        return 0;
    return KMX_ERR_INVAL;
}

static void s_to_hex(const unsigned char *key, char *out) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < 32; i++) {
        out[2 * i] = digits[key[i] >> 4];
        out[2 * i + 1] = digits[key[i] & 15];
    }
    out[64] = '\0';
}

int kmx_curve_keygen(char public_hex[65], char secret_hex[65]) {
    char pub_z85[41], sec_z85[41];
    unsigned char pub[32], sec[32];
    if (!zmq_has("curve") || zmq_curve_keypair(pub_z85, sec_z85) != 0 ||
        !zmq_z85_decode(pub, pub_z85) || !zmq_z85_decode(sec, sec_z85))
        return KMX_ERR_UNSUPPORTED;
    s_to_hex(pub, public_hex);
    s_to_hex(sec, secret_hex);
    return 0;
}

// Reads the key in variable name into out; logs and returns KMX_ERR_INVAL when it is
// missing or malformed.
static int s_env_key(const char *name, unsigned char out[32]) {
    const char *v = getenv(name);
    if (!v || !v[0]) {
        kmx_log_error("curve: KMX_CURVE_SECRET is set but %s is not", name);
        return KMX_ERR_INVAL;
    }
    if (kmx_curve_key_decode(v, out) != 0) {
        kmx_log_error("curve: %s is not a key (64 hex digits or 40 Z85 characters)", name);
        return KMX_ERR_INVAL;
    }
    return 0;
}

// Sets this process's key pair on sock.
static int s_own_keys(void *sock) {
    unsigned char secret[32], public[32];
    char secret_z85[41], public_z85[41];
    if (s_env_key("KMX_CURVE_SECRET", secret) != 0)
        return KMX_ERR_INVAL;
    if (!zmq_z85_encode(secret_z85, secret, 32) || zmq_curve_public(public_z85, secret_z85) != 0 ||
        !zmq_z85_decode(public, public_z85)) {
        kmx_log_error("curve: cannot derive the public key (libzmq without CURVE?)");
        return KMX_ERR_INVAL;
    }
    if (zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, secret, 32) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, public, 32) != 0) {
        kmx_log_error("curve: cannot set keys: %s", zmq_strerror(errno));
        return KMX_ERR_INVAL;
    }
    return 0;
}

int kmx_curve_client(void *sock, kmx_curve_peer_t peer) {
    if (!kmx_curve_enabled())
        return 0;
    unsigned char server[32];
    const char *name = peer == KMX_CURVE_TO_STORAGE ? "KMX_CURVE_STORAGE" : "KMX_CURVE_BROKER";
    if (s_own_keys(sock) != 0 || s_env_key(name, server) != 0)
        return KMX_ERR_INVAL;
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, server, 32) != 0) {
        kmx_log_error("curve: cannot set the server key: %s", zmq_strerror(errno));
        return KMX_ERR_INVAL;
    }
    return 0;
}

int kmx_curve_server(void *sock, const char *domain) {
    if (!kmx_curve_enabled())
        return 0;
    int one = 1;
    if (s_own_keys(sock) != 0)
        return KMX_ERR_INVAL;
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof one) != 0 ||
        zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, domain, strlen(domain)) != 0) {
        kmx_log_error("curve: cannot make a server socket: %s", zmq_strerror(errno));
        return KMX_ERR_INVAL;
    }
    return 0;
}

const char *kmx_curve_role(zmq_msg_t *msg) {
    return zmq_msg_gets(msg, "User-Id");
}

// ---- the allow-list and the ZAP handler -----------------------------------------------

typedef struct {
    unsigned char key[32]; // a client's public key
    char role[8];          // reader, writer or service
} s_allowed_t;

struct kmx_zap {
    void *rep;            // bound to inproc://zeromq.zap.01
    pthread_t thread;     // runs s_serve
    atomic_int stop;      // set to end the thread
    s_allowed_t *allowed; // the allow-list
    size_t n_allowed;     // entries in allowed
};

static int s_role_known(const char *role) {
    return strcmp(role, KMX_CURVE_READER) == 0 || strcmp(role, KMX_CURVE_WRITER) == 0 ||
           strcmp(role, KMX_CURVE_SERVICE) == 0;
}

// Parses one allow-list line into self. Returns 0 (also for blank and comment lines) or
// KMX_ERR_INVAL with why written.
static int s_parse_line(kmx_zap_t *self, char *line, char *why, size_t why_size) {
    char *hash = strchr(line, '#');
    if (hash)
        *hash = '\0';
    char *save = NULL;
    char *key = strtok_r(line, " \t\r\n", &save);
    if (!key)
        return 0;
    char *role = strtok_r(NULL, " \t\r\n", &save);
    if (!role || !s_role_known(role)) {
        snprintf(why, why_size, "want \"<public key> reader|writer|service [name]\"");
        return KMX_ERR_INVAL;
    }
    if (self->n_allowed >= S_ALLOW_MAX) {
        snprintf(why, why_size, "more than %d keys", S_ALLOW_MAX);
        return KMX_ERR_INVAL;
    }
    s_allowed_t *a = &self->allowed[self->n_allowed];
    if (kmx_curve_key_decode(key, a->key) != 0) {
        snprintf(why, why_size, "'%.70s' is not a key (64 hex digits or 40 Z85 characters)", key);
        return KMX_ERR_INVAL;
    }
    snprintf(a->role, sizeof a->role, "%s", role);
    self->n_allowed++;
    return 0;
}

static int s_load(kmx_zap_t *self, const char *path) {
    FILE *f = path && path[0] ? fopen(path, "r") : NULL;
    if (!f) {
        kmx_log_error("curve: KMX_CURVE_SECRET is set but the allow-list KMX_CURVE_ALLOW=%s "
                      "cannot be read%s%s",
                      path ? path : "", path && path[0] ? ": " : " (not set)",
                      path && path[0] ? strerror(errno) : "");
        return KMX_ERR_INVAL;
    }
    self->allowed = calloc(S_ALLOW_MAX, sizeof *self->allowed);
    if (!self->allowed) {
        fclose(f);
        return KMX_ERR_NOMEM;
    }
    char line[S_LINE_MAX];
    char why[160];
    int err = 0;
    for (unsigned n = 1; err == 0 && fgets(line, sizeof line, f); n++) {
        if ((err = s_parse_line(self, line, why, sizeof why)) != 0)
            kmx_log_error("curve: allow-list %s line %u: %s", path, n, why);
    }
    fclose(f);
    if (err == 0)
        kmx_log_info("curve: on, allow-list %s holds %zu keys", path, self->n_allowed);
    return err;
}

// The role of key in the allow-list, or NULL.
static const char *s_lookup(const kmx_zap_t *self, const unsigned char *key) {
    for (size_t i = 0; i < self->n_allowed; i++) {
        if (memcmp(self->allowed[i].key, key, 32) == 0)
            return self->allowed[i].role;
    }
    return NULL;
}

// Whether domain admits role: workers and storage's publisher need the service role.
static int s_admits(const char *domain, const char *role) {
    if (strcmp(domain, KMX_CURVE_DOMAIN_PUBLISHERS) == 0 ||
        strcmp(domain, KMX_CURVE_DOMAIN_STORAGE) == 0)
        return strcmp(role, KMX_CURVE_SERVICE) == 0;
    return strcmp(domain, KMX_CURVE_DOMAIN_CLIENTS) == 0 ||
           strcmp(domain, KMX_CURVE_DOMAIN_EVENTS) == 0;
}

static void s_send(void *sock, const void *data, size_t size, int more) {
    zmq_send(sock, data, size, more ? ZMQ_SNDMORE : 0);
}

// Answers one ZAP request (frames already read).
static void s_answer(kmx_zap_t *self, zmq_msg_t *f, int n) {
    const char *status = "400", *text = "key not allowed", *user = "";
    char domain[64] = "";
    int ok = n == 7 && zmq_msg_size(&f[0]) == 3 && memcmp(zmq_msg_data(&f[0]), "1.0", 3) == 0 &&
             zmq_msg_size(&f[5]) == 5 && memcmp(zmq_msg_data(&f[5]), "CURVE", 5) == 0 &&
             zmq_msg_size(&f[6]) == 32 && zmq_msg_size(&f[2]) < sizeof domain;
    if (ok) {
        memcpy(domain, zmq_msg_data(&f[2]), zmq_msg_size(&f[2]));
        const char *role = s_lookup(self, zmq_msg_data(&f[6]));
        if (role && s_admits(domain, role)) {
            status = "200";
            text = "OK";
            user = role;
        } else if (role) {
            text = "role not admitted here";
        }
    } else {
        text = "not a CURVE request";
    }
    if (strcmp(status, "200") != 0) {
        char who[65] = "?";
        if (ok)
            s_to_hex(zmq_msg_data(&f[6]), who);
        kmx_log_warn("curve: connection refused domain=%s key=%s reason=%s", domain, who, text);
    }
    s_send(self->rep, "1.0", 3, 1);
    s_send(self->rep, n > 1 ? zmq_msg_data(&f[1]) : "", n > 1 ? zmq_msg_size(&f[1]) : 0, 1);
    s_send(self->rep, status, 3, 1);
    s_send(self->rep, text, strlen(text), 1);
    s_send(self->rep, user, strlen(user), 1);
    s_send(self->rep, "", 0, 0);
}

static void *s_serve(void *arg) {
    kmx_zap_t *self = arg;
    while (!atomic_load(&self->stop)) {
        zmq_pollitem_t item = {self->rep, 0, ZMQ_POLLIN, 0};
        int rc = zmq_poll(&item, 1, S_ZAP_POLL_MS);
        if (rc < 0 && zmq_errno() == ETERM)
            break;
        if (rc <= 0)
            continue;
        zmq_msg_t frames[S_ZAP_FRAMES];
        int n = 0, more = 1, failed = 0;
        while (more) {
            zmq_msg_t part;
            zmq_msg_init(&part);
            if (zmq_msg_recv(&part, self->rep, 0) < 0) {
                zmq_msg_close(&part);
                failed = 1;
                break;
            }
            more = zmq_msg_more(&part);
            if (n < S_ZAP_FRAMES)
                frames[n++] = part;
            else
                zmq_msg_close(&part);
        }
        if (!failed)
            s_answer(self, frames, n);
        for (int i = 0; i < n; i++)
            zmq_msg_close(&frames[i]);
    }
    zmq_close(self->rep);
    return NULL;
}

int kmx_zap_start(void *ctx, kmx_zap_t **out) {
    *out = NULL;
    if (!kmx_curve_enabled())
        return 0;
    if (!zmq_has("curve")) {
        kmx_log_error("curve: KMX_CURVE_SECRET is set but libzmq was built without CURVE");
        return KMX_ERR_INVAL;
    }
    kmx_zap_t *self = calloc(1, sizeof *self);
    if (!self)
        return KMX_ERR_NOMEM;
    atomic_init(&self->stop, 0);
    int err = s_load(self, getenv("KMX_CURVE_ALLOW"));
    if (err == 0) {
        int linger = 0;
        self->rep = zmq_socket(ctx, ZMQ_REP);
        if (!self->rep || zmq_setsockopt(self->rep, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
            zmq_bind(self->rep, "inproc://zeromq.zap.01") != 0) {
            kmx_log_error("curve: cannot start the ZAP handler: %s", zmq_strerror(errno));
            err = KMX_ERR_INVAL;
        }
    }
    if (err == 0 && pthread_create(&self->thread, NULL, s_serve, self) != 0)
        err = KMX_ERR_NOMEM;
    if (err != 0) {
        if (self->rep)
            zmq_close(self->rep);
        free(self->allowed);
        free(self);
        return err;
    }
    *out = self;
    return 0;
}

void kmx_zap_stop(kmx_zap_t **self_p) {
    if (!self_p || !*self_p)
        return;
    kmx_zap_t *self = *self_p;
    atomic_store(&self->stop, 1);
    pthread_join(self->thread, NULL);
    free(self->allowed);
    free(self);
    *self_p = NULL;
}
