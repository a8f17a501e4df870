#!/usr/bin/env bash
# Builds kmx twice (plain, and with ASan + UBSan) and runs every test in both builds:
# cmocka unit tests and the integration tests that start the real binaries. Then the
# container test: the image, docker-compose scaling and restarts with real containers
# (tests/docker/test_compose.sh; needs root, starts and stops its own dockerd).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

# setup.sh installed every prerequisite: a test that would skip for a missing one fails.
export KMX_REQUIRE_ALL=1
jobs=$(nproc 2>/dev/null || echo 2)
status=0
for variant in release asan; do
  dir=build/$variant
  flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DKMX_WERROR=ON)
  [[ $variant == asan ]] && flags=(-DCMAKE_BUILD_TYPE=Debug -DKMX_WERROR=ON -DKMX_SANITIZE=ON)
  echo "== build $variant" >&2
  cmake -S . -B "$dir" "${flags[@]}" >/dev/null
  cmake --build "$dir" -j"$jobs"
  echo "== test $variant" >&2
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir "$dir" --output-on-failure -j"$jobs" || status=1
  # Every skip with its reason (ctest's own summary names only the test).
  grep -h "^SKIP " "$dir/Testing/Temporary/LastTest.log" 2>/dev/null | sort -u | sed "s/^/$variant: /" >&2 || true
done

echo "== test docker" >&2
sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo -E"
$sudo tests/docker/test_compose.sh build/release || status=1
exit $status
