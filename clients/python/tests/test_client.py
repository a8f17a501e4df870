"""The Python client against the real services: every method, its answers equal to the
CLI's on the sample data, errors as exceptions, CURVE keys, retries while storage is
down, watch across a storage restart without a gap, and a kmx-query worker's local read
socket (unix:PATH): its answers, its refusals, a stuck, stopped and restarted worker.

Run by ctest (clients.python) with PYTHONPATH holding the built package (build/clients/
python) and the integration harness (tests/integration/kmxtest.py).
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import warnings
from decimal import Decimal

import kmxtest
from kmxtest import Cluster, wait_for

import kmx

KEY = ("kind", "period", "market", "category", "item", "company", "artist", "source")


def client(c, **kw):
    return kmx.Client(c.env["KMX_BROKER"], events=c.env["KMX_EVENTS"], **kw)


def cli_rows(rows):
    """CLI JSON rows with their amount strings as Decimals, as the Python client gives."""
    out = []
    for r in rows:
        r = dict(r)
        for k in ("sum", "min", "max", "avg", "share_pct", "share_of", "previous", "growth_pct",
                  "value"):
            if r.get(k) is not None:
                r[k] = Decimal(r[k])
        out.append(r)
    return out


class Answers(unittest.TestCase):
    """One store with the sample data; read-only tests compare with the CLI."""

    @classmethod
    def setUpClass(cls):
        cls.c = Cluster().start()
        # A second kmx-query that also answers on a local read socket in the cluster's
        # directory (its broker side shares the broker's kmx.query requests).
        cls.local = os.path.join(cls.c.dir, "q.sock")
        cls.c.spawn("local", "kmx-query", "--local", cls.local)
        cls.c.n_query = 2
        cls.c.wait_ready()
        cls.k = client(cls.c)
        calls = []
        cls.imported = cls.k.import_file(kmxtest.SAMPLE, batch=25,
                                         progress=lambda d, t, r: calls.append((d, t, r.stored)))
        cls.progress = calls

    @classmethod
    def tearDownClass(cls):
        cls.k.close()
        cls.c.close()

    def test_import_file_in_chunks_with_progress(self):
        facts = kmxtest.sample_rows()
        self.assertEqual(self.imported.records, len(facts))
        self.assertEqual(self.imported.rejected, 0)
        self.assertEqual(self.imported.stored + self.imported.unchanged, len(facts))
        # One call per chunk of 25 rows plus the final one; bytes only grow, up to the size.
        size = os.path.getsize(kmxtest.SAMPLE)
        self.assertGreaterEqual(len(self.progress), len(facts) // 25)
        self.assertEqual(self.progress[-1][:2], (size, size))
        self.assertEqual([d for d, _, _ in self.progress], sorted(d for d, _, _ in self.progress))
        self.assertEqual(self.progress[-1][2], self.imported.stored)
        # The same file again: every row unchanged (writes are upserts on natural keys).
        again = self.k.import_file(kmxtest.SAMPLE)
        self.assertEqual((again.stored, again.unchanged), (0, len(facts)))

    def test_ping_and_stats(self):
        pongs = self.k.ping()
        self.assertEqual(set(pongs), {"kmx.broker", "kmx.ingest", "kmx.query"})
        self.assertTrue(pongs["kmx.query"]["worker"].startswith("query-"))
        self.assertEqual(self.k.ping("ingest")["kmx.ingest"]["version"],
                         self.c.kmx("--version").stdout.split()[1])
        mine = self.k.stats()
        cli = self.c.kmx_json("stats")
        self.assertEqual({(w["service"], w["worker"]) for w in mine["workers"]},
                         {(w["service"], w["worker"]) for w in cli["workers"]})
        self.assertEqual([s["service"] for s in mine["services"]],
                         [s["service"] for s in cli["services"]])
        for s, t in zip(mine["services"], cli["services"]):
            self.assertEqual(set(s["counters"]), set(t["counters"]))

    def test_query_equals_cli(self):
        cases = [
            ({"period": "2024", "by": "market"}, ["--period", "2024", "--by", "market"]),
            ({"category": "physical_album_customs", "granularity": "year", "by": "year,market"},
             ["--category", "physical_album_customs", "--granularity", "year",
              "--by", "year,market"]),
            ({"category": "physical_album_customs", "unit": "USD", "period": "2024",
              "by": ["market"], "top": 3, "other": True, "share": True, "growth": "yoy"},
             ["--category", "physical_album_customs", "--unit", "USD", "--period", "2024",
              "--by", "market", "--top", "3", "--other", "--share", "--growth", "yoy"]),
            ({"market": "Japan", "by": "year", "metrics": "sum,count,min,max,avg",
              "granularity": "any"},
             ["--market", "Japan", "--by", "year", "--metrics", "sum,count,min,max,avg",
              "--granularity", "any"]),
            ({"from_": "2019", "to": "2022-H2", "category": "physical_album_customs",
              "by": "period", "market": "WORLD", "time_series": True},
             ["--from", "2019", "--to", "2022-H2", "--category", "physical_album_customs",
              "--by", "period", "--market", "WORLD", "--time-series"]),
            ({"by": "market", "latest": True, "category": "physical_album_customs"},
             ["--by", "market", "--latest", "--category", "physical_album_customs"]),
        ]
        for kw, flags in cases:
            with self.subTest(kw=kw):
                mine = self.k.query("exports", **kw)
                cli = self.c.kmx_json("query", "exports", *flags)
                self.assertTrue(mine.rows)
                self.assertEqual(mine.rows, cli_rows(cli["rows"]))
                self.assertEqual((mine.matched, mine.granularity, mine.dropped),
                                 (cli["matched"], cli["granularity"], cli.get("dropped")))
                self.assertEqual(list(mine.rows[0]), [c for c in mine.columns
                                                      if c in mine.rows[0]])
        cons = self.k.query("consumption", category="main_music_service_share", period="2024",
                            by="item")
        self.assertEqual(cons.rows, cli_rows(self.c.kmx_json(
            "query", "consumption", "--category", "main_music_service_share", "--period",
            "2024", "--by", "item")["rows"]))
        # Percentages do not add up: their rows carry an average, never a sum.
        self.assertIsInstance(cons.rows[0]["avg"], Decimal)
        self.assertNotIn("sum", cons.rows[0])

    def test_text_forms_are_the_services(self):
        # The same period and market in different spellings give the same answer: the
        # services read them with the CLI's parser, nothing is parsed in Python.
        a = self.k.query("exports", period="2024-H1/2024-H2", market="Japan,china", by="market")
        b = self.k.query("exports", period="2024", market=["JP", "CN"], by="market")
        self.assertEqual(a.rows, b.rows)
        self.assertEqual(len(a.rows), 2)
        with self.assertRaises(kmx.BadRequest) as e:
            self.k.query("exports", period="2025-H3")
        self.assertEqual(e.exception.code, "BAD_REQUEST")
        self.assertIn("'2025-H3' is not a period", e.exception.message)
        r = self.c.kmx("query", "exports", "--period", "2025-H3", check=False)
        self.assertEqual(r.returncode, 1)
        with self.assertRaises(kmx.BadRequest) as e:
            self.k.query("exports", market="Atlantis")
        self.assertIn("Atlantis", e.exception.message)
        with self.assertRaises(kmx.BadRequest):
            self.k.query("exports", from_="2024", to="2023")

    def test_list_walks_every_page(self):
        mine = list(self.k.list(page_size=7))
        cli = self.c.kmx_lines("list")
        self.assertEqual(len(mine), len(kmxtest.sample_facts()))
        self.assertEqual(mine, cli_rows(cli))
        japan = list(self.k.list(kind="exports", market="japan", page_size=2))
        self.assertEqual(japan, cli_rows(self.c.kmx_lines("list", "exports", "--market", "JP")))
        self.assertTrue(japan and all(r["market"] == "JP" for r in japan))

    def test_get_and_not_found(self):
        rec = next(r for r in self.k.list(kind="export") if r["period"].endswith("H1"))
        key = {k: rec[k] for k in KEY if rec[k] is not None}
        got = self.k.get(**key)
        self.assertEqual(got, rec)
        # The period as a source writes it, the market by its name.
        year, half = rec["period"].split("-")
        loose = dict(key, period="%s %s" % (half, year))
        if rec["market"] == "JP":
            loose["market"] = "Japan"
        self.assertEqual(self.k.get(**loose), rec)
        flags = []
        for k, v in key.items():
            flags += ["--" + k, v]
        self.assertEqual(cli_rows([self.c.kmx_json("get", *flags)])[0], got)
        with self.assertRaises(kmx.NotFound) as e:
            self.k.get(**dict(key, item="no such series"))
        self.assertEqual(e.exception.code, "NOT_FOUND")

    def test_catalog_equals_cli(self):
        mine = self.k.catalog()
        cli = self.c.kmx_json("catalog")
        for a in cli["alternatives"]:
            a["measurements"] = cli_rows(a["measurements"])
        self.assertEqual(mine, cli)
        self.assertEqual(mine["records"], len(kmxtest.sample_facts()))
        self.assertIn("JP", [m["value"] for m in mine["markets"]])
        cons = self.k.catalog("consumption")
        cli = self.c.kmx_json("catalog", "consumption")
        for a in cli["alternatives"]:
            a["measurements"] = cli_rows(a["measurements"])
        self.assertEqual(cons, cli)
        self.assertTrue(cons["categories"])
        self.assertEqual({c["kind"] for c in cons["categories"]}, {"consumption"})

    def test_history_of_a_revised_figure(self):
        # The sample's 2022 customs total: published preliminary, then revised.
        key = {"kind": "export", "period": "2022", "market": "WORLD",
               "category": "physical_album_customs"}
        rec = next(r for r in self.k.list(**key))
        key.update(item=rec["item"], source=rec["source"])
        hist = self.k.history(**key)
        self.assertGreaterEqual(len(hist), 2)
        self.assertEqual([e["seq"] for e in hist], sorted(e["seq"] for e in hist))
        self.assertEqual(hist[-1]["record"]["value"], rec["value"])
        self.assertEqual(hist[-1]["previous"], hist[-2]["record"]["value"])
        self.assertEqual(hist.first_seq, 1)
        flags = []
        for k, v in key.items():
            flags += ["--" + k, v]
        cli = self.c.kmx_lines("history", *flags)
        self.assertEqual([(e["seq"], Decimal(e["record"]["value"])) for e in cli],
                         [(e["seq"], e["record"]["value"]) for e in hist])
        with self.assertRaises(kmx.NotFound):
            self.k.history(**dict(key, period="1901"))

    def test_free_text_filters_keep_their_commas(self):
        rec = next(r for r in self.k.list() if "," in (r["source"] or ""))
        mine = list(self.k.list(source=rec["source"]))
        self.assertEqual(mine, cli_rows(self.c.kmx_lines("list", "--source", rec["source"])))
        self.assertIn(rec, mine)

    def test_replay_and_errors(self):
        events, last, first = self.k.replay(0, limit=5)
        self.assertEqual([e["seq"] for e in events], [1, 2, 3, 4, 5])
        self.assertGreaterEqual(last, self.imported.last_seq)
        self.assertEqual(first, 1)
        with self.assertRaises(kmx.Unsupported) as e:
            self.k._result("kmx.broker", "query", query=kmx.pb.QueryRequest())
        self.assertEqual(e.exception.service, "kmx.broker")

    def test_local_read_socket_answers_reads_only(self):
        os.environ["KMX_BROKER"] = "unix:" + self.local
        try:
            loc = kmx.Client(timeout=3, events=self.c.env["KMX_EVENTS"])
        finally:
            os.environ["KMX_BROKER"] = self.c.env["KMX_BROKER"]
        with loc:
            self.assertEqual(loc.broker, "unix:" + self.local)
            kw = {"category": "physical_album_customs", "unit": "USD", "period": "2024",
                  "by": "market", "top": 3, "other": True, "share": True, "growth": "yoy"}
            mine, theirs = loc.query("exports", **kw), self.k.query("exports", **kw)
            self.assertTrue(mine.rows)
            self.assertEqual((mine.rows, mine.columns, mine.matched),
                             (theirs.rows, theirs.columns, theirs.matched))
            japan = list(loc.list(kind="exports", market="JP", page_size=3))
            self.assertTrue(japan)
            self.assertEqual(japan, list(self.k.list(kind="exports", market="JP")))
            rec = japan[0]
            key = {k: rec[k] for k in KEY if rec[k] is not None}
            self.assertEqual(loc.get(**key), rec)
            self.assertEqual(loc.catalog(), self.k.catalog())
            self.assertEqual(loc.replay(0, limit=20), self.k.replay(0, limit=20))
            self.assertEqual(list(loc.watch(since=0, count=3)), self.k.replay(0, limit=3)[0])
            self.assertEqual(loc.history(**key), self.k.history(**key))

            def answered():  # requests the worker answered on its local socket
                return loc.stats([kmx.QUERY])["services"][0]["counters"]["local_requests"]
            self.assertGreaterEqual(answered(), 8)  # the reads above came this way
            with self.assertRaises(kmx.NotFound):
                loc.get(**dict(key, item="no such series"))
            with self.assertRaises(kmx.BadRequest) as e:
                loc.query("exports", period="2025-H3")
            self.assertIn("'2025-H3' is not a period", e.exception.message)
            # Writes and other services are refused by name before anything is sent.
            before = answered()
            with kmx.Client("unix:" + self.local) as fresh:
                changed = dict(key, value=rec["value"] + 1, unit=rec["unit"])
                for call, service in ((lambda: fresh.put([changed]), "kmx.ingest"),
                                      (lambda: fresh.delete(**key), "kmx.ingest"),
                                      (lambda: fresh.ping(), "kmx.broker"),
                                      (lambda: fresh.stats(), "kmx.broker")):
                    with self.assertRaises(kmx.Unsupported) as e:
                        call()
                    self.assertEqual((e.exception.code, e.exception.service),
                                     ("UNSUPPORTED", service))
                    self.assertEqual(e.exception.message, "a local read socket (unix:PATH) "
                                     "answers kmx.query only: send this to the broker")
            self.assertEqual(answered(), before + 1)  # that one is the stats call
            self.assertEqual(self.k.get(**key), rec)
            self.assertEqual(loc.get(**key), rec)
        # Without pyzmq the local read socket still answers; the broker asks for it.
        code = ("import sys; sys.modules['zmq'] = None; import kmx\n"
                "print(kmx.Client(sys.argv[1]).ping('query')['kmx.query']['worker'])\n"
                "try:\n    kmx.Client('tcp://127.0.0.1:1')\n"
                "except ImportError as e:\n    print(e)\n")
        r = subprocess.run([sys.executable, "-c", code, "unix:" + self.local],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        worker, refusal = r.stdout.splitlines()
        self.assertTrue(worker.startswith("query-"), worker)
        self.assertIn("needs pyzmq (Debian: apt-get install python3-zmq)", refusal)

    def test_local_read_socket_worker_stuck_stopped_restarted(self):
        ask = {"kind": "exports", "period": "2024", "by": "market"}
        want = self.k.query(**ask).rows
        held = kmx.Client("unix:" + self.local, timeout=0.25, retries=2)
        kept = kmx.Client("unix:" + self.local, timeout=3, retries=1)
        self.addCleanup(held.close)
        self.addCleanup(kept.close)
        self.assertEqual(held.query(**ask).rows, want)
        self.assertEqual(kept.query(**ask).rows, want)
        # A stuck worker: each try times out on a connection of its own, as on the broker's
        # path (Lazy Pirate), so the late answers go to closed connections.
        proc = self.c.procs["local"]
        proc.send_signal(signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            with self.assertRaises(kmx.Timeout) as e:
                held.catalog()
            self.assertGreaterEqual(time.monotonic() - t0, 0.5)
            self.assertIn("timed out after 2 tries; is the kmx-query at unix:%s running?"
                          % self.local, e.exception.message)
            self.assertEqual(held.retried, 1)
        finally:
            proc.send_signal(signal.SIGCONT)
        held.timeout = 3.0
        self.assertEqual(held.query(**ask).rows, want)  # its own answer, not a late catalog
        # A stopped worker is named: at once without a deadline, after retries within one.
        # The broker's path goes on.
        self.c.stop("local")
        within = kmx.Client("unix:" + self.local, deadline=0.3)
        for c, retried in ((held, 1), (within, None)):
            with self.assertRaises(kmx.Unavailable) as e:
                c.query(**ask)
            self.assertEqual((e.exception.code, e.exception.service),
                             ("UNAVAILABLE", "kmx.query"))
            self.assertIn("no kmx-query answers on this local read socket (start one with "
                          "--local PATH): unix:%s" % self.local, e.exception.message)
            if retried is not None:
                self.assertEqual(c.retried, retried)
        self.assertGreater(within.retried, 0)
        self.assertEqual(self.k.query(**ask).rows, want)
        # Restarted on the same path, it is found again, also by a client that kept its
        # connection to the worker that is gone: made anew within the one try it has.
        self.c.spawn("local", "kmx-query", "--local", self.local)
        wait_for(lambda: os.path.exists(self.local), what="the restarted worker's socket")
        self.c.wait_ready()
        self.assertEqual(kept.query(**ask).rows, want)
        self.assertEqual(kept.retried, 0)
        self.assertEqual(held.query(**ask).rows, want)

    def test_read_socket_beside_the_broker(self):
        ask = {"kind": "exports", "period": "2024", "by": "market"}
        want = self.k.query(**ask).rows
        rec = next(iter(self.k.list(kind="exports", market="JP")))
        key = {k: rec[k] for k in KEY if rec[k] is not None}
        counter = kmx.Client("unix:" + self.local, timeout=3)
        self.addCleanup(counter.close)

        def answered():  # requests the worker answered on its local socket (before this)
            return counter.stats([kmx.QUERY])["services"][0]["counters"]["local_requests"]
        with self.assertRaises(ValueError):
            kmx.Client("unix:" + self.local, read_socket=self.local)
        # Reads on the socket (PATH or unix:PATH, or KMX_READ_SOCKET), the rest to the broker.
        os.environ["KMX_READ_SOCKET"] = "unix:" + self.local
        try:
            from_env = kmx.Client(self.c.env["KMX_BROKER"], timeout=3)
        finally:
            del os.environ["KMX_READ_SOCKET"]
        both = kmx.Client(self.c.env["KMX_BROKER"], timeout=3, read_socket=self.local)
        self.addCleanup(from_env.close)
        self.addCleanup(both.close)
        for c in (both, from_env):
            before = answered()
            self.assertEqual(c.query(**ask).rows, want)
            self.assertEqual(c.get(**key), rec)
            self.assertEqual(answered(), before + 3)
            self.assertIn("kmx.broker", c.ping())  # no local socket answers a ping
        before = answered()
        changed = dict(key, value=rec["value"] + 1, unit=rec["unit"])
        both.put([changed])
        self.addCleanup(self.k.put, [dict(key, value=rec["value"], unit=rec["unit"])])
        self.assertEqual(both.get(**key)["value"], rec["value"] + 1)  # its own write, read
        self.assertEqual(answered(), before + 2)  # the get, and this stats call
        # No worker on the socket: reads go to the broker, with one warning per client.
        self.c.stop("local")
        try:
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always")
                self.assertEqual(both.query(**ask).rows, want)
                self.assertEqual(both.get(**key)["value"], rec["value"] + 1)
            self.assertEqual(len(seen), 1, [str(w.message) for w in seen])
            self.assertIs(seen[0].category, RuntimeWarning)
            self.assertIn("no kmx-query answers on this local read socket (start one with "
                          "--local PATH): unix:%s" % self.local, str(seen[0].message))
            self.assertIn("reads go to the broker", str(seen[0].message))
            self.assertEqual(both.retried, 0)
        finally:
            self.c.spawn("local", "kmx-query", "--local", self.local)
            wait_for(lambda: os.path.exists(self.local), what="the restarted worker's socket")
            self.c.wait_ready()
        # Back on the socket once a worker listens there again.
        self.assertEqual(both.query(**ask).rows, want)
        self.assertEqual(answered(), 1)  # a new worker: that query (a call counts once answered)

    def test_to_pandas(self):
        try:
            import pandas  # noqa: F401
        except ImportError:
            self.skipTest("python3-pandas is not installed")
        res = self.k.query("exports", period="2024", by="market")
        df = res.to_pandas()
        self.assertEqual(list(df.columns), res.columns)
        self.assertEqual(len(df), len(res.rows))
        self.assertEqual(sum(df["sum"][df["unit"] == "USD"]),
                         sum(r["sum"] for r in res.rows if r["unit"] == "USD"))
        recs = kmx.to_pandas(self.k.list(kind="exports"))
        self.assertEqual(list(recs.columns), list(kmx.client.RECORD_COLUMNS))


def doc_blocks():
    """The Python code blocks of docs/clients.md, in order."""
    path = os.path.join(kmxtest.SOURCE_DIR, "docs", "clients.md")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return [b.split("```", 1)[0] for b in text.split("```python\n")[1:]]


class Guide(unittest.TestCase):
    """docs/clients.md's Python code runs as written (endpoints and the file path aside)."""

    def setUp(self):
        self.c = Cluster().start()

    def tearDown(self):
        self.c.close()

    def run_block(self, code):
        code = code.replace("tcp://127.0.0.1:5555", self.c.env["KMX_BROKER"])
        code = code.replace('"data/kmusic-facts.csv"', repr(kmxtest.SAMPLE))
        out = []
        env = {"print": lambda *a, **k: out.append(a)}
        exec(compile(code, "docs/clients.md", "exec"), env)
        return env, out

    def test_worked_example_and_raw_protocol(self):
        blocks = doc_blocks()
        self.assertEqual(len(blocks), 2)
        os.environ["KMX_EVENTS"] = self.c.env["KMX_EVENTS"]
        try:
            env, out = self.run_block(blocks[0])
        finally:
            del os.environ["KMX_EVENTS"]
        self.assertEqual(env["rec"]["value"], Decimal("39100000"))
        self.assertEqual(len(env["top"].rows), len(env["df"]))
        self.assertTrue(out)
        env, out = self.run_block(blocks[1])
        env["sock"].close(linger=0)
        cli = self.c.kmx_json("query", "exports", "--period", "2024", "--by", "market")
        self.assertEqual([(list(k), u, s) for k, u, s in out],
                         [([r["market"], r["category"]], r["unit"], r.get("sum") or "")
                          for r in cli["rows"]])  # a percentage carries no sum (avg only)


