#!/usr/bin/env bash
# Checks what a user of the published crates depends on, beyond the tests:
#   1. no declared-but-unused dependency (cargo-machete; installed once into ~/.cargo/bin);
#   2. every feature a user can select builds: each library crate with --no-default-features and with
#      each of its features alone (clippy, warnings are errors);
#   3. every publishable crate packages and its packaged copy builds (`cargo package`, verified, with the
#      workspace's crates resolved from one another).
# Called by scripts/test.sh; runs on its own too: scripts/check-crates.sh
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '\n==> %s  (%ss)\n' "$*" "$SECONDS"; }

machete_version=0.9.2
if ! command -v cargo-machete >/dev/null 2>&1 || ! cargo-machete --version 2>/dev/null | grep -q "$machete_version"; then
  log "installing cargo-machete $machete_version (once, into ~/.cargo/bin)"
  cargo install --quiet --locked cargo-machete --version "$machete_version"
fi
log "unused dependencies (cargo machete)"
cargo machete

# The publishable crates and their features, from cargo metadata (publish = false crates are skipped).
mapfile -t rows < <(cargo metadata --no-deps --format-version 1 | python3 -c '
import json, sys
for p in json.load(sys.stdin)["packages"]:
    if p.get("publish") == []:
        continue
    feats = [f for f in p["features"] if f != "default"]
    print(p["name"], *feats)
')
for row in "${rows[@]}"; do
  read -r name feats <<<"$row"
  log "features of $name: none${feats:+, then each of: $feats}"
  cargo clippy --quiet -p "$name" --no-default-features -- -D warnings
  for f in $feats; do
    cargo clippy --quiet -p "$name" --no-default-features --features "$f" -- -D warnings
  done
done

log "packaging every publishable crate (verified builds of the packaged sources)"
packages=()
for row in "${rows[@]}"; do packages+=(-p "${row%% *}"); done
# Cargo verifies each package against the others through a local registry (target/package/tmp-registry)
# and unpacks them under ~/.cargo/registry/src/-<hash>/ like downloaded crates. Same name and version,
# so an unpacked copy from an earlier run would be used instead of today's sources: drop those copies
# (only our crates, only in such local registries; crates.io's registries start with their host name).
# Cargo also takes registry sources as immutable, so what an earlier verification compiled from such a
# copy (in the target directory, whose dep-info names the unpacked sources) is dropped as well.
names=()
for row in "${rows[@]}"; do
  names+=("${row%% *}")
  rm -rf "${CARGO_HOME:-$HOME/.cargo}"/registry/src/-*/"${row%% *}"-[0-9]* \
    "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/-*/"${row%% *}"-[0-9]*.crate
done
target_dir=$(cargo metadata --no-deps --format-version 1 | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
python3 - "$target_dir/debug" "${names[@]}" <<'PY'
import pathlib, shutil, sys
debug = pathlib.Path(sys.argv[1])
crates = {n.replace("-", "_"): n for n in sys.argv[2:]}
for info in list((debug / "deps").glob("*.d")):
    crate, _, build = info.stem.rpartition("-")
    if crate not in crates or "/registry/src/-" not in info.read_text(errors="replace"):
        continue
    for artifact in (debug / "deps").glob(f"*{info.stem}*"):
        artifact.unlink(missing_ok=True)
    shutil.rmtree(debug / ".fingerprint" / f"{crates[crate]}-{build}", ignore_errors=True)
PY
cargo package --quiet --locked "${packages[@]}"
log "crate checks passed"
