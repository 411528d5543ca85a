"""The research card's model view: every layer x head of the run's raw weights as thumbnails
(BertViz's model view), from the run service's capture: the same numbers the heatmap shows, no
second forward pass. The attention measures are the heatmap card's (models/measure_views.py).

    model_view_figure(store, layer, head) -> (figure, note)
    model_view_off() -> (figure, note)   while the card's switch is off (nothing computed)
"""
from __future__ import annotations

import functools

import numpy as np

from dashboard import figures
from dashboard.research_modelview import THUMB_TOKENS, model_view
from dashboard.selection import MEAN, parse_head, parse_index
from models import service
from services.pruning_card import base_request_of, run_info


@functools.lru_cache(maxsize=4)
def _thumbnails(request: service.RunRequest, max_tokens: int) -> tuple[np.ndarray, int, int]:
    """(thumbs float32 [L, H, t, t], pool factor f, tokens T): every head of the run's main block,
    as the model computed it (the run service's capture, no second forward), averaged in f x f
    blocks of tokens so each side is <= max_tokens. Kept for the last few runs of this process."""
    run = service.get_run(request)
    b = run.main
    thumbs = []
    for layer in range(b.n_layers):
        pooled = [figures.block_average(run.head_weights(layer, h), max_tokens) for h in range(b.n_heads)]
        thumbs.append(np.stack([p for p, _ in pooled]))
    f = pooled[0][1]
    out = np.stack(thumbs)
    out.setflags(write=False)
    return out, f, b.n_queries


def model_view_figure(store: dict | None, layer, head):
    """(figure, note): dashboard.research_modelview of the run's raw weights (the run service's
    capture of the main block: the same numbers the heatmap shows), the page's head outlined."""
    info = run_info(store)
    thumbs, f, n_tokens = _thumbnails(base_request_of(info.request), THUMB_TOKENS)
    L, H = thumbs.shape[:2]
    lay, hd = parse_index(layer), parse_head(head)
    selected = (min(lay, L - 1), min(int(hd), H - 1)) if lay is not None and hd not in (None, MEAN) else None
    fig = model_view(thumbs, selected=selected, max_tokens=THUMB_TOKENS, pool=f)
    meta = fig.layout.meta
    pooled = "" if meta["pool"] == 1 else f", each {meta['pool']}×{meta['pool']} block of tokens averaged"
    note = (f"All {L} layers × {H} heads, raw weights, {n_tokens} tokens ({meta['thumb_tokens']} per side"
            f"{pooled}; one colour scale 0–1). Hover outlines the head everywhere; click shows it.")
    return fig, note


def model_view_off():
    """(figure, note) while the model view's switch is off: nothing is computed (a new text rebuilds
    only the shown layer; the model view would rebuild all L x H heads)."""
    return (figures.empty_figure("Switch on “Draw every layer × head” to draw the model view"),
            "Off: the model view rebuilds every head of every layer from the run, so it is drawn only on request.")
