// Issue 14's "done when": from a fresh clone, on a machine whose CDN is unreachable, README's first
// command alone (`cargo run --release`) gives a page that connects.
//
// The clone is a real `git clone` of this checkout's HEAD (committed files only: no node_modules,
// nothing gitignored, nothing uncommitted) into a temporary folder. Building it there would take
// minutes, so the hub is the binary already built from this tree (HUB_BIN) run as `cargo run` in
// the clone would run it. That is the same program: the binary embeds nothing from node_modules or
// public/; what differs with the folder it runs from is where it finds files. With no settings,
// `cargo run` in the clone serves `public` and looks for the client at
// `tests/node_modules/socket.io-client/dist` in the clone (relative to the working folder, else to
// the manifest's folder, which is then the clone too); the binary here would fall back to THIS
// tree's folders, so the test names the clone's two paths explicitly (HUB_PUBLIC_DIR,
// HUB_CLIENT_DIR) and checks that the client path does not exist and that the hub answers 404 for
// the official bundle.
//
// "No CDN reachable": Chromium resolves no host name but 127.0.0.1 (--host-resolver-rules), and
// every request that is not to the hub is aborted and recorded (the test fails if the page made
// one); a fetch of the CDN's URL is shown to fail in that browser, and ?client=official shows
// that neither the npm copy nor the CDN is there.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { startHub } from "../interop/hub.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const CHROMIUM = process.env.CHROMIUM_BIN ?? "/usr/bin/chromium";
if (!fs.existsSync(CHROMIUM)) {
  throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium`);
}

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "hub-fresh-clone-"));
const clone = path.join(scratch, "realtime-hub");
execFileSync("git", ["clone", "--quiet", root, clone], { stdio: ["ignore", "ignore", "inherit"] });
const clientDir = path.join(clone, "tests/node_modules/socket.io-client/dist");

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"],
});
const hub = await startHub({ HUB_PUBLIC_DIR: path.join(clone, "public"), HUB_CLIENT_DIR: clientDir });
after(async () => {
  await browser.close();
  await hub.stop();
  fs.rmSync(scratch, { recursive: true, force: true });
});

/** A page on `url` in a context where only the hub answers; `offHub` collects every other URL asked for. */
async function openOffline(url) {
  const context = await browser.newContext();
  const offHub = [];
  const problems = [];
  await context.route("**/*", (route) => {
    const asked = route.request().url();
    if (asked.startsWith(hub.url)) return route.continue();
    offHub.push(asked);
    return route.abort("internetdisconnected");
  });
  const page = await context.newPage();
  page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
  await page.goto(url);
  return { context, page, offHub, problems };
}

test("the clone is fresh: HEAD's files, no npm copy of the client, and the hub has no official bundle to serve", async () => {
  const head = execFileSync("git", ["-C", root, "rev-parse", "HEAD"]).toString().trim();
  assert.equal(execFileSync("git", ["-C", clone, "rev-parse", "HEAD"]).toString().trim(), head);
  assert.equal(fs.existsSync(path.join(clone, "tests/node_modules")), false);
  assert.equal(fs.existsSync(clientDir), false);
  assert.ok(fs.existsSync(path.join(clone, "public/hub-client.js")), "the page's own client is committed");
  const bundle = await fetch(`${hub.url}/socket.io/socket.io.min.js`);
  assert.equal(bundle.status, 404, "no official client anywhere the hub looks");
  // The page served is the clone's (the same bytes as its file).
  const served = await (await fetch(`${hub.url}/hub-client.js`)).text();
  assert.equal(served, fs.readFileSync(path.join(clone, "public/hub-client.js"), "utf8"));
});

test("with no CDN reachable the page from the clone connects, publishes and shows the notification", async () => {
  const probe = await browser.newContext();
  try {
    const cdn = await (await probe.newPage()).evaluate(() =>
      fetch("https://cdn.socket.io/4.8.1/socket.io.min.js").then(() => "reached", (e) => `failed: ${e.message}`));
    assert.match(cdn, /^failed/, "this browser cannot reach the CDN");
  } finally {
    await probe.close();
  }

  const { context, page, offHub, problems } = await openOffline(`${hub.url}/`);
  try {
    await page.waitForFunction(() => document.querySelector("#status").dataset.state === "online", null,
      { timeout: 10_000 }).catch(async () =>
      assert.fail(`the page did not connect: ${await page.textContent("#connection-log")}`));
    assert.equal(await page.evaluate(() => window.NotificationHubApp.client), "built-in");
    await page.fill("#title", "From a fresh clone");
    await page.fill("#message", "no npm, no CDN");
    await page.click("#send");
    await page.waitForSelector("#feed li.notification", { timeout: 10_000 });
    assert.equal(await page.textContent("#feed li.notification .notification-title"), "From a fresh clone");
    assert.deepEqual(offHub, [], "the page asked for nothing but the hub");
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

test("in the same place ?client=official says the official client is not there (neither npm copy nor CDN)", async () => {
  const { context, page, offHub } = await openOffline(`${hub.url}/?client=official`);
  try {
    await page.waitForFunction(() => /could not be loaded/.test(document.querySelector("#connection-log").textContent),
      null, { timeout: 10_000 });
    assert.match(await page.textContent("#connection-log"), /without \?client=official/);
    assert.deepEqual(offHub, ["https://cdn.socket.io/4.8.1/socket.io.min.js"], "it tried the CDN, which failed");
  } finally {
    await context.close();
  }
});
