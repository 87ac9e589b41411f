// Test fixture: starts the hub binary on a free loopback port, and drives the official client.
//
// The binary is the one `cargo test` built (target/debug/realtime-hub), or $HUB_BIN.

import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { io } from "socket.io-client";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const HUB_BIN = process.env.HUB_BIN ?? path.join(root, "target/debug/realtime-hub");

/**
 * Starts a hub; `env` adds settings (e.g. HUB_RECOVERY_WINDOW_MS, REDIS_URL). Resolves once it
 * listens and, on Redis, once it is ready (reading the stream).
 */
export async function startHub(env = {}, port = 0) {
  const child = spawn(HUB_BIN, ["--host", "127.0.0.1", "--port", String(port)], {
    // A 1 s keep-alive: a stopping hub waits for idle keep-alive connections (Node's fetch keeps
    // one) to time out, which at the default 5 s made every stop cost 5 s of the suite's time.
    env: { ...process.env, RUST_LOG: "info", HUB_KEEP_ALIVE_MS: "1000", ...env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let log = "";
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`hub did not start within 10 s:\n${log}`)), 10_000);
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(new Error(`could not start ${HUB_BIN} (run cargo build first): ${err.message}`));
    });
    child.on("exit", (code) => reject(new Error(`hub exited with ${code}:\n${log}`)));
    child.stderr.on("data", (chunk) => {
      log += chunk;
      const match = /listening on (http:\/\/[0-9.]+:\d+)/.exec(log);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
  });
  child.removeAllListeners("exit");
  const ready = () => fetch(`${url}/readyz`).then((res) => res.status === 200, () => false);
  await waitFor(ready, `hub ready:\n${log}`);
  return {
    url,
    log: () => log,
    /** The process id (to freeze it with SIGSTOP, as a hung host would be). */
    pid: () => child.pid,
    /** Ends the process with `signal` (SIGKILL for a crash) and waits for it. */
    async stop(signal = "SIGTERM") {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill(signal);
      await exited;
    },
  };
}

/** POSTs a notification; resolves to the JSON answer, failing on anything but 201. */
export async function notify(url, body) {
  // Keyed, so that a retry publishes once: the fixture's hubs close idle keep-alive connections
  // after 1 s, and a request sent on one just as the hub closes it fails as a network error
  // ("other side closed") without an answer.
  const key = `fixture-${randomUUID()}`;
  let res;
  for (let attempt = 1; ; attempt++) {
    try {
      res = await fetch(`${url}/notifications/notify`, {
        method: "POST",
        headers: { "content-type": "application/json", "idempotency-key": key },
        body: JSON.stringify(body),
      });
      break;
    } catch (err) {
      if (attempt >= 3) throw err;
    }
  }
  const answer = await res.json();
  if (res.status !== 201) throw new Error(`notify answered ${res.status}: ${JSON.stringify(answer)}`);
  return answer;
}

/**
 * The transport settings every interop case runs under: the client's defaults (HTTP long-polling,
 * then the upgrade to WebSocket), long-polling only, and WebSocket only.
 */
export const TRANSPORT_SETTINGS = [
  { label: "defaults: polling then upgrade", transports: undefined },
  { label: "polling only", transports: ["polling"] },
  { label: "websocket only", transports: ["websocket"] },
];

/**
 * A connected official client that records every notification it receives, with whether it came
 * as a replay (handed over after a recovered reconnect, before the `connect` event). `transports`
 * undefined keeps the client's defaults.
 */
export async function connectClient(url, options = {}) {
  // Only an absent `transports` means WebSocket only: a destructuring default would replace an
  // explicit `undefined` too (the client's defaults, polling then the upgrade) with it.
  const { transports, ...rest } = "transports" in options ? options : { ...options, transports: ["websocket"] };
  const socket = io(url, {
    ...(transports ? { transports } : {}),
    forceNew: true,
    reconnectionDelay: 50,
    reconnectionDelayMax: 200,
    ...rest,
  });
  const client = { socket, received: [], connects: [], awaitingConnect: true };
  socket.on("notification", (notification, offset) => {
    client.received.push({ notification, offset, replayed: client.awaitingConnect && socket.recovered === true });
  });
  socket.on("connect", () => {
    client.awaitingConnect = false;
    client.connects.push({ id: socket.id, recovered: socket.recovered });
  });
  socket.on("disconnect", () => {
    client.awaitingConnect = true;
  });
  await waitFor(() => socket.connected, "client connects");
  return client;
}

/** Drops the transport as a network failure would, without reconnecting until `reconnect`. */
export async function dropClient(client) {
  client.socket.io.reconnection(false);
  client.socket.io.engine.close();
  await waitFor(() => !client.socket.connected, "client disconnects");
}

/** Reconnects a dropped client; resolves once it is connected again. */
export async function reconnectClient(client) {
  const connects = client.connects.length;
  client.socket.io.reconnection(true);
  client.socket.connect();
  await waitFor(() => client.connects.length > connects, "client reconnects");
}

/** Polls `predicate` (which may be async) every 10 ms; rejects with `what` after `timeoutMs`. */
export async function waitFor(predicate, what, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting: ${what}`);
    await sleep(10);
  }
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
