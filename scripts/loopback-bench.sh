#!/usr/bin/env bash
# Loopback throughput of a hello route, in one run, alternating, with wrk: the bare router
# (`bare`), HttpServerLayer + otelbricks_telemetry::install (`ours`), the three signal layers
# (HttpTraceLayer + HttpMetricsLayer + RequestLogLayer) on the same install (`signals`),
# HttpMetricsLayer alone on the same install (`metrics`), opentelemetry-instrumentation-tower + tower-http TraceLayer + the same
# otelbricks_telemetry::install (`base`, what a user would assemble instead), axum-tracing-opentelemetry's
# OtelInResponseLayer + OtelAxumLayer wired as init-tracing-opentelemetry wires them, under the benches'
# subscriber with exporters that discard (`axum_otel`), and the benches' hand-wired SDK minimum (`floor`:
# one span, one metric record, one log record, same subscriber and exporters as `axum_otel`), and
# HttpServerLayer under that same subscriber and exporters (`ours_disc`: the layer's cost beside theirs).
# Server CPU per request = the server process's user+system time during the wrk run divided by the
# requests wrk completed (steadier than req/s on a busy machine). The load average is printed per stack.
# Usage: scripts/loopback-bench.sh [SECONDS] [CONNECTIONS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}; conns=${2:-50}; rounds=${3:-2}
command -v wrk >/dev/null || { echo "wrk not found: apt-get install wrk" >&2; exit 1; }
cargo build --release -q -p otelbricks-http --example hello_server
bin="${CARGO_TARGET_DIR:-target}/release/examples/hello_server"
run() { # $1 = label, rest = server args
  local label=$1; shift
  "$bin" "$@" 18081 & local pid=$!
  for _ in $(seq 50); do curl -s -o /dev/null 127.0.0.1:18081/hello && break; sleep 0.1; done
  local before; before=$(cpu_ticks "$pid")
  wrk -t1 -c"$conns" -d"${secs}s" --latency http://127.0.0.1:18081/hello > "/tmp/wrk-$label.txt"
  local after; after=$(cpu_ticks "$pid")
  kill -INT "$pid"; wait "$pid" 2>/dev/null || true
  local requests; requests=$(awk '/requests in/ {print $1}' "/tmp/wrk-$label.txt")
  printf '%-9s load %s, %s req/s, p50 %s, p99 %s, server CPU %s us/request\n' "$label" \
    "$(cut -d' ' -f1 /proc/loadavg)" \
    "$(awk '/Requests\/sec/ {print $2}' "/tmp/wrk-$label.txt")" \
    "$(awk '$1=="50%" {print $2}' "/tmp/wrk-$label.txt")" \
    "$(awk '$1=="99%" {print $2}' "/tmp/wrk-$label.txt")" \
    "$(awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" -v n="$requests" \
      'BEGIN {printf "%.1f", t / hz * 1e6 / n}')"
}
# utime + stime of a process, all threads, in clock ticks (/proc/PID/stat fields 14 and 15).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
for r in $(seq "$rounds"); do
  run bare --bare
  run ours
  run signals --signals
  run metrics --metrics-only
  run base --baseline
  run axum_otel --axum-tracing-otel
  run floor --sdk-floor
  run ours_disc --ours-discard
done
