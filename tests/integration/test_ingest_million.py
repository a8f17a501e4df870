"""A 1,000,000-row CSV through the full service set (kmx import -> broker -> two ingest
workers -> storage): the stored count and the totals per unit equal those computed from
the file itself, with exact decimals.
"""
import os
import subprocess
import sys
import tempfile
import time
import unittest
from decimal import Decimal

import kmxtest
from kmxtest import Cluster, normalize_unit

ROWS = int(os.environ.get("KMX_MILLION_ROWS", "1000000"))
GEN = os.path.join(kmxtest.SOURCE_DIR, "bench", "ingest", "gen.py")


def totals_from_file(path):
    """{unit: (count, Decimal sum)} read from the CSV, independently of kmx."""
    out = {}
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split(",")
        vi, ui = header.index("value"), header.index("unit")
        for line in f:
            cells = line.rstrip("\n").split(",")
            unit, value = normalize_unit(cells[ui], cells[vi])
            n, s = out.get(unit, (0, Decimal(0)))
            out[unit] = (n + 1, s + value)
    return out


class Million(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="kmx-million-")
        self.path = os.path.join(self.tmp, "rows.csv")
        subprocess.run([sys.executable, GEN, str(ROWS), "--out", self.path], check=True)
        self.c = Cluster(ingest=2, log_level="warn").start()

    def tearDown(self):
        try:
            self.c.close()  # every service must exit 0
        finally:
            os.unlink(self.path)
            os.rmdir(self.tmp)

    def test_million_rows_stored_with_exact_totals(self):
        t0 = time.time()
        # Long tries: on a busy machine (more so under a sanitizer) a chunk can wait in the
        # broker's queue behind the workers' current ones longer than the usual 5 s, and
        # each retry adds work for the same busy workers.
        summary = self.c.kmx_json("--timeout", "30000", "--deadline", "300000", "import",
                                  self.path, timeout=1500)
        took = time.time() - t0
        print("imported %d rows in %.1f s (%.0f rows/s)" % (ROWS, took, ROWS / took))
        self.assertEqual(summary["rows"], ROWS, summary)
        # Every row is new; a chunk retried after a timeout (a busy machine) comes back
        # unchanged: its first try was committed.
        self.assertEqual(summary["stored"] + summary["unchanged"], ROWS, summary)
        if not summary["retries"]:
            self.assertEqual(summary["stored"], ROWS, summary)
        self.assertEqual(summary["rejected"], 0, summary)

        want = totals_from_file(self.path)
        # Under a sanitizer a busy machine can make the broker drop a silent query worker
        # for a moment; it registers again, so wait for it as at start-up.
        self.c.wait_ready(deadline=60)
        # A query over a million records takes seconds (more under a sanitizer): one long
        # try instead of several short ones.
        answer = self.c.kmx_json("query", "exports", "--by", "unit", "--timeout", "300000",
                                 "--retries", "1", timeout=600)
        got = {}
        for r in answer["rows"]:  # one row per unit and category: categories never add up
            n, s = got.get(r["unit"], (0, Decimal(0)))
            got[r["unit"]] = (n + int(r["count"]), s + Decimal(r["sum"]))
        self.assertEqual(got, want)
        self.assertEqual(sum(n for n, _ in got.values()), ROWS)


if __name__ == "__main__":
    kmxtest.main()
