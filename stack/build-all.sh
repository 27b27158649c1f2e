#!/usr/bin/env bash
# Builds every binary the native stack runs (cached: a warm run takes milliseconds) and prints, on stdout,
# the environment the stack tests read to find them:
#   STACK_OTELCOL_BIN  STACK_JAEGER_BIN  STACK_PROMETHEUS_BIN  STACK_PROMTOOL_BIN  STACK_ALERTMANAGER_BIN
#   STACK_AMTOOL_BIN
# as `export NAME='path'` lines, so that
#   eval "$(bash stack/build-all.sh)" && cargo test -p stack-tests
# runs the stack tests. scripts/test.sh does this (in the background while Rust builds); build output goes to
# stderr. A cold build of all four takes tens of minutes on 2 cores (Go, modules from the Go proxy).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
otelcol="$(nice -n 10 bash "$root/otel-collector/build.sh")"
jaeger="$(nice -n 10 bash "$here/build-jaeger.sh")"
prometheus="$(nice -n 10 bash "$here/build-prometheus.sh")"
alertmanager="$(nice -n 10 bash "$here/build-alertmanager.sh")"
cat <<ENV
export STACK_OTELCOL_BIN='$otelcol'
export STACK_JAEGER_BIN='$jaeger/jaeger'
export STACK_PROMETHEUS_BIN='$prometheus/prometheus'
export STACK_PROMTOOL_BIN='$prometheus/promtool'
export STACK_ALERTMANAGER_BIN='$alertmanager/alertmanager'
export STACK_AMTOOL_BIN='$alertmanager/amtool'
ENV
