/*  kmx_handler - replies and dispatch shared by the worker services.  */
#include "kmx_handler.h"
#include "kmx_err.h"
#include "kmx_log.h"
#include "kmx_msg.h"
#include "kmx_proc.h"

#define S_PROC_COUNTERS 3 // rss_bytes, open_fds, uptime_s follow the service's counters

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t s_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const kmx_handler_t *kmx_handler_find(const kmx_handler_t *table, size_t n,
                                      const Kmx__V1__Request *req) {
    for (size_t i = 0; i < n; i++) {
        // Every oneof member is a pointer in one union, so ping stands for whichever is set.
        if (table[i].body == req->body_case && req->ping)
            return &table[i];
    }
    return NULL;
}

int kmx_handler_pack_unsupported(const char *service, const Kmx__V1__Request *req, uint8_t **out,
                                 size_t *len) {
    char msg[96];
    snprintf(msg, sizeof msg, "%s does not handle '%s' requests", service, kmx_msg_body_name(req));
    return kmx_msg_pack_error(req->request_id, KMX_ERR_UNSUPPORTED, msg, out, len);
}

int kmx_handler_pack_link_error(const Kmx__V1__Request *req, int rc, uint8_t **out, size_t *len) {
    kmx_log_warn("storage call failed error=%s", kmx_err_name(rc));
    const char *id = req ? req->request_id : NULL;
    if (rc == KMX_ERR_DECODE)
        return kmx_msg_pack_error(id, KMX_ERR_INTERNAL, "storage sent a reply that does not decode",
                                  out, len);
    if (rc == KMX_ERR_NOMEM)
        return kmx_msg_pack_error(id, KMX_ERR_NOMEM, "out of memory", out, len);
    if (rc == KMX_ERR_UNAVAILABLE)
        return kmx_msg_pack_error(id, KMX_ERR_UNAVAILABLE,
                                  "storage link is down (kmx-storage stopped or restarting); retry",
                                  out, len);
    return kmx_msg_pack_error(id, KMX_ERR_UNAVAILABLE, "storage did not answer; retry", out, len);
}

int kmx_handler_pack_pong(const char *service, const char *worker, const Kmx__V1__Request *req,
                          uint8_t **out, size_t *len) {
    Kmx__V1__PongResult pong = KMX__V1__PONG_RESULT__INIT;
    pong.service = (char *)service;
    pong.worker = (char *)worker;
    pong.version = KMX_VERSION;
    Kmx__V1__Response resp = KMX__V1__RESPONSE__INIT;
    resp.request_id = req->request_id;
    resp.result_case = KMX__V1__RESPONSE__RESULT_PONG;
    resp.pong = &pong;
    return kmx_msg_pack_response(&resp, out, len);
}

int kmx_handler_pack_stats(const char *service, const char *worker,
                           const kmx_handler_counter_t *counters, size_t n,
                           const Kmx__V1__Request *req, uint8_t **out, size_t *len) {
    return kmx_handler_pack_stats_relay(service, worker, counters, n, NULL, req, out, len);
}

int kmx_handler_pack_stats_relay(const char *service, const char *worker,
                                 const kmx_handler_counter_t *counters, size_t n,
                                 Kmx__V1__StatsResult *relayed, const Kmx__V1__Request *req,
                                 uint8_t **out, size_t *len) {
    if (n > KMX_HANDLER_COUNTERS_MAX)
        return KMX_ERR_INVAL;
    kmx_proc_t proc;
    kmx_proc_sample(&proc);
    const kmx_handler_counter_t process[S_PROC_COUNTERS] = {
        {"rss_bytes", proc.rss_bytes},
        {"open_fds", proc.open_fds},
        {"uptime_s", proc.uptime_s},
    };
    Kmx__V1__Counter items[KMX_HANDLER_COUNTERS_MAX + S_PROC_COUNTERS];
    Kmx__V1__Counter *ptrs[KMX_HANDLER_COUNTERS_MAX + S_PROC_COUNTERS];
    for (size_t i = 0; i < n + S_PROC_COUNTERS; i++) {
        const kmx_handler_counter_t *c = i < n ? &counters[i] : &process[i - n];
        kmx__v1__counter__init(&items[i]);
        items[i].name = (char *)c->name;
        items[i].has_value = 1;
        items[i].value = c->value;
        ptrs[i] = &items[i];
    }
    n += S_PROC_COUNTERS;
    Kmx__V1__StatsResult stats = KMX__V1__STATS_RESULT__INIT;
    stats.service = (char *)service;
    stats.worker = (char *)worker;
    stats.n_counters = n;
    stats.counters = ptrs;
    stats.storage = relayed;
    Kmx__V1__Response resp = KMX__V1__RESPONSE__INIT;
    resp.request_id = req->request_id;
    resp.result_case = KMX__V1__RESPONSE__RESULT_STATS;
    resp.stats = &stats;
    return kmx_msg_pack_response(&resp, out, len);
}

