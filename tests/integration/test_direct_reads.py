"""kmx-query --read-dir (KMX_READ_DIR): a query worker on storage's host and volume reads
storage's LMDB environment itself, one hop fewer (docs/architecture.md).

- A read after an acknowledged write sees it, every time, on the direct path.
- The map storage grows (it starts at 64 KiB here) is adopted by the reading process:
  every record of an import that grew it many times is listed and summed right.
- The reads really are direct: with storage killed, gets, lists and queries are still
  answered from the environment; once storage is back, writes flow again and are seen.
- A directory without a store (absent, or an LMDB environment that is no kmx store) is
  not read: the worker says so in its log and answers every read through storage.
- Readers can leave the cores to the writer: kmx-query --nice (KMX_NICE) runs the whole
  worker nicer, kmx-storage --reader-nice (KMX_STORAGE_READER_NICE) its reader threads
  (named kmx-reader) and the alternatives index's builder (kmx-alt, which serves
  queries) only, the router and the writer (kmx-writer) staying at the service's own
  priority; unless told otherwise neither runs nicer.
"""
import os
import signal
import subprocess
import unittest

import kmxtest
from kmxtest import Cluster, query_sums_by_market, sample_facts, sample_rows, sums_by_market

KEY = ["--kind", "export", "--market", "JP", "--category", "physical_album_customs",
       "--item", "direct read check", "--source", "kmx test"]


def nice_values(pid):
    """{thread id: nice value} of a process, from /proc (field 19 of each task's stat)."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        out[int(tid)] = int(fields[16])
    return out


def thread_names(pid):
    """{thread id: name} of a process, from /proc."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
            out[int(tid)] = f.read().strip()
    return out


def read_log(cluster, name):
    with open(os.path.join(cluster.dir, name + ".log"), errors="replace") as f:
        return f.read()


