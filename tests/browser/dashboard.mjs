// Drives the kmx dashboard in headless Debian Chromium with playwright-core: the page loads
// with the sample data, the top-markets chart holds JP's 89.8 USD million for 2024 and its
// share of the world total, and a record imported through the API reaches the live feed
// and the chart within 2 s without a reload. Keeps a screenshot.
//   node dashboard.mjs BASE_URL SCREENSHOT NODE_MODULES
// Prints one JSON line of measurements; exits nonzero on any failed check.
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [base, screenshot, modules] = process.argv.slice(2);
const require = createRequire(join(modules, "noop.js"));
const { chromium } = require("playwright-core");

function check(ok, what) {
  if (!ok) throw new Error("check failed: " + what);
}

const topBars = () => {
  const c = echarts.getInstanceByDom(document.getElementById("chart-top"));
  const o = c.getOption();
  return { markets: o.yAxis[0].data, values: o.series[0].data, data: window.kmxDashboard.data.top };
};

const profile = mkdtempSync(join(tmpdir(), "kmx-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  viewport: { width: 1280, height: 1500 },
});
let failed = null;
const out = {};
try {
  const page = await context.newPage();
  const offsite = [];
  page.on("request", (r) => { if (!r.url().startsWith(base)) offsite.push(r.url()); });
  const consoleErrors = [];
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
  await page.goto(base + "/");
  await page.waitForSelector("body[data-ready='1']", { timeout: 20000 });
  const errors = await page.evaluate(() => window.kmxDashboard.errors);
  check(errors.length === 0, "dashboard errors: " + JSON.stringify(errors));
  check(offsite.length === 0, "requests beyond the gateway: " + offsite.join(", "));
  out.first_chart_ms = await page.evaluate(() => window.kmxDashboard.firstChartMs);

  // Top markets of 2024 (customs album exports): JP 89.8 USD million, 30.77% of 291.8.
  const top = await page.evaluate(topBars);
  const jp = top.markets.indexOf("JP");
  check(jp >= 0, "JP among the top markets: " + JSON.stringify(top.markets));
  check(top.values[jp] === 89.8, "JP's bar is 89.8 USD million, not " + top.values[jp]);
  check(top.data.period === "2024" && top.data.world === "291800000", "2024 and its world total");
  const jpRow = top.data.rows.find((r) => r.market === "JP");
  check(jpRow.sum === "89800000" && jpRow.share === 30.77, "JP's share: " + JSON.stringify(jpRow));
  check(!top.markets.includes("WORLD"), "the world total is not ranked among its parts");
  // The share is the services' share of the stored total (share_base "total"), passed
  // through, not one the page worked out.
  check(top.data.shares === "services", "shares from the services: " + top.data.shares);
  out.jp_2024_usd_million = top.values[jp];
  out.jp_2024_share_pct = jpRow.share;

  // The other charts have data.
  const counts = await page.evaluate(() => {
    const n = (id) => echarts.getInstanceByDom(document.getElementById(id))
      .getOption().series.reduce((a, s) => a + s.data.filter((v) => v !== null).length, 0);
    return { trend: n("chart-trend"), customs: n("chart-customs"), survey: n("chart-survey"),
             mix: n("chart-mix") };
  });
  check(Object.values(counts).every((v) => v > 0), "every chart has data: " + JSON.stringify(counts));
  await page.waitForFunction(() => (window.kmxDashboard.data.revisions || {}).history &&
    window.kmxDashboard.data.revisions.history.length >= 1, null, { timeout: 10000 });

  // A record imported through the API: in the feed and in the chart within 2 s.
  const item = "album exports to Thailand (browser test)";
  const body = "kind,period,market,category,item,value,unit,source\n" +
    `export,2024,TH,physical_album_customs,${item},95,USD_million,kmx browser test\n`;
  const t0 = Date.now();
  const resp = await fetch(base + "/v1/import", { method: "POST", body,
    headers: { "Content-Type": "text/csv" } });
  check(resp.ok, "import answered " + resp.status);
  const summary = await resp.json();
  check(summary.stored === 1, "import stored one record: " + JSON.stringify(summary));
  await page.waitForFunction((text) => document.getElementById("feed").textContent.includes(text),
    item, { timeout: 2000 });
  out.feed_ms = Date.now() - t0;
  await page.waitForFunction(() => {
    const c = echarts.getInstanceByDom(document.getElementById("chart-top")).getOption();
    const i = c.yAxis[0].data.indexOf("TH");
    return i >= 0 && c.series[0].data[i] === 95;
  }, null, { timeout: Math.max(1, 2000 - (Date.now() - t0)) });
  out.chart_ms = Date.now() - t0;
  const after = await page.evaluate(topBars);
  check(after.markets[0] === "TH", "TH (95) now leads: " + JSON.stringify(after.markets));
  check(consoleErrors.length === 0, "console errors: " + consoleErrors.join("; "));
  await page.screenshot({ path: screenshot, fullPage: true });
  out.screenshot = screenshot;
} catch (err) {
  failed = err;
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
console.log(JSON.stringify(out));
if (failed) {
  console.error(failed.stack || String(failed));
  process.exit(1);
}
