/*  kmx_store - the LMDB engine behind kmx-storage. One write transaction per batch keeps
    records, indexes, roll-ups, the event log and last_seq consistent: a sequence number
    exists on disk exactly when its change does. Reads use short read-only transactions.  */
#include "kmx_store.h"

#include "kmx_store_int.h"

#include "kmx_err.h"
#include "kmx_log.h"
#include "kmx_market.h"
#include "kmx_match.h"
#include "kmx_mem.h"
#include "kmx_period.h"
#include "kmx_schema.h"

#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define S_GROW_ATTEMPTS 32 // map doublings tried before a batch gives up

#define S_TRIM_MAX 10000 // old events dropped per batch at most (bounds the transaction)

// State of one write transaction in kmx_store_put_batch.
typedef struct {
    kmx_store_t *store;         // the store being written
    MDB_txn *txn;               // the open write transaction
    uint64_t seq;               // last sequence number assigned so far
    uint64_t now_ms;            // commit time stamped on records and events
    kmx_store_events_t *events; // where committed events go; may be NULL
    int mdb_rc;                 // the LMDB error that ended the transaction, or 0
} s_batch_t;

// ---- helpers -------------------------------------------------------------------

int kmx_store_mdb_err(int rc, const char *what) {
    kmx_log_error("lmdb %s failed: %s (rc=%d)", what, mdb_strerror(rc), rc);
    if (rc == MDB_PANIC)
        kmx_log_error("lmdb environment is unusable until the process restarts");
    switch (rc) {
    case MDB_NOTFOUND:
        return KMX_ERR_NOT_FOUND;
    case MDB_MAP_FULL:
    case ENOSPC: // the disk is full: refuse the write, nothing of it was kept
    case EFBIG:
#ifdef EDQUOT
    case EDQUOT:
#endif
        return KMX_ERR_FULL;
    case MDB_VERSION_MISMATCH:
        return KMX_ERR_VERSION;
    case ENOMEM:
        return KMX_ERR_NOMEM;
    case EIO:
    case EACCES:
        return KMX_ERR_IO;
    default:
        return KMX_ERR_STORAGE;
    }
}

