#!/usr/bin/env bash
# The services' OpenAPI documents (docs/openapi/<service>.json, made by `python -m tools.docs`), checked:
#   bash scripts/openapi.sh check    # openapi-spec-validator, Redocly CLI lint with zero errors (staleness:
#                                    # `python -m tools.docs --check`)
#   bash scripts/openapi.sh lint FILE...
# Redocly CLI is pinned by scripts/openapi/package-lock.json and installed once per lock into ~/.cache/hss-platform.
set -euo pipefail
cd "$(dirname "$0")/.."
src=scripts/openapi
. scripts/lib.sh
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true
lint() {
  local dir
  dir=$(npm_deps openapi "$src")
  node "$dir/node_modules/@redocly/cli/bin/cli.js" lint --config "$src/redocly.yaml" --format stylish "$@"
}
case "${1:-}" in
  check)
    for f in docs/openapi/*.json; do .venv/bin/openapi-spec-validator "$f"; done
    lint docs/openapi/*.json
    ;;
  lint) shift; lint "$@" ;;
  *) echo "usage: $0 check | lint FILE..." >&2; exit 2 ;;
esac
