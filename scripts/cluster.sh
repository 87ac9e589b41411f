#!/usr/bin/env bash
# The multi-instance launcher: N hub instances on ports 3001..3000+N, all on one Redis stream.
#
#   scripts/cluster.sh [N]          N defaults to 2
#
# REDIS_URL      the Redis to share; unset: a local redis-server on a free port, started and stopped here
# HUB_BIN        the hub binary to run; unset: `cargo build --release` and target/release/realtime-hub
# HUB_BASE_PORT  instance i listens on HUB_BASE_PORT+i (default 3000)
# HUB_HOST       address the instances bind (default 127.0.0.1)
# Every other HUB_* variable is passed on to the instances. Ctrl-C (or SIGTERM) stops everything started.
set -euo pipefail
cd "$(dirname "$0")/.."

count=${1:-2}
if ! [[ "$count" =~ ^[0-9]+$ ]] || [ "$count" -lt 1 ] || [ "$count" -gt 50 ]; then
  echo "usage: scripts/cluster.sh [N]   (N instances, 1 to 50)" >&2
  exit 2
fi
base_port=${HUB_BASE_PORT:-3000}
host=${HUB_HOST:-127.0.0.1}

hub_pids=()
redis_pid=""
scratch=""
stop_all() {
  trap - INT TERM EXIT
  # Instances first (they close their sessions), then the Redis this script started.
  if [ ${#hub_pids[@]} -gt 0 ]; then
    kill -TERM "${hub_pids[@]}" 2>/dev/null || true
    wait "${hub_pids[@]}" 2>/dev/null || true
  fi
  if [ -n "$redis_pid" ]; then
    kill -TERM "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
  fi
  if [ -n "$scratch" ]; then rm -rf "$scratch"; fi
  echo "cluster stopped"
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# GET /readyz over bash's /dev/tcp (no curl needed): true on 200.
ready() {
  local status
  exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
  printf 'GET /readyz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
  IFS= read -r -t 2 status <&3 || status=""
  exec 3<&- 3>&-
  [[ "$status" == *" 200 "* ]]
}

wait_until() { # what, command...
  local what=$1
  shift
  for _ in $(seq 1 200); do
    "$@" && return 0
    sleep 0.05
  done
  echo "error: $what" >&2
  exit 1
}

if [ -z "${REDIS_URL:-}" ]; then
  command -v redis-server >/dev/null 2>&1 || {
    echo "error: redis-server not found; install it (apt-get install -y redis-server) or set REDIS_URL" >&2
    exit 1
  }
  redis_port=6380
  while port_open "$redis_port"; do redis_port=$((redis_port + 1)); done
  scratch=$(mktemp -d)
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$scratch" >"$scratch/redis.log" 2>&1 &
  redis_pid=$!
  wait_until "redis-server did not start on port $redis_port (see $scratch/redis.log)" port_open "$redis_port"
  export REDIS_URL="redis://127.0.0.1:$redis_port"
  echo "redis:  $REDIS_URL (started here)"
else
  echo "redis:  $REDIS_URL"
fi

if [ -z "${HUB_BIN:-}" ]; then
  cargo build --release --quiet
  HUB_BIN=target/release/realtime-hub
fi

for i in $(seq 1 "$count"); do
  port=$((base_port + i))
  if port_open "$port"; then
    echo "error: port $port is already in use (set HUB_BASE_PORT to move the cluster)" >&2
    exit 1
  fi
  HUB_HOST="$host" PORT="$port" "$HUB_BIN" &
  hub_pids+=($!)
done
for i in $(seq 1 "$count"); do
  port=$((base_port + i))
  wait_until "instance $i on port $port did not become ready" ready "$port"
  echo "hub $i:  http://127.0.0.1:$port"
done
echo "all $count instances ready; Ctrl-C stops everything"

# Until Ctrl-C, or until a process dies (then everything stops: a cluster with a hole is not what was asked).
set +e
wait -n "${hub_pids[@]}" ${redis_pid:+"$redis_pid"}
echo "a process of the cluster exited; stopping the rest" >&2
exit 1