// ---- the handler object -------------------------------------------------------------

kmx_handler_base_t *kmx_handler_new(const kmx_handler_class_t *cls, kmx_link_t *link,
                                    const char *worker) {
    kmx_handler_base_t *self = cls->size >= sizeof *self ? calloc(1, cls->size) : NULL;
    if (!self)
        return NULL;
    self->cls = cls;
    self->link = link;
    snprintf(self->worker, sizeof self->worker, "%s", worker ? worker : cls->service);
    self->timeout_ms = cls->timeout_ms;
    return self;
}

int kmx_handler_handle(kmx_handler_base_t *self, const void *body, size_t size, uint8_t **out,
                       size_t *len) {
    if (!self || !out || !len)
        return KMX_ERR_INVAL;
    self->requests++;
    Kmx__V1__Request *req = kmx_msg_request_unpack(body, size);
    if (!req)
        return kmx_handler_error(self, NULL, KMX_ERR_DECODE, "request body does not decode", out,
                                 len);
    self->asked_ms = req->has_timeout_ms ? req->timeout_ms : 0;
    uint32_t reserve = self->asked_ms / 10;
    if (reserve > KMX_HANDLER_RESERVE_MS)
        reserve = KMX_HANDLER_RESERVE_MS;
    self->deadline = s_now_ms() + self->asked_ms - reserve;
    const kmx_handler_t *h = kmx_handler_find(self->cls->table, self->cls->n_table, req);
    int rc;
    if (h)
        rc = h->fn(self, req, out, len);
    else {
        self->errors++;
        rc = kmx_handler_pack_unsupported(self->cls->service, req, out, len);
    }
    kmx__v1__request__free_unpacked(req, NULL);
    return rc;
}

void kmx_handler_destroy(kmx_handler_base_t **self_p) {
    if (!self_p || !*self_p)
        return;
    free(*self_p); // the base is the object's first member
    *self_p = NULL;
}

void kmx_handler_set_timeout(kmx_handler_base_t *self, int timeout_ms) {
    if (self && timeout_ms > 0)
        self->timeout_ms = timeout_ms;
}

int kmx_handler_left_ms(const kmx_handler_base_t *self) {
    if (!self->asked_ms)
        return self->timeout_ms;
    int64_t left = self->deadline - s_now_ms();
    return left <= 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;
}

int kmx_handler_call(kmx_handler_base_t *self, const Kmx__V1__Request *fwd,
                     Kmx__V1__Response **resp) {
    *resp = NULL;
    if (!self->link)
        return KMX_ERR_UNAVAILABLE;
    int wait = kmx_handler_left_ms(self);
    return wait > 0 ? kmx_link_call(self->link, fwd, wait, resp) : KMX_ERR_TIMEOUT;
}

int kmx_handler_error(kmx_handler_base_t *self, const Kmx__V1__Request *req, int err,
                      const char *msg, uint8_t **out, size_t *len) {
    self->errors++;
    return kmx_msg_pack_error(req ? req->request_id : NULL, err, msg, out, len);
}

int kmx_handler_link_error(kmx_handler_base_t *self, const Kmx__V1__Request *req, int rc,
                           uint8_t **out, size_t *len) {
    self->errors++;
    if (rc == KMX_ERR_TIMEOUT && self->asked_ms && kmx_handler_left_ms(self) == 0) {
        char msg[200];
        snprintf(msg, sizeof msg,
                 "not answered within the request's timeout of %u ms (%s stopped waiting for "
                 "kmx-storage); ask again with a longer --timeout",
                 (unsigned)self->asked_ms, self->cls->service);
        kmx_log_info("request not answered in time timeout_ms=%u", (unsigned)self->asked_ms);
        return kmx_msg_pack_error(req ? req->request_id : NULL, KMX_ERR_DEADLINE, msg, out, len);
    }
    return kmx_handler_pack_link_error(req, rc, out, len);
}

int kmx_handler_on_ping(void *self, const Kmx__V1__Request *req, uint8_t **out, size_t *len) {
    const kmx_handler_base_t *base = self;
    return kmx_handler_pack_pong(base->cls->service, base->worker, req, out, len);
}
