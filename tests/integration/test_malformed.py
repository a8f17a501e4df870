"""Malformed requests from the network get an error reply or are dropped, and every
service keeps answering `kmx ping` afterwards.

Uses raw ZeroMQ sockets (pyzmq) to send what no well-behaved client would.
"""
import random
import unittest

import zmq

import kmxtest
from kmxtest import Cluster

MDPC = b"MDPC01"
MDPW = b"MDPW01"


class Malformed(unittest.TestCase):
    def setUp(self):
        self.c = Cluster().start()
        self.ctx = zmq.Context()

    def tearDown(self):
        self.ctx.destroy(linger=0)
        self.c.close()

    def dealer(self, endpoint):
        s = self.ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.RCVTIMEO, 8000)
        s.connect(endpoint)
        return s

    def mdp_call(self, service, body):
        s = self.dealer(self.c.env["KMX_BROKER"])
        s.send_multipart([b"", MDPC, service, body])
        frames = s.recv_multipart()
        s.close()
        self.assertEqual(frames[:3], [b"", MDPC, service])
        return frames[3]

    def assert_error_reply(self, body, code):
        # Response.error (field 2) whose code (field 1) is `code`.
        errors = [dict(kmxtest._fields(v)) for n, v in kmxtest._fields(body) if n == 2]
        self.assertEqual(len(errors), 1, body)
        self.assertEqual(errors[0].get(1), code, body)

    def test_garbage_bodies_get_error_replies(self):
        BAD_REQUEST, UNAVAILABLE = 1, 3
        for service in (b"kmx.ingest", b"kmx.query", b"kmx.broker"):
            self.assert_error_reply(self.mdp_call(service, b"\xff\xff\xff\xff garbage"),
                                    BAD_REQUEST)
            # A truncated protobuf body: a put whose length prefix overruns the frame.
            self.assert_error_reply(self.mdp_call(service, b"\x5a\x40\x0a\x10abc"),
                                    BAD_REQUEST)
        # An unknown service is answered by the broker, not left hanging.
        self.assert_error_reply(self.mdp_call(b"kmx.nosuch", b""), UNAVAILABLE)
        self.c.kmx("ping")

    def test_requests_a_service_does_not_handle_are_unsupported(self):
        UNSUPPORTED = 6
        query = kmxtest._field(1, 2, b"q") + kmxtest._field(13, 2, b"")  # Request.query
        put = kmxtest._field(1, 2, b"p") + kmxtest._field(11, 2, b"")    # Request.put
        self.assert_error_reply(self.mdp_call(b"kmx.ingest", query), UNSUPPORTED)
        self.assert_error_reply(self.mdp_call(b"kmx.query", put), UNSUPPORTED)
        self.assert_error_reply(self.mdp_call(b"kmx.broker", put), UNSUPPORTED)
        # A get of a key nothing is stored under: NOT_FOUND, exit 1 in the CLI.
        r = self.c.kmx("get", "--kind", "export", "--period", "2024", "--market", "JP",
                       "--category", "none", "--item", "none", "--source", "none",
                       check=False)
        self.assertEqual((r.returncode, r.stderr), (1, "kmx: no such record\n"))

    def test_protocol_garbage_is_dropped(self):
        rnd = random.Random(kmxtest.seed())
        broker = self.dealer(self.c.env["KMX_BROKER"])
        storage = self.dealer(self.c.env["KMX_STORAGE"])
        shapes = [
            [b"garbage"],
            [b"", b"MDPC99", b"kmx.query", b"x"],
            [b"", MDPC],
            [b"", MDPW, b"\x09"],
            [b"", MDPW, b"\x03", b"client-that-does-not-exist", b"", b"reply"],
            [b"", MDPW, b"\x02"],
            [b"", MDPC, b"kmx.ingest"],
            [b"", MDPC, b"", b""],
        ]
        for frames in shapes:
            broker.send_multipart(frames)
        for _ in range(200):
            n = rnd.randint(1, 6)
            broker.send_multipart([rnd.randbytes(rnd.randint(0, 40)) for _ in range(n)])
            storage.send_multipart([rnd.randbytes(rnd.randint(0, 40)) for _ in range(n)])
        # Storage with a well-formed correlation id but a garbage body answers an error.
        # Random frames may themselves look like a correlation id and get answers, so read
        # until ours comes back (bounded by the socket's receive timeout).
        corr = b"\x5a" * 8
        storage.send_multipart([corr, b"\xff\xfe garbage"])
        for _ in range(500):
            frames = storage.recv_multipart()
            if frames[0] == corr:
                break
        self.assertEqual(frames[0], corr)
        self.assert_error_reply(frames[1], 1)
        broker.close()
        storage.close()
        # Every service is still alive and answering.
        for service in ("kmx.broker", "kmx.ingest", "kmx.query"):
            self.c.kmx("ping", service)
        summary = self.c.kmx_json("import", kmxtest.SAMPLE)
        self.assertEqual(summary["rejected"], 0)


if __name__ == "__main__":
    kmxtest.main()
