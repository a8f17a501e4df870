#!/usr/bin/env python3
"""Writes N rows of bench/ingest/gen.py's records with TAG in front of every item, so the
base set and each import of bench/mixed/run.sh hold distinct keys:
    gen.py N TAG OUT          row i's item is "TAG series i"
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ingest"))
import gen  # noqa: E402  (bench/ingest/gen.py)


def main():
    n, tag, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    cols = ["kind", "period", "market", "category", "item", "company", "value", "unit",
            "source"]
    with open(out, "w", newline="") as f:
        f.write(",".join(cols) + "\n")
        for r in gen.rows(n):
            r["item"] = tag + " " + r["item"]
            f.write(",".join(r[c] for c in cols) + "\n")


if __name__ == "__main__":
    main()
