"""`guarded(what)`: every server callback's safety net.

Known errors (unknown model, model that will not load, text the model cannot run) become their
own message in the page's status alert; anything else becomes a short generic message while
the traceback goes to the server log. Either way the callback's outputs are left as they were
(`no_update`), so the previous view stays. Never a stack trace in the page.
"""
from __future__ import annotations

import functools
import logging

from dash import no_update, set_props
from dash.exceptions import PreventUpdate

from dashboard import ids
from models.errors import KNOWN_ERRORS  # torch-free: the guard never loads the model stack

log = logging.getLogger("attention_dashboard")
MAX_MESSAGE_CHARS = 400


def error_message(exc: BaseException, what: str) -> str:
    """The text the page shows for an exception raised while doing `what`."""
    if isinstance(exc, KNOWN_ERRORS):
        msg = str(exc).strip() or type(exc).__name__
        return msg[:MAX_MESSAGE_CHARS]
    return (f"Something went wrong while {what} ({type(exc).__name__}). The previous view is kept; "
            "the details are in the server log.")


def show_error(message: str, status: str = ids.STATUS) -> None:
    set_props(status, {"children": message, "is_open": True, "color": "danger"})


def guarded(what: str, *, status: str = ids.STATUS, clears: bool = False, as_is: tuple = ()):
    """Wrap a callback: exceptions become a message in the alert `status`, outputs stay as they were.

    clears: a success closes the alert (user actions: the message was about an earlier try).
    as_is: exception types whose message is meant for the user and is shown unchanged.
    """
    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                out = fn(*args, **kwargs)
                if clears:
                    set_props(status, {"is_open": False})
                return out
            except PreventUpdate:
                raise
            except as_is as exc:
                show_error(str(exc), status)
            except KNOWN_ERRORS as exc:
                log.info("%s: %s: %s", fn.__name__, type(exc).__name__, exc)
                show_error(error_message(exc, what), status)
            except Exception as exc:  # noqa: BLE001 - the page must never see a traceback
                log.exception("callback %s failed while %s", fn.__name__, what)
                show_error(error_message(exc, what), status)
            return no_update
        return wrapper
    return decorate
