#!/usr/bin/env python3
"""Writes a KOSIS-style wide CSV of N cells in CP949, deterministically: Korean headers
(종류, 국가, 분류, 품목, 회사, 단위, 출처), one column per month named the Korean way ("2014년
1월" ...), Korean country names, amounts in 천달러 with thousands separators, and a "-"
in every 50th cell (skipped, as KOSIS writes a missing figure). Each row's item carries
its number, so every cell is a distinct record. Used by bench/ingest/run.sh beside the
UTF-8 long file of gen.py.
"""
import argparse

MONTHS = 125  # 1,000,000 cells = 8000 rows of 125 months
MARKETS = ["일본", "미국", "중국", "대만", "태국", "인도네시아", "베트남", "필리핀", "말레이시아",
           "싱가포르", "프랑스", "독일", "영국", "브라질", "멕시코", "캐나다", "호주", "홍콩", "인도",
           "스페인"]
CATEGORIES = ["physical_album_customs", "digital_music", "concert_revenue", "merchandise"]
COMPANIES = ["HYBE", "SM Entertainment", "JYP Entertainment", "YG Entertainment", ""]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cells", type=int)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    months = ["%d년 %d월" % (2014 + m // 12, m % 12 + 1) for m in range(MONTHS)]
    rows = (a.cells + MONTHS - 1) // MONTHS
    cell = 0
    with open(a.out, "w", encoding="cp949", newline="") as f:
        f.write(",".join(["종류", "국가", "분류", "품목", "회사", "단위"] + months + ["출처"]) +
                "\r\n")
        for r in range(rows):
            out = ["수출", MARKETS[r % len(MARKETS)], CATEGORIES[r % len(CATEGORIES)],
                   "품목 %d" % r, COMPANIES[r % len(COMPANIES)], "천달러"]
            for m in range(MONTHS):
                if cell >= a.cells:
                    out.append("")
                elif cell % 50 == 49:
                    out.append("-")
                else:
                    v = (cell * 7919) % 10000000
                    out.append('"{:,}.{:02d}"'.format(v // 100, v % 100))
                cell += 1
            f.write(",".join(out + ["kmx bench"]) + "\r\n")


if __name__ == "__main__":
    main()
