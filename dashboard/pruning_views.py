"""What the head-pruning card shows, from plain data: masks, counts, the change grid, the rows
of the output-change and physical-pruning tables, texts of the curves. Pure (numpy + figures);
no engine: the run- and model-bound half (masks checked against the run, the comparison, the
importance / curves / latency jobs) is services/pruning_card.py. Components come from
dashboard/pruning_panel.py.

Shapes:

    mask        float32 [L, H] of 0/1 over the run's main attention block (1 keeps a head);
                in the browser (pruning_ids.MASK) the same as nested lists of ints [L][H]
    js          float32 [L, H] mean Jensen-Shannon divergence (bits) between baseline and pruned
                attention rows of each head
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np

from dashboard import figures
from dashboard.figures import add_meta

DEFAULT_K = 18          # "prune the k least important": a quarter of MiniLM's 72 heads
DEFAULT_ENTROPY = 2.5   # "prune heads with entropy above x bits"
DEFAULT_SEEDS = 3
CHECKED_ORDERS = ("importance", "entropy", "random")  # checked at start; ablation is slow (L*H+1 evaluations)
MAX_UPLOAD_BYTES = 2 * 2**20
LATENCY_REPEATS = 10
BUNDLED_LABEL = "bundled paraphrase pairs"
ORDER_LABELS = {
    "importance": "importance (gradient, least important first)",
    "ablation": "ablation (leave one head out; slow: one evaluation per head)",
    "entropy": "entropy (most diffuse first)",
    "random": "random (mean ± std over seeds)",
}
METRIC_LABELS = {  # engine metric name -> label on the page
    "spearman": "Spearman ρ of pair similarities vs unpruned",
    "retrieval_acc": "retrieval accuracy (paraphrase found among all pairs)",
    "mean_cosine": "mean cosine of the pairs",
    "loss": "task loss",
    "perplexity": "perplexity",
}
AXIS_LABELS = {"spearman": "Spearman ρ vs unpruned", "retrieval_acc": "retrieval accuracy",
               "mean_cosine": "mean pair cosine", "loss": "task loss", "perplexity": "perplexity"}


def mask_to_store(mask) -> list[list[int]]:
    """[L][H] ints 0/1 for the browser."""
    return np.where(np.asarray(mask) == 0, 0, 1).astype(int).tolist()


def toggle_mask(mask, layer: int, head: int, *, shift: bool = False, anchor: dict | None = None
                ) -> tuple[np.ndarray, dict]:
    """A click on head (layer, head) of the choose-heads grid: (new mask, new anchor).

    Click: the head flips (kept -> pruned -> kept); it becomes the anchor {"layer", "head",
    "value"} with its new value. Shift-click with an anchor: every head of the rectangle from
    the anchor to (layer, head) gets the anchor's value (prune or restore a block of heads at
    once); the clicked head becomes the anchor, same value, so shift-clicks can go on.
    assets/pruning.js `toggle` does exactly this in the browser (tests compare the two).
    """
    m = np.array(mask, dtype=np.float32, copy=True)
    L, H = m.shape
    if not (0 <= layer < L and 0 <= head < H):
        return m, anchor
    ok_anchor = (isinstance(anchor, dict) and isinstance(anchor.get("layer"), int)
                 and isinstance(anchor.get("head"), int) and anchor.get("value") in (0, 1)
                 and 0 <= anchor["layer"] < L and 0 <= anchor["head"] < H)
    if shift and ok_anchor:
        value = int(anchor["value"])
        l0, l1 = sorted((anchor["layer"], layer))
        h0, h1 = sorted((anchor["head"], head))
        m[l0:l1 + 1, h0:h1 + 1] = value
    else:
        value = 0 if m[layer, head] != 0 else 1
        m[layer, head] = value
    return m, {"layer": int(layer), "head": int(head), "value": value}


def pruned_count(mask) -> tuple[int, int]:
    """(heads pruned, heads in all)."""
    m = np.asarray(mask)
    return int(np.sum(m == 0)), int(m.size)


def pruned_share(mask) -> float:
    n, total = pruned_count(mask)
    return n / total if total else 0.0


def count_text(mask) -> str:
    """"18 of 72 heads pruned (25%)"."""
    n, total = pruned_count(mask)
    pct = 100.0 * n / total if total else 0.0
    shown = f"{pct:.0f}" if pct == 0 or pct >= 1 or n == 0 else f"{pct:.1f}"
    return f"{n} of {total} heads pruned ({shown}%)"


def _first_pruned_layer(mask) -> int:
    rows = np.nonzero(np.any(np.asarray(mask) == 0, axis=1))[0]
    return int(rows[0]) if len(rows) else 10**9


def remaining_js(js, mask) -> np.ndarray:
    """float32 [L, H]: js with the pruned heads set to NaN (only remaining heads are compared)."""
    out = np.asarray(js, dtype=np.float32).copy()
    if mask is not None:
        out[np.asarray(mask) == 0] = np.nan
    return out


def change_grid(js, mask, selected, n_pruned: int):
    """layers x heads of the JS divergence of each remaining head's attention (pruned: ×)."""
    if n_pruned == 0:
        return figures.empty_figure("Nothing pruned yet")
    v = remaining_js(js, mask)
    finite = v[np.isfinite(v)]
    fig = figures.head_grid(v, metric="js", selected=selected, pruned=None if mask is None else np.asarray(mask) == 0,
                            zmin=0.0, zmax=max(float(finite.max()) if finite.size else 0.0, 0.01),
                            uirevision="pruning-change")
    return add_meta(fig, grid="pruning-change")


