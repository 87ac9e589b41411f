// The Socket.IO admin UI's protocol (@socket.io/admin-ui 0.5), spoken by the official client as the
// UI speaks it: CONNECT to /admin with {username, password} (or the {sessionId} it was given), then
// `session`, `config`, and `server_stats` every 2 s from every instance of the cluster.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { io } from "socket.io-client";
import { startHub, connectClient, dropClient, reconnectClient, waitFor, sleep } from "./hub.mjs";
import { startRedis, freePort, waitForPort } from "./redis.mjs";

const redis = await startRedis();
after(() => redis.stop());

const HUB_BIN = process.env.HUB_BIN;
const PASSWORD = "correct horse battery staple";
// The hub's own `admin-hash` subcommand makes the hash, as README tells operators to (cost 4: a
// test needs no slow hash, and the cost is the hash's own field).
const HASH = execFileSync(HUB_BIN ?? new URL("../../target/debug/realtime-hub", import.meta.url).pathname, [
  "admin-hash",
  "--cost",
  "4",
], { input: `${PASSWORD}\n` })
  .toString()
  .trim();

const ADMIN = { HUB_ADMIN: "on", HUB_ADMIN_USERNAME: "admin", HUB_ADMIN_PASSWORD_HASH: HASH };

/** An admin UI's socket on `url`'s /admin: every event it receives, in order, with its arguments. */
function adminSocket(url, auth, transports = ["websocket"]) {
  const socket = io(`${url}/admin`, { auth, transports, forceNew: true, reconnection: false });
  const events = [];
  socket.onAny((name, ...args) => events.push({ name, args }));
  return { socket, events };
}

/** Resolves to the connect_error's message once the CONNECT is refused (fails if it connects). */
function refusal(socket) {
  return new Promise((resolve, reject) => {
    socket.once("connect_error", (err) => resolve(err.message));
    socket.once("connect", () => reject(new Error("connected, expected a refusal")));
  });
}

/** Every event name a "/" client receives, whatever it is. */
function recordAll(client) {
  client.names = [];
  client.socket.onAny((name) => client.names.push(name));
  return client;
}

test("admin UI is off by default: CONNECT to /admin gets Invalid namespace", async () => {
  const hub = await startHub();
  const admin = adminSocket(hub.url, { username: "admin", password: PASSWORD });
  try {
    assert.equal(await refusal(admin.socket), "Invalid namespace");
  } finally {
    admin.socket.close();
    await hub.stop();
  }
});

test("admin UI: wrong or missing credentials get connect_error invalid credentials", async () => {
  const hub = await startHub(ADMIN);
  try {
    for (const auth of [
      { username: "admin", password: "wrong" },
      { username: "root", password: PASSWORD },
      { username: "admin" },
      {},
      { sessionId: "0123456789abcdef0123456789abcdef" },
    ]) {
      const admin = adminSocket(hub.url, auth);
      try {
        assert.equal(await refusal(admin.socket), "invalid credentials", JSON.stringify(auth));
      } finally {
        admin.socket.close();
      }
      // One password check per second per address (README): the next attempt waits for it.
      await sleep(1_100);
    }
  } finally {
    await hub.stop();
  }
});

