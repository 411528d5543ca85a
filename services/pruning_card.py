"""The head-pruning card's questions to the engine: masks checked against the page's run, the
baseline-vs-pruned comparison, the corpus, and the importance / curves / latency jobs. No Dash
here (components come from dashboard/pruning_panel.py; the pure half, from plain data, is
dashboard/pruning_views.py, re-exported here); callbacks/pruning.py only wires ids to these.

Shapes and stored forms:

    mask        float32 [L, H] of 0/1 over the run's main attention block (1 keeps a head);
                in the browser (pruning_ids.MASK) the same as nested lists of ints [L][H]
    importance  float32 [L, H] (engine: |∂L/∂ξ_h| summed over batches, each layer L2-normalised)
    js          float32 [L, H] mean Jensen-Shannon divergence (bits) between baseline and pruned
                attention rows of each head

The run store (`dashboard.ids.RUN`) holds {"request": RunRequest.to_dict(), "summary": ...}; the
pruned run is `service.get_run(RunRequest.create(model, text, pair, max_tokens, head_mask=mask))`,
cached under its own key like any run.
"""
from __future__ import annotations

import base64
import binascii
import math
from dataclasses import dataclass

import numpy as np

from dashboard import figures
from dashboard.figures import add_meta
from dashboard.pruning_views import (  # noqa: F401 - the pure half, re-exported
    AXIS_LABELS, BUNDLED_LABEL, DEFAULT_ENTROPY, DEFAULT_K, CHECKED_ORDERS, DEFAULT_SEEDS, LATENCY_REPEATS,
    MAX_UPLOAD_BYTES, METRIC_LABELS, ORDER_LABELS, _first_pruned_layer, change_grid, count_text,
    importance_from_curves, importance_text, loss_note, mask_to_store, metric_choice, output_rows,
    physical_rows, progress_reporter, pruned_count, pruned_share, remaining_js, saturated_metrics, toggle_mask,
    curves_text)
from dashboard.selection import parse_run_store, store_model
from models import pruning, service
from models.errors import PanelError  # noqa: F401 - re-exported (callbacks catch it by this name too)
from models.run import AttentionRun
from services.views import MEAN, head_title, selection_of


# ---- the run store ---------------------------------------------------------------------------
@dataclass(frozen=True)
class RunInfo:
    """What the card needs from the page's run store."""
    request: dict
    model: str
    block: str      # the main block (the one the mask is over)
    layers: int
    heads: int

    @property
    def shape(self) -> tuple[int, int]:
        return self.layers, self.heads


def run_info(store: dict | None) -> RunInfo:
    """RunInfo from the run store; PanelError before the first run."""
    rs = parse_run_store(store)
    if rs is None or rs.summary is None:
        raise PanelError("Run the model first (the Run button at the top), then choose heads to prune.")
    # the shape comes from the run on the server, never from the store the browser sends back
    request = rs.request
    block, layers, heads = main_block_shape(request)
    return RunInfo(request=request, model=request["model"], block=block, layers=layers, heads=heads)


def main_block_shape(request: dict) -> tuple[str, int, int]:
    """(name, layers, heads) of the main block of the run `request` names, from the run itself."""
    main = service.get_run(base_request_of(request)).main
    return main.name, int(main.n_layers), int(main.n_heads)


def base_request_of(r: dict) -> service.RunRequest:
    return service.RunRequest.create(r["model"], r["text"], r.get("text_pair"), r.get("max_tokens"))


def base_request(info: RunInfo) -> service.RunRequest:
    return base_request_of(info.request)


def pruned_request(info: RunInfo, mask) -> service.RunRequest:
    r = info.request
    return service.RunRequest.create(r["model"], r["text"], r.get("text_pair"), r.get("max_tokens"),
                                     head_mask=mask)


def runs(info: RunInfo, mask_data) -> tuple[AttentionRun, AttentionRun]:
    """(baseline run, pruned run) of the page's text through the service (both cached); a mask
    of the wrong shape counts as nothing pruned."""
    base = service.get_run(base_request(info))
    return base, service.get_run(pruned_request(info, coerce_mask(mask_data, info.shape)))


# ---- masks -----------------------------------------------------------------------------------
def coerce_mask(data, shape: tuple[int, int]) -> np.ndarray:
    """float32 [L, H] 0/1 from the mask store; None, a wrong shape or bad values -> all ones."""
    if data is None:
        return pruning.full_mask(*shape)
    try:
        m = np.asarray(data, dtype=np.float32)
    except (TypeError, ValueError):
        return pruning.full_mask(*shape)
    if m.shape != tuple(shape) or not np.all(np.isfinite(m)):
        return pruning.full_mask(*shape)
    return np.where(m == 0, 0.0, 1.0).astype(np.float32)


