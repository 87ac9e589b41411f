// RFC 6455 fragmentation with the npm `ws` client (the WebSocket library under Node's socket.io):
// a Socket.IO packet sent as two fragments of one message is reassembled, acknowledged and published.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import { startHub } from "./hub.mjs";

const hub = await startHub();
after(() => hub.stop());

/** Resolves with the next text message `match` accepts; rejects on close or after 10 s. */
function nextMessage(ws, match, what) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${what} within 10 s`)), 10_000);
    const onMessage = (data) => {
      const text = data.toString();
      if (text === "2") return ws.send("3"); // Engine.IO ping
      if (!match(text)) return;
      done();
      resolve(text);
    };
    const onClose = (code) => {
      done();
      reject(new Error(`closed with ${code} while waiting for ${what}`));
    };
    const done = () => {
      clearTimeout(timer);
      ws.off("message", onMessage);
      ws.off("close", onClose);
    };
    ws.on("message", onMessage);
    ws.on("close", onClose);
  });
}

test("a notify sent as two fragments of one message is acknowledged and published", async () => {
  const ws = new WebSocket(`${hub.url.replace("http", "ws")}/socket.io/?EIO=4&transport=websocket`);
  try {
    await nextMessage(ws, (t) => t.startsWith("0{"), "open packet");
    ws.send("40");
    await nextMessage(ws, (t) => t.startsWith("40{"), "CONNECT reply");

    const ack = nextMessage(ws, (t) => t.startsWith("431"), "ack");
    const published = nextMessage(ws, (t) => t.includes('"notification"'), "broadcast");
    ws.send("421", { fin: false });
    ws.send('["notify",{"title":"x"}]', { fin: true });

    const [ackText, publishedText] = await Promise.all([ack, published]);
    const [{ id, offset }] = JSON.parse(ackText.slice(3));
    assert.match(offset, /^\d+-\d+$/);
    const [, notification, lastOffset] = JSON.parse(publishedText.slice(2));
    assert.equal(notification.id, id);
    assert.equal(notification.title, "x");
    assert.equal(lastOffset, offset);
  } finally {
    ws.close();
  }
});
