#!/usr/bin/env bash
# Creates .venv with the locked Python packages; cheap when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
# Every package is installed against the sha256 hashes in the locks (uv.lock.txt for uv itself).
if ! command -v uv >/dev/null 2>&1; then
  "$PY" -m pip install -q --disable-pip-version-check --require-hashes -r scripts/uv.lock.txt
fi
stamp=.venv/.lock-sha
want=$(sha256sum requirements.lock | cut -d' ' -f1)
if [ ! -x .venv/bin/python ]; then
  uv venv -q -p "$PY" .venv
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  uv pip sync -q --require-hashes -p .venv/bin/python requirements.lock
  echo "$want" > "$stamp"
fi
# Make the repository importable (shared, services, demo) from any folder, like an editable install.
site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$PWD" > "$site/hss_platform.pth"
