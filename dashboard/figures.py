"""Figure builders: plain numpy arrays / lists in, `plotly.graph_objects.Figure` out.

Pure functions: no Dash, no models, no I/O. services/ slices a run (see `services/views.py`)
and hand the slices here. Shapes are stated per function; `T` = tokens, `Tq`/`Tk` = query/key
tokens, `L`/`H` = layers/heads, `N` = panels.

JSON. Arrays become JSON in exactly one place, `rounded()` (and `rounded_array()`, the same
numbers in an object ndarray that plotly validates faster and writes as the same lists): values
rounded to 3 decimals (whole numbers as ints: `0` not `0.0`), NaN/inf -> None (null). A
heatmap costs at most ~6 bytes per cell ("0.123,"; 500 x 500 worst case 1.5 MB, real attention
~3 bytes since most weights round to a bare 0); no figure carries per-cell `customdata` for
token matrices. Note `fig.data[0].z` may hence be an object ndarray: compare via `fig.to_json()`.

Token axes. Tokens repeat ("the" twice), so axes are never categorical: cells sit at integer
positions 0..T-1 and the labels are `tickvals`/`ticktext`. plotly.js formats a hover `%{x}` /
`%{y}` through the axis ticks, so `%{x}` shows the token label while `%{x:d}` shows its index:
the hover names both tokens at no per-cell cost. Event data (`clickData`/`hoverData`) keeps the
raw numbers: in a heatmap `points[0].x` = key index, `points[0].y` = query index.
Labels are HTML-escaped (`<s>` -> `&lt;s&gt;`) because plotly renders a few tags in text;
it shows the escaped text as the original label.

Meta. Every figure's `layout.meta` is a small dict naming the kind, e.g.
`{"kind": "heatmap", "rows": Tq, "cols": Tk, ...}`; the page and tests read it.
Named shapes (`layout.shapes[i].name`): "boundary-x", "boundary-y", "highlight-row",
"highlight-col" (heatmap), "selected" (grids, small multiples), "current-share" (pruning curve).
Figures set no config; the page sets `config` (toImage options, mode bar) itself.
"""
from __future__ import annotations

import hashlib
import math
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.colors as pcolors
import plotly.graph_objects as go
import plotly.io as pio

# ---- constants -------------------------------------------------------------------------------


def _register_template(name: str = "attn") -> str:
    """plotly_white's look, only the parts our figures use, as the default template of every figure.

    plotly copies and validates a figure's whole template each time one is set: plotly_white (every
    trace type's defaults, polar / geo / 3-D scenes: 7 kB of JSON) cost ~6 ms per figure and ~20 % of
    the server's time under the new-text load (bench/load.py, py-spy); this one costs ~1 ms and is
    ~0.7 kB in every figure sent."""
    white = pio.templates["plotly_white"]
    layout = {k: v for k, v in white.layout.to_plotly_json().items()
              if k in ("autotypenumbers", "colorway", "font", "hoverlabel", "hovermode", "paper_bgcolor",
                       "plot_bgcolor", "title", "xaxis", "yaxis")}
    # every axis (x2, y3, ... too): tick labels may overflow. Plotly's default for linear axes, "hide
    # past div", measures every tick label's box on every redraw (getBoundingClientRect per label):
    # two thirds of a 200-token heatmap's redraw (~50 -> ~17 ms in Chromium, bench/browser.py). Our
    # axes reserve their labels' room with automargin, so nothing overflows.
    for axis in ("xaxis", "yaxis"):
        layout[axis] = dict(layout[axis], ticklabeloverflow="allow")
    data = {"heatmap": [{"type": "heatmap", "colorbar": {"outlinewidth": 0, "ticks": ""}}],
            "bar": [{"type": "bar", "marker": {"line": {"color": "white", "width": 0.5}}}]}
    pio.templates[name] = go.layout.Template(layout=layout, data=data)
    pio.templates.default = name  # go.Figure() starts from it (not from "plotly", copied then replaced)
    return name


TEMPLATE = _register_template()
FONT = dict(family="Inter, system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", size=12)
MASK_COLOR = "#eceef2"  # plot background: masked / NaN cells show this, distinct from a white 0
# right margin kept for the heatmap's colour bar: wider than the bar with its labels and title
# (~105 px), so the bar never pushes the margin and a head switch (new range, new labels) keeps
# the plot's size: a changed margin makes Plotly draw the whole figure twice
COLORBAR_ROOM = 124
SELECTED_COLOR = "#e6007e"  # outline of the selected head / panel / highlighted row+column
BOUNDARY_COLOR = "#1f2937"  # sentence-pair A|B separator
ACCENT = "#3730a3"  # indigo: bars and lines of the accent colour

SHOW_VALUES_MAX_TOKENS = 24  # heatmap show_values=None -> cell text iff max(Tq, Tk) <= this
MAX_TICK_LABELS = 80  # above this many tokens an axis labels every n-th token only
TARGET_TICK_LABELS = 40  # ... with n chosen so about this many labels remain
DEFAULT_ZMAX = 1.0  # weights are probabilities: one scale for every head (comparable colours)


def _ramp(colors: Sequence[str]) -> list[list]:
    return [[float(p), c] for p, c in pcolors.make_colorscale(list(colors))]


COLOR_SCALES: dict[str, list] = {
    # white -> deep indigo, one hue; rises quickly so small weights stay visible
    "accent": [[0.0, "#ffffff"], [0.08, "#eef2ff"], [0.2, "#c7d2fe"], [0.35, "#a5b4fc"],
               [0.5, "#818cf8"], [0.65, "#6366f1"], [0.8, "#4338ca"], [0.9, "#3730a3"],
               [1.0, "#1e1b4b"]],
    "mono": [[0.0, "#ffffff"], [1.0, "#000000"]],
    "viridis": _ramp(pcolors.sequential.Viridis),
    "cividis": _ramp(pcolors.sequential.Cividis),
}

