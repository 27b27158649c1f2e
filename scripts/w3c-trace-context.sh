#!/usr/bin/env bash
# Runs the official W3C Trace Context test suite (Level 1, then SPEC_LEVEL=2) against
# crates/otelbricks-http/examples/w3c_service.rs (HttpServerLayer + HttpClientMiddleware with the
# default W3C propagator).
#
# Usage: scripts/w3c-trace-context.sh SUITE_DIR [PORT]
#   SUITE_DIR: the `test/` directory of a w3c/trace-context checkout
#              (git clone https://github.com/w3c/trace-context; needs python3 with aiohttp).
# Environment: PYTHON (default python3).
set -euo pipefail
suite=${1:?usage: $0 SUITE_DIR [PORT]}
port=${2:-5000}
python=${PYTHON:-python3}
cd "$(dirname "$0")/.."
cargo build -q -p otelbricks-http --example w3c_service
bin=$(cargo metadata --format-version 1 --no-deps | "$python" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/examples/w3c_service
"$bin" "$port" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break
  sleep 0.1
done
status=0
echo "== Level 1"
(cd "$suite" && "$python" test.py "http://127.0.0.1:$port/test") || status=1
echo "== Level 2 (SPEC_LEVEL=2)"
(cd "$suite" && SPEC_LEVEL=2 "$python" test.py "http://127.0.0.1:$port/test") || status=1
exit $status
