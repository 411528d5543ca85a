"""The result of one model run: tokens, attention blocks and their analysis.

An `AttentionRun` is immutable. Every array states its shape:

    block.weights  float16 [layers, heads, query, key]   softmax(QK^T/sqrt(d) + mask), rows sum to 1
    block.scores   float16 [layers, heads, query, key]   QK^T/sqrt(d) + mask (pre-softmax); -inf where masked

Blocks are named by where they sit in the model:

    encoder-only (BERT):     "self"                              kind "self"
    decoder-only (GPT-2):    "self"                              kind "causal"
    encoder-decoder (BART):  "encoder", "decoder", "cross"       kinds "self", "causal", "cross"

Queries and keys of a block come from a token side: "source" (the input text, and for a
sentence pair both texts) or "target" (the decoder input of an encoder-decoder model).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np

from models import metrics

SCHEMA_VERSION = 1

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


@dataclass(frozen=True)
class Block:
    """One attention block: all layers and heads of one kind of attention."""

    name: str
    kind: Kind
    query_side: Side
    key_side: Side
    weights: np.ndarray  # float16 [layers, heads, query, key]
    scores: np.ndarray | None = None  # float16 [layers, heads, query, key], -inf where masked

    @property
    def n_layers(self) -> int:
        return int(self.weights.shape[0])

    @property
    def n_heads(self) -> int:
        return int(self.weights.shape[1])

    @property
    def causal(self) -> bool:
        return self.kind == "causal"


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
        """float16 [layers, heads, query, key] of the main block."""
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
    def entropy(self, block: str | None = None) -> np.ndarray:
        """float32 [layers, heads]: mean row entropy in bits."""
        return self.head_metrics(block)["entropy"]

    def head_metrics(self, block: str | None = None) -> dict[str, np.ndarray]:
        """Per-head metrics of a block, each [layers, heads] (see models.metrics.head_metrics)."""
        b = self.block(block)
        return metrics.head_metrics(b.weights, causal=b.causal)

    def top_keys(self, layer: int, head: int, query: int, k: int = 5, block: str | None = None):
        """The k keys a query attends to most: list of (key index, weight, pre-softmax score|None)."""
        b = self.block(block)
        row = b.weights[layer, head, query].astype(np.float32)
        order = metrics.top_k(row, k)
        scores = None if b.scores is None else b.scores[layer, head, query].astype(np.float32)
        return [(int(i), float(row[i]), None if scores is None else float(scores[i])) for i in order]

    # ---- serialisation: JSON meta + named arrays (never pickle) ----------------------------
    def to_payload(self) -> tuple[dict, dict[str, np.ndarray]]:
        arrays: dict[str, np.ndarray] = {}
        blocks_meta = []
        for i, b in enumerate(self.blocks):
            arrays[f"block{i}.weights"] = b.weights
            if b.scores is not None:
                arrays[f"block{i}.scores"] = b.scores
            blocks_meta.append({"name": b.name, "kind": b.kind, "query_side": b.query_side,
                                "key_side": b.key_side, "has_scores": b.scores is not None})
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
        blocks = tuple(
            Block(name=m["name"], kind=m["kind"], query_side=m["query_side"], key_side=m["key_side"],
                  weights=arrays[f"block{i}.weights"],
                  scores=arrays[f"block{i}.scores"] if m["has_scores"] else None)
            for i, m in enumerate(meta["blocks"])
        )
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
                        "queries": int(b.weights.shape[2]), "keys": int(b.weights.shape[3])}
                       for b in self.blocks],
            "source_tokens": [t.label for t in self.source_tokens],
            "target_tokens": [t.label for t in self.target_tokens],
            "segments": [t.segment for t in self.source_tokens],
            "truncations": [asdict(t) for t in self.truncations],
        }


def dumps_meta(meta: dict) -> bytes:
    return json.dumps(meta, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
