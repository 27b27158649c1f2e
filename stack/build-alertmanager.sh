#!/usr/bin/env bash
# Builds Alertmanager and amtool at the version docker-compose.yml runs (stack/versions.env) and prints the
# directory holding both. See upstream-build.sh for how and where.
# The web UI is a Node/Elm build whose output (ui/app/dist) the Go module does not ship but embeds: a
# placeholder page stands in for it. The HTTP API (/api/v2/...) is complete.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/upstream-build.sh"
v=github.com/prometheus/common/version
UPSTREAM_TAGS=netgo \
UPSTREAM_STUBS="ui/app/dist/elm/index.html ui/app/dist/mantine/index.html" \
UPSTREAM_LDFLAGS="-X $v.Version=$ALERTMANAGER_VERSION -X $v.Branch=HEAD -X $v.BuildUser=stack" \
  upstream_build "alertmanager-$ALERTMANAGER_VERSION" github.com/prometheus/alertmanager "v$ALERTMANAGER_VERSION" \
  ./cmd/alertmanager ./cmd/amtool
