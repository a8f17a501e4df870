"""kmx-storage's documented promises (docs/storage.md) through the real binaries.

- `kmx-storage upgrade` brings a previous-schema store forward (roll-ups rebuilt from the
  records, whatever the old ones held); the service refuses such a store naming the
  command, and a store of an older schema still is refused by both, unchanged.
- SIGTERM: the batch in flight is committed and answered, so after a restart exactly the
  documents that were answered "stored" are in the store.
- Every --sync mode keeps every acknowledged record through a process crash (SIGKILL).
"""
import hashlib
import json
import os
import random
import re
import signal
import subprocess
import threading
import unittest
from decimal import Decimal

import kmxtest
from kmxtest import Cluster, query_sums_by_market, sample_facts, sample_rows, sums_by_market

SCHEMA = 5  # KMX_SCHEMA_VERSION
OLDEST = 3  # KMX_STORE_UPGRADES_FROM: the oldest schema kmx-storage upgrade takes


def storage_cmd(cluster, *args):
    return subprocess.run([os.path.join(kmxtest.BIN, "kmx-storage"), *args,
                           "--data-dir", cluster.data_dir], env=cluster.env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)


def check_clean(testcase, cluster):
    r = storage_cmd(cluster, "check")
    testcase.assertEqual(r.returncode, 0, r.stdout + r.stderr)
    n = dict((k, int(v)) for k, v in re.findall(r"(\w+)=(\d+)", r.stdout))
    testcase.assertEqual(n["event_gaps"] + n["rollup_mismatch"] + n["index_missing"]
                         + n["index_extra"], 0, r.stdout)
    return n


def mdb_put(data_dir, db, pairs):
    """Writes (key, value) byte pairs into the named database with lmdb-utils' mdb_load."""
    text = "VERSION=3\nformat=bytevalue\ntype=btree\nHEADER=END\n"
    for k, v in pairs:
        text += " %s\n %s\n" % (k.hex(), v.hex())
    text += "DATA=END\n"
    subprocess.run(["mdb_load", "-s", db, data_dir], input=text.encode(), check=True,
                   timeout=30)


def set_schema(data_dir, version):
    mdb_put(data_dir, "meta", [(b"schema_version", version.to_bytes(4, "big"))])


