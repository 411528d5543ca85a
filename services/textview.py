"""The text view: the running text with what one query token attends to drawn as coloured
highlights over its key tokens (what BertViz's and CircuitsVis' users read long inputs with).
Pure: run -> a small payload the browser draws (assets/textview.js)."""
from __future__ import annotations

import numpy as np

from dashboard.selection import temperature_from_slider
from services.views import MEAN, default_query, head_weights, selection_of
from models.run import AttentionRun, Token

MAX_GAP_CHARS = 40  # a longer run of text between two tokens (e.g. cut whitespace) is shortened


def segments(tokens: tuple[Token, ...], texts: list[str | None]) -> list[dict]:
    """One entry per token: {"gap": the text between the previous token and this one (spaces,
    newlines), "text": the token's surface form (special tokens: their label), "special": bool}.
    texts: the text each segment's offsets point into (sentence A, sentence B)."""
    out, prev_end, prev_seg = [], 0, None
    for t in tokens:
        src = texts[t.segment] if 0 <= t.segment < len(texts) and texts[t.segment] is not None else ""
        if t.special or t.start is None or t.end is None:
            out.append({"gap": " " if out else "", "text": t.label, "special": True})
            continue
        if t.segment != prev_seg:
            prev_end, prev_seg = t.start, t.segment
        gap = src[prev_end:t.start] if t.start >= prev_end else ""
        if len(gap) > MAX_GAP_CHARS:
            gap = gap[:MAX_GAP_CHARS] + "…"
        out.append({"gap": gap, "text": src[t.start:t.end], "special": False})
        prev_end = t.end
    return out


def text_view_payload(run: AttentionRun, block, layer, head, query, slider, measure=None) -> dict:
    """{"view", "tokens" (segments of the key side), "query", "weights" [keys] of that query,
    "title", "note"} for the page's selection; `view` as services.panels.view_stamp.
    measure: a models.measure_views.MeasureLayer (None: raw weights): highlights by |value|."""
    from dashboard import measure_view
    from services.panels import view_stamp  # (panels imports this module's neighbours)

    sel = selection_of(run, block, layer, head, query)
    name, layer, head = sel.block, sel.layer, sel.head
    b = run.block(name)
    queries, keys = run.tokens(b.query_side), run.tokens(b.key_side)
    q = sel.query if sel.query is not None else default_query(run, name)
    t = temperature_from_slider(slider)
    ml = measure if measure_view.active(measure) and name == run.main.name else None
    if ml is None:
        row = head_weights(run, name, layer, head, t, rows=[q])[0]
    else:
        row = measure_view.rows(ml, head, [q])[0]
    row = np.nan_to_num(np.asarray(row, dtype=np.float64), nan=0.0)
    texts = [run.text, run.text_pair] if b.key_side == "source" else [run.text_pair or run.text]
    who = "mean of all heads" if head == MEAN else f"L{layer} H{head}"
    what, value = "attention weight", f"{float(row.max()) if row.size else 0.0:.3f}"
    title = f"What “{queries[q].label}” (#{q}) attends to · {who}" + (f" · T = {t:g}" if t != 1.0 else "")
    if ml is not None:
        who = f"layers 0–{layer}, heads averaged" if not ml.per_head else who
        what, value = measure_view.value_name(ml), f"{float(row.max()) if row.size else 0.0:.3g}"
        title = f"“{queries[q].label}” (#{q}) under {ml.label} · {who}"
    return {
        "view": view_stamp(run, sel.held, layer, head),
        "tokens": segments(keys, texts), "query": int(q),
        "weights": [float(f"{float(w):.4g}") for w in row] if ml is not None else [round(float(w), 4) for w in row],
        "title": title,
        "note": (f"Highlight = {what} ÷ the largest of this row (max "
                 f"{value}); hover a heatmap cell or click a row to "
                 "read another query."),
    }
