"""Compare two runs side by side: the page's run (A) and a second text and/or model (B), or the
same text under the pruning card's head mask (B = the pruned run), raw weights of the page's
layer and head (or mean of heads), and their difference B − A when both runs have the same
tokens (same text on two models that share a tokenizer, the same text under two masks, or two
texts that tokenise alike). Both sides come from the run service (the page's capture and cache).
B = A (the page's own text and model, no mask) is "nothing to compare" and computes nothing: it
would cost three T x T figures per new text for a map of zeros.

    compare_view(store, text_b, model_b, layer, head, mask=None) -> {"a", "b", "diff", "note"}

mask: the pruning card's mask store [L][H] of 0/1 (0 = pruned), used when the "B under the
pruning card's mask" switch is on; A and B then both come from the run service (the same
capture path, so heads before the first pruned layer differ by exactly 0).
"""
from __future__ import annotations

import numpy as np

from dashboard import figures
from dashboard.figures import add_meta
from dashboard.research_compare import MAX_TEXT_CHARS, difference_figure  # noqa: F401 - re-exported
from dashboard.selection import MEAN, parse_head, parse_index
from models.errors import PanelError
from services.pruning_card import run_info


def _run_side(model: str, text: str, pair, max_tokens, layer, head, mask=None):
    """(weights [T, T] of the head or the head mean, token labels, layer, head|None, causal): one
    side of the comparison, from the run service (the page's capture and cache, optionally under a
    head mask): the numbers the heatmap shows for that text and model."""
    from models import service

    run = service.get_run(service.RunRequest.create(model, text, pair, max_tokens, head_mask=mask))
    b = run.main
    lay = parse_index(layer)
    lay = 0 if lay is None else min(lay, b.n_layers - 1)
    hd = parse_head(head)
    hd = None if hd in (None, MEAN) else min(int(hd), b.n_heads - 1)
    w = run.mean_weights(lay) if hd is None else run.head_weights(lay, hd)
    return np.asarray(w, np.float32), [t.label for t in run.tokens(b.query_side)], lay, hd, b.causal


def _mask_of(mask, shape) -> list | None:
    """The pruning card's mask if it is an L x H grid of 0/1 for this model with a pruned head."""
    try:
        m = np.asarray(mask, dtype=np.float32)
    except (TypeError, ValueError):
        return None
    if m.shape != tuple(shape) or not np.all((m == 0) | (m == 1)) or np.all(m == 1):
        return None
    return m.tolist()


def compare_view(store, text_b, model_b, layer, head, mask=None) -> dict:
    from models import registry

    info = run_info(store)
    r = info.request
    if model_b not in registry.model_names():
        model_b = info.model
    typed = text_b.strip() if isinstance(text_b, str) else ""
    if len(typed) > MAX_TEXT_CHARS:  # only what the user typed as B; an empty B is the page's own text
        raise PanelError(f"Text B is longer than {MAX_TEXT_CHARS} characters.")
    text_b = typed or r["text"]
    same_text = text_b == r["text"]
    pruned = None
    if mask is not None:
        pruned = _mask_of(mask, (info.layers, info.heads))
        if pruned is None:
            raise PanelError("“B under the pruning card's mask”: choose heads to prune in the pruning card first.")
        model_b, text_b, same_text = info.model, r["text"], True  # one text under two masks
    if pruned is None and same_text and model_b == info.model:  # B = A: a zero map, not worth drawing
        empty = figures.empty_figure("Type text B, choose model B, or compare under the pruning mask")
        return {"a": empty, "b": empty, "diff": empty,
                "note": "Nothing to compare yet: B is the page's own text and model (its difference is 0)."}
    a, la, lay, hd, causal_a = _run_side(info.model, r["text"], r.get("text_pair"), r.get("max_tokens"), layer, head)
    if pruned is None:
        b, lb, lay_b, hd_b, causal_b = _run_side(model_b, text_b, r.get("text_pair") if same_text else None,
                                                 r.get("max_tokens"), layer, head)
    else:
        b, lb, lay_b, hd_b, causal_b = _run_side(info.model, r["text"], r.get("text_pair"), r.get("max_tokens"),
                                                 layer, head, pruned)
    fa = add_meta(figures.heatmap(a, la, la, causal=causal_a, uirevision="compare-a"), layer=lay, head=hd,
                  query_offset=0, key_offset=0)
    fb = add_meta(figures.heatmap(b, lb, lb, causal=causal_b, uirevision="compare-b"), layer=lay_b, head=hd_b,
                  query_offset=0, key_offset=0)
    where = f"layer {lay}, " + ("mean of heads" if hd is None else f"head {hd}")
    if pruned is not None:
        n = int(sum(x == 0 for row in pruned for x in row))
        diff = difference_figure(b - a, la)
        note = (f"A: {info.model}, all heads · B: the same text with the pruning card's {n} pruned heads "
                f"(gated to 0 inside the attention) · {where}. B − A cell by cell (largest change "
                f"{float(np.abs(b - a).max()):.3f}); layers before the first pruned one do not change.")
    elif la == lb and a.shape == b.shape:
        diff = difference_figure(b - a, la)
        note = (f"A: {info.model} · B: {model_b} · {where}. Same tokens, so B − A is drawn cell by cell "
                f"(largest change {float(np.abs(b - a).max()):.3f}).")
    else:
        diff = figures.empty_figure("Different tokens: no cell-by-cell difference")
        note = (f"A: {info.model} ({len(la)} tokens) · B: {model_b} ({len(lb)} tokens) · {where}. The token "
                f"sequences differ, so the two maps are shown side by side without a difference.")
    return {"a": fa, "b": fb, "diff": diff, "note": note}
