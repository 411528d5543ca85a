"""Fixtures for tests that start real server processes on loopback (all @pytest.mark.server).

Every process started here is bounded in time and stopped in a `finally`, whatever the test did.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.local import ROOT, LocalGunicorn, free_port

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
# the app under test: app.py's `server` (ATTN_TEST_APP=module:server and ATTN_TEST_PATH=dir let a
# developer point these tests at a patched copy without touching app.py)
TEST_APP = os.environ.get("ATTN_TEST_APP", "app:server")
TEST_PATH = os.environ.get("ATTN_TEST_PATH", "")


def load_app():
    """The Dash app object of TEST_APP, imported in this process (Flask test client tests)."""
    import importlib

    if TEST_PATH and TEST_PATH not in sys.path:
        sys.path.insert(0, TEST_PATH)
    return importlib.import_module(TEST_APP.split(":")[0]).app


GOOD_TEXT = "The cat sat on the mat because it was tired."


def tab_with_a_run(app, cache_dir, monkeypatch, text: str = GOOD_TEXT):
    """A scripted tab (bench.client.Session) of `app` that already shows a good run of `text`:
    the view a hostile or malformed request must leave as it was."""
    from bench.client import DashClient, Session

    monkeypatch.setenv("ATTN_CACHE_DIR", str(cache_dir))
    s = Session(DashClient.flask(app.server.test_client()))
    s.change({"text-input.value": text, "run-button.n_clicks": 1}, trigger=["run-button.n_clicks"])
    assert not s.errors and s.values["run-store.data"]["request"]["text"] == text
    return s


def _wait_port(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


@pytest.fixture
def redis_url(tmp_path):
    """A real redis-server (Debian package) on a free loopback port, no persistence, with a
    password (requirepass) that the URL carries, as README's Deploy section shows."""
    if not os.access(REDIS_SERVER, os.X_OK):
        pytest.fail("redis-server is missing: apt-get install redis-server (scripts/test.sh does it)",
                    pytrace=False)
    import secrets

    port = free_port()
    password = secrets.token_hex(16)
    proc = subprocess.Popen([REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no", "--dir", str(tmp_path),
                             "--protected-mode", "yes", "--requirepass", password],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        assert _wait_port(port, 10), "redis-server did not start"
        yield f"redis://:{password}@127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


class CeleryWorker:
    def __init__(self, env: dict, log_path: Path):
        self.log_path = log_path
        self._log = open(log_path, "wb")
        cmd = [sys.executable, "-m", "celery", "-A", "serving.redis_backend:celery_app", "worker",
               "--pool=solo", "--loglevel=INFO", "--without-gossip", "--without-mingle",
               "--without-heartbeat", "-n", f"attn-test-{os.getpid()}@localhost"]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), **env},
                                     stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"celery worker exited {self.proc.returncode}:\n{self.log_text()[-3000:]}")
            if " ready." in self.log_text():
                return
            time.sleep(0.2)
        raise RuntimeError(f"celery worker not ready after {timeout} s:\n{self.log_text()[-3000:]}")

    def stop(self) -> None:
        try:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, 3)  # SIGQUIT: celery's cold shutdown (no waiting for tasks)
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(self.proc.pid, 9)
                    self.proc.wait(5)
        except ProcessLookupError:
            pass
        finally:
            self._log.close()


@pytest.fixture
def celery_worker_factory(tmp_path):
    workers = []

    def start(env: dict) -> CeleryWorker:
        w = CeleryWorker(env, tmp_path / f"celery-{len(workers)}.log")
        workers.append(w)
        w.wait_ready()
        return w

    try:
        yield start
    finally:
        for w in workers:
            w.stop()


@pytest.fixture(scope="session")
def shared_server(tmp_path_factory):
    """One `gunicorn app:server` (2 workers, its own cache) for the tests that only need a healthy
    server; tests that break it (kill -9, SIGHUP) leave it healthy again. Stopped at session end."""
    base = tmp_path_factory.mktemp("shared-gunicorn")
    env = {"PYTHONPATH": f"{ROOT}:{TEST_PATH}"} if TEST_PATH else None
    srv = LocalGunicorn(workers=2, app=TEST_APP, cache_dir=base / "cache", log_path=base / "gunicorn.log", env=env)
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def gunicorn_factory(tmp_path):
    """start(**LocalGunicorn kwargs) -> a running server; every one is stopped at teardown."""
    servers = []

    def start(**kw) -> LocalGunicorn:
        kw.setdefault("cache_dir", tmp_path / f"cache-{len(servers)}")
        kw.setdefault("log_path", tmp_path / f"gunicorn-{len(servers)}.log")
        kw.setdefault("app", TEST_APP)
        if TEST_PATH:
            kw["env"] = {"PYTHONPATH": f"{ROOT}:{TEST_PATH}", **(kw.get("env") or {})}
        srv = LocalGunicorn(**kw)
        servers.append(srv)
        return srv.start()

    try:
        yield start
    finally:
        for srv in servers:
            srv.stop()
