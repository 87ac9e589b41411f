// Test fixture: a real Redis Cluster of three masters (Debian's redis-server --cluster-enabled yes) on
// free loopback ports, joined by `redis-cli --cluster create`, stopped by the test.

import { spawn, execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { freePort, waitForPort } from "./redis.mjs";

const run = promisify(execFile);

/** Starts three masters and joins them; resolves once every node reports `cluster_state:ok`. */
export async function startRedisCluster() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hub-interop-redis-cluster-"));
  const nodes = [];
  for (let i = 0; i < 3; i++) {
    // The bus port on its own: the default (port + 10000) may be taken or past 65535.
    const [port, bus] = [await freePort(), await freePort()];
    const nodeDir = path.join(dir, String(port));
    fs.mkdirSync(nodeDir);
    const child = spawn(
      "redis-server",
      ["--port", String(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes", "--cluster-port", String(bus),
       "--cluster-config-file", "nodes.conf", "--save", "", "--appendonly", "no", "--dir", nodeDir],
      { stdio: "ignore" },
    );
    nodes.push({ port, child });
    await new Promise((resolve, reject) => {
      child.once("error", (err) =>
        reject(new Error(`cannot start redis-server (${err.message}); install it: apt-get install -y redis-server`)),
      );
      waitForPort(port).then(resolve, reject);
    });
  }
  const hosts = nodes.map((n) => `127.0.0.1:${n.port}`);
  await run("redis-cli", ["--cluster", "create", ...hosts, "--cluster-replicas", "0", "--cluster-yes"]);
  const deadline = Date.now() + 10_000;
  for (const { port } of nodes) {
    for (;;) {
      const { stdout } = await run("redis-cli", ["-p", String(port), "cluster", "info"]);
      if (stdout.includes("cluster_state:ok") && stdout.includes("cluster_known_nodes:3")) break;
      if (Date.now() > deadline) throw new Error(`the cluster node on ${port} was not ok within 10 s`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  return {
    /** `redis+cluster://h:p,h:p,h:p`, as the hub's REDIS_URL and node-peer.mjs take it. */
    url: `redis+cluster://${hosts.join(",")}`,
    /** `redis-cli -c` (follows MOVED) with `args`; its trimmed output. */
    async cli(...args) {
      const { stdout } = await run("redis-cli", ["-c", "-p", String(nodes[0].port), ...args]);
      return stdout.trim();
    },
    async stop() {
      await Promise.all(
        nodes.map(({ child }) => {
          if (child.exitCode !== null) return undefined;
          const exited = new Promise((resolve) => child.once("exit", resolve));
          child.kill("SIGTERM");
          return exited;
        }),
      );
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
