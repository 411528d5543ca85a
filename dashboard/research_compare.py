"""Compare two runs: the difference figure B − A, from plain data (pure; the run-bound half,
which computes both sides, is services/research_compare.py)."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from dashboard import figures

MAX_TEXT_CHARS = 5000



def difference_figure(diff, labels) -> go.Figure:
    """B − A as a diverging heatmap (blue: B attends less, red: more; white 0). diff [T,T]."""
    d = np.asarray(diff, dtype=np.float32)
    top = float(max(np.nanmax(np.abs(d)) if d.size else 0.0, 1e-6))
    fig = go.Figure(go.Heatmap(
        z=figures.rounded(d, 4), x=list(range(d.shape[1])), y=list(range(d.shape[0])), zmin=-top, zmax=top,
        zmid=0, colorscale="RdBu_r", colorbar=dict(title=dict(text="B − A"), thickness=12),
        customdata=[[f"{figures.escape_label(labels[i])} → {figures.escape_label(labels[j])}"
                     for j in range(d.shape[1])] for i in range(d.shape[0])],
        hovertemplate="%{customdata}: %{z:+.3f}<extra></extra>", name="difference"))
    ticks = [figures.escape_label(t) for t in labels]
    fig.update_xaxes(tickvals=list(range(len(ticks))), ticktext=ticks, side="top", tickangle=-60)
    fig.update_yaxes(tickvals=list(range(len(ticks))), ticktext=ticks, autorange="reversed", scaleanchor="x")
    fig.update_layout(margin=dict(l=8, r=8, t=8, b=8), plot_bgcolor="rgba(0,0,0,0)", uirevision="compare-diff",
                      meta={"kind": "difference", "max_abs": top})
    return fig
