"""Secrets, file modes and response headers.

    secret_key()                 the key that signs background-job handles: env ATTN_SECRET_KEY, else
                                 the file env ATTN_SECRET_KEY_FILE (default <cache dir>/secret_key),
                                 generated (32 random bytes, hex) with mode 0600 on first start
    restrict_process()           umask 077: every file this process creates is the user's only
    register_headers(server)     X-Frame-Options, X-Content-Type-Options, Referrer-Policy and a
                                 Content-Security-Policy the page passes (no inline script but
                                 Dash's own, allowed by hash)
    is_local_request()           the caller is on loopback and no proxy forwarded the request

Without a configured secret_key, Dash keeps the key in the background-callback store, which
any local user could read; with it, a forged job handle made the server SIGKILL an unrelated
process (issue 12). Workers of one server share the file; machines that share jobs (Celery)
need the same ATTN_SECRET_KEY (or file).
"""
from __future__ import annotations

import base64
import hashlib
import logging
import os
import secrets as _secrets
import tempfile
import time

from flask import request

import settings

log = logging.getLogger("attention_dashboard.serving")

SECRET_FILE_NAME = "secret_key"


def secret_key_file() -> str:
    from models.cache import default_cache_dir

    return settings.get("ATTN_SECRET_KEY_FILE") or os.path.join(default_cache_dir(), SECRET_FILE_NAME)


def secret_key() -> str:
    """See the module docstring. The file is created with O_EXCL and mode 0600, so two workers
    starting at once agree on one key; an existing file readable by others is tightened to 0600."""
    env = settings.get("ATTN_SECRET_KEY", "").strip()
    if env:
        return env
    path = secret_key_file()
    try:
        return _key_from_file(path)
    except OSError as exc:  # the cache directory is unusable (read-only, full, not creatable)
        fallback = os.path.join(tempfile.gettempdir(), f"attention-dashboard-{os.getuid()}-"
                                f"{hashlib.sha256(path.encode()).hexdigest()[:12]}", SECRET_FILE_NAME)
        log.warning("cannot keep the secret key in %s (%s); using %s", path, exc, fallback)
        try:
            return _key_from_file(fallback)
        except OSError as exc2:  # nowhere to keep it: this process only (job handles per worker)
            log.warning("cannot keep the secret key in %s either (%s); using a per-process key", fallback, exc2)
            return _secrets.token_hex(32)


def _key_from_file(path: str) -> str:
    from models.cache import secure_dir

    secure_dir(os.path.dirname(path) or ".")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as f:
            f.write(_secrets.token_hex(32))
        log.info("generated a secret key in %s (mode 0600)", path)
    st = os.stat(path)
    if st.st_uid == os.getuid() and st.st_mode & 0o077:
        os.chmod(path, 0o600)
        log.warning("%s was readable by others; now 0600", path)
    for _ in range(50):  # another worker may be between O_EXCL and its write
        with open(path) as f:
            key = f.read().strip()
        if key:
            return key
        time.sleep(0.02)
    raise RuntimeError(f"the secret key file {path} is empty")


def restrict_process() -> None:
    """umask 077 for this process (and what it forks): caches, secrets and logs stay private."""
    os.umask(0o077)


def is_local_request() -> bool:
    """The request comes from loopback and did not pass a proxy (which adds X-Forwarded-For)."""
    addr = request.remote_addr or ""
    forwarded = request.headers.get("X-Forwarded-For") or request.headers.get("Forwarded") \
        or request.headers.get("X-Real-IP")
    return addr in ("127.0.0.1", "::1") and not forwarded


def _inline_script_hashes(app) -> list[str]:
    """'sha256-...' of the inline scripts Dash writes into the page (its renderer bootstrap)."""
    try:
        return [h if h.startswith("'") else f"'{h}'" for h in app.csp_hashes()]
    except Exception:  # an older Dash without csp_hashes: fall back to the known bootstrap
        body = "var renderer = new DashRenderer();"
        return [f"'sha256-{base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()}'"]


def content_security_policy(app) -> str:
    """Scripts and everything else from this origin only (Plotly, MathJax and Bootstrap are
    served locally), Dash's inline bootstrap by hash, inline styles (Plotly sets style
    attributes), images from data:/blob: (PNG export), no framing, no plugins."""
    script = " ".join(["'self'"] + _inline_script_hashes(app))
    return ("default-src 'self'; "
            f"script-src {script}; "
            "style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
            "worker-src 'self' blob:; object-src 'none'; base-uri 'self'; form-action 'self'; "
            "frame-ancestors 'none'")


def register_headers(app) -> None:
    """Security headers on every response of the Flask server behind `app`."""
    server = app.server
    csp: list[str] = []

    @server.after_request
    def _security_headers(resp):
        if not csp:
            csp.append(content_security_policy(app))
        resp.headers.setdefault("X-Frame-Options", "DENY")
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("Referrer-Policy", "same-origin")
        resp.headers.setdefault("Content-Security-Policy", csp[0])
        return resp
