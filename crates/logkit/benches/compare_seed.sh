#!/usr/bin/env bash
# Side-by-side benchmark of `logkit summary --json` against the seed's analyser, in one run.
# Usage: crates/logkit/benches/compare_seed.sh [WORKDIR=/tmp/logkit-bench]
# Needs: python3, gzip/zcat, GNU time (/usr/bin/time; apt-get install time), a release build
# (CARGO_TARGET_DIR=... cargo build -p logkit --release; set LOGKIT=path/to/logkit).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
shared=${SHARED:-$here/../../../../shared}
w=${1:-/tmp/logkit-bench}
L=${LOGKIT:-$here/../../../target/release/logkit}
mkdir -p "$w"
[ -f "$w/app.json" ] || python3 "$shared/bench/gen_logs.py" 1000000 "$w/app.json" 1000
[ -f "$w/app.json.gz" ] || gzip -6 -c "$w/app.json" > "$w/app.json.gz"
if [ ! -f "$w/app3g.json" ]; then for _ in $(seq 10); do cat "$w/app.json"; done > "$w/app3g.json"; fi
cat "$w/app.json" > /dev/null   # warm the page cache
echo "== load: $(uptime)"
echo "== seed"
/usr/bin/time -f "seed wall=%e s maxrss=%M KB" python3 "$shared/bench/seed_log_analyzer.py" "$w/app.json"
echo "== logkit plain (5 runs)"
for _ in 1 2 3 4 5; do
  /usr/bin/time -f "logkit wall=%e s user=%U s sys=%S s maxrss=%M KB" "$L" summary --json "$w/app.json" > "$w/out.json"
done
python3 - "$w/out.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print("logkit counts:", json.dumps({"total_requests": d["total_requests"], "failed": d["failed_requests"],
      "unique_users": d["unique_users"], "errors": {e["error_type"]: e["count"] for e in d["errors"]["error_counts"]}}))
PY
echo "== gzip (3 runs each, alternating)"
for _ in 1 2 3; do
  /usr/bin/time -f "zcat wall=%e s" sh -c "zcat '$w/app.json.gz' > /dev/null"
  /usr/bin/time -f "logkit-gz wall=%e s maxrss=%M KB" "$L" summary --json "$w/app.json.gz" > /dev/null
done
echo "== memory, 300 MB vs 3 GB"
/usr/bin/time -f "logkit 300MB wall=%e s maxrss=%M KB" "$L" summary --json "$w/app.json" > /dev/null
/usr/bin/time -f "logkit 3GB wall=%e s maxrss=%M KB" "$L" summary --json "$w/app3g.json" > /dev/null
