#!/usr/bin/env bash
# Notification delivery, kmx beside Redis on the same machine in the same run:
# acknowledgement-to-delivery latency (p50/p99) of single writes to one subscriber,
# sustained events/s delivered to 1, 10 and 100 subscribers with every sequence checked
# gap-free, and reading missed events back (kmx's event-log replay beside Redis Streams
# XREAD). kmx-broker, kmx-storage and one kmx-ingest run on loopback; redis-server (Debian)
# on a unix socket in a temporary directory. Everything started here is stopped on exit.
#   bench/notify/run.sh [BUILD_DIR] [LATENCY_N] [RATE] [SECONDS] [REPLAY_N]
#   defaults: build/release 2000 10000 5 100000
# Needs redis-server and libhiredis-dev (scripts/setup.sh --bench).
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$src/build/release}" && pwd)
n=${2:-2000}
rate=${3:-10000}
secs=${4:-5}
replay=${5:-100000}
bin=$build/bin
[[ -x $bin/kmx_bench_notify ]] || { echo "bench: build kmx_bench_notify (needs libhiredis-dev)" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "bench: redis-server not found (scripts/setup.sh --bench)" >&2; exit 1; }
work=$(mktemp -d /tmp/kmx-bench-notify-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
source "$src/bench/ports.sh"
kmx_up kmx_start_set 'kmx_quick ping kmx.query' 'kmx_quick ping kmx.ingest'
redis-server --port 0 --unixsocket "$work/redis.sock" --save '' --appendonly no \
  --daemonize no --dir "$work" >"$work/redis.log" 2>&1 & pids+=($!)
for _ in $(seq 100); do [[ -S $work/redis.sock ]] && break; sleep 0.1; done

echo "bench: notify: latency, $n single writes" >&2
out=$("$bin/kmx_bench_notify" kmx-latency "$KMX_BROKER" "$KMX_EVENTS" "$n")
echo "$out"
size=$(sed -n 's/^figure: kmx event size = \([0-9]*\) bytes/\1/p' <<<"$out")
[[ ${size:-0} -ge 16 ]] || size=160
"$bin/kmx_bench_notify" redis-latency "$work/redis.sock" "$n" "$size"
status=0
for subs in 1 10 100; do
  echo "bench: notify: $subs subscriber(s), $rate events/s for $secs s" >&2
  "$bin/kmx_bench_notify" kmx-fanout "$KMX_BROKER" "$KMX_EVENTS" "$subs" "$rate" "$secs" || status=1
  "$bin/kmx_bench_notify" redis-fanout "$work/redis.sock" "$subs" "$rate" "$secs" "$size"
done
echo "bench: notify: replay of $replay events" >&2
"$bin/kmx_bench_notify" kmx-replay "$KMX_BROKER" "$replay" || status=1
"$bin/kmx_bench_notify" redis-streams "$work/redis.sock" "$replay" "$size"
echo "figure: notify event size = $size bytes"
exit $status
