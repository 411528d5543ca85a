"""Background jobs (issue 12, finding 2) on a real gunicorn: capped per session and per machine,
run by a process that holds none of the web server's sockets, killed when the server stops, and
the port free for a restart at once.

One server, one model run, then jobs started the way dash-renderer starts them (the first POST of
a background callback) and left running: the pruning curves with the leave-one-head-out order
take minutes, so they are still running while the test looks at them; only one job runs at a
time (ATTN_MAX_JOBS=1), the others wait in the queue without using the CPU.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import time

import psutil
import pytest
import requests

from dashboard import pruning_ids as P
from bench.client import DashClient, Session
from bench.local import LocalGunicorn

pytestmark = [pytest.mark.server, pytest.mark.slow]

TEXT = "The cat sat on the mat because it was tired."


def start_job(client: DashClient, store: dict, n: int, *, long: bool = False):
    """POST the curves job as the renderer does; (cacheKey, job) handles. `long`: ablation plus 10
    random orders (about 2.5x the work), so the job outlives the checks made while it runs."""
    cb = client.callback_for(f"{P.CURVES}.data")
    values = {"run-store.data": store, f"{P.CURVES_BUTTON}.n_clicks": n,
              f"{P.ORDERS}.value": ["ablation", "random"] if long else ["ablation"],
              f"{P.SEEDS_INPUT}.value": 10 if long else 1}
    body = client.body(cb, values, [f"{P.CURVES_BUTTON}.n_clicks"])
    status, data = client.post(body, query={"endId": client.config().get("end_id")})
    assert status == 200 and "cacheKey" in data, (status, data)
    return body, data


def poll(client: DashClient, body: dict, handles: dict, timeout: float = 30.0):
    q = {"endId": client.config().get("end_id"), "cacheKey": handles["cacheKey"], "job": handles["job"]}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, data = client.post(body, query=q)
        if status != 200 or (isinstance(data, dict) and ("response" in data or "sideUpdate" in data)):
            return status, data
        time.sleep(0.2)
    return None, None


def job_processes(srv: LocalGunicorn) -> list[psutil.Process]:
    """Processes running a job: the children of the workers' forkservers (a forked job shares its
    forkserver's command line)."""
    out = []
    for p in srv.master.children(recursive=True):
        try:
            if "forkserver" in " ".join(p.cmdline()):
                out.extend(c for c in p.children() if c.status() != psutil.STATUS_ZOMBIE)
        except psutil.Error:
            continue
    return out


def wait_gone(pids: list[int], seconds: float) -> bool:
    def alive(pid):
        try:
            return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not any(alive(pid) for pid in pids):
            return True
        time.sleep(0.1)
    return False


def inet_fds(p: psutil.Process) -> list:
    try:
        return [c for c in p.net_connections(kind="inet")]
    except psutil.Error:
        return []


@pytest.mark.timeout(300)
def test_jobs_are_capped_hold_no_sockets_and_die_with_the_server(gunicorn_factory, tmp_path):
    env = {"ATTN_MAX_JOBS": "1", "ATTN_MAX_QUEUED_JOBS": "3", "ATTN_MAX_JOBS_PER_SESSION": "2"}
    srv = gunicorn_factory(workers=1, env=env)
    tab = Session(DashClient.http(srv.url))
    tab.change({"text-input.value": TEXT, "run-button.n_clicks": 1}, trigger=["run-button.n_clicks"])
    assert not tab.errors
    store = tab.values["run-store.data"]

    client = DashClient.http(srv.url)  # one browser session (its cookie)
    client.config()
    assert "attn_session" in client.session.cookies
    body1, h1 = start_job(client, store, 1, long=True)  # holds the one running slot while job 2 waits
    body2, h2 = start_job(client, store, 2)
    # a third job of the same session: refused with a message, nothing started
    body3, h3 = start_job(client, store, 3)
    status, data = poll(client, body3, h3)
    assert status == 200 and "already have 2 job(s)" in json.dumps(data), data

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(job_processes(srv)) < 2:
        time.sleep(0.2)
    jobs = job_processes(srv)
    assert len(jobs) == 2, [" ".join(p.cmdline()) for p in jobs]
    # no job holds a socket of the web server (listening or a client connection)
    for p in jobs:
        assert inet_fds(p) == [], (p.pid, inet_fds(p))
    # the second job waits for the one running slot and says so (its progress text)
    seen = ""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and "queued" not in seen:
        status, data = client.post(body2, query={"endId": client.config().get("end_id"), **h2})
        assert status == 200
        seen = json.dumps(data)
        time.sleep(0.3)
    assert "queued: 1 job(s) already running" in seen, seen

    # a forged job handle is refused by its signature; a pid that is not a job is never killed
    victim = psutil.Popen(["sleep", "60"])
    try:
        status, _ = client.post(body1, query={"endId": client.config().get("end_id"),
                                              "oldJob": str(victim.pid)})
        time.sleep(0.5)
        assert victim.is_running() and victim.status() != psutil.STATUS_ZOMBIE
    finally:
        victim.kill()
        victim.wait(5)

    # kill -9 of the worker that started them: its jobs go too (no orphan keeps computing)
    os.kill(srv.worker_pids()[0], signal.SIGKILL)
    assert wait_gone([p.pid for p in jobs], 15)
    srv.wait_ready(60)  # gunicorn forked a new worker
    client = DashClient.http(srv.url)
    client.config()
    start_job(client, store, 4)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not job_processes(srv):
        time.sleep(0.2)
    jobs = job_processes(srv)
    assert len(jobs) == 1

    # stop the server (SIGTERM, graceful): the jobs go with it and the port is free at once
    pids = [p.pid for p in jobs]
    port = srv.port
    srv.proc.send_signal(signal.SIGTERM)
    srv.proc.wait(40)
    assert wait_gone(pids, 10)
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))  # "Address already in use" with a job holding the socket
    again = LocalGunicorn(workers=1, cache_dir=tmp_path / "again", log_path=tmp_path / "again.log")
    again.port, again.url = port, f"http://127.0.0.1:{port}"
    try:
        again.start()
        assert requests.get(again.url + "/healthz", timeout=10).status_code == 200
    finally:
        again.stop()