test("admin UI: config, then server_stats from both instances of a cluster; / clients never get them", async () => {
  const stream = "interop:admin";
  const settings = { ...ADMIN, REDIS_URL: redis.url, HUB_STREAM_KEY: stream };
  const a = await startHub({ ...settings, HUB_ADMIN_SERVER_ID: "hub-a" });
  const b = await startHub({ ...settings, HUB_ADMIN_SERVER_ID: "hub-b" });
  // On a: two WebSocket clients and one on long-polling only; on b: one.
  const clients = [
    await connectClient(a.url),
    await connectClient(a.url),
    await connectClient(a.url, { transports: ["polling"] }),
    await connectClient(b.url),
  ].map(recordAll);
  const admin = adminSocket(a.url, { username: "admin", password: PASSWORD });
  try {
    await waitFor(() => admin.socket.connected, "the admin socket connects");
    await waitFor(() => admin.events.some((e) => e.name === "config"), "config");
    const names = admin.events.map((e) => e.name);
    assert.ok(names.indexOf("session") < names.indexOf("config"), `session, then config: ${names}`);
    const session = admin.events.find((e) => e.name === "session").args[0];
    assert.match(session, /^[0-9a-f]{32}$/);
    assert.deepEqual(admin.events.find((e) => e.name === "config").args[0], {
      supportedFeatures: ["AGGREGATED_EVENTS"],
    }, "production mode: read-only, statistics only");

    // The newest stats of each server, once each reports the sockets connected now.
    const latest = (id) => admin.events.filter((e) => e.name === "server_stats" && e.args[0].serverId === id).at(-1)?.args[0];
    const sockets = (stats, nsp) => stats?.namespaces.find((n) => n.name === nsp)?.socketsCount;
    await waitFor(
      () => sockets(latest("hub-a"), "/") === 3 && sockets(latest("hub-b"), "/") === 1,
      `server_stats from both instances with their counts: ${JSON.stringify([latest("hub-a"), latest("hub-b")])}`,
      15_000,
    );
    const [statsA, statsB] = [latest("hub-a"), latest("hub-b")];
    for (const stats of [statsA, statsB]) {
      for (const field of ["hostname", "pid", "uptime", "clientsCount", "pollingClientsCount", "aggregatedEvents", "namespaces"]) {
        assert.ok(field in stats, `server_stats has ${field}: ${JSON.stringify(stats)}`);
      }
      assert.equal(typeof stats.pid, "number");
      assert.ok(Array.isArray(stats.aggregatedEvents));
    }
    assert.notEqual(statsA.pid, statsB.pid, "two processes");
    // a: three "/" clients and the admin UI's connection; one of them on long-polling.
    assert.equal(statsA.clientsCount, 4, JSON.stringify(statsA));
    assert.equal(statsA.pollingClientsCount, 1, JSON.stringify(statsA));
    assert.equal(sockets(statsA, "/admin"), 1);
    assert.equal(statsB.clientsCount, 1, JSON.stringify(statsB));
    assert.equal(statsB.pollingClientsCount, 0);
    assert.equal(sockets(statsB, "/admin"), 0);
    // Every connection of a was counted as it opened (within the stats since the admin joined, or
    // before: the first stats carry what happened since the start).
    const connections = admin.events
      .filter((e) => e.name === "server_stats" && e.args[0].serverId === "hub-a")
      .flatMap((e) => e.args[0].aggregatedEvents)
      .filter((event) => event.type === "rawConnection");
    for (const event of connections) {
      assert.equal(event.timestamp % 1000, 0, "per-second buckets");
      assert.ok(event.count >= 1);
    }

    // A client that drops and resumes on "/" gets no admin entry replayed either.
    await dropClient(clients[0]);
    await sleep(2_500); // at least one server_stats entry is appended meanwhile
    await reconnectClient(clients[0]);
    assert.equal(clients[0].connects.at(-1).recovered, true, "resumed");
    for (const client of clients) {
      assert.ok(!client.names.includes("server_stats"), `a "/" client got: ${client.names}`);
    }

    // The UI reconnects with the session id it was given, without its password.
    const again = adminSocket(b.url, { sessionId: session });
    try {
      // Session ids are per instance: b did not give this one out.
      assert.equal(await refusal(again.socket), "invalid credentials");
    } finally {
      again.socket.close();
    }
    const resumed = adminSocket(a.url, { sessionId: session });
    try {
      await waitFor(() => resumed.events.some((e) => e.name === "config"), "config on a session id");
      assert.ok(!resumed.events.some((e) => e.name === "session"), "no new session id");
    } finally {
      resumed.socket.close();
    }

    // Read-only: an operation is not carried out, and an ack says why.
    const answer = await admin.socket.timeout(5_000).emitWithAck("emit", "/", null, "notification", { title: "x" });
    assert.deepEqual(answer, { error: "read-only" });
  } finally {
    admin.socket.close();
    for (const client of clients) client.socket.close();
    await Promise.all([a.stop(), b.stop()]);
  }
});

