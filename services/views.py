"""What each panel shows, computed from a run: pure functions of a run, no Dash, no figures.

The callbacks re-get the run (`models.service.get_run`) and call these (through services.panels)
to slice the ONE matrix or grid the browser will draw. The control values are parsed and clamped
once: `selection_of(run, block, layer, head, query)` -> dashboard.selection.Selection. Shapes:

    HeadView.matrix      float32 [shown queries, shown keys]   (a slice of one head / head mean)
    HeadView.full        float32 [queries, keys]               (the whole head, for the stats)
    run.head_metrics()   float32 [layers, heads] per metric    (memoised on the run)

Block choices are strings: a block name ("self", "encoder", "decoder", "cross"), optionally with
a sentence-pair slice ":AA", ":AB", ":BA", ":BB" (query segment, key segment) for BERT pairs.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dashboard.selection import (GRID_METRICS, MEAN, PAIR_SLICES, BlockSize, Selection,  # noqa: F401
                                 clamp_to, head_options, layer_options, parse_block_choice, parse_head,
                                 parse_index, select, summary_line)
from models import metrics
from models.errors import InputError
from models.run import AttentionRun, Truncation

_SEG = {"A": 0, "B": 1}
_KIND_LABEL = {"self": "self", "causal": "self (causal)", "cross": "cross"}
_BLOCK_LABEL = {"encoder": "encoder self", "decoder": "decoder self (causal)",
                "cross": "cross (decoder → encoder)"}


# ---- blocks ----------------------------------------------------------------------------------
def has_pair(run: AttentionRun) -> bool:
    return any(t.segment == 1 for t in run.source_tokens)


def _pair_sliceable(run: AttentionRun, name: str) -> bool:
    b = run.block(name)
    return (b.kind == "self" and b.query_side == "source" and b.key_side == "source" and has_pair(run))


def block_options(run: AttentionRun) -> list[dict]:
    """Dropdown options for the block selector of this run: [{"label", "value"}]."""
    out = []
    for b in run.blocks:
        label = _BLOCK_LABEL.get(b.name) if run.architecture == "encoder-decoder" else None
        label = label or _KIND_LABEL[b.kind]
        if _pair_sliceable(run, b.name):
            out.append({"label": "all (A+B)", "value": b.name})
            out.extend({"label": f"{s[0]}→{s[1]}", "value": f"{b.name}:{s}"} for s in PAIR_SLICES)
        else:
            out.append({"label": label, "value": b.name})
    return out


def block_sizes(run: AttentionRun) -> dict[str, BlockSize]:
    """{block name: BlockSize}: what a selection is clamped to in this run."""
    return {b.name: BlockSize(layers=b.n_layers, heads=b.n_heads, queries=len(run.tokens(b.query_side)),
                              pair_slices=_pair_sliceable(run, b.name)) for b in run.blocks}


def selection_of(run: AttentionRun, block, layer, head, query=None) -> Selection:
    """The page's selection (block dropdown value, layer, head, query) parsed and clamped to the
    run once (dashboard.selection.select): unknown blocks give the main block, missing or
    out-of-range layers the last layer, heads head 0, queries None."""
    return select(block_sizes(run), run.main.name, block, layer, head, query)


# ---- one head (or the mean of a layer's heads) --------------------------------------------------
@dataclass(frozen=True)
class HeadView:
    """One head's attention as shown.

    matrix:          float32 [shown queries, shown keys], rows = queries (attend from)
    query_labels:    str [shown queries];  key_labels: str [shown keys]
    query_positions: int [shown queries] positions of the shown rows among the block's queries
    key_positions:   int [shown keys]
    boundary:        index (in shown rows and columns) where sentence B starts, or None
    causal:          the block is causal (upper triangle empty)
    full:            float32 [queries, keys] the whole head (stats use it)
    """

    matrix: np.ndarray
    query_labels: list[str]
    key_labels: list[str]
    query_positions: np.ndarray
    key_positions: np.ndarray
    boundary: int | None
    causal: bool
    full: np.ndarray


def head_weights(run: AttentionRun, block: str, layer: int, head, temperature: float = 1.0,
                 rows=slice(None)) -> np.ndarray:
    """float32 [rows, keys]: the head's weights, or the mean over the layer's heads (head=MEAN),
    rebuilt by the run from what it stored (models.compact).

    temperature 1 gives the model's own weights; any other value re-applies softmax to the real
    pre-softmax scores of the head(s): softmax(scores / T).
    """
    if temperature != 1.0 and not run.block(block).has_scores:
        raise InputError("This model's run has no pre-softmax scores (its attention is read from the "
                         "model's own output_attentions), so the temperature cannot be changed.")
    if head == MEAN:
        return run.mean_weights(layer, temperature, block, rows)
    return run.head_weights(layer, head, temperature, block, rows)


def view_positions(run: AttentionRun, block: str, pair_block: str | None) -> tuple[np.ndarray, np.ndarray, int | None]:
    """(query positions int [shown q], key positions int [shown k], boundary | None) of a view:
    every token, or a sentence-pair slice (see head_matrix)."""
    b = run.block(block)
    q_tokens, k_tokens = run.tokens(b.query_side), run.tokens(b.key_side)
    q_pos, k_pos = np.arange(len(q_tokens)), np.arange(len(k_tokens))
    boundary = None
    if pair_block:
        q_seg, k_seg = _SEG[pair_block[0]], _SEG[pair_block[1]]
        q_pos = np.array([i for i, t in enumerate(q_tokens) if t.segment == q_seg], dtype=int)
        k_pos = np.array([i for i, t in enumerate(k_tokens) if t.segment == k_seg], dtype=int)
    elif b.query_side == b.key_side == "source" and has_pair(run):
        boundary = next(i for i, t in enumerate(q_tokens) if t.segment == 1)
    return q_pos, k_pos, boundary


def head_matrix(run: AttentionRun, block: str, layer: int, head, pair_block: str | None = None,
                temperature: float = 1.0) -> HeadView:
    """The matrix to draw for (block, layer, head | MEAN), sliced to a sentence-pair block.

    pair_block: None (all tokens) or "AA"/"AB"/"BA"/"BB": rows of the query segment, columns of
    the key segment (A = segment 0, incl. [CLS] and the first [SEP]; B = segment 1).
    """
    b = run.block(block)
    full = head_weights(run, block, layer, head, temperature)
    q_tokens, k_tokens = run.tokens(b.query_side), run.tokens(b.key_side)
    q_pos, k_pos, boundary = view_positions(run, block, pair_block)
    matrix = full[np.ix_(q_pos, k_pos)]
    return HeadView(matrix=matrix, query_labels=[q_tokens[i].label for i in q_pos],
                    key_labels=[k_tokens[i].label for i in k_pos], query_positions=q_pos,
                    key_positions=k_pos, boundary=boundary, causal=b.causal, full=full)


def head_title(run: AttentionRun, block: str, layer: int, head, pair_block: str | None,
               temperature: float) -> str:
    """"Layer 3 · head 1 · self" (+ " · A→B", " · T = 2")."""
    b = run.block(block)
    who = "mean of all heads" if head == MEAN else f"head {head}"
    label = _BLOCK_LABEL.get(b.name) if run.architecture == "encoder-decoder" else None
    parts = [f"Layer {layer}", who, label or _KIND_LABEL[b.kind]]
    if pair_block:
        parts.append(f"{pair_block[0]}→{pair_block[1]}")
    if temperature != 1.0:
        parts.append(f"T = {temperature:g}")
    return " · ".join(parts)


def head_stats(run: AttentionRun, view: HeadView, block: str) -> dict:
    """The stats row for the whole shown head (all queries and keys), as display strings.

    Keys: "tokens", "entropy" (mean row entropy, bits), "max_weight", "most_attended" (label of
    the key with most total attention), "sink" (mean weight on the first key).
    """
    s = metrics.stats(view.full)
    b = run.block(block)
    n_q, n_k = view.full.shape
    keys = run.tokens(b.key_side)
    tokens = str(n_q) if n_q == n_k and b.query_side == b.key_side else f"{n_q} → {n_k}"
    return {"tokens": tokens, "entropy": f"{s['entropy']:.2f}", "max_weight": f"{s['max_weight']:.2f}",
            "most_attended": f"{keys[s['most_attended']].label} (#{s['most_attended']})",
            "sink": f"{s['sink']:.2f}"}


# ---- token inspector ----------------------------------------------------------------------------
def default_query(run: AttentionRun, block: str) -> int:
    """The query the inspector opens on when none is chosen: the last whole word of the text
    (not a special token, not a continuation piece, has a letter or digit); else 0."""
    tokens = run.tokens(run.block(block).query_side)
    for i in range(len(tokens) - 1, -1, -1):
        t = tokens[i]
        if not t.special and not t.subword and any(ch.isalnum() for ch in t.label):
            return i
    return 0


def top_keys(run: AttentionRun, block: str, layer: int, head, query: int, temperature: float = 1.0,
             k: int = 5) -> list[dict]:
    """The k keys a query attends to most: [{"key", "label", "weight", "score"}], largest first.

    score is the real pre-softmax score q·k/√d of that head, or None for the mean of heads
    (scores are per head) or a run without scores.
    """
    keys = run.key_tokens(block)
    rows = run.top_keys(layer, head, query, k, block, temperature)
    return [{"key": i, "label": keys[i].label, "weight": w, "score": s} for i, w, s in rows]


# ---- messages -----------------------------------------------------------------------------------
def truncation_message(truncations: tuple[Truncation, ...] | list) -> str | None:
    """"Text cut to 512 tokens at character 2549 of 3000; 90 tokens not run." (one per cut text)."""
    parts = []
    for t in truncations:
        t = t if isinstance(t, Truncation) else Truncation(**t)
        what = "Target text" if t.side == "target" else ("Second text" if t.segment == 1 else "Text")
        parts.append(f"{what} cut to {t.max_tokens} tokens at character {t.kept_chars} of "
                     f"{t.total_chars}; {t.dropped_tokens} token{'s' if t.dropped_tokens != 1 else ''} not run.")
    return " ".join(parts) or None
