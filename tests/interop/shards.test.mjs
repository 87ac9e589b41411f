// HUB_STREAM_SHARDS: 1 (the default) is today's single stream, its offsets `<ms>-<seq>` across
// instances; any other count is refused at start until sharding is built (README "Beyond one
// stream: shards"), never accepted and run on one stream.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { startHub, notify, connectClient, waitFor } from "./hub.mjs";
import { startRedis } from "./redis.mjs";
import { connectWithSession, waitForRecord } from "./peer.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const HUB_BIN = process.env.HUB_BIN ?? path.join(root, "target/debug/realtime-hub");

const redis = await startRedis();
after(() => redis.stop());

test("HUB_STREAM_SHARDS=4 is refused at start with the reason (exit 2), before listening", async () => {
  const child = spawn(HUB_BIN, ["--host", "127.0.0.1", "--port", "0"], {
    env: { ...process.env, REDIS_URL: redis.url, HUB_STREAM_SHARDS: "4" },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (chunk) => (stderr += chunk));
  // A hub that accepted the setting would keep running: it is stopped and the test fails.
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  const code = await new Promise((resolve) => child.once("exit", resolve));
  clearTimeout(timer);
  assert.equal(code, 2, stderr);
  assert.match(stderr, /HUB_STREAM_SHARDS|stream-shards/);
  assert.match(stderr, /not built yet/);
  assert.doesNotMatch(stderr, /listening on/);
});

test("HUB_STREAM_SHARDS=1 keeps one stream: a resume on another instance replays with `<ms>-<seq>` offsets", async () => {
  const a = await startHub({ REDIS_URL: redis.url, HUB_STREAM_SHARDS: "1" });
  const b = await startHub({ REDIS_URL: redis.url, HUB_STREAM_SHARDS: "1" });
  try {
    const client = await connectClient(a.url);
    await notify(a.url, { title: "before" });
    await waitFor(() => client.received.length === 1, "the first notification arrives on a");
    assert.match(client.received[0].offset, /^\d+-\d+$/);
    const from = { _pid: client.socket._pid, _lastOffset: client.socket._lastOffset };
    assert.equal(from._lastOffset, client.received[0].offset);
    client.socket.io.reconnection(false);
    client.socket.io.engine.close();
    await waitForRecord(redis.url, from._pid);
    const missed = await notify(b.url, { title: "missed" });
    assert.match(missed.offset, /^\d+-\d+$/);
    const resumed = await connectWithSession(b.url, from);
    try {
      assert.equal(resumed.socket.recovered, true, "resumed on the other instance");
      await waitFor(() => resumed.received.length === 1, "the missed notification is replayed on b");
      assert.equal(resumed.received[0].notification.title, "missed");
      assert.equal(resumed.received[0].offset, missed.offset);
    } finally {
      resumed.socket.close();
      client.socket.close();
    }
  } finally {
    await a.stop();
    await b.stop();
  }
});
