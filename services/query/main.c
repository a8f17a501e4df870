/*  kmx-query - the stateless MDP worker of service "kmx.query": reads get, scan, replay and
    query requests from the broker and answers them from kmx-storage.  */
#include "kmx_query.h"
#include "kmx_worker.h"

static void *s_create(kmx_link_t *link, const char *worker)
{
    return kmx_query_new(link, worker);
}

static int s_handle(void *self, const void *body, size_t size, uint8_t **out, size_t *len)
{
    return kmx_query_handle(self, body, size, out, len);
}

static void s_destroy(void *self)
{
    kmx_query_t *query = self;
    kmx_query_destroy(&query);
}

int main(int argc, char **argv)
{
    static const kmx_worker_spec_t spec = {
        .program = "kmx-query",
        .service = KMX_QUERY_SERVICE,
        .role = "query",
        .summary = "Stateless worker of service kmx.query: answers get, scan, replay and query.",
        .create = s_create,
        .handle = s_handle,
        .destroy = s_destroy,
    };
    return kmx_worker_main(argc, argv, &spec);
}
