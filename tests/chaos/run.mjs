// The chaos run behind scripts/chaos.sh: two hub instances and one Redis under a steady load of
// notifications and official socket.io-client clients, while faults are injected on a fixed timeline.
// Prints one table: notifications acknowledged, delivered, lost, duplicated, reordered; resumes exact,
// failed cleanly, partial; peak RSS per instance. Exits 1 when a promise broke (anything lost among
// the acknowledged, duplicated, reordered, or a partial resume).
//
//   node tests/chaos/run.mjs <hub binary>      (CHAOS_CLIENTS, CHAOS_RATE, CHAOS_PHASE_S to scale)
//
// What counts (per client, by the log offsets it receives):
// - a *segment* is one unbroken session: a fresh connect, then every recovered reconnect after it;
// - lost: an acknowledged notification whose offset lies inside a segment's span (from its first
//   received offset to its last; the last segment to the last acknowledged offset) but never arrived;
// - duplicated: an offset received twice; reordered: an offset not greater than the one before it;
// - a resume is exact when nothing inside the segment is lost across it, partial when something is,
//   failed cleanly when the client got a fresh session (recovered=false: it knows it missed things).
// Every wait is bounded; all traffic is on loopback.

import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { randomUUID } from "node:crypto";
import { io } from "socket.io-client";
import { startFailoverProxy } from "../interop/redis.mjs";

const HUB_BIN = path.resolve(process.argv[2] ?? "target/release/realtime-hub");
const CLIENTS = Number(process.env.CHAOS_CLIENTS ?? 200);
const RATE = Number(process.env.CHAOS_RATE ?? 20);
const PHASE_MS = Number(process.env.CHAOS_PHASE_S ?? 45) * 1000;
const RETRY_DEADLINE_MS = 60_000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const log = (...args) => console.error(`[chaos ${((Date.now() - t0) / 1000).toFixed(1)}s]`, ...args);
const t0 = Date.now();

async function freePort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function waitFor(predicate, what, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting: ${what}`);
    await sleep(20);
  }
}

const portOpen = (port) =>
  new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1", () => {
      socket.destroy();
      resolve(true);
    });
    socket.on("error", () => resolve(false));
  });

function compareOffsets(a, b) {
  const [ams, aseq] = a.split("-").map(BigInt);
  const [bms, bseq] = b.split("-").map(BigInt);
  return ams === bms ? (aseq === bseq ? 0 : aseq < bseq ? -1 : 1) : ams < bms ? -1 : 1;
}

/** Redis with an append-only file (fsync always), so a restart "with persistence" keeps every entry. */
function redisServer(port, dir) {
  let child;
  return {
    url: `redis://127.0.0.1:${port}`,
    async start() {
      child = spawn(
        "redis-server",
        ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "yes", "--appendfsync", "always"],
        { stdio: "ignore" },
      );
      child.once("error", (err) => {
        console.error(`cannot start redis-server (${err.message}); install it: apt-get install -y redis-server`);
        process.exit(2);
      });
      await waitFor(() => portOpen(port), "redis listens");
    },
    signal(sig) {
      child.kill(sig);
    },
    async stop(sig = "SIGTERM") {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill(sig);
      await exited;
    },
  };
}

/** One hub instance on a fixed port; restartable; remembers its peak RSS over every incarnation. */
function hubInstance(name, port, redisUrl) {
  let child;
  const instance = {
    name,
    port,
    url: `http://127.0.0.1:${port}`,
    peakKb: 0,
    alive: false,
    async start() {
      child = spawn(HUB_BIN, ["--host", "127.0.0.1", "--port", String(port)], {
        env: { ...process.env, REDIS_URL: redisUrl, RUST_LOG: "warn", HUB_RECOVERY_WINDOW_MS: "120000" },
        stdio: ["ignore", "ignore", "inherit"],
      });
      child.once("exit", () => (instance.alive = false));
      await waitFor(() => portOpen(port), `${name} listens`);
      instance.alive = true;
    },
    sampleRss() {
      if (!instance.alive) return;
      try {
        const status = fs.readFileSync(`/proc/${child.pid}/status`, "utf8");
        const hwm = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
        instance.peakKb = Math.max(instance.peakKb, hwm);
      } catch {
        // exited between the check and the read
      }
    },
    async stop(sig = "SIGTERM") {
      instance.sampleRss();
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill(sig);
      await exited;
      instance.alive = false;
    },
  };
  return instance;
}

