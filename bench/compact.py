"""Compact capture benchmarks (issue 11): runs that grow with the text, not its square.

    python bench/compact.py [--only minilm,gpt2,llama,switch] [--reps N]

    minilm   all-MiniLM-L6-v2 at 200 and 512 tokens: bytes on disk of a run (the cache's blob),
             cold (cache miss) vs a bare transformers forward with output_attentions, disk hit and
             memory hit vs cold (bench/engine.cold_cached)
    gpt2     a GPT-2-small-shaped random model (12 layers x 12 heads, d 768) built from a config,
             1,024 tokens: bytes on disk; cold (capture + check, every head rebuilt) vs a bare eager
             forward of the same model object (transformers' own "eager" attention, no capture),
             interleaved
    llama    a Llama-shaped 1B random model (16 layers x 32 heads, 8 kv heads, hidden 2,048,
             intermediate 8,192, bfloat16 weights: 2 GB) at 2,048 tokens, in a subprocess: peak RSS
             of that process (ru_maxrss), bytes on disk, cold vs bare eager forward (interleaved)
    switch   the heatmap's answer to a head switch at 2,048 tokens (tiny long-context Llama): bytes
             of the callback's JSON response (what the browser receives before gzip) and gzipped

Timings are medians of interleaved repetitions (bare, cold, bare, cold ...). Writes
bench/out/compact.json and prints a table.
"""
from __future__ import annotations

import argparse
import gc
import gzip
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
OUT = ROOT / "bench" / "out"
WORDS = ("alpha beta gamma delta red blue green north south east west one two three four five six seven "
         "eight nine ten cat dog fish bird tree rock sun moon star sky sea lake hill road").split()


def _text(tokenizer, n: int) -> str:
    """One-token words joined so that the tokenizer gives exactly n tokens ([CLS]/[SEP] included)."""
    words = [w for w in WORDS if len(tokenizer(w, add_special_tokens=False)["input_ids"]) == 1]
    special = len(tokenizer("a")["input_ids"]) - 1
    text = " ".join(words[i % len(words)] for i in range(n - special))
    assert len(tokenizer(text)["input_ids"]) == n
    return text


def _set_impl(model, impl: str) -> None:
    model.config._attn_implementation = impl
    for sub in model.modules():
        cfg = getattr(sub, "config", None)
        if cfg is not None and hasattr(cfg, "_attn_implementation"):
            cfg._attn_implementation = impl


def _blob_bytes(run) -> int:
    from models import cache

    return len(cache.encode_run(*run.to_payload()))


def cold_vs_bare(loaded, text: str, reps: int) -> dict:
    """Median seconds of a bare eager forward and of attention.extract (cold capture), interleaved."""
    import torch

    from models import attention

    inputs, *_ = attention.forward_inputs(loaded, text, None, loaded.max_tokens)
    inputs = {k: v for k, v in inputs.items() if k != "labels"}
    t = {"bare": [], "cold": [], "bare_cpu": [], "cold_cpu": []}
    run = None
    load = [os.getloadavg()[0]]
    for i in range(reps + 1):  # the first round warms both paths and is not counted
        _set_impl(loaded.model, "eager")
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        with torch.inference_mode():
            loaded.model(**inputs)
        bare, bare_cpu = time.perf_counter() - t0, time.process_time() - c0
        _set_impl(loaded.model, "dashboard")
        run = None
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        run = attention.extract(loaded, text)
        cold, cold_cpu = time.perf_counter() - t0, time.process_time() - c0
        if i or reps == 0:
            t["bare"].append(bare)
            t["cold"].append(cold)
            t["bare_cpu"].append(bare_cpu)
            t["cold_cpu"].append(cold_cpu)
        load.append(os.getloadavg()[0])
    ms = {k: 1000 * statistics.median(v) for k, v in t.items()}
    # per round: wall ratio and CPU ratio (process CPU time, all torch threads): the CPU ratio
    # is the work added and barely moves with other processes' load; the wall ratio is the target
    rounds = [{"wall": c / b, "cpu": cc / bc} for b, c, bc, cc in
              zip(t["bare"], t["cold"], t["bare_cpu"], t["cold_cpu"])]
    return {"tokens": len(run.source_tokens), "ms": ms, "cold_over_bare": ms["cold"] / ms["bare"],
            "cold_over_bare_cpu": ms["cold_cpu"] / ms["bare_cpu"], "rounds": rounds,
            "torch_threads": torch.get_num_threads(), "loadavg_1min": load,
            "disk_mb": _blob_bytes(run) / 2**20, "modes": sorted(set(run.main.modes)), "reps": reps}, run


def bench_minilm(reps: int) -> dict:
    """engine.cold_cached (bare forward WITH output_attentions, the issue-5 definition; disk and
    memory hits), plus this module's cold_vs_bare (bare eager forward without output_attentions;
    wall and CPU ratios per round) on the same text."""
    from bench import engine
    from models import loader

    out = {}
    for n in (200, 512):
        out[str(n)] = engine.cold_cached(n, reps)
        loaded = loader.get_loaded(engine.MODEL)
        out[str(n)]["vs_bare_eager"], _ = cold_vs_bare(loaded, engine.text_with_tokens(n), max(reps, 5))
    return out


