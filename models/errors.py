"""Every error the page shows as its own message, in one torch-free module.

callbacks/guard.py and the view layer import these without loading torch or transformers; the old
places (models.attention.InputError, models.loader.ModelLoadError, models.registry.ModelNotFound,
services.pruning_card.PanelError) re-export them, so `except` clauses written against either name
catch the same class.
"""
from __future__ import annotations


class InputError(ValueError):
    """A text the model cannot run (empty, only whitespace, nothing left after tokenising)."""


class ModelLoadError(RuntimeError):
    """The model's files are there but transformers could not load them."""


class ModelNotFound(LookupError):
    """An unknown model name, or a configured location that is not a usable model."""


class PanelError(Exception):
    """A message for the user (no run yet, no importance yet, a bad upload ...): shown as is."""


# the errors callbacks.guard shows as their own message (anything else: a generic message + log)
KNOWN_ERRORS = (ModelNotFound, ModelLoadError, InputError)