test("admin UI: server_stats count an upgraded session as WebSocket, and closed sessions no more", async () => {
  const hub = await startHub({ HUB_ADMIN: "on-without-auth" });
  const admin = adminSocket(hub.url, {});
  const clients = [];
  try {
    await waitFor(() => admin.events.some((e) => e.name === "config"), "config");
    // One client on long-polling, then upgraded; one on long-polling only.
    const upgraded = await connectClient(hub.url, { transports: ["polling", "websocket"] });
    clients.push(upgraded);
    clients.push(await connectClient(hub.url, { transports: ["polling"] }));
    await waitFor(() => upgraded.socket.io.engine.transport.name === "websocket", "the upgrade");
    const since = admin.events.length;
    const stats = () => admin.events.slice(since).filter((e) => e.name === "server_stats").map((e) => e.args[0]);
    const counts = (s) => s && [s.clientsCount, s.pollingClientsCount];
    // The admin UI's session, the upgraded one (no longer polling: the client moves on before the
    // hub reads its upgrade packet, so the stats may take one more round) and the polling one.
    await waitFor(
      () => stats().some((s) => counts(s).join() === "3,1"),
      "server_stats of 3 clients, 1 polling, after the upgrade",
      10_000,
    );

    const closedAt = admin.events.length;
    for (const client of clients) client.socket.close();
    const after = () => admin.events.slice(closedAt).filter((e) => e.name === "server_stats").map((e) => e.args[0]);
    const disconnections = () =>
      after()
        .flatMap((s) => s.aggregatedEvents)
        .filter((event) => event.type === "rawDisconnection")
        .reduce((sum, event) => sum + event.count, 0);
    // Each closed session's seat is given back: only the admin UI's session is left.
    await waitFor(
      () => after().some((s) => s.clientsCount === 1) && disconnections() >= 2,
      "server_stats of the admin UI alone, and two rawDisconnection",
      10_000,
    );
    assert.deepEqual(counts(after().find((s) => s.clientsCount === 1)), [1, 0]);
    await sleep(2_500); // one more round: no close counted twice
    assert.equal(disconnections(), 2, `two rawDisconnection: ${JSON.stringify(after())}`);
    assert.deepEqual(counts(after().at(-1)), [1, 0]);
  } finally {
    admin.socket.close();
    for (const client of clients) client.socket.close();
    await hub.stop();
  }
});

test("admin UI not read-only: emit reaches / clients on every instance, _disconnect disconnects them", async () => {
  const stream = "interop:admin-ops";
  const settings = { ...ADMIN, REDIS_URL: redis.url, HUB_STREAM_KEY: stream, HUB_ADMIN_READONLY: "false" };
  const a = await startHub(settings);
  const b = await startHub(settings);
  const onA = await connectClient(a.url);
  const onB = await connectClient(b.url);
  const admin = adminSocket(a.url, { username: "admin", password: PASSWORD });
  try {
    await waitFor(() => admin.events.some((e) => e.name === "config"), "config");
    assert.deepEqual(admin.events.find((e) => e.name === "config").args[0].supportedFeatures, [
      "EMIT",
      "DISCONNECT",
      "MDISCONNECT",
      "AGGREGATED_EVENTS",
    ]);
    const notification = { id: "admin-1", title: "from the admin UI", body: "", timestamp: 1 };
    const ok = await admin.socket.timeout(5_000).emitWithAck("emit", "/", null, "notification", notification);
    assert.deepEqual(ok, { ok: true });
    await waitFor(() => onA.received.length === 1 && onB.received.length === 1, "both clients get the emit");
    assert.deepEqual(onB.received[0].notification, notification);

    // The UI's "disconnect" button on one socket: `_disconnect(nsp, close, socketId)`.
    const done = await admin.socket.timeout(5_000).emitWithAck("_disconnect", "/", false, onB.socket.id);
    assert.deepEqual(done, { ok: true });
    await waitFor(() => !onB.socket.connected, "the socket on b is disconnected");
    assert.ok(onA.socket.connected, "only the socket named");

    const refused = await admin.socket.timeout(5_000).emitWithAck("join", "/", "room", null);
    // `join` and `leave` are the hub's own room events, which admin sockets may not use; the UI does not
    // offer them (config lists neither JOIN nor LEAVE).
    assert.deepEqual(refused, { error: "forbidden" });
  } finally {
    admin.socket.close();
    onA.socket.close();
    onB.socket.close();
    await Promise.all([a.stop(), b.stop()]);
  }
});