def bench_gpt2(reps: int) -> dict:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from models import loader

    tok = loader.get_loaded("all-MiniLM-L6-v2").tokenizer
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=1024, n_embd=768, n_layer=12, n_head=12))
    loaded = loader.wrap("bench-gpt2-small", model, tok, fingerprint="bench-gpt2-small")
    out, _ = cold_vs_bare(loaded, _text(tok, 1024), reps)
    out["old_disk_mb"] = 12 * 12 * 1024 * 1024 * 2 * 2 / 2**20  # float16 weights + scores, every head
    return out


def bench_llama_child(reps: int) -> dict:
    """Runs in its own process (peak RSS is the process's)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from models import loader

    tok = loader.get_loaded("all-MiniLM-L6-v2").tokenizer
    torch.manual_seed(0)
    cfg = AutoConfig.for_model("llama", vocab_size=len(tok), hidden_size=2048, intermediate_size=8192,
                               num_hidden_layers=16, num_attention_heads=32, num_key_value_heads=8,
                               max_position_embeddings=4096, tie_word_embeddings=True,
                               architectures=["LlamaForCausalLM"])
    t0 = time.perf_counter()
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
    build_s = time.perf_counter() - t0
    params = sum(p.numel() for p in model.parameters())
    loaded = loader.wrap("bench-llama-1b", model, tok, fingerprint="bench-llama-1b")
    rss_model = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # GiB (ru_maxrss is KiB)
    if reps < 0:  # peak RSS of one captured run alone (no bare forward in this process)
        from models import attention

        t0 = time.perf_counter()
        run = attention.extract(loaded, _text(tok, 2048))
        return {"tokens": len(run.source_tokens), "cold_ms": 1000 * (time.perf_counter() - t0),
                "modes": sorted(set(run.main.modes)), "disk_mb": _blob_bytes(run) / 2**20,
                "peak_rss_gib_after_build": rss_model,
                "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}
    out, run = cold_vs_bare(loaded, _text(tok, 2048), reps)
    out.update(params=params, dtype="bfloat16", build_s=build_s, peak_rss_gib_after_build=rss_model,
               peak_rss_gib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)
    return out


THREADS = 0  # --threads, passed on to the Llama subprocess


def bench_llama(reps: int) -> dict:
    """reps >= 0: cold vs bare interleaved (peak RSS of both); reps -1: the captured run alone."""
    cmd = [sys.executable, __file__, "--child-llama", "--reps", str(reps)] + (
        ["--threads", str(THREADS)] if THREADS else [])
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, cwd=ROOT)
    if res.returncode != 0:
        return {"error": res.stderr[-2000:]}
    return json.loads(res.stdout.strip().splitlines()[-1])


def bench_switch() -> dict:
    """The heatmap callback's answer when the browser asks for another head at 2,048 tokens."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from dashboard import cards
    from services import panels
    from models import loader, service

    tok = loader.get_loaded("all-MiniLM-L6-v2").tokenizer
    torch.manual_seed(5)
    cfg = AutoConfig.for_model("llama", vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                               num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                               max_position_embeddings=4096, architectures=["LlamaForCausalLM"])
    loaded = loader.wrap("bench-long", AutoModelForCausalLM.from_config(cfg), tok, fingerprint="bench-long")
    loader.register_loaded(loaded)
    text = _text(tok, 2048)
    with tempfile.TemporaryDirectory() as tmp:
        from models import cache

        store = cache.RunCache(tmp)
        run = service.get_run(service.RunRequest.create("bench-long", text), run_cache=store)
        out = {}
        for n, label in ((2048, "2048"), (200, "200")):
            r = run if n == 2048 else service.get_run(service.RunRequest.create("bench-long", _text(tok, n)),
                                                      run_cache=store)
            t0 = time.perf_counter()
            p = panels.heatmap_payload(r, "self", 1, 2, 0, "accent", "auto", False, "max", None)
            ms = 1000 * (time.perf_counter() - t0)
            body = json.dumps({"response": {"payload": p["payload"], "title": p["title"],
                                            "stats": cards.stats_cards(p["stats"]), "note": p["note"]}},
                              default=lambda o: o.to_plotly_json()).encode()
            out[label] = {"mode": p["payload"]["mode"], "bytes": len(body), "gzip_bytes": len(gzip.compress(body)),
                          "server_ms": ms, "heads_in_payload": len(p["payload"]["heads"])}
        service.flush_writes()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="minilm,gpt2,switch,llama,llama_rss")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--child-llama", action="store_true")  # --reps -1: one captured run alone (peak RSS)
    args = ap.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.child_llama:
        print(json.dumps(bench_llama_child(args.reps)))
        return
    global THREADS
    THREADS = args.threads
    only = args.only.split(",")
    res = {}
    for name, fn in (("minilm", lambda: bench_minilm(args.reps)), ("gpt2", lambda: bench_gpt2(args.reps)),
                     ("switch", bench_switch), ("llama", lambda: bench_llama(max(1, args.reps - 2))),
                     ("llama_rss", lambda: bench_llama(-1))):
        if name in only:
            t0 = time.perf_counter()
            res[name] = fn()
            res[name + "_wall_s"] = time.perf_counter() - t0
            print(name, json.dumps(res[name], default=str)[:1500], flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    existing = json.loads((OUT / "compact.json").read_text()) if (OUT / "compact.json").exists() else {}
    existing.update(res)
    (OUT / "compact.json").write_text(json.dumps(existing, indent=1, default=str))


if __name__ == "__main__":
    main()
