// Builds the kmx dashboard: copies the page's own files and Apache ECharts' prebuilt
// bundle (installed by `npm ci` from package-lock.json) into OUT, the directory the
// gateway serves. Nothing is fetched at run time: the page works without internet.
//   node build.mjs OUT [NODE_MODULES]
import { copyFileSync, mkdirSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = process.argv[2];
const modules = process.argv[3] || join(here, "node_modules");
if (!out) {
  console.error("usage: node build.mjs OUT [NODE_MODULES]");
  process.exit(2);
}
mkdirSync(out, { recursive: true });
for (const name of readdirSync(join(here, "src"))) {
  copyFileSync(join(here, "src", name), join(out, name));
}
// The common bundle (line, bar, legend, tooltip, title, grid): all the page draws, a third
// smaller than the full one, so the first chart comes sooner.
copyFileSync(join(modules, "echarts", "dist", "echarts.common.min.js"),
  join(out, "echarts.common.min.js"));
copyFileSync(join(modules, "echarts", "LICENSE"), join(out, "echarts-LICENSE.txt"));
console.log(`dashboard built in ${out}`);
