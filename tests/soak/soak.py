#!/usr/bin/env python3
"""Soak: one kmx set (broker, storage, 2 ingest and 2 query workers, real binaries on
loopback) under sustained mixed load while faults are injected, then checked.

Load: importers send large CSV files again and again (each round changes a slice of the
rows, the rest come back unchanged), query clients ask aggregates and pages, a prober puts
one record every few milliseconds (its acknowledgements time the recovery after each
restart), three watchers follow every event from sequence 0 (one reads slowly and stalls).

Faults, during the first half of the run, in turn: SIGKILL of storage, of the broker, of
an ingest and of a query worker (each restarted); SIGSTOP of an ingest worker for longer
than heartbeat expiry, then SIGCONT; hostile peers (garbage frames, wrong protocol
headers, oversized bodies, forged replies, a worker that registers and never answers, one
that registers for two services).

Checks at the end: every acknowledged record is stored exactly once with the value the
clients were last told was stored; every watcher saw a gap-free, duplicate-free sequence
up to the last one; `kmx-storage check` passes; the broker's queued requests and bytes
are back to 0; each service's RSS and descriptor count at the end of the run are within
the stated bound of their value at the end of warm-up (after the fault phase).

Parameters (environment): KMX_SOAK_SECONDS (run length, default 150), KMX_SOAK_BYTES
(request bytes the broker must carry; the run goes on past its length, up to twice it,
until they have passed; default 1.1 GiB), KMX_SOAK_ROWS (rows per importer file, 20000),
KMX_SOAK_NOTE (bytes of note per row, 900), KMX_SOAK_IMPORTERS (3), KMX_SEED,
KMX_SOAK_CHECK_RSS (0 reports memory without bounding it, for sanitizer builds),
KMX_SOAK_RETAIN (events storage keeps, its --retain-events; default all).
Usage: soak.py --bindir=DIR
"""
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import kmxtest  # noqa: E402

