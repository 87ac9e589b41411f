// scripts/docker/Dockerfile, built the way Docker would build it, without a Docker engine (CI has none).
//
// The Dockerfile is parsed stage by stage. Each stage gets a scratch folder that stands for its root
// file system; its COPY lines copy exactly the files they name (from the build context minus the
// .dockerignore, or from an earlier stage's folder), and its RUN lines run with `sh -c` in the mapped
// WORKDIR, with the stage's ENV, on this machine's toolchain (cargo, npm) instead of the base image's.
// So a file the build needs but no COPY names fails here as it fails in `docker build`.
//
// What is not reproduced, and why:
// - RUN lines that start with `apt-get`: they install Debian packages into the runtime image (curl, for
//   the compose healthcheck). The test checks instead that what the healthcheck runs is installed.
// - RUN --mount=type=cache: the mount's folder is a persistent folder under target/docker-stage/ (a
//   cache mount is kept between builds by Docker too, and is not part of the layer: it is unlinked
//   again after the RUN, so a later COPY --from cannot see it). Re-runs are therefore incremental; a
//   fresh checkout pays one release build of the hub (minutes on two cores).
// - USER, EXPOSE, STOPSIGNAL: checked for their values, not enforced.
//
// Then the last stage is started as docker-compose.yml starts it: the Dockerfile's ENV with its paths
// mapped into the scratch folder, compose's environment for hub1, with a local redis-server for
// REDIS_URL and a free loopback port. `DOCKERFILE=<path>` runs the test against another Dockerfile.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { startRedis, freePort } from "./redis.mjs";
import { waitFor } from "./hub.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const compose = parse(fs.readFileSync(path.join(root, "docker-compose.yml"), "utf8"));
const service = compose.services.hub1;
const context = path.resolve(root, service.build.context);
const DOCKERFILE = process.env.DOCKERFILE ?? path.join(context, service.build.dockerfile);
const CACHE = path.join(root, "target/docker-stage");

/** Splits a Dockerfile into instructions: continuation lines joined, comments and blank lines dropped. */
function parseDockerfile(text) {
  const instructions = [];
  let pending = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (pending === "" && (line === "" || line.startsWith("#"))) continue;
    if (pending !== "" && line.startsWith("#")) continue; // comments inside a continued instruction
    if (line.endsWith("\\")) {
      pending += line.slice(0, -1) + " ";
      continue;
    }
    const whole = (pending + line).trim();
    pending = "";
    const [, keyword, rest] = /^(\S+)\s*(.*)$/s.exec(whole);
    instructions.push({ keyword: keyword.toUpperCase(), args: rest.trim() });
  }
  assert.equal(pending, "", "the Dockerfile ends inside a continued line");
  const stages = [];
  for (const instruction of instructions) {
    if (instruction.keyword === "FROM") {
      const [image, as, name] = instruction.args.split(/\s+/);
      assert.ok(as === undefined || as.toUpperCase() === "AS", `FROM ${instruction.args}`);
      stages.push({ image, name: name ?? String(stages.length), instructions: [] });
    } else {
      assert.ok(stages.length > 0, `${instruction.keyword} before any FROM`);
      stages.at(-1).instructions.push(instruction);
    }
  }
  return stages;
}

/** Leading `--flag=value` options of COPY and RUN, and the rest. */
function options(args) {
  const flags = [];
  let rest = args;
  for (let m; (m = /^--(\S+?)=(\S+)\s+/.exec(rest)); rest = rest.slice(m[0].length)) flags.push([m[1], m[2]]);
  return { flags, rest };
}

