"""Verify on load: the dashboard's capture against the model's own eager `output_attentions`.

    block_attentions(output, architecture) -> {block: tuple of per-layer weights [B, H, Tq, Tk]}
    compare(ours, reference, tolerance)    -> {block: BlockCheck}
    set_implementation(model, name)        -> sets `_attn_implementation` on the model's configs

Method: a short probe text (PROBE_TEXT, a pair for encoders) runs once through the dashboard's
attention function with capture, and once through the family's own eager attention with
`output_attentions=True` (the same weights, the same inputs). Per block the largest absolute
difference of any attention weight is reported; above TOLERANCE (1e-3, float32; 1e-2 for 16-bit
dtypes) the block is refused. A model whose eager path gives no attention weights for a block is
"unverified" for that block. Models whose attention bypasses our function are captured from
`output_attentions` itself ("fallback": the reference is the capture, so exact by construction,
but there are no pre-softmax scores).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

PROBE_TEXT = "The quick brown fox jumps over the lazy dog, and the dog did not notice."
PROBE_PAIR = "A second sentence checks segments."
TOLERANCE = 1e-3
TOLERANCE_16BIT = 1e-2

EXACT, FALLBACK, UNVERIFIED, REFUSED = "exact", "fallback", "unverified", "refused"


@dataclass(frozen=True)
class BlockCheck:
    block: str
    status: str  # "exact" | "fallback" | "unverified" | "refused"
    max_diff: float | None  # largest |ours - eager| over all layers, heads, rows, keys
    reason: str  # for the page and /healthz

    def to_dict(self) -> dict:
        return {"block": self.block, "status": self.status, "max_diff": self.max_diff, "reason": self.reason}


def tolerance(dtype: torch.dtype) -> float:
    return TOLERANCE_16BIT if dtype in (torch.float16, torch.bfloat16) else TOLERANCE


def set_implementation(model: torch.nn.Module, name: str) -> None:
    """Point the model and every sub-config at attention implementation `name`."""
    model.config._attn_implementation = name
    for sub in model.modules():
        cfg = getattr(sub, "config", None)
        if cfg is not None and hasattr(cfg, "_attn_implementation"):
            cfg._attn_implementation = name
    for key in getattr(model.config, "sub_configs", {}) or {}:
        sub = getattr(model.config, key, None)
        if sub is not None and hasattr(sub, "_attn_implementation"):
            sub._attn_implementation = name


def block_attentions(output, architecture: str) -> dict[str, tuple]:
    """The model's own per-layer attention weights by block ({} for blocks it did not return)."""
    if architecture == "encoder-decoder":
        pairs = {"encoder": "encoder_attentions", "decoder": "decoder_attentions", "cross": "cross_attentions"}
    else:
        pairs = {"self": "attentions"}
    out = {}
    for block, attr in pairs.items():
        value = getattr(output, attr, None)
        if value and all(isinstance(w, torch.Tensor) and w.dim() == 4 for w in value):
            out[block] = tuple(value)
    return out


def stack_calls(calls) -> dict[str, list]:
    """{block: [weights [B,H,Tq,Tk] per layer, in layer order]} from capture calls."""
    grouped: dict = {}
    for slot, _scores, weights in calls:
        grouped.setdefault(slot.block, {})[slot.layer] = weights
    return {b: [layers[i] for i in sorted(layers)] for b, layers in grouped.items()}


def compare(ours: dict, reference: dict, tol: float) -> dict[str, BlockCheck]:
    """Per block of `ours` ({block: [weights per layer]}): exact, refused (with the max difference)
    or unverified (no reference for it)."""
    checks = {}
    for block, layers in ours.items():
        ref = reference.get(block)
        if ref is None:
            checks[block] = BlockCheck(block, UNVERIFIED, None,
                                       "the model's eager path returns no attention weights for this block "
                                       "to check against")
            continue
        if len(ref) != len(layers):
            checks[block] = BlockCheck(block, REFUSED, None,
                                       f"the dashboard captured {len(layers)} layers, the model's own eager "
                                       f"attention has {len(ref)}")
            continue
        diff = 0.0
        for a, b in zip(layers, ref):
            b = b.detach().float().cpu()
            if tuple(a.shape) != tuple(b.shape):
                checks[block] = BlockCheck(block, REFUSED, None,
                                           f"captured weights {tuple(a.shape)} differ in shape from the "
                                           f"model's own {tuple(b.shape)}")
                break
            diff = max(diff, float((a.float() - b).abs().nan_to_num(nan=float("inf")).max()))
        else:
            if diff <= tol:
                checks[block] = BlockCheck(block, EXACT, diff, f"matches the model's own eager attention "
                                                               f"(max difference {diff:.1e})")
            else:
                checks[block] = BlockCheck(block, REFUSED, diff,
                                           f"the dashboard's attention differs from the model's own eager "
                                           f"attention by up to {diff:.3g} (more than {tol:g}); this block "
                                           f"is not shown rather than shown wrong")
    return checks
