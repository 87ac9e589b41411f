// The hub's logs as an operator reads them: no secret at any level (the binary at RUST_LOG=trace, every
// library included), and a request id on every HTTP error, in the answer's header, its JSON body and
// the log line about it.

import { test } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { io } from "socket.io-client";
import { startHub, connectClient, sleep } from "./hub.mjs";

const JWT_SECRET = "jwt-secret-that-must-never-be-logged-0123456789";
const API_KEY = "api-key-that-must-never-be-logged-abcdef";
const WRONG_KEY = "wrong-key-guessed-by-a-client-never-logged";

const b64url = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
function hs256(claims, secret) {
  const input = `${b64url({ alg: "HS256", typ: "JWT" })}.${b64url(claims)}`;
  return `${input}.${createHmac("sha256", secret).update(input).digest("base64url")}`;
}

/** Connects once with `auth`; resolves to "connect" or the connect_error's message. */
function attempt(url, auth, transports) {
  const socket = io(url, { transports, forceNew: true, reconnection: false, auth });
  return new Promise((resolve) => {
    socket.once("connect", () => resolve("connect"));
    socket.once("connect_error", (err) => resolve(err.message));
  }).finally(() => socket.close());
}

async function post(url, headers, body = { title: "t" }) {
  const res = await fetch(`${url}/notifications/notify`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  return { status: res.status, id: res.headers.get("x-request-id"), body: await res.json() };
}

test("at RUST_LOG=trace no API key, JWT or JWT secret reaches the log, whatever clients send", async () => {
  const hub = await startHub({ RUST_LOG: "trace", HUB_JWT_SECRET: JWT_SECRET, HUB_API_KEYS: API_KEY });
  const exp = Math.floor(Date.now() / 1000) + 3600;
  const token = hs256({ sub: "alice", exp }, JWT_SECRET);
  const forged = hs256({ sub: "mallory", exp }, "a-guessed-secret-of-the-attacker-000");
  const client = await connectClient(hub.url, { auth: { token } });
  try {
    for (const transports of [["websocket"], ["polling"]]) {
      assert.equal(await attempt(hub.url, { token }, transports), "connect");
      assert.notEqual(await attempt(hub.url, { token: forged }, transports), "connect");
    }
    // A token in the URL, as some clients put it.
    await (await fetch(`${hub.url}/socket.io/?EIO=4&transport=polling&token=${token}`)).arrayBuffer();
    assert.equal((await post(hub.url, { authorization: `Bearer ${API_KEY}` })).status, 201);
    assert.equal((await post(hub.url, { "x-api-key": API_KEY })).status, 201);
    assert.equal((await post(hub.url, { authorization: `Bearer ${WRONG_KEY}` })).status, 401);
    assert.equal((await post(hub.url, { "x-api-key": WRONG_KEY })).status, 401);
    const inUrl = await fetch(`${hub.url}/notifications/notify?api_key=${API_KEY}&token=${token}`, { method: "POST" });
    assert.ok(inUrl.status >= 400);
    await inUrl.arrayBuffer();
    await sleep(200);
  } finally {
    client.socket.close();
    await hub.stop();
  }
  const log = hub.log();
  // The run logged at trace level (the test would prove nothing on a quiet log).
  assert.match(log, /TRACE/);
  assert.match(log, /http error request_id=\S+ status=401 /);
  const [, , signature] = token.split(".");
  const forgedSignature = forged.split(".")[2];
  for (const [what, secret] of [
    ["the API key", API_KEY],
    ["a wrong API key", WRONG_KEY],
    ["the JWT secret", JWT_SECRET],
    ["a JWT", token],
    ["a JWT's signature", signature],
    ["a forged JWT's signature", forgedSignature],
  ]) {
    const line = log.split("\n").find((l) => l.includes(secret));
    assert.equal(line, undefined, `${what} was logged`);
  }
});

test("HTTP errors carry a request id: the client's own when sane, else a new UUID, in header, body and log line", async () => {
  const hub = await startHub({ HUB_API_KEYS: API_KEY });
  try {
    const given = await post(hub.url, { "x-request-id": "lb-7f3a.1_x", "x-api-key": WRONG_KEY });
    assert.equal(given.status, 401);
    assert.equal(given.id, "lb-7f3a.1_x");
    assert.deepEqual(given.body, {
      error: "invalid API key: send Authorization: Bearer <key> or X-API-Key: <key>",
      request_id: "lb-7f3a.1_x",
    });

    const insane = await post(hub.url, { "x-request-id": "no spaces=or quotes\"", "x-api-key": WRONG_KEY });
    assert.match(insane.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(insane.body.request_id, insane.id);

    // A User-Agent with quotes cannot forge fields on the access line (escaped, as the error lines).
    const forged = await post(hub.url, { "user-agent": 'x" status=200 request_id=forged x="', "x-api-key": WRONG_KEY });
    assert.equal(forged.status, 401);

    const ok = await post(hub.url, { "x-api-key": API_KEY });
    assert.equal(ok.status, 201);
    assert.match(ok.id, /^[0-9a-f-]{36}$/, "successful answers carry one too");
    assert.equal(ok.body.request_id, undefined, "only error bodies name it");

    // Engine.IO errors keep Node's body byte for byte; the header and the log line still have the id.
    const eio = await fetch(`${hub.url}/socket.io/?EIO=4&transport=polling&sid=unknown`);
    assert.equal(eio.status, 400);
    assert.equal(await eio.text(), '{"code":1,"message":"Session ID unknown"}');
    const eioId = eio.headers.get("x-request-id");
    assert.ok(eioId);

    await sleep(100);
    const lines = hub.log().split("\n");
    const about = (id) => lines.filter((l) => l.includes(`http error request_id=${id} `));
    assert.equal(about("lb-7f3a.1_x").length, 1, hub.log());
    assert.match(about("lb-7f3a.1_x")[0], /status=401 method=POST path="\/notifications\/notify" peer=127\.0\.0\.1 error="invalid API key/);
    assert.equal(about(insane.id).length, 1);
    assert.match(about(eioId)[0], /status=400 method=GET path="\/socket.io\/" .* error="Session ID unknown"/);
    assert.ok(!hub.log().includes("no spaces"), "an insane id is never echoed");
    assert.ok(lines.some((l) => l.includes(`user_agent="x\\" status=200 request_id=forged x=\\""`)), "the agent escaped");
    // The access line names the same id, as key=value fields.
    assert.ok(lines.some((l) => /request peer=127\.0\.0\.1 method=POST path="\/notifications\/notify" status=401 .* request_id=lb-7f3a\.1_x$/.test(l)));
  } finally {
    await hub.stop();
  }
});
