"""Engine benchmarks, each a ratio of two things measured side by side in one process and run.

    cold_vs_bare(tokens)      service.get_run on a cache miss vs a bare transformers forward with
                              output_attentions=True (eager attention), same text, same threads
    cached_vs_cold(tokens)    service.get_run from the disk cache (memory LRU cleared) and from the
                              per-process memory LRU vs the cold run
    importance_vs_ablation()  Michel et al. importance for all 72 heads vs one plain forward+backward
                              of the same loss on the same pairs, vs leave-one-out ablation
    physical_pruning()        a physically pruned copy (50 % of heads, least important first) vs the
                              full model: forward latency and parameters

Timings are medians over interleaved repetitions (A, B, A, B, ...), so drift of a shared
machine hits both sides alike. Run through bench/run_all.py, or alone: python bench/engine.py
"""
from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from models import cache, loader, registry, service  # noqa: E402

MODEL = registry.DEFAULT_MODEL
BASE_TEXT = (
    "The old lighthouse keeper climbed the spiral stairs every evening, lit the great lamp, and "
    "watched the ships slip past the rocks while the wind carried salt and gull cries over the "
    "harbour. In the village below, the baker banked her ovens, children argued about the tides, "
    "and a retired sea captain wrote long letters to a daughter who lived far inland and had never "
    "learned to swim. Nobody remembered when the last wreck had happened, but everyone agreed that "
    "the light mattered, that someone had to climb those stairs, and that the keeper, stubborn and "
    "kind, would keep doing it until his knees gave out or the council finally bought an automatic "
    "lamp from the mainland company that had been writing to them for years with glossy brochures "
    "and promises of savings that nobody in the village quite believed, because promises from the "
    "mainland had a way of dissolving like sugar in the rain whenever the weather turned against "
    "them and the ferry stopped running for a week at a time in the middle of winter storms."
)


def text_with_tokens(n: int, base: str = BASE_TEXT) -> str:
    """A prefix of `base` (whole words) that MiniLM's tokenizer turns into exactly n tokens
    ([CLS] and [SEP] included), or the closest below."""
    tok = loader.get_loaded(MODEL).tokenizer
    words = base.split()
    best = words[0]
    for i in range(1, len(words) + 1):
        cand = " ".join(words[:i])
        count = len(tok(cand)["input_ids"])
        if count > n:
            break
        best = cand
        if count == n:
            break
    while len(tok(best)["input_ids"]) < n:  # top up with one-token words
        best += " so"
    return best


def token_count(text: str) -> int:
    return len(loader.get_loaded(MODEL).tokenizer(text)["input_ids"])


def _median_ms(xs) -> float:
    return 1000 * statistics.median(xs)


_BARE = {}


def bare_model():
    """all-MiniLM-L6-v2 loaded with plain transformers, eager attention (no dashboard code)."""
    if "m" not in _BARE:
        from transformers import AutoModel, AutoTokenizer

        folder = registry.resolve_location(registry.get_spec(MODEL))
        m = AutoModel.from_pretrained(folder, attn_implementation="eager", local_files_only=True).eval()
        _BARE["m"] = (m, AutoTokenizer.from_pretrained(folder, local_files_only=True))
    return _BARE["m"]


def bare_forward(text: str):
    """Tokenise + forward with output_attentions=True: the least a server could do."""
    model, tok = bare_model()
    enc = tok(text, return_tensors="pt")
    with torch.inference_mode():
        out = model(**enc, output_attentions=True)
    return out.attentions


def cold_cached(tokens: int, reps: int) -> dict:
    """cold (miss), disk hit and memory hit of service.get_run, interleaved with the bare forward."""
    text = text_with_tokens(tokens)
    n = token_count(text)
    with tempfile.TemporaryDirectory(prefix="attn-bench-") as tmp:
        store = cache.RunCache(os.path.join(tmp, "cache"))
        req = service.RunRequest.create(MODEL, text)
        loaded = loader.get_loaded(MODEL)
        key = service.request_key(req, loaded)
        # warm both paths once (first-call allocations, lazy imports)
        bare_forward(text)
        service.clear_memory()
        service.get_run(req, run_cache=store)
        service.flush_writes()  # or its write-behind could land after the delete below
        t = {"bare": [], "cold": [], "store_after": [], "disk": [], "memory": []}

        def timed(name, fn, *args, **kw):
            t0 = time.perf_counter()
            out = fn(*args, **kw)
            t[name].append(time.perf_counter() - t0)
            return out

        for _ in range(reps):
            timed("bare", bare_forward, text)
            store.delete(key)
            service.clear_memory()
            run, src = timed("cold", service.get_run_status, req, run_cache=store)
            assert src == "model", src
            timed("store_after", service.flush_writes)  # the entry is written after the answer
            service.clear_memory()
            run2, src = timed("disk", service.get_run_status, req, run_cache=store)
            assert src == "disk", src
            _, src = timed("memory", service.get_run_status, req, run_cache=store)
            assert src == "memory", src
        np.testing.assert_array_equal(run.weights, run2.weights)
        bare_w = torch.stack([a[0] for a in bare_forward(text)]).numpy()
        max_diff = float(np.abs(bare_w - run.weights.astype(np.float32)).max())
    ms = {k: _median_ms(v) for k, v in t.items()}
    return {"tokens": n, "reps": reps, "ms": ms,
            "cold_over_bare": ms["cold"] / ms["bare"],
            "disk_over_cold": ms["disk"] / ms["cold"],
            "memory_over_cold": ms["memory"] / ms["cold"],
            "max_abs_diff_vs_bare": max_diff,
            "stored_mb": len(cache.encode_run(*run.to_payload())) / 2**20}  # the blob the cache stores


