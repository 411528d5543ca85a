"""Control values as the page holds them, parsed without a run: pure, no engine.

Layer / head / query values arrive as dropdown strings ("3", "mean"), ints from the URL, or
anything a hostile browser sends; these turn them into ints (or MEAN) and clamp them to a block
of n_layers x n_heads.

    whole_number(value, lo, hi)   the one parser of whole numbers sent by the browser or a link
    parse_index / parse_head      a layer, head or query index ("3", 3); a head may be MEAN
    Selection / select(...)       block, pair slice, layer, head, query parsed and clamped once,
                                  against plain block sizes (services.views.selection_of: a run's)
    RunStore / parse_run_store    the page's run store, read in one place

The run-bound parts (which blocks a run has, its sizes) are in services/views.py.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

MEAN = "mean"
PAIR_SLICES = ("AA", "AB", "BA", "BB")
GRID_METRICS = {  # radio value -> (metrics key, label, unit)
    "entropy": ("entropy", "entropy", "bits"),
    "sink": ("sink", "sink mass", ""),
    "diagonal": ("diagonal", "diagonal (self) mass", ""),
    "previous": ("previous", "previous-token mass", ""),
    "role": ("role", "head role", ""),
}


MAX_DIGITS = 12  # a whole number sent as text has at most this many digits


def whole_number(value, lo: int = 0, hi: int | None = None, *, strings: bool = True) -> int | None:
    """An int in [lo, hi] from an int or (strings=True) a short string of ASCII digits, spaces
    around allowed; None for anything else (bools, floats, signs, "²": "²".isdigit() is True but
    int() fails; more than MAX_DIGITS digits: int() refuses 4,300+)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and strings:
        v = value.strip()
        if not (0 < len(v) <= MAX_DIGITS and v.isascii() and v.isdigit()):
            return None
        value = int(v)
    if not isinstance(value, int):
        return None
    return value if value >= lo and (hi is None or value <= hi) else None


def parse_index(value) -> int | None:
    """A layer, head or query index as the page holds it ("3", 3) as int; None when it is not a
    whole number >= 0."""
    return whole_number(value)




def parse_head(value) -> int | str | None:
    """A head value: MEAN, or an int >= 0; None otherwise."""
    if value == MEAN:
        return MEAN
    return parse_index(value)


def clamp_to(n_layers: int, n_heads: int, layer, head) -> tuple[int, int | str]:
    """A (layer, head) that exists in a block of n_layers x n_heads, from dropdown values ("3", 3,
    "mean"). Missing or out-of-range values become the last layer / head 0 (head MEAN stays MEAN)."""
    layer, head = parse_index(layer), parse_head(head)
    layer = layer if layer is not None and layer < n_layers else n_layers - 1
    if head == MEAN:
        return layer, MEAN
    head = head if head is not None and head < n_heads else 0
    return layer, head


def temperature_from_slider(s) -> float:
    """Slider position (log2 T) -> T, rounded to 3 significant digits; bad input -> 1."""
    try:
        s = float(s)
    except (TypeError, ValueError):
        return 1.0
    if not math.isfinite(s) or s == 0:
        return 1.0
    s = max(-2.0, min(2.0, s))
    return float(f"{2.0 ** s:.3g}")


def slider_from_temperature(t: float) -> float:
    return round(math.log2(t), 2) if t and t > 0 else 0.0


def layer_options(n_layers: int) -> list[dict]:
    """Options of the layer dropdown (values are strings: a native <select>)."""
    return [{"label": f"Layer {i}", "value": str(i)} for i in range(n_layers)]


def head_options(n_heads: int) -> list[dict]:
    return [{"label": f"Head {i}", "value": str(i)} for i in range(n_heads)] + [
        {"label": "mean of all heads", "value": MEAN}]


