"""Scale-out path: background callbacks on Celery workers and runs shared through a real Redis.

redis-server (Debian package) runs on a free loopback port with no persistence; every process
is stopped in a finally (fixtures in conftest.py).
"""
from __future__ import annotations

import json
import logging
import re

import numpy as np
import pytest

from models import cache as run_cache
from serving import redis_backend
from bench.client import DashClient, response_value

pytestmark = pytest.mark.server

TEXT = "Redis carries this sentence from the web worker to a Celery worker and back."


def _payload():
    meta = {"schema": 1, "text": "naïve ☃ עברית", "tokens": ["a", "b"], "nested": {"x": [1, 2.5, None]}}
    arrays = {"w": np.array([[0.5, np.inf], [-np.inf, 1e-3]], dtype=np.float16),
              "emb": np.arange(6, dtype=np.float32).reshape(2, 3)}
    return meta, arrays


def test_redis_run_store_round_trip_and_corruption(redis_url, caplog):
    store = redis_backend.RedisRunCache(redis_url)
    meta, arrays = _payload()
    assert store.get("k1") is None
    assert store.put("k1", meta, arrays) is True
    got_meta, got_arrays = store.get("k1")
    assert got_meta == meta
    for name, arr in arrays.items():
        assert got_arrays[name].dtype == arr.dtype
        np.testing.assert_array_equal(got_arrays[name], arr)
    # the stored value is the disk cache's blob format, byte for byte
    assert store.client.get("attn:run:k1") == run_cache.encode_run(meta, arrays)
    assert store.client.ttl("attn:run:k1") > 0

    calls = []

    def compute():
        calls.append(1)
        return meta, arrays

    m2, a2, hit = store.get_or_compute("k2", compute)
    assert not hit and calls == [1] and m2 == meta
    m3, a3, hit = store.get_or_compute("k2", compute)
    assert hit and calls == [1]

    assert store.put_json("j", {"scores": [[0.1, 0.2]], "name": "x"})
    assert store.get_json("j") == {"scores": [[0.1, 0.2]], "name": "x"}
    assert store.get_json("missing", default=7) == 7

    # a truncated entry is a miss, is deleted, and is logged; it is never half-read
    raw = store.client.get("attn:run:k1")
    store.client.set("attn:run:k1", raw[: len(raw) // 2])
    with caplog.at_level(logging.WARNING, logger="serving.redis_backend"):
        assert store.get("k1") is None
    assert store.client.exists("attn:run:k1") == 0
    assert "discarding unreadable entry" in caplog.text
    # a pickle put there by someone else is refused, not unpickled
    import pickle

    store.client.set("attn:run:k3", pickle.dumps({"evil": True}))
    assert store.get("k3") is None

    status = store.status()
    assert status["backend"] == "redis" and status["ok"] is True and status["entries"] >= 1
    with pytest.raises(TypeError):
        store.put(("not", "a", "str"), meta, arrays)


def test_unreachable_redis_degrades_to_no_cache(caplog):
    from bench.local import free_port

    store = redis_backend.RedisRunCache(f"redis://127.0.0.1:{free_port()}/0", socket_timeout=0.5)
    meta, arrays = _payload()
    with caplog.at_level(logging.WARNING, logger="serving.redis_backend"):
        assert store.get("k") is None
        assert store.put("k", meta, arrays) is False
        m, a, hit = store.get_or_compute("k", lambda: (meta, arrays))
    assert not hit and m == meta
    assert store.status()["ok"] is False
    assert caplog.text.count("working without it") == 1  # logged once, not per call


def test_manager_is_chosen_by_the_redis_url(monkeypatch, tmp_path):
    from dash import CeleryManager, DiskcacheManager

    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("ATTN_REDIS_URL", raising=False)
    monkeypatch.setenv("ATTN_CACHE_DIR", str(tmp_path / "cache"))
    disk = redis_backend.background_manager()
    assert isinstance(disk, DiskcacheManager)
    assert disk.handle.directory == str(tmp_path / "cache" / "callbacks")
    assert isinstance(disk.handle.disk, redis_backend.JSONOnlyDisk)
    assert redis_backend.run_store() is run_cache.default_cache()
    monkeypatch.setenv("ATTN_REDIS_URL", "redis://127.0.0.1:1/0")  # not contacted
    assert isinstance(redis_backend.background_manager(), CeleryManager)
    assert isinstance(redis_backend.run_store(), redis_backend.RedisRunCache)


def test_callback_store_keeps_json_only(tmp_path, caplog):
    """Dash's results (figures, components, the signing secret as bytes) round-trip as JSON;
    an unusable directory falls back to a shared temp directory with a warning."""
    import plotly.graph_objects as go
    from dash import html

    handle = redis_backend.callback_cache(str(tmp_path / "c"))
    fig = go.Figure(go.Heatmap(z=np.eye(2)))
    handle.set("fig", [fig, html.B("x <script>"), {"progress": [1, 2]}])
    back = handle.get("fig")
    from _plotly_utils.utils import PlotlyJSONEncoder

    assert back[0] == json.loads(json.dumps(fig, cls=PlotlyJSONEncoder))  # what Dash would send
    assert back[0]["data"][0]["type"] == "heatmap"
    assert back[1]["props"]["children"] == "x <script>" and back[1]["type"] == "B"
    handle.add("__dash_background_signing_secret__", b"s3cret-bytes")
    assert handle.get("__dash_background_signing_secret__") == b"s3cret-bytes"
    import diskcache

    class PicklingValues(redis_backend.JSONOnlyDisk):  # same keys, values pickled (diskcache's default)
        store = diskcache.Disk.store

    diskcache.Cache(str(tmp_path / "c" / "callbacks"), disk=PicklingValues).set("pickled", {"a": 1})
    with pytest.raises(ValueError):
        handle.get("pickled")

    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with caplog.at_level(logging.WARNING, logger="serving.redis_backend"):
        fallback = redis_backend.callback_cache(str(blocker / "cache"))
    try:
        assert "unusable" in caplog.text and fallback.directory.startswith("/")
        assert fallback.directory == redis_backend.callback_cache(str(blocker / "cache")).directory
    finally:
        import shutil

        shutil.rmtree(fallback.directory, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_background_job_runs_on_a_celery_worker_through_redis(redis_url, celery_worker_factory,
                                                              gunicorn_factory, tmp_path):
    env = {"ATTN_REDIS_URL": redis_url, "ATTN_CELERY_IMPORTS": "tests.server.bg_app",
           "ATTN_CACHE_DIR": str(tmp_path / "celery-cache")}
    worker = celery_worker_factory(env)
    srv = gunicorn_factory(app="tests.server.bg_app:server", workers=1, env=env)

    import requests

    health = requests.get(srv.url + "/healthz", timeout=10).json()
    assert health["cache"]["backend"] == "redis" and health["cache"]["ok"] is True

    client = DashClient.http(srv.url)
    cb = client.callback_for("out.children")
    assert cb.background
    status, data = client.call(cb, {"text.value": TEXT, "go.n_clicks": 1}, ["go.n_clicks"], timeout=150)
    assert status == 200, data
    out = response_value(data, "out", "children")
    m = re.fullmatch(r"pid=(\d+) source=(\w+) tokens=(\d+) sum=([\d.]+)", out or "")
    assert m, data
    assert int(m.group(1)) == worker.proc.pid  # it ran in the Celery worker, not in gunicorn
    assert int(m.group(1)) not in srv.worker_pids()
    assert m.group(2) == "model" and int(m.group(3)) > 10
    assert float(m.group(4)) == pytest.approx(6 * 12 * int(m.group(3)), rel=1e-2)  # rows sum to 1
    assert "succeeded" in worker.log_text()

    # the run is now in Redis, in the shared blob format, readable by any other process
    import redis as redis_lib

    keys = redis_lib.Redis.from_url(redis_url).keys("attn:run:*")
    assert len(keys) == 1
    meta, arrays = run_cache.decode_run(redis_lib.Redis.from_url(redis_url).get(keys[0]))
    assert meta["text"] == TEXT and arrays["block0.entropy"].shape[:2] == (6, 12)  # compact: summaries + Q/K
    assert len(meta["blocks"][0]["layers"]) == 6 and "block0.L5.k" in arrays
    # nothing of this run was written to the web server's disk cache
    assert not list((tmp_path / "celery-cache").glob("**/*.val"))


def test_redis_needs_the_password_and_it_is_never_shown(redis_url):
    """Redis runs with a password (requirepass); the URL carries it; status and logs redact it."""
    import redis as redis_lib

    password = redis_url.split("//:", 1)[1].split("@", 1)[0]
    without = redis_url.replace(f":{password}@", "")
    with pytest.raises(redis_lib.AuthenticationError):
        redis_lib.Redis.from_url(without).ping()
    store = redis_backend.RedisRunCache(redis_url)
    status = store.status()
    assert status["ok"] is True and password not in str(status) and "***" in status["directory"]
