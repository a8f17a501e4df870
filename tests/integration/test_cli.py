"""The kmx CLI's documented behaviour (docs/cli.md) against the real services.

--help and --version of every command and every service; ping and stats when the broker
does not answer; exit status 2 for UNAVAILABLE, INTERNAL and STORAGE_FULL (a storage whose
files may not grow past a size limit); `list --format csv` read back by `import -` from
stdin; --jobs requests in flight; watch's table and CSV output and SIGINT; --growth pop
and --granularity range with the expected values worked out here.
"""
import csv
import io
import json
import os
import re
import resource
import signal
import socket
import subprocess
import threading
import time
import unittest
from decimal import ROUND_HALF_UP, Decimal

import kmxtest
from kmxtest import Cluster, FakeWorker, _field, _fields

BARE_ENV = {k: v for k, v in os.environ.items() if not k.startswith("KMX_")}
SERVICES = ("kmx-broker", "kmx-storage", "kmx-ingest", "kmx-query")
# Error codes of proto/kmx.proto's ErrorCode.
INTERNAL, UNAVAILABLE, STORAGE_FULL = 4, 3, 8


def pct(num, den):
    return (num * 100 / den).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def binary(name):
    return os.path.join(kmxtest.BIN, name)


class HelpAndVersion(unittest.TestCase):
    """Every command and service answers --help and --version: exit 0, text on stdout,
    nothing on stderr, stdin from /dev/null, no service needed."""

    def commands(self):
        text = kmxtest.service_help_ok(self, [binary("kmx"), "--help"], BARE_ENV)
        block = text.split("commands:\n", 1)[1].split("\n\n", 1)[0]
        names = [line.split()[0] for line in block.splitlines() if line.strip()]
        self.assertGreaterEqual(len(names), 10, text)
        return names + ["dump"]  # list's alias

    def test_every_command_help(self):
        for cmd in self.commands():
            out = kmxtest.service_help_ok(self, [binary("kmx"), cmd, "--help"], BARE_ENV)
            self.assertTrue(out.startswith("usage: kmx "), (cmd, out))
        version = kmxtest.service_help_ok(self, [binary("kmx"), "--version"], BARE_ENV)
        self.assertRegex(version, r"^kmx \S+\n$")

    def test_every_service_help_and_version(self):
        want = kmxtest.service_help_ok(self, [binary("kmx"), "--version"], BARE_ENV).split()[1]
        for name in SERVICES:
            out = kmxtest.service_help_ok(self, [binary(name), "--help"], BARE_ENV)
            self.assertTrue(out.startswith("usage: %s" % name), (name, out))
            out = kmxtest.service_help_ok(self, [binary(name), "--version"], BARE_ENV)
            self.assertEqual(out, "%s %s\n" % (name, want))
        for sub in ("check", "backup", "upgrade"):
            out = kmxtest.service_help_ok(self, [binary("kmx-storage"), sub, "--help"],
                                          BARE_ENV)
            self.assertIn("kmx-storage %s" % sub, out)


class NoBroker(unittest.TestCase):
    """ping and stats against an endpoint where no broker answers."""

    def run_kmx(self, *args):
        with socket.socket() as s:  # a port nothing listens on
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = dict(BARE_ENV, KMX_BROKER="tcp://127.0.0.1:%d" % port)
        return subprocess.run([binary("kmx"), "--timeout", "300", "--retries", "2", *args],
                              env=env, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=30)

    def test_ping_and_stats_report_the_broker_and_exit_2(self):
        for cmd in ("ping", "stats"):
            r = self.run_kmx(cmd)
            self.assertEqual(r.returncode, 2, (cmd, r.stdout, r.stderr))
            self.assertEqual(r.stdout, "", cmd)
            lines = r.stderr.splitlines()
            self.assertTrue(all(line.startswith("kmx: ") for line in lines), r.stderr)
            self.assertRegex(r.stderr, r"kmx: kmx\.broker: no reply", cmd)
            # The broker timed out: the services behind it are not asked.
            for svc in ("kmx.ingest", "kmx.query"):
                self.assertIn("kmx: %s: not asked: the broker did not answer" % svc,
                              r.stderr, cmd)
        r = self.run_kmx("ping", "kmx.query")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("kmx: kmx.query: no reply", r.stderr)
        # JSON: still one document, every service in it, the skipped ones said so.
        r = self.run_kmx("ping", "--format", "json")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertEqual(r.stdout.count("\n"), 1, r.stdout)
        doc = json.loads(r.stdout)
        self.assertEqual([s["service"] for s in doc["services"]],
                         ["kmx.broker", "kmx.ingest", "kmx.query"])
        self.assertFalse(doc["ok"])
        first, *skipped = doc["services"]
        self.assertIn("no reply", first["error"])
        self.assertIsInstance(first["ms"], float)
        for s in skipped:
            self.assertEqual(s, {"service": s["service"], "ok": False, "worker": None,
                                 "version": None, "ms": None,
                                 "error": "not asked: the broker did not answer"})