def digest(data_dir):
    with open(os.path.join(data_dir, "data.mdb"), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class Upgrade(unittest.TestCase):
    def setUp(self):
        self.c = Cluster().start()

    def tearDown(self):
        self.c.close()

    def test_upgrade_rebuilds_a_previous_schema_store(self):
        rows = sample_rows()
        self.c.kmx_json("import", kmxtest.SAMPLE)
        before = self.c.kmx_lines("list")
        self.assertEqual(self.c.stop("storage"), 0)
        # The previous schema's layout as far as the upgrade can tell: version 3, and
        # roll-ups it must not trust (junk in both roll-up databases).
        set_schema(self.c.data_dir, SCHEMA - 1)
        junk = [(b"junk-%d" % i, bytes([7]) * 40) for i in range(3)]
        mdb_put(self.c.data_dir, "rollups", junk)
        mdb_put(self.c.data_dir, "rollups_month", junk)
        mdb_put(self.c.data_dir, "catalog", junk)
        unchanged = digest(self.c.data_dir)

        # The service refuses it, names the command, and changes nothing.
        r = subprocess.run([os.path.join(kmxtest.BIN, "kmx-storage")], env=self.c.env,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("kmx-storage upgrade --data-dir %s" % self.c.data_dir, r.stderr)
        self.assertEqual(digest(self.c.data_dir), unchanged)

        r = storage_cmd(self.c, "upgrade")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("from schema %d to %d" % (SCHEMA - 1, SCHEMA), r.stdout)
        check_clean(self, self.c)
        self.c.spawn("storage", "kmx-storage")
        self.c.wait_ready()
        self.assertEqual(self.c.kmx_lines("list"), before)
        self.assertEqual(self.c.kmx_json("catalog")["records"], len(before))
        for kind, cmd in (("export", "exports"), ("consumption", "consumption")):
            got = query_sums_by_market(self.c.kmx_json("query", cmd, "--by", "market",
                                                       "--granularity", "any"), kind)
            self.assertEqual(got, sums_by_market(rows, kind), kind)
        # A second upgrade has nothing to do.
        self.assertEqual(self.c.stop("storage"), 0)
        r = storage_cmd(self.c, "upgrade")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.c.spawn("storage", "kmx-storage")
        self.c.wait_ready()

    def test_older_schema_is_refused_by_service_and_upgrade(self):
        self.c.kmx_json("import", kmxtest.SAMPLE)
        self.assertEqual(self.c.stop("storage"), 0)
        set_schema(self.c.data_dir, OLDEST - 1)
        unchanged = digest(self.c.data_dir)
        r = subprocess.run([os.path.join(kmxtest.BIN, "kmx-storage")], env=self.c.env,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("release that wrote it", r.stderr)
        r = storage_cmd(self.c, "upgrade")
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertIn("schema version %d" % (OLDEST - 1), r.stderr)
        self.assertEqual(digest(self.c.data_dir), unchanged)
        # Put back, the store opens as before.
        set_schema(self.c.data_dir, SCHEMA)
        self.c.spawn("storage", "kmx-storage")
        self.c.wait_ready()
        self.assertEqual(len(self.c.kmx_lines("list")), len(sample_facts()))


def document(tag, n):
    rows = "".join("export,2024,JP,sigterm,%s row %d,%d,USD,sigterm test\n" % (tag, i, i + 1)
                   for i in range(n))
    return rows.encode()


class Stop(unittest.TestCase):
    def setUp(self):
        self.c = Cluster(ingest=2)
        self.c.proc_env["kmx-storage"] = {"KMX_LOG_LEVEL": "debug"}
        self.c.start()

    def tearDown(self):
        self.c.close()

    def test_sigterm_commits_and_answers_the_batch_in_flight(self):
        rng = random.Random(kmxtest.seed())
        header = "kind,period,market,category,item,value,unit,source\n".encode()
        answers, lock = {}, threading.Lock()
        stop = threading.Event()

        def client(k):
            for j in range(200):
                if stop.is_set():
                    return
                tag = "c%d-%d" % (k, j)
                r = kmxtest.send_document(self.c, header + document(tag, 300), timeout_ms=30000)
                with lock:
                    answers[tag] = r
        threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        try:
            kmxtest.wait_for(lambda: len(answers) >= 4, 30, what="documents stored")
            threading.Event().wait(rng.uniform(0, 0.2))
            self.assertEqual(self.c.stop("storage"), 0)  # SIGTERM, exit 0
        finally:
            stop.set()
        for t in threads:
            t.join(timeout=120)
        with open(os.path.join(self.c.dir, "storage.log"), errors="replace") as f:
            log = f.read()
        stopped = int(re.findall(r"storage stopping last_seq=(\d+)", log)[-1])
        committed = [int(x) for x in re.findall(r"batch committed .*last_seq=(\d+)", log)]
        self.assertEqual(committed[-1], stopped)

        self.c.spawn("storage", "kmx-storage")
        self.c.wait_ready()
        listed = self.c.kmx_lines("list", "--category", "sigterm")
        present = {}
        for r in listed:
            tag = r["item"].split()[0]
            present[tag] = present.get(tag, 0) + 1
        stored = {t for t, a in answers.items() if a.get("stored") == 300}
        print("documents answered stored: %d, present: %d, stopped at last_seq %d" % (
            len(stored), len(present), stopped))
        # Whole documents only, and exactly those storage answered "stored".
        self.assertEqual(set(present.values()), {300})
        self.assertEqual(set(present), stored)
        self.assertEqual(len(listed), stopped)
        check_clean(self, self.c)


class SyncModes(unittest.TestCase):
    def setUp(self):
        self.c = Cluster().start()

    def tearDown(self):
        self.c.close()

    def test_every_sync_mode_keeps_acknowledged_records_through_a_crash(self):
        total = 0
        for number, mode in enumerate(("full", "nometasync", "none")):
            self.assertEqual(self.c.stop("storage"), 0)
            self.c.proc_env["kmx-storage"] = {"KMX_SYNC": mode}
            self.c.spawn("storage", "kmx-storage")
            self.c.wait_ready()
            path = os.path.join(self.c.dir, "%s.csv" % mode)
            with open(path, "w") as f:
                f.write("kind,period,market,category,item,value,unit,source\n")
                for i in range(500):
                    f.write("export,2024-%02d,JP,sync_%s,row %d,%d,USD,sync test\n" % (
                        1 + i % 12, mode, i, i))
            summary = self.c.kmx_json("import", path, "--batch", "50")
            self.assertEqual(summary["stored"], 500, summary)
            total += 500
            # A process crash right after the acknowledgements.
            storage = self.c.procs.pop("storage")
            storage.send_signal(signal.SIGKILL)
            storage.wait(timeout=10)
            with open(os.path.join(self.c.dir, "storage.log"), errors="replace") as f:
                ready = re.findall(r"storage ready .* sync=(\d+)", f.read())
            self.assertEqual(int(ready[-1]), number, mode)  # the mode was in force
            self.c.spawn("storage", "kmx-storage")
            self.c.wait_ready()
            got = self.c.kmx_json("query", "exports", "--category", "sync_%s" % mode,
                                  "--by", "market")["rows"]
            self.assertEqual([(r["market"], Decimal(r["sum"]), r["count"]) for r in got],
                             [("JP", Decimal(sum(range(500))), 500)], mode)
            self.assertEqual(len(self.c.kmx_lines("list")), total, mode)
        check_clean(self, self.c)


if __name__ == "__main__":
    kmxtest.main()
