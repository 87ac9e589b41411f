// Binary attachments and acks in both directions with the official client, over WebSocket and over
// long-polling, against the conformance application (`message` comes back as `message-back`,
// `message-with-ack` is acked, `ask` makes the server emit `question` asking for an ack).

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { io } from "socket.io-client";
import { freePort, waitForPort } from "./redis.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const CONFORMANCE_BIN = process.env.CONFORMANCE_BIN ?? path.join(root, "target/debug/conformance");

const port = await freePort();
const app = spawn(CONFORMANCE_BIN, ["socket.io"], { env: { ...process.env, PORT: String(port), RUST_LOG: "warn" }, stdio: "inherit" });
await waitForPort(port);
after(() => app.kill("SIGTERM"));

for (const transports of [["websocket"], ["polling"]]) {
  test(`an event with two binary attachments makes a round trip, and acks work both ways [${transports[0]}]`, async () => {
    const socket = io(`http://127.0.0.1:${port}`, { transports, forceNew: true });
    try {
      await new Promise((resolve, reject) => {
        socket.once("connect", resolve);
        socket.once("connect_error", reject);
      });
      const back = new Promise((resolve) => socket.once("message-back", (...args) => resolve(args)));
      socket.emit("message", Buffer.from([1, 2, 3]), { nested: Buffer.from([4, 5, 6]), text: "t" });
      const [first, second] = await back;
      assert.deepEqual([...first], [1, 2, 3]);
      assert.deepEqual([...second.nested], [4, 5, 6]);
      assert.equal(second.text, "t");

      const acked = await socket.timeout(5000).emitWithAck("message-with-ack", Buffer.from([7]), Buffer.from([8, 9]));
      assert.deepEqual([...acked], [7], "the ack's first argument");

      // Server to client: the server asks, the client's ack answer reaches the server's application.
      socket.on("question", (n, ack) => ack(n + 1));
      const answered = new Promise((resolve) => socket.once("answered", resolve));
      socket.emit("ask", 41);
      assert.equal(await answered, 42);
    } finally {
      socket.close();
    }
  });
}