def parse_k(k, total: int) -> int:
    """The k of "prune the k least important": a whole number 0..total (PanelError otherwise)."""
    try:
        kf = float(k)
    except (TypeError, ValueError):
        raise PanelError(f"Enter how many heads to prune (a whole number from 0 to {total}).") from None
    if not math.isfinite(kf) or kf != int(kf) or not 0 <= kf <= total:
        raise PanelError(f"Enter how many heads to prune (a whole number from 0 to {total}).")
    return int(kf)


def parse_threshold(x) -> float:
    try:
        xf = float(x)
    except (TypeError, ValueError):
        raise PanelError("Enter an entropy threshold in bits (e.g. 2.5).") from None
    if not math.isfinite(xf):
        raise PanelError("Enter an entropy threshold in bits (e.g. 2.5).")
    return xf


def importance_scores(importance: dict | None, info: RunInfo) -> np.ndarray | None:
    """float32 [L, H] importance for the run's model, or None (not computed / another model)."""
    if not importance or importance.get("model") != info.model:
        return None
    s = np.asarray(importance.get("scores"), dtype=np.float32)
    return s if s.shape == info.shape else None


def mask_least_important(importance: dict | None, info: RunInfo, k) -> np.ndarray:
    scores = importance_scores(importance, info)
    if scores is None:
        raise PanelError(f"Compute the head importance for {info.model} first "
                         "(“Compute importance” below), then prune the least important heads.")
    return pruning.mask_least_important(scores, parse_k(k, info.layers * info.heads))


def mask_entropy_above(run: AttentionRun, x) -> np.ndarray:
    """Heads of the main block whose mean attention entropy on this text is above x bits."""
    return pruning.mask_entropy_above(run.head_metrics(run.main.name)["entropy"], parse_threshold(x))


def mask_action(action: str, store: dict | None, mask_data, k=None, x=None, importance: dict | None = None
                ) -> list[list[int]]:
    """The mask store after an action: "run" (a new run: keep the mask when its shape fits, else
    nothing pruned), "least-important" (k), "entropy-above" (x bits, this text), "clear"."""
    info = run_info(store)
    if action == "run":
        selection = parse_run_store(store).selection  # (run_info checked the store)
        if selection.get("from_url") and selection.get("prune") is not None:  # a link's pruning mask
            return mask_to_store(coerce_mask(selection["prune"], info.shape))
        return mask_to_store(coerce_mask(mask_data, info.shape))
    if action == "clear":
        return mask_to_store(pruning.full_mask(*info.shape))
    if action == "least-important":
        return mask_to_store(mask_least_important(importance, info, k))
    if action == "entropy-above":
        return mask_to_store(mask_entropy_above(service.get_run(base_request(info)), x))
    raise ValueError(f"unknown mask action {action!r}")


# ---- the choose-heads grid -------------------------------------------------------------------
def selection_grid(run: AttentionRun, importance: dict | None, color: str, mask, layer, head,
                   block_choice) -> tuple:
    """(figure, note): layers x heads of the main block, coloured by importance (when computed
    for this model) or by this text's entropy, × on pruned heads, the shown head outlined."""
    info_shape = (run.main.n_layers, run.main.n_heads)
    m = coerce_mask(mask, info_shape)
    scores = None
    if importance and importance.get("model") == run.model_name:
        s = np.asarray(importance.get("scores"), dtype=np.float32)
        scores = s if s.shape == info_shape else None
    metrics_main = run.head_metrics(run.main.name)
    if color == "importance" and scores is not None:
        values, metric = scores, "importance"
        note = (f"Colour: head importance ({importance.get('corpus', '')}); darker = more important. "
                "Click a head to prune or restore it; Shift+click sets the whole rectangle from the last "
                "clicked head the same way.")
    else:
        values, metric = metrics_main["entropy"], "entropy"
        why = ("Importance not computed yet, so the colour is" if color == "importance" else "Colour:")
        note = (f"{why} this text's mean attention entropy (bits). Click a head to prune or "
                "restore it; Shift+click sets the whole rectangle from the last clicked head the same way.")
    selected = _selected(run, block_choice, layer, head)
    fig = figures.head_grid(values, metric=metric, selected=selected, pruned=m == 0,
                            roles=metrics_main["role"], uirevision="pruning-select")
    return add_meta(fig, grid="pruning-select"), note


