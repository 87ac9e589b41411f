// Connect tokens (JWT) with the official client: `io(url, {auth: {token}})` (or an auth function);
// no valid token → connect_error "unauthorized" and nothing registered; a token that expires while
// connected closes the transport at exp, the client reconnects with a fresh token and recovers what
// it missed, once, in order; another user's token never resumes a session; RS256 and ES256 keys.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createSign, createHmac } from "node:crypto";
import { mkdtempSync, writeFileSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { io } from "socket.io-client";
import { startHub, notify, connectClient, dropClient, reconnectClient, waitFor, sleep } from "./hub.mjs";
import { connectWithSession } from "./peer.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const HUB_BIN = process.env.HUB_BIN ?? path.join(root, "target/debug/realtime-hub");
const SECRET = "an-interop-secret-of-at-least-32-bytes";
const dir = mkdtempSync(path.join(tmpdir(), "hub-tokens-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A token from the binary's `token` subcommand, signed with SECRET (plus `env`'s aud/iss). */
function mint(sub, { ttl = "1h", scope = "", env = {} } = {}) {
  const args = ["token", "--sub", sub, "--ttl", ttl, ...(scope ? ["--scope", scope] : [])];
  return execFileSync(HUB_BIN, args, { env: { ...process.env, HUB_JWT_SECRET: SECRET, ...env }, timeout: 10_000 })
    .toString()
    .trim();
}

const b64url = (value) => Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url");
const now = () => Math.floor(Date.now() / 1000);

/** A hand-made JWT: `sign(input)` gives the signature bytes (or "" for none). */
function jwt(header, claims, sign) {
  const input = `${b64url(header)}.${b64url(claims)}`;
  return `${input}.${Buffer.from(sign(input)).toString("base64url")}`;
}
const hs256 = (claims, secret = SECRET) =>
  jwt({ alg: "HS256", typ: "JWT" }, claims, (input) => createHmac("sha256", secret).update(input).digest());

/** Connects once with `auth`; resolves to "connect" or the connect_error's message. */
function attempt(url, auth) {
  const socket = io(url, { transports: ["websocket"], forceNew: true, reconnection: false, auth });
  return new Promise((resolve) => {
    socket.on("connect", () => resolve({ outcome: "connect", socket }));
    socket.on("connect_error", (err) => resolve({ outcome: err.message, socket }));
  });
}

async function metric(url, name) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  assert.ok(line, `${name} in /metrics`);
  return Number(line.split(" ")[1]);
}

async function withHub(env, run) {
  const hub = await startHub({ HUB_JWT_SECRET: SECRET, HUB_PING_INTERVAL_MS: "5000", ...env });
  try {
    await run(hub);
  } finally {
    await hub.stop();
  }
}

test("without a token the client gets connect_error unauthorized and the hub never registers it", async () => {
  await withHub({}, async (hub) => {
    const { outcome, socket } = await attempt(hub.url, {});
    const heard = [];
    socket.on("notification", (n) => heard.push(n));
    assert.equal(outcome, "unauthorized");
    assert.equal(await metric(hub.url, "hub_sessions"), 0, "no socket registered with the Hub");
    assert.equal(await metric(hub.url, "hub_connects_refused_total"), 1);
    const member = await connectClient(hub.url, { auth: { token: mint("alice") } });
    await notify(hub.url, { title: "members only" });
    await waitFor(() => member.received.length === 1, "the member gets the broadcast");
    assert.deepEqual(heard, [], "the refused client got nothing");
    socket.close();
    member.socket.close();
  });
});

test("a token from the token command connects; notify needs its scope", async () => {
  await withHub({}, async (hub) => {
    const plain = await connectClient(hub.url, { auth: { token: mint("alice") } });
    assert.deepEqual(await plain.socket.emitWithAck("notify", { title: "x" }), { error: "forbidden" });
    assert.ok(plain.socket.connected, "the connection is kept");
    const granted = await connectClient(hub.url, { auth: { token: mint("bob", { scope: "notify" }) } });
    const ack = await granted.socket.emitWithAck("notify", { title: "y" });
    assert.equal(typeof ack.id, "string", JSON.stringify(ack));
    plain.socket.close();
    granted.socket.close();
  });
});

for (const transports of [["websocket"], ["polling"]]) {
  test(`a token expiring while connected (${transports}) closes at exp; the client reconnects with a fresh token and recovers once, in order`, async () => {
    await withHub({}, async (hub) => {
      let calls = 0;
      let disconnectedAt = null;
      let missed = [];
      let exp = null;
      const auth = (cb) => {
        calls += 1;
        if (calls === 1) {
          const token = mint("alice", { ttl: "3s" });
          exp = JSON.parse(Buffer.from(token.split(".")[1], "base64url")).exp;
          return cb({ token });
        }
        // Reconnecting: publish while it is away, then hand over a fresh token.
        (async () => {
          for (const title of ["m1", "m2", "m3"]) missed.push((await notify(hub.url, { title })).offset);
          cb({ token: mint("alice", { ttl: "1h" }) });
        })();
      };
      const client = await connectClient(hub.url, { auth, transports });
      let reason = null;
      client.socket.on("disconnect", (why) => {
        reason = why;
        disconnectedAt = Date.now() / 1000;
      });
      await waitFor(() => client.connects.length === 2, "the client reconnects", 15_000);
      assert.equal(reason, "transport close", "a reason the client reconnects after");
      assert.ok(disconnectedAt >= exp - 0.05 && disconnectedAt < exp + 1, `closed at ${disconnectedAt}, exp ${exp}`);
      assert.equal(client.socket.recovered, true);
      assert.deepEqual(client.received.map((r) => r.offset), missed, "each missed notification once, in order");
      assert.ok(client.received.every((r) => r.replayed));
      client.socket.close();
    });
  });
}

test("a resume with another user's token gets none of the owner's missed notifications; the owner still recovers", async () => {
  await withHub({}, async (hub) => {
    const alice = await connectClient(hub.url, { auth: { token: mint("alice") } });
    await notify(hub.url, { title: "seen" });
    await waitFor(() => alice.received.length === 1, "alice gets the first");
    await dropClient(alice);
    const missed = await notify(hub.url, { title: "for alice only" });
    const mallory = await connectWithSession(hub.url, alice.socket, { token: mint("mallory") });
    assert.equal(mallory.socket.recovered, false);
    assert.notEqual(mallory.socket.id, alice.socket.id);
    await sleep(200);
    assert.deepEqual(mallory.received, [], "nothing of alice's");
    mallory.socket.close();
    await reconnectClient(alice);
    assert.equal(alice.socket.recovered, true, "the record was left to its owner");
    assert.deepEqual(alice.received.map((r) => r.offset).slice(1), [missed.offset]);
    alice.socket.close();
  });
});

test("RS256 and ES256 public keys work as well as HS256; wrong or unsigned tokens are unauthorized", async () => {
  const keys = {};
  for (const [name, opts] of [["rsa", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]], ["ec", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]]]) {
    const priv = path.join(dir, `${name}.key`);
    const pub = path.join(dir, `${name}.pub`);
    execFileSync("openssl", ["genpkey", ...opts, "-out", priv], { stdio: "ignore" });
    execFileSync("openssl", ["pkey", "-in", priv, "-pubout", "-out", pub], { stdio: "ignore" });
    keys[name] = { priv: readFileSync(priv), pub };
  }
  const claims = { sub: "alice", exp: now() + 600, aud: "hub", iss: "issuer" };
  const rs256 = jwt({ alg: "RS256", typ: "JWT" }, claims, (input) => createSign("RSA-SHA256").update(input).sign(keys.rsa.priv));
  const es256 = jwt({ alg: "ES256", typ: "JWT" }, claims, (input) =>
    createSign("SHA256").update(input).sign({ key: keys.ec.priv, dsaEncoding: "ieee-p1363" }),
  );
  const env = { HUB_JWT_AUDIENCE: "hub", HUB_JWT_ISSUER: "issuer" };
  for (const [key, good, other] of [[keys.rsa.pub, rs256, es256], [keys.ec.pub, es256, rs256]]) {
    await withHub({ ...env, HUB_JWT_PUBLIC_KEY_FILE: key }, async (hub) => {
      const cases = [
        ["public key", good, "connect"],
        ["HS256 alongside", hs256(claims), "connect"],
        ["minted with aud/iss", mint("bob", { env }), "connect"],
        ["the other algorithm", other, "unauthorized"],
        ["wrong aud", hs256({ ...claims, aud: "other" }), "unauthorized"],
        ["wrong iss", hs256({ ...claims, iss: "evil" }), "unauthorized"],
        ["wrong signature", hs256(claims, "another-secret"), "unauthorized"],
        ["expired", hs256({ ...claims, exp: now() - 5 }), "unauthorized"],
        ["missing exp", hs256({ sub: "alice", aud: "hub", iss: "issuer" }), "unauthorized"],
        ["alg none", jwt({ alg: "none", typ: "JWT" }, claims, () => ""), "unauthorized"],
        ["alg HS256 keyed with the public key", hs256(claims, readFileSync(key)), "unauthorized"],
      ];
      for (const [what, token, expected] of cases) {
        const { outcome, socket } = await attempt(hub.url, { token });
        socket.close();
        assert.equal(outcome, expected, `${path.basename(key)}: ${what}`);
      }
    });
  }
});
