#!/usr/bin/env bash
# Read latency of kmx against PostgreSQL on 1,000,000 synthetic monthly export records
# (~200 markets, 6 categories, 800 artists, 2016-2025): the records are written straight
# into a fresh store (kmx_bench_query load), then kmx-broker, kmx-storage and kmx-query
# serve them while kmx_bench_query times a point get, a filtered page of 100, a group-by
# market for one year and a top-10 with growth through the full path; the same rows are
# COPYed into PostgreSQL (started here with initdb/pg_ctl on a unix socket in a temporary
# directory, primary key plus indexes on market, period and category, ANALYZEd) and asked
# the same questions over libpq. A second kmx-query reading the store directly
# (--read-dir, same host and volume) is asked on its local read socket (--local, no
# broker) in the same run. Prints p50/p99 side by side with the targets, then the floors
# (kmx_bench_floor): a get through the broker makes three ZeroMQ round trips (storage's
# socket included), one on the local read socket makes one unix-socket round trip; and
# each get's p50 against its floor.
#   bench/query/run.sh [BUILD_DIR] [RECORDS] [GETS] [AGGREGATES]
#   defaults: build/release 1000000 2000 100
# Needs PostgreSQL and libpq (scripts/setup.sh --bench). Not part of ctest.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$src/build/release}" && pwd)
records=${2:-1000000}
gets=${3:-2000}
aggs=${4:-100}
source "$src/bench/lib.sh"
[[ -x $bin/kmx_bench_query && -x $bin/kmx-query ]] ||
  { echo "bench: build kmx_bench_query in $build first (needs libpq-dev)" >&2; exit 1; }
bench_init query

echo "bench: loading $records records into a fresh store" >&2
"$bin/kmx_bench_query" load "$work/data" "$work/rows.csv" "$records"
chmod 644 "$work/rows.csv"

echo "bench: starting PostgreSQL and copying the same rows" >&2
pg_start -c shared_buffers=256MB -c work_mem=64MB
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

echo "bench: starting kmx-broker, kmx-storage and kmx-query (one through storage's socket," \
  "one more reading the store directly, asked on its local read socket)" >&2
start_kmx() {
  kmx_ports "$work/data"
  # The direct worker registers with a broker of its own, so the first broker's gets all
  # take the path through storage; it is asked on its local read socket.
  side=tcp://127.0.0.1:$(port)
  "$bin/kmx-broker" 2>>"$work/log" & pids+=($!)
  "$bin/kmx-broker" --bind "$side" --events-bind "tcp://127.0.0.1:$(port)" \
    --publish-bind "tcp://127.0.0.1:$(port)" 2>>"$work/log" & pids+=($!)
  "$bin/kmx-storage" 2>>"$work/log" & pids+=($!)
  "$bin/kmx-query" 2>>"$work/log" & pids+=($!)
  KMX_BROKER=$side "$bin/kmx-query" --read-dir "$work/data" --local "$work/query.sock" \
    2>>"$work/log" & pids+=($!)
}
direct=unix:$work/query.sock
kmx_up start_kmx 'kmx_quick ping kmx.query' 'kmx_quick --broker "$direct" ping kmx.query'

"$bin/kmx_bench_query" run "$KMX_BROKER" "host=$work/sock user=kmx dbname=postgres" \
  "$records" "$gets" "$aggs" "$direct" | tee "$work/run.out"

# What the hops cost at the least on this machine, beside the gets above.
"$bin/kmx_bench_floor" "$gets" | tee -a "$work/run.out"
awk '/^figure: get p50 ms socket/ {s = $NF} /^figure: get p50 ms direct/ {d = $NF}
  /^figure: floor tcp round trip/ {f = $NF} /^  unix polled / {u = $3}
  END { if (f > 0 && u > 0) {
    printf "point get p50 against its hops (target <= 1.3x): through storage %.3f ms = %.2fx" \
      " three ZeroMQ round trips (%.3f); on the local read socket %.3f ms = %.2fx one" \
      " unix-socket round trip to a process in poll (%.3f)\n", s, s / (3 * f), 3 * f, d, d / u, u } }' "$work/run.out"

# Bytes on disk per record: LMDB pages in use (records, indexes, roll-ups, event log)
# beside PostgreSQL's table with its indexes.
pages=$(mdb_stat -e "$work/data" | awk '/Number of pages used/ {print $NF}')
psize=$(mdb_stat -e "$work/data" | awk '/Page size/ {print $NF}')
pgbytes=$("${psql[@]}" -At -c "SELECT pg_total_relation_size('records')")
awk -v p="$pages" -v s="$psize" -v n="$records" -v pg="$pgbytes" 'BEGIN {
  printf "figure: storage kmx bytes per record = %.1f\n", p * s / n
  printf "figure: storage PG bytes per record = %.1f\n", pg / n }'
