"""`cmake --install` and the examples: installs the build into a temporary prefix, runs the
services from it, builds examples/c against the installed tree with `pkg-config --cflags
--libs kmx` and runs every example (C, Python, shell) against those services, comparing
what each prints with the CLI's answer.

    test_install.py --bindir=BUILD/bin   (the build directory is BUILD)
"""
import csv
import io
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import kmxtest
from kmxtest import Cluster, wait_for

PREFIX = None


def run(args, env=None, check=True, **kw):
    r = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120, **kw)
    if check and r.returncode != 0:
        raise AssertionError("%s exited %d\nstdout: %s\nstderr: %s" % (
            " ".join(args), r.returncode, r.stdout[-3000:], r.stderr[-3000:]))
    return r


def libdir():
    for d in ("lib", "lib64") + tuple(os.path.join("lib", x) for x in
                                       os.listdir(os.path.join(PREFIX, "lib"))):
        if os.path.exists(os.path.join(PREFIX, d, "pkgconfig", "kmx.pc")):
            return os.path.join(PREFIX, d)
    raise AssertionError("kmx.pc is not installed under %s" % PREFIX)


class Install(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.lib = libdir()
        cls.docs = os.path.join(PREFIX, "share", "doc", "kmx")
        kmxtest.BIN = os.path.join(PREFIX, "bin")  # the services as installed
        cls.c = Cluster().start()
        cls.c.kmx("import", os.path.join(PREFIX, "share", "kmx", "kmusic-facts.csv"))
        cls.env = dict(cls.c.env, PATH=kmxtest.BIN + os.pathsep + os.environ["PATH"],
                       PYTHONPATH=os.path.join(PREFIX, "lib", "python3", "dist-packages"),
                       LD_LIBRARY_PATH=cls.lib,
                       PKG_CONFIG_PATH=os.path.join(cls.lib, "pkgconfig"))
        cls.work = tempfile.mkdtemp(prefix="kmx-examples-")

    @classmethod
    def tearDownClass(cls):
        cls.c.close()
        shutil.rmtree(cls.work, ignore_errors=True)

    def test_installed_tree(self):
        for path in ("bin/kmx", "bin/kmx-broker", "bin/kmx-storage", "bin/kmx-ingest",
                     "bin/kmx-query", "bin/kmx-gateway", "include/kmx/kmx_client.h", "include/kmx/kmx_err.h",
                     "include/kmx/kmx.pb-c.h", "share/kmx/kmx.proto",
                     "share/doc/kmx/README.md", "share/doc/kmx/docs/clients.md",
                     "share/doc/kmx/docs/protocol.md", "lib/python3/dist-packages/kmx/kmx_pb2.py"):
            self.assertTrue(os.path.exists(os.path.join(PREFIX, path)), path)
        version = run([os.path.join(kmxtest.BIN, "kmx"), "--version"]).stdout.split()[1]
        so = os.path.join(self.lib, "libkmx.so." + version)
        self.assertTrue(os.path.isfile(so), so)
        major = version.split(".")[0]
        self.assertEqual(os.readlink(os.path.join(self.lib, "libkmx.so." + major)),
                         os.path.basename(so))
        dyn = run(["objdump", "-p", so]).stdout
        self.assertIn("SONAME               libkmx.so.%s" % major, dyn)
        pc = run(["pkg-config", "--modversion", "kmx"], env=self.env).stdout.strip()
        self.assertEqual(pc, version)
        # Every header kmx_client.h needs is installed: it compiles on its own, strictly.
        src = os.path.join(self.work, "only_header.c")
        with open(src, "w") as f:
            f.write("#include <kmx_client.h>\nint main(void) { return KMX_ERR_NOT_FOUND == -2 "
                    "&& kmx_strerror(KMX_ERR_TIMEOUT)[0] ? 0 : 1; }\n")
        flags = run(["pkg-config", "--cflags", "--libs", "kmx"], env=self.env).stdout.split()
        run(["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", src, *flags, "-o",
             os.path.join(self.work, "only_header")], env=self.env)
        run([os.path.join(self.work, "only_header")], env=self.env)
        for script in ("python/query_csv.py", "python/watch_changes.py", "python/chart.py",
                       "shell/exports_report.sh"):
            self.assertTrue(os.access(os.path.join(self.docs, "examples", script), os.X_OK),
                            script)
        # The installed proto is the one the services speak.
        with open(os.path.join(PREFIX, "share", "kmx", "kmx.proto")) as a, \
                open(os.path.join(kmxtest.SOURCE_DIR, "proto", "kmx.proto")) as b:
            self.assertEqual(a.read(), b.read())

    def test_c_example(self):
        src = os.path.join(self.work, "c")
        shutil.copytree(os.path.join(self.docs, "examples", "c"), src)
        run(["make", "-C", src], env=self.env)
        out = run([os.path.join(src, "kmx_example"), self.c.env["KMX_BROKER"], "2024"],
                  env=self.env).stdout.splitlines()
        self.assertTrue(out[0].startswith("pong from query-"), out)
        self.assertEqual(out[-1], "get: not found (no such record)")
        rows = [line.split("\t") for line in out[1:-2]]
        cli = self.c.kmx_json("query", "exports", "--period", "2024", "--by", "market")
        self.assertEqual(rows, [[r["market"], r["category"], r["unit"],
                                 r["sum"] if r.get("sum") is not None else r["avg"]]
                                for r in cli["rows"]])
        self.assertEqual(out[-2], "%d rows, %d records" % (len(cli["rows"]), cli["matched"]))

    def python(self, name, *args, **kw):
        return run([sys.executable, os.path.join(self.docs, "examples", "python", name), *args],
                   env=self.env, cwd=self.work, **kw)

    def test_python_query_to_csv(self):
        out = self.python("query_csv.py", "--period", "2024", "--by", "market").stdout
        cli = self.c.kmx("query", "exports", "--period", "2024", "--by", "market", "--format",
                         "csv").stdout
        self.assertEqual(list(csv.reader(io.StringIO(out))), list(csv.reader(io.StringIO(cli))))
        bad = self.python("query_csv.py", "--market", "Atlantis", check=False)
        self.assertEqual(bad.returncode, 1)
        self.assertIn("Atlantis", bad.stderr)

    def test_python_watch_prints_history_then_live_changes(self):
        out = self.python("watch_changes.py", "--since", "0", "--count", "3").stdout
        cli = self.c.kmx_lines("watch", "--since", "0", "--count", "3")
        self.assertEqual([line.split()[:3] for line in out.splitlines()],
                         [[str(e["seq"]), e["type"], e["topic"]] for e in cli])
        proc = subprocess.Popen([sys.executable, os.path.join(self.docs, "examples", "python",
                                                              "watch_changes.py"),
                                 "export.NZ.", "--count", "1"], env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            # Started, then a change: it arrives live.
            wait_for(lambda: self.c.kmx("stats", "--format", "json").returncode == 0,
                     what="stats")
            for _ in range(50):
                self.c.kmx("put", "--kind", "export", "--period", "2031", "--market", "NZ",
                           "--category", "physical_album_customs", "--item", "live",
                           "--value", str(1 + _), "--unit", "USD", "--source", "example")
                try:
                    line, _err = proc.communicate(timeout=0.5)
                    break
                except subprocess.TimeoutExpired:
                    continue
            else:
                raise AssertionError("watch_changes.py printed nothing")
        finally:
            proc.kill()
            proc.wait()
        fields = line.split()
        self.assertEqual(fields[1:3], ["upsert", "export.NZ.2031.physical_album_customs"])

    def test_python_chart_png(self):
        png = os.path.join(self.work, "exports.png")
        out = self.python("chart.py", "--out", png, "--top", "3").stdout
        self.assertRegex(out, r"exports\.png: 3 markets, \d+ points")
        with open(png, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
        self.assertGreater(os.path.getsize(png), 5000)

    def test_shell_example(self):
        script = os.path.join(self.docs, "examples", "shell", "exports_report.sh")
        sample = os.path.join(PREFIX, "share", "kmx", "kmusic-facts.csv")
        out = run(["sh", script, sample, "2024"], env=self.env).stdout
        top = self.c.kmx("query", "exports", "--category", "physical_album_customs", "--unit",
                         "USD", "--period", "2024", "--by", "market", "--top", "3", "--share",
                         "--growth", "yoy").stdout
        self.assertIn(top, out)
        totals = self.c.kmx_json("query", "exports", "--period", "2024", "--by", "category",
                                 "--unit", "USD")["rows"]
        for r in totals:
            self.assertRegex(out, r"%s +%s +%s\n" % (r["category"], r["level"], r["sum"]))
        # A broker that is not there: the CLI's exit 2 goes through.
        gone = run(["sh", script, sample], env=dict(self.env, KMX_BROKER="tcp://127.0.0.1:1",
                                                    KMX_TIMEOUT="300", KMX_RETRIES="1"),
                   check=False)
        self.assertEqual(gone.returncode, 2)


def main():
    global PREFIX
    build = None
    for a in list(sys.argv[1:]):
        if a.startswith("--builddir="):
            build = a.split("=", 1)[1]
            sys.argv.remove(a)
    if not build:
        sys.exit("usage: %s --builddir=BUILD [unittest args]" % sys.argv[0])
    PREFIX = tempfile.mkdtemp(prefix="kmx-prefix-")
    try:
        run(["cmake", "--install", build, "--prefix", PREFIX])
        sys.argv.insert(1, "--bindir=" + os.path.join(PREFIX, "bin"))
        kmxtest.main()
    finally:
        shutil.rmtree(PREFIX, ignore_errors=True)


if __name__ == "__main__":
    main()
