#!/usr/bin/env bash
# The embedded default: builds kmx, starts broker, storage, ingest and query on loopback
# with data in ./.kmx, loads the sample data and shows a first query.
#   scripts/run.sh          start (or restart) the set and load data/kmusic-facts*.csv
#   scripts/run.sh stop     stop every service this script started
#   scripts/run.sh status   ping every service
# Ports and paths come from the usual KMX_* variables (see docs/architecture.md).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
state=$root/.kmx
bin=$root/build/run/bin

stop() {
  for f in "$state"/*.pid; do
    [[ -e $f ]] || continue
    pid=$(cat "$f")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$f"
  done
}

start() { # name, then the command line
  local name=$1; shift
  "$@" >>"$state/logs/$name.log" 2>&1 &
  echo $! >"$state/$name.pid"
}

case "${1:-start}" in
  stop) stop; echo "kmx stopped"; exit 0 ;;
  status) exec "$bin/kmx" ping ;;
  start) ;;
  *) echo "usage: scripts/run.sh [start|stop|status]" >&2; exit 1 ;;
esac

scripts/setup.sh
cmake -S . -B build/run -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKMX_BUILD_TESTS=OFF \
      >/dev/null
cmake --build build/run -j"$(nproc 2>/dev/null || echo 2)" >/dev/null

stop
mkdir -p "$state/logs"
export KMX_DATA_DIR=${KMX_DATA_DIR:-$state/data}
start broker "$bin/kmx-broker"
start storage "$bin/kmx-storage"
start ingest "$bin/kmx-ingest"
# One host: the query worker reads storage's files itself and answers the gateway's reads
# on its local read socket, without the broker's hops (docs/operations.md).
start query "$bin/kmx-query" --read-dir "$KMX_DATA_DIR" --local "$state/query.sock"
start gateway "$bin/kmx-gateway" --read-socket "$state/query.sock" # HTTP, events, dashboard

for _ in $(seq 50); do
  "$bin/kmx" ping >/dev/null 2>&1 && break
  sleep 0.2
done
"$bin/kmx" ping
for name in broker storage ingest query gateway; do
  if ! kill -0 "$(cat "$state/$name.pid")" 2>/dev/null; then
    echo "kmx-$name did not start; the end of .kmx/logs/$name.log says:" >&2
    tail -n 5 "$state/logs/$name.log" >&2
    stop
    exit 1
  fi
done

"$bin/kmx" import data/kmusic-facts.csv
"$bin/kmx" import data/kmusic-facts-extended.csv
echo
echo "Monthly active users of Melon and YouTube Music (Mobile Index panel):"
"$bin/kmx" query consumption --dimension streaming_app_mau --by period,item \
  --item "Melon MAU" --item "Melon MAU (approx.)" \
  --item "YouTube Music MAU" --item "YouTube Music MAU (approx.)"
echo
echo "kmx is running (logs in .kmx/logs). Try: $bin/kmx query exports --category \
physical_album_customs --unit USD --period 2024 --by market --share --prefer"
echo "Stop it with: scripts/run.sh stop"
echo "Dashboard and HTTP API: http://${KMX_GATEWAY_BIND:-127.0.0.1:8480}/ (docs/http.md)"
