"""Harness for kmx integration tests: real binaries on free loopback ports.

A Cluster starts kmx-broker, kmx-storage and any number of kmx-ingest and kmx-query
workers in a fresh temporary data directory, runs the kmx CLI against them, and stops
everything at the end. Every wait is bounded; nothing listens beyond 127.0.0.1.
"""
import csv
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
from decimal import ROUND_HALF_UP, Decimal

BIN = os.environ.get("KMX_BIN_DIR", "")
SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SAMPLE = os.path.join(SOURCE_DIR, "data", "kmusic-facts.csv")
MAGNITUDE = {"thousand": 10**3, "million": 10**6, "billion": 10**9, "trillion": 10**12}


def free_port():
    """A loopback port free now. Another process may take it before a service binds it:
    Cluster.start() notices a service that could not bind and starts over on new ports."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seed(name="KMX_SEED"):
    """The seed of a randomised test: $KMX_SEED when set, else a fresh one. Printed, so a
    failing run can be repeated with KMX_SEED=<seed>."""
    value = os.environ.get(name)
    n = int(value) if value else random.randrange(1 << 31)
    print("seed %d (repeat with %s=%d)" % (n, name, n), flush=True)
    return n


def require_all():
    """True on the CI machine (scripts/test.sh sets KMX_REQUIRE_ALL=1): there setup.sh
    installed every prerequisite, so a missing one is a failure, not a skip."""
    return os.environ.get("KMX_REQUIRE_ALL") == "1"


def wait_for(predicate, deadline=10.0, interval=0.05, what="condition"):
    """Polls predicate() until it returns a true value (returned) or raises AssertionError
    after deadline seconds: the bounded wait every test uses instead of a sleep."""
    end = time.time() + deadline
    while True:
        got = predicate()
        if got:
            return got
        if time.time() >= end:
            raise AssertionError("timed out after %.1fs waiting for %s" % (deadline, what))
        time.sleep(interval)


def service_help_ok(testcase, argv, env=None):
    """Asserts that argv (a --help or --version call) exits 0 within 10 s with stdin from
    /dev/null, prints to stdout and nothing to stderr. Returns stdout."""
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=10, env=env)
    testcase.assertEqual(r.returncode, 0, (argv, r.stdout, r.stderr))
    testcase.assertTrue(r.stdout.strip(), argv)
    testcase.assertEqual(r.stderr, "", argv)
    return r.stdout


def normalize_unit(unit, value):
    """Mirrors kmx's unit folding: ('USD_million', '1.5') -> ('USD', Decimal('1500000'))."""
    base, _, suffix = unit.rpartition("_")
    if base and suffix.lower() in MAGNITUDE:
        return base.upper() if len(base) == 3 else base, Decimal(value) * MAGNITUDE[suffix.lower()]
    return (unit.upper() if len(unit) == 3 else unit), Decimal(value)


def sample_rows(path=SAMPLE):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


STATUS_ORDER = {"preliminary": 1, "revised": 2, "final": 3}


def natural_key(row):
    """A CSV row's natural key as kmx forms it: its dimensions and its source."""
    return (row["kind"], row["period"], row["market"], category_of(row), row.get("item", ""),
            row.get("company", ""), row.get("artist", ""), row["source"])


def current_rows(rows):
    """The figures a store holds after importing rows: a later row with the same natural
    key replaces the kept one when its status is a later revision (preliminary ->
    revised -> final), as kmx applies it; any other repeat is refused by kmx."""
    kept = {}
    for r in rows:
        k = natural_key(r)
        old = kept.get(k)
        if old is None or STATUS_ORDER.get(r.get("status") or "", 0) > \
                STATUS_ORDER.get(old.get("status") or "", 99):
            kept[k] = r
    return list(kept.values())


def sample_facts(path=SAMPLE):
    """The sample file's current figures: what `kmx list` shows after importing it."""
    return current_rows(sample_rows(path))


def category_of(row):
    """A CSV row's category (exports) or dimension (consumption), whatever the header."""
    for column in ("category_or_dimension", "category", "dimension"):
        if row.get(column):
            return row[column]
    return ""


def split_field(kind):
    """The key kmx adds to a query that neither pins one category nor groups by it
    (docs/queries.md): 'category' for exports, 'dimension' for consumption."""
    return "dimension" if kind == "consumption" else "category"


