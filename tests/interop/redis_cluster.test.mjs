// A hub and a Node peer (socket.io 4.8 + the redis-streams adapter on node-redis's cluster client)
// sharing one stream and the session records on a real Redis Cluster of three masters.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { startHub, notify, connectClient, dropClient, waitFor } from "./hub.mjs";
import { startRedisCluster } from "./redis_cluster.mjs";
import { startNodePeer, connectWithSession } from "./peer.mjs";

const cluster = await startRedisCluster();
after(() => cluster.stop());

test("on a Redis Cluster a hub and a Node peer deliver each other's notifications and resume each other's sessions", async () => {
  const stream = "cluster:interop";
  const hub = await startHub({ REDIS_URL: cluster.url, HUB_STREAM_KEY: stream, HUB_INSTANCE_LEASE_MS: "500" });
  const peer = await startNodePeer(cluster.url, stream);
  const clients = [];
  try {
    const onHub = await connectClient(hub.url);
    const onPeer = await connectWithSession(peer.url, {});
    clients.push(onHub.socket, onPeer.socket);
    await notify(hub.url, { title: "from the hub" });
    await peer.emit({ title: "from the peer" });
    for (const [name, client] of [["hub", onHub], ["peer", onPeer]]) {
      await waitFor(() => client.received.length === 2, `both notifications reach the ${name}'s client`);
      assert.deepEqual(
        client.received.map((r) => r.notification.title),
        ["from the hub", "from the peer"],
        `the ${name}'s client, in log order`,
      );
    }
    // A hub client drops, misses one, and resumes on the Node peer: the hub's record
    // (sio:session:<pid>, written on the record's slot) is the adapter's.
    const sid = onHub.socket.id;
    await dropClient(onHub);
    await waitFor(
      async () => (await cluster.cli("EXISTS", `sio:session:${onHub.socket._pid}`)) === "1",
      "the hub writes the dropped session's record",
    );
    await notify(hub.url, { title: "missed" });
    const moved = await connectWithSession(peer.url, onHub.socket);
    clients.push(moved.socket);
    assert.equal(moved.socket.recovered, true, "the Node peer resumed the hub's record on the cluster");
    assert.equal(moved.socket.id, sid);
    await waitFor(() => moved.received.length === 1, "the missed notification is replayed");
    assert.equal(moved.received[0].notification.title, "missed");
    assert.equal(peer.exitCode(), null, "the peer is alive");
  } finally {
    for (const socket of clients) socket.close();
    await Promise.all([hub.stop(), peer.stop()]);
  }
});
