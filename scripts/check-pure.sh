#!/usr/bin/env bash
# Fails if the protocol codecs touch I/O, clocks, logging or a runtime (STYLE.md 5.2): they must stay
# pure functions over strings and bytes, testable and fuzzable alone.
set -euo pipefail
cd "$(dirname "$0")/.."
if grep -nE '\b(actix|actix_web|tokio|redis|log::|env_logger|SystemTime|Instant|std::(fs|net|thread|time))\b' \
    --include='*.rs' -r src/protocol | grep -vE '^\S+:\s*//'; then
  echo "error: src/protocol must stay pure (no I/O, clocks, logging or runtime); see the lines above" >&2
  exit 1
fi
echo "src/protocol is pure"