# Units that add up (docs/queries.md, "Units know whether they add"; common/kmx_unit.c):
# money (three-letter currency codes) and these counts. Every other unit (percentages,
# growth rates, ranks, indexes, per-capita figures, durations, levels such as countries)
# is answered with its average, never a sum.
ADDITIVE_COUNTS = {"albums", "attendees", "concerts", "copies", "count", "listeners", "people",
                   "performances", "respondents", "streams", "tracks", "units", "users",
                   "views"}


def unit_adds(unit):
    return (len(unit) == 3 and unit.isupper()) or unit in ADDITIVE_COUNTS


def value_of(total, count, unit):
    """What kmx shows for a group: the sum for a unit that adds, else the average (sum /
    count, rounded half away from zero to 0.0001)."""
    if unit_adds(unit):
        return total
    return (total / count).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


def sums_by(rows, kind, key):
    """What kmx answers per (key(row), unit) for a CSV file, computed independently of kmx:
    sums, or averages for a unit that does not add (value_of). key may return one value or
    a tuple of values: keys are then (*key(row), unit)."""
    out, counts = {}, {}
    for r in current_rows(rows):
        if r["kind"] != kind:
            continue
        unit, value = normalize_unit(r["unit"], r["value"])
        k = key(r)
        k = (k if isinstance(k, tuple) else (k,)) + (unit,)
        out[k] = out.get(k, Decimal(0)) + value
        counts[k] = counts.get(k, 0) + 1
    return {k: value_of(v, counts[k], k[-1]) for k, v in out.items()}


def sums_by_market(rows, kind):
    """{(market, category, unit): sum} of a CSV file: what `kmx query KIND --by market
    --granularity any` answers, since different categories are never added together."""
    return sums_by(rows, kind, lambda r: (r["market"], category_of(r)))


FAILED = subprocess.CompletedProcess([], 1, "", "")