def _selected(run: AttentionRun, block_choice, layer, head) -> tuple[int, int] | None:
    """The page's shown head when it is a head of the main block (the mask's block)."""
    sel = selection_of(run, block_choice, layer, head)
    if sel.block != run.main.name or sel.is_mean:
        return None
    return sel.layer, sel.head


# ---- baseline vs pruned ----------------------------------------------------------------------
def comparison(base: AttentionRun, pruned: AttentionRun, mask, block_choice, layer, head,
               color_scale, temperature: float = 1.0) -> dict:
    """Everything the "baseline vs pruned" part shows, for the page's block / layer / head, at the
    page's temperature (both heatmaps re-softmaxed from their own runs' pre-softmax scores).

    {"title", "base_figure", "pruned_figure", "pruned_title", "note",
     "outputs": [{"name", "label", "value", "title"}], "change_figure"}
    """
    sel = selection_of(base, block_choice, layer, head)
    name, pair, layer, head = sel.block, sel.pair, sel.layer, sel.head
    m = coerce_mask(mask, (base.main.n_layers, base.main.n_heads))
    n, total = pruned_count(m)

    def side(run):
        from services.panels import head_figure  # long texts: the pooled overview, as on the page

        fig = head_figure(run, name, layer, head, pair, temperature, color_scale)
        fig.update_layout(margin=dict(l=4, r=4, t=6, b=4))
        return fig

    if n:
        figs = [side(base), side(pruned)]
    else:  # nothing pruned: the page's heatmap card already shows this matrix; don't send it again
        figs = [figures.empty_figure("Baseline: the heatmap above."),
                figures.empty_figure("Nothing pruned: the pruned model is the baseline.")]
    notes = []
    if n == 0:
        notes.append("Nothing pruned yet: both sides are the same run. Click heads in the grid, or prune "
                      "the least important / most diffuse heads.")
    elif name == base.main.name and head != MEAN and m[layer, head] == 0:
        notes.append(f"L{layer} H{head} is itself pruned: it still computes this pattern, but its output is "
                     "zeroed, so later layers never see it.")
    elif name == base.main.name and n and _first_pruned_layer(m) >= layer:
        notes.append(f"No head before layer {layer} is pruned, so this layer's attention is unchanged "
                     "(pruning a head changes what the layers after it see).")
    b = base.block(name)
    # nothing pruned: both sides are one run and every divergence is exactly 0 (nothing rebuilt)
    js = attention_change(base, pruned, name) if n else np.zeros((b.n_layers, b.n_heads), np.float32)
    change = pruning.output_change(base, pruned)
    change_fig = change_grid(js, m if name == base.main.name else None,
                             None if head == MEAN else (layer, head), n)
    return {
        "title": f"Baseline vs pruned · {head_title(base, name, layer, head, pair, temperature)}",
        "base_figure": figs[0], "pruned_figure": figs[1],
        "pruned_title": f"Pruned ({n} of {total} heads off)" if n else "Pruned (nothing pruned)",
        "note": " ".join(notes),
        "outputs": output_rows(change, js, m if name == base.main.name else None),
        "change_figure": change_fig,
    }


def attention_change(base: AttentionRun, pruned: AttentionRun, block: str) -> np.ndarray:
    """float32 [L, H]: pruned.attention_change(base, block), memoised on the pruned run."""
    return pruned.attention_change(base, block)


# ---- corpus (importance / curves) ------------------------------------------------------------
def decode_upload(contents: str | None, filename: str | None) -> dict:
    """{"name", "pairs": [[a, b], ...]} from dcc.Upload contents ("data:...;base64,...").

    Lines `a<TAB>b` or `a ||| b` (models.pruning.parse_pairs). PanelError with a clear message
    for anything else (not text, too big, a bad line).
    """
    name = filename or "uploaded file"
    if not contents or "," not in contents:
        raise PanelError(f"{name}: the file is empty.")
    try:
        raw = base64.b64decode(contents.split(",", 1)[1], validate=False)
    except (binascii.Error, ValueError):
        raise PanelError(f"{name}: could not read the file.") from None
    if len(raw) > MAX_UPLOAD_BYTES:
        raise PanelError(f"{name}: the file is {len(raw) / 2**20:.1f} MB; at most "
                         f"{MAX_UPLOAD_BYTES // 2**20} MB of sentence pairs are accepted.")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise PanelError(f"{name}: not a UTF-8 text file. Upload plain text with one pair per line: "
                         "'sentence A<TAB>sentence B' or 'sentence A ||| sentence B'.") from None
    try:
        pairs = pruning.parse_pairs(text)
    except ValueError as exc:
        raise PanelError(f"{name}: {exc}") from None
    return {"name": name, "pairs": [list(p) for p in pairs]}


