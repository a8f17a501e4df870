#!/usr/bin/env bash
# Reads beside writes, kmx against PostgreSQL on the same rows in one run: a base set
# (bench/mixed/gen.py, BASE rows) is loaded into both; readers (kmx_bench_mixed: 1 and
# then 8 clients, each asking a point get and a group-by market of one category and one
# year in turn) are timed idle, then while a ROWS-row ingest runs: kmx import through 4
# kmx-ingest workers (full sync), PostgreSQL's COPY (fsync and synchronous_commit on,
# primary key and 3 indexes). Each ingest is also timed with no reader. Idle, it also
# times a filtered page of 100 and a top-10 with growth, the throughput of 8 clients
# asking only gets or only group-bys, and the ZeroMQ floor (bench/query's
# kmx_bench_floor). kmx and PostgreSQL never run at the same time. Prints p50/p99 idle and
# busy for both, ingest rows/s with and without readers (and each system's ratio of the
# two), and every target of issue 12 with met/short. Everything runs on one host, so the
# kmx-query workers read storage's environment directly (--read-dir) unless DIRECT=0, and
# the readers ask them on their local read sockets (kmx-query --local, one hop; reader i
# the socket of worker i mod QUERY_WORKERS) unless LOCAL=0; the broker's path is timed
# idle beside it (1 and 8 clients, gets), so both paths' figures are in every run. Last,
# unless READER_NICE is set, one more kmx import beside 8 readers made 10 steps nicer
# (their workers' threads, storage's reader threads and its alternatives builder), so the
# run shows what priorities trade: the import's rate against the readers' p99.
#   bench/mixed/run.sh [BUILD_DIR] [--smoke]
#   environment: BASE (200000), ROWS (1000000), IDLE_S (5), QUERY_WORKERS (4), DIRECT (1),
#                READER_NICE (unset: the services' defaults, 0; N: the query workers'
#                --nice and storage's --reader-nice),
#                SYSTEMS ("kmx pg": which systems are timed), TRANSPORT (ipc: the client, broker,
#                worker and storage hops over unix sockets, as docs/operations.md advises on
#                one host, and the floor on the same transport; tcp: loopback TCP),
#                LOCAL (1: readers on the workers' local read sockets; 0: through the broker),
#                IDLE_ONLY (0; 1: the idle readers only, no ingest), PIN (0; 1: kmx-broker
#                on CPU 0 and kmx-query worker i on CPU (i + 1) mod the CPUs, each with its
#                ZeroMQ I/O thread, --cpu)
#   --smoke: BASE=2400 ROWS=3000 IDLE_S=1, seconds in all; the figures mean nothing
# Needs PostgreSQL and libpq (scripts/setup.sh --bench); exits 77 (skipped) without them.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$src/build/release}" && pwd)
smoke=0
[[ ${2:-} == --smoke ]] && smoke=1
base=${BASE:-200000} rows=${ROWS:-1000000} idle_s=${IDLE_S:-5} qworkers=${QUERY_WORKERS:-4}
direct=${DIRECT:-1} systems=${SYSTEMS:-kmx pg} rnice=${READER_NICE:-}
transport=${TRANSPORT:-ipc} idle_only=${IDLE_ONLY:-0} pin=${PIN:-0} local=${LOCAL:-1}
((smoke)) && base=2400 rows=3000 idle_s=1
if ! ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1 || [[ ! -x $build/bin/kmx_bench_mixed ]]; then
  echo "SKIP bench.mixed: needs PostgreSQL and kmx_bench_mixed (scripts/setup.sh --bench)"
  [[ ${KMX_REQUIRE_ALL:-} == 1 ]] && exit 1
  exit 77
fi
source "$src/bench/lib.sh"
bench_init mixed
now() { date +%s.%N; }
res=$work/results
: >"$res"

echo "bench: generating $base base rows and three ingests of $rows rows" >&2
tags="base alone busy1 busy8"
# A last kmx import beside 8 readers that were made nicer (renice), so the same run shows
# what priorities trade: unless READER_NICE already sets them, or with no kmx or no ingest.
prio=0
[[ -z $rnice && " $systems " == *" kmx "* ]] && prio=1 tags+=" busy8n"
((idle_only)) && tags=base prio=0
for tag in $tags; do
  n=$rows
  [[ $tag == base ]] && n=$base
  python3 "$src/bench/mixed/gen.py" "$n" "$tag" "$work/$tag.csv"
  [[ $tag == busy8n ]] && continue # kmx's only
  python3 "$src/bench/ingest/pgrows.py" "$work/$tag.csv" "$work/$tag.pg"
  chmod 644 "$work/$tag.pg"
