"""The shipped data through the real binaries: both files of data/ (what scripts/run.sh
loads) import without a rejected row and are stored exactly; published totals are
reproduced from them; and no default query adds two alternative measurements of one
quantity (docs/data-model.md), checked against alternatives found here from the CSV with
the documented rule.
"""
import collections
import os
import re
import shlex
import unittest
from decimal import Decimal

import kmxtest
from kmxtest import Cluster, category_of, normalize_unit

EXTENDED = os.path.join(kmxtest.SOURCE_DIR, "data", "kmusic-facts-extended.csv")
M = Decimal("1000000")
YONHAP_2024 = "Korea Customs Service trade statistics via Yonhap (Korea Times US)"
HERALD_2023 = "Korea Customs Service trade statistics via Korea Herald/Yonhap"


def span(period):
    """(start, end) months YYYYMM of a CSV period, as kmx reads it."""
    m = re.fullmatch(r"(\d{4})(?:-(H[12]|Q[1-4]|\d\d))?(?:/(\d{4})-(\d\d))?", period)
    y = int(m[1])
    if m[3]:
        return (y * 100 + int(m[2]), int(m[3]) * 100 + int(m[4]))
    if not m[2]:
        return (y * 100 + 1, y * 100 + 12)
    if m[2][0] == "H":
        h = int(m[2][1])
        return (y * 100 + 6 * h - 5, y * 100 + 6 * h)
    if m[2][0] == "Q":
        q = int(m[2][1])
        return (y * 100 + 3 * q - 2, y * 100 + 3 * q)
    return (y * 100 + int(m[2]),) * 2


def item_base(item):
    """The item without one trailing ' (...)' annotation (kmx_alt_item_base)."""
    if len(item) < 3 or not item.endswith(")"):
        return item
    depth, i = 0, len(item)
    while i > 0:
        i -= 1
        depth += {")": 1, "(": -1}.get(item[i], 0)
        if depth == 0:
            break
    if depth != 0 or i == 0 or item[i - 1] != " ":
        return item
    return item[:i].rstrip(" ") or item


def quantity(row):
    unit, _ = normalize_unit(row["unit"], row["value"])
    return (row["kind"], span(row["period"]), row["market"], category_of(row),
            item_base(row["item"]), unit)


def alternative_sets(rows):
    """{quantity: [rows]} for every quantity measured by more than one source."""
    by_q = collections.defaultdict(list)
    for r in rows:
        by_q[quantity(r)].append(r)
    return {q: v for q, v in by_q.items() if len({r["source"] for r in v}) > 1}


