#!/usr/bin/env bash
# Runs every test of the workspace. On a fresh machine it installs what the tests need first.
# Usage: scripts/test.sh            (CI calls exactly this through .ci/run)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*"; }

# Toolchain: rustup's cargo on PATH (fresh shells may not have it).
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
command -v cargo >/dev/null || { echo "cargo not found: install Rust with rustup" >&2; exit 1; }
command -v python3 >/dev/null || { echo "python3 not found (logkit compares against the seed's Python analyser)" >&2; exit 1; }

export CARGO_TERM_COLOR=never
export RUST_BACKTRACE=1

log "format check"
cargo fmt --all -- --check

log "clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --all-features -- -D warnings

log "tests (unit, integration, doc)"
cargo test --workspace --all-features
