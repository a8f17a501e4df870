#!/bin/sh
# The tree is formatted with the root .clang-format (../shared STYLE.md): every tracked C
# source and header, checked without changing anything. Fix with:
#   git ls-files '*.c' '*.h' | xargs clang-format -i
#   tests/format_check.sh
set -eu
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null ||
  exec tests/skip.sh format.check "clang-format not found (scripts/setup.sh installs it)"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  files=$(git ls-files '*.c' '*.h')
else
  files=$(find . -path ./build -prune -o -path ./web/node_modules -prune -o \
    \( -name '*.c' -o -name '*.h' \) -print)
fi
# shellcheck disable=SC2086
clang-format --dry-run -Werror $files
echo "format: $(echo "$files" | wc -l) files follow .clang-format"
