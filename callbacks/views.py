"""The panels: each callback re-gets the run from its request (per-process LRU: cheap) and sends
the browser what it draws: the heatmap's layer (or one head / an overview), the L×H grid, one
layer's heads (block-averaged), one query's top keys and text view for every head of the layer.
Hover never reaches these (see callbacks/hover.py).

Requests per switch (issue 15): a head switch within a loaded layer asks nothing (every panel
that depends on the head picks it from what the browser holds; outlines are drawn there); a
layer switch asks twice (heatmap + overview; inspector + text view). The grid depends on neither."""
from __future__ import annotations

from dash import ClientsideFunction, Input, Output, State, ctx, no_update
from dash.exceptions import PreventUpdate

from callbacks.guard import guarded
from callbacks.measure import measure_of
from dashboard import cards, ids
from dashboard.selection import parse_run_store
from models import service
from services import panels, switch


def run_of(store: dict | None):
    """The run a store names (raises PreventUpdate before the first run)."""
    rs = parse_run_store(store)
    if rs is None:
        raise PreventUpdate
    return service.get_run(service.RunRequest.from_dict(rs.request))


# inputs of the heatmap callback that also redraw the overview (small multiples of the layer)
OVERVIEW_INPUTS = {f"{ids.RUN}.data", f"{ids.BLOCK}.value", f"{ids.LAYER}.value", f"{ids.COLOR_SCALE}.value"}


def register(app) -> None:
    _register_heatmap(app)
    _register_panels(app)


def _register_heatmap(app) -> None:
    # One request answers the heatmap AND the layer overview (a layer switch costs one request for
    # both); the head is a State: a head the browser already holds is drawn there
    # (assets/heatmap.js), one it lacks comes through the fetch store (written by that draw).
    @app.callback(
        Output(ids.HEATMAP_PAYLOAD, "data"), Output(ids.OVERVIEW_PAYLOAD, "data"),
        Input(ids.RUN, "data"), Input(ids.BLOCK, "value"), Input(ids.LAYER, "value"),
        Input(ids.TEMPERATURE, "value"), Input(ids.COLOR_SCALE, "value"), Input(ids.SHOW_VALUES, "value"),
        Input(ids.COLOR_STRETCH, "value"), Input(ids.POOL, "value"), Input(ids.HEATMAP_WINDOW, "data"),
        Input(ids.HEATMAP_FETCH, "data"), Input(ids.MEASURE, "value"), State(ids.HEAD, "value"),
    )
    @guarded("drawing the heatmap")
    def heatmap(store, block, layer, slider, color_scale, show_values, stretch, pool, window, fetch, measure, head):
        run = run_of(store)
        redraw = not ctx.triggered_prop_ids or bool(OVERVIEW_INPUTS & set(ctx.triggered_prop_ids))
        return (_heatmap(run, block, layer, head, slider, color_scale, show_values, stretch, pool, window,
                         measure_of(store, layer, measure)),
                _overview(run, block, layer, color_scale) if redraw else no_update)

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
    app.clientside_callback(ClientsideFunction("heatmap", "labelsFollowZoom"), Input(ids.HEATMAP, "relayoutData"),
                            prevent_initial_call=True)
    app.clientside_callback(
        ClientsideFunction("heatmap", "windowFromZoom"),
        Output(ids.HEATMAP_WINDOW, "data"), Input(ids.HEATMAP, "relayoutData"), State(ids.HEATMAP, "figure"),
        prevent_initial_call=True,
    )


@guarded("drawing the heatmap")
def _heatmap(run, block, layer, head, slider, color_scale, show_values, stretch, pool, window, measure):
    p = panels.heatmap_payload(run, block, layer, head, slider, color_scale, show_values, stretch, pool, window,
                               measure)
    return dict(p["payload"], note=p["note"])


@guarded("drawing the layer overview")
def _overview(run, block, layer, color_scale):
    # no outline: the browser draws the page's head on it (assets/consistency.js gateOverview)
    fig = panels.overview_figure(run, block, layer, panels.MEAN, color_scale)
    return {"view": fig.layout.meta["view"], "figure": fig, "title": panels.overview_title(run, block, layer)}


