"""Our attention function, registered with transformers' AttentionInterface as "dashboard".

Every model is loaded with `attn_implementation="dashboard"`. The function computes exactly what
transformers' eager attention computes, and in addition, when the calling thread has opened one
of the context managers below:

* `capture()`      records each attention call: the pre-softmax scores
                   `[batch, heads, query, key]` (QK^T·scale + mask) and the weights;
* `head_gates(g)`  multiplies each head's output `[batch, query, heads, head_dim]` by a gate
                   before the output projection (0 prunes a head; a tensor with
                   `requires_grad` gives the head-importance gradient).

State lives in a ContextVar, so two requests running at once in two threads never see each
other's capture or mask, and the shared loaded model is never changed in place.

Which block and layer a call belongs to comes from `BlockIndex`, built once per model by walking
its attention modules (see `index_attention_modules`).
"""
from __future__ import annotations

import contextlib
import contextvars
import re
import weakref
from dataclasses import dataclass, field

import torch
from torch import nn
from transformers import AttentionInterface
from transformers.masking_utils import AttentionMaskInterface, eager_mask

from models import attention_math

IMPLEMENTATION = "dashboard"


@dataclass(frozen=True)
class BlockSlot:
    block: str  # "self" | "encoder" | "decoder" | "cross"
    kind: str  # "self" | "causal" | "cross"
    layer: int


@dataclass
class Capture:
    """Calls recorded in order: (slot, scores [B,H,Tq,Tk] float32, weights [B,H,Tq,Tk] float32)."""

    scores: bool = True
    calls: list = field(default_factory=list)


@dataclass
class _State:
    capture: Capture | None = None
    gates: dict | None = None  # block name -> tensor [layers, heads]


_STATE: contextvars.ContextVar[_State] = contextvars.ContextVar("attention_dashboard_state", default=_State())
# module -> slot; filled by index_attention_modules. Weakly keyed by the module itself, so an entry
# dies with its model and a later object that reuses the address never inherits it.
_SLOTS: "weakref.WeakKeyDictionary[nn.Module, BlockSlot]" = weakref.WeakKeyDictionary()


def _slot(module: nn.Module) -> BlockSlot | None:
    return _SLOTS.get(module)


def dashboard_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, *,
                        softcap=None, position_bias=None, s_aux=None, sliding_window=None, **kwargs):
    """Eager attention plus capture and per-head gates. query [batch, heads, Tq, head_dim];
    key/value [batch, kv_heads, Tk, head_dim]. The math is `models.attention_math` (scaling incl. 1.0,
    softcap, additive position bias, GPT-OSS sinks `s_aux` [heads], grouped-query expansion).
    `sliding_window` is accepted and not applied again: as in every family's eager path, the mask
    built by transformers' eager mask function already holds the window (a causal mask is never
    skipped; only a full bidirectional one may be None, where a causal window would be wrong).
    Dropout only in training (the dashboard runs models in eval)."""
    scores = attention_math.scores(
        query, key, scaling=scaling, attention_mask=attention_mask, softcap=softcap,
        position_bias=position_bias)
    weights = attention_math.weights(scores, sinks=s_aux)
    if module.training and dropout:
        weights = nn.functional.dropout(weights, p=dropout, training=True)
    output = attention_math.attend(weights.to(value.dtype), value)  # [batch, query, heads, head_dim]

    state = _STATE.get()
    if state.capture is not None or state.gates is not None:
        slot = _slot(module)
        if slot is not None:
            if state.capture is not None:
                state.capture.calls.append(
                    (slot, scores.detach() if state.capture.scores else None, weights.detach()))
            if state.gates is not None and slot.block in state.gates:
                gate = state.gates[slot.block][slot.layer].to(output.dtype)  # [heads]
                output = output * gate.view(1, 1, -1, 1)
    return output, weights


AttentionInterface.register(IMPLEMENTATION, dashboard_attention)
AttentionMaskInterface.register(IMPLEMENTATION, eager_mask)


@contextlib.contextmanager
def capture(scores: bool = True):
    """Record every attention call of forwards run inside the block (this thread/context only)."""
    cap = Capture(scores=scores)
    old = _STATE.get()
    token = _STATE.set(_State(capture=cap, gates=old.gates))
    try:
        yield cap
    finally:
        _STATE.reset(token)


@contextlib.contextmanager
def head_gates(gates: dict):
    """Multiply head outputs by `gates[block][layer, head]` (tensors [layers, heads]) inside the block."""
    old = _STATE.get()
    token = _STATE.set(_State(capture=old.capture, gates=dict(gates)))
    try:
        yield
    finally:
        _STATE.reset(token)


_CROSS_NAME = re.compile(r"(crossattention|encoder_attn|encdecattention|cross_attn)", re.I)


def index_attention_modules(model: nn.Module) -> dict[str, list[nn.Module]]:
    """Find the attention modules of `model`, name their blocks and register their slots.

    An attention module is one with `layer_idx` whose class name ends in "Attention" (BERT's
    BertSelfAttention / BertCrossAttention, GPT2Attention, BartAttention, T5Attention, ...).
    Returns {block name: modules in layer order}.
    """
    enc_dec = bool(getattr(model.config, "is_encoder_decoder", False))
    blocks: dict[str, list[nn.Module]] = {}
    kinds: dict[str, str] = {}
    for name, module in model.named_modules():
        cls = type(module).__name__
        if not (hasattr(module, "layer_idx") and cls.endswith("Attention")):
            continue
        cross = bool(getattr(module, "is_cross_attention", False)) or bool(_CROSS_NAME.search(name))
        causal = bool(getattr(module, "is_causal", False)) and not cross
        if cross:
            block, kind = "cross", "cross"
        elif enc_dec:
            block = "decoder" if re.search(r"(^|\.)decoder\.", name) else "encoder"
            kind = "causal" if block == "decoder" else "self"
        else:
            block, kind = "self", ("causal" if causal else "self")
        blocks.setdefault(block, []).append(module)
        kinds[block] = kind
    order = {"self": 0, "encoder": 0, "decoder": 1, "cross": 2}
    blocks = dict(sorted(blocks.items(), key=lambda kv: order[kv[0]]))
    for block, modules in blocks.items():
        for layer, module in enumerate(modules):
            _SLOTS[module] = BlockSlot(block, kinds[block], layer)
    return blocks


def block_kinds(model: nn.Module) -> dict[str, str]:
    """{block name: kind} for an indexed model, in display order."""
    out = {}
    for _, module in model.named_modules():
        slot = _slot(module)
        if slot is not None:
            out.setdefault(slot.block, slot.kind)
    order = {"self": 0, "encoder": 0, "decoder": 1, "cross": 2}
    return dict(sorted(out.items(), key=lambda kv: order[kv[0]]))
