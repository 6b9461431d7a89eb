#!/usr/bin/env bash
# The README's first command: sets everything up on a fresh machine and runs the demo (system left running).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-system.sh
bash scripts/bootstrap.sh
exec .venv/bin/python -m demo "$@"