class Writes(unittest.TestCase):
    def setUp(self):
        self.c = Cluster().start()
        self.k = client(self.c)

    def tearDown(self):
        self.k.close()
        self.c.close()

    def record(self, **kw):
        r = {"kind": "export", "period": "H1 2030", "market": "Japan",
             "category": "physical_album_customs", "item": "python client test",
             "value": Decimal("233.113"), "unit": "USD_million", "source": "kmx tests"}
        r.update(kw)
        return r

    def test_put_get_delete(self):
        res = self.k.put([self.record()])
        self.assertEqual((res.stored, res.rejected), (1, 0))
        got = self.k.get(kind="export", period="2030-H1", market="JP",
                         category="physical_album_customs", item="python client test",
                         source="kmx tests")
        # Units fold their magnitude into the exact amount, on the server.
        self.assertEqual((got["value"], got["unit"], got["period"], got["market"]),
                         (Decimal("233113000"), "USD", "2030-H1", "JP"))
        self.assertEqual(got["seq"], res.last_seq)
        self.assertEqual(self.k.put([self.record()]).unchanged, 1)
        # The same record through the CLI is the same key: unchanged.
        r = self.c.kmx("put", "--kind", "export", "--period", "2030-H1", "--market", "JP",
                       "--category", "physical_album_customs", "--item", "python client test",
                       "--value", "233.113", "--unit", "USD_million", "--source", "kmx tests")
        self.assertIn("unchanged", r.stdout)
        # A kmx_pb2.Record goes as a PutRequest.
        rec = kmx.pb.Record(kind=kmx.pb.EXPORT, market="KR", category="physical_album_customs",
                            item="typed", source="kmx tests",
                            value=kmx.pb.Value(amount=15000, unit="USD"))
        rec.period.text = "2031"
        typed = self.k.put([rec])
        self.assertEqual(typed.stored, 1)
        self.assertEqual(typed.results[0]["outcome"], "stored")
        deleted = self.k.delete(kind="export", period="2031", market="KR",
                                category="physical_album_customs", item="typed",
                                source="kmx tests")
        self.assertEqual(deleted.stored, 1)
        with self.assertRaises(kmx.NotFound):
            self.k.delete(kind="export", period="2031", market="KR",
                          category="physical_album_customs", item="typed", source="kmx tests")

    def test_periods_read_back_as_the_cli_writes_them(self):
        forms = ["2024-03", "Q3 2024", "2024-H2", "2024", "Jan-Apr 2023", "2023-02/2024-05",
                 "2022-07/2022-12", "2021-10/2021-12"]
        self.k.put([self.record(period=f, item="period %d" % i) for i, f in enumerate(forms)])
        mine = {r["item"]: r["period"] for r in self.k.list(source="kmx tests")}
        cli = {r["item"]: r["period"] for r in self.c.kmx_lines("list", "--source", "kmx tests")}
        self.assertEqual(mine, cli)
        self.assertEqual([mine["period %d" % i] for i in range(len(forms))],
                         ["2024-03", "2024-Q3", "2024-H2", "2024", "2023-01/2023-04",
                          "2023-02/2024-05", "2022-H2", "2021-Q4"])

    def test_import_a_cp949_file_as_the_cli_does(self):
        text = ("kind;period;market;category;item;금액;unit;source\n"
                "export;2024;JP;physical_album_customs;앨범 수출;1.5;USD_million;관세청\n"
                "export;2025-H1;JP;physical_album_customs;앨범 수출;0.75;USD_million;관세청\n")
        path = os.path.join(self.c.dir, "cp949.csv")
        with open(path, "wb") as f:
            f.write(text.encode("cp949"))
        mine = self.k.import_file(path, encoding="cp949", delimiter=";",
                                  columns={"금액": "value"})
        self.assertEqual((mine.stored, mine.rejected), (2, 0))
        got = sorted((r["period"], r["item"], r["value"], r["source"])
                     for r in self.k.list(source="관세청"))
        self.assertEqual(got, [("2024", "앨범 수출", Decimal("1500000"), "관세청"),
                               ("2025-H1", "앨범 수출", Decimal("750000"), "관세청")])
        # The CLI reads the same bytes the same way: every row unchanged.
        cli = self.c.kmx_json("import", path, "--encoding", "cp949", "--delimiter", ";",
                              "--map", "금액=value")
        self.assertEqual((cli["stored"], cli["unchanged"]), (0, 2), cli)
        with self.assertRaises(ValueError):
            self.k.import_file(path, encoding="latin-9")

    def test_alternatives_are_never_added(self):
        # One quantity measured by two sources: listed in the catalog, refused when a sum
        # would add both, one taken with prefer.
        self.k.put([self.record(period="2029", source="source A", value="291.82"),
                    self.record(period="2029", source="source B", value="291.8",
                                item="python client test (rounded)")])
        cat = self.k.catalog("exports")
        cli = self.c.kmx_json("catalog", "exports")
        for a in cli["alternatives"]:
            a["measurements"] = cli_rows(a["measurements"])
        self.assertEqual(cat, cli)
        alt = [a for a in cat["alternatives"] if a["period"] == "2029"]
        self.assertEqual(len(alt), 1)
        self.assertEqual([m["value"] for m in alt[0]["measurements"]],
                         [Decimal("291820000"), Decimal("291800000")])
        with self.assertRaises(kmx.BadRequest) as e:
            self.k.query("exports", period="2029", by="market")
        self.assertIn("source A", e.exception.message)
        self.assertEqual(self.c.kmx("query", "exports", "--period", "2029", "--by", "market",
                                    check=False).returncode, 1)
        res = self.k.query("exports", period="2029", by="market", prefer=True)
        self.assertEqual(res.rows, cli_rows(self.c.kmx_json(
            "query", "exports", "--period", "2029", "--by", "market", "--prefer")["rows"]))
        self.assertEqual([r["sum"] for r in res.rows], [Decimal("291820000")])
        self.assertEqual(len(res.set_aside), 1)
        self.assertIn("source B", res.set_aside[0])

    def test_rejections_are_exceptions_with_records(self):
        with self.assertRaises(kmx.Rejected) as e:
            self.k.put([self.record(), self.record(item="bad", period="2030-H3")])
        err = e.exception
        self.assertEqual(err.result.stored, 1)
        self.assertEqual([(r["index"], r["field"]) for r in err.records], [(1, "period")])
        self.assertIn("2030-H3", err.records[0]["reason"])
        # Atomic: nothing stored, the bad record named.
        with self.assertRaises(kmx.Error) as e:
            self.k.put([self.record(item="a2"), self.record(item="b2", market="Atlantis")],
                       atomic=True)
        self.assertEqual([r["index"] for r in e.exception.records], [1])
        # Nothing was stored: no record holds the item, so naming it is refused.
        with self.assertRaises(kmx.BadRequest):
            list(self.k.list(item="a2"))
        res = self.k.put([self.record(item="c", unit="no_such_unit")], check=False)
        self.assertEqual(res.rejected, 1)

    def test_import_atomic_and_dry_run(self):
        with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as f:
            f.write("kind,period,market,category,item,value,unit,source\n"
                    "export,2030,JP,physical_album_customs,a,1,USD,t\n"
                    "export,2030-H3,JP,physical_album_customs,b,1,USD,t\n")
        self.addCleanup(os.unlink, f.name)
        for kw in ({"atomic": True}, {"dry_run": True}):
            with self.assertRaises(kmx.Rejected) as e:
                self.k.import_file(f.name, **kw)
            self.assertEqual([r["row"] for r in e.exception.records], [3])
            with self.assertRaises(kmx.BadRequest):  # nothing stored holds source "t"
                list(self.k.list(source="t"))
        res = self.k.import_file(f.name, check=False, defaults={"note": "from python"})
        self.assertEqual((res.stored, res.rejected), (1, 1))
        self.assertEqual([r["note"] for r in self.k.list(source="t")], ["from python"])