done

echo "bench: starting PostgreSQL and copying the base rows" >&2
# Custom plans for every execution: a generic plan of the prepared group-by may scan the
# whole table, which would make PostgreSQL look slower than it is.
pg_start -c fsync=on -c synchronous_commit=on -c shared_buffers=256MB -c work_mem=64MB \
  -c plan_cache_mode=force_custom_plan
"${psql[@]}" <<SQL
CREATE TABLE records (
  kind smallint NOT NULL, period_start integer NOT NULL, period_end integer NOT NULL,
  market text NOT NULL, category text NOT NULL, item text NOT NULL, company text NOT NULL,
  artist text NOT NULL, source text NOT NULL, amount bigint NOT NULL, unit text NOT NULL,
  PRIMARY KEY (kind, period_start, period_end, market, category, item, company, artist, source));
CREATE INDEX records_market ON records (market, period_start);
CREATE INDEX records_period ON records (period_start, period_end);
CREATE INDEX records_category ON records (kind, category, period_start);
\\copy records FROM '$work/base.pg' WITH (FORMAT csv, NULL '\\N')
ANALYZE records;
SQL
pgconn="host=$work/sock user=kmx dbname=postgres"

echo "bench: starting kmx-broker, kmx-storage, 4 kmx-ingest, $qworkers kmx-query" \
  "(direct=$direct, readers nicer by ${rnice:-the default})" >&2
export KMX_TIMEOUT=30000
qargs=()
[[ -n $rnice ]] && qargs+=(--nice "$rnice")
((direct)) && qargs+=(--read-dir "$work/data")
start_kmx() {
  kmx_ports "$work/data"
  if [[ $transport == ipc ]]; then
    export KMX_BROKER_BIND=ipc://$work/broker.ipc KMX_STORAGE_BIND=ipc://$work/storage.ipc
    export KMX_BROKER=$KMX_BROKER_BIND KMX_STORAGE=$KMX_STORAGE_BIND
  fi
  local bargs=() ncpu
  ncpu=$(nproc)
  ((pin)) && bargs=(--cpu 0)
  "$bin/kmx-broker" "${bargs[@]}" 2>>"$work/log" & pids+=($!)
  bpid=$!
  "$bin/kmx-storage" ${rnice:+--reader-nice "$rnice"} 2>>"$work/log" & pids+=($!)
  spid=$! ipids="" qpids=""
  for _ in 1 2 3 4; do "$bin/kmx-ingest" 2>>"$work/log" & pids+=($!) ipids+=$!,; done
  for ((i = 0; i < qworkers; i++)); do
    local cargs=()
    ((pin)) && cargs=(--cpu $(((i + 1) % ncpu)))
    ((local)) && cargs+=(--local "$work/query$i.sock")
    "$bin/kmx-query" "${qargs[@]}" "${cargs[@]}" 2>>"$work/log" & pids+=($!) qpids+=$!,
  done
}
kmx_up start_kmx 'kmx_quick ping kmx.query' 'kmx_quick ping kmx.ingest'

# kmx_import TAG: the rows of TAG through kmx import, checked; prints "T0 T1".
kmx_import() {
  local t0 t1
  t0=$(now)
  python3 "$src/bench/mixed/cpu.py" run "$work/$1.cpu" import \
    "$bin/kmx" import "$work/$1.csv" --jobs 8 --format json >"$work/$1.summary"
  t1=$(now)
  python3 - "$work/$1.summary" "$2" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
# A chunk retried after a timeout comes back unchanged: it was committed the first time.
assert s["stored"] + s["unchanged"] == int(sys.argv[2]) and s["rejected"] == 0, s
PY
  echo "$t0 $t1"
}

# pg_copy TAG: the same rows by COPY; prints "T0 T1".
pg_copy() {
  local t0 t1
  t0=$(now)
  "${psql[@]}" -c "\\copy records FROM '$work/$1.pg' WITH (FORMAT csv, NULL '\\N')"
  t1=$(now)
  echo "$t0 $t1"
}

# "MICROSECONDS REQUESTS" of the worker on the first reader's local socket: its own work
# on its local requests so far (local_work_us) and their count; nothing without one.
local_work() {
  ((local)) || return 0
  "$bin/kmx" --broker "unix:$work/query0.sock" stats --format json 2>/dev/null | python3 -c '
import json, sys
for s in json.load(sys.stdin).get("services", []):
    if s.get("service") == "kmx.query" and "local_work_us" in s.get("counters", {}):
        print(s["counters"]["local_work_us"], s["counters"]["local_requests"])' || true
}

