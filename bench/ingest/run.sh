#!/usr/bin/env bash
# End-to-end durable ingest rate: a 1,000,000-row CSV through kmx import -> kmx-broker ->
# kmx-ingest (1, 2 and 4 workers) -> kmx-storage (LMDB, full sync), each run on a fresh
# data directory; then PostgreSQL's COPY of the same rows into an equivalent table with
# the same secondary indexes (fsync and synchronous_commit on), on a server this script
# starts with initdb/pg_ctl on a unix socket in a temporary directory. Prints rows/s and
# the ratio against the target (kmx >= PostgreSQL COPY). Then a KOSIS-style wide file of as
# many cells in CP949 (bench/ingest/genwide.py: Korean headers, a column per month, 천달러)
# through 4 workers, whose records/s must be at least 80 % of the UTF-8 long file's.
#   bench/ingest/run.sh [BUILD_DIR] [ROWS]      defaults: build/release 1000000
# Needs PostgreSQL (scripts/setup.sh --bench). Not part of ctest.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$src/build/release}" && pwd)
rows=${2:-1000000}
source "$src/bench/lib.sh"
[[ -x $bin/kmx && -x $bin/kmx-ingest ]] || { echo "bench: build kmx in $build first" >&2; exit 1; }
bench_init ingest
now() { date +%s.%N; }

echo "bench: generating $rows rows" >&2
python3 "$src/bench/ingest/gen.py" "$rows" --out "$work/rows.csv"
echo "bench: generating a CP949 wide file of $rows cells" >&2
python3 "$src/bench/ingest/genwide.py" "$rows" --out "$work/wide.csv"

# Broker, storage and start_workers ingest workers on a store in start_dir (kmx_up).
start_kmx() {
  kmx_ports "$start_dir/data"
  "$bin/kmx-broker" 2>>"$start_dir/log" & pids+=($!)
  "$bin/kmx-storage" 2>>"$start_dir/log" & pids+=($!)
  for ((i = 0; i < start_workers; i++)); do "$bin/kmx-ingest" 2>>"$start_dir/log" & pids+=($!); done
}

# kmx_run WORKERS [FILE RECORDS]: the UTF-8 long file by default.
kmx_run() {
  local workers=$1 file=${2:-$work/rows.csv} want=${3:-$rows}
  local dir=$work/kmx-$workers-$(basename "$file" .csv)
  mkdir -p "$dir"
  export KMX_TIMEOUT=30000
  pids=()
  start_dir=$dir start_workers=$workers kmx_up start_kmx 'kmx_quick ping kmx.ingest'
  local jobs=$((workers * 2 > 4 ? workers * 2 : 4))
  local t0 t1
  t0=$(now)
  "$bin/kmx" import "$file" --jobs "$jobs" --format json >"$dir/summary.json"
  t1=$(now)
  python3 - "$dir/summary.json" "$want" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
assert s["stored"] == int(sys.argv[2]) and s["rejected"] == 0, s
PY
  for p in "${pids[@]}"; do kill "$p"; done
  wait "${pids[@]}" 2>/dev/null || true
  pids=()
  rm -rf "$dir/data"
  echo "$t0 $t1"
}

declare -A rate
for w in 1 2 4; do
  echo "bench: kmx with $w ingest worker(s)" >&2
  read -r t0 t1 < <(kmx_run "$w")
  rate[$w]=$(python3 -c "print(round($rows / ($t1 - $t0)))")
  echo "bench: kmx $w workers: ${rate[$w]} rows/s" >&2
done

# The CP949 wide file: every 50th cell is "-" (skipped), so it stores 49 of 50 cells.
wide_records=$((rows - (rows + 1) / 50))
echo "bench: kmx with 4 ingest workers, CP949 wide file" >&2
read -r t0 t1 < <(kmx_run 4 "$work/wide.csv" "$wide_records")
wide=$(python3 -c "print(round($wide_records / ($t1 - $t0)))")
echo "bench: kmx 4 workers, CP949 wide: $wide records/s" >&2

echo "bench: PostgreSQL COPY" >&2
python3 "$src/bench/ingest/pgrows.py" "$work/rows.csv" "$work/pgrows.csv"
chmod 644 "$work/pgrows.csv"
pg_start -c fsync=on -c synchronous_commit=on -c full_page_writes=on
"${psql[@]}" <<'SQL'
CREATE TABLE records (
  kind smallint NOT NULL, period_start integer NOT NULL, period_end integer NOT NULL,
  market text NOT NULL, category text NOT NULL, item text NOT NULL, company text NOT NULL,
  artist text NOT NULL, source text NOT NULL, amount bigint NOT NULL, unit text NOT NULL,
  PRIMARY KEY (kind, period_start, period_end, market, category, item, company, artist, source));
CREATE INDEX records_market ON records (market);
CREATE INDEX records_period ON records (period_start, period_end);
CREATE INDEX records_category ON records (kind, category);
CREATE INDEX records_company ON records (company) WHERE company <> '';
CREATE INDEX records_artist ON records (artist) WHERE artist <> '';
SQL
t0=$(now)
"${psql[@]}" -c "\\copy records FROM '$work/pgrows.csv' WITH (FORMAT csv, NULL '\\N')"
t1=$(now)
count=$("${psql[@]}" -At -c "SELECT count(*) FROM records")
[[ $count -eq $rows ]] || { echo "bench: PostgreSQL holds $count rows, not $rows" >&2; exit 1; }
pg=$(python3 -c "print(round($rows / ($t1 - $t0)))")

echo
echo "durable ingest of $rows rows (records/s, acknowledged after commit)"
printf '  %-34s %10s %8s\n' "system" "rows/s" "vs PG"
for w in 1 2 4; do
  printf '  %-34s %10s %8s\n' "kmx, $w ingest worker(s)" "${rate[$w]}" \
    "$(python3 -c "print('%.2fx' % (${rate[$w]} / $pg))")"
done
printf '  %-34s %10s %8s\n' "kmx, 4 workers, CP949 wide file" "$wide" \
  "$(python3 -c "print('%.2fx' % ($wide / $pg))")"
printf '  %-34s %10s %8s\n' "PostgreSQL COPY (PK + 5 indexes)" "$pg" "1.00x"
best=$(printf '%s\n' "${rate[@]}" | sort -n | tail -1)
echo "target kmx >= PostgreSQL COPY: best kmx / PG = $(python3 -c "print('%.2f' % ($best / $pg))")" \
  "($( [[ $best -ge $pg ]] && echo met || echo 'not met'))"
wide_ratio=$(python3 -c "print('%.2f' % ($wide / ${rate[4]}))")
echo "target CP949 wide ($rows cells, $wide_records records) >= 0.80 x UTF-8 long with 4 workers:" \
  "$wide_ratio ($(python3 -c "print('met' if $wide >= 0.8 * ${rate[4]} else 'not met')"))"
echo "figure: CP949 wide 4 workers = $wide records/s"
echo "figure: CP949 wide / UTF-8 long = $wide_ratio x"
