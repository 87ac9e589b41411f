// Test fixture: a Redis group watched by Sentinel, all real processes on free loopback ports: one
// primary, one replica (`replicaof`), three sentinels (Debian's `redis-sentinel`, quorum 2), and a way
// to kill the primary with SIGKILL and wait until the sentinels name the promoted replica.
//
// The replica replicates through a TCP relay (`replicaof 127.0.0.1 <relay>`) that the test can hold:
// `holdReplication()` stops passing the primary's replication stream on, so the replica lags by
// exactly what is written from then on, and the kill discards what the relay held. On loopback an
// unheld replica is almost never behind, so without the relay a failover would hardly ever lose
// anything and the tests of what a failover loses would test nothing. (The sentinels would set such a
// replica to replicate from the primary directly after `failover-timeout`: it is set long enough.)

import { spawn } from "node:child_process";
import net from "node:net";
import os from "node:os";
import fs from "node:fs";
import path from "node:path";
import { createClient } from "redis";
import { freePort, waitForPort } from "./redis.mjs";
import { waitFor, sleep } from "./hub.mjs";

export const MASTER_NAME = "hubgroup";
/** `sentinel down-after-milliseconds`: how long the primary is silent before it is called down. */
export const DOWN_AFTER_MS = 1000;
/** `sentinel failover-timeout`; long, so that the sentinels do not re-point the relayed replica. */
const FAILOVER_TIMEOUT_MS = 60_000;
/** A bound on a whole failover (down-after, agreement, election, promotion), for waits. */
export const FAILOVER_BOUND_MS = 30_000;

/** One command to the server on `port`; a fresh connection each time (servers come and go). */
export async function command(port, args) {
  const client = createClient({ socket: { host: "127.0.0.1", port, reconnectStrategy: false, connectTimeout: 2000 } });
  client.on("error", () => {});
  await client.connect();
  try {
    return await client.sendCommand(args.map(String));
  } finally {
    await client.disconnect().catch(() => {});
  }
}

/** `SENTINEL MASTER <name>` as an object (the reply is a flat list of field, value). */
async function sentinelMaster(port) {
  const flat = await command(port, ["SENTINEL", "MASTER", MASTER_NAME]);
  const fields = {};
  for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]] = flat[i + 1];
  return fields;
}

