#!/usr/bin/env bash
# make lint: golangci-lint at a pinned version, built from the Go module
# proxy once into the kmt cache ($KMT_CACHE_DIR, default ~/.cache/kmt), then
# run with .golangci.yml. `scripts/lint.sh --fix` also rewrites what the
# formatters (import grouping) can fix.
set -euo pipefail
cd "$(dirname "$0")/.."
version=v2.15.0
cache=${KMT_CACHE_DIR:-$HOME/.cache/kmt}
bin=$cache/golangci-lint-$version/golangci-lint
if [ ! -x "$bin" ]; then
  echo "lint: building golangci-lint $version into $cache (once)" >&2
  mkdir -p "$(dirname "$bin")"
  GOBIN=$(dirname "$bin") GOFLAGS=-mod=mod go install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$version"
fi
if [ "${1:-}" = --fix ]; then
  "$bin" fmt ./...
  exec "$bin" run --fix ./...
fi
if ! "$bin" run ./...; then
  echo "lint: failed; scripts/lint.sh --fix (make lint-fix) fixes import grouping, the rest by hand" >&2
  exit 1
fi
