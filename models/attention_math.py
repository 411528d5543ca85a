"""Eager attention math, as the model families' own eager paths compute it (torch only, no state).

Shapes: query [B, H, Tq, D]; key/value [B, Hkv, Tk, D] with H a multiple of Hkv (grouped-query
attention: key/value head j serves query heads j*H/Hkv ... (j+1)*H/Hkv - 1, as `repeat_kv` does);
scores and weights [B, H, Tq, Tk].

The order of operations follows the families' eager functions in transformers 5.x:

    scores  = (q @ k^T) * scaling                       # scaling: 1/sqrt(D) by default; T5 passes 1.0
    scores  = softcap * tanh(scores / softcap)          # Gemma-2 / Gemma-3 attention logit softcap
    scores += position_bias                             # T5-style additive relative position bias
    scores += attention_mask                            # additive float mask (or bool: False -> -inf)
    scores  = -inf where a sliding window excludes the key (only where the caller asks; eager masks
              already hold the window, so `interventions` passes it only when no mask is given)
    weights = softmax(scores)                           # in float32, then back to the query dtype
    weights = softmax([scores, sink])[..., :-1]         # GPT-OSS: a per-head sink logit joins the
                                                        #   softmax and is dropped afterwards

Dropout is the caller's business (the eager paths apply it only in training; the dashboard runs in
eval). Nothing here reads module attributes, so `models.interventions` and any code that recomputes
a head from stored queries/keys get the same numbers.
"""
from __future__ import annotations

import torch


