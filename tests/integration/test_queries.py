"""kmx query through the real binaries: the README's questions on the shipped sample data,
random data sets and random queries compared with a brute-force reference computed here
from the same records, bad queries, paging with a page token, read-after-ingest.
"""
import os
import random
import unittest
from decimal import ROUND_HALF_UP, Decimal

import kmxtest
from kmxtest import Cluster, category_of, normalize_unit, sample_rows

M = Decimal("1000000")


def album(rows, market, period):
    """The USD value of the customs album series for one market and period in the CSV."""
    for r in rows:
        if (r["kind"], r["market"], r["period"], r["category_or_dimension"]) == (
                "export", market, period, "physical_album_customs") and r["unit"] == "USD_million":
            return Decimal(r["value"]) * M
    return None


def pct(num, den):
    return (num * 100 / den).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def csv_value(rows, kind, market, period, category, unit):
    """The value (in the base unit) of the one CSV row with these dimensions."""
    got = [normalize_unit(r["unit"], r["value"]) for r in rows
           if (r["kind"], r["market"], r["period"], category_of(r)) == (kind, market, period,
                                                                       category)]
    got = [v for u, v in got if u == unit]
    assert len(got) == 1, (market, period, category, got)
    return got[0]


class SampleQuestions(unittest.TestCase):
    """The questions README asks of data/kmusic-facts.csv."""

    @classmethod
    def setUpClass(cls):
        cls.c = Cluster().start()
        cls.c.kmx_json("import", kmxtest.SAMPLE)
        cls.rows = kmxtest.sample_facts()

    @classmethod
    def tearDownClass(cls):
        cls.c.close()

    def q(self, *args):
        return self.c.kmx_json("query", *args)

    def test_readme_commands_work(self):
        """The README's commands, as printed there (tables), answer what the CSV says."""
        table = lambda *a: kmxtest.parse_table(self.c.kmx(*a).stdout)
        rows = self.rows
        # Yearly customs album exports by year and market.
        # A percentage (the top-3 combined share) does not add: its row shows the average.
        got = {(r["year"], r["market"], r["unit"]): Decimal(r["sum"] or r["avg"])
               for r in table("query", "exports", "--category", "physical_album_customs",
                              "--granularity", "year", "--by", "year,market")}
        want, counts = {}, {}
        for r in rows:
            if r["kind"] == "export" and category_of(r) == "physical_album_customs" and \
                    len(r["period"]) == 4:
                unit, value = normalize_unit(r["unit"], r["value"])
                k = (r["period"], r["market"], unit)
                want[k] = want.get(k, 0) + value
                counts[k] = counts.get(k, 0) + 1
        self.assertEqual(got, {k: kmxtest.value_of(v, counts[k], k[2]) for k, v in want.items()})
        # The 2024 exports by market: exactly the table the README shows.
        with open(os.path.join(kmxtest.SOURCE_DIR, "README.md"), encoding="utf-8") as f:
            readme = f.read()
        block = readme.split("$ kmx query exports --period 2024 --by market\n", 1)[1]
        block = block.split("```", 1)[0]
        self.assertEqual(self.c.kmx("query", "exports", "--period", "2024", "--by",
                                    "market").stdout, block)
        # Main music service shares in 2024, one row per item: percentages of respondents,
        # which do not add up, so each row shows its average (here its one value).
        got = {r["item"]: Decimal(r["avg"]) for r in table(
            "query", "consumption", "--category", "main_music_service_share", "--period",
            "2024", "--by", "item")}
        want = {r["item"]: Decimal(r["value"]) for r in rows if r["kind"] == "consumption"
                and category_of(r) == "main_music_service_share" and r["period"] == "2024"}
        self.assertEqual(got, want)
        # Top 3 destinations of 2024 with (other), shares and growth over 2023: WORLD is
        # their total, its own row, never ranked; each share is of WORLD's 291.8 million
        # (JP 30.77 %, US 20.66 %, CN 20.49 %); no (other) row, as only three countries
        # are listed. Growth needs a like base: the countries' 2023 is a first half only.
        dec = lambda text: Decimal(text) if text else None
        got = [(r["market"], r["level"], dec(r["sum"]), dec(r["share_pct"]), r["share_base"],
                dec(r["share_of"]), dec(r["previous"]), dec(r["growth_pct"])) for r in table(
            "query", "exports", "--category", "physical_album_customs", "--unit", "USD",
            "--period", "2024", "--by", "market", "--top", "3", "--other", "--share",
            "--growth", "yoy")]
        world, base = album(rows, "WORLD", "2024"), album(rows, "WORLD", "2023")
        want = [("WORLD", "total", world, Decimal(100), "total", world, base,
                 pct(world - base, base))]
        for m in sorted(("JP", "CN", "US"), key=lambda m: -album(rows, m, "2024")):
            want.append((m, "country", album(rows, m, "2024"), pct(album(rows, m, "2024"), world),
                         "total", world, None, None))
        self.assertEqual(got, want)
        self.assertEqual([w[3] for w in want[1:]],
                         [Decimal("30.77"), Decimal("20.66"), Decimal("20.49")])
        # One record by its key.
        r = self.c.kmx("get", "--kind", "export", "--period", "2025-H1", "--market", "JP",
                       "--category", "physical_album_customs", "--item",
                       "album exports to Japan H1 (about -15% YoY)", "--source",
                       "Korea Customs Service trade statistics via Korea Bizwire (Yonhap)")
        fields = dict(line.split(None, 1) for line in r.stdout.splitlines())
        self.assertEqual(Decimal(fields["value"]), album(rows, "JP", "2025-H1"))
        self.assertEqual(fields["unit"], "USD")
        # A figure and its revision, from the event log.
        w = self.c.kmx("watch", "export.WORLD.2022.physical_album_customs", "--since", "0",
                       "--count", "2", timeout=20)
        self.assertEqual([line.split()[-2:] for line in w.stdout.splitlines()],
                         [["233113000", "USD"], ["231389000", "USD"]])
        self.assertIn("status=revised  previous=233113000", w.stdout)
        # Every record as CSV: a header and one line per record.
        listed = self.c.kmx("list", "--format", "csv").stdout
        import csv as csvmod
        self.assertEqual(len(list(csvmod.DictReader(listed.splitlines()))), len(rows))
        # Workers and counters.
        stats = self.c.kmx("stats").stdout
        for service in ("kmx.broker", "kmx.ingest", "kmx.query"):
            self.assertIn(service, stats)

    def test_album_exports_by_destination(self):
        # Korea's 2024 album exports by destination: one row per market, exact values.
        got = self.q("exports", "--category", "physical_album_customs", "--period", "2024",
                     "--unit", "USD", "--by", "market")
        sums = {r["market"]: Decimal(r["sum"]) for r in got["rows"]}
        for market in ("JP", "CN", "US", "WORLD"):
            self.assertEqual(sums[market], album(self.rows, market, "2024"), market)
        # WORLD has a 2024 total and its own H1 and October: the total alone counts.
        self.assertEqual(got["granularity"], "auto")
        self.assertEqual(got["dropped"], 2)

    def test_growth_year_over_year(self):
        got = self.q("exports", "--category", "physical_album_customs", "--market", "WORLD",
                     "--unit", "USD", "--by", "year", "--granularity", "year",
                     "--growth", "yoy", "--from", "2023", "--to", "2025")
        by_year = {r["year"]: r for r in got["rows"]}
        for year in ("2023", "2024", "2025"):
            cur, base = album(self.rows, "WORLD", year), album(self.rows, "WORLD", str(int(year) - 1))
            self.assertEqual(Decimal(by_year[year]["previous"]), base)
            self.assertEqual(Decimal(by_year[year]["growth_pct"]), pct(cur - base, base))
        # 2022 was published twice (preliminary 233.113, revised 231.389): one figure,
        # revised, so 2023 grows against 231.389 and the preliminary is history only.
        self.assertEqual(Decimal(by_year["2023"]["previous"]), Decimal("231.389") * M)
        self.assertEqual(by_year["2023"]["count"], 1)

    def test_missing_base_is_missing(self):
        # JP's 2023 has only a first half: a 2024 total has no like-for-like base.
        got = self.q("exports", "--category", "physical_album_customs", "--market", "JP",
                     "--unit", "USD", "--period", "2024", "--by", "market", "--growth", "yoy")
        row = got["rows"][0]
        self.assertIsNone(row["previous"])
        self.assertIsNone(row["growth_pct"])
        # Its 2025 total against the 2024 total is a real growth.
        got = self.q("exports", "--category", "physical_album_customs", "--market", "JP",
                     "--unit", "USD", "--period", "2025", "--by", "market", "--growth", "yoy")
        cur, base = album(self.rows, "JP", "2025"), album(self.rows, "JP", "2024")
        self.assertEqual(Decimal(got["rows"][0]["growth_pct"]), pct(cur - base, base))

    def test_top_markets_and_share(self):
        got = self.q("exports", "--category", "physical_album_customs", "--period", "2024",
                     "--unit", "USD", "--market", "JP,CN,US", "--by", "market", "--top", "2",
                     "--other", "--share")
        vals = {m: album(self.rows, m, "2024") for m in ("JP", "CN", "US")}
        total = sum(vals.values())
        ranked = sorted(vals, key=lambda m: -vals[m])
        self.assertEqual([r["market"] for r in got["rows"]], ranked[:2] + ["(other)"])
        self.assertTrue(got["rows"][2]["other"])
        self.assertEqual(Decimal(got["rows"][2]["sum"]), vals[ranked[2]])
        for r, m in zip(got["rows"], ranked):
            self.assertEqual(Decimal(r["share_pct"]), pct(vals[m], total))

    def test_time_series_has_empty_periods(self):
        got = self.q("exports", "--category", "physical_album_customs", "--market", "CN",
                     "--unit", "USD", "--granularity", "year", "--time-series",
                     "--from", "2021", "--to", "2025")
        self.assertEqual([r["period"] for r in got["rows"]],
                         ["2021", "2022", "2023", "2024", "2025"])
        empty = {r["period"]: r for r in got["rows"]}
        self.assertIsNone(empty["2021"]["sum"])
        self.assertEqual(empty["2021"]["count"], 0)
        self.assertIsNone(empty["2023"]["sum"])  # CN has only a 2023 first half

    def test_consumption_breakdown_and_latest(self):
        # Percentages of respondents do not add: one value per item, no share of shares.
        got = self.q("consumption", "--dimension", "main_music_service_share", "--period",
                     "2024", "--by", "item")
        self.assertEqual(len(got["rows"]), 6)
        self.assertTrue(all(r["sum"] is None if "sum" in r else True for r in got["rows"]))
        r = self.c.kmx("query", "consumption", "--dimension", "main_music_service_share",
                       "--period", "2024", "--by", "item", "--share", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("a share of percent_respondents means nothing", r.stderr)
        latest = self.q("consumption", "--dimension", "main_music_service_share", "--by", "item",
                        "--latest")
        melon = [r for r in latest["rows"] if r["item"] == "Melon"][0]
        self.assertEqual((melon["period"], Decimal(melon["avg"])), ("2024", Decimal("27.5")))

    def test_metrics(self):
        got = self.q("exports", "--category", "physical_album_customs", "--unit", "USD",
                     "--market", "WORLD", "--granularity", "half", "--by", "market",
                     "--metrics", "sum,count,min,max,avg")
        vals = [album(self.rows, "WORLD", p) for p in ("2023-H1", "2024-H1", "2025-H1")]
        row = got["rows"][0]
        self.assertEqual(row["count"], 3)
        self.assertEqual(Decimal(row["min"]), min(vals))
        self.assertEqual(Decimal(row["max"]), max(vals))
        self.assertEqual(Decimal(row["avg"]),
                         (sum(vals) / 3).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))

    def test_statistics_are_never_added_together(self):
        # WORLD has three export statistics for 2024 (customs albums, the music-industry
        # survey, the all-content total): --by market answers each on its own row, with
        # the category as the last column, never their sum.
        got = self.q("exports", "--period", "2024", "--by", "market")
        self.assertEqual([list(r)[:4] for r in got["rows"]],
                         [["market", "category", "level", "unit"]] * len(got["rows"]))
        world = {(r["category"], r["unit"]): Decimal(r["sum"]) for r in got["rows"]
                 if r["market"] == "WORLD"}
        want = {(c, "USD"): csv_value(self.rows, "export", "WORLD", "2024", c, "USD")
                for c in ("physical_album_customs", "music_industry_survey",
                          "content_industry_total")}
        self.assertEqual(world, want)
        self.assertEqual(world[("physical_album_customs", "USD")], 291800000)
        # Pinned to one category: no category column, the same customs figure.
        pinned = self.q("exports", "--period", "2024", "--by", "market", "--category",
                        "physical_album_customs", "--unit", "USD")
        self.assertNotIn("category", pinned["rows"][0])
        self.assertEqual({r["market"]: Decimal(r["sum"]) for r in pinned["rows"]}["WORLD"],
                         291800000)
        # The table labels the column too; consumption calls it the dimension.
        table = self.c.kmx("query", "exports", "--period", "2024", "--by", "market").stdout
        self.assertEqual(table.splitlines()[0].split(), ["market", "category", "level", "unit",
                                                         "sum", "count", "avg"])
        cons = self.q("consumption", "--period", "2024", "--by", "item")
        self.assertTrue(all(list(r)[:3] == ["item", "dimension", "unit"] for r in cons["rows"]))

    def test_top_and_share_partition_by_category(self):
        got = self.q("exports", "--period", "2024", "--unit", "USD", "--by", "market", "--top",
                     "1", "--other", "--share")
        rows = [(r["market"], r["category"], Decimal(r["sum"]), Decimal(r["share_pct"]),
                 r.get("other", False)) for r in got["rows"]]
        survey = csv_value(self.rows, "export", "WORLD", "2024", "music_industry_survey", "USD")
        content = csv_value(self.rows, "export", "WORLD", "2024", "content_industry_total",
                            "USD")
        world = album(self.rows, "WORLD", "2024")
        rest = sum(album(self.rows, m, "2024") for m in ("JP", "CN", "US"))
        # One ranking per category, totals never ranked: each survey figure is the total of
        # its own category; the album countries rank among themselves (JP first) and the
        # rest folds into (other), each a share of WORLD's album total.
        jp = album(self.rows, "JP", "2024")
        self.assertEqual(rows, [
            ("WORLD", "content_industry_total", content, Decimal(100), False),
            ("WORLD", "music_industry_survey", survey, Decimal(100), False),
            ("WORLD", "physical_album_customs", world, Decimal(100), False),
            ("JP", "physical_album_customs", jp, pct(jp, world), False),
            ("(other)", "physical_album_customs", rest - jp, pct(rest - jp, world), True),
        ])

    def test_explicit_category_ranks_categories(self):
        # Grouping by category asks to compare categories: they rank against each other,
        # within each market level (WORLD's totals are never added to the countries).
        got = self.q("exports", "--period", "2024", "--unit", "USD", "--by", "category",
                     "--top", "2")
        rows = [(r["category"], r["level"], Decimal(r["sum"])) for r in got["rows"]]
        self.assertEqual([r for r in rows if r[1] == "world"], [
            ("content_industry_total", "world",
             csv_value(self.rows, "export", "WORLD", "2024", "content_industry_total", "USD")),
            ("music_industry_survey", "world",
             csv_value(self.rows, "export", "WORLD", "2024", "music_industry_survey", "USD")),
        ])
        self.assertEqual([r for r in rows if r[1] != "world"],
                         [("physical_album_customs", "country", Decimal("209880000"))])

    def test_bad_queries_are_named(self):
        cases = [
            (["exports", "--market", "Narnia"], "Narnia"),
            (["exports", "--from", "2025", "--to", "2023"], "before"),
            (["exports", "--by", "colour"], "colour"),
            (["exports", "--granularity", "fortnight"], "fortnight"),
            (["exports", "--by", "market", "--top", "3"], "conflicting units"),
            (["exports", "--unit", "USD,percent_share", "--by", "market", "--share"],
             "conflicting units"),
            (["exports", "--by", "market", "--growth", "yoy"], "growth needs a period"),
            (["exports", "--time-series", "--from", "2018", "--to", "2025"], "granularity"),
        ]
        for args, word in cases:
            r = self.c.kmx("query", *args, check=False)
            self.assertEqual(r.returncode, 1, (args, r.stderr))
            self.assertIn(word, r.stderr, args)


