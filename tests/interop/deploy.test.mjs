// The deployment pieces: docker-compose.yml (checked, since CI has no Docker engine), the nginx load
// balancer config run for real with Debian's nginx in front of two instances, and scripts/cluster.sh.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { startHub, notify, connectClient, waitFor, sleep } from "./hub.mjs";
import { startRedis, freePort, waitForPort, portOpen } from "./redis.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const HUB_BIN = process.env.HUB_BIN ?? path.join(root, "target/debug/realtime-hub");
// Debian installs nginx in /usr/sbin, which is not on every user's PATH.
const NGINX = fs.existsSync("/usr/sbin/nginx") ? "/usr/sbin/nginx" : "nginx";

test("docker-compose.yml: Redis with AOF and a healthcheck on 6380, two hub instances, nginx on 3000", () => {
  const compose = parse(fs.readFileSync(path.join(root, "docker-compose.yml"), "utf8"));
  const { redis, hub1, hub2, nginx } = compose.services;
  assert.deepEqual(Object.keys(compose.services).sort(), ["hub1", "hub2", "nginx", "redis"]);

  assert.match(redis.image, /^redis:7/);
  assert.ok(redis.command.join(" ").includes("--appendonly yes"), "AOF persistence");
  assert.deepEqual(redis.ports, ["6380:6379"]);
  assert.ok(redis.volumes.some((v) => v.endsWith(":/data")), "data on a volume");
  assert.ok(Object.keys(compose.volumes).includes(redis.volumes[0].split(":")[0]));
  assert.deepEqual(redis.healthcheck.test, ["CMD", "redis-cli", "ping"]);

  for (const hub of [hub1, hub2]) {
    assert.ok(fs.existsSync(path.join(root, hub.build.context, hub.build.dockerfile)), "the Dockerfile exists");
    assert.equal(hub.environment.REDIS_URL, "redis://redis:6379");
    assert.equal(hub.depends_on.redis.condition, "service_healthy");
    assert.ok(hub.healthcheck.test.join(" ").includes("/readyz"));
    // Behind nginx every client has nginx's address: the hub's per-address cap is off, nginx's on.
    assert.equal(hub.environment.HUB_MAX_SESSIONS_PER_ADDRESS, "0");
    assert.equal(hub.environment.HUB_MAX_UNJOINED_PER_ADDRESS, "0");
    assert.equal(hub.environment.HUB_CONNECTIONS_PER_SECOND_PER_ADDRESS, "0");
    assert.equal(hub.environment.HUB_PUBLISH_PER_SECOND_PER_ADDRESS, "0");
  }

  assert.match(nginx.image, /^nginx/);
  assert.deepEqual(nginx.ports, ["3000:80"]);
  const [config] = nginx.volumes[0].split(":");
  const conf = fs.readFileSync(path.join(root, config), "utf8");
  assert.match(conf, /ip_hash;/, "sticky by client address");
  assert.match(conf, /limit_conn per_client \d+;/, "connections limited per client address");
  assert.match(conf, /server hub1:3000;/);
  assert.match(conf, /server hub2:3000;/);
  assert.match(conf, /proxy_set_header Upgrade \$http_upgrade;/);
  assert.match(conf, /proxy_set_header Connection \$connection_upgrade;/);
});

