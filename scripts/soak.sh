#!/usr/bin/env bash
# The soak: N connections (default 38 000) over two hub instances on one Redis, held for a bounded
# time (default 600 s) while notifications trickle (1/s); then how many are still connected and
# whether every notification reached every one of them. Loopback only; bounded in count and time.
#
#   scripts/soak.sh [N]          SOAK_SECONDS (600), SOAK_RATE (1/s)
#
# Clients are split over generator processes of at most 9 500 connections each (20 000 open files
# per process), each from its own 127.0.0.x source; one of them publishes.
set -euo pipefail
cd "$(dirname "$0")/.."
total=${1:-38000}
seconds=${SOAK_SECONDS:-600}
rate=${SOAK_RATE:-1}
per_process=9500
processes=$(( (total + per_process - 1) / per_process ))
warmup=$(( 20 + total / 1000 ))
results=$(mktemp -d)
pids=()
# Redis last: instances write their session records on the way out.
cleanup() {
  [ "${#pids[@]}" -gt 0 ] || return 0
  for pid in "${pids[@]:1}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]:1}"; do wait "$pid" 2>/dev/null || true; done
  kill "${pids[0]}" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT

# Where cargo puts its builds: CARGO_TARGET_DIR when set (as scripts/bench.sh).
target_dir=${CARGO_TARGET_DIR:-target}
cargo build --release --quiet
cargo bench --bench hub_bench --no-run --quiet 2>/dev/null
bench_bin=$(ls -t "$target_dir"/release/deps/hub_bench-* | grep -v '\.d$' | head -n 1)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; exit 1; }

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no >/dev/null 2>&1 &
redis_pid=$!; pids+=("$redis_pid"); wait_port "$redis_port"
ports=()
hubs=()
for _ in 1 2; do
  port=$(free_port)
  # 9 500 clients share each 127.0.0.x source (4 750 per instance, opened within a second or two):
  # the per-address bounds, made for one real client per address, are off, as behind a proxy.
  REDIS_URL="redis://127.0.0.1:$redis_port" HUB_HOST=127.0.0.1 PORT=$port RUST_LOG=warn \
    HUB_MAX_SESSIONS_PER_ADDRESS=0 HUB_MAX_UNJOINED_PER_ADDRESS=0 HUB_CONNECTIONS_PER_SECOND_PER_ADDRESS=0 \
    "$target_dir"/release/realtime-hub &
  hubs+=("$!"); pids+=("$!"); ports+=("$port"); wait_port "$port"
done
urls="http://127.0.0.1:${ports[0]},http://127.0.0.1:${ports[1]}"
pidlist="hub=${hubs[0]},hub=${hubs[1]},redis=$redis_pid"
echo "soak: $total connections over $processes generator processes, $seconds s at $rate/s (warm-up ${warmup}s)"

generators=()
for i in $(seq 1 "$processes"); do
  clients=$(( i < processes ? per_process : total - per_process * (processes - 1) ))
  publish=$([ "$i" = "$processes" ] && echo true || echo false)
  "$bench_bin" soak --urls "$urls" --pids "$pidlist" --sources "127.0.0.$((i + 1))" --clients "$clients" \
    --rate "$rate" --seconds "$seconds" --warmup "$warmup" --drain 30 --publish "$publish" \
    | sed -n 's/^RESULT //p' > "$results/gen-$i.json" &
  generators+=("$!"); pids+=("$!")
done
wait "${generators[@]}"

node -e '
const fs = require("fs");
const all = fs.readdirSync(process.argv[1]).map((f) => JSON.parse(fs.readFileSync(`${process.argv[1]}/${f}`, "utf8")));
const sum = (k) => all.reduce((s, r) => s + (r[k] ?? 0), 0);
const publisher = all.find((r) => r.published);
const accepted = publisher.accepted;
const summary = {
  connections: sum("clients"), connected: sum("connected"), still_connected: sum("still_connected"),
  accepted, refused: publisher.refused, delivered: sum("delivered"), expected: accepted * sum("connected"),
  lost: accepted * sum("connected") - sum("delivered") + sum("duplicated"), duplicated: sum("duplicated"),
  reordered: sum("reordered"), handshakes_refused_then_retried: sum("handshakes_refused_then_retried"),
  errors: all.reduce((e, r) => { for (const [k, n] of Object.entries(r.errors ?? {})) e[k] = (e[k] ?? 0) + n; return e; }, {}),
  hub_peak_rss: Object.values(publisher.processes).filter((p) => p.name === "hub").map((p) => p.peak_rss),
};
console.log(JSON.stringify(summary, null, 2));
console.log(`SOAK ${JSON.stringify(summary)}`);
' "$results"