class Cluster:
    def __init__(self, ingest=1, query=1, log_level="info"):
        self.dir = tempfile.mkdtemp(prefix="kmx-it-")
        self.data_dir = os.path.join(self.dir, "data")
        self.env = dict(os.environ)
        self.env.update({
            "KMX_DATA_DIR": self.data_dir,
            "KMX_LOG_LEVEL": log_level,
            "KMX_TIMEOUT": "5000",
        })
        self.new_ports()
        # Extra environment per binary name ("kmx-storage": {...}), e.g. its CURVE key.
        self.proc_env = {}
        # Extra keyword arguments of subprocess.Popen per binary name (e.g. preexec_fn).
        self.proc_kw = {}
        self.procs = {}
        self.n_ingest, self.n_query = ingest, query

    def new_ports(self):
        """Picks fresh loopback ports for every endpoint (the environment follows)."""
        p = {name: free_port() for name in ("broker", "events", "publish", "storage")}
        self.env.update({
            "KMX_BROKER_BIND": "tcp://127.0.0.1:%d" % p["broker"],
            "KMX_EVENTS_BIND": "tcp://127.0.0.1:%d" % p["events"],
            "KMX_PUBLISH_BIND": "tcp://127.0.0.1:%d" % p["publish"],
            "KMX_BROKER": "tcp://127.0.0.1:%d" % p["broker"],
            "KMX_EVENTS": "tcp://127.0.0.1:%d" % p["events"],
            "KMX_PUBLISH": "tcp://127.0.0.1:%d" % p["publish"],
            "KMX_STORAGE_BIND": "tcp://127.0.0.1:%d" % p["storage"],
            "KMX_STORAGE": "tcp://127.0.0.1:%d" % p["storage"],
        })
        self.ports = p

    # -- processes ------------------------------------------------------------------
    def spawn(self, name, binary, *args):
        log = open(os.path.join(self.dir, name + ".log"), "ab")
        # KMX_WRAP runs each service under a tool, e.g. KMX_WRAP="valgrind --error-exitcode=99
        # --leak-check=full" to check that the services are valgrind-clean.
        wrap = os.environ.get("KMX_WRAP", "").split()
        env = dict(self.env, **self.proc_env.get(binary, {}))
        proc = subprocess.Popen([*wrap, os.path.join(BIN, binary), *args], env=env,
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                **self.proc_kw.get(binary, {}))
        log.close()
        self.procs[name] = proc
        return proc

    def start(self):
        """Starts every service and waits until they answer. free_port() cannot reserve a
        port, so a service that lost its port to another process (a parallel test) exits
        with "cannot bind": then everything starts over on new ports (3 tries)."""
        for attempt in range(3):
            self.spawn("broker", "kmx-broker")
            self.spawn("storage", "kmx-storage")
            for i in range(self.n_ingest):
                self.spawn("ingest%d" % i, "kmx-ingest")
            for i in range(self.n_query):
                self.spawn("query%d" % i, "kmx-query")
            try:
                self.wait_ready()
                return self
            except AssertionError:
                if attempt == 2 or not self.lost_a_port():
                    raise
            print("a port was taken before its service bound it: new ports", flush=True)
            for name in list(self.procs):
                self.stop(name, sig=signal.SIGKILL)
            self.new_ports()
        return self

    def lost_a_port(self):
        """True when broker or storage exited because its endpoint was already bound."""
        for name in ("broker", "storage"):
            proc = self.procs.get(name)
            if proc is not None and proc.poll() is not None:
                with open(os.path.join(self.dir, name + ".log"), errors="replace") as f:
                    if "cannot bind" in f.read():
                        return True
        return False

    def wait_ready(self, services=("kmx.ingest", "kmx.query"), deadline=15.0):
        """Waits until ping answers, the broker knows every worker this cluster started (a
        worker that registers late would otherwise miss the requests a test expects it to
        share) and, when there is a query worker, storage answers through it (stats
        carries kmx.storage): a storage still starting would fail the first read."""
        if os.environ.get("KMX_WRAP"):
            deadline *= 4  # services under valgrind start many times slower
        end = time.time() + deadline
        want = {"kmx.ingest": self.n_ingest, "kmx.query": self.n_query}
        seen = None
        # Ping only what this cluster runs: a service without workers never answers.
        pings = [["ping"]] if all(want.values()) else \
            [["ping", s] for s in ("kmx.broker",) + tuple(s for s, n in want.items() if n)]
        def answers(*args):  # one bounded try: a slow start (valgrind) is not an error
            try:
                return self.kmx("--timeout", "3000", "--retries", "1", *args, check=False,
                                timeout=20)
            except subprocess.TimeoutExpired:
                return None
        while time.time() < end:
            if self.lost_a_port():
                raise AssertionError("a service could not bind its port: %s" % self.logs())
            if all((answers(*p) or FAILED).returncode == 0 for p in pings):
                r = answers("stats", "--format", "json") or FAILED
                try:
                    # A service without workers fails stats (exit 2); the broker's part
                    # is printed all the same.
                    stats = json.loads(r.stdout) if r.stdout else {}
                except ValueError:
                    stats = {}
                workers = stats.get("workers", [])
                storage_up = not self.n_query or "storage" not in self.procs or any(
                    x.get("service") == "kmx.storage" for x in stats.get("services", []))
                seen = {}
                for w in workers:
                    if w.get("alive", True):
                        seen[w.get("service")] = seen.get(w.get("service"), 0) + 1
                if storage_up and all(seen.get(s, 0) >= n for s, n in want.items()
                                      if s in services):
                    return
            time.sleep(0.2)
        raise AssertionError("services not ready (workers seen: %s): %s" % (seen, self.logs()))

    def stop(self, name, sig=signal.SIGTERM, timeout=10):
        proc = self.procs.pop(name)
        if proc.poll() is None:
            proc.send_signal(sig)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError("%s did not stop within %ss" % (name, timeout))

    def close(self, check=True):
        """Stops every service with SIGTERM and removes the directory; returns {name: exit
        status}. With check (the default) every service must have exited 0: a crash, a
        sanitizer or leak report at exit, or a hang fails the test, with the logs."""
        codes, logs = {}, ""
        try:
            for name in list(self.procs):
                codes[name] = self.stop(name)
        finally:
            bad = {k: v for k, v in codes.items() if v != 0}
            if check and bad:
                logs = self.logs()
            shutil.rmtree(self.dir, ignore_errors=True)
        if check and bad:
            raise AssertionError("services did not exit 0: %s\n%s" % (bad, logs))
        return codes

    def logs(self):
        out = []
        for f in sorted(os.listdir(self.dir)):
            if f.endswith(".log"):
                with open(os.path.join(self.dir, f), errors="replace") as fh:
                    out.append("--- %s\n%s" % (f, fh.read()[-3000:]))
        return "\n".join(out)

    # -- the CLI --------------------------------------------------------------------
    def kmx(self, *args, check=True, timeout=60, input=None, env=None):
        """Runs the CLI; env adds to (or, with a None value, removes from) the cluster's."""
        run_env = dict(self.env)
        for k, v in (env or {}).items():
            if v is None:
                run_env.pop(k, None)
            else:
                run_env[k] = v
        r = subprocess.run([os.path.join(BIN, "kmx"), *args], env=run_env, input=input,
                           capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError("kmx %s exited %d\nstdout: %s\nstderr: %s\n%s" % (
                " ".join(args), r.returncode, r.stdout[-2000:], r.stderr[-2000:], self.logs()))
        return r

    def kmx_json(self, *args, **kw):
        r = self.kmx(*args, "--format", "json", **kw)
        return json.loads(r.stdout)

    def kmx_lines(self, *args, **kw):
        r = self.kmx(*args, "--format", "json", **kw)
        return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]

    def watch(self, *args, fmt="json"):
        """Starts `kmx watch ... --format FMT` in the background; returns the process."""
        return subprocess.Popen([os.path.join(BIN, "kmx"), "watch", *args, "--format", fmt],
                                env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)


