"""Our attention function, registered with transformers' AttentionInterface as "dashboard".

Every model is loaded with `attn_implementation="dashboard"`. The function computes exactly what
the family's own eager attention computes (the math is `models.attention_math`: scaling incl.
T5's 1.0, Gemma-2 softcap, T5 position bias, GPT-OSS sinks, grouped-query attention), and in
addition, when the calling thread has opened one of the context managers below:

* `capture()`      records each attention call in compact form (models.compact): the queries
                   and keys the softmax saw `[heads, T, head_dim]`, the mask as flags, any
                   additive bias, and per-query summaries of the weights, checked against the
                   model's own weights (full storage as the fallback);
* `head_gates(g)`  multiplies each head's output `[batch, query, heads, head_dim]` by a gate
                   before the output projection (0 prunes a head; a tensor with
                   `requires_grad` gives the head-importance gradient).

State lives in a ContextVar, so two requests running at once in two threads never see each
other's capture or mask, and the shared loaded model is never changed in place.

Which block and layer a call belongs to comes from slots registered once per model
(`index_attention_modules`: modules with `layer_idx`, by name; `assign_slots`: by call order for
modules without one, e.g. DistilBERT, or one module shared by every layer, ALBERT). Models whose
attention modules bypass this function (DeBERTa-v2, MPNet, GPT-Neo, Falcon, BLOOM, ...) use the
fallback at the end of this module: weights from their eager `output_attentions`
(`record_attentions`), gates as a forward pre-hook on the output projection's input
(`install_output_gates`). `models.loader.select_path` decides which applies.
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

from models import attention_math, compact

IMPLEMENTATION = "dashboard"
# Attribute of a physically pruned grouped-query attention module: long tensor [heads], the
# key/value head each remaining query head reads (groups may be of unequal size after pruning).
KV_INDEX = "dashboard_kv_index"


@dataclass(frozen=True)
class BlockSlot:
    block: str  # "self" | "encoder" | "decoder" | "cross"
    kind: str  # "self" | "causal" | "cross"
    layer: int


@dataclass
class Capture:
    """Calls recorded in order.

    compact (extract): each call reduced while the forward pass runs (models.compact), recorded as
      (slot, LayerStore, LayerSummary); only one layer's T x T is alive at a time. check: every
      head rebuilt from the compact form and compared with the model's weights; a layer that does
      not reproduce is stored in full.
    not compact (verification on load, tiny probes): (slot, scores [B,H,Tq,Tk] float32 | None,
      weights [B,H,Tq,Tk] float32) on the CPU.
    """

    scores: bool = True
    compact: bool = False
    check: bool = True
    calls: list = field(default_factory=list)
    memo: dict = field(default_factory=dict)  # mask/bias descriptions shared by a forward's layers
    model: object = None  # the model captured (remembers which layers need float32 Q/K)


@dataclass
class _State:
    capture: Capture | None = None
    gates: dict | None = None  # block name -> tensor [layers, heads]


_STATE: contextvars.ContextVar[_State] = contextvars.ContextVar("attention_dashboard_state", default=_State())
# module -> its slots, one per call within one forward (more than one only for a module that a
# model calls once per layer, e.g. ALBERT's shared layer). Filled by index_attention_modules /
# assign_slots / install_output_gates. Weakly keyed by the module itself, so an entry dies with its
# model and a later object that reuses the address never inherits it.
_SLOTS: "weakref.WeakKeyDictionary[nn.Module, tuple[BlockSlot, ...]]" = weakref.WeakKeyDictionary()
# Calls seen so far in the current forward, per shared module; a fresh dict per top-level forward
# (see `track_forwards`), so two threads never share one.
_COUNTS: contextvars.ContextVar[dict | None] = contextvars.ContextVar("attention_dashboard_counts", default=None)
# While set (see `discover_callers`), every module that calls the attention function is appended.
_CALLERS: contextvars.ContextVar[list | None] = contextvars.ContextVar("attention_dashboard_callers", default=None)


def _slot(module: nn.Module) -> BlockSlot | None:
    """The module's first slot (its layer, for every module that is not shared across layers)."""
    slots = _SLOTS.get(module)
    return slots[0] if slots else None


def _call_slot(module: nn.Module) -> BlockSlot | None:
    """The slot of this call of `module`: its only slot, or for a shared module the next in order."""
    slots = _SLOTS.get(module)
    if not slots:
        return None
    if len(slots) == 1:
        return slots[0]
    counts = _COUNTS.get()
    if counts is None:  # no top-level hook (a bare sub-module call): the first use
        return slots[0]
    i = counts.get(id(module), 0)
    counts[id(module)] = i + 1
    return slots[i % len(slots)]