def output_rows(change: dict, js, mask) -> list[dict]:
    """The output-change numbers as display rows [{"name", "label", "value", "title"}]."""
    rows = []
    if "embedding_cosine" in change:
        c = change["embedding_cosine"]
        rows.append({"name": "cosine", "label": "Embedding cosine", "value": f"{c:.4f}",
                     "title": f"cos(baseline sentence embedding, pruned) = {c:.6f}; 1 = unchanged"})
    if "loss_delta" in change:
        rows.append({"name": "loss", "label": "Loss (base → pruned)",
                     "value": f"{change['loss_base']:.3f} → {change['loss_pruned']:.3f} "
                              f"({change['loss_delta']:+.3f})",
                     "title": f"model loss on this text; delta {change['loss_delta']:+.6f}"})
    v = remaining_js(js, mask)
    finite = v[np.isfinite(v)]
    if finite.size and change.get("heads_pruned", 0):
        mean = float(finite.mean())
        idx = np.unravel_index(int(np.nanargmax(np.where(np.isfinite(v), v, -np.inf))), v.shape)
        rows.append({"name": "js_mean", "label": "Mean attention change", "value": f"{mean:.4f} bits",
                     "title": "mean Jensen-Shannon divergence of the remaining heads' attention rows"})
        rows.append({"name": "js_max", "label": "Most changed head",
                     "value": f"L{idx[0]} H{idx[1]} · {float(v[idx]):.3f} bits",
                     "title": "the remaining head whose attention moved most (JS divergence, bits)"})
    rows.append({"name": "pruned", "label": "Heads pruned", "value": str(change.get("heads_pruned", 0)),
                 "title": "heads whose output is multiplied by 0"})
    return rows


def loss_note(loss_name: str, corpus_label: str) -> str:
    """The sentence that says what "importance" is importance for."""
    return (f"Importance: |∂L/∂ξ_h| (gradient of the loss with respect to a gate ξ_h on each head's output, "
            f"summed over batches of 16, each layer scaled to unit L2 norm) with L = {loss_name} over "
            f"{corpus_label} (Michel, Levy & Neubig 2019).")


def progress_reporter(set_progress: Callable | None, what: str, unit: str = "steps", *,
                      eta: bool = False) -> Callable[[int, int], None]:
    """An engine progress(done, total) callback that drives a dbc.Progress and the text beside it:
    set_progress((value %, "importance: 3 of 4 steps (75%)")), only when the numbers change.
    eta: also the time left from the pace so far (", about 2.5 min left"), sent when the percentage
    changes (and at the end)."""
    t0 = time.perf_counter()
    last = [None]

    def report(done: int, total: int) -> None:
        if set_progress is None or total <= 0:
            return
        done = max(0, min(int(done), int(total)))
        pct = int(100 * done / total)
        key = pct if eta else (done, total)
        if key == last[0] and not (eta and done == total):
            return
        last[0] = key
        left = ""
        if eta and done:
            secs = (time.perf_counter() - t0) / done * (total - done)
            left = f", about {secs / 60:.1f} min left" if secs >= 60 else f", about {secs:.0f} s left"
        set_progress((pct, f"{what}: {done} of {total} {unit} ({pct}%){left}"))
    return report


