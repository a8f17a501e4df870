/*  A libkmx client: pings kmx.query, sums 2024's exports by market, and looks up a record
    that does not exist. Build it against an installed kmx:

        cc kmx_example.c $(pkg-config --cflags --libs kmx) -o kmx_example
        ./kmx_example tcp://127.0.0.1:5555

    The period is sent as text (Period.text): kmx.query reads it with the parser of the
    kmx CLI, so "2024", "2025-H1" or "H1 2025" mean here what they mean there.  */
#include <kmx_client.h>

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    const char *broker = argc > 1 ? argv[1] : getenv("KMX_BROKER");
    const char *period = argc > 2 ? argv[2] : "2024";
    kmx_client_t *client = kmx_client_new(broker ? broker : "tcp://127.0.0.1:5555", 5000, 3);
    if (!client) {
        fprintf(stderr, "kmx_example: cannot set up a client\n");
        return 2;
    }
    Kmx__V1__Response *resp = NULL;
    int rc = kmx_client_ping(client, KMX_SERVICE_QUERY, &resp);
    if (rc != 0) {
        fprintf(stderr, "kmx_example: ping: %s\n", kmx_client_last_error(client));
        kmx_client_destroy(&client);
        return 2;
    }
    printf("pong from %s (kmx %s)\n", resp->pong->worker, resp->pong->version);
    kmx__v1__response__free_unpacked(resp, NULL);

    // kmx query exports --period 2024 --by market
    Kmx__V1__Period when = KMX__V1__PERIOD__INIT;
    when.text = (char *)period;
    Kmx__V1__Filter filter = KMX__V1__FILTER__INIT;
    filter.has_kind = 1;
    filter.kind = KMX__V1__KIND__EXPORT;
    filter.period = &when;
    Kmx__V1__GroupField by[] = {KMX__V1__GROUP_FIELD__BY_MARKET};
    Kmx__V1__QueryRequest query = KMX__V1__QUERY_REQUEST__INIT;
    query.filter = &filter;
    query.n_group_by = 1;
    query.group_by = by;
    rc = kmx_client_query(client, &query, &resp);
    if (rc != 0) {
        fprintf(stderr, "kmx_example: query: %s\n", kmx_client_last_error(client));
        if (resp)
            kmx__v1__response__free_unpacked(resp, NULL);
        kmx_client_destroy(&client);
        return rc == KMX_ERR_INVAL ? 1 : 2;
    }
    // Rows carry the keys of QueryResult.group_by: the market, then the category the
    // service added (different statistics are never summed together). A unit that does
    // not add up (a percentage) carries its average instead of a sum.
    const Kmx__V1__QueryResult *res = resp->query;
    for (size_t i = 0; i < res->n_rows; i++) {
        const Kmx__V1__Row *row = res->rows[i];
        printf("%s\t%s\t%s\t%s\n", row->n_keys > 0 ? row->keys[0] : "",
               row->n_keys > 1 ? row->keys[1] : "", row->unit, row->sum ? row->sum : row->avg);
    }
    printf("%zu rows, %llu records\n", res->n_rows, (unsigned long long)res->matched);
    kmx__v1__response__free_unpacked(resp, NULL);

    // A key that names no record: the call returns KMX_ERR_NOT_FOUND (kmx_err.h).
    Kmx__V1__Record key = KMX__V1__RECORD__INIT;
    Kmx__V1__Period p = KMX__V1__PERIOD__INIT;
    p.text = "1901";
    key.has_kind = 1;
    key.kind = KMX__V1__KIND__EXPORT;
    key.period = &p;
    key.market = "Japan";
    key.category = "physical_album_customs";
    key.item = "no such series";
    key.source = "nobody";
    rc = kmx_client_get(client, &key, &resp);
    printf("get: %s (%s)\n", rc == KMX_ERR_NOT_FOUND ? "not found" : "unexpected",
           kmx_strerror(rc));
    if (resp)
        kmx__v1__response__free_unpacked(resp, NULL);
    kmx_client_destroy(&client);
    return rc == KMX_ERR_NOT_FOUND ? 0 : 2;
}
