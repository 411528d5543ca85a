"""The cards of the page (static structure; callbacks fill the figures and texts)."""
from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard import ids, measure_card
from dashboard.figures import empty_figure

STAT_LABELS = {  # stats key -> label shown on the stats row
    "tokens": "Tokens",
    "entropy": "Mean entropy (bits)",
    "max_weight": "Max weight",
    "most_attended": "Most attended token",
    "sink": "Sink mass (key 0)",
}
GRID_METRIC_OPTIONS = [
    {"label": "entropy", "value": "entropy"},
    {"label": "sink mass", "value": "sink"},
    {"label": "diagonal", "value": "diagonal"},
    {"label": "previous-token", "value": "previous"},
    {"label": "role", "value": "role"},
]
INSPECTOR_PROMPT = "Click a cell (or a row) of the heatmap, or press Enter on a cell, to inspect that query token."


def graph_config(filename: str, modebar: bool = True) -> dict:
    """dcc.Graph config: PNG from the mode bar at 2x, no logo, no lasso/select tools; the mode bar
    shows on hover only (the card headers have PNG / SVG buttons too)."""
    return {
        "displaylogo": False,
        "displayModeBar": "hover" if modebar else False,
        "modeBarButtonsToRemove": ["lasso2d", "select2d", "autoScale2d"],
        "toImageButtonOptions": {"format": "png", "filename": filename, "scale": 2},
    }


def graph(graph_id: str, filename: str, class_name: str = "", modebar: bool = True, **kw) -> dcc.Graph:
    return dcc.Graph(id=graph_id, figure=empty_figure(""), config=graph_config(filename, modebar),
                     className=f"{ids.GRAPH_CLASS} {class_name}".strip(), clear_on_unhover=True, **kw)


def download_buttons(graph_id: str, csv: bool = False, extra=()) -> html.Div:
    """PNG + SVG (clientside Plotly.downloadImage), optionally the heatmap's CSV and `extra`
    buttons, as one button group."""
    buttons = [
        dbc.Button("PNG", id=ids.png_button(graph_id), size="sm", color="secondary", outline=True,
                   n_clicks=0, title="Download this chart as PNG", class_name="dl-button"),
        dbc.Button("SVG", id=ids.svg_button(graph_id), size="sm", color="secondary", outline=True,
                   n_clicks=0, title="Download this chart as SVG", class_name="dl-button"),
    ]
    if csv:
        buttons.append(dbc.Button("CSV", id=ids.CSV_BUTTON, size="sm", color="secondary", outline=True,
                                  n_clicks=0, title="Download the shown matrix as CSV (token labels as headers)",
                                  class_name="dl-button"))
    buttons.extend(extra)
    return html.Div(buttons, className="btn-group btn-group-sm download-buttons", role="group",
                    **{"aria-label": "Download"})


def stale_badge(panel: str) -> html.Div:
    """Hidden until the card still shows another run than the page's (assets/consistency.js)."""
    return html.Div("", id=ids.stale_badge(panel), className="stale-badge small", role="status",
                    style={"display": "none"})


def stats_cards(stats: dict | None) -> list:
    """The stats row's columns: one small card per number (placeholders when stats is None)."""
    stats = stats or {}
    return [dbc.Col(html.Div([
        html.Div(label, className="stat-label"),
        html.Div(stats.get(key, "–"), id=ids.stat_value(key), className="stat-value", title=stats.get(key, "")),
    ], className="stat-card"), xs=6, md=4, xl=True) for key, label in STAT_LABELS.items()]


