"""Downloads: the shown matrix (CSV), every per-head metric of the block (CSV), and the pruning
card's importance and curves (CSV / JSON). Each file opens with what it is (model, text or corpus,
selection, method): see dashboard/export.py."""
from __future__ import annotations

from dash import ALL, Input, Output, State, ctx, dcc
from dash.exceptions import PreventUpdate

from callbacks.guard import guarded
from callbacks.pruning import guarded as pruning_guarded
from callbacks.measure import measure_of
from callbacks.views import run_of
from dashboard import export, ids
from dashboard import pruning_ids as P
from models.errors import PanelError
from services import panels


def _matrix_csv(p: dict) -> str:
    return export.matrix_csv(p["matrix"], p["query_labels"], p["key_labels"], query_positions=p["query_positions"],
                             key_positions=p["key_positions"], meta=p["meta"], significant=6 if p["measured"] else None)


def _matrix_json(p: dict) -> str:
    return export.matrix_json(p["matrix"], p["query_labels"], p["key_labels"], p["query_positions"],
                              p["key_positions"], meta={"title": p["title"], **p["meta"]})


# the shown matrix: (download store, button, what the error message names, extension, writer)
MATRIX_DOWNLOADS = ((ids.DOWNLOAD_CSV, ids.CSV_BUTTON, "preparing the CSV", "csv", _matrix_csv),
                    (ids.DOWNLOAD_JSON, ids.JSON_BUTTON, "preparing the JSON", "json", _matrix_json))


def _register_matrix_download(app, download, button, what, ext, write) -> None:
    @app.callback(
        Output(download, "data"),
        Input(button, "n_clicks"),
        State(ids.RUN, "data"), State(ids.BLOCK, "value"), State(ids.LAYER, "value"), State(ids.HEAD, "value"),
        State(ids.TEMPERATURE, "value"), State(ids.MEASURE, "value"),
        prevent_initial_call=True,
    )
    @guarded(what)
    def download_matrix(n_clicks, store, block, layer, head, slider, measure):
        if not n_clicks:
            raise PreventUpdate
        p = panels.heatmap_export(run_of(store), block, layer, head, slider, measure_of(store, layer, measure))
        return dcc.send_string(write(p), p["stem"] + "." + ext)


def register(app) -> None:
    for spec in MATRIX_DOWNLOADS:
        _register_matrix_download(app, *spec)

    @app.callback(
        Output(ids.DOWNLOAD_GRID, "data"),
        Input(ids.GRID_CSV_BUTTON, "n_clicks"), State(ids.RUN, "data"), State(ids.BLOCK, "value"),
        prevent_initial_call=True,
    )
    @guarded("preparing the head metrics CSV")
    def download_grid(n_clicks, store, block):
        if not n_clicks:
            raise PreventUpdate
        p = panels.head_metrics_export(run_of(store), block)
        return dcc.send_string(export.rows_csv(p["header"], p["rows"], meta=p["meta"]), p["stem"] + ".csv")

    @app.callback(
        Output(P.DOWNLOAD, "data"),
        Input(P.export_button(ALL, ALL), "n_clicks"), State(P.IMPORTANCE, "data"), State(P.CURVES, "data"),
        prevent_initial_call=True,
    )
    @pruning_guarded("preparing the download")
    def download_analysis(clicks, importance, curves):
        which = ctx.triggered_id
        if not any(clicks or []) or not isinstance(which, dict):
            raise PreventUpdate
        what, fmt = which.get("what"), which.get("format")
        if (what, fmt) not in P.EXPORTS:
            raise PreventUpdate
        store = importance if what == "importance" else curves
        try:
            header, rows, meta = (export.importance_table if what == "importance" else export.curves_table)(store)
        except ValueError as exc:
            raise PanelError(str(exc)) from exc
        stem = export.export_stem(what, store.get("model"), store.get("corpus"))
        if fmt == "csv":
            return dcc.send_string(export.rows_csv(header, rows, meta=meta), stem + ".csv")
        return dcc.send_string(export.json_text({"columns": header, "rows": rows, "result": store}, meta=meta),
                               stem + ".json")
