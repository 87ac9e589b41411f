// A POSTed notification reaches every connected official client, with the specified fields.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { startHub, notify, connectClient, waitFor } from "./hub.mjs";

const hub = await startHub();
after(() => hub.stop());

test("two clients both receive one POSTed notification with its fields and types", async () => {
  const a = await connectClient(hub.url);
  const b = await connectClient(hub.url);
  try {
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
