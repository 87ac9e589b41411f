// With origins restricted (HUB_CORS_ORIGINS), the official npm socket.io-client in Node, which sends
// no Origin header, still connects under every transport setting and receives; a request marked
// with a foreign page's Origin is refused (403), the handshake and the publish alike.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { startHub, notify, connectClient, waitFor, TRANSPORT_SETTINGS } from "./hub.mjs";

const hub = await startHub({ HUB_CORS_ORIGINS: "http://good.example" });
after(() => hub.stop());

test("a foreign Origin is refused at the handshake and at the publish while origins are restricted", async () => {
  const handshake = await fetch(`${hub.url}/socket.io/?EIO=4&transport=polling`, {
    headers: { origin: "http://evil.example" },
  });
  assert.equal(handshake.status, 403);
  assert.deepEqual(await handshake.json(), { code: 4, message: "Forbidden" });
  const publish = await fetch(`${hub.url}/notifications/notify`, {
    method: "POST",
    headers: { "content-type": "application/json", origin: "http://evil.example" },
    body: JSON.stringify({ title: "from evil" }),
  });
  assert.equal(publish.status, 403);
  await publish.arrayBuffer();
});

for (const { label, transports } of TRANSPORT_SETTINGS) {
  test(`a Node client (no Origin) connects and receives with origins restricted [${label}]`, async () => {
    const client = await connectClient(hub.url, { transports });
    try {
      const answer = await notify(hub.url, { title: label });
      await waitFor(() => client.received.some((r) => r.offset === answer.offset), "the notification arrives");
    } finally {
      client.socket.close();
    }
  });
}