class ServerErrors(unittest.TestCase):
    """Exit 2 for the server-side errors docs/cli.md lists."""

    def tearDown(self):
        self.c.close()

    def test_unavailable_and_internal_exit_2(self):
        # No query worker: the broker answers UNAVAILABLE after its request deadline.
        self.c = Cluster(ingest=1, query=0).start()
        r = self.c.kmx("query", "exports", "--by", "market", "--retries", "1", check=False)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("no worker for service 'kmx.query'", r.stderr)
        # A worker that answers INTERNAL (a real MDP peer that fails every request).
        fake = FakeWorker(self.c.env["KMX_BROKER"], "kmx.query", lambda body:
                          kmxtest.encode_error_response(INTERNAL, "disk on fire",
                                                        kmxtest.request_id_of(body)))
        try:
            kmxtest.wait_for(lambda: self.c.kmx("ping", "kmx.query", check=False)
                             .returncode == 2 and fake.requests > 0, 20,
                             what="the fake worker to be asked")
            r = self.c.kmx("query", "exports", "--by", "market", check=False)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn("disk on fire", r.stderr)
            self.assertTrue(r.stderr.startswith("kmx: "), r.stderr)
        finally:
            fake.stop()

    def test_storage_full_exits_2_and_keeps_what_was_stored(self):
        # Storage restarted with a file size limit (RLIMIT_FSIZE) 1000 bytes past the end
        # of its data file: the first write that appends pages crosses it and comes back
        # short, which LMDB reports as EIO, as on a disk that fills up in the middle of a
        # write. kmx-storage ignores SIGXFSZ by itself and names the limit and the fix.
        self.c = Cluster().start()
        self.c.kmx_json("import", kmxtest.SAMPLE)
        before = self.c.kmx_lines("list")
        self.assertEqual(self.c.stop("storage"), 0)
        data_file = os.path.join(self.c.data_dir, "data.mdb")
        limit = os.path.getsize(data_file) + 1000

        def small_file_limit():
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        self.c.proc_kw["kmx-storage"] = {"preexec_fn": small_file_limit}
        self.c.spawn("storage", "kmx-storage")
        self.c.wait_ready()
        path = os.path.join(self.c.dir, "big.csv")
        with open(path, "w") as f:
            f.write("kind,period,market,category,item,value,unit,source,note\n")
            for i in range(2000):
                f.write("export,2030,JP,fill,row %d,%d,USD,full test,%s\n" % (i, i, "x" * 200))
        r = self.c.kmx("import", path, "--format", "json", check=False, timeout=120)
        self.assertEqual(r.returncode, 2, (r.stdout, r.stderr))
        self.assertTrue(r.stderr.startswith("kmx: "), r.stderr)
        for part in ("kmx-storage could not write", data_file, "file size limit",
                     "raise the limit", "nothing from this request was stored"):
            self.assertIn(part, r.stderr)
        # What was stored is untouched, and storage still answers.
        self.assertEqual(self.c.kmx_lines("list"), before)
        # The code on the wire is STORAGE_FULL (the CLI prints only the message).
        with open(path, "rb") as f:
            reply = kmxtest.send_document(self.c, f.read())
        self.assertEqual(reply.get("error_code"), STORAGE_FULL, (reply, self.c.logs()))