def parse_n_pairs(n) -> int | None:
    """The "pairs used" input: None (all) or a whole number >= 2."""
    if n in (None, ""):
        return None
    try:
        nf = float(n)
    except (TypeError, ValueError):
        raise PanelError("“Pairs used” must be a whole number of at least 2 (or empty for all).") from None
    if not math.isfinite(nf) or nf != int(nf) or nf < 2:
        raise PanelError("“Pairs used” must be a whole number of at least 2 (or empty for all).")
    return int(nf)

MAX_PAIR_CHARS = 2000  # one sentence of a pair (the upload's lines are far shorter in practice)


def checked_pairs(raw) -> list[tuple[str, str]]:
    """The corpus store's pairs, checked where a job starts (the store comes from the browser and
    need not have passed the upload): at most importance.MAX_PAIRS pairs of two non-empty strings
    of at most MAX_PAIR_CHARS characters each; PanelError otherwise."""
    from models.importance import MAX_PAIRS

    if not isinstance(raw, list) or len(raw) > MAX_PAIRS:
        raise PanelError(f"The corpus holds at most {MAX_PAIRS} sentence pairs; upload a smaller set.")
    pairs = []
    for p in raw:
        if (not isinstance(p, (list, tuple)) or len(p) != 2
                or not all(isinstance(x, str) and 0 < len(x) <= MAX_PAIR_CHARS for x in p)):
            raise PanelError(f"The corpus must hold pairs of two sentences of at most {MAX_PAIR_CHARS} "
                             "characters; upload the file again.")
        pairs.append((p[0], p[1]))
    return pairs


def corpus_pairs(corpus: dict | None, n_pairs=None) -> tuple[list[tuple[str, str]], str]:
    """(pairs, label): the uploaded pairs or the bundled ones, the first n_pairs of them."""
    if corpus and corpus.get("pairs"):
        pairs = checked_pairs(corpus["pairs"])
        what = f"pairs from {str(corpus.get('name', 'the uploaded file'))[:255]}"
    else:
        pairs = pruning.load_pairs()
        what = BUNDLED_LABEL
    n = parse_n_pairs(n_pairs)
    total = len(pairs)
    if n is not None and n < total:
        return pairs[:n], f"the first {n} of {total} {what}"
    return pairs, f"{total} {what}"


def corpus_text(corpus: dict | None) -> str:
    if corpus and corpus.get("pairs"):
        return f"Corpus: {corpus.get('name', 'uploaded file')} ({len(corpus['pairs'])} pairs)."
    return f"Corpus: the {len(pruning.load_pairs())} {BUNDLED_LABEL} shipped with the app."


def loss_note_for(store: dict | None, corpus: dict | None, n_pairs) -> str:
    """loss_note for the run's model and the chosen corpus (a short hint before the first run)."""
    from models import loader

    try:
        _, label = corpus_pairs(corpus, n_pairs)
    except PanelError as exc:
        return str(exc)
    model = store_model(store)
    if model is None:
        return (f"Importance (Michel, Levy & Neubig 2019): |∂L/∂ξ_h| with L = the model's task loss over "
                f"{label}. Run the model first.")
    return loss_note(pruning.loss_name(loader.get_loaded(model)), label)


# ---- background jobs (callbacks/pruning.py runs them with background=True) ---------------------


def compute_importance(store: dict | None, corpus: dict | None, n_pairs, progress=None) -> dict:
    """The importance store for the run's model: pruning.cached_importance over the corpus."""
    from models import loader

    info = run_info(store)
    pairs, label = corpus_pairs(corpus, n_pairs)
    loaded = loader.get_loaded(info.model)
    res = pruning.cached_importance(loaded, pairs, progress=progress)
    return {"model": info.model, "scores": np.round(res.scores.astype(np.float64), 6).tolist(),
            "loss_name": res.loss_name, "n_examples": int(res.n_examples), "corpus": label,
            "seconds": round(float(res.seconds), 2), "block": res.block}


def parse_orders(orders) -> list[str]:
    chosen = [o for o in pruning.DEFAULT_ORDERS if o in (orders or [])]
    if not chosen:
        raise PanelError("Choose at least one pruning order for the curves.")
    return chosen


