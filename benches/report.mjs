// Reads the RESULT lines scripts/bench.sh collected and prints the floor (no server: the kernel's
// cost of a delivery), the hub and Node side by side (medians of the runs, with ratios), then issue
// 16's targets, each with its figures and met / not met, then one JSON line.
//   node benches/report.mjs <results dir> <runs> [label of the third column: Node, or "before"]
// Environment: TARGETED_SIZES ("100 10000"), QUICK (set: a BENCH_QUICK run), PIN_NOTE (how the
// processes were placed on the CPUs, printed as is).

import fs from "node:fs";
import path from "node:path";

const [dir, runs, other] = [process.argv[2], Number(process.argv[3]), process.argv[4] ?? "Node"];
const read = (impl, run, name) => {
  const file = path.join(dir, `${impl}-${run}-${name}.json`);
  return fs.existsSync(file) && fs.statSync(file).size > 0 ? JSON.parse(fs.readFileSync(file, "utf8")) : null;
};
const median = (xs) => {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return v.length ? v[Math.floor((v.length - 1) / 2)] : NaN;
};
const sum = (obj, name, field) => Object.values(obj ?? {}).filter((p) => p.name === name).reduce((s, p) => s + p[field], 0);
const max = (obj, name, field) => Math.max(0, ...Object.values(obj ?? {}).filter((p) => p.name === name).map((p) => p[field]));
const lostEtc = (r) => (r ? r.lost + (r.duplicated ?? 0) + (r.reordered ?? 0) : NaN);
// The floor's CPU per delivery: its writer's CPU per frame (older results: per write, the same at 50/s).
const floorCpu = (f) => f?.writer_cpu_us_per_frame ?? f?.writer_cpu_us_per_write;

// Each row: label, how to read it from one implementation's run (`r(name)`, with `f(name)` the
// floor's files of the same run), how to read it from the floor's run (or null: the floor has no
// such figure), and which way is better.
const rows = [
  ["CPU µs per delivery (fanout, 50/s)", (r) => r("fanout")?.hub_cpu_us_per_delivery, (f) => floorCpu(f("floor")), "lower"],
  ["CPU µs per delivery above the floor (50/s)", (r, f) => r("fanout")?.hub_cpu_us_per_delivery - floorCpu(f("floor")), null, "lower"],
  ["p50 latency ms (fanout, 50/s)", (r) => r("fanout")?.latency_ms.p50, (f) => f("floor")?.latency_ms?.p50, "lower"],
  ["p99 latency ms (fanout, 50/s)", (r) => r("fanout")?.latency_ms.p99, (f) => f("floor")?.latency_ms?.p99, "lower"],
  ["p99.9 latency ms (fanout, 50/s)", (r) => r("fanout")?.latency_ms.p99_9, (f) => f("floor")?.latency_ms?.p99_9, "lower"],
  ["deliveries/s (fanout, 50/s)", (r) => r("fanout")?.deliveries_per_s, (f) => f("floor")?.deliveries_per_s, "higher"],
  ["lost + duplicated + reordered (fanout)", (r) => lostEtc(r("fanout")), (f) => f("floor")?.lost, "lower"],
  ["highest rate/s with p99 <= 50 ms", (r) => r("maxrate")?.rate, (f) => f("maxrate")?.rate, "higher"],
  ["highest rate/s with p99 <= 1 s (Node's old bound)", (r) => r("maxrate")?.rate_1000ms, null, "higher"],
  ["p99 latency ms at 100/s (sweep)", (r) => r("sweep-100")?.latency_ms.p99, (f) => f("sweep-100")?.latency_ms?.p99, "lower"],
  ["p99 latency ms at 200/s (sweep)", (r) => r("sweep-200")?.latency_ms.p99, (f) => f("sweep-200")?.latency_ms?.p99, "lower"],
  ["hub peak RSS MB (fanout, per instance)", (r) => max(r("fanout")?.processes, "hub", "peak_rss") / 1e6, null, "lower"],
  ["Redis CPU s (fanout)", (r) => sum(r("fanout")?.processes, "redis", "cpu_s"), null, "lower"],
  ["generator CPU s (fanout)", (r) => sum(r("fanout")?.processes, "generator", "cpu_s"), null, "lower"],
  ["generator CPU µs per read (floor: its readers)", (r) => (sum(r("fanout")?.processes, "generator", "cpu_s") * 1e6) / r("fanout")?.delivered, (f) => f("floor")?.reader_cpu_us_per_read, "lower"],
  ["KiB per idle connection", (r) => r("idle")?.hub_bytes_per_connection / 1024, null, "lower"],
  ["idle connections held", (r) => r("idle")?.connected, null, "higher"],
  ["jitter: lost + duplicated + reordered", (r) => lostEtc(r("jitter")), null, "lower"],
  ["jitter: recovered / reconnects", (r) => (r("jitter") ? r("jitter").recovered / Math.max(1, r("jitter").reconnects) : NaN), null, "higher"],
  ["jitter: replay p99 ms", (r) => r("jitter")?.replay_ms.p99, null, "lower"],
  ["burst: p99 latency ms", (r) => r("burst")?.latency_ms.p99, null, "lower"],
  ["burst: hub peak RSS MB (per instance)", (r) => max(r("burst")?.processes, "hub", "peak_rss") / 1e6, null, "lower"],
  ["burst: lost", (r) => r("burst")?.lost, null, "lower"],
  ["publish: highest POST/s with p99 <= 50 ms", (r) => r("publish")?.max_rate, null, "higher"],
];

