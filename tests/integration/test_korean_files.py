"""Files as Korean statistics come: the project's KOSIS-style wide file (CP949, Korean
headers, country names and units, a column per period) stores the same totals as the
English long file of the same customs figures; the semicolon file with Korean headers
imports; a refused file prints one JSON summary object naming every unknown column; an
invalid byte names its line, column and the encoding assumed; a dry run shows the first
records as they would be stored.
"""
import os
import tempfile
import unittest

import kmxtest
from kmxtest import Cluster, query_sums

DATA = os.path.join(kmxtest.SOURCE_DIR, "data")
WIDE = os.path.join(DATA, "kosis-album-exports-cp949.csv")
LONG = os.path.join(DATA, "customs-album-exports.csv")
SEMICOLON = os.path.join(DATA, "music-services-semicolon.csv")


def totals(cluster):
    """{(market, period, unit): sum} of the customs album exports stored."""
    answer = cluster.kmx_json("query", "exports", "--category", "physical_album_customs",
                              "--by", "market,period", "--granularity", "any")
    return query_sums(answer, "market", "period")


class KoreanFiles(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="kmx-korean-")
        self.c = None

    def tearDown(self):
        if self.c:
            codes = self.c.close()
            self.assertEqual({k: v for k, v in codes.items() if v != 0}, {})

    def cluster(self):
        if self.c:
            codes = self.c.close()
            self.assertEqual({k: v for k, v in codes.items() if v != 0}, {})
        self.c = Cluster().start()
        return self.c

    def test_wide_cp949_file_has_the_totals_of_the_english_long_file(self):
        with open(WIDE, "rb") as f:
            raw = f.read()
        self.assertRaises(UnicodeDecodeError, raw.decode, "utf-8")  # really CP949
        c = self.cluster()
        long = c.kmx_json("import", LONG)
        self.assertEqual((long["stored"], long["rejected"]), (25, 0), long)
        want = totals(c)
        c = self.cluster()
        wide = c.kmx_json("import", WIDE)
        self.assertEqual((wide["rows"], wide["records"], wide["stored"], wide["rejected"],
                          wide["skipped"], wide["encoding"]), (4, 25, 25, 0, 15, "CP949"), wide)
        got = totals(c)
        self.assertEqual(got, want)
        self.assertEqual(len(got), 25)
        # Spot checks against the sourced figures: 2024 exports to Japan, 2022 world total.
        self.assertEqual(str(got[("JP", "2024", "USD")]), "89800000")
        self.assertEqual(str(got[("WORLD", "2022", "USD")]), "231389000")
        # The file again: all unchanged.
        again = c.kmx_json("import", WIDE)
        self.assertEqual((again["stored"], again["unchanged"]), (0, 25), again)

    def test_semicolon_file_with_korean_headers(self):
        c = self.cluster()
        s = c.kmx_json("import", SEMICOLON)
        self.assertEqual((s["rows"], s["stored"], s["rejected"], s["encoding"]),
                         (12, 12, 0, "UTF-8"), s)
        rec = c.kmx_json("get", "--kind", "consumption", "--period", "2025-09", "--market", "KR",
                         "--category", "streaming_app_mau", "--item", "Melon", "--source",
                         "Mobile Index (IGAWorks) via Chosun Biz")
        self.assertEqual((rec["value"], rec["unit"]), ("6810000", "users"), rec)

    def write(self, name, text, encoding):
        path = os.path.join(self.tmp, name)
        with open(path, "wb") as f:
            f.write(text.encode(encoding))
        return path

    def test_refusals_errors_and_dry_run(self):
        c = self.cluster()
        header = "종류;기간;나라;분류;품목;금액;단위;출처;색상\n"
        rows = ["수출;2024-01-15;일본;c;음반;1,000;천달러;관세청;빨강\n",
                "수출;1/2/2024;미국;c;음반;5;백만달러;관세청;파랑\n",
                "수출;2024년 3월;중국;c;음반;7;억원;관세청;노랑\n"]
        path = self.write("ko.csv", header + "".join(rows), "cp949")
        # Unknown columns: refused whole, each named with its closest alias, one JSON object.
        r = c.kmx("import", path, "--format", "json", check=False)
        self.assertEqual(r.returncode, 1, r.stderr)
        summary = kmxtest.json.loads(r.stdout)
        self.assertEqual(r.stdout.count("\n"), 1, r.stdout)
        self.assertIn('"나라"', summary["error"])
        self.assertIn('"색상"', summary["error"])
        self.assertIn("closest alias", summary["error"])
        self.assertIn("semicolon-separated, CP949", summary["error"])
        self.assertEqual(summary["stored"], 0)
        # Mapped and ignored: the ambiguous date is that row's error; a dry run previews.
        args = ["import", path, "--map", "나라=market", "--ignore-extra", "--format", "json"]
        dry = c.kmx_json(*args, "--dry-run", check=False)
        self.assertEqual((dry["stored"], dry["rejected"], dry["dry_run"]), (0, 1, True), dry)
        self.assertEqual([w for w in dry["warnings"] if "색상" in w], dry["warnings"])
        self.assertEqual(dry["rejected_rows"][0]["row"], 3)
        self.assertIn("--date-order", dry["rejected_rows"][0]["reason"])
        self.assertEqual([(p["period"], p["market"], p["value"], p["unit"]) for p in dry["preview"]],
                         [("2024-01", "JP", "1000000", "USD"), ("2024-03", "CN", "700000000", "KRW")])
        self.assertEqual(c.kmx_lines("list"), [])
        done = c.kmx_json(*args, "--date-order", "mdy")
        self.assertEqual((done["stored"], done["rejected"]), (3, 0), done)
        # An invalid byte: that row only, named with its line, column and encoding.
        bad = (header + rows[0]).encode("cp949") + "수출;2024;".encode("cp949") + b"\xff\xfe" + \
            ";c;음반;1;달러;관세청;x\n".encode("cp949")
        bad_path = os.path.join(self.tmp, "bad.csv")
        with open(bad_path, "wb") as f:
            f.write(bad)
        s = c.kmx_json("import", bad_path, "--map", "나라=market", "--ignore-extra", check=False)
        self.assertEqual((s["stored"] + s["unchanged"], s["rejected"]), (1, 1), s)
        e = s["rejected_rows"][0]
        self.assertEqual((e["row"], e["field"]), (3, "나라"), e)
        self.assertIn("on line 3, column 3", e["reason"])
        self.assertIn("CP949", e["reason"])

    def test_options_travel_in_the_request(self):
        c = self.cluster()
        # --encoding utf-8 on the CP949 file: the header's bytes are named, nothing stored.
        r = c.kmx("import", WIDE, "--encoding", "utf-8", "--format", "json", check=False)
        s = kmxtest.json.loads(r.stdout)
        self.assertEqual((r.returncode, s["stored"]), (1, 0), s)
        self.assertTrue(s["error"].startswith("header: byte 0x"), s)
        self.assertIn("not valid UTF-8 (the encoding given)", s["error"])
        # --delimiter , on the semicolon file: one unknown column, the whole header line.
        s = c.kmx_json("import", SEMICOLON, "--delimiter", ",", check=False)
        self.assertIn("header (comma-separated, UTF-8): unknown column", s["error"])
        # --long refuses the wide layout, naming the period columns as unknown.
        s = c.kmx_json("import", WIDE, "--long", check=False)
        self.assertIn('"2019"', s["error"])
        # --excel-dates: an Excel serial day in a period cell, refused without the flag.
        path = self.write("excel.csv", "kind,date,market,category,item,value,unit,source\n"
                          "export,45292,KOR,c,i,1,천달러,s\n", "utf-8")
        s = c.kmx_json("import", path, check=False)
        self.assertIn("--excel-dates", s["rejected_rows"][0]["reason"])
        s = c.kmx_json("import", path, "--excel-dates")
        self.assertEqual(s["stored"], 1, s)
        rec = c.kmx_json("get", "--kind", "export", "--period", "2024-01", "--market", "KR",
                         "--category", "c", "--item", "i", "--source", "s")
        self.assertEqual((rec["value"], rec["unit"]), ("1000", "USD"), rec)


if __name__ == "__main__":
    kmxtest.main()