class RoundTrips(unittest.TestCase):
    def setUp(self):
        self.c = Cluster(ingest=2).start()

    def tearDown(self):
        self.c.close()

    def test_list_csv_imports_back_from_stdin(self):
        self.c.kmx_json("import", kmxtest.SAMPLE)
        dumped = self.c.kmx("list", "--format", "csv").stdout
        want = self.c.kmx_lines("list")
        other = Cluster().start()
        try:
            summary = json.loads(other.kmx("import", "-", "--format", "json",
                                           input=dumped).stdout)
            self.assertEqual((summary["stored"], summary["rejected"]), (len(want), 0), summary)
            got = other.kmx_lines("list")
        finally:
            other.close()
        strip = lambda recs: [{k: v for k, v in r.items() if k not in ("seq", "updated_ms")}
                              for r in recs]
        self.assertEqual(strip(got), strip(want))

    def test_jobs_bounds_requests_in_flight(self):
        # Four ingest workers that hold each request 0.3 s: with --jobs J at most J are
        # ever busy at once, and J are when there is enough work.
        path = os.path.join(self.c.dir, "jobs.csv")
        with open(path, "w") as f:
            f.write("kind,period,market,category,item,value,unit,source\n")
            for i in range(24):
                f.write("export,2024,JP,jobs,row %d,1,USD,jobs test\n" % i)
        for name in list(self.c.procs):
            if name.startswith("ingest"):
                self.c.stop(name)
        state = {"now": 0, "max": 0}
        lock = threading.Lock()

        def hold(body):
            req = dict(_fields(body))
            if 19 not in req:  # not a document (stats): refused
                return kmxtest.encode_error_response(6, "fake ingest: documents only")
            doc = dict(_fields(req[19]))
            rows = doc[2].count(b"\n")
            with lock:
                state["now"] += 1
                state["max"] = max(state["max"], state["now"])
            time.sleep(0.3)
            with lock:
                state["now"] -= 1
            put = _field(2, 0, rows) + _field(7, 0, rows)
            return _field(1, 2, kmxtest.request_id_of(body)) + _field(11, 2, put)
        fakes = [FakeWorker(self.c.env["KMX_BROKER"], "kmx.ingest", hold) for _ in range(4)]
        try:
            def alive():  # the fakes answer stats with an error: read the broker's part
                r = self.c.kmx("stats", "--format", "json", check=False)
                return len([w for w in json.loads(r.stdout)["workers"]
                            if w["service"] == "kmx.ingest" and w["alive"]]) >= 4
            kmxtest.wait_for(alive, 20, what="four fake ingest workers")
            for jobs in (1, 3):
                state["max"] = 0
                s = self.c.kmx_json("import", path, "--batch", "2", "--jobs", str(jobs))
                self.assertEqual(s["stored"], 24, s)
                self.assertEqual(state["max"], jobs, jobs)
        finally:
            for f in fakes:
                f.stop()
        self.assertEqual([e for f in fakes for e in f.errors], [])
        r = self.c.kmx("import", path, "--jobs", "33", check=False)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("--jobs", r.stderr)


