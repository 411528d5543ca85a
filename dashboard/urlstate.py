"""The view in the URL's query string: pure encode/decode, no Dash.

    ?model=all-MiniLM-L6-v2&text=The+cat+sat&pair=...&layer=3&head=1&block=self%3AAB&metric=sink&t=2&q=4

`decode(search, model_names)` never raises: unknown keys are ignored, bad numbers fall back to
the defaults, texts are capped at `MAX_TEXT_CHARS`, an unknown model falls back to the default
model and says so in `ViewState.problems`. `encode(state)` writes only what differs from the
defaults, except model, text, layer and head, which are always written (a shared link names
its run). Texts are cut so that the query string stays under MAX_QUERY_CHARS (a longer link would
be refused by the server); the link then holds the beginning of the text and `cut=1`, which
`decode` turns into a note for the page.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from urllib.parse import parse_qs, urlencode

from dashboard.selection import (MEAN, parse_index, parse_run_store, slider_from_temperature,
                                 temperature_from_slider, whole_number)

DEFAULT_MODEL = "all-MiniLM-L6-v2"
DEFAULT_TEXT = "The cat sat on the mat because it was tired."
# Layer 3 head 1 of MiniLM sends "it" to "cat" (~0.5) on the default sentence: a readable start.
DEFAULT_LAYER = 3
DEFAULT_HEAD = 1
DEFAULT_QUERY = 8  # "it" in DEFAULT_TEXT ([CLS] the cat sat on the mat because it ...)
DEFAULT_METRIC = "entropy"
METRICS = ("entropy", "sink", "diagonal", "previous", "role")
MEASURES = ("raw", "rollout", "value-norm", "grad-attention")  # the heatmap's measure (dashboard/measure_view.py)
DEFAULT_MEASURE = "raw"

MAX_QUERY_CHARS = 3600  # whole encoded query string: gunicorn's default request line limit is 4094 bytes
MAX_TEXT_CHARS = MAX_QUERY_CHARS  # per text read from a URL (encode never writes more)
CUT_NOTE = ("The link held only the beginning of the text (links are limited to {n} characters): "
            "paste the full text to run all of it.")
MAX_LAYER = 1000
DEFAULT_COLOR = "accent"
COLORS = ("accent", "mono", "viridis", "cividis")  # keep in step with dashboard.figures.COLOR_SCALES
MAX_MASK_HEADS = 4096  # a link names a pruning mask of at most this many heads (1,024 hex digits)
_PRUNE_RE = re.compile(r"^([0-9]{1,3})x([0-9]{1,3}):([0-9a-f]{1,1024})$")
MAX_BLOCK_CHARS = 40
T_MIN, T_MAX = 0.25, 4.0
_BLOCK_RE = re.compile(r"^[A-Za-z0-9_-]+(:[AB]{2})?$")


@dataclass(frozen=True)
class ViewState:
    model: str = DEFAULT_MODEL
    text: str = DEFAULT_TEXT
    text_pair: str | None = None
    layer: int = DEFAULT_LAYER
    head: int | str = DEFAULT_HEAD  # int, or MEAN
    block: str | None = None        # "self", "self:AB", "cross", ...; None = the run's main block
    metric: str = DEFAULT_METRIC
    temperature: float = 1.0
    query: int | None = DEFAULT_QUERY  # the token shown in the inspector (a query position)
    color: str = DEFAULT_COLOR         # colour scale (dashboard.figures.COLOR_SCALES)
    adapt: bool = True                 # colour range adapts on long texts (the switch)
    prune: str | None = None           # pruned heads of the main block, "LxH:hex" (mask_param)
    measure: str = DEFAULT_MEASURE     # what the heatmap shows: raw weights or a measure (MEASURES)
    problems: tuple[str, ...] = field(default=(), compare=False)


def _int(value, default: int | None, lo: int, hi: int) -> int | None:
    """dashboard.selection.whole_number in [lo, hi], or `default`."""
    n = whole_number(value, lo, hi)
    return default if n is None else n


def _head(value: str | None, default: int | str) -> int | str:
    if value is not None and value.strip().lower() == MEAN:
        return MEAN
    return _int(value, default, 0, MAX_LAYER)  # type: ignore[arg-type]


def _float(value: str | None, default: float, lo: float, hi: float) -> float:
    try:
        x = float(str(value).strip())
    except (TypeError, ValueError):
        return default
    return x if math.isfinite(x) and lo <= x <= hi else default


def clean_text(text: str | None, limit: int = MAX_TEXT_CHARS) -> str:
    """A text from outside: NUL removed, capped at `limit` characters (never raises)."""
    if not isinstance(text, str):
        return ""
    return text.replace("\x00", "")[:limit]


def decode(search: str | None, model_names: list[str] | tuple[str, ...] = (DEFAULT_MODEL,)) -> ViewState:
    """The view a query string asks for ("?a=b&..." or "a=b&..."), defaults where it says nothing."""
    search = (search or "").lstrip("?")
    try:
        q = {k: v[-1] for k, v in parse_qs(search, keep_blank_values=True, max_num_fields=50).items()}
    except ValueError:  # more than max_num_fields
        q = {}
    problems = []
    if q.get("cut") == "1":
        problems.append(CUT_NOTE.format(n=MAX_QUERY_CHARS))
    model = q.get("model", DEFAULT_MODEL)
    if model not in model_names:
        shown = model[:60]
        problems.append(f"Unknown model {shown!r} in the link; showing {model_names[0]!r} instead. "
                        f"Available: {', '.join(model_names)}")
        model = model_names[0] if model_names else DEFAULT_MODEL
    text = clean_text(q["text"]) if "text" in q else DEFAULT_TEXT
    if not text.strip():
        text = DEFAULT_TEXT
    pair = clean_text(q.get("pair")) or None
    block = q.get("block")
    if block is not None and (len(block) > MAX_BLOCK_CHARS or not _BLOCK_RE.match(block)):
        block = None
    metric = q.get("metric", DEFAULT_METRIC)
    if metric not in METRICS:
        metric = DEFAULT_METRIC
    default_query = DEFAULT_QUERY if text == DEFAULT_TEXT and not pair else None
    query = _int(q.get("q"), -1, 0, 100_000) if "q" in q else default_query
    color = q.get("color", DEFAULT_COLOR)
    prune = q.get("prune")
    if prune is not None and mask_from_param(prune) is None:
        problems.append("The link's pruning mask was not readable; no heads are pruned.")
        prune = None
    measure = q.get("measure", DEFAULT_MEASURE)
    return ViewState(model=model, text=text, text_pair=pair, query=None if query == -1 else query,
                     measure=measure if measure in MEASURES else DEFAULT_MEASURE,
                     color=color if color in COLORS else DEFAULT_COLOR, adapt=q.get("adapt") != "0", prune=prune,
                     layer=_int(q.get("layer"), DEFAULT_LAYER, 0, MAX_LAYER),
                     head=_head(q.get("head"), DEFAULT_HEAD), block=block, metric=metric,
                     temperature=_float(q.get("t"), 1.0, T_MIN, T_MAX), problems=tuple(problems))


def mask_param(mask) -> str | None:
    """A head mask [L][H] of 0/1 (0 = pruned) as "LxH:hex" (bit i = head i in row-major order is
    pruned), None when nothing is pruned or the mask is not a small rectangular 0/1 grid."""
    try:
        rows = [[float(x) for x in row] for row in mask]
    except (TypeError, ValueError):
        return None
    if not rows or any(len(r) != len(rows[0]) for r in rows) or not rows[0]:
        return None
    L, H = len(rows), len(rows[0])
    if L > 999 or H > 999 or L * H > MAX_MASK_HEADS:
        return None
    bits = [1 if x == 0 else 0 for r in rows for x in r]
    if not any(bits):
        return None
    n = 0
    for i, b in enumerate(bits):
        n |= b << i
    return f"{L}x{H}:{n:0{(L * H + 3) // 4}x}"


def mask_from_param(value: str | None) -> list[list[int]] | None:
    """The mask store [L][H] (1 kept, 0 pruned) a `mask_param` string names; None when malformed."""
    m = _PRUNE_RE.match(value) if isinstance(value, str) else None
    if not m:
        return None
    L, H, digits = int(m.group(1)), int(m.group(2)), m.group(3)
    if not (0 < L and 0 < H and L * H <= MAX_MASK_HEADS) or len(digits) != (L * H + 3) // 4:
        return None
    n = int(digits, 16)
    if n >> (L * H):
        return None
    return [[0 if (n >> (layer * H + h)) & 1 else 1 for h in range(H)] for layer in range(L)]


def _query_string(state: ViewState, text: str, pair: str | None, cut: bool = False) -> str:
    q: dict[str, str] = {"model": state.model, "text": text}
    if pair:
        q["pair"] = pair
    q["layer"] = str(int(state.layer))
    q["head"] = MEAN if state.head == MEAN else str(int(state.head))
    if state.block:
        q["block"] = state.block
    if state.metric != DEFAULT_METRIC:
        q["metric"] = state.metric
    if state.temperature != 1.0:
        q["t"] = f"{state.temperature:g}"
    if state.query is not None:
        q["q"] = str(int(state.query))
    if state.color != DEFAULT_COLOR:
        q["color"] = state.color
    if not state.adapt:
        q["adapt"] = "0"
    if state.prune:
        q["prune"] = state.prune
    if state.measure != DEFAULT_MEASURE:
        q["measure"] = state.measure
    if cut:
        q["cut"] = "1"
    return "?" + urlencode(q)


MAX_MODEL_CHARS = 200  # a registry name; anything longer is not one


def _encodable(state: ViewState) -> ViewState:
    """The state with every field that is not a text made safe to write: bounded ints, a block
    that matches the block pattern, a model name of bounded length (texts are cut by encode)."""
    model = state.model if isinstance(state.model, str) and 0 < len(state.model) <= MAX_MODEL_CHARS \
        else DEFAULT_MODEL
    block = state.block if (isinstance(state.block, str) and len(state.block) <= MAX_BLOCK_CHARS
                            and _BLOCK_RE.match(state.block)) else None
    head = MEAN if state.head == MEAN else _int(state.head, 0, 0, MAX_LAYER)
    metric = state.metric if state.metric in METRICS else DEFAULT_METRIC
    try:
        t = float(state.temperature)
    except (TypeError, ValueError):
        t = 1.0
    t = t if math.isfinite(t) and T_MIN <= t <= T_MAX else 1.0
    color = state.color if state.color in COLORS else DEFAULT_COLOR
    prune = state.prune if mask_from_param(state.prune) is not None else None
    return replace(state, model=model, block=block, metric=metric, temperature=t, color=color,
                   measure=state.measure if state.measure in MEASURES else DEFAULT_MEASURE,
                   adapt=state.adapt is not False, prune=prune,
                   layer=_int(state.layer, DEFAULT_LAYER, 0, MAX_LAYER), head=head,
                   query=_int(state.query, None, 0, 100_000),
                   text=state.text if isinstance(state.text, str) else "",
                   text_pair=state.text_pair if isinstance(state.text_pair, str) else None)


def encode(state: ViewState) -> str:
    """The query string ("?...") for a view, at most MAX_QUERY_CHARS long (texts cut if needed).

    Terminates on any input: the fields other than the texts are bounded first (`_encodable`),
    and each round of the loop shortens a text by at least one character or, with both texts
    empty, stops."""
    state = _encodable(state)
    full_text, full_pair = (state.text or "").replace("\x00", ""), (state.text_pair or "").replace("\x00", "") or None
    text, pair = full_text[:MAX_QUERY_CHARS], (full_pair or "")[:MAX_QUERY_CHARS] or None
    out = _query_string(state, text, pair, cut=(text, pair) != (full_text, full_pair))
    while len(out) > MAX_QUERY_CHARS and (text or pair):
        over = len(out) - MAX_QUERY_CHARS + 8  # + "&cut=1"
        if pair and len(pair) >= len(text):
            pair = pair[: max(0, len(pair) - max(1, over // 9))] or None  # %XX%XX%XX per char at worst
        else:
            text = text[: max(0, len(text) - max(1, over // 9))]
        out = _query_string(state, text, pair, cut=True)
    return out


# ---- the page's controls <-> a link --------------------------------------------------------------
def url_search(store: dict | None, layer, head, block, metric, slider, query, color=None, adapt=True,
               mask=None, measure=None) -> str | None:
    """The query string for what the page shows, or None before the first run (colour scale,
    adapted colours and the pruning mask of the pruning card included)."""
    rs = parse_run_store(store)
    if rs is None:
        return None
    req = rs.request
    return encode(ViewState(
        color=color if color in COLORS else DEFAULT_COLOR, adapt=adapt is not False,
        measure=measure if measure in MEASURES else DEFAULT_MEASURE,
        prune=mask_param(mask) if isinstance(mask, list) else None,
        model=req["model"], text=req["text"], text_pair=req.get("text_pair"),
        layer=parse_index(layer) if parse_index(layer) is not None else DEFAULT_LAYER,
        head=MEAN if head == MEAN else (parse_index(head) if parse_index(head) is not None else 0),
        block=block or None, metric=metric if metric in METRICS else DEFAULT_METRIC,
        temperature=temperature_from_slider(slider), query=parse_index(query)))


def from_url(search: str | None, model_names: list[str]) -> dict:
    """Control values + the pending view (applied by the run callback) for a query string."""
    s = decode(search, model_names)
    return {"model": s.model, "text": s.text, "text_pair": s.text_pair or "", "metric": s.metric,
            "slider": slider_from_temperature(s.temperature), "color": s.color, "adapt": s.adapt, "measure": s.measure,
            "pending": {"layer": str(s.layer), "head": str(s.head), "block": s.block, "query": s.query,
                        "prune": s.prune, "problems": " ".join(s.problems)}}