test("admin UI development mode: all_sockets, then socket_connected / socket_updated / socket_disconnected live", async () => {
  const hub = await startHub({ HUB_ADMIN: "on-without-auth", HUB_ADMIN_MODE: "development" });
  const first = recordAll(await connectClient(hub.url, { extraHeaders: { authorization: "Bearer not-for-the-ui" } }));
  const admin = adminSocket(hub.url, {});
  const later = [];
  try {
    await waitFor(() => admin.events.some((e) => e.name === "all_sockets"), "all_sockets");
    const names = admin.events.map((e) => e.name);
    assert.ok(!names.includes("session"), "no session ids without authentication");
    // Development mode is not read-only unless HUB_ADMIN_READONLY says so.
    assert.deepEqual(admin.events.find((e) => e.name === "config").args[0].supportedFeatures, [
      "EMIT",
      "DISCONNECT",
      "MDISCONNECT",
      "AGGREGATED_EVENTS",
      "ALL_EVENTS",
    ]);
    assert.ok(names.indexOf("config") < names.indexOf("all_sockets"));
    const listed = admin.events.find((e) => e.name === "all_sockets").args[0];
    const mine = listed.find((s) => s.id === first.socket.id);
    assert.ok(mine, `the "/" socket is listed: ${JSON.stringify(listed)}`);
    assert.equal(mine.nsp, "/");
    assert.equal(mine.transport, "websocket");
    assert.equal(mine.clientId, first.socket.io.engine.id.slice(0, 12));
    assert.deepEqual(mine.rooms, [first.socket.id]);
    assert.equal(mine.handshake.address, "127.0.0.1");
    assert.equal(mine.handshake.query.EIO, "4");
    assert.ok(!("authorization" in mine.handshake.headers), "credentials are not shown");

    // A client on the defaults: joins over long-polling, then upgrades.
    const second = await connectClient(hub.url, { transports: undefined });
    later.push(second);
    const connected = () => admin.events.find((e) => e.name === "socket_connected" && e.args[0].id === second.socket.id);
    await waitFor(connected, "socket_connected");
    assert.ok(!Number.isNaN(Date.parse(connected().args[1])), `a date: ${connected().args[1]}`);
    // The client upgrades while its CONNECT is answered: the socket joins on either transport, and
    // one that joined on polling is updated once the session upgraded.
    const transport = connected().args[0].transport;
    assert.ok(["polling", "websocket"].includes(transport), transport);
    if (transport === "polling") {
      await waitFor(
        () => admin.events.some((e) => e.name === "socket_updated" && e.args[0].id === second.socket.id && e.args[0].transport === "websocket"),
        "socket_updated after the upgrade",
      );
    }
    const id = second.socket.id; // the client forgets it once disconnected
    second.socket.close();
    const disconnected = () => admin.events.find((e) => e.name === "socket_disconnected" && e.args[1] === id);
    await waitFor(disconnected, "socket_disconnected");
    const [nsp, , reason, date] = disconnected().args;
    assert.equal(nsp, "/");
    assert.equal(reason, "client namespace disconnect");
    assert.ok(!Number.isNaN(Date.parse(date)));
    assert.ok(first.names.every((name) => !name.startsWith("socket_") && name !== "server_stats"), `${first.names}`);
  } finally {
    admin.socket.close();
    first.socket.close();
    for (const client of later) client.socket.close();
    await hub.stop();
  }
});

