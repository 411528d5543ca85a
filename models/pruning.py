"""Head pruning: masks, their effect on a run, and physically smaller models. No Dash here.

A head mask is float32 [layers, heads] over the main attention block: 1 keeps a head, 0 prunes
it (real values in between scale it). It is applied inside our attention function through
`interventions.head_gates` (each head's output [batch, query, head_dim] multiplied before the
output projection), so a pruned run is just

    attention.extract(loaded, text, head_mask=mask)
    service.get_run(RunRequest.create(model, text, head_mask=mask))   # cached under its own key

and the shared loaded model is never modified (state lives in a ContextVar: two requests with
different masks can run at once on the same model).

    mask_least_important(scores, k) / mask_entropy_above(entropy, x) / mask_from_heads(L, H, heads)
    output_change(base_run, pruned_run)     -> {"embedding_cosine" | "loss_base", "loss_pruned", ...}
    attention_change(base_run, pruned_run)  -> float32 [L,H] Jensen-Shannon divergence (bits)
    physically_prune(loaded, mask)          -> PrunedModel: a copy with smaller Q/K/V/O matrices
    param_count(model), measure_latency(fn, inputs, repeats), measure_latencies({name: fn}, inputs)

Importance, ablation and pruning curves live in `models.importance` and are re-exported here.
"""
from __future__ import annotations

import copy
import statistics
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from models import interventions
from models.importance import (  # noqa: F401  (re-exported: the pruning engine's public API)
    DEFAULT_ORDERS,
    DEFAULT_SHARES,
    METRIC_SIGN,
    Cancelled,
    CurveResult,
    EvalSet,
    ImportanceResult,
    ablation_scores,
    cached_ablation,
    cached_curve,
    cached_importance,
    default_metric,
    embed,
    gate_gradients,
    head_entropy,
    head_importance,
    load_pairs,
    loss_name,
    mask_from_order,
    metric_names,
    normalise_per_layer,
    pair_metrics,
    parse_pairs,
    prepare_eval,
    prune_order,
    pruning_curve,
    task_loss,
)

# ---- masks ------------------------------------------------------------------------------------


def full_mask(layers: int, heads: int) -> np.ndarray:
    """float32 [layers, heads] of ones: nothing pruned."""
    return np.ones((int(layers), int(heads)), dtype=np.float32)


def mask_least_important(scores, k: int) -> np.ndarray:
    """float32 [L,H] 0/1: the k heads with the lowest `scores` [L,H] pruned (ties: lower index first)."""
    s = np.asarray(scores, dtype=np.float32)
    if s.ndim != 2:
        raise ValueError(f"scores must be [layers, heads], got shape {s.shape}")
    k = max(0, min(int(k), s.size))
    return mask_from_order(prune_order(s), k, s.shape)


def mask_entropy_above(entropy, x: float) -> np.ndarray:
    """float32 [L,H] 0/1: heads whose mean entropy [L,H] (bits) is above x pruned (the diffuse ones)."""
    e = np.asarray(entropy, dtype=np.float32)
    if e.ndim != 2:
        raise ValueError(f"entropy must be [layers, heads], got shape {e.shape}")
    return np.where(e > float(x), 0.0, 1.0).astype(np.float32)


def mask_from_heads(layers: int, heads: int, pruned) -> np.ndarray:
    """float32 [layers, heads] 0/1 with the listed (layer, head) pairs pruned."""
    m = full_mask(layers, heads)
    for item in pruned or ():
        l, h = (int(v) for v in item)
        if not (0 <= l < layers and 0 <= h < heads):
            raise ValueError(f"head ({l}, {h}) is outside a {layers} x {heads} model")
        m[l, h] = 0.0
    return m


def pruned_heads(mask) -> list[tuple[int, int]]:
    """[(layer, head), ...] where the mask [L,H] is 0."""
    m = np.asarray(mask, dtype=np.float32)
    return [(int(l), int(h)) for l, h in zip(*np.nonzero(m == 0))]


# ---- a pruned run against its baseline ---------------------------------------------------------