class Listing(unittest.TestCase):
    def setUp(self):
        self.c = Cluster().start()

    def tearDown(self):
        self.c.close()

    def test_pages_walk_every_record_once_in_order(self):
        self.c.kmx_json("import", kmxtest.SAMPLE)
        every = self.c.kmx_lines("list")
        seen, token = [], ""
        for _ in range(100):
            r = self.c.kmx("list", "--limit", "7", "--page-token", token, "--format", "json")
            seen += [line for line in r.stdout.splitlines() if line.strip()]
            token = r.stderr.strip().rpartition("next_page_token=")[2]
            if not token:
                break
        self.assertEqual(len(seen), len(every))
        import json
        self.assertEqual([json.loads(x) for x in seen], every)
        bad = self.c.kmx("list", "--limit", "7", "--page-token", "zz", check=False)
        self.assertEqual(bad.returncode, 1)

    def test_query_sees_an_acknowledged_ingest(self):
        path = os.path.join(self.c.dir, "one.csv")
        for i in range(5):
            with open(path, "w") as f:
                f.write("kind,period,market,category,item,value,unit,source\n"
                        "export,2024-%02d,JP,album,a,%d,USD,t\n" % (i + 1, i + 1))
            self.c.kmx_json("import", path)
            # No wait: the import was acknowledged, so the next query sees it.
            got = self.c.kmx_json("query", "exports", "--by", "market")
            self.assertEqual(Decimal(got["rows"][0]["sum"]), sum(range(1, i + 2)))


