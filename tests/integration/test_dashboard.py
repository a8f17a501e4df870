"""The dashboard in a real browser: headless Debian Chromium driven by playwright-core
(tests/browser/dashboard.mjs) against kmx-gateway serving the built page, with the sample
data imported. Leaves a screenshot in the build tree (artifacts/dashboard.png)."""
import json
import os
import subprocess
import unittest

import kmxtest
from kmxtest import Cluster
from test_gateway import Gateway


class Dashboard(unittest.TestCase):
    def setUp(self):
        build = os.path.dirname(os.path.abspath(kmxtest.BIN))
        self.web = os.path.join(build, "dashboard")
        self.modules = os.path.join(build, "web-npm", "node_modules")
        self.artifacts = os.path.join(build, "artifacts")
        for path in (os.path.join(self.web, "index.html"),
                     os.path.join(self.modules, "playwright-core"), "/usr/bin/chromium"):
            self.assertTrue(os.path.exists(path), path + " is missing (scripts/setup.sh and "
                            "the build provide it)")
        os.makedirs(self.artifacts, exist_ok=True)
        self.c = Cluster().start()
        self.c.kmx("import", kmxtest.SAMPLE)
        self.g = Gateway(self.c, env={"KMX_GATEWAY_WEB": self.web}).start()

    def tearDown(self):
        self.c.close()

    def test_dashboard_in_chromium(self):
        status, headers, body = self.g.request("GET", "/")
        self.assertEqual(status, 200)
        self.assertIn(b"echarts.common.min.js", body)
        self.assertEqual(self.g.request("GET", "/app.js")[0], 200)
        for bad in ("/missing.js", "/../../etc/passwd", "/%2e%2e/etc/passwd"):
            status, headers, body = self.g.request("GET", bad)
            self.assertEqual(status, 404, bad)
            self.assertEqual(json.loads(body)["error"]["status"], 404, bad)
        shot = os.path.join(self.artifacts, "dashboard.png")
        if os.path.exists(shot):
            os.remove(shot)
        script = os.path.join(kmxtest.SOURCE_DIR, "tests", "browser", "dashboard.mjs")
        r = subprocess.run(["node", script, "http://127.0.0.1:%d" % self.g.port, shot,
                            self.modules], capture_output=True, text=True, timeout=120)
        print(r.stdout.strip(), flush=True)
        self.assertEqual(r.returncode, 0, r.stderr[-3000:] + self.c.logs())
        out = json.loads(r.stdout.strip().splitlines()[-1])
        self.assertEqual(out["jp_2024_usd_million"], 89.8)
        self.assertEqual(out["jp_2024_share_pct"], 30.77)
        self.assertTrue(os.path.getsize(shot) > 10000, shot)
        print("first chart drawn %s ms after navigation start; a record imported through "
              "the API reached the feed in %s ms and the chart in %s ms"
              % (out["first_chart_ms"], out["feed_ms"], out["chart_ms"]), flush=True)


if __name__ == "__main__":
    kmxtest.main()
