#!/usr/bin/env bash
# Installs the Debian 12 packages kmx needs to build, test and run. Idempotent: packages
# already present are not fetched again. Works as root or through sudo.
#   scripts/setup.sh            build + test + run dependencies
#   scripts/setup.sh --bench    (the same: benchmark references are always installed)
#   scripts/setup.sh --docker   also the Docker engine, docker-compose and debootstrap
#                               (the container test, tests/docker/test_compose.sh)
set -euo pipefail

packages=(build-essential cmake pkg-config protobuf-c-compiler libprotobuf-c-dev
          libzmq3-dev liblmdb-dev lmdb-utils libcmocka-dev python3 python3-zmq valgrind
          clang libclang-rt-14-dev clang-format
          protobuf-compiler python3-protobuf python3-matplotlib python3-pandas)
packages+=(libjansson-dev libmicrohttpd-dev chromium wrk) # kmx-gateway, its dashboard and bench
command -v npm >/dev/null || packages+=(nodejs npm)      # the dashboard build (npm ci)
# The benchmarks (bench/run, whose smoke run is part of the tests) and their references.
packages+=(postgresql libpq-dev redis-server libhiredis-dev gnuplot-nox)
for arg in "$@"; do
  case $arg in
    --bench) ;; # kept for old scripts: the benchmark packages are now always installed
    --docker) packages+=(docker.io docker-compose debootstrap) ;;
    *) echo "setup: unknown option $arg" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "setup: run as root or install sudo" >&2; exit 1; }
  sudo="sudo"
fi
echo "setup: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
