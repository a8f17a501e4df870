#!/usr/bin/env bash
# kmx under docker-compose, for real: builds the kmx image offline, starts the set with
# `--scale ingest=3 --scale query=2` on the host network, and drives it with the host's kmx
# CLI. Checks query answers against the sample CSV, that every replica served requests,
# that an import survives losing an ingest container with every record stored once, that
# storage restarts with its volume and a gap-free event sequence, that `docker-compose
# down` stops everything cleanly, and then the same image with CURVE keys
# (deploy/compose.curve.yml): a writer imports, a reader queries and is refused a put, a
# client without keys gets no answer, health checks pass with each container's own key.
# The image carries the dashboard BUILD_DIR/dashboard holds: kmx-gateway serves it at /.
#
#   tests/docker/test_compose.sh BUILD_DIR      (the kmx CLI is BUILD_DIR/bin/kmx)
#
# Needs root. Installs docker.io, docker-compose and debootstrap (scripts/setup.sh --docker),
# starts its own dockerd (no bridge, no iptables; its own socket, state and data root) and
# stops it again by PID. Never creates a network: every container uses the host network.
# The debootstrap base image is cached as a `docker save` tarball in KMX_DOCKER_CACHE.
# When Docker cannot run here the test fails; it never skips.
#
# Settings (environment): KMX_DOCKER_CACHE (/var/cache/kmx-docker), KMX_DOCKER_ROOT
# (/var/lib/kmx-docker), KMX_DOCKER_EXEC (/run/kmx-docker), KMX_TEST_PORT_BASE (25555:
# broker +0, events +2, publish +3, storage +5), KMX_TEST_ROWS (20000), KMX_TEST_PROJECT
# (kmxtest), KMX_DEBIAN_MIRROR (from the apt sources), KMX_DOCKER_TEST_TIMEOUT (1500 s: the
# whole run, image build included, is stopped and fails after that).
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
here=$root/tests/docker
[[ $# -eq 1 ]] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
kmx_bin=$1/bin/kmx
[[ -x $kmx_bin ]] || kmx_bin=$1/kmx
[[ -x $kmx_bin ]] || { echo "test_compose: no kmx CLI in $1/bin" >&2; exit 2; }
kmx_bin=$(cd "$(dirname "$kmx_bin")" && pwd)/kmx

cache=${KMX_DOCKER_CACHE:-/var/cache/kmx-docker}
data_root=${KMX_DOCKER_ROOT:-/var/lib/kmx-docker}
exec_root=${KMX_DOCKER_EXEC:-/run/kmx-docker}
sock=$exec_root.sock
pidfile=$exec_root.pid
port_base=${KMX_TEST_PORT_BASE:-25555}
rows=${KMX_TEST_ROWS:-20000}
project=${KMX_TEST_PROJECT:-kmxtest}
base_image=kmx-base:bookworm
image=$project-kmx:latest
big_source="kmx docker test synthetic"
late_source="kmx docker test after restart"

passed=0
failed=0
started=$SECONDS
tmp=$(mktemp -d /tmp/kmx-docker-test.XXXXXX)
dockerd_pid=""
compose_up=0

say() { printf '[%3ds] %s\n' $((SECONDS - started)) "$*"; }
pass() { passed=$((passed + 1)); say "PASS $*"; }
fail() { failed=$((failed + 1)); say "FAIL $*"; }
die() { fail "$*"; exit 1; }
check() { # description, then a command that must succeed
  local what=$1; shift
  if "$@" >"$tmp/check.out" 2>&1; then
    pass "$what"; sed 's/^/       /' "$tmp/check.out"
  else
    fail "$what"; sed 's/^/       /' "$tmp/check.out"
  fi
}

# Debian's docker client matches its engine (20.10); another one may come first on PATH.
docker_bin=/usr/bin/docker
export DOCKER_HOST=unix://$sock
d() { "$docker_bin" "$@"; }
compose() { docker-compose -f "$root/docker-compose.yml" -f "$root/deploy/compose.hostnet.yml" "$@"; }
kmx() { "$kmx_bin" "$@"; }
pycheck() { python3 "$here/compose_check.py" "$@"; }

export COMPOSE_PROJECT_NAME=$project
export KMX_IMAGE=$image
export KMX_VOLUME=$project-data
export KMX_BROKER_PORT=$port_base
export KMX_EVENTS_PORT=$((port_base + 2))
export KMX_PUBLISH_PORT=$((port_base + 3))
export KMX_STORAGE_PORT=$((port_base + 5))
export KMX_GATEWAY_PORT=$((port_base + 7)) # kmx-gateway's HTTP port (docs/http.md)
export KMX_HEALTH_INTERVAL=1s
export KMX_BROKER=tcp://127.0.0.1:$KMX_BROKER_PORT
export KMX_EVENTS=tcp://127.0.0.1:$KMX_EVENTS_PORT
export KMX_TIMEOUT=5000
export KMX_RETRIES=3

stop_dockerd() {
  local pid=$1 i
  kill "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
  # The engine leaves its network namespace mount behind.
  mountpoint -q "$exec_root/netns/default" 2>/dev/null && umount "$exec_root/netns/default"
  rm -f "$sock"
  # Its run-time state goes too, unless something is still mounted there.
  grep -q " $exec_root/" /proc/mounts || rm -rf "$exec_root"
}

cleanup() {
  local rc=$?
  set +e
  if [[ -n $dockerd_pid ]]; then
    if [[ $compose_up -eq 1 ]]; then
      if [[ $failed -gt 0 ]]; then
        say "service logs (last lines):"
        compose logs --no-color --tail 15 2>&1 | sed 's/^/       /'
      fi
      compose down -v -t 5 >/dev/null 2>&1
    fi
    d volume rm -f "$KMX_VOLUME" >/dev/null 2>&1
    jobs -p | grep -vx "$watchdog_pid" | xargs -r kill 2>/dev/null
    stop_dockerd "$dockerd_pid"
  fi
  pkill -P "$watchdog_pid" 2>/dev/null # its sleep: the watchdog then ends quietly
  kill "$watchdog_pid" 2>/dev/null
  rm -rf "$tmp"
  [[ $rc -ne 0 && $failed -eq 0 ]] && failed=1
  say "done"
  echo "$passed passed, $failed failed"
  [[ $failed -eq 0 ]] && exit 0 || exit 1
}
trap cleanup EXIT
trap 'say "interrupted"; exit 1' INT TERM

# An overall bound: a watchdog ends every step still running (this shell's children)
# and then the test, which fails; cleanup stops the set and dockerd as always.
limit=${KMX_DOCKER_TEST_TIMEOUT:-1500}
(
  sleep "$limit" &
  wait $! || exit 0 # the sleep was ended: the test finished in time
  echo "[timeout] the container test ran over ${limit} s (KMX_DOCKER_TEST_TIMEOUT)" >&2
  kill -TERM $$ 2>/dev/null        # runs the TERM trap once the running step has ended,
  pkill -TERM -P $$ 2>/dev/null    # which this ends (and this watchdog with it)
) &
watchdog_pid=$!

[[ $(id -u) -eq 0 ]] || die "needs root: it installs packages and runs dockerd"

# ---- packages and engine ------------------------------------------------------------
"$root/scripts/setup.sh" --docker || die "scripts/setup.sh --docker failed"
for tool in dockerd docker-compose debootstrap; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done
[[ -x $docker_bin ]] || docker_bin=$(command -v docker) || die "no docker client"

# A dockerd left by an interrupted run of this test: it is ours (its own pidfile).
if [[ -s $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  say "stopping the dockerd of an earlier run (pid $(cat "$pidfile"))"
  stop_dockerd "$(cat "$pidfile")"
fi
mkdir -p "$data_root" "$cache"
cat >"$tmp/daemon.json" <<'EOF'
{"bridge": "none", "iptables": false, "ip6tables": false, "ip-forward": false, "ip-masq": false}
EOF
dockerd --config-file "$tmp/daemon.json" -H "unix://$sock" --pidfile "$pidfile" \
  --exec-root "$exec_root" --data-root "$data_root" >"$tmp/dockerd.log" 2>&1 &
dockerd_pid=$!
for ((i = 0; i < 150; i++)); do
  d info >/dev/null 2>&1 && break
  kill -0 "$dockerd_pid" 2>/dev/null || break
  sleep 0.2
done
if ! d info >/dev/null 2>&1; then
  tail -20 "$tmp/dockerd.log" | sed 's/^/       /'
  die "dockerd did not start: Docker cannot run on this machine"
fi
pass "dockerd running (pid $dockerd_pid, no bridge, no iptables)"

# ---- base image ---------------------------------------------------------------------
mirror=${KMX_DEBIAN_MIRROR:-}
if [[ -z $mirror ]]; then
  mirror=$(awk '/^URIs:/ {u = $2} /^Suites:/ && / bookworm( |$)/ {print u; exit}' \
    /etc/apt/sources.list.d/*.sources 2>/dev/null)
fi
if [[ -z $mirror ]]; then
  mirror=$(awk '$1 == "deb" && $3 == "bookworm" {print $2; exit}' /etc/apt/sources.list \
    /etc/apt/sources.list.d/*.list 2>/dev/null)
fi
mirror=${mirror:-http://deb.debian.org/debian}

if ! d image inspect "$base_image" >/dev/null 2>&1; then
  if [[ -s $cache/base.tar && -s $cache/base-dpkg-status ]]; then
    d load -i "$cache/base.tar" >/dev/null || die "docker load of $cache/base.tar failed"
    say "base image loaded from $cache/base.tar"
  else
    say "debootstrap bookworm from $mirror"
    debootstrap --variant=minbase bookworm "$tmp/rootfs" "$mirror" >"$tmp/debootstrap.log" 2>&1 ||
      { tail -5 "$tmp/debootstrap.log"; die "debootstrap failed"; }
    : >"$tmp/rootfs/etc/resolv.conf"
    tar -C "$tmp/rootfs" -c . | d import - "$base_image" >/dev/null || die "docker import failed"
    d save -o "$cache/base.tar.part" "$base_image" && mv "$cache/base.tar.part" "$cache/base.tar"
    cp "$tmp/rootfs/var/lib/dpkg/status" "$cache/base-dpkg-status"
    rm -rf "$tmp/rootfs"
  fi
fi
[[ -s $cache/base-dpkg-status ]] || die "no $cache/base-dpkg-status: remove $cache/base.tar and rerun"
pass "base image $base_image (debootstrap, cached in $cache)"

# ---- image --------------------------------------------------------------------------
mkdir -p "$tmp/baseroot/var/lib/dpkg"
cp "$cache/base-dpkg-status" "$tmp/baseroot/var/lib/dpkg/status"
"$root/deploy/fetch-debs.sh" "$tmp/baseroot" 2>"$tmp/fetch.log" ||
  { cat "$tmp/fetch.log"; die "deploy/fetch-debs.sh failed"; }
# The dashboard the host's build made (no npm registry inside an offline build): the
# image build copies deploy/web/ in (see the Dockerfile).
dashboard=$(cd "$1" && pwd)/dashboard
[[ -f $dashboard/index.html ]] || die "no dashboard in $dashboard: build the kmx_web target (needs node and npm)"
rm -rf "$root/deploy/web" && cp -R "$dashboard" "$root/deploy/web" ||
  die "cannot copy the dashboard into deploy/web"
t0=$SECONDS
# The build stage gets a tag of its own, so it stays as the cache of the next run while
# the untagged stages of earlier runs are pruned (each is about 1 GB).
build() { # extra docker build options
  d build --network none --build-arg BASE="$base_image" --build-arg DEBS=1 "$@" "$root"
}
if build --target build -t "$project-kmx:build" >"$tmp/build.log" 2>&1 &&
  build -t "$image" >>"$tmp/build.log" 2>&1; then
  pass "image $image built with --network none from .deb files ($((SECONDS - t0)) s)"
  d image prune -f >/dev/null 2>&1
else
  tail -30 "$tmp/build.log" | sed 's/^/       /'
  die "docker build failed"
fi
check "image runs as a non-root user" \
  bash -c "[[ \$('$docker_bin' run --rm --network host '$image' id -u) != 0 ]]"

# Swarm takes the same files, rendered by deploy/stack-config.sh; a docker client with
# `stack config` (20.10's has none) validates the result without a swarm.
for cli in /usr/local/bin/docker "$docker_bin"; do
  if [[ -x $cli ]] && "$cli" stack config --help >/dev/null 2>&1; then
    check "deploy/stack-config.sh renders a file docker stack accepts" \
      bash -c "'$root/deploy/stack-config.sh' >'$tmp/stack.yml' && '$cli' stack config -c '$tmp/stack.yml' >/dev/null"
    stack_checked=1
    break
  fi
done
# Everywhere (docker-compose is a prerequisite): the rendered file is a valid compose
# file without the two things `docker stack deploy` refuses.
check "deploy/stack-config.sh renders a compose file without build sections or depends_on conditions" \
  bash -c "'$root/deploy/stack-config.sh' >'$tmp/stack2.yml' && docker-compose -f '$tmp/stack2.yml' config -q && python3 '$here/compose_check.py' swarmable '$tmp/stack2.yml'"
if [[ -z ${stack_checked:-} ]]; then
  say "SKIP docker stack config of the rendered file: no docker client with 'stack config' (Debian's 20.10 has none; the compose check above still ran)"
fi

# ---- start the set ------------------------------------------------------------------
for port in $KMX_BROKER_PORT $KMX_EVENTS_PORT $KMX_PUBLISH_PORT $KMX_STORAGE_PORT \
  $KMX_GATEWAY_PORT; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    die "port $port is in use; set KMX_TEST_PORT_BASE"
  fi
done
compose down -v -t 5 >/dev/null 2>&1
d volume rm -f "$KMX_VOLUME" >/dev/null 2>&1
d network ls -q | sort >"$tmp/networks.before"
compose_up=1
t0=$SECONDS
compose up -d --no-build --scale ingest=3 --scale query=2 >"$tmp/up.log" 2>&1 ||
  { sed 's/^/       /' "$tmp/up.log"; die "docker-compose up failed"; }
pass "docker-compose up --scale ingest=3 --scale query=2 ($((SECONDS - t0)) s)"
d network ls -q | sort >"$tmp/networks.after"
check "no network was created" diff "$tmp/networks.before" "$tmp/networks.after"

containers() { # service: ids of its running containers
  d ps -q --filter "label=com.docker.compose.project=$project" \
    --filter "label=com.docker.compose.service=$1"
}
health_all() { # every container of the project healthy?
  local ids
  ids=$(d ps -aq --filter "label=com.docker.compose.project=$project")
  [[ $(echo "$ids" | wc -w) -eq 8 ]] || return 1 # with the gateway
  # shellcheck disable=SC2086
  [[ -z $(d inspect -f '{{.State.Health.Status}}' $ids | grep -v '^healthy$') ]]
}
ready() { # the broker knows 3 live ingest and 2 live query workers, and they answer
  kmx stats --format json >"$tmp/ready.json" 2>/dev/null &&
    pycheck alive "$tmp/ready.json" kmx.ingest=3 kmx.query=2 >/dev/null 2>&1
}
t0=$SECONDS
for ((i = 0; i < 90; i++)); do
  health_all && ready && break
  sleep 1
done
if health_all && ready; then
  pass "8 containers healthy, broker sees 3 ingest + 2 query workers ($((SECONDS - t0)) s)"
else
  d ps -a --filter "label=com.docker.compose.project=$project" \
    --format '{{.Names}} {{.Status}}' | sed 's/^/       /'
  sed 's/^/       /' "$tmp/ready.json" 2>/dev/null
  die "the set did not become ready"
fi

# ---- sample data and query answers --------------------------------------------------
sample=$root/data/kmusic-facts.csv
sample_rows=$(($(wc -l <"$sample") - 1))
sample_facts=$(pycheck facts "$sample") # one figure is in the file twice: preliminary, revised
# Small batches: many put requests, so each ingest replica gets several. The revision may
# land before its preliminary (replicas run batches in parallel): the preliminary is then
# unchanged instead of stored, and the revision is what is kept either way.
if kmx import "$sample" --batch 4 --format json >"$tmp/import.json" 2>"$tmp/import.err"; then
  check "kmx import of the sample: $sample_rows rows, $sample_facts figures stored" \
    python3 -c "import json,sys; s=json.load(open('$tmp/import.json')); print(s); sys.exit(s['stored'] + s['unchanged'] != $sample_rows or s['stored'] < $sample_facts or s['rejected'] != 0)"
else
  fail "kmx import of the sample exited $?"; cat "$tmp/import.err" "$tmp/import.json"
fi
ok=1
for ((i = 0; i < 6; i++)); do
  kmx query exports --by market --granularity any --format json >"$tmp/exports.json" &&
    kmx query consumption --by market --granularity any --format json >"$tmp/consumption.json" &&
    pycheck sums "$sample" "$tmp/exports.json" "$tmp/consumption.json" >"$tmp/sums.out" 2>&1 ||
    { ok=0; break; }
done
if [[ $ok -eq 1 ]]; then pass "query sums by market equal the CSV's (6 times each kind)"
else fail "query sums by market"; sed 's/^/       /' "$tmp/sums.out"; fi

# ---- kmx-gateway (docs/http.md) -------------------------------------------------------
# Its container's health check (kmx-gateway --probe) passed above; from the host, /healthz
# answers 200 and a query over HTTP is the CLI's JSON document for the same question.
check "kmx-gateway: /healthz 200 and /v1/query/exports the CLI's JSON" \
  python3 - "http://127.0.0.1:$KMX_GATEWAY_PORT" "$tmp/exports.json" <<'PY'
import json, sys, urllib.request
base, cli = sys.argv[1], json.load(open(sys.argv[2]))
health = urllib.request.urlopen(base + "/healthz", timeout=10)
got = json.load(urllib.request.urlopen(base + "/v1/query/exports?by=market&granularity=any",
                                       timeout=10))
print(health.status, len(got["rows"]), "rows")
sys.exit(health.status != 200 or got != cli)
PY
# The image carries the dashboard: / is its page, and every file the page loads is served
# with its type, byte for byte what the build made.
check "kmx-gateway: / serves the dashboard and each of its files" \
  python3 - "http://127.0.0.1:$KMX_GATEWAY_PORT" "$dashboard" <<'PY'
import os, re, sys, urllib.request
base, built = sys.argv[1], sys.argv[2]
page = urllib.request.urlopen(base + "/", timeout=10)
html = page.read()
assert page.status == 200 and page.headers["Content-Type"].startswith("text/html"), page.headers
assert html == open(os.path.join(built, "index.html"), "rb").read(), "/ is not the built page"
files = re.findall(rb'(?:src|href)="([^":]+)"', html)
assert {b"app.js", b"style.css", b"echarts.common.min.js"} <= set(files), files
types = {".js": "text/javascript", ".css": "text/css"}
for f in files:
    name = f.decode()
    r = urllib.request.urlopen(base + "/" + name, timeout=10)
    body = r.read()
    want = types[os.path.splitext(name)[1]]
    assert r.status == 200 and r.headers["Content-Type"].startswith(want), (name, r.headers)
    assert body == open(os.path.join(built, name), "rb").read(), name + " differs"
    print(name, len(body), "bytes", r.headers["Content-Type"])
PY
# ---- end of the kmx-gateway check -------------------------------------------------------

kmx stats --format json >"$tmp/stats.json" 2>&1
check "kmx stats: all 3 ingest and 2 query replicas served requests" \
  pycheck workers "$tmp/stats.json" kmx.ingest=3 kmx.query=2
# Each stats request reaches one worker (least recently used first); a few rounds reach all.
: >"$tmp/stats.jsonl"
for ((i = 0; i < 12; i++)); do kmx stats --format json >>"$tmp/stats.jsonl" 2>/dev/null; done
check "every ingest replica stored batches" pycheck counters "$tmp/stats.jsonl" kmx.ingest batches 3
check "every query replica answered queries" pycheck counters "$tmp/stats.jsonl" kmx.query queries 2

# ---- a larger import while one ingest container dies --------------------------------
pycheck gen "$rows" "$big_source" "$tmp/big.csv"
ingest_requests() {
  kmx stats --format json 2>/dev/null | python3 -c '
import json, sys
sys.path.insert(0, sys.argv[1])
from compose_check import services_workers
print(sum(int(w["requests"]) for w in services_workers(json.load(sys.stdin))
          if w["service"] == "kmx.ingest"))' "$here" 2>/dev/null || echo 0
}
before=$(ingest_requests)
t0=$SECONDS
timeout 600 "$kmx_bin" import "$tmp/big.csv" --batch 50 --format json >"$tmp/big.json" \
  2>"$tmp/big.err" &
import_pid=$!
for ((i = 0; i < 300; i++)); do
  (($(ingest_requests) >= before + 40)) && break
  kill -0 "$import_pid" 2>/dev/null || break
  sleep 0.1
done
victim=$(containers ingest | sed -n 2p)
if kill -0 "$import_pid" 2>/dev/null && [[ -n $victim ]]; then
  # Frozen first: its broker connection stays up, so the broker hands it a batch that is
  # never answered and the CLI has to retry it elsewhere (a worker killed while idle
  # would only be dropped by the broker). Then it dies with the batch in its hands.
  d pause "$victim" >/dev/null
  if ! kill -0 "$import_pid" 2>/dev/null; then
    # Nothing was frozen mid-import: the case would pass without testing anything.
    fail "the import ended before ingest container $victim was frozen (raise KMX_TEST_ROWS)"
  else
    for ((i = 0; i < 60; i++)); do # a little over the CLI's 5 s per-try timeout
      kill -0 "$import_pid" 2>/dev/null || break
      sleep 0.1
    done
    when="in the middle of the import"
    kill -0 "$import_pid" 2>/dev/null || when="(the import retried its batch elsewhere and ended)"
    pass "froze, then killed ingest container $(d inspect -f '{{.Name}}' "$victim") $when"
  fi
  d kill "$victim" >/dev/null 2>&1 || { d unpause "$victim" && d kill "$victim"; } >/dev/null
else
  fail "the import ended before an ingest container could be stopped (raise KMX_TEST_ROWS)"
fi
wait "$import_pid" # bounded: the import runs under timeout 600
import_rc=$?
if [[ $import_rc -eq 0 ]]; then
  check "the import of $rows rows completed ($((SECONDS - t0)) s)" \
    python3 -c "import json,sys; s=json.load(open('$tmp/big.json')); print(s); sys.exit(s['stored'] + s['unchanged'] != $rows or s['rejected'] != 0)"
else
  fail "the import of $rows rows exited $import_rc"; tail -5 "$tmp/big.err" | sed 's/^/       /'
fi
kmx list exports --source "$big_source" --format json >"$tmp/big.jsonl" 2>"$tmp/list.err"
check "every one of the $rows records is stored exactly once" \
  pycheck records "$tmp/big.jsonl" "$rows" "$big_source"

# ---- storage restart: the volume persists, the event sequence continues ------------
total=$((sample_facts + rows))
kmx list --format json >"$tmp/all.jsonl" 2>/dev/null
last=$(pycheck maxseq "$tmp/all.jsonl")
late=50
pycheck gen "$late" "$late_source" "$tmp/late.csv"
# A subscriber that stays connected through the restart: it must see the next events.
storage_replays() { # storage's replay counter (through kmx.query), -1 when unknown
  kmx stats --format json 2>/dev/null | python3 -c '
import json, sys
print(next((int(s["counters"].get("replays", -1)) for s in json.load(sys.stdin)["services"]
            if s["service"] == "kmx.storage"), -1))' 2>/dev/null || echo -1
}
replays=$(storage_replays)
timeout 120 "$kmx_bin" watch --since "$last" --count "$late" --format json \
  >"$tmp/watch_live.jsonl" 2>"$tmp/watch_live.err" &
watch_pid=$!
# It subscribes, then replays from --since: once storage counted that replay the
# subscription is in place (bounded wait, no fixed sleep).
for ((i = 0; i < 100; i++)); do
  (($(storage_replays) > replays)) && break
  sleep 0.1
done
(($(storage_replays) > replays)) || fail "the subscriber did not start its replay within 10 s"
storage=$(containers storage)
t0=$SECONDS
d restart -t 30 "$storage" >/dev/null || fail "docker restart of storage"
say "docker restart of storage took $((SECONDS - t0)) s"
probe() { # the compose health check of storage, from the host: "no such record" (exit 1)
  local out  # means the read went through kmx.query to storage and back
  out=$(kmx --retries 1 --timeout 2000 get --kind export --period 2000 --market KR \
    --category kmx_health --item probe 2>&1)
  [[ $out == *"no such record"* ]]
}
for ((i = 0; i < 60; i++)); do probe && break; sleep 0.5; done
if probe; then pass "storage restarted and answers again ($((SECONDS - t0)) s)"
else fail "storage does not answer after its restart"; fi
kmx list --format json >"$tmp/all2.jsonl" 2>/dev/null
check "every record is still there after the restart (volume)" pycheck records "$tmp/all2.jsonl" "$total"
if kmx import "$tmp/late.csv" --format json >"$tmp/late.json" 2>&1; then
  pass "imported $late more records after the restart"
else
  fail "import after the restart"; sed 's/^/       /' "$tmp/late.json"
fi
wait "$watch_pid"
check "the subscriber that stayed saw seq $((last + 1))..$((last + late)) gap-free (exit $?)" \
  pycheck events "$tmp/watch_live.jsonl" $((last + 1)) "$late"
from=$((last > 10 ? last - 10 : 0))
timeout 60 "$kmx_bin" watch --since "$from" --count $((last - from + late)) --format json \
  >"$tmp/watch_since.jsonl" 2>"$tmp/watch_since.err"
check "kmx watch --since $from replays across the restart gap-free" \
  pycheck events "$tmp/watch_since.jsonl" $((from + 1)) $((last - from + late))

# ---- stop --------------------------------------------------------------------------
victim_id=$(d inspect -f '{{.Id}}' "$victim" 2>/dev/null || echo none)
t0=$SECONDS
compose stop -t 30 >"$tmp/stop.log" 2>&1
stop_s=$((SECONDS - t0))
# Exit status 0 means the service stopped on SIGTERM (through tini); 137 would mean
# Docker had to kill it after the grace period.
bad=$(d ps -aq --no-trunc --filter "label=com.docker.compose.project=$project" |
  grep -v "^$victim_id$" | xargs -r "$docker_bin" inspect -f '{{.Name}} {{.State.ExitCode}}' |
  grep -v ' 0$')
if [[ -z $bad ]]; then pass "every container stopped cleanly on SIGTERM ($stop_s s)"
else fail "containers that did not stop cleanly: $bad"; fi
t0=$SECONDS
compose down -v -t 30 >"$tmp/down.log" 2>&1 || fail "docker-compose down"
down_s=$((SECONDS - t0))
left=$(d ps -aq --filter "label=com.docker.compose.project=$project")
if [[ -z $left ]] && ! d volume inspect "$KMX_VOLUME" >/dev/null 2>&1; then
  pass "docker-compose down left no containers and no volume ($down_s s)"
  compose_up=0
else
  fail "docker-compose down left containers: $left"
fi
# ---- CURVE: the same image with keys and an allow-list (deploy/compose.curve.yml) ------
ccompose() {
  docker-compose -f "$root/docker-compose.yml" -f "$root/deploy/compose.hostnet.yml" \
    -f "$root/deploy/compose.curve.yml" "$@"
}
keypair() { kmx keygen | sed -n 's/^\(public\|secret\)=//p' | tr '\n' ' '; }
read -r KMX_CURVE_BROKER_PUBLIC KMX_CURVE_BROKER_SECRET < <(keypair)
read -r KMX_CURVE_STORAGE_PUBLIC KMX_CURVE_STORAGE_SECRET < <(keypair)
read -r service_pub KMX_CURVE_SERVICE_SECRET < <(keypair)
read -r writer_pub writer_sec < <(keypair)
read -r reader_pub reader_sec < <(keypair)
export KMX_CURVE_BROKER_PUBLIC KMX_CURVE_BROKER_SECRET KMX_CURVE_STORAGE_PUBLIC
export KMX_CURVE_STORAGE_SECRET KMX_CURVE_SERVICE_SECRET
export KMX_CURVE_ALLOW_FILE=$tmp/allow
printf '%s service broker\n%s service storage\n%s service workers\n%s writer\n%s reader\n' \
  "$KMX_CURVE_BROKER_PUBLIC" "$KMX_CURVE_STORAGE_PUBLIC" "$service_pub" "$writer_pub" \
  "$reader_pub" >"$KMX_CURVE_ALLOW_FILE"
chmod 644 "$KMX_CURVE_ALLOW_FILE"
as_writer() { KMX_CURVE_SECRET=$writer_sec KMX_CURVE_BROKER=$KMX_CURVE_BROKER_PUBLIC kmx "$@"; }
as_reader() { KMX_CURVE_SECRET=$reader_sec KMX_CURVE_BROKER=$KMX_CURVE_BROKER_PUBLIC kmx "$@"; }
compose_up=1
t0=$SECONDS
if ccompose up -d --no-build >"$tmp/curve_up.log" 2>&1; then
  for ((i = 0; i < 90; i++)); do
    as_writer --timeout 1000 --retries 1 ping >/dev/null 2>&1 && break
    sleep 1
  done
  check "with CURVE keys the set answers a writer's ping ($((SECONDS - t0)) s)" \
    as_writer ping
  if as_writer import "$sample" --format json >"$tmp/curve_import.json" 2>&1; then
    check "a writer imports the sample over CURVE" \
      python3 -c "import json,sys; s=json.load(open('$tmp/curve_import.json')); print(s); sys.exit(s['rejected'] != 0 or s['stored'] == 0)"
  else
    fail "a writer's import over CURVE"; sed 's/^/       /' "$tmp/curve_import.json"
  fi
  check "a reader queries over CURVE" as_reader query exports --by market --period 2024
  as_reader put --kind export --period 2031 --market JP --category curve --item x \
    --source test --value 1 --unit USD >"$tmp/curve_put.out" 2>&1
  rc=$?
  if [[ $rc -eq 2 ]] && grep -q "permission denied" "$tmp/curve_put.out"; then
    pass "a reader's put is refused: permission denied (exit 2)"
  else
    fail "a reader's put: exit $rc"; sed 's/^/       /' "$tmp/curve_put.out"
  fi
  if kmx --timeout 1000 --retries 1 ping kmx.broker >"$tmp/curve_plain.out" 2>&1; then
    fail "a client without CURVE keys was answered"
  else
    pass "a client without CURVE keys gets no answer"
  fi
  healthy=0
  for ((i = 0; i < 60; i++)); do
    ids=$(d ps -q --filter "label=com.docker.compose.project=$project")
    # shellcheck disable=SC2086
    if [[ $(echo "$ids" | wc -w) -eq 5 ]] && # with the gateway
      [[ -z $(d inspect -f '{{.State.Health.Status}}' $ids | grep -v '^healthy$') ]]; then
      healthy=1; break
    fi
    sleep 1
  done
  if [[ $healthy -eq 1 ]]; then pass "5 containers healthy with CURVE (health checks use their own keys)"
  else fail "containers not healthy with CURVE"; ccompose ps 2>&1 | sed 's/^/       /'; fi
else
  fail "docker-compose up with deploy/compose.curve.yml"; sed 's/^/       /' "$tmp/curve_up.log"
fi
ccompose down -v -t 30 >"$tmp/curve_down.log" 2>&1 || fail "docker-compose down (CURVE)"
compose_up=0
say "total $((SECONDS - started)) s"
