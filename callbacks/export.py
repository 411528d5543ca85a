"""CSV download of the matrix the heatmap shows (token labels as row / column headers)."""
from __future__ import annotations

from dash import Input, Output, State, dcc
from dash.exceptions import PreventUpdate

from callbacks.guard import guarded
from callbacks.views import run_of
from dashboard import export, ids, panels


def register(app) -> None:
    @app.callback(
        Output(ids.DOWNLOAD_CSV, "data"),
        Input(ids.CSV_BUTTON, "n_clicks"),
        State(ids.RUN, "data"), State(ids.BLOCK, "value"), State(ids.LAYER, "value"), State(ids.HEAD, "value"),
        State(ids.TEMPERATURE, "value"),
        prevent_initial_call=True,
    )
    @guarded("preparing the CSV")
    def download_csv(n_clicks, store, block, layer, head, slider):
        if not n_clicks:
            raise PreventUpdate
        p = panels.heatmap_export(run_of(store), block, layer, head, slider)
        text = export.matrix_csv(p["matrix"], p["query_labels"], p["key_labels"], query_positions=p["query_positions"],
                                 key_positions=p["key_positions"], meta=p["meta"])
        return dcc.send_string(text, p["stem"] + ".csv")
