// A Redis failover under Sentinel while notifications flow: two hubs on REDIS_URL=redis+sentinel://…,
// clients on both, a publisher retrying each notification with its Idempotency-Key until 201, and the
// primary killed with SIGKILL while its replica lags (replication held, see sentinel.mjs).

import { test } from "node:test";
import assert from "node:assert/strict";
import { startHub, connectClient, dropClient, reconnectClient, waitFor, sleep } from "./hub.mjs";
import { startSentinelGroup, streamIds, FAILOVER_BOUND_MS } from "./sentinel.mjs";

const MIN_REPLICAS_1 = { HUB_REDIS_MIN_REPLICAS: "1", HUB_REDIS_MIN_REPLICAS_TIMEOUT_MS: "300" };
const STREAM = "interop:failover";
const STEADY_PER_HUB = 3;
/** Notifications acknowledged before the first client drops, and before replication is held. */
const BEFORE_DROP = 30;
const BEFORE_HOLD = 45;
/** How long the replica gets nothing before the primary is killed. */
const HOLD_MS = 400;
/** Notifications acknowledged after the failover before the publisher stops. */
const AFTER_FAILOVER = 30;
/** A bound on the whole publisher, in notifications. */
const MAX_NOTIFICATIONS = 2000;

/** The time part of an entry id (the writing server's clock, this machine's). */
const offsetMs = (offset) => Number(offset.split("-")[0]);

function compareOffsets(a, b) {
  const [ams, aseq] = a.split("-").map(BigInt);
  const [bms, bseq] = b.split("-").map(BigInt);
  return ams === bms ? Number(aseq - bseq) : ams < bms ? -1 : 1;
}

/**
 * A client that also sorts what it receives into chains: a chain starts at a connect that did not
 * recover (the first one included) and goes on across recovered reconnects.
 */
async function trackedClient(url) {
  const client = await connectClient(url);
  client.chains = [[]];
  client.socket.on("notification", (notification, offset) => {
    const fresh = client.connects.filter((c) => c.recovered !== true).length;
    while (client.chains.length < fresh) client.chains.push([]);
    client.chains[fresh - 1].push({ offset, title: notification.title, at: Date.now() });
  });
  return client;
}

/** Polls GET /readyz every 50 ms and keeps the statuses seen, each change once (0: no answer). */
function watchReadiness(url) {
  const seen = [];
  let stopped = false;
  const done = (async () => {
    for (let i = 0; i < 10_000 && !stopped; i++) {
      const status = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2000) }).then((r) => r.status, () => 0);
      if (seen[seen.length - 1] !== status) seen.push(status);
      await sleep(50);
    }
  })();
  return {
    seen,
    last: () => seen[seen.length - 1],
    async stop() {
      stopped = true;
      await done;
    },
  };
}

/**
 * Publishes n0, n1, … (alternating hubs) until stopped, each with its own Idempotency-Key, retried
 * with it on 503 or a network error until 201 (at most 60 s each). Records every acknowledgement:
 * n, offset, and when the acknowledged attempt was sent.
 */
function startPublisher(hubs) {
  const acked = [];
  const counts = { unavailable: 0, networkErrors: 0, retriedThenAcked: 0 };
  let stopped = false;
  const publishOne = async (n) => {
    const deadline = Date.now() + 60_000;
    for (let attempt = 0; ; attempt++) {
      const sentAt = Date.now();
      let res;
      try {
        res = await fetch(`${hubs[(n + attempt) % hubs.length].url}/notifications/notify`, {
          method: "POST",
          headers: { "content-type": "application/json", "idempotency-key": `failover-n${n}` },
          body: JSON.stringify({ title: `n${n}` }),
          signal: AbortSignal.timeout(10_000),
        });
      } catch {
        counts.networkErrors++;
      }
      if (res) {
        const answer = await res.json().catch(() => null);
        if (res.status === 201) {
          if (attempt > 0) counts.retriedThenAcked++;
          acked.push({ n, offset: answer.offset, sentAt, ackedAt: Date.now() });
          return;
        }
        if (res.status !== 503) throw new Error(`n${n}: notify answered ${res.status}: ${JSON.stringify(answer)}`);
        counts.unavailable++;
      }
      if (Date.now() > deadline) throw new Error(`n${n} was not acknowledged within 60 s`);
      await sleep(50);
    }
  };
  const done = (async () => {
    for (let n = 0; n < MAX_NOTIFICATIONS && !stopped; n++) {
      await publishOne(n);
      await sleep(10);
    }
  })();
  return {
    acked,
    counts,
    done,
    async stop() {
      stopped = true;
      await done;
    },
  };
}