class Watch(unittest.TestCase):
    def setUp(self):
        self.c = Cluster().start()

    def tearDown(self):
        self.c.close()

    def test_admin_json_keys_and_types(self):
        # ping, stats, keygen and put: one line each, keys in the order docs/json.md gives.
        def doc(*args):
            r = self.c.kmx(*args, "--format", "json", check=False)
            self.assertEqual(r.stdout.count("\n"), 1, (args, r.stdout))
            self.assertTrue(r.stdout.endswith("}\n") and "\n" not in r.stdout[:-1], r.stdout)
            return json.loads(r.stdout, object_pairs_hook=list)
        ping = doc("ping")
        self.assertEqual([k for k, _ in ping], ["services", "ok"])
        self.assertEqual(ping[1], ("ok", True))
        for svc in ping[0][1]:
            self.assertEqual([k for k, _ in svc], ["service", "ok", "worker", "version", "ms",
                                                   "error"])
            d = dict(svc)
            self.assertEqual((d["ok"], d["error"]), (True, None), d)
            self.assertIsInstance(d["worker"], str)
            self.assertIsInstance(d["ms"], float)
            self.assertEqual(round(d["ms"], 1), d["ms"])  # one decimal
        stats = doc("stats")
        self.assertEqual([k for k, _ in stats], ["workers", "services", "ok"])
        for w in stats[0][1]:
            self.assertEqual([k for k, _ in w], ["service", "worker", "requests", "errors",
                                                 "alive"])
            self.assertIsInstance(dict(w)["requests"], int)
            self.assertIsInstance(dict(w)["alive"], bool)
        for svc in stats[1][1]:
            self.assertEqual([k for k, _ in svc], ["service", "worker", "counters", "workers"])
            self.assertTrue(all(isinstance(v, int) for _, v in dict(svc)["counters"]), svc)
        self.assertEqual([dict(s)["service"] for s in stats[1][1]],
                         ["kmx.broker", "kmx.ingest", "kmx.query", "kmx.storage"])
        keys = dict(doc("keygen"))
        self.assertEqual(list(keys), ["public", "secret"])
        self.assertTrue(all(re.fullmatch("[0-9a-f]{64}", v) for v in keys.values()), keys)
        key = ["--kind", "export", "--period", "2026", "--market", "JP", "--category",
               "physical_album_customs", "--item", "json \"shape\"", "--source", "t"]
        put = doc("put", *key, "--value", "1", "--unit", "USD")
        self.assertEqual([k for k, _ in put], ["outcome", "seq", "field", "reason"])
        self.assertEqual(dict(put)["outcome"], "stored", put)
        self.assertIsInstance(dict(put)["seq"], int)
        self.assertEqual(dict(doc("put", *key, "--value", "1", "--unit", "USD")),
                         {"outcome": "unchanged", "seq": None, "field": None, "reason": None})
        # An earlier revision than the stored one: unchanged, and why.
        self.assertEqual(dict(doc("put", *key, "--value", "2", "--unit", "USD", "--status",
                                  "final"))["outcome"], "stored")
        old = dict(doc("put", *key, "--value", "3", "--unit", "USD", "--status", "preliminary"))
        self.assertEqual((old["outcome"], old["seq"], old["field"]), ("unchanged", None, "status"))
        self.assertIn("later revision", old["reason"])

    def test_stats_shows_storage_counters(self):
        summary = self.c.kmx_json("import", kmxtest.SAMPLE)
        facts = len(kmxtest.sample_facts())
        storage = [s for s in self.c.kmx_json("stats")["services"]
                   if s["service"] == "kmx.storage"]
        self.assertEqual(len(storage), 1)
        n = {k: int(v) for k, v in storage[0]["counters"].items()}
        self.assertEqual((n["records"], n["last_seq"], n["events"]),
                         (facts, summary["last_seq"], len(kmxtest.sample_rows())), n)
        # The table and CSV carry the same counters.
        rows = list(csv.reader(io.StringIO(self.c.kmx("stats", "--format", "csv").stdout)))
        self.assertIn(["kmx.storage", storage[0]["worker"], "records", str(facts)], rows)
        self.assertRegex(self.c.kmx("stats").stdout,
                         r"kmx\.storage +%s +records +%d\n" % (re.escape(storage[0]["worker"]),
                                                             facts))

    def test_table_and_csv_output_and_sigint(self):
        self.c.kmx_json("import", kmxtest.SAMPLE)
        events = [json.loads(x) for x in self.c.kmx(
            "watch", "--since", "0", "--count", "10", "--format", "json",
            timeout=20).stdout.splitlines()]
        self.assertEqual(len(events), 10)
        want = [[str(e["seq"]), e["type"], e["topic"], e["record"]["item"],
                 e["record"]["value"], e["record"]["unit"], e["record"]["status"] or "",
                 e["previous"] or ""] for e in events]
        # CSV: a header and one row per event.
        out = self.c.kmx("watch", "--since", "0", "--count", "10", "--format", "csv",
                         timeout=20).stdout
        rows = list(csv.reader(io.StringIO(out)))
        self.assertEqual(rows[0], ["seq", "type", "topic", "item", "value", "unit", "status",
                                   "previous"])
        self.assertEqual(rows[1:], want)
        # Table: SEQ TYPE TOPIC ITEM VALUE UNIT; runs until SIGINT, which exits 0.
        w = self.c.watch("--since", "0", fmt="table")
        lines = []
        for _ in range(10):
            lines.append(w.stdout.readline())
        w.send_signal(signal.SIGINT)
        rest, err = w.communicate(timeout=20)
        self.assertEqual(w.returncode, 0, err)
        for line, (seq, typ, topic, item, value, unit, status, prev) in zip(lines, want):
            self.assertEqual(line.split()[:3], [seq, typ, topic], line)
            self.assertTrue(line.rstrip("\n").endswith("%s %s" % (value, unit)), line)
            self.assertIn(item, line)
            self.assertIn("status=%s  previous=%s" % (status or "-", prev or "-"), line)


