"""The head-pruning card (GitHub issue 4): static structure; callbacks/pruning.py fills it.

    1 Choose heads        layers x heads grid (click toggles a head, Shift+click a rectangle),
                          "prune the k least important", "prune heads with entropy above x"
    2 Baseline vs pruned  the page's layer / head / block, before and after, + output change
    3 Attention change    JS divergence of each remaining head's attention
    4 Physical pruning    parameters and latency of a copy without the pruned heads
    5 Importance, curves  corpus (bundled pairs or an upload), background jobs with progress
                          and cancel, the curves with the current mask's share marked

Its head grids have the page's class `ids.HEAD_GRID_CLASS`, so assets/hover.js outlines the
head under the pointer in them, and they write the page's hover store (callbacks/pruning.py).
"""
from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard import ids
from dashboard import pruning_ids as P
from dashboard import pruning_views as pv
from dashboard.cards import graph

OUTPUT_PLACEHOLDERS = [  # (name, label) of the output-change row before the first comparison
    ("cosine", "Embedding cosine"), ("js_mean", "Mean attention change"), ("js_max", "Most changed head"),
    ("pruned", "Heads pruned"),
]
PHYSICAL_NOTE = ("A copy of the model without the pruned heads' rows of Q/K/V and columns of the output "
                 "projection (the shared model is not touched). Latency: median of "
                 f"{pv.LATENCY_REPEATS} forward passes of each on this text (batch 1, the two models "
                 "alternated) on this server's CPU, which other requests share: expect noise.")


def _section(title, children, *, title_id: str | None = None, extra=None, fill: bool = True) -> html.Div:
    head = [html.Div(title, id=title_id, className="pruning-section-title")] if title_id else \
        [html.Div(title, className="pruning-section-title")]
    if extra is not None:
        head.append(extra)
    return html.Div([html.Div(head, className="d-flex align-items-center gap-2 mb-1 flex-wrap"), *children],
                    className="pruning-section" + (" h-100" if fill else ""))


def _progress(bar_id: str, text_id: str, wrap_id: str) -> html.Div:
    """A progress bar and its text ("curves: 12 of 140 steps (8%)"), shown while a job runs."""
    return html.Div([dbc.Progress(id=bar_id, value=0, striped=True, animated=True, class_name="pruning-progress"),
                     html.Div("", id=text_id, className="small text-muted pruning-progress-text")],
                    id=wrap_id, className="flex-grow-1", style={"display": "none"})


def _job_row(label: str, button: str, cancel: str, bar: str, text: str, wrap: str) -> html.Div:
    """A slow job's start button, its Cancel button (enabled while it runs) and its progress bar."""
    return html.Div([
        dbc.Button(label, id=button, n_clicks=0, size="sm", color="primary"),
        dbc.Button("Cancel", id=cancel, n_clicks=0, size="sm", color="secondary", outline=True, disabled=True),
        _progress(bar, text, wrap),
    ], className="d-flex align-items-center gap-2 mb-1")


def stores() -> list:
    return [dcc.Store(id=P.MASK, data=None), dcc.Store(id=P.SHIFT, data=False), dcc.Store(id=P.ANCHOR, data=None),
            dcc.Store(id=P.IMPORTANCE, data=None), dcc.Store(id=P.CURVES, data=None),
            dcc.Store(id=P.CORPUS, data=None), dcc.Store(id=P.HOVER_SINK, data=None),
            dcc.Store(id=P.SELECT_PAYLOAD, data=None)]


def choose_section() -> html.Div:
    k = dbc.InputGroup([
        dbc.InputGroupText("Prune the"),
        dbc.Input(id=P.K_INPUT, type="number", min=0, step=1, value=pv.DEFAULT_K, class_name="pruning-num"),
        dbc.InputGroupText("least important"),
        dbc.Button("Apply", id=P.K_BUTTON, n_clicks=0, color="primary", outline=True),
    ], size="sm", class_name="mb-1")
    entropy = dbc.InputGroup([
        dbc.InputGroupText("Prune heads with entropy above"),
        dbc.Input(id=P.ENTROPY_INPUT, type="number", step=0.1, value=pv.DEFAULT_ENTROPY, class_name="pruning-num"),
        dbc.InputGroupText("bits"),
        dbc.Button("Apply", id=P.ENTROPY_BUTTON, n_clicks=0, color="primary", outline=True),
    ], size="sm", class_name="mb-1")
    return _section("Choose heads to prune", [
        dbc.RadioItems(id=P.SELECT_COLOR, inline=True, value="importance", class_name="small",
                       options=[{"label": "colour: importance", "value": "importance"},
                                {"label": "entropy (this text)", "value": "entropy"}]),
        html.Div(graph(P.SELECT_GRID, "pruning-heads",
                       class_name=f"{ids.HEAD_GRID_CLASS} {P.TOGGLE_GRID_CLASS} pruning-grid"),
                 id=P.SELECT_GRID_BOX, tabIndex="0", className="pruning-grid-box",
                 **{"aria-label": "Heads to prune. Arrow keys move between heads; Space or Enter switches "
                                  "the head off or back on; Shift+Space sets the rectangle from the last head."}),
        html.Div("", id=P.SELECT_NOTE, className="small text-muted mb-1"),
        html.Div("No run yet", id=P.COUNT, className="fw-semibold mb-2 pruning-count", role="status"),
        k, entropy,
        dbc.Button("Restore all heads", id=P.CLEAR_BUTTON, n_clicks=0, size="sm", color="secondary", outline=True),
        html.Div("Entropy: this text's mean attention entropy per head (the heads grid above).",
                 className="small text-muted mt-1"),
    ])


