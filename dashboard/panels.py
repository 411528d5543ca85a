"""What each callback returns, from a run and the control values: pure functions (figures and
plain values; Dash components come from dashboard/cards.py). Callbacks stay ~3 lines.

Control values arrive as the page holds them: layer/head as dropdown strings ("3", "mean"),
block as a block choice ("self", "self:AB", "cross"), temperature as the slider's log2 T.
"""
from __future__ import annotations

import numpy as np

from dashboard import export, figures, urlstate
from dashboard.controls import slider_from_temperature, temperature_from_slider
from dashboard.figures_extra import add_meta, layer_outline, panel_outline
from dashboard.views import (GRID_METRICS, MEAN, block_metrics, block_options, clamp_selection, clamp_to,
                             default_query, head_matrix, head_options, head_stats, head_title, layer_options,
                             parse_block, parse_layer, run_info, top_keys, truncation_message, valid_block_choice)
from models.run import AttentionRun

SHOW_VALUES_ON_MAX = 64  # "on" draws numbers in cells up to this many tokens (beyond: unreadable, slow)
OVERVIEW_MAX_TOKENS = 48  # small multiples are block-averaged to <= this many tokens per side


def show_values_flag(choice: str | None, n_tokens: int) -> bool | None:
    """auto -> None (figures decides: <= 24 tokens), on -> True up to SHOW_VALUES_ON_MAX, off -> False."""
    if choice == "on":
        return n_tokens <= SHOW_VALUES_ON_MAX
    if choice == "off":
        return False
    return None


def stretched_zmax(matrix: np.ndarray, quantile: float = 0.99) -> float:
    """Top of the colour scale for "stretch": the `quantile` of the matrix's weights (>= 0.001).
    For a causal head only the cells a query may attend to count (the rest are 0 by the mask)."""
    m = np.asarray(matrix, dtype=np.float32)
    vals = m[m > 0] if m.size else m
    return float(max(np.quantile(vals, quantile) if vals.size else 1.0, 1e-3))


# ---- block switch -----------------------------------------------------------------------------
def block_controls(summary: dict | None, choice, layer, head, layer_options_now) -> dict | None:
    """Layer / head choices for the block just chosen, or None when they stay as they are.

    Blocks of an encoder-decoder differ in size (e.g. 2 encoder layers, 3 decoder layers): the
    dropdowns follow the block, keeping the layer and head where they exist.
    """
    blocks = {b["name"]: b for b in (summary or {}).get("blocks", [])}
    name = choice.partition(":")[0] if isinstance(choice, str) else None
    b = blocks.get(name)
    if b is None:
        return None
    options = layer_options(b["layers"])
    if options == layer_options_now:
        return None
    layer, head = clamp_to(b["layers"], b["heads"], layer, head)
    return {"layer_options": options, "layer": str(layer), "head_options": head_options(b["heads"]),
            "head": str(head)}


# ---- run --------------------------------------------------------------------------------------
def run_outputs(request: dict, run: AttentionRun, layer, head, block, query, previous: dict | None = None) -> dict:
    """Everything the run callback writes after a successful run.

    Keeps the user's layer / head / block where they exist in the new run, and the inspected
    query while the text stays the same (`previous`: the last run's request); otherwise the
    inspector opens on `views.default_query`.
    """
    choice = valid_block_choice(run, block)
    name, _ = parse_block(run, choice)
    layer, head = clamp_selection(run, name, layer, head)
    b = run.block(name)
    n_queries = len(run.tokens(b.query_side))
    q = parse_layer(query)
    same_text = previous is None or (previous.get("text"), previous.get("text_pair")) == (
        request.get("text"), request.get("text_pair"))
    if q is None or q >= n_queries or not same_text:
        q = default_query(run, name)
    summary = run.summary()
    trunc = truncation_message(run.truncations)
    return {
        "store": {"request": request, "summary": summary},
        "layer_options": layer_options(b.n_layers), "layer": str(layer),
        "head_options": head_options(b.n_heads), "head": str(head),
        "block_options": block_options(run), "block": choice,
        "truncation": trunc or "", "truncated": bool(trunc),
        "info": run_info(summary),
        "query": q,
    }


