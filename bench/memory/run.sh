#!/usr/bin/env bash
# Resident memory of each kmx service: idle after start, the peak while ROWS rows are
# imported (kmx import -> kmx-broker -> kmx-ingest -> kmx-storage), and after the import
# once the set is idle again (RSS read from /proc/PID/status every 0.2 s). One broker,
# storage, ingest and query each, on loopback; everything is stopped on exit.
#   bench/memory/run.sh [BUILD_DIR] [ROWS]      defaults: build/release 1000000
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$src/build/release}" && pwd)
rows=${2:-1000000}
bin=$build/bin
work=$(mktemp -d /tmp/kmx-bench-memory-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
source "$src/bench/ports.sh"
rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
echo "bench: memory: generating $rows rows" >&2
python3 "$src/bench/ingest/gen.py" "$rows" --out "$work/rows.csv"
export KMX_TIMEOUT=30000
declare -A pid
start_kmx() {
  kmx_ports "$work/data"
  for s in broker storage ingest query; do
    "$bin/kmx-$s" 2>>"$work/log" & pid[$s]=$!
    pids+=($!)
  done
}
kmx_up start_kmx 'kmx_quick ping kmx.ingest' 'kmx_quick ping kmx.query'
sleep 1
declare -A idle peak after
for s in broker storage ingest query; do idle[$s]=$(rss "${pid[$s]}"); peak[$s]=${idle[$s]}; done
"$bin/kmx" import "$work/rows.csv" --format json >"$work/summary.json" & imp=$!
while kill -0 "$imp" 2>/dev/null; do
  for s in broker storage ingest query; do
    r=$(rss "${pid[$s]}")
    ((r > peak[$s])) && peak[$s]=$r
  done
  sleep 0.2
done
wait "$imp"
python3 -c "import json,sys; s=json.load(open('$work/summary.json')); assert s['stored']==$rows, s"
sleep 2
for s in broker storage ingest query; do
  after[$s]=$(rss "${pid[$s]}")
  ((after[$s] > peak[$s])) && peak[$s]=${after[$s]} # a short import can end between samples
done
for s in broker storage ingest query; do
  awk -v v="${idle[$s]}" -v s="$s" 'BEGIN { printf "figure: memory kmx-%s idle = %.1f MiB\n", s, v / 1024 }'
  awk -v v="${peak[$s]}" -v s="$s" 'BEGIN { printf "figure: memory kmx-%s import peak = %.1f MiB\n", s, v / 1024 }'
  awk -v v="${after[$s]}" -v s="$s" 'BEGIN { printf "figure: memory kmx-%s after import = %.1f MiB\n", s, v / 1024 }'
done
echo "figure: memory import rows = $rows"