# -- a raw document straight over ZeroMQ, as a client in any language would send it ------
def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number, wire, payload):
    key = _varint(number << 3 | wire)
    if wire == 0:
        return key + _varint(payload)
    return key + _varint(len(payload)) + payload


def _fields(buf):
    """Yields (number, value) of a protobuf message: ints for varints, bytes otherwise."""
    i = 0
    while i < len(buf):
        key, i = _read_varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _read_varint(buf, i)
        elif wire == 2:
            n, i = _read_varint(buf, i)
            value, i = buf[i:i + n], i + n
        elif wire == 1:
            value, i = buf[i:i + 8], i + 8
        elif wire == 5:
            value, i = buf[i:i + 4], i + 4
        else:
            raise ValueError("wire type %d" % wire)
        yield number, value


def _read_varint(buf, i):
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def encode_document(data, fmt=1, atomic=False, validate_only=False, header=None,
                    first_line=None, defaults=()):
    """A packed kmx.v1.Request carrying a RawDocument (fmt 1 = CSV, 2 = JSON Lines)."""
    doc = _field(1, 0, fmt) + _field(2, 2, data)
    if atomic:
        doc += _field(3, 0, 1)
    if header is not None:
        doc += _field(4, 2, header.encode())
    if first_line is not None:
        doc += _field(5, 0, first_line)
    for column, value in defaults:
        doc += _field(6, 2, _field(1, 2, column.encode()) + _field(2, 2, value.encode()))
    if validate_only:
        doc += _field(7, 0, 1)
    return _field(1, 2, b"py-doc") + _field(19, 2, doc)


def decode_put_reply(body):
    """{'stored', 'unchanged', 'rejected', 'records', 'results': [...]} from a Response
    holding a PutResult, or {'error_code', 'message', 'results'} for an Error."""
    out = {"results": []}
    for number, value in _fields(body):
        if number == 11:
            names = {2: "stored", 3: "unchanged", 4: "rejected", 6: "duplicates", 7: "records"}
            for n, v in _fields(value):
                if n in names:
                    out[names[n]] = v
                elif n == 1:
                    out["results"].append(_decode_result(v))
        elif number == 2:
            for n, v in _fields(value):
                if n == 1:
                    out["error_code"] = v
                elif n == 2:
                    out["message"] = v.decode()
                elif n == 3:
                    out["results"].append(_decode_result(v))
    return out


def _decode_result(buf):
    names = {1: "index", 2: "outcome", 3: "field", 4: "reason", 6: "row", 7: "column",
             8: "duplicate_of", 9: "duplicate_row"}
    r = {}
    for n, v in _fields(buf):
        if n in names:
            r[names[n]] = v.decode() if isinstance(v, bytes) else v
    return r


def send_document(cluster, data, timeout_ms=30000, **kw):
    """Sends a RawDocument to kmx.ingest through the broker with pyzmq and decodes the
    reply. Nothing but this process's own bytes and the MDP framing is involved."""
    import zmq
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(cluster.env["KMX_BROKER"])
        sock.send_multipart([b"", b"MDPC01", b"kmx.ingest", encode_document(data, **kw)])
        if not sock.poll(timeout_ms):
            raise AssertionError("no reply from kmx.ingest within %d ms" % timeout_ms)
        frames = sock.recv_multipart()
        return decode_put_reply(frames[-1])
    finally:
        sock.close()
        ctx.term()