def importance_from_curves(curves: dict) -> dict | None:
    """The importance store from a curves result that has importance scores (None otherwise)."""
    scores = (curves.get("scores") or {}).get("importance")
    if scores is None:
        return None
    return {"model": curves["model"], "scores": scores, "loss_name": curves.get("loss_name", ""),
            "n_examples": curves.get("n_examples"), "corpus": curves.get("corpus", ""), "block": None}


def importance_text(importance: dict | None, model: str | None) -> str:
    if not importance:
        return "Importance not computed yet."
    if model is not None and importance.get("model") != model:
        return f"Importance was computed for {importance.get('model')}; compute it again for {model}."
    secs = importance.get("seconds")
    took = f" in {secs:g} s" if isinstance(secs, (int, float)) else ""
    return f"Importance of {importance.get('model')} over {importance.get('corpus')}{took}: colours of the grid."


def metric_choice(curves: dict | None, current: str | None = None) -> tuple[list[dict], str | None]:
    """(dropdown options, value) for the curve metric: the current one when the curves have it,
    else their primary metric; ([], None) without curves."""
    if not curves:
        return [], None
    names = curves.get("metrics") or []
    value = current if current in names else curves.get("primary")
    return [{"label": METRIC_LABELS.get(n, n), "value": n} for n in names], value


def saturated_metrics(curves: dict | None) -> list[str]:
    """Metrics that do not move: the same value (within 1e-9) for every order at every share
    pruned > 0, so on this corpus they cannot tell the orders apart (e.g. retrieval accuracy 1.0
    when the pairs are too easy)."""
    out = []
    if not isinstance(curves, dict) or not isinstance(curves.get("curves"), dict):
        return out
    pruned = list(curves.get("pruned") or [])
    # shares where the orders differ: some heads pruned, not all (all pruned is one mask for all)
    inner = [i for i, k in enumerate(pruned) if 0 < k < (curves.get("n_heads") or 0)]
    for metric in curves.get("metrics") or []:
        values = []
        for by_metric in curves["curves"].values():
            series = (by_metric or {}).get(metric) or []
            values.extend(series[i] for i in inner if i < len(series))
        if len(values) >= 2 and max(values) - min(values) <= 1e-9:
            out.append(metric)
    return out


def curves_text(curves: dict | None) -> str:
    if not curves:
        return ""
    text = (f"{curves.get('model')} · {curves.get('corpus')} · {len(curves.get('shares', []))} pruning levels · "
            f"random: {curves.get('seeds')} seed{'s' if curves.get('seeds') != 1 else ''} · "
            f"{curves.get('seconds', 0):.1f} s wall time (scores, evaluations and cache reads). "
            f"Dashed line: the current mask.")
    flat = saturated_metrics(curves)
    if flat:
        text += (f" Saturated on this corpus: {', '.join(METRIC_LABELS.get(m, m) for m in flat)} "
                 f"{'is' if len(flat) == 1 else 'are'} the same for every order at every share pruned, so "
                 f"{'it tells' if len(flat) == 1 else 'they tell'} the orders nothing here; use more or harder "
                 f"pairs, or read another metric.")
    return text


def physical_rows(result: dict) -> list[dict]:
    """Display rows for the physical-pruning table: [{"name", "what", "full", "pruned", "change"}]."""
    pf, pp = result["params_full"], result["params_pruned"]
    lf, lp = result["latency_full"], result["latency_pruned"]
    rows = [
        {"name": "heads", "what": "attention heads", "full": str(result["heads"]),
         "pruned": str(result["heads"] - result["pruned"]), "change": f"−{result['pruned']}"},
        {"name": "params", "what": "parameters", "full": f"{pf:,}", "pruned": f"{pp:,}",
         "change": f"{(pp - pf) / pf:+.1%}" if pf else "n/a"},
        {"name": "latency", "what": "latency (median)", "full": f"{lf * 1e3:.1f} ms", "pruned": f"{lp * 1e3:.1f} ms",
         "change": f"{(lp - lf) / lf:+.1%}" if lf > 0 else "n/a"},
    ]
    if "fastest_full" in result:
        ff, fp = result["fastest_full"], result["fastest_pruned"]
        rows.append({"name": "fastest", "what": "latency (fastest)", "full": f"{ff * 1e3:.1f} ms",
                     "pruned": f"{fp * 1e3:.1f} ms", "change": f"{(fp - ff) / ff:+.1%}" if ff > 0 else "n/a"})
    return rows
