"""Faults under the real gunicorn server (loopback, bounded, everything stopped in finally):

* kill -9 of the worker that is running the model: gunicorn forks a replacement and the retried
  request succeeds with the right content;
* a cache entry truncated on disk is detected (checksum) and recomputed, never half-read;
* an unusable cache directory (not a directory / read-only / full) degrades to computing without
  the cache: the page works, the log has a warning, /healthz says "degraded".
"""
from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from bench.load import verify_cache
from bench.client import DashClient, Session, response_value
from bench.local import ROOT as ROOT_DIR, get_json

pytestmark = [pytest.mark.server, pytest.mark.slow]

LONG_WORDS = ("keeper lantern harbour village storm ferry winter council promise brochure mainland rain "
              "sugar daughter captain letter tide children baker ovens gull salt wind rocks ships").split()


def long_text(tag: str, words: int = 600) -> str:
    """An uncached text long enough to be cut at the model's 512 tokens (the slowest run)."""
    rng = np.random.default_rng(abs(hash(tag)) % 2**32)
    return tag + " " + " ".join(rng.choice(LONG_WORDS, size=words))


def run_body(client: DashClient, text: str, clicks: int = 1) -> dict:
    cb = client.callback_for("run-store.data")
    return client.body(cb, {"text-input.value": text, "run-button.n_clicks": clicks}, ["run-button.n_clicks"])


def _owner(srv, client_port: int) -> int | None:
    """The worker pid holding our TCP connection to the server."""
    for pid in srv.worker_pids():
        try:
            for c in psutil.Process(pid).net_connections(kind="tcp"):
                if c.laddr and c.laddr.port == srv.port and c.raddr and c.raddr.port == client_port:
                    return pid
        except psutil.Error:
            continue
    return None


def _cpu(pid: int) -> float:
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


def expected_summary(text: str) -> dict:
    from models import attention, loader, registry

    return attention.extract(loader.get_loaded(registry.DEFAULT_MODEL), text).summary()


@pytest.mark.timeout(240)
def test_kill_9_during_a_model_run_worker_respawns_and_retry_succeeds(shared_server):
    srv = shared_server
    client = DashClient.http(srv.url)
    text = long_text("kill-nine")
    body = json.dumps(run_body(client, text)).encode()
    before = set(srv.worker_pids())

    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
    conn.connect()
    local_port = conn.sock.getsockname()[1]
    conn.request("POST", "/_dash-update-component", body=body, headers={"Content-Type": "application/json"})
    owner, cpu0, deadline = None, 0.0, time.monotonic() + 20
    while time.monotonic() < deadline:  # find the worker serving us, then let it get into the model
        if owner is None:
            owner = _owner(srv, local_port)
            if owner is not None:
                cpu0 = _cpu(owner)
        elif _cpu(owner) - cpu0 >= 0.05:  # 50 ms of CPU: well past parsing, inside the run
            break
        time.sleep(0.005)
    assert owner is not None, "no worker picked up the request"
    os.kill(owner, signal.SIGKILL)
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError, http.client.IncompleteRead)):
        resp = conn.getresponse()
        resp.read()  # not reached with a status line: the worker died mid-request
    conn.close()

    t_kill = time.monotonic()
    while time.monotonic() - t_kill < 30:
        now = set(srv.worker_pids())
        if len(now) == 2 and owner not in now:
            break
        time.sleep(0.05)
    respawn_s = time.monotonic() - t_kill
    now = set(srv.worker_pids())
    assert owner not in now and len(now) == 2 and len(now - before) == 1, (before, now)
    print(f"\nworker {owner} killed; replacement {sorted(now - before)} up in {respawn_s:.2f} s")

    retry = DashClient.http(srv.url)  # the retry: a fresh connection, as a browser would open
    status, data = retry.post(run_body(retry, text, clicks=2))
    assert status == 200, (status, data)
    store = response_value(data, "run-store", "data")
    want = expected_summary(text)
    assert store["summary"]["source_tokens"] == want["source_tokens"] and len(want["source_tokens"]) == 512
    assert store["summary"]["blocks"] == want["blocks"] and store["summary"]["truncations"]
    heat = retry.callback_for("heatmap-payload.data")
    status, data = retry.post(retry.body(heat, {"run-store.data": store, "layer-dropdown.value": "0",
                                                "head-dropdown.value": "0"}, ["run-store.data"]))
    assert status == 200 and response_value(data, "heatmap-payload", "data")["matrix"]
    assert verify_cache(srv.cache_dir)["corrupt"] == 0
    assert get_json(srv.url + "/healthz")[0] == 200