def _same_input(base_run, pruned_run) -> None:
    if (base_run.text, base_run.text_pair) != (pruned_run.text, pruned_run.text_pair) or \
            base_run.model_fingerprint != pruned_run.model_fingerprint:
        raise ValueError("compare runs of the same model on the same text")


def output_change(base_run, pruned_run) -> dict:
    """How the model's outputs moved: plain floats.

    "embedding_cosine": cos(base embedding, pruned embedding) when both runs have "embedding";
    "loss_base", "loss_pruned", "loss_delta" (pruned - base) when both have "loss";
    "heads_pruned": number of zero entries in the pruned run's mask.
    """
    _same_input(base_run, pruned_run)
    out: dict = {"heads_pruned": 0 if pruned_run.head_mask is None
                 else int(np.sum(np.asarray(pruned_run.head_mask) == 0))}
    a, b = base_run.outputs.get("embedding"), pruned_run.outputs.get("embedding")
    if a is not None and b is not None:
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        denom = np.linalg.norm(a) * np.linalg.norm(b)
        out["embedding_cosine"] = float(a @ b / denom) if denom > 0 else 0.0
    la, lb = base_run.outputs.get("loss"), pruned_run.outputs.get("loss")
    if la is not None and lb is not None:
        out.update(loss_base=float(la), loss_pruned=float(lb), loss_delta=float(lb) - float(la))
    return out


def attention_change(base_run, pruned_run, block: str | None = None) -> np.ndarray:
    """float32 [L,H]: mean Jensen-Shannon divergence (bits, 0..1) between the two runs' attention
    rows, per head (models.metrics.head_js)."""
    from models import metrics

    _same_input(base_run, pruned_run)
    p, q = base_run.block(block), pruned_run.block(block)
    shape_p = (p.n_layers, p.n_heads, p.n_queries, p.n_keys)
    shape_q = (q.n_layers, q.n_heads, q.n_queries, q.n_keys)
    if shape_p != shape_q:
        raise ValueError(f"attention shapes differ: {shape_p} vs {shape_q}")
    # one layer of each run rebuilt at a time (memory: one layer's T x T, not the block's)
    return np.stack([metrics.head_js(p.layer_weights(i), q.layer_weights(i)) for i in range(p.n_layers)])


def compare(model: str, text: str, mask, text_pair: str | None = None, max_tokens: int | None = None) -> dict:
    """Baseline and pruned runs through the service (both cached) and what changed:
    {"base": AttentionRun, "pruned": AttentionRun, "output": output_change, "js": [L,H] float32}."""
    from models import service

    base = service.get_run(service.RunRequest.create(model, text, text_pair, max_tokens))
    pruned = service.get_run(service.RunRequest.create(model, text, text_pair, max_tokens, head_mask=mask))
    return {"base": base, "pruned": pruned, "output": output_change(base, pruned),
            "js": attention_change(base, pruned)}


# ---- physical pruning -------------------------------------------------------------------------

@dataclass
class PrunedModel:
    """A physically pruned copy of a loaded model (LoadedModel-like: .model, .tokenizer,
    .architecture, .head, .max_tokens, so attention.forward_inputs and importance.embed /
    pair_metrics work on it without gates).

    kept: per layer, the original indices of the heads still there. A layer whose heads were all
    pruned keeps one head whose value projection is zero (its output is exactly 0, as with the
    mask), so the module's shapes stay valid. The copy is invisible to `interventions`: no
    capture, no gates.
    """
    name: str
    model: nn.Module
    tokenizer: object
    architecture: str
    head: str
    mask: np.ndarray  # float32 [L,H] the mask this copy realises
    kept: tuple
    source_fingerprint: str = ""
    blocks: dict = field(default_factory=dict)
    fingerprint: str = ""

    @property
    def max_tokens(self) -> int:
        cfg = self.model.config
        for attr in ("max_position_embeddings", "n_positions"):
            v = getattr(cfg, attr, None)
            if isinstance(v, int) and v > 0:
                return min(v, 2048)
        return 512

    @property
    def n_params(self) -> int:
        return param_count(self.model)

    @property
    def heads_left(self) -> int:
        return int(np.sum(self.mask != 0))


def param_count(model: nn.Module) -> int:
    """Number of parameters (shared tensors counted once)."""
    seen, n = set(), 0
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            n += p.numel()
    return n


