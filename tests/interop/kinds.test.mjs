// Every kind of stream entry a Node peer (socket.io 4.8 + @socket.io/redis-streams-adapter 0.3) writes,
// delivered to hub sockets as Node delivers it to its own sockets, live and on a resume; and the hub's
// targeted entries read by Node peers.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { createClient } from "redis";
import { startHub, notify, connectClient, dropClient, reconnectClient, waitFor, sleep } from "./hub.mjs";
import { startRedis } from "./redis.mjs";
import { startNodePeer, connectWithSession, waitForRecord } from "./peer.mjs";

const redis = await startRedis();
after(() => redis.stop());

/** A hub and a Node peer on one stream; `run` gets both and both are stopped afterwards. */
async function withCluster(stream, run, env = {}) {
  const hub = await startHub({ REDIS_URL: redis.url, HUB_STREAM_KEY: stream, HUB_INSTANCE_LEASE_MS: "500", ...env });
  const peer = await startNodePeer(redis.url, stream);
  try {
    await run(hub, peer);
  } finally {
    await Promise.all([hub.stop(), peer.stop()]);
  }
}

/** XADDs an entry to `stream` exactly as the adapter (and the hub's `broadcast_data`) writes one. */
async function xadd(stream, data, { type = "3", nsp = "/" } = {}) {
  const client = createClient({ url: redis.url });
  await client.connect();
  try {
    return await client.xAdd(stream, "*", { uid: "0123456789abcdef", nsp, type, data });
  } finally {
    await client.quit();
  }
}

/** The value of a counter line in the hub's /metrics text (0 when absent). */
async function metric(hub, line) {
  const text = await (await fetch(`${hub.url}/metrics`)).text();
  const found = text.split("\n").find((l) => l.startsWith(`${line} `));
  return found ? Number(found.slice(line.length + 1)) : 0;
}

/** Orders stream ids ("<ms>-<seq>") numerically. */
function compareOffsets(a, b) {
  const [ams, aseq] = a.split("-").map(BigInt);
  const [bms, bseq] = b.split("-").map(BigInt);
  return ams === bms ? Number(aseq - bseq) : ams < bms ? -1 : 1;
}

/** What a client got for one emit: the payload (a Buffer as such) and the offset argument. */
const seen = (client, i) => ({ notification: client.received[i].notification, offset: client.received[i].offset });

test("a Node peer's except, volatile and binary emits reach a hub socket as they reach a Node socket", async () => {
  await withCluster("kinds:live", async (hub, peer) => {
    // Side by side: a hub socket and a Node socket in no room, and a Node socket in ops.
    const onHub = await connectClient(hub.url);
    const onNode = await connectWithSession(peer.url, {});
    const inOps = await connectWithSession(peer.url, {}, { room: "ops" });
    try {
      // One at a time, each awaited: socket.io drops a volatile packet while the transport is
      // still writing the one before (`transport.writable` false), so on a loaded machine the Node
      // socket would miss it when the emits follow each other at once.
      const both = (n, what) =>
        waitFor(() => onHub.received.length === n && onNode.received.length === n, `both sockets get ${what}`);
      await peer.emit({ title: "not for ops" }, "?except=ops");
      await both(1, "the except emit");
      await peer.emit({ title: "volatile" }, "?volatile=1");
      await both(2, "the volatile emit");
      await peer.emit({ title: "binary" }, "?binary=1");
      await both(3, "the binary emit");
      await peer.emit({ title: "to elsewhere" }, "?to=elsewhere");
      await peer.emit({ title: "last" });
      await both(4, "four");
      await waitFor(() => inOps.received.length === 3, "the ops socket gets all but the except");
      for (let i = 0; i < 4; i++) assert.deepEqual(seen(onHub, i), seen(onNode, i), `emit ${i} as on Node`);
      assert.deepEqual(onHub.received[0].notification, { title: "not for ops" });
      assert.match(onHub.received[0].offset, /^\d+-\d+$/);
      assert.deepEqual(onHub.received[1].notification, { title: "volatile" });
      assert.equal(onHub.received[1].offset, undefined, "a volatile emit carries no offset");
      assert.ok(Buffer.isBuffer(onHub.received[2].notification), "binary arrives as a Buffer");
      assert.deepEqual(onHub.received[2].notification, Buffer.from(JSON.stringify({ title: "binary" })));
      assert.match(onHub.received[2].offset, /^\d+-\d+$/);
      assert.deepEqual(onHub.received[3].notification, { title: "last" });
      assert.deepEqual(
        inOps.received.map((r) => r.notification.title ?? "binary"),
        ["volatile", "binary", "last"],
      );
    } finally {
      for (const client of [onHub, onNode, inOps]) client.socket.close();
    }
  });
});