@pytest.mark.timeout(240)
def test_truncated_cache_entry_is_recomputed(shared_server):
    srv = shared_server
    log_from = srv.log_size()
    text = long_text("truncate-me", words=150)
    tab = Session(DashClient.http(srv.url))
    tab.change({"text-input.value": text, "run-button.n_clicks": 1}, trigger=["run-button.n_clicks"])
    assert not tab.errors
    figure_before = tab.values["heatmap-payload.data"]
    entry = _entry_file(srv.cache_dir, text)
    files = [entry]
    for f in files:
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])

    # new workers (forked from the master) have no run in memory: the next read goes to disk
    old = set(srv.worker_pids())
    srv.master.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (set(srv.worker_pids()) & old or len(srv.worker_pids()) != 2):
        time.sleep(0.1)
    assert not set(srv.worker_pids()) & old, "workers were not replaced"

    tab.change({"layer-dropdown.value": tab.values["layer-dropdown.value"]})  # redraw from the run store (a head switch asks nothing)
    assert not tab.errors
    assert tab.values["heatmap-payload.data"] == figure_before
    log = srv.log_text(log_from)
    assert "discarding unreadable entry" in log and "Traceback" not in log
    check = verify_cache(srv.cache_dir)
    assert check["corrupt"] == 0 and check["runs"] >= 1  # recomputed and stored again


def _entry_file(cache_dir: str, text: str) -> Path:
    """The .val file holding the run of `text` (diskcache keeps its name in the Cache table)."""
    import sqlite3

    from models import loader, registry, service

    req = service.RunRequest.create(registry.DEFAULT_MODEL, text)
    key = service.request_key(req, loader.get_loaded(registry.DEFAULT_MODEL))
    deadline = time.monotonic() + 20  # the server stores a new run just after answering
    while True:
        with sqlite3.connect(os.path.join(cache_dir, "cache.db")) as db:
            row = db.execute("SELECT filename FROM Cache WHERE key = ?", (key,)).fetchone()
        if (row and row[0]) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert row and row[0], "the run was stored as a file of its own"
    return Path(cache_dir, row[0])


def _run_and_check_page(srv, text: str) -> Session:
    tab = Session(DashClient.http(srv.url))
    tab.change({"text-input.value": text, "run-button.n_clicks": 1}, trigger=["run-button.n_clicks"])
    assert not tab.errors, tab.errors
    assert tab.values["run-store.data"]["request"]["text"] == text
    assert tab.values["heatmap-payload.data"]["matrix"]
    assert not tab.values.get("status-alert.is_open"), tab.values.get("status-alert.children")
    # a second action on the same run works too (no cache to read it back from)
    tab.change({"head-dropdown.value": "0"})
    assert not tab.errors
    return tab


def _can_mount() -> bool:
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                            "mount -t tmpfs -o size=64k tmpfs /mnt"], capture_output=True, timeout=20)
    return probe.returncode == 0


MOUNT_WRAP = 'mount -t tmpfs -o "$1" tmpfs "$2" && shift 2 && exec "$@"'
FULL_BYTES = 2 * 2**20  # the database fits, a 200-token run (~11 MB) does not


def _mounted(mount_dir: Path, options: str) -> list[str]:
    """A command prefix that runs gunicorn in a private mount namespace with a tmpfs (options) at
    mount_dir; the mount disappears with the process. unshare and sh exec, so the pid is gunicorn's."""
    mount_dir.mkdir(parents=True, exist_ok=True)
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", MOUNT_WRAP, "sh", options, str(mount_dir)]


def _file_size_limit():
    """Without mount namespaces, 'full' is a file-size limit: writes past it fail with EFBIG
    (Python ignores SIGXFSZ), as they would with ENOSPC on a full disk."""
    import resource

    resource.setrlimit(resource.RLIMIT_FSIZE, (FULL_BYTES, FULL_BYTES))