def summary_line(summary: dict) -> str:
    """"all-MiniLM-L6-v2 · encoder · 13 tokens · 6 layers × 12 heads" from a run summary."""
    main = summary["blocks"][0]
    n = len(summary["source_tokens"])
    extra = f" + {len(summary['target_tokens'])} target" if summary.get("target_tokens") else ""
    return (f"{summary['model']} · {summary['architecture']} · {n} tokens{extra} · "
            f"{main['layers']} layers × {main['heads']} heads")


# ---- the selection, parsed and clamped once -------------------------------------------------------
@dataclass(frozen=True)
class BlockSize:
    """What a selection is clamped to: one block's layers, heads and query tokens, and whether it
    can be sliced by sentence-pair segment (a self block over a sentence pair)."""
    layers: int
    heads: int
    queries: int
    pair_slices: bool = False


@dataclass(frozen=True)
class Selection:
    """What the page shows, parsed from the control values and clamped to the run once.

    block:  the block's name ("self", "encoder", "decoder", "cross")
    pair:   sentence-pair slice "AA" | "AB" | "BA" | "BB" (query segment, key segment) or None
    held:   the block value as the dropdown holds it (what panels stamp on their answers), or the
            block's name when the dropdown holds nothing usable
    layer:  int < the block's layers (missing / out of range: the last layer)
    head:   int < the block's heads (missing / out of range: 0), or MEAN
    query:  int < the block's queries, or None when none was given or it is out of range
    """
    block: str
    pair: str | None
    held: str
    layer: int
    head: int | str
    query: int | None = None

    @property
    def value(self) -> str:
        """The block value a valid dropdown would hold: "self" or "self:AB"."""
        return f"{self.block}:{self.pair}" if self.pair else self.block

    @property
    def is_mean(self) -> bool:
        return self.head == MEAN


def parse_block_choice(choice, blocks: Mapping[str, BlockSize], main: str) -> tuple[str, str | None]:
    """(block name, pair slice or None) for a block dropdown value; unknown values give `main`."""
    if not isinstance(choice, str):
        return main, None
    name, _, pair = choice.partition(":")
    if name not in blocks:
        return main, None
    if pair and (pair not in PAIR_SLICES or not blocks[name].pair_slices):
        return name, None
    return name, pair or None


def select(blocks: Mapping[str, BlockSize], main: str, block, layer, head, query=None) -> Selection:
    """The Selection for the control values (block dropdown value, layer, head, query) in a run of
    `blocks` ({name: BlockSize}) whose main block is `main`."""
    name, pair = parse_block_choice(block, blocks, main)
    size = blocks[name]
    layer, head = clamp_to(size.layers, size.heads, layer, head)
    q = parse_index(query)
    return Selection(block=name, pair=pair, held=block if isinstance(block, str) and block else name,
                     layer=layer, head=head, query=q if q is not None and q < size.queries else None)


# ---- the run store ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunStore:
    """The page's run store (dashboard.ids.RUN), read in one place. It comes back from the browser:
    only the request is used to find the run on the server; sizes come from that run, never from
    the store.

    request:   {"model", "text", "text_pair", "max_tokens"} (models.service.RunRequest.to_dict())
    summary:   the store's summary (AttentionRun.summary(), for display only), None when absent
    selection: the layer / head / block the run landed with ({} when absent)
    """
    request: dict
    summary: dict | None
    selection: dict

    @property
    def model(self) -> str | None:
        m = self.request.get("model")
        return m if isinstance(m, str) else None


def parse_run_store(store) -> RunStore | None:
    """RunStore of the page's run store; None before the first run or for anything malformed."""
    if not isinstance(store, dict) or not isinstance(store.get("request"), dict):
        return None
    selection = store.get("selection")
    return RunStore(request=store["request"], summary=store.get("summary"),
                    selection=selection if isinstance(selection, dict) else {})


def store_model(store) -> str | None:
    """The model the run store names, or None before the first run."""
    rs = parse_run_store(store)
    return None if rs is None else rs.model
