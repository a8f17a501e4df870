#!/bin/sh
# Runs the kmx-storage benchmark: durable ingest over the ROUTER with 1, 4 and 16 writers
# and batches of 1 and 1000, beside the raw in-process LMDB rate. Extra arguments go to
# the benchmark (--sync full|nometasync|none, --batch-wait-us N, --dir DIR, record counts).
# BUILD_DIR picks the build directory (default: build-bench, configured Release).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${BUILD_DIR:-$root/build-bench}
if [ ! -x "$build/bin/kmx_bench_storage" ]; then
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DKMX_BUILD_TESTS=OFF >/dev/null
fi
cmake --build "$build" -j2 --target kmx_bench_storage >/dev/null
exec "$build/bin/kmx_bench_storage" "$@"
