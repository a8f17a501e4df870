"""Two ingest and two query workers: requests reach all of them.

The broker dispatches least-recently-used per service, so a run of requests alternates
between idle workers; `kmx stats` reports every worker with the requests it served.
"""
import unittest

import kmxtest
from kmxtest import Cluster, query_sums_by_market, sample_rows, sums_by_market


class Scale(unittest.TestCase):
    def setUp(self):
        self.c = Cluster(ingest=2, query=2).start()

    def tearDown(self):
        self.c.close()

    def test_requests_reach_every_worker(self):
        rows = sample_rows()
        # Ten batches of eight rows each: ten ingest requests.
        summary = self.c.kmx_json("import", kmxtest.SAMPLE, "--batch", "8")
        self.assertEqual(summary["stored"], len(rows))
        for _ in range(6):
            got = query_sums_by_market(self.c.kmx_json("query", "exports", "--by", "market",
                                                        "--granularity", "any"), "export")
            self.assertEqual(got, sums_by_market(rows, "export"))

        stats = self.c.kmx_json("stats")
        workers = [w for w in stats["workers"] if w.get("alive", True)]
        by_service = {}
        for w in workers:
            by_service.setdefault(w["service"], []).append(w)
        for service in ("kmx.ingest", "kmx.query"):
            served = [w for w in by_service.get(service, []) if int(w["requests"]) > 0]
            self.assertEqual(len(served), 2, (service, stats))
        total_ingest = sum(int(w["requests"]) for w in by_service["kmx.ingest"])
        self.assertGreaterEqual(total_ingest, 10)


if __name__ == "__main__":
    kmxtest.main()