class DirectReads(unittest.TestCase):
    def setUp(self):
        self.c = Cluster()
        self.c.proc_env["kmx-storage"] = {"KMX_MAP_SIZE": "65536",
                                          "KMX_STORAGE_READER_NICE": "4"}
        self.c.proc_env["kmx-query"] = {"KMX_READ_DIR": self.c.data_dir, "KMX_NICE": "3"}
        self.c.start()

    def tearDown(self):
        self.c.close()

    def restart_query(self, read_dir, nice="3"):
        self.c.stop("query0")
        self.c.proc_env["kmx-query"] = {"KMX_READ_DIR": read_dir}
        if nice is not None:
            self.c.proc_env["kmx-query"]["KMX_NICE"] = nice
        self.c.spawn("query0", "kmx-query")
        self.c.wait_ready()

    def test_direct_reads(self):
        # Read-your-writes: each acknowledged put is seen by the very next get.
        for i in range(15):
            self.c.kmx("put", *KEY, "--period", "2024-%02d" % (i % 12 + 1),
                       "--value", str(1000 + i), "--unit", "USD")
            rec = self.c.kmx_json("get", *KEY, "--period", "2024-%02d" % (i % 12 + 1))
            self.assertEqual(rec["value"], str(1000 + i), rec)
        self.assertIn("direct reads from dir=", read_log(self.c, "query0"))

        # The map grows from 64 KiB under the open reader; everything is read back.
        summary = self.c.kmx_json("import", kmxtest.SAMPLE)
        self.assertEqual(summary["rejected"], 0, summary)
        listed = self.c.kmx_lines("list")
        self.assertEqual(len(listed), len(sample_facts()) + 12)
        sums = query_sums_by_market(self.c.kmx_json("query", "consumption", "--by", "market",
                                                     "--granularity", "any"), "consumption")
        self.assertEqual(sums, sums_by_market(sample_rows(), "consumption"))
        self.assertIn("lmdb map grown by another process adopted", read_log(self.c, "query0"))

        # Storage down: the worker still answers reads from the environment.
        self.c.stop("storage", sig=signal.SIGKILL)
        rec = self.c.kmx_json("get", *KEY, "--period", "2024-03")
        self.assertEqual(rec["value"], "1014", rec)
        self.assertEqual(len(self.c.kmx_lines("list")), len(listed))
        self.assertEqual(self.c.kmx("put", *KEY, "--period", "2024-03", "--value", "1",
                                    "--unit", "USD", check=False).returncode, 2)

        # Storage back (it clears the reader slots of dead processes at open): writes are
        # acknowledged and seen directly again.
        self.c.spawn("storage", "kmx-storage")
        kmxtest.wait_for(lambda: self.c.kmx("put", *KEY, "--period", "2024-03", "--value",
                                            "2024", "--unit", "USD",
                                            check=False).returncode == 0,
                         deadline=20, what="storage back")
        rec = self.c.kmx_json("get", *KEY, "--period", "2024-03")
        self.assertEqual(rec["value"], "2024", rec)

    def test_readers_run_nicer_than_the_writer(self):
        base = os.getpriority(os.PRIO_PROCESS, 0)
        query = nice_values(self.c.procs["query0"].pid)
        self.assertEqual(set(query.values()), {min(base + 3, 19)}, query)
        main = self.c.procs["storage"].pid
        # Four reader threads (the default) and the alternatives builder at +4, each once
        # it has started; the router, the writer and ZeroMQ's threads at the service's own.
        storage = kmxtest.wait_for(
            lambda: (lambda n: n if list(n.values()).count(min(base + 4, 19)) == 5 else None)(
                nice_values(main)), what="four reader threads and the builder at +4")
        self.assertEqual(storage[main], base, storage)
        self.assertEqual(len([v for v in storage.values() if v == base]), len(storage) - 5,
                         storage)
        names = thread_names(main)
        self.assertEqual(sorted(t for t, n in names.items() if n in ("kmx-reader", "kmx-alt")),
                         sorted(t for t, v in storage.items() if v != base), names)
        self.assertEqual([storage[t] for t, n in names.items() if n == "kmx-writer"], [base],
                         names)

        # The defaults: every thread at the service's own priority.
        self.c.stop("storage")
        self.c.proc_env["kmx-storage"] = {}
        self.c.spawn("storage", "kmx-storage")
        self.restart_query(self.c.data_dir, nice=None)
        self.assertEqual(set(nice_values(self.c.procs["query0"].pid).values()), {base})
        main = self.c.procs["storage"].pid
        kmxtest.wait_for(lambda: sorted(nice_values(main)[t] for t, n in thread_names(main).items()
                                        if n in ("kmx-reader", "kmx-writer", "kmx-alt")) ==
                         [base] * 6,
                         what="the writer, the builder and four reader threads at the service's "
                              "priority")

    def test_no_store_in_the_directory_reads_through_storage(self):
        self.c.kmx("put", *KEY, "--period", "2024-01", "--value", "7", "--unit", "USD")
        # An LMDB environment that holds no kmx store: refused, reads go to storage.
        other = os.path.join(self.c.dir, "other")
        os.mkdir(other)
        subprocess.run(["mdb_load", "-s", "x", other],
                       input=b"VERSION=3\nformat=bytevalue\ntype=btree\nHEADER=END\n"
                             b" 6b\n 76\nDATA=END\n", check=True, timeout=30)
        for read_dir in (os.path.join(self.c.dir, "absent"), other):
            self.restart_query(read_dir)
            rec = self.c.kmx_json("get", *KEY, "--period", "2024-01")
            self.assertEqual(rec["value"], "7", rec)
            log = read_log(self.c, "query0")
            self.assertIn("direct reads unavailable, reads go to storage's socket dir=%s"
                          % read_dir, log)
            self.assertNotIn("direct reads from dir=%s" % read_dir, log)


if __name__ == "__main__":
    kmxtest.main()
