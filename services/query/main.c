/*  kmx-query - the stateless MDP worker of service "kmx.query": reads get, scan, replay and
    query requests from the broker and answers them from kmx-storage.  */
#include "kmx_query.h"
#include "kmx_worker.h"

int main(int argc, char **argv) {
    static const kmx_worker_spec_t spec = {
        .program = "kmx-query",
        .service = KMX_QUERY_SERVICE,
        .role = "query",
        .summary = "Stateless worker of service kmx.query: answers get, scan, replay and query.",
        .create = kmx_query_handler_new,
    };
    return kmx_worker_main(argc, argv, &spec);
}