@pytest.fixture(scope="module")
def degraded(tmp_path_factory):
    """Three servers whose cache directory is unusable, started side by side (saves minutes):
    "missing": a path under a regular file (no user, root included, can create it);
    "read-only": an empty read-only tmpfs; "full": a 2 MB tmpfs (or a 2 MB file-size limit)."""
    import threading

    from bench.local import LocalGunicorn

    from .conftest import TEST_APP, TEST_PATH

    base = tmp_path_factory.mktemp("degraded")
    env = {"PYTHONPATH": f"{ROOT_DIR}:{TEST_PATH}"} if TEST_PATH else None
    blocker = base / "not-a-dir"
    blocker.write_text("a file where the cache directory should be")
    mount = _can_mount()
    specs = {"missing": dict(cache_dir=blocker / "cache")}
    if mount:
        specs["read-only"] = dict(cache_dir=base / "ro", wrap=_mounted(base / "ro", "ro,size=1m"))
        specs["full"] = dict(cache_dir=base / "full", wrap=_mounted(base / "full", f"size={FULL_BYTES}"))
    else:
        specs["full"] = dict(cache_dir=base / "full", preexec_fn=_file_size_limit)
    servers = {name: LocalGunicorn(workers=2, app=TEST_APP, env=env, log_path=base / f"{name}.log", **kw)
               for name, kw in specs.items()}
    errors = {}

    def start(name):
        try:
            servers[name].start()
        except Exception as exc:  # reported by the test that needs this server
            errors[name] = exc

    threads = [threading.Thread(target=start, args=(n,)) for n in servers]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(180)
        yield servers, errors, mount
    finally:
        stoppers = [threading.Thread(target=srv.stop) for srv in servers.values()]
        for t in stoppers:
            t.start()
        for t in stoppers:
            t.join(60)
        from serving.redis_backend import _fallback_dir, callback_cache_dir

        for srv in servers.values():  # the shared temp fallback of the background-callback store
            shutil.rmtree(_fallback_dir(callback_cache_dir(srv.cache_dir)), ignore_errors=True)


def _server(degraded, name):
    servers, errors, mount = degraded
    if name not in servers:
        pytest.skip("no mount namespaces here (unshare/mount not permitted)")
    if name in errors:
        raise errors[name]
    return servers[name]


@pytest.mark.timeout(240)
def test_cache_dir_that_cannot_exist_degrades_to_no_cache(degraded):
    srv = _server(degraded, "missing")
    code, health = get_json(srv.url + "/healthz")
    assert code == 200 and health["status"] == "degraded" and health["cache"]["ok"] is False
    _run_and_check_page(srv, "The cache directory is unusable but the page still works.")
    log = srv.log_text()
    assert "WARNING" in log and "cannot open the cache directory" in log
    assert "Traceback" not in log


@pytest.mark.timeout(240)
def test_read_only_cache_dir_degrades_to_no_cache(degraded):
    srv = _server(degraded, "read-only")
    code, health = get_json(srv.url + "/healthz")
    assert code == 200 and health["status"] == "degraded"
    assert health["cache"]["ok"] is False and health["cache"]["reason"]  # e.g. "unable to open database file"
    _run_and_check_page(srv, "A read-only cache directory is no reason for an error page.")
    log = srv.log_text()
    assert "WARNING" in log and "Traceback" not in log


@pytest.mark.timeout(240)
def test_full_cache_dir_degrades_to_no_cache(degraded):
    srv = _server(degraded, "full")
    tab = _run_and_check_page(srv, " ".join(["A full disk must not break the page."] * 25))
    log = srv.log_text()
    assert ("No space left on device" in log or "File too large" in log) and "WARNING" in log
    assert "Traceback" not in log
    statuses = set()
    for _ in range(8):  # either worker may answer: the one that hit the full disk says so
        code, health = get_json(srv.url + "/healthz")
        assert code == 200
        statuses.add(health["status"])
    assert "degraded" in statuses
    assert tab.values["run-store.data"]["summary"]["source_tokens"]