/**
 * The scenario both tests share. Resolves to what happened: the acknowledgements, the clients, the
 * stream's ids on the new primary, when replication was held and the primary killed, readiness.
 */
async function failover(t, env, { hold = true, planned = false } = {}) {
  const group = await startSentinelGroup();
  const hubs = [];
  const clients = [];
  try {
    const hubEnv = { REDIS_URL: group.url, HUB_STREAM_KEY: STREAM, ...env };
    hubs.push(await startHub(hubEnv), await startHub(hubEnv));
    const steady = [];
    const dropped = [];
    for (const hub of hubs) {
      for (let i = 0; i < STEADY_PER_HUB; i++) steady.push(await trackedClient(hub.url));
      dropped.push(await trackedClient(hub.url));
    }
    clients.push(...steady, ...dropped);

    const publisher = startPublisher(hubs);
    const publishing = publisher.done.catch((err) => err);
    const acked = (count, what) => waitFor(() => publisher.acked.length >= count, what, 30_000);
    await acked(BEFORE_DROP, "the first notifications are acknowledged");
    for (const client of dropped) await dropClient(client);
    await acked(BEFORE_HOLD, "notifications are acknowledged while clients are away");

    const readiness = hubs.map((hub) => watchReadiness(hub.url));
    if (hold) group.holdReplication();
    const heldAt = hold ? Date.now() : Infinity;
    await sleep(HOLD_MS);
    const killedAt = Date.now();
    let newPrimary;
    let oldPrimaryLastPrimaryAt;
    let promotedAt;
    if (planned) {
      // The primary stays up and is demoted: connections to it meet READONLY (or are unblocked).
      ({ port: newPrimary, lastPrimaryAt: oldPrimaryLastPrimaryAt, promotedAt } = await group.plannedFailover());
    } else {
      await group.killPrimary();
      newPrimary = await group.waitForNewPrimary();
    }
    const promotedAfterMs = Date.now() - killedAt;
    // The old primary comes back empty as the new one's replica (so WAIT can be satisfied again).
    if (!planned) await group.restartAsReplicaOf(newPrimary);
    await waitFor(
      () => readiness.every((r) => (planned || r.seen.includes(503)) && r.last() === 200),
      planned ? "both hubs are ready (200)" : "both hubs were unready (503) and are ready again (200)",
      FAILOVER_BOUND_MS,
    );
    for (const client of dropped) await reconnectClient(client);
    await acked(publisher.acked.length + AFTER_FAILOVER, "notifications are acknowledged after the failover");
    await publisher.stop();
    const failed = await publishing;
    if (failed instanceof Error) throw failed;
    for (const r of readiness) await r.stop();

    const last = publisher.acked[publisher.acked.length - 1].offset;
    for (const [i, client] of clients.entries()) {
      await waitFor(
        () => client.socket.connected && client.received.some((r) => r.offset === last),
        `client ${i} gets the last notification`,
        20_000,
      );
    }
    await sleep(300); // a late duplicate would arrive now
    const finalIds = new Set(await streamIds(newPrimary, STREAM));
    t.diagnostic(
      `failover: promoted ${promotedAfterMs} ms after the kill; acknowledged ${publisher.acked.length} ` +
        `(${publisher.acked.filter((a) => offsetMs(a.offset) <= killedAt).length} written before the kill); 503 answers ${publisher.counts.unavailable}, network errors ` +
        `${publisher.counts.networkErrors}, acknowledged after a retry ${publisher.counts.retriedThenAcked}; ` +
        `readiness ${readiness.map((r) => r.seen.join("→")).join(" / ")}; epoch changes seen by the hubs: ` +
        hubs.map((hub) => (hub.log().match(/log epoch changed [^\n]*/g) ?? []).join("; ") || "none").join(" / ") +
        `; connections that left a node Sentinel no longer names: ${hubs.map((hub) => (hub.log().match(/no longer the one Sentinel names/g) ?? []).length).join(" / ")}`,
    );
    return { acked: publisher.acked, oldPrimaryLastPrimaryAt, promotedAt, heldAt, killedAt, steady, dropped, finalIds, readiness };
  } finally {
    for (const client of clients) client.socket.close();
    await Promise.all(hubs.map((hub) => hub.stop()));
    await group.stop();
  }
}