test("a Node peer's binary emit reaches a hub socket on long-polling as a Buffer too", async () => {
  await withCluster("kinds:polling", async (hub, peer) => {
    const onHub = await connectClient(hub.url, { transports: ["polling"] });
    const onNode = await connectWithSession(peer.url, {});
    try {
      await peer.emit({ title: "binary" }, "?binary=1");
      await waitFor(() => onHub.received.length === 1 && onNode.received.length === 1, "both get it");
      const bytes = Buffer.from(JSON.stringify({ title: "binary" }));
      assert.deepEqual(Buffer.from(onHub.received[0].notification), bytes);
      assert.equal(onHub.received[0].offset, onNode.received[0].offset);
    } finally {
      onHub.socket.close();
      onNode.socket.close();
    }
  });
});

test("a Node peer's emit to a room reaches only the Node sockets in it, not hub sockets outside it", async () => {
  await withCluster("kinds:to-room", async (hub, peer) => {
    const onHub = await connectClient(hub.url);
    const inOps = await connectWithSession(peer.url, {}, { room: "ops" });
    try {
      await peer.emit({ title: "ops only" }, "?to=ops");
      await peer.emit({ title: "everyone" });
      await waitFor(() => onHub.received.length === 1 && inOps.received.length === 2, "delivered");
      assert.deepEqual(onHub.received[0].notification, { title: "everyone" });
      assert.deepEqual(inOps.received.map((r) => r.notification.title), ["ops only", "everyone"]);
    } finally {
      onHub.socket.close();
      inOps.socket.close();
    }
  });
});

// Needs the sid room of the rooms work (a hub socket is in its own sid room): passes once it lands.
test("a Node peer's emit to a hub socket's id reaches that socket only", async () => {
  await withCluster("kinds:to-sid", async (hub, peer) => {
    const target = await connectClient(hub.url);
    const other = await connectClient(hub.url);
    try {
      await peer.emit({ title: "direct" }, `?to=${encodeURIComponent(target.socket.id)}`);
      await peer.emit({ title: "everyone" });
      await waitFor(() => target.received.length === 2 && other.received.length === 1, "delivered");
      assert.deepEqual(target.received.map((r) => r.notification.title), ["direct", "everyone"]);
      assert.match(target.received[0].offset, /^\d+-\d+$/);
    } finally {
      target.socket.close();
      other.socket.close();
    }
  });
});

test("a Node socket in a room receives the hub's targeted entries, in the adapter's format", async () => {
  await withCluster("kinds:hub-targeted", async (hub, peer) => {
    const inOps = await connectWithSession(peer.url, {}, { room: "ops" });
    const outside = await connectWithSession(peer.url, {});
    try {
      // Exactly what the hub's adapter::broadcast_data writes for {to: "ops"} and {except: "ops"}.
      const entry = (title, rooms, except) =>
        JSON.stringify({ packet: { type: 2, data: ["notification", { title }] }, opts: { rooms, except, flags: {} } });
      const toOps = await xadd("kinds:hub-targeted", entry("to ops", ["ops"], []));
      const exceptOps = await xadd("kinds:hub-targeted", entry("except ops", [], ["ops"]));
      await waitFor(() => inOps.received.length === 1 && outside.received.length === 1, "delivered");
      assert.deepEqual(inOps.received[0], { notification: { title: "to ops" }, offset: toOps });
      assert.deepEqual(outside.received[0], { notification: { title: "except ops" }, offset: exceptOps });
    } finally {
      inOps.socket.close();
      outside.socket.close();
    }
  });
});

test("entries expecting acks and room operations are refused, counted, and the hub keeps delivering", async () => {
  await withCluster("kinds:refused", async (hub) => {
    const onHub = await connectClient(hub.url);
    try {
      const withAck = JSON.stringify({
        packet: { type: 2, data: ["notification", { title: "ack" }], id: 3 },
        opts: { rooms: [], except: [], flags: {} },
      });
      await xadd("kinds:refused", withAck);
      const join = JSON.stringify({ opts: { rooms: [], except: [], flags: {} }, rooms: ["ops"] });
      await xadd("kinds:refused", join, { type: "4" });
      const after = await notify(hub.url, { title: "after" });
      await waitFor(() => onHub.received.length === 1, "the next notification arrives");
      assert.equal(onHub.received[0].offset, after.offset, "only the deliverable entry");
      assert.equal(onHub.socket.connected, true);
      assert.equal(await metric(hub, 'hub_stream_entries_refused_total{kind="ack"}'), 1);
      assert.equal(await metric(hub, 'hub_stream_entries_refused_total{kind="room_operation"}'), 1);
    } finally {
      onHub.socket.close();
    }
  });
});

