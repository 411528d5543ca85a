"""Control values as the page holds them, parsed without a run: pure, no engine.

Layer / head / query values arrive as dropdown strings ("3", "mean"), ints from the URL, or
anything a hostile browser sends; these turn them into ints (or MEAN) and clamp them to a block
of n_layers x n_heads. The run-bound parts (which blocks a run has, its sizes) are in
services/views.py.
"""
from __future__ import annotations

MEAN = "mean"
PAIR_SLICES = ("AA", "AB", "BA", "BB")
GRID_METRICS = {  # radio value -> (metrics key, label, unit)
    "entropy": ("entropy", "entropy", "bits"),
    "sink": ("sink", "sink mass", ""),
    "diagonal": ("diagonal", "diagonal (self) mass", ""),
    "previous": ("previous", "previous-token mass", ""),
    "role": ("role", "head role", ""),
}


def parse_layer(value) -> int | None:
    """A dropdown/URL layer value ("3", 3) as int; None when it is not a whole number >= 0."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str):  # ASCII digits only ("²".isdigit() is True), short (int() refuses 4,300+)
        v = value.strip()
        if 0 < len(v) <= 12 and v.isascii() and v.isdigit():
            return int(v)
    return None


def parse_head(value) -> int | str | None:
    """A head value: MEAN, or an int >= 0; None otherwise."""
    if value == MEAN:
        return MEAN
    return parse_layer(value)


def clamp_to(n_layers: int, n_heads: int, layer, head) -> tuple[int, int | str]:
    """A (layer, head) that exists in a block of n_layers x n_heads, from dropdown values ("3", 3,
    "mean"). Missing or out-of-range values become the last layer / head 0 (head MEAN stays MEAN)."""
    layer, head = parse_layer(layer), parse_head(head)
    layer = layer if layer is not None and layer < n_layers else n_layers - 1
    if head == MEAN:
        return layer, MEAN
    head = head if head is not None and head < n_heads else 0
    return layer, head


def layer_options(n_layers: int) -> list[dict]:
    """Options of the layer dropdown (values are strings: a native <select>)."""
    return [{"label": f"Layer {i}", "value": str(i)} for i in range(n_layers)]


def head_options(n_heads: int) -> list[dict]:
    return [{"label": f"Head {i}", "value": str(i)} for i in range(n_heads)] + [
        {"label": "mean of all heads", "value": MEAN}]


def run_info(summary: dict) -> str:
    """"all-MiniLM-L6-v2 · encoder · 13 tokens · 6 layers × 12 heads" from a run summary."""
    main = summary["blocks"][0]
    n = len(summary["source_tokens"])
    extra = f" + {len(summary['target_tokens'])} target" if summary.get("target_tokens") else ""
    return (f"{summary['model']} · {summary['architecture']} · {n} tokens{extra} · "
            f"{main['layers']} layers × {main['heads']} heads")
