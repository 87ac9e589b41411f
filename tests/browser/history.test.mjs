// The page's history in real headless Chromium (Debian's package, driven by playwright-core), on one
// hub with the embedded log: on open it shows the last 20 notifications (GET /notifications), newest
// first, then live ones on top, each once, also when a live one arrives while the history loads.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import { chromium } from "playwright-core";
import { notify, startHub } from "../interop/hub.mjs";

const CHROMIUM = process.env.CHROMIUM_BIN ?? "/usr/bin/chromium";
if (!fs.existsSync(CHROMIUM)) {
  throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium`);
}

const hub = await startHub();
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});
after(async () => {
  await browser.close();
  await hub.stop();
});

/** A page on the hub, recording page errors, console errors and failed or refused requests. */
async function openPage({ before } = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
  page.on("console", (msg) => msg.type() === "error" && problems.push(`console error: ${msg.text()}`));
  page.on("requestfailed", (req) => problems.push(`request failed: ${req.url()} ${req.failure()?.errorText}`));
  page.on("response", (res) => res.status() >= 400 && problems.push(`HTTP ${res.status()}: ${res.url()}`));
  if (before) await before(page);
  await page.goto(`${hub.url}/`);
  return { page, context, problems };
}

const feed = (page) =>
  page.$$eval("#feed li.notification", (items) =>
    items.map((li) => ({
      title: li.querySelector(".notification-title")?.textContent,
      offset: li.dataset.offset,
      history: li.dataset.history === "true",
    })),
  );

async function waitForFeed(page, count, what) {
  await page.waitForFunction((n) => document.querySelectorAll("#feed li.notification").length >= n, count, {
    timeout: 10_000,
  }).catch(() => assert.fail(`timed out waiting: ${what}`));
}

/** A short pause in which a duplicate, were there one, would show. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 300));

const sent = [];
for (let n = 0; n < 25; n++) sent.push(await notify(hub.url, { title: `n${n}`, body: `history ${n}` }));

test("the page shows the last 20 notifications on load, newest first, then a live one on top, once", async () => {
  const { page, context, problems } = await openPage();
  try {
    await waitForFeed(page, 20, "the last 20 from the history");
    await settle();
    const shown = await feed(page);
    const last20 = sent.slice(5).reverse();
    assert.deepEqual(shown.map((i) => i.title), last20.map((n) => n.title), "the 20 newest, newest first");
    assert.deepEqual(shown.map((i) => i.offset), last20.map((n) => n.offset));
    assert.ok(shown.every((i) => i.history), "marked as coming from the history");

    const live = await notify(hub.url, { title: "live", body: "after the page opened" });
    sent.push(live);
    await waitForFeed(page, 21, "the live notification");
    await settle();
    const after = await feed(page);
    assert.equal(after.length, 21, "the live one once");
    assert.deepEqual(after[0], { title: "live", offset: live.offset, history: false });
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

test("a live notification that arrives while the history loads shows once, in log order", async () => {
  let during = null;
  const { page, context, problems } = await openPage({
    // The history answer waits until a notification sent meanwhile has arrived live; the history
    // then holds it too.
    before: (page) =>
      page.route((url) => url.pathname === "/notifications", async (route) => {
        during = await notify(hub.url, { title: "during load", body: "live and in the history" });
        await page.waitForFunction(() =>
          [...document.querySelectorAll("#feed .notification-title")].some((t) => t.textContent === "during load"),
        null, { timeout: 10_000 });
        await route.continue();
      }),
  });
  try {
    await waitForFeed(page, 20, "the history after the live one");
    await settle();
    const shown = await feed(page);
    const expected = [during, ...sent.slice(-19).reverse()];
    assert.deepEqual(shown.map((i) => i.title), expected.map((n) => n.title), "once each, newest first");
    assert.deepEqual(shown.map((i) => i.offset), expected.map((n) => n.offset));
    assert.equal(shown[0].history, false, "shown live first; the history's copy skipped");
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});