# The readers' kmx target: the workers' local read sockets, or the broker.
kmx_target=$KMX_BROKER
if ((local)); then
  kmx_target=""
  for ((i = 0; i < qworkers; i++)); do kmx_target+="${kmx_target:+,}unix:$work/query$i.sock"; done
fi

# readers SYSTEM CLIENTS QUESTIONS SECONDS PHASE: result lines tagged "SYSTEM PHASE"
# (system "kmx-broker": kmx through the broker, whatever LOCAL says).
readers() {
  local target=$kmx_target sys=$1
  [[ $1 == pg ]] && target=$pgconn
  [[ $1 == kmx-broker ]] && target=$KMX_BROKER sys=kmx
  local run=()
  [[ -n ${client_cpu:-} ]] && run=(taskset -c "$client_cpu")
  [[ -n ${cpu_out:-} ]] && run+=(python3 "$src/bench/mixed/cpu.py" run "$cpu_out" client)
  "${run[@]}" "$bin/kmx_bench_mixed" "$sys" "$target" "$2" "$3" "$4" "$base" |
    sed "s/^result /$1 $5 /" >>"$res"
}

# ingest SYSTEM TAG [CLIENTS]: the ingest of TAG, with CLIENTS readers asking in a loop
# until it ends (none when absent); records "SYSTEM ingest-TAG rate=ROWS_PER_S" and, for
# kmx, "kmx cpu-TAG NAME=SECONDS ...": the CPU each kmx process (storage's writer thread
# apart), the import client and the readers spent during the import (bench/mixed/cpu.py).
ingest() {
  local rpid="" cpid=""
  if [[ -n ${3:-} ]]; then
    readers "$1" "$3" mix 3600 "$2" &
    rpid=$!
    pids+=("$rpid")
    sleep 0.2 # the readers connect
    cpid=$(pgrep -P "$rpid" kmx_bench_mixed || true)
  fi
  local t0 t1 cpu=(writer="$spid:kmx-writer" storage="$spid:!kmx-writer" ingest="$ipids"
    broker="$bpid" query="$qpids" clients="$cpid")
  [[ $1 == kmx ]] && python3 "$src/bench/mixed/cpu.py" snap "$work/cpu0" "${cpu[@]}"
  if [[ $1 == kmx ]]; then read -r t0 t1 < <(kmx_import "$2" "$rows"); else read -r t0 t1 < <(pg_copy "$2"); fi
  if [[ $1 == kmx ]]; then
    python3 "$src/bench/mixed/cpu.py" snap "$work/cpu1" "${cpu[@]}"
    echo "kmx cpu-$2 $(python3 "$src/bench/mixed/cpu.py" diff "$work/cpu0" "$work/cpu1")" \
      "$(cat "$work/$2.cpu") load=$(cut -d' ' -f1 /proc/loadavg)" >>"$res"
  fi
  if [[ -n $rpid ]]; then
    kill -TERM "$(pgrep -P "$rpid" kmx_bench_mixed)" 2>/dev/null || true
    wait "$rpid"
  fi
  echo "$1 ingest-$2 rate=$(python3 -c "print(round($rows / ($t1 - $t0)))")" >>"$res"
}

echo "bench: importing the base rows into kmx" >&2
kmx_import base "$base" >/dev/null