test("admin UI on another origin: with it in HUB_CORS_ORIGINS the UI connects (polling and WebSocket), others are refused", async () => {
  const ui = "https://admin.socket.io";
  const hub = await startHub({ ...ADMIN, HUB_CORS_ORIGINS: ui });
  try {
    const preflight = await fetch(`${hub.url}/socket.io/?EIO=4&transport=polling`, {
      method: "OPTIONS",
      headers: { origin: ui, "access-control-request-method": "POST", "access-control-request-headers": "content-type" },
    });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers.get("access-control-allow-origin"), ui);
    assert.equal(preflight.headers.get("access-control-allow-credentials"), "true", "the UI sends withCredentials");
    const handshake = await fetch(`${hub.url}/socket.io/?EIO=4&transport=polling`, { headers: { origin: ui } });
    assert.equal(handshake.status, 200);
    assert.equal(handshake.headers.get("access-control-allow-origin"), ui);
    await handshake.text();
    for (const transports of [["polling"], ["websocket"]]) {
      const socket = io(`${hub.url}/admin`, {
        auth: { username: "admin", password: PASSWORD },
        transports,
        extraHeaders: { origin: ui },
        withCredentials: true,
        forceNew: true,
        reconnection: false,
      });
      const config = new Promise((resolve) => socket.once("config", resolve));
      try {
        assert.deepEqual(await config, { supportedFeatures: ["AGGREGATED_EVENTS"] }, `${transports}`);
      } finally {
        socket.close();
      }
      await sleep(1_100); // one password check per second per address
    }
    const foreign = io(`${hub.url}/admin`, {
      auth: { username: "admin", password: PASSWORD },
      transports: ["polling"],
      extraHeaders: { origin: "https://evil.example" },
      forceNew: true,
      reconnection: false,
    });
    try {
      await new Promise((resolve, reject) => {
        foreign.once("connect_error", resolve);
        foreign.once("connect", () => reject(new Error("a foreign origin connected")));
      });
    } finally {
      foreign.socket?.close?.();
      foreign.close();
    }
  } finally {
    await hub.stop();
  }
});

test("admin UI across Node and Rust: a Node peer with instrument() and the hub see each other's server_stats", async () => {
  const stream = "interop:admin-node";
  const hub = await startHub({ ...ADMIN, REDIS_URL: redis.url, HUB_STREAM_KEY: stream, HUB_ADMIN_SERVER_ID: "hub" });
  const port = await freePort();
  const peer = spawn(process.execPath, [
    new URL("./admin-peer.mjs", import.meta.url).pathname,
    String(port),
    redis.url,
    stream,
    "node-peer",
    "admin",
    HASH,
  ], { stdio: ["ignore", "ignore", "inherit"] });
  const peerUrl = `http://127.0.0.1:${port}`;
  const onHub = recordAll(await connectClient(hub.url));
  let onPeer;
  const admins = [];
  try {
    await waitForPort(port);
    onPeer = recordAll(await connectClient(peerUrl));
    // The same credentials on both: the package checks the hash the hub's admin-hash wrote.
    const toHub = adminSocket(hub.url, { username: "admin", password: PASSWORD });
    const toPeer = adminSocket(peerUrl, { username: "admin", password: PASSWORD });
    admins.push(toHub, toPeer);
    const servers = (admin) => new Set(admin.events.filter((e) => e.name === "server_stats").map((e) => e.args[0].serverId));
    for (const [label, admin] of [["the hub's", toHub], ["the Node peer's", toPeer]]) {
      await waitFor(
        () => servers(admin).has("hub") && servers(admin).has("node-peer"),
        `${label} admin socket gets both servers' stats: ${[...servers(admin)]}`,
        15_000,
      );
    }
    const fromNode = toHub.events.filter((e) => e.name === "server_stats" && e.args[0].serverId === "node-peer").at(-1).args[0];
    assert.equal(typeof fromNode.clientsCount, "number");
    const fromHub = toPeer.events.filter((e) => e.name === "server_stats" && e.args[0].serverId === "hub").at(-1).args[0];
    assert.deepEqual(fromHub.namespaces.find((n) => n.name === "/"), { name: "/", socketsCount: 1 });
    for (const client of [onHub, onPeer]) {
      assert.ok(!client.names.includes("server_stats"), `a "/" client got: ${client.names}`);
    }
  } finally {
    for (const admin of admins) admin.socket.close();
    onHub.socket.close();
    onPeer?.socket.close();
    const exited = new Promise((resolve) => peer.once("exit", resolve));
    peer.kill("SIGTERM");
    await Promise.all([exited, hub.stop()]);
  }
});
