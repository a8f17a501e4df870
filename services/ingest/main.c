/*  kmx-ingest - the stateless MDP worker of service "kmx.ingest": reads put batches and raw
    documents from the broker, validates them, forwards the valid records to kmx-storage
    and answers record by record.  */
#include "kmx_ingest.h"
#include "kmx_worker.h"

static void *s_create(kmx_link_t *link, const char *worker)
{
    return kmx_ingest_new(link, worker);
}

static int s_handle(void *self, const void *body, size_t size, uint8_t **out, size_t *len)
{
    return kmx_ingest_handle(self, body, size, out, len);
}

static void s_destroy(void *self)
{
    kmx_ingest_t *ingest = self;
    kmx_ingest_destroy(&ingest);
}

int main(int argc, char **argv)
{
    static const kmx_worker_spec_t spec = {
        .program = "kmx-ingest",
        .service = KMX_INGEST_SERVICE,
        .role = "ingest",
        .summary = "Stateless worker of service kmx.ingest: validates records and stores them.",
        .create = s_create,
        .handle = s_handle,
        .destroy = s_destroy,
    };
    return kmx_worker_main(argc, argv, &spec);
}