# ---- heatmap card + stats row -------------------------------------------------------------------
def heatmap_panel(run: AttentionRun, block, layer, head, slider, color_scale, show_values,
                  stretch: bool = False) -> dict:
    """{"figure", "title", "stats", "note"} for the heatmap card and the stats row.

    stretch: colours run from 0 to this matrix's 99th percentile (`stretched_zmax`: contrast on long
    texts, the top 1% of cells saturate) instead of 0..1 (the same scale for every head)."""
    name, pair = parse_block(run, block)
    layer, head = clamp_selection(run, name, layer, head)
    t = temperature_from_slider(slider)
    view = head_matrix(run, name, layer, head, pair, t)
    title = head_title(run, name, layer, head, pair, t)
    fig = figures.heatmap(view.matrix, view.query_labels, view.key_labels, color_scale=color_scale,
                          show_values=show_values_flag(show_values, max(view.matrix.shape)),
                          causal=view.causal, boundary=view.boundary,
                          zmax=stretched_zmax(view.matrix) if stretch else None)
    add_meta(fig, layer=layer, head=head, block=name, pair=pair,
             query_offset=int(view.query_positions[0]) if len(view.query_positions) else 0,
             key_offset=int(view.key_positions[0]) if len(view.key_positions) else 0)
    note = "" if t == 1.0 else (f"T = {t:g}: softmax re-applied to the real pre-softmax scores "
                                f"(T = 1 is the model itself).")
    return {"figure": fig, "title": title, "stats": head_stats(run, view, name), "note": note}


def run_meta(run: AttentionRun) -> dict:
    """What every export names first: the model and the text(s) the numbers came from."""
    return {"model": run.model_name, "model fingerprint": run.model_fingerprint[:16],
            "text": run.text, "second text": run.text_pair,
            "truncated": "yes: " + "; ".join(f"{t.dropped_tokens} tokens of the {t.side} not run"
                                             for t in run.truncations) if run.truncations else None}


def heatmap_export(run: AttentionRun, block, layer, head, slider) -> dict:
    """The shown heatmap with its context: matrix [shown queries, shown keys], labels and positions
    of the shown tokens, title, metadata for the export, and a file stem named after them."""
    name, pair = parse_block(run, block)
    layer, head = clamp_selection(run, name, layer, head)
    t = temperature_from_slider(slider)
    view = head_matrix(run, name, layer, head, pair, t)
    title = head_title(run, name, layer, head, pair, t)
    meta = {**run_meta(run), "block": name + (f" {pair[0]}->{pair[1]}" if pair else ""), "layer": layer,
            "head": "mean of all heads" if head == MEAN else head, "temperature": t,
            "values": ("attention weights softmax(QK^T/sqrt(d) + mask); rows = queries (attend from), "
                       "columns = keys; headers are position:token")}
    return {"matrix": view.matrix, "query_labels": view.query_labels, "key_labels": view.key_labels,
            "query_positions": view.query_positions, "key_positions": view.key_positions, "title": title,
            "meta": meta, "stem": export.export_stem("attention", run.model_name, title, run.text[:40])}


def head_metrics_export(run: AttentionRun, block) -> dict:
    """Every per-head metric of the block as a table, with the run's metadata and a file stem."""
    name, _ = parse_block(run, block)
    header, rows = export.head_metrics_table(block_metrics(run, name))
    meta = {**run_meta(run), "block": name,
            "what": ("per-head metrics of the model's own attention weights (temperature 1): entropy in bits "
                     "and normalised entropy averaged over queries; max weight, sink (first-token), self and "
                     "previous-token mass averaged over queries; role = the label the heads grid shows")}
    return {"header": header, "rows": rows, "meta": meta,
            "stem": export.export_stem("head-metrics", run.model_name, name, run.text[:40])}


# ---- heads grid ---------------------------------------------------------------------------------
def grid_figure(run: AttentionRun, block, metric, layer, head):
    """layers x heads grid of one metric (or roles), the shown head outlined (a row for MEAN)."""
    name, _ = parse_block(run, block)
    layer, head = clamp_selection(run, name, layer, head)
    m = block_metrics(run, name)
    metric = metric if metric in GRID_METRICS else "entropy"
    selected = None if head == MEAN else (layer, head)
    key, label, unit = GRID_METRICS[metric]
    if metric == "role":
        fig = figures.role_grid(m["role"], selected=selected)
    else:
        fig = figures.head_grid(m[key], metric=key, selected=selected, roles=m["role"])
    if head == MEAN:
        fig.update_layout(shapes=[layer_outline(layer, run.block(name).n_heads)])
    return add_meta(fig, metric_label=label, metric_unit=unit, block=name)


