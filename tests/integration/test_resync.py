"""A subscriber behind the event-retention window is told to resync, never given a gap.

Storage keeps only the newest events (KMX_RETAIN_EVENTS); `kmx watch --since` from before
the window fails with a message saying how to resynchronise, and a snapshot (`kmx list`)
plus `watch --since` the sequence it reflects continues without loss.
"""
import json
import os
import unittest

import kmxtest
from kmxtest import Cluster, sample_rows


class Resync(unittest.TestCase):
    def setUp(self):
        os.environ["KMX_RETAIN_EVENTS"] = "20"
        try:
            self.c = Cluster().start()
        finally:
            del os.environ["KMX_RETAIN_EVENTS"]

    def tearDown(self):
        self.c.close()

    def test_reader_behind_retention_gets_resync_answer(self):
        rows = sample_rows()
        summary = self.c.kmx_json("import", kmxtest.SAMPLE)
        self.assertEqual(summary["stored"], len(rows))
        last = summary["last_seq"]

        # Inside the window: replays the newest events.
        w = self.c.watch("--since", str(last - 5), "--count", "5")
        out, err = w.communicate(timeout=20)
        self.assertEqual(w.returncode, 0, err)
        seqs = [json.loads(line)["seq"] for line in out.splitlines()]
        self.assertEqual(seqs, list(range(last - 4, last + 1)))

        # Behind the window: an explicit resync answer, exit status 2, nothing printed.
        r = self.c.kmx("watch", "--since", "0", "--count", "1", "--format", "json",
                       check=False, timeout=20)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertEqual(r.stdout, "")
        self.assertIn("no longer kept", r.stderr)

        # The snapshot still holds every record.
        self.assertEqual(len(self.c.kmx_lines("list")), len(kmxtest.sample_facts()))


if __name__ == "__main__":
    kmxtest.main()
