"""Memory of the gunicorn server: 1 vs 2 workers, preloaded (model loaded in the master, forked)
vs lazy (each worker imports the app and loads the model itself).

    python bench/memory.py            # prints a table and the ratios; bench/run_all.py calls measure()

Each configuration is started on a free loopback port with a fresh cache directory, every
worker runs one real model forward (so its arrays and allocator pools are touched as in
service), then PSS/USS/RSS of master + workers are summed (psutil, /proc/PID/smaps_rollup).
"""
from __future__ import annotations

import json
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.local import LocalGunicorn  # noqa: E402


def _touch_every_worker(srv: LocalGunicorn, warm) -> None:
    """Run `warm(srv)` until every worker pid has answered at least once (bounded)."""
    seen: set[int] = set()
    deadline = time.monotonic() + 120
    while set(srv.worker_pids()) - seen and time.monotonic() < deadline:
        seen.add(warm(srv))


def _warm_health(srv: LocalGunicorn) -> int:
    with urllib.request.urlopen(srv.url + "/healthz", timeout=30) as r:
        return json.loads(r.read())["pid"]


def warm_one_run(srv: LocalGunicorn) -> int:
    """One real run callback (a 200-token text) on one keep-alive connection; the worker's pid
    (asked on the same connection, which stays on the worker that accepted it)."""
    import requests

    from bench.engine import text_with_tokens
    from bench.client import DashClient

    with requests.Session() as sess:
        pid = sess.get(srv.url + "/healthz", timeout=30).json()["pid"]
        client = DashClient.http(srv.url, session=sess)
        cb = client.callback_for("run-store.data")
        text = text_with_tokens(200)
        status, _ = client.post(client.body(cb, {"text-input.value": text, "run-button.n_clicks": 1},
                                            ["run-button.n_clicks"]))
        assert status == 200, status
        again = sess.get(srv.url + "/healthz", timeout=30).json()["pid"]
    return pid if pid == again else again


def measure(configs=((1, True), (2, True), (1, False), (2, False)), warm=None, app="app:server",
            env=None) -> dict:
    """{(workers, preload): {"pss","uss","rss", "processes"}} in MiB, plus start seconds."""
    warm = warm or warm_one_run
    out = {}
    for workers, preload in configs:
        t0 = time.perf_counter()
        with LocalGunicorn(workers=workers, preload=preload, app=app, env=env, threads=2) as srv:
            started = time.perf_counter() - t0
            _touch_every_worker(srv, warm)
            time.sleep(0.5)
            mem = srv.memory()
            mem["start_s"] = started
            out[(workers, preload)] = mem
    return out


def report(res: dict) -> list[str]:
    lines = ["| workers | model loading | PSS total MiB | USS total MiB | RSS total MiB | start s |",
             "|---|---|---|---|---|---|"]
    for (w, pre), m in res.items():
        lines.append(f"| {w} | {'preload (master, fork)' if pre else 'lazy (per worker)'} | "
                     f"{m['pss']:.0f} | {m['uss']:.0f} | {m['rss']:.0f} | {m['start_s']:.1f} |")
    for pre in (True, False):
        if (1, pre) in res and (2, pre) in res:
            r = res[(2, pre)]["pss"] / res[(1, pre)]["pss"]
            lines.append(f"- {'preload' if pre else 'lazy'}: 2 workers / 1 worker PSS = {r:.2f}x "
                         f"(+{res[(2, pre)]['pss'] - res[(1, pre)]['pss']:.0f} MiB for the second worker)")
    return lines


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--app", default="app:server")
    ap.add_argument("--health-only", action="store_true", help="warm with /healthz only (no model run)")
    args = ap.parse_args()
    res = measure(app=args.app, warm=_warm_health if args.health_only else None)
    print("\n".join(report(res)))
