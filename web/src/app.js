// The kmx dashboard: every number comes from kmx-gateway's /v1 API as the services answer
// it (exact decimal strings in the base unit); the page only scales them for display
// (USD -> USD million) and never adds different statistics together. A live event stream
// (Server-Sent Events, resumed by the browser with Last-Event-ID) feeds the list of changes
// and redraws the charts without a reload.
"use strict";

const kmx = { firstChartMs: null, charts: {}, data: {}, feed: [], redraws: 0, errors: [] };
window.kmxDashboard = kmx;

const token = new URLSearchParams(location.hash.slice(1)).get("token");

async function api(path) {
  const resp = await fetch(path, { headers: token ? { Authorization: "Bearer " + token } : {} });
  const doc = await resp.json();
  if (!resp.ok) throw new Error(doc.error ? doc.error.message : resp.statusText);
  return doc;
}

function query(kind, params) {
  return api(`/v1/query/${kind}?` + new URLSearchParams(params));
}

// Display scale of a base unit: amounts stay exact strings until drawn.
const SCALES = {
  USD: [1e6, "USD million"],
  KRW: [1e9, "KRW billion"],
  copies: [1e6, "million copies"],
  users: [1e6, "million users"],
};
function scaleOf(unit) {
  return SCALES[unit] || [1, unit];
}
function shown(amount, unit) {
  if (amount === null || amount === undefined) return null;
  const [div] = scaleOf(unit);
  return Math.round((Number(amount) / div) * 1e4) / 1e4;
}

function chart(id) {
  if (!kmx.charts[id]) {
    const c = echarts.init(document.getElementById(id), null, { renderer: "canvas" });
    kmx.charts[id] = c;
    window.addEventListener("resize", () => c.resize());
  }
  return kmx.charts[id];
}

// Draws option into chart id, replacing what was there. No entry animation: a redraw after
// a live change shows at once. ECharts renders synchronously here, so the first call
// that returns marks the first chart drawn.
function drawChart(id, option) {
  chart(id).setOption({ animation: false, ...option }, true);
  if (kmx.firstChartMs === null) kmx.firstChartMs = Math.round(performance.now());
}

function setNote(id, text) {
  document.getElementById(id).textContent = text;
}

function fail(where, err) {
  kmx.errors.push(`${where}: ${err.message}`);
  setNote(where, `Could not load: ${err.message}`);
}

function fillSelect(id, values, keep) {
  const sel = document.getElementById(id);
  const old = keep ? sel.value : null;
  sel.innerHTML = "";
  for (const v of values) {
    const o = document.createElement("option");
    o.value = o.textContent = v;
    sel.appendChild(o);
  }
  if (old && values.includes(old)) sel.value = old;
  return sel;
}

const isCountry = (m) => m !== "WORLD" && !m.includes("+") && /^[A-Z]{2}$/.test(m);

// ---- exports by market over time --------------------------------------------------------

async function drawTrend() {
  const category = document.getElementById("trend-category").value || "physical_album_customs";
  const unit = document.getElementById("trend-unit").value || "USD";
  const granularity = document.getElementById("trend-granularity").value;
  try {
    const doc = await query("exports", { category, unit, granularity, by: "period,market" });
    const periods = [...new Set(doc.rows.map((r) => r.period))].sort();
    const markets = [...new Set(doc.rows.map((r) => r.market))].sort();
    const [, label] = scaleOf(unit);
    const series = markets.map((m) => ({
      name: m,
      type: "line",
      connectNulls: false,
      lineStyle: m === "WORLD" ? { type: "dashed" } : undefined,
      data: periods.map((p) => {
        const row = doc.rows.find((r) => r.period === p && r.market === m);
        return row ? shown(row.sum, unit) : null;
      }),
    }));
    kmx.data.trend = { category, unit, granularity, periods, rows: doc.rows };
    drawChart("chart-trend", {
      tooltip: { trigger: "axis" },
      legend: { type: "scroll", top: 0 },
      grid: { left: 60, right: 20, top: 40, bottom: 30 },
      xAxis: { type: "category", data: periods },
      yAxis: { type: "value", name: label },
      series,
    });
    setNote("trend-note", `${category}, ${label}, by ${granularity}: ${doc.matched} records. ` +
      "WORLD (dashed) is the stored world total, not the sum of the lines.");
  } catch (err) {
    fail("trend-note", err);
  }
}

