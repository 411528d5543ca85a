"""Compare two runs side by side: the page's run (A) and a second text and/or model (B), raw
weights of the page's layer and head (or mean of heads) from models.measures, and their
difference B − A when both runs have the same tokens (same text on two models that share a
tokenizer, or the same model and text: a zero map). Pure builders; the callback is thin.

    compare_view(store, text_b, model_b, layer, head) -> {"a", "b", "diff", "note"}
"""
from __future__ import annotations

import numpy as np

from dashboard import figures
from dashboard.figures import add_meta
from dashboard.research_compare import MAX_TEXT_CHARS, difference_figure  # noqa: F401 - re-exported
from dashboard.selection import MEAN, parse_head, parse_index
from models.errors import PanelError
from services.pruning_card import run_info
from services.research_measures import compute_measures


def _side(model: str, text: str, pair, max_tokens, layer, head):
    from models import loader

    loaded = loader.get_loaded(model)
    m = compute_measures(model, text, pair, max_tokens)
    L, H = m.raw.shape[:2]
    lay = parse_index(layer)
    lay = 0 if lay is None else min(lay, L - 1)
    hd = parse_head(head)
    hd = None if hd in (None, MEAN) else min(int(hd), H - 1)
    return m.matrix("raw", lay, hd), list(m.tokens), lay, hd, loaded.architecture == "decoder"


def compare_view(store, text_b, model_b, layer, head) -> dict:
    from models import registry

    info = run_info(store)
    r = info.request
    if model_b not in registry.model_names():
        model_b = info.model
    text_b = text_b.strip() if isinstance(text_b, str) and text_b.strip() else r["text"]
    if len(text_b) > MAX_TEXT_CHARS:
        raise PanelError(f"Text B is longer than {MAX_TEXT_CHARS} characters.")
    same_text = text_b == r["text"]
    a, la, lay, hd, causal_a = _side(info.model, r["text"], r.get("text_pair"), r.get("max_tokens"), layer, head)
    b, lb, lay_b, hd_b, causal_b = _side(model_b, text_b, r.get("text_pair") if same_text else None,
                                         r.get("max_tokens"), layer, head)
    fa = add_meta(figures.heatmap(a, la, la, causal=causal_a, uirevision="compare-a"), layer=lay, head=hd,
                  query_offset=0, key_offset=0)
    fb = add_meta(figures.heatmap(b, lb, lb, causal=causal_b, uirevision="compare-b"), layer=lay_b, head=hd_b,
                  query_offset=0, key_offset=0)
    where = f"layer {lay}, " + ("mean of heads" if hd is None else f"head {hd}")
    if la == lb and a.shape == b.shape:
        diff = difference_figure(b - a, la)
        note = (f"A: {info.model} · B: {model_b} · {where}. Same tokens, so B − A is drawn cell by cell "
                f"(largest change {float(np.abs(b - a).max()):.3f}).")
    else:
        diff = figures.empty_figure("Different tokens: no cell-by-cell difference")
        note = (f"A: {info.model} ({len(la)} tokens) · B: {model_b} ({len(lb)} tokens) · {where}. The token "
                f"sequences differ, so the two maps are shown side by side without a difference.")
    return {"a": fa, "b": fb, "diff": diff, "note": note}
