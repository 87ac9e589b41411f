// The Socket.IO admin UI itself (the static build in @socket.io/admin-ui's ui/dist, from npm) in real
// headless Chromium (Debian's package, driven by playwright-core), served from its own origin (listed
// in HUB_CORS_ORIGINS), connected to one of two hub instances on one Redis: its Servers page lists
// both instances, and its log-in form admits the configured password and refuses a wrong one.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createServer } from "node:http";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { io } from "socket.io-client";
import { startHub, waitFor } from "../interop/hub.mjs";
import { startRedis } from "../interop/redis.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const HUB_BIN = process.env.HUB_BIN ?? path.join(root, "target/debug/realtime-hub");
const UI_DIR = path.join(root, "tests/node_modules/@socket.io/admin-ui/ui/dist");
const CHROMIUM = process.env.CHROMIUM_BIN ?? "/usr/bin/chromium";
if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium`);
if (!fs.existsSync(path.join(UI_DIR, "index.html"))) throw new Error(`${UI_DIR} is missing: npm ci in tests/`);

const PASSWORD = "correct horse battery staple";
const HASH = execFileSync(HUB_BIN, ["admin-hash", "--cost", "4"], { input: `${PASSWORD}\n` }).toString().trim();

/** Serves ui/dist on a free loopback port: the UI's own origin. */
const TYPES = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".png": "image/png", ".svg": "image/svg+xml" };
const ui = createServer((req, res) => {
  const file = path.join(UI_DIR, path.normalize(new URL(req.url, "http://ui").pathname).replace(/^\/+$/, "/index.html"));
  if (!file.startsWith(UI_DIR) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { "content-type": TYPES[path.extname(file)] ?? "application/octet-stream" });
  fs.createReadStream(file).pipe(res);
});
await new Promise((resolve) => ui.listen(0, "127.0.0.1", resolve));
const uiOrigin = `http://127.0.0.1:${ui.address().port}`;

const redis = await startRedis();
const env = {
  REDIS_URL: redis.url,
  HUB_STREAM_KEY: "browser:admin",
  HUB_ADMIN: "on",
  HUB_ADMIN_USERNAME: "admin",
  HUB_ADMIN_PASSWORD_HASH: HASH,
  HUB_CORS_ORIGINS: uiOrigin,
};
const hubA = await startHub({ ...env, HUB_ADMIN_SERVER_ID: "hub-a" });
const hubB = await startHub({ ...env, HUB_ADMIN_SERVER_ID: "hub-b" });
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});
after(async () => {
  await browser.close();
  await Promise.all([hubA.stop(), hubB.stop()]);
  await redis.stop();
  await new Promise((resolve) => ui.close(resolve));
});

/** The UI in a fresh context, its storage preset by `storage`; requests off loopback (its web fonts) are aborted. */
async function openUi(storage, hash = "#/servers/") {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.route(/^https?:\/\/(?!127\.0\.0\.1)/, (route) => route.abort());
  await context.addInitScript((items) => {
    for (const [key, value] of Object.entries(items)) localStorage.setItem(key, value);
  }, storage);
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (err) => errors.push(err.message));
  await page.goto(`${uiOrigin}/${hash}`);
  return { page, context, errors };
}

/** A session id from hub A, as the UI gets one after a log-in. */
async function sessionId() {
  const socket = io(`${hubA.url}/admin`, {
    auth: { username: "admin", password: PASSWORD },
    transports: ["websocket"],
    forceNew: true,
    reconnection: false,
  });
  try {
    return await new Promise((resolve, reject) => {
      socket.once("session", resolve);
      socket.once("connect_error", reject);
    });
  } finally {
    socket.close();
  }
}

test("the admin UI's Servers page lists both instances of the cluster", async () => {
  const { page, context, errors } = await openUi({ server_url: hubA.url, session_id: await sessionId() });
  try {
    const body = () => page.textContent("body");
    await waitFor(async () => (await body()).includes("hub-a") && (await body()).includes("hub-b"),
      "the Servers page shows hub-a and hub-b", 15_000);
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

test("the admin UI's log-in form: the configured password connects, a wrong one is refused", async () => {
  const { page, context } = await openUi({}, "#/");
  try {
    const dialog = page.locator(".v-dialog");
    await dialog.getByLabel("Password").waitFor({ state: "visible", timeout: 10_000 });
    await dialog.getByLabel("Server URL").fill(hubA.url);
    await dialog.getByLabel("Username").fill("admin");
    await dialog.getByLabel("Password").fill("wrong");
    await dialog.locator("button[type=submit]").click();
    await dialog.getByText("Invalid credentials").waitFor({ timeout: 10_000 });
    await new Promise((resolve) => setTimeout(resolve, 1_100)); // one password check per second per address
    await dialog.getByLabel("Password").fill(PASSWORD);
    await dialog.locator("button[type=submit]").click();
    await dialog.getByLabel("Password").waitFor({ state: "hidden", timeout: 10_000 });
    // Connected: the page navigates to the servers and shows hub A's stats.
    await page.goto(`${uiOrigin}/#/servers/`);
    await waitFor(async () => (await page.textContent("body")).includes("hub-a"), "the Servers page after log-in", 15_000);
  } finally {
    await context.close();
  }
});
