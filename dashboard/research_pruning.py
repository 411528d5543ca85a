"""The held-out pruning study, from plain data: the study's choices and defaults, its figure,
table and texts. Pure (numpy + plotly); the engine half (which pairs, the jobs, the cost of the
greedy order) is services/research_pruning.py.

    parse_seeds / parse_share               validated user choices (the browser sends them)
    study_figure(study)                     metric vs share pruned: each method with its bootstrap band,
                                            random mean ± std over seeds and each seed faintly
    study_rows(study, shares)               the table at 30 % and 50 %: value, 95 % CI, z, p
    study_text(study) / greedy_note(...)    what was computed, on what, how
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import plotly.graph_objects as go

from dashboard import figures
from dashboard.pruning_views import progress_reporter

DEFAULT_METHODS = ("loss-gradient", "output-sensitivity", "output-sensitivity-iterative")
METHOD_LABELS = {
    "loss-gradient": "loss gradient (one-shot)",
    "output-sensitivity": "output sensitivity (one-shot)",
    "loss-gradient-iterative": "loss gradient (iterative)",
    "output-sensitivity-iterative": "output sensitivity (iterative)",
    "cosine-spread": "pair-cosine spread (one-shot)",
    "cosine-spread-iterative": "pair-cosine spread (iterative)",
    "greedy": "greedy leave-one-out",
    "random": "random",
}
COLORS = {"loss-gradient": "#2563eb", "output-sensitivity": "#dc2626", "loss-gradient-iterative": "#7c3aed",
          "output-sensitivity-iterative": "#ea580c", "cosine-spread": "#db2777", "cosine-spread-iterative": "#9d174d",
          "greedy": "#059669", "random": "#6b7280"}
DEFAULT_SEEDS = 8

MIN_SEEDS, MAX_SEEDS = 5, 20
DEFAULT_ESTIMATE = 50  # percent of the pairs that estimate importance
TABLE_SHARES = (0.3, 0.5)
BUNDLED_STUDY_LABEL = "bundled paraphrase pairs (184)"


def parse_seeds(seeds) -> int:
    try:
        n = int(seeds)
    except (TypeError, ValueError):
        return DEFAULT_SEEDS
    return max(MIN_SEEDS, min(MAX_SEEDS, n))


def parse_share(percent) -> float:
    try:
        p = float(percent)
    except (TypeError, ValueError):
        return DEFAULT_ESTIMATE / 100
    if not np.isfinite(p):
        return DEFAULT_ESTIMATE / 100
    return max(20.0, min(80.0, p)) / 100


def greedy_note(cost: dict | None) -> str:
    if not cost:
        return ""
    mins = cost["seconds"] / 60
    return (f"Greedy leave-one-out up to 50 % of heads: {cost['evaluations']:,} evaluations of the "
            f"{cost['n_estimate']} estimate pairs, ~{cost['seconds_each']:.2f} s each here "
            f"(one measured on this server): at least {mins:.0f} min, more while the server is busy (bench: "
            f"228 s estimated, 370 s taken on a shared machine). Runs in the background; its progress line "
            f"re-estimates the time left; Cancel stops it.")


def eta_reporter(set_progress: Callable | None, what: str) -> Callable[[int, int], None]:
    """progress(done, total) -> set_progress((%, "what: done of total steps (p%), about m min left"))."""
    return progress_reporter(set_progress, what, eta=True)


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def _band(x, lo, hi, color, name, group) -> list[go.Scatter]:
    return [go.Scatter(x=x, y=hi, mode="lines", line=dict(width=0), hoverinfo="skip", showlegend=False,
                       legendgroup=group, name=f"{name} band"),
            go.Scatter(x=x, y=lo, mode="lines", line=dict(width=0), fill="tonexty", hoverinfo="skip",
                       fillcolor=_rgba(color, 0.15), showlegend=False, legendgroup=group, name=f"{name} band")]


def study_figure(study: dict | None, model: str | None = None) -> go.Figure:
    """Metric vs share pruned on the evaluation split. Per method: its curve and the 2.5–97.5 %
    bootstrap band over evaluation pairs; random: the mean over seeds with ± 1 std shaded and each
    seed as a thin line."""
    if not study:
        return figures.empty_figure("Run the held-out study to see curves with confidence bands")
    if model is not None and study.get("model") != model:
        return figures.empty_figure(f"This study is for {study.get('model')}: run it again for {model}")
    x = [float(s) for s in study["shares"]]
    fig = go.Figure()
    grey = COLORS["random"]
    for i, run in enumerate(study["random_runs"]):
        fig.add_trace(go.Scatter(x=x, y=run, mode="lines", line=dict(color=_rgba(grey, 0.35), width=1),
                                 hoverinfo="skip", showlegend=False, legendgroup="random", name=f"random seed {i}"))
    mean, std = np.asarray(study["random_mean"]), np.asarray(study["random_std"])
    fig.add_traces(_band(x, (mean - std).tolist(), (mean + std).tolist(), grey, "random", "random"))
    fig.add_trace(go.Scatter(x=x, y=mean.tolist(), mode="lines+markers", legendgroup="random",
                             name=f"random (mean ± std, {study['seeds']} seeds)",
                             line=dict(color=grey, dash="dot", width=2),
                             hovertemplate="random: %{x:.0%} pruned · %{y:.4f}<extra></extra>"))
    for m in study["methods"]:
        color = COLORS.get(m, "#111827")
        label = METHOD_LABELS.get(m, m)
        fig.add_traces(_band(x, study["band_lo"][m], study["band_hi"][m], color, label, m))
        fig.add_trace(go.Scatter(x=x, y=study["curves"][m], mode="lines+markers", name=label, legendgroup=m,
                                 line=dict(color=color, width=2.5 if m == study.get("default") else 1.8),
                                 hovertemplate=f"{label}: %{{x:.0%}} pruned · %{{y:.4f}}<extra></extra>"))
    better = "↑ better" if study.get("higher_is_better", True) else "↓ better"
    fig.update_layout(
        xaxis=dict(title=dict(text="share of heads pruned (evaluation split)"), tickformat=".0%", zeroline=False),
        yaxis=dict(title=dict(text=f"{figures.escape_label(study['metric'])[:48]} ({better})"), automargin=True),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0),
        hovermode="x unified", margin=dict(l=8, r=8, t=48, b=8),
    )
    fig.update_layout(meta={"kind": "held_out_study", "methods": study["methods"], "model": study.get("model"),
                            "n_estimate": study["n_estimate"], "n_evaluate": study["n_evaluate"]})
    return fig


def _at(study: dict, share: float) -> int | None:
    for i, s in enumerate(study["shares"]):
        if abs(float(s) - share) < 1e-9:
            return i
    return None


def study_rows(study: dict | None, shares=TABLE_SHARES) -> list[dict]:
    """Rows {"method", "label", "cells": [{"share", "value", "ci", "z", "p", "beats"}]} for the table.
    beats: z >= 2 (the method is at least 2 random-order std above the random mean)."""
    if not study:
        return []
    idx = [(s, _at(study, s)) for s in shares]
    rows = []
    for m in study["methods"]:
        cells = []
        for s, i in idx:
            if i is None:
                continue
            z = study["z"][m][i]
            cells.append({"share": s, "value": study["curves"][m][i], "ci": (study["band_lo"][m][i],
                                                                              study["band_hi"][m][i]),
                          "z": z, "p": study["p_worse"][m][i], "beats": z >= 2.0})
        rows.append({"method": m, "label": METHOD_LABELS.get(m, m), "cells": cells,
                     "default": m == study.get("default")})
    cells = []
    for s, i in idx:
        if i is None:
            continue
        cells.append({"share": s, "value": study["random_mean"][i], "std": study["random_std"][i],
                      "ci": (study["random_band_lo"][i], study["random_band_hi"][i])})
    rows.append({"method": "random", "label": f"random ({study['seeds']} seeds)", "cells": cells, "default": False})
    return rows


def study_text(study: dict | None) -> str:
    if not study:
        return ""
    secs = sum(v for v in (study.get("seconds") or {}).values())
    names = "; ".join(f"{METHOD_LABELS.get(m, m)} = {study['method_text'].get(m, m)}" for m in study["methods"])
    return (f"{study.get('model')} · {study.get('corpus')}: importance estimated on {study['n_estimate']} pairs, "
            f"curves evaluated on the other {study['n_evaluate']} (split seed {study['split_seed']}). "
            f"Metric: {study['metric']}. Bands: 2.5–97.5 % of {study['bootstrap']} bootstrap resamples of the "
            f"evaluation pairs (the same resamples for every order); random: {study['seeds']} seeded orders, "
            f"mean ± std. z = (method − random mean) / random std; p = share of resamples where the method "
            f"is not better than the random mean. Methods: {names}. {secs:.0f} s.")
