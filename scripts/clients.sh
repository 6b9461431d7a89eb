#!/usr/bin/env bash
# Typed clients generated from the services' OpenAPI documents as the gateway serves them (/<service>/openapi.json),
# by the standard generators: openapi-typescript + openapi-fetch (npm, pinned by clients/typescript/package-lock.json,
# installed once per lock into ~/.cache/hss-platform) and openapi-python-client (PyPI, in requirements.lock).
#   bash scripts/clients.sh typescript GATEWAY_URL DIR   # DIR/generated/<service>.ts, then tsc --strict over them
#                                                        # and clients/typescript/*.ts -> DIR/dist/*.js
#   bash scripts/clients.sh python GATEWAY_URL DIR       # DIR/hss_<service>_client/ (import with DIR on sys.path)
# `make clients` writes both into clients/generated/ from the devstack's gateway.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/lib.sh"
services=(committees visits outreach reporting)
[ $# -eq 3 ] || { echo "usage: $0 typescript|python GATEWAY_URL DIR" >&2; exit 2; }
kind=$1 url=${2%/} out=$3
mkdir -p "$out"
out=$(cd "$out" && pwd)

case "$kind" in
  typescript)
    src=$root/clients/typescript
    dir=$(npm_deps typed-clients "$src")
    mkdir -p "$out/generated"
    pids=()
    for name in "${services[@]}"; do  # side by side: each is a node process of its own
      "$dir/node_modules/.bin/openapi-typescript" "$url/$name/openapi.json" -o "$out/generated/$name.ts" --silent &
      pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid"; done
    cp "$src/tsconfig.json" "$src"/*.ts "$out/"
    printf '{"type": "module", "private": true}\n' > "$out/package.json"
    ln -sfn "$dir/node_modules" "$out/node_modules"
    "$dir/node_modules/.bin/tsc" -p "$out/tsconfig.json"
    ;;
  python)
    pids=()
    for name in "${services[@]}"; do  # side by side: each is a Python process of its own
      printf 'post_hooks: []\npackage_name_override: hss_%s_client\n' "$name" > "$out/.$name.yaml"
      "$root/.venv/bin/openapi-python-client" generate --url "$url/$name/openapi.json" --config "$out/.$name.yaml" \
        --meta none --output-path "$out/hss_${name}_client" --overwrite >&2 &
      pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid"; done
    rm -f "$out"/.*.yaml
    ;;
  *) echo "usage: $0 typescript|python GATEWAY_URL DIR" >&2; exit 2 ;;
esac
