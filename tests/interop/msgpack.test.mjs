// The msgpack parser (HUB_PARSER=msgpack) with the official client and socket.io-msgpack-parser:
// every packet one binary message, binary values inline. Notifications, the `notify` ack and recovery
// on the hub; CONNECT with auth, binary both ways, acks both ways and namespaces on the conformance
// application; a client of the other parser refused cleanly either way.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { io } from "socket.io-client";
import msgpackParser from "socket.io-msgpack-parser";
import { startHub, notify, connectClient, dropClient, reconnectClient, waitFor, sleep, TRANSPORT_SETTINGS } from "./hub.mjs";
import { freePort, waitForPort } from "./redis.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const CONFORMANCE_BIN = process.env.CONFORMANCE_BIN ?? path.join(root, "target/debug/conformance");

const hub = await startHub({ HUB_PARSER: "msgpack" });
const jsonHub = await startHub();
const port = await freePort();
const app = spawn(CONFORMANCE_BIN, ["socket.io"], {
  env: { ...process.env, PORT: String(port), RUST_LOG: "warn", HUB_PARSER: "msgpack" },
  stdio: "inherit",
});
await waitForPort(port);
after(() => Promise.all([hub.stop(), jsonHub.stop(), app.kill("SIGTERM")]));

/** Resolves once `socket` connects; rejects on connect_error. */
function connected(socket) {
  return new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", reject);
  });
}

for (const { label, transports } of TRANSPORT_SETTINGS) {
  test(`a msgpack client receives notifications, gets its notify ack, and recovers what it missed [${label}]`, async () => {
    const client = await connectClient(hub.url, { transports, parser: msgpackParser });
    try {
      const first = await notify(hub.url, { title: "one" });
      await waitFor(() => client.received.length === 1, "the notification arrives");
      assert.equal(client.received[0].notification.title, "one");
      assert.equal(client.received[0].offset, first.offset);

      const ack = await client.socket.timeout(5000).emitWithAck("notify", { title: "from the socket" });
      assert.equal(typeof ack.offset, "string", `ack ${JSON.stringify(ack)}`);
      await waitFor(() => client.received.length === 2, "the socket's notification arrives");
      assert.deepEqual(
        [client.received[1].notification.title, client.received[1].offset],
        ["from the socket", ack.offset],
      );

      const id = client.socket.id;
      await dropClient(client);
      const missed = [];
      for (let n = 0; n < 3; n++) missed.push((await notify(hub.url, { title: `missed ${n}` })).offset);
      await reconnectClient(client);
      assert.equal(client.socket.recovered, true);
      assert.equal(client.socket.id, id);
      await waitFor(() => client.received.length >= 5, "the missed notifications arrive");
      await sleep(100); // a duplicate would arrive now
      assert.deepEqual(client.received.map((r) => r.offset), [first.offset, ack.offset, ...missed]);
      assert.deepEqual(client.received.slice(2).map((r) => r.replayed), [true, true, true]);
    } finally {
      client.socket.close();
    }
  });
}

for (const transports of [["websocket"], ["polling"]]) {
  test(`msgpack: CONNECT with auth, binary and acks both ways, a second namespace joined and left, an unknown one refused [${transports[0]}]`, async () => {
    const socket = io(`http://127.0.0.1:${port}`, { transports, forceNew: true, parser: msgpackParser, auth: { token: "abc" } });
    try {
      const auth = new Promise((resolve) => socket.once("auth", resolve));
      await connected(socket);
      assert.deepEqual(await auth, { token: "abc" }, "the CONNECT's auth reached the application");

      const back = new Promise((resolve) => socket.once("message-back", (...args) => resolve(args)));
      socket.emit("message", Buffer.from([1, 2, 3]), { nested: Buffer.from([4, 5, 6]), text: "t" });
      const [first, second] = await back;
      assert.ok(Buffer.isBuffer(first), "binary comes back as binary");
      assert.deepEqual([...first], [1, 2, 3]);
      assert.deepEqual([...second.nested], [4, 5, 6]);
      assert.equal(second.text, "t");

      // A Date (notepack's fixext 8) reaches the application as the JSON parser carries it.
      const date = new Promise((resolve) => socket.once("message-back", resolve));
      socket.emit("message", new Date(1_732_740_000_123));
      assert.equal(await date, "2024-11-27T20:40:00.123Z");

      const acked = await socket.timeout(5000).emitWithAck("message-with-ack", Buffer.from([7]), "x");
      assert.deepEqual([...acked], [7], "the ack's first argument");

      socket.on("question", (n, ack) => ack(n + 1));
      const answered = new Promise((resolve) => socket.once("answered", resolve));
      socket.emit("ask", 41);
      assert.equal(await answered, 42, "the client's ACK reached the server");

      // The manager's sockets connect as they are made (autoConnect): listen before any I/O.
      const custom = socket.io.socket("/custom", { auth: { n: 1 } });
      await connected(custom);
      const customBack = new Promise((resolve) => custom.once("message-back", resolve));
      custom.emit("message", "on /custom");
      assert.equal(await customBack, "on /custom");
      custom.disconnect(); // a DISCONNECT packet for /custom: / stays joined
      const again = new Promise((resolve) => socket.once("message-back", resolve));
      socket.emit("message", "still here");
      assert.equal(await again, "still here");
      assert.equal(socket.connected, true);

      const nope = socket.io.socket("/nope");
      const refusal = new Promise((resolve) => nope.once("connect_error", resolve));
      assert.equal((await refusal).message, "Invalid namespace");
      assert.equal(socket.connected, true, "a refused CONNECT keeps the connection");
    } finally {
      socket.io.engine?.close();
      socket.close();
    }
  });
}

test("a client of the other parser is refused cleanly either way, and matching clients keep being served", async () => {
  const cases = [
    { url: hub.url, options: {}, what: "a JSON-parser client against a msgpack hub" },
    { url: jsonHub.url, options: { parser: msgpackParser }, what: "a msgpack client against a JSON hub" },
  ];
  for (const { url, options, what } of cases) {
    const socket = io(url, { transports: ["websocket"], forceNew: true, reconnection: false, ...options });
    try {
      const closed = new Promise((resolve) => socket.io.once("close", resolve));
      let connects = 0;
      socket.on("connect", () => connects++);
      const reason = await Promise.race([closed, sleep(5000).then(() => "still open after 5 s")]);
      assert.equal(reason, "transport close", what);
      assert.equal(connects, 0, `${what} never connects`);
    } finally {
      socket.close();
    }
  }
  const client = await connectClient(hub.url, { parser: msgpackParser });
  try {
    const sent = await notify(hub.url, { title: "after the refusals" });
    await waitFor(() => client.received.some((r) => r.offset === sent.offset), "a msgpack client is still served");
  } finally {
    client.socket.close();
  }
});
