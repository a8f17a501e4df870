#!/usr/bin/env python3
"""Writes N rows of distinct, valid kmx export records as CSV (or JSON Lines) to stdout
or a file, deterministically, and prints nothing else. Used by the 1,000,000-row test
and by bench/ingest/run.sh.

Each row has a unique natural key: (period, market, category, item, company) cycle
through small lists and the item carries the row number.
"""
import argparse
import json
import sys

MARKETS = ["JP", "US", "CN", "TW", "TH", "ID", "VN", "PH", "MY", "SG", "FR", "DE", "GB",
           "BR", "MX", "CA", "AU", "HK", "IN", "ES"]
CATEGORIES = ["physical_album_customs", "digital_music", "concert_revenue", "merchandise"]
COMPANIES = ["HYBE", "SM Entertainment", "JYP Entertainment", "YG Entertainment", ""]
UNITS = ["USD_thousand", "USD", "KRW_million"]


def rows(n):
    for i in range(n):
        year = 2000 + (i // 12) % 26
        month = i % 12 + 1
        value = "%d.%02d" % ((i * 7919) % 100000, i % 100)
        yield {
            "kind": "export",
            "period": "%04d-%02d" % (year, month),
            "market": MARKETS[i % len(MARKETS)],
            "category": CATEGORIES[i % len(CATEGORIES)],
            "item": "series %d" % i,
            "company": COMPANIES[i % len(COMPANIES)],
            "value": value,
            "unit": UNITS[i % len(UNITS)],
            "source": "kmx bench",
        }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("n", type=int)
    ap.add_argument("--out", default="-")
    ap.add_argument("--jsonl", action="store_true")
    a = ap.parse_args()
    f = sys.stdout if a.out == "-" else open(a.out, "w", newline="")
    cols = ["kind", "period", "market", "category", "item", "company", "value", "unit",
            "source"]
    if a.jsonl:
        for r in rows(a.n):
            f.write(json.dumps(r) + "\n")
    else:
        f.write(",".join(cols) + "\n")
        for r in rows(a.n):
            f.write(",".join(r[c] for c in cols) + "\n")
    if f is not sys.stdout:
        f.close()


if __name__ == "__main__":
    main()
