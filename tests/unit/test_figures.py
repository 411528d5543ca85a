"""dashboard/figures.py: pure figure builders, checked on hand-made numbers (no browser, no model)."""
from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest

from dashboard import figures as F


def js(fig: go.Figure) -> dict:
    """The figure exactly as the browser receives it."""
    return json.loads(fig.to_json())


def shapes_named(fig_json: dict, name: str) -> list[dict]:
    return [s for s in fig_json["layout"].get("shapes", []) if s.get("name") == name]


W3 = np.array([[1.0, 0.0, 0.0],
               [0.25, 0.75, 0.0],
               [0.1234, 0.5678, 0.3088]], dtype=np.float32)
TOKS3 = ["the", "cat", "the"]


def softmax_rows(t: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(0, 2, (t, t))
    e = np.exp(x - x.max(1, keepdims=True))
    return (e / e.sum(1, keepdims=True)).astype(np.float16)


# ---- rounded ----------------------------------------------------------------------------------
def test_rounded_nan_inf_to_none_and_rounds():
    a = np.array([[0.12345, np.nan], [np.inf, -np.inf]])
    assert F.rounded(a) == [[0.123, None], [None, None]]


def test_rounded_whole_numbers_are_ints_and_no_negative_zero():
    out = F.rounded(np.array([1.0, 0.0, -0.0001, 2.00004, 0.5]))
    assert out == [1, 0, 0, 2, 0.5]
    assert [type(x) for x in out] == [int, int, int, int, float]
    assert json.dumps(out) == "[1, 0, 0, 2, 0.5]"  # never "-0.0"


def test_rounded_float16_and_decimals_and_scalar():
    assert F.rounded(np.array([0.5122], dtype=np.float16)) == [0.512]
    assert F.rounded(np.array([0.51234]), decimals=2) == [0.51]
    assert F.rounded(np.float32(0.25)) == 0.25
    assert F.rounded(np.nan) is None
    assert F.rounded([[1, 2], [3, 4]]) == [[1, 2], [3, 4]]


def test_rounded_array_serialises_like_rounded():
    a = np.array([[0.1234, np.nan], [1.0, 0.0005]], dtype=np.float32)
    fig = go.Figure(go.Heatmap(z=F.rounded_array(a)))
    assert js(fig)["data"][0]["z"] == F.rounded(a)


# ---- heatmap ----------------------------------------------------------------------------------
def test_heatmap_z_equals_input_rounded_and_ticks_keep_duplicates():
    fj = js(F.heatmap(W3, TOKS3, TOKS3))
    tr = fj["data"][0]
    assert tr["type"] == "heatmap"
    assert tr["z"] == [[1, 0, 0], [0.25, 0.75, 0], [0.123, 0.568, 0.309]]
    lay = fj["layout"]
    assert lay["xaxis"]["ticktext"] == ["the", "cat", "the"]
    assert lay["yaxis"]["ticktext"] == ["the", "cat", "the"]
    assert lay["xaxis"]["tickvals"] == [0, 1, 2] and lay["yaxis"]["tickvals"] == [0, 1, 2]
    assert lay["xaxis"]["tickmode"] == "array"
    assert lay["yaxis"]["autorange"] == "reversed"  # first query at the top
    assert lay["xaxis"]["tickangle"] == -60
    assert (tr.get("x0"), tr.get("dx"), tr.get("y0"), tr.get("dy")) == (0, 1, 0, 1)  # integer cells
    assert "x" not in tr and "customdata" not in tr
    assert lay["meta"]["kind"] == "heatmap" and lay["meta"]["rows"] == 3 and lay["meta"]["cols"] == 3


def test_heatmap_rectangular_cross_attention():
    w = np.full((2, 4), 0.25)
    fj = js(F.heatmap(w, ["a", "b"], ["w", "x", "y", "z"]))
    assert fj["layout"]["meta"]["rows"] == 2 and fj["layout"]["meta"]["cols"] == 4
    assert fj["layout"]["xaxis"]["ticktext"] == ["w", "x", "y", "z"]
    with pytest.raises(ValueError):
        F.heatmap(w, ["a", "b", "c"], ["w", "x", "y", "z"])


def test_heatmap_hover_names_both_tokens_and_weight():
    tr = js(F.heatmap(W3, TOKS3, TOKS3))["data"][0]
    # %{y:d} = index; %{y} = the tick label (plotly formats hover values through ticktext)
    assert tr["hovertemplate"] == "from %{y:d} (%{y}) → to %{x:d} (%{x}): %{z:.3f}<extra></extra>"
    assert tr["hoverongaps"] is False


def test_heatmap_colour_bar_and_range():
    fj = js(F.heatmap(W3, TOKS3, TOKS3))
    tr = fj["data"][0]
    assert tr["colorbar"]["title"]["text"] == "weight"
    assert (tr["zmin"], tr["zmax"]) == (0, 1)
    assert tr["colorscale"] == F.COLOR_SCALES["accent"]
    half = js(F.heatmap(W3 / 2, TOKS3, TOKS3, zmax="max", color_scale="viridis"))["data"][0]
    assert half["zmax"] == pytest.approx(0.5)
    assert half["colorscale"] == F.COLOR_SCALES["viridis"]
    assert js(F.heatmap(W3, TOKS3, TOKS3, zmax=0.3))["data"][0]["zmax"] == pytest.approx(0.3)


def test_color_scales_run_white_to_dark():
    assert set(F.COLOR_SCALES) >= {"accent", "mono", "viridis", "cividis"}
    for name in ("accent", "mono"):
        scale = F.COLOR_SCALES[name]
        assert scale[0] == [0.0, "#ffffff"] and scale[-1][0] == 1.0
    assert F.COLOR_SCALES["mono"][-1][1] == "#000000"
    for scale in F.COLOR_SCALES.values():
        positions = [p for p, _ in scale]
        assert positions == sorted(positions) and positions[0] == 0 and positions[-1] == 1


def test_heatmap_causal_upper_triangle_is_empty_not_zero():
    w = np.array([[1.0, 0.0, 0.0], [0.4, 0.6, 0.0], [0.2, 0.3, 0.5]], dtype=np.float16)
    fj = js(F.heatmap(w, ["a", "b", "c"], ["a", "b", "c"], causal=True))
    z = fj["data"][0]["z"]
    assert z == [[1, None, None], [0.4, 0.6, None], [0.2, 0.3, 0.5]]
    assert fj["layout"]["meta"]["causal"] is True
    # empty cells show the plot background, which differs from the colour of 0 (white)
    assert fj["layout"]["plot_bgcolor"] == F.MASK_COLOR != F.COLOR_SCALES["accent"][0][1]
    # the input is not modified
    assert float(w[0, 1]) == 0.0


def test_heatmap_show_values_auto_and_override():
    small = js(F.heatmap(softmax_rows(10), [f"t{i}" for i in range(10)], [f"t{i}" for i in range(10)]))
    assert small["layout"]["meta"]["show_values"] is True
    assert small["data"][0]["texttemplate"] == "%{z:.2f}"
    assert "color" not in small["data"][0].get("textfont", {})  # plotly picks contrast per cell
    labels = [f"t{i}" for i in range(100)]
    big = js(F.heatmap(softmax_rows(100), labels, labels))
    assert big["layout"]["meta"]["show_values"] is False
    assert "texttemplate" not in big["data"][0]
    edge = [f"t{i}" for i in range(24)]
    assert js(F.heatmap(softmax_rows(24), edge, edge))["layout"]["meta"]["show_values"] is True
    forced = js(F.heatmap(W3, TOKS3, TOKS3, show_values=False))
    assert "texttemplate" not in forced["data"][0]


def test_heatmap_boundary_lines_on_both_axes():
    toks = ["[CLS]", "a", "[SEP]", "b", "c", "[SEP]"]
    fj = js(F.heatmap(softmax_rows(6), toks, toks, boundary=3))
    (vx,) = shapes_named(fj, "boundary-x")
    (hy,) = shapes_named(fj, "boundary-y")
    assert vx["type"] == "line" and vx["x0"] == vx["x1"] == 2.5 and vx["yref"] == "y domain"
    assert hy["type"] == "line" and hy["y0"] == hy["y1"] == 2.5 and hy["xref"] == "x domain"
    assert fj["layout"]["meta"]["boundary"] == 3
    assert "shapes" not in js(F.heatmap(softmax_rows(6), toks, toks))["layout"]
    # a boundary outside the tokens draws nothing
    assert not js(F.heatmap(softmax_rows(6), toks, toks, boundary=6))["layout"].get("shapes")


def test_heatmap_highlight_outlines_row_and_column():
    toks = list("abcde")
    fj = js(F.heatmap(softmax_rows(5), toks, toks, highlight=(1, 3)))
    (row,) = shapes_named(fj, "highlight-row")
    (col,) = shapes_named(fj, "highlight-col")
    assert (row["x0"], row["x1"], row["y0"], row["y1"]) == (-0.5, 4.5, 0.5, 1.5)
    assert (col["x0"], col["x1"], col["y0"], col["y1"]) == (2.5, 3.5, -0.5, 4.5)
    only_row = js(F.heatmap(softmax_rows(5), toks, toks, highlight=(2, None)))
    assert [s["name"] for s in only_row["layout"]["shapes"]] == ["highlight-row"]


def test_heatmap_escapes_markup_in_labels():
    toks = ["<s>", "a&b", "</s>"]
    fj = js(F.heatmap(W3, toks, toks))
    assert fj["layout"]["xaxis"]["ticktext"] == ["&lt;s&gt;", "a&amp;b", "&lt;/s&gt;"]


def test_heatmap_uirevision_stable_per_text():
    a = js(F.heatmap(W3, TOKS3, TOKS3))["layout"]["uirevision"]
    b = js(F.heatmap(W3 / 2, TOKS3, TOKS3, color_scale="mono"))["layout"]["uirevision"]
    c = js(F.heatmap(W3, ["a", "b", "c"], ["a", "b", "c"]))["layout"]["uirevision"]
    assert a == b != c
    assert a == "heatmap:" + F._digest(TOKS3, TOKS3)  # hashlib, the same in every worker
    assert js(F.heatmap(W3, TOKS3, TOKS3, uirevision="keep"))["layout"]["uirevision"] == "keep"


def test_heatmap_long_text_labels_every_nth_but_hover_keeps_all():
    labels = [f"w{i}" for i in range(200)]
    fj = js(F.heatmap(softmax_rows(200), labels, labels))
    lay = fj["layout"]
    assert lay["meta"]["tick_overlay"] is True
    # the heatmap's axes keep every label (hidden) so hover %{x} names the token
    assert lay["xaxis"]["ticktext"] == labels and lay["xaxis"]["showticklabels"] is False
    # the visible labels sit on overlay axes x2/y2, every n-th token
    shown = lay["xaxis2"]["ticktext"]
    assert 10 <= len(shown) <= F.TARGET_TICK_LABELS and shown[0] == "w0"
    step = lay["xaxis2"]["tickvals"][1]
    assert shown == labels[::step]
    assert lay["xaxis2"]["overlaying"] == "x" and lay["xaxis2"]["matches"] == "x"
    assert lay["yaxis2"]["overlaying"] == "y" and lay["yaxis2"]["matches"] == "y"
    assert fj["data"][0]["type"] == "heatmap"  # data[0] stays the heatmap
    assert fj["data"][1]["x"] == [] and fj["data"][1]["hoverinfo"] == "skip"


def test_heatmap_500_tokens_json_stays_compact():
    t = 500
    labels = [f"tok{i}" for i in range(t)]
    # worst case for 3 decimals: every cell a distinct "0.123"-style number, no zeros
    worst = np.random.default_rng(4).uniform(0.1, 1, (t, t)).astype(np.float32)
    payload = F.heatmap(worst, labels, labels).to_json()
    size = len(payload.encode())
    # z dominates: at most "0.123," (6 bytes) per cell, plus ~25 kB of ticks, template, layout
    assert size < t * t * 6 + 60_000, size
    assert size < 1_700_000
    fj = json.loads(payload)
    assert "customdata" not in fj["data"][0] and "text" not in fj["data"][0]
    assert len(fj["data"][0]["z"]) == t and len(fj["data"][0]["z"][0]) == t
    # causal: the masked half is "null," (5 bytes); weights under 0.0005 are a bare "0,"
    causal = softmax_rows(t, seed=3)
    causal[np.triu_indices(t, 1)] = 0
    assert len(F.heatmap(causal, labels, labels, causal=True).to_json()) < t * t * 5


# ---- head grid --------------------------------------------------------------------------------
def test_head_grid_axes_hover_and_selected_outline():
    values = np.arange(6 * 12, dtype=np.float32).reshape(6, 12) / 20
    roles = np.full((6, 12), "mixed", dtype=object)
    roles[2, 5] = "sink"
    fj = js(F.head_grid(values, metric="entropy", selected=(2, 5), roles=roles))
    tr = fj["data"][0]
    lay = fj["layout"]
    assert lay["xaxis"]["ticktext"] == [f"H{h}" for h in range(12)]
    assert lay["yaxis"]["ticktext"] == [f"L{l}" for l in range(6)]
    assert lay["yaxis"]["autorange"] == "reversed"
    assert tr["z"][2][5] == pytest.approx(values[2, 5], abs=1e-3)
    (sel,) = shapes_named(fj, "selected")
    assert (sel["x0"], sel["x1"], sel["y0"], sel["y1"]) == (4.5, 5.5, 1.5, 2.5)  # head 5, layer 2
    assert sel["line"]["width"] >= 3
    assert tr["hovertemplate"].startswith("%{y} %{x} · entropy %{z:.2f} bits")
    assert tr["text"][2][5] == " · role: sink"
    assert tr["colorscale"] == F.COLOR_SCALES["viridis"]
    assert lay["meta"] == {"kind": "head_grid", "metric": "entropy", "layers": 6, "heads": 12,
                           "selected": [2, 5], "pruned": 0}


def test_head_grid_marks_pruned_heads():
    pruned = np.zeros((3, 4), dtype=bool)
    pruned[0, 1] = pruned[2, 3] = True
    fj = js(F.head_grid(np.full((3, 4), 0.5), metric="sink", pruned=pruned))
    (marks,) = [t for t in fj["data"] if t.get("name") == "pruned"]
    assert sorted(zip(marks["y"], marks["x"])) == [(0, 1), (2, 3)]  # (layer, head)
    assert marks["text"] == ["×", "×"] and marks["hoverinfo"] == "skip"
    assert fj["data"][0]["text"][0][1] == " · pruned"
    assert fj["layout"]["meta"]["pruned"] == 2
    assert not shapes_named(fj, "selected")
    with pytest.raises(ValueError):
        F.head_grid(np.zeros((3, 4)), pruned=np.zeros((4, 3), dtype=bool))


def test_head_grid_metric_defaults_and_nan():
    v = np.array([[0.2, np.nan], [0.9, 0.1]])
    sink = js(F.head_grid(v, metric="sink"))["data"][0]
    assert sink["colorscale"] == F.COLOR_SCALES["accent"]
    assert (sink["zmin"], sink["zmax"]) == (0, 1)
    assert sink["z"][0][1] is None
    ent = js(F.head_grid(np.array([[1.0, 3.0]]), metric="entropy"))["data"][0]
    assert (ent["zmin"], ent["zmax"]) == (0, 3)  # entropy: 0 .. data max, in bits
    assert js(F.head_grid(np.ones((2, 2)), metric="js"))["data"][0]["colorscale"] == F.COLOR_SCALES["viridis"]
    imp = js(F.head_grid(np.array([[0.0, 4.0]]), metric="importance", color_scale="mono", zmax=8))
    assert imp["data"][0]["colorscale"] == F.COLOR_SCALES["mono"] and imp["data"][0]["zmax"] == 8


# ---- role grid --------------------------------------------------------------------------------
def colour_at(trace: dict, value: float) -> str:
    """The colour plotly gives `value` on a stepwise colour scale."""
    p = (value - trace["zmin"]) / (trace["zmax"] - trace["zmin"])
    return [c for pos, c in trace["colorscale"] if pos <= p + 1e-9][-1]


def test_role_grid_maps_each_role_to_its_colour():
    roles = [["previous-token", "self", "sink"],
             ["diffuse", "mixed", "sink"]]
    fj = js(F.role_grid(roles, selected=(1, 2)))
    tr = fj["data"][0]
    for l, row in enumerate(roles):
        for h, role in enumerate(row):
            assert colour_at(tr, tr["z"][l][h]) == F.ROLE_COLORS[role], (l, h, role)
            assert tr["text"][l][h] == role  # hover "L1 H2 · role: sink" (the page reads it too)
    assert tr["hovertemplate"] == "%{y} %{x} · role: %{text}<extra></extra>"
    assert tr["colorbar"]["ticktext"] == list(F.ROLE_COLORS)  # the legend
    (labels,) = [t for t in fj["data"] if t.get("name") == "role-labels"]
    drawn = {(y, x): txt for x, y, txt in zip(labels["x"], labels["y"], labels["text"])}
    assert drawn[(0, 0)] == "prev" and drawn[(1, 2)] == "sink" and len(drawn) == 6
    assert labels["hoverinfo"] == "skip"
    ink = dict(zip(labels["text"], labels["textfont"]["color"]))
    assert ink["prev"] == "#ffffff" and ink["diff"] == "#111827"  # readable on dark blue / grey
    (sel,) = shapes_named(fj, "selected")
    assert (sel["x0"], sel["y0"]) == (1.5, 0.5)
    assert fj["layout"]["meta"]["kind"] == "role_grid"


def test_role_grid_unknown_role_is_empty_and_roles_match_metrics():
    fj = js(F.role_grid([["sink", None], ["", "bogus"]]))
    assert fj["data"][0]["z"] == [[2, None], [None, None]]
    assert fj["data"][1]["text"] == ["sink"]
    assert len(js(F.role_grid([["sink"]], show_labels=False))["data"]) == 1
    from models import metrics  # pure numpy: role names must agree with the engine's
    assert tuple(F.ROLE_COLORS) == metrics.ROLES
    assert len(set(F.ROLE_COLORS.values())) == len(F.ROLE_COLORS)


# ---- small multiples --------------------------------------------------------------------------
def test_block_average_by_hand():
    w = np.arange(16, dtype=np.float32).reshape(4, 4)
    out, f = F.block_average(w, max_tokens=2)
    assert f == 2
    np.testing.assert_allclose(out, [[2.5, 4.5], [10.5, 12.5]])
    odd, f = F.block_average(np.ones((5, 5)), max_tokens=2)  # ragged edge blocks average what they have
    assert f == 3 and odd.shape == (2, 2) and np.allclose(odd, 1)
    same, f = F.block_average(w, max_tokens=48)
    assert f == 1 and same.shape == (4, 4)


def test_small_multiples_downsamples_and_has_one_panel_per_head():
    n, t = 8, 200
    w = np.stack([softmax_rows(t, seed=i) for i in range(n)])
    titles = [f"L0 H{i}" for i in range(n)]
    fj = js(F.small_multiples(w, titles=titles, selected=3))
    assert len(fj["data"]) == n  # nothing else is a trace: clickData curveNumber == panel
    for i, tr in enumerate(fj["data"]):
        assert tr["type"] == "heatmap" and tr["meta"] == i and tr["name"] == titles[i]
        assert len(tr["z"]) <= 48 and len(tr["z"][0]) <= 48
        assert tr["coloraxis"] == "coloraxis" and "texttemplate" not in tr
        assert "customdata" not in tr
        sfx = "" if i == 0 else str(i + 1)  # panel i on axes x{i+1}/y{i+1}, like make_subplots
        assert (tr.get("xaxis", "x"), tr.get("yaxis", "y")) == (f"x{sfx}", f"y{sfx}")
        assert fj["layout"][f"xaxis{sfx}"]["showticklabels"] is False
    meta = fj["layout"]["meta"]
    assert meta["panels"] == n and meta["cols"] == 6 and meta["rows"] == 2
    assert meta["block"] == 5 and meta["shown"] == [40, 40]
    assert [a["text"] for a in fj["layout"]["annotations"]] == titles
    assert fj["layout"]["coloraxis"]["cmin"] == 0 and fj["layout"]["coloraxis"]["cmax"] == 1
    (sel,) = shapes_named(fj, "selected")
    assert (sel["xref"], sel["yref"]) == ("x4 domain", "y4 domain")  # panel 3
    # block means of rows that sum to 1: each shown row sums to 1/f (5 rows of mass 1 / 25 cells)
    z0 = np.array(fj["data"][0]["z"], dtype=float)
    assert np.allclose(z0.sum(1), 1 / 5, atol=0.03)


def test_small_multiples_grid_geometry():
    w = np.stack([np.eye(4)] * 7)
    fj = js(F.small_multiples(w, titles=[str(i) for i in range(7)], cols=3))
    lay = fj["layout"]
    assert lay["meta"]["rows"] == 3 and lay["meta"]["block"] == 1
    # panel 4 = row 1, col 1: right of panel 3, below panel 1
    assert lay["xaxis5"]["domain"][0] > lay["xaxis4"]["domain"][1]
    assert lay["yaxis5"]["domain"][1] < lay["yaxis2"]["domain"][0]
    assert lay["yaxis5"]["range"][0] > lay["yaxis5"]["range"][1]  # reversed: query 0 on top
    assert lay["yaxis5"]["scaleanchor"] == "x5"
    assert all(0 <= v <= 1 for k in lay if k.startswith(("xaxis", "yaxis")) for v in lay[k]["domain"])


def test_small_multiples_causal_and_validation():
    w = np.stack([np.tril(np.ones((4, 4))) / np.arange(1, 5)[:, None]])
    tr = js(F.small_multiples(w, titles=["x"], causal=True))["data"][0]
    assert tr["z"][0][1] is None and tr["z"][3][0] == 0.25
    with pytest.raises(ValueError):
        F.small_multiples(w, titles=["x", "y"])


# ---- top keys ---------------------------------------------------------------------------------
def test_top_keys_bar_largest_on_top_with_scores():
    fj = js(F.top_keys_bar(["the", "cat", "sat", "the"], [0.1, 0.5, 0.3, 0.05],
                           scores=[1.0, 3.25, 2.5, -0.5], title="top keys"))
    tr = fj["data"][0]
    lay = fj["layout"]
    assert tr["orientation"] == "h"
    assert lay["yaxis"]["ticktext"] == ["cat", "sat", "the", "the"]  # y=0 is the largest ...
    assert lay["yaxis"]["autorange"] == "reversed"  # ... and y=0 is drawn on top
    assert tr["x"] == [0.5, 0.3, 0.1, 0.05]
    assert tr["text"] == ["0.500", "0.300", "0.100", "0.050"]
    assert tr["customdata"] == [3.25, 2.5, 1, -0.5]
    assert "q·k/√d" in tr["hovertemplate"]
    assert lay["meta"] == {"kind": "top_keys", "k": 4, "has_scores": True}


def test_top_keys_bar_without_scores_and_indices():
    tr = js(F.top_keys_bar(["a", "b"], [0.2, 0.8], indices=[7, 9]))
    assert tr["layout"]["yaxis"]["ticktext"] == ["#9 b", "#7 a"]
    assert "customdata" not in tr["data"][0]


# ---- pruning curves ---------------------------------------------------------------------------
def test_pruning_curves_one_trace_per_order_and_current_share_line():
    shares = [0.0, 0.1, 0.2, 0.3]
    curves = {
        "importance": {"mean": [1.0, 0.99, 0.97, 0.9], "std": [0.0, 0.01, 0.01, 0.02]},
        "ablation": {"mean": [1.0, 0.98, 0.95, 0.88]},
        "entropy": {"mean": [1.0, 0.95, 0.9, 0.8]},
        "random": {"mean": [1.0, 0.9, 0.8, None], "std": [0.0, 0.05, 0.06, None]},
    }
    fj = js(F.pruning_curves(shares, curves, metric_name="cosine", current_share=0.2))
    assert [t["name"] for t in fj["data"]] == list(curves)
    assert all(t["mode"] == "lines+markers" and t["x"] == shares for t in fj["data"])
    assert fj["data"][0]["error_y"]["array"] == [0, 0.01, 0.01, 0.02]
    assert "error_y" not in fj["data"][1]
    assert fj["data"][3]["y"][-1] is None
    (line,) = shapes_named(fj, "current-share")
    assert line["x0"] == line["x1"] == 0.2 and line["line"]["dash"] == "dash"
    lay = fj["layout"]
    assert lay["xaxis"]["tickformat"] == ".0%"
    assert lay["xaxis"]["title"]["text"] == "share of heads pruned"
    assert "↑ better" in lay["yaxis"]["title"]["text"]
    assert lay["meta"]["orders"] == list(curves) and lay["meta"]["current_share"] == 0.2


def test_pruning_curves_lower_is_better_no_line_and_length_check():
    fj = js(F.pruning_curves([0.0, 0.5], {"random": {"mean": [2.0, 3.0]}}, metric_name="loss",
                             higher_is_better=False))
    assert "↓ better" in fj["layout"]["yaxis"]["title"]["text"]
    assert not shapes_named(fj, "current-share")
    with pytest.raises(ValueError):
        F.pruning_curves([0.0, 0.5], {"random": {"mean": [1.0]}}, metric_name="loss")


# ---- empty -----------------------------------------------------------------------------------
def test_empty_figure_message_centred_axes_hidden():
    fj = js(F.empty_figure("No run yet"))
    (ann,) = fj["layout"]["annotations"]
    assert ann["text"] == "No run yet" and (ann["x"], ann["y"]) == (0.5, 0.5)
    assert ann["xref"] == "paper" and ann["showarrow"] is False
    assert fj["layout"]["xaxis"]["visible"] is False and fj["layout"]["yaxis"]["visible"] is False
    assert fj["data"] == []
    assert fj["layout"]["meta"] == {"kind": "empty", "message": "No run yet"}
    # a placeholder shows no tool bar: every colour of Plotly's mode bar is transparent
    assert set(fj["layout"]["modebar"].values()) == {"rgba(0,0,0,0)"}


# ---- every figure -----------------------------------------------------------------------------
def all_figures() -> dict[str, go.Figure]:
    return {
        "heatmap": F.heatmap(W3, TOKS3, TOKS3, title="t"),
        "head_grid": F.head_grid(np.ones((2, 3))),
        "role_grid": F.role_grid([["sink", "self"]]),
        "small_multiples": F.small_multiples(np.ones((2, 3, 3)) / 3, titles=["a", "b"]),
        "top_keys": F.top_keys_bar(["a"], [1.0]),
        "pruning_curves": F.pruning_curves([0.0], {"random": {"mean": [1.0]}}, metric_name="m"),
        "empty": F.empty_figure("x"),
    }


def test_every_figure_names_its_kind_and_uses_the_clean_template():
    for kind, fig in all_figures().items():
        fj = js(fig)
        assert fj["layout"]["meta"]["kind"] == kind
        assert fj["layout"]["template"]["layout"]["plot_bgcolor"] == "white"  # plotly_white
        assert not math.isnan(fj["layout"]["margin"]["l"])


def test_figures_module_imports_no_dash_and_no_models():
    tree = ast.parse(Path(F.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert not imported & {"dash", "models", "torch", "transformers", "flask"}, imported
