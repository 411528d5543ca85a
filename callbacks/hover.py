"""Browser-only wiring (assets/hover.js, namespace "hover"): hover, clicks that only move
selection state, downloads, the explain toggle. None of these calls the server; no server
callback takes hoverData as an Input.

To join the hover highlighting from another panel (e.g. a pruning grid): give the dcc.Graph the
class ids.HEAD_GRID_CLASS (it then gets the hovered-head outline) and write the hover store with

    app.clientside_callback(ClientsideFunction("hover", "fromGrid"),
                            Output(ids.HOVER, "data", allow_duplicate=True),
                            Input(<grid id>, "hoverData"), prevent_initial_call=True)
"""
from __future__ import annotations

from dash import MATCH, ClientsideFunction, Input, Output, State

from dashboard import ids


def _fn(name: str) -> ClientsideFunction:
    return ClientsideFunction(namespace="hover", function_name=name)


def register(app) -> None:
    # writers: hoverData -> hover store (browser only)
    app.clientside_callback(_fn("fromHeatmap"), Output(ids.HOVER, "data", allow_duplicate=True),
                            Input(ids.HEATMAP, "hoverData"), State(ids.HEATMAP, "figure"),
                            prevent_initial_call=True)
    app.clientside_callback(_fn("fromGrid"), Output(ids.HOVER, "data", allow_duplicate=True),
                            Input(ids.GRID, "hoverData"), prevent_initial_call=True)
    app.clientside_callback(_fn("fromOverview"), Output(ids.HOVER, "data", allow_duplicate=True),
                            Input(ids.OVERVIEW, "hoverData"), State(ids.OVERVIEW, "figure"),
                            prevent_initial_call=True)
    # reader: draw the highlight on the graphs' DOM nodes, write the hover title + aria-live text
    app.clientside_callback(_fn("apply"), Output(ids.HEATMAP_HOVER_TITLE, "children"),
                            Output(ids.HEATMAP_LIVE, "children"), Input(ids.HOVER, "data"),
                            prevent_initial_call=True)
    # another run, block, layer, head or temperature clears the hover (its readout named a cell of
    # the previous view). Not on the figure itself: the hover highlight relayouts that figure.
    app.clientside_callback(_fn("clearOnNewFigure"), Output(ids.HOVER, "data", allow_duplicate=True),
                            Input(ids.RUN, "data"), Input(ids.BLOCK, "value"), Input(ids.LAYER, "value"),
                            Input(ids.HEAD, "value"), Input(ids.TEMPERATURE, "value"), prevent_initial_call=True)
    # clicks that only move the selection (the panels then update from the dropdowns / query store)
    app.clientside_callback(_fn("queryFromClick"), Output(ids.QUERY, "data", allow_duplicate=True),
                            Input(ids.HEATMAP, "clickData"), State(ids.HEATMAP, "figure"),
                            prevent_initial_call=True)
    app.clientside_callback(_fn("headFromGrid"), Output(ids.LAYER, "value", allow_duplicate=True),
                            Output(ids.HEAD, "value", allow_duplicate=True),
                            Input(ids.GRID, "clickData"), prevent_initial_call=True)
    app.clientside_callback(_fn("headFromOverview"), Output(ids.HEAD, "value", allow_duplicate=True),
                            Input(ids.OVERVIEW, "clickData"), prevent_initial_call=True)
    # PNG / SVG buttons of every graph: Plotly.downloadImage on the graph's DOM node
    for kind in ("png-button", "svg-button"):
        app.clientside_callback(_fn("download"), Input({"type": kind, "graph": MATCH}, "n_clicks"),
                                prevent_initial_call=True)
    app.clientside_callback(_fn("toggle"), Output(ids.EXPLAIN_COLLAPSE, "is_open"),
                            Input(ids.EXPLAIN_BUTTON, "n_clicks"), State(ids.EXPLAIN_COLLAPSE, "is_open"),
                            prevent_initial_call=True)
    app.clientside_callback(_fn("temperatureLabel"), Output(ids.TEMPERATURE_LABEL, "children"),
                            Input(ids.TEMPERATURE, "value"))
