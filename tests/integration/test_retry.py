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

    def test_put_held_by_a_killed_worker_is_answered_and_retried(self):
        """An ingest worker SIGKILLed while it holds a put: the broker sees its connection
        close and answers the client UNAVAILABLE then (not when the worker's 7.5 s expiry
        runs out), the client's retry is stored by the worker that replaces it, once."""
        worker = self.c.procs["ingest0"]
        worker.send_signal(signal.SIGSTOP)  # it takes the put and cannot touch it
        try:
            put = subprocess.Popen(
                [os.path.join(kmxtest.BIN, "kmx"), "put", "--kind", "export", "--period",
                 "2024-01", "--market", "KR", "--category", "retry_test", "--item", "held",
                 "--value", "7", "--unit", "USD", "--source", "kmx retry test", "--format",
                 "json", "--timeout", "30000", "--deadline", "60000"],
                env=self.c.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            busy = 0
            for _ in range(100):  # bounded: until the broker has handed the put over
                busy = broker_counters(self.c).get("kmx.ingest.workers_busy", 0)
                if busy:
                    break
                time.sleep(0.05)
            self.assertEqual(busy, 1, "the put never reached the stopped worker")
        finally:
            killed = time.monotonic()
            self.c.stop("ingest0", signal.SIGKILL)
        self.c.spawn("ingest0", "kmx-ingest")
        out, err = put.communicate(timeout=90)
        answered = time.monotonic() - killed
        self.assertEqual(put.returncode, 0, out + err + self.c.logs())
        self.assertEqual(json.loads(out)["outcome"], "stored", out)
        b = broker_counters(self.c)
        # Dropped for its closed connection, not expired for its silence.
        self.assertEqual(b.get("workers_disconnected"), 1, b)
        self.assertEqual(b.get("workers_expired"), 0, b)
        rows = self.c.kmx_lines("list", "exports", "--category", "retry_test")
        self.assertEqual([(r["item"], r["value"]) for r in rows], [("held", "7")], rows)
        st = storage_stats(self.c)
        self.assertEqual((int(st["records"]), int(st["events"])), (1, 1), st)
        print("put held by a killed worker: stored %.2f s after the kill (worker expiry 7.5 s)"
              % answered)


def broker_counters(cluster):
    """kmx.broker's counters, asked directly over MDP (`kmx stats` would also ask the ingest
    worker, which may be stopped)."""
    import zmq
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(cluster.env["KMX_BROKER"])
        sock.send_multipart([b"", b"MDPC01", b"kmx.broker", kmxtest._field(16, 2, b"")])
        if not sock.poll(10000):
            raise AssertionError("kmx.broker did not answer stats")
        counters = {}
        for number, stats in kmxtest._fields(sock.recv_multipart()[-1]):
            for n, counter in kmxtest._fields(stats) if number == 16 else ():
                if n == 3:
                    c = dict(kmxtest._fields(counter))
                    counters[c[1].decode()] = c.get(2, 0)
        return counters
    finally:
        sock.close()
        ctx.term()


if __name__ == "__main__":
    kmxtest.main()
