// The page's own Socket.IO client (public/hub-client.js) in real headless Chromium against the hub
// binary: what the page does with it (it is the default client), and the protocol behaviour it
// copies from socket.io-client 4.8 (heartbeat, acknowledgements and their timeouts, the server's
// DISCONNECT, reconnection after the hub came back, connection state recovery, CONNECT_ERROR).
// page.test.mjs drives the same page through the whole demonstration; this file checks the client.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import { chromium } from "playwright-core";
import { startHub, notify } from "../interop/hub.mjs";

const CHROMIUM = process.env.CHROMIUM_BIN ?? "/usr/bin/chromium";
if (!fs.existsSync(CHROMIUM)) {
  throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium`);
}
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});
const hubs = [];
after(async () => {
  await browser.close();
  await Promise.all(hubs.map((hub) => hub.stop()));
});

async function hub(env = {}, port = 0) {
  const started = await startHub(env, port);
  hubs.push(started);
  return started;
}

/** The page on `url`, with every request (WebSockets in `websockets`), page error and failed request recorded. */
async function openPage(url) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const problems = [];
  const requested = [];
  const websockets = [];
  page.on("request", (req) => requested.push(req.url()));
  page.on("websocket", (ws) => websockets.push(ws.url()));
  page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
  page.on("requestfailed", (req) => problems.push(`request failed: ${req.url()} ${req.failure()?.errorText}`));
  await page.goto(url);
  return { page, context, problems, requested, websockets };
}

const online = (page) =>
  page.waitForFunction(() => document.querySelector("#status").dataset.state === "online", null, { timeout: 10_000 })
    .catch(() => assert.fail("the page did not come online"));
const offline = (page) =>
  page.waitForFunction(() => document.querySelector("#status").dataset.state === "offline", null, { timeout: 10_000 })
    .catch(() => assert.fail("the page did not go offline"));
const logMatches = (page, pattern, what) =>
  page.waitForFunction((source) => new RegExp(source).test(document.querySelector("#connection-log").textContent),
    pattern.source, { timeout: 15_000 })
    .catch(async () => assert.fail(`${what}; the log says: ${await page.textContent("#connection-log")}`));
const feedTitles = (page) =>
  page.$$eval("#feed li.notification", (items) =>
    items.map((li) => [li.querySelector(".notification-title").textContent, li.dataset.replayed === "true"]));
const waitForFeed = (page, count, what) =>
  page.waitForFunction((n) => document.querySelectorAll("#feed li.notification").length >= n, count,
    { timeout: 10_000 }).catch(() => assert.fail(`timed out waiting: ${what}`));

test("the page runs on its built-in client by default: one WebSocket, no npm copy, no polling, rooms join and leave",
  async () => {
    const h = await hub();
    const { page, context, problems, requested, websockets } = await openPage(`${h.url}/`);
    try {
      await online(page);
      assert.equal(await page.evaluate(() => window.NotificationHubApp.client), "built-in");
      assert.equal(await page.evaluate(() => window.NotificationHubApp.socket.io.engine.transport.name), "websocket");
      assert.ok(!requested.some((u) => u.includes("socket.io.min.js")), `no official bundle: ${requested.join(" ")}`);
      assert.deepEqual(requested.filter((u) => u.includes("/socket.io/")), [], "no long-polling, no bundle");
      assert.deepEqual(websockets, [`${h.url.replace("http", "ws")}/socket.io/?EIO=4&transport=websocket`],
        "one WebSocket");
      const id = await page.textContent("#socket-id");
      assert.match(id, /^[\w-]{20,22}$/, "the CONNECT answer's sid is shown");

      await page.fill("#room", "ops");
      await page.click("#join");
      await page.waitForSelector('#rooms li[data-room="ops"]', { timeout: 10_000 });
      await notify(h.url, { title: "To ops", body: "joined", to: "ops" });
      await waitForFeed(page, 1, "the room's notification");
      await page.click('#rooms li[data-room="ops"] button');
      await page.waitForSelector('#rooms li[data-room="ops"]', { state: "detached", timeout: 10_000 });
      await notify(h.url, { title: "To ops again", body: "left", to: "ops" });
      await notify(h.url, { title: "To everyone", body: "after" });
      await waitForFeed(page, 2, "the broadcast after leaving");
      assert.deepEqual(await feedTitles(page), [["To everyone", false], ["To ops", false]],
        "nothing for ops after leaving it");
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

test("acknowledgements: emitWithAck resolves with the hub's answer, times out without one, fails on disconnect",
  async () => {
    const h = await hub();
    const { page, context } = await openPage(`${h.url}/`);
    try {
      await online(page);
      const answers = await page.evaluate(async () => {
        const socket = window.NotificationHubApp.socket;
        const settle = (p) => p.then((value) => ({ value }), (err) => ({ error: err.message }));
        return {
          join: await settle(socket.timeout(5000).emitWithAck("join", "lobby")),
          badRoom: await settle(socket.emitWithAck("join", "")),
          // The hub answers no event but its own (join, leave, notify): no ack comes.
          unanswered: await settle(socket.timeout(300).emitWithAck("no-such-event", 1)),
          callback: await new Promise((resolve) =>
            socket.timeout(5000).emit("leave", "lobby", (err, ack) => resolve({ err: err && err.message, ack }))),
        };
      });
      assert.deepEqual(answers.join, { value: { ok: true } });
      assert.equal(typeof answers.badRoom.value.error, "string", JSON.stringify(answers.badRoom));
      assert.deepEqual(answers.unanswered, { error: "operation has timed out" });
      assert.deepEqual(answers.callback, { err: null, ack: { ok: true } });

      // A pending ack with an error-aware callback fails when the connection goes.
      const pending = page.evaluate(() => {
        const socket = window.NotificationHubApp.socket;
        const answer = socket.timeout(10_000).emitWithAck("no-such-event").then(() => "answered", (e) => e.message);
        socket.io.engine.close();
        return answer;
      });
      assert.equal(await pending, "socket has been disconnected");
      await online(page); // the client reconnects by itself (not dropped by the page's button)
    } finally {
      await context.close();
    }
  });

test("heartbeat: pongs keep the connection past many ping intervals; a hub that stops pinging is a ping timeout",
  async () => {
    const h = await hub({ HUB_PING_INTERVAL_MS: "200", HUB_PING_TIMEOUT_MS: "300" });
    const { page, context } = await openPage(`${h.url}/`);
    try {
      await online(page);
      const pings = await page.evaluate(() => new Promise((resolve) => {
        const socket = window.NotificationHubApp.socket;
        // The Engine.IO connection itself (a recovered reconnect would keep the socket's id).
        const engine = socket.io.engine;
        let count = 0;
        let disconnects = 0;
        socket.on("disconnect", () => { disconnects += 1; });
        socket.io.on("ping", () => {
          count += 1;
          // Ten pings answered: without the pongs the hub would have closed it after the first.
          if (count === 10) resolve({ count, disconnects, sameConnection: socket.io.engine === engine && socket.connected });
        });
      }));
      assert.deepEqual(pings, { count: 10, disconnects: 0, sameConnection: true });

      // The hub process frozen: its TCP connection stays open, only the missing pings tell.
      const pid = h.pid();
      process.kill(pid, "SIGSTOP");
      try {
        await logMatches(page, /Disconnected \(ping timeout\)\. Trying to reconnect/, "a ping timeout");
      } finally {
        process.kill(pid, "SIGCONT");
      }
      await online(page);
    } finally {
      await context.close();
    }
  });

test("the hub's DISCONNECT is \"io server disconnect\" and not retried; a hub that comes back is reconnected to",
  async () => {
    const h = await hub();
    const { page, context } = await openPage(`${h.url}/`);
    try {
      await online(page);
      const sid = await page.textContent("#socket-id");
      const res = await fetch(`${h.url}/sockets/disconnect`, {
        method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ sid }),
      });
      assert.equal(res.status, 202);
      await logMatches(page, /^Disconnected \(io server disconnect\)\. Click Reconnect\.$/, "the server's disconnect");
      assert.equal(await page.evaluate(() => window.NotificationHubApp.socket.active), false, "no retry scheduled");
      await page.click("#reconnect");
      await online(page);

      // The hub goes away and comes back on the same port: the client retries with backoff.
      const port = new URL(h.url).port;
      await h.stop("SIGKILL");
      await logMatches(page, /Disconnected \(transport close\)\. Trying to reconnect/, "the transport closed");
      await logMatches(page, /Reconnecting \(attempt \d+\)|Connection error/, "a reconnection attempt");
      await hub({}, Number(port));
      await online(page);
      // Another process: its log has another epoch, so nothing to recover.
      assert.match(await page.textContent("#connection-log"), /Reconnected: new session/);
    } finally {
      await context.close();
    }
  });

test("connection state recovery: the CONNECT carries pid and the last offset; the missed ones arrive once, replayed",
  async () => {
    const h = await hub();
    const { page, context } = await openPage(`${h.url}/`);
    try {
      await online(page);
      // What the client writes on its WebSocket (the page's own frames, recorded in the page).
      await page.evaluate(() => {
        window.sentFrames = [];
        const send = WebSocket.prototype.send;
        WebSocket.prototype.send = function (data) {
          window.sentFrames.push(String(data));
          return send.call(this, data);
        };
      });
      const first = await notify(h.url, { title: "Live", body: "1" });
      await waitForFeed(page, 1, "the live one");
      await page.click("#drop");
      await offline(page);
      const missed = [];
      for (let n = 1; n <= 2; n++) missed.push(await notify(h.url, { title: `Missed ${n}`, body: String(n) }));
      await page.click("#reconnect");
      await online(page);
      await waitForFeed(page, 3, "the two missed ones");
      const connect = await page.evaluate(() => window.sentFrames.find((f) => f.startsWith("40")));
      const auth = JSON.parse(connect.slice(2));
      assert.equal(typeof auth.pid, "string");
      assert.equal(auth.offset, first.offset, "the offset of the last notification received");
      assert.equal(await page.evaluate(() => window.NotificationHubApp.socket.recovered), true);
      await new Promise((resolve) => setTimeout(resolve, 200)); // a duplicate would show now
      assert.deepEqual(await feedTitles(page), [["Missed 2", true], ["Missed 1", true], ["Live", false]]);
      assert.match(await page.textContent("#connection-log"), /session recovered, 2 missed messages replayed/);
      const offsets = await page.$$eval("#feed li.notification", (items) => items.map((li) => li.dataset.offset));
      assert.deepEqual(offsets, [missed[1].offset, missed[0].offset, first.offset]);
    } finally {
      await context.close();
    }
  });

test("with HUB_PARSER=msgpack the built-in client (JSON only) says why it cannot connect", async () => {
  const h = await hub({ HUB_PARSER: "msgpack" });
  const { page, context } = await openPage(`${h.url}/`);
  try {
    await logMatches(page, /HUB_PARSER=msgpack/, "the reason");
    assert.match(await page.textContent("#connection-log"), /^Connection error: the hub closed the connection without answering CONNECT/);
    assert.equal(await page.textContent("#status"), "Offline");
  } finally {
    await context.close();
  }
});
