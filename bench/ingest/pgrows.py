#!/usr/bin/env python3
"""Converts the benchmark CSV (bench/ingest/gen.py) into the rows kmx stores, as a CSV
PostgreSQL's COPY reads: the same normalisation kmx-ingest does (period to YYYYMM start
and end, unit folded into an exact amount in ten-thousandths), done before timing so
COPY is measured on the storage side only."""
import csv
import sys
from decimal import Decimal

MAG = {"thousand": 10**3, "million": 10**6, "billion": 10**9}


def period(text):
    y, m = text.split("-")
    return int(y) * 100 + int(m)


def main():
    src, dst = sys.argv[1], sys.argv[2]
    with open(src, newline="") as f, open(dst, "w", newline="") as out:
        w = csv.writer(out)
        for r in csv.DictReader(f):
            base, _, mag = r["unit"].partition("_")
            amount = Decimal(r["value"]) * MAG.get(mag, 1) * 10000
            p = period(r["period"])
            w.writerow([1, p, p, r["market"], r["category"], r["item"], r["company"], "",
                        r["source"], int(amount), base])


if __name__ == "__main__":
    main()
