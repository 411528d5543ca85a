"""Hostile load (issue 12): honest clients' latency with and without one attacking client.

    python bench/hostile.py --seconds 60          # ~3 min: server start, two 60 s runs

One gunicorn (2 workers x 4 threads, the shipped gunicorn.conf.py) behind the shipped nginx
(deploy/nginx.conf, when /usr/sbin/nginx exists; --no-nginx to drive gunicorn directly), on
loopback. Two runs of `seconds` each, one after the other on the same server:

    baseline   7 honest clients (bench/load.py's mix: new texts, cached texts, head switches)
    attacked   the same 7 honest clients + 1 attacker sending issue 12's attacks in a loop:
               URL-writer fields of 4,000 characters (finding 1), background jobs as fast as
               it can and a forged 20,000-pair corpus (2), a run store claiming 4 million
               layers (3), a ~8 MB text (5), 10 connections trickling one header byte a second
               (6), deep nesting, outputs that are not the callback's, layers "²" and of 4,301
               digits (8)

The figure: the honest clients' p95 request latency attacked / baseline (target <= 2), plus
errors seen by honest clients and what the attacker got back (status counts per attack).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.load import CACHED_TEXTS, run_load  # noqa: E402
from bench.client import DashClient, Session  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NGINX = "/usr/sbin/nginx"


def nginx_temp_dirs(conf: str) -> tuple[str, str]:
    """nginx started as root runs its workers as `nobody`, which must write the temp directories
    (request bodies over 16 kB are buffered there): (conf with them in a fresh directory that
    `nobody` can reach, that directory; remove it when done)."""
    base = tempfile.mkdtemp(prefix="attn-nginx-")
    os.chmod(base, 0o755)
    for name in ("client_body", "proxy_temp", "fastcgi_temp", "uwsgi_temp", "scgi_temp"):
        os.mkdir(os.path.join(base, name))
        os.chmod(os.path.join(base, name), 0o777)
        conf = conf.replace(f"_temp_path {name};", f"_temp_path {os.path.join(base, name)};")
    return conf, base


def start_nginx(upstream_port: int, workdir: Path):
    from bench.local import free_port

    port = free_port()
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    conf = conf.replace("server 127.0.0.1:8050;", f"server 127.0.0.1:{upstream_port};")
    conf = conf.replace("listen 127.0.0.1:8080;", f"listen 127.0.0.1:{port};")
    conf, temp = nginx_temp_dirs(conf)
    (workdir / "nginx.conf").write_text("daemon off;\n" + conf)
    proc = subprocess.Popen([NGINX, "-c", str(workdir / "nginx.conf"), "-p", str(workdir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.05)
    proc.temp_dir = temp
    return proc, f"http://127.0.0.1:{port}"


class Attacker:
    """One client sending the attacks round-robin until `deadline`; counts statuses per attack."""

    def __init__(self, url: str, deadline: float):
        self.url, self.deadline = url, deadline
        self.results: dict = defaultdict(Counter)
        self.client = DashClient.http(url, timeout=60)
        self.tab = Session(self.client)
        self.tab.change({"text-input.value": CACHED_TEXTS[0], "run-button.n_clicks": 1},
                        trigger=["run-button.n_clicks"])
        self.store = self.tab.values["run-store.data"]
        self.n = 1

    def post(self, name: str, prop_id: str, values: dict, changed=None, query=None, raw=None):
        c = self.client
        cb = c.callback_for(prop_id)
        body = c.body(cb, {**self.tab.values, **values}, changed)
        try:
            status, _ = c.post(None if raw else body, query=query, raw_body=raw(body) if raw else None)
        except Exception as exc:  # noqa: BLE001 - a timeout is a result too
            status = type(exc).__name__
        self.results[name][str(status)] += 1

    def attacks(self):
        from dashboard import pruning_ids as P

        end = {"endId": self.client.config().get("end_id")}
        huge = "x" * (8 * 2**20 - 4096)
        forged = json.loads(json.dumps(self.store))
        forged["summary"]["blocks"][0].update(layers=4_000_000, heads=4_000_000)
        deep = "[" * 5000 + "]" * 5000
        self.n += 1
        return [
            ("long url fields (1)", lambda: self.post("long url fields (1)", "url-written-store.data",
                                                      {"block-dropdown.value": "b" * 4000, "layer-dropdown.value": "9" * 4000})),
            ("job spam (2)", lambda: self.post("job spam (2)", f"{P.IMPORTANCE}.data",
                                               {f"{P.IMPORTANCE_BUTTON}.n_clicks": self.n}, [f"{P.IMPORTANCE_BUTTON}.n_clicks"], end)),
            ("20,000-pair corpus (2)", lambda: self.post("20,000-pair corpus (2)", f"{P.CURVES}.data",
                                                         {f"{P.CURVES_BUTTON}.n_clicks": self.n,
                                                          f"{P.CORPUS}.data": {"name": "f", "pairs": [["a b", "c d"]] * 20_000}},
                                                         [f"{P.CURVES_BUTTON}.n_clicks"], end)),
            ("4M-layer store (3)", lambda: self.post("4M-layer store (3)", "layer-dropdown.options",
                                                     {"run-store.data": forged, "block-dropdown.value": "self",
                                                      "layer-dropdown.options": []}, ["block-dropdown.value"])),
            ("8 MB text (5)", lambda: self.post("8 MB text (5)", "run-store.data",
                                                {"text-input.value": huge, "run-button.n_clicks": self.n},
                                                ["run-button.n_clicks"])),
            ("deep nesting (8)", lambda: self.post("deep nesting (8)", "heatmap-payload.data", {},
                                                   raw=lambda b: json.dumps(b)[:-1] + ', "x": ' + deep + "}")),
            ("wrong outputs (8)", lambda: self.post("wrong outputs (8)", "grid-payload.data", {},
                                                    raw=lambda b: json.dumps({**b, "outputs": {"id": "x", "property": "y"}}))),
            ("layer ² / 4,301 digits (8)", lambda: self.post("layer ² / 4,301 digits (8)", "heatmap-payload.data",
                                                             {"layer-dropdown.value": "²" if self.n % 2 else "9" * 4301})),
        ]

    def slow_clients(self, n: int = 10):
        host, port = self.url.split("//")[1].split(":")

        def trickle():
            try:
                with socket.create_connection((host, int(port)), timeout=30) as s:
                    for ch in "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + "a" * 1000:
                        if time.monotonic() > self.deadline:
                            return
                        s.sendall(ch.encode())
                        time.sleep(1.0)
            except OSError:
                self.results["slow clients (6)"]["closed by server"] += 1

        for _ in range(n):
            threading.Thread(target=trickle, daemon=True).start()
        self.results["slow clients (6)"]["started"] += n

    def run(self):
        self.slow_clients()
        while time.monotonic() < self.deadline:
            for _name, attack in self.attacks():
                if time.monotonic() >= self.deadline:
                    break
                attack()
                self.n += 1


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--honest", type=int, default=7)
    ap.add_argument("--no-nginx", action="store_true")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args(argv)
    from bench.local import LocalGunicorn

    tmp = Path(tempfile.mkdtemp(prefix="attn-hostile-"))
    nginx = None
    try:
        with LocalGunicorn(workers=2, threads=4, cache_dir=tmp / "cache") as srv:
            url = srv.url
            if not args.no_nginx and os.access(NGINX, os.X_OK):
                nginx, url = start_nginx(srv.port, tmp)
            base = run_load(url, clients=args.honest, seconds=args.seconds, seed=1)
            attacker = Attacker(url, time.monotonic() + args.seconds + 5)
            t = threading.Thread(target=attacker.run, daemon=True)
            t.start()
            attacked = run_load(url, clients=args.honest, seconds=args.seconds, seed=2)
            t.join(30)
            code = DashClient.http(srv.url).get("/healthz")[0]
            restarts = srv.log_text().count("exited (replaced")
            tracebacks = srv.log_text().count("Traceback")
    finally:
        if nginx is not None:
            nginx.terminate()
            nginx.wait(10)
            shutil.rmtree(nginx.temp_dir, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)
    ratio = attacked["p95_ms"] / base["p95_ms"] if base["p95_ms"] else float("nan")
    res = {"proxy": "nginx" if nginx is not None else "none", "seconds": args.seconds, "honest_clients": args.honest,
           "baseline": {k: base[k] for k in ("requests", "p50_ms", "p95_ms", "errors")},
           "attacked": {k: attacked[k] for k in ("requests", "p50_ms", "p95_ms", "errors")},
           "p95_ratio": ratio, "attacker": {k: dict(v) for k, v in attacker.results.items()},
           "healthz_after": code, "worker_restarts": restarts, "server_log_tracebacks": tracebacks,
           "honest_error_samples": attacked["error_samples"][:5]}
    print(json.dumps(res, indent=1, default=str))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1, default=str))
    return 0 if ratio <= 2 and attacked["errors"] == 0 and code == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