static uint64_t s_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void s_put_be(uint8_t *p, uint64_t v, size_t bytes) {
    for (size_t i = bytes; i > 0; i--) {
        p[i - 1] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t s_get_be(const uint8_t *p, size_t bytes) {
    uint64_t v = 0;
    for (size_t i = 0; i < bytes; i++)
        v = (v << 8) | p[i];
    return v;
}

// ---- open and close --------------------------------------------------------------

static int s_mkdir_one(const char *path) {
    struct stat st;
    if (mkdir(path, 0700) == 0)
        return 0;
    if (errno == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    return -1;
}

// Creates dir and any missing parents, like mkdir -p.
static int s_make_dir(const char *dir) {
    char path[4096];
    int n = snprintf(path, sizeof path, "%s", dir);
    if (n <= 0 || (size_t)n >= sizeof path) {
        kmx_log_error("data directory path is empty or too long");
        return KMX_ERR_INVAL;
    }
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int rc = s_mkdir_one(path);
        *p = '/';
        if (rc != 0)
            break; // the full path below reports the failure
    }
    if (s_mkdir_one(path) == 0)
        return 0;
    kmx_log_error("cannot create data directory dir=%s: %s", dir, strerror(errno));
    return KMX_ERR_IO;
}

// Refuses a store of another schema version with a message saying what to do.
static int s_refuse_version(uint64_t version, const char *dir) {
    if (version == KMX_STORE_UPGRADES_FROM)
        kmx_log_error("store schema version %llu is older than version %u this kmx-storage "
                      "reads dir=%s; it was not opened or changed. Stop every kmx-storage on "
                      "it, then run: kmx-storage upgrade --data-dir %s",
                      (unsigned long long)version, KMX_SCHEMA_VERSION, dir, dir);
    else if (version < KMX_SCHEMA_VERSION)
        kmx_log_error("store schema version %llu is older than version %u this kmx-storage "
                      "reads dir=%s; it was not opened or changed. Run the kmx-storage "
                      "release that wrote it",
                      (unsigned long long)version, KMX_SCHEMA_VERSION, dir);
    else
        kmx_log_error("store schema version %llu is newer than version %u this kmx-storage "
                      "reads dir=%s; it was not opened or changed. Upgrade kmx-storage",
                      (unsigned long long)version, KMX_SCHEMA_VERSION, dir);
    return KMX_ERR_VERSION;
}

// Records the schema version in a new store, or checks an existing store's version.
static int s_check_schema(kmx_store_t *self, MDB_txn *txn, const char *dir) {
    MDB_val key = {strlen(KMX_META_SCHEMA_VERSION), KMX_META_SCHEMA_VERSION};
    MDB_val val;
    int rc = mdb_get(txn, self->meta, &key, &val);
    if (rc == MDB_NOTFOUND) {
        MDB_dbi records;
        MDB_stat st = {0};
        // A store without a version must be empty: no records database, or an empty one.
        rc = mdb_dbi_open(txn, KMX_DB_RECORDS, 0, &records);
        if (rc == 0 && (rc = mdb_stat(txn, records, &st)) != 0)
            return kmx_store_mdb_err(rc, "stat");
        if (rc != 0 && rc != MDB_NOTFOUND)
            return kmx_store_mdb_err(rc, "open records");
        if (st.ms_entries != 0) {
            kmx_log_error("store has records but no schema version dir=%s", dir);
            return KMX_ERR_VERSION;
        }
        if (self->readonly) {
            kmx_log_error("no kmx store in dir=%s", dir);
            return KMX_ERR_NOT_FOUND;
        }
        uint8_t buf[4];
        s_put_be(buf, KMX_SCHEMA_VERSION, 4);
        MDB_val put = {sizeof buf, buf};
        rc = mdb_put(txn, self->meta, &key, &put, 0);
        return rc == 0 ? 0 : kmx_store_mdb_err(rc, "put schema version");
    }
    if (rc != 0)
        return kmx_store_mdb_err(rc, "get schema version");
    uint64_t version = val.mv_size == 4 ? s_get_be(val.mv_data, 4) : 0;
    if (version == KMX_STORE_UPGRADES_FROM && self->upgrade && !self->readonly) {
        self->upgraded_from = (uint32_t)version;
        return 0; // s_upgrade, once the databases are open
    }
    return version == KMX_SCHEMA_VERSION ? 0 : s_refuse_version(version, dir);
}

#define S_UPGRADE_FLUSH 10000 // records summed in memory between roll-up flushes

// Schema 3 -> 4: month roll-ups moved to rollups_month. Both roll-up databases are
// emptied and rebuilt from the records inside the open write transaction, so the upgrade
// commits whole or not at all; records, indexes and events are untouched.
static int s_upgrade(kmx_store_t *self, MDB_txn *txn, const char *dir) {
    int rc = mdb_drop(txn, self->derived.rollups, 0);
    if (rc == 0)
        rc = mdb_drop(txn, self->derived.rollups_month, 0);
    MDB_cursor *cur = NULL;
    if (rc == 0)
        rc = mdb_cursor_open(txn, self->records, &cur);
    if (rc != 0)
        return kmx_store_mdb_err(rc, "upgrade");
    kmx_derived_pending_clear(self->pending);
    uint64_t n = 0;
    int err = 0;
    MDB_val key, val;
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0 && err == 0;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        Kmx__V1__StoredRecord *sr = kmx__v1__stored_record__unpack(NULL, val.mv_size, val.mv_data);
        if (!sr || !sr->record || kmx_derived_pending_add(self->pending, sr->record, 1) != 0)
            err = KMX_ERR_DECODE;
        if (sr)
            kmx__v1__stored_record__free_unpacked(sr, NULL);
        if (err == 0 && ++n % S_UPGRADE_FLUSH == 0 &&
            (rc = kmx_derived_pending_flush(txn, &self->derived, self->pending)) != 0)
            err = kmx_store_mdb_err(rc, "upgrade roll-ups");
    }
    mdb_cursor_close(cur);
    if (err == 0 && rc != MDB_NOTFOUND)
        err = kmx_store_mdb_err(rc, "upgrade records");
    if (err == 0 && (rc = kmx_derived_pending_flush(txn, &self->derived, self->pending)) != 0)
        err = kmx_store_mdb_err(rc, "upgrade roll-ups");
    kmx_derived_pending_clear(self->pending);
    if (err != 0) {
        kmx_log_error("upgrade failed dir=%s after %llu records; the store was not changed", dir,
                      (unsigned long long)n);
        return err;
    }
    uint8_t buf[4];
    s_put_be(buf, KMX_SCHEMA_VERSION, 4);
    MDB_val vkey = {strlen(KMX_META_SCHEMA_VERSION), KMX_META_SCHEMA_VERSION};
    MDB_val put = {sizeof buf, buf};
    if ((rc = mdb_put(txn, self->meta, &vkey, &put, 0)) != 0)
        return kmx_store_mdb_err(rc, "put schema version");
    kmx_log_info("store upgraded from schema %u to %u dir=%s records=%llu (roll-ups rebuilt)",
                 self->upgraded_from, KMX_SCHEMA_VERSION, dir, (unsigned long long)n);
    return 0;
}

int kmx_store_read_last_seq(const kmx_store_t *self, MDB_txn *txn, uint64_t *out) {
    MDB_val key = {strlen(KMX_META_LAST_SEQ), KMX_META_LAST_SEQ};
    MDB_val val;
    *out = 0;
    int rc = mdb_get(txn, self->meta, &key, &val);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return kmx_store_mdb_err(rc, "get last_seq");
    if (val.mv_size != 8) {
        kmx_log_error("meta last_seq has %zu bytes, expected 8", val.mv_size);
        return KMX_ERR_STORAGE;
    }
    *out = s_get_be(val.mv_data, 8);
    return 0;
}

// Opens the data databases after the schema check passed.
static int s_open_data_dbs(kmx_store_t *self, MDB_txn *txn) {
    unsigned int create = self->readonly ? 0 : MDB_CREATE;
    int rc;
    if ((rc = mdb_dbi_open(txn, KMX_DB_RECORDS, create, &self->records)) != 0 ||
        (rc = mdb_dbi_open(txn, KMX_DB_EVENTS, create, &self->events)) != 0 ||
        (rc = kmx_derived_open(txn, !self->readonly, &self->derived)) != 0)
        return kmx_store_mdb_err(rc, "open database");
    return 0;
}

// Checks the schema and opens the named databases, in one transaction (a write
// transaction that creates what is missing, or a read transaction when read-only).
static int s_open_dbs(kmx_store_t *self, const char *dir) {
    MDB_txn *txn = NULL;
    int rc = mdb_txn_begin(self->env, NULL, self->readonly ? MDB_RDONLY : 0, &txn);
    if (rc != 0)
        return kmx_store_mdb_err(rc, "begin");
    int err = 0;
    rc = mdb_dbi_open(txn, KMX_DB_META, self->readonly ? 0 : MDB_CREATE, &self->meta);
    if (rc == MDB_NOTFOUND) {
        kmx_log_error("no kmx store in dir=%s", dir);
        err = KMX_ERR_NOT_FOUND;
        goto out;
    }
    if (rc != 0) {
        err = kmx_store_mdb_err(rc, "open database");
        goto out;
    }
    if ((err = s_check_schema(self, txn, dir)) != 0 || (err = s_open_data_dbs(self, txn)) != 0 ||
        (self->upgraded_from && (err = s_upgrade(self, txn, dir)) != 0) ||
        (err = kmx_store_read_last_seq(self, txn, &self->last_seq)) != 0)
        goto out;
    rc = mdb_txn_commit(txn);
    txn = NULL;
    if (rc != 0)
        err = kmx_store_mdb_err(rc, "commit");
out:
    if (txn)
        mdb_txn_abort(txn);
    return err;
}

int kmx_store_sync_parse(const char *text, kmx_store_sync_t *out) {
    static const char *const names[] = {"full", "nometasync", "none"};
    for (size_t i = 0; text && i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(text, names[i]) == 0) {
            *out = (kmx_store_sync_t)i;
            return 0;
        }
    }
    return KMX_ERR_INVAL;
}

static unsigned int s_env_flags(const kmx_store_config_t *cfg) {
    // MDB_NOTLS: read transactions are not tied to threads. Full sync (the default) makes
    // every commit durable before its reply or event leaves the process.
    unsigned int flags = MDB_NOTLS;
    if (cfg && cfg->readonly)
        return flags | MDB_RDONLY;
    if (cfg && cfg->sync == KMX_STORE_SYNC_NOMETASYNC)
        flags |= MDB_NOMETASYNC;
    else if (cfg && cfg->sync == KMX_STORE_SYNC_NONE)
        flags |= MDB_NOSYNC;
    return flags;
}

