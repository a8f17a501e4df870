/*  kmx_answer - a query answered where the data lives. The fine rows (one per group and
    period, thousands for a year of monthly data) stay in this process: packing them,
    sending them and unpacking them in kmx-query cost more than computing them.  */
#include "kmx_answer.h"

#include "kmx_err.h"
#include "kmx_group.h"
#include "kmx_msg.h"
#include "kmx_shape.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_WHY_MAX 512 // room for a message naming the fault

// One answer's state.
typedef struct {
    kmx_shape_prep_t prep;       // the query prepared (kmx_shape_prepare, as kmx-query does)
    char why[S_WHY_MAX];         // the fault, for INVAL
    int may_fold;                // folding allowed
    uint64_t folded;             // years of months folded
    kmx_store_set_aside_t aside; // alternatives left out (prefer)
} s_answer_t;

// Fills a from the request. Returns 0, KMX_ERR_INVAL (why set) or KMX_ERR_UNSUPPORTED.
static int s_prepare(s_answer_t *a, const Kmx__V1__QueryRequest *q) {
    int err = kmx_shape_prepare(&a->prep, q, q->filter, a->why, sizeof a->why);
    if (err != 0)
        return err;
    const kmx_shape_prep_t *p = &a->prep;
    int rollup =
        kmx_group_fields_rollup(p->fields, p->n_fields) && kmx_store_filter_is_rollup(&p->filter);
    return p->need_minmax && rollup ? KMX_ERR_UNSUPPORTED : 0;
}

static int s_pack_error(const Kmx__V1__Request *req, int err, const char *msg, uint8_t **out,
                        size_t *len) {
    return kmx_msg_pack_error(req->request_id, err, msg, out, len);
}

// Shapes fine into the answer and packs it.
static int s_pack_shaped(const Kmx__V1__Request *req, s_answer_t *a,
                         const Kmx__V1__QueryResult *fine, const kmx_store_agg_info_t *info,
                         uint8_t **out, size_t *len) {
    kmx_shape_t *shape = NULL;
    int err = kmx_shape_run(&a->prep.spec, fine, &shape, a->why, sizeof a->why);
    if (err == KMX_ERR_DECODE)
        return s_pack_error(req, KMX_ERR_INTERNAL, "storage made rows that do not parse", out, len);
    if (err == KMX_ERR_TOO_BIG)
        return s_pack_error(req, err, "the answer has too many rows; group by less", out, len);
    if (err != 0)
        return s_pack_error(req, err, err == KMX_ERR_INVAL ? a->why : "out of memory", out, len);
    Kmx__V1__QueryResult result = KMX__V1__QUERY_RESULT__INIT;
    kmx_shape_result(shape, &result);
    result.has_last_seq = result.has_from_rollups = 1;
    result.last_seq = info->last_seq;
    result.from_rollups = info->from_rollups != 0;
    result.n_set_aside = a->aside.n;
    result.set_aside = a->aside.notes;
    Kmx__V1__Response resp = KMX__V1__RESPONSE__INIT;
    resp.request_id = req->request_id;
    resp.result_case = KMX__V1__RESPONSE__RESULT_QUERY;
    resp.query = &result;
    err = kmx_msg_pack_response(&resp, out, len);
    kmx_shape_destroy(&shape);
    return err;
}

// Whether a year of months may be read as one row of the year (kmx_store_rollup.c says
// when that is exact): never when the answer shows periods (by period, series, latest)
// or reads one named granularity. Fills fold when it may.
static int s_fold(const s_answer_t *a, kmx_store_fold_t *fold) {
    const kmx_shape_spec_t *spec = &a->prep.spec;
    if (spec->series || spec->latest || spec->gran_mode == KMX_SHAPE_GRAN_ONE)
        return 0;
    for (size_t i = 0; i < spec->n_fields; i++) {
        if (spec->fields[i] == KMX__V1__GROUP_FIELD__BY_PERIOD)
            return 0;
    }
    // Only whole years are asked, so every year read lies wholly inside the asked range
    // or wholly inside the growth base (a year, or the range's own length, earlier): a
    // year straddling either would count its months on one side and not the other, and
    // a base year folded beside a current year that is not would never compare equal.
    if (spec->has_range && (spec->range.start % 100 != 1 || spec->range.end % 100 != 12))
        return 0;
    memset(fold, 0, sizeof *fold);
    fold->fields = spec->fields;
    fold->n_fields = spec->n_fields;
    fold->by_period = kmx_shape_needs_period(spec);
    return 1;
}

