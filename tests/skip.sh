#!/bin/sh
# Stands in for a test whose prerequisite is missing: prints why and exits 77, which ctest
# reports as Skipped (SKIP_RETURN_CODE). With KMX_REQUIRE_ALL=1 (scripts/test.sh, where
# scripts/setup.sh installed everything) a missing prerequisite is a failure instead.
#   tests/skip.sh TEST REASON
echo "SKIP $1: $2"
if [ "${KMX_REQUIRE_ALL:-}" = 1 ]; then
  echo "KMX_REQUIRE_ALL=1: every prerequisite must be installed (scripts/setup.sh)"
  exit 1
fi
exit 77
