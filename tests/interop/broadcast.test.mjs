// A POSTed notification reaches every connected official client, with the specified fields; under
// each transport setting of the client.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { startHub, notify, connectClient, waitFor, TRANSPORT_SETTINGS } from "./hub.mjs";

const hub = await startHub();
after(() => hub.stop());

for (const { label, transports } of TRANSPORT_SETTINGS) {
  test(`two clients both receive one POSTed notification with its fields and types [${label}]`, async () => {
    const a = await connectClient(hub.url, { transports });
    const b = await connectClient(hub.url, { transports });
    try {
      if (!transports) {
        // The defaults start on long-polling and upgrade.
        await waitFor(() => a.socket.io.engine.transport.name === "websocket", "the client upgrades");
      }
      const answer = await notify(hub.url, { title: "Deploy", body: "v2 is live" });
      assert.match(answer.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      assert.match(answer.offset, /^\d+-\d+$/);
      for (const client of [a, b]) {
        await waitFor(() => client.received.length === 1, "the notification arrives");
        const { notification, offset } = client.received[0];
        assert.deepEqual(Object.keys(notification).sort(), ["body", "id", "timestamp", "title"]);
        assert.equal(notification.id, answer.id);
        assert.equal(notification.title, "Deploy");
        assert.equal(notification.body, "v2 is live");
        assert.equal(typeof notification.timestamp, "number");
        assert.ok(Math.abs(Date.now() - notification.timestamp) < 60_000);
        assert.equal(offset, answer.offset);
      }
    } finally {
      a.socket.close();
      b.socket.close();
    }
  });

  test(`a client publishes with the notify event and gets the entry id in its ack [${label}]`, async () => {
    const a = await connectClient(hub.url, { transports });
    try {
      const ack = await a.socket.timeout(5000).emitWithAck("notify", { title: "from a socket" });
      assert.match(ack.id, /^[0-9a-f-]{36}$/);
      assert.match(ack.offset, /^\d+-\d+$/);
      await waitFor(() => a.received.length === 1, "the notification arrives");
      assert.equal(a.received[0].offset, ack.offset);
      const refused = await a.socket.timeout(5000).emitWithAck("notify", { title: 5 });
      assert.match(refused.error, /strings/);
    } finally {
      a.socket.close();
    }
  });
}

test("a notification without title and body gets the defaults", async () => {
  const a = await connectClient(hub.url);
  try {
    await notify(hub.url, {});
    await waitFor(() => a.received.length === 1, "the notification arrives");
    assert.equal(a.received[0].notification.title, "Notification");
    assert.equal(a.received[0].notification.body, "Hello");
  } finally {
    a.socket.close();
  }
});
