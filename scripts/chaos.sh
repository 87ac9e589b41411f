#!/usr/bin/env bash
# Chaos: two instances and one Redis under load (200 official clients, 20 notifications/s, each
# publish retried with its Idempotency-Key until acknowledged) while faults are injected one after
# another: SIGKILL of an instance, SIGSTOP of Redis for 5 s, a Redis restart with persistence and
# one without, slow readers, a client flood. Prints one table (acknowledged, delivered, lost,
# duplicated, reordered; resumes exact / failed cleanly / partial; peak RSS per instance) and exits
# non-zero if anything acknowledged was lost, duplicated or reordered, or a resume was partial.
#
#   scripts/chaos.sh                 about 8 minutes (phases of 45 s)
#   CHAOS_PHASE_S=15 scripts/chaos.sh   shorter, for a look
#
# Not part of scripts/test.sh (too long for every run); loopback only, every wait bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v redis-server >/dev/null || { echo "error: redis-server not found; apt-get install -y redis-server" >&2; exit 1; }
command -v node >/dev/null || { echo "error: node not found; apt-get install -y nodejs npm" >&2; exit 1; }
echo "== building the hub (release)"
# Where cargo puts its builds: CARGO_TARGET_DIR when set (as scripts/bench.sh).
target_dir=${CARGO_TARGET_DIR:-target}
cargo build --release --quiet
if [ ! -f tests/node_modules/.package-lock.json ]; then (cd tests && npm ci --no-audit --no-fund); fi
timeout 1200 node tests/chaos/run.mjs "$target_dir"/release/realtime-hub
