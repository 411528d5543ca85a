"""The URL <-> the view. One direction each, so they never loop:

* opening a URL (dcc.Location `href` when the page loads; `search` on back/forward) sets the
  model and texts and hands layer / head / block / query to the run callback (ids.URL_LOADED);
* any change of what is shown writes the query string into the browser's history (pushState in
  assets/consistency.js, no reload, not through dcc.Location: see write_url) and remembers it in
  ids.URL_WRITTEN; the layer and head are set in it by the browser (a switch asks nothing).
"""
from __future__ import annotations

from dash import ClientsideFunction, Input, Output, State, ctx
from dash.exceptions import PreventUpdate

from callbacks.guard import guarded
from dashboard import ids, urlstate
from dashboard import pruning_ids as P
from models import registry


def register(app) -> None:
    @app.callback(
        Output(ids.MODEL, "value"), Output(ids.TEXT, "value"), Output(ids.TEXT_PAIR, "value"),
        Output(ids.GRID_METRIC, "value"), Output(ids.TEMPERATURE, "value"), Output(ids.COLOR_SCALE, "value"),
        Output(ids.COLOR_STRETCH, "value"), Output(ids.URL_LOADED, "data"), Output(ids.MEASURE, "value"),
        Input(ids.URL, "href"), Input(ids.URL, "search"), State(ids.URL_WRITTEN, "data"),
    )
    @guarded("reading the link")
    def open_url(href, search, written):
        if href is None or (search == written and f"{ids.URL}.href" not in ctx.triggered_prop_ids):
            raise PreventUpdate  # not loaded yet, or the page's own write
        v = urlstate.from_url(search, registry.model_names())
        return (v["model"], v["text"], v["text_pair"], v["metric"], v["slider"], v["color"], v["adapt"], v["pending"],
                v["measure"])

    # The page's own writes go to the browser's history directly (assets/consistency.js
    # writeUrl), not through dcc.Location: a write through the Location's `search` fed back into
    # open_url, whose outputs are inputs of every panel, and that loop made Dash hold a layer
    # change made while the panels were loading (nothing sent until the next control change).
    # dcc.Location still sees back / forward (popstate) and the first load.
    # The layer and head are States here: a layer or head switch rewrites them in the browser
    # (writeUrl below), with no request; the rest of the view needs the server's encoding.
    @app.callback(
        Output(ids.URL_WRITTEN, "data"),
        Input(ids.RUN, "data"), State(ids.LAYER, "value"), State(ids.HEAD, "value"), Input(ids.BLOCK, "value"),
        Input(ids.GRID_METRIC, "value"), Input(ids.TEMPERATURE, "value"), Input(ids.QUERY, "data"),
        Input(ids.COLOR_SCALE, "value"), Input(ids.COLOR_STRETCH, "value"), Input(P.MASK, "data"),
        Input(ids.MEASURE, "value"),
        prevent_initial_call=True,
    )
    @guarded("updating the link")
    def write_url(store, layer, head, block, metric, slider, query, color, adapt, mask, measure):
        search = urlstate.url_search(store, layer, head, block, metric, slider, query, color, adapt, mask, measure)
        if search is None:
            raise PreventUpdate
        return search

    app.clientside_callback(ClientsideFunction("view", "writeUrl"), Input(ids.URL_WRITTEN, "data"),
                            Input(ids.LAYER, "value"), Input(ids.HEAD, "value"), prevent_initial_call=True)
