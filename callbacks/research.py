"""Research card (dashboard/research_panel.py): wiring only; the work is in
dashboard/research_pruning.py and models/pruning_science.py. The held-out study and the greedy
order are background callbacks (progress, Cancel) like the pruning card's jobs. Errors go to the
card's alert (never a stack trace) and the previous view stays."""
from __future__ import annotations

from dash import ALL, ClientsideFunction, Input, Output, State, ctx, html
from dash.exceptions import PreventUpdate

from callbacks.guard import guarded as _guarded
from callbacks.pruning import _job, needs_run
from dashboard import ids
from dashboard.selection import store_model
from dashboard import pruning_ids as P
from dashboard import research_ids as R
from dashboard import research_panel as panel
from models import profile as prof
from models.errors import PanelError
from services import research_compare as rc
from services import research_measures as rm
from services import research_profile as rpr
from services import research_pruning as rp


def guarded(what: str, *, clears: bool = False):
    return _guarded(what, status=R.STATUS, clears=clears, as_is=(PanelError,))


def _model(store):
    return store_model(store)


def register(app) -> None:
    # the layer / head come from ids.FOLLOW_LAYER / FOLLOW_HEAD: the dropdowns' values while this
    # card is in view (a head switch at the top of the page asks nothing of it; assets/consistency.js)
    _register_profile(app)
    # the attention measures are the heatmap card's (callbacks/views.py: measure_of)
    @app.callback(
        Output(R.MODEL_VIEW, "figure"), Output(R.MODEL_VIEW_NOTE, "children"),
        Input(ids.RUN, "data"), Input(ids.FOLLOW_LAYER, "data"), Input(ids.FOLLOW_HEAD, "data"),
        Input(R.MODEL_VIEW_ON, "value"),
    )
    @guarded("drawing the model view")
    def model_view(store, layer, head, on):
        if on is not True:
            return rm.model_view_off()
        return rm.model_view_figure(needs_run(store), layer, head)

    app.clientside_callback(ClientsideFunction(namespace="hover", function_name="fromGrid"),
                            Output(ids.HOVER, "data", allow_duplicate=True),
                            Input(R.MODEL_VIEW, "hoverData"), prevent_initial_call=True)
    app.clientside_callback(ClientsideFunction(namespace="hover", function_name="headFromGrid"),
                            Output(ids.LAYER, "value", allow_duplicate=True),
                            Output(ids.HEAD, "value", allow_duplicate=True),
                            Input(R.MODEL_VIEW, "clickData"), prevent_initial_call=True)

    @app.callback(
        Output(R.COMPARE_A, "figure"), Output(R.COMPARE_B, "figure"), Output(R.COMPARE_DIFF, "figure"),
        Output(R.COMPARE_NOTE, "children"),
        Input(ids.RUN, "data"), Input(R.COMPARE_TEXT, "value"), Input(R.COMPARE_MODEL, "value"),
        Input(ids.FOLLOW_LAYER, "data"), Input(ids.FOLLOW_HEAD, "data"), Input(R.COMPARE_MASK, "value"),
        Input(P.MASK, "data"),
    )
    @guarded("comparing two runs")
    def compare(store, text_b, model_b, layer, head, masked, mask):
        c = rc.compare_view(needs_run(store), text_b, model_b, layer, head, mask if masked else None)
        return c["a"], c["b"], c["diff"], c["note"]

    # hover linked across A, B and B − A in the browser (assets/compare.js), through the hover store
    for graph_id in (R.COMPARE_A, R.COMPARE_B, R.COMPARE_DIFF):
        app.clientside_callback(ClientsideFunction(namespace="compare", function_name="fromCompare"),
                                Output(ids.HOVER, "data", allow_duplicate=True),
                                Input(graph_id, "hoverData"), State(graph_id, "figure"), prevent_initial_call=True)
    app.clientside_callback(ClientsideFunction(namespace="compare", function_name="link"),
                            Output(R.COMPARE_HOVER, "children"), Input(ids.HOVER, "data"),
                            prevent_initial_call=True)

    @app.callback(
        Output(R.CORPUS_NOTE, "children"), Output(R.GREEDY_NOTE, "children"),
        Input(ids.RUN, "data"), Input(P.CORPUS, "data"), Input(R.ESTIMATE_SHARE, "value"),
    )
    @guarded("describing the held-out split")
    def notes(store, corpus, percent):
        return rp.corpus_note(corpus, percent), rp.greedy_note(rp.greedy_cost(needs_run(store), corpus, percent))

    @app.callback(
        Output(R.STUDY, "data"),
        Input(R.STUDY_BUTTON, "n_clicks"),
        State(ids.RUN, "data"), State(P.CORPUS, "data"), State(R.METHODS, "value"), State(R.SEEDS, "value"),
        State(R.ESTIMATE_SHARE, "value"),
        **_job(R.STUDY_BUTTON, R.STUDY_CANCEL, R.STUDY_PROGRESS, R.STUDY_PROGRESS_TEXT, R.STUDY_PROGRESS_WRAP),
    )
    @guarded("running the held-out pruning study", clears=True)
    def study(set_progress, _n, store, corpus, methods, seeds, percent):
        return rp.compute_study(store, corpus, methods, seeds, percent, rp.eta_reporter(set_progress, "study"))

    @app.callback(
        Output(R.GREEDY_DONE, "data"),
        Input(R.GREEDY_BUTTON, "n_clicks"),
        State(ids.RUN, "data"), State(P.CORPUS, "data"), State(R.ESTIMATE_SHARE, "value"),
        **_job(R.GREEDY_BUTTON, R.GREEDY_CANCEL, R.GREEDY_PROGRESS, R.GREEDY_PROGRESS_TEXT, R.GREEDY_PROGRESS_WRAP),
    )
    @guarded("computing the greedy leave-one-out order", clears=True)
    def greedy(set_progress, _n, store, corpus, percent):
        return rp.compute_greedy(store, corpus, percent, rp.eta_reporter(set_progress, "greedy"))

    @app.callback(
        Output(R.STUDY_GRAPH, "figure"), Output(R.STUDY_TABLE, "children"), Output(R.STUDY_INFO, "children"),
        Input(R.STUDY, "data"), Input(ids.RUN, "data"),
    )
    @guarded("drawing the held-out study")
    def draw(study, store):
        ok = study if study and study.get("model") == _model(store) else None
        return rp.study_figure(study, _model(store)), panel.study_table(rp.study_rows(ok)), rp.study_text(ok)


