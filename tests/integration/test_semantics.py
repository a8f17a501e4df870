"""What answers mean, through the real binaries on the shipped sample data: every record
fetched by its own key (free text is never split at commas), filter values that do not
exist refused with the closest existing ones, the catalog of what the store holds, and a
figure's revision history.
"""
import csv
import io
import os
import re
import shlex
import unittest
from decimal import ROUND_HALF_UP, Decimal

import kmxtest
from kmxtest import Cluster, category_of, sample_rows


def pct(num, den):
    return (num * 100 / den).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


class SampleSemantics(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = Cluster().start()
        cls.c.kmx_json("import", kmxtest.SAMPLE)
        cls.rows = sample_rows()
        cls.facts = kmxtest.sample_facts()

    @classmethod
    def tearDownClass(cls):
        cls.c.close()

    def key_args(self, r):
        args = ["--kind", r["kind"], "--period", r["period"], "--market", r["market"],
                "--category", category_of(r), "--item", r["item"], "--source", r["source"]]
        for field in ("company", "artist"):
            if r.get(field):
                args += ["--" + field, r[field]]
        return args

    def test_every_sample_row_is_gettable_by_its_own_key(self):
        self.assertEqual(len(self.rows), 80)
        for r in self.rows:
            got = self.c.kmx_lines("get", *self.key_args(r))
            self.assertEqual(len(got), 1, r)
            rec = got[0]
            self.assertEqual((rec["item"], rec["source"], rec["category"]),
                             (r["item"], r["source"], category_of(r)), r)

    def test_list_by_an_item_holding_a_comma_returns_that_record_only(self):
        item = "music industry exports, preliminary estimate (+13.4% YoY)"
        got = self.c.kmx_lines("list", "exports", "--item", item)
        self.assertEqual([g["item"] for g in got], [item])
        self.assertEqual(got[0]["value"], "639600000")
        # Several values come from repeating the flag.
        got = self.c.kmx_lines("list", "exports", "--item", item, "--item", "album exports total")
        self.assertEqual(len(got), 1 + sum(1 for r in self.facts if r["item"] ==
                                           "album exports total"))

    def refused(self, *args):
        r = self.c.kmx(*args, check=False)
        self.assertEqual(r.returncode, 1, (args, r.stdout, r.stderr))
        self.assertEqual(r.stdout, "")
        return r.stderr

    def test_a_filter_value_that_does_not_exist_is_an_error_naming_it(self):
        err = self.refused("query", "exports", "--category", "physical_albums", "--by", "market")
        self.assertIn("unknown category 'physical_albums'", err)
        self.assertIn("physical_album_customs", err)
        err = self.refused("query", "exports", "--category", "physical_album_customs", "--unit",
                           "EUR", "--by", "market")
        self.assertIn("unknown unit 'EUR'", err)
        self.assertIn("USD", err)
        err = self.refused("query", "exports", "--market", "FR", "--by", "year")
        self.assertIn("unknown market 'FR'", err)
        err = self.refused("list", "exports", "--source", "Korea Customs Service")
        self.assertIn("unknown source 'Korea Customs Service'", err)
        self.assertIn("Korea Customs Service trade statistics", err)
        err = self.refused("query", "consumption", "--dimension", "physical_album_customs",
                           "--by", "item")
        self.assertIn("unknown dimension 'physical_album_customs'", err)
        err = self.refused("list", "--item", "Melonn")
        self.assertIn("closest: Melon", err)
        # A value that exists but has no record in the period answers empty, exit 0.
        got = self.c.kmx_json("query", "exports", "--category", "physical_album_customs",
                              "--period", "2010", "--by", "market")
        self.assertEqual(got["rows"], [])
        # Case does not matter, as the filter matches without regard to case.
        got = self.c.kmx_json("query", "exports", "--category", "PHYSICAL_ALBUM_CUSTOMS",
                              "--period", "2024", "--unit", "usd", "--by", "market")
        self.assertEqual(len(got["rows"]), 4)

    def test_catalog_lists_what_the_store_holds(self):
        cat = self.c.kmx_json("catalog")
        self.assertEqual(cat["records"], len(self.facts))
        markets = {(m["kind"], m["value"]): m for m in cat["markets"]}
        self.assertEqual(markets[("export", "JP")]["level"], "country")
        self.assertEqual(markets[("export", "JP")]["name"], "Japan")
        self.assertEqual(markets[("export", "WORLD")]["level"], "world")
        self.assertEqual(markets[("export", "JP+CN+US")]["level"], "group")
        self.assertEqual(markets[("export", "Southeast Asia")]["level"], "region")
        want = {}
        for r in self.facts:
            want[(r["kind"], r["market"])] = want.get((r["kind"], r["market"]), 0) + 1
        self.assertEqual({k: m["records"] for k, m in markets.items()}, want)
        cats = {(c["kind"], c["name"], c["unit"]): c for c in cat["categories"]}
        album = cats[("export", "physical_album_customs", "USD")]
        self.assertEqual((album["first"], album["last"]), ("2019-01", "2025-12"))
        self.assertIn(("export", "physical_album_customs", "percent_share"), cats)
        self.assertIn(("consumption", "main_music_service_share", "percent_respondents"), cats)
        regions = {g["name"]: g["members"] for g in cat["regions"]}
        self.assertEqual(regions["Greater China"], ["CN"])
        sources = {(s["kind"], s["value"]): s["records"] for s in cat["sources"]}
        want = {}
        for r in self.facts:
            want[(r["kind"], r["source"])] = want.get((r["kind"], r["source"]), 0) + 1
        self.assertEqual(sources, want)
        items = {(i["kind"], i["category"], i["value"]) for i in cat["items"]}
        self.assertEqual(items, {(r["kind"], category_of(r), r["item"]) for r in self.facts})
        # One kind only, and the table and CSV forms.
        only = self.c.kmx_json("catalog", "consumption")
        self.assertTrue(all(m["kind"] == "consumption" for m in only["markets"]))
        text = self.c.kmx("catalog", "exports").stdout
        self.assertIn("physical_album_customs", text)
        self.assertIn("last_seq=%d" % cat["last_seq"], text)
        rows = list(csv.DictReader(io.StringIO(self.c.kmx("catalog", "--format", "csv").stdout)))
        self.assertIn("market", {r["section"] for r in rows})

    def test_history_shows_the_preliminary_then_the_revised_figure(self):
        key = ["--kind", "export", "--period", "2022", "--market", "WORLD", "--category",
               "physical_album_customs", "--item", "album exports total", "--source",
               "Korea Customs Service trade statistics"]
        hist = self.c.kmx_lines("history", *key)
        self.assertEqual([(h["record"]["status"], h["record"]["value"]) for h in hist],
                         [("preliminary", "233113000"), ("revised", "231389000")])
        self.assertLess(hist[0]["seq"], hist[1]["seq"])
        self.assertEqual(hist[1]["previous"], "233113000")
        self.assertGreater(hist[0]["committed_ms"], 0)
        text = self.c.kmx("history", *key).stdout
        self.assertIn("preliminary", text)
        self.assertIn("231389000", text)
        r = self.c.kmx("history", "--kind", "export", "--period", "2022", "--market", "WORLD",
                       "--category", "physical_album_customs", "--item", "nothing", check=False)
        self.assertEqual(r.returncode, 1, r.stderr)

    def test_watch_csv_shows_status_and_previous(self):
        out = self.c.kmx("watch", "export.WORLD.2022.physical_album_customs", "--since", "0",
                         "--count", "2", "--format", "csv", timeout=30).stdout
        rows = list(csv.DictReader(io.StringIO(out)))
        self.assertEqual([(r["status"], r["value"], r["previous"]) for r in rows],
                         [("preliminary", "233113000", ""), ("revised", "231389000",
                                                             "233113000")])


    def test_readme_what_the_numbers_mean_is_true(self):
        """README's "What the numbers mean" prints exactly what is shown there."""
        with open(os.path.join(kmxtest.SOURCE_DIR, "README.md"), encoding="utf-8") as f:
            text = f.read().split("## What the numbers mean", 1)[1].split("\n## ", 1)[0]
        blocks = re.findall(r"```\n\$ (kmx .*?)```\n", text, re.S)
        self.assertGreaterEqual(len(blocks), 1)
        for b in blocks:
            lines = b.split("\n")
            cmd = lines.pop(0)
            r = self.c.kmx(*shlex.split(cmd)[1:], check=False)
            self.assertEqual(r.stdout + r.stderr, "\n".join(lines), cmd)

    def test_shares_are_of_the_stored_total_and_totals_are_never_ranked(self):
        got = self.c.kmx_json("query", "exports", "--category", "physical_album_customs",
                              "--unit", "USD", "--period", "2024", "--by", "market", "--top",
                              "2", "--other", "--share", "--unallocated")
        rows = [(r["market"], r["level"], r["sum"], r["share_pct"], r.get("share_base"),
                 r.get("share_of")) for r in got["rows"]]
        self.assertEqual(rows, [
            ("WORLD", "total", "291800000", "100", "total", "291800000"),
            ("JP", "country", "89800000", "30.77", "total", "291800000"),
            ("US", "country", "60290000", "20.66", "total", "291800000"),
            ("(other)", "other", "59790000", "20.49", "total", "291800000"),
            ("(unallocated)", "unallocated", "81920000", "28.07", "total", "291800000"),
        ])
        self.assertEqual(got["share_base"], "total")
        # Without a stored total the base is the sum of the rows shown, and says so.
        got = self.c.kmx_json("query", "exports", "--category", "physical_album_customs",
                              "--unit", "USD", "--period", "2024", "--market", "JP,CN,US",
                              "--by", "market", "--share")
        self.assertEqual(got["share_base"], "rows")
        total = Decimal("209880000")
        self.assertEqual({r["market"]: Decimal(r["share_pct"]) for r in got["rows"]},
                         {"JP": pct(Decimal(89800000), total), "US": pct(Decimal(60290000), total),
                          "CN": pct(Decimal(59790000), total)})
        self.assertTrue(all(r["share_of"] == "209880000" for r in got["rows"]))

    def test_coverage_of_each_row_and_complete_buckets(self):
        got = self.c.kmx_json("query", "exports", "--category", "physical_album_customs",
                              "--unit", "USD", "--market", "JP", "--from", "2023", "--to",
                              "2024", "--by", "year")
        cov = {r["year"]: (r["months"], r["of_months"], r["partial"]) for r in got["rows"]}
        self.assertEqual(cov, {"2023": (6, 12, True), "2024": (12, 12, False)})
        self.assertTrue(any("part of" in n for n in got["notes"]))
        got = self.c.kmx_json("query", "exports", "--category", "physical_album_customs",
                              "--unit", "USD", "--market", "JP", "--from", "2023", "--to",
                              "2024", "--by", "year", "--complete")
        self.assertEqual([r["year"] for r in got["rows"]], ["2024"])
        # Markets compared over a range that one covers only in part: the answer says so.
        got = self.c.kmx_json("query", "exports", "--category", "physical_album_customs",
                              "--unit", "USD", "--from", "2023", "--to", "2024", "--by",
                              "market")
        months = {r["market"]: (r["months"], r["of_months"]) for r in got["rows"]}
        self.assertEqual(months, {"JP": (18, 24), "CN": (18, 24), "US": (18, 24),
                                  "WORLD": (24, 24)})
        self.assertTrue(any("different months" in n for n in got["notes"]))

    def test_levels_are_never_added_together_without_a_market_key(self):
        # By year, WORLD's 291.8 million is never added to its countries' 209.88: the
        # answer is split by market level, WORLD the total of the countries.
        got = self.c.kmx_json("query", "exports", "--category", "physical_album_customs",
                              "--unit", "USD", "--period", "2024", "--by", "year", "--share")
        rows = [(r["year"], r["level"], r["sum"], r["share_pct"], r["share_base"])
                for r in got["rows"]]
        self.assertEqual(rows, [("2024", "country", "209880000", "71.93", "total"),
                                ("2024", "world", "291800000", "100", "total")])
        self.assertNotIn("501680000", str(got))
        out = self.c.kmx("query", "exports", "--category", "physical_album_customs", "--unit",
                         "USD", "--period", "2024", "--by", "year", "--format", "csv").stdout
        self.assertEqual(out.splitlines()[0], "year,level,unit,sum,count")
        out = self.c.kmx("query", "exports", "--category", "physical_album_customs", "--unit",
                         "USD", "--period", "2024", "--by", "level", "--format", "csv").stdout
        self.assertEqual(out.splitlines(), ["level,unit,sum,count", "country,USD,209880000,3",
                                            "world,USD,291800000,1"])
        # Records of one level only (every consumption record is KR) get no level key.
        got = self.c.kmx_json("query", "consumption", "--dimension", "listening_device",
                              "--by", "year")
        self.assertTrue(got["rows"] and all("level" not in r for r in got["rows"]))

    def test_units_that_do_not_add(self):
        # A percentage is answered by its average; the same question's sum or share, or a
        # share of a rank, is refused naming the unit and what works instead.
        got = self.c.kmx_json("query", "consumption", "--dimension", "main_music_service_share",
                              "--period", "2024", "--by", "item")
        melon = [r for r in got["rows"] if r["item"] == "Melon"][0]
        self.assertEqual((melon.get("sum"), melon["avg"]), (None, "27.5"))
        for args, unit in (
                (["consumption", "--dimension", "main_music_service_share", "--by", "item",
                  "--metrics", "sum"], "percent_respondents"),
                (["consumption", "--dimension", "main_music_service_share", "--by", "item",
                  "--share"], "percent_respondents"),
                (["consumption", "--dimension", "recorded_music_market", "--by", "item",
                  "--share"], "rank"),
                (["exports", "--unit", "percent_yoy", "--by", "year", "--growth", "yoy"],
                 "percent_yoy")):
            err = self.refused("query", *args)
            self.assertIn(unit, err, args)
            self.assertIn("does not add up", err, args)
            self.assertIn("avg", err, args)

    def test_scale_and_pivot(self):
        out = self.c.kmx("query", "exports", "--category", "physical_album_customs", "--unit",
                         "USD", "--period", "2024", "--by", "market", "--scale", "million").stdout
        self.assertIn("USD million  291.8", out)
        got = self.c.kmx_json("query", "exports", "--category", "physical_album_customs",
                              "--unit", "USD", "--period", "2024", "--by", "market", "--scale",
                              "million")
        self.assertEqual({r["market"]: r["sum"] for r in got["rows"]}["WORLD"], "291800000")
        out = self.c.kmx("query", "exports", "--category", "physical_album_customs", "--unit",
                         "USD", "--granularity", "year", "--by", "year,market", "--pivot",
                         "market", "--format", "csv").stdout
        rows = list(csv.DictReader(io.StringIO(out)))
        y2024 = [r for r in rows if r["year"] == "2024"][0]
        self.assertEqual((y2024["WORLD"], y2024["JP"], y2024["US"], y2024["CN"]),
                         ("291800000", "89800000", "60290000", "59790000"))
        self.assertEqual([r["year"] for r in rows], ["2019", "2020", "2021", "2022", "2023",
                                                     "2024", "2025"])
        err = self.refused("query", "exports", "--by", "year", "--pivot", "market")
        self.assertIn("--pivot", err)


if __name__ == "__main__":
    kmxtest.main()
