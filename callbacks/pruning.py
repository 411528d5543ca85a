"""Head-pruning card (dashboard/pruning_panel.py): wiring only; the work is in
dashboard/pruning_views.py and models/pruning.py.

Browser-only (assets/pruning.js, assets/hover.js): clicks on the choose-heads grid toggle heads
in the mask store (Shift state tracked clientside), hover on the card's grids and heatmaps writes
the page's hover store, the hover store is drawn on the card's heatmaps. No pointer movement
reaches the server.

Server: mask actions (k least important, entropy above x, restore, new run), the grid, baseline
vs pruned comparison, the corpus upload, the curves figure, physical pruning. Importance and
curves are background callbacks (the app's DiskcacheManager) with a progress bar and Cancel.

Errors go to the card's own alert (pruning_ids.STATUS), never as a stack trace: user mistakes
(pruning_views.PanelError) as their message, the page's known errors via callbacks.guard's
messages, anything else as a short generic message (traceback in the server log). The outputs
are left as they were (no_update), so the previous view stays.
"""
from __future__ import annotations

from dash import ClientsideFunction, Input, Output, State, ctx, no_update, set_props
from dash.exceptions import PreventUpdate

from callbacks.guard import guarded as _guarded
from dashboard import ids
from dashboard import pruning_ids as P
from dashboard import pruning_panel as panel
from dashboard.selection import parse_run_store, store_model, temperature_from_slider
from models import service
from services import pruning_card as pv

PROGRESS_INTERVAL_MS = 500  # how often the browser polls a background job for progress / result
MASK_ACTIONS = {ids.RUN: "run", P.K_BUTTON: "least-important", P.ENTROPY_BUTTON: "entropy-above",
                P.CLEAR_BUTTON: "clear"}


def guarded(what: str, *, clears: bool = False):
    """callbacks.guard.guarded, writing to the card's alert; PanelError messages shown as they are."""
    return _guarded(what, status=P.STATUS, clears=clears, as_is=(pv.PanelError,))


def needs_run(store):
    """Automatic updates before the first run: nothing to do (buttons say why instead)."""
    if parse_run_store(store) is None:
        raise PreventUpdate
    return store


def _fn(namespace: str, name: str) -> ClientsideFunction:
    return ClientsideFunction(namespace=namespace, function_name=name)


def _job(button: str, cancel: str, bar: str, text: str, wrap: str) -> dict:
    """Background-callback options of a slow job: progress bar + text, Cancel, button disabled."""
    return dict(
        background=True, interval=PROGRESS_INTERVAL_MS, prevent_initial_call=True,
        progress=[Output(bar, "value"), Output(text, "children")], progress_default=[0, ""],
        running=[(Output(button, "disabled"), True, False), (Output(cancel, "disabled"), False, True),
                 (Output(wrap, "style"), {"display": "block"}, {"display": "none"})],
        cancel=[Input(cancel, "n_clicks")],
    )


def register(app) -> None:
    _register_browser(app)
    _register_mask(app)
    _register_compare(app)
    _register_corpus(app)
    _register_jobs(app)

    @app.callback(
        Output(P.PHYSICAL_RESULT, "children"),
        Input(P.PHYSICAL_BUTTON, "n_clicks"), State(ids.RUN, "data"), State(P.MASK, "data"),
        running=[(Output(P.PHYSICAL_BUTTON, "disabled"), True, False)],
        prevent_initial_call=True,
    )
    @guarded("measuring the physically pruned model", clears=True)
    def physical(_n, store, mask):
        return panel.physical_table(pv.measure_physical(store, mask))


def _register_browser(app) -> None:
    # click on the choose-heads grid: toggle (Shift: a rectangle), in the browser
    app.clientside_callback(_fn("pruning", "toggle"),
                            Output(P.MASK, "data", allow_duplicate=True),
                            Output(P.ANCHOR, "data", allow_duplicate=True),
                            Input(P.SELECT_GRID, "clickData"), State(P.MASK, "data"), State(P.SHIFT, "data"),
                            State(P.ANCHOR, "data"), State(P.SELECT_GRID, "figure"), prevent_initial_call=True)
    # hover: the card's grids and heatmaps write the page's hover store (assets/hover.js)
    for grid in (P.SELECT_GRID, P.CHANGE_GRID):
        app.clientside_callback(_fn("hover", "fromGrid"), Output(ids.HOVER, "data", allow_duplicate=True),
                                Input(grid, "hoverData"), prevent_initial_call=True)
    for heatmap in (P.BASE_HEATMAP, P.PRUNED_HEATMAP):
        app.clientside_callback(_fn("hover", "fromHeatmap"), Output(ids.HOVER, "data", allow_duplicate=True),
                                Input(heatmap, "hoverData"), State(heatmap, "figure"), prevent_initial_call=True)
    # ... and the hover store drawn on the card's two heatmaps (grids: hover.apply does it)
    app.clientside_callback(_fn("pruning", "heatmaps"), Output(P.HOVER_SINK, "data"),
                            Input(ids.HOVER, "data"), prevent_initial_call=True)
    # click on the attention-change grid: show that head (page's layer / head dropdowns)
    app.clientside_callback(_fn("hover", "headFromGrid"), Output(ids.LAYER, "value", allow_duplicate=True),
                            Output(ids.HEAD, "value", allow_duplicate=True),
                            Input(P.CHANGE_GRID, "clickData"), prevent_initial_call=True)


