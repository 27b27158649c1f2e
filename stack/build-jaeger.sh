#!/usr/bin/env bash
# Builds Jaeger v2 (module github.com/jaegertracing/jaeger v1.76.0 = Jaeger 2.13.0) outside this repository's
# Go module (Jaeger needs collector v0.142; our distribution is on v0.165).
# `go install github.com/jaegertracing/jaeger/cmd/jaeger@v1.76.0` is refused: the module's go.mod has a
# replace line (github.com/Shopify/sarama => v1.33.0). So the module is downloaded with `go mod download`
# (checksum-verified against the Go checksum database), copied to a temp dir and built there as the main
# module, with its own go.mod/go.sum (-mod=readonly): the same dependency set as upstream's build.
# The binary is cached under ${STACK_CACHE_DIR:-~/.cache/otel-rust-stack}/bin/jaeger-<version>/jaeger; a second run only prints its path.
# Without `-tags ui` the UI is a placeholder page; the HTTP query API (/api/v3/...) works.
# Env: JAEGER_MODULE_VERSION (default v1.76.0), STACK_CACHE_DIR (default ${XDG_CACHE_HOME:-~/.cache}/otel-rust-stack).
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version="${JAEGER_MODULE_VERSION:-v1.76.0}"
cache="${STACK_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/otel-rust-stack}"
bindir="$cache/bin/jaeger-$version"
bin="$bindir/jaeger"
if [[ -x "$bin" ]]; then
  echo "$bin"
  exit 0
fi
mkdir -p "$bindir" "$cache/go/mod" "$cache/go/build"
start=$(date +%s)
echo "building jaeger $version (cold build takes several minutes)..." >&2
# Run from a neutral directory so no go.mod/go.work of ours is seen.
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
export GOWORK=off GO111MODULE=on GOFLAGS= GOMODCACHE="$cache/go/mod" GOCACHE="$cache/go/build" \
       GOPATH="$tmp/gopath" CGO_ENABLED=0
(
  cd "$tmp"
  dir="$(go mod download -json "github.com/jaegertracing/jaeger@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [[ -n "$dir" && -f "$dir/go.mod" ]] || { echo "build-jaeger: download of jaeger $version failed" >&2; exit 1; }
  cp -r "$dir" "$tmp/src"
  chmod -R u+w "$tmp/src"
  cd "$tmp/src"
  go build -mod=readonly -trimpath -ldflags "-s -w" -o "$bin.tmp" ./cmd/jaeger >&2
  mv "$bin.tmp" "$bin"
)
echo "jaeger built in $(( $(date +%s) - start ))s" >&2
echo "$bin"