# ---- overview: every head of one layer ----------------------------------------------------------
def overview_figure(run: AttentionRun, block, layer, head, color_scale):
    """Small multiples of every head of the layer (model's own weights, T = 1), same slice as the
    heatmap, block-averaged to <= OVERVIEW_MAX_TOKENS per side; the shown head outlined."""
    name, pair = parse_block(run, block)
    layer, head = clamp_selection(run, name, layer, head)
    b = run.block(name)
    view = head_matrix(run, name, layer, 0, pair)
    w = b.weights[layer][:, view.query_positions][:, :, view.key_positions]  # [heads, shown q, shown k]
    ent = block_metrics(run, name)["entropy"][layer]
    titles = [f"H{h} · {ent[h]:.1f} bits" for h in range(b.n_heads)]
    fig = figures.small_multiples(w, titles=titles, selected=None if head == MEAN else head,
                                  max_tokens=OVERVIEW_MAX_TOKENS, color_scale=color_scale, causal=b.causal)
    return add_meta(fig, layer=layer, block=name)


def overview_selection_shapes(head) -> list[dict]:
    """The overview's "selected" outline for a head dropdown value (Patch after a head switch)."""
    return panel_outline(None if head == MEAN else parse_layer(head))


def overview_title(run: AttentionRun, block, layer) -> str:
    name, _ = parse_block(run, block)
    layer, _ = clamp_selection(run, name, layer, 0)
    return f"Every head of layer {layer}"


# ---- token inspector ----------------------------------------------------------------------------
def inspector_panel(run: AttentionRun, block, layer, head, query, slider) -> dict | None:
    """{"figure", "rows", "title", "mean"} for the selected query, or None when there is none."""
    name, _ = parse_block(run, block)
    layer, head = clamp_selection(run, name, layer, head)
    b = run.block(name)
    queries = run.tokens(b.query_side)
    q = parse_layer(query)
    if q is None or q >= len(queries):
        return None
    t = temperature_from_slider(slider)
    rows = top_keys(run, name, layer, head, q, t, k=5)
    scores = None if head == MEAN or any(r["score"] is None for r in rows) else [r["score"] for r in rows]
    fig = figures.top_keys_bar([r["label"] for r in rows], [r["weight"] for r in rows], scores,
                               indices=[r["key"] for r in rows])
    fig.update_layout(height=230)
    who = "mean of all heads" if head == MEAN else f"L{layer} H{head}"
    return {"figure": fig, "rows": rows, "mean": head == MEAN,
            "title": f"Query #{q} “{queries[q].label}” · top 5 keys · {who}"}


# ---- URL ----------------------------------------------------------------------------------------
def url_search(store: dict | None, layer, head, block, metric, slider, query) -> str | None:
    """The query string for what the page shows, or None before the first run."""
    if not store or "request" not in store:
        return None
    req = store["request"]
    return urlstate.encode(urlstate.ViewState(
        model=req["model"], text=req["text"], text_pair=req.get("text_pair"),
        layer=parse_layer(layer) if parse_layer(layer) is not None else urlstate.DEFAULT_LAYER,
        head=MEAN if head == MEAN else (parse_layer(head) if parse_layer(head) is not None else 0),
        block=block or None, metric=metric if metric in urlstate.METRICS else urlstate.DEFAULT_METRIC,
        temperature=temperature_from_slider(slider), query=parse_layer(query)))


def from_url(search: str | None, model_names: list[str]) -> dict:
    """Control values + the pending view (applied by the run callback) for a query string."""
    s = urlstate.decode(search, model_names)
    return {"model": s.model, "text": s.text, "text_pair": s.text_pair or "", "metric": s.metric,
            "slider": slider_from_temperature(s.temperature),
            "pending": {"layer": str(s.layer), "head": str(s.head), "block": s.block, "query": s.query,
                        "problems": " ".join(s.problems)}}
