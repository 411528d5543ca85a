"""What each callback returns, from a run and the control values: pure functions (figures and
plain values; Dash components come from dashboard/cards.py). Callbacks stay ~3 lines.

Control values arrive as the page holds them: layer/head as dropdown strings ("3", "mean"),
block as a block choice ("self", "self:AB", "cross"), temperature as the slider's log2 T.
"""
from __future__ import annotations

import json
import math
import warnings

import numpy as np
import plotly.io

from dashboard import export, figures, measure_view, transport, urlstate
from dashboard.selection import Selection, temperature_from_slider
from dashboard.figures import add_meta, layer_outline
from services.views import (GRID_METRICS, MEAN, block_options, clamp_to, default_query,
                             head_matrix, head_options, head_stats, head_title, head_weights, layer_options,
                             parse_index, selection_of, summary_line, top_keys, truncation_message, view_positions)
from models import metrics
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


ADAPT_MIN_TOKENS = 24  # above this many tokens a side the colour range adapts to the head (switch on)


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


# ---- which run and selection a panel shows ---------------------------------------------------------
def view_key(run: AttentionRun) -> str:
    """A short id of the run (model, weights, texts, token count, head mask): the run store carries
    it, every panel stamps it on what it sends, so the browser can drop a panel's answer that
    belongs to another run (assets/consistency.js). AttentionRun.identity, memoised on the run."""
    return run.identity


def view_stamp(run: AttentionRun, block, layer, head=None) -> dict:
    """{"key", "block", "layer", "head", "text"}: the run and the selection a panel was drawn for
    (block/layer/head as the controls hold them, after clamping; head None = any)."""
    return {"key": view_key(run), "block": None if block is None else str(block),
            "layer": None if layer is None else str(layer), "head": None if head is None else str(head),
            "text": run.text[:60]}


def block_controls_of(run: AttentionRun) -> dict:
    """{block name: {"layer_options", "head_options"}}: what the dropdowns offer per block (the
    browser applies them when the run lands, keeping a layer chosen meanwhile)."""
    return {b.name: {"layer_options": layer_options(b.n_layers), "head_options": head_options(b.n_heads)}
            for b in run.blocks}


# ---- run --------------------------------------------------------------------------------------
def run_outputs(request: dict, run: AttentionRun, layer, head, block, query, previous: dict | None = None,
                from_url: bool = False, prune: str | None = None) -> dict:
    """Everything the run callback writes after a successful run.

    Keeps the user's layer / head / block where they exist in the new run, and the inspected
    query while the text stays the same (`previous`: the last run's request); otherwise the
    inspector opens on `views.default_query`.
    """
    sel = selection_of(run, block, layer, head, query)
    choice, name, layer, head = sel.value, sel.block, sel.layer, sel.head
    b = run.block(name)
    same_text = previous is None or (previous.get("text"), previous.get("text_pair")) == (
        request.get("text"), request.get("text_pair"))
    q = sel.query if sel.query is not None and same_text else default_query(run, name)
    summary = run.summary()
    trunc = truncation_message(run.truncations)
    selection = {"layer": str(layer), "head": str(head), "block": choice, "from_url": bool(from_url)}
    mask = urlstate.mask_from_param(prune) if from_url else None
    if mask is not None and (len(mask), len(mask[0])) == (run.main.n_layers, run.main.n_heads):
        selection["prune"] = mask  # the link's pruning mask, for this run's shape (pruning card)
    return {
        "store": {"request": request, "summary": summary, "key": view_key(run), "selection": selection,
                  "controls": block_controls_of(run),
                  "block_values": [o["value"] for o in block_options(run)]},
        "layer_options": layer_options(b.n_layers), "layer": str(layer),
        "head_options": head_options(b.n_heads), "head": str(head),
        "block_options": block_options(run), "block": choice,
        "truncation": trunc or "", "truncated": bool(trunc),
        "info": summary_line(summary),
        "query": q,
    }


# ---- heatmap card + stats row -------------------------------------------------------------------
def heatmap_panel(run: AttentionRun, block, layer, head, slider, color_scale, show_values,
                  stretch: bool = False) -> dict:
    """{"figure", "title", "stats", "note"} for the heatmap card and the stats row.

    stretch: colours run from 0 to this matrix's 99th percentile (`stretched_zmax`: contrast on long
    texts, the top 1% of cells saturate) instead of 0..1 (the same scale for every head)."""
    sel = selection_of(run, block, layer, head)
    name, pair, layer, head = sel.block, sel.pair, sel.layer, sel.head
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