/** Spawns `program args`, failing loudly with the install command when it is missing. */
async function spawnServer(program, args, port, pkg) {
  const child = spawn(program, args, { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  child.stderr.on("data", (chunk) => (log += chunk));
  await new Promise((resolve, reject) => {
    child.once("error", (err) =>
      reject(new Error(`cannot start ${program} (${err.message}); install it: apt-get install -y ${pkg}`)),
    );
    child.once("exit", (code) => reject(new Error(`${program} exited with ${code}: ${log}`)));
    waitForPort(port).then(resolve, reject);
  });
  child.removeAllListeners("exit");
  return child;
}

async function stopChild(child, signal = "SIGTERM") {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill(signal);
  await exited;
}

/** A redis-server on `port` (a free one if 0), replicating from `replicaOf` (a port) if given. */
async function startNode(dir, port, replicaOf) {
  port ||= await freePort();
  const args = ["--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir];
  // The first sync at once (Redis 7 waits 5 s for more replicas before a diskless sync by default).
  args.push("--repl-diskless-sync-delay", "0");
  if (replicaOf) args.push("--replicaof", "127.0.0.1", replicaOf);
  const child = await spawnServer("redis-server", args.map(String), port, "redis-server");
  return { port, child };
}

/**
 * A relay for the replication link: passes bytes both ways until `hold()`, from which on it keeps
 * what the primary sends (unread, so it is never delivered); `drop()` cuts every connection.
 */
async function startRelay(targetPort) {
  const pairs = new Set();
  let held = false;
  const server = net.createServer((replica) => {
    const primary = net.connect(targetPort, "127.0.0.1");
    const pair = { replica, primary };
    pairs.add(pair);
    const close = () => {
      pairs.delete(pair);
      replica.destroy();
      primary.destroy();
    };
    replica.on("error", close).on("close", close);
    primary.on("error", close).on("close", close);
    replica.pipe(primary);
    primary.on("data", (chunk) => {
      if (!held) replica.write(chunk);
    });
    if (held) primary.pause();
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: server.address().port,
    hold() {
      held = true;
      for (const { primary } of pairs) primary.pause();
    },
    drop() {
      for (const { replica, primary } of pairs) {
        replica.destroy();
        primary.destroy();
      }
      pairs.clear();
    },
    async stop() {
      this.drop();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/**
 * Starts the group and resolves once every sentinel monitors the primary, knows the replica and
 * the two other sentinels, and `SENTINEL CKQUORUM` says a failover can be authorised.
 */
export async function startSentinelGroup() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hub-interop-sentinel-"));
  const nodeDir = (name) => {
    const d = path.join(dir, name);
    fs.mkdirSync(d);
    return d;
  };
  const primary = await startNode(nodeDir("a"), 0);
  const relay = await startRelay(primary.port);
  const replica = await startNode(nodeDir("b"), 0, relay.port);
  await waitFor(
    async () => (await command(replica.port, ["INFO", "replication"])).includes("master_link_status:up"),
    "the replica syncs with the primary",
  );

  const sentinels = [];
  for (let i = 0; i < 3; i++) {
    const port = await freePort();
    // Sentinel rewrites its config file (what it learns: peers, replicas, epochs): one each, in the temp dir.
    const config = path.join(dir, `sentinel-${i}.conf`);
    fs.writeFileSync(
      config,
      [
        `port ${port}`,
        "bind 127.0.0.1",
        `dir ${dir}`,
        `sentinel monitor ${MASTER_NAME} 127.0.0.1 ${primary.port} 2`,
        `sentinel down-after-milliseconds ${MASTER_NAME} ${DOWN_AFTER_MS}`,
        `sentinel failover-timeout ${MASTER_NAME} ${FAILOVER_TIMEOUT_MS}`,
        `sentinel parallel-syncs ${MASTER_NAME} 1`,
        "",
      ].join("\n"),
    );
    const child = await spawnServer("redis-sentinel", [config], port, "redis-sentinel");
    sentinels.push({ port, child });
  }
  await waitFor(
    async () => {
      for (const { port } of sentinels) {
        const master = await sentinelMaster(port).catch(() => ({}));
        if (master["num-other-sentinels"] !== "2" || master["num-slaves"] !== "1" || master.flags !== "master") return false;
        const quorum = await command(port, ["SENTINEL", "CKQUORUM", MASTER_NAME]).catch(() => "");
        if (!String(quorum).startsWith("OK")) return false;
      }
      return true;
    },
    "the three sentinels agree on the primary, its replica and each other",
    20_000,
  );

  const nodes = [primary, replica];
  return {
    /** REDIS_URL for the hub: the three sentinels and the group's name. */
    url: `redis+sentinel://${sentinels.map((s) => `127.0.0.1:${s.port}`).join(",")}/${MASTER_NAME}`,
    primaryPort: primary.port,
    replicaPort: replica.port,
    /** From now on the replica gets nothing more of what the primary writes (until the kill). */
    holdReplication: () => relay.hold(),
    /** SIGKILLs the primary (what the relay held is lost with it); resolves once it is dead. */
    async killPrimary() {
      await stopChild(primary.child, "SIGKILL");
      relay.drop();
    },
    /**
     * Resolves to the port of the new primary once every sentinel names it (`+switch-master`) and it
     * answers `ROLE` as a master; rejects after `FAILOVER_BOUND_MS`.
     */
    async waitForNewPrimary() {
      let named;
      await waitFor(
        async () => {
          const addrs = await Promise.all(
            sentinels.map(({ port }) => command(port, ["SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME]).catch(() => null)),
          );
          if (!addrs.every((a) => a && Number(a[1]) !== primary.port && a[1] === addrs[0][1])) return false;
          named = Number(addrs[0][1]);
          const role = await command(named, ["ROLE"]).catch(() => null);
          return role?.[0] === "master";
        },
        "every sentinel names the promoted replica",
        FAILOVER_BOUND_MS,
      );
      return named;
    },
    /**
     * A planned failover (`SENTINEL FAILOVER`): the replica is promoted and the primary, alive,
     * demoted to its replica (by the sentinels, seconds after the promotion). Resolves once that
     * replica is in sync to the new primary's port and the last time the old one still said it was
     * a primary (writes it took after the promotion are lost at its demotion), and when the
     * replica first answered `ROLE` as a master (its promotion, before the sentinels agree on it).
     */
    async plannedFailover() {
      await command(sentinels[0].port, ["SENTINEL", "FAILOVER", MASTER_NAME]);
      let promotedAt = 0;
      await waitFor(
        async () => {
          // The promotion's CLIENT KILL TYPE normal may cut this connection: no answer, try again.
          const role = await command(replica.port, ["ROLE"]).catch(() => null);
          if (role?.[0] === "master") promotedAt = Date.now();
          return promotedAt > 0;
        },
        "the replica is promoted",
        FAILOVER_BOUND_MS,
      );
      const port = await this.waitForNewPrimary();
      let lastPrimaryAt = 0;
      await waitFor(
        async () => {
          const at = Date.now();
          // The demotion (SLAVEOF in a MULTI with CLIENT KILL TYPE normal) may cut this very
          // connection: that is no answer, not a failure of the test.
          const info = await command(primary.port, ["INFO", "replication"]).catch(() => "");
          if (info.includes("role:master")) lastPrimaryAt = at;
          return info.includes(`master_port:${port}\r\nmaster_link_status:up`);
        },
        "the demoted primary replicates from the new one",
        FAILOVER_BOUND_MS,
      );
      return { port, lastPrimaryAt, promotedAt };
    },
    /** Starts the killed primary again, empty, as a replica of `port`; resolves once it is in sync. */
    async restartAsReplicaOf(port) {
      const node = await startNode(path.join(dir, "a"), primary.port, port);
      nodes.push(node);
      await waitFor(
        async () => (await command(node.port, ["INFO", "replication"])).includes("master_link_status:up"),
        "the restarted node syncs with the new primary",
        20_000,
      );
    },
    async stop() {
      await relay.stop();
      await Promise.all([...sentinels, ...nodes].map(({ child }) => stopChild(child)));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Every entry id of `stream` on the server at `port`, oldest first (XRANGE, in pages). */
export async function streamIds(port, stream) {
  const ids = [];
  let from = "-";
  for (let page = 0; page < 1000; page++) {
    const entries = await command(port, ["XRANGE", stream, from, "+", "COUNT", 500]);
    for (const [id] of entries) ids.push(id);
    if (entries.length < 500) return ids;
    from = `(${entries[entries.length - 1][0]}`;
  }
  throw new Error(`more than 500,000 entries in ${stream}`);
}

export { sleep };