def _gate(slot: BlockSlot | None, heads_out: torch.Tensor) -> torch.Tensor:
    """heads_out [batch, query, heads, head_dim] times this thread's gates for the slot's layer."""
    gates = _STATE.get().gates
    if slot is None or gates is None or slot.block not in gates:
        return heads_out
    gate = gates[slot.block][slot.layer].to(device=heads_out.device, dtype=heads_out.dtype)  # [heads]
    return heads_out * gate.view(1, 1, -1, 1)


def dashboard_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, *,
                        softcap=None, position_bias=None, s_aux=None, sliding_window=None, **kwargs):
    """Eager attention plus capture and per-head gates. query [batch, heads, Tq, head_dim];
    key/value [batch, kv_heads, Tk, head_dim]. The math is `models.attention_math` (scaling incl. 1.0,
    softcap, additive position bias, GPT-OSS sinks `s_aux` [heads], grouped-query expansion).
    `sliding_window` is accepted and not applied again: as in every family's eager path, the mask
    built by transformers' eager mask function already holds the window (a causal mask is never
    skipped; only a full bidirectional one may be None, where a causal window would be wrong).
    Dropout only in training (the dashboard runs models in eval)."""
    kv_index = getattr(module, KV_INDEX, None)  # [heads]: set on physically pruned GQA layers only
    scores = attention_math.scores(
        query, key, scaling=scaling, attention_mask=attention_mask, softcap=softcap,
        position_bias=position_bias, kv_index=kv_index)
    weights = attention_math.weights(scores, sinks=s_aux)
    if module.training and dropout:
        weights = nn.functional.dropout(weights, p=dropout, training=True)
    output = attention_math.attend(weights.to(value.dtype), value, kv_index)  # [batch, query, heads, head_dim]

    callers = _CALLERS.get()
    if callers is not None:
        callers.append(module)
    state = _STATE.get()
    if state.capture is not None or state.gates is not None:
        slot = _call_slot(module)
        if slot is not None:
            if state.capture is not None:
                if state.capture.compact:  # reduced to its compact form now: one layer's T x T alive
                    _record(state.capture, slot, query, key, scores, weights,
                            scaling=query.size(-1) ** -0.5 if scaling is None else scaling, mask=attention_mask,
                            position_bias=position_bias, softcap=softcap, sinks=s_aux, kv_index=kv_index)
                else:  # full weights (verification on load): moved to the CPU layer by layer
                    state.capture.calls.append(
                        (slot, scores.detach().cpu() if state.capture.scores else None, weights.detach().cpu()))
            output = _gate(slot, output)
    return output, weights


def _record(cap: Capture, slot: BlockSlot, query, key, scores, weights, *, scaling, mask=None,
            position_bias=None, softcap=None, sinks=None, kv_index=None) -> None:
    """Reduce one call to its compact form (what the softmax saw) plus summaries; see models.compact.
    query [B,H,Tq,d], key [B,Hkv,Tk,d] (not expanded), scores/weights [B,H,Tq,Tk]; kv_index [H]
    the kv head of each query head on a physically pruned layer (else h // group)."""
    module_key = (slot.block, slot.layer)
    start = _FIRST_MODE.get(cap.model, {}).get(module_key, "qk16") if cap.model is not None else "qk16"
    store, summary = compact.record(
        query, key, weights, scaling=scaling, mask=mask, position_bias=position_bias, softcap=softcap,
        sinks=sinks, scores=scores, kv_index=kv_index, where=f"{slot.block} layer {slot.layer}",
        check=cap.check, memo=cap.memo, start=start)
    if cap.model is not None and store.mode in ("qk16", "qk32"):
        try:
            _FIRST_MODE.setdefault(cap.model, {})[module_key] = store.mode
        except TypeError:  # not weak-referenceable: no memory of the mode
            pass
    cap.calls.append((slot, store, summary))


# model -> {(block, layer): the compact mode that reproduced last time}: a layer whose float16 form
# failed the check starts at float32 next time (the check still runs on every capture, once).
_FIRST_MODE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


AttentionInterface.register(IMPLEMENTATION, dashboard_attention)
AttentionMaskInterface.register(IMPLEMENTATION, eager_mask)


@contextlib.contextmanager
def capture(scores: bool = True, *, compact: bool = False, check: bool = True, model=None):
    """Record every attention call of forwards run inside the block (this thread/context only);
    see Capture for the two forms."""
    cap = Capture(scores=scores, compact=compact, check=check, model=model)
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
            _SLOTS[module] = (BlockSlot(block, kinds[block], layer),)
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


# ---- modules that call the attention function without `layer_idx` (DistilBERT, ALBERT, ...) ----

