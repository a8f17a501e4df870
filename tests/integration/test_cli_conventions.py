"""The CLI's conventions for mistakes: option errors start with "kmx: " and name the
closest option; a bad KMX_TIMEOUT or KMX_RETRIES is named and nothing runs; --format csv
is refused where a command prints only a table or JSON; a dry run is not an atomic
refusal; the stats table's worker errors are the workers' own error counts.
"""
import json
import os
import unittest

import kmxtest
from kmxtest import Cluster


class Conventions(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = Cluster().start()

    @classmethod
    def tearDownClass(cls):
        cls.c.close()

    def fails(self, *args, env=None, code=1):
        r = self.c.kmx(*args, check=False, env=env)
        self.assertEqual(r.returncode, code, (args, r.stdout, r.stderr))
        self.assertEqual(r.stdout, "")
        first = r.stderr.splitlines()[0]
        self.assertTrue(first.startswith("kmx: "), first)
        return first

    def test_option_errors_name_the_closest_option(self):
        self.assertEqual(self.fails("query", "exports", "--perod", "2024"),
                         "kmx: query: unknown option '--perod' (did you mean --period?)")
        self.assertEqual(self.fails("get", "--categroy", "x"),
                         "kmx: get: unknown option '--categroy' (did you mean --category?)")
        self.assertEqual(self.fails("import", "--dryrun", "x.csv"),
                         "kmx: import: unknown option '--dryrun' (did you mean --dry-run?)")
        self.assertEqual(self.fails("--brokr", "tcp://x", "ping"),
                         "kmx: unknown option '--brokr' (did you mean --broker?)")
        self.assertEqual(self.fails("list", "--zzzzzz"),
                         "kmx: list: unknown option '--zzzzzz' (see kmx list --help)")
        self.assertEqual(self.fails("query", "exports", "--period"),
                         "kmx: query: option '--period' needs a value")
        self.assertEqual(self.fails("query", "exports", "--share=yes"),
                         "kmx: query: option '--share' takes no value")
        self.assertEqual(self.fails("stats", "-x"), "kmx: stats: unknown option '-x'")

    def test_every_command_reports_option_errors_alike(self):
        for command in ("import", "put", "delete", "get", "history", "query", "list", "dump",
                        "catalog", "watch", "stats", "ping", "keygen"):
            with self.subTest(command=command):
                self.assertEqual(self.fails(command, "--bogus-option"),
                                 "kmx: %s: unknown option '--bogus-option' (see kmx %s --help)"
                                 % (command, command))

    def test_bad_environment_is_named_and_nothing_runs(self):
        for name in ("KMX_TIMEOUT", "KMX_RETRIES"):
            for value in ("abc", "0", "-5"):
                first = self.fails("ping", env={name: value})
                self.assertEqual(first, 'kmx: %s wants an integer of at least 1, not "%s"'
                                 % (name, value))
        # A good value still works.
        self.assertEqual(self.c.kmx("ping", env={"KMX_TIMEOUT": "3000"}).returncode, 0)

    def test_format_csv_refused_where_there_is_none(self):
        path = os.path.join(self.c.dir, "one.csv")
        with open(path, "w") as f:
            f.write("kind,period,market,category,item,value,unit,source\n"
                    "export,2024,JP,physical_album_customs,x,1,USD,s\n")
        first = self.fails("import", path, "--format", "csv")
        self.assertIn("--format csv is not an output of import", first)
        self.assertIn("--input csv|jsonl", first)
        self.assertEqual(self.c.kmx_lines("list"), [])  # nothing was sent
        for args in (["put", "--kind", "export"], ["ping"], ["keygen"]):
            self.assertIn("--format csv is not an output of %s" % args[0],
                          self.fails(*args, "--format", "csv"))
        self.assertEqual(self.c.kmx("--format", "csv", "stats", check=False).returncode, 0)

    def test_dry_run_is_not_an_atomic_refusal(self):
        path = os.path.join(self.c.dir, "mixed.csv")
        with open(path, "w") as f:
            f.write("kind,period,market,category,item,value,unit,source\n"
                    "export,2024,JP,physical_album_customs,a,1,USD,dry\n"
                    "export,2024-H3,JP,physical_album_customs,b,1,USD,dry\n")
        r = self.c.kmx("import", path, "--dry-run", "--format", "json", check=False)
        summary = json.loads(r.stdout)
        self.assertEqual((summary["dry_run"], summary["atomic_refused"]), (True, False))
        r = self.c.kmx("import", path, "--dry-run", "--atomic", "--format", "json", check=False)
        summary = json.loads(r.stdout)
        self.assertEqual((summary["dry_run"], summary["atomic_refused"]), (True, True))
        r = self.c.kmx("import", path, "--atomic", "--format", "json", check=False)
        summary = json.loads(r.stdout)
        self.assertEqual((summary["dry_run"], summary["atomic_refused"]), (False, True))
        # Nothing was stored: no record holds the source, so naming it is refused.
        r = self.c.kmx("list", "--source", "dry", check=False)
        self.assertEqual((r.returncode, r.stdout), (1, ""), r.stderr)
        self.assertIn("unknown source 'dry'", r.stderr)

    def test_stats_worker_errors_are_the_workers_own(self):
        before = self.c.kmx_json("stats")
        for _ in range(3):
            self.c.kmx("query", "exports", "--market", "Atlantis", check=False)
        self.c.kmx("get", "--kind", "export", "--period", "1901", "--market", "JP",
                   "--category", "c", "--item", "i", "--source", "s", check=False)
        st = self.c.kmx_json("stats")
        worker = next(w for w in st["workers"] if w["service"] == "kmx.query")
        own = next(s for s in st["services"] if s["service"] == "kmx.query")
        old = next(w for w in before["workers"] if w["service"] == "kmx.query")
        self.assertGreaterEqual(worker["errors"] - old["errors"], 3)
        self.assertEqual(worker["errors"], own["counters"]["errors"])
        table = kmxtest.parse_table(self.c.kmx("stats").stdout)
        row = next(r for r in table if r.get("service") == "kmx.query" and "errors" in r)
        self.assertEqual(int(row["errors"]), worker["errors"])


if __name__ == "__main__":
    kmxtest.main()
