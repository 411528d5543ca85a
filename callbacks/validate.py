"""Server-side validation of every callback input: one wrapper around every server callback.

    install(app)      after callbacks.register_all(app): wraps every entry of the app's callback
                      map (and any registered later: checked again before each callback request)

The browser sends every Input and State value back with each request, so each value is
attacker-controlled. Before a callback body runs, each of its arguments is passed through the
sanitizer for its (component id, property):

* known controls are coerced to what the page can hold: texts cut to the engine's character cap
  (models.service.max_text_chars), a layer / head / block / model value that is not a short
  string becomes None (the callbacks then fall back to their defaults and clamp to the run),
  numbers must be finite, n_clicks a small non-negative int;
* stores are re-validated: the run store keeps only a well-formed request (its sizes are never
  read from the store: callbacks take them from the run on the server), the query store an int,
  the mask store an L x H list of 0/1 of bounded size, URL values short strings;
* every value of every callback, known or not (a new callback is covered without edits), must
  stay within generic bounds (nesting depth, number of items, string length); a value beyond
  them is refused with HTTP 400 and a one-line JSON reason.
"""
from __future__ import annotations

import functools
import json
import math
from typing import Any, Callable

from werkzeug.exceptions import BadRequest

from dashboard import ids
from dashboard.selection import whole_number
from dashboard import pruning_ids as P

MAX_DEPTH = 16             # nesting of one value (a figure in a store is ~10)
MAX_ITEMS = 100_000        # dict entries + list items in one value
MAX_STRING = 4 * 2**20     # one string (an uploaded file's data: URL is the largest, <= ~2.7 MiB)
MAX_SHORT = 200            # a choice: model name, colour scale, metric ...
MAX_URL = 8192             # href / search / the URL-written store
MAX_MASK_SIDE = 256        # layers or heads of a head mask
MAX_QUERY = 100_000        # a token position
MAX_CLICKS = 10**9


class InvalidInput(BadRequest):
    """A callback value outside the generic bounds: HTTP 400 with a JSON reason."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason

    def get_body(self, environ=None, scope=None) -> str:
        return json.dumps({"error": self.reason})

    def get_headers(self, environ=None, scope=None):
        return [("Content-Type", "application/json")]


# ---- generic bounds ------------------------------------------------------------------------------
def check_bounds(value: Any, where: str) -> None:
    """InvalidInput unless `value` nests <= MAX_DEPTH, holds <= MAX_ITEMS items and no string
    longer than MAX_STRING. Iterative: a deep value cannot raise RecursionError here."""
    stack, items = [(value, 1)], 0
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise InvalidInput(f"{where}: nested more than {MAX_DEPTH} levels")
        if isinstance(node, dict):
            items += len(node)
            stack.extend((v, depth + 1) for v in node.values())
            stack.extend((k, depth + 1) for k in node)
        elif isinstance(node, list):
            items += len(node)
            stack.extend((v, depth + 1) for v in node)
        elif isinstance(node, str) and len(node) > MAX_STRING:
            raise InvalidInput(f"{where}: a string of more than {MAX_STRING} characters")
        if items > MAX_ITEMS:
            raise InvalidInput(f"{where}: more than {MAX_ITEMS} items")


# ---- small coercions -----------------------------------------------------------------------------
def short_str(v, limit: int = MAX_SHORT):
    return v if isinstance(v, str) and len(v) <= limit else None


def finite_number(v):
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)) and math.isfinite(v) and abs(v) <= 1e12:
        return v
    return None


def number_or_short(v):
    """A numeric input's value: a finite number, a short string (the callback parses it), None."""
    return finite_number(v) if not isinstance(v, str) else short_str(v, 32)


def small_int(v, lo: int = 0, hi: int = MAX_QUERY):
    """An int (not a string) in [lo, hi], else None: dashboard.selection.whole_number."""
    return whole_number(v, lo, hi, strings=False)


def clicks(v):
    return small_int(v, 0, MAX_CLICKS)


def text(v):
    from models.service import cap_text

    return cap_text(v) if isinstance(v, str) else None


def choice(v):
    """A dropdown / radio / switch value: a short string, a finite number, a bool or None; or a
    checklist: a list of at most 50 of those."""
    if isinstance(v, list):
        return [x for x in (choice(x) for x in v[:50]) if x is not None] if len(v) <= 50 else None
    if isinstance(v, bool) or v is None:
        return v
    return short_str(v) if isinstance(v, str) else finite_number(v)


