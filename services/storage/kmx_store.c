/*  kmx_store - the LMDB engine behind kmx-storage: opening (schema check, upgrade, the
    writer's lock), closing, and what the write side (kmx_store_write.c) and the read side
    (kmx_store_read.c) share. Any number of threads may read while one thread writes: each
    read runs in its own read-only transaction (MDB_NOTLS), on the last committed snapshot.  */
#include "kmx_store.h"

#include "kmx_store_int.h"

#include "kmx_err.h"
#include "kmx_log.h"
#include "kmx_schema.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

// ---- helpers -------------------------------------------------------------------

// The last LMDB or system code kmx_store_mdb_err mapped in this thread, which
// kmx_store_write_failure names (the kmx code alone does not tell ENOSPC from EFBIG).
static _Thread_local int s_last_rc;

int kmx_store_mdb_err(int rc, const char *what) {
    s_last_rc = rc;
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

// Below this many free bytes a failed write is taken for a full disk.
#define S_FULL_FREE_BYTES (4u << 20)

int kmx_store_write_failure(kmx_store_t *self, int err, char *msg, size_t size) {
    const char *dir = "?";
    if (!self || mdb_env_get_path(self->env, &dir) != 0 || !dir)
        dir = "?";
    // Only a failure of LMDB or of the system has a code of its own to name.
    int rc = err == KMX_ERR_FULL || err == KMX_ERR_IO || err == KMX_ERR_STORAGE ? s_last_rc : 0;
    char file[4200];
    snprintf(file, sizeof file, "%s/data.mdb", dir);
    struct stat st;
    struct rlimit lim;
    struct statvfs vfs;
    // LMDB reports a write that came back short as EIO: a disk that fills up, or a file
    // size limit crossed, in the middle of a write. Tell those from a failing disk.
    if (rc == EIO || rc == EFBIG) {
        if (getrlimit(RLIMIT_FSIZE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY &&
            stat(file, &st) == 0 && (uint64_t)st.st_size + S_FULL_FREE_BYTES > lim.rlim_cur)
            rc = EFBIG;
        else if (statvfs(dir, &vfs) == 0 &&
                 (uint64_t)vfs.f_bavail * vfs.f_frsize < S_FULL_FREE_BYTES)
            rc = ENOSPC;
    }
    if (err == KMX_ERR_FULL && rc != ENOSPC && rc != EFBIG && rc != EIO
#ifdef EDQUOT
        && rc != EDQUOT
#endif
    )
        rc = MDB_MAP_FULL; // the map could not grow: LMDB's own MDB_MAP_FULL is not logged
    const char *tail = "nothing from this request was stored";
    switch (rc) {
    case ENOSPC:
        snprintf(msg, size,
                 "kmx-storage could not write: no space left on device at %s; free space or "
                 "move KMX_DATA_DIR; %s",
                 dir, tail);
        return KMX_ERR_FULL;
#ifdef EDQUOT
    case EDQUOT:
        snprintf(msg, size,
                 "kmx-storage could not write: disk quota exceeded at %s; raise the quota, "
                 "free space or move KMX_DATA_DIR; %s",
                 dir, tail);
        return KMX_ERR_FULL;
#endif
    case EFBIG:
        snprintf(msg, size,
                 "kmx-storage could not write: %s reached the file size limit of the "
                 "kmx-storage process (ulimit -f, RLIMIT_FSIZE); raise the limit; %s",
                 file, tail);
        return KMX_ERR_FULL;
    case MDB_MAP_FULL:
        snprintf(msg, size,
                 "kmx-storage could not write: the LMDB map of %s cannot grow past %zu bytes; "
                 "raise the limit; %s",
                 file, self ? self->map_size : (size_t)0, tail);
        return KMX_ERR_FULL;
    case EIO:
        snprintf(msg, size,
                 "kmx-storage could not write: input/output error at %s; check the disk "
                 "(kernel log) and restart kmx-storage; %s",
                 dir, tail);
        return KMX_ERR_IO;
    default:
        snprintf(msg, size, "kmx-storage could not commit the batch at %s: %s; %s", dir,
                 kmx_strerror(err), tail);
        return err;
    }
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
    if (version >= KMX_STORE_UPGRADES_FROM && version < KMX_SCHEMA_VERSION)
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
        kmx_store_put_be(buf, KMX_SCHEMA_VERSION, 4);
        MDB_val put = {sizeof buf, buf};
        rc = mdb_put(txn, self->meta, &key, &put, 0);
        return rc == 0 ? 0 : kmx_store_mdb_err(rc, "put schema version");
    }
    if (rc != 0)
        return kmx_store_mdb_err(rc, "get schema version");
    uint64_t version = val.mv_size == 4 ? kmx_store_get_be(val.mv_data, 4) : 0;
    if (version >= KMX_STORE_UPGRADES_FROM && version < KMX_SCHEMA_VERSION && self->upgrade &&
        !self->readonly) {
        self->upgraded_from = (uint32_t)version;
        return 0; // s_upgrade, once the databases are open
    }
    return version == KMX_SCHEMA_VERSION ? 0 : s_refuse_version(version, dir);
}

#define S_UPGRADE_FLUSH 10000 // records summed in memory between roll-up flushes

// Adds one record to the roll-ups and the catalog being rebuilt.
static int s_upgrade_record(kmx_store_t *self, const MDB_val *val) {
    Kmx__V1__StoredRecord *sr = kmx__v1__stored_record__unpack(NULL, val->mv_size, val->mv_data);
    int err = 0;
    if (!sr || !sr->record || kmx_derived_pending_add(self->pending, sr->record, 1) != 0 ||
        kmx_catalog_pending_add(self->cpend, sr->record, 1) != 0)
        err = KMX_ERR_DECODE;
    if (sr)
        kmx__v1__stored_record__free_unpacked(sr, NULL);
    return err;
}

static int s_upgrade_flush(kmx_store_t *self, MDB_txn *txn) {
    int rc = kmx_derived_pending_flush(txn, &self->derived, self->pending);
    if (rc == 0)
        rc = kmx_catalog_pending_flush(txn, &self->catalog, self->cpend);
    return rc == 0 ? 0 : kmx_store_mdb_err(rc, "upgrade roll-ups and catalog");
}

// Rebuilds the history index from the event log: one entry per kept event.
static int s_upgrade_history(kmx_store_t *self, MDB_txn *txn) {
    MDB_cursor *cur = NULL;
    int rc = mdb_drop(txn, self->catalog.history, 0);
    if (rc == 0)
        rc = mdb_cursor_open(txn, self->events, &cur);
    if (rc != 0)
        return kmx_store_mdb_err(rc, "upgrade history");
    MDB_val key, val;
    int err = 0;
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0 && err == 0;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        Kmx__V1__UpdateEvent *ev = kmx__v1__update_event__unpack(NULL, val.mv_size, val.mv_data);
        uint8_t kbuf[KMX_RKEY_MAX];
        size_t klen = 0;
        if (!ev || !ev->has_seq)
            err = KMX_ERR_DECODE;
        else if (ev->record && kmx_rkey_record(ev->record, kbuf, sizeof kbuf, &klen) == 0) {
            MDB_val rkey = {klen, kbuf};
            int prc = kmx_catalog_history_add(txn, &self->catalog, &rkey, ev->seq);
            err = prc == 0 ? 0 : kmx_store_mdb_err(prc, "upgrade history");
        }
        if (ev)
            kmx__v1__update_event__free_unpacked(ev, NULL);
    }
    mdb_cursor_close(cur);
    if (err == 0 && rc != MDB_NOTFOUND)
        err = kmx_store_mdb_err(rc, "upgrade events");
    return err;
}