def expand_kv(key: torch.Tensor, num_query_heads: int, kv_index: torch.Tensor | None = None) -> torch.Tensor:
    """[B, Hkv, T, D] -> [B, H, T, D]: repeat each key/value head for its query-head group.

    kv_index [H] (optional): the key/value head of each query head, for groups of unequal size
    (a physically pruned grouped-query layer, see models.pruning)."""
    if kv_index is not None:
        return key.index_select(1, kv_index.to(key.device))
    kv_heads = key.shape[1]
    if kv_heads == num_query_heads:
        return key
    if num_query_heads % kv_heads:
        raise ValueError(f"{num_query_heads} query heads are not a multiple of {kv_heads} key/value heads")
    return key.repeat_interleave(num_query_heads // kv_heads, dim=1)


def sliding_window_keep(q_len: int, k_len: int, window: int, *, device=None) -> torch.Tensor:
    """Bool [Tq, Tk], True where a key is inside the causal sliding window of a query.

    Queries are the last `q_len` positions of the `k_len` keys (a cache may hold earlier keys).
    A key at distance d = q_pos - k_pos is kept when d < window (transformers' sliding_window_overlay:
    kv_idx > q_idx - window). Future keys are left to the causal mask.
    """
    q_pos = torch.arange(k_len - q_len, k_len, device=device).view(-1, 1)
    k_pos = torch.arange(k_len, device=device).view(1, -1)
    return (q_pos - k_pos) < window


def scores(query: torch.Tensor, key: torch.Tensor, *, scaling: float | None = None,
           attention_mask: torch.Tensor | None = None, softcap: float | None = None,
           sliding_window: int | None = None, position_bias: torch.Tensor | None = None,
           kv_index: torch.Tensor | None = None) -> torch.Tensor:
    """Pre-softmax scores [B, H, Tq, Tk] in the query dtype (-inf or a large negative where masked).

    query [B, H, Tq, D]; key [B, Hkv, Tk, D]; attention_mask broadcastable to [B, 1|H, Tq, >=Tk]
    (float: added; bool: True = attend); position_bias broadcastable to [B|1, H, Tq, Tk].
    """
    if scaling is None:
        scaling = query.size(-1) ** -0.5
    key = expand_kv(key, query.shape[1], kv_index)
    out = torch.matmul(query, key.transpose(-1, -2))
    if not _in_place_ok(out):  # autograd (pruning importance runs backward through here): new tensors
        out = out * scaling
        if softcap is not None:
            out = torch.tanh(out / softcap) * softcap
        if position_bias is not None:
            out = out + position_bias[..., : out.shape[-1]]
        if attention_mask is not None:
            mask = attention_mask[..., : out.shape[-1]]
            out = out.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else out + mask
        if sliding_window is not None:
            keep = sliding_window_keep(out.shape[-2], out.shape[-1], int(sliding_window), device=out.device)
            out = out.masked_fill(~keep, float("-inf"))
        return out
    # no autograd: the same operations in place on the matmul's output (one [B, H, Tq, Tk] tensor
    # instead of one per step: a Llama-1B layer at 2,048 tokens holds 268 MB of bfloat16 scores)
    out.mul_(scaling)
    if softcap is not None:
        out.div_(softcap).tanh_().mul_(softcap)
    if position_bias is not None:
        bias = position_bias[..., : out.shape[-1]]
        out = out.add_(bias) if _same_result(out, bias) else out + bias
    if attention_mask is not None:
        mask = attention_mask[..., : out.shape[-1]]
        if mask.dtype == torch.bool:
            out.masked_fill_(~mask, float("-inf"))
        else:
            out = out.add_(mask) if _same_result(out, mask) else out + mask
    if sliding_window is not None:
        keep = sliding_window_keep(out.shape[-2], out.shape[-1], int(sliding_window), device=out.device)
        out.masked_fill_(~keep, float("-inf"))
    return out


def _in_place_ok(t: torch.Tensor) -> bool:
    """In-place steps are safe on a fresh tensor that autograd does not track."""
    return not (torch.is_grad_enabled() and t.requires_grad)


def _same_result(out: torch.Tensor, other: torch.Tensor) -> bool:
    """out + other has out's dtype and shape (so out.add_(other) computes the same tensor)."""
    return (torch.result_type(out, other) == out.dtype
            and torch.broadcast_shapes(out.shape, other.shape) == out.shape)


SOFTMAX_CHUNK = 1 << 22  # elements per float32 softmax temporary of a 16-bit model (16 MB)


def weights(scores: torch.Tensor, *, sinks: torch.Tensor | None = None) -> torch.Tensor:
    """Softmax over keys: [B, H, Tq, Tk] -> [B, H, Tq, Tk], computed in float32, returned in the
    scores dtype. `sinks` [H]: per-head sink logits that take part in the softmax (GPT-OSS) and are
    dropped after it, so a row may sum to less than 1."""
    if sinks is None:
        if scores.dtype == torch.float32 or not _in_place_ok(scores) or scores.numel() <= SOFTMAX_CHUNK:
            return torch.softmax(scores, dim=-1, dtype=torch.float32).to(scores.dtype)
        # 16-bit scores without autograd: the float32 softmax row block by row block, each rounded into
        # the output (the same numbers; never a float32 copy of the whole [B, H, Tq, Tk] tensor)
        out = torch.empty(scores.shape, dtype=scores.dtype, device=scores.device)
        flat, dest = scores.reshape(-1, scores.shape[-1]), out.view(-1, out.shape[-1])
        step = max(1, SOFTMAX_CHUNK // scores.shape[-1])
        for a in range(0, flat.shape[0], step):
            dest[a:a + step] = torch.softmax(flat[a:a + step], dim=-1, dtype=torch.float32)
        return out
    b, h, tq, _ = scores.shape
    sink = sinks.reshape(1, -1, 1, 1).to(scores.dtype).expand(b, h, tq, 1)
    combined = torch.cat([scores, sink], dim=-1).float()
    combined = combined - combined.max(dim=-1, keepdim=True).values
    return torch.softmax(combined, dim=-1)[..., :-1].to(scores.dtype)


def attend(weights: torch.Tensor, value: torch.Tensor, kv_index: torch.Tensor | None = None) -> torch.Tensor:
    """Head outputs [B, Tq, H, D] from weights [B, H, Tq, Tk] and value [B, Hkv, Tk, D]."""
    value = expand_kv(value, weights.shape[1], kv_index)
    return torch.matmul(weights, value).transpose(1, 2).contiguous()