// Alternative measurements of one quantity are never added (docs/data-model.md), whichever
// path the answer takes: without prefer a query that would add two is refused; with it
// a->aside lists those to take out of the sums again. Returns 0, 1 (refused, a->why set)
// or a negative kmx_err_t.
static int s_alternatives(kmx_store_t *store, const Kmx__V1__QueryRequest *q, s_answer_t *a) {
    if (!(q->has_prefer && q->prefer))
        return kmx_store_alternatives_check(store, &a->prep.filter, a->prep.fields,
                                            a->prep.n_fields, a->why, sizeof a->why);
    if (a->prep.need_minmax) {
        snprintf(a->why, sizeof a->why,
                 "prefer takes alternatives out of sums and counts; it takes no min or max");
        return 1;
    }
    return kmx_store_alternatives_set_aside(store, &a->prep.filter, a->prep.fields,
                                            a->prep.n_fields, &a->aside);
}

static int s_answer(kmx_store_t *store, const Kmx__V1__Request *req, s_answer_t *a, uint8_t **out,
                    size_t *len) {
    int err = s_prepare(a, req->query);
    if (err == 0 || err == KMX_ERR_UNSUPPORTED) {
        int alt = s_alternatives(store, req->query, a);
        if (alt != 0)
            return s_pack_error(req, alt == 1 ? KMX_ERR_INVAL : alt,
                                alt == 1 ? a->why : kmx_strerror(alt), out, len);
    }
    if (err == KMX_ERR_UNSUPPORTED)
        return s_pack_error(req, err, "min and max need the records; walk them", out, len);
    if (err != 0)
        return s_pack_error(req, err, a->why, out, len);
    kmx_group_t *group = kmx_group_new(a->prep.fields, a->prep.n_fields);
    if (!group)
        return s_pack_error(req, KMX_ERR_NOMEM, "out of memory", out, len);
    kmx_store_agg_info_t info = {0};
    int rollup = kmx_group_fields_rollup(a->prep.fields, a->prep.n_fields);
    kmx_store_fold_t fold;
    int folds = a->may_fold && a->aside.n == 0 && s_fold(a, &fold);
    err = kmx_store_aggregate(store, &a->prep.filter, group, rollup, folds ? &fold : NULL, &info);
    a->folded = info.folded;
    for (size_t i = 0; i < a->aside.n && err == 0; i++)
        err = kmx_group_remove(group, a->aside.records[i]);
    Kmx__V1__QueryResult fine = KMX__V1__QUERY_RESULT__INIT;
    if (err == 0)
        err = kmx_group_result(group, &fine);
    if (err == KMX_ERR_INVAL)
        err = s_pack_error(req, err, "invalid filter", out, len);
    else if (err == KMX_ERR_TOO_BIG)
        err = s_pack_error(req, err, "too many groups; narrow the filter", out, len);
    else if (err != 0)
        err = s_pack_error(req, err, kmx_strerror(err), out, len);
    else
        err = s_pack_shaped(req, a, &fine, &info, out, len);
    kmx_group_destroy(&group);
    return err;
}

int kmx_answer_query_opt(kmx_store_t *store, const Kmx__V1__Request *req, int may_fold,
                         uint64_t *folded, uint8_t **out, size_t *len) {
    if (!store || !req || !req->query || !out || !len)
        return KMX_ERR_INVAL;
    s_answer_t *a = calloc(1, sizeof *a);
    if (!a)
        return s_pack_error(req, KMX_ERR_NOMEM, "out of memory", out, len);
    a->may_fold = may_fold;
    int err = s_answer(store, req, a, out, len);
    kmx_store_set_aside_fini(&a->aside);
    if (folded)
        *folded = a->folded;
    free(a);
    return err;
}

int kmx_answer_query(kmx_store_t *store, const Kmx__V1__Request *req, uint8_t **out, size_t *len) {
    return kmx_answer_query_opt(store, req, 1, NULL, out, len);
}