// Schema 3 or 4 -> 5: month roll-ups in rollups_month (4), the catalog and the history
// index (5). The roll-ups and the catalog are emptied and rebuilt from the records, the
// history index from the event log, inside the open write transaction, so the upgrade
// commits whole or not at all; records, indexes and events are untouched.
static int s_upgrade(kmx_store_t *self, MDB_txn *txn, const char *dir) {
    int rc = mdb_drop(txn, self->derived.rollups, 0);
    if (rc == 0)
        rc = mdb_drop(txn, self->derived.rollups_month, 0);
    if (rc == 0)
        rc = mdb_drop(txn, self->catalog.values, 0);
    MDB_cursor *cur = NULL;
    if (rc == 0)
        rc = mdb_cursor_open(txn, self->records, &cur);
    if (rc != 0)
        return kmx_store_mdb_err(rc, "upgrade");
    kmx_derived_pending_clear(self->pending);
    kmx_catalog_pending_clear(self->cpend);
    uint64_t n = 0;
    int err = 0;
    MDB_val key, val;
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0 && err == 0;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        err = s_upgrade_record(self, &val);
        if (err == 0 && ++n % S_UPGRADE_FLUSH == 0)
            err = s_upgrade_flush(self, txn);
    }
    mdb_cursor_close(cur);
    if (err == 0 && rc != MDB_NOTFOUND)
        err = kmx_store_mdb_err(rc, "upgrade records");
    if (err == 0)
        err = s_upgrade_flush(self, txn);
    if (err == 0)
        err = s_upgrade_history(self, txn);
    kmx_derived_pending_clear(self->pending);
    kmx_catalog_pending_clear(self->cpend);
    if (err != 0) {
        kmx_log_error("upgrade failed dir=%s after %llu records; the store was not changed", dir,
                      (unsigned long long)n);
        return err;
    }
    uint8_t buf[4];
    kmx_store_put_be(buf, KMX_SCHEMA_VERSION, 4);
    MDB_val vkey = {strlen(KMX_META_SCHEMA_VERSION), KMX_META_SCHEMA_VERSION};
    MDB_val put = {sizeof buf, buf};
    if ((rc = mdb_put(txn, self->meta, &vkey, &put, 0)) != 0)
        return kmx_store_mdb_err(rc, "put schema version");
    kmx_log_info("store upgraded from schema %u to %u dir=%s records=%llu (roll-ups, catalog and "
                 "history index rebuilt)",
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
    *out = kmx_store_get_be(val.mv_data, 8);
    return 0;
}

