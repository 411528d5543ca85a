"""The controls card: model, text(s), Run, layer / head / block, colours, values, temperature."""
from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard import ids, urlstate
from dashboard.figures import COLOR_SCALES
from dashboard.selection import (head_options, layer_options, slider_from_temperature,  # noqa: F401
                                 temperature_from_slider)

TEMPERATURE_CAPTION = ("T = 1 is the model itself; other values re-apply softmax to the model's real "
                       "pre-softmax scores q·k/√d")
# slider position s = log2(T): -2..2 <-> T = 0.25..4, so 1 sits in the middle
TEMPERATURE_MARKS = {-2: "0.25", -1: "0.5", 0: "1", 1: "2", 2: "4"}
COLOR_LABELS = {"accent": "accent", "mono": "mono", "viridis": "viridis", "cividis": "cividis"}
POOL_OPTIONS = [{"label": "block max", "value": "max"}, {"label": "block mean", "value": "mean"}]
SHOW_VALUES = [{"label": "auto", "value": "auto"}, {"label": "on", "value": "on"},
               {"label": "off", "value": "off"}]


def _field(label: str, control, html_for: str | None = None, hint=None, class_name="mb-2"):
    children = [dbc.Label(label, html_for=html_for, class_name="form-label small fw-semibold mb-1"),
                control]
    if hint:
        children.append(dbc.FormText(hint, class_name="d-block"))
    return html.Div(children, className=class_name)


def controls_card(model_names: list[str]) -> dbc.Card:
    model = dbc.Select(id=ids.MODEL, options=[{"label": n, "value": n} for n in model_names],
                       value=urlstate.DEFAULT_MODEL if urlstate.DEFAULT_MODEL in model_names else model_names[0],
                       size="sm")
    text = dcc.Textarea(id=ids.TEXT, value=urlstate.DEFAULT_TEXT, rows=3, className="form-control form-control-sm",
                        spellCheck="false")
    pair = dcc.Textarea(id=ids.TEXT_PAIR, value="", rows=2, className="form-control form-control-sm",
                        placeholder="optional", spellCheck="false")
    run = html.Div([
        dbc.Button("Run", id=ids.RUN_BUTTON, n_clicks=0, color="primary", size="sm", class_name="px-4"),
        html.Span(id=ids.RUN_INFO, className="small text-muted ms-2 run-info"),
    ], className="d-flex align-items-center mb-3")
    layer = dbc.Select(id=ids.LAYER, options=layer_options(6), value=str(urlstate.DEFAULT_LAYER), size="sm")
    head = dbc.Select(id=ids.HEAD, options=head_options(12), value=str(urlstate.DEFAULT_HEAD), size="sm")
    block = dbc.Select(id=ids.BLOCK, options=[{"label": "self", "value": "self"}], value="self", size="sm")
    colors = dbc.Select(id=ids.COLOR_SCALE, options=[{"label": COLOR_LABELS.get(k, k), "value": k}
                                                     for k in COLOR_SCALES], value="accent", size="sm")
    values = dbc.RadioItems(id=ids.SHOW_VALUES, options=SHOW_VALUES, value="auto", inline=True,
                            class_name="small values-radio")
    pool = dbc.RadioItems(id=ids.POOL, options=POOL_OPTIONS, value="max", inline=True, class_name="small pool-radio")
    stretch = dbc.Switch(id=ids.COLOR_STRETCH, value=True,
                         label="adapt colours on long texts (> 24 tokens: 0 to the head's 99th percentile; "
                               "the top 1% saturate)", class_name="small mb-2")
    temperature = dcc.Slider(id=ids.TEMPERATURE, min=-2, max=2, step=0.25, value=0, marks=TEMPERATURE_MARKS,
                             included=False, updatemode="mouseup", allow_direct_input=False)
    return dbc.Card([
        dbc.CardHeader("Run", class_name="fw-semibold"),
        dbc.CardBody([
            _field("Model", model, ids.MODEL),
            _field("Text", text, ids.TEXT,
                   hint=html.Span("Enter runs · Shift+Enter for a new line", id="text-hint")),
            _field("Second sentence (pair) / target for encoder-decoder", pair, ids.TEXT_PAIR),
            run,
            dbc.Row([dbc.Col(_field("Layer", layer, ids.LAYER), width=6),
                     dbc.Col(_field("Head", head, ids.HEAD), width=6)], class_name="g-2"),
            _field("Block", block, ids.BLOCK,
                   hint="Pairs: A→B = queries of sentence A attending to keys of sentence B"),
            dbc.Row([dbc.Col(_field("Colour scale", colors, ids.COLOR_SCALE), width=5),
                     dbc.Col(_field("Values in cells", values), width=7)], class_name="g-2"),
            stretch,
            _field("Long texts (> 512 tokens): overview of token blocks by", pool, ids.POOL,
                   hint="box-zoom the heatmap for exact values of a window"),
            html.Div([
                dbc.Label(["Temperature ", html.Span("T = 1", id=ids.TEMPERATURE_LABEL, className="badge text-bg-light")],
                          html_for=ids.TEMPERATURE, class_name="form-label small fw-semibold mb-1"),
                temperature,
                dbc.FormText(TEMPERATURE_CAPTION, class_name="d-block temperature-caption"),
            ], className="mb-1"),
        ]),
    ], class_name="controls-card shadow-sm")