// ---- the two official statistics, side by side --------------------------------------------

async function drawPair() {
  const pairs = [
    ["chart-customs", "physical_album_customs", "Customs: physical album exports"],
    ["chart-survey", "music_industry_survey", "Survey: music industry exports"],
  ];
  kmx.data.pair = {};
  await Promise.all(pairs.map(async ([id, category, title]) => {
    try {
      const doc = await query("exports", { category, unit: "USD", market: "WORLD",
        granularity: "year", by: "year" });
      kmx.data.pair[category] = doc.rows;
      drawChart(id, {
        title: { text: title, textStyle: { fontSize: 13 } },
        tooltip: { trigger: "axis" },
        grid: { left: 60, right: 10, top: 40, bottom: 30 },
        xAxis: { type: "category", data: doc.rows.map((r) => r.year) },
        yAxis: { type: "value", name: "USD million" },
        series: [{ name: category, type: "bar", data: doc.rows.map((r) => shown(r.sum, "USD")) }],
      });
    } catch (err) {
      kmx.errors.push(`${category}: ${err.message}`);
    }
  }));
}

// ---- top markets of a period ---------------------------------------------------------------

async function drawTop() {
  const period = document.getElementById("top-period").value || "2024";
  const category = document.getElementById("top-category").value || "physical_album_customs";
  try {
    const doc = await query("exports", { period, category, unit: "USD", by: "market", share: "" });
    // The services mark each market's level and the base of its share (share_base): use
    // their share of the stored total when they say what it is; otherwise divide by the
    // stored WORLD row here.
    const world = doc.rows.find((r) => r.market === "WORLD");
    const fromServer = doc.rows.some((r) => r.share_base !== undefined);
    const isPart = (r) => (r.level !== undefined ? r.level === "country" : isCountry(r.market));
    // A total is never ranked among its parts: WORLD is the denominator, not a bar.
    const rows = doc.rows.filter(isPart)
      .sort((a, b) => Number(b.sum) - Number(a.sum)).slice(0, 10)
      .map((r) => ({
        market: r.market,
        sum: r.sum,
        value: shown(r.sum, "USD"),
        share: fromServer
          ? (r.share_base === "total" && r.share_pct !== null ? Number(r.share_pct) : null)
          : world ? Math.round((Number(r.sum) / Number(world.sum)) * 1e4) / 100 : null,
      }));
    kmx.data.top = { period, category, unit: "USD million", world: world ? world.sum : null, rows,
      shares: fromServer ? "services" : "page" };
    drawChart("chart-top", {
      tooltip: {
        trigger: "axis",
        formatter: (ps) => ps.map((p) => {
          const r = rows[p.dataIndex];
          return `${r.market}: ${r.value} USD million` +
            (r.share === null ? "" : ` (${r.share}% of the world total)`);
        }).join("<br>"),
      },
      grid: { left: 50, right: 60, top: 20, bottom: 30 },
      xAxis: { type: "value", name: "USD million" },
      yAxis: { type: "category", inverse: true, data: rows.map((r) => r.market) },
      series: [{
        name: "exports",
        type: "bar",
        data: rows.map((r) => r.value),
        label: {
          show: true,
          position: "right",
          formatter: (p) => (rows[p.dataIndex].share === null ? "" : `${rows[p.dataIndex].share}%`),
        },
      }],
    });
    setNote("top-note", world
      ? `${period}, ${category}: shares of the stored world total, ` +
        `${shown(world.sum, "USD")} USD million (the markets shown need not add up to it).`
      : `${period}, ${category}: no world total is stored for this period, so no shares.`);
  } catch (err) {
    fail("top-note", err);
  }
}

