#!/usr/bin/env bash
# Read latency of kmx against PostgreSQL on 1,000,000 synthetic monthly export records
# (~200 markets, 6 categories, 800 artists, 2016-2025): the records are written straight
# into a fresh store (kmx_bench_query load), then kmx-broker, kmx-storage and kmx-query
# serve them while kmx_bench_query times a point get, a filtered page of 100, a group-by
# market for one year and a top-10 with growth through the full path; the same rows are
# COPYed into PostgreSQL (started here with initdb/pg_ctl on a unix socket in a temporary
# directory, primary key plus indexes on market, period and category, ANALYZEd) and asked
# the same questions over libpq. Prints p50/p99 side by side with the targets, then the
# floor of one ZeroMQ round trip (kmx_bench_floor): a get makes three.
#   bench/query/run.sh [BUILD_DIR] [RECORDS] [GETS] [AGGREGATES]
#   defaults: build/release 1000000 2000 100
# Needs PostgreSQL and libpq (scripts/setup.sh --bench). Not part of ctest.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$src/build/release}" && pwd)
records=${2:-1000000}
gets=${3:-2000}
aggs=${4:-100}
bin=$build/bin
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[[ -x $bin/kmx_bench_query && -x $bin/kmx-query ]] ||
  { echo "bench: build kmx_bench_query in $build first (needs libpq-dev)" >&2; exit 1; }
[[ -n $pgbin ]] || { echo "bench: PostgreSQL not found (scripts/setup.sh --bench)" >&2; exit 1; }

work=$(mktemp -d /tmp/kmx-bench-query-XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ -d $work/pg ]]; then
    runas "$pgbin/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
runas() { if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

echo "bench: loading $records records into a fresh store" >&2
"$bin/kmx_bench_query" load "$work/data" "$work/rows.csv" "$records"
chmod 644 "$work/rows.csv"

echo "bench: starting PostgreSQL and copying the same rows" >&2
mkdir -p "$work/pg" "$work/sock"
chown postgres "$work/pg" "$work/sock" 2>/dev/null || true
runas "$pgbin/initdb" -D "$work/pg" -A trust -U kmx >/dev/null
runas "$pgbin/pg_ctl" -D "$work/pg" -l "$work/pg/log" -w \
  -o "-k $work/sock -c listen_addresses='' -c shared_buffers=256MB -c work_mem=64MB" start >/dev/null
psql=(runas "$pgbin/psql" -h "$work/sock" -U kmx -d postgres -v ON_ERROR_STOP=1 -q)
"${psql[@]}" <<SQL
CREATE TABLE records (
  kind smallint NOT NULL, period_start integer NOT NULL, period_end integer NOT NULL,
  market text NOT NULL, category text NOT NULL, item text NOT NULL, company text NOT NULL,
  artist text NOT NULL, source text NOT NULL, amount bigint NOT NULL, unit text NOT NULL,
  PRIMARY KEY (kind, period_start, period_end, market, category, item, company, artist, source));
\\copy records FROM '$work/rows.csv' WITH (FORMAT csv)
CREATE INDEX records_market ON records (market, period_start);
CREATE INDEX records_period ON records (period_start, period_end);
CREATE INDEX records_category ON records (kind, category, period_start);
ANALYZE records;
SQL

echo "bench: starting kmx-broker, kmx-storage and kmx-query" >&2
export KMX_BROKER_BIND=tcp://127.0.0.1:$(port) KMX_EVENTS_BIND=tcp://127.0.0.1:$(port)
export KMX_PUBLISH_BIND=tcp://127.0.0.1:$(port) KMX_STORAGE_BIND=tcp://127.0.0.1:$(port)
export KMX_BROKER=$KMX_BROKER_BIND KMX_EVENTS=$KMX_EVENTS_BIND KMX_PUBLISH=$KMX_PUBLISH_BIND
export KMX_STORAGE=$KMX_STORAGE_BIND KMX_DATA_DIR=$work/data KMX_LOG_LEVEL=warn
"$bin/kmx-broker" 2>>"$work/log" & pids+=($!)
"$bin/kmx-storage" 2>>"$work/log" & pids+=($!)
"$bin/kmx-query" 2>>"$work/log" & pids+=($!)
for _ in $(seq 100); do "$bin/kmx" ping kmx.query >/dev/null 2>&1 && break; sleep 0.1; done

"$bin/kmx_bench_query" run "$KMX_BROKER" "host=$work/sock user=kmx dbname=postgres" \
  "$records" "$gets" "$aggs"

# What three ZeroMQ hops cost at the least on this machine, beside the get above.
"$bin/kmx_bench_floor" "$gets"
