// Reads the RESULT lines scripts/bench.sh collected and prints the side-by-side table (medians of the
// runs, and the hub / Node ratio), then one JSON line.
//   node benches/report.mjs <results dir> <runs> [label of the second column: Node, or "before"]

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

const metrics = [
  ["hub CPU µs per delivery (fanout, 50/s)", (r) => r("fanout")?.hub_cpu_us_per_delivery, "lower"],
  ["p50 latency ms (fanout, 50/s)", (r) => r("fanout")?.latency_ms.p50, "lower"],
  ["p99 latency ms (fanout, 50/s)", (r) => r("fanout")?.latency_ms.p99, "lower"],
  ["p99.9 latency ms (fanout, 50/s)", (r) => r("fanout")?.latency_ms.p99_9, "lower"],
  ["deliveries/s (fanout, 50/s)", (r) => r("fanout")?.deliveries_per_s, "higher"],
  ["lost + duplicated + reordered (fanout)", (r) => (r("fanout") ? r("fanout").lost + r("fanout").duplicated + r("fanout").reordered : NaN), "lower"],
  ["highest rate/s within the p99 bound (hub 50 ms, Node 1 s)", (r) => r("maxrate")?.rate, "higher"],
  ["p99 latency ms at 100/s (sweep)", (r) => r("sweep-100")?.latency_ms.p99, "lower"],
  ["p99 latency ms at 200/s (sweep)", (r) => r("sweep-200")?.latency_ms.p99, "lower"],
  ["hub peak RSS MB (fanout, per instance)", (r) => max(r("fanout")?.processes, "hub", "peak_rss") / 1e6, "lower"],
  ["Redis CPU s (fanout)", (r) => sum(r("fanout")?.processes, "redis", "cpu_s"), "lower"],
  ["generator CPU s (fanout)", (r) => sum(r("fanout")?.processes, "generator", "cpu_s"), "lower"],
  ["hub KB per idle connection", (r) => r("idle")?.hub_bytes_per_connection / 1024, "lower"],
  ["idle connections held", (r) => r("idle")?.connected, "higher"],
  ["jitter: lost + duplicated + reordered", (r) => (r("jitter") ? r("jitter").lost + r("jitter").duplicated + r("jitter").reordered : NaN), "lower"],
  ["jitter: recovered / reconnects", (r) => (r("jitter") ? r("jitter").recovered / Math.max(1, r("jitter").reconnects) : NaN), "higher"],
  ["jitter: replay p99 ms", (r) => r("jitter")?.replay_ms.p99, "lower"],
  ["burst: p99 latency ms", (r) => r("burst")?.latency_ms.p99, "lower"],
  ["burst: hub peak RSS MB (per instance)", (r) => max(r("burst")?.processes, "hub", "peak_rss") / 1e6, "lower"],
  ["burst: lost", (r) => r("burst")?.lost, "lower"],
];

// targeted: hub only (the Node original has no rooms), with few and with many sockets connected.
const [few, many] = (process.env.TARGETED_SIZES ?? "100 10000").split(" ");
const targeted = (size) => (r) => r(`targeted-${size}`);
const missed = (t) => (t ? t.lost + t.misdelivered + t.duplicated : NaN);
metrics.push(
  [`targeted: hub CPU µs per notification (${few} sockets, 200/s)`, (r) => targeted(few)(r)?.hub_cpu_us_per_notification, "lower"],
  [`targeted: hub CPU µs per notification (${many} sockets, 200/s)`, (r) => targeted(many)(r)?.hub_cpu_us_per_notification, "lower"],
  [`targeted: p99 latency ms (${few} sockets)`, (r) => targeted(few)(r)?.latency_ms.p99, "lower"],
  [`targeted: p99 latency ms (${many} sockets)`, (r) => targeted(many)(r)?.latency_ms.p99, "lower"],
  [`targeted: lost + misdelivered + duplicated`, (r) => missed(targeted(few)(r)) + missed(targeted(many)(r)), "lower"],
);

const rows = [];
const json = {};
for (const [label, get, better] of metrics) {
  const values = {};
  for (const impl of ["rust", "node"]) {
    values[impl] = median(Array.from({ length: runs }, (_, i) => get((name) => read(impl, i + 1, name))));
  }
  const ratio = better === "lower" ? values.node / values.rust : values.rust / values.node;
  rows.push([label, values.rust, values.node, ratio]);
  json[label] = { hub: values.rust, node: values.node, advantage: ratio };
}
const fmt = (x) => (Number.isFinite(x) ? (Math.abs(x) >= 100 ? x.toFixed(0) : x.toPrecision(3)) : "n/a");
const width = Math.max(...rows.map((r) => r[0].length));
console.log(`\n${"metric".padEnd(width)} | ${"hub".padStart(10)} | ${other.padStart(10)} | hub advantage`);
console.log(`${"-".repeat(width)}-|-${"-".repeat(10)}-|-${"-".repeat(10)}-|--------------`);
for (const [label, rust, node, ratio] of rows) {
  console.log(`${label.padEnd(width)} | ${fmt(rust).padStart(10)} | ${fmt(node).padStart(10)} | ${Number.isFinite(ratio) ? `${ratio.toFixed(1)}x` : "n/a"}`);
}
console.log(`(medians of ${runs} runs; "hub advantage" = how many times better the hub is, >1 is better)`);

// The floor: no server, one loopback write per delivery (hub-bench floor), same box, same run.
const floor = (field) => median(Array.from({ length: runs }, (_, i) => read("floor", i + 1, "floor")?.[field]));
const writeFloor = floor("writer_cpu_us_per_write");
const readFloor = floor("reader_cpu_us_per_read");
const perDelivery = json["hub CPU µs per delivery (fanout, 50/s)"];
console.log(`\nkernel floor (no server): ${fmt(writeFloor)} µs CPU per write, ${fmt(readFloor)} µs per read`);
console.log(`hub above the floor at 50/s: ${fmt(perDelivery.hub - writeFloor)} µs per delivery (${other}: ${fmt(perDelivery.node - writeFloor)} µs)`);
json.floor = { write_us: writeFloor, read_us: readFloor };
const perTargeted = (size) => json[`targeted: hub CPU µs per notification (${size} sockets, 200/s)`].hub;
const scale = perTargeted(many) / perTargeted(few);
const broadcastP99 = json["p99 latency ms at 200/s (sweep)"].hub;
const targetedP99 = json[`targeted: p99 latency ms (${many} sockets)`].hub;
console.log(`targeted: CPU per notification with ${many} sockets / with ${few}: ${fmt(scale)} (scale-free: 1.0); p99 ${fmt(targetedP99)} ms vs broadcast p99 at 200/s ${fmt(broadcastP99)} ms`);
json.targeted = { cpu_scale: scale, p99_ms: targetedP99, broadcast_p99_ms: broadcastP99 };
console.log(`BENCH ${JSON.stringify({ runs, metrics: json })}`);