/** An official client that records every connect (recovered or not) and every offset received. */
function chaosClient(url) {
  const socket = io(url, {
    transports: ["websocket"],
    forceNew: true,
    reconnectionDelay: 100,
    reconnectionDelayMax: 2000,
    timeout: 10_000,
  });
  const client = { socket, events: [] };
  socket.on("connect", () =>
    client.events.push({ kind: "connect", recovered: socket.recovered === true, at: Date.now() }),
  );
  socket.on("disconnect", () => client.events.push({ kind: "disconnect" }));
  // A recovered reconnect hands its replay over before its `connect` event: the window of a resume
  // runs from the disconnect to the first notification after that connect.
  socket.on("notification", (notification, offset) => client.events.push({ kind: "n", offset, n: notification.body }));
  return client;
}

/**
 * Publishes at RATE per second, each with its own Idempotency-Key, retrying a 503 or a network error
 * with the same key (on either instance) until it is acknowledged or RETRY_DEADLINE_MS passes.
 */
function publisher(instances) {
  const acked = [];
  const unacked = [];
  let stopped = false;
  let inFlight = 0;
  let seq = 0;
  async function publishOne(n) {
    const key = randomUUID();
    const body = JSON.stringify({ title: `chaos ${n}`, body: String(n) });
    const deadline = Date.now() + RETRY_DEADLINE_MS;
    for (let attempt = 0; Date.now() < deadline; attempt++) {
      const target = instances[(n + attempt) % instances.length];
      try {
        const res = await fetch(`${target.url}/notifications/notify`, {
          method: "POST",
          headers: { "content-type": "application/json", "idempotency-key": key },
          body,
          signal: AbortSignal.timeout(5000),
        });
        if (res.status === 201) {
          const answer = await res.json();
          acked.push({ n, offset: answer.offset, attempts: attempt + 1 });
          return;
        }
        await res.arrayBuffer();
      } catch {
        // instance down or timed out: the outcome is unknown, retry with the same key
      }
      await sleep(Math.min(100 * 2 ** attempt, 1000));
    }
    unacked.push(n);
  }
  const loop = (async () => {
    const interval = 1000 / RATE;
    let next = Date.now();
    while (!stopped) {
      next += interval;
      inFlight++;
      publishOne(seq++).finally(() => inFlight--);
      await sleep(Math.max(0, next - Date.now()));
    }
  })();
  return {
    acked,
    unacked,
    async stop() {
      stopped = true;
      await loop;
      await waitFor(() => inFlight === 0, "publishes in flight finish", RETRY_DEADLINE_MS + 10_000);
    },
  };
}