/** Debian's nginx with scripts/docker/nginx.conf, only the upstreams and listen address replaced. */
async function startNginx(hubPorts) {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hub-nginx-"));
  let conf = fs.readFileSync(path.join(root, "scripts/docker/nginx.conf"), "utf8");
  conf = conf
    .replace("server hub1:3000;", `server 127.0.0.1:${hubPorts[0]};`)
    .replace("server hub2:3000;", `server 127.0.0.1:${hubPorts[1]};`)
    .replace("listen 80;", `listen 127.0.0.1:${port};`);
  assert.ok(!/hub[12]:3000|listen 80;/.test(conf), "every replacement applied");
  fs.writeFileSync(path.join(dir, "nginx.conf"), conf);
  const child = spawn(
    NGINX,
    ["-p", dir, "-c", path.join(dir, "nginx.conf"), "-g", `daemon off; pid ${dir}/nginx.pid; error_log ${dir}/error.log;`],
    { stdio: ["ignore", "ignore", "inherit"] },
  );
  await new Promise((resolve, reject) => {
    child.once("error", (err) => reject(new Error(`cannot start nginx (${err.message}); install it: apt-get install -y nginx`)));
    waitForPort(port).then(resolve, reject);
  });
  return {
    url: `http://127.0.0.1:${port}`,
    async stop() {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGQUIT");
      await exited;
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function sessionsOf(url) {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(/^hub_sessions (\d+)$/m.exec(text)[1]);
}

test("through nginx with the compose load-balancer config, clients on both instances get every notification", async () => {
  const redis = await startRedis();
  const env = { REDIS_URL: redis.url, HUB_STREAM_KEY: "deploy:nginx" };
  const a = await startHub(env);
  const b = await startHub(env);
  const lb = await startNginx([new URL(a.url).port, new URL(b.url).port]);
  // ip_hash keys on the first three octets: clients from several 127.0.X.1 addresses spread out.
  const clients = [];
  try {
    for (let x = 0; x < 8; x++) clients.push(await connectClient(lb.url, { localAddress: `127.0.${x}.1` }));
    assert.ok((await sessionsOf(a.url)) > 0 && (await sessionsOf(b.url)) > 0, "the balancer used both instances");
    assert.equal((await sessionsOf(a.url)) + (await sessionsOf(b.url)), clients.length);

    const offsets = [];
    for (const target of [lb.url, a.url, b.url, lb.url]) offsets.push((await notify(target, { title: target })).offset);
    // The page's own origin through the proxy (nginx passes the Host with its port): accepted.
    const own = await fetch(`${lb.url}/notifications/notify`, {
      method: "POST",
      headers: { "content-type": "application/json", origin: lb.url },
      body: JSON.stringify({ title: "from the page" }),
    });
    assert.equal(own.status, 201, await own.clone().text());
    offsets.push((await own.json()).offset);
    const handshake = await fetch(`${lb.url}/socket.io/?EIO=4&transport=polling`, { headers: { origin: lb.url } });
    assert.equal(handshake.status, 200, "the page's own origin opens a session through the proxy");
    await handshake.arrayBuffer();
    for (const client of clients) {
      await waitFor(() => client.received.length === offsets.length, "every notification arrives");
    }
    await sleep(100);
    for (const client of clients) assert.deepEqual(client.received.map((r) => r.offset), offsets);
  } finally {
    for (const client of clients) client.socket.close();
    await lb.stop();
    await Promise.all([a.stop(), b.stop()]);
    await redis.stop();
  }
});

test("scripts/cluster.sh 3 starts three instances on one Redis, and SIGINT stops every process it started", async () => {
  const child = spawn("bash", [path.join(root, "scripts/cluster.sh"), "3"], {
    env: { ...process.env, HUB_BIN, REDIS_URL: "", RUST_LOG: "warn" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  child.stdout.on("data", (chunk) => (out += chunk));
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  const clients = [];
  try {
    await waitFor(() => out.includes("all 3 instances ready"), "the cluster starts", 30_000);
    const urls = [...out.matchAll(/^hub \d+:\s+(http:\S+)$/gm)].map((m) => m[1]);
    assert.deepEqual(urls, ["http://127.0.0.1:3001", "http://127.0.0.1:3002", "http://127.0.0.1:3003"]);
    const redisPort = Number(/^redis:\s+redis:\/\/127\.0\.0\.1:(\d+) \(started here\)$/m.exec(out)[1]);

    for (const url of urls) clients.push(await connectClient(url));
    const { offset } = await notify(urls[0], { title: "to all" });
    for (const client of clients) await waitFor(() => client.received.length === 1, "every instance delivers it");
    assert.ok(clients.every((c) => c.received[0].offset === offset));

    for (const client of clients) client.socket.close();
    child.kill("SIGINT");
    await Promise.race([exited, sleep(10_000).then(() => assert.fail("cluster.sh did not stop within 10 s"))]);
    for (const port of [3001, 3002, 3003, redisPort]) {
      assert.equal(await portOpen(port), false, `port ${port} still accepts connections after SIGINT`);
    }
  } finally {
    for (const client of clients) client.socket.close();
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
});
