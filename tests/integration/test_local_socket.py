"""kmx-query --local PATH (KMX_LOCAL_SOCKET): a query worker also answers processes of its
host on a unix socket, without the broker's hop (docs/architecture.md, "The local read
socket"); libkmx and the CLI reach it with the endpoint unix:PATH.

- Every read answers on the local socket as it does through the broker, from a worker
  reading storage's files (--read-dir) and from one asking storage; a read after an
  acknowledged write sees it, every time.
- Writes and other services are refused on it by name, and nothing is stored.
- The socket file is the worker's: mode 0660, a second worker on the same path is refused,
  the file a killed worker left is taken over by its restart, a clean stop removes it.
- Bytes that are no request (garbage, a length over the limit, half a message) get an
  Error or a closed connection, and the worker goes on answering both sides.
"""
import json
import os
import signal
import socket
import stat
import struct
import time
import unittest

import kmxtest
from kmxtest import Cluster, _fields

# A packed kmx.v1.Request: request_id "py" (field 1), a PingRequest body (field 10).
PING = b"\x0a\x02py" + b"\x52\x00"

KEY = ["--kind", "export", "--market", "JP", "--category", "physical_album_customs",
       "--item", "local socket check", "--source", "kmx test"]


def read_log(cluster, name):
    with open(os.path.join(cluster.dir, name + ".log"), errors="replace") as f:
        return f.read()