def output_cards(rows: list[dict]) -> list:
    """The output-change row: one small card per number ({"name", "label", "value", "title"})."""
    return [dbc.Col(html.Div([
        html.Div(r["label"], className="stat-label"),
        html.Div(r["value"], id=P.output_value(r["name"]), className="stat-value", title=r.get("title", "")),
    ], className="stat-card"), xs=6, md=3) for r in rows]


def compare_section() -> html.Div:
    placeholders = [{"name": n, "label": label, "value": "–"} for n, label in OUTPUT_PLACEHOLDERS]
    return _section("Baseline vs pruned", [
        dbc.Row([
            dbc.Col([html.Div("Baseline (all heads)", className="small fw-semibold text-center"),
                     graph(P.BASE_HEATMAP, "attention-baseline", class_name="pruning-heatmap")], md=6),
            dbc.Col([html.Div("Pruned", id=P.PRUNED_TITLE, className="small fw-semibold text-center"),
                     graph(P.PRUNED_HEATMAP, "attention-pruned", class_name="pruning-heatmap")], md=6),
        ], class_name="g-2"),
        html.Div("", id=P.COMPARE_NOTE, className="small text-muted mb-1 pruning-note"),
        html.Div("Output change for this text (the page's layer, head and block are shown above):",
                 className="small text-muted"),
        dbc.Row(output_cards(placeholders), id=P.OUTPUT_CHANGE, class_name="g-2 stats-row"),
    ], title_id=P.COMPARE_TITLE)


def change_section() -> html.Div:
    return _section("Attention change of the remaining heads", [
        html.Div("Jensen–Shannon divergence (bits) between each head's baseline and pruned attention rows, "
                 "mean over queries; 0 = unchanged. Pruned heads (×) are left out.", className="small text-muted"),
        graph(P.CHANGE_GRID, "pruning-attention-change", class_name=f"{ids.HEAD_GRID_CLASS} pruning-grid"),
        html.Div("Click a head to show it in the heatmaps.", className="small text-muted"),
    ], fill=False)


