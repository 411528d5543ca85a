"""The deployed shape: `gunicorn app:server -c gunicorn.conf.py` with 2 workers on loopback.

/healthz, Dash debug off, one cache directory shared by every worker, and the settings of
gunicorn.conf.py."""
from __future__ import annotations

import json
import os
import re
import runpy
import time

import pytest
import requests

import serving
from bench.client import DashClient, Session
from bench.local import CONF

pytestmark = pytest.mark.server

TEXT = "Every worker reads the run that another worker stored."


def _health_of_each_worker(srv, want: int, timeout: float = 30) -> dict:
    """{pid: /healthz body}, polling (new connections) until `want` workers have answered."""
    seen = {}
    deadline = time.monotonic() + timeout
    while len(seen) < want and time.monotonic() < deadline:
        r = requests.get(srv.url + "/healthz", timeout=10, headers={"Connection": "close"})
        body = r.json()
        seen[body["pid"]] = (r.status_code, body)
    return seen


def test_conf_defaults_and_env(monkeypatch):
    for k in ("ATTN_WORKERS", "ATTN_THREADS", "ATTN_TIMEOUT", "ATTN_PRELOAD", "ATTN_BIND", "ATTN_CONTROL_SOCKET"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("ATTN_CACHE_DIR", "relative/cache")
    conf = runpy.run_path(str(CONF))
    assert conf["workers"] == 2 and conf["threads"] == 4 and conf["worker_class"] == "gthread"
    assert conf["timeout"] == 120 and conf["preload_app"] is True and conf["wsgi_app"] == "app:server"
    assert conf["bind"] == ["127.0.0.1:8050"] and conf["control_socket_disable"] is True
    assert os.environ["ATTN_CACHE_DIR"] == os.path.abspath("relative/cache")  # one absolute dir for all
    monkeypatch.setenv("ATTN_WORKERS", "3")
    monkeypatch.setenv("ATTN_PRELOAD", "0")
    conf = runpy.run_path(str(CONF))
    assert conf["workers"] == 3 and conf["preload_app"] is False


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_two_workers_health_debug_off_and_one_shared_cache(shared_server):
    srv = shared_server
    log_from = srv.log_size()
    pids = set(srv.worker_pids())
    assert len(pids) == 2

    health = _health_of_each_worker(srv, 2)
    assert set(health) == pids, "both workers answer /healthz"
    for code, body in health.values():
        assert code == 200 and body["status"] == "ok" and body["model_loaded"] is True
        assert body["models"]["configured"][0] == "all-MiniLM-L6-v2"
        assert "all-MiniLM-L6-v2" in body["models"]["loaded"]  # preloaded: no worker loads on demand
        assert body["cache"]["ok"] is True and body["cache"]["directory"] == srv.cache_dir
        assert re.fullmatch(r"\d+\.\d+\.\d+(\+g[0-9a-f]+)?", body["version"])
        assert body["torch_threads"] == serving.torch_threads_per_worker(2)  # 2 workers share the cores
    assert requests.get(srv.url + "/healthz", timeout=10).headers["Cache-Control"] == "no-store"

    # Dash debug is off: no dev-tools UI, no props check, no hot reload, no tracebacks
    page = requests.get(srv.url + "/", timeout=10).text
    config = json.loads(re.search(r'<script id="_dash-config" type="application/json">(.*?)</script>',
                                  page, re.S).group(1))
    assert config["ui"] is False and config["props_check"] is False and "hot_reload" not in config

    # one run, then every worker sees the same entry in the same directory
    client = DashClient.http(srv.url)
    tab = Session(client)
    before = {pid: body["cache"]["entries"] for pid, (_, body) in health.items()}
    tab.change({"text-input.value": TEXT, "run-button.n_clicks": 1}, trigger=["run-button.n_clicks"])
    assert not tab.errors and tab.values["run-store.data"]["request"]["text"] == TEXT
    deadline = time.monotonic() + 20  # a new run is stored just after the answer (write-behind)
    while True:
        health = _health_of_each_worker(srv, 2)
        entries = {pid: body["cache"]["entries"] for pid, (_, body) in health.items()}
        if min(entries.values()) == max(before.values()) + 1 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(set(entries.values())) == 1, entries  # one directory, one count
    assert min(entries.values()) == max(before.values()) + 1, (before, entries)
    assert os.path.isdir(os.path.join(srv.cache_dir, "callbacks")), "background results live beside the runs"
    assert "Traceback" not in srv.log_text(log_from)


def test_health_503_until_the_model_is_loaded(monkeypatch):
    from flask import Flask

    from models import loader
    from serving.health import register_health

    server = Flask("t")
    register_health(server)
    monkeypatch.setattr(loader, "loaded_names", lambda: [])
    r = server.test_client().get("/healthz")
    assert r.status_code == 503 and r.get_json()["status"] == "unavailable"
    monkeypatch.setattr(loader, "loaded_names", lambda: ["all-MiniLM-L6-v2"])
    r = server.test_client().get("/healthz")
    assert r.status_code == 200 and r.get_json()["model_loaded"] is True


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_background_job_is_polled_across_both_workers(shared_server):
    """A background callback (head importance) started through one worker and polled through
    new connections that land on either worker: they share the callback store and its signing
    secret, so the result arrives whichever worker answers."""
    import json as _json

    from dashboard import pruning_ids as P

    srv = shared_server
    log_from = srv.log_size()
    tab = Session(DashClient.http(srv.url))
    tab.change({"text-input.value": TEXT, "run-button.n_clicks": 1}, trigger=["run-button.n_clicks"])
    assert not tab.errors

    sess = requests.Session()
    sess.headers["Connection"] = "close"  # every poll is a new connection: either worker may take it
    client = DashClient.http(srv.url, session=sess)
    cb = client.callback_for(f"{P.IMPORTANCE}.data")
    assert cb.background
    status, data = client.call(cb, {"run-store.data": tab.values["run-store.data"],
                                    f"{P.IMPORTANCE_BUTTON}.n_clicks": 1}, [f"{P.IMPORTANCE_BUTTON}.n_clicks"],
                               timeout=150, poll=0.2)
    assert status == 200, data
    result = data["response"][P.IMPORTANCE]["data"]
    assert result["model"] == "all-MiniLM-L6-v2" and len(result["scores"]) == 6 and len(result["scores"][0]) == 12
    assert "background_callback_error" not in _json.dumps(data)
    assert "Traceback" not in srv.log_text(log_from)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_torch_threads_follow_the_workers_gunicorn_really_runs(gunicorn_factory):
    """`-w 1` on the command line (LocalGunicorn passes it) must give the one worker every core,
    not the share of the config file's default of 2 workers."""
    from serving import torch_threads_per_worker

    srv = gunicorn_factory(workers=1)
    health = _health_of_each_worker(srv, 1)
    (code, body), = health.values()
    assert code == 200 and body["torch_threads"] == torch_threads_per_worker(1)
