#!/usr/bin/env bash
# Side-by-side benchmark of `logkit summary --json` against the Python design's analyser, in one run.
# Usage: crates/otelbricks-logkit/benches/compare_python.sh [WORKDIR=/tmp/logkit-bench]
# Needs: python3, gzip/zcat, GNU time (/usr/bin/time; apt-get install time), a release build
# (CARGO_TARGET_DIR=... cargo build -p otelbricks-logkit --release; set LOGKIT=path/to/logkit).
# Optional: LOGKIT_BEFORE=path/to/an/older/logkit (timed in the same rounds, for before/after),
# ROUNDS (default 3: each round runs the Python analyser once and every logkit 5 times, alternating),
# and valgrind for the instruction count per byte (independent of the machine's load).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
py=${PY_DIR:-$here/../tests/python_design}   # the Python design's scripts, vendored
w=${1:-/tmp/logkit-bench}
L=${LOGKIT:-$here/../../../target/release/logkit}
B=${LOGKIT_BEFORE:-}
rounds=${ROUNDS:-3}
mkdir -p "$w"
[ -f "$w/app.json" ] || python3 "$py/gen_logs.py" 1000000 "$w/app.json" 1000
[ -f "$w/app.json.gz" ] || gzip -6 -c "$w/app.json" > "$w/app.json.gz"
if [ ! -f "$w/app3g.json" ]; then for _ in $(seq 10); do cat "$w/app.json"; done > "$w/app3g.json"; fi
cat "$w/app.json" > /dev/null   # warm the page cache
size=$(stat -L -c %s "$w/app.json")
t="$w/times.txt"
: > "$t"
timed() { # label command...
  local label=$1; shift
  /usr/bin/time -a -o "$t" -f "$label %e %U %S %M" "$@"
}
echo "== load: $(uptime)"
for r in $(seq "$rounds"); do
  echo "== round $r/$rounds"
  timed python python3 "$py/log_analyzer.py" "$w/app.json" > /dev/null
  for _ in 1 2 3 4 5; do
    timed logkit "$L" summary --json "$w/app.json" > "$w/out.json"
    timed logkit-no-mmap "$L" summary --json --no-mmap "$w/app.json" > /dev/null
    if [ -n "$B" ]; then timed logkit-before "$B" summary --json "$w/app.json" > /dev/null; fi
  done
done
echo "== load: $(uptime)"
python3 - "$t" "$size" <<'PY'
import statistics as st, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip() and not l.startswith("Command")]
size = int(sys.argv[2])
by = {}
for label, wall, user, sys_, rss in rows:
    by.setdefault(label, []).append((float(wall), float(user) + float(sys_), int(rss)))
python = st.median(w for w, _, _ in by["python"])
for label, v in by.items():
    walls = [w for w, _, _ in v]
    med, best = st.median(walls), min(walls)
    cpu = st.median(c for _, c, _ in v)
    print(f"{label:15} n={len(v):2} wall median {med:7.3f} s  best {best:7.3f} s  "
          f"cpu median {cpu:7.3f} s  max RSS {max(r for _, _, r in v) / 1024:6.1f} MB  "
          f"ratio to Python median {python / med:6.1f}x (best {python / best:5.1f}x)  "
          f"{size / med / 1e6:6.0f} MB/s median")
PY
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
/usr/bin/time -f "logkit 3GB --no-mmap wall=%e s maxrss=%M KB" "$L" summary --json --no-mmap "$w/app3g.json" > /dev/null
if command -v valgrind > /dev/null; then
  echo "== instructions per byte (valgrind callgrind, first 30 MB, all threads)"
  head -c 30000000 "$w/app.json" > "$w/slice30.json"
  for b in "$L" ${B:+"$B"}; do
    ir=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null "$b" summary --json "$w/slice30.json" 2>&1 >/dev/null |
      sed -n 's/.*refs: *//p' | tr -d ,)
    python3 -c "print(f'$b: {$ir:,} instructions, {$ir / 30e6:.2f} per byte')"
  done
fi
