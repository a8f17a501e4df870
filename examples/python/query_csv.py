#!/usr/bin/env python3
"""Writes a kmx query as CSV on stdout:

    query_csv.py [--broker EP] [--period P] [--by FIELDS] [--category C] [exports|consumption]

For example `query_csv.py --period 2024 --by market` prints what
`kmx query exports --period 2024 --by market --format csv` prints. Amounts are exact
Decimals, written without exponent.
"""
import argparse
import csv
import sys

import kmx


def cell(column, value):
    """A value as kmx's CSV writes it: exact decimals, "partial" for a partial row."""
    if value is None or value is False:
        return ""
    if value is True:
        return column
    return format(value, "f") if hasattr(value, "as_tuple") else value


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kind", nargs="?", default="exports")
    ap.add_argument("--broker")
    ap.add_argument("--period")
    ap.add_argument("--by", default="market")
    ap.add_argument("--category")
    ap.add_argument("--market")
    args = ap.parse_args()
    try:
        with kmx.Client(args.broker) as c:
            result = c.query(args.kind, by=args.by, period=args.period,
                             category=args.category, market=args.market)
    except kmx.Error as e:
        print("query_csv: %s" % e, file=sys.stderr)
        return 1 if isinstance(e, (kmx.BadRequest, kmx.NotFound)) else 2
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(result.columns)
    for row in result.rows:
        out.writerow([cell(c, row.get(c)) for c in result.columns])
    return 0


if __name__ == "__main__":
    sys.exit(main())
