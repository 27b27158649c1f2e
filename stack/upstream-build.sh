#!/usr/bin/env bash
# Sourced by build-jaeger.sh, build-prometheus.sh and build-alertmanager.sh: builds commands of an upstream Go
# module at a pinned version with the module's own go.mod and go.sum, the same dependency set as upstream's
# release build.
#
# `go install module/cmd/x@version` is not used: it refuses modules whose go.mod has replace or exclude
# lines (Jaeger's has), and Alertmanager's UI embed needs files its module does not ship. Instead the module
# is downloaded with `go mod download` (checksum-verified against the Go checksum database), copied to a
# temporary directory and built there as the main module with -mod=readonly.
#
# Binaries land in ${STACK_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}/otel-rust-stack}/bin/<name>-<recipe hash>/
# (the hash covers this file, the module, version, packages, tags, flags and stubs, so a changed recipe
# builds anew); when they are all there nothing is built (a warm run takes milliseconds). Module and build caches live under the same
# directory, outside the clone, so a fresh clone reuses them.

stack_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$stack_dir/versions.env"
stack_cache="${STACK_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/otel-rust-stack}"

# upstream_build NAME MODULE VERSION [PKG...]
#   NAME     directory under $stack_cache/bin (e.g. prometheus-3.16.0), completed with the recipe's hash;
#            prints that directory on stdout when done
#   MODULE   Go module path; VERSION its version
#   PKG      packages to build (./cmd/x), each into a binary named after its last element
# Optional variables: UPSTREAM_TAGS (build tags), UPSTREAM_LDFLAGS (added to -s -w), UPSTREAM_STUBS (paths,
# relative to the module root, of placeholder index.html files to create before the build).
upstream_build() {
  local name="$1" module="$2" version="$3"
  shift 3
  local recipe bindir pkg missing=0
  recipe="$(printf '%s\n' "$module" "$version" "$*" "${UPSTREAM_TAGS:-}" "${UPSTREAM_LDFLAGS:-}" \
    "${UPSTREAM_STUBS:-}" | cat - "$stack_dir/upstream-build.sh" | sha256sum | cut -c1-12)"
  name="$name-$recipe"
  bindir="$stack_cache/bin/$name"
  for pkg in "$@"; do
    [[ -x "$bindir/${pkg##*/}" ]] || missing=1
  done
  if (( ! missing )); then
    echo "$bindir"
    return 0
  fi
  mkdir -p "$bindir" "$stack_cache/go/mod" "$stack_cache/go/build"
  local start tmp dir stub
  start=$(date +%s)
  echo "building $name from $module@$version (a cold build takes several minutes)..." >&2
  # A neutral directory, so no go.mod/go.work of ours is seen.
  tmp="$(mktemp -d)"
  # shellcheck disable=SC2064 # expand $tmp now
  trap "rm -rf '$tmp'" RETURN
  (
    export GOWORK=off GO111MODULE=on GOFLAGS= GOTOOLCHAIN=local GOMODCACHE="$stack_cache/go/mod" \
           GOCACHE="$stack_cache/go/build" GOPATH="$tmp/gopath" CGO_ENABLED=0
    cd "$tmp"
    dir="$(go mod download -json "$module@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
    [[ -n "$dir" && -f "$dir/go.mod" ]] || { echo "download of $module@$version failed" >&2; exit 1; }
    cp -r "$dir" "$tmp/src"
    chmod -R u+w "$tmp/src"
    cd "$tmp/src"
    for stub in ${UPSTREAM_STUBS:-}; do
      mkdir -p "$(dirname "$stub")"
      printf '<!doctype html><title>%s</title><p>UI not built: the API works.</p>\n' "$name" >"$stub"
    done
    for pkg in "$@"; do
      go build -mod=readonly -trimpath -tags "${UPSTREAM_TAGS:-}" -ldflags "-s -w ${UPSTREAM_LDFLAGS:-}" \
        -o "$bindir/${pkg##*/}.tmp" "$pkg" >&2
      mv "$bindir/${pkg##*/}.tmp" "$bindir/${pkg##*/}"
    done
  ) || return 1
  echo "$name built in $(( $(date +%s) - start ))s" >&2
  echo "$bindir"
}