// ---- consumption breakdowns --------------------------------------------------------------

async function drawMix() {
  const dimension = document.getElementById("mix-dimension").value;
  try {
    const doc = await query("consumption", { dimension, by: "period,item" });
    const periods = [...new Set(doc.rows.map((r) => r.period))].sort();
    const sel = document.getElementById("mix-period");
    const keep = sel.dataset.dimension === dimension && periods.includes(sel.value);
    const chosen = keep ? sel.value : periods[periods.length - 1];
    fillSelect("mix-period", periods, false).value = chosen;
    sel.dataset.dimension = dimension;
    const rows = doc.rows.filter((r) => r.period === sel.value);
    const unit = rows.length ? rows[0].unit : "";
    const multi = unit.includes("multi");
    kmx.data.mix = { dimension, period: sel.value, unit, rows };
    drawChart("chart-mix", {
      tooltip: { trigger: "axis" },
      grid: { left: 170, right: 40, top: 20, bottom: 30 },
      xAxis: { type: "value", name: "%", max: 100 },
      yAxis: { type: "category", inverse: true, data: rows.map((r) => r.item),
        axisLabel: { width: 160, overflow: "truncate" } },
      series: [{ name: dimension, type: "bar", data: rows.map((r) => Number(r.sum)),
        label: { show: true, position: "right" } }],
    });
    setNote("mix-note", `${dimension}, ${sel.value}, ${unit}` + (multi
      ? ": several answers were allowed, so the bars do not add up to 100%."
      : ": shares of respondents; answers from different questions are not parts of one whole."));
  } catch (err) {
    fail("mix-note", err);
  }
}

// ---- a figure's revision history -----------------------------------------------------------

function figureKey(rec) {
  return [rec.kind, rec.period, rec.market, rec.category, rec.item, rec.source].join("|");
}

async function loadFigures() {
  try {
    const doc = await api("/v1/records?limit=1000&kind=export");
    const revised = doc.records.filter((r) => r.status === "revised" || r.status === "final");
    const figures = (revised.length ? revised : doc.records).slice(0, 50);
    kmx.data.figures = figures;
    const sel = document.getElementById("rev-figure");
    sel.innerHTML = "";
    figures.forEach((r, i) => {
      const o = document.createElement("option");
      o.value = String(i);
      o.textContent = `${r.period} ${r.market} ${r.category} — ${r.item}`;
      sel.appendChild(o);
    });
    await drawRevisions();
  } catch (err) {
    fail("rev-note", err);
  }
}

// The figure's changes come from the event log (/v1/history: kmx history's events).
async function drawRevisions() {
  const fig = (kmx.data.figures || [])[Number(document.getElementById("rev-figure").value)];
  if (!fig) return;
  const key = { kind: fig.kind, period: fig.period, market: fig.market,
    category: fig.category, item: fig.item, source: fig.source };
  if (fig.company) key.company = fig.company;
  if (fig.artist) key.artist = fig.artist;
  try {
    const doc = await api("/v1/history?" + new URLSearchParams(key));
    const history = doc.events.map((ev) => ({ seq: ev.seq, type: ev.type,
      value: ev.record ? ev.record.value : null, status: ev.record ? ev.record.status : null }));
    kmx.data.revisions = { figure: figureKey(fig), history };
    const unit = fig.unit;
    drawChart("chart-revisions", {
      tooltip: { trigger: "axis" },
      grid: { left: 60, right: 20, top: 20, bottom: 40 },
      xAxis: { type: "category", data: history.map((h) => `#${h.seq} ${h.status || ""}`) },
      yAxis: { type: "value", name: scaleOf(unit)[1], scale: true },
      series: [{ type: "line", step: "end", data: history.map((h) => shown(h.value, unit)) }],
    });
    setNote("rev-note", history.map((h) =>
      `seq ${h.seq}: ${h.type === "delete" ? "deleted" : shown(h.value, unit)} ` +
      `${h.status || ""}`).join(" → "));
  } catch (err) {
    fail("rev-note", err);
  }
}