def parse_table(text):
    """The rows of a kmx table (header, a line of dashes, rows, an optional "(N rows...)"
    footer) as dicts of stripped strings, cut at the columns the dashes mark."""
    lines = text.splitlines()
    if len(lines) < 2:
        raise AssertionError("not a table: %r" % text)
    cols, pos = [], 0
    for dashes in lines[1].split():
        start = lines[1].index(dashes, pos)
        pos = start + len(dashes)
        cols.append((start, pos))
    # The last column runs to the end of the line (a value may be wider than its dashes
    # only where the table does not pad, i.e. at the end).
    cols[-1] = (cols[-1][0], None)
    names = [lines[0][a:b].strip() for a, b in cols]
    rows = []
    for line in lines[2:]:
        if not line.strip() or re.match(r"\(\d+ rows?\b", line) or \
                re.match(r"(note|alternative): ", line):
            continue
        rows.append({n: line[a:b].strip() for n, (a, b) in zip(names, cols)})
    return rows


def encode_error_response(code, message, request_id=b""):
    """A packed kmx.v1.Response carrying Error{code, message}."""
    err = _field(1, 0, code) + _field(2, 2, message.encode())
    return (_field(1, 2, request_id) if request_id else b"") + _field(2, 2, err)


def request_id_of(body):
    """The request_id (field 1) of a packed kmx.v1.Request, b"" when absent or garbled."""
    try:
        for number, value in _fields(body):
            if number == 1 and isinstance(value, bytes):
                return value
    except (ValueError, IndexError):
        pass
    return b""


class FakeWorker:
    """A 7/MDP worker in this process (pyzmq, a thread) registered for service: a real
    protocol peer that answers each request with reply(body) -> bytes, or never answers
    when reply returns None. It heartbeats, so the broker keeps it. stop() disconnects."""

    def __init__(self, endpoint, service, reply):
        import threading
        import zmq
        self.endpoint, self.service, self.reply = endpoint, service.encode(), reply
        self.requests = 0
        self.errors = []  # exceptions raised by reply (answered INTERNAL)
        self._stop = threading.Event()
        self._zmq = zmq
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        zmq = self._zmq
        ctx = zmq.Context()
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(self.endpoint)
        s.send_multipart([b"", b"MDPW01", b"\x01", self.service])
        beat = time.time()
        while not self._stop.is_set():
            if s.poll(100):
                frames = s.recv_multipart()
                if len(frames) >= 6 and frames[2] == b"\x02":
                    self.requests += 1
                    try:
                        out = self.reply(frames[5])
                    except Exception as e:  # noqa: BLE001 - reported by the test, not here
                        self.errors.append(e)
                        out = encode_error_response(4, "fake worker: %r" % e)
                    if out is not None:
                        s.send_multipart([b"", b"MDPW01", b"\x03", frames[3], b"", out])
                elif len(frames) >= 3 and frames[2] == b"\x05":
                    s.send_multipart([b"", b"MDPW01", b"\x01", self.service])
            if time.time() - beat > 1.0:
                s.send_multipart([b"", b"MDPW01", b"\x04"])
                beat = time.time()
        s.send_multipart([b"", b"MDPW01", b"\x05"])
        s.close()
        ctx.term()

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=10)


def query_sums(rows_json, *fields):
    """{(row[field], ..., unit): Decimal(sum)} from a `kmx query --format json` answer.
    Fails when two rows share those keys (a key column the caller forgot)."""
    out = {}
    for r in rows_json["rows"]:
        k = tuple(r[f] for f in fields) + (r["unit"],)
        if k in out:
            raise AssertionError("two rows for %s: group by more fields" % (k,))
        out[k] = Decimal(r["sum"] if r.get("sum") is not None else r["avg"])
    return out


def query_sums_by_market(rows_json, kind):
    """query_sums of a `kmx query KIND --by market` answer: keyed (market, category, unit)."""
    return query_sums(rows_json, "market", split_field(kind))


class Result(unittest.TextTestResult):
    pass


def main():
    global BIN
    if len(sys.argv) > 1 and sys.argv[1].startswith("--bindir="):
        BIN = sys.argv.pop(1).split("=", 1)[1]
    if not BIN:
        sys.exit("usage: %s --bindir=DIR [unittest args]" % sys.argv[0])
    prog = unittest.main(module="__main__", exit=False, verbosity=2)
    r = prog.result
    failed = len(r.failures) + len(r.errors)
    for test, reason in r.skipped:
        print("SKIP %s: %s" % (test.id(), reason))
    print("%d passed, %d failed, %d skipped" % (r.testsRun - failed - len(r.skipped), failed,
                                                 len(r.skipped)))
    if r.skipped and require_all():
        print("KMX_REQUIRE_ALL=1: a skipped test is a failure here")
        failed += 1
    sys.exit(1 if failed or r.testsRun == 0 else 0)