/** Clients that join and then never read: the hub must drop them and keep serving everyone else. */
async function slowReaders(url, count) {
  const { port } = new URL(url);
  const sockets = [];
  for (let i = 0; i < count; i++) {
    const socket = net.connect(Number(port), "127.0.0.1");
    await new Promise((resolve) => socket.once("connect", resolve));
    socket.on("error", () => {});
    const key = Buffer.from(randomUUID()).toString("base64");
    socket.write(
      `GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n` +
        `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    await sleep(50);
    // "40" in a masked text frame (mask 0): join the main namespace, then stop reading.
    socket.write(Buffer.from([0x81, 0x82, 0, 0, 0, 0, 0x34, 0x30]));
    socket.pause();
    sockets.push(socket);
  }
  return () => sockets.forEach((s) => s.destroy());
}

/** A flood of polling handshakes that never join, and WebSocket clients that come and go. */
async function clientFlood(urls, seconds) {
  const deadline = Date.now() + seconds * 1000;
  let handshakes = 0;
  let churned = 0;
  while (Date.now() < deadline) {
    const url = urls[handshakes % urls.length];
    const batch = Array.from({ length: 50 }, () =>
      fetch(`${url}/socket.io/?EIO=4&transport=polling`, { signal: AbortSignal.timeout(5000) })
        .then((res) => res.arrayBuffer())
        .catch(() => {}),
    );
    await Promise.all(batch);
    handshakes += batch.length;
    const churn = Array.from({ length: 10 }, () => chaosClient(url));
    await sleep(100);
    churn.forEach((c) => c.socket.close());
    churned += churn.length;
  }
  return { handshakes, churned };
}

/** Splits each client's events into segments and counts what the table reports. */
function account(clients, acked, faults) {
  // The fault a clean failure followed: the last one injected before it.
  const phaseOf = (at) => faults.filter((f) => f.startedAt <= at).at(-1)?.name ?? "before any fault";
  const cleanByPhase = new Map();
  const ackedOffsets = acked.map((a) => a.offset).sort(compareOffsets);
  const lastAcked = ackedOffsets[ackedOffsets.length - 1];
  const totals = { delivered: 0, lost: 0, duplicated: 0, reordered: 0, exact: 0, failedCleanly: 0, partial: 0 };
  const lostExamples = [];
  for (const [index, client] of clients.entries()) {
    const seen = new Set();
    const seenN = new Set();
    const segments = [];
    let segment = null;
    let droppedAt = null;
    for (const event of client.events) {
      if (event.kind === "disconnect") {
        droppedAt = segment ? segment.offsets.length : null;
      } else if (event.kind === "connect") {
        if (!event.recovered || !segment) {
          if (segment) {
            totals.failedCleanly++;
            const phase = phaseOf(event.at);
            cleanByPhase.set(phase, (cleanByPhase.get(phase) ?? 0) + 1);
          }
          segment = { offsets: [], resumes: [] };
          segments.push(segment);
        } else {
          segment.resumes.push({ from: droppedAt ?? segment.offsets.length, to: segment.offsets.length });
        }
        droppedAt = null;
      } else if (segment) {
        totals.delivered++;
        // The same notification twice: the same offset (delivered twice) or two entries (published twice).
        if (seen.has(event.offset) || seenN.has(event.n)) totals.duplicated++;
        else if (segment.offsets.length && compareOffsets(event.offset, segment.offsets.at(-1)) <= 0) totals.reordered++;
        seen.add(event.offset);
        seenN.add(event.n);
        segment.offsets.push(event.offset);
      }
    }
    for (const [i, seg] of segments.entries()) {
      if (!seg.offsets.length) {
        totals.exact += seg.resumes.length;
        continue;
      }
      const first = seg.offsets[0];
      const last = i === segments.length - 1 && client.socket.connected ? lastAcked : seg.offsets.at(-1);
      const got = new Set(seg.offsets);
      const missing = ackedOffsets.filter(
        (o) => compareOffsets(o, first) >= 0 && compareOffsets(o, last) <= 0 && !got.has(o),
      );
      totals.lost += missing.length;
      if (missing.length && lostExamples.length < 5) lostExamples.push({ client: index, missing: missing.slice(0, 3) });
      for (const { from, to } of seg.resumes) {
        const before = seg.offsets[from - 1];
        const after = seg.offsets[to];
        const gap = missing.some(
          (o) => (!before || compareOffsets(o, before) > 0) && (!after || compareOffsets(o, after) < 0),
        );
        if (gap) totals.partial++;
        else totals.exact++;
      }
    }
  }
  return { totals, lostExamples, cleanByPhase };
}

async function main() {
  if (!fs.existsSync(HUB_BIN)) throw new Error(`no hub binary at ${HUB_BIN} (cargo build --release first)`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hub-chaos-"));
  const redis = redisServer(await freePort(), dir);
  await redis.start();
  const a = hubInstance("instance A", await freePort(), redis.url);
  const b = hubInstance("instance B", await freePort(), redis.url);
  await Promise.all([a.start(), b.start()]);
  const proxyA = await startFailoverProxy([a.port, b.port]);
  const proxyB = await startFailoverProxy([b.port, a.port]);
  const sampler = setInterval(() => [a, b].forEach((i) => i.sampleRss()), 500);

  log(`${CLIENTS} clients over two instances, ${RATE} notifications/s, phases of ${PHASE_MS / 1000}s`);
  const clients = Array.from({ length: CLIENTS }, (_, i) => chaosClient(i % 2 ? proxyB.url : proxyA.url));
  await waitFor(() => clients.every((c) => c.socket.connected), "every client connects", 30_000);
  const pub = publisher([a, b]);
  const faults = [];
  const fault = async (name, action) => {
    await sleep(PHASE_MS);
    log(name);
    const started = Date.now();
    const entry = { name, startedAt: started, seconds: "", detail: "" };
    faults.push(entry);
    entry.detail = (await action()) ?? "";
    entry.seconds = ((Date.now() - started) / 1000).toFixed(1);
  };
  try {
    await fault("SIGKILL of instance A, restarted 3 s later", async () => {
      await a.stop("SIGKILL");
      await sleep(3000);
      await a.start();
    });
    await fault("Redis stopped (SIGSTOP) for 5 s", async () => {
      redis.signal("SIGSTOP");
      await sleep(5000);
      redis.signal("SIGCONT");
    });
    await fault("Redis restarted with persistence (append-only file)", async () => {
      await redis.stop("SIGTERM");
      await redis.start();
    });
    await fault("Redis restarted without persistence (its data lost)", async () => {
      await redis.stop("SIGKILL");
      for (const file of fs.readdirSync(dir)) fs.rmSync(path.join(dir, file), { recursive: true, force: true });
      await redis.start();
    });
    await fault("slow readers: 20 clients that join and never read", async () => {
      const close = await slowReaders(a.url, 20);
      await sleep(PHASE_MS / 2);
      close();
    });
    await fault("client flood: polling handshakes that never join, WebSocket churn, 15 s", async () => {
      const flood = await clientFlood([a.url, b.url], 15);
      return `${flood.handshakes} handshakes, ${flood.churned} churned clients`;
    });
    await sleep(PHASE_MS);
  } finally {
    log("stopping the publisher, draining");
    await pub.stop();
  }
  const lastAcked = pub.acked.map((x) => x.offset).sort(compareOffsets).at(-1);
  const caughtUp = () =>
    clients.every(
      (c) => !c.socket.connected || c.events.some((e) => e.kind === "n" && e.offset === lastAcked),
    );
  await waitFor(caughtUp, "connected clients receive the last acknowledged notification", 30_000).catch((err) =>
    log(err.message),
  );
  await sleep(1000); // a late duplicate would arrive now
  clearInterval(sampler);
  [a, b].forEach((i) => i.sampleRss());
  const { totals, lostExamples, cleanByPhase } = account(clients, pub.acked, faults);
  const retried = pub.acked.filter((x) => x.attempts > 1).length;
  for (const c of clients) c.socket.close();
  await Promise.all([proxyA.stop(), proxyB.stop()]);
  await Promise.all([a.stop(), b.stop()]);
  await redis.stop();
  fs.rmSync(dir, { recursive: true, force: true });

  const rows = [
    ["notifications acknowledged", pub.acked.length],
    ["  of which retried with the same key", retried],
    ["notifications never acknowledged (gave up)", pub.unacked.length],
    ["deliveries", totals.delivered],
    ["lost (acknowledged, inside a session's span)", totals.lost],
    ["duplicated", totals.duplicated],
    ["reordered", totals.reordered],
    ["resumes exact", totals.exact],
    ["resumes failed cleanly (recovered=false)", totals.failedCleanly],
    ["resumes partial", totals.partial],
    [`peak RSS ${a.name} MB`, (a.peakKb / 1024).toFixed(1)],
    [`peak RSS ${b.name} MB`, (b.peakKb / 1024).toFixed(1)],
  ];
  console.log("\nfaults injected:");
  for (const f of faults) console.log(`  ${f.name} (${f.seconds} s)${f.detail ? `: ${f.detail}` : ""}`);
  console.log(`\n| chaos (${CLIENTS} clients, ${RATE}/s) | |\n|---|---:|`);
  for (const [name, value] of rows) console.log(`| ${name} | ${value} |`);
  console.log("\nresumes failed cleanly, by the fault before them:");
  for (const [phase, n] of cleanByPhase) console.log(`  ${n}: ${phase}`);
  if (lostExamples.length) console.log("\nlost, first examples:", JSON.stringify(lostExamples));
  const broken = totals.lost + totals.duplicated + totals.reordered + totals.partial;
  process.exit(broken === 0 ? 0 : 1);
}

main().catch((err) => {
  console.error(err);
  process.exit(2);
});