# ---- property test -------------------------------------------------------------------

MARKETS = ["JP", "CN", "US", "GB", "FR"]
CATS = ["album", "digital", "video"]
ARTISTS = ["", "A", "B"]
UNITS = ["USD", "KRW"]


def spans(year):
    yield "%d" % year, (year * 100 + 1, year * 100 + 12)
    for h in (1, 2):
        yield "%d-H%d" % (year, h), (year * 100 + 6 * h - 5, year * 100 + 6 * h)
    for q in (1, 2, 3, 4):
        yield "%d-Q%d" % (year, q), (year * 100 + 3 * q - 2, year * 100 + 3 * q)
    for m in range(1, 13):
        yield "%d-%02d" % (year, m), (year * 100 + m, year * 100 + m)


PERIODS = [p for y in (2023, 2024) for p in spans(y)]


def gran(span):
    n = (span[1] // 100 * 12 + span[1] % 100) - (span[0] // 100 * 12 + span[0] % 100) + 1
    return {1: "month", 3: "quarter", 6: "half", 12: "year"}[n], n


def key_fields(flt, by):
    """The answer's key fields: by, plus the category when the filter does not pin one."""
    if "category" in by or len(set(flt["cats"])) == 1:
        return list(by)
    return list(by) + ["category"]


def reference(records, flt, by, mode):
    """Brute force: filter, group by (keys, unit), apply the granularity rule per group."""
    by = key_fields(flt, by)
    groups = {}
    for r in records:
        if flt["markets"] and r["market"] not in flt["markets"]:
            continue
        if flt["cats"] and r["category"] not in flt["cats"]:
            continue
        if flt["artists"] and r["artist"] not in flt["artists"]:
            continue
        if flt["units"] and r["unit"] not in flt["units"]:
            continue
        lo, hi = flt["range"]
        if not (lo <= r["span"][0] and r["span"][1] <= hi):
            continue
        if mode not in ("auto", "any") and gran(r["span"])[0] != mode:
            continue
        key = tuple(r[f] if f != "year" else r["period"][:4] for f in by) + (r["unit"],)
        groups.setdefault(key, []).append(r)
    out = {}
    for key, rs in groups.items():
        if mode == "auto":
            # Per distinct period (records of one period add up), coarsest first.
            by_period = {}
            for r in rs:
                by_period.setdefault(r["span"], []).append(r)
            kept = []
            for span in sorted(by_period, key=lambda s: (-gran(s)[1], s[0])):
                if all(span[1] < k[0] or k[1] < span[0] for k in kept):
                    kept.append(span)
            rs = [r for r in rs if r["span"] in kept]
        out[key] = (sum(r["amount"] for r in rs), len(rs))
    return out


def row_key(row, cols):
    """An answer row's keys (the columns cols, then the unit), as reference() keys it."""
    return tuple(row[f] for f in cols) + (row["unit"],)


def ranked(want, flt, by, top):
    """The rows a top-N query keeps and their shares: ranked within each partition (unit,
    and the category when it was added), largest sum first. None when a tie at the cut
    makes the kept rows depend on the key order."""
    added = key_fields(flt, by) != list(by)
    parts = {}
    for key, (total, count) in want.items():
        part = (key[-1], key[-2] if added else None)
        parts.setdefault(part, []).append((key, total, count))
    out = {}
    for members in parts.values():
        whole = sum(t for _, t, _ in members)
        members.sort(key=lambda m: -m[1])
        if len(members) > top and members[top - 1][1] == members[top][1]:
            return None
        for key, total, count in members[:top]:
            out[key] = (total, count, pct(total, whole) if whole else None)
    return out


class Property(unittest.TestCase):
    def setUp(self):
        self.c = Cluster().start()

    def tearDown(self):
        self.c.close()

    def test_random_queries_match_brute_force(self):
        rnd = random.Random(kmxtest.seed())
        records, keys = [], set()
        while len(records) < 400:
            period, span = rnd.choice(PERIODS)
            r = {"market": rnd.choice(MARKETS), "category": rnd.choice(CATS),
                 "artist": rnd.choice(ARTISTS), "unit": rnd.choice(UNITS), "period": period,
                 "span": span, "item": "s%d" % rnd.randrange(3)}
            k = (period, r["market"], r["category"], r["artist"], r["item"])
            if k in keys:
                continue
            keys.add(k)
            # Ingest refuses negative money amounts (the same draw as before, made positive).
            r["amount"] = abs(Decimal(rnd.randrange(-500, 100000)) / 100)
            records.append(r)
        path = os.path.join(self.c.dir, "prop.csv")
        with open(path, "w") as f:
            f.write("kind,period,market,category,item,artist,value,unit,source\n")
            for r in records:
                f.write("export,%s,%s,%s,%s,%s,%s,%s,prop\n" % (
                    r["period"], r["market"], r["category"], r["item"], r["artist"],
                    r["amount"], r["unit"]))
        self.assertEqual(self.c.kmx_json("import", path)["stored"], len(records))

        fields = ["market", "category", "artist", "year", "period"]
        for n in range(40):
            by = rnd.sample(fields, rnd.randrange(0, 3))
            flt = {"markets": rnd.sample(MARKETS, rnd.randrange(0, 3)),
                   "cats": rnd.sample(CATS, rnd.randrange(0, 3)),
                   "artists": rnd.sample(ARTISTS[1:], rnd.randrange(0, 2)) if n % 3 == 0 else [],
                   "units": []}
            top = rnd.randrange(1, 4) if n % 4 == 1 and "unit" not in by else 0
            if top:
                flt["units"] = [rnd.choice(UNITS)]  # a ranking needs one unit per category
            lo = rnd.choice([(202301, 202412), (202401, 202412), (202301, 202306),
                             (202304, 202409)])
            flt["range"] = lo
            mode = rnd.choice(["auto", "auto", "any", "year", "half", "quarter", "month"])
            args = ["exports", "--from", "%d-%02d" % (lo[0] // 100, lo[0] % 100),
                    "--to", "%d-%02d" % (lo[1] // 100, lo[1] % 100), "--granularity", mode]
            for flag, key in (("--market", "markets"), ("--category", "cats"),
                              ("--artist", "artists"), ("--unit", "units")):
                if flt[key]:
                    args += [flag, ",".join(flt[key])]
            if by:
                args += ["--by", ",".join(by)]
            if top:
                args += ["--top", str(top), "--share"]
            answer = self.c.kmx_json("query", *args)
            key_cols = key_fields(flt, by)
            got = {row_key(r, key_cols): (Decimal(r["sum"]), r["count"]) for r in answer["rows"]}
            self.assertEqual(len(got), len(answer["rows"]), args)
            want = reference(records, flt, by, mode)
            if top:
                want = ranked(want, flt, by, top)
                if want is None:
                    continue
                shares = {k: v[2] for k, v in want.items()}
                want = {k: v[:2] for k, v in want.items()}
                self.assertEqual({row_key(r, key_cols): r["share_pct"] and Decimal(r["share_pct"])
                                  for r in answer["rows"]}, shares, args)
            self.assertEqual(got, want, args)


if __name__ == "__main__":
    kmxtest.main()
