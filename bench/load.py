"""Load run: N client threads replay real callback requests against gunicorn on loopback.

    python bench/load.py --seconds 60 --clients 8 --workers 2      (scripts/load.sh)

Each client is one browser tab without the browser (bench.client.Session): it sends exactly
the `_dash-update-component` requests dash-renderer sends, built from the app's own callback
map, and follows the cascade (run -> heatmap, grid, overview, inspector, url). Actions, drawn at
random with a fixed seed per client:

    run_new      a text never seen before (cache miss: the model runs)     20 %
    run_cached   one of a few texts run during warm-up (cache hit)         30 %
    switch_head  another layer/head of the tab's current run               50 %

An error is a non-200/204 answer, a transport error, or a callback that answered with the
page's generic "Something went wrong" message. After the run every cache entry on disk is
decoded and checked (corrupt entries counted). Bounded: the run stops after `seconds` (and
after `max_requests`), each request has a timeout, the server only listens on 127.0.0.1.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.client import DashClient, Session  # noqa: E402

WORDS = ("the river keeper lantern quietly old harbour ship morning wind over village baker children "
         "tide captain letter daughter inland light stairs council storm ferry winter promise sugar rain "
         "bright small heavy green stone bridge market song window garden road mountain cloud silver "
         "paper clock engine station teacher student doctor music evening dream story table chair").split()
CACHED_TEXTS = [
    "The cat sat on the mat because it was tired.",
    "A lighthouse keeper climbed the stairs every evening to light the lamp.",
    "Stock markets fell sharply after the announcement, then recovered by the afternoon.",
    "She said that the book on the shelf, which her grandmother had written, was never published.",
]
MIX = (("run_new", 0.2), ("run_cached", 0.3), ("switch_head", 0.5))
GENERIC_ERROR = "Something went wrong"

# component ids (dashboard/ids.py)
try:
    from dashboard import ids as _ids

    TEXT, RUN_BUTTON, LAYER, HEAD, STATUS, RUN = (_ids.TEXT, _ids.RUN_BUTTON, _ids.LAYER, _ids.HEAD,
                                                   _ids.STATUS, _ids.RUN)
except ImportError:  # pragma: no cover - the page is part of the repo
    TEXT, RUN_BUTTON, LAYER, HEAD, STATUS, RUN = ("text-input", "run-button", "layer-dropdown",
                                                   "head-dropdown", "status-alert", "run-store")


def new_text(rng: random.Random, tag: str, words: int | None = None) -> str:
    """A text never run before: a unique tag and `words` random one-token words (8-40 by default)."""
    n = rng.randint(8, 40) if words is None else words
    return f"{tag} " + " ".join(rng.choice(WORDS) for _ in range(n)) + "."


@dataclass
class Stats:
    latencies: list = field(default_factory=list)  # seconds per HTTP request
    actions: dict = field(default_factory=dict)  # action -> [seconds per action]
    errors: list = field(default_factory=list)
    requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    by_output: dict = field(default_factory=dict)  # callback (first output id) -> [seconds]

    def add(self, action: str, seconds: float, calls: list, errors: list) -> None:
        with self.lock:
            self.actions.setdefault(action, []).append(seconds)
            for out, status, _, sec in calls:
                self.requests += 1
                self.latencies.append(sec)
                name = str(out).strip(".").split("...")[0].split("@")[0][:40]
                self.by_output.setdefault(name, []).append(sec)
            self.errors.extend(errors)


def _run(session: Session, text: str, clicks: list) -> tuple[list, list]:
    clicks[0] += 1
    calls = session.change({f"{TEXT}.value": text, f"{RUN_BUTTON}.n_clicks": clicks[0]},
                           trigger=[f"{RUN_BUTTON}.n_clicks"])
    return calls, _errors(session, calls)


def _errors(session: Session, calls: list) -> list:
    errs = [(out, status) for out, status, _, _ in calls if status not in (200, 204)]
    errs += [(o, s, str(d)[:200]) for o, s, d in session.errors]
    session.errors.clear()
    msg = session.values.get(f"{STATUS}.children")
    if isinstance(msg, str) and GENERIC_ERROR in msg:
        errs.append(("status", msg[:200]))
        session.values[f"{STATUS}.children"] = None
    return errs


def client_loop(idx: int, template: DashClient, base_url: str, stats: Stats, deadline: float,
                max_requests: int, seed: int, new_words: int | None = None) -> None:
    import requests

    rng = random.Random(seed * 1000 + idx)
    sess = requests.Session()
    client = DashClient.http(base_url, timeout=60, session=sess).share_page(template)
    tab = Session(client)
    clicks = [0]
    try:
        calls, errs = _run(tab, rng.choice(CACHED_TEXTS), clicks)
        stats.add("run_cached", sum(c[3] for c in calls), calls, errs)
    except Exception as exc:  # transport errors count, the client goes on
        stats.add("run_cached", 0.0, [], [("exception", repr(exc)[:200])])
    n = 0
    while new_words and time.monotonic() < deadline and stats.requests < max_requests:
        # every action a NEW long text: Run, then every serverside callback the page fires after it
        # (heatmap, grid, overview, inspector, text view, pruning card, research card, URL ...)
        t0 = time.perf_counter()
        try:
            calls, errs = _run(tab, new_text(rng, f"c{idx}-{n}", new_words), clicks)
        except Exception as exc:
            calls, errs = [], [("exception", repr(exc)[:200])]
        stats.add("run_new", time.perf_counter() - t0, calls, errs)
        n += 1
    while time.monotonic() < deadline and stats.requests < max_requests:
        r = rng.random()
        action = "switch_head"
        acc = 0.0
        for name, share in MIX:
            acc += share
            if r < acc:
                action = name
                break
        t0 = time.perf_counter()
        try:
            if action == "run_new":
                calls, errs = _run(tab, new_text(rng, f"c{idx}-{n}"), clicks)
            elif action == "run_cached":
                calls, errs = _run(tab, rng.choice(CACHED_TEXTS), clicks)
            else:
                layers = [o["value"] for o in tab.values.get(f"{LAYER}.options") or []] or ["0"]
                heads = [o["value"] for o in tab.values.get(f"{HEAD}.options") or []] or ["0"]
                calls = tab.change({f"{LAYER}.value": rng.choice(layers), f"{HEAD}.value": rng.choice(heads)})
                errs = _errors(tab, calls)
        except Exception as exc:
            calls, errs = [], [("exception", repr(exc)[:200])]
        stats.add(action, time.perf_counter() - t0, calls, errs)
        n += 1
    sess.close()


def verify_cache(directory: str) -> dict:
    """Decode every entry of the run cache directory: {"entries", "runs", "json", "corrupt"}."""
    import diskcache

    from models import cache

    out = {"entries": 0, "runs": 0, "json": 0, "corrupt": 0, "corrupt_keys": []}
    if not os.path.isdir(directory):
        return out
    dc = diskcache.Cache(directory, disk=cache._BytesOnlyDisk)
    try:
        for key in list(dc.iterkeys()):
            out["entries"] += 1
            try:
                raw = dc.get(key)
            except Exception:
                raw = None
            if raw is None:  # evicted between listing and reading
                out["entries"] -= 1
                continue
            try:
                cache.decode_run(raw)
                out["runs"] += 1
                continue
            except cache.CorruptEntry:
                pass
            try:
                cache.decode_json(raw)
                out["json"] += 1
            except cache.CorruptEntry:
                out["corrupt"] += 1
                out["corrupt_keys"].append(key)
    finally:
        dc.close()
    return out


def _written(srv) -> int:
    """Bytes the server's processes (master, workers, job runners) have caused to be written to
    storage so far (/proc/<pid>/io write_bytes, via psutil); a process that exited takes its count
    with it, so a restart during the run undercounts."""
    import psutil

    total = 0
    try:
        procs = [srv.master] + srv.master.children(recursive=True)
    except psutil.Error:
        return 0
    for p in procs:
        try:
            total += p.io_counters().write_bytes
        except psutil.Error:
            pass
    return total


def _dir_bytes(directory: str) -> int:
    total = 0
    for root, _, files in os.walk(directory):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


def percentile(xs: list, p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    k = (len(xs) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def run_load(base_url: str, *, clients: int = 8, seconds: float = 60.0, max_requests: int = 100_000,
             seed: int = 0, new_words: int | None = None) -> dict:
    """Drive an already running server; returns the figures (see report())."""
    template = DashClient.http(base_url)
    template.dependencies(), template.layout(), template.config()
    # warm-up: the cached texts exist before the clock starts
    warm = Session(DashClient.http(base_url).share_page(template))
    for i, text in enumerate(CACHED_TEXTS):
        warm.change({f"{TEXT}.value": text, f"{RUN_BUTTON}.n_clicks": i + 1}, trigger=[f"{RUN_BUTTON}.n_clicks"])
    stats = Stats()
    t0 = time.monotonic()
    deadline = t0 + seconds
    threads = [threading.Thread(target=client_loop, daemon=True,
                                args=(i, template, base_url, stats, deadline, max_requests, seed, new_words))
               for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + 120)
    elapsed = time.monotonic() - t0
    lat = stats.latencies
    return {
        "clients": clients, "seconds": elapsed, "requests": stats.requests,
        "requests_per_s": stats.requests / elapsed if elapsed else 0.0,
        "p50_ms": 1000 * percentile(lat, 50), "p95_ms": 1000 * percentile(lat, 95),
        "max_ms": 1000 * max(lat) if lat else float("nan"),
        "actions": {a: {"count": len(v), "p50_ms": 1000 * percentile(v, 50), "p95_ms": 1000 * percentile(v, 95)}
                    for a, v in stats.actions.items()},
        "callbacks": {o: {"count": len(v), "p50_ms": 1000 * percentile(v, 50), "p95_ms": 1000 * percentile(v, 95),
                          "total_s": sum(v)} for o, v in stats.by_output.items()},
        "errors": len(stats.errors), "error_samples": stats.errors[:10],
        "hung_clients": sum(t.is_alive() for t in threads),
    }


def report(res: dict) -> str:
    lines = [f"{res['clients']} clients, {res['seconds']:.1f} s: {res['requests']} callback requests, "
             f"{res['requests_per_s']:.1f} req/s, p50 {res['p50_ms']:.0f} ms, p95 {res['p95_ms']:.0f} ms, "
             f"max {res['max_ms']:.0f} ms, errors {res['errors']}"]
    for a, v in sorted(res["actions"].items()):
        lines.append(f"  {a:12s} {v['count']:5d} actions, p50 {v['p50_ms']:.0f} ms, p95 {v['p95_ms']:.0f} ms")
    slow = sorted(res.get("callbacks", {}).items(), key=lambda kv: -kv[1]["total_s"])[:8]
    if slow:
        lines.append("  callbacks by total time: " + "; ".join(
            f"{o} x{v['count']} p50 {v['p50_ms']:.0f} ms p95 {v['p95_ms']:.0f} ms" for o, v in slow))
    if "disk" in res:
        d = res["disk"]
        lines.append(f"  disk: {d['write_mb_per_min']:.1f} MB written per minute by the server's processes "
                     f"({d['write_bytes']} B in {d['seconds']:.1f} s); cache directory {d['cache_dir_mb']:.1f} MB")
    if "cache" in res:
        c = res["cache"]
        lines.append(f"  cache: {c['entries']} entries ({c['runs']} runs, {c['json']} JSON), corrupt {c['corrupt']}")
    if res.get("error_samples"):
        lines.append("  errors: " + json.dumps(res["error_samples"])[:1500])
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--url", help="drive a server that is already running (loopback) instead")
    ap.add_argument("--json", help="also write the figures to this file")
    ap.add_argument("--new-texts", type=int, default=0, metavar="WORDS",
                    help="every action runs a NEW text of WORDS one-token words (e.g. 500) with the "
                         "page's full callback cascade (default: the mixed run/cached/switch load)")
    args = ap.parse_args(argv)
    new_words = args.new_texts or None
    if args.url:
        if not args.url.startswith(("http://127.", "http://localhost", "http://[::1]")):
            ap.error("--url must be a loopback address")
        res = run_load(args.url, clients=args.clients, seconds=args.seconds, new_words=new_words)
    else:
        from bench.local import LocalGunicorn

        with LocalGunicorn(workers=args.workers, threads=args.threads) as srv:
            before, t0 = _written(srv), time.monotonic()
            res = run_load(srv.url, clients=args.clients, seconds=args.seconds, new_words=new_words)
            after, dt = _written(srv), time.monotonic() - t0
            res["disk"] = {"write_bytes": after - before, "seconds": dt,
                           "write_mb_per_min": (after - before) / 2**20 / (dt / 60),
                           "cache_dir_mb": _dir_bytes(srv.cache_dir) / 2**20}
            res["cache"] = verify_cache(srv.cache_dir)
            res["workers"] = args.workers
            res["worker_restarts"] = srv.log_text().count("exited (replaced")
    print(report(res))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1, default=str))
    ok = res["errors"] == 0 and res.get("cache", {}).get("corrupt", 0) == 0 and not res["hung_clients"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
