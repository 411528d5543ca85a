"""The attention dashboard: assembly only (layout + callbacks + server).

    python app.py                          # http://127.0.0.1:8050 (HOST, PORT, DASH_DEBUG=1)
    gunicorn app:server -c gunicorn.conf.py
"""
from __future__ import annotations

import os

import dash
from dash import Dash

import settings
import serving
import serving.redis_backend
from callbacks import register_all
from dashboard.layout import layout
from models import registry
from services.vocabulary import page_vocabulary


def create_app() -> dash.Dash:
    app = Dash(
        __name__,
        title="Attention dashboard",
        background_callback_manager=serving.redis_backend.background_manager(),
        suppress_callback_exceptions=False,
        compress=True,  # flask-compress: gzip/br for the figure JSON
        external_stylesheets=[],  # Bootstrap is vendored in assets/bootstrap.min.css (no CDN)
        update_title=None,
    )
    app.layout = layout(registry.model_names(), page_vocabulary())
    register_all(app)
    serving.attach(app)  # /healthz, request guard, Redis run store when configured
    return app


app = create_app()
server = app.server

if __name__ == "__main__":
    os.umask(0o077)  # as gunicorn.conf.py: the cache and the secret key stay the user's own
    serving.warm_models()  # the first run is not slowed by loading; /healthz says "ok" at once
    app.run(host=settings.get("HOST", "127.0.0.1"), port=int(settings.get("PORT", 8050)),
            debug=settings.get("DASH_DEBUG") == "1")
