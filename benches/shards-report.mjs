// Reads the RESULT lines of `BENCH_ONLY=shards scripts/bench.sh` and prints one table: per total rate,
// the 1-shard row beside the 4-shard row (medians of the runs), then one JSON line.
//   node benches/shards-report.mjs <results dir> <runs> "<shard counts>" "<rates>" <masters> <clients> <seconds>
// Files read: shards-<N>-<run>-<rate>.json (the targeted scenario's RESULT), shards-<N>-<run>-placement.json
// (which master holds which stream), shards-<N>-<run>-refused.txt (the hub refused HUB_STREAM_SHARDS=N).

import fs from "node:fs";
import path from "node:path";

const [dir, runsArg, countsArg, ratesArg, mastersArg, clients, seconds] = process.argv.slice(2);
const runs = Array.from({ length: Number(runsArg) }, (_, i) => i + 1);
const counts = countsArg.split(/\s+/).filter(Boolean).map(Number);
const rates = ratesArg.split(/\s+/).filter(Boolean).map(Number);
const masters = Array.from({ length: Number(mastersArg) }, (_, i) => `redis-m${i + 1}`);

const file = (name) => path.join(dir, name);
const json = (name) => {
  const f = file(name);
  return fs.existsSync(f) && fs.statSync(f).size > 0 ? JSON.parse(fs.readFileSync(f, "utf8")) : null;
};
const median = (xs) => {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return v.length ? v[Math.floor((v.length - 1) / 2)] : NaN;
};
// CPU % of the named processes over the measured stretch (100 = one core busy), in --pids order.
const cpuPercent = (r, name) =>
  Object.values(r.processes)
    .filter((p) => p.name === name)
    .map((p) => (100 * p.cpu_s) / r.elapsed_s);

const fmt = (x, digits = 1) => (Number.isFinite(x) ? x.toFixed(digits) : "-");
const rows = [];
const summary = {};
for (const rate of rates) {
  for (const shards of counts) {
    const refused = runs.map((run) => file(`shards-${shards}-${run}-refused.txt`)).find((f) => fs.existsSync(f));
    if (refused) {
      rows.push([rate, shards, `refused by the hub: ${fs.readFileSync(refused, "utf8").trim()}`]);
      summary[`${shards}`] = { refused: fs.readFileSync(refused, "utf8").trim() };
      continue;
    }
    const results = runs.map((run) => json(`shards-${shards}-${run}-${rate}.json`)).filter(Boolean);
    if (!results.length) {
      rows.push([rate, shards, "no result (the load tool failed; see its output above)"]);
      continue;
    }
    const m = (f) => median(results.map(f));
    const cell = {
      hub_cpu_percent: [0, 1].map((i) => m((r) => cpuPercent(r, "hub")[i])),
      hub_cpu_us_per_notification: m((r) => r.hub_cpu_us_per_notification),
      redis_cpu_percent: masters.map((name) => m((r) => cpuPercent(r, name)[0])),
      p50_ms: m((r) => r.latency_ms.p50),
      p99_ms: m((r) => r.latency_ms.p99),
      delivered: m((r) => r.delivered),
      expected: m((r) => r.expected),
      refused: m((r) => r.refused),
      wrong: m((r) => r.lost + r.misdelivered + r.duplicated),
    };
    (summary[`${shards}`] ??= {})[`${rate}`] = cell;
    rows.push([
      rate,
      shards,
      [
        `${fmt(cell.hub_cpu_percent[0])} + ${fmt(cell.hub_cpu_percent[1])}`.padStart(15),
        fmt(cell.hub_cpu_us_per_notification, 0).padStart(11),
        cell.redis_cpu_percent.map((x) => fmt(x).padStart(5)).join(" ").padStart(6 * masters.length - 1),
        `${fmt(cell.p50_ms, 2)} / ${fmt(cell.p99_ms, 1)}`.padStart(14),
        `${cell.delivered}/${cell.expected}`.padStart(17),
        String(cell.refused).padStart(7),
        String(cell.wrong).padStart(5),
      ].join(" | "),
    ]);
  }
}

console.log(
  `targeted notifications, ${clients} clients (each alone in its user room) over 2 hub instances, ` +
    `${seconds} s per rate, a Redis Cluster of ${masters.length} masters (${runs.length === 1 ? "one run" : `medians of ${runs.length} runs`})`,
);
for (const shards of counts) {
  const placement = json(`shards-${shards}-1-placement.json`);
  if (placement) {
    const where = Object.entries(placement)
      .map(([m, keys]) => `${m}: ${keys.length ? keys.join(", ") : "-"}`)
      .join("; ");
    console.log(`streams per master with ${shards} shard${shards === 1 ? "" : "s"}: ${where}`);
  }
}
const redisHead = masters.map((n) => n.replace("redis-", "").padStart(5)).join(" ");
const head = [
  "rate/s",
  "shards",
  "hub CPU % A + B",
  "µs / notif.",
  redisHead.padStart(6 * masters.length - 1),
  "p50 / p99 ms",
  "delivered/expected",
  "refused",
  "wrong",
];
console.log("");
// Over the masters' columns: after "rate/s shards | ", the hub's two columns and their separators.
console.log(`${"".padStart(16 + 15 + 3 + 11 + 3)}Redis CPU % per master`);
console.log(
  `${head[0].padStart(6)} ${head[1].padStart(6)} | ${head[2].padStart(15)} | ${head[3].padStart(11)} | ${head[4]} | ` +
    `${head[5].padStart(14)} | ${head[6].padStart(17)} | ${head[7]} | ${head[8]}`,
);
let last = null;
for (const [rate, shards, text] of rows) {
  if (last !== null && rate !== last) console.log("");
  last = rate;
  console.log(`${String(rate).padStart(6)} ${String(shards).padStart(6)} | ${text}`);
}
console.log(
  "\nhub CPU %: each instance's CPU over publishing and draining (100 = one core), heartbeats included; " +
    "µs / notif.: both instances' CPU less an idle stretch as long, per accepted notification; " +
    "wrong: lost + misdelivered + duplicated",
);
console.log("JSON " + JSON.stringify({ scenario: "shards", clients: Number(clients), seconds: Number(seconds), runs: runs.length, results: summary }));
