"""Retries and deadlines. One `kmx import` run, with no retry loop around it, finishes while kmx-storage
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


# How long kmx-storage takes over each scan, aggregate and query, and each write batch,
# below (its debug knobs):
# longer than a worker waits for storage when the request does not say (4 s).
SLOW_MS = 4300


class Deadline(unittest.TestCase):
    """The client's --timeout travels with the request (Request.timeout_ms): a query or a put
    slower than the worker's own 4 s wait is answered when the client waits long enough; one
    whose client waits less is answered with the error naming that time, not a retry hint;
    one whose time ran out in the broker's queue is dropped there, never worked on."""

    @classmethod
    def setUpClass(cls):
        cls.c = Cluster(ingest=1, query=1)
        cls.c.proc_env["kmx-storage"] = {"KMX_DEBUG_STORAGE_READ_DELAY_MS": str(SLOW_MS),
                                         "KMX_DEBUG_STORAGE_WRITE_DELAY_MS": str(SLOW_MS)}
        cls.c.start()
        cls.c.kmx("put", "--kind", "export", "--period", "2024", "--market", "JP",
                  "--category", "deadline_test", "--item", "slow", "--value", "3", "--unit",
                  "USD", "--source", "kmx deadline test")

    @classmethod
    def tearDownClass(cls):
        cls.c.close()

    def query(self, timeout_ms):
        return self.c.kmx("--timeout", str(timeout_ms), "--retries", "1", "query", "exports",
                          "--category", "deadline_test", "--by", "market", "--format", "json",
                          check=False)

    def put(self, timeout_ms, item):
        return self.c.kmx("--timeout", str(timeout_ms), "--retries", "1", "put", "--kind",
                          "export", "--period", "2024", "--market", "KR", "--category",
                          "deadline_put", "--item", item, "--value", "5", "--unit", "USD",
                          "--source", "kmx deadline test", check=False)

    def test_slow_put_within_timeout_short_one_told(self):
        # Storage commits each batch SLOW_MS late, past kmx-ingest's own 4 s wait: a client
        # waiting longer gets its put stored, ...
        r = self.put(3 * SLOW_MS, "slow put")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr + self.c.logs())
        got = self.c.kmx("get", "--kind", "export", "--period", "2024", "--market", "KR",
                         "--category", "deadline_put", "--item", "slow put", "--source",
                         "kmx deadline test", check=False)
        self.assertEqual(got.returncode, 0, got.stdout + got.stderr)
        # ... one waiting 1 s hears that its time ran out, from kmx.ingest, not a retry hint.
        short = self.put(1000, "short put")
        self.assertEqual(short.returncode, 2, short.stdout + short.stderr)
        self.assertIn("not answered within the request's timeout of 1000 ms (kmx.ingest",
                      short.stderr)
        self.assertNotIn("retry", short.stderr)

    def queries_worked(self):
        stats = self.c.kmx_json("stats")
        return [int(s["counters"]["queries"]) for s in stats["services"]
                if s["service"] == "kmx.query"][0]

    def test_slow_query_within_timeout_late_one_dropped_short_one_told(self):
        before = self.queries_worked()
        run = {}
        slow = threading.Thread(target=lambda: run.update(r=self.query(3 * SLOW_MS)))
        slow.start()
        busy = 0
        for _ in range(100):  # bounded: until the only query worker holds the slow query
            busy = broker_counters(self.c).get("kmx.query.workers_busy", 0)
            if busy:
                break
            time.sleep(0.05)
        self.assertEqual(busy, 1, "the slow query never reached the worker")
        # Queued behind it for longer than its client waits: the client gives up, and the
        # broker drops it when the worker comes free instead of handing it over.
        queued = self.query(1000)
        self.assertEqual(queued.returncode, 2, queued.stdout + queued.stderr)
        slow.join(60)
        r = run["r"]
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr + self.c.logs())
        self.assertEqual([(x["market"], x["sum"]) for x in json.loads(r.stdout)["rows"]],
                         [("JP", "3")], r.stdout)
        self.assertEqual(broker_counters(self.c).get("late"), 1)
        # Free worker, client waiting 1 s: the worker answers before the client gives up.
        short = self.query(1000)
        self.assertEqual(short.returncode, 2, short.stdout + short.stderr)
        self.assertIn("not answered within the request's timeout of 1000 ms", short.stderr)
        self.assertNotIn("retry", short.stderr)
        self.assertNotIn("is the broker", short.stderr)
        # The slow and the short query reached the worker; the late one did not.
        self.assertEqual(self.queries_worked() - before, 2)


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