# ---- heatmap transport: quantised bytes, whole layer / one head / pooled overview / zoom window ----
EXACT_MAX_TOKENS = 512  # a view longer than this on either side is drawn as a pooled overview
POOL_CELLS = 512  # overview cells per side (about screen resolution)
LAYER_CELLS = 1 << 20  # send every head of the layer (head switches in the browser) up to this many cells
POOL_CHOICES = ("max", "mean")


def parse_window(window, n_rows: int, n_cols: int, uirevision: str) -> tuple[int, int, int, int] | None:
    """(r0, r1, c0, c1) shown-index window (ends exclusive) from the browser's window store, or None.
    The store is the browser's: anything malformed, out of range or for another view is ignored."""
    if not isinstance(window, dict) or window.get("uirevision") != uirevision:
        return None
    vals = [window.get(k) for k in ("q0", "q1", "k0", "k1")]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in vals):
        return None
    r0, r1, c0, c1 = vals
    r0, c0 = max(0, r0), max(0, c0)
    r1, c1 = min(n_rows, r1), min(n_cols, c1)
    if r1 - r0 < 1 or c1 - c0 < 1 or (r1 - r0, c1 - c0) == (n_rows, n_cols):
        return None
    return r0, r1, c0, c1


def _masked(block, q_pos: np.ndarray, k_pos: np.ndarray) -> np.ndarray | None:
    """bool [rows, cols]: cells a causal block hides (key after query), or None."""
    if not block.causal:
        return None
    return k_pos[None, :] > q_pos[:, None] + (block.n_keys - block.n_queries)


