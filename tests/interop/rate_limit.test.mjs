// The per-connection event limit, as the official client sees it: past HUB_SOCKET_EVENTS_PER_SECOND
// its acks say {"error":"rate limited"}, other clients are served meanwhile, and a client that keeps
// on past HUB_SOCKET_ABUSE_LIMIT gets "io server disconnect" and does not reconnect.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { startHub, notify, connectClient, waitFor, sleep, TRANSPORT_SETTINGS } from "./hub.mjs";

const hubs = [];
after(() => Promise.all(hubs.map((hub) => hub.stop())));

async function hubWith(env) {
  const hub = await startHub(env);
  hubs.push(hub);
  return hub;
}

test("a flood of acked notify past the default limit is acked rate limited, stays connected, and others are served", async () => {
  const hub = await hubWith({});
  const flooder = await connectClient(hub.url);
  const other = await connectClient(hub.url);
  try {
    const started = Date.now();
    const acks = [];
    for (let i = 0; i < 1000; i++) {
      acks.push(flooder.socket.timeout(20_000).emitWithAck("notify", { title: `flood ${i}` }));
      if (i === 500) {
        // Mid-flood, another client gets what is published.
        await notify(hub.url, { title: "during the flood" });
      }
    }
    const answers = await Promise.all(acks);
    const elapsed = (Date.now() - started) / 1000;
    const accepted = answers.filter((a) => typeof a.id === "string").length;
    const limited = answers.filter((a) => a.error === "rate limited").length;
    assert.equal(accepted + limited, 1000, JSON.stringify(answers.find((a) => !a.id && a.error !== "rate limited")));
    assert.ok(accepted >= 50, `the burst passes: ${accepted}`);
    // Client-side time covers the hub's: the bucket can pass at most the burst and 50 a second.
    assert.ok(accepted <= 50 + Math.floor(50 * elapsed) + 1, `${accepted} published in ${elapsed} s`);
    assert.ok(limited > 0, `rate limited past the limit (${elapsed} s)`);
    await waitFor(() => other.received.some((r) => r.notification.title === "during the flood"), "the other client gets the notification");
    assert.equal(flooder.socket.connected, true, "under the abuse limit the flooder stays connected");
  } finally {
    flooder.socket.close();
    other.socket.close();
  }
});

for (const { label, transports } of TRANSPORT_SETTINGS) {
  test(`a client flooding past the abuse limit gets "io server disconnect" and does not reconnect [${label}]`, async () => {
    const hub = await hubWith({ HUB_SOCKET_EVENTS_PER_SECOND: "10", HUB_SOCKET_ABUSE_LIMIT: "20" });
    const flooder = await connectClient(hub.url, { transports });
    const other = await connectClient(hub.url, { transports });
    try {
      const reasons = [];
      flooder.socket.on("disconnect", (reason) => reasons.push(reason));
      let limited = 0;
      for (let i = 0; i < 300 && flooder.socket.connected; i++) {
        flooder.socket.emit("notify", { title: `flood ${i}` }, (answer) => {
          if (answer?.error === "rate limited") limited++;
        });
        // Let the client's transport write and read now and then, as a real flood would.
        if (i % 50 === 49) await sleep(1);
      }
      await waitFor(() => reasons.length > 0, "the flooder is disconnected");
      assert.deepEqual(reasons, ["io server disconnect"]);
      assert.ok(limited > 0, "rate limited acks before the disconnect");
      // The client's own rule for that reason: no reconnection (the manager's reconnect delay is 50 ms).
      await sleep(500);
      assert.equal(flooder.socket.active, false);
      assert.equal(flooder.connects.length, 1, "never reconnected");
      await notify(hub.url, { title: "after the abuse" });
      await waitFor(() => other.received.some((r) => r.notification.title === "after the abuse"), "the other client is still served");
      assert.equal(other.socket.connected, true);
    } finally {
      flooder.socket.close();
      other.socket.close();
    }
  });
}