def _rows(linear: nn.Linear, idx: torch.Tensor, scale: torch.Tensor | None = None) -> nn.Linear:
    """A new Linear keeping output features `idx` (rows of weight [out, in]), optionally scaled."""
    w = linear.weight.detach()[idx].clone()
    b = None if linear.bias is None else linear.bias.detach()[idx].clone()
    if scale is not None:
        w = w * scale[:, None]
        b = None if b is None else b * scale
    new = nn.Linear(linear.in_features, len(idx), bias=b is not None, dtype=w.dtype, device=w.device)
    new.weight = nn.Parameter(w, requires_grad=False)
    if b is not None:
        new.bias = nn.Parameter(b, requires_grad=False)
    return new


def _cols(linear: nn.Linear, idx: torch.Tensor) -> nn.Linear:
    """A new Linear keeping input features `idx` (columns of weight [out, in])."""
    w = linear.weight.detach()[:, idx].clone()
    new = nn.Linear(len(idx), linear.out_features, bias=linear.bias is not None, dtype=w.dtype, device=w.device)
    new.weight = nn.Parameter(w, requires_grad=False)
    if linear.bias is not None:
        new.bias = nn.Parameter(linear.bias.detach().clone(), requires_grad=False)
    return new


def _head_index(keep: list[int], d: int) -> torch.Tensor:
    return torch.cat([torch.arange(h * d, (h + 1) * d) for h in keep])


def _prune_bert(att: nn.Module, parent: nn.Module, keep: list[int], gate: torch.Tensor) -> None:
    """BertSelfAttention (+ its BertAttention parent's output.dense): rows of query/key/value,
    columns of output.dense; gates other than 1 folded into the value rows."""
    d = att.attention_head_size
    idx = _head_index(keep, d)
    scale = gate[keep].repeat_interleave(d).to(att.value.weight.dtype)
    att.query = _rows(att.query, idx)
    att.key = _rows(att.key, idx)
    att.value = _rows(att.value, idx, None if bool(torch.all(scale == 1)) else scale)
    parent.output.dense = _cols(parent.output.dense, idx)
    att.num_attention_heads = len(keep)
    att.all_head_size = len(keep) * d


def _prune_gpt2(att: nn.Module, keep: list[int], gate: torch.Tensor) -> None:
    """GPT2Attention: Conv1D c_attn (weight [in, 3*E]: q | k | v columns) and c_proj (weight [E, out])."""
    from transformers.pytorch_utils import Conv1D

    d, E = att.head_dim, att.split_size
    idx = _head_index(keep, d)
    w, b = att.c_attn.weight.detach(), att.c_attn.bias.detach()
    cols = torch.cat([idx, E + idx, 2 * E + idx])
    nw, nb = w[:, cols].clone(), b[cols].clone()
    scale = gate[keep].repeat_interleave(d).to(nw.dtype)
    nw[:, 2 * len(idx):] *= scale[None, :]
    nb[2 * len(idx):] *= scale
    c_attn = Conv1D(3 * len(idx), w.shape[0]).to(dtype=w.dtype)
    c_attn.weight = nn.Parameter(nw, requires_grad=False)
    c_attn.bias = nn.Parameter(nb, requires_grad=False)
    pw = att.c_proj.weight.detach()
    c_proj = Conv1D(pw.shape[1], len(idx)).to(dtype=pw.dtype)
    c_proj.weight = nn.Parameter(pw[idx].clone(), requires_grad=False)
    c_proj.bias = nn.Parameter(att.c_proj.bias.detach().clone(), requires_grad=False)
    att.c_attn, att.c_proj = c_attn, c_proj
    att.num_heads = len(keep)
    att.split_size = len(idx)


_QKV_NAMES = (("q_proj", "k_proj", "v_proj"), ("q_lin", "k_lin", "v_lin"))  # Llama-style, DistilBERT
_O_NAMES = ("o_proj", "out_proj", "dense", "out_lin")


def _o_name(att) -> str | None:
    return next((n for n in _O_NAMES if isinstance(getattr(att, n, None), nn.Linear)), None)


