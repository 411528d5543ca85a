"""The page: navbar, explain panel, controls, stats, heatmap + inspector, heads grid + overview,
pruning card, and the shared stores (run summary, hover, selected query)."""
from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard import cards, controls, ids
from dashboard.pruning_panel import pruning_card
from dashboard.research_panel import research_card


def navbar() -> dbc.Navbar:
    return dbc.Navbar(dbc.Container([
        html.Span("Attention dashboard", className="navbar-brand mb-0 h1"),
        html.Span("what real transformer heads attend to", className="navbar-text small text-white-50 me-auto"),
        html.Button("Explain attention", id=ids.EXPLAIN_BUTTON, n_clicks=0, type="button",
                    className="btn btn-outline-light btn-sm", **{"aria-controls": ids.EXPLAIN_COLLAPSE}),
    ], fluid=True), color="dark", dark=True, class_name="mb-3 py-2")


def stores() -> list:
    return [
        dcc.Location(id=ids.URL, refresh=False),
        dcc.Store(id=ids.HOVER, data=None),
        dcc.Store(id=ids.QUERY, data=None),
        dcc.Store(id=ids.URL_LOADED, data=None),
        dcc.Store(id=ids.URL_WRITTEN, data=None),
        dcc.Store(id=ids.HEATMAP_PAYLOAD, data=None),
        dcc.Store(id=ids.HEATMAP_WINDOW, data=None),
        dcc.Store(id=ids.HEATMAP_FETCH, data=None),
        dcc.Store(id=ids.GRID_PAYLOAD, data=None),
        dcc.Store(id=ids.OVERVIEW_PAYLOAD, data=None),
        dcc.Store(id=ids.INSPECTOR_PAYLOAD, data=None),
        dcc.Store(id=ids.TEXT_VIEW_PAYLOAD, data=None),
        dcc.Store(id=ids.FOLLOW_LAYER, data=None), dcc.Store(id=ids.FOLLOW_HEAD, data=None),
        dcc.Download(id=ids.DOWNLOAD_CSV), dcc.Download(id=ids.DOWNLOAD_GRID), dcc.Download(id=ids.DOWNLOAD_JSON),
    ]


def main_column() -> html.Div:
    """Alerts, stats and the two card rows. The run store sits inside the dcc.Loading so the
    spinner shows while a run is computed (and only then: target_components)."""
    return dcc.Loading(
        html.Div([
            dcc.Store(id=ids.RUN, data=None),
            dbc.Alert(id=ids.STATUS, is_open=False, color="danger", dismissable=True, class_name="mb-2"),
            dbc.Alert(id=ids.TRUNCATION, is_open=False, color="warning", class_name="mb-2 py-2 small"),
            dbc.Row(cards.stats_cards(None), id=ids.STATS, class_name="g-2 mb-3 stats-row"),
            dbc.Row([
                dbc.Col(cards.heatmap_card(), xl=8, class_name="mb-3"),
                dbc.Col(cards.inspector_card(), xl=4, class_name="mb-3"),
            ], class_name="g-3"),
            dbc.Row(dbc.Col(cards.text_view_card(), class_name="mb-3")),
        ]),
        id=ids.RUN_LOADING, target_components={ids.RUN: "data"}, delay_show=250, type="circle",
        overlay_style={"visibility": "visible", "opacity": 0.55},
    )


def layout(model_names: list[str], vocabulary: dict) -> html.Div:
    """The page. vocabulary: the engine's names the research card offers, as plain data
    (services.vocabulary.page_vocabulary(); this package imports no engine)."""
    return html.Div([
        *stores(),
        navbar(),
        dbc.Container([
            cards.explain_panel(),
            dbc.Row([
                dbc.Col(controls.controls_card(model_names), lg=4, xl=3, class_name="mb-3"),
                dbc.Col(main_column(), lg=8, xl=9),
            ], class_name="g-3"),
            dbc.Row([
                dbc.Col(cards.grid_card(), xl=5, class_name="mb-3"),
                dbc.Col(cards.overview_card(), xl=7, class_name="mb-3"),
            ], class_name="g-3"),
            # cards that ask the server for the shown layer / head follow it while in view
            dbc.Row(dbc.Col(pruning_card(), class_name="mb-4 " + ids.FOLLOWS_CLASS)),
            dbc.Row(dbc.Col(research_card(model_names, vocabulary), class_name="mb-4 " + ids.FOLLOWS_CLASS)),
        ], fluid=True),
    ], className="attention-dashboard")
