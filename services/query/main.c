/*  kmx-query - the stateless MDP worker of service "kmx.query": reads get, scan, replay and
    query requests from the broker and answers them from kmx-storage, or, with --read-dir
    on storage's host and volume, from storage's LMDB environment read directly.  */
#include "kmx_direct.h"
#include "kmx_query.h"
#include "kmx_worker.h"

static int s_direct_answer(void *direct, const Kmx__V1__Request *req, uint8_t **out, size_t *len) {
    return kmx_direct_answer(direct, req, out, len);
}

static void *s_attach(kmx_link_t *link, const char *read_dir) {
    kmx_direct_t *direct = kmx_direct_new(read_dir);
    if (direct)
        kmx_link_set_local(link, s_direct_answer, direct);
    return direct;
}

static void s_detach(void *state) {
    kmx_direct_t *direct = state;
    kmx_direct_destroy(&direct);
}

int main(int argc, char **argv) {
    static const kmx_worker_spec_t spec = {
        .program = "kmx-query",
        .service = KMX_QUERY_SERVICE,
        .role = "query",
        .summary = "Stateless worker of service kmx.query: answers get, scan, replay and query.",
        .create = kmx_query_handler_new,
        .attach = s_attach,
        .detach = s_detach,
        .local = 1,
    };
    return kmx_worker_main(argc, argv, &spec);
}