# head roles (same names and order as models.metrics.ROLES); Okabe-Ito colour-blind-safe colours
ROLE_COLORS: dict[str, str] = {
    "previous-token": "#0072B2",  # blue
    "self": "#009E73",  # bluish green
    "sink": "#D55E00",  # vermillion
    "diffuse": "#BBBBBB",  # grey
    "mixed": "#E69F00",  # orange
}
ROLE_ABBREV: dict[str, str] = {"previous-token": "prev", "self": "self", "sink": "sink",
                               "diffuse": "diff", "mixed": "mix"}

# head_grid metric -> display defaults. zmax None = the data's max.
METRIC_STYLES: dict[str, dict] = {
    "entropy": dict(label="entropy", unit="bits", scale="viridis", zmin=0.0, zmax=None, fmt=".2f"),
    "entropy_norm": dict(label="normalised entropy", unit="", scale="viridis", zmin=0.0, zmax=1.0,
                         fmt=".2f"),
    "js": dict(label="JS divergence", unit="bits", scale="viridis", zmin=0.0, zmax=None, fmt=".3f"),
    "sink": dict(label="sink mass", unit="", scale="accent", zmin=0.0, zmax=1.0, fmt=".2f"),
    "diagonal": dict(label="self mass", unit="", scale="accent", zmin=0.0, zmax=1.0, fmt=".2f"),
    "previous": dict(label="previous-token mass", unit="", scale="accent", zmin=0.0, zmax=1.0,
                     fmt=".2f"),
    "max_weight": dict(label="max weight", unit="", scale="accent", zmin=0.0, zmax=1.0, fmt=".2f"),
    "importance": dict(label="importance", unit="", scale="accent", zmin=0.0, zmax=None, fmt=".3f"),
}
_DEFAULT_METRIC_STYLE = dict(unit="", scale="accent", zmin=None, zmax=None, fmt=".3g")

# pruning orders -> line colour / dash
ORDER_STYLES: dict[str, dict] = {
    "importance": dict(color=ACCENT, dash="solid"),
    "ablation": dict(color="#0f766e", dash="solid"),
    "entropy": dict(color="#D55E00", dash="solid"),
    "random": dict(color="#6b7280", dash="dot"),
}
_EXTRA_ORDER_COLORS = ("#0072B2", "#CC79A7", "#009E73", "#E69F00")


# ---- the one place where arrays become JSON ---------------------------------------------------
def rounded_array(arr, decimals: int = 3) -> np.ndarray:
    """`rounded`'s numbers in an object ndarray of the same shape (Python int / float / None).

    Figures put this in their traces: plotly validates an object array ~10x faster than the
    same nested lists and writes it as the very same JSON lists (object arrays are never
    base64-encoded), so `fig.to_json()` is identical.
    """
    a = np.asarray(arr, dtype=np.float64)
    finite = np.isfinite(a)
    r = np.round(np.where(finite, a, 0.0), decimals)
    r[r == 0] = 0.0  # no "-0.0"
    whole = finite & (r == np.trunc(r)) & (np.abs(r) < 2**53)
    out = r.astype(object)  # Python floats
    if whole.any():
        out[whole] = r[whole].astype(np.int64).tolist()
    out[~finite] = None
    return out


def rounded(arr, decimals: int = 3):
    """A numpy array (any shape, any float/int dtype incl. float16) as nested lists for JSON.

    Values are rounded to `decimals`; whole numbers come out as Python ints (`0`, `1`: two bytes
    fewer than `0.0`), others as Python floats; NaN and +-inf become None (JSON null, which
    plotly draws as an empty cell / a gap). A 0-d input gives a scalar (or None).
    """
    out = rounded_array(np.asarray(arr, dtype=np.float64).reshape(-1) if np.ndim(arr) == 0
                        else arr, decimals)
    return out[0] if np.ndim(arr) == 0 else out.tolist()


# ---- small helpers ---------------------------------------------------------------------------
def escape_label(label) -> str:
    """A token label safe for plotly text (tick labels, hover, annotations): & < > escaped."""
    return str(label).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _labels(labels: Sequence) -> list[str]:
    return [escape_label(x) for x in labels]


def _digest(*parts) -> str:
    """Short, process-independent hash (gunicorn workers must agree on uirevision)."""
    h = hashlib.blake2b(digest_size=6)
    for p in parts:
        h.update(repr(p).encode("utf-8", "surrogatepass"))
        h.update(b"\x1f")
    return h.hexdigest()


def _scale(color_scale) -> list | str:
    """A COLOR_SCALES key, an explicit plotly colour scale list, or a plotly scale name."""
    if color_scale is None:
        return COLOR_SCALES["accent"]
    if isinstance(color_scale, str) and color_scale in COLOR_SCALES:
        return COLOR_SCALES[color_scale]
    return color_scale


def _tick_step(n: int) -> int:
    """Label every token up to MAX_TICK_LABELS, else every n-th (about TARGET_TICK_LABELS)."""
    return 1 if n <= MAX_TICK_LABELS else math.ceil(n / TARGET_TICK_LABELS)


