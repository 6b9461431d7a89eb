#!/usr/bin/env bash
# The official AsyncAPI tools, pinned by scripts/asyncapi/package-lock.json and installed once per lock into
# ~/.cache/hss-platform (a fresh clone reuses them).
#   bash scripts/asyncapi.sh validate docs/asyncapi.yaml      # @asyncapi/parser; exit 1 on any error
#   bash scripts/asyncapi.sh render docs/asyncapi.yaml DIR    # @asyncapi/generator + html-template -> DIR/index.html
set -euo pipefail
src=$(cd "$(dirname "$0")/asyncapi" && pwd)
sum=$(cat "$src/package.json" "$src/package-lock.json" | sha256sum | cut -c1-16)
dir=${HSS_CACHE_DIR:-$HOME/.cache/hss-platform}/asyncapi-$sum
if [ ! -f "$dir/.installed" ]; then
  mkdir -p "$(dirname "$dir")"  # a fresh machine has no cache folder yet
  tmp=$(mktemp -d "${dir}.XXXX")
  cp "$src/package.json" "$src/package-lock.json" "$tmp/"
  # No install scripts: nothing here needs one (and none may download a browser).
  (cd "$tmp" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >&2)
  touch "$tmp/.installed"
  rm -rf "$dir" && mv "$tmp" "$dir" || rm -rf "$tmp"  # a parallel install may have won: either copy works
fi
cp "$src/validate.mjs" "$src/render.cjs" "$dir/"
case "${1:-}" in
  validate) exec node "$dir/validate.mjs" "$2" ;;
  render) exec node "$dir/render.cjs" "$2" "$3" ;;
  *) echo "usage: $0 validate FILE | render FILE OUTDIR" >&2; exit 2 ;;
esac
