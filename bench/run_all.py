"""All benchmarks of issue 5 in one run; prints each figure next to what it is compared with.

    python bench/run_all.py                 # ~6-10 minutes on 2 cores; --quick for a smoke run
    python bench/run_all.py --only engine,http,browser,bertviz,memory

Writes bench/out/results.json (raw figures) and bench/out/results.md (the tables that go into
bench/RESULTS.md). Every comparison is measured side by side in this one run (interleaved
repetitions, medians). Servers are gunicorn on free 127.0.0.1 ports with temporary caches, and
are stopped when their part ends. BertViz is installed on demand into bench/out/venv-bertviz
(see bench/bertviz_size.py), never into .venv.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

OUT = ROOT / "bench" / "out"
UNIQUE = ("alpha", "beta", "gamma", "delta", "omega", "red", "blue", "green", "north", "south", "east",
          "west", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "cat",
          "dog", "fish", "bird", "tree", "rock", "sun", "moon", "star", "sky", "sea", "lake", "hill", "road")


def machine() -> dict:
    import psutil
    import torch

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "load_avg_at_start": os.getloadavg()}


# ---- HTTP: the run callback on the real server vs the bare forward ----------------------------
def http_runs(url: str, tokens: int, reps: int, settle: float = 0.3) -> dict:
    """Wall time of the page's run callback (one POST, cache miss / memory hit) on the server,
    interleaved with a bare transformers forward (with attentions) in this process."""
    from bench import engine
    from bench.client import DashClient

    client = DashClient.http(url)
    cb = client.callback_for("run-store.data")
    bare, cold, cached = [], [], []
    engine.bare_forward(engine.text_with_tokens(tokens))
    for i in range(reps):
        text = engine.text_with_tokens(tokens, base=f"{UNIQUE[i % len(UNIQUE)]} {i} " + engine.BASE_TEXT)
        assert engine.token_count(text) == tokens
        t0 = time.perf_counter()
        engine.bare_forward(text)
        bare.append(time.perf_counter() - t0)
        time.sleep(settle)  # this process's torch threads idle again before the server computes
        body = client.body(cb, {"text-input.value": text, "run-button.n_clicks": 2 * i + 1}, ["run-button.n_clicks"])
        t0 = time.perf_counter()
        status, data = client.post(body)
        cold.append(time.perf_counter() - t0)
        assert status == 200 and "run-store" in data["response"], (status, str(data)[:300])
        t0 = time.perf_counter()
        status, data = client.post(body)
        cached.append(time.perf_counter() - t0)
        assert status == 200
        # the server stores the run after answering (write-behind, ~50 ms at 200 tokens); let it
        # finish so each miss is measured on an idle server, like the bare forward it is compared with
        time.sleep(settle)
    ms = {k: 1000 * statistics.median(v) for k, v in (("bare", bare), ("cold", cold), ("cached", cached))}
    return {"tokens": tokens, "reps": reps, "ms": ms, "cold_over_bare": ms["cold"] / ms["bare"],
            "cached_over_cold": ms["cached"] / ms["cold"]}


def run_http(quick: bool) -> dict:
    from bench.local import LocalGunicorn

    with LocalGunicorn(workers=1, threads=4) as srv:  # one worker: the cached request hits its memory
        return {"17": http_runs(srv.url, 17, 5 if quick else 20), "200": http_runs(srv.url, 200, 3 if quick else 10)}


def run_browser(quick: bool) -> dict:
    from bench import browser
    from bench.local import LocalGunicorn

    with LocalGunicorn(workers=2) as srv:
        return {"head_switch": browser.head_switch(srv.url, tokens=200),
                "head_switch_drawn": browser.head_switch_drawn(srv.url, tokens=200),
                "hover": browser.hover(srv.url, tokens=128, cells=100)}


def run_bertviz(quick: bool) -> dict:
    from bench import bertviz_size, engine

    text = engine.text_with_tokens(200)
    OUT.mkdir(parents=True, exist_ok=True)
    html_path = OUT / "bertviz_head_view_200.html"
    res = bertviz_size.head_view_bytes(text, keep_html=str(html_path))
    raw = html_path.read_bytes()
    res["gzip_bytes"] = len(gzip.compress(raw, compresslevel=6))
    html_path.unlink()  # ~130 MB: not kept
    return res


def run_memory(quick: bool) -> dict:
    from bench import memory

    res = memory.measure()
    return {f"{w}-{'preload' if p else 'lazy'}": v for (w, p), v in res.items()}


def markdown(res: dict) -> str:
    L = []
    m = res["machine"]
    L.append(f"Run {res['started']} on {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, no GPU; "
             f"Python {m['python']}, torch {m['torch']} ({m['torch_threads']} threads); "
             f"load average at start {', '.join(f'{x:.1f}' for x in m['load_avg_at_start'])}.")
    e = res.get("engine")
    if e:
        L += ["", "### Cold run vs bare forward; cached vs cold (engine: models.service.get_run)", "",
              "| tokens | bare forward ms | cold (miss) ms | cold / bare | then stored (after the answer) ms | disk hit ms | disk / cold | memory hit ms | memory / cold |",
              "|---|---|---|---|---|---|---|---|---|"]
        for k in ("cold_17", "cold_200"):
            r = e[k]
            L.append(f"| {r['tokens']} | {r['ms']['bare']:.1f} | {r['ms']['cold']:.1f} | **{r['cold_over_bare']:.2f}x** | "
                     f"{r['ms'].get('store_after', float('nan')):.1f} | "
                     f"{r['ms']['disk']:.2f} | **{100 * r['disk_over_cold']:.1f} %** | {r['ms']['memory']:.3f} | "
                     f"{100 * r['memory_over_cold']:.2f} % |")
    h = res.get("http")
    if h:
        L += ["", "### Cold run vs bare forward; cached vs cold (HTTP: the page's run callback on gunicorn)", "",
              "| tokens | bare forward ms | run callback, miss ms | miss / bare | run callback, cached ms | cached / miss |",
              "|---|---|---|---|---|---|"]
        for k in ("17", "200"):
            r = h[k]
            L.append(f"| {r['tokens']} | {r['ms']['bare']:.1f} | {r['ms']['cold']:.1f} | **{r['cold_over_bare']:.2f}x** | "
                     f"{r['ms']['cached']:.1f} | **{100 * r['cached_over_cold']:.1f} %** |")
    b, bv = res.get("browser"), res.get("bertviz")
    if b and bv:
        hs = b["head_switch"]
        L += ["", "### Bytes for one head switch (200 tokens) vs BertViz head_view", "",
              "| | bytes | vs BertViz HTML |", "|---|---|---|",
              f"| BertViz head_view HTML, {bv['tokens']} tokens | {bv['bytes']:,} | 100 % |",
              f"| BertViz HTML gzip-compressed | {bv['gzip_bytes']:,} | {100 * bv['gzip_bytes'] / bv['bytes']:.2f} % |",
              f"| head switch: received by Chromium (transferSize, {hs['requests']} requests) | {hs['transfer_bytes']:,} | "
              f"**{100 * hs['transfer_bytes'] / bv['bytes']:.3f} %** |",
              f"| head switch: decoded JSON | {hs['decoded_body_bytes']:,} | {100 * hs['decoded_body_bytes'] / bv['bytes']:.3f} % |",
              f"| head switch received vs BertViz gzip | | {100 * hs['transfer_bytes'] / bv['gzip_bytes']:.2f} % |"]
    if b:
        hv = b["hover"]
        L += ["", "### Hover in Chromium", "",
              f"- {hv['cells_hovered']} heatmap cells hovered with the real mouse ({hv['hovers_seen_by_page']} reached the "
              f"page's hover state): **{hv['server_requests']} server requests**.",
              f"- applying the highlight at {hv['matrix']}: synchronous part median "
              f"{hv['apply_sync_ms']['median']:.1f} ms (p95 {hv['apply_sync_ms']['p95']:.1f}, max {hv['apply_sync_ms']['max']:.1f}); "
              f"until Plotly.relayout has drawn: median **{hv['apply_until_drawn_ms']['median']:.1f} ms** "
              f"(p95 {hv['apply_until_drawn_ms']['p95']:.1f}, max {hv['apply_until_drawn_ms']['max']:.1f})."]
    if e:
        i = e["importance"]
        L += ["", "### Head importance vs one forward+backward vs leave-one-out ablation", "",
              f"{i['pairs']} paraphrase pairs, all 72 heads:", "",
              "| | ms | ratio |", "|---|---|---|",
              f"| one forward+backward (bare model, same contrastive loss, same pairs) | {i['ms']['fwd_bwd']:.0f} | 1 |",
              f"| importance for all heads (gate gradients) | {i['ms']['importance']:.0f} | **{i['importance_over_fwd_bwd']:.2f}x** |",
              f"| leave-one-out ablation (73 evaluations) | {i['ms']['ablation']:.0f} | **{i['ms']['ablation'] / i['ms']['fwd_bwd']:.1f}x** "
              f"({i['ablation_over_importance']:.0f}x importance) |",
              "", (f"Spearman over the 72 heads: |gradient| vs |ablation Δloss| "
                   f"{i['spearman_abs_grad_vs_abs_ablation']:.2f}; signed Taylor estimate -gradient vs "
                   f"ablation Δloss {i['spearman_taylor_vs_ablation']:.2f}; importance vs signed Δloss "
                   f"{i['spearman_importance_vs_signed_ablation']:.2f}.")]
        p = e["pruning"]
        L += ["", "### Physically pruned (50 % of heads) vs full model", "",
              f"{p['heads_kept']}/{p['heads_total']} heads kept (least important removed). Parameters "
              f"{p['params_pruned']:,} vs {p['params_full']:,} ({100 * p['params_ratio']:.1f} %); attention parameters "
              f"{100 * p['attention_params_ratio']:.1f} %.", "",
              "| input | full ms | pruned ms | pruned / full |", "|---|---|---|---|"]
        for name, v in p["ms"].items():
            L.append(f"| {name} | {v['full']:.1f} | {v['pruned']:.1f} | **{v['pruned_over_full']:.2f}x** |")
    mem = res.get("memory")
    if mem:
        L += ["", "### Memory of gunicorn: 2 workers vs 1", "",
              "| workers | model loading | PSS MiB (total) | USS MiB (total) | RSS MiB (sum) |", "|---|---|---|---|---|"]
        for k, v in mem.items():
            w, mode = k.split("-")
            L.append(f"| {w} | {mode} | {v['pss']:.0f} | {v['uss']:.0f} | {v['rss']:.0f} |")
        for mode in ("preload", "lazy"):
            if f"1-{mode}" in mem and f"2-{mode}" in mem:
                a, b2 = mem[f"1-{mode}"]["pss"], mem[f"2-{mode}"]["pss"]
                L.append(f"\n{mode}: 2 workers / 1 worker = **{b2 / a:.2f}x** PSS (+{b2 - a:.0f} MiB for the second worker)")
    return "\n".join(L)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default="engine,http,browser,bertviz,memory")
    args = ap.parse_args(argv)
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    res = {"started": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine()}
    for part in parts:
        t0 = time.perf_counter()
        print(f"== {part} ...", file=sys.stderr, flush=True)
        if part == "engine":
            from bench import engine

            res["engine"] = engine.run(quick=args.quick)
        elif part == "http":
            res["http"] = run_http(args.quick)
        elif part == "browser":
            res["browser"] = run_browser(args.quick)
        elif part == "bertviz":
            res["bertviz"] = run_bertviz(args.quick)
        elif part == "memory":
            res["memory"] = run_memory(args.quick)
        else:
            ap.error(f"unknown part {part}")
        print(f"== {part} done in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    res["machine"]["load_avg_at_end"] = os.getloadavg()
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "results.json").write_text(json.dumps(res, indent=1, default=str))
    md = markdown(res)
    (OUT / "results.md").write_text(md + "\n")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
