"""Ingest of real-world tables: messy files in, clean records and clear errors out.

A file with good and bad rows stores exactly the good ones and names each bad row with
its line, column and reason; the same file again is all unchanged. Also: JSON Lines with
the forms sources write, repeats inside a request, the whole-import atomic mode, dry
runs, defaults, limits, and a raw document sent straight over ZeroMQ by this Python
process (any language can send a file as it is).
"""
import os
import tempfile
import unittest
from decimal import Decimal

import kmxtest
from kmxtest import Cluster, query_sums

HEADER = "kind,period,market,category,item,value,unit,source\n"

GOOD = [
    "export,2024,JP,physical_album_customs,album exports,1.5,USD_million,KCS\n",
    "export,1H 2025,Japan,physical_album_customs,album exports,2.25,USD million,KCS\n",
    "export,Q3 2024,United States,physical_album_customs,album exports,300,USD thousand,KCS\n",
    "export,Mar 2024,CN,physical_album_customs,album exports,\"1,000\",KRW bn,KCS\n",
    "consumption,2024Q2,,streaming,Melon share,41.5,%,KOCCA\n",
]
BAD = [
    # (line text, column named in the error, a word of the reason)
    ("export,2024-13,JP,physical_album_customs,album exports,1,USD,KCS\n", "period", "period"),
    ("export,2024,Atlantis,physical_album_customs,album exports,1,USD,KCS\n", "market", "market"),
    ("export,2024,JP,physical_album_customs,album exports,1.2.3,USD,KCS\n", "value", "value"),
    ("export,2024,JP,physical_album_customs,album exports,1,bananas,KCS\n", "unit", "unit"),
    ("exprot,2024,JP,physical_album_customs,album exports,1,USD,KCS\n", "kind", "kind"),
    ("export,2024,JP,physical_album_customs,album exports,1,USD\n", "row", "fields"),
]


def sums_of_good():
    """USD and percent totals of GOOD, worked out by hand (exact decimals)."""
    return {("JP", "USD"): Decimal("3750000"), ("US", "USD"): Decimal("300000"),
            ("CN", "KRW"): Decimal("1000000000000")}


