#!/usr/bin/env bash
# Runs every test of the workspace. On a fresh machine it installs what the tests need first.
# Usage: scripts/test.sh            (CI calls exactly this through .ci/run)
#
# Besides Rust it needs: python3 (logkit compares against the seed's analyser), Go (the collector and Jaeger
# are built from source), apt (Debian's Prometheus and Alertmanager). Built binaries and Go caches live in
# ${STACK_CACHE_DIR:-~/.cache/otel-rust-stack}, outside the clone: a cold build of the collector and Jaeger
# takes ~20 minutes on 2 cores, a warm one milliseconds.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s  (%ss)\n' "$*" "$SECONDS"; }

# Toolchain: rustup's cargo on PATH (fresh shells may not have it).
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
  export PATH="/usr/local/go/bin:$PATH"
fi
command -v cargo >/dev/null || { echo "cargo not found: install Rust with rustup" >&2; exit 1; }
command -v python3 >/dev/null || { echo "python3 not found (logkit compares against the seed's Python analyser)" >&2; exit 1; }
command -v go >/dev/null || { echo "go not found: the end-to-end tests build the OTel Collector and Jaeger from source" >&2; exit 1; }

export CARGO_TERM_COLOR=never
export RUST_BACKTRACE=1

log "stack: Prometheus + Alertmanager (Debian packages, once)"
bash stack/install-prometheus.sh

# The Go builds run in the background while Rust checks and builds (cached: instant when warm).
stack_log="$(mktemp)"
log "stack: building the collector and Jaeger in the background (log: $stack_log)"
( bash otel-collector/build.sh && bash stack/build-jaeger.sh ) >"$stack_log" 2>&1 &
stack_pid=$!
trap 'kill "$stack_pid" 2>/dev/null || true' EXIT

log "format check"
cargo fmt --all -- --check

log "clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --all-features -- -D warnings

log "build tests"
cargo test --workspace --all-features --no-run

log "waiting for the collector and Jaeger builds"
if ! wait "$stack_pid"; then
  cat "$stack_log" >&2
  echo "building the collector or Jaeger failed (output above)" >&2
  exit 1
fi
tail -n 2 "$stack_log"
trap - EXIT

log "tests (unit, integration, doc, end-to-end against the real stack)"
cargo test --workspace --all-features --no-fail-fast

log "all tests passed"