def _pooled(run: AttentionRun, name: str, layer: int, head, t: float, q_pos, k_pos, f: int, pool: str,
            acc: dict | None = None):
    """float32 [ceil(rows/f), ceil(cols/f)]: block max / mean of one head (or the head mean) over
    f x f token blocks, rebuilt a few block rows at a time (memory: f*64 rows x keys).
    acc: a dict that gathers the head's stats in the same pass (see _stats_of)."""
    b = run.block(name)
    nr, nc = math.ceil(len(q_pos) / f), math.ceil(len(k_pos) / f)
    out = np.empty((nr, nc), np.float32)
    chunk = f * max(1, 64 // max(1, f // 8))
    for a in range(0, len(q_pos), chunk):
        rows = q_pos[a:a + chunk]
        w = head_weights(run, name, layer, head, t, rows)[:, k_pos]  # [chunk rows, cols]
        if acc is not None:
            _accumulate(acc, w)
        m = _masked(b, rows, k_pos)
        if m is not None:
            w[m] = np.nan
        pr = math.ceil(len(rows) / f)
        pad = np.full((pr * f, nc * f), np.nan, np.float32)
        pad[:w.shape[0], :w.shape[1]] = w
        blocks = pad.reshape(pr, f, nc, f)
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-masked blocks -> NaN
            out[a // f:a // f + pr] = (np.nanmax if pool == "max" else np.nanmean)(blocks, axis=(1, 3))
    return out


def _ranges(pos: np.ndarray, f: int) -> list[tuple[int, int]]:
    return [(int(pos[i]), int(pos[min(len(pos), i + f) - 1])) for i in range(0, len(pos), f)]


def heatmap_payload(run: AttentionRun, block, layer, head, slider, color_scale, show_values, stretch=False,
                    pool="max", window=None, measure=None) -> dict:
    """What the heatmap card gets: {"payload", "title", "stats", "note"}.

    payload (the browser's heatmap store; assets/heatmap.js draws it, z decoded from bytes):
      {"figure": figure dict without z, "matrix": dashboard.transport.encode(...) of
       [n, rows, cols], "heads": the n head values it holds ("0".."H-1", "mean") or [head],
       "layer", "block", "titles", "stats", "zmax": per matrix (None = the figure's),
       "mode": "layer" | "head" | "window" | "pooled", "uirevision"}

    * short views: every head of the layer and their mean (<= LAYER_CELLS cells), so a head switch
      is drawn in the browser with no request; longer: the one head (<= EXACT_MAX_TOKENS a side);
    * longer views: an overview pooled by block max or mean (`pool`, POOL_CELLS cells a side);
      `window` (a box-zoom, from the browser) fetches the exact window when it is small enough,
      else a finer overview of it.
    Exact values are 16-bit codes, overviews 8-bit; the step is in the hover text.
    measure: a models.measure_views.MeasureLayer of this layer (None: raw weights): the matrices,
    titles, stats, hover text and colour bar are the measure's (dashboard/measure_view.py);
    payload["measure"] = measure_view.info(...).
    """
    sel = selection_of(run, block, layer, head)
    name, pair, layer, head = sel.block, sel.pair, sel.layer, sel.head
    pool = pool if pool in POOL_CHOICES else "max"
    # the colour range adapts (0 .. the head's 99th percentile) on views longer than ADAPT_MIN_TOKENS
    # when the switch is on (its default); short views and the switch off keep 0 .. 1
    stretch = bool(stretch) and max(len(run.tokens(run.block(name).query_side)),
                                    len(run.tokens(run.block(name).key_side))) > ADAPT_MIN_TOKENS
    t = temperature_from_slider(slider)
    b = run.block(name)
    q_all, k_all, boundary = view_positions(run, name, pair)
    q_tokens, k_tokens = run.tokens(b.query_side), run.tokens(b.key_side)
    uirev = "heatmap:" + figures._digest([t.label for t in q_tokens], [t.label for t in k_tokens], name, pair)
    win = parse_window(window, len(q_all), len(k_all), uirev)
    r0, r1, c0, c1 = win or (0, len(q_all), 0, len(k_all))
    q_pos, k_pos = q_all[r0:r1], k_all[c0:c1]
    title = head_title(run, name, layer, head, pair, t)
    note = "" if t == 1.0 else (f"T = {t:g}: softmax re-applied to the real pre-softmax scores "
                                f"(T = 1 is the model itself).")
    heads = [str(h) for h in range(b.n_heads)] + [MEAN]
    ml = measure if measure_view.active(measure) and name == run.main.name else None
    base = {"layer": layer, "block": block if isinstance(block, str) else name, "uirevision": uirev,
            "view": view_stamp(run, sel.held, layer), "measure": measure_view.info(measure),
            "value_name": measure_view.value_name(ml)}
    if ml is not None:
        note = measure_view.note(ml, t)
    elif measure is not None and measure.error:
        note = " ".join(x for x in (note, measure_view.note(measure)) if x)
    if max(len(q_pos), len(k_pos)) > EXACT_MAX_TOKENS:  # ---- overview, pooled
        f = math.ceil(max(len(q_pos), len(k_pos)) / POOL_CELLS)
        acc = None if win else {}
        values = _pooled(run, name, layer, head, t, q_pos, k_pos, f, pool, acc)
        enc = transport.encode(values[None], bits=8)
        detail = transport.step_text(enc["step"], 8)
        zmax = stretched_zmax(values[np.isfinite(values)]) if stretch else None
        fig = figures.pooled_heatmap(values, _ranges(q_pos, f), _ranges(k_pos, f), pool=pool,
                                     color_scale=color_scale, zmax=zmax, uirevision=uirev, detail=detail)
        add_meta(fig, layer=layer, head=head, block=name, pair=pair, block_size=f, window=bool(win),
                 window_origin=[r0, c0], query_offset=int(q_pos[0]), key_offset=int(k_pos[0]),
                 uirevision=uirev)
        what = "window" if win else "text"
        note = " ".join(x for x in (note, f"{len(q_pos)} × {len(k_pos)} tokens: overview of {f}×{f}-token "
                                    f"blocks, block {pool} ({detail}). Box-zoom to fetch exact values of a "
                                    f"window; double-click for the whole {what}.") if x)
        stats = _stats_of(run, name, layer, head, t, q_all, k_all, acc=acc)
        return {"payload": dict(base, figure=_strip(fig), matrix=enc, heads=[str(head)], mode="pooled",
                                titles=[title], stats=[stats], zmax=[None]),
                "title": title, "stats": stats, "note": note}
    layer_mode = win is None and b.n_heads * len(q_pos) * len(k_pos) <= LAYER_CELLS and (ml is None or ml.per_head)
    shown = heads if layer_mode else [str(head)]
    mats, titles, stats, zmaxes = [], [], [], []
    masked = _masked(b, q_pos, k_pos)
    for h in shown:
        hv = MEAN if h == MEAN else int(h)
        rows = q_pos if win else slice(None)
        full = head_weights(run, name, layer, hv, t, rows) if ml is None else measure_view.rows(ml, hv, rows)
        m = full[:, k_pos] if win else full[np.ix_(q_pos, k_pos)]
        if masked is not None:
            m = m.copy()
            m[masked] = np.nan
        mats.append(m)
        if ml is None:
            titles.append(measure_view.title(measure, head_title(run, name, layer, hv, pair, t), layer))
            stats.append(_stats_of(run, name, layer, hv, t, q_all, k_all, full if not win and not pair else None))
            zmaxes.append(stretched_zmax(np.nan_to_num(m)) if stretch else None)
        else:  # a measure: its own range (0 .. this matrix's max), stats of its values
            titles.append(measure_view.title(ml, head_title(run, name, layer, hv, pair, 1.0), layer))
            stats.append(measure_view.stats(m, [k_tokens[j].label for j in k_pos], k_pos))
            zmaxes.append(max(float(np.nanmax(m)) if np.isfinite(m).any() else 0.0, 1e-12))
    enc = transport.encode(np.stack(mats), bits=16)
    detail = transport.step_text(enc["step"], 16)
    i = shown.index(str(head))
    fig = figures.heatmap(np.nan_to_num(mats[i]), [q_tokens[j].label for j in q_pos],
                          [k_tokens[j].label for j in k_pos], color_scale=color_scale,
                          show_values=show_values_flag(show_values, max(len(q_pos), len(k_pos))),
                          causal=False, boundary=None if win else boundary, zmax=zmaxes[i], uirevision=uirev,
                          with_z=False)  # z travels as bytes (enc)
    fig.data[0].hovertemplate = fig.data[0].hovertemplate.replace("<extra>", f" ({detail})<extra>")
    if ml is not None:
        fig.data[0].hovertemplate = measure_view.hovertemplate(ml, detail)
        fig.data[0].colorbar.title.text = measure_view.value_name(ml)
        if fig.data[0].texttemplate:
            fig.data[0].texttemplate = "%{z:.2g}"
    add_meta(fig, layer=layer, head=head, block=name, pair=pair, window=bool(win), causal=b.causal,
             query_offset=int(q_pos[0]) if len(q_pos) else 0, key_offset=int(k_pos[0]) if len(k_pos) else 0,
             uirevision=uirev, measure=ml.measure if ml is not None else "raw",
             value_label=measure_view.value_name(ml) if ml is not None else None)
    if win:
        note = " ".join(x for x in (note, f"Exact window: queries {int(q_pos[0])}–{int(q_pos[-1])}, keys "
                                    f"{int(k_pos[0])}–{int(k_pos[-1])} ({detail}). Double-click for the "
                                    f"overview.") if x)
    return {"payload": dict(base, figure=_strip(fig), matrix=enc, heads=shown,
                            mode="layer" if layer_mode else ("window" if win else "head"),
                            titles=titles, stats=stats, zmax=zmaxes),
            "title": titles[i], "stats": stats[i], "note": note}


def head_figure(run: AttentionRun, name: str, layer: int, head, pair, t: float, color_scale, pool: str = "max"):
    """One head's heatmap figure (plain JSON z) for side-by-side views (pruning comparison): exact up
    to EXACT_MAX_TOKENS a side, else the pooled overview (block `pool`)."""
    q_pos, k_pos, boundary = view_positions(run, name, pair)
    b = run.block(name)
    q_tokens, k_tokens = run.tokens(b.query_side), run.tokens(b.key_side)
    if max(len(q_pos), len(k_pos)) > EXACT_MAX_TOKENS:
        f = math.ceil(max(len(q_pos), len(k_pos)) / POOL_CELLS)
        values = _pooled(run, name, layer, head, t, q_pos, k_pos, f, pool)
        fig = figures.pooled_heatmap(values, _ranges(q_pos, f), _ranges(k_pos, f), pool=pool,
                                     color_scale=color_scale)
        return add_meta(fig, layer=layer, head=head, block=name, pair=pair, block_size=f,
                        query_offset=int(q_pos[0]), key_offset=int(k_pos[0]))
    view = head_matrix(run, name, layer, head, pair, t)
    fig = figures.heatmap(view.matrix, view.query_labels, view.key_labels, color_scale=color_scale,
                          show_values=False, causal=view.causal, boundary=view.boundary)
    return add_meta(fig, layer=layer, head=head, block=name, pair=pair,
                    query_offset=int(q_pos[0]) if len(q_pos) else 0, key_offset=int(k_pos[0]) if len(k_pos) else 0)


def _accumulate(acc: dict, w: np.ndarray) -> None:
    """Add rows w [rows, shown keys] of a head to its running stats."""
    acc["ent"] = acc.get("ent", 0.0) + float(metrics.row_entropy(w).sum())
    acc["max"] = max(acc.get("max", 0.0), float(w.max()) if w.size else 0.0)
    acc["col"] = acc.get("col", 0.0) + w.sum(0, dtype=np.float64)
    acc["sink"] = acc.get("sink", 0.0) + float(w[:, 0].sum())


def _stats_of(run, name, layer, head, t, q_pos, k_pos, full=None, acc: dict | None = None) -> dict:
    """head_stats for the whole shown head: from `full`, from stats gathered while pooling (`acc`),
    or rebuilt in row chunks (long texts)."""
    b = run.block(name)
    keys = run.tokens(b.key_side)
    n_q, n_k = len(q_pos), len(k_pos)
    if full is not None:
        w = full[np.ix_(q_pos, k_pos)]
        s = metrics.stats(w)
    else:
        if not acc:
            acc = {}
            for a in range(0, n_q, 256):
                _accumulate(acc, head_weights(run, name, layer, head, t, q_pos[a:a + 256])[:, k_pos])
        s = {"entropy": acc["ent"] / max(1, n_q), "max_weight": acc["max"],
             "most_attended": int(np.argmax(acc["col"])), "sink": acc["sink"] / max(1, n_q)}
    tokens = str(n_q) if n_q == n_k and b.query_side == b.key_side else f"{n_q} → {n_k}"
    most = int(k_pos[s["most_attended"]])
    return {"tokens": tokens, "entropy": f"{s['entropy']:.2f}", "max_weight": f"{s['max_weight']:.2f}",
            "most_attended": f"{keys[most].label} (#{most})", "sink": f"{s['sink']:.2f}"}


def _strip(fig) -> dict:
    """The figure as a dict without the heatmap's z (the bytes carry it)."""
    d = fig.to_plotly_json()
    d["data"] = [dict(tr) for tr in d["data"]]
    d["data"][0]["z"] = []
    d["data"][0].pop("text", None)
    return json.loads(plotly.io.to_json(d, validate=False))


def run_meta(run: AttentionRun) -> dict:
    """What every export names first: the model and the text(s) the numbers came from."""
    return {"model": run.model_name, "model fingerprint": run.model_fingerprint[:16],
            "text": run.text, "second text": run.text_pair,
            "truncated": "yes: " + "; ".join(f"{t.dropped_tokens} tokens of the {t.side} not run"
                                             for t in run.truncations) if run.truncations else None}


def heatmap_export(run: AttentionRun, block, layer, head, slider, measure=None) -> dict:
    """The shown heatmap with its context: matrix [shown queries, shown keys], labels and positions
    of the shown tokens, title, metadata for the export, and a file stem named after them.
    measure: a models.measure_views.MeasureLayer (None: raw weights); its values keep their sign."""
    sel = selection_of(run, block, layer, head)
    name, pair, layer, head = sel.block, sel.pair, sel.layer, sel.head
    t = temperature_from_slider(slider)
    view = head_matrix(run, name, layer, head, pair, t)
    title = head_title(run, name, layer, head, pair, t)
    meta = {**run_meta(run), "block": name + (f" {pair[0]}->{pair[1]}" if pair else ""), "layer": layer,
            "head": "mean of all heads" if head == MEAN else head, "temperature": t,
            "values": ("attention weights softmax(QK^T/sqrt(d) + mask); rows = queries (attend from), "
                       "columns = keys; headers are position:token")}
    matrix, what = view.matrix, "attention"
    measured = measure_view.active(measure) and name == run.main.name
    if measured:
        full = measure_view.rows(measure, head, signed=True)
        matrix = full[np.ix_(view.query_positions, view.key_positions)]
        title = measure_view.title(measure, head_title(run, name, layer, head, pair, 1.0), layer)
        what = measure.requested
        meta.update({"measure": measure.label, "temperature": 1.0,
                     "values": f"{measure.label}: {measure.formula} Rows = queries, columns = keys; headers are "
                               f"position:token" + ("; signed values" if measure.signed else ""),
                     "caveat": measure.caveat, "target": measure.target or None,
                     "head": ("heads averaged (rollout through layers 0-%d)" % layer) if not measure.per_head
                     else meta["head"]})
    else:
        meta["measure"] = "raw weights" + (f" ({measure.error})" if measure is not None and measure.error else "")
    return {"matrix": matrix, "query_labels": view.query_labels, "key_labels": view.key_labels,
            "query_positions": view.query_positions, "key_positions": view.key_positions, "title": title,
            "meta": meta, "stem": export.export_stem(what, run.model_name, title, run.text[:40]), "measured": measured}


def head_metrics_export(run: AttentionRun, block) -> dict:
    """Every per-head metric of the block as a table, with the run's metadata and a file stem."""
    name = selection_of(run, block, None, None).block
    header, rows = export.head_metrics_table(run.head_metrics(name))
    meta = {**run_meta(run), "block": name,
            "what": ("per-head metrics of the model's own attention weights (temperature 1): entropy in bits "
                     "and normalised entropy averaged over queries; max weight, sink (first-token), self and "
                     "previous-token mass averaged over queries; role = the label the heads grid shows")}
    return {"header": header, "rows": rows, "meta": meta,
            "stem": export.export_stem("head-metrics", run.model_name, name, run.text[:40])}


# ---- heads grid ---------------------------------------------------------------------------------
def grid_figure(run: AttentionRun, block, metric, layer=None, head=None):
    """layers x heads grid of one metric (or roles), the shown head outlined (a row for MEAN);
    head None: no outline (the page draws it in the browser, assets/consistency.js gateGrid)."""
    outline = head is not None
    sel = selection_of(run, block, layer, head if outline else MEAN)
    name, layer, head = sel.block, sel.layer, sel.head
    m = run.head_metrics(name)
    metric = metric if metric in GRID_METRICS else "entropy"
    selected = None if head == MEAN else (layer, head)
    key, label, unit = GRID_METRICS[metric]
    if metric == "role":
        fig = figures.role_grid(m["role"], selected=selected)
    else:
        fig = figures.head_grid(m[key], metric=key, selected=selected, roles=m["role"])
    if head == MEAN and outline:
        fig.update_layout(shapes=[layer_outline(layer, run.block(name).n_heads)])
    return add_meta(fig, metric_label=label, metric_unit=unit, block=name, outline_mean=True,
                    view=view_stamp(run, sel.held, *((layer, head) if outline else (None, None))))


# ---- overview: every head of one layer ----------------------------------------------------------
def overview_figure(run: AttentionRun, block, layer, head, color_scale):
    """Small multiples of every head of the layer (model's own weights, T = 1), same slice as the
    heatmap, block-averaged to <= OVERVIEW_MAX_TOKENS per side; the shown head outlined."""
    sel = selection_of(run, block, layer, head)
    name, pair, layer, head = sel.block, sel.pair, sel.layer, sel.head
    b = run.block(name)
    view = _positions_view(run, name, pair)
    q_pos, k_pos = view.query_positions, view.key_positions
    f = max(1, math.ceil(max(len(q_pos), len(k_pos)) / OVERVIEW_MAX_TOKENS))
    # one head rebuilt a few rows at a time and block-averaged (causal cells left out), any length
    pooled = [_pooled(run, name, layer, h, 1.0, q_pos, k_pos, f, "mean") for h in range(b.n_heads)]
    ent = run.head_metrics(name)["entropy"][layer]
    titles = [f"H{h} · {ent[h]:.1f} bits" for h in range(b.n_heads)]
    fig = figures.small_multiples(np.stack(pooled), titles=titles, selected=None if head == MEAN else head,
                                  max_tokens=OVERVIEW_MAX_TOKENS, color_scale=color_scale, block_size=f)
    return add_meta(fig, layer=layer, block=name, view=view_stamp(run, sel.held, layer))


class _positions_view:
    """The shown positions of a view (no weights rebuilt)."""

    def __init__(self, run, name, pair):
        self.query_positions, self.key_positions, self.boundary = view_positions(run, name, pair)


def overview_title(run: AttentionRun, block, layer) -> str:
    layer = selection_of(run, block, layer, 0).layer
    return f"Every head of layer {layer}"


# ---- token inspector ----------------------------------------------------------------------------
def inspector_panel(run: AttentionRun, block, layer, head, query, slider, measure=None,
                    figure: bool = True) -> dict | None:
    """{"figure", "rows", "title", "mean", "bars"} for the selected query, or None when there is none.
    measure (a models.measure_views.MeasureLayer, not raw): the top keys under it, "measure" set
    (always with a figure). figure False (raw weights): no figure, only "bars" (figures.top_keys_bar's
    arguments; services/switch.py draws every head of a layer at once with figures.top_keys_bars)."""
    sel = selection_of(run, block, layer, head, query)
    name, layer, head, q = sel.block, sel.layer, sel.head, sel.query
    b = run.block(name)
    queries = run.tokens(b.query_side)
    if q is None:
        return None
    if measure_view.active(measure) and name == run.main.name:
        return _measure_inspector(run, sel, measure)
    t = temperature_from_slider(slider)
    rows = top_keys(run, name, layer, head, q, t, k=5)
    scores = None if head == MEAN or any(r["score"] is None for r in rows) else [r["score"] for r in rows]
    bars = {"labels": [r["label"] for r in rows], "weights": [r["weight"] for r in rows], "scores": scores,
            "indices": [r["key"] for r in rows], "height": INSPECTOR_HEIGHT,
            "meta": {"view": view_stamp(run, sel.held, layer, head)}}
    fig = None
    if figure:
        fig = figures.top_keys_bar(bars["labels"], bars["weights"], scores, indices=bars["indices"])
        fig.update_layout(height=INSPECTOR_HEIGHT)
        add_meta(fig, **bars["meta"])
    who = "mean of all heads" if head == MEAN else f"L{layer} H{head}"
    return {"figure": fig, "rows": rows, "mean": head == MEAN, "bars": bars,
            "title": f"Query #{q} “{queries[q].label}” · top 5 keys · {who}"}


INSPECTOR_HEIGHT = 230


def _measure_inspector(run: AttentionRun, sel: Selection, ml) -> dict:
    """inspector_panel under a measure: the 5 keys with the largest |value| of query q (signed
    value, and the raw weight of the same key for comparison)."""
    name, layer, head, q = sel.block, sel.layer, sel.head, sel.query
    keys = run.tokens(run.block(name).key_side)
    hv = head if ml.per_head else MEAN
    raw_row = head_weights(run, name, layer, hv, 1.0, [q])[0]
    rows = measure_view.top_keys(ml, head, q, [k.label for k in keys], raw_row)
    fig = figures.top_keys_bar([r["label"] for r in rows], [abs(r["value"]) for r in rows],
                               indices=[r["key"] for r in rows])
    vals = [abs(r["value"]) for r in rows]
    name_ = measure_view.value_name(ml)
    fig.update_traces(x=vals, text=[f"{r['value']:.3g}" for r in rows], hovertemplate="%{y}: %{x:.3g}<extra></extra>",
                      name=name_)
    fig.update_layout(height=230, xaxis=dict(range=[0, max(vals + [1e-12]) * 1.1], title=dict(text=name_)))
    add_meta(fig, view=view_stamp(run, sel.held, layer, head), measure=ml.measure)
    who = (f"layers 0–{layer}, heads averaged" if not ml.per_head else
           ("mean of all heads" if head == MEAN else f"L{layer} H{head}"))
    return {"figure": fig, "rows": rows, "mean": head == MEAN, "measure": ml,
            "title": f"Query #{q} “{run.tokens(run.block(name).query_side)[q].label}” · top 5 keys by "
                     f"{ml.label} · {who}"}