static int s_open_env(kmx_store_t *self, const char *dir, size_t map_size, unsigned int flags) {
    int rc = mdb_env_create(&self->env);
    if (rc != 0)
        return kmx_store_mdb_err(rc, "env create");
    if ((rc = mdb_env_set_maxdbs(self->env, KMX_SCHEMA_MAX_DBS)) != 0 ||
        (rc = mdb_env_set_mapsize(self->env, map_size)) != 0)
        return kmx_store_mdb_err(rc, "env setup");
    rc = mdb_env_open(self->env, dir, flags, 0600);
    if (rc != 0)
        return kmx_store_mdb_err(rc, "env open");
    int dead = 0;
    rc = mdb_reader_check(self->env, &dead);
    if (rc != 0)
        return kmx_store_mdb_err(rc, "reader check");
    if (dead > 0)
        kmx_log_warn("cleared stale lmdb readers count=%d", dead);
    MDB_envinfo info;
    if ((rc = mdb_env_info(self->env, &info)) != 0)
        return kmx_store_mdb_err(rc, "env info");
    self->map_size = info.me_mapsize;
    return 0;
}

#define S_LOCK_FILE "kmx-storage.lock" // in the data directory

// Takes the one-writer lock of dir: an exclusive flock on DIR/kmx-storage.lock, held
// while the store is open and released by the kernel when the process dies (kill -9
// included). A second writer on the same directory, which would number events from its
// own idea of last_seq, is refused instead. Returns 0, KMX_ERR_BUSY or KMX_ERR_IO.
static int s_lock_dir(kmx_store_t *self, const char *dir) {
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", dir, S_LOCK_FILE) >= (int)sizeof path)
        return KMX_ERR_IO;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        kmx_log_error("cannot open lock file path=%s: %s", path, strerror(errno));
        return KMX_ERR_IO;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        char owner[32] = "";
        ssize_t n = pread(fd, owner, sizeof owner - 1, 0);
        owner[n > 0 ? n : 0] = '\0';
        owner[strcspn(owner, "\n")] = '\0';
        kmx_log_error("data directory dir=%s is in use by another kmx-storage (pid %s); it "
                      "was not opened", dir, owner[0] ? owner : "unknown");
        close(fd);
        return KMX_ERR_BUSY;
    }
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len)
        kmx_log_warn("cannot write pid to lock file path=%s", path); // the lock holds anyway
    self->lock_fd = fd;
    return 0;
}

int kmx_store_open(const char *dir, const kmx_store_config_t *cfg, kmx_store_t **out) {
    if (!dir || !out)
        return KMX_ERR_INVAL;
    *out = NULL;
    int readonly = cfg && cfg->readonly;
    int err = readonly ? 0 : s_make_dir(dir);
    if (err != 0)
        return err;
    kmx_store_t *self = calloc(1, sizeof *self);
    if (!self)
        return KMX_ERR_NOMEM;
    self->lock_fd = -1;
    if (!readonly && (err = s_lock_dir(self, dir)) != 0) {
        free(self);
        return err;
    }
    size_t map_size = cfg && cfg->map_size ? cfg->map_size : KMX_STORE_MAP_DEFAULT;
    self->map_size_max = cfg ? cfg->map_size_max : 0;
    self->retain_events = cfg ? cfg->retain_events : 0;
    self->readonly = readonly;
    self->upgrade = cfg && cfg->upgrade;
    if (!readonly && !(self->pending = kmx_derived_pending_new())) {
        kmx_store_close(&self);
        return KMX_ERR_NOMEM;
    }
    if ((err = s_open_env(self, dir, map_size, s_env_flags(cfg))) != 0 ||
        (err = s_open_dbs(self, dir)) != 0) {
        kmx_store_close(&self);
        return err;
    }
    kmx_log_info("store open dir=%s last_seq=%llu map_size=%zu readonly=%d", dir,
                 (unsigned long long)self->last_seq, self->map_size, readonly);
    *out = self;
    return 0;
}

uint32_t kmx_store_upgraded_from(const kmx_store_t *self) {
    return self ? self->upgraded_from : 0;
}

void kmx_store_close(kmx_store_t **self_p) {
    if (!self_p || !*self_p)
        return;
    kmx_store_t *self = *self_p;
    if (self->env)
        mdb_env_close(self->env);
    if (self->lock_fd >= 0)
        close(self->lock_fd); // releases the writer's lock
    kmx_derived_pending_destroy(&self->pending);
    free(self);
    *self_p = NULL;
}

uint64_t kmx_store_last_seq(const kmx_store_t *self) {
    return self ? self->last_seq : 0;
}

// ---- event lists and pages -------------------------------------------------------

void kmx_store_events_init(kmx_store_events_t *events) {
    memset(events, 0, sizeof *events);
}

static void s_events_truncate(kmx_store_events_t *events, size_t n) {
    while (events->n > n) {
        events->n--;
        free(events->items[events->n].data);
        events->items[events->n].data = NULL;
    }
}

void kmx_store_events_fini(kmx_store_events_t *events) {
    if (!events)
        return;
    s_events_truncate(events, 0);
    free(events->items);
    memset(events, 0, sizeof *events);
}

void kmx_store_scan_page_init(kmx_store_scan_page_t *page) {
    memset(page, 0, sizeof *page);
}

void kmx_store_scan_page_fini(kmx_store_scan_page_t *page) {
    if (!page)
        return;
    for (size_t i = 0; i < page->n; i++)
        kmx__v1__stored_record__free_unpacked(page->records[i], NULL);
    free(page->records);
    memset(page, 0, sizeof *page);
}

void kmx_store_replay_page_init(kmx_store_replay_page_t *page) {
    memset(page, 0, sizeof *page);
}

void kmx_store_replay_page_fini(kmx_store_replay_page_t *page) {
    if (!page)
        return;
    for (size_t i = 0; i < page->n; i++)
        kmx__v1__update_event__free_unpacked(page->events[i], NULL);
    free(page->events);
    memset(page, 0, sizeof *page);
}

// ---- writing ---------------------------------------------------------------------

// Fails the transaction with an LMDB code, remembering it for the retry decision.
static int s_batch_fail(s_batch_t *b, int rc, const char *what) {
    b->mdb_rc = rc;
    if (rc == MDB_MAP_FULL || rc == MDB_MAP_RESIZED)
        return KMX_ERR_FULL; // handled by the caller, which grows the map
    return kmx_store_mdb_err(rc, what);
}

// Stores rec under key as the change with sequence b->seq. With MDB_NOOVERWRITE a key
// already present is left alone: MDB_KEYEXIST is returned, *old_val then points at the
// stored value, and nothing was written. Returns 0, MDB_KEYEXIST or a kmx code.
static int s_write_record(s_batch_t *b, MDB_val *key, Kmx__V1__Record *rec, unsigned flags,
                          MDB_val *old_val) {
    Kmx__V1__StoredRecord stored = KMX__V1__STORED_RECORD__INIT;
    stored.record = rec;
    stored.has_seq = stored.has_updated_ms = 1;
    stored.seq = b->seq;
    stored.updated_ms = b->now_ms;
    MDB_val val = {kmx__v1__stored_record__get_packed_size(&stored), NULL};
    int rc = mdb_put(b->txn, b->store->records, key, &val, flags | MDB_RESERVE);
    if (rc == MDB_KEYEXIST && (flags & MDB_NOOVERWRITE)) {
        *old_val = val;
        return MDB_KEYEXIST;
    }
    if (rc != 0)
        return s_batch_fail(b, rc, "put record");
    kmx__v1__stored_record__pack(&stored, val.mv_data);
    return 0;
}