// Opens the data databases after the schema check passed.
static int s_open_data_dbs(kmx_store_t *self, MDB_txn *txn) {
    unsigned int create = self->readonly ? 0 : MDB_CREATE;
    int rc;
    if ((rc = mdb_dbi_open(txn, KMX_DB_RECORDS, create, &self->records)) != 0 ||
        (rc = mdb_dbi_open(txn, KMX_DB_EVENTS, create, &self->events)) != 0 ||
        (rc = kmx_derived_open(txn, !self->readonly, &self->derived)) != 0 ||
        (rc = kmx_catalog_open(txn, !self->readonly, &self->catalog)) != 0)
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
    uint64_t last_seq = 0;
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
        (err = kmx_store_read_last_seq(self, txn, &last_seq)) != 0)
        goto out;
    self->last_seq = last_seq;
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
                      "was not opened",
                      dir, owner[0] ? owner : "unknown");
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
    if (pthread_mutex_init(&self->gate_mutex, NULL) != 0) {
        free(self);
        return KMX_ERR_NOMEM;
    }
    if (pthread_cond_init(&self->gate_cond, NULL) != 0) {
        pthread_mutex_destroy(&self->gate_mutex);
        free(self);
        return KMX_ERR_NOMEM;
    }
    self->gate_ready = 1;
    if (!(self->alt = kmx_store_alt_new())) {
        kmx_store_close(&self);
        return KMX_ERR_NOMEM;
    }
    if (!readonly && (err = s_lock_dir(self, dir)) != 0) {
        kmx_store_close(&self);
        return err;
    }
    size_t map_size = cfg && cfg->map_size ? cfg->map_size : KMX_STORE_MAP_DEFAULT;
    self->map_size_max = cfg ? cfg->map_size_max : 0;
    self->retain_events = cfg ? cfg->retain_events : 0;
    self->builder_nice = cfg ? cfg->builder_nice : 0;
    self->readonly = readonly;
    self->upgrade = cfg && cfg->upgrade;
    if (!readonly && (!(self->pending = kmx_derived_pending_new()) ||
                      !(self->cpend = kmx_catalog_pending_new()))) {
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
    // The builder walks for the alternatives now and then follows each commit; a read-only
    // store (check, backup, direct reads) builds them when a check first needs them.
    if (!readonly && kmx_store_alt_start(self) != 0)
        kmx_log_warn("alternatives: no builder thread; the first check builds them");
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
    kmx_store_alt_stop(self); // its read transaction ends before the environment
    if (self->env)
        mdb_env_close(self->env);
    if (self->gate_ready) {
        pthread_cond_destroy(&self->gate_cond);
        pthread_mutex_destroy(&self->gate_mutex);
    }
    if (self->lock_fd >= 0)
        close(self->lock_fd); // releases the writer's lock
    kmx_derived_pending_destroy(&self->pending);
    kmx_store_alt_destroy(&self->alt);
    kmx_catalog_pending_destroy(&self->cpend);
    free(self);
    *self_p = NULL;
}

