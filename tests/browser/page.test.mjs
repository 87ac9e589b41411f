// The page at / in real headless Chromium (Debian's package, driven by playwright-core), on two
// instances sharing one Redis: the original tutorial's demonstration, and the page telling the truth.
// Screenshots at 1280 px and 390 px are written to tests/artifacts/ for people to look at.
// Every page runs under the hub's Content-Security-Policy (never bypassed): a violation Chromium
// reports fails the test that caused it, as a page error or a failed request does.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { startHub, waitFor } from "../interop/hub.mjs";
import { startRedis } from "../interop/redis.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const ARTIFACTS = path.join(root, "tests/artifacts");
const CHROMIUM = process.env.CHROMIUM_BIN ?? "/usr/bin/chromium";
if (!fs.existsSync(CHROMIUM)) {
  throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium`);
}

const redis = await startRedis();
const env = { REDIS_URL: redis.url, HUB_STREAM_KEY: "browser:page" };
const hubA = await startHub(env);
const hubB = await startHub(env);
// The flags of a closed network: no background requests, no component updates (no internet here).
const CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
// For a page whose HTML the test itself answers (page.route + fulfill): such a document has no
// network address, so Chromium's Local Network Access checks take it for a public site and refuse
// its WebSocket to 127.0.0.1 (net::ERR_BLOCKED_BY_LOCAL_NETWORK_ACCESS_CHECKS). A page the hub
// serves is on loopback itself and needs no such flag: every other test runs without it.
const routedBrowser = await chromium.launch({
  executablePath: CHROMIUM,
  args: [...CHROMIUM_ARGS, "--disable-features=LocalNetworkAccessChecks"],
});
after(async () => {
  await browser.close();
  await routedBrowser.close();
  await Promise.all([hubA.stop(), hubB.stop()]);
  await redis.stop();
});

/**
 * A page on `url`, recording page errors, console errors, failed requests and every
 * Content-Security-Policy violation (the page's `securitypolicyviolation` events, reported as they
 * happen; Chromium's console line about it is a console error too). `before(page)` runs before the
 * page loads (to route requests); `inBrowser` is `routedBrowser` for a page whose HTML it answers.
 */
async function openPage(url, width = 1280, { before, inBrowser = browser } = {}) {
  const context = await inBrowser.newContext({ viewport: { width, height: 900 } });
  const page = await context.newPage();
  const problems = [];
  const violations = [];
  const requested = [];
  await context.exposeBinding("reportCspViolation", (_source, violation) => {
    violations.push(violation);
    problems.push(`CSP violation: ${violation.directive} blocked ${violation.blocked} ${violation.sample}`);
  });
  await context.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) => {
      window.reportCspViolation({ directive: e.effectiveDirective, blocked: e.blockedURI, sample: e.sample });
    });
  });
  page.on("request", (req) => requested.push(req.url()));
  page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
  page.on("console", (msg) => msg.type() === "error" && problems.push(`console error: ${msg.text()}`));
  page.on("requestfailed", (req) => problems.push(`request failed: ${req.url()} ${req.failure()?.errorText}`));
  page.on("response", (res) => res.status() >= 400 && problems.push(`HTTP ${res.status()}: ${res.url()}`));
  if (before) await before(page);
  const response = await page.goto(url);
  const csp = response.headers()["content-security-policy"];
  return { page, context, problems, violations, requested, csp };
}

/** The CDN fallback in public/loader.js: its URL and its pinned integrity. */
function cdnPin() {
  const loader = fs.readFileSync(path.join(root, "public/loader.js"), "utf8");
  const cdn = /src:\s*"(https:\/\/cdn\.socket\.io\/[^"]+)"[\s\S]*?integrity:\s*"(sha384-[A-Za-z0-9+/=]+)"/.exec(loader);
  assert.ok(cdn, "the CDN fallback carries an integrity hash");
  return { src: cdn[1], integrity: cdn[2] };
}

const LOCAL_CLIENT = path.join(root, "tests/node_modules/socket.io-client/dist/socket.io.min.js");

const status = (page) => page.locator("#status").getAttribute("data-state");
const feed = (page) =>
  page.$$eval("#feed li.notification", (items) =>
    items.map((li) => ({
      title: li.querySelector(".notification-title")?.textContent,
      body: li.querySelector(".notification-body")?.textContent,
      time: li.querySelector("time")?.textContent,
      offset: li.dataset.offset,
      replayed: li.dataset.replayed === "true",
      badge: li.querySelector(".badge-replayed")?.textContent ?? null,
    })),
  );

/**
 * Sends from the page's form and waits for the send's answer (sent, or an error). The page clears the
 * form when a send is acknowledged, and the ack can arrive after the notification itself: a next send
 * filled before it would be cleared and go out without its title.
 */
async function send(page, title, body) {
  await page.fill("#title", title);
  await page.fill("#message", body);
  await page.evaluate(() => {
    document.querySelector("#send-status").textContent = "";
    document.querySelector("#send-error").textContent = "";
  });
  await page.click("#send");
  await page.waitForFunction(() => /^Sent/.test(document.querySelector("#send-status").textContent)
    || document.querySelector("#send-error").textContent !== "", null, { timeout: 10_000 })
    .catch(() => assert.fail(`the send of ${JSON.stringify(title)} was never answered`));
}

/**
 * Waits for the send form's status line to match `pattern`. The ack of a send can arrive after the
 * notification itself (the reading instance may hand the entry on before the appending one answers),
 * so the status is awaited, never read once.
 */
async function waitForSendStatus(page, pattern) {
  await page.waitForFunction((source) => new RegExp(source).test(document.querySelector("#send-status").textContent),
    pattern.source, { timeout: 10_000 })
    .catch(async () => assert.fail(`send status ${JSON.stringify(await page.textContent("#send-status"))} never matched ${pattern}`));
}

async function waitForFeed(page, count, what) {
  await page.waitForFunction((n) => document.querySelectorAll("#feed li.notification").length >= n, count, {
    timeout: 10_000,
  }).catch(() => assert.fail(`timed out waiting: ${what}`));
}

test("two pages on two instances: a send reaches both, a dropped page gets what it missed marked replayed", async () => {
  const a = await openPage(`${hubA.url}/`);
  const b = await openPage(`${hubB.url}/`);
  try {
    for (const { page } of [a, b]) {
      await page.waitForFunction(() => document.querySelector("#status").dataset.state === "online");
      assert.equal(await page.textContent("#status"), "Online");
    }

    await send(a.page, "Hello", "from page A");
    await waitForFeed(b.page, 1, "page B shows page A's notification");
    await waitForFeed(a.page, 1, "page A shows its own notification");
    for (const { page } of [a, b]) {
      const [item] = await feed(page);
      assert.equal(item.title, "Hello");
      assert.equal(item.body, "from page A");
      assert.match(item.time, /^\d\d:\d\d:\d\d$/);
      assert.equal(item.replayed, false);
    }

    await a.page.click("#drop");
    await a.page.waitForFunction(() => document.querySelector("#status").dataset.state === "offline");
    for (let n = 1; n <= 3; n++) {
      await send(b.page, `Missed ${n}`, `sent while A was away (${n})`);
      await waitForFeed(b.page, 1 + n, `page B shows its notification ${n}`);
    }
    await a.page.click("#reconnect");
    await a.page.waitForFunction(() => document.querySelector("#status").dataset.state === "online");
    await waitForFeed(a.page, 4, "page A gets the 3 it missed");
    await new Promise((resolve) => setTimeout(resolve, 200)); // a duplicate would show now

    const aFeed = await feed(a.page); // newest first
    assert.equal(aFeed.length, 4, "exactly the 3 missed, once each");
    assert.deepEqual(aFeed.slice(0, 3).reverse().map((i) => [i.title, i.replayed, i.badge]), [
      ["Missed 1", true, "replayed"],
      ["Missed 2", true, "replayed"],
      ["Missed 3", true, "replayed"],
    ]);
    const bFeed = await feed(b.page);
    assert.deepEqual(aFeed.map((i) => i.offset), bFeed.map((i) => i.offset), "both pages show one order");
    assert.match(await a.page.textContent("#connection-log"), /recovered, 3 missed messages replayed/);

    fs.mkdirSync(ARTIFACTS, { recursive: true });
    await a.page.screenshot({ path: path.join(ARTIFACTS, "page-1280.png"), fullPage: true });
    const phone = await openPage(`${hubA.url}/`, 390);
    await phone.page.waitForFunction(() => document.querySelector("#status").dataset.state === "online");
    // The phone-width page replays too: drop it, send one from B, reconnect.
    await phone.page.click("#drop");
    await phone.page.waitForFunction(() => document.querySelector("#status").dataset.state === "offline");
    await send(b.page, "A long word", "Supercalifragilisticexpialidocious-".repeat(6));
    await waitForFeed(b.page, 5, "page B shows it");
    await phone.page.click("#reconnect");
    // It opened with the 4 sent before (the history), then got the one it missed.
    await waitForFeed(phone.page, 5, "the phone page gets what it missed");
    assert.deepEqual((await feed(phone.page)).map((i) => [i.title, i.replayed]).slice(0, 2),
      [["A long word", true], ["Missed 3", false]]);
    await phone.page.screenshot({ path: path.join(ARTIFACTS, "page-390.png"), fullPage: true });
    await phone.context.close();

    assert.deepEqual([...a.problems, ...b.problems, ...phone.problems], [], "no page error or failed request");

    // Reloading gives a fresh session: the history (nothing marked replayed), then live ones.
    await a.page.reload();
    await a.page.waitForFunction(() => document.querySelector("#status").dataset.state === "online");
    await waitForFeed(a.page, 5, "the reloaded page shows the history");
    await send(b.page, "After reload", "live");
    await waitForFeed(a.page, 6, "the reloaded page gets live notifications");
    assert.deepEqual((await feed(a.page)).map((i) => [i.title, i.replayed]), [["After reload", false],
      ["A long word", false], ["Missed 3", false], ["Missed 2", false], ["Missed 1", false], ["Hello", false]]);
  } finally {
    await a.context.close();
    await b.context.close();
  }
});

test("the page is readable and fits at 1280 px and at 390 px", async () => {
  for (const width of [1280, 390]) {
    const { page, context } = await openPage(`${hubA.url}/`, width);
    try {
      await page.waitForFunction(() => document.querySelector("#status").dataset.state === "online");
      await send(page, "Layout", "x".repeat(300));
      await waitForFeed(page, 1, "the notification shows");
      const report = await page.evaluate(() => {
        const luminance = (rgb) => {
          const [r, g, b] = rgb.match(/[\d.]+/g).slice(0, 3).map(Number).map((c) => {
            const s = c / 255;
            return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
          });
          return 0.2126 * r + 0.7152 * g + 0.0722 * b;
        };
        // The background actually behind an element: the nearest ancestor with an opaque one.
        const background = (el) => {
          for (let e = el; e; e = e.parentElement) {
            const bg = getComputedStyle(e).backgroundColor;
            if (!/rgba\(.*, 0\)$/.test(bg) && bg !== "transparent") return bg;
          }
          return "rgb(255, 255, 255)";
        };
        const contrast = (el) => {
          const [l1, l2] = [luminance(getComputedStyle(el).color), luminance(background(el))].sort((x, y) => y - x);
          return (l1 + 0.05) / (l2 + 0.05);
        };
        const texts = ["h1", "#status", "label[for=message]", "#send", "#drop", "#reconnect", ".notification-title",
          ".notification-body", "time"].map((s) => [s, contrast(document.querySelector(s))]);
        return {
          overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth,
          unlabeledButtons: [...document.querySelectorAll("button")].filter((b) => !b.textContent.trim()).length,
          unlabeledInputs: [...document.querySelectorAll("input")].filter((i) => i.labels.length === 0).length,
          lowContrast: texts.filter(([, ratio]) => ratio < 4.5),
        };
      });
      assert.equal(report.overflow, 0, `no horizontal overflow at ${width} px`);
      assert.equal(report.unlabeledButtons, 0);
      assert.equal(report.unlabeledInputs, 0);
      assert.deepEqual(report.lowContrast, [], `contrast of at least 4.5:1 at ${width} px`);
    } finally {
      await context.close();
    }
  }
});

test("the page tells the truth: a refused send is an error, and offline shows within a second", async () => {
  const { page, context } = await openPage(`${hubB.url}/`);
  try {
    await page.waitForFunction(() => document.querySelector("#status").dataset.state === "online");
    // The hub answering 503 (its log unavailable) is shown, not swallowed.
    await page.route("**/notifications/notify", (route) =>
      route.fulfill({ status: 503, contentType: "application/json", body: '{"error":"log backend unavailable"}' }),
    );
    await send(page, "Refused", "503");
    await page.waitForFunction(() => document.querySelector("#send-error").textContent.includes("503"));
    assert.match(await page.textContent("#send-error"), /HTTP 503.*log backend unavailable/);
    await page.unroute("**/notifications/notify");

    // The hub goes away: offline within a second, and a send says it failed.
    const started = Date.now();
    await hubB.stop("SIGKILL");
    await page.waitForFunction(() => document.querySelector("#status").dataset.state === "offline", null, {
      timeout: 1000,
    });
    assert.ok(Date.now() - started <= 1000);
    assert.equal(await page.textContent("#status"), "Offline");
    await send(page, "Unreachable", "hub down");
    await page.waitForFunction(() => document.querySelector("#send-error").textContent.length > 0);
    assert.match(await page.textContent("#send-error"), /Send failed/);
  } finally {
    await context.close();
  }
});

test("?client=official without internet: the official client comes from the hub, and the CDN fallback is pinned to the same file", async () => {
  const cdn = cdnPin();
  const local = fs.readFileSync(LOCAL_CLIENT);
  const digest = `sha384-${crypto.createHash("sha384").update(local).digest("base64")}`;
  assert.equal(cdn.integrity, digest, "the pinned hash is the served copy's (same version)");
  const version = JSON.parse(fs.readFileSync(path.join(root, "tests/node_modules/socket.io-client/package.json"))).version;
  assert.ok(cdn.src.includes(`/${version}/`), `the CDN URL names version ${version}`);
  const { page, context, problems, requested, csp } = await openPage(`${hubA.url}/?client=official`);
  try {
    assert.ok(csp, "the page is served with a Content-Security-Policy");
    assert.ok(csp.includes(`script-src 'self' ${cdn.src} '${digest}';`), `the policy allows exactly the pinned URL and hash: ${csp}`);
    await page.waitForFunction(() => document.querySelector("#status").dataset.state === "online");
    assert.equal(await page.evaluate(() => window.NotificationHubApp.client), "official");
    // The official client's defaults: long-polling first, then the upgrade (wire compatibility).
    await page.waitForFunction(() => window.NotificationHubApp.socket.io.engine?.transport?.name === "websocket",
      null, { timeout: 10_000 }).catch(() => assert.fail("the official client did not upgrade to WebSocket"));
    assert.ok(requested.some((u) => u.includes("/socket.io/?EIO=4&transport=polling")), "it started on long-polling");
    await send(page, "Official", "the npm client");
    await waitForFeed(page, 1, "the official client shows the notification");
    assert.ok(requested.some((u) => u.endsWith("/socket.io/socket.io.min.js")));
    assert.ok(requested.every((u) => u.startsWith(hubA.url)), `only the hub was asked: ${requested.join(" ")}`);
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

const online = (page) =>
  page.waitForFunction(() => document.querySelector("#status").dataset.state === "online", null, { timeout: 10_000 });

test("the page runs under its Content-Security-Policy: no violation, WebSocket, open mode as before", async () => {
  const { page, context, problems, violations, csp } = await openPage(`${hubA.url}/`);
  try {
    assert.ok(csp, "the page is served with a Content-Security-Policy");
    for (const directive of ["default-src 'self'", "connect-src 'self'", "frame-ancestors 'none'", "object-src 'none'"]) {
      assert.ok(csp.includes(directive), `${directive} in ${csp}`);
    }
    assert.ok(!csp.includes("unsafe-"), `nothing inline or eval'd is allowed: ${csp}`);
    await online(page);
    // connect-src 'self' covers the same-origin ws: URL in Chromium (CSP Level 3): the built-in
    // client's one transport (the official client's upgrade: the ?client=official test).
    await page.waitForFunction(() => window.NotificationHubApp.socket.io.engine?.transport?.name === "websocket",
      null, { timeout: 10_000 }).catch(() => assert.fail("the client is not on WebSocket"));
    // Open mode: no token field, no identity, nothing to forget; publishing is the HTTP POST.
    for (const hidden of ["#token-form", "#identity-line", "#forget-token"]) {
      assert.equal(await page.locator(hidden).isHidden(), true, `${hidden} hidden in open mode`);
    }
    const posted = page.waitForRequest((req) => req.url().endsWith("/notifications/notify") && req.method() === "POST");
    await send(page, "Under CSP", "over HTTP");
    await posted;
    await waitForFeed(page, 1, "the page shows its notification");
    assert.deepEqual(violations, []);
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

test("a CSP violation is caught: an inline script and another CDN copy of the client are blocked and reported", async () => {
  const injected = '<script>window.inlineRan = true;</script>' +
    '<script src="https://cdn.socket.io/4.7.5/socket.io.min.js"></script>';
  const { page, context, violations } = await openPage(`${hubA.url}/`, 1280, {
    inBrowser: routedBrowser,
    // The hub's own answer (its headers included), with two scripts the policy does not allow.
    before: (page) => page.route(`${hubA.url}/`, async (route) => {
      const response = await route.fetch();
      const body = (await response.text()).replace("</body>", `${injected}</body>`);
      await route.fulfill({ response, body });
    }),
  });
  try {
    await online(page); // the page itself still works
    await waitFor(() => violations.length >= 2, "both violations reported");
    assert.equal(await page.evaluate(() => window.inlineRan), undefined, "the inline script did not run");
    const blocked = violations.map((v) => `${v.directive} ${v.blocked}`);
    assert.ok(blocked.includes("script-src-elem inline"), blocked.join("; "));
    assert.ok(blocked.includes("script-src-elem https://cdn.socket.io/4.7.5/socket.io.min.js"), blocked.join("; "));
  } finally {
    await context.close();
  }
});

test("?client=official without a local client copy loads the pinned CDN copy; a CDN copy with other bytes is refused", async () => {
  const cdn = cdnPin();
  const genuine = fs.readFileSync(LOCAL_CLIENT);
  const tampered = Buffer.concat([genuine, Buffer.from("\n;window.tampered = true;\n")]);
  for (const [bytes, accepted] of [[genuine, true], [tampered, false]]) {
    const { page, context, problems, violations, requested } = await openPage(`${hubA.url}/?client=official`, 1280, {
      before: async (page) => {
        await page.route(`${hubA.url}/socket.io/socket.io.min.js`, (route) => route.fulfill({ status: 404 }));
        // Stands in for cdn.socket.io (no internet here), with the CORS header it sends.
        await page.route(cdn.src, (route) => route.fulfill({
          status: 200, contentType: "application/javascript; charset=utf-8",
          headers: { "access-control-allow-origin": "*" }, body: bytes,
        }));
      },
    });
    try {
      if (accepted) {
        await online(page);
        assert.ok(requested.includes(cdn.src), "the CDN copy was fetched");
        const local = `${hubA.url}/socket.io/socket.io.min.js`;
        // The refused local copy shows as its URL, and as Chromium's console line about a 404.
        const unexpected = problems.filter((p) => !p.includes(local) && !/status of 404/.test(p));
        assert.deepEqual(unexpected, [], "the policy allowed it and its hash matched");
      } else {
        await page.waitForFunction(() => /could not be loaded/.test(document.querySelector("#connection-log").textContent),
          null, { timeout: 10_000 });
        assert.equal(await page.evaluate(() => window.tampered), undefined, "the other bytes never ran");
        assert.ok(problems.some((p) => /integrity/.test(p)), `Chromium refused it by its hash: ${problems.join("; ")}`);
      }
      assert.deepEqual(violations, [], "the CDN URL is allowed by the policy");
    } finally {
      await context.close();
    }
  }
});

// An HS256 token as the hub verifies it (RFC 7519), minted here with node's HMAC.
const JWT_SECRET = "browser-test-secret";
function mintToken(claims) {
  const part = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const signed = `${part({ alg: "HS256", typ: "JWT" })}.${part(claims)}`;
  return `${signed}.${crypto.createHmac("sha256", JWT_SECRET).update(signed).digest("base64url")}`;
}

test("with HUB_JWT_SECRET: the page asks for a token, keeps it in this tab, shows whose it is, publishes over the socket",
  async () => {
    const hub = await startHub({ HUB_JWT_SECRET: JWT_SECRET });
    const exp = Math.floor(Date.now() / 1000) + 3600;
    const bob = mintToken({ sub: "bob", exp }); // may connect, may not publish
    const alice = mintToken({ sub: "alice", exp, scope: "notify" });
    const { page, context, problems, violations, requested } = await openPage(`${hub.url}/`);
    const storage = () => page.evaluate(() => ({
      session: sessionStorage.getItem("realtime-hub.token"), local: localStorage.length }));
    try {
      await page.waitForSelector("#token-form:not([hidden])", { timeout: 10_000 })
        .catch(() => assert.fail("no token field after the hub's \"unauthorized\""));
      assert.match(await page.textContent("#token-hint"), /requires a token/);
      assert.equal(await status(page), "offline");

      await page.fill("#token", bob);
      await page.click("#use-token");
      await online(page);
      assert.equal(await page.textContent("#identity"), "bob");
      assert.deepEqual(await storage(), { session: bob, local: 0 });
      assert.equal(await page.inputValue("#token"), "", "the field does not keep the token");
      await send(page, "Bob", "may not publish");
      await page.waitForFunction(() => document.querySelector("#send-error").textContent.includes("forbidden"));
      assert.match(await page.textContent("#send-error"), /^Send refused: forbidden/);
      assert.equal(await status(page), "online", "a refused notify keeps the connection");

      await page.click("#forget-token");
      await page.waitForSelector("#token-form:not([hidden])", { timeout: 10_000 });
      assert.deepEqual(await storage(), { session: null, local: 0 });
      assert.equal(await page.locator("#identity-line").isHidden(), true);

      await page.fill("#token", alice);
      await page.click("#use-token");
      await online(page);
      assert.equal(await page.textContent("#identity"), "alice");
      await send(page, "Alice", "over the socket");
      await waitForFeed(page, 1, "alice's notification comes back");
      await waitForSendStatus(page, /^Sent \(offset /);

      // The same tab keeps the token across a reload; it never reaches a URL.
      await page.reload();
      await online(page);
      assert.equal(await page.textContent("#identity"), "alice");
      for (const token of [bob, alice]) {
        assert.ok(requested.every((u) => !u.includes(token)) && !page.url().includes(token), "no token in a URL");
      }
      assert.deepEqual(violations, []);
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
      await hub.stop();
    }
  });

/** Sends from the page to `kind` ("everyone", "user" or "room") named `name`. */
async function sendTo(page, kind, name, title, body) {
  await page.selectOption("#to-kind", kind);
  if (kind !== "everyone") await page.fill("#to-name", name);
  await send(page, title, body);
}

const titles = async (page) => (await feed(page)).map((item) => item.title);

test("two people on two instances: a notification to one user or room reaches only them, and everyone still reaches both",
  async () => {
    // README's demo: alice on instance A, bob on instance B, one Redis; `ops` is a public room.
    const stream = { ...env, HUB_STREAM_KEY: "browser:people", HUB_JWT_SECRET: JWT_SECRET, HUB_PUBLIC_ROOMS: "ops" };
    const [one, two] = [await startHub(stream), await startHub(stream)];
    const exp = Math.floor(Date.now() / 1000) + 3600;
    const people = [];
    try {
      for (const [hub, sub] of [[one, "alice"], [two, "bob"]]) {
        const person = await openPage(`${hub.url}/`);
        people.push(person);
        await person.page.waitForSelector("#token-form:not([hidden])", { timeout: 10_000 });
        await person.page.fill("#token", mintToken({ sub, exp, scope: "notify" }));
        await person.page.click("#use-token");
        await online(person.page);
        assert.equal(await person.page.textContent("#identity"), sub, "the page shows who it is connected as");
      }
      const [alice, bob] = people.map((p) => p.page);

      await sendTo(alice, "user", "bob", "For bob", "only bob sees this");
      await waitForFeed(bob, 1, "bob gets the notification to user bob");
      await waitForSendStatus(alice, /^Sent to user:bob \(offset /);

      await bob.fill("#room", "ops");
      await bob.click("#join");
      await bob.waitForSelector('#rooms li[data-room="ops"]', { timeout: 10_000 });
      await sendTo(alice, "room", "ops", "For ops", "only the ops room sees this");
      await waitForFeed(bob, 2, "bob, in ops, gets the notification to ops");

      // In log order: once alice has the broadcast sent after them, she would have had the others.
      await sendTo(alice, "everyone", "", "For everyone", "both see this");
      await waitForFeed(alice, 1, "alice gets the broadcast");
      await waitForFeed(bob, 3, "bob gets the broadcast");
      assert.deepEqual(await titles(alice), ["For everyone"], "alice never sees what was meant for bob or ops");
      assert.deepEqual(await titles(bob), ["For everyone", "For ops", "For bob"]);

      // A room the hub does not allow: refused with the hub's reason, the page stays connected.
      await alice.fill("#room", "user:bob");
      await alice.click("#join");
      await alice.waitForFunction(() => document.querySelector("#room-error").textContent.includes("user:bob"));
      assert.match(await alice.textContent("#room-error"), /^Could not join user:bob: /);
      assert.equal(await status(alice), "online");
      await alice.screenshot({ path: path.join(ARTIFACTS, "page-two-people.png"), fullPage: true });
      for (const person of people) {
        assert.deepEqual(person.violations, []);
        assert.deepEqual(person.problems, []);
      }
    } finally {
      for (const person of people) await person.context.close();
      await Promise.all([one.stop(), two.stop()]);
    }
  });
