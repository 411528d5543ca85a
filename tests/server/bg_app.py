"""A two-component Dash app with one background callback that runs the real model (MiniLM)
through models.service: the smallest real job for the Redis/Celery test. Its callbacks are
registered with whatever serving.redis_backend.background_manager() returns, exactly as app.py
does, so with ATTN_REDIS_URL set the job runs on a Celery worker and the run lands in Redis."""
import os

from dash import Dash, Input, Output, State, dcc, html

import serving
from models import registry, service
from serving import redis_backend

app = Dash(__name__, background_callback_manager=redis_backend.background_manager())
app.layout = html.Div([dcc.Input(id="text", value=""), html.Button("Run", id="go", n_clicks=0),
                       html.Div(id="out")])
server = app.server
serving.attach(app)


@app.callback(Output("out", "children"), Input("go", "n_clicks"), State("text", "value"),
              background=True, prevent_initial_call=True)
def run_text(n_clicks, text):
    run, source = service.get_run_status(service.RunRequest.create(registry.DEFAULT_MODEL, text))
    return f"pid={os.getpid()} source={source} tokens={len(run.source_tokens)} " \
           f"sum={float(run.weights.astype('float32').sum()):.3f}"
