"""The heatmap card's measure selector and what it adds to the page (Dash components; the
numbers come from dashboard/measure_view.py). Ids in dashboard/ids.py (MEASURE ...)."""
from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import html

from dashboard import ids, measure_view


TARGET_HINT = ("Gradient × attention's target y: the LM loss for models with an LM head; for a sentence-"
               "embedding model the cosine between the two sentences of a pair (enter a second text). "
               "Rollout averages heads through layers 0..l.")


def selector() -> html.Div:
    """"Measure: raw weights | attention rollout | value-norm | gradient × attention" and the line
    that says what is being computed / the measure's formula (assets/measure.js fills it)."""
    return html.Div([
        html.Div([
            dbc.Label("Measure", html_for=ids.MEASURE, class_name="small fw-semibold mb-0 me-2"),
            dbc.RadioItems(id=ids.MEASURE, options=measure_view.OPTIONS, value=measure_view.DEFAULT, inline=True,
                           class_name="small measure-radio"),
        ], className="d-flex align-items-center flex-wrap"),
        html.Div(TARGET_HINT, className="small text-muted measure-hint"),
        html.Div("", id=ids.MEASURE_STATUS, className="small text-muted measure-status", role="status"),
    ], className="mb-1")


def explain_box() -> html.Div:
    """The explain panel's part for the shown measure (formula, caveat, target; assets/measure.js)."""
    return html.Div([], id=ids.MEASURE_EXPLAIN, className="small measure-explain")


def inspector_table(rows: list[dict], ml) -> html.Div:
    """The top keys under a measure: rank, key token (#position), signed value, raw weight."""
    name = measure_view.value_name(ml).strip("|")
    head = html.Thead(html.Tr([html.Th("#"), html.Th("key token"), html.Th(name, className="text-end"),
                               html.Th("weight α", className="text-end", title="the raw attention weight")]))
    body = html.Tbody([html.Tr([
        html.Td(str(i + 1)),
        html.Td([html.Span(r["label"], className="token"), html.Span(f" #{r['key']}", className="text-muted")]),
        html.Td(f"{r['value']:.4g}", className="text-end font-monospace measure-value"),
        html.Td(f"{r['weight']:.3f}", className="text-end font-monospace"),
    ]) for i, r in enumerate(rows)])
    note = f"{ml.label}: {ml.formula}" + (" Ranked by |value|; the sign is kept." if ml.signed else "")
    if not ml.per_head:
        note += " Weight α: the mean of the layer's heads."
    return html.Div([dbc.Table([head, body], size="sm", class_name="mb-1 inspector-table", striped=True),
                     html.Div(note, className="text-muted")])