// targeted: hub only (the Node original has no rooms), with few and with many sockets connected.
const [few, many] = (process.env.TARGETED_SIZES ?? "100 10000").split(" ");
const targeted = (size) => (r) => r(`targeted-${size}`);
const missed = (t) => (t ? t.lost + t.misdelivered + t.duplicated : NaN);
rows.push(
  [`targeted: hub CPU µs per notification (${few} sockets, 200/s)`, (r) => targeted(few)(r)?.hub_cpu_us_per_notification, null, "lower"],
  [`targeted: hub CPU µs per notification (${many} sockets, 200/s)`, (r) => targeted(many)(r)?.hub_cpu_us_per_notification, null, "lower"],
  [`targeted: p99 latency ms (${few} sockets)`, (r) => targeted(few)(r)?.latency_ms.p99, null, "lower"],
  [`targeted: p99 latency ms (${many} sockets)`, (r) => targeted(many)(r)?.latency_ms.p99, null, "lower"],
  [`targeted: lost + misdelivered + duplicated`, (r) => missed(targeted(few)(r)) + missed(targeted(many)(r)), null, "lower"],
);

const runList = Array.from({ length: runs }, (_, i) => i + 1);
const reader = (impl, run) => (name) => read(impl, run, name);
const table = [];
const json = {};
for (const [label, get, getFloor, better] of rows) {
  const v = {
    floor: getFloor ? median(runList.map((run) => getFloor(reader("floor", run)))) : NaN,
    hub: median(runList.map((run) => get(reader("rust", run), reader("floor", run)))),
    other: median(runList.map((run) => get(reader("node", run), reader("floor", run)))),
  };
  const advantage = better === "lower" ? v.other / v.hub : v.hub / v.other;
  table.push([label, v.floor, v.hub, v.other, v.hub / v.floor, v.other / v.floor, advantage]);
  json[label] = { floor: v.floor, hub: v.hub, [other.toLowerCase()]: v.other, advantage };
}
const fmt = (x) => (Number.isFinite(x) ? (Math.abs(x) >= 100 ? x.toFixed(0) : x.toPrecision(3)) : "n/a");
const times = (x) => (Number.isFinite(x) ? `${x.toFixed(2)}x` : "n/a");
const width = Math.max(...table.map((r) => r[0].length));
const heads = ["floor", "hub", other, "hub/floor", `${other}/floor`, "hub advantage"];
console.log(`\n${"metric".padEnd(width)} | ${heads.map((h) => h.padStart(10)).join(" | ")}`);
console.log(`${"-".repeat(width)}-|${heads.map((h) => "-".repeat(Math.max(10, h.length) + 2)).join("|")}`);
for (const [label, ...values] of table) {
  const cells = values.map((x, i) => (i < 3 ? fmt(x) : times(x)).padStart(Math.max(10, heads[i].length)));
  console.log(`${label.padEnd(width)} | ${cells.join(" | ")}`);
}
console.log(
  `(medians of ${runs} runs; floor = no server, one loopback write per delivery; x/floor = x divided by the ` +
    `floor's figure; "hub advantage" = how many times better the hub is than ${other}, >1 is better)`,
);
if (process.env.PIN_NOTE) console.log(process.env.PIN_NOTE);

