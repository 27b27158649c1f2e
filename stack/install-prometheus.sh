#!/usr/bin/env bash
# Installs Debian's Prometheus (prometheus, promtool) and Alertmanager (prometheus-alertmanager, amtool)
# when they are missing. Needs root (or passwordless sudo) and a reachable Debian mirror.
# The packages' systemd units are never started: a policy-rc.d that denies service starts is put in place
# for the install (when none exists), and any daemon the install still left running is stopped by PID.
# Idempotent: a second run only checks the binaries (well under a second).
set -euo pipefail
need=()
command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 || need+=(prometheus)
[[ -x /usr/bin/prometheus-alertmanager ]] && command -v amtool >/dev/null 2>&1 || need+=(prometheus-alertmanager)
if (( ${#need[@]} == 0 )); then
  exit 0
fi
sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null 2>&1 || { echo "install-prometheus: need root to install ${need[*]}" >&2; exit 1; }
  sudo="sudo"
fi
start=$(date +%s)
policy=/usr/sbin/policy-rc.d
made_policy=0
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\n# temporary: installed by stack/install-prometheus.sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
  $sudo chmod +x "$policy"
  made_policy=1
fi
cleanup() { if (( made_policy )); then $sudo rm -f "$policy"; fi; }
trap cleanup EXIT
export DEBIAN_FRONTEND=noninteractive
# The package lists may be empty on a fresh machine: update once when the package is unknown.
if ! apt-cache show prometheus >/dev/null 2>&1 || ! apt-cache show prometheus-alertmanager >/dev/null 2>&1; then
  $sudo apt-get update -qq
fi
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
# Make sure no packaged daemon is left running (systemd may be absent; the policy above usually suffices).
if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
  for unit in prometheus prometheus-alertmanager prometheus-node-exporter; do
    $sudo systemctl disable --now "$unit" >/dev/null 2>&1 || true
  done
fi
for exe in /usr/bin/prometheus /usr/bin/prometheus-alertmanager /usr/bin/prometheus-node-exporter; do
  for pid in $(pgrep -x -f "$exe( .*)?" 2>/dev/null || true); do
    # only daemons started by the package (their config is under /etc/prometheus)
    if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- '/etc/prometheus\|^/usr/bin/[a-z-]* *$'; then
      $sudo kill "$pid" 2>/dev/null || true
    fi
  done
done
echo "installed ${need[*]} in $(( $(date +%s) - start ))s: $(prometheus --version 2>&1 | head -1); $(/usr/bin/prometheus-alertmanager --version 2>&1 | head -1)" >&2
