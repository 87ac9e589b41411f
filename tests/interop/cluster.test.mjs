// Several processes on one real Redis: a Node peer on the same stream, and an instance crash.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { startHub, notify, connectClient, waitFor, sleep } from "./hub.mjs";
import { startRedis, startFailoverProxy } from "./redis.mjs";
import { startNodePeer as startPeer } from "./peer.mjs";

const redis = await startRedis();
after(() => redis.stop());

/** The Node original's server (socket.io + redis-streams-adapter) on the same Redis and stream. */
const startNodePeer = (stream) => startPeer(redis.url, stream);

const portOf = (url) => Number(new URL(url).port);

function compareOffsets(a, b) {
  const [ams, aseq] = a.split("-").map(BigInt);
  const [bms, bseq] = b.split("-").map(BigInt);
  return ams === bms ? Number(aseq - bseq) : ams < bms ? -1 : 1;
}

test("a Node socket.io server with the redis-streams adapter and the Rust hub share one stream, both ways", async () => {
  const stream = "interop:peer";
  const hub = await startHub({ REDIS_URL: redis.url, HUB_STREAM_KEY: stream });
  const peer = await startNodePeer(stream);
  const rustClient = await connectClient(hub.url);
  const nodeClient = await connectClient(peer.url);
  try {
    const answer = await notify(hub.url, { title: "from rust", body: "POST /notifications/notify" });
    await waitFor(() => rustClient.received.length === 1 && nodeClient.received.length === 1, "both clients receive it");
    for (const client of [rustClient, nodeClient]) {
      assert.equal(client.received[0].notification.id, answer.id);
      assert.equal(client.received[0].notification.title, "from rust");
      assert.equal(client.received[0].offset, answer.offset, "the stream id is the offset on both sides");
    }

    const emitted = { id: "node-1", title: "from node", body: "io.emit", timestamp: Date.now() };
    const res = await fetch(`${peer.url}/emit`, { method: "POST", body: JSON.stringify(emitted) });
    assert.equal(res.status, 201);
    await waitFor(() => rustClient.received.length === 2 && nodeClient.received.length === 2, "both clients receive it");
    assert.deepEqual(rustClient.received[1].notification, emitted);
    assert.match(rustClient.received[1].offset, /^\d+-\d+$/);
    assert.equal(rustClient.received[1].offset, nodeClient.received[1].offset, "the stream id is the offset on both sides");
  } finally {
    rustClient.socket.close();
    nodeClient.socket.close();
    await Promise.all([hub.stop(), peer.stop()]);
  }
});

test("clients of an instance killed with SIGKILL recover on the other, each with every notification once, in order", async () => {
  const stream = "interop:crash";
  const a = await startHub({ REDIS_URL: redis.url, HUB_STREAM_KEY: stream });
  const b = await startHub({ REDIS_URL: redis.url, HUB_STREAM_KEY: stream });
  const balancer = await startFailoverProxy([portOf(a.url), portOf(b.url)]);
  const clients = await Promise.all(Array.from({ length: 20 }, () => connectClient(balancer.url)));
  try {
    const offsets = [];
    let killed = false;
    for (let n = 0; n < 300; n++) {
      if (n === 100) {
        await a.stop("SIGKILL");
        killed = true;
      }
      offsets.push((await notify(b.url, { title: `n${n}` })).offset);
      if (n % 10 === 0) await sleep(5);
    }
    assert.ok(killed);
    const expected = [...offsets].sort(compareOffsets);
    for (const client of clients) {
      await waitFor(() => client.socket.connected && client.received.length >= expected.length, "every notification arrives", 20_000);
    }
    await sleep(200); // a late duplicate would arrive now
    for (const [i, client] of clients.entries()) {
      assert.ok(client.connects.length >= 2, `client ${i} reconnected after the crash`);
      for (const reconnect of client.connects.slice(1)) {
        assert.equal(reconnect.recovered, true, `client ${i} recovered on the surviving instance`);
        assert.equal(reconnect.id, client.connects[0].id);
      }
      assert.deepEqual(client.received.map((r) => r.offset), expected, `client ${i}: every notification once, in order`);
    }
  } finally {
    for (const client of clients) client.socket.close();
    await balancer.stop();
    await Promise.all([a.stop(), b.stop()]);
  }
});

test("an instance stopped with SIGTERM sends its clients away and they recover on the other instance", async () => {
  const stream = "interop:sigterm";
  const a = await startHub({ REDIS_URL: redis.url, HUB_STREAM_KEY: stream });
  const b = await startHub({ REDIS_URL: redis.url, HUB_STREAM_KEY: stream });
  const balancer = await startFailoverProxy([portOf(a.url), portOf(b.url)]);
  const clients = await Promise.all(Array.from({ length: 5 }, () => connectClient(balancer.url)));
  try {
    const reasons = clients.map(() => []);
    clients.forEach((client, i) => client.socket.on("disconnect", (reason) => reasons[i].push(reason)));
    const before = await notify(b.url, { title: "before" });
    const started = Date.now();
    await a.stop("SIGTERM");
    assert.ok(Date.now() - started < 5000, "the stop is bounded");
    const missed = await notify(b.url, { title: "while moving" });
    for (const client of clients) {
      await waitFor(() => client.connects.length === 2 && client.received.length === 2, "client moves and catches up");
    }
    for (const [i, client] of clients.entries()) {
      assert.deepEqual(reasons[i], ["transport close"], "the server closed the transport; the client reconnects");
      assert.equal(client.connects[1].recovered, true);
      assert.equal(client.connects[1].id, client.connects[0].id);
      assert.deepEqual(client.received.map((r) => r.offset), [before.offset, missed.offset]);
    }
  } finally {
    for (const client of clients) client.socket.close();
    await balancer.stop();
    await Promise.all([a.stop(), b.stop()]);
  }
});
