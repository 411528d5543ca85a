"""The result of one model run: tokens, attention blocks and their analysis.

An `AttentionRun` is immutable. Every array states its shape:

    block.layers   one models.compact.LayerStore per layer: queries [heads, query, d] and keys
                   [kv heads, key, d] as the softmax saw them, the mask as flags, any additive bias
                   (O(T·d) per layer; the full layer only when the compact form did not reproduce)
    block.summary  per-query summaries computed at capture (entropy, top keys, per-head metrics)
    run.head_weights(layer, head, T)  float32 [query, key]   softmax(scores / T), rebuilt on demand
    run.head_scores(layer, head)      float32 [query, key]   pre-softmax scores; -inf where masked
    run.mean_weights(layer, T)        float32 [query, key]   mean of the layer's heads
    run.top_keys(layer, head, query, k) / run.head_metrics(block) / run.query_entropy(block)
    run.attention_change(baseline, block)  float32 [layers, heads]  JS divergence per head (memoised)
    run.identity                      str    a short id of what the run is (model, texts, head mask)

Blocks are named by where they sit in the model:

    encoder-only (BERT):     "self"                              kind "self"
    decoder-only (GPT-2):    "self"                              kind "causal"
    encoder-decoder (BART):  "encoder", "decoder", "cross"       kinds "self", "causal", "cross"

Queries and keys of a block come from a token side: "source" (the input text, and for a
sentence pair both texts) or "target" (the decoder input of an encoder-decoder model).
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np

from models import compact, metrics

SCHEMA_VERSION = 2  # 2: compact blocks (queries/keys + mask flags + summaries), see models.compact

Kind = Literal["self", "causal", "cross"]
Side = Literal["source", "target"]


@dataclass(frozen=True)
class Token:
    """One token as shown to people.

    piece:   the tokenizer's own string ("##ing", "Ġcat", "[CLS]")
    start/end: character offsets into the text it came from (the `segment`'s text); None for
             special tokens. text[start:end] is the surface form.
    segment: 0 for text A, 1 for text B of a sentence pair (token type), 0 on a target side.
    special: [CLS], [SEP], <s>, </s>, ...
    subword: a continuation piece of a word (not the first piece of its word).
    """

    piece: str
    id: int
    start: int | None
    end: int | None
    segment: int
    special: bool
    subword: bool
    word: int | None = None

    @property
    def label(self) -> str:
        """Short human label: special tokens in brackets, continuation pieces prefixed with '##'."""
        if self.special:
            return self.piece if self.piece.startswith(("[", "<")) else f"[{self.piece}]"
        text = self.piece
        for marker in ("##", "Ġ", "▁", "Ċ"):
            text = text.replace(marker, "")
        if not text:
            text = self.piece
        return f"##{text}" if self.subword else text


class Block:
    """One attention block: all layers and heads of one kind of attention, stored compactly.

    layers:  one models.compact.LayerStore per layer (queries/keys the softmax saw + mask flags +
             bias, or the full layer when the compact form did not reproduce the model)
    summary: per-query summaries of the model's own weights, computed at capture:
             "entropy" float32 [layers, heads, queries] (bits), "top_idx" uint16|int32 and
             "top_w" float16 [layers, heads, queries, TOP_K] (most attended keys, largest first),
             and per-head metrics "m.<name>" float32 [layers, heads] (models.metrics names)

    Block(name, kind, query_side, key_side, weights, scores=None) builds a block stored in full
    from float arrays [layers, heads, query, key] (hand-made runs in tests).
    Any head is rebuilt on demand: `head_weights`, `head_scores`, `layer_weights`, `mean_weights`.
    `weights` / `scores` materialise the whole block [layers, heads, query, key] float32: only for
    small runs (tests, exports); views read one head.
    """

    def __init__(self, name: str, kind: Kind, query_side: Side, key_side: Side, weights=None, scores=None,
                 *, layers: tuple | None = None, summary: dict | None = None):
        self.name, self.kind, self.query_side, self.key_side = name, kind, query_side, key_side
        if layers is None:
            if weights is None:
                raise ValueError("a Block needs layers or weights")
            w = np.asarray(weights, np.float16)
            s = None if scores is None else np.asarray(scores, np.float16)
            layers = tuple(compact.LayerStore.from_full(w[i], None if s is None else s[i], "given in full")
                           for i in range(w.shape[0]))
        self.layers = tuple(layers)
        self.summary = summary if summary is not None else summarise_layers(self.layers, self.kind)
        self._memo: dict = {}

    def __repr__(self) -> str:
        return (f"Block({self.name!r}, {self.kind!r}, layers={self.n_layers}, heads={self.n_heads}, "
                f"queries={self.n_queries}, keys={self.n_keys})")

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    @property
    def n_heads(self) -> int:
        return int(self.layers[0].n_heads)

    @property
    def n_queries(self) -> int:
        return int(self.layers[0].n_queries)

    @property
    def n_keys(self) -> int:
        return int(self.layers[0].n_keys)

    @property
    def causal(self) -> bool:
        return self.kind == "causal"

    @property
    def nbytes(self) -> int:
        """Bytes held: compact layers + summaries."""
        return sum(x.nbytes for x in self.layers) + sum(np.asarray(v).nbytes for v in self.summary.values())

    @property
    def has_scores(self) -> bool:
        """Pre-softmax scores are known (False on the fallback path: weights only)."""
        return all(x.has_scores for x in self.layers)

    @property
    def modes(self) -> list[str]:
        """Storage mode per layer ("qk16", "qk32", "full")."""
        return [x.mode for x in self.layers]

    # ---- one head, rebuilt on demand --------------------------------------------------------
    def head_scores(self, layer: int, head: int, rows=slice(None)) -> np.ndarray:
        """float32 [rows, keys]: pre-softmax scores of one head, -inf where masked."""
        return self.layers[layer].scores(head, rows)[0].numpy()

    def _small(self, layer: int) -> bool:
        x = self.layers[layer]
        return x.n_heads * x.n_queries * x.n_keys <= LAYER_MEMO_CELLS

    def _layer(self, layer: int, temperature: float, rows=slice(None), build: bool = True) -> np.ndarray | None:
        """float32 [heads, queries, keys], read-only: a small layer rebuilt once and kept (the views of
        one user action, heatmap, its head mean and the layer overview, read it; see _LayerMemo).
        With `build` False, or for a few rows only, None unless it is already kept (one query's row
        of one head is cheaper to rebuild than the layer)."""
        if not self._small(layer):
            return None
        key = (layer, float(temperature))
        hit = _MEMO.get(self, key)
        if hit is None and build and isinstance(rows, slice) and rows == slice(None):
            hit = self.layers[layer].weights(slice(None), slice(None), temperature).numpy()
            hit.setflags(write=False)
            _MEMO.put(self, key, hit)
        return hit

    def head_weights(self, layer: int, head: int, temperature: float = 1.0, rows=slice(None)) -> np.ndarray:
        """float32 [rows, keys]: softmax(scores / T) of one head (T = 1: the model's weights)."""
        kept = self._layer(layer, temperature, rows)
        if kept is not None:
            return np.array(kept[head][rows])
        return self.layers[layer].weights(head, rows, temperature)[0].numpy()

    def layer_weights(self, layer: int, temperature: float = 1.0, rows=slice(None)) -> np.ndarray:
        """float32 [heads, rows, keys]: every head of one layer."""
        kept = self._layer(layer, temperature, rows)
        if kept is not None:
            return np.array(kept[:, rows])
        return self.layers[layer].weights(slice(None), rows, temperature).numpy()

    def mean_weights(self, layer: int, temperature: float = 1.0, rows=slice(None)) -> np.ndarray:
        """float32 [rows, keys]: mean over the layer's heads."""
        kept = self._layer(layer, temperature, rows)
        if kept is not None:
            return kept[:, rows].mean(0)
        return self.layers[layer].weights(slice(None), rows, temperature).mean(0).numpy()

    # ---- the whole block (small runs only) -----------------------------------------------------
    @property
    def weights(self) -> np.ndarray:
        """float32 [layers, heads, query, key]: every head rebuilt (memory grows with T²)."""
        return np.stack([self.layer_weights(i) for i in range(self.n_layers)])

    @property
    def scores(self) -> np.ndarray | None:
        """float32 [layers, heads, query, key]: pre-softmax scores, -inf where masked; None when the
        block has none (fallback path: the model's own output_attentions)."""
        if not self.has_scores:
            return None
        return np.stack([x.scores().numpy() for x in self.layers])

    def metrics(self) -> dict[str, np.ndarray]:
        """Per-head metrics [layers, heads] (computed at capture) + "role" (models.metrics)."""
        if "metrics" not in self._memo:
            m = {k[2:]: v for k, v in self.summary.items() if k.startswith("m.")}
            m["role"] = metrics.head_roles(m)
            self._memo["metrics"] = m
        return self._memo["metrics"]

    # ---- serialisation ------------------------------------------------------------------------
    def to_payload(self, prefix: str) -> tuple[dict, dict[str, np.ndarray]]:
        arrays = {f"{prefix}.{k}": np.asarray(v) for k, v in self.summary.items()}
        layers = []
        for i, x in enumerate(self.layers):
            meta, arr = x.to_payload(f"{prefix}.L{i}")
            layers.append(meta)
            arrays.update(arr)
        return {"name": self.name, "kind": self.kind, "query_side": self.query_side,
                "key_side": self.key_side, "layers": layers, "summary": sorted(self.summary)}, arrays

    @classmethod
    def from_payload(cls, meta: dict, arrays: dict, prefix: str) -> "Block":
        layers = tuple(compact.LayerStore.from_payload(m, arrays, f"{prefix}.L{i}")
                       for i, m in enumerate(meta["layers"]))
        summary = {k: arrays[f"{prefix}.{k}"] for k in meta["summary"]}
        return cls(meta["name"], meta["kind"], meta["query_side"], meta["key_side"], layers=layers,
                   summary=summary)


LAYER_MEMO_CELLS = 1 << 22  # a layer of at most this many weights (16 MB float32) is rebuilt once and kept


class _LayerMemo:
    """The last few small layers rebuilt, per process: {(block, layer, T): float32 [H, Tq, Tk]}.

    One user action fires several views of the same layer (the heatmap's heads and their mean, the
    layer overview of every head) in separate requests; the run itself comes from the per-process
    LRU (models.service), so the layer it rebuilt for the first view serves the next ones. Blocks
    are held weakly (an entry dies with its run); at most ENTRIES layers, each <= LAYER_MEMO_CELLS."""

    ENTRIES = 4

    def __init__(self):
        import threading
        from collections import OrderedDict

        self._lock = threading.Lock()
        self._items: "OrderedDict[tuple, tuple]" = OrderedDict()

    def get(self, block: "Block", key: tuple):
        with self._lock:
            item = self._items.get((id(block),) + key)
            if item is None or item[0]() is not block:
                return None
            self._items.move_to_end((id(block),) + key)
            return item[1]

    def put(self, block: "Block", key: tuple, value: np.ndarray) -> None:
        import weakref

        with self._lock:
            self._items[(id(block),) + key] = (weakref.ref(block), value)
            self._items.move_to_end((id(block),) + key)
            while len(self._items) > self.ENTRIES:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_MEMO = _LayerMemo()


def stack_summaries(summaries: list) -> dict[str, np.ndarray]:
    """The Block.summary dict of per-layer models.compact.LayerSummary objects."""
    out = {"entropy": np.stack([s.entropy for s in summaries]).astype(np.float32),
           "top_idx": np.stack([s.top_idx for s in summaries]),
           "top_w": np.stack([s.top_w for s in summaries]).astype(np.float16)}
    for name in summaries[0].metrics:
        out[f"m.{name}"] = np.stack([s.metrics[name] for s in summaries]).astype(np.float32)
    return out


def summarise_layers(layers, kind: str) -> dict[str, np.ndarray]:
    """Summaries of stored layers (for blocks built from full arrays)."""
    import torch

    out = []
    for x in layers:
        allowed = x.mask.allowed_count() if x.mask is not None else (
            metrics._allowed_keys(x.n_queries, x.n_keys, kind == "causal"))
        out.append(compact.summarise(torch.from_numpy(x.full_weights.astype(np.float32)) if x.mode == "full"
                                     else x.weights(), allowed))
    return stack_summaries(out)


@dataclass(frozen=True)
class Truncation:
    """Where a text was cut to fit the model: `kept_chars` of `total_chars` characters,
    `dropped_tokens` tokens beyond `max_tokens` not run."""

    side: Side
    segment: int
    kept_chars: int
    total_chars: int
    dropped_tokens: int
    max_tokens: int


@dataclass(frozen=True)
class AttentionRun:
    model_name: str
    model_fingerprint: str
    architecture: Literal["encoder", "decoder", "encoder-decoder"]
    text: str
    text_pair: str | None
    source_tokens: tuple[Token, ...]
    target_tokens: tuple[Token, ...]
    blocks: tuple[Block, ...]
    truncations: tuple[Truncation, ...] = ()
    head_mask: np.ndarray | None = None  # float32 [layers, heads] of the main block, None = unpruned
    outputs: dict = field(default_factory=dict)  # small named output arrays, e.g. "embedding": [hidden]
    # analysis memoised on the run (it is immutable): identity, attention change per baseline
    _memo: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    # ---- navigation -------------------------------------------------------------------------
    @property
    def main(self) -> Block:
        """The block a page shows first: encoder self-attention, or the decoder's for GPT-2."""
        return self.blocks[0]

    def block(self, name: str | None = None) -> Block:
        if name is None:
            return self.main
        for b in self.blocks:
            if b.name == name:
                return b
        raise KeyError(f"run has no attention block {name!r}; it has {[b.name for b in self.blocks]}")

    @property
    def weights(self) -> np.ndarray:
        """float32 [layers, heads, query, key] of the main block, rebuilt (small runs only)."""
        return self.main.weights

    def tokens(self, side: Side = "source") -> tuple[Token, ...]:
        return self.source_tokens if side == "source" else self.target_tokens

    def query_tokens(self, block: str | None = None) -> tuple[Token, ...]:
        return self.tokens(self.block(block).query_side)

    def key_tokens(self, block: str | None = None) -> tuple[Token, ...]:
        return self.tokens(self.block(block).key_side)

    @property
    def truncated(self) -> bool:
        return bool(self.truncations)

    # ---- analysis (TransformerLens-style methods over the stored arrays) -------------------
    def head_weights(self, layer: int, head: int, temperature: float = 1.0, block: str | None = None,
                     rows=slice(None)) -> np.ndarray:
        """float32 [rows, keys]: one head's weights softmax(scores / T); T = 1 is the model itself."""
        return self.block(block).head_weights(layer, head, temperature, rows)

    def head_scores(self, layer: int, head: int, block: str | None = None, rows=slice(None)) -> np.ndarray:
        """float32 [rows, keys]: one head's pre-softmax scores (what its softmax saw), -inf where masked."""
        return self.block(block).head_scores(layer, head, rows)

    def mean_weights(self, layer: int, temperature: float = 1.0, block: str | None = None,
                     rows=slice(None)) -> np.ndarray:
        """float32 [rows, keys]: mean of the layer's heads' weights at temperature T."""
        return self.block(block).mean_weights(layer, temperature, rows)

    def entropy(self, block: str | None = None) -> np.ndarray:
        """float32 [layers, heads]: mean row entropy in bits."""
        return self.head_metrics(block)["entropy"]

    def query_entropy(self, block: str | None = None) -> np.ndarray:
        """float32 [layers, heads, queries]: each query's row entropy in bits (stored at capture)."""
        return self.block(block).summary["entropy"]

    def head_metrics(self, block: str | None = None) -> dict[str, np.ndarray]:
        """Per-head metrics of a block, each [layers, heads] (models.metrics names), computed at
        capture from the model's own weights and memoised on the run."""
        return self.block(block).metrics()

    def top_keys(self, layer: int, head, query: int, k: int = 5, block: str | None = None,
                 temperature: float = 1.0):
        """The k keys a query attends to most: list of (key index, weight, pre-softmax score|None).
        head "mean": the mean over the layer's heads (no score: scores are per head)."""
        b = self.block(block)
        rows = slice(query, query + 1)
        if head == "mean":
            row, scores = b.mean_weights(layer, temperature, rows)[0], None
        else:
            row = b.head_weights(layer, head, temperature, rows)[0]
            scores = b.head_scores(layer, head, rows)[0] if b.has_scores else None
        order = metrics.top_k(row, k)
        return [(int(i), float(row[i]), None if scores is None else float(scores[i])) for i in order]

    def attention_change(self, baseline: "AttentionRun", block: str | None = None) -> np.ndarray:
        """float32 [layers, heads]: mean Jensen-Shannon divergence (bits, 0..1) between `baseline`'s
        attention rows and this run's, per head of `block` (models.pruning.attention_change: same
        text, same shapes). Memoised on this run per baseline identity and block: switching the shown
        head does not recompute every head's divergence."""
        from models import pruning  # (pruning imports this module)

        name = self.block(block).name
        key = ("attention_change", baseline.identity, name)
        if key not in self._memo:
            self._memo[key] = pruning.attention_change(baseline, self, name)
        return self._memo[key]

    @property
    def identity(self) -> str:
        """A short id of what the run is (model, weights, texts, token counts, head mask): two runs
        with the same identity hold the same attention. The page stamps it on every panel's answer
        (services.panels.view_key)."""
        if "identity" not in self._memo:
            h = hashlib.sha1()
            for part in (self.model_name, self.model_fingerprint, self.text, self.text_pair or "\x00",
                         str(len(self.source_tokens)), str(len(self.target_tokens))):
                h.update(part.encode("utf-8", "surrogatepass") + b"\x1f")
            if self.head_mask is not None:
                h.update(np.ascontiguousarray(self.head_mask, dtype=np.float32).tobytes())
            self._memo["identity"] = h.hexdigest()[:16]
        return self._memo["identity"]

    @property
    def nbytes(self) -> int:
        return sum(b.nbytes for b in self.blocks)

    # ---- serialisation: JSON meta + named arrays (never pickle) ----------------------------
    def to_payload(self) -> tuple[dict, dict[str, np.ndarray]]:
        arrays: dict[str, np.ndarray] = {}
        blocks_meta = []
        for i, b in enumerate(self.blocks):
            m, a = b.to_payload(f"block{i}")
            blocks_meta.append(m)
            arrays.update(a)
        if self.head_mask is not None:
            arrays["head_mask"] = self.head_mask
        for name, arr in self.outputs.items():
            arrays[f"out.{name}"] = np.asarray(arr)
        meta = {
            "schema": SCHEMA_VERSION,
            "model_name": self.model_name,
            "model_fingerprint": self.model_fingerprint,
            "architecture": self.architecture,
            "text": self.text,
            "text_pair": self.text_pair,
            "source_tokens": [asdict(t) for t in self.source_tokens],
            "target_tokens": [asdict(t) for t in self.target_tokens],
            "blocks": blocks_meta,
            "truncations": [asdict(t) for t in self.truncations],
        }
        return meta, arrays

    @classmethod
    def from_payload(cls, meta: dict, arrays: dict[str, np.ndarray]) -> "AttentionRun":
        if meta.get("schema") != SCHEMA_VERSION:
            raise ValueError(f"run schema {meta.get('schema')} is not {SCHEMA_VERSION}")
        blocks = tuple(Block.from_payload(m, arrays, f"block{i}") for i, m in enumerate(meta["blocks"]))
        outputs = {k[4:]: v for k, v in arrays.items() if k.startswith("out.")}
        return cls(
            model_name=meta["model_name"],
            model_fingerprint=meta["model_fingerprint"],
            architecture=meta["architecture"],
            text=meta["text"],
            text_pair=meta["text_pair"],
            source_tokens=tuple(Token(**t) for t in meta["source_tokens"]),
            target_tokens=tuple(Token(**t) for t in meta["target_tokens"]),
            blocks=blocks,
            truncations=tuple(Truncation(**t) for t in meta["truncations"]),
            head_mask=arrays.get("head_mask"),
            outputs=outputs,
        )

    def summary(self) -> dict:
        """Small JSON-able description for the page's dcc.Store (no attention arrays)."""
        return {
            "model": self.model_name,
            "architecture": self.architecture,
            "blocks": [{"name": b.name, "kind": b.kind, "layers": b.n_layers, "heads": b.n_heads,
                        "queries": b.n_queries, "keys": b.n_keys}
                       for b in self.blocks],
            "source_tokens": [t.label for t in self.source_tokens],
            "target_tokens": [t.label for t in self.target_tokens],
            "segments": [t.segment for t in self.source_tokens],
            "truncations": [asdict(t) for t in self.truncations],
        }