class ShippedData(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = Cluster().start()
        cls.imports = [cls.c.kmx_json("import", path) for path in (kmxtest.SAMPLE, EXTENDED)]
        cls.rows = kmxtest.current_rows(
            kmxtest.sample_rows(kmxtest.SAMPLE) + kmxtest.sample_rows(EXTENDED))
        cls.alts = alternative_sets(cls.rows)

    @classmethod
    def tearDownClass(cls):
        cls.c.close()

    def query(self, *args, check=True):
        return self.c.kmx("query", *args, "--format", "json", check=check)

    def q(self, *args):
        return kmxtest.json.loads(self.query(*args).stdout)

    def test_every_row_imports_and_is_stored_exactly(self):
        self.assertEqual([(s["stored"], s["rejected"]) for s in self.imports],
                         [(80, 0), (490, 0)])
        stored = {(r["kind"], span(r["period"]), r["market"], r["category"], r["item"],
                   r["source"]): r for r in self.c.kmx_lines("list")}
        self.assertEqual(len(stored), len(self.rows))
        self.assertEqual(len(self.rows), 569)  # one sample figure is stored with its revision
        for row in self.rows:
            key = (row["kind"], span(row["period"]), row["market"], category_of(row),
                   row["item"], row["source"])
            got = stored.get(key)
            self.assertIsNotNone(got, key)
            unit, value = normalize_unit(row["unit"], row["value"])
            self.assertEqual((got["unit"], Decimal(got["value"]), got["confidence"]),
                             (unit, value, row["confidence"]), key)
        # Negative amounts where the quantity can be negative, the new units and markets.
        self.assertEqual(Decimal(stored[(
            "consumption", span("2024-Q2"), "KR", "company_operating_profit",
            "YG Entertainment consolidated operating profit Q2 (an operating loss)",
            "YG Entertainment regulatory filing via Hankyung")]["value"]), Decimal("-11.0") * 10**9)
        self.assertEqual(
            sorted({r["unit"] for r in stored.values()} & {"countries", "performances_per_capita",
                                                          "index_points", "attendees"}),
            ["attendees", "countries", "index_points", "performances_per_capita"])
        self.assertTrue({"Asia", "non-Asia"} <= {r["market"] for r in stored.values()})

    def test_customs_2024_by_market(self):
        """291.8 USD million in 2024, JP 89.8, CN 59.79, US 60.29 (one source's release)."""
        args = ("exports", "--category", "physical_album_customs", "--unit", "USD", "--period",
                "2024", "--by", "market")
        r = self.query(*args, check=False)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("'album exports total' has alternative measurements", r.stderr)
        self.assertIn("--source", r.stderr)
        self.assertIn(YONHAP_2024, r.stderr)
        got = kmxtest.query_sums(self.q(*args, "--source", YONHAP_2024), "market")
        self.assertEqual(got, {("WORLD", "USD"): Decimal("291.8") * M,
                               ("JP", "USD"): Decimal("89.8") * M,
                               ("CN", "USD"): Decimal("59.79") * M,
                               ("US", "USD"): Decimal("60.29") * M})
        # Side by side, each with its source.
        got = kmxtest.query_sums(self.q(*args[:-1], "source", "--market", "WORLD"), "source")
        self.assertEqual(got[(YONHAP_2024, "USD")], Decimal("291.8") * M)
        self.assertEqual(got[("Korea Customs Service trade statistics via Chosun Ilbo (zum)",
                              "USD")], Decimal("291.82") * M)

    def test_customs_2023_h1_japan_first(self):
        got = self.q("exports", "--category", "physical_album_customs", "--unit", "USD",
                     "--period", "2023-H1", "--by", "market", "--source", HERALD_2023)
        sums = kmxtest.query_sums(got, "market")
        countries = sorted(((v, m) for (m, _), v in sums.items() if len(m) == 2), reverse=True)
        self.assertEqual([m for _, m in countries], ["JP", "US", "CN"])
        self.assertEqual(sums[("JP", "USD")], Decimal("48.523") * M)
        self.assertEqual(sums[("WORLD", "USD")], Decimal("132.934") * M)

    def test_circle_chart_yearly_totals(self):
        """Gaon/Circle Chart album sales by year 2013-2019, one figure a year (the 2018 half
        year is covered by the year), and 2023's three alternatives side by side."""
        got = kmxtest.query_sums(self.q("consumption", "--dimension", "album_sales_units",
                                        "--unit", "copies", "--from", "2013", "--to", "2019",
                                        "--by", "year"), "year")
        want = {"2013": "8.26", "2015": "8.38", "2016": "10.8", "2017": "16.93",
                "2018": "22.81", "2019": "24.59"}
        self.assertEqual(got, {(y, "copies"): Decimal(v) * M for y, v in want.items()})
        r = self.query("consumption", "--dimension", "album_sales_units", "--unit", "copies",
                       "--period", "2023", "--by", "year", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("'Circle Chart album sales'", r.stderr)
        got = self.q("consumption", "--dimension", "album_sales_units", "--unit", "copies",
                     "--period", "2023", "--granularity", "year", "--by", "source")
        self.assertEqual(sorted(Decimal(r["sum"]) for r in got["rows"]),
                         [Decimal("115172375"), Decimal("120") * M, Decimal("120.2") * M])

    def test_monthly_users_never_add_over_time(self):
        """Melon's monthly active users (Mobile Index) of several months are a level, not a
        flow: by item they show their average, never a sum; a sum is refused naming the
        unit; by period each month stands alone."""
        melon = ["--dimension", "streaming_app_mau", "--item", "Melon MAU"]
        got = self.q("consumption", *melon, "--by", "item")
        self.assertEqual(len(got["rows"]), 1)
        row = got["rows"][0]
        months = [r for r in self.rows if r["item"] == "Melon MAU"
                  and r["category_or_dimension"] == "streaming_app_mau"]
        self.assertGreater(len(months), 1)
        self.assertIsNone(row.get("sum"))
        self.assertEqual(row["count"], len(months))
        r = self.query("consumption", *melon, "--by", "item", "--metrics", "sum", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("users", r.stderr)
        self.assertIn("not over time", r.stderr)
        got = self.q("consumption", *melon, "--by", "period")
        self.assertTrue(all(r["sum"] is not None for r in got["rows"]))
        self.assertEqual(len(got["rows"]), len(months))

    def test_no_default_query_adds_alternatives(self):
        """Every category and dimension, by market, by year and by period: the query is
        refused, naming an alternative of its own category, exactly when two alternatives
        fall into it; otherwise it answers. Then every alternative set, pinned: refused,
        and by source each member's own value."""
        self.assertGreaterEqual(len(self.alts), 30)
        cats = sorted({(r["kind"], category_of(r)) for r in self.rows})
        flag = {"export": ("exports", "--category"), "consumption": ("consumption", "--dimension")}
        for kind, cat in cats:
            bases = {q[4] for q in self.alts if (q[0], q[3]) == (kind, cat)}
            for by in ("market", "year", "period"):
                r = self.query(flag[kind][0], flag[kind][1], cat, "--by", by, check=False)
                if bases:
                    self.assertEqual(r.returncode, 1, (cat, by, r.stdout))
                    self.assertIn("alternative measurements", r.stderr)
                    named = re.search(r" %s '(.*?)' has alternative" % re.escape(cat), r.stderr)
                    self.assertTrue(named and named[1] in bases, (cat, r.stderr))
                else:
                    self.assertEqual(r.returncode, 0, (cat, by, r.stderr))
        for (kind, (start, end), market, cat, base, unit), members in sorted(self.alts.items()):
            period = "%d-%02d/%d-%02d" % (start // 100, start % 100, end // 100, end % 100)
            # Pinned to the members' items (free text, never split at commas), then side by
            # side with every record of the span.
            items = [a for m in members for a in ("--item", m["item"])]
            args = (flag[kind][0], flag[kind][1], cat, "--market", market, "--unit", unit,
                    "--period", period, "--granularity", "any")
            r = self.query(*args, *items, check=False)
            self.assertEqual(r.returncode, 1, (base, r.stdout))
            if items:
                self.assertIn("'%s' has alternative measurements" % base, r.stderr)
            got = self.q(*args, "--by", "source,item")
            want = {(m["source"], m["item"]): normalize_unit(m["unit"], m["value"])[1]
                    for m in members}
            # A unit that does not add shows its average: here the one value.
            have = {(x["source"], x["item"]): Decimal(x["sum"] if x.get("sum") is not None
                                                      else x["avg"])
                    for x in got["rows"] if (x["source"], x["item"]) in want}
            self.assertEqual(have, want, base)

    def test_prefer_takes_one_of_each_and_names_the_rest(self):
        got = self.q("exports", "--category", "physical_album_customs", "--unit", "USD",
                     "--period", "2024", "--by", "market", "--prefer")
        self.assertEqual(kmxtest.query_sums(got, "market")[("WORLD", "USD")],
                         Decimal("291.82") * M)  # the precise citation of the same total
        self.assertEqual(len(got["set_aside"]), 1)
        self.assertIn("kept 291820000 USD", got["set_aside"][0])
        self.assertIn("set aside 291800000 from '%s'" % YONHAP_2024, got["set_aside"][0])
        # Every alternative set, pinned: one member kept, the others named, the sum the kept
        # one's value; the kept one is the preferred by the documented order.
        flag = {"export": ("exports", "--category"), "consumption": ("consumption", "--dimension")}
        conf = {"high": 3, "medium": 2, "low": 1, "": 0}
        status = {"final": 3, "revised": 2, "": 1, "preliminary": 0}
        for (kind, (start, end), market, cat, base, unit), members in sorted(self.alts.items()):
            period = "%d-%02d/%d-%02d" % (start // 100, start % 100, end // 100, end % 100)
            got = self.q(flag[kind][0], flag[kind][1], cat, "--market", market, "--unit", unit,
                         "--period", period, "--granularity", "any", "--by", "period",
                         "--prefer")
            notes = [n for n in got.get("set_aside", []) if " '%s': kept " % base in n]
            self.assertEqual(len(notes), len(members) - 1, (base, got))

            def rank(m):
                v = normalize_unit(m["unit"], m["value"])[1] * 10000
                digits = len(str(int(v))) - len(str(int(v)).rstrip("0"))
                return (-status[m.get("status") or ""], -conf[m["confidence"] or ""], digits,
                        m["source"].encode())
            best = min(members, key=rank)
            self.assertIn("from '%s', set aside" % best["source"], notes[0], base)

    def test_catalog_lists_every_alternative_set(self):
        cat = self.c.kmx_json("catalog")
        got = {}
        for a in cat["alternatives"]:
            key = (a["kind"], span(a["period"]), a["market"], a["category"], a["quantity"],
                   a["unit"])
            got[key] = sorted((m["source"], m["item"], Decimal(m["value"]))
                              for m in a["measurements"])
        want = {q: sorted((m["source"], m["item"], normalize_unit(m["unit"], m["value"])[1])
                          for m in members) for q, members in self.alts.items()}
        self.assertEqual(got, want)
        exports = self.c.kmx_json("catalog", "exports")
        self.assertEqual({a["kind"] for a in exports["alternatives"]}, {"export"})
        # Market levels and unit additivity from the one table of each.
        levels = {m["value"]: m["level"] for m in exports["markets"]}
        self.assertEqual((levels["Asia"], levels["non-Asia"], levels["Europe"], levels["JP"],
                          levels["WORLD"], levels["JP+CN+US"]),
                         ("aggregate", "aggregate", "region", "country", "world", "group"))
        adds = {(k["name"], k["unit"]): k["adds"] for k in cat["categories"]}
        self.assertTrue(adds[("physical_album_customs", "USD")])
        self.assertFalse(adds[("physical_album_customs", "percent_share")])
        self.assertFalse(adds[("physical_album_customs", "countries")])
        self.assertTrue(adds[("streaming_app_mau", "users")])

    def test_rows_fetched_by_their_own_key(self):
        """kmx get finds rows by the key written in the file: every row whose item holds a
        comma, a parenthesis or a quote, and a seeded sample of the rest."""
        rnd = __import__("random").Random(kmxtest.seed())
        tricky = [r for r in self.rows if any(ch in r["item"] for ch in ',("')]
        rest = [r for r in self.rows if r not in tricky]
        for row in tricky + rnd.sample(rest, 30):
            args = ["get", "--kind", row["kind"], "--period", row["period"], "--market",
                    row["market"], "--category", category_of(row), "--item", row["item"],
                    "--source", row["source"]]
            r = self.c.kmx(*args, "--format", "json")
            got = kmxtest.json.loads(r.stdout)
            got = got[0] if isinstance(got, list) else got
            unit, value = normalize_unit(row["unit"], row["value"])
            self.assertEqual((got["unit"], Decimal(got["value"]), got["source"]),
                             (unit, value, row["source"]), args)

    def test_readme_real_series_are_true(self):
        """The README's section on the extended data, command by command, prints exactly
        what is shown there (with its exit status: the first one is a refusal)."""
        with open(os.path.join(kmxtest.SOURCE_DIR, "README.md"), encoding="utf-8") as f:
            text = f.read().split("## Real series", 1)[1].split("\n## ", 1)[0]
        blocks = re.findall(r"```\n\$ (kmx .*?)```\n", text, re.S)
        self.assertGreaterEqual(len(blocks), 6)
        for b in blocks:
            lines = b.split("\n")
            cmd = lines.pop(0)
            while cmd.endswith("\\"):
                cmd = cmd[:-1] + " " + lines.pop(0).strip()
            r = self.c.kmx(*shlex.split(cmd)[1:], check=False)
            self.assertEqual(r.stdout + r.stderr, "\n".join(lines), cmd)
            self.assertEqual(r.returncode, 1 if r.stderr else 0, cmd)


if __name__ == "__main__":
    kmxtest.main()
