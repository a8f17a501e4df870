"""The broker's queue limits and worker expiry (docs/protocol.md), with the real broker.

Requests to a service without a worker wait in its queue: the per-service request limit,
the per-service byte limit and the total byte limit each refuse the request beyond them at
once with UNAVAILABLE naming the limit. Bytes given back on dispatch: many times the total
limit flows through one broker's life. A query worker stopped (SIGSTOP) while it holds a
request is expired by the broker and the client's retry is answered by the other worker.
"""
import json
import signal
import unittest

import zmq

import kmxtest
from kmxtest import Cluster, FakeWorker, _fields

KIB = 1024
UNAVAILABLE = 3


def error_of(body):
    """(code, message) of a Response carrying an Error, else None."""
    for number, value in _fields(body):
        if number == 2:
            f = dict(_fields(value))
            return f.get(1), f.get(2, b"").decode()
    return None


class QueueLimits(unittest.TestCase):
    def setUp(self):
        self.c = Cluster()
        self.c.proc_env["kmx-broker"] = {
            "KMX_REQUEST_TIMEOUT": "20000",  # queued requests stay queued during the test
            "KMX_BROKER_QUEUE_MAX": "4",
            "KMX_BROKER_SERVICE_QUEUE_BYTES": str(1300 * KIB),
            "KMX_BROKER_QUEUE_BYTES": str(2048 * KIB),
        }
        self.c.start()
        self.ctx = zmq.Context()
        self.socks = []

    def tearDown(self):
        for s in self.socks:
            s.close(linger=0)
        self.ctx.term()
        self.c.close()

    def send(self, service, body):
        """Sends one request on its own socket; returns the socket."""
        s = self.ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(self.c.env["KMX_BROKER"])
        s.send_multipart([b"", b"MDPC01", service.encode(), body])
        self.socks.append(s)
        return s

    def send_queued(self, service, body):
        """send(), then waits until the broker holds the request: each request on its own
        socket reaches the broker in connection order, not in send order, and a limit
        test needs the one beyond the limit to arrive last."""
        want = self.pending() + 1
        s = self.send(service, body)
        kmxtest.wait_for(lambda: self.pending() >= want, 20, 0.05,
                         "the broker to queue request %d" % want)
        return s

    def pending(self):
        stats = self.c.kmx_json("stats", check=False)
        broker = [s for s in stats["services"] if s["service"] == "kmx.broker"][0]
        return int(broker["counters"]["pending"])

    def refused(self, sock, timeout_ms=10000):
        """The UNAVAILABLE message sock got, or None when no answer came (queued)."""
        if not sock.poll(timeout_ms):
            return None
        frames = sock.recv_multipart()
        code, message = error_of(frames[-1])
        self.assertEqual(code, UNAVAILABLE, message)
        return message

    def queued(self, sock):
        self.assertIsNone(self.refused(sock, 300))

    def test_per_service_request_limit(self):
        socks = [self.send_queued("kmx.idle", b"x") for _ in range(4)]
        over = self.send("kmx.idle", b"x")
        msg = self.refused(over)
        self.assertIn("KMX_BROKER_QUEUE_MAX", msg)
        self.assertIn("kmx.idle", msg)
        for s in socks:
            self.queued(s)
        # Another service's queue is its own, and the broker still serves everyone.
        self.queued(self.send("kmx.other", b"x"))
        self.c.kmx("ping")

    def test_per_service_and_total_byte_limits(self):
        body = b"b" * (600 * KIB)
        a = [self.send_queued("kmx.a", body) for _ in range(2)]  # 1200 KiB of kmx.a's 1300
        over_service = self.send("kmx.a", body)
        msg = self.refused(over_service)
        self.assertIn("KMX_BROKER_SERVICE_QUEUE_BYTES", msg)
        b = self.send_queued("kmx.b", body)                # 1800 KiB of the total 2048
        over_total = self.send("kmx.b", body)              # kmx.b alone holds only 600
        msg = self.refused(over_total)
        self.assertIn("KMX_BROKER_QUEUE_BYTES", msg)
        for s in a + [b]:
            self.queued(s)
        # A small request still fits under both limits.
        self.queued(self.send("kmx.b", b"small"))

    def test_more_bytes_than_the_limit_over_the_broker_life(self):
        # Eight times the total limit flows through a worker that answers at once: each
        # dispatch gives its bytes back, so nothing is ever refused.
        sink = FakeWorker(self.c.env["KMX_BROKER"], "kmx.sink", lambda body: b"ok")
        try:
            body = b"s" * (600 * KIB)
            for i in range(28):  # 16.4 MiB in all
                s = self.send("kmx.sink", body)
                self.assertTrue(s.poll(10000), "request %d unanswered" % i)
                self.assertEqual(s.recv_multipart()[-1], b"ok", "request %d refused" % i)
                s.close(linger=0)
                self.socks.remove(s)
            self.assertEqual(sink.requests, 28)
        finally:
            sink.stop()
        stats = self.c.kmx_json("stats")
        broker = [s for s in stats["services"] if s["service"] == "kmx.broker"][0]
        self.assertEqual(int(broker["counters"]["pending"]), 0, broker)
        self.assertEqual(int(broker["counters"]["unavailable"]), 0, broker)


class HungWorker(unittest.TestCase):
    def setUp(self):
        self.c = Cluster(query=2).start()
        self.stopped = None

    def tearDown(self):
        if self.stopped:
            self.stopped.send_signal(signal.SIGCONT)
        self.c.close()

    def test_stopped_worker_is_expired_and_the_retry_served_by_another(self):
        self.c.kmx_json("import", kmxtest.SAMPLE)
        want = self.c.kmx_json("query", "exports", "--by", "market")
        workers = {w["worker"] for w in self.c.kmx_json("stats")["workers"]
                   if w["service"] == "kmx.query"}
        self.assertEqual(len(workers), 2)
        # Stop one worker: the next request the broker hands it is never answered.
        self.stopped = self.c.procs["query0"]
        self.stopped.send_signal(signal.SIGSTOP)
        pid = str(self.stopped.pid)
        # LRU dispatch hands one of two requests to the stopped worker; the client's
        # retry (a fresh try after its timeout) must reach the other one.
        for _ in range(3):
            got = self.c.kmx_json("query", "exports", "--by", "market", "--timeout", "2000",
                                  "--retries", "6", timeout=60)
            self.assertEqual(got["rows"], want["rows"])

        def expired():
            r = self.c.kmx("stats", "--format", "json", "--timeout", "2000", check=False)
            ws = json.loads(r.stdout)["workers"] if r.stdout else []
            return [w for w in ws if w["service"] == "kmx.query" and
                    "-%s-" % pid in w["worker"] and not w["alive"]]
        kmxtest.wait_for(expired, 15, 0.3, what="the stopped worker to be expired")
        alive = [w for w in self.c.kmx_json("stats", "--timeout", "2000")["workers"]
                 if w["service"] == "kmx.query" and w["alive"]]
        self.assertEqual(len(alive), 1, alive)
        # Let it run again: it re-registers and exits 0 at the end like every service.
        self.stopped.send_signal(signal.SIGCONT)
        self.stopped = None


if __name__ == "__main__":
    kmxtest.main()
