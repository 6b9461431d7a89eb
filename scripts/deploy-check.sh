#!/usr/bin/env bash
# Checks the deployment files with the tools their users run, offline:
#   bash scripts/deploy-check.sh k8s [DIR]          # kustomize build | kubeconform -strict (Kubernetes 1.37 schemas)
#   bash scripts/deploy-check.sh compose [FILE]     # compose-go (docker compose's loader): compose-spec schema
# kustomize, kubeconform and compose-go are Go modules pinned by scripts/deploycheck/go.sum, built once per
# go.sum into ~/.cache/hss-platform; the Kubernetes JSON schemas come from the kubernetes-validate package in
# requirements.lock (no schema is downloaded at check time).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
src=$root/scripts/deploycheck
k8s_version=1.37.0
command -v go >/dev/null || { echo "deploy-check: needs the Go toolchain (go) on PATH" >&2; exit 1; }
sum=$(cat "$src/go.mod" "$src/go.sum" "$src"/*.go "$src/k8s_schemas.py" | sha256sum | cut -c1-16)
dir=${HSS_CACHE_DIR:-$HOME/.cache/hss-platform}/deploycheck-$sum
if [ ! -f "$dir/.installed" ]; then
  mkdir -p "$(dirname "$dir")"
  tmp=$(mktemp -d "${dir}.XXXX")
  (cd "$src" && go build -o "$tmp/kustomize" sigs.k8s.io/kustomize/kustomize/v5 \
    && go build -o "$tmp/kubeconform" github.com/yannh/kubeconform/cmd/kubeconform \
    && go build -o "$tmp/composecheck" .) >&2
  "$root/.venv/bin/python" "$src/k8s_schemas.py" "$k8s_version" "$tmp/schemas"
  touch "$tmp/.installed"
  rm -rf "$dir" && mv "$tmp" "$dir" || rm -rf "$tmp"  # a parallel build may have won: either copy works
fi
case "${1:-}" in
  k8s)
    "$dir/kustomize" build "${2:-$root/deploy/k8s}" | "$dir/kubeconform" -strict -summary \
      -kubernetes-version "$k8s_version" \
      -schema-location "$dir/schemas/{{ .NormalizedKubernetesVersion }}-local{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json" -
    ;;
  compose)
    # The secrets compose requires (${VAR:?}) get placeholders: the check is about the file, not a deployment.
    HSS_JWT_ISSUER=x HSS_JWT_JWKS_URL=x POSTGRES_PASSWORD=x HSS_SERVICE_DB_PASSWORD=x GRAFANA_ADMIN_PASSWORD=x "$dir/composecheck" "${2:-$root/docker-compose.yml}"
    ;;
  *) echo "usage: $0 k8s [DIR] | compose [FILE]" >&2; exit 2 ;;
esac
