#!/usr/bin/env bash
# Builds Prometheus and promtool at the version docker-compose.yml runs (stack/versions.env) and prints the
# directory holding both. See upstream-build.sh for how and where.
# Built like upstream's release (tag netgo) except that the cloud and cluster service discoveries are left
# out (tag remove_all_sd: static and file discovery stay, the only ones prometheus/prometheus.yml uses),
# which halves the cold build, and without the embedded web UI (tag builtinassets needs a Node build); the
# HTTP API is complete.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/upstream-build.sh"
v=github.com/prometheus/common/version
UPSTREAM_TAGS=netgo,remove_all_sd \
UPSTREAM_LDFLAGS="-X $v.Version=$PROMETHEUS_VERSION -X $v.Branch=HEAD -X $v.BuildUser=stack" \
  upstream_build "prometheus-$PROMETHEUS_VERSION" github.com/prometheus/prometheus "$PROMETHEUS_MODULE_VERSION" \
  ./cmd/prometheus ./cmd/promtool
