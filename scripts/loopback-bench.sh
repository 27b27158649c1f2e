#!/usr/bin/env bash
# Loopback throughput of a hello route: bare router vs HttpServerLayer (+ telemetry::install), in
# one run, alternating, with wrk. Usage: scripts/loopback-bench.sh [SECONDS] [CONNECTIONS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}; conns=${2:-50}; rounds=${3:-2}
command -v wrk >/dev/null || { echo "wrk not found: apt-get install wrk" >&2; exit 1; }
cargo build --release -q -p telemetry-http --example hello_server
bin="${CARGO_TARGET_DIR:-target}/release/examples/hello_server"
run() { # $1 = label, rest = server args
  local label=$1; shift
  "$bin" "$@" 18081 & local pid=$!
  for _ in $(seq 50); do curl -s -o /dev/null 127.0.0.1:18081/hello && break; sleep 0.1; done
  wrk -t1 -c"$conns" -d"${secs}s" --latency http://127.0.0.1:18081/hello > "/tmp/wrk-$label.txt"
  kill -INT "$pid"; wait "$pid" 2>/dev/null || true
  printf '%-6s %s req/s, p50 %s, p99 %s\n' "$label" \
    "$(awk '/Requests\/sec/ {print $2}' "/tmp/wrk-$label.txt")" \
    "$(awk '$1=="50%" {print $2}' "/tmp/wrk-$label.txt")" \
    "$(awk '$1=="99%" {print $2}' "/tmp/wrk-$label.txt")"
}
for r in $(seq "$rounds"); do
  run bare --bare
  run ours
done
