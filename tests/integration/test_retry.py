"""Retries: one `kmx import` run, with no retry loop around it, finishes while kmx-storage
is down at its start and killed again in its middle. libkmx retries UNAVAILABLE answers
and timeouts with backoff inside the import's deadline; writes are upserts, so a chunk
tried twice is stored once. The import's own report, storage's record count and the
offline verifier all agree on exactly the rows of the file.
"""
import json
import os
import re
import signal
import subprocess
import threading
import time
import unittest

import kmxtest
from kmxtest import Cluster

ROWS = 20000


def write_csv(path):
    with open(path, "w", encoding="utf-8") as f:
        f.write("kind,period,market,category_or_dimension,item,value,unit,source\n")
        for i in range(ROWS):
            f.write("export,%d-%02d,JP,retry_test,row %d,%d.5,USD,kmx retry test\n" % (
                2000 + i % 20, 1 + i % 12, i, i))


def storage_stats(cluster):
    stats = cluster.kmx_json("stats")
    for s in stats["services"]:
        if s["service"] == "kmx.storage":
            return s["counters"]
    raise AssertionError("no kmx.storage in kmx stats: %s" % stats)


class Retry(unittest.TestCase):
    def setUp(self):
        self.c = Cluster().start()

    def tearDown(self):
        self.c.close()

    def test_import_outlives_storage_restarts_with_exact_counts(self):
        path = os.path.join(self.c.dir, "rows.csv")
        write_csv(path)
        self.c.stop("storage", signal.SIGKILL)
        run = {}

        def importer():
            run["r"] = self.c.kmx("import", path, "--batch", "100", "--jobs", "2",
                                  "--deadline", "60000", "--format", "json", check=False,
                                  timeout=180)
        t = threading.Thread(target=importer)
        t.start()
        # Down longer than a worker waits for storage: the worker answers UNAVAILABLE.
        time.sleep(5.0)
        self.c.spawn("storage", "kmx-storage")
        time.sleep(0.4)
        self.c.stop("storage", signal.SIGKILL)
        time.sleep(1.0)
        self.c.spawn("storage", "kmx-storage")
        t.join(200)
        r = run["r"]
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr + self.c.logs())
        report = json.loads(r.stdout)
        self.assertEqual(report["rows"], ROWS)
        self.assertEqual(report["rejected"], 0)
        self.assertEqual(report["stored"] + report["unchanged"], ROWS, report)
        self.assertGreater(report["retries"], 0, "storage was down, yet nothing was retried")
        self.assertEqual(int(storage_stats(self.c)["records"]), ROWS)
        self.c.stop("storage")
        chk = subprocess.run([os.path.join(kmxtest.BIN, "kmx-storage"), "check", "--data-dir",
                              self.c.data_dir], env=self.c.env, capture_output=True, text=True,
                             timeout=120)
        self.assertEqual(chk.returncode, 0, chk.stdout + chk.stderr)
        counters = dict((k, int(v)) for k, v in re.findall(r"(\w+)=(\d+)", chk.stdout))
        self.assertEqual(counters.get("records"), ROWS, chk.stdout)
        print("import: %d rows, %d stored, %d unchanged, %d retries" % (
            ROWS, report["stored"], report["unchanged"], report["retries"]))


if __name__ == "__main__":
    kmxtest.main()