// Keeps a committed-to-be event for publishing after the commit; takes data.
static int s_keep_event(s_batch_t *b, const char *topic, uint8_t *data, size_t len) {
    kmx_store_events_t *list = b->events;
    if (!list) {
        free(data);
        return 0;
    }
    if (kmx_reserve((void **)&list->items, &list->cap, list->n, sizeof *list->items, 16) != 0) {
        free(data);
        return KMX_ERR_NOMEM;
    }
    kmx_store_event_t *slot = &list->items[list->n++];
    size_t tlen = strnlen(topic, sizeof slot->topic - 1);
    memcpy(slot->topic, topic, tlen);
    slot->topic[tlen] = '\0';
    slot->data = data;
    slot->len = len;
    slot->seq = b->seq;
    return 0;
}

static int s_write_event(s_batch_t *b, Kmx__V1__EventType type, const char *topic,
                         Kmx__V1__Record *rec, Kmx__V1__Value *previous) {
    Kmx__V1__UpdateEvent ev = KMX__V1__UPDATE_EVENT__INIT;
    ev.has_seq = ev.has_type = ev.has_committed_ms = 1;
    ev.seq = b->seq;
    ev.type = type;
    ev.topic = (char *)topic;
    ev.record = rec;
    ev.previous = previous;
    ev.committed_ms = b->now_ms;
    size_t len = kmx__v1__update_event__get_packed_size(&ev);
    uint8_t *data = malloc(len ? len : 1);
    if (!data)
        return KMX_ERR_NOMEM;
    kmx__v1__update_event__pack(&ev, data);
    uint8_t kbuf[8];
    kmx_rkey_event(b->seq, kbuf);
    MDB_val key = {sizeof kbuf, kbuf}, val = {len, data};
    int rc = mdb_put(b->txn, b->store->events, &key, &val, MDB_APPEND);
    if (rc != 0) {
        free(data);
        return s_batch_fail(b, rc, "append event");
    }
    return s_keep_event(b, topic, data, len);
}

// Decodes a stored value. A value that does not decode fails the batch: its derived
// entries could not be taken out exactly.
static int s_decode_old(const MDB_val *val, Kmx__V1__StoredRecord **old) {
    *old = kmx__v1__stored_record__unpack(NULL, val->mv_size, val->mv_data);
    if (!*old || !(*old)->record || !(*old)->record->value) {
        kmx_log_error("stored record does not decode; run kmx-storage check");
        if (*old)
            kmx__v1__stored_record__free_unpacked(*old, NULL);
        *old = NULL;
        return KMX_ERR_DECODE;
    }
    return 0;
}

// Reads the stored version of key, if any. *old is NULL when absent.
static int s_read_old(s_batch_t *b, MDB_val *key, Kmx__V1__StoredRecord **old) {
    MDB_val val;
    *old = NULL;
    int rc = mdb_get(b->txn, b->store->records, key, &val);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return s_batch_fail(b, rc, "get record");
    return s_decode_old(&val, old);
}

// Updates indexes and roll-ups for one change: old (may be NULL, last changed at old_seq)
// is replaced by rec (may be NULL for a delete), whose change takes b->seq. Index entries
// carry the sequence of the record's last change, so an update moves them to the new one.
static int s_write_derived(s_batch_t *b, MDB_val *key, const Kmx__V1__Record *old, uint64_t old_seq,
                           const Kmx__V1__Record *rec) {
    const kmx_derived_dbs_t *d = &b->store->derived;
    int rc = 0;
    if (old)
        rc = kmx_derived_index(b->txn, d, key, old_seq, old, 0);
    if (rc == 0 && rec)
        rc = kmx_derived_index(b->txn, d, key, b->seq, rec, 1);
    if (rc == 0 && old)
        rc = kmx_derived_pending_add(b->store->pending, old, -1);
    if (rc == 0 && rec)
        rc = kmx_derived_pending_add(b->store->pending, rec, +1);
    return rc == 0 ? 0 : s_batch_fail(b, rc, "update indexes and roll-ups");
}

// Whether rec is an earlier revision than stored: both carry a status and rec's comes
// before stored's in preliminary -> revised -> final.
static int s_superseded(const Kmx__V1__Record *stored, const Kmx__V1__Record *rec) {
    return stored->has_status && rec->has_status &&
           rec->status != KMX__V1__STATUS__STATUS_UNSPECIFIED && rec->status < stored->status;
}

// Replaces the stored old with rec, unless they hold the same content or rec is an
// earlier revision of the figure (a preliminary figure never replaces a revised one).
static int s_update_one(s_batch_t *b, MDB_val *key, const char *topic, Kmx__V1__Record *rec,
                        const MDB_val *old_val, kmx_put_outcome_t *outcome) {
    Kmx__V1__StoredRecord *old = NULL;
    int err = s_decode_old(old_val, &old);
    if (err != 0)
        return err;
    int superseded = s_superseded(old->record, rec);
    if (superseded || kmx_record_same_content(old->record, rec)) {
        outcome->outcome = KMX__V1__RECORD_RESULT__OUTCOME__UNCHANGED;
        outcome->superseded = superseded;
        kmx__v1__stored_record__free_unpacked(old, NULL);
        return 0;
    }
    b->seq++;
    err = s_write_record(b, key, rec, 0, NULL);
    if (err == 0)
        err = s_write_derived(b, key, old->record, old->seq, rec);
    if (err == 0)
        err = s_write_event(b, KMX__V1__EVENT_TYPE__UPSERT, topic, rec, old->record->value);
    kmx__v1__stored_record__free_unpacked(old, NULL);
    if (err != 0)
        return err;
    outcome->outcome = KMX__V1__RECORD_RESULT__OUTCOME__STORED;
    outcome->seq = b->seq;
    return 0;
}

