#!/usr/bin/env bash
# Builds one libFuzzer harness with clang (-fsanitize=fuzzer,address,undefined) and runs
# it for a bounded time over its corpus in tests/fuzz/corpus/<name>. New inputs go to a
# temporary directory, never into the source tree; crash inputs are kept in
# BUILD_DIR/fuzz/artifacts/<name>. Any crash, leak or sanitizer report fails the run (exit
# nonzero). The seed is printed; KMX_SEED=N repeats a run.
#   tests/fuzz/run.sh NAME BUILD_DIR [SECONDS]     NAME: doc | request | answer | korean | gateway
set -euo pipefail
name=$1
build=$(cd "$2" && pwd)
seconds=${3:-25}
src=$(cd "$(dirname "$0")/../.." && pwd)
cc=${KMX_FUZZ_CC:-$(command -v clang || command -v clang-14 || true)}
if [[ -z $cc ]]; then
  echo "fuzz: clang not found (scripts/setup.sh installs it)" >&2
  exit 1
fi
out=$build/fuzz
mkdir -p "$out"
# The source lists of kmx_common and kmx_storage_lib, written by CMake at configure time
# (tests/fuzz/CMakeLists.txt), so a file added to a library cannot be missing here.
sources() {
  local list=$out/$1.sources
  if [[ ! -s $list ]]; then
    echo "fuzz: $list missing; configure $build with CMake first" >&2
    exit 1
  fi
  mapfile -t "$2" <"$list"
}
sources kmx_common common
ingest=("$src/services/ingest/kmx_ingest_doc.c" "$src/services/ingest/kmx_jsonl.c")
[[ $name == request ]] && ingest+=("$src/services/ingest/kmx_ingest.c")
extra=(-I"$src/services/ingest")
libs=()
if [[ $name == doc ]]; then # the round trip writes CSV as the CLI does
  ingest+=("$src/client/kmx_format.c" "$src/client/kmx_json.c")
  extra+=(-I"$src/client")
  libs=(-ljansson)
fi
if [[ $name == gateway ]]; then # kmx-gateway's parameters, routes and tokens
  ingest=("$src/services/gateway/kmx_gw_parse.c" "$src/client/kmx_qargs.c"
          "$src/client/kmx_format.c" "$src/client/kmx_json.c")
  extra=(-I"$src/services/gateway" -I"$src/client")
  libs=(-ljansson)
fi
if [[ $name == answer ]]; then
  sources kmx_storage_lib ingest # the whole library, kmx_shape.c included
  ingest+=("$src/tests/fuzz/answer_ref.c" "$src/tests/fuzz/answer_data.c")
  extra=(-I"$src/services/storage" -I"$src/services/query" -I"$src/tests/fuzz")
  libs=(-llmdb -lpthread)
fi
bin=$out/fuzz_$name
echo "fuzz: building $bin" >&2
"$cc" -g -O1 -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -DKMX_VERSION=\"fuzz\" \
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
  -I"$src/common" "${extra[@]}" -I"$build/proto" \
  "$src/tests/fuzz/fuzz_$name.c" "${ingest[@]}" "${common[@]}" "$build/proto/kmx.pb-c.c" \
  -lprotobuf-c -lzmq "${libs[@]}" -o "$bin"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Crash, leak and timeout inputs are kept in the build directory (the temporary corpus
# is not): rerun one with "$bin" ARTIFACT.
artifacts=$out/artifacts/$name
mkdir -p "$artifacts"
# libFuzzer's seed: KMX_SEED repeats a run; otherwise a fresh one, printed either way.
seed=${KMX_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
echo "fuzz: running $name for ${seconds}s, seed $seed (repeat with KMX_SEED=$seed)" >&2
cd "$work"
rc=0
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  "$bin" -seed="$seed" -artifact_prefix="$artifacts/" -max_total_time="$seconds" -timeout=10 \
  -rss_limit_mb=2048 -print_final_stats=1 -max_len=65536 "$work" "$src/tests/fuzz/corpus/$name" \
  >"$work/log" 2>&1 || rc=$?
# The seed line, then the end of the log (a finding's report and the final stats).
grep -m1 "INFO: Seed:" "$work/log" >&2 || true
tail -n 40 "$work/log" >&2
if [[ $rc -ne 0 ]]; then
  echo "fuzz: $name failed (exit $rc, seed $seed); inputs kept in $artifacts:" >&2
  ls -l "$artifacts" >&2
fi
exit "$rc"
