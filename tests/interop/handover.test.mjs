// The handover from replay to live delivery under load: no gap, no duplicate, no reordering.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { startHub, notify, connectClient, waitFor, sleep, TRANSPORT_SETTINGS } from "./hub.mjs";

const NOTIFICATIONS = 500;
const CLIENTS = 20;
const DROPS_PER_CLIENT = 3;
const PUBLISH_CONCURRENCY = 4;

const hub = await startHub();
after(() => hub.stop());

for (const { label, transports } of TRANSPORT_SETTINGS) {
  test(`20 clients dropping at random moments while 500 notifications flow each get every one once, in order [${label}]`, async () => {
    const clients = await Promise.all(Array.from({ length: CLIENTS }, () => connectClient(hub.url, { transports })));
    try {
      const offsets = [];
      let next = 0;
      const publisher = async () => {
        while (next < NOTIFICATIONS) {
          const n = next++;
          offsets.push((await notify(hub.url, { title: `n${n}` })).offset);
          if (n % 20 === 0) await sleep(5); // spread the run over enough time for the drops to land
        }
      };
      const publishing = Promise.all(Array.from({ length: PUBLISH_CONCURRENCY }, publisher));

      let publishingDone = false;
      publishing.finally(() => (publishingDone = true));
      const dropper = async (client) => {
        for (let d = 0; d < DROPS_PER_CLIENT && !publishingDone; d++) {
          await sleep(Math.random() * 400);
          if (client.socket.connected) client.socket.io.engine.close(); // auto-reconnects, with recovery
        }
      };
      await Promise.all([publishing, ...clients.map(dropper)]);

      const expected = [...offsets].sort(compareOffsets);
      for (const client of clients) {
        await waitFor(() => client.socket.connected && client.received.length >= NOTIFICATIONS, "all notifications arrive", 20_000);
      }
      await sleep(200); // a late duplicate would arrive now
      let drops = 0;
      for (const [i, client] of clients.entries()) {
        const reconnects = client.connects.slice(1);
        drops += reconnects.length;
        assert.ok(reconnects.every((c) => c.recovered === true && c.id === client.connects[0].id), `client ${i} recovered every time`);
        assert.deepEqual(client.received.map((r) => r.offset), expected, `client ${i} got every notification once, in order`);
      }
      assert.ok(drops >= CLIENTS, `clients dropped ${drops} times in all; the test needs real drops`);
    } finally {
      for (const client of clients) client.socket.close();
    }
  });
}

function compareOffsets(a, b) {
  const [ams, aseq] = a.split("-").map(BigInt);
  const [bms, bseq] = b.split("-").map(BigInt);
  return ams === bms ? Number(aseq - bseq) : ams < bms ? -1 : 1;
}