def _qkv_names(att) -> tuple | None:
    return next((names for names in _QKV_NAMES
                 if all(isinstance(getattr(att, n, None), nn.Linear) for n in names)), None)


def _head_size(att) -> int | None:
    d = getattr(att, "head_dim", None)
    d = d if isinstance(d, int) else getattr(att, "attention_head_size", None)
    return d if isinstance(d, int) and d > 0 else None


def _llama_refusal(att) -> str | None:
    """Why a q_proj/k_proj/v_proj + output projection attention module cannot be pruned head by
    head (None: it can)."""
    names = _qkv_names(att)
    if names is None or _o_name(att) is None:
        return "no separate q_proj/k_proj/v_proj/o_proj linear layers"
    q, k = getattr(att, names[0]), getattr(att, names[1])
    d = _head_size(att)
    if d is None or q.out_features % d or k.out_features % d:
        return "head size unknown"
    for norm in ("q_norm", "k_norm"):
        w = getattr(getattr(att, norm, None), "weight", None)
        if w is not None and w.numel() != d:
            return f"{norm} normalises across all heads together (OLMo-2 style), so heads are not separable"
    o = getattr(att, _o_name(att))
    if q.in_features != o.out_features or o.in_features != q.out_features:
        return "projection sizes do not match"
    return None