test("with HUB_REDIS_MIN_REPLICAS=1 a SIGKILLed primary loses nothing: every acknowledged notification reaches every client once, in order, and dropped clients recover across the failover", async (t) => {
  const run = await failover(t, MIN_REPLICAS_1);
  assertNothingAcknowledgedLost(run);
});

test("without HUB_REDIS_MIN_REPLICAS a SIGKILLed lagging primary loses only the newest acknowledged notifications, and no client resumes partially or gets one twice", async (t) => {
  const run = await failover(t, {});
  const preKill = run.acked.filter((a) => offsetMs(a.offset) <= run.killedAt);
  const lost = run.acked.filter((a) => !run.finalIds.has(a.offset));
  t.diagnostic(
    `lost ${lost.length} acknowledged notifications: ${lost
      .map((a) => `${a.offset} (n${a.n}, written ${run.killedAt - offsetMs(a.offset)} ms before the kill)`)
      .join(", ")}`,
  );
  assert.ok(lost.length > 0, "replication was held, so the failover lost what was acknowledged meanwhile");
  assert.deepEqual(lost, preKill.slice(preKill.length - lost.length), "the lost ones are the newest acknowledged before the kill");
  for (const a of preKill.filter((a) => a.sentAt >= run.heldAt)) {
    assert.ok(lost.includes(a), `n${a.n}, published while replication was held, is among the lost`);
  }

  assertNoPartialResumeNorDuplicate(t, run);
});

/**
 * What must hold after a failover that may have lost entries: per client no entry twice, and each chain
 * (a fresh session and the recovered reconnects after it) a gapless run, in order, of one node's log:
 * the new primary's (its final stream), or the old primary's (what it had before the new one diverged:
 * the final stream's entries up to the promotion, or the kill, and every entry acknowledged or
 * received that the new primary lacks). A planned failover has both take writes for a while (one hub
 * moved, the other not yet), so their entries interleave, and a client reading either log in order
 * skips the other's; a chain that skipped an entry of its own log, or mixed the two, fails. A chain
 * with a resume in it must also not span an entry a hub handed on that the failover lost (such a loss
 * gives the stream a new epoch, and a resume across it is partial).
 */
