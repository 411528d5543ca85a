"""The research card's views of models.measures: the model view (every layer x head of the raw
weights) and `compute_measures` for it and for compare. The attention measures themselves are the
heatmap card's (models/measure_views.py, dashboard/measure_view.py).

    compute_measures(model, text, pair, max_tokens) -> models.measures.Measures
    model_view_figure(store, layer, head) -> (figure, note)
"""
from __future__ import annotations

from dashboard.selection import MEAN, parse_head, parse_index
from models import measures
from models.errors import PanelError
from services.pruning_card import run_info


def compute_measures(model: str, text: str, pair, max_tokens) -> measures.Measures:
    """models.measures.compute for a registry model; a family it cannot measure is a PanelError."""
    from models import loader

    try:
        return measures.compute(loader.get_loaded(model), text, pair, max_tokens=max_tokens)
    except NotImplementedError as exc:
        raise PanelError(str(exc)) from None


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