def _register_mask(app) -> None:
    @app.callback(
        Output(P.MASK, "data", allow_duplicate=True), Output(P.ANCHOR, "data", allow_duplicate=True),
        Input(ids.RUN, "data"), Input(P.K_BUTTON, "n_clicks"), Input(P.ENTROPY_BUTTON, "n_clicks"),
        Input(P.CLEAR_BUTTON, "n_clicks"),
        State(P.MASK, "data"), State(P.K_INPUT, "value"), State(P.ENTROPY_INPUT, "value"), State(P.IMPORTANCE, "data"),
        prevent_initial_call=True,
    )
    @guarded("changing the pruned heads", clears=True)
    def mask_action(store, _k, _e, _c, mask, k, x, importance):
        action = MASK_ACTIONS[ctx.triggered_id]
        new = pv.mask_action(action, needs_run(store) if action == "run" else store, mask, k, x, importance)
        if action == "run" and new == mask:
            raise PreventUpdate  # same shape: the mask stays for the new text
        return new, None

    # the grid does not depend on the shown layer / head: the browser outlines that head on it
    # (assets/consistency.js gateGrid), so a head or layer switch asks nothing here
    @app.callback(
        Output(P.SELECT_PAYLOAD, "data"), Output(P.SELECT_NOTE, "children"), Output(P.COUNT, "children"),
        Input(P.MASK, "data"), Input(ids.RUN, "data"), Input(P.IMPORTANCE, "data"), Input(P.SELECT_COLOR, "value"),
    )
    @guarded("drawing the heads to prune")
    def selection(mask, store, importance, color):
        info = pv.run_info(needs_run(store))
        run = service.get_run(pv.base_request(info))
        fig, note = pv.selection_grid(run, importance, color, mask, None, "mean", None)  # no outline
        return ({"figure": fig, "main_block": run.main.name}, note,
                pv.count_text(pv.coerce_mask(mask, info.shape)))

    app.clientside_callback(_fn("view", "gateGrid"), Output(P.SELECT_GRID, "figure"),
                            Input(P.SELECT_PAYLOAD, "data"), Input(ids.LAYER, "value"), Input(ids.HEAD, "value"),
                            State(ids.RUN, "data"), State(ids.BLOCK, "value"), prevent_initial_call=True)


def _register_compare(app) -> None:
    @app.callback(
        Output(P.COMPARE_TITLE, "children"), Output(P.BASE_HEATMAP, "figure"), Output(P.PRUNED_HEATMAP, "figure"),
        Output(P.PRUNED_TITLE, "children"), Output(P.COMPARE_NOTE, "children"), Output(P.OUTPUT_CHANGE, "children"),
        Output(P.CHANGE_GRID, "figure"),
        Input(P.MASK, "data"), Input(ids.RUN, "data"), Input(ids.BLOCK, "value"), Input(ids.FOLLOW_LAYER, "data"),
        Input(ids.FOLLOW_HEAD, "data"), Input(ids.COLOR_SCALE, "value"), Input(ids.TEMPERATURE, "value"),
    )
    @guarded("comparing the pruned model with the baseline")
    def compare(mask, store, block, layer, head, color_scale, slider):
        base, pruned = pv.runs(pv.run_info(needs_run(store)), mask)
        c = pv.comparison(base, pruned, mask, block, layer, head, color_scale, temperature_from_slider(slider))
        return (c["title"], c["base_figure"], c["pruned_figure"], c["pruned_title"], c["note"],
                panel.output_cards(c["outputs"]), c["change_figure"])


