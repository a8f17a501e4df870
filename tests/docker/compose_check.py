#!/usr/bin/env python3
"""Checks for tests/docker/test_compose.sh: each subcommand reads what the kmx CLI printed
and exits 0 when it matches what the test expects, else prints why and exits 1.

  gen N SOURCE OUT             writes N valid, distinct synthetic export rows as CSV
  sums CSV EXPORTS CONSUMPTION query answers (--by market, split by category) equal sums
                               computed from CSV
  alive STATS SVC=N...         the broker knows exactly N live workers of SVC
  workers STATS SVC=N...       the broker knows N live workers of SVC, each served requests
  counters FILE SVC COUNTER N  N distinct SVC workers report COUNTER > 0 (one JSON per line)
  records LIST N [SOURCE]      LIST (JSON Lines) holds N records, none twice (by source)
  events WATCH FIRST N         WATCH (JSON Lines) holds seq FIRST..FIRST+N-1, in order
  maxseq LIST                  prints the largest seq in LIST
  swarmable YAML               a rendered stack file has no build section and no depends_on
                               conditions (what `docker stack deploy` refuses)
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
from kmxtest import (query_sums_by_market, sample_facts, sample_rows,  # noqa: E402
                     sums_by_market)

MARKETS = ["JP", "US", "CN", "TW", "HK", "TH", "VN", "ID", "PH", "MY", "SG", "FR", "DE", "GB"]
CATEGORIES = ["physical_album_customs", "music_industry_survey"]


def fail(msg):
    print("check failed: " + msg, file=sys.stderr)
    sys.exit(1)


def lines(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(x) for x in f if x.strip()]


def services_workers(stats):
    """The broker's worker list, wherever this CLI version puts it."""
    if "workers" in stats:
        return stats["workers"]
    out = []
    for s in stats.get("services", []):
        if s.get("service") == "kmx.broker":
            out.extend(s.get("workers", []))
    return out


def cmd_gen(n, source, out):
    with open(out, "w", encoding="utf-8") as f:
        f.write("kind,period,market,category,item,value,unit,source\n")
        for i in range(int(n)):
            year = 2000 + i % 25
            market = MARKETS[(i // 25) % len(MARKETS)]
            cat = CATEGORIES[(i // (25 * len(MARKETS))) % len(CATEGORIES)]
            f.write("export,%d,%s,%s,synthetic item %d,%d.%02d,USD_million,%s\n"
                    % (year, market, cat, i, 1 + i % 997, i % 100, source))


def cmd_sums(csv_path, exports, consumption):
    rows = sample_rows(csv_path)
    for kind, path in (("export", exports), ("consumption", consumption)):
        with open(path, encoding="utf-8") as f:
            got = query_sums_by_market(json.load(f), kind)
        want = sums_by_market(rows, kind)
        if got != want:
            fail("%s sums by market differ:\n got  %s\n want %s" % (kind, got, want))
        print("%s: %d (market, category, unit) sums match the CSV" % (kind, len(want)))


def cmd_workers(path, *wants):
    with open(path, encoding="utf-8") as f:
        stats = json.load(f)
    workers = services_workers(stats)
    for want in wants:
        svc, n = want.split("=")
        live = [w for w in workers if w.get("service") == svc and w.get("alive", True)]
        served = [w for w in live if int(w.get("requests", 0)) > 0]
        names = sorted({w.get("worker") for w in served})
        if len(live) != int(n) or len(names) != int(n):
            fail("%s: want %s live workers that served requests, got %s"
                 % (svc, n, [(w.get("worker"), w.get("requests"), w.get("alive")) for w in live]))
        print("%s: %s" % (svc, ", ".join("%s served %s" % (w["worker"], w["requests"])
                                         for w in served)))


def cmd_alive(path, *wants):
    with open(path, encoding="utf-8") as f:
        workers = services_workers(json.load(f))
    for want in wants:
        svc, n = want.split("=")
        live = {w.get("worker") for w in workers if w.get("service") == svc and w.get("alive", True)}
        if len(live) != int(n):
            fail("%s: want %s live workers, got %s" % (svc, n, sorted(live)))


def cmd_counters(path, svc, counter, n):
    seen = {}
    for stats in lines(path):
        for s in stats.get("services", []):
            if s.get("service") == svc and s.get("worker"):
                seen[s["worker"]] = int(s.get("counters", {}).get(counter, 0))
    busy = {w: v for w, v in seen.items() if v > 0}
    if len(busy) < int(n):
        fail("%s: want %s workers with %s > 0, saw %s" % (svc, n, counter, seen))
    print("%s %s per worker: %s" % (svc, counter, busy))


def cmd_facts(csv_path):
    """Prints how many figures the CSV holds once revisions are applied."""
    print(len(sample_facts(csv_path)))


def cmd_records(path, n, source=None):
    recs = lines(path)
    if source:
        recs = [r for r in recs if r.get("source") == source]
    keys = [(r.get("kind"), r.get("period"), r.get("market"), r.get("category"),
             r.get("item"), r.get("source")) for r in recs]
    if len(set(keys)) != len(keys):
        fail("%d records listed twice" % (len(keys) - len(set(keys))))
    if len(keys) != int(n):
        fail("want %s records, listed %d" % (n, len(keys)))
    print("%d records, each once" % len(keys))


def cmd_events(path, first, n):
    seqs = [int(e["seq"]) for e in lines(path)]
    want = list(range(int(first), int(first) + int(n)))
    if seqs != want:
        fail("want seq %s..%s, got %d events: %s" % (want[0], want[-1], len(seqs),
                                                     seqs[:5] + ["..."] + seqs[-5:]))
    print("seq %d..%d, gap-free" % (want[0], want[-1]))


def cmd_maxseq(path):
    print(max((int(r.get("seq", 0)) for r in lines(path)), default=0))


def cmd_swarmable(path):
    import yaml
    with open(path) as f:
        doc = yaml.safe_load(f)
    services = doc.get("services") or {}
    if not services:
        fail("no services in %s" % path)
    bad = [n for n, svc in services.items()
           if "build" in svc or isinstance(svc.get("depends_on"), dict)]
    if bad:
        fail("build sections or depends_on conditions left in: %s" % ", ".join(bad))
    print("%d services, none with build or depends_on conditions" % len(services))


COMMANDS = {"swarmable": cmd_swarmable, "gen": cmd_gen, "sums": cmd_sums, "alive": cmd_alive, "workers": cmd_workers,
            "counters": cmd_counters, "records": cmd_records, "events": cmd_events,
            "maxseq": cmd_maxseq, "facts": cmd_facts}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(__doc__)
    COMMANDS[sys.argv[1]](*sys.argv[2:])
