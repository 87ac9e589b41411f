// What a JavaScript client can send, the hub reads as Node does: a string cut inside an emoji (its
// lone high surrogate travels as a `\ud83d` escape) is relayed, with the half read as U+FFFD, and the
// connection stays open. Against the conformance application (`message` comes back as `message-back`).

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { io } from "socket.io-client";
import { freePort, waitForPort } from "./redis.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const CONFORMANCE_BIN = process.env.CONFORMANCE_BIN ?? path.join(root, "target/debug/conformance");

/** `promise`, or a failure naming `what` after 5 s (a disconnect fails it at once). */
function within(promise, what, socket) {
  return Promise.race([
    promise,
    new Promise((_, reject) => setTimeout(() => reject(new Error(`waited 5 s for ${what}`)), 5000)),
    new Promise((_, reject) => socket.once("disconnect", (reason) => reject(new Error(`disconnected (${reason}) waiting for ${what}`)))),
  ]);
}

const port = await freePort();
const app = spawn(CONFORMANCE_BIN, ["socket.io"], { env: { ...process.env, PORT: String(port), RUST_LOG: "warn" }, stdio: "inherit" });
await waitForPort(port);
after(() => app.kill("SIGTERM"));

for (const transports of [["websocket"], ["polling"]]) {
  test(`a string cut inside an emoji is relayed with U+FFFD and the connection stays open [${transports[0]}]`, async () => {
    const socket = io(`http://127.0.0.1:${port}`, { transports, forceNew: true, auth: { name: "\udc00x" } });
    try {
      const auth = new Promise((resolve) => socket.once("auth", resolve));
      const connected = new Promise((resolve, reject) => {
        socket.once("connect", resolve);
        socket.once("connect_error", reject);
      });
      await within(connected, "the connection", socket);
      assert.deepEqual(await within(auth, "the auth event", socket), { name: "\ufffdx" }, "the CONNECT auth payload");
      const cut = "cut " + "😀".slice(0, 1);
      assert.equal(cut.length, 5, "a lone high surrogate at the end");
      const back = new Promise((resolve) => socket.once("message-back", (...args) => resolve(args)));
      socket.emit("message", cut, { [cut]: "😀" });
      assert.deepEqual(await within(back, "message-back", socket), ["cut \ufffd", { "cut \ufffd": "😀" }]);
      const acked = await socket.timeout(5000).emitWithAck("message-with-ack", "😀".slice(1));
      assert.equal(acked, "\ufffd");
      assert.equal(socket.connected, true);
    } finally {
      socket.close();
    }
  });
}
