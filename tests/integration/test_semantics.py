"""What answers mean, through the real binaries on the shipped sample data: every record
fetched by its own key (free text is never split at commas), filter values that do not
exist refused with the closest existing ones, the catalog of what the store holds, and a
figure's revision history.
"""
import csv
import io
import unittest

import kmxtest
from kmxtest import Cluster, category_of, sample_rows


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


if __name__ == "__main__":
    kmxtest.main()
