// Targeted notifications and server-side disconnects in a mixed cluster: a hub and a Node peer
// (socket.io 4.8 + @socket.io/redis-streams-adapter 0.3) on one stream. The hub's `to` reaches the Node
// sockets in the room and no other; the hub's POST /sockets/disconnect of a Node socket's sid
// disconnects it ("io server disconnect"); a Node peer's disconnectSockets() disconnects hub sockets.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { startHub, notify, connectClient, waitFor } from "./hub.mjs";
import { startRedis } from "./redis.mjs";
import { startNodePeer, connectWithSession } from "./peer.mjs";

const redis = await startRedis();
after(() => redis.stop());

async function withCluster(stream, run) {
  const hub = await startHub({ REDIS_URL: redis.url, HUB_STREAM_KEY: stream });
  const peer = await startNodePeer(redis.url, stream);
  try {
    await run(hub, peer);
  } finally {
    await Promise.all([hub.stop(), peer.stop()]);
  }
}

/** `reason` once `socket` disconnects. */
function disconnected(socket) {
  return new Promise((resolve) => socket.once("disconnect", resolve));
}

test("the hub's notify to a room reaches the Node sockets in it and no other", async () => {
  await withCluster("targeted:to", async (hub, peer) => {
    const ops = await connectWithSession(peer.url, {}, { room: "ops" });
    const other = await connectWithSession(peer.url, {}, { room: "dev" });
    try {
      const answer = await notify(hub.url, { title: "for ops", to: "ops" });
      assert.deepEqual(Object.keys(answer).sort(), ["body", "id", "offset", "timestamp", "title"]);
      await notify(hub.url, { title: "for all but ops", except: ["ops"] });
      await waitFor(() => other.received.length === 1, "the except-ops notification reaches dev");
      await waitFor(() => ops.received.length === 1, "the ops notification reaches ops");
      assert.equal(ops.received[0].notification.title, "for ops");
      assert.equal(ops.received[0].offset, answer.offset);
      assert.equal(other.received[0].notification.title, "for all but ops", "dev never got the ops one");
    } finally {
      ops.socket.close();
      other.socket.close();
    }
  });
});

test("the hub's POST /sockets/disconnect of a Node socket's sid disconnects it and no other", async () => {
  await withCluster("targeted:disconnect-node", async (hub, peer) => {
    const target = await connectWithSession(peer.url, {});
    const bystander = await connectWithSession(peer.url, {});
    try {
      const gone = disconnected(target.socket);
      const res = await fetch(`${hub.url}/sockets/disconnect`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ sid: target.socket.id }),
      });
      assert.equal(res.status, 202);
      assert.equal(await gone, "io server disconnect");
      await peer.emit({ title: "still here" });
      await waitFor(() => bystander.received.length === 1, "the other Node socket keeps receiving");
      assert.equal(bystander.socket.connected, true);
    } finally {
      target.socket.close();
      bystander.socket.close();
    }
  });
});

test("a Node peer's disconnectSockets() disconnects hub sockets, which do not reconnect", async () => {
  await withCluster("targeted:disconnect-hub", async (hub, peer) => {
    const client = await connectClient(hub.url);
    try {
      const gone = disconnected(client.socket);
      await peer.disconnectSockets(undefined, true);
      assert.equal(await gone, "io server disconnect");
      // The client's own rule: after "io server disconnect" it is not active (no reconnection).
      assert.equal(client.socket.active, false, "an io server disconnect is not reconnected");
      assert.equal(client.connects.length, 1);
    } finally {
      client.socket.close();
    }
  });
});
