# Shared by every benchmark that runs kmx services on loopback ports. Source it after
# setting $bin (the binaries) and $work (the work directory) and declaring the pids array
# (the processes the cleanup trap stops).
#   port                   prints a loopback port free now; another process may take it
#                          before a service binds it, which kmx_up notices
#   kmx_ports DATA_DIR     exports KMX_* endpoints on fresh ports and the data directory
#   kmx_up START CHECK...  runs the shell function START (it picks its ports with
#                          kmx_ports or port and starts services, appending their pids to
#                          pids), then waits until every CHECK command succeeds while all
#                          of them still run. A service that exits meanwhile (it lost its
#                          port: "cannot bind") has everything START began stopped and
#                          START run again on fresh ports, 3 times at most; then the
#                          benchmark fails with the end of the services' logs. No wait is
#                          unbounded, so no benchmark hangs on a service that is not there.
#   kmx_start_set          a START for kmx_up: broker, storage, one ingest and one query
#                          worker on fresh ports, logging to $work/log
#   kmx_quick ARGS...      one bounded kmx call (500 ms, one try, quiet), for CHECKs:
#                          kmx_up start 'kmx_quick ping kmx.query'
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

kmx_ports() {
  export KMX_BROKER_BIND=tcp://127.0.0.1:$(port) KMX_EVENTS_BIND=tcp://127.0.0.1:$(port)
  export KMX_PUBLISH_BIND=tcp://127.0.0.1:$(port) KMX_STORAGE_BIND=tcp://127.0.0.1:$(port)
  export KMX_BROKER=$KMX_BROKER_BIND KMX_EVENTS=$KMX_EVENTS_BIND KMX_PUBLISH=$KMX_PUBLISH_BIND
  export KMX_STORAGE=$KMX_STORAGE_BIND KMX_DATA_DIR=$1 KMX_LOG_LEVEL=${KMX_LOG_LEVEL:-warn}
}

kmx_start_set() {
  kmx_ports "$work/data"
  local s
  for s in broker storage ingest query; do
    "$bin/kmx-$s" 2>>"$work/log" & pids+=($!)
  done
}

kmx_quick() { "$bin/kmx" --timeout 500 --retries 1 "$@" >/dev/null 2>&1; }

# Whether every process from index $1 of pids still runs.
kmx_up_alive() {
  local p
  for p in "${pids[@]:$1}"; do kill -0 "$p" 2>/dev/null || return 1; done
}

kmx_up() {
  local start=$1 attempt first c ok p
  shift
  for attempt in 1 2 3; do
    first=${#pids[@]}
    "$start"
    for _ in $(seq 150); do # 15 s at most, pings included
      ok=1
      for c in "$@"; do eval "$c" || { ok=0; break; }; done
      if ((ok)) && kmx_up_alive "$first"; then return 0; fi
      kmx_up_alive "$first" || break
      sleep 0.1
    done
    for p in "${pids[@]:$first}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]:$first}"; do wait "$p" 2>/dev/null || true; done
    pids=("${pids[@]:0:$first}")
    echo "bench: services not up (try $attempt of 3; a port taken before its service bound it?)" >&2
  done
  echo "bench: giving up; the end of the services' logs:" >&2
  for c in "$work"/log "$work"/*/log; do [[ -f $c ]] && tail -n 20 "$c" >&2; done
  exit 1
}