@contextlib.contextmanager
def discover_callers():
    """Collect, in call order, every module that calls the attention function inside the block."""
    callers: list = []
    token = _CALLERS.set(callers)
    try:
        yield callers
    finally:
        _CALLERS.reset(token)


def _fresh_counts(_module, _args):
    _COUNTS.set({})


def track_forwards(model: nn.Module) -> None:
    """Start a fresh per-forward call count at each top-level forward (needed by shared modules)."""
    if not getattr(model, "_attention_dashboard_tracked", False):
        model.register_forward_pre_hook(_fresh_counts)
        model._attention_dashboard_tracked = True


def assign_slots(modules_in_call_order: list, block: str, kind: str) -> dict[str, list[nn.Module]]:
    """Slots from one forward's call order: call i is layer i of `block`. A module called several
    times (shared across layers) gets one slot per call. Returns {block: modules in call order}."""
    per_module: dict = {}
    for layer, module in enumerate(modules_in_call_order):
        per_module.setdefault(module, []).append(BlockSlot(block, kind, layer))
    for module, slots in per_module.items():
        _SLOTS[module] = tuple(slots)
    return {block: list(modules_in_call_order)}


# ---- fallback: modules that bypass AttentionInterface (DeBERTa-v2, MPNet, GPT-Neo, Falcon, BLOOM) ----
#
# Capture reads the model's own eager `output_attentions` (weights only: no pre-softmax scores);
# per-head gates multiply the output projection's input [batch, T, heads * head_dim], which is the
# heads' outputs side by side in head order, before the projection mixes them.

OUTPUT_PROJECTIONS = ("o_proj", "out_proj", "out_lin", "dense", "o", "Wo", "c_proj", "output.dense")


def _child(module: nn.Module, path: str):
    for part in path.split("."):
        module = getattr(module, part, None)
        if module is None:
            return None
    return module


def output_projection(module: nn.Module) -> nn.Module | None:
    """The linear layer an attention module applies to its heads' concatenated outputs, or None."""
    for path in OUTPUT_PROJECTIONS:
        proj = _child(module, path)
        if isinstance(proj, nn.Module) and hasattr(proj, "weight") and getattr(proj.weight, "dim", lambda: 0)() == 2:
            return proj
    return None


def output_projections(model: nn.Module) -> list[nn.Module]:
    """Candidate output projections: of each innermost module whose class name holds "Attention"."""
    found = []
    for _, module in model.named_modules():
        if "Attention" in type(module).__name__ and (proj := output_projection(module)) is not None:
            found.append((module, proj))
    inner = [(m, p) for m, p in found
             if not any(o is not m and any(sub is o for sub in m.modules()) for o, _ in found)]
    return [p for _, p in inner]


@contextlib.contextmanager
def discover_projection_calls(projections: list[nn.Module]):
    """Record the projections in call order while the block runs (temporary forward pre-hooks)."""
    order: list = []
    handles = [p.register_forward_pre_hook(lambda mod, args: order.append(mod)) for p in projections]
    try:
        yield order
    finally:
        for h in handles:
            h.remove()


def _gate_projection_input(module, args):
    gates = _STATE.get().gates
    if gates is None:
        return None
    slot = _call_slot(module)
    if slot is None or slot.block not in gates:
        return None
    x = args[0]  # [batch, T, heads * head_dim]
    heads = gates[slot.block].shape[-1]
    gated = _gate(slot, x.view(*x.shape[:-1], heads, x.shape[-1] // heads)).reshape(x.shape)
    return (gated,) + tuple(args[1:])


def install_output_gates(model: nn.Module, projections_in_call_order: list, block: str, kind: str) -> None:
    """Per-head gates for a model whose attention bypasses our function: slot the projections by
    call order and gate their input (see `head_gates`)."""
    assign_slots(projections_in_call_order, block, kind)
    track_forwards(model)
    for proj in set(projections_in_call_order):
        if not getattr(proj, "_attention_dashboard_gated", False):
            proj.register_forward_pre_hook(_gate_projection_input)
            proj._attention_dashboard_gated = True


def record_attentions(cap: Capture | None, blocks: dict, attentions: dict) -> None:
    """Append the model's own eager attention weights to a capture, as calls without scores.

    blocks {block: kind}; attentions {block: tuple of per-layer weights [batch, heads, Tq, Tk]}
    (e.g. `output.attentions` of a forward with output_attentions=True)."""
    if cap is None:
        return
    for block, kind in blocks.items():
        for layer, w in enumerate(attentions.get(block) or ()):
            cap.calls.append((BlockSlot(block, kind, layer), None, w.detach().float().cpu()))


def forget(modules) -> None:
    """Drop the slots of `modules` (attention modules found by name that never call our function)."""
    for module in modules:
        _SLOTS.pop(module, None)
