// The page's own client (public/hub-client.js): its Socket.IO packet codec on the protocol's
// examples (reference: socket.io-protocol v5, "Wire examples"), and socket.io-parser's refusals.
// The file is a browser script; it runs here in a VM context with the one global it needs.
// Its behaviour against the hub, in Chromium: tests/browser/hub_client.test.mjs.

import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import vm from "node:vm";
import { fileURLToPath } from "node:url";
import { Encoder, Decoder } from "socket.io-parser";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const context = vm.createContext({ window: {}, URL, URLSearchParams });
vm.runInContext(fs.readFileSync(path.join(root, "public/hub-client.js"), "utf8"), context);
const { encodePacket, decodePacket } = context.window.HubClient;

/** socket.io-parser's reading of `text` (the official client's decoder). */
function officialDecode(text) {
  const decoder = new Decoder();
  let packet;
  decoder.on("decoded", (p) => { packet = p; });
  decoder.add(text);
  return packet;
}

// Plain JSON copies: the VM's objects have another realm's prototypes.
const plain = (value) => JSON.parse(JSON.stringify(value));

// The examples are WebSocket frames as the reference writes them; the codec reads and writes what
// follows Engine.IO's message type `4` (as socket.io-parser does): `frame.slice(1)`.
test("packets decode as socket.io-parser decodes them", () => {
  for (const frame of [
    "40", '40{"sid":"wZX3oN0bSVIhsaknAAAI","pid":"Q8_gznSiXkJZx5daAAAB"}', "40/admin,",
    '40/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}', "41", "41/admin,",
    '42["hey","Jude"]', '42/admin,["bar"]', '4212["foo"]', '4312["bar"]', '43/admin,13["bar"]', "43", "43[]",
    '42[12,"a"]', '42["notification",{"id":"x","title":"t"},"1732740000000-0"]',
    '44{"message":"unauthorized"}', '44/admin,{"message":"not authorized","data":{"reason":"no token"}}',
    '44"a string"',
  ]) {
    const text = frame.slice(1);
    const ours = plain(decodePacket(text));
    const theirs = plain(officialDecode(text));
    if (theirs.data === undefined) delete theirs.data;
    assert.deepEqual(ours, theirs, text);
  }
});

test("malformed packets, reserved event names and binary packets are refused", () => {
  assert.throws(() => decodePacket(""), { name: "Error" });
  for (const frame of ["4abc", "47", '42{}', '42abc[1]', '40"abc"', "41{}", '42["disconnect"]',
    '42["connect_error"]', "42[]", "42[null]", "42[1", '451-["baz",{"_placeholder":true,"num":0}]',
    '461-/admin,1[{"_placeholder":true,"num":0}]', "4299999999999999999999[\"x\"]"]) {
    const text = frame.slice(1);
    // The VM's Error is another realm's: matched by name.
    assert.throws(() => decodePacket(text), { name: "Error" }, JSON.stringify(text));
  }
});

test("packets encode as socket.io-parser encodes them", () => {
  const encoder = new Encoder();
  for (const packet of [
    { type: 0, nsp: "/" },
    { type: 0, nsp: "/", data: { token: "abc" } },
    { type: 0, nsp: "/", data: { pid: "Q4yW0ygf9uNv-OAjAAAB", offset: "1-0", token: "abc" } },
    { type: 0, nsp: "/admin", data: { token: "abc" } },
    { type: 1, nsp: "/" },
    { type: 2, nsp: "/", data: ["notify", { title: "t", body: "b" }] },
    { type: 2, nsp: "/", id: 7, data: ["join", "ops"] },
    { type: 3, nsp: "/admin", id: 13, data: ["bar"] },
    { type: 3, nsp: "/", id: 0, data: [] },
  ]) {
    const ours = encodePacket(packet);
    assert.equal(ours, encoder.encode(packet)[0], JSON.stringify(packet));
    assert.deepEqual(plain(decodePacket(ours)), plain({ ...packet, nsp: packet.nsp }), "it reads back its own");
  }
  assert.throws(() => encodePacket({ type: 2, nsp: "/", data: ["file", new Uint8Array([1, 2])] }),
    /binary values are not supported/);
});