class Ingest(unittest.TestCase):
    def setUp(self):
        self.c = Cluster(ingest=2).start()
        self.tmp = tempfile.mkdtemp(prefix="kmx-ingest-")

    def tearDown(self):
        self.c.close()  # every service must exit 0

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def mixed_file(self):
        lines = [HEADER]
        for i, g in enumerate(GOOD):
            lines.append(g)
            if i < len(BAD):
                lines.append(BAD[i][0])
        lines.extend(b[0] for b in BAD[len(GOOD):])
        return self.write("mixed.csv", "".join(lines)), lines

    def test_mixed_file_stores_exactly_the_good_rows_then_all_unchanged(self):
        path, lines = self.mixed_file()
        r = self.c.kmx("import", path, "--format", "json", "--batch", "3", check=False)
        self.assertEqual(r.returncode, 1, r.stderr)
        summary = kmxtest.json.loads(r.stdout)
        self.assertEqual(summary["rows"], len(GOOD) + len(BAD), summary)
        self.assertEqual(summary["stored"], len(GOOD), summary)
        self.assertEqual(summary["rejected"], len(BAD), summary)
        # Each bad row is named by its file line, its column and a reason.
        by_row = {e["row"]: e for e in summary["rejected_rows"]}
        for text, column, word in BAD:
            line = lines.index(text) + 1
            self.assertIn(line, by_row, (text, summary))
            self.assertEqual(by_row[line]["field"], column, by_row[line])
            self.assertIn(word, by_row[line]["reason"].lower(), by_row[line])
        # Exactly the good rows are stored, with exact values.
        listed = self.c.kmx_lines("list")
        self.assertEqual(len(listed), len(GOOD))
        got = query_sums(self.c.kmx_json("query", "exports", "--by", "market"), "market")
        self.assertEqual(got, sums_of_good())
        # The same file again: every good row unchanged, nothing stored.
        again = self.c.kmx_json("import", path, check=False)
        self.assertEqual((again["stored"], again["unchanged"], again["rejected"]),
                         (0, len(GOOD), len(BAD)), again)

    def test_jsonl_with_source_forms(self):
        text = "\n".join([
            '{"kind":"export","period":"H1 2025","country":"Japan","category":"digital",'
            '"series":"streams","value":233.113,"unit":"USD_million","source":"KOCCA"}',
            '{"type":"export","period":"2023-01/2023-04","market":"JP+CN+US",'
            '"category":"digital","item":"streams","value_usd_thousand":"12.5","source":"KOCCA"}',
            '{"kind":"export","period":"Sept 2023","market":"WORLD","category":"digital",'
            '"item":"streams","value":"7 KRW bn","source":"KOCCA"}',
            '{"kind":"export","period":"2024","market":"JP","category":"digital",'
            '"item":"streams","value":1e3,"unit":"USD","source":"KOCCA"}',
            '{"kind":"export", "period": [2024]}',
            'not json',
        ]) + "\n"
        path = self.write("facts.jsonl", text)
        summary = self.c.kmx_json("import", path, check=False)
        self.assertEqual((summary["rows"], summary["stored"], summary["rejected"]), (6, 3, 3),
                         summary)
        rows = {e["row"]: e for e in summary["rejected_rows"]}
        self.assertEqual(sorted(rows), [4, 5, 6])
        self.assertEqual(rows[4]["field"], "value")
        self.assertIn("nested", rows[5]["reason"])
        got = {(r["market"], r["period"]): (r["value"], r["unit"])
               for r in self.c.kmx_lines("list")}
        self.assertEqual(got[("JP", "2025-H1")], ("233113000", "USD"))
        self.assertEqual(got[("JP+CN+US", "2023-01/2023-04")], ("12500", "USD"))
        self.assertEqual(got[("WORLD", "2023-09")], ("7000000000", "KRW"))

    def test_repeat_inside_a_request_is_reported(self):
        row = "export,2024,JP,physical_album_customs,album exports,1.5,USD_million,KCS\n"
        changed = "export,2024,Japan,physical_album_customs,album exports,9,USD,KCS\n"
        path = self.write("dup.csv", HEADER + row + changed)
        summary = self.c.kmx_json("import", path, check=False)
        self.assertEqual((summary["stored"], summary["rejected"], summary["duplicates"]),
                         (1, 1, 1), summary)
        reject = summary["rejected_rows"][0]
        self.assertEqual(reject["row"], 3)
        self.assertIn("row 2", reject["reason"])
        self.assertEqual(self.c.kmx_lines("list")[0]["value"], "1500000")

    def test_atomic_import_stores_nothing_when_one_row_is_bad(self):
        path, _ = self.mixed_file()
        r = self.c.kmx("import", path, "--atomic", "--batch", "2", "--format", "json",
                       check=False)
        self.assertEqual(r.returncode, 1, r.stderr)
        summary = kmxtest.json.loads(r.stdout)
        self.assertTrue(summary["atomic_refused"], summary)
        self.assertEqual(summary["stored"], 0)
        self.assertEqual(summary["rejected"], len(BAD))
        self.assertEqual(self.c.kmx_lines("list"), [])
        good = self.write("good.csv", HEADER + "".join(GOOD))
        summary = self.c.kmx_json("import", good, "--atomic", "--batch", "2")
        self.assertEqual(summary["stored"], len(GOOD), summary)

    def test_dry_run_and_defaults(self):
        text = "kind,period,market,category,item,value\n" \
               "export,2024,JP,physical_album_customs,album exports,1.5\n"
        path = self.write("partial.csv", text)
        r = self.c.kmx("import", path, check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("unit", r.stderr)
        summary = self.c.kmx_json("import", path, "--dry-run", "--default", "unit=USD million",
                                  "--default", "source=KCS")
        # A dry run stores nothing by itself; no --atomic means no atomic refusal.
        self.assertTrue(summary["dry_run"], summary)
        self.assertFalse(summary["atomic_refused"], summary)
        self.assertEqual(self.c.kmx_lines("list"), [])
        summary = self.c.kmx_json("import", path, "--default", "unit=USD million",
                                  "--default", "source=KCS")
        self.assertEqual(summary["stored"], 1, summary)
        rec = self.c.kmx_lines("list")[0]
        self.assertEqual((rec["value"], rec["unit"], rec["source"]), ("1500000", "USD", "KCS"))

    def test_limits_are_refused_with_clear_errors(self):
        long_item = "x" * 5000
        path = self.write("long.csv", HEADER + "export,2024,JP,physical_album_customs,%s,1,"
                          "USD,KCS\n" % long_item)
        summary = self.c.kmx_json("import", path, check=False)
        self.assertEqual(summary["rejected"], 1)
        self.assertIn("4096", summary["rejected_rows"][0]["reason"])
        r = self.c.kmx("import", path, "--batch", "100001", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("--batch", r.stderr)
        bad_header = self.write("bad.csv", "kind,period,colour\nexport,2024,red\n")
        r = self.c.kmx("import", bad_header, check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("colour", r.stderr)

    def test_raw_document_over_zeromq_from_python(self):
        doc = (HEADER + "".join(GOOD)).encode()
        reply = kmxtest.send_document(self.c, doc)
        self.assertEqual(reply.get("stored"), len(GOOD), reply)
        self.assertEqual(reply.get("records"), len(GOOD), reply)
        reply = kmxtest.send_document(self.c, doc)
        self.assertEqual(reply.get("unchanged"), len(GOOD), reply)
        # Over the document limit: refused as a whole, with the limit named.
        big = HEADER.encode() + b"x" * (33 * 1024 * 1024)
        reply = kmxtest.send_document(self.c, big)
        self.assertEqual(reply.get("error_code"), 5, reply)  # TOO_LARGE
        self.assertIn("at most", reply.get("message", ""))


if __name__ == "__main__":
    kmxtest.main()
