"""Callbacks: wiring of component ids to models/ and dashboard/ functions (bodies ~3 lines)."""
from __future__ import annotations


def register_all(app) -> None:
    from callbacks import export, hover, measure, pruning, research, run, url, validate, views

    for module in (url, run, views, measure, hover, export, pruning, research):
        module.register(app)
    validate.install(app)  # every server callback's inputs validated (also ones registered later)