GIB = 1024 ** 3
SECONDS = float(os.environ.get("KMX_SOAK_SECONDS", "120"))
TARGET_BYTES = int(float(os.environ.get("KMX_SOAK_BYTES", str(1.1 * GIB))))
ROWS = int(os.environ.get("KMX_SOAK_ROWS", "20000"))
NOTE = int(os.environ.get("KMX_SOAK_NOTE", "900"))
IMPORTERS = int(os.environ.get("KMX_SOAK_IMPORTERS", "3"))
SEED = int(os.environ.get("KMX_SEED", str(random.randrange(1 << 30))))
# Under ASan the quarantine holds freed memory by design (up to 256 MiB): memory is then
# reported, not bounded.
CHECK_RSS = os.environ.get("KMX_SOAK_CHECK_RSS", "1") != "0"
RETAIN = os.environ.get("KMX_SOAK_RETAIN", "")  # storage's --retain-events; "" keeps all
SLICE = max(1, ROWS // 10)  # rows each import round changes
STOP_SECONDS = 9.0  # SIGSTOP longer than the broker's worker expiry (3 x 2.5 s)
RESUME_TARGET = 0.5  # seconds for acknowledgements to resume after a restart
# The stated bound: at the end of the run a service's anonymous resident memory (RssAnon:
# heap and stacks; storage's mapped LMDB pages are file-backed and grow with the data) may
# exceed its value at the end of warm-up by 10 % plus 16 MiB (allocator noise in a short
# run), and its descriptors by 8.
RSS_GROWTH, RSS_SLACK, FD_SLACK = 0.10, 16 * 1024 * 1024, 8
KINDS = ("storage", "broker", "ingest", "query", "stop", "hostile")


def log(msg):
    print("[%7.1f] %s" % (time.monotonic() - T0, msg), flush=True)


T0 = time.monotonic()


class Soak:
    def __init__(self):
        self.rng = random.Random(SEED)
        self.c = kmxtest.Cluster(ingest=2, query=2, log_level="warn")
        if RETAIN:
            self.c.env["KMX_RETAIN_EVENTS"] = RETAIN
        self.stop = threading.Event()  # load threads end
        self.lock = threading.Lock()
        self.errors = []  # what went wrong, for the verdict
        self.faults = {k: 0 for k in KINDS}
        self.restarts = []  # (kind, time the new process was started)
        self.acks = []  # prober acknowledgement times
        self.puts = []  # (start, end, acknowledged) of every prober put
        self.acked_records = 0  # records acknowledged to clients (stored or unchanged)
        self.retries = 0  # retries the importers reported
        self.imports = {"ok": 0, "failed": 0}
        self.queries = {"ok": 0, "failed": 0}
        self.broker_bytes = 0  # bytes_in of broker processes that are gone
        self.broker_requests = 0
        self.samples = {}  # service -> [(t, pid, rss, fds)]
        self.peak_rss = {}
        self.warm_end = None

    # -- helpers ----------------------------------------------------------------------
    def fail(self, msg):
        with self.lock:
            self.errors.append(msg)
        log("FAIL: " + msg)

    def kmx(self, *args, timeout=120):
        return self.c.kmx(*args, check=False, timeout=timeout)

    def stats(self):
        r = self.kmx("stats", "--format", "json", timeout=30)
        try:
            return {s["service"]: s["counters"] for s in json.loads(r.stdout)["services"]}
        except (ValueError, KeyError):
            return {}

    def wait_listening(self, port, seconds=10):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                return True
            except OSError:
                time.sleep(0.01)
        return False

    # -- load -------------------------------------------------------------------------
    def importer(self, k):
        path = os.path.join(self.c.dir, "import%d.csv" % k)
        cur = [0] * ROWS  # version written for each row in the file now
        expect = self.expect[k]  # row -> set of values the store may hold
        v = 0
        while not self.stop.is_set():
            v += 1
            start = (v * SLICE) % ROWS
            for i in range(start, min(start + SLICE, ROWS)):
                cur[i] = v
            with open(path, "w", encoding="utf-8") as f:
                f.write("kind,period,market,category_or_dimension,item,value,unit,source,note\n")
                for i in range(ROWS):
                    # The value carries the row's version in its last five digits.
                    f.write("export,%d-%02d,%s,soak_test,soak %d row %d,%d,USD,kmx soak,%s\n" % (
                        2000 + i % 25, 1 + i % 12, ("JP", "US", "CN", "TW")[i % 4], k, i,
                        i * 100000 + cur[i], self.notes[i]))
            size = os.path.getsize(path)
            for i in range(ROWS):
                expect[i].add(cur[i])  # may be stored from now on
            # A long per-try timeout: lost connections and lost workers are answered at
            # once (retried within the deadline), so a try only times out when truly stuck.
            r = self.kmx("import", path, "--format", "json", "--batch", "1000", "--jobs", "2",
                         "--timeout", "30000", "--deadline", "120000", timeout=300)
            try:
                rep = json.loads(r.stdout)
            except ValueError:
                rep = {}
            ok = r.returncode == 0 and rep.get("rows") == ROWS and rep.get("rejected") == 0
            with self.lock:
                self.retries += rep.get("retries", 0)
                self.imports["ok" if ok else "failed"] += 1
                if ok:
                    self.acked_records += rep["stored"] + rep["unchanged"]
            if ok:
                # Acknowledged: every row now holds exactly what the file says.
                for i in range(ROWS):
                    expect[i] = {cur[i]}
            else:
                log("import %d round %d not acknowledged (exit %d): %s" % (
                    k, v, r.returncode, (r.stderr or "")[-300:]))
            self.moved_files += size

    def querier(self, k):
        while not self.stop.is_set():
            if k % 2 == 0:
                args = ("query", "exports", "--category", "soak_test", "--by", "market")
            else:
                args = ("list", "exports", "--category", "soak_test", "--limit", "50")
            r = self.kmx(*args, "--format", "json", "--deadline", "20000", timeout=60)
            with self.lock:
                self.queries["ok" if r.returncode == 0 else "failed"] += 1
            time.sleep(0.05)

    def prober(self):
        """Puts one record after another with `kmx put` (libkmx: a lost connection is seen
        at once and retried within the deadline); its acknowledgement times show when
        writes resume after a restart."""
        n = 0
        while not self.stop.is_set():
            n += 1
            began = time.monotonic()
            key = n % 100
            self.probe_expect[key].add(n)
            r = self.kmx("put", "--kind", "export", "--period", "2024-01", "--market", "KR",
                         "--category", "soak_probe", "--item", "probe %d" % key, "--value",
                         "%d" % n, "--unit", "USD", "--source", "kmx soak", "--timeout",
                         "10000", "--deadline", "30000", timeout=60)
            end = time.monotonic()
            with self.lock:
                self.puts.append((began, end, r.returncode == 0))
            if r.returncode == 0:
                with self.lock:
                    self.acks.append(end)
                    self.acked_records += 1
                self.probe_expect[key] = {n}
            else:
                time.sleep(0.01)

    def watcher(self, k, slow):
        seqs = self.watch_seqs[k]
        proc = subprocess.Popen([os.path.join(kmxtest.BIN, "kmx"), "watch", "--since", "0",
                                 "--format", "json"], env=self.c.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, bufsize=1 << 16)
        self.watch_procs[k] = proc
        last_stall = time.monotonic()
        arrivals = self.watch_arrivals if k == 0 else None
        for line in proc.stdout:
            try:
                seqs.append(int(json.loads(line)["seq"]))
                if arrivals is not None:
                    arrivals.append((time.monotonic(), seqs[-1]))
            except (ValueError, KeyError):
                self.fail("watcher %d printed a line that is not an event: %r" % (k, line[:200]))
            # Slow while the load runs; once it stops it reads at full speed, so the test
            # checks that a lagging subscriber catches up with nothing lost, whatever the
            # machine's speed (a faster machine writes more events than a slow reader keeps
            # pace with).
            if slow and not self.stop.is_set():
                time.sleep(0.0002)
                if time.monotonic() - last_stall > 30:
                    time.sleep(10)  # a subscriber that stops reading for a while
                    last_stall = time.monotonic()
        err = proc.stderr.read()
        if proc.wait() not in (0, -signal.SIGINT, 130) and not self.watch_done.is_set():
            self.fail("watcher %d exited %s: %s" % (k, proc.returncode, err[-500:]))

    def sampler(self):
        while not self.stop.is_set() or not self.sampled_end:
            now = time.monotonic()
            for name, proc in list(self.c.procs.items()):
                service = re.sub(r"\d+$", "", name)
                try:
                    with open("/proc/%d/status" % proc.pid) as f:
                        status = f.read()
                    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) * 1024
                    # Heap and stacks: LMDB's mapped file pages are the data, not a leak.
                    anon = int(re.search(r"RssAnon:\s+(\d+)", status).group(1)) * 1024
                    fds = len(os.listdir("/proc/%d/fd" % proc.pid))
                except (OSError, AttributeError):
                    continue
                self.samples.setdefault(name, []).append((now, proc.pid, anon, fds))
                self.peak_rss[service] = max(self.peak_rss.get(service, 0), rss)
            if self.stop.is_set():
                self.sampled_end = True
            time.sleep(1.0)

    # -- faults -----------------------------------------------------------------------
    def restart(self, name, binary, kind, down):
        proc = self.c.procs.pop(name)
        proc.kill()
        proc.wait()
        time.sleep(down)
        self.c.spawn(name, binary)
        with self.lock:
            self.restarts.append((kind, time.monotonic()))

    def fault(self, kind, n):
        self.faults[kind] += 1
        if kind == "storage":
            log("fault: SIGKILL kmx-storage")
            self.restart("storage", "kmx-storage", kind, 1.0)
        elif kind == "broker":
            st = self.stats().get("kmx.broker", {})
            log("fault: SIGKILL kmx-broker (it carried %d bytes)" % st.get("bytes_in", 0))
            self.broker_bytes += st.get("bytes_in", 0)
            self.broker_requests += st.get("requests", 0)
            self.restart("broker", "kmx-broker", kind, 1.0)
            self.wait_listening(self.c.ports["broker"])
        elif kind == "ingest":
            log("fault: SIGKILL kmx-ingest")
            self.restart("ingest%d" % (n % 2), "kmx-ingest", kind, 0.5)
        elif kind == "query":
            log("fault: SIGKILL kmx-query")
            self.restart("query%d" % (n % 2), "kmx-query", kind, 0.5)
        elif kind == "stop":
            proc = self.c.procs["ingest%d" % (n % 2)]
            log("fault: SIGSTOP kmx-ingest for %.0f s" % STOP_SECONDS)
            proc.send_signal(signal.SIGSTOP)
            time.sleep(STOP_SECONDS)
            proc.send_signal(signal.SIGCONT)
        elif kind == "hostile":
            log("fault: hostile peers")
            hostile(self.c.env["KMX_BROKER"], self.rng)

    # -- the run ----------------------------------------------------------------------
    def run(self):
        log("soak: %.0f s, %d importers x %d rows of %d-byte notes, target %.2f GiB, seed %d" % (
            SECONDS, IMPORTERS, ROWS, NOTE, TARGET_BYTES / GIB, SEED))
        self.c.start()
        self.notes = [("soak note %d " % i).ljust(NOTE, "n") for i in range(ROWS)]
        # Per importer and row: the versions the store may hold (empty: never sent).
        self.expect = [[set() for _ in range(ROWS)] for _ in range(IMPORTERS)]
        self.probe_expect = [set() for _ in range(100)]
        self.watch_seqs = [[] for _ in range(3)]
        self.watch_arrivals = []  # (time, seq) of every event the fast watcher received
        self.watch_procs = [None] * 3
        self.watch_done = threading.Event()
        self.moved_files = 0
        self.sampled_end = False
        threads = [threading.Thread(target=self.watcher, args=(k, k == 2)) for k in range(3)]
        threads += [threading.Thread(target=self.importer, args=(k,)) for k in range(IMPORTERS)]
        threads += [threading.Thread(target=self.querier, args=(k,)) for k in range(2)]
        threads += [threading.Thread(target=self.prober), threading.Thread(target=self.sampler)]
        for t in threads:
            t.daemon = True
            t.start()
        start = time.monotonic()
        fault_phase = SECONDS * 0.5
        cycles = max(1, int(fault_phase // 45))
        schedule = [k for _ in range(cycles) for k in KINDS]
        gap = fault_phase / len(schedule)
        for n, kind in enumerate(schedule):
            due = start + 3 + n * gap
            while time.monotonic() < due:
                time.sleep(0.05)
            self.fault(kind, n // len(KINDS))
        self.warm_end = max(time.monotonic() + 10, start + SECONDS * 0.6)
        log("faults done; warm-up ends in %.0f s" % (self.warm_end - time.monotonic()))
        while True:
            now = time.monotonic()
            moved = self.broker_bytes + self.stats().get("kmx.broker", {}).get("bytes_in", 0)
            if now - start >= SECONDS and (moved >= TARGET_BYTES or now - start >= 2 * SECONDS):
                break
            time.sleep(2)
        self.stop.set()
        log("load stopping")
        for t in threads[3:]:
            t.join(400)
        return self.check(threads[:3])

    # -- checks -----------------------------------------------------------------------
    def check(self, watcher_threads):
        st = {}
        end = time.monotonic() + 20
        while time.monotonic() < end:
            st = self.stats()
            b = st.get("kmx.broker", {})
            if b.get("queued_requests") == 0 and b.get("queued_bytes") == 0:
                break
            time.sleep(0.2)
        b = st.get("kmx.broker", {})
        queued = (b.get("queued_requests"), b.get("queued_bytes"))
        if queued != (0, 0):
            self.fail("broker not idle at the end: queued requests, bytes = %s" % (queued,))
        per_service = {k: v for k, v in b.items() if k.endswith((".queued_requests",
                                                                 ".queued_bytes")) and v}
        if per_service:
            self.fail("services with queued requests at the end: %s" % per_service)
        moved = self.broker_bytes + b.get("bytes_in", 0)
        routed = self.broker_requests + b.get("requests", 0)
        last_seq = int(st.get("kmx.storage", {}).get("last_seq", -1))

        # Watchers: all caught up to last_seq, gap-free and duplicate-free from 1.
        end = time.monotonic() + 120
        while time.monotonic() < end and not all(
                s and s[-1] >= last_seq for s in self.watch_seqs):
            time.sleep(0.5)
        self.watch_done.set()
        for p in self.watch_procs:
            if p and p.poll() is None:
                p.send_signal(signal.SIGINT)
        for t in watcher_threads:
            t.join(30)
        gaps = dups = 0
        for k, seqs in enumerate(self.watch_seqs):
            for a, b2 in zip(seqs, seqs[1:]):
                gaps += b2 > a + 1
                dups += b2 <= a
            if not seqs or seqs[0] != 1 or seqs[-1] < last_seq:
                self.fail("watcher %d saw %s..%s, wanted 1..%d" % (
                    k, seqs[0] if seqs else None, seqs[-1] if seqs else None, last_seq))
        if gaps or dups:
            self.fail("watchers: %d gaps, %d duplicates" % (gaps, dups))

        lost, duplicated, acked_rows = self.check_records()

        # RSS and descriptors: end of warm-up against the end of the run, per process.
        growth = []
        for name, rows in sorted(self.samples.items()):
            pid = rows[-1][1]
            mine = [r for r in rows if r[1] == pid]
            warm = [r for r in mine if r[0] >= self.warm_end]
            if len(warm) < 2:
                continue
            w, e = warm[0], warm[-1]
            bound = w[2] * (1 + RSS_GROWTH) + RSS_SLACK
            growth.append("%s %.1f->%.1f MiB (bound %.1f), fds %d->%d" % (
                name, w[2] / 2 ** 20, e[2] / 2 ** 20, bound / 2 ** 20, w[3], e[3]))
            if CHECK_RSS and e[2] > bound:
                self.fail("%s RssAnon grew from %d to %d bytes, over the bound %d" % (
                    name, w[2], e[2], bound))
            if CHECK_RSS and e[3] > w[3] + FD_SLACK:
                self.fail("%s descriptors grew from %d to %d" % (name, w[3], e[3]))

        codes = {}
        for name in list(self.c.procs):
            codes[name] = self.c.stop(name)
        bad = {n: c for n, c in codes.items() if c != 0}
        if bad:
            self.fail("services did not exit 0 on SIGTERM: %s" % bad)
        chk = subprocess.run([os.path.join(kmxtest.BIN, "kmx-storage"), "check", "--data-dir",
                              self.c.data_dir], env=self.c.env, capture_output=True, text=True,
                             timeout=600)
        if chk.returncode != 0:
            self.fail("kmx-storage check failed: %s" % (chk.stdout + chk.stderr)[-1000:])

        # Two figures per restart: when the first write committed after it reached the fast
        # watcher (any client's write), and when the prober's next put was acknowledged
        # (a new write's latency, queued behind the importers' backlog).
        resume, commit = {}, {}
        for kind, t in self.restarts:
            after = [a - t for a in self.acks if a > t]
            resume.setdefault(kind, []).append(after[0] if after else float("inf"))
            before = [q for a, q in self.watch_arrivals if a <= t]
            s0 = before[-1] if before else 0
            first = [a - t for a, q in self.watch_arrivals if a > t and q > s0]
            commit.setdefault(kind, []).append(first[0] if first else float("inf"))
            if resume[kind][-1] > RESUME_TARGET:
                # Which put it was: one in flight at the restart (retried inside kmx put)
                # or one begun after it; how long it took; how many failed before it.
                put = next((p for p in self.puts if p[2] and p[1] - t == resume[kind][-1]),
                           None)
                failed = sum(1 for p in self.puts if not p[2] and p[1] > t and
                             (put is None or p[1] < put[1]))
                log("slow resume after the %s restart at %.1f s: first commit +%.2f s, "
                    "prober's ack +%.2f s (its put began %+.2f s from the restart and took "
                    "%.2f s; %d puts failed before it)" % (
                        kind, t - T0, commit[kind][-1], resume[kind][-1],
                        put[0] - t if put else float("nan"),
                        put[1] - put[0] if put else float("nan"), failed))
        self.summary(moved, routed, last_seq, lost, duplicated, acked_rows, gaps, dups,
                     (resume, commit), growth, chk.returncode == 0)
        for k in KINDS:
            if self.faults[k] == 0:
                self.fail("fault kind %s never injected" % k)
        if lost or duplicated:
            self.fail("%d acknowledged records lost, %d duplicated" % (lost, duplicated))
        return not self.errors

    def check_records(self):
        """Every row of every importer and every probe key: present once, with a value the
        clients may have been told (the last acknowledged one, or one sent after it)."""
        r = self.kmx("list", "exports", "--format", "json", timeout=600)
        seen = {}
        for line in r.stdout.splitlines():
            rec = json.loads(line)
            key = (rec["category"], rec["item"])
            seen.setdefault(key, []).append(rec["value"])
        lost = duplicated = acked = 0
        for k in range(IMPORTERS):
            for i in range(ROWS):
                want = self.expect[k][i]
                got = seen.get(("soak_test", "soak %d row %d" % (k, i)), [])
                if not want:
                    continue  # never sent
                acked += 1
                duplicated += len(got) > 1
                if not got or int(got[0]) % 100000 not in want:
                    lost += 1
        for key in range(100):
            want = self.probe_expect[key]
            got = seen.get(("soak_probe", "probe %d" % key), [])
            if want:
                acked += 1
                duplicated += len(got) > 1
                if not got or int(got[0]) not in want:
                    lost += 1
        return lost, duplicated, acked

    def summary(self, moved, routed, last_seq, lost, duplicated, acked_rows, gaps, dups,
                resume, growth, check_ok):
        print("\n==== kmx soak summary (seed %d) ====" % SEED)
        print("duration            %.0f s (asked %.0f s)" % (time.monotonic() - T0, SECONDS))
        print("through the broker  %.2f GiB of requests (target %.2f GiB: %s), %d requests" % (
            moved / GIB, TARGET_BYTES / GIB, "met" if moved >= TARGET_BYTES else "NOT met",
            routed))
        print("imports             %d acknowledged, %d not; queries %d ok, %d failed" % (
            self.imports["ok"], self.imports["failed"], self.queries["ok"],
            self.queries["failed"]))
        print("acknowledgements    %d records (%d distinct keys checked), last seq %d" % (
            self.acked_records, acked_rows, last_seq))
        print("retries             %d (reported by kmx import)" % self.retries)
        print("losses              %d lost, %d duplicated (target 0, 0)" % (lost, duplicated))
        print("watchers            %d gaps, %d duplicates (target 0, 0)" % (gaps, dups))
        print("faults              %s" % ", ".join("%s %d" % kv for kv in self.faults.items()))
        resume, commit = resume
        print("writes resumed after each restart (target %.1f s): first commit seen by a "
              "watcher / prober's next ack" % RESUME_TARGET)

        def spread(v):
            v = sorted(v)
            return "median %.2f max %.2f s, %d of %d within %.1f s" % (
                v[len(v) // 2], v[-1], sum(x <= RESUME_TARGET for x in v), len(v),
                RESUME_TARGET)
        for kind in sorted(resume):
            print("  %-8s commit %s; ack %s" % (kind, spread(commit[kind]), spread(resume[kind])))
            print("  %-8s %s" % ("", ", ".join("%.2f / %.2f" % (c, a) for c, a in zip(
                commit[kind], resume[kind]))))
        print("peak RSS            %s" % ", ".join(
            "%s %.1f MiB" % (s, v / 2 ** 20) for s, v in sorted(self.peak_rss.items())))
        print("RssAnon after warm-up (bound +%d%% +%d MiB, fds +%d%s):" % (
            RSS_GROWTH * 100, RSS_SLACK // 2 ** 20, FD_SLACK,
            "" if CHECK_RSS else "; not checked: KMX_SOAK_CHECK_RSS=0"))
        for g in growth:
            print("  " + g)
        print("kmx-storage check   %s" % ("passed" if check_ok else "FAILED"))
        print("verdict             %s" % ("PASS" if not self.errors else "FAIL: " +
                                          "; ".join(self.errors)))


def hostile(broker, rng):
    """Peers that break the protocol every way a stranger on the network could. None of
    it may crash or wedge the broker; the real clients go on meanwhile."""
    import zmq
    ctx = zmq.Context.instance()

    def dealer(identity=None):
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        if identity:
            s.setsockopt(zmq.IDENTITY, identity)
        s.connect(broker)
        return s

    s = dealer()
    for _ in range(200):  # garbage frames
        s.send_multipart([os.urandom(rng.randrange(1, 300)) for _ in range(rng.randrange(1, 6))])
    s.send_multipart([b"", b"MDPC99", b"kmx.ingest", b"x"])  # wrong headers
    s.send_multipart([b"", b"MDPW99", b"\x01", b"kmx.ingest"])
    s.send_multipart([b"", b"MDPC01"] + [b"x"] * 12)  # too many frames
    s.send_multipart([b"", b"MDPC01", b"kmx.ingest", os.urandom(4 * 1024 * 1024)])  # 4 MiB
    s.send_multipart([b"", b"MDPC01", b"kmx.query", b"\xff" * 1024])
    s.send_multipart([b"", b"MDPW01", b"\x03", b"\x00\x01\x02\x03\x04", b"", b"forged"])
    s.send_multipart([b"", b"MDPW01", b"\x04"])  # heartbeat before READY
    s.close()
    big = dealer()  # over the broker's largest message: the connection is dropped
    big.send_multipart([b"", b"MDPC01", b"kmx.ingest", b"\0" * (65 * 1024 * 1024 + 4096)])
    time.sleep(0.3)
    big.close()
    # A worker of its own service that forges replies to clients it never served.
    forger = dealer(b"hostile-forger-%d" % rng.randrange(1 << 30))
    forger.send_multipart([b"", b"MDPW01", b"\x01", b"kmx.hostile"])
    for _ in range(50):
        forger.send_multipart([b"", b"MDPW01", b"\x03", b"\x00" + os.urandom(4), b"",
                               b"forged reply"])

    # A worker that registers and never answers, one that registers for two services.
    def silent(services):
        w = dealer(b"hostile-silent-%d" % rng.randrange(1 << 30))
        for svc in services:
            w.send_multipart([b"", b"MDPW01", b"\x01", svc])
        time.sleep(10)
        w.close()
    threading.Thread(target=silent, args=([b"kmx.ingest"],), daemon=True).start()
    threading.Thread(target=silent, args=([b"kmx.ingest", b"kmx.query"],), daemon=True).start()
    time.sleep(0.5)
    forger.close()


def main():
    for a in sys.argv[1:]:
        if a.startswith("--bindir="):
            kmxtest.BIN = a.split("=", 1)[1]
    if not kmxtest.BIN:
        sys.exit("usage: soak.py --bindir=DIR")
    soak = Soak()
    try:
        ok = soak.run()
    finally:
        soak.stop.set()
        for p in getattr(soak, "watch_procs", []) or []:
            if p and p.poll() is None:
                p.kill()
        for name in list(soak.c.procs):
            soak.c.procs[name].kill()
        import shutil
        shutil.rmtree(soak.c.dir, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
