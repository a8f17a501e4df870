/*  kmx_direct - storage's LMDB environment read by a query worker on the same host and
    volume. The store is opened with MDB_RDONLY: LMDB's lock file (lock.mdb beside
    data.mdb) is shared with kmx-storage, so this process takes reader slots in the same
    table, sees each commit as soon as storage acknowledged it, and adopts a map storage
    grew (MDB_MAP_RESIZED, kmx_store_begin_read). The answers are storage's own
    (kmx_storage_read_answer), so both paths answer alike. A data file replaced under us
    (a restore) is noticed by its inode and reopened.  */
#include "kmx_direct.h"
#include "kmx_storage_int.h"

#include "kmx_err.h"
#include "kmx_log.h"
#include "kmx_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define S_PATH_MAX 4096 // longest data directory accepted

struct kmx_direct {
    char dir[S_PATH_MAX];   // storage's data directory
    char data[S_PATH_MAX];  // dir/data.mdb, whose inode tells a replaced store
    kmx_storage_t *reads;   // the read side's state around the open store, or NULL
    dev_t dev;              // the open data file's device
    ino_t ino;              // and inode
    uint64_t next_check_ms; // when the data file is looked at again
    int last_err;           // the last open failure logged (logged again only when it changes)
};

kmx_direct_t *kmx_direct_new(const char *dir) {
    if (!dir || !dir[0] || strlen(dir) + sizeof "/data.mdb" > S_PATH_MAX)
        return NULL;
    kmx_direct_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    snprintf(self->dir, sizeof self->dir, "%s", dir);
    snprintf(self->data, sizeof self->data, "%s/data.mdb", dir);
    return self;
}

static void s_close(kmx_direct_t *self) {
    if (!self->reads)
        return;
    kmx_store_close(&self->reads->store);
    free(self->reads);
    self->reads = NULL;
}

void kmx_direct_destroy(kmx_direct_t **self_p) {
    if (!self_p || !*self_p)
        return;
    s_close(*self_p);
    free(*self_p);
    *self_p = NULL;
}

int kmx_direct_is_open(const kmx_direct_t *self) {
    return self && self->reads;
}

int kmx_direct_handles(int body_case) {
    // Queries, aggregates and catalogs check alternative measurements against an index
    // that storage's writer keeps in memory beside each commit (kmx_store_alt.c); another
    // process would have to replay the event log to follow it, seconds of work during an
    // import, so those go to storage.
    return body_case == KMX__V1__REQUEST__BODY_GET || body_case == KMX__V1__REQUEST__BODY_SCAN ||
           body_case == KMX__V1__REQUEST__BODY_REPLAY ||
           body_case == KMX__V1__REQUEST__BODY_HISTORY;
}

// Opens the store read-only. Returns 0 or the store's error (logged once per cause).
static int s_open(kmx_direct_t *self) {
    struct stat st;
    int err = stat(self->data, &st) == 0 ? 0 : KMX_ERR_NOT_FOUND;
    kmx_storage_t *reads = err == 0 ? calloc(1, sizeof *reads) : NULL;
    if (err == 0 && !reads)
        err = KMX_ERR_NOMEM;
    kmx_store_config_t cfg = {0};
    cfg.readonly = 1;
    // The smallest map: LMDB maps what is committed, and the first read past it
    // (MDB_MAP_RESIZED) adopts storage's own map size, as every growth after.
    cfg.map_size = 1;
    if (err == 0)
        err = kmx_store_open(self->dir, &cfg, &reads->store);
    if (err != 0) {
        if (err != self->last_err)
            kmx_log_warn("direct reads unavailable, reads go to storage's socket dir=%s "
                         "error=%s",
                         self->dir, kmx_err_name(err));
        self->last_err = err;
        free(reads);
        return err;
    }
    self->reads = reads;
    self->dev = st.st_dev;
    self->ino = st.st_ino;
    self->last_err = 0;
    kmx_log_info("direct reads from dir=%s", self->dir);
    return 0;
}

// Makes sure the environment open is the one in dir now, at most every
// KMX_DIRECT_RETRY_MS: opens it when closed, reopens a replaced data file.
static void s_refresh(kmx_direct_t *self) {
    uint64_t now = kmx_storage_clock_ms();
    if (now < self->next_check_ms)
        return;
    self->next_check_ms = now + KMX_DIRECT_RETRY_MS;
    struct stat st;
    if (self->reads &&
        (stat(self->data, &st) != 0 || st.st_dev != self->dev || st.st_ino != self->ino)) {
        kmx_log_info("storage's data file changed; reopening dir=%s", self->dir);
        s_close(self);
    }
    if (!self->reads)
        s_open(self);
}

int kmx_direct_answer(kmx_direct_t *self, const Kmx__V1__Request *req, uint8_t **out, size_t *len) {
    if (!self || !req || !out || !len)
        return KMX_ERR_INVAL;
    *out = NULL;
    *len = 0;
    if (!kmx_direct_handles((int)req->body_case))
        return KMX_ERR_UNSUPPORTED;
    s_refresh(self);
    if (!self->reads)
        return KMX_ERR_UNAVAILABLE;
    kmx_storage_req_t m;
    memset(&m, 0, sizeof m);
    m.has_corr = 1;
    m.req = (Kmx__V1__Request *)req; // borrowed: never cleared here
    int err = kmx_storage_read_answer(self->reads, &m, out, len);
    if (err != 0) {
        free(*out);
        *out = NULL;
    }
    return err;
}
