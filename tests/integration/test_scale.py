"""Two ingest and two query workers: requests reach all of them.

The broker dispatches least-recently-used per service, so a run of requests alternates
between idle workers. Each worker's own counters (documents stored by an ingest worker,
queries answered by a query worker) show it did real work: the broker's per-worker
`requests` would not, since the readiness wait already sends every worker ping and stats.
"""
import unittest

import kmxtest
from kmxtest import Cluster, query_sums_by_market, sample_rows, sums_by_market


class Scale(unittest.TestCase):
    def setUp(self):
        self.c = Cluster(ingest=2, query=2).start()

    def tearDown(self):
        self.c.close()

    def worker_counters(self, service, n):
        """{worker: counters} of the n workers of service. `kmx stats` asks one worker per
        call; LRU dispatch makes successive calls reach the others (bounded tries)."""
        seen = {}
        for _ in range(10 * n):
            known = len(seen)
            for s in self.c.kmx_json("stats")["services"]:
                if s["service"] == service:
                    seen[s["worker"]] = {k: int(v) for k, v in s["counters"].items()}
            if len(seen) == n:
                return seen
            if len(seen) == known:
                # stats may cost that service more than one request (kmx.query also
                # fetches storage's counters): a ping moves the LRU turn on by one.
                self.c.kmx("ping", service)
        raise AssertionError("stats reached only %s of %d %s workers" % (sorted(seen), n,
                                                                          service))

    def test_requests_reach_every_worker(self):
        rows = sample_rows()
        # Ten documents of eight rows each: ten ingest requests.
        summary = self.c.kmx_json("import", kmxtest.SAMPLE, "--batch", "8", "--jobs", "1")
        self.assertEqual(summary["stored"], len(rows))
        for _ in range(6):
            got = query_sums_by_market(self.c.kmx_json("query", "exports", "--by", "market",
                                                        "--granularity", "any"), "export")
            self.assertEqual(got, sums_by_market(rows, "export"))

        ingest = self.worker_counters("kmx.ingest", 2)
        docs = {w: c["documents"] for w, c in ingest.items()}
        self.assertTrue(all(n > 0 for n in docs.values()), ingest)
        self.assertEqual(sum(docs.values()), (len(rows) + 7) // 8, ingest)
        self.assertEqual(sum(c["records_stored"] for c in ingest.values()), len(rows), ingest)
        query = self.worker_counters("kmx.query", 2)
        queries = {w: c["queries"] for w, c in query.items()}
        self.assertTrue(all(n > 0 for n in queries.values()), query)
        self.assertEqual(sum(queries.values()), 6, query)


if __name__ == "__main__":
    kmxtest.main()
