// The acceptance test of HUB_STREAM_SHARDS (README "Beyond one stream: shards"), at scale and with the
// official client: a Redis Cluster of three masters, two hub instances with N shards and recovery on,
// 1,000 users (one socket each, a JWT whose sub is the user, so each socket is in `user:<sub>`) split
// over both instances. A publisher posts targeted notifications `to: "user:<sub>"` (several per user)
// and a few broadcasts through both instances while 30% of the clients drop (the transport closed,
// no Socket.IO disconnect) and resume on the OTHER instance from their offset. At the end every user
// got exactly its own notifications and the broadcasts, each once, none meant for another user, in
// publish order within each shard (README: order is kept within a shard; with one shard that is the
// whole log), every resume reported `recovered === true`, every offset has N ids whose component of
// the entry's shard is the entry's id, and no client's offset ever moved back in any shard. The log
// in Redis is N streams `<key>#0..#N-1` holding what FNV-1a 64 of the first room sends there.
//
// Run for N = 1 (today's single stream: validates the test itself) and N = 4 (the feature).

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import http from "node:http";
import { io } from "socket.io-client";
import { createCluster } from "redis";
import { startHub, waitFor, sleep } from "./hub.mjs";
import { startRedisCluster } from "./redis_cluster.mjs";

const SECRET = "an-interop-secret-of-at-least-32-bytes";
const USERS = 1_000;
/** Targeted notifications per user posted by the publisher's rounds (dropped users get one more). */
const ROUNDS = 3;
/** A user i drops and resumes on the other instance when i % 10 < 3 (300 users). */
const drops = (i) => i % 10 < 3;
/** How many connects, posts and resumes are in flight at once (bounded: 2 cores, caps per address). */
const CONNECTS_IN_FLIGHT = 25;
const POSTS_IN_FLIGHT = 16;
const RESUMES_IN_FLIGHT = 10;

const clusters = [];
after(() => Promise.all(clusters.map((c) => c.stop())));

/** An HS256 connect token for `sub`, valid for an hour. */
function token(sub) {
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const input = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ sub, iat: now, exp: now + 3600 })}`;
  return `${input}.${createHmac("sha256", SECRET).update(input).digest("base64url")}`;
}

/** The shard of an entry whose first room is `room`: FNV-1a 64 of its UTF-8 bytes, mod `shards`. */
function shardOf(room, shards) {
  let hash = 0xcbf29ce484222325n;
  for (const byte of Buffer.from(room, "utf8")) {
    hash ^= BigInt(byte);
    hash = (hash * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return Number(hash % BigInt(shards));
}

/** A stream id `<ms>-<seq>` as a pair of BigInts; throws on anything else. */
function parseId(id, context) {
  const match = /^(\d+)-(\d+)$/.exec(id);
  if (!match) throw new Error(`not a stream id: ${JSON.stringify(id)} (${context})`);
  return [BigInt(match[1]), BigInt(match[2])];
}
/** -1, 0, 1 as stream ids `a` and `b` compare. */
function compareIds(a, b) {
  const [x, y] = [parseId(a, "compare"), parseId(b, "compare")];
  if (x[0] !== y[0]) return x[0] < y[0] ? -1 : 1;
  return x[1] === y[1] ? 0 : x[1] < y[1] ? -1 : 1;
}

/** Runs `work(item)` over `items` with at most `limit` in flight. */
async function pool(items, limit, work) {
  let next = 0;
  const runners = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await work(items[next++]);
  });
  await Promise.all(runners);
}

/** POSTs a notification over `agent`; resolves to the answer, failing on anything but 201. */
function post(agent, url, body) {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${url}/notifications/notify`,
      {
        method: "POST",
        agent,
        timeout: 10_000,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(payload) },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk) => (text += chunk));
        res.on("end", () => {
          if (res.statusCode !== 201) {
            return reject(new Error(`notify ${payload} answered ${res.statusCode}: ${text}`));
          }
          resolve(JSON.parse(text));
        });
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`notify ${body.title}: no answer within 10 s`)));
    req.on("error", (err) => reject(new Error(`notify ${body.title} to ${url}: ${err.message}`)));
    req.end(payload);
  });
}

