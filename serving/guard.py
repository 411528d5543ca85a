"""Reject malformed callback requests with 400 before Dash sees them.

    register_request_guard(app)

Dash answers a body that is not the shape dash-renderer sends (not JSON, a JSON list, missing
"output", an output that is no callback of this app, inputs that are not a list of
{"id", "property", "value"}) with a 500 from somewhere inside its dispatch. This turns each
into a 400 with a one-line JSON reason, and bounds the body size. Well-formed requests pass
through untouched: a value's content is the callback's business (it answers bad text, unknown
model names and the like with a message in the page).
"""
from __future__ import annotations

import json
import re

from flask import Response, request

MAX_BODY_BYTES = 8 * 2**20  # 8 MiB: a 50,000-character text is ~0.3 MB of JSON at worst
MAX_DEPTH = 40  # nesting of a request body; the page's deepest (a figure in a store) is ~12


class BadCallbackRequest(ValueError):
    pass


def _check_dep(item, where: str) -> None:
    if isinstance(item, list):  # pattern-matching input: a list of {id, property, value}
        for sub in item:
            _check_dep(sub, where)
        return
    if not isinstance(item, dict):
        raise BadCallbackRequest(f"{where} items must be objects")
    if "id" not in item or not isinstance(item.get("property"), str):
        raise BadCallbackRequest(f"{where} items need an id and a property")
    if not isinstance(item["id"], (str, dict)):
        raise BadCallbackRequest(f"{where} ids must be strings or objects")


def depth_within(obj, limit: int = MAX_DEPTH) -> bool:
    """True when `obj` (parsed JSON) nests at most `limit` levels; iterative (no RecursionError)."""
    stack = [(obj, 1)]
    while stack:
        node, d = stack.pop()
        if d > limit:
            return False
        if isinstance(node, dict):
            stack.extend((v, d + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, d + 1) for v in node)
    return True


_DUPLICATE_RE = re.compile(r"@[0-9a-f]{32,64}$")  # allow_duplicate outputs: "a.figure@<hash>"


def _output_parts(output: str) -> list[str]:
    """'..a.children...b.figure@<hash>..' -> ['a.children', 'b.figure']; 'a.children' -> ['a.children']."""
    parts = output[2:-2].split("...") if output.startswith("..") and output.endswith("..") else [output]
    return [_DUPLICATE_RE.sub("", p) for p in parts]


def _dep_key(item: dict) -> str:
    cid = item["id"]
    if isinstance(cid, dict):
        cid = json.dumps(cid, sort_keys=True, separators=(",", ":"))
    return f"{cid}.{item['property']}"


def _check_outputs(output: str, outputs, cb: dict) -> None:
    """The "outputs" of a request name the outputs of the callback its "output" string names.

    Dash builds the response from "outputs"; an id or property that is not the callback's (or
    a different count) fails deep inside Dash with a 500. Pattern-matching outputs (dict ids with
    wildcards) are checked by property and count of groups only."""
    if cb.get("no_output"):
        return
    parts = _output_parts(output)
    items = outputs if isinstance(outputs, list) else [outputs]
    if len(items) != len(parts):
        raise BadCallbackRequest(f"this callback has {len(parts)} outputs")
    for part, item in zip(parts, items):
        if isinstance(item, list):  # ALL / MATCH: a list of concrete outputs
            prop = part.rsplit(".", 1)[-1]
            if not part.startswith("{") or any(_DUPLICATE_RE.sub("", str(sub.get("property"))) != prop
                                               for sub in item):
                raise BadCallbackRequest("an output does not match the callback")
            continue
        if part.startswith("{") and isinstance(item.get("id"), dict):
            if part.rsplit(".", 1)[-1] != _DUPLICATE_RE.sub("", str(item.get("property"))):
                raise BadCallbackRequest("an output does not match the callback")
            continue
        if _DUPLICATE_RE.sub("", _dep_key(item)) != part:
            raise BadCallbackRequest("an output does not match the callback")


def check_body(body, callback_map: dict) -> None:
    """Raise BadCallbackRequest unless `body` is a callback request this app can dispatch."""
    if not isinstance(body, dict):
        raise BadCallbackRequest("the body must be a JSON object")
    output = body.get("output")
    if not isinstance(output, str):
        raise BadCallbackRequest('"output" must be a string')
    if output not in callback_map:
        raise BadCallbackRequest("no callback has this output")
    for group in ("inputs", "state"):
        items = body.get(group, [])
        if not isinstance(items, list):
            raise BadCallbackRequest(f'"{group}" must be a list')
        for item in items:
            _check_dep(item, group)
    cb = callback_map[output]
    want = len(cb.get("inputs", []))
    if len(body.get("inputs", [])) != want:
        raise BadCallbackRequest(f"this callback takes {want} inputs")
    want_state = len(cb.get("state", []))
    if len(body.get("state", [])) != want_state:
        raise BadCallbackRequest(f"this callback takes {want_state} state values")
    outputs = body.get("outputs", [])
    if not isinstance(outputs, (dict, list)):
        raise BadCallbackRequest('"outputs" must be an object or a list')
    for item in outputs if isinstance(outputs, list) else [outputs]:
        _check_dep(item, "outputs")
    if outputs not in ([], {}):  # an empty "outputs" is the legacy renderer form (Dash handles it)
        _check_outputs(output, outputs, cb)
    changed = body.get("changedPropIds", [])
    if not isinstance(changed, list) or not all(isinstance(x, str) for x in changed):
        raise BadCallbackRequest('"changedPropIds" must be a list of strings')


def register_request_guard(app) -> None:
    """Check every POST to the app's _dash-update-component (see module docstring)."""
    server = app.server
    server.config.setdefault("MAX_CONTENT_LENGTH", MAX_BODY_BYTES)
    if server.config.get("MAX_CONTENT_LENGTH") is None:
        server.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    path = app.config.requests_pathname_prefix.rstrip("/") + "/_dash-update-component"
    routes_path = app.config.routes_pathname_prefix.rstrip("/") + "/_dash-update-component"

    def _bad(reason: str, code: int = 400) -> Response:
        return Response(json.dumps({"error": reason}), status=code, mimetype="application/json")

    @server.before_request
    def _guard_callback_request():
        if request.method != "POST" or request.path not in (path, routes_path):
            return None
        if request.content_length is not None and request.content_length > server.config["MAX_CONTENT_LENGTH"]:
            return _bad("request body too large", 413)
        raw = request.get_data(cache=True)
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return _bad("the body is not valid JSON")
        except RecursionError:
            return _bad("the body nests too deeply")
        if not depth_within(body):
            return _bad(f"the body nests more than {MAX_DEPTH} levels")
        try:
            from dash._callback import GLOBAL_CALLBACK_MAP  # @dash.callback ones not merged yet

            check_body(body, {**GLOBAL_CALLBACK_MAP, **app.callback_map})
        except BadCallbackRequest as exc:
            return _bad(str(exc))
        return None