def parse_seeds(seeds) -> int:
    try:
        s = float(seeds if seeds not in (None, "") else DEFAULT_SEEDS)
    except (TypeError, ValueError):
        raise PanelError("Seeds must be a whole number from 1 to 10.") from None
    if not math.isfinite(s) or s != int(s) or not 1 <= s <= 10:
        raise PanelError("Seeds must be a whole number from 1 to 10.")
    return int(s)


def compute_curves(store: dict | None, corpus: dict | None, n_pairs, orders, seeds, progress=None) -> dict:
    """The curves store: pruning.cached_curve (metric vs share pruned per order) + model, corpus."""
    from models import loader

    info = run_info(store)
    pairs, label = corpus_pairs(corpus, n_pairs)
    orders = parse_orders(orders)
    seeds = parse_seeds(seeds)
    loaded = loader.get_loaded(info.model)
    res = pruning.cached_curve(loaded, pairs, orders=orders, seeds=seeds, progress=progress)
    out = res.to_dict()
    out.update(model=info.model, corpus=label)
    return out


# ---- the curves figure -----------------------------------------------------------------------


def curves_figure(curves: dict | None, metric: str | None, mask, model: str | None):
    """figures.pruning_curves of the stored result, a dashed line at the current mask's share."""
    if not curves:
        return figures.empty_figure("Compute the pruning curves to see the metric vs share of heads pruned")
    if model is not None and curves.get("model") != model:
        return figures.empty_figure(f"These curves are for {curves.get('model')}: compute them again for {model}")
    metric = metric if metric in (curves.get("metrics") or []) else curves.get("primary")
    data = {}
    for order in curves["orders"]:
        mean = curves["curves"][order][metric]
        std = (curves.get("std") or {}).get(order, {}).get(metric)
        has_std = std is not None and any(abs(s) > 0 for s in std)
        data[order] = {"mean": mean, "std": std if has_std else None}
    share = None
    if mask is not None:
        m = np.asarray(mask)
        if m.shape == (curves.get("layers"), curves.get("heads")):
            share = pruned_share(m)
    fig = figures.pruning_curves(curves["shares"], data, metric_name=AXIS_LABELS.get(metric, metric),
                                 current_share=share,
                                 higher_is_better=pruning.METRIC_SIGN.get(metric, 1.0) > 0)
    fig.update_layout(margin=dict(l=8, r=8, t=36, b=8))
    return add_meta(fig, model=curves.get("model"), n_examples=curves.get("n_examples"))


# ---- physical pruning ------------------------------------------------------------------------
def measure_physical(store: dict | None, mask_data, repeats: int = LATENCY_REPEATS) -> dict:
    """Parameters and median latency (this text, batch 1, CPU; the two models alternated run by
    run) of the full model and of a copy with the masked heads physically removed
    (pruning.physically_prune, pruning.param_count, pruning.measure_latency)."""
    from models import attention, loader

    info = run_info(store)
    mask = coerce_mask(mask_data, info.shape)
    n, total = pruned_count(mask)
    if n == 0:
        raise PanelError("Nothing is pruned: choose heads to prune first, then measure the smaller model.")
    loaded = loader.get_loaded(info.model)
    try:
        small = pruning.physically_prune(loaded, mask)
    except NotImplementedError as exc:
        raise PanelError(f"Physical pruning is not available for {info.model}: {exc}") from None
    r = info.request
    inputs, *_ = attention.forward_inputs(loaded, r["text"], r.get("text_pair"),
                                          r.get("max_tokens") or loaded.max_tokens)
    # alternate the two models run by run (median of each): load from other requests on a shared
    # CPU then hits both alike instead of whichever happened to be measured second
    full_t, small_t = [], []
    for i in range(max(1, int(repeats))):
        full_t.append(pruning.measure_latency(loaded.model, inputs, repeats=1, warmup=int(i == 0)))
        small_t.append(pruning.measure_latency(small.model, inputs, repeats=1, warmup=int(i == 0)))
    full_s, small_s = float(np.median(full_t)), float(np.median(small_t))
    full_min, small_min = float(np.min(full_t)), float(np.min(small_t))
    return {"model": info.model, "pruned": n, "heads": total,
            "params_full": pruning.param_count(loaded.model), "params_pruned": pruning.param_count(small.model),
            "latency_full": full_s, "latency_pruned": small_s, "fastest_full": full_min, "fastest_pruned": small_min,
            "tokens": int(inputs["input_ids"].shape[1]),
            "repeats": int(repeats)}


