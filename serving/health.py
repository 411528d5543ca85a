"""GET /healthz: is this worker ready to serve?

    register_health(server)     adds the route to the Flask server (app.py: one line)

Response (JSON):
    {"status": "ok" | "degraded" | "unavailable",
     "model_loaded": bool,                  the default model is loaded in this worker
     "models": {"configured": [names], "loaded": [names],
                "unavailable": {name: reason},      models that failed to load or were refused
                                                    (verification on load) in this worker
                "refused_blocks": {name: {block: reason}}},  loaded, with a block left out
     "cache": RunCache.status() (+ "backend"),   where runs are stored and whether it is usable
     "version": "0.1.0+g<commit>",
     "pid": worker process id}

Callers on loopback (not through a proxy, which adds X-Forwarded-For) see all of it; others
see only status, model_loaded and version, unless ATTN_HEALTH_DETAILS=1. The cache part is the
state every worker shares (RunCache.shared_status), so workers answer alike.

HTTP 200 for "ok" and "degraded" (the cache is unusable: runs are computed without it, the page
works), 503 for "unavailable" (the default model is not loaded in this worker). The check
never loads a model or computes a run, so it is cheap enough for a load balancer to poll.
"""
from __future__ import annotations

import os
import sys

from flask import Flask, jsonify

import settings
from serving import version
from serving.security import is_local_request


def cache_status() -> dict:
    """Status of the run store this process uses (Redis when configured, else the disk cache)."""
    try:
        from serving import redis_backend

        if redis_backend.redis_url():
            return redis_backend.run_store().status()
        from models import cache

        store = cache.default_cache()
        # the shared state (the same from every worker), not this worker's own degraded flag
        status = dict(store.shared_status() if hasattr(store, "shared_status") else store.status())
        status.setdefault("backend", "diskcache")
        return status
    except Exception as exc:  # a health check reports, it does not raise
        return {"backend": "unknown", "ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}


def _torch_threads() -> int | None:
    """This process's torch intra-op threads (gunicorn sets them per worker), None before import."""
    torch = sys.modules.get("torch")
    return None if torch is None else int(torch.get_num_threads())


def health() -> tuple[dict, int]:
    from models import loader, registry

    try:
        configured = registry.model_names()
    except Exception as exc:  # a broken models file is a configuration error worth seeing
        configured = [registry.DEFAULT_MODEL]
        config_error = f"{type(exc).__name__}: {exc}"[:300]
    else:
        config_error = None
    loaded = loader.loaded_names()
    model_loaded = registry.DEFAULT_MODEL in loaded
    cache = cache_status()
    cache_ok = bool(cache.get("ok", not cache.get("degraded", False)))
    if not model_loaded:
        status = "unavailable"
    elif not cache_ok or config_error:
        status = "degraded"
    else:
        status = "ok"
    body = {"status": status, "model_loaded": model_loaded,
            "models": {"configured": configured, "loaded": loaded,
                       "unavailable": loader.unavailable(), "refused_blocks": loader.refused_blocks()},
            "cache": cache, "version": version(), "pid": os.getpid(), "torch_threads": _torch_threads()}
    if config_error:
        body["config_error"] = config_error
    return body, (503 if status == "unavailable" else 200)


PUBLIC_KEYS = ("status", "model_loaded", "version")


def details_allowed() -> bool:
    """env ATTN_HEALTH_DETAILS=1: every caller sees the details (paths, pids, models)."""
    return settings.get("ATTN_HEALTH_DETAILS", "0") in ("1", "true", "yes")


def public_view(body: dict) -> dict:
    """What a caller that is not on loopback (or came through a proxy) sees: no paths, pids,
    model list or error texts."""
    return {k: body[k] for k in PUBLIC_KEYS if k in body}


def register_health(server: Flask, path: str = "/healthz") -> None:
    """Add GET `path` to the Flask server behind the Dash app."""

    def healthz():
        body, code = health()
        if not (details_allowed() or is_local_request()):
            body = public_view(body)
        resp = jsonify(body)
        resp.status_code = code
        resp.headers["Cache-Control"] = "no-store"
        return resp

    server.add_url_rule(path, endpoint="attention_dashboard_healthz", view_func=healthz, methods=["GET"])