function assertNoPartialResumeNorDuplicate(t, run) {
  const seen = [...new Set([...run.acked.map((a) => a.offset), ...[...run.steady, ...run.dropped].flatMap((c) => c.received.map((r) => r.offset))])];
  const divergedAt = run.promotedAt ?? run.killedAt;
  const logs = [
    [...run.finalIds].sort(compareOffsets),
    [...new Set([...[...run.finalIds].filter((offset) => offsetMs(offset) <= divergedAt), ...seen.filter((offset) => !run.finalIds.has(offset))])].sort(compareOffsets),
  ];
  const history = [...new Set([...seen, ...run.finalIds])].sort(compareOffsets);
  const handedOn = [...new Set([...run.finalIds, ...[...run.steady, ...run.dropped].flatMap((c) => c.received.map((r) => r.offset))])].sort(compareOffsets);
  let resumedExactly = 0;
  let resumedFresh = 0;
  for (const [i, client] of [...run.steady, ...run.dropped].entries()) {
    const offsets = client.received.map((r) => r.offset);
    assert.equal(new Set(offsets).size, offsets.length, `client ${i} got no entry twice`);
    // Per chain, whether it holds a resume (a recovered reconnect after its fresh connect).
    const resumes = [];
    for (const connect of client.connects) connect.recovered === true ? (resumes[resumes.length - 1] = true) : resumes.push(false);
    for (const [c, chain] of client.chains.entries()) {
      // The log the chain read: the new primary's unless it holds an entry only the old one had.
      const log = !chain.every((r) => run.finalIds.has(r.offset)) ? logs[1] : resumes[c] ? handedOn : logs[0];
      const position = new Map(log.map((offset, k) => [offset, k]));
      const at = chain.map((r) => position.get(r.offset));
      const skipped = log.slice(at[0], at[at.length - 1] + 1).filter((offset) => !chain.some((r) => r.offset === offset));
      assert.ok(
        at.every((p, k) => p !== undefined && (k === 0 || p === at[k - 1] + 1)),
        `client ${i}, chain ${c}: gapless and in order in the ${log === logs[1] ? "old" : "new"} primary's log${log === handedOn ? " and what hubs handed on" : ""} (no partial resume); skipped ` +
          skipped.map((offset) => `${offset} (${run.finalIds.has(offset) ? "on the new primary" : "lost"}, ${run.acked.some((a) => a.offset === offset) ? "acknowledged" : "not acknowledged"})`).join(", ") +
          `: ${chain.map((r) => r.offset).join(" ")}`,
      );
      const titles = chain.map((r) => r.title);
      assert.equal(new Set(titles).size, titles.length, `client ${i}, chain ${c}: no notification twice`);
    }
    const lastChain = client.chains[client.chains.length - 1];
    assert.equal(lastChain[lastChain.length - 1].offset, history[history.length - 1], `client ${i} is live at the end`);
    for (const reconnect of client.connects.slice(1)) (reconnect.recovered ? resumedExactly++ : resumedFresh++);
  }
  t.diagnostic(`reconnects: ${resumedExactly} recovered, ${resumedFresh} not recovered (a new epoch)`);
}

test("without HUB_REDIS_MIN_REPLICAS a SIGKILLed primary whose replica keeps up: what was lost is reported, no client resumes partially or gets one twice", async (t) => {
  const run = await failover(t, {}, { hold: false });
  const preKill = run.acked.filter((a) => offsetMs(a.offset) <= run.killedAt);
  const lost = run.acked.filter((a) => !run.finalIds.has(a.offset));
  t.diagnostic(`lost ${lost.length} acknowledged notifications: ${lost.map((a) => `${a.offset} (n${a.n})`).join(", ") || "none"}`);
  assert.deepEqual(lost, preKill.slice(preKill.length - lost.length), "any lost are the newest acknowledged before the kill");
  assertNoPartialResumeNorDuplicate(t, run);
  // An entry a hub handed on but the failover lost (acknowledged or not) rightly gives a new epoch.
  const handedOnLost = [...run.steady, ...run.dropped].some((c) => c.received.some((r) => !run.finalIds.has(r.offset)));
  if (lost.length === 0 && !handedOnLost) {
    for (const [i, client] of run.dropped.entries()) {
      assert.equal(client.connects[1].recovered, true, `nothing was lost, so dropped client ${i} recovered across the failover`);
    }
  }
});

/**
 * What `HUB_REDIS_MIN_REPLICAS` promises: every acknowledged notification on the new primary and at
 * every client once, in order; no new epoch (steady clients never disconnected); the dropped clients
 * recovered, with what they missed as a replay.
 */
