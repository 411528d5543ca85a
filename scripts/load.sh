#!/usr/bin/env bash
# The 60-second load run of issue 5 (separate from the test suite, which runs a 10 s version):
# gunicorn with 2 workers on a free 127.0.0.1 port and a temporary cache directory, 8 client
# threads replaying real callback requests (run a new text, run a cached text, switch heads),
# then every cache entry on disk is decoded. Prints requests/s, p50/p95 and errors; exits 1 on
# any error or corrupt cache entry. Everything stops by itself.
#
#   bash scripts/load.sh                       # 60 s, 8 clients, 2 workers
#   bash scripts/load.sh --seconds 20 --clients 4 --json /tmp/load.json
#   bash scripts/load.sh --new-texts 500       # issue 11: every action a NEW ~500-token text, full
#                                              # cascade; p50/p95 Run -> every panel, disk MB/min
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${VENV:-$ROOT/.venv}"
if [ ! -x "$VENV/bin/python" ]; then
    echo "load.sh: no $VENV; run bash scripts/test.sh (or scripts/serve.sh) once to install" >&2
    exit 1
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 TOKENIZERS_PARALLELISM=false
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
exec "$VENV/bin/python" bench/load.py --seconds 60 --clients 8 --workers 2 "$@"
