/*  kmx_store_catalog - the reads kmx_catalog answers: what the store holds, whether the
    values a filter names exist, and one figure's history. Each runs in its own read
    transaction, like every read of the store (safe from any thread).  */
#include "kmx_store.h"

#include "kmx_catalog.h"
#include "kmx_err.h"
#include "kmx_store_int.h"

#include <stdlib.h>
#include <string.h>

int kmx_store_catalog(kmx_store_t *self, Kmx__V1__Kind kind, Kmx__V1__CatalogResult **out) {
    if (!self || !out)
        return KMX_ERR_INVAL;
    *out = NULL;
    MDB_txn *txn = NULL;
    int err = kmx_store_begin_read(self, &txn);
    if (err != 0)
        return err;
    uint64_t last_seq = 0;
    err = kmx_store_read_last_seq(self, txn, &last_seq);
    if (err == 0)
        err = kmx_catalog_read(txn, &self->catalog, kind, out);
    kmx_store_end_read(self, txn);
    if (err == 0) {
        (*out)->has_last_seq = 1;
        (*out)->last_seq = last_seq;
    }
    return err;
}

int kmx_store_filter_exists(kmx_store_t *self, const Kmx__V1__Filter *filter, char *why,
                            size_t why_size) {
    if (!self || !why || why_size == 0)
        return KMX_ERR_INVAL;
    if (!filter)
        return 0;
    MDB_txn *txn = NULL;
    int err = kmx_store_begin_read(self, &txn);
    if (err != 0)
        return err;
    err = kmx_catalog_check(txn, &self->catalog, filter, why, why_size);
    kmx_store_end_read(self, txn);
    return err;
}

void kmx_store_history_fini(kmx_store_history_t *h) {
    if (!h)
        return;
    for (size_t i = 0; i < h->n; i++)
        kmx__v1__update_event__free_unpacked(h->events[i], NULL);
    free(h->events);
    memset(h, 0, sizeof *h);
}

int kmx_store_history(kmx_store_t *self, const Kmx__V1__Record *key, kmx_store_history_t *out) {
    if (!self || !key || !out)
        return KMX_ERR_INVAL;
    memset(out, 0, sizeof *out);
    uint8_t kbuf[KMX_RKEY_MAX];
    size_t klen = 0;
    if (kmx_rkey_record(key, kbuf, sizeof kbuf, &klen) != 0)
        return KMX_ERR_INVAL;
    MDB_txn *txn = NULL;
    int err = kmx_store_begin_read(self, &txn);
    if (err != 0)
        return err;
    MDB_val rkey = {klen, kbuf};
    err = kmx_store_read_last_seq(self, txn, &out->last_seq);
    if (err == 0)
        err = kmx_catalog_history_read(txn, &self->catalog, self->events, &rkey, &out->events,
                                       &out->n);
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    if (err == 0 && mdb_cursor_open(txn, self->events, &cur) == 0) {
        if (mdb_cursor_get(cur, &k, &v, MDB_FIRST) == 0 && k.mv_size == 8)
            out->first_seq = kmx_store_get_be(k.mv_data, 8);
        mdb_cursor_close(cur);
    }
    kmx_store_end_read(self, txn);
    return err;
}
