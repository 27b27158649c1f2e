#!/usr/bin/env bash
# Runs every test of the workspace, the stack tests included; CI calls exactly this through .ci/run.
# Usage: scripts/test.sh
#
# Besides Rust it needs python3 (logkit compares against the Python design's analyser) and Go: the stack
# tests run the OTel Collector (our distribution), Jaeger, Prometheus + promtool and Alertmanager + amtool at
# the versions docker-compose.yml runs (stack/versions.env), built from source by stack/build-all.sh. It
# installs nothing system-wide and needs no root. Built binaries and Go caches live in
# ${STACK_CACHE_DIR:-~/.cache/otel-rust-stack}, outside the clone: a fully cold run of this script took 24 minutes on 2 cores
# (in the background, while Rust builds), a warm one milliseconds.
#
# A plain `cargo test` runs the crates' own tests only (stack-tests is not a default member); the stack
# tests find the binaries through the STACK_*_BIN variables this script exports.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s  (%ss)\n' "$*" "$SECONDS"; }

# Toolchain: rustup's cargo and the official Go tarball's go on PATH (fresh shells may not have them).
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
  export PATH="/usr/local/go/bin:$PATH"
fi
command -v cargo >/dev/null || { echo "cargo not found: install Rust with rustup" >&2; exit 1; }
command -v python3 >/dev/null || { echo "python3 not found (logkit compares against the Python design's analyser)" >&2; exit 1; }
command -v go >/dev/null || { echo "go not found: the stack tests build the collector, Jaeger, Prometheus and Alertmanager from source" >&2; exit 1; }

export CARGO_TERM_COLOR=never
export RUST_BACKTRACE=1

# The Go builds run in the background while Rust checks and builds (cached: instant when warm).
stack_log="$(mktemp)"
stack_env="$(mktemp)"
log "stack: building the collector, Jaeger, Prometheus and Alertmanager in the background (log: $stack_log)"
bash stack/build-all.sh >"$stack_env" 2>"$stack_log" &
stack_pid=$!
trap 'kill "$stack_pid" 2>/dev/null || true; rm -f "$stack_env"' EXIT

log "format check"
cargo fmt --all -- --check

log "clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --all-features -- -D warnings

# This also builds target/debug/image2model (image2model's own integration tests need it), the binary the
# stack tests run: not `cargo build -p image2model`, whose different feature unification rebuilds it.
log "build tests"
cargo test --workspace --all-features --no-run

# Unused dependencies, every feature a user can select, and packaging of every publishable crate
# (runs while the Go builds may still be going).
bash scripts/check-crates.sh

log "waiting for the stack builds"
if ! wait "$stack_pid"; then
  cat "$stack_log" >&2
  echo "building the stack binaries failed (output above)" >&2
  exit 1
fi
grep -E ' built in ' "$stack_log" || true
trap 'rm -f "$stack_env"' EXIT
# shellcheck source=/dev/null
source "$stack_env"

log "tests (unit, integration, doc, end-to-end against the real stack)"
cargo test --workspace --all-features --no-fail-fast

log "all tests passed"
