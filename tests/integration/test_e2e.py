"""End to end: CSV on disk -> ingest -> LMDB -> query answer and live notification.

Starts all four binaries on free loopback ports with a fresh data directory, imports
the sample data with `kmx import`, and checks answers against sums the test computes
from the CSV itself; then restarts storage and checks nothing was lost.
"""
import json
import unittest

import kmxtest
from kmxtest import (Cluster, query_sums, query_sums_by_market, sample_facts, sample_rows,
                     sums_by_market)


class EndToEnd(unittest.TestCase):
    def setUp(self):
        self.c = Cluster().start()

    def tearDown(self):
        self.c.close()  # every service must exit 0

    def import_sample(self):
        return self.c.kmx_json("import", kmxtest.SAMPLE)

    def test_import_query_watch_and_restart(self):
        rows = sample_rows()
        # --since 0 replays whatever the subscription missed (ZeroMQ's slow joiner), so
        # no event is lost however late the subscription reaches the broker's XPUB.
        watcher = self.c.watch("--since", "0", "--count", str(len(rows)))

        summary = self.import_sample()
        self.assertEqual(summary["stored"], len(rows), summary)
        self.assertEqual(summary["rejected"], 0, summary)

        # Totals by market equal the sums computed from the CSV, for both kinds; each
        # category (dimension) is its own row, since different statistics never add up.
        for kind, cmd in (("export", "exports"), ("consumption", "consumption")):
            got = query_sums_by_market(
                self.c.kmx_json("query", cmd, "--by", "market", "--granularity", "any"), kind)
            want = sums_by_market(rows, kind)
            self.assertEqual(got, want, kind)

        # The watcher saw one event per stored record, in sequence order, gap-free.
        out, err = watcher.communicate(timeout=20)
        self.assertEqual(watcher.returncode, 0, err)
        events = [json.loads(line) for line in out.splitlines() if line.strip()]
        self.assertEqual(len(events), len(rows))
        seqs = [e["seq"] for e in events]
        self.assertEqual(seqs, list(range(seqs[0], seqs[0] + len(rows))))
        self.assertTrue(all(e["topic"].startswith(("export.", "consumption.")) for e in events))

        # Storage stops on SIGTERM and comes back with every record.
        self.assertEqual(self.c.stop("storage"), 0)
        self.c.spawn("storage", "kmx-storage")
        self.c.wait_ready()
        listed = self.c.kmx_lines("list")
        self.assertEqual(len(listed), len(sample_facts()))
        again = self.import_sample()
        self.assertEqual(again["unchanged"], len(rows), again)
        self.assertEqual(again["stored"], 0, again)

    def test_watch_since_replays_then_continues(self):
        self.import_sample()
        # A subscriber that was away replays from a sequence number, filtered by prefix.
        jp = [r for r in sample_rows() if r["kind"] == "export" and r["market"] == "JP"]
        self.assertGreater(len(jp), 3)
        w = self.c.watch("export.JP.", "--since", "0", "--count", str(len(jp)))
        out, err = w.communicate(timeout=20)
        self.assertEqual(w.returncode, 0, err)
        events = [json.loads(line) for line in out.splitlines() if line.strip()]
        self.assertEqual(len(events), len(jp))
        self.assertEqual(sorted(e["record"]["item"] for e in events),
                         sorted(r["item"] for r in jp))
        self.assertTrue(all(e["topic"].startswith("export.JP.") for e in events))
        seqs = [e["seq"] for e in events]
        self.assertEqual(seqs, sorted(set(seqs)))

    def test_get_and_put_update_same_key(self):
        self.import_sample()
        key = ["--kind", "export", "--period", "2025-H1", "--market", "JP",
               "--category", "physical_album_customs",
               "--item", "album exports to Japan H1 (about -15% YoY)",
               "--source", "Korea Customs Service trade statistics via Korea Bizwire (Yonhap)"]
        rec = self.c.kmx_json("get", *key)
        self.assertEqual((rec["value"], rec["unit"]), ("39100000", "USD"))
        self.c.kmx("put", *key, "--value", "39.2", "--unit", "USD_million", "--status", "revised")
        rec2 = self.c.kmx_json("get", *key)
        self.assertEqual(rec2["value"], "39200000")
        self.assertGreater(rec2["seq"], rec["seq"])
        self.assertEqual(len(self.c.kmx_lines("list")), len(sample_facts()))

    def test_revised_figure_replaces_the_preliminary(self):
        # The sample publishes 2022's customs album total twice under one key: preliminary,
        # then revised. The store holds the revision; the event log keeps both.
        summary = self.import_sample()
        self.assertEqual(summary["rejected"], 0, summary)
        key = ["--kind", "export", "--period", "2022", "--market", "WORLD",
               "--category", "physical_album_customs", "--item", "album exports total",
               "--source", "Korea Customs Service trade statistics"]
        rec = self.c.kmx_json("get", *key)
        self.assertEqual((rec["value"], rec["status"]), ("231389000", "revised"))
        w = self.c.watch("export.WORLD.2022.physical_album_customs", "--since", "0",
                         "--count", "2")
        out, err = w.communicate(timeout=20)
        self.assertEqual(w.returncode, 0, err)
        events = [json.loads(line) for line in out.splitlines() if line.strip()]
        self.assertEqual([e["record"]["value"] for e in events], ["233113000", "231389000"])
        self.assertEqual(events[1]["previous"], "233113000")
        # A preliminary figure sent again later never replaces the revision.
        put = self.c.kmx_json("put", *key, "--value", "240", "--unit", "USD_million",
                              "--status", "preliminary")
        self.assertEqual((put["outcome"], put["field"]), ("unchanged", "status"), put)
        self.assertIn("later revision", put["reason"])
        self.assertEqual(self.c.kmx_json("get", *key)["value"], "231389000")
        # A final figure does.
        self.c.kmx("put", *key, "--value", "231.4", "--unit", "USD_million", "--status", "final")
        self.assertEqual(self.c.kmx_json("get", *key)["value"], "231400000")
        # Re-importing the file changes nothing: both rows are older than what is stored.
        again = self.import_sample()
        self.assertEqual((again["stored"], again["unchanged"]), (0, len(sample_rows())), again)

    def test_delete_is_a_correction_with_a_tombstone_event(self):
        since = self.import_sample()["last_seq"]  # the newest event before the delete
        key = ["--kind", "export", "--period", "2023", "--market", "WORLD",
               "--category", "music_exports_unspecified", "--item", "music exports (approx.)",
               "--source", "seed article"]
        before = query_sums(self.c.kmx_json("query", "exports", "--by", "market"), "market",
                            "category")
        w = self.c.watch("export.WORLD.2023.", "--since", str(since), "--count", "1")
        out = self.c.kmx_json("delete", *key)
        self.assertEqual(out["outcome"], "deleted")
        ev, err = w.communicate(timeout=20)
        self.assertEqual(w.returncode, 0, err)
        event = json.loads(ev.splitlines()[0])
        self.assertEqual((event["type"], event["seq"]), ("delete", out["seq"]))
        self.assertEqual(self.c.kmx("get", *key, check=False).returncode, 1)
        self.assertEqual(self.c.kmx("delete", *key, check=False).returncode, 1)
        self.assertEqual(len(self.c.kmx_lines("list")), len(sample_facts()) - 1)
        after = query_sums(self.c.kmx_json("query", "exports", "--by", "market"), "market",
                           "category")
        gone = ("WORLD", "music_exports_unspecified", "USD")
        self.assertEqual(before[gone] - after.get(gone, 0), 1200000000)
        # The other statistics of WORLD are untouched.
        self.assertEqual({k: v for k, v in before.items() if k != gone},
                         {k: v for k, v in after.items() if k != gone})

    def test_bad_rows_are_rejected_with_reasons(self):
        import os
        import tempfile
        fd, path = tempfile.mkstemp(suffix=".csv", dir=self.c.dir)
        with os.fdopen(fd, "w") as f:
            f.write("kind,period,market,category,item,value,unit,source\n"
                    "export,2024,JP,physical_album_customs,ok row,1.5,USD_million,test\n"
                    "export,2024-13,JP,physical_album_customs,bad period,1,USD,test\n"
                    "export,2024,Atlantis,physical_album_customs,bad market,1,USD,test\n"
                    "export,2024,JP,physical_album_customs,bad unit,1,bananas,test\n"
                    "export,2024,JP,physical_album_customs,negative,-1,USD,test\n")
        r = self.c.kmx("import", path, "--format", "json", check=False)
        self.assertEqual(r.returncode, 1, r.stderr)
        summary = json.loads(r.stdout)
        self.assertEqual((summary["stored"], summary["rejected"]), (1, 4), summary)
        listed = self.c.kmx_lines("list")
        self.assertEqual([x["item"] for x in listed], ["ok row"])


if __name__ == "__main__":
    kmxtest.main()