int kmx_store_reader_check(kmx_store_t *self, int *dead) {
    int n = 0;
    int rc = self ? mdb_reader_check(self->env, &n) : EINVAL;
    if (dead)
        *dead = n;
    return rc == 0 ? 0 : kmx_store_mdb_err(rc, "reader check");
}

uint64_t kmx_store_last_seq(const kmx_store_t *self) {
    return self ? self->last_seq : 0;
}

// ---- read transactions and the map gate ------------------------------------------

static void s_gate_enter(kmx_store_t *self) {
    pthread_mutex_lock(&self->gate_mutex);
    while (self->gate_closed)
        pthread_cond_wait(&self->gate_cond, &self->gate_mutex);
    self->gate_readers++;
    pthread_mutex_unlock(&self->gate_mutex);
}

static void s_gate_leave(kmx_store_t *self) {
    pthread_mutex_lock(&self->gate_mutex);
    if (--self->gate_readers == 0 && self->gate_closed)
        pthread_cond_broadcast(&self->gate_cond);
    pthread_mutex_unlock(&self->gate_mutex);
}

int kmx_store_resize_map(kmx_store_t *self, size_t size) {
    pthread_mutex_lock(&self->gate_mutex);
    while (self->gate_closed) // another resize (a reader adopting a size) runs
        pthread_cond_wait(&self->gate_cond, &self->gate_mutex);
    self->gate_closed = 1;
    while (self->gate_readers > 0)
        pthread_cond_wait(&self->gate_cond, &self->gate_mutex);
    pthread_mutex_unlock(&self->gate_mutex);
    int rc = mdb_env_set_mapsize(self->env, size);
    pthread_mutex_lock(&self->gate_mutex);
    self->gate_closed = 0;
    pthread_cond_broadcast(&self->gate_cond);
    pthread_mutex_unlock(&self->gate_mutex);
    return rc;
}

int kmx_store_begin_read(kmx_store_t *self, MDB_txn **txn) {
    s_gate_enter(self);
    int rc = mdb_txn_begin(self->env, NULL, MDB_RDONLY, txn);
    if (rc == MDB_MAP_RESIZED) {
        // Another process grew the map; adopt its size (outside the gate) and try again.
        s_gate_leave(self);
        rc = kmx_store_resize_map(self, 0);
        if (rc == 0)
            kmx_log_info("lmdb map grown by another process adopted");
        s_gate_enter(self);
        if (rc == 0)
            rc = mdb_txn_begin(self->env, NULL, MDB_RDONLY, txn);
    }
    if (rc == 0)
        return 0;
    s_gate_leave(self);
    *txn = NULL;
    return kmx_store_mdb_err(rc, "begin read");
}

void kmx_store_end_read(kmx_store_t *self, MDB_txn *txn) {
    if (!txn)
        return;
    mdb_txn_abort(txn);
    s_gate_leave(self);
}

// ---- readers (operations statistics) ---------------------------------------------

// Counts one line of mdb_reader_list's report: each line after the header is one reader.
static int s_count_reader(const char *msg, void *ctx) {
    uint64_t *lines = ctx;
    (void)msg;
    (*lines)++;
    return 0;
}

int kmx_store_readers(kmx_store_t *self, uint64_t *active, uint64_t *max) {
    if (!self || !active || !max)
        return KMX_ERR_INVAL;
    MDB_envinfo info;
    uint64_t lines = 0;
    int rc = mdb_env_info(self->env, &info);
    if (rc == 0)
        rc = mdb_reader_list(self->env, s_count_reader, &lines) < 0 ? EINVAL : 0;
    if (rc != 0)
        return kmx_store_mdb_err(rc, "reader list");
    // The report is "(no active readers)" alone, or a header line and one line per reader.
    *active = lines > 1 ? lines - 1 : 0;
    *max = info.me_maxreaders;
    return 0;
}