function assertNothingAcknowledgedLost(run) {
  const lost = run.acked.filter((a) => !run.finalIds.has(a.offset));
  assert.deepEqual(lost, [], "no acknowledged notification is missing from the new primary");
  // Unready while no primary is known, ready after; an append too few replicas confirmed (the new
  // primary before its replica synced, the old one after the promotion) is no reason to flap.
  for (const [i, r] of run.readiness.entries()) {
    const statuses = r.seen.filter((status) => status !== 0).filter((status, k, all) => k === 0 || status !== all[k - 1]);
    assert.ok(statuses.filter((status) => status === 503).length <= 1, `hub ${i}: /readyz did not flap: ${r.seen.join("→")}`);
  }
  const expected = run.acked.map((a) => a.offset).sort(compareOffsets);
  for (const [i, client] of [...run.steady, ...run.dropped].entries()) {
    assert.deepEqual(client.received.map((r) => r.offset), expected, `client ${i}: every acknowledged notification once, in order`);
  }
  for (const [i, client] of run.steady.entries()) {
    assert.equal(client.connects.length, 1, `steady client ${i} was never disconnected (no new epoch)`);
  }
  for (const [i, client] of run.dropped.entries()) {
    assert.equal(client.connects.length, 2);
    assert.equal(client.connects[1].recovered, true, `dropped client ${i} recovered across the failover`);
    assert.equal(client.connects[1].id, client.connects[0].id);
    assert.ok(client.received.some((r) => r.replayed), `dropped client ${i} got what it missed as a replay`);
  }
}

test("with HUB_REDIS_MIN_REPLICAS=1 a planned failover (SENTINEL FAILOVER, the primary demoted alive) moves both hubs to the new primary and loses nothing", async (t) => {
  const run = await failover(t, MIN_REPLICAS_1, { hold: false, planned: true });
  assertNothingAcknowledgedLost(run);
});

test("without HUB_REDIS_MIN_REPLICAS a planned failover: the hubs follow the primary the sentinels name before the old one is demoted, lose nothing written before it, and no client resumes partially or gets one twice", async (t) => {
  const run = await failover(t, {}, { hold: false, planned: true });
  const lost = run.acked.filter((a) => !run.finalIds.has(a.offset));
  t.diagnostic(`lost ${lost.length} acknowledged notifications (taken by the old primary after the promotion): ${lost.map((a) => `${a.offset} (n${a.n})`).join(", ") || "none"}`);
  assert.ok(lost.every((a) => offsetMs(a.offset) >= run.killedAt), "nothing written before the failover began is lost");
  assert.ok(
    run.acked.some((a) => run.finalIds.has(a.offset) && offsetMs(a.offset) > run.killedAt && offsetMs(a.offset) < run.oldPrimaryLastPrimaryAt),
    "appends reached the new primary while the old one still took writes (the hubs asked the sentinels, not waited for READONLY)",
  );
  // One new epoch, told once: a dropped client that reconnected after the failover is not
  // disconnected again by a read loop that moved late (steady ones: the one epoch change only).
  for (const [i, client] of [...run.steady, ...run.dropped].entries()) {
    assert.ok(client.connects.length <= 2, `client ${i} was disconnected at most once by the hubs: ${client.connects.length} connects`);
  }
  // The read loops moved as the appends did: what the new primary took reached the clients while
  // the old primary still answered reads as a primary, not once its demotion cut the connections.
  const early = run.steady.flatMap((c) => c.chains.flat()).filter((r) => run.finalIds.has(r.offset) && offsetMs(r.offset) > run.promotedAt && r.at < run.oldPrimaryLastPrimaryAt);
  assert.ok(early.length > 0, "a notification appended on the new primary reached clients before the old primary was demoted");
  assertNoPartialResumeNorDuplicate(t, run);
});