def _register_corpus(app) -> None:
    @app.callback(
        Output(P.CORPUS, "data"),
        Input(P.UPLOAD, "contents"), Input(P.CORPUS_RESET, "n_clicks"), State(P.UPLOAD, "filename"),
        prevent_initial_call=True,
    )
    @guarded("reading the uploaded pairs", clears=True)
    def corpus(contents, _reset, filename):
        if ctx.triggered_id == P.UPLOAD and contents is None:
            raise PreventUpdate  # our own reset below
        set_props(P.UPLOAD, {"contents": None})  # so the same file can be chosen again, fixed or not
        return None if ctx.triggered_id == P.CORPUS_RESET else pv.decode_upload(contents, filename)

    @app.callback(
        Output(P.CORPUS_INFO, "children"), Output(P.CORPUS_RESET, "style"), Output(P.LOSS_NOTE, "children"),
        Input(P.CORPUS, "data"), Input(P.PAIRS_INPUT, "value"), Input(ids.RUN, "data"),
    )
    @guarded("describing the corpus")
    def corpus_info(corpus, n_pairs, store):
        reset = {"display": "inline"} if corpus else {"display": "none"}
        return pv.corpus_text(corpus), reset, pv.loss_note_for(store, corpus, n_pairs)


def _register_jobs(app) -> None:
    @app.callback(
        Output(P.IMPORTANCE, "data"),
        Input(P.IMPORTANCE_BUTTON, "n_clicks"),
        State(ids.RUN, "data"), State(P.CORPUS, "data"), State(P.PAIRS_INPUT, "value"),
        **_job(P.IMPORTANCE_BUTTON, P.IMPORTANCE_CANCEL, P.IMPORTANCE_PROGRESS, P.IMPORTANCE_PROGRESS_TEXT,
               P.IMPORTANCE_PROGRESS_WRAP),
    )
    @guarded("computing head importance", clears=True)
    def importance(set_progress, _n, store, corpus, n_pairs):
        return pv.compute_importance(store, corpus, n_pairs, pv.progress_reporter(set_progress, "importance", "batches"))

    @app.callback(
        Output(P.CURVES, "data"), Output(P.IMPORTANCE, "data", allow_duplicate=True),
        Input(P.CURVES_BUTTON, "n_clicks"),
        State(ids.RUN, "data"), State(P.CORPUS, "data"), State(P.PAIRS_INPUT, "value"), State(P.ORDERS, "value"),
        State(P.SEEDS_INPUT, "value"),
        **_job(P.CURVES_BUTTON, P.CURVES_CANCEL, P.CURVES_PROGRESS, P.CURVES_PROGRESS_TEXT, P.CURVES_PROGRESS_WRAP),
    )
    @guarded("computing the pruning curves", clears=True)
    def curves(set_progress, _n, store, corpus, n_pairs, orders, seeds):
        result = pv.compute_curves(store, corpus, n_pairs, orders, seeds, pv.progress_reporter(set_progress, "curves", "passes over the corpus"))
        return result, pv.importance_from_curves(result) or no_update

    for cancel, info in ((P.IMPORTANCE_CANCEL, P.IMPORTANCE_INFO), (P.CURVES_CANCEL, P.CURVES_INFO)):
        app.clientside_callback(_fn("pruning", "cancelled"), Output(info, "children", allow_duplicate=True),
                                Input(cancel, "n_clicks"), prevent_initial_call=True)

    @app.callback(
        Output(P.IMPORTANCE_INFO, "children"),
        Input(P.IMPORTANCE, "data"), Input(ids.RUN, "data"),
    )
    @guarded("describing the importance scores")
    def importance_info(importance, store):
        return pv.importance_text(importance, store_model(store))

    @app.callback(
        Output(P.CURVE_METRIC, "options"), Output(P.CURVE_METRIC, "value"), Output(P.CURVE_METRIC_ROW, "style"),
        Input(P.CURVES, "data"), State(P.CURVE_METRIC, "value"),
        prevent_initial_call=True,
    )
    @guarded("listing the curve metrics")
    def curve_metrics(curves, metric):
        options, value = pv.metric_choice(curves, metric)
        return options, value, {"display": "flex" if options else "none"}

    @app.callback(
        Output(P.CURVES_GRAPH, "figure"), Output(P.CURVES_INFO, "children"),
        Input(P.CURVES, "data"), Input(P.CURVE_METRIC, "value"), Input(P.MASK, "data"), Input(ids.RUN, "data"),
    )
    @guarded("drawing the pruning curves")
    def curves_figure(curves, metric, mask, store):
        model = store_model(store)
        return pv.curves_figure(curves, metric, mask, model), pv.curves_text(curves)
