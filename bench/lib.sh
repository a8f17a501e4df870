# Shared by the benchmarks that compare kmx with PostgreSQL (bench/ingest, bench/query,
# bench/mixed): a temporary work directory removed on exit with every process the script
# started, a PostgreSQL server of its own on a unix socket in that directory, and kmx
# services on free loopback ports (bench/ports.sh: port, kmx_ports, kmx_up, kmx_quick).
# Source it after setting $build; it sets $bin, $pgbin and $work.
#   bench_init NAME                  work dir /tmp/kmx-bench-NAME-XXXXXX, cleanup trap
#   pg_start [-c SETTING=VALUE ...]  initdb + pg_ctl start; fills the psql array
bin=$build/bin
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[[ -n $pgbin ]] || { echo "bench: PostgreSQL not found (scripts/setup.sh --bench)" >&2; exit 1; }
pids=()

runas() { if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
source "$(dirname "${BASH_SOURCE[0]}")/ports.sh"

bench_cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ -d $work/pg ]]; then
    runas "$pgbin/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}

bench_init() {
  work=$(mktemp -d "/tmp/kmx-bench-$1-XXXXXX")
  chmod 755 "$work" # the postgres user reads the CSV files in it
  trap bench_cleanup EXIT
}

pg_start() {
  mkdir -p "$work/pg" "$work/sock"
  chown postgres "$work/pg" "$work/sock" 2>/dev/null || true
  runas "$pgbin/initdb" -D "$work/pg" -A trust -U kmx >/dev/null
  runas "$pgbin/pg_ctl" -D "$work/pg" -l "$work/pg/log" -w \
    -o "-k $work/sock -c listen_addresses='' $*" start >/dev/null
  psql=(runas "$pgbin/psql" -h "$work/sock" -U kmx -d postgres -v ON_ERROR_STOP=1 -q)
}