// ---- live feed ----------------------------------------------------------------------------

let redrawTimer = null;
function redrawSoon() {
  clearTimeout(redrawTimer);
  redrawTimer = setTimeout(async () => {
    await Promise.all([drawTrend(), drawPair(), drawTop(), drawMix(), drawRevisions()]);
    kmx.redraws++;
  }, 100);
}

function feedItem(ev) {
  const li = document.createElement("li");
  li.className = "fresh";
  const rec = ev.record || {};
  const value = rec.value !== undefined && rec.value !== null
    ? `${shown(rec.value, rec.unit)} ${scaleOf(rec.unit)[1]}` : "";
  li.innerHTML = `<span class="seq"></span><b></b> <span class="what"></span>`;
  li.querySelector(".seq").textContent = `#${ev.seq} ${ev.type}`;
  li.querySelector("b").textContent = ev.topic;
  li.querySelector(".what").textContent = `${rec.item || ""} ${value}`;
  setTimeout(() => li.classList.remove("fresh"), 3000);
  return li;
}

function connectFeed() {
  const params = new URLSearchParams();
  if (token) params.set("access_token", token);
  const status = document.getElementById("status");
  const source = new EventSource("/v1/events?" + params);
  source.onopen = () => {
    status.textContent = "live";
    status.className = "status live";
  };
  source.onerror = () => {
    status.textContent = "reconnecting… (resumes from the last event seen)";
    status.className = "status";
  };
  source.onmessage = (m) => {
    const ev = JSON.parse(m.data);
    kmx.feed.unshift(ev);
    kmx.feed.length = Math.min(kmx.feed.length, 50);
    const list = document.getElementById("feed");
    list.insertBefore(feedItem(ev), list.firstChild);
    while (list.children.length > 50) list.removeChild(list.lastChild);
    status.textContent = `live, last change #${ev.seq}`;
    redrawSoon();
  };
}

// ---- start --------------------------------------------------------------------------------

async function loadChoices() {
  const doc = await query("exports", { by: "category,unit", granularity: "any" });
  const categories = [...new Set(doc.rows.map((r) => r.category))].sort();
  const units = [...new Set(doc.rows.map((r) => r.unit))].sort();
  fillSelect("trend-category", categories, false).value = "physical_album_customs";
  fillSelect("trend-unit", units, false).value = "USD";
  fillSelect("top-category", categories.filter((c) =>
    doc.rows.some((r) => r.category === c && r.unit === "USD")), false)
    .value = "physical_album_customs";
  const years = await query("exports", { category: "physical_album_customs", unit: "USD",
    granularity: "year", by: "year" });
  // One row per year and market level (WORLD and the countries are never added up).
  const list = [...new Set(years.rows.map((r) => r.year))].sort().reverse();
  fillSelect("top-period", list, false).value = list.includes("2024") ? "2024" : list[0];
}

function wire() {
  for (const id of ["trend-category", "trend-unit", "trend-granularity"])
    document.getElementById(id).addEventListener("change", drawTrend);
  for (const id of ["top-period", "top-category"])
    document.getElementById(id).addEventListener("change", drawTop);
  document.getElementById("mix-dimension").addEventListener("change", drawMix);
  document.getElementById("mix-period").addEventListener("change", drawMix);
  document.getElementById("rev-figure").addEventListener("change", drawRevisions);
}

async function start() {
  wire();
  connectFeed();
  // The first chart does not wait for the choice lists: it asks with the defaults.
  const first = drawTrend();
  try {
    await loadChoices();
  } catch (err) {
    kmx.errors.push(`choices: ${err.message}`);
  }
  await Promise.all([first, drawPair(), drawTop(), drawMix(), loadFigures()]);
  kmx.ready = true;
  document.body.dataset.ready = "1";
}

start();
