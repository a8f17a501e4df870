#!/usr/bin/env bash
# Fetches the .deb files an offline image build installs (docker build --build-arg DEBS=1),
# resolved against the base image's own package list so only what it lacks is fetched:
#   deploy/debs/build/     compilers and -dev packages for the build stage
#   deploy/debs/runtime/   the three shared libraries of the runtime stage
# Usage: deploy/fetch-debs.sh ROOTFS   (the unpacked base image, e.g. a debootstrap tree;
#        its var/lib/dpkg/status says what is already installed). Needs apt, run as root.
set -euo pipefail
rootfs=${1:?usage: deploy/fetch-debs.sh ROOTFS}
status=$(cd "$rootfs" && pwd)/var/lib/dpkg/status
[[ -r $status ]] || { echo "fetch-debs: no dpkg status at $status" >&2; exit 1; }
here=$(cd "$(dirname "$0")" && pwd)

fetch() { # folder, then packages
  local dir=$here/debs/$1; shift
  rm -rf "$dir"
  mkdir -p "$dir/partial"
  apt-get -qq -o Dir::State::status="$status" -o Dir::Cache::archives="$dir" \
    install --download-only -y --no-install-recommends "$@"
  rm -rf "$dir/partial" "$dir/lock"
  echo "fetch-debs: $(ls "$dir" | wc -l) packages in $dir" >&2
}

# The same lists as the Dockerfile's network build (tests are not built in the image).
fetch build build-essential cmake pkg-config libzmq3-dev libprotobuf-c-dev \
  protobuf-c-compiler liblmdb-dev libjansson-dev libmicrohttpd-dev
fetch runtime libzmq5 libprotobuf-c1 liblmdb0 libjansson4 libmicrohttpd12