class Events(unittest.TestCase):
    def setUp(self):
        self.c = Cluster().start()
        self.k = client(self.c, deadline=30)

    def tearDown(self):
        self.k.close()
        self.c.close()

    def put(self, n, prefix="p"):
        recs = [{"kind": "export", "period": str(2000 + i), "market": "JP",
                 "category": "physical_album_customs", "item": "%s%d" % (prefix, i),
                 "value": str(i), "unit": "USD", "source": "events"} for i in range(n)]
        return self.k.put(recs)

    def collect(self, gen, into):
        def run():
            for ev in gen:
                into.append(ev)
        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t

    def test_watch_replays_then_goes_live(self):
        first = self.put(5)
        got = []
        t = self.collect(client(self.c).watch(["export.JP."], since=2, count=8,
                                              heartbeats=True), got)
        wait_for(lambda: len([e for e in got if e["type"] == "upsert"]) >= 3, what="replay")
        second = self.put(5, "q")
        t.join(20)
        self.assertFalse(t.is_alive())
        seqs = [e["seq"] for e in got if e["type"] != "heartbeat"]
        # 3..5 replayed from the log, 6..10 live: each once, in order.
        self.assertEqual((first.last_seq, second.last_seq), (5, 10))
        self.assertEqual(seqs, list(range(3, 11)))
        # Equal to the CLI's events.
        cli = self.c.kmx_lines("watch", "export.JP.", "--since", "2", "--count", "8")
        self.assertEqual([e["seq"] for e in cli], seqs)
        self.assertEqual([e["record"]["value"] for e in got if e["type"] != "heartbeat"],
                         [Decimal(e["record"]["value"]) for e in cli])

    def test_heartbeats(self):
        beats = []
        for ev in client(self.c).watch(heartbeats=True, idle=10):
            beats.append(ev)
            if len(beats) == 2:
                break
        self.assertEqual([e["type"] for e in beats], ["heartbeat", "heartbeat"])
        self.assertEqual(beats[0]["topic"], "kmx.heartbeat")

    def test_watch_across_a_storage_restart_has_no_gap(self):
        base = self.put(3).last_seq
        got = []
        self.collect(client(self.c, deadline=30).watch(since=base), got)
        self.put(3, "before")
        wait_for(lambda: len(got) >= 3, what="live events")
        self.c.stop("storage", signal.SIGKILL)
        self.c.spawn("storage", "kmx-storage")
        # Written at once when storage is back: its first publications can be lost on the
        # fresh connection to the broker, and the watcher must replay them.
        after = self.k.put([{"kind": "export", "period": "2040", "market": "US",
                             "category": "physical_album_customs", "item": "after%d" % i,
                             "value": "1", "unit": "USD", "source": "events"}
                            for i in range(4)])
        last = self.put(2, "late").last_seq
        self.assertGreater(after.last_seq, base)
        wait_for(lambda: got and got[-1]["seq"] >= last, deadline=30, what="events after restart")
        self.assertEqual([e["seq"] for e in got], list(range(base + 1, last + 1)))

    def test_retries_while_storage_is_down(self):
        self.put(1)
        self.c.stop("storage", signal.SIGKILL)
        # Without a deadline an UNAVAILABLE answer is final.
        quick = client(self.c, timeout=2, retries=1)
        with self.assertRaises((kmx.Unavailable, kmx.Timeout)) as e:
            quick.query("exports", by="market")
        self.assertIn(e.exception.code, ("UNAVAILABLE", "TIMEOUT"))
        # With one, tries go on (1 s each, pauses growing to 2 s) until storage is back.
        restart = threading.Timer(3.0, lambda: self.c.spawn("storage", "kmx-storage"))
        restart.start()
        patient = client(self.c, timeout=1, deadline=40)
        t0 = time.monotonic()
        rows = patient.query("exports", by="market").rows
        restart.join()
        self.assertTrue(rows)
        self.assertGreater(patient.retried, 0)
        self.assertGreater(time.monotonic() - t0, 2.5)
        # A write too: sent while storage is down, stored once it is back, exactly once.
        wait_for(lambda: self.c.kmx("ping", check=False).returncode == 0, what="ping")
        self.c.stop("storage", signal.SIGKILL)
        restart = threading.Timer(3.0, lambda: self.c.spawn("storage", "kmx-storage"))
        restart.start()
        before = patient.retried
        res = patient.put([{"kind": "export", "period": "2041", "market": "JP",
                            "category": "physical_album_customs", "item": "retried",
                            "value": "1", "unit": "USD", "source": "events"}])
        restart.join()
        self.assertEqual(res.stored + res.unchanged, 1)
        self.assertGreater(patient.retried, before)
        self.assertEqual(len(list(patient.list(item="retried"))), 1)


