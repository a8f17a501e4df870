#!/usr/bin/env python3
"""Draws Korea's physical album exports by year and destination to a PNG:

    chart.py [--broker EP] [--out exports.png] [--top N]

One kmx query (`kmx query exports --category physical_album_customs --granularity year
--by year,market --unit USD`), one line per market among the N largest, drawn with
matplotlib (Debian: python3-matplotlib) without a display.
"""
import argparse
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import kmx  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--broker")
    ap.add_argument("--out", default="exports.png")
    ap.add_argument("--top", type=int, default=5)
    args = ap.parse_args()
    with kmx.Client(args.broker) as c:
        result = c.query("exports", category="physical_album_customs", granularity="year",
                         by="year,market", unit="USD")
    series = {}
    for row in result.rows:
        if row["market"] == "WORLD" or "+" in row["market"]:
            continue  # a total or a group is not one destination
        series.setdefault(row["market"], {})[int(row["year"])] = row["sum"]
    markets = sorted(series, key=lambda m: -sum(series[m].values()))[:args.top]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for m in markets:
        years = sorted(series[m])
        ax.plot(years, [float(series[m][y]) / 1e6 for y in years], marker="o", label=m)
    ax.set_title("Physical album exports by destination (customs)")
    ax.set_xlabel("year")
    ax.set_ylabel("USD million")
    ax.legend()
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    print("%s: %d markets, %d points" % (args.out, len(markets),
                                         sum(len(series[m]) for m in markets)))
    return 0 if markets else 1


if __name__ == "__main__":
    sys.exit(main())
