#!/usr/bin/env bash
# The README's test command: sets everything up on a fresh machine, then lint, types, contracts and all tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-system.sh
bash scripts/bootstrap.sh
PY=.venv/bin/python

echo "== lint and types"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy .
$PY -m tools.docs --check  # docs/schemas, docs/asyncapi.yaml, docs/openapi: generated from the code, not stale
bash scripts/asyncapi.sh validate docs/asyncapi.yaml  # the official AsyncAPI parser (npm, pinned, cached)
bash scripts/openapi.sh check  # docs/openapi/*.json: not stale, openapi-spec-validator, Redocly lint (npm, pinned)
bash scripts/deploy-check.sh k8s      # kubeconform on the rendered kustomization (offline schemas; builds once)
bash scripts/deploy-check.sh compose  # docker-compose.yml through compose-go (compose-spec)
bash scripts/frontend.sh build >/dev/null  # frontends/: npm ci (pinned, cached), typed client, tsc --strict, vite build

echo "== stack"
# The stack's services check every event payload they build themselves against its contract (shared/outbox.py).
export HSS_CHECK_BUILT_EVENTS=1
started_here=0
if ! $PY -m shared.devstack status >/dev/null 2>&1; then started_here=1; fi
$PY -m shared.devstack up >/dev/null
if [ "$started_here" = 1 ] && [ "${KEEP_STACK:-0}" != 1 ]; then
  trap '$PY -m shared.devstack down >/dev/null 2>&1 || true' EXIT
fi

echo "== tests"
$PY -m pytest -p no:cacheprovider -q "$@"