def _register_profile(app) -> None:
    grid_outputs = [Output(R.profile_grid(m), "figure") for m in prof.MEASURES]

    @app.callback(
        Output(R.PROFILE_CORPUS, "data"), Output(R.PROFILE_CORPUS_INFO, "children"),
        Input(R.PROFILE_UPLOAD, "contents"), State(R.PROFILE_UPLOAD, "filename"),
        prevent_initial_call=True,
    )
    @guarded("reading the uploaded corpus", clears=True)
    def corpus(contents, filename):
        c = rpr.decode_corpus(contents, filename)
        return c, f"{c['name']}: {len(c['texts'])} texts (compute the profile to use them)"

    @app.callback(
        Output(R.PROFILE, "data"),
        Input(R.PROFILE_BUTTON, "n_clicks"), State(ids.RUN, "data"), State(R.PROFILE_CORPUS, "data"),
        **_job(R.PROFILE_BUTTON, R.PROFILE_CANCEL, R.PROFILE_PROGRESS, R.PROFILE_PROGRESS_TEXT,
               R.PROFILE_PROGRESS_WRAP),
    )
    @guarded("computing the corpus head profile", clears=True)
    def compute(set_progress, _n, store, corpus):
        return rpr.compute_profile(store, corpus, rp.eta_reporter(set_progress, "profile"))

    @app.callback(*grid_outputs, Output(R.PROFILE_INFO, "children"), Input(R.PROFILE, "data"))
    @guarded("drawing the corpus head profile")
    def grids(profile):
        figs = rpr.profile_grids(profile)
        return [figs[m] for m in prof.MEASURES] + [rpr.profile_text(profile)]

    for m in prof.MEASURES:
        app.clientside_callback(ClientsideFunction(namespace="hover", function_name="fromGrid"),
                                Output(ids.HOVER, "data", allow_duplicate=True),
                                Input(R.profile_grid(m), "hoverData"), prevent_initial_call=True)

    @app.callback(
        Output(R.PROFILE_TEXTS, "children"),
        Input({"type": "research-profile-grid", "measure": ALL}, "clickData"), State(R.PROFILE, "data"),
        prevent_initial_call=True,
    )
    @guarded("listing the most extreme texts")
    def extremes(_clicks, profile):
        trig = ctx.triggered_id
        click = ctx.triggered[0]["value"] if ctx.triggered else None
        points = click.get("points") if isinstance(click, dict) else None
        if not isinstance(trig, dict) or not isinstance(points, list) or not points or not isinstance(points[0], dict):
            raise PreventUpdate  # nothing clicked, or not the shape of a Plotly click (from the browser)
        pt = points[0]
        title, rows = rpr.extreme_rows(profile, trig.get("measure"), pt.get("y"), pt.get("x"))
        return panel.extreme_list(title, rows)

    @app.callback(
        Output(ids.TEXT, "value", allow_duplicate=True), Output(ids.TEXT_PAIR, "value", allow_duplicate=True),
        Output(ids.RUN_BUTTON, "n_clicks", allow_duplicate=True),
        Input({"type": "research-profile-text", "index": ALL}, "n_clicks"),
        State(R.PROFILE, "data"), State(ids.RUN_BUTTON, "n_clicks"),
        prevent_initial_call=True,
    )
    @guarded("opening the corpus text")
    def open_text(clicks, profile, n):
        trig = ctx.triggered_id
        if not isinstance(trig, dict) or not any(clicks or []):
            raise PreventUpdate
        return rpr.open_text(profile, trig.get("index")), "", (n or 0) + 1
