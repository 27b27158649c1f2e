#!/usr/bin/env bash
# Builds the minimal collector distribution (main.go + components.go) into
#   ${STACK_CACHE_DIR:-~/.cache/otel-rust-stack}/bin/otelcol-<core version>-<hash of go.mod, go.sum, *.go>
# and prints that path. When the binary is already there, nothing is built (a warm run takes ~10 ms).
# Module and build caches live under the same cache dir (outside the clone, so a fresh clone reuses them).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$here/.." && pwd)"
cache="${STACK_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/otel-rust-stack}"
core_version="$(sed -n 's#^[[:space:]]*go.opentelemetry.io/collector/otelcol v\([^ ]*\).*#\1#p' "$here/go.mod" | head -1)"
hash="$(cd "$here" && cat go.mod go.sum ./*.go | sha256sum | cut -c1-16)"
bin="$cache/bin/otelcol-${core_version}-${hash}"
if [[ -x "$bin" ]]; then
  echo "$bin"
  exit 0
fi
mkdir -p "$cache/bin" "$cache/go/mod" "$cache/go/build"
start=$(date +%s)
echo "building otelcol ${core_version} (cold build takes a few minutes)..." >&2
(
  cd "$here"
  env GOFLAGS=-mod=mod GOWORK=off GOMODCACHE="$cache/go/mod" GOCACHE="$cache/go/build" CGO_ENABLED=0 \
    go build -trimpath -ldflags "-s -w -X main.version=${core_version}" -o "$bin.tmp" . >&2
)
mv "$bin.tmp" "$bin"
echo "otelcol built in $(( $(date +%s) - start ))s" >&2
echo "$bin"
