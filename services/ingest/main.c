/*  kmx-ingest - the stateless MDP worker of service "kmx.ingest": reads put batches and raw
    documents from the broker, validates them, forwards the valid records to kmx-storage
    and answers record by record.  */
#include "kmx_ingest.h"
#include "kmx_worker.h"

int main(int argc, char **argv) {
    static const kmx_worker_spec_t spec = {
        .program = "kmx-ingest",
        .service = KMX_INGEST_SERVICE,
        .role = "ingest",
        .summary = "Stateless worker of service kmx.ingest: validates records and stores them.",
        .create = kmx_ingest_handler_new,
    };
    return kmx_worker_main(argc, argv, &spec);
}
