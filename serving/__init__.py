"""Serving: gunicorn hooks, /healthz, and the background-callback / run-store backends.

    warm_models()            load the models a worker should have before its first request
    version()                "0.1.0+g<commit>" (package version + the checked-out commit, if any)
    torch_threads_per_worker(workers)   intra-op threads so workers x threads <= cores

Nothing here imports Dash at module level; `serving.health` and `serving.redis_backend` do.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import settings

__version__ = "0.1.0"

log = logging.getLogger("attention_dashboard.serving")

ROOT = Path(__file__).resolve().parents[1]


def _git_commit(root: Path = ROOT) -> str | None:
    """The checked-out commit, read from .git without running git (None when not a checkout)."""
    try:
        head = (root / ".git" / "HEAD").read_text().strip()
        if head.startswith("ref: "):
            ref = head[5:]
            ref_file = root / ".git" / ref
            if ref_file.is_file():
                return ref_file.read_text().strip()[:10]
            packed = root / ".git" / "packed-refs"
            if packed.is_file():
                for line in packed.read_text().splitlines():
                    if line.endswith(" " + ref):
                        return line.split()[0][:10]
            return None
        return head[:10] or None
    except OSError:
        return None


def version() -> str:
    """Package version, plus `+g<commit>` when run from a git checkout, or env ATTN_VERSION."""
    if settings.get("ATTN_VERSION"):
        return settings.get("ATTN_VERSION")
    commit = _git_commit()
    return f"{__version__}+g{commit}" if commit else __version__


def warm_model_names() -> list[str]:
    """Models to load at start: env ATTN_WARM_MODELS ("default" | "all" | "a;b"), default "default"."""
    from models import registry

    want = settings.get("ATTN_WARM_MODELS", "default").strip()
    if want in ("", "none"):
        return []
    if want == "default":
        return [registry.DEFAULT_MODEL]
    if want == "all":
        return registry.model_names()
    return [n.strip() for n in want.replace(",", ";").split(";") if n.strip()]


def warm_models() -> list[str]:
    """Load the warm models into this process; a model that fails is logged, not raised."""
    from models import loader

    loaded = []
    for name in warm_model_names():
        try:
            loader.get_loaded(name)
            loaded.append(name)
        except Exception as exc:  # a broken extra model must not stop the server
            log.warning("could not load model %r at start: %s", name, exc)
    return loaded


WARM_UP_PATHS = ("/", "/_dash-layout", "/_dash-dependencies")


def warm_up(wsgi_app, logger=None) -> bool:
    """Serve the page, its layout and its callback map once in this process (Flask test client,
    no socket) so Dash's per-app setup is done before the first real request. False (logged)
    when a path did not answer 200: the worker still serves."""
    ok = True
    try:
        client = wsgi_app.test_client()
        for path in WARM_UP_PATHS:
            code = client.get(path, environ_base={"REMOTE_ADDR": "127.0.0.1"}).status_code
            if code != 200:
                ok = False
                (logger or log).warning("warm-up request %s answered %s", path, code)
    except Exception as exc:  # never stop a worker for it
        (logger or log).warning("warm-up failed: %s: %s", type(exc).__name__, exc)
        return False
    return ok


def torch_threads_per_worker(workers: int, cores: int | None = None) -> int:
    """Intra-op threads for each worker so that all workers together use about one thread per core."""
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, workers))


def attach(app) -> None:
    """Everything serving adds to a Dash app; app.py calls it once, after creating `app`:

    * GET /healthz (serving.health),
    * 400 for malformed callback requests and a body size limit (serving.guard),
    * the secret key (from env / file, generated 0600) and security headers (serving.security),
    * with a Redis URL configured: runs shared through Redis (serving.redis_backend.install).

    The background-callback manager is passed when the app is created:
    `Dash(..., background_callback_manager=serving.redis_backend.background_manager())`.
    """
    from serving.guard import register_request_guard
    from serving.jobs import register_session_cookie
    from serving.health import register_health
    from serving.redis_backend import install
    from serving.security import register_headers, secret_key

    install()
    app.server.secret_key = secret_key()  # signs job handles; never kept in the callback store
    register_health(app.server)
    register_request_guard(app)
    register_headers(app)
    register_session_cookie(app.server)