// Inserts rec, or hands it to s_update_one when its key is present. The insert is tried
// first (MDB_NOOVERWRITE), so a new record costs one descent of the records tree.
static int s_put_one(s_batch_t *b, Kmx__V1__Record *rec, kmx_put_outcome_t *outcome) {
    uint8_t kbuf[KMX_RKEY_MAX];
    char topic[KMX_TOPIC_MAX];
    size_t klen = 0;
    if (!rec || !rec->value || kmx_rkey_record(rec, kbuf, sizeof kbuf, &klen) != 0 ||
        kmx_record_topic(rec, topic, sizeof topic) != 0)
        return 0;
    MDB_val key = {klen, kbuf}, old_val = {0, NULL};
    b->seq++;
    int err = s_write_record(b, &key, rec, MDB_NOOVERWRITE, &old_val);
    if (err == MDB_KEYEXIST) {
        b->seq--; // nothing was written; the update takes its sequence if it changes
        return s_update_one(b, &key, topic, rec, &old_val, outcome);
    }
    if (err == 0)
        err = s_write_derived(b, &key, NULL, 0, rec);
    if (err == 0)
        err = s_write_event(b, KMX__V1__EVENT_TYPE__UPSERT, topic, rec, NULL);
    if (err != 0)
        return err;
    outcome->outcome = KMX__V1__RECORD_RESULT__OUTCOME__STORED;
    outcome->seq = b->seq;
    return 0;
}

static int s_delete_one(s_batch_t *b, Kmx__V1__Record *rec, kmx_put_outcome_t *outcome) {
    uint8_t kbuf[KMX_RKEY_MAX];
    char topic[KMX_TOPIC_MAX];
    size_t klen = 0;
    if (!rec || kmx_rkey_record(rec, kbuf, sizeof kbuf, &klen) != 0)
        return 0;
    MDB_val key = {klen, kbuf};
    Kmx__V1__StoredRecord *old = NULL;
    int err = s_read_old(b, &key, &old);
    if (err != 0 || !old) {
        outcome->outcome = KMX__V1__RECORD_RESULT__OUTCOME__NOT_FOUND;
        return err;
    }
    err = kmx_record_topic(old->record, topic, sizeof topic) != 0 ? KMX_ERR_STORAGE : 0;
    b->seq++;
    int rc = err == 0 ? mdb_del(b->txn, b->store->records, &key, NULL) : 0;
    if (rc != 0)
        err = s_batch_fail(b, rc, "delete record");
    if (err == 0)
        err = s_write_derived(b, &key, old->record, old->seq, NULL);
    if (err == 0)
        err = s_write_event(b, KMX__V1__EVENT_TYPE__DELETE, topic, old->record, old->record->value);
    kmx__v1__stored_record__free_unpacked(old, NULL);
    if (err != 0)
        return err;
    outcome->outcome = KMX__V1__RECORD_RESULT__OUTCOME__STORED;
    outcome->seq = b->seq;
    return 0;
}

static int s_write_last_seq(s_batch_t *b) {
    uint8_t buf[8];
    s_put_be(buf, b->seq, 8);
    MDB_val key = {strlen(KMX_META_LAST_SEQ), KMX_META_LAST_SEQ}, val = {sizeof buf, buf};
    int rc = mdb_put(b->txn, b->store->meta, &key, &val, 0);
    return rc == 0 ? 0 : s_batch_fail(b, rc, "put last_seq");
}

// Drops the oldest events beyond the retention (at most S_TRIM_MAX per batch, so one
// batch after lowering the retention stays small; later batches finish the job).
static int s_trim_events(s_batch_t *b) {
    uint64_t keep = b->store->retain_events;
    if (keep == 0 || b->seq <= keep)
        return 0;
    uint64_t cutoff = b->seq - keep; // events with seq <= cutoff go
    MDB_cursor *cur = NULL;
    int rc = mdb_cursor_open(b->txn, b->store->events, &cur);
    if (rc != 0)
        return s_batch_fail(b, rc, "cursor open");
    MDB_val key, val;
    uint64_t seq = 0;
    size_t dropped = 0;
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0 && dropped < S_TRIM_MAX;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        if (kmx_rkey_event_seq(key.mv_data, key.mv_size, &seq) != 0 || seq > cutoff)
            break;
        if ((rc = mdb_cursor_del(cur, 0)) != 0)
            break;
        dropped++;
    }
    mdb_cursor_close(cur);
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : s_batch_fail(b, rc, "trim events");
}

// Runs the whole batch in one write transaction. Returns 0 once committed.
static int s_write_txn(s_batch_t *b, const kmx_store_op_t *ops, size_t n,
                       kmx_put_outcome_t *outcomes) {
    int rc = mdb_txn_begin(b->store->env, NULL, 0, &b->txn);
    if (rc != 0) {
        b->txn = NULL;
        return s_batch_fail(b, rc, "begin");
    }
    int err = 0;
    kmx_derived_pending_clear(b->store->pending);
    for (size_t i = 0; i < n && err == 0; i++) {
        outcomes[i].outcome = KMX__V1__RECORD_RESULT__OUTCOME__REJECTED;
        outcomes[i].seq = 0;
        outcomes[i].superseded = 0;
        if (ops[i].kind == KMX_STORE_OP_DELETE)
            err = s_delete_one(b, ops[i].rec, &outcomes[i]);
        else
            err = s_put_one(b, ops[i].rec, &outcomes[i]);
    }
    if (err == 0 &&
        (rc = kmx_derived_pending_flush(b->txn, &b->store->derived, b->store->pending)) != 0)
        err = s_batch_fail(b, rc, "update roll-ups");
    if (err == 0 && b->seq != b->store->last_seq)
        err = s_write_last_seq(b);
    if (err == 0)
        err = s_trim_events(b);
    if (err != 0) {
        mdb_txn_abort(b->txn);
        b->txn = NULL;
        return err;
    }
    rc = mdb_txn_commit(b->txn);
    b->txn = NULL;
    return rc == 0 ? 0 : s_batch_fail(b, rc, "commit");
}

// Grows the map after MDB_MAP_FULL (or adopts another process's size after
// MDB_MAP_RESIZED). Safe because this thread holds no transaction now.
static int s_grow_map(kmx_store_t *self, int mdb_rc) {
    size_t next = 0;
    if (mdb_rc == MDB_MAP_FULL) {
        size_t max = self->map_size_max;
        if (self->map_size > SIZE_MAX / 2 || (max && self->map_size >= max)) {
            kmx_log_error("lmdb map is full and may not grow map_size=%zu", self->map_size);
            return KMX_ERR_FULL;
        }
        next = self->map_size * 2;
        if (max && next > max)
            next = max;
    }
    int rc = mdb_env_set_mapsize(self->env, next);
    if (rc != 0)
        return kmx_store_mdb_err(rc, "set mapsize");
    MDB_envinfo info;
    if ((rc = mdb_env_info(self->env, &info)) != 0)
        return kmx_store_mdb_err(rc, "env info");
    kmx_log_info("lmdb map grown from=%zu to=%zu", self->map_size, info.me_mapsize);
    self->map_size = info.me_mapsize;
    return 0;
}

