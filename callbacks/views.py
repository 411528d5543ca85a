"""The panels: each callback re-gets the run from its request (per-process LRU: cheap) and sends
the browser ONE slice: the heatmap's T×T matrix, the L×H grid, one layer's heads (block-averaged),
or one query's top keys. Hover never reaches these (see callbacks/hover.py)."""
from __future__ import annotations

from dash import ClientsideFunction, Input, Output, Patch, State
from dash.exceptions import PreventUpdate

from callbacks.guard import guarded
from callbacks.measure import measure_of
from dashboard import cards, figures, ids, measure_card
from dashboard.selection import parse_run_store
from models import service
from services import panels, textview


def run_of(store: dict | None):
    """The run a store names (raises PreventUpdate before the first run)."""
    rs = parse_run_store(store)
    if rs is None:
        raise PreventUpdate
    return service.get_run(service.RunRequest.from_dict(rs.request))


def register(app) -> None:
    @app.callback(
        Output(ids.HEATMAP_PAYLOAD, "data"),
        Input(ids.RUN, "data"), Input(ids.BLOCK, "value"), Input(ids.LAYER, "value"),
        Input(ids.TEMPERATURE, "value"), Input(ids.COLOR_SCALE, "value"), Input(ids.SHOW_VALUES, "value"),
        Input(ids.COLOR_STRETCH, "value"), Input(ids.POOL, "value"), Input(ids.HEATMAP_WINDOW, "data"),
        Input(ids.HEATMAP_FETCH, "data"), Input(ids.MEASURE, "value"), State(ids.HEAD, "value"),
    )
    @guarded("drawing the heatmap")
    def heatmap(store, block, layer, slider, color_scale, show_values, stretch, pool, window, fetch, measure, head):
        # the head is a State: a head the browser already holds is drawn there (assets/heatmap.js);
        # one it lacks comes through the fetch store. The title and stats are written with the
        # figure, by the same clientside draw, so they never describe another view than the one drawn
        p = panels.heatmap_payload(run_of(store), block, layer, head, slider, color_scale, show_values,
                                   stretch, pool, window, measure_of(store, layer, measure))
        return dict(p["payload"], note=p["note"])

    # title, stats and note come with the payload, so they never name another view than the figure
    app.clientside_callback(
        ClientsideFunction("heatmap", "draw"),
        Output(ids.HEATMAP, "figure"), Output(ids.HEATMAP_TITLE, "children"),
        Output(ids.TEMPERATURE_NOTE, "children"),
        *[Output(ids.stat_value(k), "children") for k in cards.STAT_LABELS],
        Input(ids.HEATMAP_PAYLOAD, "data"), Input(ids.HEAD, "value"),
        State(ids.RUN, "data"), State(ids.BLOCK, "value"), State(ids.LAYER, "value"),
        prevent_initial_call=True,
    )
    app.clientside_callback(
        ClientsideFunction("heatmap", "fetchHead"),
        Output(ids.HEATMAP_FETCH, "data"), Input(ids.HEAD, "value"), State(ids.HEATMAP_PAYLOAD, "data"),
        prevent_initial_call=True,
    )
    app.clientside_callback(ClientsideFunction("heatmap", "labelsFollowZoom"), Input(ids.HEATMAP, "relayoutData"),
                            prevent_initial_call=True)
    app.clientside_callback(
        ClientsideFunction("heatmap", "windowFromZoom"),
        Output(ids.HEATMAP_WINDOW, "data"), Input(ids.HEATMAP, "relayoutData"), State(ids.HEATMAP, "figure"),
        prevent_initial_call=True,
    )

    # Server panels answer into payload stores stamped with the run and selection they were drawn
    # for; assets/consistency.js draws a payload only while it is still what the page shows (an
    # answer for an older run or layer is dropped, never drawn) and badges a card that still shows
    # another run while its new answer is due.
    @app.callback(
        Output(ids.GRID_PAYLOAD, "data"),
        Input(ids.RUN, "data"), Input(ids.BLOCK, "value"), Input(ids.GRID_METRIC, "value"),
        Input(ids.LAYER, "value"), Input(ids.HEAD, "value"),
    )
    @guarded("drawing the heads grid")
    def grid(store, block, metric, layer, head):
        fig = panels.grid_figure(run_of(store), block, metric, layer, head)
        return {"view": fig.layout.meta["view"], "figure": fig}

    @app.callback(
        Output(ids.OVERVIEW_PAYLOAD, "data"),
        Input(ids.RUN, "data"), Input(ids.BLOCK, "value"), Input(ids.LAYER, "value"),
        Input(ids.COLOR_SCALE, "value"), State(ids.HEAD, "value"),
    )
    @guarded("drawing the layer overview")
    def overview(store, block, layer, color_scale, head):
        run = run_of(store)
        fig = panels.overview_figure(run, block, layer, head, color_scale)
        return {"view": fig.layout.meta["view"], "figure": fig, "title": panels.overview_title(run, block, layer)}

    _view_states = (State(ids.RUN, "data"), State(ids.BLOCK, "value"), State(ids.LAYER, "value"),
                    State(ids.HEAD, "value"))
    app.clientside_callback(ClientsideFunction("view", "gateGrid"), Output(ids.GRID, "figure"),
                            Input(ids.GRID_PAYLOAD, "data"), *_view_states, prevent_initial_call=True)
    app.clientside_callback(ClientsideFunction("view", "gateOverview"), Output(ids.OVERVIEW, "figure"),
                            Output(ids.OVERVIEW_TITLE, "children"),
                            Input(ids.OVERVIEW_PAYLOAD, "data"), *_view_states, prevent_initial_call=True)
    app.clientside_callback(ClientsideFunction("view", "gateInspector"), Output(ids.INSPECTOR, "figure"),
                            Output(ids.INSPECTOR_TABLE, "children"), Output(ids.INSPECTOR_TITLE, "children"),
                            Input(ids.INSPECTOR_PAYLOAD, "data"), *_view_states, prevent_initial_call=True)
    @app.callback(
        Output(ids.TEXT_VIEW_PAYLOAD, "data"),
        Input(ids.QUERY, "data"), Input(ids.RUN, "data"), Input(ids.BLOCK, "value"), Input(ids.LAYER, "value"),
        Input(ids.HEAD, "value"), Input(ids.TEMPERATURE, "value"), Input(ids.MEASURE, "value"),
    )
    @guarded("drawing the text view")
    def text_view(query, store, block, layer, head, slider, measure):
        return textview.text_view_payload(run_of(store), block, layer, head, query, slider,
                                          measure_of(store, layer, measure))

    app.clientside_callback(ClientsideFunction("textview", "render"), Output(ids.TEXT_VIEW_TITLE, "children"),
                            Output(ids.TEXT_VIEW_NOTE, "children"),
                            Input(ids.TEXT_VIEW_PAYLOAD, "data"), Input(ids.HOVER, "data"), *_view_states,
                            prevent_initial_call=True)
    app.clientside_callback(ClientsideFunction("view", "badges"),
                            *[Output(ids.stale_badge(p), "children") for p in ids.STALE_PANELS],
                            *[Output(ids.stale_badge(p), "style") for p in ids.STALE_PANELS],
                            Input(ids.RUN, "data"), Input(ids.HEATMAP, "figure"), Input(ids.GRID, "figure"),
                            Input(ids.OVERVIEW, "figure"), Input(ids.INSPECTOR, "figure"))

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
        Output(ids.INSPECTOR_PAYLOAD, "data"),
        Input(ids.QUERY, "data"), Input(ids.RUN, "data"), Input(ids.BLOCK, "value"), Input(ids.LAYER, "value"),
        Input(ids.HEAD, "value"), Input(ids.TEMPERATURE, "value"), Input(ids.MEASURE, "value"),
    )
    @guarded("inspecting the token")
    def inspector(query, store, block, layer, head, slider, measure):
        run = run_of(store)
        p = panels.inspector_panel(run, block, layer, head, query, slider, measure_of(store, layer, measure))
        if p is None:
            return {"view": panels.view_stamp(run, block, layer, head), "figure": figures.empty_figure(""),
                    "table": cards.INSPECTOR_PROMPT, "title": "Token inspector"}
        table = (measure_card.inspector_table(p["rows"], p["measure"]) if p.get("measure") is not None
                 else cards.inspector_table(p["rows"], p["mean"]))
        return {"view": p["figure"].layout.meta["view"], "figure": p["figure"], "table": table, "title": p["title"]}