def heatmap_card() -> dbc.Card:
    return dbc.Card([
        dbc.CardHeader(html.Div([
            html.Div([
                html.Div("Attention", id=ids.HEATMAP_TITLE, className="fw-semibold"),
                html.Div("", id=ids.HEATMAP_HOVER_TITLE, className="hover-title small text-muted",
                         **{"aria-hidden": "true"}),
            ], className="me-auto"),
            download_buttons(ids.HEATMAP, csv=True, extra=[dbc.Button(
                "JSON", id=ids.JSON_BUTTON, size="sm", color="secondary", outline=True, n_clicks=0,
                class_name="dl-button", title="Download the shown matrix as JSON (values, tokens, what they are)")]),
        ], className="d-flex align-items-start gap-2")),
        dbc.CardBody([
            stale_badge("heatmap"),
            measure_card.selector(),
            html.Div("Rows: query tokens (attend from) · columns: key tokens (attend to)",
                     className="small text-muted mb-1"),
            html.Div(graph(ids.HEATMAP, "attention-heatmap", class_name="heatmap-graph"),
                     id=ids.HEATMAP_CONTAINER, tabIndex="0", className="heatmap-container",
                     role="group",
                     **{"aria-label": "Attention heatmap. Arrow keys move between cells, Enter inspects the query.",
                        "aria-describedby": ids.HEATMAP_LIVE}),
            html.Div("", id=ids.HEATMAP_LIVE, className="small heatmap-live", **{"aria-live": "polite"}),
            html.Div(id=ids.TEMPERATURE_NOTE, className="small text-muted"),
        ]),
    ], class_name="shadow-sm h-100")


def graph_card_header(title: str, graph_id: str, *, title_id: str | None = None, extra=None) -> dbc.CardHeader:
    """A card's title (with an id when callbacks rewrite it) and the graph's download buttons
    (plus `extra` buttons, e.g. a CSV of the card's numbers)."""
    kw = {"id": title_id} if title_id else {}
    return dbc.CardHeader(html.Div([
        html.Div(title, className="fw-semibold me-auto", **kw),
        download_buttons(graph_id, extra=[extra] if extra is not None else []),
    ], className="d-flex align-items-center gap-2"))


def grid_card() -> dbc.Card:
    return dbc.Card([
        graph_card_header("Heads: layers × heads", ids.GRID, extra=dbc.Button(
            "CSV", id=ids.GRID_CSV_BUTTON, size="sm", color="secondary", outline=True, n_clicks=0,
            class_name="dl-button", title="Download every per-head metric of this block as CSV")),
        dbc.CardBody([
            stale_badge("grid"),
            dbc.RadioItems(id=ids.GRID_METRIC, options=GRID_METRIC_OPTIONS, value="entropy", inline=True,
                           class_name="small mb-1"),
            graph(ids.GRID, "attention-heads", class_name=f"{ids.HEAD_GRID_CLASS} grid-graph", modebar=False),
            html.Div("Click a head to show it. Outlined: the head shown; dashed: the head under the pointer.",
                     className="small text-muted"),
        ]),
    ], class_name="shadow-sm h-100")


def inspector_card() -> dbc.Card:
    return dbc.Card([
        graph_card_header("Token inspector", ids.INSPECTOR, title_id=ids.INSPECTOR_TITLE),
        dbc.CardBody([
            stale_badge("inspector"),
            graph(ids.INSPECTOR, "attention-top-keys", class_name="inspector-graph", modebar=False),
            html.Div(INSPECTOR_PROMPT, id=ids.INSPECTOR_TABLE, className="small"),
        ]),
    ], class_name="shadow-sm h-100")


def text_view_card() -> dbc.Card:
    """The running text, highlighted by what one query attends to (assets/textview.js draws it)."""
    return dbc.Card([
        dbc.CardHeader(html.Div("Text view", id=ids.TEXT_VIEW_TITLE, className="fw-semibold")),
        dbc.CardBody([
            html.Div(id=ids.TEXT_VIEW_BOX, className="text-view-box", **{"aria-label": "Text view"}),
            html.Div("", id=ids.TEXT_VIEW_NOTE, className="small text-muted mt-1"),
        ]),
    ], class_name="shadow-sm")