/** `KEY=value KEY2=value2` (the only ENV form this Dockerfile should use; quotes unsupported). */
function envPairs(args) {
  return Object.fromEntries(
    args.split(/\s+/).map((pair) => {
      const eq = pair.indexOf("=");
      assert.ok(eq > 0 && !/["']/.test(pair), `ENV ${pair}: write KEY=value`);
      return [pair.slice(0, eq), pair.slice(eq + 1)];
    }),
  );
}

/** The .dockerignore Docker reads: `<Dockerfile>.dockerignore` next to it, else the context's. */
function ignoreRules() {
  const candidates = [`${DOCKERFILE}.dockerignore`, path.join(context, ".dockerignore")];
  const file = candidates.find((f) => fs.existsSync(f));
  if (!file) return { file: null, ignored: () => false };
  const rules = fs
    .readFileSync(file, "utf8")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"))
    .map((l) => {
      const negate = l.startsWith("!");
      const pattern = path.posix.normalize((negate ? l.slice(1) : l).replace(/^\/+/, ""));
      const regex = pattern
        .split("/")
        .map((part) =>
          part === "**" ? "(?:.*)" : part.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, "[^/]*").replace(/\?/g, "[^/]"),
        )
        .join("/")
        .replace(/\(\?:\.\*\)\//g, "(?:.*/)?");
      return { negate, regex: new RegExp(`^${regex}$`) };
    });
  // As Docker: a path is excluded when the last rule matching it, or one of its parent folders, excludes it.
  const ignored = (rel) => {
    const parts = rel.split("/");
    let out = false;
    for (const { negate, regex } of rules) {
      for (let i = 1; i <= parts.length; i++) if (regex.test(parts.slice(0, i).join("/"))) out = !negate;
    }
    return out;
  };
  return { file, ignored };
}

/** Copies `from` to `to` (a file or a whole folder), leaving out what `skip(absolutePath)` excludes. */
function copyTree(from, to, skip = () => false) {
  if (skip(from)) return;
  const stat = fs.statSync(from);
  if (stat.isDirectory()) {
    fs.mkdirSync(to, { recursive: true });
    for (const entry of fs.readdirSync(from)) copyTree(path.join(from, entry), path.join(to, entry), skip);
  } else {
    fs.mkdirSync(path.dirname(to), { recursive: true });
    fs.copyFileSync(from, to);
    fs.chmodSync(to, stat.mode);
  }
}

/** Runs `sh -c command` in `cwd`; rejects with its output when it fails. */
function sh(command, cwd, env) {
  return new Promise((resolve, reject) => {
    const child = spawn("sh", ["-c", command], { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (c) => (out += c));
    child.stderr.on("data", (c) => (out += c));
    child.on("error", reject);
    child.on("exit", (code) =>
      code === 0 ? resolve(out) : reject(new Error(`RUN ${command}\nexited with ${code}:\n${out.slice(-6000)}`)),
    );
  });
}

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "hub-docker-"));
after(() => fs.rmSync(scratch, { recursive: true, force: true }));

/**
 * Builds every stage into scratch/<n>/ (its root file system). Returns the stages with `root` and the
 * last stage's `env` (absolute ENV paths not yet mapped) and `cmd`.
 */
async function buildStages() {
  const stages = parseDockerfile(fs.readFileSync(DOCKERFILE, "utf8"));
  const { ignored } = ignoreRules();
  const skipIgnored = (abs) => ignored(path.relative(context, abs).split(path.sep).join("/"));
  // The host toolchain's own settings, never this shell's target dir: the stage decides where it builds.
  const hostEnv = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !/^CARGO_(?!HOME$)|^RUSTFLAGS$|^npm_/.test(k)),
  );
  const byName = new Map();
  for (const [index, stage] of stages.entries()) {
    stage.root = path.join(scratch, String(index));
    fs.mkdirSync(stage.root, { recursive: true });
    const inRoot = (p) => path.join(stage.root, p);
    let workdir = "/";
    stage.env = {};
    stage.runs = [];
    for (const { keyword, args } of stage.instructions) {
      if (keyword === "WORKDIR") {
        workdir = path.posix.resolve(workdir, args);
        fs.mkdirSync(inRoot(workdir), { recursive: true });
      } else if (keyword === "ENV") {
        Object.assign(stage.env, envPairs(args));
      } else if (keyword === "COPY") {
        const { flags, rest } = options(args);
        const from = flags.find(([k]) => k === "from")?.[1];
        assert.ok(flags.every(([k]) => k === "from"), `COPY ${args}: only --from is reproduced`);
        const words = rest.split(/\s+/);
        const dest = path.posix.resolve(workdir, words.at(-1));
        const sources = words.slice(0, -1);
        const intoFolder = words.at(-1).endsWith("/") || sources.length > 1;
        for (const source of sources) {
          let abs;
          if (from !== undefined) {
            const earlier = byName.get(from);
            assert.ok(earlier, `COPY --from=${from}: no earlier stage of that name`);
            abs = path.join(earlier.root, source);
          } else {
            abs = path.join(context, source);
            assert.ok(!skipIgnored(abs), `COPY ${source}: excluded by the .dockerignore`);
          }
          assert.ok(fs.existsSync(abs), `COPY ${from ? `--from=${from} ` : ""}${source}: not found (stage ${stage.name})`);
          const isFolder = fs.statSync(abs).isDirectory();
          const target = intoFolder && !isFolder ? path.posix.join(dest, path.posix.basename(source)) : dest;
          copyTree(abs, inRoot(target), from === undefined ? skipIgnored : () => false);
        }
      } else if (keyword === "RUN") {
        const { flags, rest } = options(args);
        stage.runs.push(rest);
        if (/^apt-get\b/.test(rest)) continue; // Debian packages of the image: see the file's comment.
        const mounts = [];
        for (const [flag, value] of flags) {
          assert.equal(flag, "mount", `RUN --${flag}: not reproduced`);
          const spec = Object.fromEntries(value.split(",").map((kv) => kv.split("=")));
          assert.equal(spec.type, "cache", `RUN --mount=${value}: only cache mounts are reproduced`);
          const persistent = path.join(CACHE, spec.target.replace(/^\/+/, "").replace(/\//g, "_"));
          fs.mkdirSync(persistent, { recursive: true });
          const at = inRoot(spec.target);
          fs.mkdirSync(path.dirname(at), { recursive: true });
          assert.ok(!fs.existsSync(at), `RUN --mount target ${spec.target} already exists in the stage`);
          fs.symlinkSync(persistent, at);
          mounts.push(at);
        }
        const started = Date.now();
        try {
          await sh(rest, inRoot(workdir), { ...hostEnv, ...stage.env });
        } finally {
          for (const at of mounts) fs.unlinkSync(at);
        }
        console.log(`# stage ${stage.name}: RUN ${rest.split(/\s+/).slice(0, 4).join(" ")} … took ${Math.round((Date.now() - started) / 1000)} s`);
      } else if (keyword === "CMD") {
        stage.cmd = JSON.parse(args);
      } else if (["EXPOSE", "USER", "STOPSIGNAL"].includes(keyword)) {
        stage[keyword.toLowerCase()] = args;
      } else {
        assert.fail(`${keyword} ${args}: an instruction this test does not reproduce yet`);
      }
    }
    stage.workdir = workdir;
    byName.set(stage.name, stage);
  }
  return stages;
}

test("the Dockerfile's stages, reproduced from exactly the files they copy, build an image whose hub serves the page and the client", async () => {
  const { file: ignoreFile, ignored } = ignoreRules();
  assert.ok(ignoreFile, "a .dockerignore keeps build output and installed packages out of the build context");
  for (const heavy of ["target", "node_modules", "tests/node_modules", ".git"]) {
    assert.ok(ignored(heavy), `${heavy} is left out of the build context by ${ignoreFile}`);
  }
  assert.ok(!ignored("src/main.rs") && !ignored("public/index.html"), "the sources stay in the context");

  const stages = await buildStages();
  const final = stages.at(-1);
  assert.ok(
    final.runs.some((run) => new RegExp(`apt-get install .*\\b${service.healthcheck.test[1]}\\b`).test(run)),
    `the image installs ${service.healthcheck.test[1]}, which the compose healthcheck runs`,
  );
  assert.equal(final.user, "nobody", "the hub runs unprivileged");
  assert.equal(final.expose, final.env.PORT);
  assert.equal(service.environment.PORT, final.env.PORT, "compose's port is the image's");

  // The image's file system: the binary CMD runs, the page, the client.
  const mapped = (p) => (p.startsWith("/") ? path.join(final.root, p) : p);
  const [command] = final.cmd;
  const binary = ["/usr/local/bin", "/usr/bin", "/bin"].map((d) => path.join(final.root, d, command)).find(fs.existsSync);
  assert.ok(binary, `CMD ${command} is on the image's PATH`);
  const publicDir = mapped(final.env.HUB_PUBLIC_DIR);
  const clientDir = mapped(final.env.HUB_CLIENT_DIR);
  assert.ok(fs.existsSync(path.join(publicDir, "index.html")), "HUB_PUBLIC_DIR holds the page");
  assert.ok(fs.existsSync(path.join(clientDir, "socket.io.min.js")), "HUB_CLIENT_DIR holds the official client");

  const redis = await startRedis();
  const port = await freePort();
  const env = {
    PATH: process.env.PATH,
    ...Object.fromEntries(Object.entries(final.env).map(([k, v]) => [k, mapped(v)])),
    ...service.environment,
    // Loopback in place of the container's network: the test's Redis, a free port, 127.0.0.1.
    REDIS_URL: redis.url,
    PORT: String(port),
    HUB_HOST: "127.0.0.1",
  };
  const child = spawn(binary, final.cmd.slice(1), { cwd: mapped(final.workdir), env, stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  child.stderr.on("data", (c) => (log += c));
  const exited = new Promise((resolve) => child.once("exit", resolve));
  try {
    const url = `http://127.0.0.1:${port}`;
    await waitFor(
      () => fetch(`${url}/readyz`).then((r) => r.status === 200, () => false),
      `the image's hub answers /readyz (as compose's healthcheck asks):\n${log}`,
      20_000,
    );
    const page = await fetch(`${url}/`);
    assert.equal(page.status, 200);
    assert.equal(await page.text(), fs.readFileSync(path.join(root, "public/index.html"), "utf8"));
    const client = await fetch(`${url}/socket.io/socket.io.min.js`);
    assert.equal(client.status, 200, "the official client is served from HUB_CLIENT_DIR");
    assert.equal(await client.text(), fs.readFileSync(path.join(clientDir, "socket.io.min.js"), "utf8"));
  } finally {
    child.kill("SIGTERM");
    await exited;
    await redis.stop();
  }
});
