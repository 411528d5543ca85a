"""The heatmap card's measure selector: `measure_of` is the ONE call the panel callbacks
(callbacks/views.py, callbacks/export.py) make for the chosen measure; the "Computing …" line
and the explain panel's formula are drawn in the browser (assets/measure.js)."""
from __future__ import annotations

from dash import ClientsideFunction, Input, Output
from dash.exceptions import PreventUpdate

from dashboard import ids
from dashboard.selection import parse_index, parse_run_store
from models import measure_views, service


def measure_of(store: dict | None, layer, measure):
    """The page's measure at `layer` of its run (models.measure_views.MeasureLayer: raw weights for
    "raw", or raw weights with `.error` when the measure cannot be shown). The run, and so the
    sizes, come from the server, never from the store the browser sends back."""
    rs = parse_run_store(store)
    if rs is None:
        raise PreventUpdate
    req = service.RunRequest.from_dict(rs.request)
    run = service.get_run(req)
    lay = parse_index(layer)
    return measure_views.layer_measure(req, run, run.main.n_layers - 1 if lay is None else lay, measure)


def register(app) -> None:
    # "Computing value-norm …" while the heatmap's answer for a new measure is due; the shown
    # measure's formula, caveat and target in the explain panel
    app.clientside_callback(ClientsideFunction("measure", "status"), Output(ids.MEASURE_STATUS, "children"),
                            Output(ids.MEASURE_EXPLAIN, "children"),
                            Input(ids.MEASURE, "value"), Input(ids.HEATMAP_PAYLOAD, "data"))
