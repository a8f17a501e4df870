"""kmx-gateway against a real service set: every endpoint, bad input for each, bearer
tokens and roles, limits, and Server-Sent Events that resume with Last-Event-ID across a
storage restart with no gap and no duplicate.

Answers are compared with what the kmx CLI prints for the same question (`--format
json`): the gateway must give the same JSON, not a look-alike.
"""
import http.client
import json
import os
import signal
import socket
import subprocess
import time
import unittest
import urllib.parse

import kmxtest
from kmxtest import Cluster

READER = "reader-token-7f3a9c2e11d04b6a"
WRITER = "writer-token-c81e5d7a90f24b3e"


class Gateway:
    """A kmx-gateway process of a cluster, on a free loopback port."""

    def __init__(self, cluster, env=None, name="gateway"):
        self.c = cluster
        self.name = name
        self.port = kmxtest.free_port()
        self.env = dict(KMX_GATEWAY_BIND="127.0.0.1:%d" % self.port,
                        KMX_GATEWAY_HEARTBEAT_MS="300", KMX_TIMEOUT="3000")
        self.env.update(env or {})

    def start(self):
        self.c.proc_env["kmx-gateway"] = self.env
        self.c.spawn(self.name, "kmx-gateway")
        end = time.time() + 15
        while time.time() < end:
            try:
                status, _, _ = self.request("GET", "/healthz")
                if status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError("gateway not healthy: " + self.c.logs())

    def request(self, method, path, body=None, headers=None, timeout=20):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()

    def json(self, method, path, want=200, **kw):
        status, headers, body = self.request(method, path, **kw)
        if status != want:
            raise AssertionError("%s %s: %d (wanted %d): %s" % (method, path, status, want,
                                                                 body[:500]))
        self.assert_json_type(headers)
        return json.loads(body)

    def error(self, method, path, want, **kw):
        """A refusal: the status, and a JSON error naming the problem."""
        doc = self.json(method, path, want=want, **kw)
        self.assert_error(doc, want)
        return doc["error"]["message"]

    @staticmethod
    def assert_json_type(headers):
        ctype = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
        assert ctype.startswith("application/json"), ctype

    @staticmethod
    def assert_error(doc, status):
        err = doc.get("error", {})
        assert err.get("status") == status and err.get("code") and err.get("message"), doc


def q(**params):
    """A query string from keyword arguments; list values repeat the key."""
    pairs = []
    for k, v in params.items():
        for x in v if isinstance(v, list) else [v]:
            pairs.append((k, x))
    return urllib.parse.urlencode(pairs)


class SSE:
    """A raw Server-Sent Events reader: (id, data) messages and comment lines."""

    def __init__(self, port, path, last_event_id=None, headers=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        extra = "".join("%s: %s\r\n" % kv for kv in (headers or {}).items())
        if last_event_id is not None:
            extra += "Last-Event-ID: %s\r\n" % last_event_id
        self.sock.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n%s\r\n"
                           % (path, extra)).encode())
        self.buf = b""
        head = self._until(b"\r\n\r\n", 10)
        self.status = int(head.split(b" ", 2)[1])
        self.head = head.decode(errors="replace")
        self.chunked = b"chunked" in head.lower()
        self.text = ""
        self.comments = []  # every comment line seen, in order

    def _until(self, marker, timeout):
        end = time.time() + timeout
        while marker not in self.buf:
            if time.time() > end:
                raise AssertionError("timed out waiting for %r" % marker)
            self.sock.settimeout(max(0.05, end - time.time()))
            data = self.sock.recv(65536)
            if not data:
                raise AssertionError("stream closed")
            self.buf += data
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def _pump(self, timeout):
        """Moves decoded body text from the socket into self.text."""
        if self.chunked:
            size_line = self._until(b"\r\n", timeout)
            size = int(size_line.strip().split(b";")[0], 16)
            if size == 0:
                raise AssertionError("stream ended")
            while len(self.buf) < size + 2:
                self.sock.settimeout(timeout)
                data = self.sock.recv(65536)
                if not data:
                    raise AssertionError("stream closed")
                self.buf += data
            self.text += self.buf[:size].decode()
            self.buf = self.buf[size + 2:]
        else:
            self.sock.settimeout(timeout)
            data = self.sock.recv(65536)
            if not data:
                raise AssertionError("stream closed")
            self.text += data.decode()

    def message(self, timeout=10):
        """The next message: {'id': int or None, 'data': obj, 'comments': [...]}."""
        end = time.time() + timeout
        comments = []
        while True:
            while "\n\n" not in self.text:
                if time.time() > end:
                    raise AssertionError("no message within %ss (comments %s)" % (timeout,
                                                                                 comments))
                self._pump(max(0.05, end - time.time()))
            block, self.text = self.text.split("\n\n", 1)
            fields = {"comments": comments, "id": None, "data": None, "event": None}
            for line in block.split("\n"):
                if line.startswith(":"):
                    comments.append(line[1:].strip())
                    self.comments.append(line[1:].strip())
                elif line.startswith("id: "):
                    fields["id"] = int(line[4:])
                elif line.startswith("data: "):
                    fields["data"] = json.loads(line[6:])
                elif line.startswith("event: "):
                    fields["event"] = line[7:]
            if fields["id"] is not None or fields["event"]:
                return fields

    def wait_comment(self, prefix, timeout=10):
        """Reads until a comment starting with prefix arrives; returns it."""
        end = time.time() + timeout
        while not any(c.startswith(prefix) for c in self.comments):
            if time.time() > end:
                raise AssertionError("no comment %r in %s" % (prefix, self.comments[-5:]))
            while "\n\n" in self.text:
                block, self.text = self.text.split("\n\n", 1)
                self.comments += [x[1:].strip() for x in block.split("\n") if x.startswith(":")]
                if any(x.startswith("id: ") for x in block.split("\n")):
                    raise AssertionError("an event where a comment was expected: " + block)
            if not any(c.startswith(prefix) for c in self.comments):
                self._pump(max(0.05, end - time.time()))
        return [c for c in self.comments if c.startswith(prefix)][0]

    def events(self, n, timeout=20):
        return [self.message(timeout) for _ in range(n)]

    def close(self):
        self.sock.close()


