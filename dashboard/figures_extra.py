"""Small pure additions to dashboard/figures.py (owned by another engineer): shapes the page
needs that figures.py does not draw. Plain dicts / figures in, figures out."""
from __future__ import annotations

import plotly.graph_objects as go

from dashboard.figures import SELECTED_COLOR


def layer_outline(layer: int, heads: int, *, name: str = "selected") -> dict:
    """A rectangle around a whole row (layer) of a layers x heads grid: "mean of all heads"."""
    return dict(type="rect", name=name, xref="x", yref="y", x0=-0.5, x1=heads - 0.5,
                y0=layer - 0.5, y1=layer + 0.5, line=dict(color=SELECTED_COLOR, width=3.5),
                fillcolor="rgba(0,0,0,0)", layer="above")


def panel_outline(index: int | None, *, name: str = "selected") -> list[dict]:
    """[] or the outline around panel `index` of figures.small_multiples (same look)."""
    if index is None:
        return []
    suffix = "" if int(index) == 0 else str(int(index) + 1)
    return [dict(type="rect", name=name, xref=f"x{suffix} domain", yref=f"y{suffix} domain",
                 x0=-0.02, x1=1.02, y0=-0.02, y1=1.02, line=dict(color=SELECTED_COLOR, width=3),
                 fillcolor="rgba(0,0,0,0)", layer="above")]


def add_meta(fig: go.Figure, **extra) -> go.Figure:
    """Merge `extra` into fig.layout.meta (a dict; figures.py puts the figure kind there)."""
    meta = dict(fig.layout.meta or {})
    meta.update(extra)
    fig.update_layout(meta=meta)
    return fig