test("a hub socket that resumes gets the Node peer's except, binary and sid-room emits replayed, not volatile ones", async () => {
  await withCluster("kinds:resume-hub", async (hub, peer) => {
    const client = await connectClient(hub.url);
    try {
      await notify(hub.url, { title: "seen" });
      await waitFor(() => client.received.length === 1, "the notification arrives");
      const sid = client.connects[0].id;
      await dropClient(client);
      await peer.emit({ title: "except elsewhere" }, "?except=elsewhere");
      await peer.emit({ title: "except own sid" }, `?except=${encodeURIComponent(sid)}`);
      await peer.emit({ title: "volatile" }, "?volatile=1");
      await peer.emit({ title: "binary" }, "?binary=1");
      await peer.emit({ title: "own sid" }, `?to=${encodeURIComponent(sid)}`);
      await peer.emit({ title: "elsewhere" }, "?to=elsewhere");
      const plain = await notify(hub.url, { title: "plain" });
      await reconnectClient(client);
      const reconnect = client.connects.at(-1);
      assert.equal(reconnect.recovered, true);
      assert.equal(reconnect.id, sid);
      await waitFor(() => client.received.length === 5, "the missed notifications arrive");
      await sleep(100); // a duplicate or a left-out entry would arrive now
      const missed = client.received.slice(1);
      assert.deepEqual(
        missed.map((r) => (Buffer.isBuffer(r.notification) ? `buffer ${r.notification}` : r.notification.title)),
        ["except elsewhere", `buffer ${JSON.stringify({ title: "binary" })}`, "own sid", "plain"],
      );
      assert.ok(missed.every((r) => r.replayed), "all replayed before the connect event");
      assert.equal(missed.at(-1).offset, plain.offset);
      const offsets = missed.map((r) => r.offset);
      assert.deepEqual([...offsets].sort(compareOffsets), offsets, "in stream order");
    } finally {
      client.socket.close();
    }
  });
});

test("a Node socket in ops that resumes on the hub gets replayed what Node would replay to it", async () => {
  await withCluster("kinds:resume-node", async (hub, peer) => {
    const onNode = await connectWithSession(peer.url, {}, { room: "ops" });
    await peer.emit({ title: "seen on node" });
    await waitFor(() => onNode.received.length === 1, "the notification arrives");
    const sid = onNode.socket.id;
    onNode.socket.io.engine.close();
    await waitForRecord(redis.url, onNode.socket._pid);
    await peer.emit({ title: "to ops" }, "?to=ops");
    await peer.emit({ title: "except ops" }, "?except=ops");
    await peer.emit({ title: "to elsewhere" }, "?to=elsewhere");
    await peer.emit({ title: "to own sid" }, `?to=${encodeURIComponent(sid)}`);
    const plain = await notify(hub.url, { title: "plain" });
    const onHub = await connectWithSession(hub.url, onNode.socket, { room: "ops" });
    try {
      assert.equal(onHub.socket.recovered, true, "the hub resumed the Node record");
      assert.equal(onHub.socket.id, sid);
      await waitFor(() => onHub.received.length === 3, "the missed notifications arrive");
      await sleep(100); // a left-out entry would arrive now
      assert.deepEqual(onHub.received.map((r) => r.notification.title), ["to ops", "to own sid", "plain"]);
      assert.equal(onHub.received.at(-1).offset, plain.offset);
    } finally {
      onHub.socket.close();
    }
  });
});

// Needs the rooms work (a resumed socket is back in its record's rooms for live delivery).
test("a Node socket in ops resumed on the hub keeps receiving ops afterwards", async () => {
  await withCluster("kinds:resume-node-live", async (hub, peer) => {
    const onNode = await connectWithSession(peer.url, {}, { room: "ops" });
    await peer.emit({ title: "seen on node" });
    await waitFor(() => onNode.received.length === 1, "the notification arrives");
    onNode.socket.io.engine.close();
    await waitForRecord(redis.url, onNode.socket._pid);
    const onHub = await connectWithSession(hub.url, onNode.socket, { room: "ops" });
    try {
      assert.equal(onHub.socket.recovered, true);
      await peer.emit({ title: "ops later" }, "?to=ops");
      await waitFor(() => onHub.received.length === 1, "the live ops emit arrives");
      assert.deepEqual(onHub.received[0].notification, { title: "ops later" });
    } finally {
      onHub.socket.close();
    }
  });
});
