"""Crash safety: storage killed with SIGKILL while clients import concurrently.

Four `kmx import` clients write through broker and ingest while the test kills
kmx-storage at a random moment and restarts it; each client retries its file until
the import succeeds (records already stored come back UNCHANGED). Afterwards every
record is present exactly once, the offline verifier (`kmx-storage check`) finds the
event log gap-free and roll-ups and indexes equal to what the records imply, and each
stored record took exactly one sequence number.
"""
import json
import os
import random
import re
import signal
import subprocess
import threading
import time
import unittest
from decimal import Decimal

import kmxtest
from kmxtest import Cluster

CLIENTS = 4
ROWS = 3000
MARKETS = ["JP", "US", "CN", "TW", "WORLD"]


def write_csv(path, client):
    with open(path, "w", encoding="utf-8") as f:
        f.write("kind,period,market,category_or_dimension,item,value,unit,source\n")
        for i in range(ROWS):
            f.write("export,%d-%02d,%s,crash_test,client %d row %d,%d.%02d,USD,kmx crash test\n" % (
                2015 + i % 10, 1 + i % 12, MARKETS[i % len(MARKETS)], client, i, i, client))


def expected_sums():
    """{market: Decimal sum} of every client's file, from the same arithmetic write_csv
    uses: what the roll-ups must answer once every record is stored exactly once."""
    out = {}
    for client in range(CLIENTS):
        for i in range(ROWS):
            m = MARKETS[i % len(MARKETS)]
            out[m] = out.get(m, Decimal(0)) + Decimal("%d.%02d" % (i, client))
    return out


def storage_check(cluster):
    """Runs the offline verifier against the live data directory; returns its counters."""
    r = subprocess.run([os.path.join(kmxtest.BIN, "kmx-storage"), "check", "--data-dir",
                        cluster.data_dir], env=cluster.env, capture_output=True, text=True,
                       timeout=120)
    counters = dict((k, int(v)) for k, v in re.findall(r"(\w+)=(\d+)", r.stdout))
    return r.returncode, counters, r.stdout + r.stderr


class StorageCrash(unittest.TestCase):
    def setUp(self):
        self.c = Cluster(ingest=2).start()

    def tearDown(self):
        self.c.close()

    def import_until_done(self, path, out, attempts):
        for attempt in range(60):
            r = self.c.kmx("import", path, "--batch", "10", "--format", "json", check=False,
                           timeout=120)
            attempts.append(attempt)
            if r.returncode == 0:
                out.append(json.loads(r.stdout))
                return
            time.sleep(0.3)

    def test_sigkill_during_concurrent_imports(self):
        rng = random.Random(kmxtest.seed())
        files = []
        for i in range(CLIENTS):
            path = os.path.join(self.c.dir, "client%d.csv" % i)
            write_csv(path, i)
            files.append(path)
        done, attempts = [[] for _ in files], [[] for _ in files]
        threads = [threading.Thread(target=self.import_until_done, args=(p, d, a))
                   for p, d, a in zip(files, done, attempts)]
        for t in threads:
            t.start()
        # Kill at a random moment once records are flowing (bounded wait).
        end = time.time() + 60
        while time.time() < end and storage_check(self.c)[1].get("records", 0) == 0:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.3))
        storage = self.c.procs["storage"]
        storage.send_signal(signal.SIGKILL)
        storage.wait(timeout=10)
        time.sleep(rng.uniform(0.1, 1.0))
        self.c.spawn("storage", "kmx-storage")

        def reopened():
            with open(os.path.join(self.c.dir, "storage.log"), errors="replace") as f:
                found = re.findall(r"store open .*last_seq=(\d+)", f.read())
            return found if len(found) >= 2 else None
        opened = kmxtest.wait_for(reopened, 30, what="storage to reopen its store")
        print("storage killed at last_seq", opened[-1] if opened else "?", "of", CLIENTS * ROWS)
        for t in threads:
            t.join(timeout=280)
        self.assertTrue(all(len(d) == 1 for d in done), (attempts, self.c.logs()))
        print("import attempts per client:", [len(a) for a in attempts])

        total = CLIENTS * ROWS
        listed = self.c.kmx_lines("list")
        keys = [(r.get("period"), r.get("market"), r.get("item")) for r in listed]
        self.assertEqual(len(keys), total)
        self.assertEqual(len(set(keys)), total)  # each record exactly once

        rc, n, text = storage_check(self.c)
        self.assertEqual(rc, 0, text)
        self.assertEqual(n["records"], total, text)
        # Each record was stored once (retries were UNCHANGED): one sequence number each,
        # and the log holds every one of them without a gap.
        self.assertEqual(n["last_seq"], total, text)
        self.assertEqual(n["events"], total, text)
        self.assertEqual(n["event_gaps"] + n["rollup_mismatch"] + n["index_missing"]
                         + n["index_extra"], 0, text)

        # Storage's roll-up answer equals what the records say, as the query service sees
        # it: the sums per market of every client's rows, computed here from the files.
        answer = self.c.kmx_json("query", "exports", "--by", "market", "--granularity", "any")
        got = {r["market"]: Decimal(r["sum"]) for r in answer["rows"]}
        self.assertEqual(got, expected_sums())
        self.assertEqual(sum(r["count"] for r in answer["rows"]), total)


if __name__ == "__main__":
    kmxtest.main()
