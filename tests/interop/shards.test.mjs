// HUB_STREAM_SHARDS: 1 (the default) is today's single stream, its offsets `<ms>-<seq>` across
// instances; a count out of range, or more than one stream without Redis, is refused at start
// (README "Beyond one stream: shards"), never accepted and run on one stream.

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

/** Starts the hub binary with exactly `env`; resolves to its exit code and stderr (killed after 10 s). */
async function exitOf(env) {
  const child = spawn(HUB_BIN, ["--host", "127.0.0.1", "--port", "0"], {
    env,
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (chunk) => (stderr += chunk));
  // A hub that accepted the setting would keep running: it is stopped and the test fails.
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  const code = await new Promise((resolve) => child.once("exit", resolve));
  clearTimeout(timer);
  return { code, stderr };
}

test("HUB_STREAM_SHARDS out of range is refused at start with the reason (exit 2), before listening", async () => {
  for (const shards of ["0", "65", "four"]) {
    const { code, stderr } = await exitOf({ ...process.env, REDIS_URL: redis.url, HUB_STREAM_SHARDS: shards });
    assert.equal(code, 2, stderr);
    assert.match(stderr, /stream-shards/);
    assert.match(stderr, /from 1/);
    assert.doesNotMatch(stderr, /listening on/);
  }
});

test("HUB_STREAM_SHARDS=4 without REDIS_URL is refused at start: the embedded log is one stream", async () => {
  const env = { ...process.env, HUB_STREAM_SHARDS: "4" };
  delete env.REDIS_URL;
  const { code, stderr } = await exitOf(env);
  assert.notEqual(code, 0, stderr);
  assert.notEqual(code, null, "it exited by itself");
  assert.match(stderr, /HUB_STREAM_SHARDS > 1 needs REDIS_URL/);
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
