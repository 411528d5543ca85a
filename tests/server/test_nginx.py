"""Slow clients (issue 12, finding 6) behind the shipped front proxy, deploy/nginx.conf.

Ten connections that send one header byte every second (what held all of gunicorn's worker
threads and left /healthz unanswered for 48 s) go to nginx, which reads whole requests before
passing them on: /healthz through nginx still answers at once, with the public view only.
nginx is the Debian package (scripts/test.sh installs it).
"""
from __future__ import annotations

import re
import shutil
import socket
import subprocess
import threading
import time

import pytest
import requests

from bench.local import ROOT, free_port

pytestmark = [pytest.mark.server, pytest.mark.slow]

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


@pytest.fixture
def proxy(shared_server, tmp_path):
    if not shutil.which("nginx") and not (tmp_path / NGINX).exists():
        pytest.fail("nginx is missing: apt-get install nginx-light (scripts/test.sh does it)", pytrace=False)
    port = free_port()
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    conf = conf.replace("server 127.0.0.1:8050;", f"server 127.0.0.1:{shared_server.port};")
    conf = conf.replace("listen 127.0.0.1:8080;", f"listen 127.0.0.1:{port};")
    conf = re.sub(r"client_header_timeout \d+s;", "client_header_timeout 10s;", conf)
    from bench.hostile import nginx_temp_dirs

    conf, temp = nginx_temp_dirs(conf)  # the workers (user nobody when started as root) buffer bodies there
    (tmp_path / "nginx.conf").write_text("daemon off;\n" + conf)
    proc = subprocess.Popen([NGINX, "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode()
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.timeout(120)
def test_slow_clients_do_not_block_healthz_behind_nginx(proxy):
    stop = threading.Event()
    host = proxy.split("//")[1]

    def slow_client():
        try:
            with socket.create_connection(tuple(host.split(":")), timeout=30) as s:
                s.settimeout(30)
                for ch in "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + "a" * 100:
                    if stop.is_set():
                        return
                    s.sendall(ch.encode())
                    time.sleep(1.0)
        except OSError:
            return

    threads = [threading.Thread(target=slow_client, daemon=True) for _ in range(10)]
    for t in threads:
        t.start()
    try:
        time.sleep(3)  # the slow clients are connected and trickling
        for _ in range(5):
            t0 = time.monotonic()
            r = requests.get(proxy + "/healthz", timeout=10)
            assert r.status_code == 200 and time.monotonic() - t0 < 5
            assert set(r.json()) == {"status", "model_loaded", "version"}  # through a proxy: public view
            time.sleep(0.5)
        r = requests.get(proxy + "/", timeout=10)
        assert r.status_code == 200 and r.headers["X-Frame-Options"] == "DENY"
        # a body nginx buffers to disk (> 16 kB) reaches the app: a 400 from the app's guard
        r = requests.post(proxy + "/_dash-update-component", data="[" * 20_000 + "]" * 20_000,
                          headers={"Content-Type": "application/json"}, timeout=30)
        assert r.status_code == 400 and "nests" in r.text
    finally:
        stop.set()