class Curve(unittest.TestCase):
    def setUp(self):
        self.c = Cluster()
        k = {n: json.loads(self.c.kmx("keygen", "--format", "json").stdout)
             for n in ("broker", "storage", "service", "writer", "reader", "stranger")}
        self.keys = k
        allow = os.path.join(self.c.dir, "allow")
        with open(allow, "w") as f:
            f.write("%s service storage\n" % k["storage"]["public"])
            f.write("%s service workers\n" % k["service"]["public"])
            f.write("%s writer analyst-w\n" % k["writer"]["public"])
            f.write("%s reader analyst-r\n" % k["reader"]["public"])
        self.c.env.update({"KMX_CURVE_BROKER": k["broker"]["public"],
                           "KMX_CURVE_STORAGE": k["storage"]["public"],
                           "KMX_CURVE_ALLOW": allow,
                           "KMX_CURVE_SECRET": k["writer"]["secret"]})
        self.c.proc_env = {
            "kmx-broker": {"KMX_CURVE_SECRET": k["broker"]["secret"]},
            "kmx-storage": {"KMX_CURVE_SECRET": k["storage"]["secret"]},
            "kmx-ingest": {"KMX_CURVE_SECRET": k["service"]["secret"]},
            "kmx-query": {"KMX_CURVE_SECRET": k["service"]["secret"]},
        }
        self.c.start()

    def tearDown(self):
        self.c.close()

    def test_keys_and_roles(self):
        k = self.keys
        writer = kmx.Client(self.c.env["KMX_BROKER"], events=self.c.env["KMX_EVENTS"],
                            curve_secret=k["writer"]["secret"],
                            curve_broker=k["broker"]["public"])
        res = writer.import_file(kmxtest.SAMPLE)
        self.assertEqual(res.rejected, 0)
        reader = kmx.Client(self.c.env["KMX_BROKER"], curve_secret=k["reader"]["secret"],
                            curve_broker=k["broker"]["public"])
        self.assertEqual(reader.query("exports", by="market").rows,
                         writer.query("exports", by="market").rows)
        with self.assertRaises(kmx.Forbidden) as e:
            reader.put([{"kind": "export", "period": "2030", "market": "JP",
                         "category": "physical_album_customs", "item": "x", "value": "1",
                         "unit": "USD", "source": "s"}])
        self.assertEqual(e.exception.code, "FORBIDDEN")
        # Events are encrypted too: the writer's watch replays through CURVE sockets.
        evs = list(writer.watch(since=0, count=3))
        self.assertEqual([e["seq"] for e in evs], [1, 2, 3])
        # A key not on the list and a client without CURVE get no answer at all.
        for secret in (k["stranger"]["secret"], ""):
            outsider = kmx.Client(self.c.env["KMX_BROKER"], timeout=0.5, retries=1,
                                  curve_secret=secret, curve_broker=k["broker"]["public"])
            with self.assertRaises(kmx.Timeout):
                outsider.ping("kmx.broker")
            outsider.close()
        with self.assertRaises(ValueError):
            kmx.Client(self.c.env["KMX_BROKER"], curve_secret="not a key",
                       curve_broker=k["broker"]["public"])


if __name__ == "__main__":
    kmxtest.main()