def run_store(v):
    """{"request": {...}, "summary": ...} with a well-formed request, else None (no run).

    The summary is passed on untouched for display only: sizes are taken from the run on the
    server (callbacks/views.run_of, services.pruning_card.run_info), never from it."""
    if not isinstance(v, dict) or not isinstance(v.get("request"), dict):
        return None
    r = v["request"]
    model, t = short_str(r.get("model")), text(r.get("text"))
    if model is None or t is None:
        return None
    pair = r.get("text_pair")
    max_tokens = r.get("max_tokens")
    if max_tokens is not None and small_int(max_tokens, 1, MAX_QUERY) is None:
        return None
    mask = r.get("head_mask")
    if mask is not None and head_mask(mask) is None:
        return None
    request = {"model": model, "text": t, "text_pair": text(pair) if pair is not None else None,
               "max_tokens": max_tokens, "head_mask": mask}
    return {**v, "request": request}


def head_mask(v):
    """A mask store: [L][H] numbers, L and H <= MAX_MASK_SIDE, rectangular; else None."""
    if not isinstance(v, list) or not 0 < len(v) <= MAX_MASK_SIDE:
        return None
    width = len(v[0]) if isinstance(v[0], list) else -1
    if not 0 < width <= MAX_MASK_SIDE:
        return None
    for row in v:
        if not isinstance(row, list) or len(row) != width or any(finite_number(x) is None for x in row):
            return None
    return v


def url_loaded(v):
    """The link's pending view (callbacks/url.py writes it): short values only, else None."""
    if not isinstance(v, dict):
        return None
    problems = v.get("problems")
    return {"layer": short_str(v.get("layer"), 12), "head": short_str(v.get("head"), 12),
            "block": short_str(v.get("block"), 40), "query": small_int(v.get("query")),
            "prune": short_str(v.get("prune"), 1100),
            "problems": problems if isinstance(problems, str) and len(problems) <= 2000 else ""}


def str_choice(v):
    """A choice that is always a string (colour scale, metric, model ...): else None."""
    return short_str(v)


def color_scale(v):
    """One of dashboard.figures.COLOR_SCALES, else None (the figures' default)."""
    from dashboard.figures import COLOR_SCALES

    return v if isinstance(v, str) and v in COLOR_SCALES else None


def dict_or_none(v):
    """A store the server wrote as an object (curves ...): anything else is no value."""
    return v if isinstance(v, dict) else None


def importance_store(v):
    """{"scores": [L][H] finite numbers, ...}: else None."""
    if not isinstance(v, dict) or head_mask(v.get("scores")) is None:
        return None
    return v


def corpus_store(v):
    """{"name": str, "pairs": list}: else None. The pairs themselves are checked where a job
    starts (pruning_views.checked_pairs: count and lengths, with a message)."""
    if not isinstance(v, dict) or not isinstance(v.get("pairs"), list):
        return None
    return {"name": short_str(v.get("name"), 255) or "uploaded file", "pairs": v["pairs"]}


def url_str(v):
    return short_str(v, MAX_URL)


# (component id, property) -> sanitizer; ("*", property) applies to every component
SANITIZERS: dict[tuple[str, str], Callable[[Any], Any]] = {
    ("*", "n_clicks"): clicks,
    ("*", "value"): choice,
    ("*", "href"): url_str, ("*", "search"): url_str, ("*", "pathname"): url_str, ("*", "hash"): url_str,
    ("*", "filename"): lambda v: short_str(v, 255),
    ("*", "contents"): lambda v: v if isinstance(v, str) else None,
    (ids.TEXT, "value"): text, (ids.TEXT_PAIR, "value"): text,
    (ids.LAYER, "value"): lambda v: short_str(v, 12) if isinstance(v, str) else small_int(v, 0, 10**6),
    (ids.HEAD, "value"): lambda v: short_str(v, 12) if isinstance(v, str) else small_int(v, 0, 10**6),
    (ids.FOLLOW_LAYER, "data"): lambda v: short_str(v, 12) if isinstance(v, str) else small_int(v, 0, 10**6),
    (ids.FOLLOW_HEAD, "data"): lambda v: short_str(v, 12) if isinstance(v, str) else small_int(v, 0, 10**6),
    (ids.BLOCK, "value"): lambda v: short_str(v, 40),
    (ids.TEMPERATURE, "value"): finite_number,
    (ids.RUN, "data"): run_store,
    (ids.QUERY, "data"): small_int,
    (ids.URL_LOADED, "data"): url_loaded,
    (ids.URL_WRITTEN, "data"): url_str,
    (P.MASK, "data"): head_mask,
    (ids.HEATMAP_WINDOW, "data"): dict_or_none, (ids.HEATMAP_FETCH, "data"): dict_or_none,
    (P.IMPORTANCE, "data"): importance_store,
    (P.CURVES, "data"): dict_or_none,
    (P.CORPUS, "data"): corpus_store,
    (ids.MODEL, "value"): str_choice, (ids.COLOR_SCALE, "value"): color_scale,
    (ids.GRID_METRIC, "value"): str_choice, (ids.SHOW_VALUES, "value"): str_choice,
    (ids.MEASURE, "value"): str_choice,  # anything but a known measure is raw weights (measure_views.parse_measure)
    (P.SELECT_COLOR, "value"): str_choice, (P.CURVE_METRIC, "value"): str_choice,
    (P.K_INPUT, "value"): number_or_short, (P.ENTROPY_INPUT, "value"): number_or_short,
    (P.PAIRS_INPUT, "value"): number_or_short, (P.SEEDS_INPUT, "value"): number_or_short,
}


