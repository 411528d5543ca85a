"""Browser fixtures for the page tests: ONE app server and ONE headless Chromium per test
module (the dash_duo of dash.testing, module-scoped), so a module pays the server start, the
browser start and the model load once. Each test opens the page afresh with `page.open(...)`.
"""
from __future__ import annotations

import os
import socket

import pytest


def _free_port() -> int:
    """A port no other program listens on now: dash.testing numbers its servers from 58050 in
    every process, so two test runs on one machine (engineers in parallel) would share a port
    and one browser would test the other's app."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def page_env():
    """Extra environment for the module's app (a module overrides this, e.g. ATTN_MODELS)."""
    return {}


@pytest.fixture(scope="module")
def page(request, tmp_path_factory, page_env):
    """A dash.testing DashComposite (what `dash_duo` is) serving app.create_app(), module-wide.

    The run cache and the background-callback cache live in a fresh temp directory.
    """
    from dash.testing.application_runners import ThreadedRunner
    from dash.testing.composite import DashComposite

    cache_dir = tmp_path_factory.mktemp("attn-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ATTN_CACHE_DIR", str(cache_dir))
        import app as app_module  # first import builds app.app: without this module's extra env

        for k, v in page_env.items():
            mp.setenv(k, v)
        from models import service

        service.clear_memory()
        try:
            dash_app = app_module.create_app()
        except SystemError as exc:
            # CPython 3.11 before 3.11.9: ast.parse in two threads at once (here werkzeug compiling
            # the app's URL rules while a thread of an earlier module parses) can raise "AST
            # constructor recursion depth mismatch" (python/cpython#106905); building again works
            if "recursion depth mismatch" not in str(exc):
                raise
            dash_app = app_module.create_app()
        with ThreadedRunner() as server:
            with DashComposite(
                server=server,
                browser=request.config.getoption("webdriver"),
                remote=request.config.getoption("remote"),
                remote_url=request.config.getoption("remote_url"),
                headless=request.config.getoption("headless"),
                options=request.config.hook.pytest_setup_options(),
                download_path=str(tmp_path_factory.mktemp("download")),
                percy_assets_root=request.config.getoption("percy_assets"),
                percy_finalize=request.config.getoption("nopercyfinalize"),
                pause=request.config.getoption("pause"),
            ) as dc:
                dc.start_server(dash_app, port=_free_port())
                yield dc


@pytest.fixture(scope="module")
def shots_dir():
    """Where screenshots go (ATTN_SHOTS_DIR, default /tmp)."""
    d = os.environ.get("ATTN_SHOTS_DIR", "/tmp")
    os.makedirs(d, exist_ok=True)
    return d