def curves_section() -> html.Div:
    upload = dcc.Upload(
        id=P.UPLOAD, multiple=False, max_size=pv.MAX_UPLOAD_BYTES, className="pruning-upload",
        children=html.Div(["Drop or ", html.A("choose a file of sentence pairs", className="link-primary"),
                           html.Span(" (one pair a line: A<TAB>B or A ||| B)", className="text-muted")]),
    )
    controls = dbc.Row([
        dbc.Col([dbc.Label("Pairs used", html_for=P.PAIRS_INPUT, class_name="small fw-semibold mb-0"),
                 dbc.Input(id=P.PAIRS_INPUT, type="number", min=2, step=1, value=None, placeholder="all",
                           size="sm")], xs=6, md=2),
        dbc.Col([dbc.Label("Random seeds", html_for=P.SEEDS_INPUT, class_name="small fw-semibold mb-0"),
                 dbc.Input(id=P.SEEDS_INPUT, type="number", min=1, max=10, step=1, value=pv.DEFAULT_SEEDS,
                           size="sm")], xs=6, md=2),
        dbc.Col([dbc.Label("Pruning orders (curves)", class_name="small fw-semibold mb-0"),
                 dbc.Checklist(id=P.ORDERS, inline=True, value=list(pv.CHECKED_ORDERS), class_name="small",
                               options=[{"label": o, "value": o, "title": pv.ORDER_LABELS[o]}
                                        for o in ("importance", "entropy", "random", "ablation")])], md=8),
    ], class_name="g-2 mb-1")
    importance_row = _job_row("Compute importance", P.IMPORTANCE_BUTTON, P.IMPORTANCE_CANCEL,
                              P.IMPORTANCE_PROGRESS, P.IMPORTANCE_PROGRESS_TEXT, P.IMPORTANCE_PROGRESS_WRAP)
    curves_row = _job_row("Compute pruning curves", P.CURVES_BUTTON, P.CURVES_CANCEL,
                          P.CURVES_PROGRESS, P.CURVES_PROGRESS_TEXT, P.CURVES_PROGRESS_WRAP)
    metric = dbc.Select(id=P.CURVE_METRIC, size="sm", value=None, class_name="pruning-metric", options=[])
    return _section("Importance and pruning curves", [
        html.Div([upload,
                  html.Div([html.Span(id=P.CORPUS_INFO, className="small me-2"),
                            dbc.Button("use the bundled pairs", id=P.CORPUS_RESET, n_clicks=0, size="sm",
                                       color="link", class_name="p-0 small align-baseline")],
                           className="mt-1")], className="mb-2"),
        controls,
        html.Div(id=P.LOSS_NOTE, className="small pruning-loss-note mb-2"),
        importance_row,
        html.Div("Importance not computed yet.", id=P.IMPORTANCE_INFO, className="small text-muted mb-2"),
        curves_row,
        html.Div([dbc.Label("Curve metric", html_for=P.CURVE_METRIC, class_name="small fw-semibold mb-0 me-2"),
                  metric], id=P.CURVE_METRIC_ROW, className="align-items-center mb-1", style={"display": "none"}),
        graph(P.CURVES_GRAPH, "pruning-curves", class_name="pruning-curves-graph"),
        html.Div("", id=P.CURVES_INFO, className="small text-muted"),
        html.Div([html.Span("Download:", className="small text-muted me-1")] + [
            dbc.Button(f"{what} {fmt.upper()}", id=P.export_button(what, fmt), n_clicks=0, size="sm",
                       color="secondary", outline=True, class_name="dl-button",
                       title=f"Download the {what} with model, corpus and method ({fmt.upper()})")
            for what, fmt in P.EXPORTS] + [dcc.Download(id=P.DOWNLOAD)],
            className="d-flex flex-wrap align-items-center gap-1 mt-1 pruning-exports"),
    ])


def physical_table(result: dict) -> html.Div:
    """Full vs physically pruned model: heads, parameters, latency."""
    rows = pv.physical_rows(result)
    head = html.Thead(html.Tr([html.Th(""), html.Th("full", className="text-end"),
                               html.Th("pruned", className="text-end"),
                               html.Th("change", className="text-end")]))
    body = html.Tbody([html.Tr([html.Td(r["what"]), html.Td(r["full"], className="text-end font-monospace"),
                                html.Td(r["pruned"], className="text-end font-monospace"),
                                html.Td(r["change"], className="text-end font-monospace")],
                               id=P.physical_row(r["name"]))
                        for r in rows])
    note = (f"{result['model']} · {result['tokens']} tokens · median of {result['repeats']} runs each.")
    return html.Div([dbc.Table([head, body], size="sm", class_name="mb-1 pruning-physical-table", striped=True),
                     html.Div(note, className="small text-muted")])


def physical_section() -> html.Div:
    return _section("Physically pruned model", [
        html.Div(PHYSICAL_NOTE, className="small text-muted mb-2"),
        html.Div([
            dbc.Button("Measure physically pruned model", id=P.PHYSICAL_BUTTON, n_clicks=0, size="sm",
                       color="primary", outline=True),
        ], className="mb-2"),
        dcc.Loading(html.Div(id=P.PHYSICAL_RESULT, className="pruning-physical"), type="dot", delay_show=200),
    ], fill=False)


def pruning_card() -> dbc.Card:
    return dbc.Card([
        dbc.CardHeader(html.Div([
            html.Span("Head pruning", className="fw-semibold"),
            html.Span("switch heads off (their output × 0, inside the model's attention) and see what changes",
                      className="small text-muted"),
        ], className="d-flex align-items-baseline gap-2 flex-wrap")),
        dbc.CardBody([
            *stores(),
            dbc.Alert(id=P.STATUS, is_open=False, color="danger", dismissable=True, class_name="mb-2 py-2 small"),
            dbc.Row([
                dbc.Col(choose_section(), xl=4, class_name="mb-3"),
                dbc.Col(compare_section(), xl=8, class_name="mb-3"),
            ], class_name="g-3"),
            dbc.Row([
                dbc.Col([change_section(), html.Div(physical_section(), className="mt-3")], xl=4, class_name="mb-3"),
                dbc.Col(curves_section(), xl=8, class_name="mb-3"),
            ], class_name="g-3"),
        ]),
    ], id=ids.PRUNING_CARD, class_name="shadow-sm")
