"""Hot backup and restore of kmx-storage.

Imports the sample, takes `kmx-storage backup` while the service runs, keeps writing,
then restores the backup as docs/storage.md says (stop, move the data directory aside,
copy data.mdb in, start) and checks the restored store serves exactly the records of
the moment of the backup and passes `kmx-storage check`.
"""
import os
import shutil
import subprocess
import unittest

import kmxtest
from kmxtest import Cluster, sample_rows


def storage_cmd(cluster, *args):
    return subprocess.run([os.path.join(kmxtest.BIN, "kmx-storage"), *args], env=cluster.env,
                          capture_output=True, text=True, timeout=120)


class StorageBackup(unittest.TestCase):
    def setUp(self):
        self.c = Cluster().start()

    def tearDown(self):
        self.c.close()  # every service must exit 0

    def test_hot_backup_then_restore(self):
        rows = sample_rows()
        self.assertEqual(self.c.kmx_json("import", kmxtest.SAMPLE)["stored"], len(rows))
        dest = os.path.join(self.c.dir, "backup")
        r = storage_cmd(self.c, "backup", "--data-dir", self.c.data_dir, dest)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(os.path.exists(os.path.join(dest, "data.mdb")))
        # While the service runs, no second writer gets the directory: not an upgrade, not
        # a second kmx-storage (which would number events from its own last_seq).
        r = storage_cmd(self.c, "upgrade", "--data-dir", self.c.data_dir)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("in use by another kmx-storage", r.stderr)
        r = storage_cmd(self.c, "--data-dir", self.c.data_dir, "--bind",
                        "tcp://127.0.0.1:%d" % kmxtest.free_port())
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("in use by another kmx-storage", r.stderr)
        # A second backup into the same place is refused, not overwritten.
        self.assertNotEqual(storage_cmd(self.c, "backup", "--data-dir", self.c.data_dir,
                                        dest).returncode, 0)

        # A write after the backup: the restore must not have it.
        extra = os.path.join(self.c.dir, "extra.csv")
        with open(extra, "w") as f:
            f.write("kind,period,market,category_or_dimension,item,value,unit,source\n")
            f.write("export,2031,JP,backup_test,after the backup,1,USD,kmx backup test\n")
        self.assertEqual(self.c.kmx_json("import", extra)["stored"], 1)
        facts = kmxtest.sample_facts()
        self.assertEqual(len(self.c.kmx_lines("list")), len(facts) + 1)

        # Restore: stop, move aside, copy data.mdb in, check, start.
        self.assertEqual(self.c.stop("storage"), 0)
        shutil.move(self.c.data_dir, self.c.data_dir + ".old")
        os.makedirs(self.c.data_dir)
        shutil.copy(os.path.join(dest, "data.mdb"), os.path.join(self.c.data_dir, "data.mdb"))
        r = storage_cmd(self.c, "check", "--data-dir", self.c.data_dir)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("records=%d " % len(facts), r.stdout)
        self.c.spawn("storage", "kmx-storage")
        self.c.wait_ready()
        listed = self.c.kmx_lines("list")
        self.assertEqual(len(listed), len(facts))
        self.assertFalse(any(x.get("item") == "after the backup" for x in listed))

    def test_check_refuses_missing_store(self):
        r = storage_cmd(self.c, "check", "--data-dir", os.path.join(self.c.dir, "nothing"))
        self.assertEqual(r.returncode, 1)


if __name__ == "__main__":
    kmxtest.main()