def _ink(background: str) -> str:
    """Near-black or white text, whichever reads better on a "#rrggbb" background."""
    rgb = [int(background[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    lum = 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]
    return "#111827" if lum > 0.179 else "#ffffff"


def _finish(fig: go.Figure, meta: dict, *, title: str = "", uirevision=None,
            margin: dict | None = None) -> go.Figure:
    m = dict(l=8, r=8, t=40 if title else 10, b=8)
    m.update(margin or {})
    fig.update_layout(  # (the template: TEMPLATE is plotly's default, every go.Figure() starts with it)
        font=FONT,
        meta=meta,
        margin=m,
        title=dict(text=title, x=0.01, xanchor="left", font=dict(size=14)) if title else None,
    )
    if uirevision is not None:
        fig.update_layout(uirevision=uirevision)
    return fig


def _rect(x0, x1, y0, y1, *, name, color=SELECTED_COLOR, width=2.5, xref="x", yref="y") -> dict:
    return dict(type="rect", name=name, xref=xref, yref=yref, x0=x0, x1=x1, y0=y0, y1=y1,
                line=dict(color=color, width=width), fillcolor="rgba(0,0,0,0)", layer="above")


def _as_2d(weights, what: str) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float32)
    if w.ndim != 2:
        raise ValueError(f"{what} must be 2-D, got shape {w.shape}")
    return w


def _resolve_zmax(zmax, values: np.ndarray) -> float:
    """The colour scale's top: None -> DEFAULT_ZMAX (1.0), "max" -> the largest finite value (if > 0)."""
    if zmax is None:
        return DEFAULT_ZMAX
    if zmax == "max":
        finite = values[np.isfinite(values)]
        return float(finite.max()) if finite.size and finite.max() > 0 else DEFAULT_ZMAX
    return float(zmax)


def _causal_mask(tq: int, tk: int) -> np.ndarray:
    """bool [Tq, Tk]: True where key > query (+ Tk - Tq when the key side is longer)."""
    return np.triu(np.ones((tq, tk), dtype=bool), k=1 + (tk - tq))


# ---- 1. heatmap of one head ------------------------------------------------------------------
def heatmap(weights, queries: Sequence[str], keys: Sequence[str], *, color_scale="accent",
            show_values: bool | None = None, causal: bool = False, boundary: int | None = None,
            title: str = "", highlight: tuple[int | None, int | None] | None = None,
            zmax: float | str | None = None, square: bool = True, uirevision=None,
            x_title: str = "attends to (key)", y_title: str = "attends from (query)",
            with_z: bool = True) -> go.Figure:
    """Attention weights of one head (or a mean of heads) as a heatmap.

    weights: float [Tq, Tk] (float16 fine), rows = query tokens ("attends from", y, top to
      bottom in token order), columns = key tokens ("attends to", x).
    queries / keys: Tq / Tk token labels; duplicates are fine (integer positions + ticktext).
    causal: cells with key > query are set to NaN and drawn EMPTY (plot background
      MASK_COLOR), not as a zero.
    show_values: None -> True iff max(Tq, Tk) <= SHOW_VALUES_MAX_TOKENS (24); True draws the
      weight (2 decimals) in each cell, text colour picked by plotly for contrast per cell.
    boundary: index of the first token of segment B (sentence pair): thin lines between the
      A and B blocks on both axes (shapes "boundary-x" at key boundary-0.5 and "boundary-y").
    highlight: (query, key), either may be None: outlines that row ("highlight-row") and
      column ("highlight-col"); the page does the same clientside, this is for static export.
    zmax: colour scale top. None -> DEFAULT_ZMAX = 1.0, the same for every head so colours
      compare between heads and layers (a flat head looks pale, as it should); "max" -> this
      matrix's max; or a number. zmin is always 0.
    square: square cells (y scaleanchor x, axes constrained to their domain).
    uirevision: layout.uirevision; default derived from the labels, so zoom survives a
      change of head / layer / colour scale but resets for a new text.
    with_z: False leaves z empty (the caller sends the matrix as bytes, dashboard/transport.py):
      plotly copies and validates a 500 x 500 z cell by cell, ~40 % of the heatmap request.

    Hover: "from 3 (the) → to 5 (cat): 0.512". Above MAX_TICK_LABELS (80) tokens an axis
    labels every n-th token (on overlay axes x2/y2 driven by an empty trace), while the
    heatmap's own axes keep every label, hidden, for the hover. data[0] is the heatmap.
    """
    w = _as_2d(weights, "weights")
    tq, tk = w.shape
    if len(queries) != tq or len(keys) != tk:
        raise ValueError(f"weights {w.shape} do not match {len(queries)} query x {len(keys)} key labels")
    if tq == 0 or tk == 0:
        return empty_figure("no tokens")
    if causal:
        w = w.copy()
        w[_causal_mask(tq, tk)] = np.nan
    if show_values is None:
        show_values = max(tq, tk) <= SHOW_VALUES_MAX_TOKENS
    zmax = _resolve_zmax(zmax, w)

    qlab, klab = _labels(queries), _labels(keys)
    trace = go.Heatmap(
        z=rounded_array(w) if with_z else [],
        x0=0, dx=1, y0=0, dy=1,
        zmin=0.0, zmax=zmax, zauto=False,
        colorscale=_scale(color_scale),
        colorbar=dict(title=dict(text="weight", side="right"), thickness=12, len=0.9,
                      outlinewidth=0),
        hoverongaps=False,
        hovertemplate="from %{y:d} (%{y}) → to %{x:d} (%{x}): %{z:.3f}<extra></extra>",
        xgap=1 if show_values else 0, ygap=1 if show_values else 0,
        name="attention",
    )
    if show_values:
        trace.update(texttemplate="%{z:.2f}", texttemplatefallback="")
    fig = go.Figure()
    fig.add_trace(trace)  # (go.Figure(trace) deep-copies z: 10x slower for 500 tokens)

    axis_common = dict(tickmode="array", showgrid=False, zeroline=False, ticks="",
                       automargin=True, showline=False)
    x_main = dict(axis_common, tickvals=list(range(tk)), ticktext=klab, tickangle=-60,
                  range=[-0.5, tk - 0.5], title=dict(text=x_title))
    y_main = dict(axis_common, tickvals=list(range(tq)), ticktext=qlab,
                  autorange="reversed", title=dict(text=y_title))
    if square:
        x_main.update(constrain="domain")
        y_main.update(scaleanchor="x", scaleratio=1, constrain="domain")
    overlay = max(tq, tk) > MAX_TICK_LABELS
    if overlay:
        sx, sy = _tick_step(tk), _tick_step(tq)
        fig.add_trace(go.Scatter(x=[], y=[], xaxis="x2", yaxis="y2", hoverinfo="skip",
                                 showlegend=False, name="tick-labels"))
        fig.update_layout(
            xaxis2=dict(axis_common, overlaying="x", matches="x", anchor="y2", side="bottom",
                        tickvals=list(range(0, tk, sx)), ticktext=klab[::sx], tickangle=-60,
                        title=x_main.pop("title")),
            yaxis2=dict(axis_common, overlaying="y", matches="y", anchor="x2", side="left",
                        tickvals=list(range(0, tq, sy)), ticktext=qlab[::sy],
                        title=y_main.pop("title")),
        )
        x_main.update(showticklabels=False)
        y_main.update(showticklabels=False)
    fig.update_layout(xaxis=x_main, yaxis=y_main, plot_bgcolor=MASK_COLOR,
                      hoverlabel=dict(font=dict(family=FONT["family"])))

    shapes = []
    if boundary is not None:
        b = int(boundary)
        if 0 < b < tk:
            shapes.append(dict(type="line", name="boundary-x", xref="x", yref="y domain",
                               x0=b - 0.5, x1=b - 0.5, y0=0, y1=1,
                               line=dict(color=BOUNDARY_COLOR, width=1.5), layer="above"))
        if 0 < b < tq:
            shapes.append(dict(type="line", name="boundary-y", xref="x domain", yref="y",
                               x0=0, x1=1, y0=b - 0.5, y1=b - 0.5,
                               line=dict(color=BOUNDARY_COLOR, width=1.5), layer="above"))
    if highlight is not None:
        hq, hk = highlight
        if hq is not None and 0 <= int(hq) < tq:
            shapes.append(_rect(-0.5, tk - 0.5, int(hq) - 0.5, int(hq) + 0.5, name="highlight-row"))
        if hk is not None and 0 <= int(hk) < tk:
            shapes.append(_rect(int(hk) - 0.5, int(hk) + 0.5, -0.5, tq - 0.5, name="highlight-col"))
    if shapes:
        fig.update_layout(shapes=shapes)

    meta = {"kind": "heatmap", "rows": tq, "cols": tk, "show_values": bool(show_values),
            "causal": bool(causal), "zmax": zmax, "boundary": boundary,
            "tick_overlay": overlay}
    if uirevision is None:
        uirevision = "heatmap:" + _digest(list(queries), list(keys))
    return _finish(fig, meta, title=title, uirevision=uirevision, margin=dict(r=COLORBAR_ROOM))


def pooled_heatmap(values, row_ranges: Sequence[tuple[int, int]], col_ranges: Sequence[tuple[int, int]], *,
                   pool: str = "max", color_scale="accent", zmax: float | str | None = None,
                   title: str = "", uirevision=None, detail: str = "",
                   x_title: str = "attends to (key)", y_title: str = "attends from (query)") -> go.Figure:
    """The overview of a long head: float [R, C] block values (block max or block mean of the
    weights; NaN = a block the query side cannot attend to), one cell per block of tokens.

    row_ranges / col_ranges: R / C (first, last) token positions of each block; they are the
    axes' categories ("12–15"), so the hover names the block's query and key ranges and value
    without asking the server. detail: appended to the hover text (e.g. the quantisation step).
    Box-zoom on it makes the page fetch the exact window (layout.meta.pooled).
    """
    w = _as_2d(values, "values")
    r, c = w.shape
    if len(row_ranges) != r or len(col_ranges) != c:
        raise ValueError(f"values {w.shape} do not match {len(row_ranges)} x {len(col_ranges)} ranges")
    ylab = [f"{a}–{b}" if b > a else str(a) for a, b in row_ranges]
    xlab = [f"{a}–{b}" if b > a else str(a) for a, b in col_ranges]
    zmax = _resolve_zmax(zmax, w)
    extra = f" · {escape_label(detail)}" if detail else ""
    trace = go.Heatmap(
        z=rounded_array(w, 4), x=xlab, y=ylab, zmin=0.0, zmax=zmax, zauto=False,
        colorscale=_scale(color_scale),
        colorbar=dict(title=dict(text=f"block {pool}", side="right"), thickness=12, len=0.9, outlinewidth=0),
        hoverongaps=False, name="attention",
        hovertemplate=f"queries %{{y}} → keys %{{x}}: block {pool} %{{z:.4f}}{extra}<extra></extra>",
    )
    fig = go.Figure()
    fig.add_trace(trace)
    axis = dict(type="category", showgrid=False, zeroline=False, ticks="", automargin=True, showline=False,
                nticks=12)
    fig.update_layout(
        xaxis=dict(axis, tickangle=-60, constrain="domain", title=dict(text=x_title)),
        yaxis=dict(axis, autorange="reversed", scaleanchor="x", scaleratio=1, constrain="domain",
                   title=dict(text=y_title)),
        plot_bgcolor=MASK_COLOR, hoverlabel=dict(font=dict(family=FONT["family"])))
    meta = {"kind": "heatmap", "pooled": True, "pool": pool, "rows": r, "cols": c, "zmax": zmax,
            "row_starts": [a for a, _ in row_ranges], "col_starts": [a for a, _ in col_ranges]}
    if uirevision is None:
        uirevision = "pooled:" + _digest(ylab[:3], xlab[:3], r, c)
    return _finish(fig, meta, title=title, uirevision=uirevision, margin=dict(r=COLORBAR_ROOM))


# ---- 2. layer x head grids -------------------------------------------------------------------
def _grid_axes(fig: go.Figure, layers: int, heads: int) -> None:
    common = dict(tickmode="array", showgrid=False, zeroline=False, ticks="", automargin=True)
    fig.update_layout(
        xaxis=dict(common, tickvals=list(range(heads)), ticktext=[f"H{h}" for h in range(heads)],
                   range=[-0.5, heads - 0.5], side="top", title=None, constrain="domain"),
        yaxis=dict(common, tickvals=list(range(layers)), ticktext=[f"L{l}" for l in range(layers)],
                   autorange="reversed", title=None, scaleanchor="x", constrain="domain"),
        plot_bgcolor=MASK_COLOR,
    )


def _selected_cell(selected, layers: int, heads: int) -> dict | None:
    if selected is None:
        return None
    layer, head = int(selected[0]), int(selected[1])
    if not (0 <= layer < layers and 0 <= head < heads):
        return None
    return _rect(head - 0.5, head + 0.5, layer - 0.5, layer + 0.5, name="selected", width=3.5)


def head_grid(values, *, metric: str = "entropy", selected: tuple[int, int] | None = None,
              pruned=None, roles=None, title: str = "", color_scale=None,
              zmin: float | None = None, zmax: float | None = None, uirevision="head-grid"
              ) -> go.Figure:
    """One number per head as a layers x heads grid.

    values: float [L, H] (NaN allowed: drawn empty). x = head (labelled "H0".. at the top),
      y = layer ("L0" at the top). Click: points[0].x = head, points[0].y = layer.
    metric: a METRIC_STYLES key (entropy, entropy_norm, js, sink, diagonal, previous,
      max_weight, importance) choosing label, unit, colour scale (entropy / js -> viridis;
      masses, importance -> accent) and range (masses 0..1; entropy, js, importance 0..max).
    selected: (layer, head) -> a thick outline rectangle shape named "selected".
    pruned: bool [L, H] -> an "×" on each pruned head (trace data[1], name "pruned").
    roles: str [L, H] -> shown in the hover: "L2 H5 · entropy 2.31 bits · role: sink".
    """
    v = _as_2d(values, "values")
    layers, heads = v.shape
    style = METRIC_STYLES.get(metric, dict(_DEFAULT_METRIC_STYLE, label=metric))
    finite = v[np.isfinite(v)]
    lo = zmin if zmin is not None else style["zmin"]
    hi = zmax if zmax is not None else style["zmax"]
    if lo is None:
        lo = float(finite.min()) if finite.size else 0.0
    if hi is None:
        hi = float(finite.max()) if finite.size else 1.0
    if hi <= lo:
        hi = lo + 1.0
    unit = f" {style['unit']}" if style["unit"] else ""

    pruned_b = None if pruned is None else np.asarray(pruned, dtype=bool)
    if pruned_b is not None and pruned_b.shape != v.shape:
        raise ValueError(f"pruned {pruned_b.shape} does not match values {v.shape}")
    roles_a = None if roles is None else np.asarray(roles, dtype=object)
    if roles_a is not None and roles_a.shape != v.shape:
        raise ValueError(f"roles {roles_a.shape} does not match values {v.shape}")
    extra = None
    if roles_a is not None or pruned_b is not None:
        extra = [["" for _ in range(heads)] for _ in range(layers)]
        for l in range(layers):
            for h in range(heads):
                parts = []
                if roles_a is not None and roles_a[l, h]:
                    parts.append(f"role: {escape_label(roles_a[l, h])}")
                if pruned_b is not None and pruned_b[l, h]:
                    parts.append("pruned")
                extra[l][h] = "".join(f" · {p}" for p in parts)

    label = style["label"]
    fig = go.Figure(go.Heatmap(
        z=rounded(v), x0=0, dx=1, y0=0, dy=1, zmin=lo, zmax=hi, zauto=False,
        colorscale=_scale(color_scale or style["scale"]),
        colorbar=dict(title=dict(text=f"{label} ({style['unit']})" if unit else label,
                                 side="right"), thickness=12, len=0.9, outlinewidth=0),
        text=extra,
        hovertemplate=f"%{{y}} %{{x}} · {label} %{{z:{style['fmt']}}}{unit}"
                      + ("%{text}" if extra is not None else "") + "<extra></extra>",
        hoverongaps=False, xgap=2, ygap=2, name=metric,
    ))
    if pruned_b is not None:
        ls, hs = np.nonzero(pruned_b)
        fig.add_trace(go.Scatter(
            x=hs.tolist(), y=ls.tolist(), mode="text", text=["×"] * len(hs), name="pruned",
            textfont=dict(size=18, color="#111827", shadow="0px 0px 3px #ffffff"),
            hoverinfo="skip", showlegend=False))
    _grid_axes(fig, layers, heads)
    sel = _selected_cell(selected, layers, heads)
    if sel:
        fig.update_layout(shapes=[sel])
    meta = {"kind": "head_grid", "metric": metric, "layers": layers, "heads": heads,
            "selected": None if selected is None else [int(selected[0]), int(selected[1])],
            "pruned": 0 if pruned_b is None else int(pruned_b.sum())}
    return _finish(fig, meta, title=title, uirevision=uirevision)


def role_grid(roles, *, selected: tuple[int, int] | None = None, title: str = "",
              show_labels: bool = True, uirevision="head-grid") -> go.Figure:
    """Head roles (categorical) as a layers x heads grid, one ROLE_COLORS colour per role.

    roles: str [L, H], values from ROLE_COLORS ("previous-token", "self", "sink", "diffuse",
      "mixed"); anything else (None, "") is drawn empty. data[0] is the heatmap: z = the role's
      index in ROLE_COLORS order, text = the role name (hover "L2 H5 · role: sink"); the
      colour bar (discrete bands, ticks = role names) is the legend.
    show_labels: short role names (ROLE_ABBREV) in the cells, so colour is not the only cue:
      a text-only trace data[1] "role-labels" that ignores the pointer.
    selected: (layer, head) -> outline shape "selected".
    """
    r = np.asarray(roles, dtype=object)
    if r.ndim != 2:
        raise ValueError(f"roles must be 2-D [layers, heads], got shape {r.shape}")
    layers, heads = r.shape
    names = list(ROLE_COLORS)
    index = {name: i for i, name in enumerate(names)}
    z = np.full(r.shape, np.nan)
    for (l, h), role in np.ndenumerate(r):
        if role in index:
            z[l, h] = index[role]
    n = len(names)
    scale = []
    for i, name in enumerate(names):  # discrete bands: [i/n, (i+1)/n] -> one colour
        scale += [[i / n, ROLE_COLORS[name]], [(i + 1) / n, ROLE_COLORS[name]]]
    full = [[escape_label(x) if x in index else "" for x in row] for row in r.tolist()]
    fig = go.Figure()
    fig.add_trace(go.Heatmap(
        z=rounded(z), x0=0, dx=1, y0=0, dy=1, zmin=-0.5, zmax=n - 0.5, zauto=False,
        colorscale=scale, text=full,
        colorbar=dict(title=dict(text="role", side="top"), tickmode="array",
                      tickvals=list(range(n)), ticktext=names, thickness=12, len=0.9,
                      outlinewidth=0),
        hovertemplate="%{y} %{x} · role: %{text}<extra></extra>",
        hoverongaps=False, xgap=2, ygap=2, name="role",
    ))
    if show_labels:  # a text-only overlay (heatmap texttemplate could only repeat `text`)
        ls, hs = np.nonzero(~np.isnan(z))
        fig.add_trace(go.Scatter(
            x=hs.tolist(), y=ls.tolist(), mode="text", name="role-labels",
            text=[ROLE_ABBREV[r[l, h]] for l, h in zip(ls, hs)],
            textfont=dict(size=10, color=[_ink(ROLE_COLORS[r[l, h]]) for l, h in zip(ls, hs)]),
            hoverinfo="skip", showlegend=False))
    _grid_axes(fig, layers, heads)
    sel = _selected_cell(selected, layers, heads)
    if sel:
        sel["line"]["color"] = "#111827"  # roles use the bright colours; outline in near-black
        fig.update_layout(shapes=[sel])
    meta = {"kind": "role_grid", "layers": layers, "heads": heads, "roles": names,
            "selected": None if selected is None else [int(selected[0]), int(selected[1])]}
    return _finish(fig, meta, title=title, uirevision=uirevision)


# ---- 3. small multiples ----------------------------------------------------------------------
def block_average(w, max_tokens: int) -> tuple[np.ndarray, int]:
    """Downsample the last two axes of w [..., Tq, Tk] by averaging f x f blocks.

    f = ceil(max(Tq, Tk) / max_tokens) (1 when nothing to do); edge blocks average the cells
    they have; NaN cells are ignored (an all-NaN block stays NaN). Returns (w', f) with
    w' [..., ceil(Tq/f), ceil(Tk/f)], each side <= max_tokens.
    """
    w = np.asarray(w, dtype=np.float32)
    tq, tk = w.shape[-2:]
    f = max(1, math.ceil(max(tq, tk) / max(1, int(max_tokens))))
    if f == 1:
        return w, 1
    nq, nk = math.ceil(tq / f), math.ceil(tk / f)
    pad = np.full(w.shape[:-2] + (nq * f, nk * f), np.nan, dtype=np.float32)
    pad[..., :tq, :tk] = w
    blocks = pad.reshape(w.shape[:-2] + (nq, f, nk, f))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN blocks -> NaN, quietly
        return np.nanmean(blocks, axis=(-3, -1)), f


def small_multiples(weights, *, titles: Sequence[str], selected: int | None = None,
                    max_tokens: int = 48, cols: int = 6, color_scale="accent",
                    zmax: float | str | None = None, causal: bool = False,
                    title: str = "", block_size: int | None = None) -> go.Figure:
    """A grid of tiny heatmaps, one per head: weights float [N, Tq, Tk].

    block_size: the weights are already block-averaged with f x f blocks of this size (long
    texts: the caller pools one head at a time); they are drawn as they are.

    Typical N: the H heads of one layer, or L*H heads flattened layer-major (panel
    i = layer * H + head). Panels run left to right, top to bottom, `cols` (6) per row; no
    tick labels, no cell text, one shared colour scale (layout.coloraxis, zmin 0, zmax as in
    `heatmap`: default 1.0, "max" = max over all panels). When T > max_tokens every panel is
    block-averaged (`block_average`, f x f blocks) to <= max_tokens per side. causal: key >
    query set to NaN (empty) before averaging. titles: N panel titles (annotations, and each
    trace's name). selected: panel index -> outline shape "selected".

    Axes: panel i is trace data[i] on its own axes "x{i+1}"/"y{i+1}" ("x"/"y" for panel 0),
    like make_subplots, so a shape with xref "x{i+1} domain" outlines panel i (the page's
    hover outline relies on this). The grid is laid out by hand in one layout update (~5x
    faster than make_subplots + per-axis updates). Cell (q, j) of a panel sits at x = j * f,
    y = q * f: `points[0].x` / `.y` are the first key / query token of the block.

    Click mapping: nothing but the N panels is a trace, so in Dash's clickData
    `points[0].curveNumber` == i (trace `meta` == i too); for flattened layers x heads,
    (layer, head) = divmod(i, H).
    """
    w = np.asarray(weights, dtype=np.float32)
    if w.ndim != 3:
        raise ValueError(f"weights must be [N, Tq, Tk], got shape {w.shape}")
    n, tq, tk = w.shape
    if len(titles) != n:
        raise ValueError(f"{len(titles)} titles for {n} panels")
    if n == 0 or tq == 0 or tk == 0:
        return empty_figure("no heads")
    if causal:
        w = w.copy()
        w[:, _causal_mask(tq, tk)] = np.nan
    small, f = (w, int(block_size)) if block_size else block_average(w, max_tokens)
    nq, nk = small.shape[1:]
    cols = max(1, min(int(cols), n))
    rows = math.ceil(n / cols)
    zmax = _resolve_zmax(zmax, small)

    hs, vs = 0.02, 0.3 / max(rows, 3)  # gaps, as a share of the plot (vs leaves room for titles)
    pw, ph = (1 - (cols - 1) * hs) / cols, (1 - (rows - 1) * vs) / rows
    axis = dict(showticklabels=False, showgrid=False, zeroline=False, ticks="", showline=False,
                constrain="domain")
    layout: dict = {}
    annotations = []
    block = f" ({f}-token blocks)" if f > 1 else ""
    fig = go.Figure()
    for i in range(n):
        r, c = divmod(i, cols)
        sfx = "" if i == 0 else str(i + 1)
        x0, top = c * (pw + hs), 1 - r * (ph + vs)
        layout[f"xaxis{sfx}"] = dict(axis, domain=[x0, min(1.0, x0 + pw)], anchor=f"y{sfx}",
                                     range=[-0.5 * f, (nk - 0.5) * f])
        layout[f"yaxis{sfx}"] = dict(axis, domain=[max(0.0, top - ph), top], anchor=f"x{sfx}",
                                     range=[(nq - 0.5) * f, -0.5 * f],  # reversed: query 0 on top
                                     scaleanchor=f"x{sfx}", scaleratio=1, constraintoward="top")
        name = escape_label(titles[i])
        annotations.append(dict(text=name, x=x0 + pw / 2, y=top, xref="paper", yref="paper",
                                xanchor="center", yanchor="bottom", showarrow=False,
                                font=dict(size=10)))
        fig.add_trace(go.Heatmap(
            z=rounded_array(small[i]), x0=0, dx=f, y0=0, dy=f, coloraxis="coloraxis", name=name,
            meta=i, hoverongaps=False, xaxis=f"x{sfx}", yaxis=f"y{sfx}",
            hovertemplate=f"{name}<br>from %{{y}} → to %{{x}}{block}: %{{z:.3f}}<extra></extra>",
        ))
    fig.update_layout(
        **layout,
        annotations=annotations,
        coloraxis=dict(colorscale=_scale(color_scale), cmin=0.0, cmax=zmax,
                       colorbar=dict(title=dict(text="weight", side="right"), thickness=10,
                                     len=0.6, outlinewidth=0)),
        plot_bgcolor=MASK_COLOR,
    )
    if selected is not None and 0 <= int(selected) < n:
        sfx = "" if int(selected) == 0 else str(int(selected) + 1)
        fig.update_layout(shapes=[_rect(-0.02, 1.02, -0.02, 1.02, name="selected", width=3,
                                        xref=f"x{sfx} domain", yref=f"y{sfx} domain")])
    meta = {"kind": "small_multiples", "panels": n, "rows": rows, "cols": cols,
            "tokens": [tq, tk], "shown": [nq, nk], "block": f,
            "selected": None if selected is None else int(selected)}
    # the top row's panel titles sit above their plots: room for them in the top margin
    return _finish(fig, meta, title=title, uirevision="small-multiples:" + _digest(n, tq, tk),
                   margin=dict(t=56 if title else 24))


# ---- 4. top keys -----------------------------------------------------------------------------
def _top_keys_parts(labels: Sequence[str], weights, scores=None, indices: Sequence[int] | None = None):
    """(bar trace kwargs, layout kwargs, meta) of top_keys_bar, or None when there are no keys."""
    wv = np.asarray(weights, dtype=np.float64).reshape(-1)
    k = len(labels)
    if wv.shape[0] != k:
        raise ValueError(f"{k} labels for {wv.shape[0]} weights")
    if k == 0:
        return None
    order = np.argsort(-np.nan_to_num(wv, nan=-np.inf), kind="stable")
    names = [escape_label(labels[i]) for i in order]
    if indices is not None:
        names = [f"#{int(indices[i])} {nm}" for i, nm in zip(order, names)]
    vals = wv[order]
    hover = "%{y}: %{x:.3f}"
    custom = None
    if scores is not None:
        sv = np.asarray(scores, dtype=np.float64).reshape(-1)
        if sv.shape[0] != k:
            raise ValueError(f"{k} labels for {sv.shape[0]} scores")
        custom = rounded(sv[order])
        hover += "<br>score q·k/√d: %{customdata:.3f}"
    trace = dict(x=rounded(vals), y=list(range(k)), orientation="h", customdata=custom,
                 text=[f"{x:.3f}" if np.isfinite(x) else "" for x in vals], textposition="auto",
                 marker=dict(color=ACCENT), hovertemplate=hover + "<extra></extra>", name="weight",
                 cliponaxis=False)
    layout = dict(
        xaxis=dict(range=[0, max(1e-6, float(np.nanmax(vals)) if np.isfinite(vals).any() else 1.0) * 1.1],
                   title=dict(text="weight"), zeroline=False, automargin=True),
        yaxis=dict(tickmode="array", tickvals=list(range(k)), ticktext=names,
                   autorange="reversed", showgrid=False, automargin=True),
        bargap=0.25,
    )
    return trace, layout, {"kind": "top_keys", "k": k, "has_scores": scores is not None}


def top_keys_bar(labels: Sequence[str], weights, scores=None, *, title: str = "",
                 indices: Sequence[int] | None = None) -> go.Figure:
    """Horizontal bars of the keys one query attends to most, largest on top.

    labels: k key labels; weights: float [k]; scores: optional float [k] pre-softmax
      scores q·k/√d (shown in the hover; -inf = masked); indices: optional key positions
      (shown as "#5 cat"). Input order does not matter: bars are sorted by weight. Bar i
      sits at y = i (0 = largest, at the top), labelled by ticktext.
    """
    parts = _top_keys_parts(labels, weights, scores, indices)
    if parts is None:
        return empty_figure("no keys")
    trace, layout, meta = parts
    fig = go.Figure(go.Bar(**trace))
    fig.update_layout(**layout)
    return _finish(fig, meta, title=title)


def top_keys_bars(items: Sequence[dict]) -> list[dict]:
    """top_keys_bar for many bar sets at once (e.g. every head of a layer at one query), as plain
    figure dicts: equal to top_keys_bar(...).to_plotly_json() with layout.height and meta added, but
    the template and the layout are built once and each item only brings its bars, labels and
    range (~10x faster for the 13 heads of a MiniLM layer).

    items: {"labels", "weights", "scores", "indices", "height", "meta" (merged into layout.meta)}.
    """
    base, out = None, []
    for item in items:
        parts = _top_keys_parts(item["labels"], item["weights"], item.get("scores"), item.get("indices"))
        if parts is None:
            fig = empty_figure("no keys").to_plotly_json()
        else:
            trace, layout, meta = parts
            if base is None:
                base = top_keys_bar(item["labels"], item["weights"], item.get("scores"),
                                    indices=item.get("indices")).to_plotly_json()
            lay = dict(base["layout"])
            lay.update(xaxis=dict(lay["xaxis"], range=layout["xaxis"]["range"]),
                       yaxis=dict(lay["yaxis"], tickvals=layout["yaxis"]["tickvals"],
                                  ticktext=layout["yaxis"]["ticktext"]))
            lay["meta"] = meta
            bar = {k: v for k, v in trace.items() if v is not None}
            fig = {"data": [dict(bar, type="bar")], "layout": lay}
        fig["layout"] = dict(fig["layout"], height=item.get("height"),
                             meta=dict(fig["layout"].get("meta") or {}, **item.get("meta", {})))
        out.append(fig)
    return out


# ---- 5. pruning curves -----------------------------------------------------------------------
def pruning_curves(shares: Sequence[float], curves: Mapping[str, Mapping[str, Sequence]], *,
                   metric_name: str, current_share: float | None = None,
                   higher_is_better: bool = True, title: str = "") -> go.Figure:
    """Metric vs share of heads pruned, one line per pruning order.

    shares: floats in 0..1 (e.g. 0, 0.1, .., 0.9): the x values, shown as percent.
    curves: {order name ("importance", "ablation", "entropy", "random", ...):
             {"mean": [len(shares)] floats, "std": optional [len(shares)] floats}}.
      One trace per order, in the mapping's order, lines+markers, std as error bars
      (None/NaN = a gap / no bar).
    current_share: a dashed vertical line (shape "current-share") at the current pruning.
    higher_is_better: only labels the y axis ("↑ better" / "↓ better").
    """
    x = rounded(np.asarray(shares, dtype=np.float64), 4)
    fig = go.Figure()
    extra = iter(_EXTRA_ORDER_COLORS * 4)
    for name, curve in curves.items():
        mean = np.asarray(curve["mean"], dtype=np.float64)
        if mean.shape[0] != len(x):
            raise ValueError(f"curve {name!r}: {mean.shape[0]} values for {len(x)} shares")
        style = ORDER_STYLES.get(name) or dict(color=next(extra, "#111827"), dash="solid")
        std = curve.get("std")
        err = None
        if std is not None:
            sd = np.asarray(std, dtype=np.float64)
            if sd.shape != mean.shape:
                raise ValueError(f"curve {name!r}: std {sd.shape} vs mean {mean.shape}")
            err = dict(type="data", array=rounded(sd, 4), visible=True, thickness=1.2, width=3,
                       color=style["color"])
        fig.add_trace(go.Scatter(
            x=x, y=rounded(mean, 4), mode="lines+markers", name=escape_label(name),
            line=dict(color=style["color"], dash=style["dash"], width=2), marker=dict(size=6),
            error_y=err, connectgaps=False,
            hovertemplate=f"{escape_label(name)}: %{{x:.0%}} pruned · {escape_label(metric_name)} "
                          "%{y:.4f}<extra></extra>",
        ))
    if current_share is not None:
        fig.add_shape(type="line", name="current-share", xref="x", yref="y domain",
                      x0=float(current_share), x1=float(current_share), y0=0, y1=1,
                      line=dict(color="#374151", width=1.5, dash="dash"), layer="above")
    xs = [v for v in x if v is not None] + ([float(current_share)] if current_share is not None else [])
    better = "↑ better" if higher_is_better else "↓ better"
    fig.update_layout(
        xaxis=dict(title=dict(text="share of heads pruned"), tickformat=".0%",
                   range=[min([0.0] + xs) - 0.02, max(xs + [0.1]) + 0.02],
                   zeroline=False, automargin=True),
        yaxis=dict(title=dict(text=f"{escape_label(metric_name)} ({better})"), automargin=True),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0),
        hovermode="x unified",
    )
    meta = {"kind": "pruning_curves", "orders": list(curves), "metric": metric_name,
            "current_share": None if current_share is None else float(current_share),
            "higher_is_better": bool(higher_is_better)}
    return _finish(fig, meta, title=title, uirevision="pruning-curves",
                   margin=dict(t=72 if title else 36))