// Issue 16's targets, each against the floor of the same run (medians of the runs).
const row = (label) => json[label];
const targets = [];
const target = (name, measured, met) => {
  targets.push({ target: name, measured, met: met === null ? null : Boolean(met) });
  console.log(`- ${name}: ${measured} → ${met === null ? "not measured" : met ? "met" : "not met"}`);
};
console.log("\ntargets (issue 16)");
const above = row("CPU µs per delivery above the floor (50/s)");
const cpu = row("CPU µs per delivery (fanout, 50/s)");
target(
  "CPU per delivery above the floor <= 1.0 µs (50/s)",
  `hub ${fmt(above.hub)} µs (${fmt(cpu.hub)} - floor ${fmt(cpu.floor)}); ${other} ${fmt(above[other.toLowerCase()])} µs`,
  Number.isFinite(above.hub) ? above.hub <= 1.0 : null,
);
const p99 = row("p99 latency ms (fanout, 50/s)");
target(
  "p99 at 50/s <= floor p99 + 2 ms",
  `hub ${fmt(p99.hub)} ms, floor ${fmt(p99.floor)} ms (+${fmt(p99.hub - p99.floor)}); ${other} ${fmt(p99[other.toLowerCase()])} ms`,
  Number.isFinite(p99.hub - p99.floor) ? p99.hub <= p99.floor + 2 : null,
);
const p999 = row("p99.9 latency ms (fanout, 50/s)");
target(
  "p99.9 at 50/s <= floor p99.9 + 5 ms",
  `hub ${fmt(p999.hub)} ms, floor ${fmt(p999.floor)} ms (+${fmt(p999.hub - p999.floor)}); ${other} ${fmt(p999[other.toLowerCase()])} ms`,
  Number.isFinite(p999.hub - p999.floor) ? p999.hub <= p999.floor + 5 : null,
);
const rate = row("highest rate/s with p99 <= 50 ms");
const top = 3200; // the sweep's last rate: a figure there is "at least"
const atLeast = (x) => (x >= top ? `>= ${fmt(x)}` : fmt(x));
target(
  "highest rate with p99 <= 50 ms >= 70 % of the floor's",
  `hub ${atLeast(rate.hub)}/s, floor ${atLeast(rate.floor)}/s (${fmt((100 * rate.hub) / rate.floor)} %); ` +
    `${other} ${atLeast(rate[other.toLowerCase()])}/s (${fmt((100 * rate[other.toLowerCase()]) / rate.floor)} %)`,
  Number.isFinite(rate.hub / rate.floor) && rate.floor > 0 ? rate.hub >= 0.7 * rate.floor : null,
);
const idleKiB = row("KiB per idle connection");
const idleAt = median(runList.map((run) => read("rust", run, "idle")?.clients));
target(
  "idle <= 4 KiB per connection at 10,000 connections",
  `hub ${fmt(idleKiB.hub)} KiB; ${other} ${fmt(idleKiB[other.toLowerCase()])} KiB` +
    (idleAt === 10000 ? "" : ` (measured at ${fmt(idleAt)} connections${process.env.QUICK ? ", BENCH_QUICK" : ""}, not 10,000)`),
  Number.isFinite(idleKiB.hub) ? idleKiB.hub <= 4 : null,
);
const tFew = row(`targeted: hub CPU µs per notification (${few} sockets, 200/s)`).hub;
const tMany = row(`targeted: hub CPU µs per notification (${many} sockets, 200/s)`).hub;
target(
  `targeted: CPU per notification with ${many} sockets <= 1.2 x with ${few}`,
  `${fmt(tMany)} / ${fmt(tFew)} µs = ${fmt(tMany / tFew)}` + (many === "10000" ? "" : ` (${many} sockets, not 10,000)`),
  Number.isFinite(tMany / tFew) ? tMany / tFew <= 1.2 : null,
);
const tP99 = row(`targeted: p99 latency ms (${many} sockets)`).hub;
const bP99 = row("p99 latency ms at 200/s (sweep)").hub;
target(
  "targeted: p99 within 2 ms of the broadcast p99 at the same rate (200/s)",
  `targeted ${fmt(tP99)} ms (${many} sockets), broadcast ${fmt(bP99)} ms (${fmt(median(runList.map((run) => read("rust", run, "sweep-200")?.clients)))} clients)`,
  Number.isFinite(tP99 - bP99) ? tP99 <= bP99 + 2 : null,
);
const publish = row("publish: highest POST/s with p99 <= 50 ms");
const pubOther = publish[other.toLowerCase()];
target(
  `publish: highest POST/s with p99 <= 50 ms >= 5 x ${other}'s`,
  Number.isFinite(publish.hub) || Number.isFinite(pubOther)
    ? `hub ${fmt(publish.hub)}/s, ${other} ${fmt(pubOther)}/s (${fmt(publish.hub / pubOther)} x)`
    : "not measured",
  Number.isFinite(publish.hub / pubOther) ? publish.hub >= 5 * pubOther : null,
);
json.targeted = { cpu_scale: tMany / tFew, p99_ms: tP99, broadcast_p99_ms: bP99 };
console.log(`BENCH ${JSON.stringify({ runs, pin: process.env.PIN_NOTE ?? null, metrics: json, targets })}`);
