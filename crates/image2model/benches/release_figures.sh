#!/usr/bin/env bash
# Release figures of image2model (docs/BENCHMARKS.md, section "image2model"):
# startup time to /ready (7 runs, fresh data dir each), RSS at /ready, idle 10 s, every second
# under `image2model loadgen --rps 50 --duration 30s`, and 10 s after the load.
# Build first: cargo build --release -p image2model   (BIN= to point at the binary)
set -u
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release/image2model}
PORT=${PORT:-18431}
command -v curl >/dev/null || { echo "needs curl" >&2; exit 1; }
[ -x "$BIN" ] || { echo "no binary at $BIN" >&2; exit 1; }

start() { # $1: data dir; starts the app in the background, sets $pid
  IMAGE2MODEL_LISTEN=127.0.0.1:$PORT IMAGE2MODEL_DATA_DIR=$1/data TELEMETRY_LOG_DIR=$1/logs \
    TELEMETRY_ADMIN_ADDR=127.0.0.1:0 "$BIN" >/dev/null 2>&1 &
  pid=$!
}
ready() { until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/ready")" = 200 ]; do sleep 0.005; done; }
rss() { awk '/VmRSS/{print $2}' "/proc/$pid/status"; }

echo "== startup to /ready (includes one curl spawn per 5 ms poll)"
for i in 1 2 3 4 5 6 7; do
  d=$(mktemp -d); t0=$(date +%s%N); start "$d"; ready; t1=$(date +%s%N)
  echo "run $i: $(( (t1 - t0) / 1000000 )) ms"
  kill -TERM "$pid"; wait "$pid"; rm -rf "$d"
done

echo "== RSS"
d=$(mktemp -d); start "$d"; ready
echo "at /ready: $(rss) kB"; sleep 10; echo "idle 10 s: $(rss) kB"
"$BIN" loadgen --target "http://127.0.0.1:$PORT" --rps 50 --duration 30s >"$d/loadgen.txt" 2>/dev/null &
lg=$!; max=0
while kill -0 "$lg" 2>/dev/null; do r=$(rss); [ "$r" -gt "$max" ] && max=$r; sleep 1; done
echo "max under load: $max kB; at the end: $(rss) kB"
cat "$d/loadgen.txt"
sleep 10; echo "10 s after the load: $(rss) kB"
kill -TERM "$pid"; wait "$pid"; rm -rf "$d"
