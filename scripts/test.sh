#!/usr/bin/env bash
# The README's test command, and what CI runs: installs what is missing, then runs every check.
#
#   format (cargo fmt --check) → lints (clippy -D warnings) → purity of src/protocol →
#   cargo test (unit, property and wire tests, Redis standalone and Cluster tests; builds
#   target/debug/realtime-hub) →
#   interop tests (node --test): the official socket.io-client (npm) under three transport settings, a
#   Node peer on Redis and on a Redis Cluster, crashes, a Sentinel failover, nginx, cluster.sh, binary attachments,
#   fragments from the npm ws client,
#   and the python-socketio client;
#   browser tests: the page on two instances in Debian's headless Chromium (playwright-core).
#
# Needs: the Rust toolchain, Node.js 20+ with npm, and Debian's apt-get (as root) for what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need() {
  command -v "$1" >/dev/null 2>&1 || { echo "error: '$1' not found; $2" >&2; exit 1; }
}
need cargo "install the Rust toolchain: https://rustup.rs"
need node "install Node.js 20+ and npm: apt-get install -y nodejs npm"
need npm "install npm: apt-get install -y npm"
need python3 "install Python 3 with venv: apt-get install -y python3 python3-venv"

step() { printf '\n== %s\n' "$*"; }

# Debian packages the tests start for real: redis-server (each Redis test runs its own on a free
# port) and nginx (the load balancer of docker-compose.yml, in front of two local instances).
apt_packages=()
command -v redis-server >/dev/null 2>&1 || apt_packages+=(redis-server)
# redis-cli (redis-tools): tests/redis_cluster_mode.rs joins its three cluster nodes with it.
command -v redis-cli >/dev/null 2>&1 || apt_packages+=(redis-tools)
# redis-sentinel: the failover tests run three sentinels over a primary and its replica.
command -v redis-sentinel >/dev/null 2>&1 || [ -x /usr/bin/redis-sentinel ] || apt_packages+=(redis-sentinel)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || apt_packages+=(nginx)
# chromium: the page's tests drive Debian's Chromium with playwright-core (never a browser download).
[ -x /usr/bin/chromium ] || apt_packages+=(chromium)
# openssl: the connect-token tests make their RS256 and ES256 key pairs with it.
command -v openssl >/dev/null 2>&1 || apt_packages+=(openssl)
if [ ${#apt_packages[@]} -gt 0 ]; then
  step "installing ${apt_packages[*]} (Debian packages)"
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: missing ${apt_packages[*]}; install with: sudo apt-get install -y ${apt_packages[*]}" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_packages[@]}" >/dev/null
fi

step "node packages (npm ci in tests/)"
if [ ! -f tests/node_modules/.package-lock.json ] || [ tests/package-lock.json -nt tests/node_modules/.package-lock.json ]; then
  (cd tests && npm ci --no-audit --no-fund)
else
  echo "up to date"
fi

step "python packages (pip in tests/.venv)"
if [ ! -x tests/.venv/bin/python ] || [ tests/requirements.txt -nt tests/.venv/installed ]; then
  python3 -m venv tests/.venv
  tests/.venv/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt
  touch tests/.venv/installed
else
  echo "up to date"
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --all-targets --quiet -- -D warnings

step "protocol purity"
bash scripts/check-pure.sh

step "cargo test"
cargo test --all-targets

step "interop and browser tests (node --test): official clients, Node peer, nginx, the page in Chromium"
# --test-force-exit: a test file whose failure left a client or server open must still end (and fail),
# never hold the run until CI's time limit.
HUB_BIN="$PWD/target/debug/realtime-hub" CONFORMANCE_BIN="$PWD/target/debug/conformance" \
  node --test --test-force-exit tests/interop/ tests/browser/
echo "screenshots of the page: tests/artifacts/page-1280.png, tests/artifacts/page-390.png"
