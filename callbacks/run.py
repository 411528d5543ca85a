"""Run the model: text(s) + model -> the run store (request + summary only) and the controls
that depend on the run (layer / head / block choices, truncation warning)."""
from __future__ import annotations

from dash import ClientsideFunction, Input, Output, State, ctx
from dash.exceptions import PreventUpdate

from callbacks.guard import guarded
from dashboard import ids
from dashboard.selection import parse_run_store
from models import loader, service
from services import panels

# what the run callback writes, by name (services.panels.run_outputs returns these keys and more)
RUN_OUTPUTS = {
    "store": Output(ids.RUN, "data"), "block_options": Output(ids.BLOCK, "options"),
    "truncation": Output(ids.TRUNCATION, "children"), "truncated": Output(ids.TRUNCATION, "is_open"),
    "info": Output(ids.RUN_INFO, "children"), "query": Output(ids.QUERY, "data"),
    "message": Output(ids.STATUS, "children"), "show_message": Output(ids.STATUS, "is_open"),
    "message_color": Output(ids.STATUS, "color"),
}


def register(app) -> None:
    @app.callback(
        output=RUN_OUTPUTS,
        inputs=[Input(ids.RUN_BUTTON, "n_clicks"), Input(ids.MODEL, "value"), Input(ids.URL_LOADED, "data"),
                State(ids.TEXT, "value"), State(ids.TEXT_PAIR, "value"),
                State(ids.LAYER, "value"), State(ids.HEAD, "value"), State(ids.BLOCK, "value"),
                State(ids.QUERY, "data"), State(ids.RUN, "data")],
        prevent_initial_call=True,
    )
    @guarded("running the model")
    def run(_clicks, model, pending, text, pair, layer, head, block, query, previous):
        from_url = bool(pending) and f"{ids.URL_LOADED}.data" in ctx.triggered_prop_ids  # a link was opened
        if from_url:
            layer, head, block, query = pending["layer"], pending["head"], pending["block"], pending["query"]
        previous = None if from_url or parse_run_store(previous) is None else parse_run_store(previous).request
        request = service.RunRequest.create(model, text, pair)
        out = panels.run_outputs(request.to_dict(), service.get_run(request), layer, head, block, query, previous,
                                 from_url=from_url, prune=pending.get("prune") if from_url else None)
        problems = pending.get("problems") if from_url else None  # e.g. an unknown model in the link
        # what verification on load found / which features are off for this model
        message = " ".join(filter(None, [problems, *loader.get_loaded(request.model).notes]))
        out.update(message=message, show_message=bool(message), message_color="warning")
        return {name: out[name] for name in RUN_OUTPUTS}

    # The run landed: its layer / head / block choices are applied in the browser, from the values
    # the controls hold NOW (a layer chosen while the run computed is kept, not reverted); a link's
    # selection (store.selection with from_url) wins. assets/consistency.js applyRun.
    app.clientside_callback(
        ClientsideFunction("view", "applyRun"),
        Output(ids.LAYER, "options"), Output(ids.LAYER, "value"),
        Output(ids.HEAD, "options"), Output(ids.HEAD, "value"), Output(ids.BLOCK, "value"),
        Input(ids.RUN, "data"), State(ids.LAYER, "value"), State(ids.HEAD, "value"), State(ids.BLOCK, "value"),
        prevent_initial_call=True,
    )

    @app.callback(
        Output(ids.LAYER, "options", allow_duplicate=True), Output(ids.LAYER, "value", allow_duplicate=True),
        Output(ids.HEAD, "options", allow_duplicate=True), Output(ids.HEAD, "value", allow_duplicate=True),
        Input(ids.BLOCK, "value"),
        State(ids.RUN, "data"), State(ids.LAYER, "value"), State(ids.HEAD, "value"), State(ids.LAYER, "options"),
        prevent_initial_call=True,
    )
    @guarded("switching the block")
    def block_switch(block, store, layer, head, layer_options_now):
        from callbacks.views import run_of  # sizes from the server's run, not from the store sent back

        out = panels.block_controls(run_of(store).summary(), block, layer, head, layer_options_now)
        if out is None:
            raise PreventUpdate
        return out["layer_options"], out["layer"], out["head_options"], out["head"]