def exchange(path, payload, timeout=5):
    """Sends payload as-is on a fresh connection; returns the first framed answer's body,
    or None when the worker closed the connection without one."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(payload)
        head = b""
        while len(head) < 4:
            part = s.recv(4 - len(head))
            if not part:
                return None
            head += part
        (n,) = struct.unpack(">I", head)
        body = b""
        while len(body) < n:
            part = s.recv(n - len(body))
            if not part:
                return None
            body += part
        return body


def error_of(body):
    """(code, message) of a Response holding an Error, else None."""
    for number, value in _fields(body):
        if number == 2:
            fields = dict(_fields(value))
            return fields.get(1), fields.get(2, b"").decode()
    return None


class LocalSocket(unittest.TestCase):
    def setUp(self):
        self.c = Cluster(query=1)
        self.direct = os.path.join(self.c.dir, "q0.sock")
        self.linked = os.path.join(self.c.dir, "q1.sock")
        self.c.proc_env["kmx-query"] = {"KMX_READ_DIR": self.c.data_dir,
                                        "KMX_LOCAL_SOCKET": self.direct}
        self.c.start()
        # A second worker without --read-dir: its local answers come through storage.
        self.c.proc_env["kmx-query"] = {}
        self.c.spawn("query1", "kmx-query", "--local", self.linked)
        self.c.n_query = 2
        self.c.wait_ready()

    def tearDown(self):
        self.c.close()

    def local(self, path, *args, **kw):
        return self.c.kmx("--broker", "unix:" + path, *args, **kw)

    def local_json(self, path, *args):
        return json.loads(self.local(path, *args, "--format", "json").stdout)

    def test_reads_answer_as_through_the_broker(self):
        self.c.kmx_json("import", kmxtest.SAMPLE)
        questions = [("query", "consumption", "--by", "market", "--granularity", "any"),
                     ("query", "exports", "--category", "physical_album_customs", "--by", "market",
                      "--top", "3", "--unit", "USD"),
                     ("list", "exports", "--market", "JP"),
                     ("catalog",)]
        for q in questions:
            want = self.c.kmx(*q, "--format", "json").stdout
            for path in (self.direct, self.linked):
                self.assertEqual(self.local(path, *q, "--format", "json").stdout, want,
                                 (q, path))
        # Read-your-writes on both paths: each acknowledged put is seen by the next get.
        for i in range(10):
            period = "2024-%02d" % (i + 1)
            self.c.kmx("put", *KEY, "--period", period, "--value", str(500 + i), "--unit", "USD")
            for path in (self.direct, self.linked):
                rec = self.local_json(path, "get", *KEY, "--period", period)
                self.assertEqual(rec["value"], str(500 + i), (path, rec))
        pong = self.local(self.direct, "ping", "kmx.query").stdout
        self.assertIn("kmx.query ok (worker query-", pong)
        self.assertEqual(stat.S_IMODE(os.stat(self.direct).st_mode), 0o660)
        # The worker counts what its socket answered (kmx stats asked on it: the broker's
        # and ingest's parts are refused there, the worker's own are printed).
        mine = self.worker_counters(self.direct)
        self.assertGreaterEqual(mine["local_requests"], 15, mine)
        self.assertEqual(mine["local_connections"], 1, mine)
        self.assertEqual(mine["local_refused"], 0, mine)
        # Their own work is timed apart from the socket's reads and writes: some for each
        # get, and less than the gets' wall time.
        t0 = time.monotonic()
        for _ in range(5):
            self.local_json(self.direct, "get", *KEY, "--period", "2024-01")
        wall_us = (time.monotonic() - t0) * 1e6
        after = self.worker_counters(self.direct)
        work = after["local_work_us"] - mine["local_work_us"]
        self.assertGreater(work, 0, (mine, after))
        self.assertLess(work, wall_us, (mine, after))
        self.assertIn("local=%s" % self.direct, read_log(self.c, "query0"))

    def test_writes_are_refused_and_nothing_is_stored(self):
        self.c.kmx("put", *KEY, "--period", "2024-05", "--value", "7", "--unit", "USD")
        r = self.local(self.direct, "put", *KEY, "--period", "2024-05", "--value", "8",
                       "--unit", "USD", check=False)
        self.assertEqual(r.returncode, 2, r)
        self.assertIn("answers kmx.query only: send this to the broker", r.stderr)
        r = self.local(self.direct, "import", kmxtest.SAMPLE, check=False)
        self.assertNotEqual(r.returncode, 0, r)
        self.assertIn("answers kmx.query only", r.stderr)
        self.assertEqual(self.c.kmx_json("get", *KEY, "--period", "2024-05")["value"], "7")
        self.assertEqual(len(self.c.kmx_lines("list")), 1)

    def test_the_socket_file_belongs_to_its_worker(self):
        # A second worker on a live path is refused, by name, and the first goes on.
        dup = self.c.spawn("dup", "kmx-query", "--local", self.direct)
        self.assertNotEqual(dup.wait(timeout=20), 0)
        self.c.procs.pop("dup")
        self.assertIn("another process listens on the local socket path", read_log(self.c, "dup"))
        self.local(self.direct, "ping", "kmx.query")

        # Killed: the client says nobody answers there; restarted on the file it left: served.
        self.c.stop("query0", sig=signal.SIGKILL)
        self.assertTrue(os.path.exists(self.direct))
        r = self.local(self.direct, "ping", "kmx.query", "--retries", "1", check=False)
        self.assertEqual(r.returncode, 2, r)
        self.assertIn("no kmx-query answers on this local read socket", r.stderr)
        self.c.proc_env["kmx-query"] = {"KMX_READ_DIR": self.c.data_dir}
        self.c.spawn("query0", "kmx-query", "--local", self.direct)
        kmxtest.wait_for(lambda: self.local(self.direct, "ping", "kmx.query", "--retries", "1",
                                            check=False).returncode == 0,
                         deadline=20, what="the restarted worker on its old socket file")

        # A clean stop removes the file.
        self.assertEqual(self.c.stop("query1"), 0)
        self.assertFalse(os.path.exists(self.linked))

    def test_read_socket_beside_the_broker(self):
        # --read-socket (KMX_READ_SOCKET): reads on the socket, writes through the broker.
        before = self.worker_counters(self.direct)["local_requests"]
        for i in range(5):
            period = "2025-%02d" % (i + 1)
            self.c.kmx("--read-socket", self.direct, "put", *KEY, "--period", period,
                       "--value", str(70 + i), "--unit", "USD")
            rec = self.c.kmx_json("get", *KEY, "--period", period,
                                  env={"KMX_READ_SOCKET": self.direct})
            self.assertEqual(rec["value"], str(70 + i), rec)
        after = self.worker_counters(self.direct)["local_requests"]
        self.assertEqual(after - before, 6, (before, after))  # 5 gets and the first stats
        # No worker on the socket: the broker answers the read, with one warning.
        self.c.stop("query1")
        r = self.c.kmx("--read-socket", self.linked, "get", *KEY, "--period", "2025-01",
                       "--format", "json")
        self.assertEqual(json.loads(r.stdout)["value"], "70")
        self.assertIn("reads go to the broker", r.stderr)
        r = self.c.kmx("--broker", "unix:" + self.direct, "--read-socket", self.direct, "ping",
                       check=False)
        self.assertEqual(r.returncode, 2, r)
        self.assertIn("beside a broker endpoint", r.stderr)

    def test_gateway_reads_on_the_sockets(self):
        # kmx-gateway --read-socket (KMX_READ_SOCKET, a list): its reads on the workers'
        # sockets, its imports through the broker, every answer what the CLI prints.
        from test_gateway import Gateway, csv_rows, q
        self.c.kmx_json("import", kmxtest.SAMPLE)
        before = [self.worker_counters(p)["local_requests"] for p in (self.direct, self.linked)]
        g = Gateway(self.c, env={"KMX_READ_SOCKET": "%s,%s" % (self.direct, self.linked)})
        g.start()
        for _ in range(4):
            self.assertEqual(g.json("GET", "/v1/query/exports?period=2024&by=market"),
                             self.c.kmx_json("query", "exports", "--period", "2024", "--by",
                                             "market"))
            self.assertEqual(g.json("GET", "/v1/catalog"), self.c.kmx_json("catalog"))
        doc = g.json("POST", "/v1/import?input=csv", body=csv_rows(3, period="2027"))
        self.assertEqual(doc["stored"], 3, doc)
        some = self.c.kmx_lines("list", "exports", "--period", "2027")[0]
        key = dict(kind=some["kind"], period=some["period"], market=some["market"],
                   category=some["category"], item=some["item"], source=some["source"])
        self.assertEqual(g.json("GET", "/v1/record?" + q(**key)),
                         self.c.kmx_json("get", *[x for k, v in key.items()
                                                  for x in ("--" + k, v)]))
        after = [self.worker_counters(p)["local_requests"] for p in (self.direct, self.linked)]
        served = [a - b for a, b in zip(after, before)]
        self.assertGreaterEqual(sum(served), 9, served)  # 8 reads and a get, plus stats
        self.assertIn("read_sockets=%s,%s" % (self.direct, self.linked),
                      read_log(self.c, "gateway"))
        # A path no unix socket can have, or an empty one in the list: the gateway says so
        # and does not start.
        for i, paths in enumerate(("/" + "x" * 200, "%s,,%s" % (self.direct, self.linked))):
            bad = Gateway(self.c, env={"KMX_READ_SOCKET": paths}, name="badgw%d" % i)
            self.c.proc_env["kmx-gateway"] = bad.env
            proc = self.c.spawn("badgw%d" % i, "kmx-gateway")
            self.assertNotEqual(proc.wait(timeout=20), 0, paths)
            self.c.procs.pop("badgw%d" % i)
            self.assertIn("unix socket path of 1 to 107 bytes", read_log(self.c, "badgw%d" % i))

    def test_neither_side_keeps_the_other_out(self):
        # The broker keeps both workers busy (50 requests always outstanding): local clients
        # are still answered, one turn each, and the broker's clients still are too.
        import threading
        import zmq
        ctx = zmq.Context()
        dealer = ctx.socket(zmq.DEALER)
        dealer.setsockopt(zmq.LINGER, 0)
        dealer.connect(self.c.env["KMX_BROKER"])
        answered, stop = [0], threading.Event()

        def pump():
            for _ in range(50):
                dealer.send_multipart([b"", b"MDPC01", b"kmx.query", PING])
            while not stop.is_set():
                if dealer.poll(1000):
                    dealer.recv_multipart()
                    answered[0] += 1
                    dealer.send_multipart([b"", b"MDPC01", b"kmx.query", PING])

        t = threading.Thread(target=pump)
        t.start()
        try:
            kmxtest.wait_for(lambda: answered[0] > 200, what="the broker's clients answered")
            seen = answered[0]
            for _ in range(100):
                body = exchange(self.direct, struct.pack(">I", len(PING)) + PING, timeout=5)
                self.assertIsNotNone(body)
                self.assertIsNone(error_of(body), body)
            self.assertGreater(answered[0], seen)  # the broker's side went on meanwhile
        finally:
            stop.set()
            t.join(timeout=10)
            dealer.close()
            ctx.term()

    def worker_counters(self, path):
        """The kmx.query counters of the worker on path, asked on its socket (the broker's
        and ingest's parts of kmx stats are refused there: exit 2)."""
        r = self.local(path, "stats", "--format", "json", check=False)
        self.assertEqual(r.returncode, 2, r)
        mine = [s for s in json.loads(r.stdout)["services"] if s["service"] == "kmx.query"]
        self.assertEqual(len(mine), 1, r.stdout)
        return mine[0]["counters"]

    def test_many_connections_leave_nothing_behind(self):
        # A worker that runs for months sees connections come and go, some of them broken:
        # its descriptors and connection slots come back each time.
        self.c.kmx("put", *KEY, "--period", "2024-07", "--value", "3", "--unit", "USD")
        before = self.worker_counters(self.direct)
        for i in range(600):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(5)
                s.connect(self.direct)
                if i % 3 == 0:
                    s.sendall(struct.pack(">I", 1000) + b"half")  # gone inside a message
                elif i % 3 == 1:
                    s.sendall(struct.pack(">I", len(PING)) + PING)
                    self.assertEqual(len(s.recv(4)), 4)
        after = kmxtest.wait_for(
            lambda: (lambda c: c if c["local_connections"] == 1 else None)(
                self.worker_counters(self.direct)), what="connections closed")
        self.assertGreaterEqual(after["local_requests"] - before["local_requests"], 200, after)
        self.assertEqual(after["local_refused"], 0, after)
        self.assertLessEqual(after["open_fds"], before["open_fds"], (before, after))
        self.assertLess(after["rss_bytes"], before["rss_bytes"] + (4 << 20), (before, after))
        self.assertEqual(self.local_json(self.direct, "get", *KEY, "--period",
                                         "2024-07")["value"], "3")

    def test_bytes_that_are_no_request(self):
        self.c.kmx("put", *KEY, "--period", "2024-06", "--value", "9", "--unit", "USD")
        # A framed body that is no protobuf Request: a BAD_REQUEST Error.
        body = exchange(self.direct, struct.pack(">I", 5) + b"\xff\xff\xff\xff\xff")
        self.assertIsNotNone(body)
        self.assertEqual(error_of(body)[0], 1)
        # A length over the limit: TOO_LARGE, naming the way out, and the connection closed.
        body = exchange(self.direct, struct.pack(">I", 64 << 20))
        code, message = error_of(body)
        self.assertEqual(code, 5)
        self.assertIn("send it to the broker", message)
        # Half a message, then gone.
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(self.direct)
            s.sendall(struct.pack(">I", 100) + b"abc")
        # Both sides still answer.
        self.assertEqual(self.local_json(self.direct, "get", *KEY, "--period",
                                         "2024-06")["value"], "9")
        self.assertEqual(self.c.kmx_json("get", *KEY, "--period", "2024-06")["value"], "9")


if __name__ == "__main__":
    kmxtest.main()
