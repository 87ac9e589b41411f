// The python-socketio client (PyPI) works with the hub over both transports: it connects, gets an
// answer to an event with an ack (notify), and receives notifications.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startHub } from "./hub.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const PYTHON = process.env.PYTHON_BIN ?? path.join(here, "..", ".venv", "bin", "python");
if (!fs.existsSync(PYTHON)) {
  throw new Error(`${PYTHON} is missing: python3 -m venv tests/.venv && tests/.venv/bin/pip install -r tests/requirements.txt`);
}

const hub = await startHub();
after(() => hub.stop());

for (const transport of ["polling", "websocket"]) {
  test(`python-socketio connects over ${transport}, gets an ack and receives the notification`, async () => {
    const stdout = await new Promise((resolve, reject) => {
      execFile(PYTHON, [path.join(here, "python_client.py"), hub.url, transport], { timeout: 30_000 }, (err, out, errOut) =>
        err ? reject(new Error(`${err.message}\n${errOut}`)) : resolve(out),
      );
    });
    const result = JSON.parse(stdout.trim().split("\n").pop());
    assert.equal(result.transport, transport);
    assert.match(result.ack.offset, /^\d+-\d+$/);
    const mine = result.received.find((r) => r.offset === result.ack.offset);
    assert.ok(mine, "the published notification came back");
    assert.equal(mine.notification.title, "from python");
    assert.equal(mine.notification.id, result.ack.id);
  });
}
