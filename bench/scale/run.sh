#!/usr/bin/env bash
# Read throughput as kmx-query workers are added: RECORDS synthetic monthly export records
# written straight into a fresh store (kmx_bench_query load), then kmx-broker, kmx-storage
# and 1, 2 and 4 kmx-query workers serve CLIENTS concurrent clients asking one-year
# group-bys for SECONDS each (kmx_bench_qps). Ingest scaling (1, 2, 4 kmx-ingest workers)
# is measured by bench/ingest/run.sh. On a 2-core machine the curve flattens once the
# services and the clients share the two cores.
#   bench/scale/run.sh [BUILD_DIR] [RECORDS] [CLIENTS] [SECONDS]
#   defaults: build/release 200000 8 5
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$src/build/release}" && pwd)
records=${2:-200000}
clients=${3:-8}
secs=${4:-5}
bin=$build/bin
[[ -x $bin/kmx_bench_qps && -x $bin/kmx_bench_query ]] ||
  { echo "bench: build kmx_bench_qps and kmx_bench_query in $build first" >&2; exit 1; }
work=$(mktemp -d /tmp/kmx-bench-scale-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
source "$src/bench/ports.sh"
echo "bench: scale: loading $records records" >&2
"$bin/kmx_bench_query" load "$work/data" "$work/rows.csv" "$records" >/dev/null
rm -f "$work/rows.csv"
start_kmx() {
  kmx_ports "$work/data"
  "$bin/kmx-broker" 2>>"$work/log" & pids+=($!)
  "$bin/kmx-storage" 2>>"$work/log" & pids+=($!)
}
kmx_up start_kmx 'kmx_quick ping kmx.broker'
status=0
running=0
for workers in 1 2 4; do
  while ((running < workers)); do
    "$bin/kmx-query" 2>>"$work/log" & pids+=($!)
    running=$((running + 1))
  done
  # Workers register with the broker in well under a second on loopback.
  for _ in $(seq 100); do kmx_quick ping kmx.query && break; sleep 0.1; done
  sleep 1
  echo "bench: scale: $workers query worker(s), $clients clients, $secs s" >&2
  out=$("$bin/kmx_bench_qps" "$KMX_BROKER" "$clients" "$secs") || status=1
  echo "${out/figure: /figure: $workers query workers: }"
done
echo "figure: scale cores = $(nproc)"
exit $status