def record_key(**kw):
    base = dict(kind="export", period="2026", market="JP", category="physical_album_customs",
                item="gateway test", source="kmx gateway test")
    base.update(kw)
    return base


CSV_HEADER = "kind,period,market,category,item,value,unit,source\n"


def csv_rows(n, start=0, period="2026"):
    return CSV_HEADER + "".join(
        "export,%s,JP,physical_album_customs,gateway row %d,%d.5,USD_million,kmx gateway test\n"
        % (period, i, i) for i in range(start, start + n))


class GatewayApi(unittest.TestCase):
    """Every endpoint without tokens, beside the CLI's answers."""

    @classmethod
    def setUpClass(cls):
        cls.c = Cluster().start()
        cls.c.kmx("import", kmxtest.SAMPLE)
        cls.g = Gateway(cls.c, env={"KMX_GATEWAY_MAX_BODY": "65536",
                                    "KMX_GATEWAY_MAX_QUERY": "512",
                                    "KMX_GATEWAY_MAX_STREAMS": "2"}).start()

    @classmethod
    def tearDownClass(cls):
        cls.c.close()

    def test_query_is_the_cli_json_for_every_option(self):
        cases = [
            ("exports", ["--period", "2024", "--by", "market"]),
            ("exports", ["--category", "physical_album_customs", "--unit", "USD",
                         "--period", "2024", "--by", "market", "--top", "3", "--other",
                         "--share", "--growth", "yoy"]),
            ("exports", ["--category", "physical_album_customs", "--granularity", "year",
                         "--by", "year,market", "--metrics", "sum,count,min,max,avg"]),
            ("exports", ["--from", "2020", "--to", "2024", "--market", "japan", "--market",
                         "US", "--category", "physical_album_customs", "--granularity",
                         "year", "--by", "period", "--time-series"]),
            ("exports", ["--region", "Japan", "--latest", "--by", "category"]),
            ("consumption", ["--period", "2024", "--by", "item", "--dimension",
                             "main_music_service_share"]),
        ]
        for kind, args in cases:
            want = self.c.kmx_json("query", kind, *args)
            params = []
            it = iter(args)
            for flag in it:
                name = flag[2:]
                if name in ("other", "share", "time-series", "latest"):
                    params.append((name, ""))
                else:
                    params.append((name, next(it)))
            path = "/v1/query/%s?%s" % (kind, urllib.parse.urlencode(params))
            self.assertEqual(self.g.json("GET", path), want, path)
        # The kind may also be a parameter.
        self.assertEqual(self.g.json("GET", "/v1/query?kind=exports&period=2024&by=market"),
                         self.c.kmx_json("query", "exports", "--period", "2024", "--by",
                                         "market"))

    def test_query_refusals_name_the_problem(self):
        msg = self.g.error("GET", "/v1/query/exports?colour=red", 400)
        self.assertIn("colour", msg)
        msg = self.g.error("GET", "/v1/query/exports?period=2025-H3", 400)
        self.assertIn("2025-H3", msg)
        msg = self.g.error("GET", "/v1/query/exports?growth=weekly", 400)
        self.assertIn("weekly", msg)
        msg = self.g.error("GET", "/v1/query/exports?share=perhaps", 400)
        self.assertIn("share", msg)
        msg = self.g.error("GET", "/v1/query?period=2024", 400)
        self.assertIn("kind", msg)
        msg = self.g.error("GET", "/v1/query?kind=gadgets", 400)
        self.assertIn("gadgets", msg)
        # The services' own refusals pass through with their words, as the CLI shows them.
        cli = self.c.kmx("query", "exports", "--period", "2024", "--by", "market", "--share",
                         check=False)
        self.assertEqual(cli.returncode, 1)
        msg = self.g.error("GET", "/v1/query/exports?period=2024&by=market&share", 400)
        self.assertIn(msg, cli.stderr)
        msg = self.g.error("GET", "/v1/query/exports?" + "market=JP&" * 60, 414)
        self.assertIn("512", msg)
        self.g.error("POST", "/v1/query/exports", 405)
        self.g.error("GET", "/v1/nothing", 404)
        self.g.error("GET", "/v1/records?top=3", 400)

    def test_records_pages_are_the_listing(self):
        want = self.c.kmx_lines("list")
        got, token, pages = [], None, 0
        while True:
            path = "/v1/records?limit=7" + ("&page_token=" + token if token else "")
            page = self.g.json("GET", path)
            self.assertLessEqual(len(page["records"]), 7)
            got += page["records"]
            token = page["next_page_token"]
            pages += 1
            if not token:
                break
            self.assertLess(pages, 1000)
        self.assertEqual(got, want)
        self.assertGreater(pages, 1)
        filtered = self.g.json("GET", "/v1/records?" + q(kind="export", market="JP",
                                                          limit=1000))["records"]
        self.assertEqual(filtered, self.c.kmx_lines("list", "exports", "--market", "JP"))
        self.assertIn("page_token", self.g.error("GET", "/v1/records?page_token=zz", 400))
        self.assertIn("1000", self.g.error("GET", "/v1/records?limit=5000", 400))
        self.assertIn("limit", self.g.error("GET", "/v1/records?limit=0", 400))

    def test_record_get_is_the_cli_record(self):
        some = self.c.kmx_lines("list", "exports", "--market", "JP")[0]
        key = dict(kind=some["kind"], period=some["period"], market=some["market"],
                   category=some["category"], item=some["item"], source=some["source"])
        args = [x for k, v in key.items() for x in ("--" + k, v)]
        want = self.c.kmx_json("get", *args)
        self.assertEqual(self.g.json("GET", "/v1/record?" + q(**key)), want)
        status, _, _ = self.g.request("HEAD", "/v1/record?" + q(**key))
        self.assertEqual(status, 200)
        missing = dict(key, item="no such item")
        self.assertIn("no record", self.g.error("GET", "/v1/record?" + q(**missing), 404))
        self.assertIn("--period", self.g.error("GET", "/v1/record?kind=export", 400))
        self.assertIn("region", self.g.error("GET", "/v1/record?" + q(region="Japan", **key),
                                             400))

    def test_catalog_and_history_are_the_cli_json(self):
        self.assertEqual(self.g.json("GET", "/v1/catalog"), self.c.kmx_json("catalog"))
        self.assertEqual(self.g.json("GET", "/v1/catalog?kind=exports"),
                         self.c.kmx_json("catalog", "exports"))
        self.assertIn("gadgets", self.g.error("GET", "/v1/catalog?kind=gadgets", 400))
        # The 2022 customs total: published preliminary, then revised.
        rec = [r for r in self.c.kmx_lines("list", "exports", "--market", "WORLD", "--period",
                                           "2022", "--category", "physical_album_customs")][0]
        key = dict(kind="export", period="2022", market="WORLD",
                   category="physical_album_customs", item=rec["item"], source=rec["source"])
        args = [x for k, v in key.items() for x in ("--" + k, v)]
        want = self.c.kmx_lines("history", *args)
        doc = self.g.json("GET", "/v1/history?" + q(**key))
        self.assertEqual(doc["events"], want)
        self.assertEqual([e["record"]["status"] for e in doc["events"]],
                         ["preliminary", "revised"])
        self.g.error("GET", "/v1/history?" + q(**dict(key, item="no such item")), 404)
        self.assertIn("--period", self.g.error("GET", "/v1/history?kind=export", 400))

    def test_import_csv_and_jsonl_give_per_row_results(self):
        body = (CSV_HEADER
                + "export,2027,JP,physical_album_customs,ok row,1.5,USD_million,gw import\n"
                + "export,2027-13,JP,physical_album_customs,bad period,1,USD,gw import\n"
                + "export,2027,Atlantis,physical_album_customs,bad market,1,USD,gw import\n")
        doc = self.g.json("POST", "/v1/import", body=body,
                          headers={"Content-Type": "text/csv"})
        self.assertEqual((doc["rows"], doc["stored"], doc["rejected"]), (3, 1, 2), doc)
        self.assertEqual([r["row"] for r in doc["rejected_rows"]], [3, 4])
        self.assertEqual([r["field"] for r in doc["rejected_rows"]], ["period", "market"])
        # The same file through the CLI gives the same summary (but for the time taken):
        # the second time everything is already stored.
        path = os.path.join(self.c.dir, "gw.csv")
        with open(path, "w") as f:
            f.write(body)
        cli = json.loads(self.c.kmx("import", path, "--format", "json", check=False).stdout)
        again = self.g.json("POST", "/v1/import?input=csv", body=body)
        for d in (cli, again):
            d.pop("seconds")
        self.assertEqual(again, cli)
        self.assertEqual(again["unchanged"], 1)
        jsonl = ('{"kind":"export","period":"2027","market":"US","category":'
                 '"physical_album_customs","item":"jsonl row","value":"2","unit":"USD_million",'
                 '"source":"gw import"}\n')
        doc = self.g.json("POST", "/v1/import", body=jsonl,
                          headers={"Content-Type": "application/x-ndjson"})
        self.assertEqual((doc["rows"], doc["stored"]), (1, 1), doc)
        self.assertEqual(self.c.kmx_json("get", "--kind", "export", "--period", "2027",
                                         "--market", "US", "--category",
                                         "physical_album_customs", "--item", "jsonl row",
                                         "--source", "gw import")["value"], "2000000")
        # dry_run and atomic store nothing.
        doc = self.g.json("POST", "/v1/import?input=csv&dry_run=1", body=csv_rows(2, 500))
        self.assertEqual((doc["stored"], doc["dry_run"]), (0, True), doc)
        doc = self.g.json("POST", "/v1/import?input=csv&atomic=1",
                          body=csv_rows(1, 600) + "export,2027-13,JP,x,y,1,USD,z\n")
        self.assertEqual((doc["stored"], doc["atomic_refused"]), (0, True), doc)
        # Nothing of it was stored: no record holds the item, so naming it is refused.
        r = self.c.kmx("list", "--item", "gateway row 500", check=False)
        self.assertEqual((r.returncode, r.stdout), (1, ""), r.stderr)
        self.assertIn("unknown item 'gateway row 500'", r.stderr)

    def test_import_has_every_option_of_kmx_import(self):
        # Each set of kmx import's options, as query parameters: a dry run through HTTP is
        # the CLI's dry run of the same file, per-row results, warnings and preview alike.
        def read(name):
            with open(os.path.join(os.path.dirname(kmxtest.SAMPLE), name), "rb") as f:
                return f.read()
        ko = ("종류;기간;나라;분류;품목;금액;단위;출처;색상\n"
              "수출;2024-01-15;일본;gw_opts;음반;1,000;천달러;관세청;빨강\n"
              "수출;1/2/2024;미국;gw_opts;음반;5;백만달러;관세청;파랑\n").encode("cp949")
        excel = b"kind,date,market,category,item,value,unit,source\nexport,45292,KOR,gw_opts,i,1,USD,s\n"
        cases = [
            (ko, ["--map", "나라=market", "--ignore-extra", "--date-order", "mdy",
                  "--encoding", "cp949", "--delimiter", "semicolon"],
             "map=%EB%82%98%EB%9D%BC%3Dmarket&ignore_extra=1&date_order=mdy&encoding=cp949"
             "&delimiter=semicolon", 2),
            (ko, ["--map", "나라=market", "--ignore-extra", "--date-order", "dmy"],
             "map=" + urllib.parse.quote("나라=market") + "&ignore-extra=true&date-order=dmy",
             1),  # the first row is the case above's, unchanged
            (excel, ["--excel-dates", "--default", "note=from excel"],
             "excel_dates=1&default=note%3Dfrom%20excel", 1),
            (excel, [], "", 0),  # without excel_dates the serial day is that row's error
            (read("kosis-album-exports-cp949.csv"), ["--wide"], "layout=wide", None),
            (read("music-services-semicolon.csv"), ["--delimiter", ";"], "delimiter=%3B", None),
        ]
        for i, (body, flags, params, stored) in enumerate(cases):
            path = os.path.join(self.c.dir, "gw_opts_%d.csv" % i)
            with open(path, "wb") as f:
                f.write(body)
            cli = json.loads(self.c.kmx("import", path, *flags, "--dry-run", "--format", "json",
                                        check=False).stdout)
            http = self.g.json("POST", "/v1/import?input=csv&dry_run=1&" + params, body=body)
            for d in (cli, http):
                d.pop("seconds")
            self.assertEqual(http, cli, (flags, params))
            if stored is not None:
                self.assertEqual(self.g.json("POST", "/v1/import?input=csv&" + params,
                                             body=body)["stored"], stored, params)
        rec = self.c.kmx_json("get", "--kind", "export", "--period", "2024-01", "--market", "KR",
                              "--category", "gw_opts", "--item", "i", "--source", "s")
        self.assertEqual(rec["note"], "from excel")
        # layout=long on a wide file: refused whole, the period columns named.
        wide = cases[4][0]
        self.assertIn('"2019"', self.g.error("POST", "/v1/import?input=csv&layout=long", 400,
                                             body=wide))
        # A bad value for each parameter: 400 naming the parameter, nothing stored.
        before = self.c.kmx_lines("list", "--category", "gw_opts")
        bad = {"map": ["nofield", "=market", "header="], "layout": ["tall"],
               "date_order": ["ymd"], "encoding": ["latin1"], "delimiter": ["x", "tabs"],
               "excel_dates": ["maybe"], "ignore_extra": ["2"], "atomic": ["yes"],
               "dry_run": ["sometimes"], "default": ["novalue"], "input": ["xml"]}
        for name, values in bad.items():
            for v in values:
                msg = self.g.error("POST", "/v1/import?input=csv&%s=%s" % (
                    name, urllib.parse.quote(v)), 400, body=excel)
                self.assertIn(name.split("_")[0], msg, (name, v))
        self.assertEqual(self.c.kmx_lines("list", "--category", "gw_opts"), before)
        self.assertEqual(len(before), 4)  # 2 + 1 from the Korean file, 1 from the Excel one

    def test_import_refusals(self):
        self.assertIn("Content-Type", self.g.error("POST", "/v1/import", 400, body="a,b\n"))
        self.assertIn("empty", self.g.error("POST", "/v1/import?input=csv", 400, body=""))
        self.assertIn("input", self.g.error("POST", "/v1/import?input=xml", 400, body="x"))
        self.assertIn("65536", self.g.error("POST", "/v1/import?input=csv", 413,
                                            body=csv_rows(3000)))
        msg = self.g.error("POST", "/v1/import?input=csv", 400, body="colour,period\nred,2024\n")
        self.assertIn("colour", msg)
        self.g.error("GET", "/v1/import", 405)
        self.assertIn("unknown", self.g.error("POST", "/v1/import?batch=3", 400, body="x"))

    def test_delete_then_get_is_404(self):
        key = record_key(item="to delete")
        self.g.json("POST", "/v1/import?input=csv",
                    body=CSV_HEADER + "export,2026,JP,physical_album_customs,to delete,1,USD,"
                    "kmx gateway test\n")
        self.g.json("GET", "/v1/record?" + q(**key))
        doc = self.g.json("DELETE", "/v1/record?" + q(**key))
        self.assertEqual(doc["outcome"], "deleted")
        self.assertIsInstance(doc["seq"], int)
        self.g.error("GET", "/v1/record?" + q(**key), 404)
        self.g.error("DELETE", "/v1/record?" + q(**key), 404)
        partial = {k: v for k, v in key.items() if k != "source"}
        self.assertIn("source", self.g.error("DELETE", "/v1/record?" + q(**partial), 400))

    def test_metrics_and_healthz(self):
        doc = self.g.json("GET", "/healthz")
        self.assertTrue(doc["ok"])
        self.g.json("GET", "/v1/query/exports?period=2024&by=market")
        status, headers, body = self.g.request("GET", "/metrics")
        self.assertEqual(status, 200)
        text = body.decode()
        self.assertIn('kmx_up{service="kmx.broker"} 1', text)
        self.assertIn('kmx_up{service="kmx.ingest"} 1', text)
        self.assertIn('kmx_up{service="kmx.query"} 1', text)
        self.assertIn('kmx_up{service="kmx.storage"} 1', text)
        self.assertRegex(text, r'kmx_gateway_requests_total\{endpoint="query",status="200"\} '
                               r'[1-9]')
        self.assertRegex(text, r'kmx_worker_requests_total\{service="kmx.query",worker="[^"]+"'
                               r'\} [1-9]')
        self.assertRegex(text, r'\nkmx_broker_\w+\{worker="[^"]+"\} \d+')
        self.assertRegex(text, r'\nkmx_storage_\w+\{worker="[^"]+"\} \d+')
        for line in text.splitlines():  # every sample line parses as name{labels} value
            if line and not line.startswith("#"):
                self.assertRegex(line, r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? \d+$')

    def test_events_limits_and_bad_parameters(self):
        self.assertIn("since", self.g.error("GET", "/v1/events?since=-4", 400))
        self.assertIn("unknown", self.g.error("GET", "/v1/events?colour=1", 400))
        s = SSE(self.g.port, "/v1/events", last_event_id="abc")
        self.assertEqual(s.status, 400)
        s.close()
        a = SSE(self.g.port, "/v1/events")
        b = SSE(self.g.port, "/v1/events")
        self.assertEqual((a.status, b.status), (200, 200))
        self.assertIn("2 event streams", self.g.error("GET", "/v1/events", 429))
        a.close()
        b.close()
        end = time.time() + 10  # the gateway notices closed streams at its next write
        status = 429
        while status == 429 and time.time() < end:
            time.sleep(0.2)
            c = SSE(self.g.port, "/v1/events")
            status = c.status
            c.close()
        self.assertEqual(status, 200)


class GatewayTokens(unittest.TestCase):
    """Bearer tokens: none -> 401, reader's write -> 403, writer may write."""

    @classmethod
    def setUpClass(cls):
        cls.c = Cluster().start()
        path = os.path.join(cls.c.dir, "tokens")
        with open(path, "w") as f:
            f.write("# kmx-gateway tokens\n%s reader dashboard\n%s writer loader\n"
                    % (READER, WRITER))
        cls.g = Gateway(cls.c, env={"KMX_GATEWAY_TOKENS": path}).start()

    @classmethod
    def tearDownClass(cls):
        cls.c.close()

    def auth(self, token):
        return {"Authorization": "Bearer " + token}

    def test_roles(self):
        path = "/v1/query/exports?period=2024&by=market"
        self.assertIn("token", self.g.error("GET", path, 401))
        self.g.error("GET", path, 401, headers=self.auth("not-a-token-at-all-0000"))
        self.g.json("GET", path, headers=self.auth(READER))
        self.g.json("GET", path, headers=self.auth(WRITER))
        self.g.json("GET", "/healthz")  # health probes carry no token
        self.g.error("GET", "/metrics", 401)
        self.assertEqual(self.g.request("GET", "/metrics", headers=self.auth(READER))[0], 200)
        body = csv_rows(1)
        msg = self.g.error("POST", "/v1/import?input=csv", 403, body=body,
                           headers=self.auth(READER))
        self.assertIn("reader", msg)
        self.assertEqual(self.c.kmx_lines("list"), [])  # nothing was stored
        doc = self.g.json("POST", "/v1/import?input=csv", body=body, headers=self.auth(WRITER))
        self.assertEqual(doc["stored"], 1)
        key = "/v1/record?" + q(**record_key(item="gateway row 0"))
        self.g.error("DELETE", key, 403, headers=self.auth(READER))
        self.g.json("GET", key, headers=self.auth(READER))
        self.g.json("DELETE", key, headers=self.auth(WRITER))
        # Event streams: EventSource cannot send headers, so access_token= works too.
        s = SSE(self.g.port, "/v1/events?since=0")
        self.assertEqual(s.status, 401)
        s.close()
        s = SSE(self.g.port, "/v1/events?since=0&access_token=" + READER)
        self.assertEqual(s.status, 200)
        self.assertEqual([m["id"] for m in s.events(2)], [1, 2])
        s.close()


class GatewayCurve(unittest.TestCase):
    """With CURVE on, the gateway connects with its own key: with the service role it
    serves reads, writes and events; a gateway whose key is a reader's gets the broker's
    refusal of a write as 403; one without a listed key is never answered (503)."""

    def setUp(self):
        self.c = Cluster()
        keys = {n: json.loads(self.c.kmx("keygen", "--format", "json").stdout)
                for n in ("broker", "storage", "service", "gateway", "reader", "cli")}
        allow = os.path.join(self.c.dir, "allow")
        with open(allow, "w") as f:
            f.write("%s service storage\n%s service workers\n%s service gateway\n"
                    "%s reader gateway-ro\n%s writer cli\n"
                    % (keys["storage"]["public"], keys["service"]["public"],
                       keys["gateway"]["public"], keys["reader"]["public"],
                       keys["cli"]["public"]))
        self.c.env.update({"KMX_CURVE_BROKER": keys["broker"]["public"],
                           "KMX_CURVE_STORAGE": keys["storage"]["public"],
                           "KMX_CURVE_ALLOW": allow,
                           "KMX_CURVE_SECRET": keys["cli"]["secret"]})
        self.c.proc_env = {
            "kmx-broker": {"KMX_CURVE_SECRET": keys["broker"]["secret"]},
            "kmx-storage": {"KMX_CURVE_SECRET": keys["storage"]["secret"]},
            "kmx-ingest": {"KMX_CURVE_SECRET": keys["service"]["secret"]},
            "kmx-query": {"KMX_CURVE_SECRET": keys["service"]["secret"]},
        }
        self.keys = keys
        self.c.start()

    def tearDown(self):
        self.c.close()

    def gateway(self, secret, name):
        g = Gateway(self.c, env={"KMX_CURVE_SECRET": secret, "KMX_TIMEOUT": "1000",
                                 "KMX_RETRIES": "1"}, name=name)
        g.env["KMX_GATEWAY_BIND"] = "127.0.0.1:%d" % g.port
        return g

    def test_the_gateway_key(self):
        g = self.gateway(self.keys["gateway"]["secret"], "gateway").start()
        doc = g.json("POST", "/v1/import?input=csv", body=csv_rows(3))
        self.assertEqual(doc["stored"], 3, doc)
        self.assertEqual(len(g.json("GET", "/v1/records")["records"]), 3)
        s = SSE(g.port, "/v1/events?since=0")
        self.assertEqual([m["id"] for m in s.events(3)], [1, 2, 3])
        s.close()
        ro = self.gateway(self.keys["reader"]["secret"], "gateway-ro").start()
        self.assertEqual(len(ro.json("GET", "/v1/records")["records"]), 3)
        self.assertIn("permission denied",
                      ro.error("POST", "/v1/import?input=csv", 403, body=csv_rows(1, 50)))
        stranger = json.loads(self.c.kmx("keygen", "--format", "json").stdout)
        other = self.gateway(stranger["secret"], "gateway-x")
        self.c.proc_env["kmx-gateway"] = other.env
        self.c.spawn(other.name, "kmx-gateway")
        end = time.time() + 10
        status = None
        while time.time() < end and status is None:
            try:
                status = other.request("GET", "/healthz")[0]
            except OSError:
                time.sleep(0.1)
        self.assertEqual(status, 503)


class GatewayEvents(unittest.TestCase):
    """SSE: replay then live, prefixes, and Last-Event-ID across a storage restart."""

    def setUp(self):
        self.c = Cluster().start()
        self.g = Gateway(self.c).start()

    def tearDown(self):
        self.c.close()

    def import_rows(self, n, start, period="2026"):
        doc = self.g.json("POST", "/v1/import?input=csv", body=csv_rows(n, start, period))
        self.assertEqual(doc["stored"], n, doc)
        return doc["last_seq"]

    def test_replay_then_live_with_prefix_and_cli_shape(self):
        last = self.import_rows(5, 0)
        self.c.kmx("import", kmxtest.SAMPLE)
        s = SSE(self.g.port, "/v1/events?since=0&prefix=export.JP.2026")
        got = s.events(5)
        self.assertEqual([m["id"] for m in got], list(range(1, 6)))
        self.assertEqual(got[-1]["data"]["seq"], last)
        cli = self.c.kmx_lines("watch", "--since", "0", "--count", "5", "export.JP.2026")
        self.assertEqual([m["data"] for m in got], cli)  # the JSON of kmx watch
        live = self.import_rows(2, 100)
        got = s.events(2)
        self.assertEqual([m["id"] for m in got], [live - 1, live])
        self.assertTrue(all(m["data"]["topic"].startswith("export.JP.2026") for m in got))
        s.close()
        # A stream with no since starts at the newest event: only what comes after.
        s = SSE(self.g.port, "/v1/events")
        self.assertEqual(s.wait_comment("kmx events after"), "kmx events after %d" % live)
        live = self.import_rows(1, 200)
        self.assertEqual([m["id"] for m in s.events(1)], [live])
        s.close()

    def test_last_event_id_across_a_storage_restart(self):
        self.import_rows(20, 0)
        s = SSE(self.g.port, "/v1/events?since=0")
        first = s.events(12)
        self.assertEqual([m["id"] for m in first], list(range(1, 13)))
        s.close()  # the browser goes away after event 12
        # A second stream stays open through the restart.
        kept = SSE(self.g.port, "/v1/events?since=20")
        self.assertEqual(self.c.stop("storage"), 0)
        time.sleep(0.5)
        self.c.spawn("storage", "kmx-storage")
        self.c.wait_ready()
        last = self.import_rows(15, 100)
        self.assertEqual(last, 35)
        # Reconnecting with Last-Event-ID: 12 gives 13..35, no gap, no duplicate.
        s = SSE(self.g.port, "/v1/events?since=0", last_event_id=12)
        got = s.events(23, timeout=30)
        self.assertEqual([m["id"] for m in got], list(range(13, 36)))
        self.assertEqual([m["data"]["seq"] for m in got], list(range(13, 36)))
        s.close()
        got = kept.events(15, timeout=30)
        self.assertEqual([m["id"] for m in got], list(range(21, 36)))
        # Heartbeats are comments and carry the newest sequence covered.
        kept.wait_comment("heartbeat 35")
        kept.close()

    def test_compact_form_and_a_ring_that_wraps(self):
        # A ring of 16 events: its byte rings wrap every few events, streams that fall
        # behind it replay; every stream still gets every event once, in order.
        small = Gateway(self.c, env={"KMX_GATEWAY_RING": "16"}, name="gateway_small").start()
        streams = {form: SSE(small.port, "/v1/events?form=" + form) for form in ("full", "compact")}
        jp = SSE(small.port, "/v1/events?form=compact&prefix=export.JP.2025")
        for s in list(streams.values()) + [jp]:
            s.wait_comment("kmx events after")
        for batch in range(4):
            self.import_rows(10, batch * 10, period="2025" if batch % 2 else "2026")
        full = streams["full"].events(40)
        compact = streams["compact"].events(40)
        self.assertEqual([m["id"] for m in full], list(range(1, 41)))
        self.assertEqual([m["id"] for m in compact], list(range(1, 41)))
        for f, c in zip(full, compact):
            d = f["data"]
            self.assertEqual(c["data"], {"seq": d["seq"], "type": d["type"], "topic": d["topic"],
                                         "value": d["record"]["value"],
                                         "unit": d["record"]["unit"],
                                         "previous": d["previous"],
                                         "committed_ms": d["committed_ms"]})
        self.assertEqual([m["id"] for m in jp.events(20)], list(range(11, 21)) + list(range(31, 41)))
        late = SSE(small.port, "/v1/events?since=3&form=compact")  # before the ring: replays
        self.assertEqual([m["data"] for m in late.events(37)], [m["data"] for m in compact[3:]])
        self.assertIn("form", self.g.error("GET", "/v1/events?form=tiny", 400))
        for s in list(streams.values()) + [jp, late]:
            s.close()

    def test_two_gateways_serve_the_same_streams(self):
        other = Gateway(self.c, name="gateway2").start()
        self.import_rows(3, 0)
        for g in (self.g, other):
            s = SSE(g.port, "/v1/events?since=0")
            self.assertEqual([m["id"] for m in s.events(3)], [1, 2, 3])
            s.close()
        self.assertEqual(self.g.json("GET", "/v1/records")["records"],
                         other.json("GET", "/v1/records")["records"])


if __name__ == "__main__":
    kmxtest.main()