int kmx_store_write_batch(kmx_store_t *self, const kmx_store_op_t *ops, size_t n,
                          kmx_put_outcome_t *outcomes, kmx_store_events_t *events) {
    if (!self || (n > 0 && (!ops || !outcomes)))
        return KMX_ERR_INVAL;
    if (self->readonly)
        return KMX_ERR_UNSUPPORTED;
    size_t base = events ? events->n : 0;
    for (int attempt = 0; attempt < S_GROW_ATTEMPTS; attempt++) {
        s_batch_t b = {self, NULL, self->last_seq, s_now_ms(), events, 0};
        int err = s_write_txn(&b, ops, n, outcomes);
        if (err == 0) {
            self->last_seq = b.seq;
            return 0;
        }
        if (events)
            s_events_truncate(events, base);
        if (b.mdb_rc != MDB_MAP_FULL && b.mdb_rc != MDB_MAP_RESIZED)
            return err;
        if ((err = s_grow_map(self, b.mdb_rc)) != 0)
            return err;
    }
    kmx_log_error("write batch gave up after %d map resizes", S_GROW_ATTEMPTS);
    return KMX_ERR_FULL;
}

int kmx_store_put_batch(kmx_store_t *self, Kmx__V1__Record **recs, size_t n,
                        kmx_put_outcome_t *outcomes, kmx_store_events_t *events) {
    if (!self || (n > 0 && (!recs || !outcomes)))
        return KMX_ERR_INVAL;
    kmx_store_op_t *ops = calloc(n ? n : 1, sizeof *ops);
    if (!ops)
        return KMX_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        ops[i].kind = KMX_STORE_OP_PUT;
        ops[i].rec = recs[i];
    }
    int err = kmx_store_write_batch(self, ops, n, outcomes, events);
    free(ops);
    return err;
}

// ---- reading ---------------------------------------------------------------------

int kmx_store_begin_read(kmx_store_t *self, MDB_txn **txn) {
    int rc = mdb_txn_begin(self->env, NULL, MDB_RDONLY, txn);
    if (rc == MDB_MAP_RESIZED) {
        // Another process grew the map; adopt its size and try once more.
        if (mdb_env_set_mapsize(self->env, 0) == 0)
            rc = mdb_txn_begin(self->env, NULL, MDB_RDONLY, txn);
    }
    return rc == 0 ? 0 : kmx_store_mdb_err(rc, "begin read");
}

int kmx_store_get(kmx_store_t *self, const Kmx__V1__Record *key, Kmx__V1__StoredRecord **out) {
    if (!self || !key || !out)
        return KMX_ERR_INVAL;
    *out = NULL;
    uint8_t kbuf[KMX_RKEY_MAX];
    size_t klen = 0;
    if (kmx_rkey_record(key, kbuf, sizeof kbuf, &klen) != 0)
        return KMX_ERR_INVAL;
    MDB_txn *txn = NULL;
    int err = kmx_store_begin_read(self, &txn);
    if (err != 0)
        return err;
    MDB_val k = {klen, kbuf}, val;
    int rc = mdb_get(txn, self->records, &k, &val);
    if (rc == 0) {
        *out = kmx__v1__stored_record__unpack(NULL, val.mv_size, val.mv_data);
        err = *out ? 0 : KMX_ERR_DECODE;
    } else {
        err = rc == MDB_NOTFOUND ? KMX_ERR_NOT_FOUND : kmx_store_mdb_err(rc, "get");
    }
    mdb_txn_abort(txn);
    return err;
}

int kmx_store_filter_check(const Kmx__V1__Filter *filter) {
    return kmx_match_check(filter);
}

int kmx_store_filter_match(const Kmx__V1__Filter *f, const Kmx__V1__Record *rec) {
    return kmx_match_record(f, rec);
}

// Key range a scan may touch, derived from the filter: [lo, ...] while the kind byte
// equals kind and the period start stays <= end_max.
typedef struct {
    uint8_t lo[5];    // lower bound key: kind, then period start when known
    size_t lo_len;    // 0 = no lower bound
    int kind;         // fixed kind byte, or -1
    uint32_t end_max; // records starting after this month cannot match; 0 = no limit
} s_range_t;

static void s_range_from(const Kmx__V1__Filter *f, s_range_t *r) {
    memset(r, 0, sizeof *r);
    r->kind = -1;
    if (!f || !f->has_kind || f->kind == KMX__V1__KIND__KIND_UNSPECIFIED)
        return;
    r->kind = (int)f->kind & 0xff;
    r->lo[0] = (uint8_t)r->kind;
    r->lo_len = 1;
    kmx_period_t p;
    if (kmx_match_period(f, &p)) {
        s_put_be(r->lo + 1, p.start, 4);
        r->lo_len = 5;
        r->end_max = p.end;
    }
}

// Returns nonzero while key is still inside the range.
static int s_range_holds(const s_range_t *r, const MDB_val *key) {
    const uint8_t *k = key->mv_data;
    if (r->kind < 0)
        return 1;
    if (key->mv_size < 9 || k[0] != (uint8_t)r->kind)
        return 0;
    return r->end_max == 0 || s_get_be(k + 1, 4) <= r->end_max;
}

static int s_key_cmp(const MDB_val *a, const uint8_t *b, size_t blen) {
    size_t n = a->mv_size < blen ? a->mv_size : blen;
    int c = memcmp(a->mv_data, b, n);
    if (c != 0)
        return c;
    return (a->mv_size > blen) - (a->mv_size < blen);
}

// Positions cur at the first key the scan should visit. Returns an LMDB code.
static int s_scan_seek(MDB_cursor *cur, const kmx_store_scan_t *q, const s_range_t *r, MDB_val *key,
                       MDB_val *val) {
    int rc;
    if (q->after_len > 0) {
        key->mv_size = q->after_len;
        key->mv_data = (void *)q->after;
        rc = mdb_cursor_get(cur, key, val, MDB_SET_RANGE);
        if (rc == 0 && s_key_cmp(key, q->after, q->after_len) == 0)
            rc = mdb_cursor_get(cur, key, val, MDB_NEXT);
    } else if (r->lo_len == 0) {
        return mdb_cursor_get(cur, key, val, MDB_FIRST);
    } else {
        rc = MDB_SUCCESS;
        key->mv_size = 0;
    }
    if (rc == 0 && r->lo_len > 0 && (key->mv_size == 0 || s_key_cmp(key, r->lo, r->lo_len) < 0)) {
        key->mv_size = r->lo_len;
        key->mv_data = (void *)r->lo;
        rc = mdb_cursor_get(cur, key, val, MDB_SET_RANGE);
    }
    return rc;
}

