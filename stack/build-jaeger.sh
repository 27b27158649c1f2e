#!/usr/bin/env bash
# Builds Jaeger v2 at the version docker-compose.yml runs (stack/versions.env: release JAEGER_VERSION is Go
# module github.com/jaegertracing/jaeger JAEGER_MODULE_VERSION) and prints the directory holding `jaeger`.
# See upstream-build.sh for how and where. It is built outside this repository's Go module: Jaeger needs an
# older collector core than our distribution (otel-collector/), and its go.mod has a replace line.
# Without `-tags ui` the UI is a placeholder page; the HTTP query API (/api/v3/...) is complete.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/upstream-build.sh"
UPSTREAM_LDFLAGS="-X github.com/jaegertracing/jaeger/internal/version.latestVersion=v$JAEGER_VERSION" \
  upstream_build "jaeger-$JAEGER_VERSION" github.com/jaegertracing/jaeger "$JAEGER_MODULE_VERSION" ./cmd/jaeger
