"""A fresh gunicorn (issue 15, start-up; issue 12, findings 4 and 9): the first requests never
meet Dash's half-done per-app setup, files are the service user's only, the secret key is not
in the callback store, security headers are on every response and /healthz details stay on
loopback.
"""
from __future__ import annotations

import os
import re
import socket
import stat
import threading
import time

import pytest
import requests

from bench.local import LocalGunicorn

from .conftest import load_app

pytestmark = [pytest.mark.server, pytest.mark.slow]


def bundle_paths() -> list[str]:
    """The page and the JS / CSS it loads (as the page itself lists them)."""
    page = load_app().server.test_client().get("/").get_data(as_text=True)
    paths = re.findall(r'<script src="(/[^"]+)"', page) + re.findall(r'<link rel="stylesheet" href="(/[^"]+)"', page)
    return ["/", "/_dash-layout", "/_dash-dependencies"] + paths


def wait_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"port {port} did not open")


@pytest.mark.timeout(240)
def test_first_parallel_requests_never_fail_and_files_are_private(tmp_path):
    paths = bundle_paths()
    assert any(p.endswith(".js") or ".js?" in p for p in paths), paths
    wanted = (paths * 16)[:16]  # 16 parallel first requests: the page and its bundles
    # one worker, 4 threads: 16 parallel requests meet Dash's setup in several threads at once
    srv = LocalGunicorn(workers=1, threads=4, cache_dir=tmp_path / "cache", log_path=tmp_path / "gunicorn.log")
    srv.wait_ready = lambda timeout: wait_port(srv.port, timeout)  # no request before the burst
    results: dict = {}
    barrier = threading.Barrier(len(wanted))

    def get(i, path):
        barrier.wait()
        try:
            r = requests.get(srv.url + path, timeout=120, headers={"Connection": "close"})
            results[i] = (path, r.status_code, r.text[:200] if r.status_code != 200 else "")
        except requests.RequestException as exc:
            results[i] = (path, None, str(exc))

    try:
        srv.start()
        threads = [threading.Thread(target=get, args=(i, p)) for i, p in enumerate(wanted)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(150)
        bad = [r for r in results.values() if r[1] != 200]
        assert len(results) == 16 and not bad, bad

        # security headers on the page, the bundles and callback answers
        r = requests.get(srv.url + "/", timeout=30)
        assert r.headers["X-Frame-Options"] == "DENY"
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        csp = r.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self' 'sha256-" in csp and "unsafe-eval" not in csp
        assert "attn_session" in r.cookies

        # /healthz: details on loopback, only the status through a proxy
        local = requests.get(srv.url + "/healthz", timeout=30).json()
        assert "pid" in local and "directory" in local["cache"]
        proxied = requests.get(srv.url + "/healthz", headers={"X-Forwarded-For": "203.0.113.9"}, timeout=30).json()
        assert set(proxied) == {"status", "model_loaded", "version"}
        assert str(tmp_path) not in str(proxied)

        # files: cache dir 0700, secret key 0600 outside the callback store, nothing for others
        cache = tmp_path / "cache"
        assert stat.S_IMODE(os.stat(cache).st_mode) == 0o700
        key = cache / "secret_key"
        assert stat.S_IMODE(os.stat(key).st_mode) == 0o600 and len(key.read_text().strip()) == 64
        for root, dirs, files in os.walk(cache):
            for name in dirs + files:
                mode = stat.S_IMODE(os.lstat(os.path.join(root, name)).st_mode)
                assert mode & 0o077 == 0, (os.path.join(root, name), oct(mode))
        import sqlite3

        with sqlite3.connect(cache / "callbacks" / "cache.db") as db:
            keys = [row[0] for row in db.execute("SELECT key FROM Cache")]
        assert not any("signing_secret" in str(k) for k in keys), keys
    finally:
        srv.stop()