def _grid(v, shape=None):
    """A layers x heads list of lists (numbers, or strings for roles) of `shape`, or None."""
    if not isinstance(v, list) or not v or len(v) > MAX_MASK_SIDE or not all(isinstance(r, list) for r in v):
        return None
    if len({len(r) for r in v}) != 1 or not 0 < len(v[0]) <= MAX_MASK_SIDE:
        return None
    return v if shape is None or (len(v), len(v[0])) == shape else None


def profile_store(v):
    """The corpus head profile (research card) as the server wrote it: {"mean": {measure: L x H
    numbers}, "roles": L x H strings, "model", "corpus", "n", "tokens_mean", "seconds", "key" ...};
    anything else is no value (a forged dict was a KeyError in the grids)."""
    from models.profile import MEASURES

    if not isinstance(v, dict) or not isinstance(v.get("mean"), dict):
        return None
    grids = [_grid(v["mean"].get(m)) for m in MEASURES]
    if any(g is None for g in grids) or len({(len(g), len(g[0])) for g in grids}) != 1:
        return None
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for g in grids for r in g for x in r):
        return None
    roles = _grid(v.get("roles"), (len(grids[0]), len(grids[0][0])))
    if roles is None or not all(isinstance(x, str) for r in roles for x in r):
        return None
    if not all(isinstance(v.get(k), str) for k in ("model", "corpus")):
        return None
    if not all(finite_number(v.get(k)) is not None for k in ("n", "tokens_mean", "seconds")):
        return None
    return v


def _research_stores() -> None:
    """The research panels' result stores (issue 13) hold objects the server wrote."""
    try:
        from dashboard import research_ids as R
    except ImportError:  # a checkout without the research panels
        return
    for name in ("STUDY", "PROFILE"):
        if hasattr(R, name):
            SANITIZERS[(getattr(R, name), "data")] = profile_store if name == "PROFILE" else dict_or_none


_research_stores()


def sanitize(cid: str, prop: str, value: Any) -> Any:
    """The value a callback body gets for `cid.prop`: bounded (InvalidInput), then coerced."""
    fn = SANITIZERS.get((cid, prop)) or SANITIZERS.get(("*", prop))
    if fn is text and isinstance(value, str):  # a long text is cut (the page says so), not refused
        return text(value)
    check_bounds(value, f"{cid}.{prop}"[:120])
    return value if fn is None else fn(value)


# ---- the wrapper ---------------------------------------------------------------------------------
def _deps(entry: dict) -> list[tuple[str, str]]:
    return [(str(d.get("id")), str(d.get("property"))) for d in entry.get("inputs", []) + entry.get("state", [])]


def wrap_entry(entry: dict) -> None:
    """Wrap one callback-map entry's function (idempotent)."""
    fn = entry.get("callback")
    if fn is None or getattr(fn, "_attn_validated", False):
        return
    deps = _deps(entry)

    @functools.wraps(fn)
    def validated(*args, **kwargs):
        if len(args) != len(deps):  # the request guard checks counts; never call with a shifted list
            raise InvalidInput(f"this callback takes {len(deps)} values")
        clean = []
        for (cid, prop), value in zip(deps, args):
            if cid.startswith("{"):  # pattern-matching: a list of values (ALL), or one (MATCH)
                check_bounds(value, f"{prop} of a pattern-matching input")
                each = SANITIZERS.get(("*", prop), lambda v: v)
                if '["ALL"]' in cid or '["ALLSMALLER"]' in cid:
                    clean.append([each(v) for v in value] if isinstance(value, list) else [])
                else:
                    clean.append(each(value))
            else:
                clean.append(sanitize(cid, prop, value))
        return fn(*clean, **kwargs)

    validated._attn_validated = True  # type: ignore[attr-defined]
    entry["callback"] = validated


def wrap_all(app) -> None:
    from dash._callback import GLOBAL_CALLBACK_MAP

    for cmap in (app.callback_map, GLOBAL_CALLBACK_MAP):
        for entry in list(cmap.values()):
            wrap_entry(entry)


def install(app) -> None:
    """Wrap every server callback of `app` now and, before each request, any added since."""
    wrap_all(app)
    app.server.before_request(lambda: wrap_all(app))
