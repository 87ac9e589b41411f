#!/usr/bin/env bash
# Mutation testing: which behaviours of the core no test pins down. Slow (about an hour on 2 cores),
# so not part of scripts/test.sh. Needs `cargo install --locked cargo-mutants` and redis-server
# (the Rust suite starts its own). README's "Test notes" give the figures and explain what is left.
#
#   scripts/mutants.sh                   every file below, against the whole Rust test suite
#   scripts/mutants.sh -f src/actors/hub.rs    only some files (any cargo-mutants option passes through)
#
# Mutants are built without debug info and linked with mold when it is installed: most of a mutant's
# time is linking the test binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-mutants >/dev/null || { echo "error: cargo-mutants missing: cargo install --locked cargo-mutants" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "error: redis-server missing: apt-get install -y redis-server" >&2; exit 1; }
export CARGO_PROFILE_DEV_DEBUG=0
if command -v mold >/dev/null; then export RUSTFLAGS="${RUSTFLAGS:-} -C link-arg=-fuse-ld=mold"; fi
files=(
  -f 'src/protocol/*.rs'
  -f src/store/memory.rs
  -f src/actors/hub.rs
  -f src/actors/outbound.rs
  -f src/actors/recovery.rs
  -f src/actors/session/socket.rs
)
if [ "$#" -gt 0 ] && printf '%s\n' "$@" | grep -qx -- '-f\|--file'; then files=(); fi
exec cargo mutants "${files[@]}" --jobs "${MUTANTS_JOBS:-2}" --timeout "${MUTANTS_TIMEOUT:-180}" \
  --output "${MUTANTS_OUT:-target/mutants}" "$@"
