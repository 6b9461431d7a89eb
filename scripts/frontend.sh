#!/usr/bin/env bash
# The frontends (frontends/): Vite + Preact + TypeScript. npm packages pinned by frontends/package-lock.json and
# installed once per lock into ~/.cache/hss-platform (npm ci, no install scripts); the typed API client generated
# from docs/openapi/*.json by openapi-typescript, and the vocabularies' zh/en labels from the same documents
# (frontends/scripts/labels.mjs); tsc --strict; vite build. The repository is never written to:
# the build runs in a copy, and its output is cached per source digest (a second run with nothing changed is free).
#   bash scripts/frontend.sh build [OUT]   # prints the folder holding the built app (index.html, sw.js, assets/)
#   bash scripts/frontend.sh deps          # prints the folder holding node_modules/ (tests take axe-core from it)
#   bash scripts/frontend.sh idp-deps      # the same for the local identity provider (frontends/idp/: oidc-provider)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/lib.sh"
src=$root/frontends
cache=${HSS_CACHE_DIR:-$HOME/.cache/hss-platform}
services=(visits outreach committees reporting)  # the APIs the app calls (one typed client each)

sources() {  # every input of the build, for its digest
  (cd "$root" && find frontends -path frontends/node_modules -prune -o -path frontends/dist -prune -o -path frontends/idp -prune \
      -o -path frontends/src/api/generated -prune -o -type f -print | LC_ALL=C sort) | while read -r f; do
    echo "$f"; cat "$root/$f"
  done
  cat "$root"/docs/openapi/*.json "$root/scripts/frontend.sh" "$root/scripts/lib.sh"
}

build() {
  local dir sum out work
  dir=$(npm_deps frontend-deps "$src")
  sum=$(sources | sha256sum | cut -c1-16)
  out=${1:-$cache/frontend-app-$sum}
  if [ ! -f "$out/.built" ]; then
    mkdir -p "$cache"
    work=$(mktemp -d "$cache/frontend-build.XXXX")
    trap 'rm -rf "$work"' RETURN
    (cd "$src" && tar --exclude=./node_modules --exclude=./dist --exclude=./idp --exclude=./src/api/generated -cf - .) | tar -xf - -C "$work"
    ln -s "$dir/node_modules" "$work/node_modules"
    mkdir -p "$work/src/api/generated"
    local pids=() pid
    for name in "${services[@]}"; do  # side by side: each is a node process of its own
      "$dir/node_modules/.bin/openapi-typescript" "$root/docs/openapi/$name.json" \
        -o "$work/src/api/generated/$name.ts" --silent >/dev/null 2>&1 &
      pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid"; done
    local docs=("${services[@]/#/$root/docs/openapi/}")
    node "$work/scripts/labels.mjs" "${docs[@]/%/.json}" >"$work/src/api/generated/labels.ts"
    (cd "$work" && node_modules/.bin/tsc --noEmit -p tsconfig.json >&2 && node_modules/.bin/vite build --logLevel warn \
      --outDir "$work/out" --emptyOutDir >&2)
    chmod -R a+rX "$work/out"
    touch "$work/out/.built"
    mkdir -p "$(dirname "$out")"
    rm -rf "$out" && mv "$work/out" "$out" || true  # a parallel build may have won: either copy works
  fi
  echo "$out"
}

case "${1:-}" in
  build) build "${2:-}" ;;
  deps) npm_deps frontend-deps "$src" ;;
  idp-deps) npm_deps idp-deps "$src/idp" ;;
  *) echo "usage: $0 build [OUT] | deps | idp-deps" >&2; exit 2 ;;
esac
