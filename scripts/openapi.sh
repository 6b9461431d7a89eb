#!/usr/bin/env bash
# The services' OpenAPI documents (docs/openapi/<service>.json, made by `python -m shared.openapi dump`), checked:
#   bash scripts/openapi.sh check    # not stale, openapi-spec-validator, Redocly CLI lint with zero errors
#   bash scripts/openapi.sh lint FILE...
# Redocly CLI is pinned by scripts/openapi/package-lock.json and installed once per lock into ~/.cache/hss-platform.
set -euo pipefail
cd "$(dirname "$0")/.."
src=scripts/openapi
sum=$(cat "$src/package.json" "$src/package-lock.json" | sha256sum | cut -c1-16)
dir=${HSS_CACHE_DIR:-$HOME/.cache/hss-platform}/openapi-$sum
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true
install() {
  [ -f "$dir/.installed" ] && return
  mkdir -p "$(dirname "$dir")"  # a fresh machine has no cache folder yet
  tmp=$(mktemp -d "${dir}.XXXX")
  cp "$src/package.json" "$src/package-lock.json" "$tmp/"
  (cd "$tmp" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >&2)
  touch "$tmp/.installed"
  rm -rf "$dir" && mv "$tmp" "$dir" || rm -rf "$tmp"  # a parallel install may have won: either copy works
}
lint() {
  install
  node "$dir/node_modules/@redocly/cli/bin/cli.js" lint --config "$src/redocly.yaml" --format stylish "$@"
}
case "${1:-}" in
  check)
    .venv/bin/python -m shared.openapi dump --check
    for f in docs/openapi/*.json; do .venv/bin/openapi-spec-validator "$f"; done
    lint docs/openapi/*.json
    ;;
  lint) shift; lint "$@" ;;
  *) echo "usage: $0 check | lint FILE..." >&2; exit 2 ;;
esac