# ---- growth period over period and the range granularity ----------------------------

MISSING = "2024-05"  # the one month with no figure


def months():
    """{period: value} of a monthly series for JP, every month of 2024 but May, and the
    first quarter of 2025; values differ so every growth is distinct."""
    out = {}
    for y, last in ((2024, 12), (2025, 3)):
        for m in range(1, last + 1):
            p = "%d-%02d" % (y, m)
            if p != MISSING:
                out[p] = Decimal(1000 + 37 * m + (y - 2024) * 500)
    return out


def prev_month(p):
    y, m = int(p[:4]), int(p[5:])
    return "%d-%02d" % ((y, m - 1) if m > 1 else (y - 1, 12))


class GrowthAndRange(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = Cluster().start()
        cls.months = months()
        cls.ranges = {"2024-01/2024-10": Decimal("8000.5"), "2024-03/2024-08": Decimal("4100"),
                      "2025-01/2025-02": Decimal("2222")}
        path = os.path.join(cls.c.dir, "series.csv")
        with open(path, "w") as f:
            f.write("kind,period,market,category,item,value,unit,source\n")
            for p, v in cls.months.items():
                f.write("export,%s,JP,series,monthly,%s,USD,growth test\n" % (p, v))
            for p, v in cls.ranges.items():
                f.write("export,%s,JP,series,year to date,%s,USD,growth test\n" % (p, v))
        cls.c.kmx_json("import", path)

    @classmethod
    def tearDownClass(cls):
        cls.c.close()

    def q(self, *args):
        return self.c.kmx_json("query", "exports", "--category", "series", *args)["rows"]

    def test_pop_by_period_compares_with_the_previous_month(self):
        rows = self.q("--granularity", "month", "--by", "period", "--growth", "pop",
                      "--from", "2024-02", "--to", "2025-03")
        got = {r["period"]: (Decimal(r["sum"]), r["previous"], r["growth_pct"]) for r in rows}
        want = {}
        for p, v in self.months.items():
            if p < "2024-02":
                continue
            base = self.months.get(prev_month(p))
            want[p] = (v, None if base is None else str(base),
                       None if base is None else str(pct(v - base, base)))
        norm = lambda d: {k: (v, p and Decimal(p), g and Decimal(g)) for k, (v, p, g) in
                          d.items()}
        self.assertEqual(norm(got), norm(want))
        self.assertIsNone(got["2024-06"][1])  # its base, May, is missing

    def test_pop_of_a_range_compares_with_the_range_before(self):
        # 2025-01..03 against 2024-10..12, all present: a real growth.
        row, = self.q("--granularity", "month", "--by", "market", "--growth", "pop",
                      "--from", "2025-01", "--to", "2025-03")
        cur = sum(v for p, v in self.months.items() if p.startswith("2025"))
        base = sum(self.months["2024-%02d" % m] for m in (10, 11, 12))
        self.assertEqual((Decimal(row["sum"]), Decimal(row["previous"]),
                          Decimal(row["growth_pct"])), (cur, base, pct(cur - base, base)))
        # 2024-04..06 has no May: against 2024-01..03 it is not like for like.
        row, = self.q("--granularity", "month", "--by", "market", "--growth", "pop",
                      "--from", "2024-04", "--to", "2024-06")
        self.assertEqual(Decimal(row["sum"]), self.months["2024-04"] + self.months["2024-06"])
        self.assertIsNone(row["previous"])
        self.assertIsNone(row["growth_pct"])

    def test_range_granularity_reads_only_ranges(self):
        rows = self.q("--granularity", "range", "--by", "period")
        self.assertEqual({r["period"]: Decimal(r["sum"]) for r in rows}, self.ranges)
        row, = self.q("--granularity", "range", "--by", "market", "--from", "2024-01",
                      "--to", "2024-12")
        want = sum(v for p, v in self.ranges.items() if p.startswith("2024"))
        self.assertEqual((Decimal(row["sum"]), row["count"]), (want, 2))
        # Months only: the ranges are left out.
        row, = self.q("--granularity", "month", "--by", "market", "--from", "2024-01",
                      "--to", "2024-12")
        self.assertEqual(Decimal(row["sum"]),
                         sum(v for p, v in self.months.items() if p.startswith("2024")))


if __name__ == "__main__":
    kmxtest.main()
