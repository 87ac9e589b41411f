// Test fixture: the Node original's server (node-peer.mjs: socket.io + redis-streams-adapter) on a
// given Redis and stream, and a way to move an official client between servers with its session.

import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { io } from "socket.io-client";
import { createClient } from "redis";
import { freePort, waitForPort } from "./redis.mjs";
import { waitFor } from "./hub.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));

/** Starts node-peer.mjs on a free port, on `redisUrl` and `stream`. */
export async function startNodePeer(redisUrl, stream) {
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(here, "node-peer.mjs"), String(port), redisUrl, stream], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  let exitCode = null;
  child.once("exit", (code) => (exitCode = code));
  await waitForPort(port);
  return {
    url: `http://127.0.0.1:${port}`,
    /** The process's exit code once it exited (a crash), else null. */
    exitCode: () => exitCode,
    /** The peer's connected sockets: [{id, recovered, data, rooms}]. */
    async sockets() {
      return (await fetch(`http://127.0.0.1:${port}/sockets`)).json();
    },
    /** io.emit (or narrower, by `query`: to, except, volatile, binary) on the peer. */
    async emit(body, query = "") {
      const res = await fetch(`http://127.0.0.1:${port}/emit${query}`, { method: "POST", body: JSON.stringify(body) });
      if (res.status !== 201) throw new Error(`emit answered ${res.status}`);
    },
    /** io.in(to).disconnectSockets(close) on the peer (every socket when `to` is undefined). */
    async disconnectSockets(to, close = false) {
      const query = new URLSearchParams();
      if (to !== undefined) query.set("to", to);
      if (close) query.set("close", "1");
      const res = await fetch(`http://127.0.0.1:${port}/disconnect?${query}`, { method: "POST" });
      if (res.status !== 201) throw new Error(`disconnect answered ${res.status}`);
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    },
  };
}

/**
 * Connects a new official client to `url` carrying `from`'s session (its pid and last offset), as
 * the same client would after a load balancer sent its reconnect elsewhere. Resolves once it has
 * connected: `socket.recovered` says whether the server resumed the session.
 */
export async function connectWithSession(url, from, auth = {}) {
  const socket = io(url, { transports: ["websocket"], forceNew: true, autoConnect: false, reconnection: false, auth });
  socket._pid = from._pid;
  socket._lastOffset = from._lastOffset;
  const received = [];
  socket.on("notification", (notification, offset) => received.push({ notification, offset }));
  socket.connect();
  await waitFor(() => socket.connected, `client connects to ${url}`);
  return { socket, received };
}

/** Resolves once the session record of `pid` (`sio:session:<pid>`) exists on the Redis at `redisUrl`. */
export async function waitForRecord(redisUrl, pid) {
  const client = createClient({ url: redisUrl });
  await client.connect();
  try {
    await waitFor(async () => (await client.exists(`sio:session:${pid}`)) === 1, `the session record of ${pid}`);
  } finally {
    await client.quit();
  }
}

/**
 * Resolves once the stream `stream` on the Redis at `redisUrl` holds at least `length` entries. A Node
 * peer answers its emit before the adapter's XADD is done: a test that needs the entry in the log
 * before its next publish waits for it here.
 */
export async function waitForStreamLength(redisUrl, stream, length) {
  const client = createClient({ url: redisUrl });
  await client.connect();
  try {
    await waitFor(async () => (await client.xLen(stream)) >= length, `${length} entries in ${stream}`);
  } finally {
    await client.quit();
  }
}