def _spearman(x, y) -> float:
    rx = np.argsort(np.argsort(np.ravel(x))).astype(float)
    ry = np.argsort(np.argsort(np.ravel(y))).astype(float)
    return float(np.corrcoef(rx, ry)[0, 1])


def importance_vs_ablation(n_pairs: int = 64, reps: int = 3) -> dict:
    from models import importance

    loaded = loader.get_loaded(MODEL)
    pairs = importance.load_pairs()[:n_pairs]
    model, tok = bare_model()
    a = tok([p[0] for p in pairs], padding=True, truncation=True, max_length=importance.MAX_TOKENS,
            return_tensors="pt")
    b = tok([p[1] for p in pairs], padding=True, truncation=True, max_length=importance.MAX_TOKENS,
            return_tensors="pt")
    params = list(model.parameters())

    def bare_fwd_bwd():
        with torch.enable_grad():
            for p in params:
                p.requires_grad_(True)
            try:
                ea = importance.mean_pool(model(**a).last_hidden_state, a["attention_mask"])
                eb = importance.mean_pool(model(**b).last_hidden_state, b["attention_mask"])
                loss = torch.nn.functional.cross_entropy(importance.SCALE * ea @ eb.T, torch.arange(len(pairs)))
                loss.backward()
            finally:
                for p in params:
                    p.requires_grad_(False)
                    p.grad = None
        return float(loss)

    bare_fwd_bwd()
    importance.head_importance(loaded, pairs, batch_size=n_pairs)
    t_bare, t_imp = [], []
    for _ in range(reps):
        t0 = time.perf_counter()
        bare_fwd_bwd()
        t_bare.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        res = importance.head_importance(loaded, pairs, batch_size=n_pairs)
        t_imp.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    abl = importance.ablation_scores(loaded, pairs, metric="loss", batch_size=n_pairs)
    t_abl = time.perf_counter() - t0
    ms = {"fwd_bwd": _median_ms(t_bare), "importance": _median_ms(t_imp), "ablation": 1000 * t_abl}
    return {"pairs": len(pairs), "ms": ms,
            "importance_over_fwd_bwd": ms["importance"] / ms["fwd_bwd"],
            "ablation_over_importance": ms["ablation"] / ms["importance"],
            # like tests/model/test_pruning.py: |∂L/∂ξ| estimates |ΔL| of removing a head, and the
            # signed Taylor term -∂L/∂ξ the signed ΔL (the |·| score is no estimate of a signed drop)
            "spearman_abs_grad_vs_abs_ablation": _spearman(res.raw, np.abs(abl)),
            "spearman_taylor_vs_ablation": _spearman(res.taylor_loss_change, abl),
            "spearman_importance_vs_signed_ablation": _spearman(res.raw, abl)}


def physical_pruning(share: float = 0.5, reps: int = 15) -> dict:
    """Full vs physically pruned model (least important `share` of heads removed): median forward
    latency at 200 tokens (batch 1) and on a batch of 32 paraphrase sentences, and parameters."""
    from models import importance, pruning

    loaded = loader.get_loaded(MODEL)
    L, H = loaded.shape()
    pairs = importance.load_pairs()
    scores = importance.head_importance(loaded, pairs[:64], batch_size=32).scores
    k = int(round(share * L * H))
    mask = pruning.mask_least_important(scores, k)
    pruned = pruning.physically_prune(loaded, mask)
    tok = loaded.tokenizer
    long = tok(text_with_tokens(200), return_tensors="pt")
    batch = tok([p[0] for p in pairs[:32]], padding=True, return_tensors="pt")
    out = {"heads_kept": pruned.heads_left, "heads_total": L * H,
           "params_full": pruning.param_count(loaded.model), "params_pruned": pruned.n_params,
           "attention_params_full": _attn_params(loaded.model),
           "attention_params_pruned": _attn_params(pruned.model), "ms": {}}
    for name, inputs in (("200 tokens", long), ("batch 32", batch)):
        tf, tp = [], []
        with torch.inference_mode():
            loaded.model(**inputs)
            pruned.model(**inputs)
            for _ in range(reps):
                t0 = time.perf_counter()
                loaded.model(**inputs)
                tf.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                pruned.model(**inputs)
                tp.append(time.perf_counter() - t0)
        out["ms"][name] = {"full": _median_ms(tf), "pruned": _median_ms(tp),
                           "pruned_over_full": statistics.median(tp) / statistics.median(tf)}
    out["params_ratio"] = out["params_pruned"] / out["params_full"]
    out["attention_params_ratio"] = out["attention_params_pruned"] / out["attention_params_full"]
    return out


def _attn_params(model) -> int:
    n = 0
    for name, p in model.named_parameters():
        if ".attention." in name:
            n += p.numel()
    return n


def run(quick: bool = False) -> dict:
    torch.manual_seed(0)
    res = {"threads": torch.get_num_threads()}
    res["cold_17"] = cold_cached(17, reps=10 if quick else 30)
    res["cold_200"] = cold_cached(200, reps=5 if quick else 15)
    res["importance"] = importance_vs_ablation(n_pairs=32 if quick else 64, reps=2 if quick else 3)
    res["pruning"] = physical_pruning(reps=5 if quick else 15)
    return res


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick="--quick" in sys.argv), indent=1))