@guarded("inspecting the token")
def _inspector(run, block, layer, query, slider, measure):
    return switch.inspector_layer(run, block, layer, query, slider, measure)


@guarded("drawing the text view")
def _text_view(run, block, layer, query, slider, measure):
    return switch.text_view_layer(run, block, layer, query, slider, measure)


def _register_panels(app) -> None:
    # Server panels answer into payload stores stamped with the run and selection they were drawn
    # for; assets/consistency.js draws a payload only while it is still what the page shows (an
    # answer for an older run or layer is dropped, never drawn) and badges a card that still shows
    # another run while its new answer is due. The head's outline is drawn there too.
    @app.callback(
        Output(ids.GRID_PAYLOAD, "data"),
        Input(ids.RUN, "data"), Input(ids.BLOCK, "value"), Input(ids.GRID_METRIC, "value"),
    )
    @guarded("drawing the heads grid")
    def grid(store, block, metric):
        fig = panels.grid_figure(run_of(store), block, metric)
        return {"view": fig.layout.meta["view"], "figure": fig}

    # the inspector and the text view of the inspected query, for every head of the layer
    @app.callback(
        Output(ids.INSPECTOR_PAYLOAD, "data"), Output(ids.TEXT_VIEW_PAYLOAD, "data"),
        Input(ids.QUERY, "data"), Input(ids.RUN, "data"), Input(ids.BLOCK, "value"), Input(ids.LAYER, "value"),
        Input(ids.TEMPERATURE, "value"), Input(ids.MEASURE, "value"),
    )
    @guarded("inspecting the token")
    def query_panels(query, store, block, layer, slider, measure):
        run = run_of(store)
        ml = measure_of(store, layer, measure)
        return _inspector(run, block, layer, query, slider, ml), _text_view(run, block, layer, query, slider, ml)

    # gates: (payload, layer, head, run, block); a head switch redraws from the payload it has
    _view = (Input(ids.LAYER, "value"), Input(ids.HEAD, "value"), State(ids.RUN, "data"), State(ids.BLOCK, "value"))
    app.clientside_callback(ClientsideFunction("view", "gateGrid"), Output(ids.GRID, "figure"),
                            Input(ids.GRID_PAYLOAD, "data"), *_view, prevent_initial_call=True)
    app.clientside_callback(ClientsideFunction("view", "gateOverview"), Output(ids.OVERVIEW, "figure"),
                            Output(ids.OVERVIEW_TITLE, "children"),
                            Input(ids.OVERVIEW_PAYLOAD, "data"), *_view, prevent_initial_call=True)
    app.clientside_callback(ClientsideFunction("view", "gateInspector"), Output(ids.INSPECTOR, "figure"),
                            Output(ids.INSPECTOR_TABLE, "children"), Output(ids.INSPECTOR_TITLE, "children"),
                            Input(ids.INSPECTOR_PAYLOAD, "data"), *_view, prevent_initial_call=True)
    app.clientside_callback(ClientsideFunction("textview", "render"), Output(ids.TEXT_VIEW_TITLE, "children"),
                            Output(ids.TEXT_VIEW_NOTE, "children"),
                            Input(ids.TEXT_VIEW_PAYLOAD, "data"), Input(ids.HOVER, "data"), *_view,
                            prevent_initial_call=True)
    app.clientside_callback(ClientsideFunction("view", "badges"),
                            *[Output(ids.stale_badge(p), "children") for p in ids.STALE_PANELS],
                            *[Output(ids.stale_badge(p), "style") for p in ids.STALE_PANELS],
                            Input(ids.RUN, "data"), Input(ids.HEATMAP, "figure"), Input(ids.GRID, "figure"),
                            Input(ids.OVERVIEW, "figure"), Input(ids.INSPECTOR, "figure"))
    # the cards below the fold that ask the server for the shown layer / head follow it while in view
    app.clientside_callback(ClientsideFunction("view", "follow"),
                            Output(ids.FOLLOW_LAYER, "data"), Output(ids.FOLLOW_HEAD, "data"),
                            Input(ids.LAYER, "value"), Input(ids.HEAD, "value"), Input(ids.RUN, "data"))
