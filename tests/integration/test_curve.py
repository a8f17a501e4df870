"""CURVE: every connection encrypted and authenticated against an allow-list with roles.

The broker, storage and the workers get their own keys; the CLI plays a writer, a reader
and a stranger. Writers import and query; readers query and watch but are refused puts
(FORBIDDEN, exit 2); a key not on the list, or a client without CURVE, is never
answered; a worker whose key lacks the service role is not taken by the broker; storage
answers nothing to a plain socket.
"""
import json
import os
import time
import unittest

import zmq

import kmxtest
from kmxtest import Cluster, query_sums_by_market, sample_rows, sums_by_market


def keygen(c):
    return json.loads(c.kmx("keygen", "--format", "json").stdout)


class Curve(unittest.TestCase):
    def setUp(self):
        self.c = Cluster(ingest=1, query=1)
        k = {name: keygen(self.c) for name in
             ("broker", "storage", "service", "writer", "reader", "stranger")}
        self.k = k
        allow = os.path.join(self.c.dir, "allow")
        with open(allow, "w") as f:
            f.write("# kmx allow-list: <public key> <role> [name]\n")
            f.write("%s service storage\n" % k["storage"]["public"])
            f.write("%s service workers\n" % k["service"]["public"])
            f.write("%s writer  analyst-w\n" % k["writer"]["public"])
            f.write("%s reader  analyst-r\n" % k["reader"]["public"])
        self.c.env.update({
            "KMX_CURVE_BROKER": k["broker"]["public"],
            "KMX_CURVE_STORAGE": k["storage"]["public"],
            "KMX_CURVE_ALLOW": allow,
            "KMX_CURVE_SECRET": k["writer"]["secret"],  # the CLI's default key
        })
        self.c.proc_env = {
            "kmx-broker": {"KMX_CURVE_SECRET": k["broker"]["secret"]},
            "kmx-storage": {"KMX_CURVE_SECRET": k["storage"]["secret"]},
            "kmx-ingest": {"KMX_CURVE_SECRET": k["service"]["secret"]},
            "kmx-query": {"KMX_CURVE_SECRET": k["service"]["secret"]},
        }
        self.c.start()
        self.reader = {"KMX_CURVE_SECRET": k["reader"]["secret"]}

    def tearDown(self):
        self.c.close()  # every service must exit 0

    def test_writer_reader_and_strangers(self):
        rows = sample_rows()
        summary = self.c.kmx_json("import", kmxtest.SAMPLE)
        self.assertEqual(summary["rejected"], 0, summary)
        got = query_sums_by_market(self.c.kmx_json("query", "exports", "--by", "market",
                                                   "--granularity", "any"), "export")
        self.assertEqual(got, sums_by_market(rows, "export"))

        # A reader queries and watches, through the broker's ROUTER and XPUB.
        r = self.c.kmx("query", "exports", "--by", "market", "--granularity", "any",
                       "--format", "json", env=self.reader)
        self.assertEqual(query_sums_by_market(json.loads(r.stdout), "export"),
                         sums_by_market(rows, "export"))
        w = self.c.kmx("watch", "--since", "0", "--count", "3", "--format", "json",
                       env=self.reader, timeout=30)
        self.assertEqual(len(w.stdout.splitlines()), 3, w.stderr)

        # ... but may not write: FORBIDDEN, exit 2, nothing stored.
        put = self.c.kmx("put", "--kind", "export", "--period", "2031", "--market", "JP",
                         "--category", "curve_test", "--item", "x", "--source", "test",
                         "--value", "1", "--unit", "USD", check=False, env=self.reader)
        self.assertEqual(put.returncode, 2, put.stderr)
        self.assertIn("permission denied", put.stderr)
        imp = self.c.kmx("import", kmxtest.SAMPLE, check=False, env=self.reader)
        self.assertEqual(imp.returncode, 2, imp.stderr)
        # Nothing of the category was stored, so naming it is an error, not an empty list.
        listed = self.c.kmx("list", "exports", "--category", "curve_test", check=False)
        self.assertEqual(listed.returncode, 1, listed.stderr)
        self.assertIn("unknown category 'curve_test'", listed.stderr)
        self.assertEqual(listed.stdout, "")
        stats = self.c.kmx_json("stats")
        broker = [s for s in stats["services"] if s["service"] == "kmx.broker"][0]
        self.assertGreaterEqual(int(broker["counters"]["forbidden"]), 2)

        # A key not on the list, and a client without CURVE, get no answer at all.
        quick = ("--timeout", "1000", "--retries", "1")
        for env in ({"KMX_CURVE_SECRET": self.k["stranger"]["secret"]},
                    {"KMX_CURVE_SECRET": None}):
            r = self.c.kmx(*quick, "ping", "kmx.broker", check=False, env=env)
            self.assertEqual(r.returncode, 2, (env, r.stdout, r.stderr))
        self.assertIn("connection refused", self.c.logs())

    def test_worker_needs_the_service_role(self):
        # A query worker holding a reader key is refused by the broker.
        self.c.proc_env["kmx-query"] = {"KMX_CURVE_SECRET": self.k["reader"]["secret"]}
        self.c.spawn("query-bad", "kmx-query")
        deadline = time.time() + 10
        while time.time() < deadline and "worker refused" not in self.c.logs():
            time.sleep(0.2)
        self.assertIn("worker refused", self.c.logs())
        workers = [w for w in self.c.kmx_json("stats")["workers"]
                   if w["service"] == "kmx.query" and w.get("alive", True)]
        self.assertEqual(len(workers), 1, workers)

    def curve_socket(self, ctx, kind, key, server_public):
        s = ctx.socket(kind)
        s.setsockopt(zmq.LINGER, 0)
        s.curve_secretkey = bytes.fromhex(self.k[key]["secret"])
        s.curve_publickey = bytes.fromhex(self.k[key]["public"])
        s.curve_serverkey = bytes.fromhex(server_public)
        return s

    def test_reader_may_ping_and_read_stats_but_not_delete(self):
        self.c.kmx_json("import", kmxtest.SAMPLE)
        # docs/security.md: a reader may use kmx.broker (ping, stats) and kmx.query.
        for svc in ("kmx.broker", "kmx.query"):
            self.assertEqual(self.c.kmx("ping", svc, env=self.reader).returncode, 0, svc)
        # A plain ping skips kmx.ingest for the reader's role and passes; named, it fails.
        r = self.c.kmx("ping", check=False, env=self.reader)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("kmx.ingest skipped (permission denied: a reader key may not use "
                      "kmx.ingest)", r.stdout)
        self.assertRegex(r.stdout, r"kmx\.broker ok .*\nkmx\.ingest skipped .*\nkmx\.query ok ")
        ping = json.loads(self.c.kmx("ping", "--format", "json", env=self.reader).stdout)
        self.assertTrue(ping["ok"], ping)
        self.assertEqual([(s["service"], s["ok"], s.get("skipped", False))
                          for s in ping["services"]],
                         [("kmx.broker", True, False), ("kmx.ingest", False, True),
                          ("kmx.query", True, False)], ping)
        self.assertEqual(self.c.kmx("ping", "ingest", check=False, env=self.reader).returncode,
                         2)
        r = self.c.kmx("stats", "--format", "json", check=False, env=self.reader)
        stats = json.loads(r.stdout)
        self.assertEqual({s["service"] for s in stats["services"]},
                         {"kmx.broker", "kmx.query", "kmx.storage"}, stats)
        # kmx.ingest is a writer's: its part of stats is refused, by name.
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("kmx.ingest: permission denied", r.stderr)
        key = ["--kind", "export", "--period", "2024", "--market", "WORLD", "--category",
               "physical_album_customs", "--item", "album exports total (+0.55% YoY)",
               "--source", "Korea Customs Service trade statistics via Yonhap (Korea Times US)"]
        before = self.c.kmx_json("get", *key)
        r = self.c.kmx("delete", *key, check=False, env=self.reader)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("permission denied", r.stderr)
        self.assertEqual(self.c.kmx_json("get", *key), before)  # still there

    def test_only_service_keys_may_publish_or_reach_storage(self):
        ctx = zmq.Context()
        socks = []
        try:
            sub = self.curve_socket(ctx, zmq.SUB, "reader", self.k["broker"]["public"])
            sub.setsockopt(zmq.SUBSCRIBE, b"kmx.curvetest.")
            sub.connect(self.c.env["KMX_EVENTS"])
            socks.append(sub)
            pubs = {}
            for key in ("writer", "service"):
                p = self.curve_socket(ctx, zmq.PUB, key, self.k["broker"]["public"])
                p.connect(self.c.env["KMX_PUBLISH"])
                socks.append(p)
                pubs[key] = p
            # Publish until the service key's message arrives (the subscription takes a
            # moment to reach the publishers); the writer's never may.
            got = set()
            for _ in range(100):
                for key, p in pubs.items():
                    p.send_multipart([b"kmx.curvetest." + key.encode(), b"x"])
                if sub.poll(100):
                    got.add(sub.recv_multipart()[0])
                    while sub.poll(0):
                        got.add(sub.recv_multipart()[0])
                    if b"kmx.curvetest.service" in got:
                        break
            self.assertIn(b"kmx.curvetest.service", got)
            self.assertNotIn(b"kmx.curvetest.writer", got)

            # Storage answers a service key's ping and nothing to a writer's.
            ping = kmxtest._field(1, 2, b"curve") + kmxtest._field(10, 2, b"")
            answered = {}
            for key in ("service", "writer"):
                d = self.curve_socket(ctx, zmq.DEALER, key, self.k["storage"]["public"])
                d.connect(self.c.env["KMX_STORAGE"])
                socks.append(d)
                d.send_multipart([b"\0" * 7 + b"\1", ping])
                answered[key] = bool(d.poll(1500))
            self.assertEqual(answered, {"service": True, "writer": False})
        finally:
            for s in socks:
                s.close()
            ctx.term()

    def test_storage_answers_no_plain_socket(self):
        ctx = zmq.Context()
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.RCVTIMEO, 1000)
        try:
            s.connect(self.c.env["KMX_STORAGE"])
            s.send_multipart([b"", b"\x0a\x02id"])
            with self.assertRaises(zmq.Again):
                s.recv_multipart()
        finally:
            s.close()
            ctx.term()


if __name__ == "__main__":
    kmxtest.main()
