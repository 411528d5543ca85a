"""Instant head switches: what the browser needs to show ANY head of the shown layer with no
request (issue 15). run -> plain payloads (no Dash callbacks); assets/consistency.js (gateInspector) and
assets/textview.js pick the page's head from them.

    inspector_layer(run, block, layer, query, slider) -> the inspector payload store:
        {"view": view stamp (head None: every head), "heads": ["0".."H-1", "mean"],
         "figures": [H+1 top-keys figure dicts; only the first has layout.template], "tables": [H+1
         tables], "titles": [H+1 str]}
        or, with no query, {"view", "figure", "table", "title"} (the prompt)
    text_view_layer(run, block, layer, query, slider) -> the text view payload store:
        {"view" (head None), "tokens" [keys] (dashboard.textview.segments), "query",
         "heads": ["0".."H-1", "mean"], "weights": [H+1][keys], "titles": [H+1], "notes": [H+1]}

Every number is the engine's (services.panels.inspector_panel / services.textview per head);
a head switch only chooses which one is drawn. A layer of MiniLM at 200 tokens: the text view's
weights are 13 x 200 numbers (rounded to 4 decimals), the inspector 13 x 5 bars.
"""
from __future__ import annotations

from dashboard import cards, figures, measure_card
from services import panels, textview
from services.views import MEAN, selection_of


def _heads(run, block, layer):
    """(the page's Selection with head 0, every head's value: "0".."H-1" and "mean")."""
    sel = selection_of(run, block, layer, 0)
    return sel, [str(h) for h in range(run.block(sel.block).n_heads)] + [MEAN]


def inspector_layer(run, block, layer, query, slider, measure=None) -> dict:
    """Top keys of the inspected query for every head of the layer and their mean (see module doc);
    measure: a models.measure_views.MeasureLayer (the top keys under it, issue 13) or None (raw)."""
    sel, heads = _heads(run, block, layer)
    layer = sel.layer
    view = panels.view_stamp(run, sel.held, layer)
    out = {"view": view, "heads": heads, "tables": [], "titles": []}
    bars, figs = [], []
    for h in heads:
        p = panels.inspector_panel(run, block, layer, h, query, slider, measure, figure=False)
        if p is None:  # no query chosen: one prompt for every head
            return {"view": view, "figure": figures.empty_figure(""), "table": cards.INSPECTOR_PROMPT,
                    "title": "Token inspector"}
        if p.get("measure") is not None:  # a measure's own bars (drawn one by one)
            figs.append(p["figure"].to_plotly_json())
            out["tables"].append(measure_card.inspector_table(p["rows"], p["measure"]))
        else:
            bars.append(p["bars"])
            out["tables"].append(cards.inspector_table(p["rows"], p["mean"]))
        out["titles"].append(p["title"])
    figs = figs or figures.top_keys_bars(bars)
    for f in figs[1:]:  # one template for all (gateInspector puts figures[0]'s back): 13 x 7 kB less
        f["layout"] = {k: v for k, v in f["layout"].items() if k != "template"}
    out["figures"] = figs
    return out


def text_view_layer(run, block, layer, query, slider, measure=None) -> dict:
    """The text view of the inspected query for every head of the layer and their mean (under
    `measure` when one is given, as services.textview)."""
    sel, heads = _heads(run, block, layer)
    layer = sel.layer
    out = None
    for h in heads:
        p = textview.text_view_payload(run, block, layer, h, query, slider, measure)
        if out is None:
            out = {"view": panels.view_stamp(run, sel.held, layer), "tokens": p["tokens"],
                   "query": p["query"], "heads": heads, "weights": [], "titles": [], "notes": []}
        out["weights"].append(p["weights"])
        out["titles"].append(p["title"])
        out["notes"].append(p["note"])
    return out