/**
 * Connects an official client (WebSocket only) for `user` to `url`, recording into `user.inbox`
 * every notification with its offset and whether it was replayed (emitted before `connect`, after
 * a recovered CONNECT). `from` carries a dropped socket's session ({pid, offset}).
 * Resolves once connected; rejects on connect_error or after 15 s.
 */
async function connectUser(user, url, from) {
  const socket = io(url, {
    transports: ["websocket"],
    forceNew: true,
    autoConnect: false,
    reconnection: false,
    auth: { token: user.token },
  });
  if (from) {
    socket._pid = from.pid;
    socket._lastOffset = from.offset;
  }
  let connected = false;
  socket.on("notification", (notification, offset) => {
    user.inbox.push({ title: notification?.title, offset, replayed: !connected && socket.recovered === true });
  });
  socket.on("connect", () => (connected = true));
  const failed = new Promise((_, reject) =>
    socket.once("connect_error", (err) => reject(new Error(`${user.sub}: connect_error ${err.message}`))),
  );
  failed.catch(() => {});
  socket.connect();
  await Promise.race([waitFor(() => socket.connected, `${user.sub} connects to ${url}`, 15_000), failed]);
  user.connections.push({ socket, url, recovered: socket.recovered === true, id: socket.id });
  return socket;
}