def overview_card() -> dbc.Card:
    return dbc.Card([
        graph_card_header("Every head of the layer", ids.OVERVIEW, title_id=ids.OVERVIEW_TITLE),
        dbc.CardBody([
            stale_badge("overview"),
            graph(ids.OVERVIEW, "attention-layer-heads", class_name="overview-graph", modebar=False),
            html.Div("Click a head to show it in the heatmap.", className="small text-muted"),
        ]),
    ], class_name="shadow-sm h-100")


EXPLAIN_MD = r"""
**What a head computes.** Each head turns every token into a query $q$, a key $k$ and a value $v$, and mixes the values:

$$\mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{QK^\top}{\sqrt{d}}\right) V$$

**Reading the heatmap.** A **row** is a *query* token: the token that *attends from*. A **column** is a *key* token: the token that is *attended to*. Each row is a probability distribution over the keys and sums to 1, so the cell in row *i*, column *j* is the share of token *i*'s mix that comes from token *j*. In causal (GPT-2 style) attention a token cannot see later tokens, so the upper triangle is empty. For a sentence pair, lines mark where sentence B starts; the block selector cuts out A→A, A→B, B→A or B→B.

**Scores.** The number inside the softmax, $q\cdot k/\sqrt{d}$, is the pre-softmax score; the token inspector shows it next to each weight. The temperature slider re-applies $\mathrm{softmax}(s/T)$ to these real scores: $T = 1$ is the model itself, $T > 1$ flattens, $T < 1$ sharpens.

**Entropy (bits).** For one row, $H = -\sum_j a_j \log_2 a_j$: 0 bits when a token attends to a single key, $\log_2 n$ bits when it spreads evenly over $n$ keys. The grid shows each head's mean over rows.

**Sinks.** Many heads park most of their attention on the first token ([CLS] or the first word) or on separators. This *attention sink* often acts as a "no-op": the head has nothing useful to add for that token. *Sink mass* is the mean weight on key 0.

**Caveat: attention is not explanation.** Attention weights show how a head mixes information, not why the model made a prediction; different attention can give the same output, and value vectors and later layers change what each weight means. See Jain & Wallace (2019), *Attention is not Explanation*, and Wiegreffe & Pinter (2019), *Attention is not not Explanation*.
"""


def explain_panel() -> html.Div:
    return dbc.Collapse(dbc.Card(dbc.CardBody([dcc.Markdown(EXPLAIN_MD, mathjax=True, className="explain-md"),
                                               measure_card.explain_box()]),
                                 class_name="shadow-sm mb-3"),
                        id=ids.EXPLAIN_COLLAPSE, is_open=False)


def _score(score) -> str:
    if score is None:
        return "—"
    if score == float("-inf"):
        return "masked"
    return f"{score:.2f}"


def inspector_table(rows: list[dict], mean: bool) -> html.Div:
    """The top keys as a small table: rank, key token (#position), weight, score q·k/√d."""
    head = html.Thead(html.Tr([html.Th("#"), html.Th("key token"), html.Th("weight", className="text-end"),
                               html.Th("q·k/√d", className="text-end", title="pre-softmax score")]))
    body = html.Tbody([html.Tr([
        html.Td(str(i + 1)),
        html.Td([html.Span(r["label"], className="token"), html.Span(f" #{r['key']}", className="text-muted")]),
        html.Td(f"{r['weight']:.3f}", className="text-end font-monospace"),
        html.Td(_score(r["score"]), className="text-end font-monospace"),
    ]) for i, r in enumerate(rows)])
    note = ("Mean of all heads: weights are the mean of the layer's heads; pre-softmax scores are per head, "
            "pick a head to see them." if mean else
            "Score: the head's real pre-softmax score q·k/√d; weight = softmax of the row's scores.")
    return html.Div([dbc.Table([head, body], size="sm", class_name="mb-1 inspector-table", striped=True),
                     html.Div(note, className="text-muted")])