// Decodes one visited record and keeps it in page when it matches.
static int s_scan_visit(const kmx_store_scan_t *q, const MDB_val *val, kmx_store_scan_page_t *page,
                        size_t *cap) {
    Kmx__V1__StoredRecord *sr = kmx__v1__stored_record__unpack(NULL, val->mv_size, val->mv_data);
    if (!sr) {
        kmx_log_warn("scan skipped a stored record that does not decode");
        return 0;
    }
    if (!kmx_store_filter_match(q->filter, sr->record)) {
        kmx__v1__stored_record__free_unpacked(sr, NULL);
        return 0;
    }
    if (kmx_reserve((void **)&page->records, cap, page->n, sizeof *page->records, 16) != 0) {
        kmx__v1__stored_record__free_unpacked(sr, NULL);
        return KMX_ERR_NOMEM;
    }
    page->records[page->n++] = sr;
    return 0;
}

#define S_SKIP_MARKETS_MAX 64 // markets a scan may skip between

// The markets a scan filter names, sorted in key byte order, when a skip scan can use them:
// records of one (kind, period) are ordered by market next, so the walk seeks from one
// named market to the next instead of visiting every market's records in between.
typedef struct {
    const char *markets[S_SKIP_MARKETS_MAX]; // sorted, canonical
    size_t n;                                // 0 = no skip scan
} s_skip_t;

static int s_cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

// Fills skip when the filter fixes the kind and names only canonical markets (keys hold
// canonical markets, so the seek target is exact).
static void s_skip_init(const Kmx__V1__Filter *f, const s_range_t *r, s_skip_t *skip) {
    skip->n = 0;
    if (!f || r->kind < 0 || f->n_markets == 0 || f->n_markets > S_SKIP_MARKETS_MAX)
        return;
    for (size_t i = 0; i < f->n_markets; i++) {
        char canon[KMX_MARKET_MAX];
        if (!f->markets[i] || kmx_market_canonical(f->markets[i], canon, sizeof canon) != 0 ||
            strcmp(canon, f->markets[i]) != 0)
            return;
        skip->markets[i] = f->markets[i];
    }
    skip->n = f->n_markets;
    qsort(skip->markets, skip->n, sizeof *skip->markets, s_cmp_str);
}

// Decides whether key's market is wanted. Returns 1 to visit key, 0 after moving cur to
// the next key worth visiting (rc in *rc, key and val updated).
static int s_skip_to(MDB_cursor *cur, const s_skip_t *skip, MDB_val *key, MDB_val *val, int *rc) {
    const uint8_t *k = key->mv_data;
    if (skip->n == 0 || key->mv_size < 10)
        return 1;
    const char *market = (const char *)k + 9;
    size_t mlen = strnlen(market, key->mv_size - 9);
    const char *next = NULL;
    for (size_t i = 0; i < skip->n && !next; i++) {
        size_t n = strlen(skip->markets[i]);
        int c = memcmp(skip->markets[i], market, n < mlen ? n : mlen);
        c = c != 0 ? c : (n > mlen) - (n < mlen);
        if (c == 0)
            return 1;
        if (c > 0)
            next = skip->markets[i];
    }
    uint8_t target[9 + KMX_MARKET_MAX];
    size_t tlen = 9;
    memcpy(target, k, 9);
    if (next) { // the next named market of this kind and period
        size_t n = strlen(next);
        memcpy(target + 9, next, n);
        target[9 + n] = 0;
        tlen += n + 1;
    } else { // past every named market: the next period
        uint64_t end = s_get_be(k + 5, 4);
        if (end >= UINT32_MAX) {
            *rc = MDB_NOTFOUND;
            return 0;
        }
        s_put_be(target + 5, end + 1, 4);
    }
    key->mv_size = tlen;
    key->mv_data = target;
    *rc = mdb_cursor_get(cur, key, val, MDB_SET_RANGE);
    return 0;
}

static int s_scan_walk(MDB_cursor *cur, const kmx_store_scan_t *q, kmx_store_scan_page_t *page) {
    s_range_t r;
    s_range_from(q->filter, &r);
    s_skip_t skip;
    s_skip_init(q->filter, &r, &skip);
    uint32_t limit = q->limit ? q->limit : 1;
    size_t cap = 0, visits = 0;
    MDB_val key, val;
    int rc = s_scan_seek(cur, q, &r, &key, &val);
    while (rc == 0 && s_range_holds(&r, &key)) {
        size_t klen = key.mv_size < KMX_RKEY_MAX ? key.mv_size : KMX_RKEY_MAX;
        memcpy(page->next, key.mv_data, klen);
        page->next_len = klen;
        if (!s_skip_to(cur, &skip, &key, &val, &rc)) {
            if (++visits >= KMX_STORE_SCAN_VISIT_MAX)
                break;
            continue;
        }
        int err = s_scan_visit(q, &val, page, &cap);
        if (err != 0)
            return err;
        rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
        if (page->n >= limit || ++visits >= KMX_STORE_SCAN_VISIT_MAX)
            break;
    }
    if (rc == MDB_NOTFOUND || (rc == 0 && !s_range_holds(&r, &key)))
        page->next_len = 0; // nothing left to visit: this was the last page
    else if (rc != 0)
        return kmx_store_mdb_err(rc, "scan");
    return 0;
}

int kmx_store_scan(kmx_store_t *self, const kmx_store_scan_t *q, kmx_store_scan_page_t *page) {
    if (!self || !q || !page || (q->after_len > 0 && !q->after))
        return KMX_ERR_INVAL;
    if (q->after_len > KMX_RKEY_MAX || kmx_store_filter_check(q->filter) != 0)
        return KMX_ERR_INVAL;
    MDB_txn *txn = NULL;
    int err = kmx_store_begin_read(self, &txn);
    if (err != 0)
        return err;
    MDB_cursor *cur = NULL;
    int rc = mdb_cursor_open(txn, self->records, &cur);
    if (rc != 0)
        err = kmx_store_mdb_err(rc, "cursor open");
    else if ((err = kmx_store_read_last_seq(self, txn, &page->last_seq)) == 0)
        err = s_scan_walk(cur, q, page);
    if (cur)
        mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    if (err != 0)
        kmx_store_scan_page_fini(page);
    return err;
}

static int s_topic_wanted(const kmx_store_replay_t *q, const char *topic) {
    if (q->n_prefixes == 0)
        return 1;
    const char *t = topic ? topic : "";
    for (size_t i = 0; i < q->n_prefixes; i++) {
        const char *p = q->prefixes[i] ? q->prefixes[i] : "";
        if (strncmp(t, p, strlen(p)) == 0)
            return 1;
    }
    return 0;
}