for sys in $systems; do
  echo "bench: $sys idle" >&2
  if [[ $sys == kmx ]]; then
    # What a get costs in CPU on each side (the workers', the client's), beside the
    # floor's echo (kmx_bench_floor prints its CPU per round trip).
    # And the worker's own work on them, timed inside it (decoding, the read, encoding:
    # its local_work_us), which lies on every get's path beside the hop.
    python3 "$src/bench/mixed/cpu.py" snap "$work/gcpu0" query="$qpids"
    work0=$(local_work)
    cpu_out=$work/get.cpu readers kmx 1 get "$idle_s" idle1
    work1=$(local_work)
    python3 "$src/bench/mixed/cpu.py" snap "$work/gcpu1" query="$qpids"
    echo "kmx cpu-get $(python3 "$src/bench/mixed/cpu.py" diff "$work/gcpu0" "$work/gcpu1")" \
      "$(cat "$work/get.cpu")" >>"$res"
    [[ -n $work0 && -n $work1 ]] && echo "kmx cpu-work us0=${work0% *} n0=${work0#* }" \
      "us1=${work1% *} n1=${work1#* }" >>"$res"
    # The floor right beside the gets it is the floor of, not minutes later.
    "$bin/kmx_bench_floor" 2000 >"$work/floor" 2>/dev/null || echo "(no floor)" >"$work/floor"
    # A round trip within one CPU and one between two wake their sides very differently,
    # and neither the gets nor the floor above choose: so the same gets again with worker
    # 0 (the single client's) kept on the first CPU this run may use and the client on the
    # second, then on the first too, each beside the floor taken on the same CPUs.
    read -r cpu_a cpu_b < <(python3 -c 'import os; c = sorted(os.sched_getaffinity(0))
print(*(c[:2] if len(c) >= 2 else ["-", "-"]))')
    if ((local)) && [[ $cpu_b != - ]]; then
      pin_tasks() {
        for t in /proc/$1/task/*; do taskset -pc "$2" "${t##*/}" >/dev/null 2>&1 || true; done
      }
      allowed=$(taskset -pc "${qpids%%,*}" | sed 's/.*: //')
      pin_tasks "${qpids%%,*}" "$cpu_a"
      for pair in "2 $cpu_b" "1 $cpu_a"; do
        client_cpu=${pair#* }
        readers kmx 1 get "$idle_s" "idle1-pin${pair% *}"
        "$bin/kmx_bench_floor" 2000 --cpus "$cpu_a,$client_cpu" >"$work/floor-pin${pair% *}" \
          2>/dev/null || true
      done
      client_cpu=""
      pin_tasks "${qpids%%,*}" "$allowed"
    fi
    for q in group page top; do readers "$sys" 1 "$q" "$idle_s" idle1; done
  else
    for q in get group page top; do readers "$sys" 1 "$q" "$idle_s" idle1; done
  fi
  readers "$sys" 1 mix "$idle_s" idle-mix1
  readers "$sys" 8 mix "$idle_s" idle-mix8
  readers "$sys" 8 get "$idle_s" idle8
  readers "$sys" 8 group "$idle_s" idle8
  if [[ $sys == kmx ]] && ((local)); then
    readers kmx-broker 1 get "$idle_s" idle1
    readers kmx-broker 8 get "$idle_s" idle8
  fi
  ((idle_only)) && continue
  echo "bench: $sys ingest alone, then beside 1 and 8 readers" >&2
  ingest "$sys" alone
  ingest "$sys" busy1 1
  ingest "$sys" busy8 8
  if [[ $sys == kmx ]] && ((prio)); then
    # As --nice 10 and --reader-nice 10 would run them: every thread of the query
    # workers, storage's reader threads and its alternatives builder, 10 steps nicer
    # (last: a nicer thread cannot be made less nice again without privileges).
    echo "bench: kmx ingest beside 8 readers 10 steps nicer" >&2
    python3 - "$spid" ${qpids//,/ } <<'NICE'
import os, sys
def nicer(tid):
    os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + 10)
spid, qpids = sys.argv[1], sys.argv[2:]
for pid in qpids:
    for tid in os.listdir("/proc/%s/task" % pid):
        nicer(int(tid))
for tid in os.listdir("/proc/%s/task" % spid):
    if open("/proc/%s/task/%s/comm" % (spid, tid)).read().strip() in ("kmx-reader", "kmx-alt"):
        nicer(int(tid))
NICE
    ingest kmx busy8n 8
  fi
done
[[ -s $work/floor ]] ||
  "$bin/kmx_bench_floor" 2000 >"$work/floor" 2>/dev/null || echo "(no floor)" >"$work/floor"

python3 - "$res" "$work/floor" "$base" "$rows" "$smoke" "$direct" "${rnice:-default}" "$qworkers" \
  "$transport" "$pin" "$local" "$work/floor-pin2" "$work/floor-pin1" <<'PY'
import re, sys
res, floor_file, base, rows, smoke = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "1"
direct = sys.argv[6] == "1"
rnice = sys.argv[7]
local = sys.argv[11] == "1"
# The floors taken with the echo and the timing side on two CPUs (2) and on one (1),
# beside the gets asked with worker 0 and the client kept the same way:
# {CPUs: {"polled" or "stream": p50}}.
pinned = {}
for cpus_, path in ((2, sys.argv[12]), (1, sys.argv[13])):
    try:
        for line in open(path):
            m = re.match(r"\s+unix (polled|stream)\s+([0-9.]+)\s", line)
            if m:
                pinned.setdefault(cpus_, {})[m.group(1)] = float(m.group(2))
    except FileNotFoundError:
        pass
broker_hops = 2 if direct else 3  # client -> broker -> kmx-query (-> kmx-storage)
hops = 1 if local and direct else 2 if local else broker_hops  # local: client -> kmx-query
transport = sys.argv[9]  # the floor is taken on the hops' own transport
zmq_row = r"\s+tcp 127\.0\.0\.1\s+([0-9.]+)\s+([0-9.]+)" if transport == "tcp" else r"\s+ipc\s+([0-9.]+)\s+([0-9.]+)"
# On the local socket the floor is the echo whose other side waits as the worker does, in
# poll in another process; the bare echo between two threads blocking in read is printed
# beside it.
floor_row = r"\s+unix polled\s+([0-9.]+)\s+([0-9.]+)" if local else zmq_row
bare_row = r"\s+unix stream\s+([0-9.]+)\s+([0-9.]+)"
r = {}
for line in open(res):
    f = line.split()
    vals = dict(kv.split("=") for kv in f[2:] if "=" in kv)
    key = (f[0], f[1]) if f[1].startswith(("ingest-", "cpu-")) else (f[0], f[1], f[2])
    r[key] = {k: float(v) for k, v in vals.items()}
floor = broker_floor = bare_floor = None
for line in open(floor_file):
    m = re.match(floor_row, line)
    if m:
        floor = hops * float(m.group(1))  # one round trip per hop
    m = re.match(bare_row, line)
    if m:
        bare_floor = float(m.group(1))
    m = re.match(zmq_row, line)
    if m:
        broker_floor = broker_hops * float(m.group(1))
if local and not direct:
    floor = None  # a unix hop, then a ZeroMQ one to storage: no one row stands for both

def g(sys_, phase, q, stat):
    v = r.get((sys_, phase, q))
    return v[stat] if v else float("nan")

print("\nreads beside writes: %d base records, then %d-row ingests (ms; kmx readers %s, kmx-query %s, readers nicer by %s, over %s%s)%s" % (
    base, rows, "on the workers' local read sockets" if local else "through the broker",
    "reading the store directly" if direct else "through storage's socket", rnice, transport,
    ", broker and workers pinned" if sys.argv[10] == "1" else "",
    "  [smoke sizes: figures mean nothing]" if smoke else ""))
print("  %-34s %9s %9s %9s %9s" % ("", "kmx p50", "kmx p99", "PG p50", "PG p99"))
rowsout = [("idle, 1 client", "idle-mix1"), ("during the ingest, 1 client", "busy1"),
           ("idle, 8 clients", "idle-mix8"), ("during the ingest, 8 clients", "busy8")]
for q, label in (("get", "point get"), ("group", "group-by market, one cat, year")):
    print("  %s" % label)
    for text, phase in rowsout:
        print("    %-32s %9.3f %9.3f %9.3f %9.3f" % (text, g("kmx", phase, q, "p50"),
              g("kmx", phase, q, "p99"), g("pg", phase, q, "p50"), g("pg", phase, q, "p99")))
print("  idle, 1 client, one question at a time")
names = {"get": "point get", "group": "group-by market, one cat", "page": "filtered page of 100",
         "top": "top-10 with growth, one cat"}
for q in ("get", "group", "page", "top"):
    print("    %-32s %9.3f %9.3f %9.3f %9.3f" % (names[q], g("kmx", "idle1", q, "p50"),
          g("kmx", "idle1", q, "p99"), g("pg", "idle1", q, "p50"), g("pg", "idle1", q, "p99")))
print("  throughput, 8 clients, idle (answers/s)")
for q in ("get", "group"):
    print("    %-32s %9.0f %19.0f" % (names[q], g("kmx", "idle8", q, "rate"), g("pg", "idle8", q, "rate")))

def ing(sys_, tag):
    v = r.get((sys_, "ingest-" + tag))
    return v["rate"] if v else float("nan")
print("\ningest of %d rows (rows/s)           %9s %9s   %9s %9s" % (rows, "kmx", "PG COPY",
      "kmx/alone", "PG/alone"))
for tag, text in (("alone", "no readers"), ("busy1", "beside 1 reader"), ("busy8", "beside 8 readers")):
    print("  %-34s %9.0f %9.0f   %8.0f%% %8.0f%%" % (text, ing("kmx", tag), ing("pg", tag),
          100 * ing("kmx", tag) / ing("kmx", "alone"), 100 * ing("pg", tag) / ing("pg", "alone")))
# The same 8 readers made 10 steps nicer, last in the run: what priorities trade.
prio = r.get(("kmx", "ingest-busy8n")) is not None
if prio:
    print("  %-34s %9.0f %9s   %8.0f%%" % ("beside 8 readers 10 steps nicer", ing("kmx", "busy8n"),
          "-", 100 * ing("kmx", "busy8n") / ing("kmx", "alone")))
    print("    their p99 during it: get %.3f ms, group-by %.3f ms (3x idle: %.3f, %.3f; at the"
          " services' priority above: %.3f, %.3f)" % (
              g("kmx", "busy8n", "get", "p99"), g("kmx", "busy8n", "group", "p99"),
              3 * g("kmx", "idle-mix8", "get", "p99"), 3 * g("kmx", "idle-mix8", "group", "p99"),
              g("kmx", "busy8", "get", "p99"), g("kmx", "busy8", "group", "p99")))

def cpu(tag, name):
    v = r.get(("kmx", "cpu-" + tag))
    return v.get(name, float("nan")) if v else float("nan")
no_wait = {}  # the import beside readers had the writer never waited for a core (below)
if r.get(("kmx", "cpu-alone")):
    tags = ("alone", "busy1", "busy8")
    print("\nCPU during each kmx import (seconds; cores = seconds / the import's wall time)")
    print("  %-34s %15s %15s %15s" % ("", "no readers", "1 reader", "8 readers"))
    for name, text in (("writer", "kmx-storage's writer thread"),
                       ("storage", "kmx-storage's other threads"),
                       ("ingest", "4 kmx-ingest"), ("import", "the kmx import client"),
                       ("broker", "kmx-broker"), ("query", "%d kmx-query" % int(sys.argv[8])),
                       ("clients", "the reader clients"), ("busy", "the machine (everyone)")):
        print("  %-34s" % text + "".join(" %7.1f = %4.2f" % (cpu(t, name), cpu(t, name) / cpu(t, "span"))
                                         for t in tags))
    ours = ("writer", "storage", "ingest", "import", "broker", "query", "clients")
    print("  %-34s" % "of it, other work" + "".join(
        " %7.1f = %4.2f" % (cpu(t, "busy") - sum(cpu(t, n) for n in ours),
                            (cpu(t, "busy") - sum(cpu(t, n) for n in ours)) / cpu(t, "span")) for t in tags))
    print("  %-34s" % "load average at its end" + "".join(" %15.1f" % cpu(t, "load") for t in tags))
    w0 = cpu("alone", "writer") / rows * 1e6
    print("  the writer's CPU per row: %s us" % ", ".join(
        "%.1f" % (cpu(t, "writer") / rows * 1e6) for t in tags) +
        " alone, beside 1 and beside 8 readers (%s against alone)" % " and ".join(
        "%+.0f%%" % (100 * (cpu(t, "writer") / rows * 1e6 / w0 - 1)) for t in tags[1:]))
    for t, c in (("busy1", 1), ("busy8", 8)):
        need = cpu("alone", "writer") / (cpu("alone", "span") / 0.9)
        print("  beside %d reader(s): 90%% of alone needs the writer on a core %.2f of the time at its cost"
              " per row alone, %.2f at its cost here; it ran %.2f, the read side (storage's other"
              " threads, broker, kmx-query, clients) %.2f cores" % (
              c, need, need * cpu(t, "writer") / cpu("alone", "writer"), cpu(t, "writer") / cpu(t, "span"),
              sum(cpu(t, n) for n in ("storage", "broker", "query", "clients")) / cpu(t, "span")))
    # Where each row's time went in the writer: on a core, ready but waiting for one (the
    # scheduler's run queue, from schedstat), and off the cores (a group commit's fsync,
    # rows not yet there from the ingest workers). Were it never kept from a core beside
    # the readers, a row would still take its CPU and its other waits there (a faster
    # writer only waits longer for rows and commits smaller groups), so the loss splits
    # into the writer's waits for a core and its dearer rows (preemptions, caches: reader
    # priorities lower both). Its waits for rows are the ingest workers' (their own waits
    # for a core are printed beside).
    def per_row(t, name):
        return cpu(t, name) / rows * 1e6
    print("  the writer's time per row (us):" + ";".join(
        " %s %.1f = %.1f on a core + %.1f waiting for one + %.1f for rows or fsync" % (
            text, per_row(t, "span"), per_row(t, "writer"), per_row(t, "writer_wait"),
            per_row(t, "span") - per_row(t, "writer") - per_row(t, "writer_wait"))
        for t, text in zip(tags + (("busy8n",) if prio else ()),
                           ("alone", "beside 1", "beside 8", "beside 8 nicer readers"))))
    print("  the 4 ingest workers' waits for a core (us a row, summed over them): %s" % ", ".join(
        "%.1f %s" % (per_row(t, "ingest_wait"), text)
        for t, text in zip(tags, ("alone", "beside 1", "beside 8"))))
    for t, c in (("busy1", 1), ("busy8", 8)):
        rest = per_row(t, "span") - per_row(t, "writer_wait")
        rate = no_wait[t] = per_row("alone", "span") / rest if rest > 0 else float("nan")
        print("  beside %d reader(s), had the writer never waited for a core: %.0f%% of alone"
              " (%.1f us a row; the rest of the loss is its CPU per row there)" % (
                  c, 100 * rate, rest))
        print("figure: kmx ingest beside %d without the writer's waits for a core = %.1f %%" % (
            c, 100 * rate))
if local and r.get(("kmx-broker", "idle8", "get")):
    print("  the same gets through the broker (%d ZeroMQ hops over %s), idle" % (broker_hops, transport))
    print("    %-32s %9.3f %9.3f" % ("1 client", g("kmx-broker", "idle1", "get", "p50"),
                                     g("kmx-broker", "idle1", "get", "p99")))
    print("    %-32s %9.3f %9.3f   %9.0f answers/s" % (
        "8 clients", g("kmx-broker", "idle8", "get", "p50"), g("kmx-broker", "idle8", "get", "p99"),
        g("kmx-broker", "idle8", "get", "rate")))
    if broker_floor:
        print("    1 client's p50 against its floor (%.3f ms): %.2fx" % (
            broker_floor, g("kmx-broker", "idle1", "get", "p50") / broker_floor))
if floor:
    print("\nfloor: %s (a get's path) = %.3f ms" % (
        "one round trip on a unix stream socket to a process waiting in poll, as the worker"
        " does" if local else
        "%d ZeroMQ round trips over %s" % (hops, transport), floor))
    if local and bare_floor:
        print("  the bare echo between two threads blocking in read: %.3f ms; the get's p50"
              " is %.2fx that" % (bare_floor, g("kmx", "idle1", "get", "p50") / bare_floor))
echo_cpu = None
for line in open(floor_file):
    m = re.match(r"figure: floor unix cpu per round trip = ([0-9.]+)", line)
    if m:
        echo_cpu = float(m.group(1))
gc, n_gets = r.get(("kmx", "cpu-get")), g("kmx", "idle1", "get", "n")
if gc and n_gets == n_gets and n_gets > 0:
    w_us, c_us = gc["query"] / n_gets * 1e6, gc["client"] / n_gets * 1e6
    print("  a get's CPU, 1 client (user and system): the kmx-query workers %.1f us, the client"
          " %.1f us, %.1f us in all%s" % (w_us, c_us, w_us + c_us,
          "; the bare unix-socket echo: %.1f us a round trip for both sides, so the"
          " get's own work is %.1f us" % (echo_cpu, w_us + c_us - echo_cpu) if echo_cpu else ""))
wk = r.get(("kmx", "cpu-work"))
work_us = None  # the worker's own work per get, timed inside it
if wk and wk["n1"] > wk["n0"]:
    work_us = (wk["us1"] - wk["us0"]) / (wk["n1"] - wk["n0"])
    print("  the worker's own work on a get, timed inside it (decoding the Request, the LMDB"
          " read, encoding the Response; without the socket's reads and writes): %.1f us" % work_us)

pin_ratio = {}  # CPUs under the pair: the pinned get's p50 over its pinned floor
for cpu_, text in ((2, "kept on two CPUs (worker 0 on one, the client on the other)"),
                   (1, "kept on one CPU (worker 0 and the client)")):
    f_ = pinned.get(cpu_, {})
    gp = g("kmx", "idle1-pin%d" % cpu_, "get", "p50")
    if "polled" in f_ and gp == gp:
        pin_ratio[cpu_] = gp / f_["polled"]
        print("  the same gets %s: p50 %.3f ms against the floor on the same CPUs %.3f ms"
              " (%.2fx; the bare echo there %.3f ms)" % (
                  text, gp, f_["polled"], pin_ratio[cpu_], f_.get("stream", float("nan"))))

def mark(ok):
    return "met" if ok else "short"
print("\ntargets (issue 12)")
for c in (1, 8):
    for q in ("get", "group"):
        idle, busy, pgb = g("kmx", "idle-mix%d" % c, q, "p99"), g("kmx", "busy%d" % c, q, "p99"), g("pg", "busy%d" % c, q, "p99")
        print("  target %s p99 during the ingest, %d client(s) <= 3x idle (%.3f) and <= PG busy (%.3f): %.3f ms, %s" % (
            q, c, 3 * idle, pgb, busy, mark(busy <= 3 * idle and busy <= pgb)))
for c in (1, 8):
    ratio = ing("kmx", "busy%d" % c) / ing("kmx", "alone")
    pg_ratio = ing("pg", "busy%d" % c) / ing("pg", "alone")
    nw = no_wait.get("busy%d" % c)
    why = ""
    if nw is not None and ratio < 0.9:
        why = "; %.0f%% had the writer never waited for a core" % (100 * nw)
        if c == 8 and prio:
            gp, grp = g("kmx", "busy8n", "get", "p99"), g("kmx", "busy8n", "group", "p99")
            gi, gri = g("kmx", "idle-mix8", "get", "p99"), g("kmx", "idle-mix8", "group", "p99")
            why += ("; with the readers 10 steps nicer: %.0f%%, their p99 get %.3f / group-by"
                    " %.3f ms against 3x idle %.3f / %.3f, %s" % (
                        100 * ing("kmx", "busy8n") / ing("kmx", "alone"), gp, grp, 3 * gi, 3 * gri,
                        "within" if gp <= 3 * gi and grp <= 3 * gri else "over"))
        why += "; above"
    # The verdict ends the line (bench/run reads it there).
    print("  target kmx ingest beside %d reader(s) >= 90%% of alone: %.0f%% (PG COPY's own: %.0f%%%s), %s" % (
        c, 100 * ratio, 100 * pg_ratio, why, mark(ratio >= 0.9)))
for q in ("get", "group"):
    k, p = g("kmx", "idle8", q, "rate"), g("pg", "idle8", q, "rate")
    print("  target 8 clients %s/s >= PG with 8 connections (%.0f): %.0f, %s" % (q, p, k, mark(k >= p)))
gp50, gp99 = g("kmx", "idle1", "get", "p50"), g("kmx", "idle1", "get", "p99")
if 2 in pin_ratio:
    # Like for like: the get and its floor with the same two CPUs under them, as the
    # unpinned gets of the full runs ran (their p50 beside); on one CPU (printed above) the
    # get's own work weighs more, the wake-ups being cheap.
    print("  target point get p50 <= 1.3x the hop floor, both on the same two CPUs: %.2fx"
          " (on one CPU: %s; unpinned: %.3f ms against an unpinned floor of %.3f ms; the"
          " worker's own work on a get: %s), %s" % (
              pin_ratio[2], "%.2fx" % pin_ratio[1] if 1 in pin_ratio else "-", gp50,
              floor or float("nan"), "%.1f us" % work_us if work_us is not None else "-",
              mark(pin_ratio[2] <= 1.3)))
    print("figure: kmx get p50 over its floor on two cpus = %.3f x" % pin_ratio[2])
    if 1 in pin_ratio:
        print("figure: kmx get p50 over its floor on one cpu = %.3f x" % pin_ratio[1])
elif floor:
    # The get's own work (decoding, the LMDB read, encoding, on one side then the other)
    # lies on its round trip's path: 1.3x the floor leaves it 0.3x the floor.
    print("  target point get p50 <= 1.3x the hop floor (%.3f): %.3f ms (%.2fx%s), %s" % (
        1.3 * floor, gp50, gp50 / floor,
        "" if gp50 <= 1.3 * floor or work_us is None else
        "; 1.3x leaves the get's own work %.1f us, the worker's alone took %.1f us, the"
        " client's comes on top" % (300 * floor, work_us), mark(gp50 <= 1.3 * floor)))
print("  target point get p99 < 2 ms: %.3f ms, %s" % (gp99, mark(gp99 < 2)))
kp, pp = g("kmx", "idle1", "page", "p50"), g("pg", "idle1", "page", "p50")
print("  target page of 100 p50 <= PG (%.3f): %.3f ms, %s" % (pp, kp, mark(kp <= pp)))
for q in ("group", "top"):
    k, p = g("kmx", "idle1", q, "p50"), g("pg", "idle1", q, "p50")
    print("  target %s >= 10x faster than PG p50: %.1fx (aim 50x), %s" % (names[q], p / k, mark(p >= 10 * k)))
for key, v in sorted(r.items()):
    for stat, val in sorted(v.items()):
        print("figure: %s = %g %s" % (" ".join(key) + " " + stat, val,
              "ms" if stat.startswith("p") else ("" if stat in ("n", "cores", "load") else (
                  "rows/s" if key[1].startswith("ingest") else ("s" if key[1].startswith("cpu") else "/s")))))
PY
