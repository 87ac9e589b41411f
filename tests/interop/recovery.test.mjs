// Connection state recovery with the official client: socket.recovered, same id, exactly the missed.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { startHub, notify, connectClient, dropClient, reconnectClient, waitFor, sleep, TRANSPORT_SETTINGS } from "./hub.mjs";

const hub = await startHub();
const shortWindowHub = await startHub({ HUB_RECOVERY_WINDOW_MS: "1000" });
after(() => Promise.all([hub.stop(), shortWindowHub.stop()]));

for (const { label, transports } of TRANSPORT_SETTINGS) {
  test(`a dropped client gets exactly the 5 it missed, in order, once each, with the same id [${label}]`, async () => {
    const client = await connectClient(hub.url, { transports });
    try {
      const seen = await notify(hub.url, { title: "before" });
      await waitFor(() => client.received.length === 1, "the first notification arrives");
      const id = client.socket.id;

      await dropClient(client);
      const missed = [];
      for (let n = 0; n < 5; n++) missed.push((await notify(hub.url, { title: `missed ${n}` })).offset);
      await reconnectClient(client);

      assert.equal(client.socket.recovered, true);
      assert.equal(client.socket.id, id);
      await waitFor(() => client.received.length >= 6, "the missed notifications arrive");
      await sleep(100); // a duplicate would arrive now
      assert.deepEqual(
        client.received.map((r) => r.offset),
        [seen.offset, ...missed],
      );
      assert.deepEqual(
        client.received.slice(1).map((r) => [r.notification.title, r.replayed]),
        missed.map((_, n) => [`missed ${n}`, true]),
      );
      const live = await notify(hub.url, { title: "live" });
      await waitFor(() => client.received.length === 7, "the live notification arrives");
      assert.deepEqual(client.received[6].offset, live.offset);
      assert.equal(client.received[6].replayed, false);
    } finally {
      client.socket.close();
    }
  });

  test(`a client that received nothing before dropping still recovers what was sent while away [${label}]`, async () => {
    const client = await connectClient(hub.url, { transports });
    try {
      const id = client.socket.id;
      await dropClient(client);
      const missed = [];
      for (let n = 0; n < 3; n++) missed.push((await notify(hub.url, { title: `away ${n}` })).offset);
      await reconnectClient(client);
      assert.equal(client.socket.recovered, true);
      assert.equal(client.socket.id, id);
      await waitFor(() => client.received.length >= 3, "the missed notifications arrive");
      await sleep(100);
      assert.deepEqual(client.received.map((r) => r.offset), missed);
    } finally {
      client.socket.close();
    }
  });

  test(`a client that reconnects after the window gets recovered false and a new id [${label}]`, async () => {
    const client = await connectClient(shortWindowHub.url, { transports });
    try {
      await notify(shortWindowHub.url, { title: "before" });
      await waitFor(() => client.received.length === 1, "the first notification arrives");
      const id = client.socket.id;
      await dropClient(client);
      await notify(shortWindowHub.url, { title: "too late" });
      await sleep(1500);
      await reconnectClient(client);
      assert.equal(client.socket.recovered, false);
      assert.notEqual(client.socket.id, id);
      await sleep(100);
      assert.equal(client.received.length, 1, "nothing is replayed into a fresh session");
    } finally {
      client.socket.close();
    }
  });

  test(`a client that disconnects on purpose is not recovered [${label}]`, async () => {
    const client = await connectClient(hub.url, { transports });
    try {
      const id = client.socket.id;
      client.socket.disconnect();
      await notify(hub.url, { title: "after leaving" });
      client.socket.connect();
      await waitFor(() => client.connects.length === 2, "client connects again");
      assert.equal(client.socket.recovered, false);
      assert.notEqual(client.socket.id, id);
    } finally {
      client.socket.close();
    }
  });
}
