// Session records shared with Node peers (socket.io 4.8 + the redis-streams adapter) on one Redis:
// what the hub writes reads, to the adapter, as a record it wrote itself; a session live on the hub is
// resumable nowhere; and a resume never reports recovered=true with a gap.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { startHub, notify, connectClient, dropClient, reconnectClient, waitFor, sleep } from "./hub.mjs";
import { startRedis } from "./redis.mjs";
import { startNodePeer, connectWithSession, waitForRecord, waitForStreamLength } from "./peer.mjs";

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

test("a hub client that moves to a Node peer resumes there with socket.data {} and the peer's middleware runs", async () => {
  await withCluster("records:data", async (hub, peer) => {
    const client = await connectClient(hub.url);
    await notify(hub.url, { title: "seen" });
    await waitFor(() => client.received.length === 1, "the notification arrives");
    const sid = client.socket.id;
    await dropClient(client);
    const moved = await connectWithSession(peer.url, client.socket);
    try {
      assert.equal(moved.socket.recovered, true, "the Node peer resumed the hub's record");
      assert.equal(moved.socket.id, sid);
      const [socket] = await peer.sockets();
      assert.deepEqual(socket.data, { seen: true }, "data was {} in the record, then the middleware ran");
      assert.equal(peer.exitCode(), null, "the peer is alive");
    } finally {
      moved.socket.close();
      client.socket.close();
    }
  });
});

test("a Node session with a room and data, resumed on the hub and dropped again, keeps both on the way back", async () => {
  await withCluster("records:rooms", async (hub, peer) => {
    const auth = { user: "alice", room: "ops" };
    const onNode = await connectWithSession(peer.url, {}, auth);
    await peer.emit({ title: "seen on node" });
    await waitFor(() => onNode.received.length === 1, "the notification arrives");
    const sid = onNode.socket.id;
    onNode.socket.io.engine.close();
    await waitForRecord(redis.url, onNode.socket._pid);

    const onHub = await connectWithSession(hub.url, onNode.socket, auth);
    assert.equal(onHub.socket.recovered, true, "the hub resumed the Node record");
    assert.equal(onHub.socket.id, sid);
    await sleep(2500); // the hub refreshes its live copy in between (every half window)
    onHub.socket.io.engine.close();
    await waitForRecord(redis.url, onHub.socket._pid);

    const back = await connectWithSession(peer.url, onHub.socket, auth);
    try {
      assert.equal(back.socket.recovered, true, "the Node peer resumed the hub's record");
      assert.equal(back.socket.id, sid);
      const [socket] = await peer.sockets();
      assert.deepEqual(socket.data, { seen: true, user: "alice" }, "data as the peer wrote it");
      assert.deepEqual(socket.rooms.sort(), [sid, "ops"].sort(), "rooms as the peer wrote them");
    } finally {
      back.socket.close();
    }
  }, { HUB_RECOVERY_WINDOW_MS: "4000" });
});

test("a Node peer cannot resume a session that is live on the hub", async () => {
  await withCluster("records:live", async (hub, peer) => {
    const live = await connectClient(hub.url);
    await notify(hub.url, { title: "seen" });
    await waitFor(() => live.received.length === 1, "the notification arrives");
    const clone = await connectWithSession(peer.url, live.socket);
    try {
      assert.equal(clone.socket.recovered, false, "a fresh session on the peer");
      assert.notEqual(clone.socket.id, live.socket.id, "two live sockets never share a sid");
      assert.equal(live.socket.connected, true);
    } finally {
      clone.socket.close();
      live.socket.close();
    }
  });
});

/**
 * What a Node peer emits while a hub client is away, and whether the hub replays it on the resume: what
 * the adapter's restoreSession replays (addressed by rooms/except), volatile emits left out.
 */
const ENTRIES = [
  { what: "to every socket except another room", query: () => "?except=elsewhere", replayed: true },
  { what: "volatile", query: () => "?volatile=1", replayed: false },
  { what: "binary", query: () => "?binary=1", replayed: true },
  { what: "to the client's own sid room", query: (sid) => `?to=${encodeURIComponent(sid)}`, replayed: true },
  { what: "to a room the client is not in", query: () => "?to=elsewhere", replayed: false },
];

for (const { what, query, replayed } of ENTRIES) {
  test(`a hub client away while a Node peer emits ${what} recovers ${replayed ? "with it replayed" : "without it"}`, async () => {
    const stream = `records:gap:${what.replaceAll(" ", "-")}`;
    await withCluster(stream, async (hub, peer) => {
      const client = await connectClient(hub.url);
      try {
        await notify(hub.url, { title: "seen" });
        await waitFor(() => client.received.length === 1, "the notification arrives");
        await dropClient(client);
        await peer.emit({ title: what }, query(client.connects[0].id));
        // The peer answers before its adapter's XADD: "plain" must come after it in the log.
        await waitForStreamLength(redis.url, stream, 2);
        const missed = await notify(hub.url, { title: "plain" });
        await reconnectClient(client);
        const reconnect = client.connects.at(-1);
        assert.equal(reconnect.recovered, true);
        assert.equal(reconnect.id, client.connects[0].id);
        const expected = replayed ? ["seen", what, "plain"] : ["seen", "plain"];
        await waitFor(() => client.received.length === expected.length, "the missed notifications arrive");
        await sleep(100); // a left-out entry would arrive now
        const title = (n) => (Buffer.isBuffer(n) ? JSON.parse(n.toString()).title : n.title);
        assert.deepEqual(client.received.map((r) => title(r.notification)), expected);
        assert.equal(client.received.at(-1).offset, missed.offset);
      } finally {
        client.socket.close();
      }
    });
  });
}