def _gqa_plan(keep: list[int], heads: int, kv_heads: int) -> tuple[list[int], list[int]]:
    """(kv_keep, kv_new): the key/value heads still serving a kept query head (a KV head goes once
    all its query heads are gone), and for each kept query head the new index of its KV head."""
    group = heads // kv_heads
    kv_of = [h // group for h in keep]
    kv_keep = sorted(set(kv_of))
    return kv_keep, [kv_keep.index(k) for k in kv_of]


def _set_groups(att: nn.Module, kv_new: list[int], n_keep: int, n_kv: int) -> None:
    """Tell the module its new head counts; groups of unequal size get `interventions.KV_INDEX`."""
    counts = [kv_new.count(k) for k in range(n_kv)]
    if len(set(counts)) == 1:  # equal groups: plain grouped-query attention still describes it
        att.num_key_value_groups = counts[0]
        if hasattr(att, interventions.KV_INDEX):
            delattr(att, interventions.KV_INDEX)
    else:
        att.num_key_value_groups = 1
        setattr(att, interventions.KV_INDEX, torch.tensor(kv_new, dtype=torch.long))
    for attr, value in (("num_heads", n_keep), ("n_heads", n_keep), ("num_attention_heads", n_keep),
                        ("num_key_value_heads", n_kv)):
        if isinstance(getattr(att, attr, None), int):
            setattr(att, attr, value)


def _fold_output(att: nn.Module, o_name: str, keep: list[int], d: int, gate: torch.Tensor) -> None:
    """Keep the output projection's input columns of the kept heads, times their gates."""
    o = _cols(getattr(att, o_name), _head_index(keep, d))
    scale = gate[keep].repeat_interleave(d).to(o.weight.dtype)
    if not bool(torch.all(scale == 1)):
        o.weight = nn.Parameter(o.weight.detach() * scale[None, :], requires_grad=False)
    setattr(att, o_name, o)


def _prune_llama(att: nn.Module, keep: list[int], gate: torch.Tensor) -> None:
    """Llama-style attention with grouped-query attention (Llama, Mistral, Qwen2/3, Gemma 1-3,
    StableLM, GPT-OSS, OPT, Phi, BART, DistilBERT, ...): rows of q_proj for the kept query heads;
    rows of k_proj/v_proj for the key/value heads that still serve one; matching input columns of
    the output projection, times the kept heads' gates; GPT-OSS sinks follow their heads."""
    d = _head_size(att)
    qn, kn, vn = _qkv_names(att)
    heads, kv_heads = getattr(att, qn).out_features // d, getattr(att, kn).out_features // d
    kv_keep, kv_new = _gqa_plan(keep, heads, kv_heads)
    setattr(att, qn, _rows(getattr(att, qn), _head_index(keep, d)))
    setattr(att, kn, _rows(getattr(att, kn), _head_index(kv_keep, d)))
    setattr(att, vn, _rows(getattr(att, vn), _head_index(kv_keep, d)))
    _fold_output(att, _o_name(att), keep, d, gate)
    sinks = getattr(att, "sinks", None)
    if isinstance(sinks, torch.Tensor) and sinks.numel() == heads:
        att.sinks = nn.Parameter(sinks.detach()[keep].clone(), requires_grad=False)
    _set_groups(att, kv_new, len(keep), len(kv_keep))


def _prune_fused_qkv(att: nn.Module, keep: list[int], gate: torch.Tensor) -> None:
    """Phi-3 (qkv_proj rows: all queries | all keys | all values, grouped-query attention),
    ModernBERT (Wqkv, the same without groups) and GPT-NeoX (query_key_value rows: per head
    q | k | v). Phi-3 reads its head count from its config, so a pruned layer gets its own copy."""
    if isinstance(getattr(att, "qkv_proj", None), nn.Linear):  # Phi-3
        d, cfg = att.head_dim, att.config
        heads, kv_heads = cfg.num_attention_heads, att.num_key_value_heads
        kv_keep, kv_new = _gqa_plan(keep, heads, kv_heads)
        rows = torch.cat([_head_index(keep, d), heads * d + _head_index(kv_keep, d),
                          (heads + kv_heads) * d + _head_index(kv_keep, d)])
        att.qkv_proj = _rows(att.qkv_proj, rows)
        _fold_output(att, "o_proj", keep, d, gate)
        att.config = copy.copy(cfg)
        att.config.num_attention_heads = len(keep)
        _set_groups(att, kv_new, len(keep), len(kv_keep))
    elif isinstance(getattr(att, "Wqkv", None), nn.Linear):  # ModernBERT: rows [3, heads, head_dim]
        d = att.head_dim
        heads = att.Wqkv.out_features // (3 * d)
        idx = _head_index(keep, d)
        att.Wqkv = _rows(att.Wqkv, torch.cat([idx, heads * d + idx, 2 * heads * d + idx]))
        _fold_output(att, "Wo", keep, d, gate)
    else:  # GPT-NeoX
        d = att.head_size
        att.query_key_value = _rows(att.query_key_value, _head_index(keep, 3 * d))
        _fold_output(att, "dense", keep, d, gate)


def _fused_ok(att) -> bool:
    name = type(att).__name__
    return (name == "Phi3Attention" and isinstance(getattr(att, "qkv_proj", None), nn.Linear)) or \
        (name == "GPTNeoXAttention" and isinstance(getattr(att, "query_key_value", None), nn.Linear)) or \
        (name == "ModernBertAttention" and isinstance(getattr(att, "Wqkv", None), nn.Linear))


def _is_bert_like(att, parent) -> bool:
    return all(isinstance(getattr(att, n, None), nn.Linear) for n in ("query", "key", "value")) and \
        hasattr(att, "attention_head_size") and hasattr(att, "num_attention_heads") and \
        isinstance(getattr(getattr(parent, "output", None), "dense", None), nn.Linear)


def _is_gpt2_like(att) -> bool:
    return type(att).__name__ == "GPT2Attention" and not getattr(att, "is_cross_attention", False)


def physically_prune(loaded, mask, *, block: str | None = None) -> PrunedModel:
    """A deep copy of `loaded.model` with the pruned heads removed from the weights.

    mask float32 [L,H] over the main block: heads at 0 are removed (rows of Q/K/V and their
    biases, input columns of the output projection); kept heads with a gate other than 1 get it
    folded into their value projection (BERT, GPT-2) or their output-projection columns (the
    others: a grouped value head is shared), so the copy computes what the masked model computes
    (up to float summation order). Layers with every head pruned keep one zero head (see
    PrunedModel). Supports BERT-family encoders (BertSelfAttention-style query/key/value +
    output.dense: BERT, MiniLM, RoBERTa, ELECTRA, ...), GPT-2, separate q/k/v + output projections
    with grouped-query attention (Llama-style, see `_prune_llama`) and the fused Phi-3 /
    ModernBERT / GPT-NeoX layouts (`_prune_fused_qkv`); anything else raises
    NotImplementedError with the reason. On the fallback path the attention module of a layer is
    the parent of its gated output projection (GPT-Neo, GPT-J).
    `loaded` is not modified.
    """
    block = block or next(iter(loaded.blocks))
    L, H = loaded.shape(block)
    m = np.asarray(mask, dtype=np.float32)
    if m.shape != (L, H):
        raise ValueError(f"mask has shape {m.shape}, expected {(L, H)}")
    fallback = getattr(loaded, "path", None) == "fallback"  # slots sit on the output projections
    names = {}
    for name, module in loaded.model.named_modules():
        slot = interventions._slot(module)
        if slot is not None and slot.block == block:
            names[slot.layer] = name.rsplit(".", 1)[0] if fallback and "." in name else name
    if sorted(names) != list(range(L)):
        raise NotImplementedError(f"physical pruning is not available for model {loaded.name!r}: block {block!r} "
                                  f"does not have one attention module per layer (layers share weights)")
    model = copy.deepcopy(loaded.model)
    modules = dict(model.named_modules())  # a fresh copy: none of its modules is indexed yet
    kept = []
    for layer in range(L):
        name = names[layer]
        att = modules[name]
        parent = modules[name.rsplit(".", 1)[0]] if "." in name else model
        gate = torch.from_numpy(m[layer].copy())
        keep = [h for h in range(H) if m[layer, h] != 0]
        if not keep:
            keep = [0]  # one head, gate 0 folded into its value projection: output exactly 0
        if _is_bert_like(att, parent):
            _prune_bert(att, parent, keep, gate)
        elif _is_gpt2_like(att):
            _prune_gpt2(att, keep, gate)
        elif _llama_refusal(att) is None:
            _prune_llama(att, keep, gate)
        elif _fused_ok(att):
            _prune_fused_qkv(att, keep, gate)
        else:
            why = _llama_refusal(att) if hasattr(att, "q_proj") else "an attention layout it does not know"
            raise NotImplementedError(
                f"physical pruning supports BERT-family encoders, GPT-2, separate q/k/v and output "
                f"projections (Llama-style, grouped-query too) and the fused Phi-3 / ModernBERT / GPT-NeoX layouts; "
                f"{type(att).__name__} of model {loaded.name!r} has {why} "
                f"(use the head mask instead: it needs no surgery)")
        kept.append(tuple(h for h in keep if m[layer, h] != 0))
    model.eval()
    n_left = int(np.sum(m != 0))
    return PrunedModel(name=f"{loaded.name} (pruned: {n_left}/{L * H} heads)", model=model,
                       tokenizer=loaded.tokenizer, architecture=loaded.architecture, head=loaded.head,
                       mask=m, kept=tuple(kept), source_fingerprint=loaded.fingerprint)


def measure_latency(model_fn, inputs, repeats: int = 10, warmup: int = 1) -> float:
    """Median wall time in seconds of `model_fn(**inputs)` (or `model_fn(inputs)` for a non-dict),
    under torch.inference_mode, after `warmup` untimed calls."""
    def call():
        return model_fn(**inputs) if isinstance(inputs, dict) else model_fn(inputs)

    times = []
    with torch.inference_mode():
        for _ in range(max(0, int(warmup))):
            call()
        for _ in range(max(1, int(repeats))):
            t0 = time.perf_counter()
            call()
            times.append(time.perf_counter() - t0)
    return float(statistics.median(times))


def measure_latencies(model_fns: dict, inputs, repeats: int = 10, warmup: int = 1) -> dict:
    """{name: median seconds} for several models on the same inputs, timed interleaved (A, B, A,
    B, ...) so a busy machine slows them alike: fairer than two measure_latency calls in a row."""
    def call(fn):
        return fn(**inputs) if isinstance(inputs, dict) else fn(inputs)

    times = {k: [] for k in model_fns}
    with torch.inference_mode():
        for _ in range(max(0, int(warmup))):
            for fn in model_fns.values():
                call(fn)
        for _ in range(max(1, int(repeats))):
            for k, fn in model_fns.items():
                t0 = time.perf_counter()
                call(fn)
                times[k].append(time.perf_counter() - t0)
    return {k: float(statistics.median(v)) for k, v in times.items()}
