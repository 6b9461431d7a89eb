#!/usr/bin/env bash
# The official AsyncAPI tools, pinned by scripts/asyncapi/package-lock.json and installed once per lock into
# ~/.cache/hss-platform (a fresh clone reuses them).
#   bash scripts/asyncapi.sh validate docs/asyncapi.yaml      # @asyncapi/parser; exit 1 on any error
#   bash scripts/asyncapi.sh render docs/asyncapi.yaml DIR    # @asyncapi/generator + html-template -> DIR/index.html
set -euo pipefail
src=$(cd "$(dirname "$0")/asyncapi" && pwd)
. "$(dirname "$0")/lib.sh"
dir=$(npm_deps asyncapi "$src")
cp "$src/validate.mjs" "$src/render.cjs" "$dir/"
case "${1:-}" in
  validate) exec node "$dir/validate.mjs" "$2" ;;
  render) exec node "$dir/render.cjs" "$2" "$3" ;;
  *) echo "usage: $0 validate FILE | render FILE OUTDIR" >&2; exit 2 ;;
esac