# ---- 6. comparison bar -----------------------------------------------------------------------
def empty_figure(message: str = "") -> go.Figure:
    """A blank figure (axes hidden) with `message` centred: no run yet, nothing to show, error."""
    fig = go.Figure()
    fig.update_layout(
        xaxis=dict(visible=False), yaxis=dict(visible=False),
        annotations=[dict(text=escape_label(message), x=0.5, y=0.5, xref="paper", yref="paper",
                          showarrow=False, font=dict(size=14, color="#6b7280"))],
        plot_bgcolor="rgba(0,0,0,0)", paper_bgcolor="rgba(0,0,0,0)",
        # no tool bar floating over a placeholder (on a transparent paper Plotly draws it dark grey)
        modebar=dict(bgcolor="rgba(0,0,0,0)", color="rgba(0,0,0,0)", activecolor="rgba(0,0,0,0)"),
    )
    return _finish(fig, {"kind": "empty", "message": str(message)})


# ---- shapes and metadata the panels add to a figure ------------------------------------------
def layer_outline(layer: int, heads: int, *, name: str = "selected") -> dict:
    """A rectangle around a whole row (layer) of a layers x heads grid: "mean of all heads"."""
    return dict(type="rect", name=name, xref="x", yref="y", x0=-0.5, x1=heads - 0.5,
                y0=layer - 0.5, y1=layer + 0.5, line=dict(color=SELECTED_COLOR, width=3.5),
                fillcolor="rgba(0,0,0,0)", layer="above")


def add_meta(fig: go.Figure, **extra) -> go.Figure:
    """Merge `extra` into fig.layout.meta (a dict; figures.py puts the figure kind there)."""
    meta = dict(fig.layout.meta or {})
    meta.update(extra)
    fig.update_layout(meta=meta)
    return fig
