#!/usr/bin/env bash
# Builds one libFuzzer harness with clang (-fsanitize=fuzzer,address,undefined) and runs
# it for a bounded time over its corpus in tests/fuzz/corpus/<name>. New inputs go to a
# temporary directory, never into the source tree. Any crash, leak or sanitizer report
# fails the run (exit nonzero).
#   tests/fuzz/run.sh NAME BUILD_DIR [SECONDS]     NAME: doc | request | answer
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
common=()
for f in "$src"/common/*.c; do
  [[ $f == *_test.c ]] || common+=("$f")
done
ingest=("$src/services/ingest/kmx_ingest_doc.c" "$src/services/ingest/kmx_jsonl.c")
[[ $name == request ]] && ingest+=("$src/services/ingest/kmx_ingest.c")
extra=(-I"$src/services/ingest")
libs=()
if [[ $name == answer ]]; then
  ingest=()
  for f in kmx_store.c kmx_store_read.c kmx_store_write.c kmx_store_check.c kmx_store_rollup.c kmx_store_alt.c kmx_derived.c kmx_answer.c; do
    ingest+=("$src/services/storage/$f")
  done
  ingest+=("$src/services/query/kmx_shape.c")
  extra=(-I"$src/services/storage" -I"$src/services/query")
  libs=(-llmdb)
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
cd "$work"
echo "fuzz: running $name for ${seconds}s" >&2
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -max_len=65536 "$work" "$src/tests/fuzz/corpus/$name" 2>&1 | tail -n 25
exit "${PIPESTATUS[0]}"
