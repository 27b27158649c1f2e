#!/usr/bin/env bash
# The observability stack on loopback without Docker: OTel Collector (our distribution), Jaeger v2,
# Prometheus and Alertmanager with this repository's configs, on free 127.0.0.1 ports.
#   stack/stack.sh build            build the collector, Jaeger, Prometheus, Alertmanager (cached) and print
#                                   the STACK_*_BIN exports the stack tests read
#   stack/stack.sh up [--interval 5s]   start everything, print the ports and the app's env to use
#   stack/stack.sh status | down
# Runtime files (rendered configs, data, logs, state.json) go to stack/.run/. The code is tests/src (crate
# stack-tests, binary `stack`); the end-to-end tests use the same code.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec cargo run --quiet -p stack-tests --bin stack -- "$@"
