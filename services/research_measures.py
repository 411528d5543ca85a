"""The measure selector's view: one [query, key] matrix per measure drawn by figures.heatmap.

    measure_view(store, measure, layer, head, color_scale) -> (figure, title, explain)

The matrix comes from models.measures (pure functions of the model's own tensors); the figure
carries layout.meta {kind: "heatmap", layer, head, measure}, so hovering it writes the page's
hover store like the main heatmap (assets/hover.js fromHeatmap).
"""
from __future__ import annotations

import numpy as np

from dashboard import figures
from dashboard.figures import add_meta
from dashboard.research_panel import DEFAULT_MEASURE
from dashboard.selection import MEAN, parse_head, parse_index
from models import measures
from models.errors import PanelError
from services.pruning_card import run_info


def parse_measure(value) -> str:
    return value if isinstance(value, str) and value in measures.MEASURES else DEFAULT_MEASURE


def explain(measure: str, target: str | None = None) -> list[str]:
    """[formula, caveat(, target)] lines for the explain panel of the card."""
    formula, caveat = measures.MEASURE_TEXT[measure]
    lines = [f"{measures.MEASURE_LABELS[measure]}: {formula}", f"Caveat: {caveat}"]
    if measure == "grad-attention" and target:
        lines.append(f"Target: {target}.")
    return lines


def _matrix(m: measures.Measures, measure: str, layer: int, head: int | None) -> np.ndarray:
    try:
        mat = m.matrix(measure, layer, head)
    except ValueError as exc:
        raise PanelError(str(exc)) from None
    return np.abs(mat) if measure == "grad-attention" else mat


def compute_measures(model: str, text: str, pair, max_tokens) -> measures.Measures:
    """models.measures.compute for a registry model; a family it cannot measure is a PanelError."""
    from models import loader

    try:
        return measures.compute(loader.get_loaded(model), text, pair, max_tokens=max_tokens)
    except NotImplementedError as exc:
        raise PanelError(str(exc)) from None


def measure_view(store: dict | None, measure, layer, head, color_scale="accent"):
    """(figure, title, explain lines) for the run's text at the page's layer and head."""
    info = run_info(store)
    measure = parse_measure(measure)
    r = info.request
    m = compute_measures(info.model, r["text"], r.get("text_pair"), r.get("max_tokens"))
    L, H = m.raw.shape[:2]
    lay = parse_index(layer)
    lay = 0 if lay is None else min(lay, L - 1)
    hd = parse_head(head)
    hd = None if hd in (None, MEAN) or measure == "rollout" else min(int(hd), H - 1)
    mat = _matrix(m, measure, lay, hd)
    labels = list(m.tokens)
    zmax = None if measure == "raw" else "max"
    from models import loader

    causal = loader.get_loaded(info.model).architecture == "decoder"
    fig = figures.heatmap(mat, labels, labels, color_scale=color_scale or "accent", zmax=zmax, causal=causal,
                          uirevision=f"measure-{measure}")
    fig.update_layout(margin=dict(l=8, r=8, t=8, b=8))
    add_meta(fig, layer=lay, head=hd, measure=measure, query_offset=0, key_offset=0)
    where = f"layer {lay}" + ("" if measure == "rollout" else (" · mean of heads" if hd is None else f" · head {hd}"))
    if measure == "rollout":
        where = f"layers 0–{lay} (rolled out, heads averaged)"
    title = f"{measures.MEASURE_LABELS[measure]} · {where}"
    return fig, title, explain(measure, m.target)


def model_view_figure(store: dict | None, layer, head):
    """(figure, note): dashboard.research_modelview of the run's raw weights (models.measures'
    forward pass of the main self-attention block), the page's head outlined."""
    from dashboard.research_modelview import model_view
    info = run_info(store)
    r = info.request
    m = compute_measures(info.model, r["text"], r.get("text_pair"), r.get("max_tokens"))
    L, H = m.raw.shape[:2]
    lay, hd = parse_index(layer), parse_head(head)
    selected = (min(lay, L - 1), min(int(hd), H - 1)) if lay is not None and hd not in (None, MEAN) else None
    fig = model_view(m.raw, selected=selected)
    meta = fig.layout.meta
    pooled = "" if meta["pool"] == 1 else f", each {meta['pool']}×{meta['pool']} block of tokens averaged"
    note = (f"All {L} layers × {H} heads, raw weights, {len(m.tokens)} tokens ({meta['thumb_tokens']} per side"
            f"{pooled}; one colour scale 0–1). Hover outlines the head everywhere; click shows it.")
    return fig, note
