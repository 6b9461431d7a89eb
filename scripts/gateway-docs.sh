#!/usr/bin/env bash
# The gateway's /docs page: Swagger UI from the npm package pinned by deploy/gateway/package-lock.json (installed
# once per lock into ~/.cache/hss-platform, scripts/lib.sh) next to deploy/gateway/docs/. Prints the folder to use as
# nginx `root` (it holds docs/); devstack and the gateway image (deploy/gateway/Dockerfile) both build it here.
#   bash scripts/gateway-docs.sh [OUT]      # default OUT: ~/.cache/hss-platform/gateway-docs-<hash>
set -euo pipefail
. "$(dirname "$0")/lib.sh"
src=$(cd "$(dirname "$0")/../deploy/gateway" && pwd)
sum=$(cat "$src/package.json" "$src/package-lock.json" "$src"/docs/* | sha256sum | cut -c1-16)
cache=${HSS_CACHE_DIR:-$HOME/.cache/hss-platform}
out=${1:-$cache/gateway-docs-$sum}
if [ ! -f "$out/.installed" ]; then
  deps=$(npm_deps gateway-swagger-ui "$src")
  mkdir -p "$(dirname "$out")"
  tmp=$(mktemp -d "${out}.XXXX")
  mkdir "$tmp/docs"
  dist=$deps/node_modules/swagger-ui-dist
  cp "$dist/swagger-ui.css" "$dist/swagger-ui-bundle.js" "$dist/swagger-ui-standalone-preset.js" \
    "$dist/favicon-32x32.png" "$dist/LICENSE" "$tmp/docs/"
  cp "$src"/docs/* "$tmp/docs/"
  chmod -R a+rX "$tmp"
  touch "$tmp/.installed"
  rm -rf "$out" && mv "$tmp" "$out" || rm -rf "$tmp"  # a parallel build may have won: either copy works
fi
echo "$out"
