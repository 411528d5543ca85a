"""Model view: every layer x head of a run as thumbnails in one figure (BertViz's model view,
drawn as one heatmap instead of 72 HTML canvases).

    model_view(weights [L,H,T,T], *, max_tokens=12, selected=None, pool=1) -> go.Figure

Head h of layer l occupies x in (h - 0.45, h + 0.45), y in (l - 0.45, l + 0.45): its T x T
weights (block-averaged to <= max_tokens per side) are drawn inside that box, NaN columns/rows
between boxes leave gaps. So rounding a hovered or clicked point's (x, y) gives (head, layer),
exactly as on the layers x heads grids: assets/hover.js fromGrid / headFromGrid serve it
unchanged, and the page's hovered-head outline (class head-grid) lands on the thumbnail.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from dashboard import figures


def _axis(n_boxes: int, t: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions [n_boxes * (t + 1)] of the cells (t per box + one gap after each) and a mask
    of which positions are gaps."""
    pos, gap = [], []
    for b in range(n_boxes):
        pos.extend(b - 0.45 + 0.9 * (j + 0.5) / t for j in range(t))
        gap.extend([False] * t)
        pos.append(b + 0.5)
        gap.append(True)
    return np.asarray(pos), np.asarray(gap)


THUMB_TOKENS = 12  # tokens per side of a thumbnail


def model_view(weights, *, max_tokens: int = THUMB_TOKENS, selected: tuple[int, int] | None = None,
               title: str = "", pool: int = 1) -> go.Figure:
    """weights [L,H,T,T] (or already averaged by `pool` x `pool` blocks of tokens: pool says by how
    much, for the figure's meta and note)."""
    w = np.asarray(weights, dtype=np.float32)
    if w.ndim != 4:
        raise ValueError(f"model_view needs weights [L,H,T,T], got {w.shape}")
    L, H = w.shape[:2]
    small, f = figures.block_average(w, max_tokens)   # [L,H,t,t]
    f *= max(1, int(pool))
    t = small.shape[-1]
    xs, xgap = _axis(H, t)
    ys, ygap = _axis(L, t)
    z = np.full((len(ys), len(xs)), np.nan, dtype=np.float32)
    for layer in range(L):
        for head in range(H):
            r0, c0 = layer * (t + 1), head * (t + 1)
            z[r0:r0 + small.shape[-2], c0:c0 + t] = small[layer, head]
    fig = go.Figure(go.Heatmap(
        z=figures.rounded(z), x=figures.rounded(xs, 4), y=figures.rounded(ys, 4), zmin=0, zmax=1,
        colorscale=figures._scale("accent"), showscale=False, hoverongaps=False, name="model-view",
        hovertemplate="L%{y:.0f} H%{x:.0f}<extra></extra>",
    ))
    fig.update_xaxes(tickvals=list(range(H)), ticktext=[f"H{h}" for h in range(H)], side="top", showgrid=False,
                     zeroline=False, range=[-0.5, H - 0.5])
    fig.update_yaxes(tickvals=list(range(L)), ticktext=[f"L{l}" for l in range(L)], autorange="reversed",
                     showgrid=False, zeroline=False, range=[L - 0.5, -0.5])
    shapes = []
    if selected is not None:
        shapes.append(dict(type="rect", name="selected", xref="x", yref="y", x0=selected[1] - 0.5,
                           x1=selected[1] + 0.5, y0=selected[0] - 0.5, y1=selected[0] + 0.5,
                           line=dict(color=figures.SELECTED_COLOR, width=2.5), fillcolor="rgba(0,0,0,0)"))
    fig.update_layout(shapes=shapes, margin=dict(l=8, r=8, t=36, b=8), height=90 + 60 * L,
                      plot_bgcolor="rgba(0,0,0,0)", uirevision="model-view",
                      meta={"kind": "model_view", "layers": L, "heads": H, "thumb_tokens": t, "pool": f,
                            "selected": None if selected is None else list(map(int, selected))})
    if title:
        fig.update_layout(title=dict(text=figures.escape_label(title), x=0, font=dict(size=13)))
    return fig
