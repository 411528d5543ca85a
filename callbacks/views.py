"""The panels: each callback re-gets the run from its request (per-process LRU: cheap) and sends
the browser ONE slice: the heatmap's T×T matrix, the L×H grid, one layer's heads (block-averaged),
or one query's top keys. Hover never reaches these (see callbacks/hover.py)."""
from __future__ import annotations

from dash import ClientsideFunction, Input, Output, Patch, State
from dash.exceptions import PreventUpdate

from callbacks.guard import guarded
from dashboard import cards, figures, ids, panels
from models import service


def run_of(store: dict | None):
    """The run a store names (raises PreventUpdate before the first run)."""
    if not store or "request" not in store:
        raise PreventUpdate
    return service.get_run(service.RunRequest.from_dict(store["request"]))


def register(app) -> None:
    @app.callback(
        Output(ids.HEATMAP_PAYLOAD, "data"), Output(ids.HEATMAP_TITLE, "children"),
        Output(ids.STATS, "children"), Output(ids.TEMPERATURE_NOTE, "children"),
        Input(ids.RUN, "data"), Input(ids.BLOCK, "value"), Input(ids.LAYER, "value"),
        Input(ids.TEMPERATURE, "value"), Input(ids.COLOR_SCALE, "value"), Input(ids.SHOW_VALUES, "value"),
        Input(ids.COLOR_STRETCH, "value"), Input(ids.POOL, "value"), Input(ids.HEATMAP_WINDOW, "data"),
        Input(ids.HEATMAP_FETCH, "data"), State(ids.HEAD, "value"),
    )
    @guarded("drawing the heatmap")
    def heatmap(store, block, layer, slider, color_scale, show_values, stretch, pool, window, fetch, head):
        # the head is a State: a head the browser already holds is drawn there (assets/heatmap.js);
        # one it lacks comes through the fetch store
        p = panels.heatmap_payload(run_of(store), block, layer, head, slider, color_scale, show_values,
                                   stretch, pool, window)
        return p["payload"], p["title"], cards.stats_cards(p["stats"]), p["note"]

    app.clientside_callback(
        ClientsideFunction("heatmap", "draw"),
        Output(ids.HEATMAP, "figure"), Output(ids.HEATMAP_FETCH, "data"),
        Output(ids.HEATMAP_TITLE, "children", allow_duplicate=True),
        *[Output(ids.stat_value(k), "children", allow_duplicate=True) for k in cards.STAT_LABELS],
        Input(ids.HEATMAP_PAYLOAD, "data"), Input(ids.HEAD, "value"),
        prevent_initial_call=True,
    )
    app.clientside_callback(
        ClientsideFunction("heatmap", "windowFromZoom"),
        Output(ids.HEATMAP_WINDOW, "data"), Input(ids.HEATMAP, "relayoutData"), State(ids.HEATMAP, "figure"),
        prevent_initial_call=True,
    )

    @app.callback(
        Output(ids.GRID, "figure"),
        Input(ids.RUN, "data"), Input(ids.BLOCK, "value"), Input(ids.GRID_METRIC, "value"),
        Input(ids.LAYER, "value"), Input(ids.HEAD, "value"),
    )
    @guarded("drawing the heads grid")
    def grid(store, block, metric, layer, head):
        return panels.grid_figure(run_of(store), block, metric, layer, head)

    @app.callback(
        Output(ids.OVERVIEW, "figure"), Output(ids.OVERVIEW_TITLE, "children"),
        Input(ids.RUN, "data"), Input(ids.BLOCK, "value"), Input(ids.LAYER, "value"),
        Input(ids.COLOR_SCALE, "value"), State(ids.HEAD, "value"),
    )
    @guarded("drawing the layer overview")
    def overview(store, block, layer, color_scale, head):
        run = run_of(store)
        return panels.overview_figure(run, block, layer, head, color_scale), panels.overview_title(run, block, layer)

    @app.callback(
        Output(ids.OVERVIEW, "figure", allow_duplicate=True),
        Input(ids.HEAD, "value"),
        prevent_initial_call=True,
    )
    @guarded("outlining the head")
    def overview_selection(head):
        patch = Patch()  # a head switch sends one shape, not the layer's heads again
        patch["layout"]["shapes"] = panels.overview_selection_shapes(head)
        return patch

    @app.callback(
        Output(ids.INSPECTOR, "figure"), Output(ids.INSPECTOR_TABLE, "children"),
        Output(ids.INSPECTOR_TITLE, "children"),
        Input(ids.QUERY, "data"), Input(ids.RUN, "data"), Input(ids.BLOCK, "value"), Input(ids.LAYER, "value"),
        Input(ids.HEAD, "value"), Input(ids.TEMPERATURE, "value"),
    )
    @guarded("inspecting the token")
    def inspector(query, store, block, layer, head, slider):
        p = panels.inspector_panel(run_of(store), block, layer, head, query, slider)
        if p is None:
            return figures.empty_figure(""), cards.INSPECTOR_PROMPT, "Token inspector"
        return p["figure"], cards.inspector_table(p["rows"], p["mean"]), p["title"]
