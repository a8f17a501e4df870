#!/bin/sh
# A report with the kmx CLI alone: loads a CSV file (default: the sample data) and prints
# the top destinations of physical album exports for a year with their share and growth,
# then the year's totals per category. Every answer is exact; `kmx` exits 1 for bad input
# and 2 when a service does not answer, and so does this script.
#
#   exports_report.sh [FILE] [YEAR]      (KMX_BROKER names the broker, as for kmx)
set -eu
file=${1:-$(dirname "$0")/../../data/kmusic-facts.csv}
year=${2:-2024}

kmx ping >/dev/null
kmx import "$file" >/dev/null

echo "== top destinations of physical album exports in $year"
kmx query exports --category physical_album_customs --unit USD --period "$year" \
    --by market --top 3 --share --growth yoy

echo
echo "== $year by category (USD; countries and the world total apart, never added)"
kmx query exports --period "$year" --by category --unit USD --format csv |
    awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
             { printf "%-26s %-8s %16s\n", $col["category"], $col["level"], $col["sum"] }'