static int s_replay_walk(MDB_cursor *cur, const kmx_store_replay_t *q,
                         kmx_store_replay_page_t *page) {
    MDB_val key, val;
    int rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0 || kmx_rkey_event_seq(key.mv_data, key.mv_size, &page->first_seq) != 0)
        return rc ? kmx_store_mdb_err(rc, "replay") : KMX_ERR_STORAGE;
    if (q->since < UINT64_MAX && q->since + 1 < page->first_seq)
        return KMX_ERR_RESYNC;
    if (q->since == UINT64_MAX)
        return 0;
    uint8_t kbuf[8];
    kmx_rkey_event(q->since + 1, kbuf);
    key.mv_size = sizeof kbuf;
    key.mv_data = kbuf;
    uint32_t limit = q->limit ? q->limit : 1;
    size_t cap = 0;
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE); rc == 0 && page->n < limit;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        Kmx__V1__UpdateEvent *ev = kmx__v1__update_event__unpack(NULL, val.mv_size, val.mv_data);
        if (!ev)
            return KMX_ERR_DECODE;
        if (!s_topic_wanted(q, ev->topic)) {
            kmx__v1__update_event__free_unpacked(ev, NULL);
            continue;
        }
        if (kmx_reserve((void **)&page->events, &cap, page->n, sizeof *page->events, 16) != 0) {
            kmx__v1__update_event__free_unpacked(ev, NULL);
            return KMX_ERR_NOMEM;
        }
        page->events[page->n++] = ev;
    }
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : kmx_store_mdb_err(rc, "replay");
}

int kmx_store_replay(kmx_store_t *self, const kmx_store_replay_t *q,
                     kmx_store_replay_page_t *page) {
    if (!self || !q || !page || (q->n_prefixes > 0 && !q->prefixes))
        return KMX_ERR_INVAL;
    MDB_txn *txn = NULL;
    int err = kmx_store_begin_read(self, &txn);
    if (err != 0)
        return err;
    page->last_seq = self->last_seq;
    MDB_cursor *cur = NULL;
    int rc = mdb_cursor_open(txn, self->events, &cur);
    if (rc != 0)
        err = kmx_store_mdb_err(rc, "cursor open");
    else
        err = s_replay_walk(cur, q, page);
    if (cur)
        mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    if (err != 0) {
        uint64_t first = page->first_seq, last = page->last_seq;
        kmx_store_replay_page_fini(page);
        page->first_seq = first;
        page->last_seq = last;
    }
    return err;
}

int kmx_store_stats(kmx_store_t *self, kmx_store_stats_t *out) {
    if (!self || !out)
        return KMX_ERR_INVAL;
    memset(out, 0, sizeof *out);
    MDB_txn *txn = NULL;
    int err = kmx_store_begin_read(self, &txn);
    if (err != 0)
        return err;
    MDB_stat rs, es, env_st;
    MDB_envinfo info;
    int rc = mdb_stat(txn, self->records, &rs);
    if (rc == 0)
        rc = mdb_stat(txn, self->events, &es);
    if (rc == 0)
        rc = mdb_env_stat(self->env, &env_st);
    if (rc == 0)
        rc = mdb_env_info(self->env, &info);
    mdb_txn_abort(txn);
    if (rc != 0)
        return kmx_store_mdb_err(rc, "stats");
    out->records = rs.ms_entries;
    out->events = es.ms_entries;
    out->last_seq = self->last_seq;
    out->map_size = info.me_mapsize;
    out->used_pages = (uint64_t)info.me_last_pgno + 1;
    out->page_size = env_st.ms_psize;
    return 0;
}

// ---- aggregate -------------------------------------------------------------------

int kmx_store_filter_is_rollup(const Kmx__V1__Filter *f) {
    return !f || (f->n_items == 0 && f->n_companies == 0 && f->n_artists == 0 && f->n_sources == 0);
}

// Adds one record to group when the filter matches it.
static int s_agg_record(const Kmx__V1__Filter *filter, const MDB_val *val, kmx_group_t *group) {
    Kmx__V1__StoredRecord *sr = kmx__v1__stored_record__unpack(NULL, val->mv_size, val->mv_data);
    if (!sr || !sr->record || !sr->record->value || !sr->record->period) {
        kmx_log_warn("aggregate skipped a stored record that does not decode");
        if (sr)
            kmx__v1__stored_record__free_unpacked(sr, NULL);
        return 0;
    }
    int err = 0;
    if (kmx_store_filter_match(filter, sr->record))
        err = kmx_group_add(group, sr->record, sr->record->value->amount, 1, 1);
    kmx__v1__stored_record__free_unpacked(sr, NULL);
    return err;
}

// Walks the records over the filter's key range, feeding group.
static int s_agg_walk(MDB_cursor *cur, const Kmx__V1__Filter *filter, kmx_group_t *group) {
    s_range_t r;
    s_range_from(filter, &r);
    kmx_store_scan_t q = {0};
    MDB_val key, val;
    int rc = s_scan_seek(cur, &q, &r, &key, &val);
    int err = 0;
    while (rc == 0 && err == 0 && s_range_holds(&r, &key)) {
        err = s_agg_record(filter, &val, group);
        rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
    }
    if (err != 0)
        return err;
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : kmx_store_mdb_err(rc, "aggregate");
}

int kmx_store_aggregate(kmx_store_t *self, const Kmx__V1__Filter *filter, kmx_group_t *group,
                        int fields_rollup, const kmx_store_fold_t *fold,
                        kmx_store_agg_info_t *info) {
    if (!self || !group || !info)
        return KMX_ERR_INVAL;
    if (kmx_store_filter_check(filter) != 0)
        return KMX_ERR_INVAL;
    info->from_rollups = fields_rollup && kmx_store_filter_is_rollup(filter);
    info->folded = 0;
    MDB_txn *txn = NULL;
    int err = kmx_store_begin_read(self, &txn);
    if (err != 0)
        return err;
    err = kmx_store_read_last_seq(self, txn, &info->last_seq);
    if (err == 0 && info->from_rollups) {
        err = kmx_store_rollup_aggregate(self, txn, filter, fold, group, &info->folded);
    } else if (err == 0) {
        MDB_cursor *cur = NULL;
        int rc = mdb_cursor_open(txn, self->records, &cur);
        err = rc != 0 ? kmx_store_mdb_err(rc, "cursor open") : s_agg_walk(cur, filter, group);
        if (cur)
            mdb_cursor_close(cur);
    }
    mdb_txn_abort(txn);
    return err;
}