/** One case: N shards, the whole scenario, then every assertion. */
async function scenario(shards) {
  const cluster = await startRedisCluster();
  clusters.push(cluster);
  const key = `shards-scale-${shards}`;
  const env = {
    REDIS_URL: cluster.url,
    HUB_STREAM_KEY: key,
    HUB_STREAM_SHARDS: String(shards),
    HUB_RECOVERY: "on",
    HUB_JWT_SECRET: SECRET,
    RUST_LOG: "warn,realtime_hub=info",
    HUB_KEEP_ALIVE_MS: "120000",
  };
  const hubs = [];
  // The publisher's HTTP connections: kept alive (the hubs' keep-alive outlasts the case, so a hub
  // never closes a connection under a request about to be written on it; with the fixture's 1 s a
  // post now and then met that race), closed before the hubs stop (which waits for idle ones).
  const agent = new http.Agent({ keepAlive: true, maxSockets: POSTS_IN_FLIGHT });
  const redis = createCluster({
    rootNodes: cluster.url.slice("redis+cluster://".length).split(",").map((host) => ({ url: `redis://${host}` })),
  });
  const users = Array.from({ length: USERS }, (_, i) => {
    const sub = `u${String(i).padStart(4, "0")}`;
    // expected: the titles it must get, in the order they were posted; inbox: what it got.
    const shard = shardOf(`user:${sub}`, shards);
    return { i, sub, token: token(sub), shard, expected: [], inbox: [], connections: [] };
  });
  if (shards > 1) {
    // The users' rooms cover every shard, else the case would not exercise them all.
    const used = new Set(users.map((u) => u.shard));
    assert.equal(used.size, shards, `the users' rooms hash to every shard (${[...used]})`);
  }
  /** Every accepted notification: title → {offset (its id in its shard), shard}. */
  const published = new Map();
  let posts = 0;
  const publish = async (via, body, shard) => {
    const answer = await post(agent, hubs[via].url, body);
    posts += 1;
    parseId(answer.offset, `the answer to ${body.title}`);
    published.set(body.title, { offset: answer.offset, shard });
    return answer;
  };
  // A user's notifications are posted one after the other (each after the previous 201), so their
  // publish order is defined: a chain per user.
  const chains = new Map();
  const postToUser = (user, title, via) => {
    user.expected.push(title);
    const done = (chains.get(user) ?? Promise.resolve()).then(() =>
      publish(via, { title, body: user.sub, to: `user:${user.sub}` }, user.shard),
    );
    chains.set(user, done);
    return done;
  };
  const broadcast = async (n) => {
    const title = `all#${n}`;
    for (const user of users) user.expected.push(title);
    await publish(n % 2, { title, body: "everyone" }, 0);
  };

  try {
    hubs.push(await startHub(env));
    hubs.push(await startHub(env));
    await redis.connect();
    // 1. Every user connects, to instance i % 2; a first broadcast reaches all of them, so each
    //    has an offset before anyone drops.
    await pool(users, CONNECTS_IN_FLIGHT, (user) => connectUser(user, hubs[user.i % 2].url));
    await broadcast(0);
    await waitFor(() => users.every((u) => u.inbox.length >= 1), "the first broadcast reaches all 1,000", 20_000);

    // 2. The publisher's rounds (through both instances) and, during each, a third of the dropping
    //    users drop and resume on the other instance, each with a notification posted while it is
    //    away; a round's broadcast follows its posts and resumes.
    const resumes = [];
    const dropped = users.filter((u) => drops(u.i));
    const resume = async (user, round, posting) => {
      const { socket, url } = user.connections.at(-1);
      const from = { pid: socket._pid, offset: socket._lastOffset, id: socket.id };
      socket.io.engine.close(); // the transport drops, as a network failure would: no disconnect packet
      await waitFor(() => !socket.connected, `${user.sub} disconnects`);
      const other = hubs.find((h) => h.url !== url);
      // The dropping instance writes the session record once it saw the close; resuming before
      // that would only wait for it (README: a resume of a live session).
      await waitFor(async () => (await redis.exists(`sio:session:${from.pid}`)) === 1, `the record of ${user.sub}`);
      // What it misses, posted through the instance it left, right before it resumes on the other:
      // the resuming instance's loops may not have handed it on yet when its replay reads.
      await postToUser(user, `${user.sub}#away`, hubs.findIndex((h) => h.url === url));
      await connectUser(user, other.url, from);
      resumes.push({ user, from, round, whilePosting: posting() });
    };
    for (let round = 0; round < ROUNDS; round++) {
      let posting = true;
      const posts = pool(users, POSTS_IN_FLIGHT, (user) =>
        postToUser(user, `${user.sub}#${round}`, (user.i + round) % 2),
      );
      posts.then(() => (posting = false), () => (posting = false));
      const batch = dropped.filter((_, k) => k % ROUNDS === round);
      await Promise.all([posts, pool(batch, RESUMES_IN_FLIGHT, (user) => resume(user, round, () => posting))]);
      await broadcast(round + 1);
    }
    await Promise.all(chains.values());

    // 3. Everything arrives (bounded; on time-out the assertions below name what is missing), then
    //    nothing more: a duplicate would come now.
    const complete = () => users.every((u) => u.inbox.length >= u.expected.length);
    await waitFor(complete, "every user's notifications", 30_000).catch(() => {});
    await sleep(500);

    // 4. The assertions, every problem listed (the first 20).
    const problems = [];
    assert.equal(resumes.length, dropped.length, "every dropped client resumed");
    for (const { user, from } of resumes) {
      const back = user.connections.at(-1);
      if (!back.recovered) problems.push(`${user.sub}: resumed with recovered=${back.recovered}`);
      if (back.id !== from.id) problems.push(`${user.sub}: resumed as ${back.id}, was ${from.id}`);
    }
    for (const user of users) {
      const got = user.inbox.map((r) => r.title);
      const mine = [...user.expected].sort();
      const counts = new Map();
      for (const title of got) counts.set(title, (counts.get(title) ?? 0) + 1);
      for (const [title, n] of counts) {
        if (n > 1) problems.push(`${user.sub}: got ${title} ${n} times`);
        if (!user.expected.includes(title)) problems.push(`${user.sub}: got ${title}, meant for someone else`);
      }
      for (const title of mine) if (!counts.has(title)) problems.push(`${user.sub}: never got ${title}`);
      // Publish order within each shard: its own notifications (its room's shard) and the
      // broadcasts (shard 0) each in order; with one shard (or its room on shard 0) both together,
      // in log order.
      for (let s = 0; s < shards; s++) {
        const inShard = user.inbox.filter((r) => published.get(r.title)?.shard === s).map((r) => r.title);
        const expected = user.expected
          .filter((t) => published.get(t)?.shard === s)
          .sort((a, b) => compareIds(published.get(a).offset, published.get(b).offset));
        if (JSON.stringify(inShard) !== JSON.stringify(expected)) {
          problems.push(
            `${user.sub}: shard ${s} out of order: got ${inShard.join(" ")}, log order ${expected.join(" ")}`,
          );
        }
      }
      const own = user.expected.filter((t) => !t.startsWith("all#"));
      const ownIds = own.map((t) => published.get(t)?.offset);
      for (let k = 1; k < ownIds.length; k++) {
        if (ownIds[k - 1] && ownIds[k] && compareIds(ownIds[k - 1], ownIds[k]) >= 0) {
          problems.push(`${user.sub}: ${own[k]} was appended before ${own[k - 1]} though posted after it`);
        }
      }
      // Offsets: N ids; the component of the entry's shard is the entry's id; no component of the
      // offset the client holds ever moves back (else a later resume would replay twice).
      let previous = null;
      for (const r of user.inbox) {
        const ids = typeof r.offset === "string" ? r.offset.split(",") : [];
        if (ids.length !== shards || !ids.every((id) => /^\d+-\d+$/.test(id))) {
          problems.push(`${user.sub}: offset ${JSON.stringify(r.offset)} of ${r.title} is not ${shards} ids`);
          continue;
        }
        const entry = published.get(r.title);
        if (entry && ids[entry.shard] !== entry.offset) {
          problems.push(
            `${user.sub}: ${r.title} carried ${r.offset}, its id in shard ${entry.shard} is ${entry.offset}`,
          );
        }
        if (previous) {
          for (let s = 0; s < shards; s++) {
            const order = compareIds(previous[s], ids[s]);
            if (order > 0 || (entry && s === entry.shard && order === 0)) {
              problems.push(`${user.sub}: offset went from ${previous.join(",")} to ${r.offset} at ${r.title}`);
              break;
            }
          }
        }
        previous = ids;
      }
    }
    assert.deepEqual(problems.slice(0, 20), [], `${problems.length} problems`);

    // Resumes overlapped the publishing in every round (else the case would only test resumes of an
    // idle log).
    const overlapping = [...Array(ROUNDS).keys()].map(
      (round) => resumes.filter((r) => r.round === round && r.whilePosting).length,
    );
    assert.ok(overlapping.every((n) => n > 0), `resumes done while each round's posts were in flight: ${overlapping}`);
    // The recovery path was taken: some of what the dropped users missed came as a replay.
    const replayed = resumes.filter(({ user }) => user.inbox.some((r) => r.replayed)).length;
    assert.ok(replayed > 0, "some resumed clients got a replay before connect");

    // 5. The log in Redis: N streams (one stream named as the key with one shard), each holding
    //    exactly the entries FNV-1a sent there.
    const perShard = Array(shards).fill(0);
    for (const { shard } of published.values()) perShard[shard] += 1;
    assert.equal(published.size, posts, "every title published once");
    const streams = shards === 1 ? [key] : perShard.map((_, s) => `${key}#${s}`);
    const lengths = await Promise.all(streams.map((stream) => redis.xLen(stream)));
    assert.deepEqual(lengths, perShard, `entries per stream ${streams.join(" ")}`);
    if (shards > 1) assert.equal(await redis.exists(key), 0, "no unsharded stream");
    return { posts, resumes: resumes.length, replayed, overlapping };
  } catch (err) {
    // What the hubs logged at warn and above tells a hub-side failure from a test-side one.
    for (const [n, hub] of hubs.entries()) {
      const lines = hub.log().split("\n").filter((l) => /WARN|ERROR/.test(l));
      console.log(`# hub ${n} (${hub.url}): ${lines.length} warnings/errors, the last 10:`);
      console.log(lines.slice(-10).join("\n"));
    }
    throw err;
  } finally {
    for (const user of users) for (const { socket } of user.connections) socket.close();
    await redis.quit().catch(() => {});
    agent.destroy();
    await Promise.all(hubs.map((hub) => hub.stop()));
  }
}

for (const shards of [1, 4]) {
  const name =
    `HUB_STREAM_SHARDS=${shards}: 1,000 users on two instances over a three-master Cluster get exactly their ` +
    "own notifications and the broadcasts, once, in order, across resumes on the other instance";
  test(name, { timeout: 120_000 }, async () => {
    const started = Date.now();
    const { posts, resumes, replayed, overlapping } = await scenario(shards);
    console.log(
      `# ${shards} shard(s): ${posts} notifications, ${resumes} resumes (${replayed} with a replay; ` +
        `${overlapping.join("/")} per round while its posts were in flight) in ${Date.now() - started} ms`,
    );
  });
}
