"""Research card (dashboard/research_panel.py): wiring only; the work is in
dashboard/research_pruning.py and models/pruning_science.py. The held-out study and the greedy
order are background callbacks (progress, Cancel) like the pruning card's jobs. Errors go to the
card's alert (never a stack trace) and the previous view stays."""
from __future__ import annotations

from dash import ClientsideFunction, Input, Output, State, html

from callbacks.guard import guarded as _guarded
from callbacks.pruning import _job, needs_run
from dashboard import ids
from dashboard import pruning_ids as P
from dashboard import research_ids as R
from dashboard import research_panel as panel
from dashboard import research_measures as rm
from dashboard import research_pruning as rp
from dashboard.pruning_views import PanelError


def guarded(what: str, *, clears: bool = False):
    return _guarded(what, status=R.STATUS, clears=clears, as_is=(PanelError,))


def _model(store):
    return store["request"]["model"] if store and "request" in store else None


def register(app) -> None:
    @app.callback(
        Output(R.MEASURE_GRAPH, "figure"), Output(R.MEASURE_TITLE, "children"), Output(R.MEASURE_EXPLAIN, "children"),
        Input(ids.RUN, "data"), Input(R.MEASURE, "value"), Input(ids.LAYER, "value"), Input(ids.HEAD, "value"),
        Input(ids.COLOR_SCALE, "value"),
    )
    @guarded("computing the attention measure")
    def measure(store, name, layer, head, color_scale):
        fig, title, lines = rm.measure_view(needs_run(store), name, layer, head, color_scale)
        return fig, title, [html.Div(t) for t in lines]

    app.clientside_callback(ClientsideFunction(namespace="hover", function_name="fromHeatmap"),
                            Output(ids.HOVER, "data", allow_duplicate=True),
                            Input(R.MEASURE_GRAPH, "hoverData"), State(R.MEASURE_GRAPH, "figure"),
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
