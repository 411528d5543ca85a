"""Compact storage of one attention layer: what grows with T·d, not T².

A layer is stored as what its softmax saw, so any head's pre-softmax scores and weights can be
rebuilt on demand, at any temperature, for any rows:

    LayerStore.mode      "qk16" | "qk32" | "full"
    LayerStore.q         float16|float32 [heads, queries, head_dim]      queries after rotary
    LayerStore.k         float16|float32 [kv_heads, keys, head_dim]      keys after rotary, NOT
                         expanded for grouped-query attention (head h reads kv head h // group)
    LayerStore.scaling   the model's own factor on q·k (1/sqrt(d), 1.0 for T5, ...)
    LayerStore.softcap   Gemma-2 style logit soft-capping c: c·tanh(s / c), or None
    LayerStore.sinks     float32 [heads] GPT-OSS sink logits (an extra softmax column, dropped), or None
    LayerStore.mask      MaskSpec: which keys each query may see, described by flags
                         ("none", "causal", "window" + offset/window), or packed bits when no
                         flag describes it
    LayerStore.bias      BiasSpec: what the model adds to the scores besides the mask: None, a
                         relative-position vector per head [bias heads, queries + keys - 1]
                         (T5 relative bias, ALiBi: constant along each diagonal), or the full
                         block float32 [bias heads, queries, keys] when it is not compact
    mode "full":         LayerStore.full_weights float16 [heads, queries, keys] and
                         full_scores float16 [heads, queries, keys] (-inf where masked), used when
                         the compact form did not reproduce the model's weights; `reason` says why.

Rebuilt scores of head h, query i, key j:

    s = scaling · q[h, i] · k[h // group, j]
    s = softcap · tanh(s / softcap)            (when softcap)
    s = s + bias[h, i, j]                      (when bias)
    s = -inf where the mask hides key j from query i
    weights = softmax(s / T) over keys (plus the sink logit / T when sinks; its column dropped)

computed with the same functions the model's attention ran (models.attention_math).

`record(...)` builds a LayerStore from the tensors of one attention call and checks it: every
head is rebuilt and compared with the weights the model produced; float16 Q/K first, float32
next, full storage last (max abs difference <= TOLERANCE). `summarise(...)` reduces the model's
own weights to per-query summaries while the forward pass runs. Both work in head chunks so the
extra memory is bounded by CHUNK_ELEMENTS floats, not a whole layer.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import torch

from models import attention_math

log = logging.getLogger(__name__)

TOLERANCE = 1e-3  # max abs difference between rebuilt and model weights
TOP_K = 8  # top keys stored per query
CHUNK_ELEMENTS = 1 << 24  # floats per temporary [heads, rows, keys] chunk (64 MB float32)
CHECK_ELEMENTS = 1 << 21  # floats per chunk of the capture check (8 MB float32: its few buffers fit a 32 MB L3;
# few enough chunks that a busy machine's thread synchronisation per operation does not dominate)
_LN2 = math.log(2.0)
_MASKED = -1e30  # additive mask values at or below this hide a key


_HIDDEN: dict = {}  # the last flag mask built (see MaskSpec.hidden)


def _fold_scaling(dtype: torch.dtype) -> bool:
    """Fold the model's scaling into q before q·k (float32/64: differs from the model's own order by
    rounding only, ~1e-7); 16-bit models round q·k before scaling, so the rebuild does too."""
    return dtype in (torch.float32, torch.float64)


# ---- mask and bias descriptions ----------------------------------------------------------------
@dataclass(frozen=True)
class MaskSpec:
    """Which keys each query sees. kind "none" (all), "causal" (key j <= i + offset), "window"
    (causal and key j > i + offset - window), "bits" (packed bool [mask heads, queries, keys])."""

    kind: str
    n_queries: int
    n_keys: int
    offset: int = 0
    window: int = 0
    bits: np.ndarray | None = None  # uint8 packed [mask heads, queries, ceil(keys / 8)]

    def hidden(self, rows: np.ndarray | slice = slice(None)) -> torch.Tensor:
        """bool [rows, keys]: True where a key is hidden from a query (~allowed); the whole mask of a
        flag spec is built once per shape and reused (every layer of a block shares it)."""
        if self.kind in ("causal", "window") and isinstance(rows, slice) and rows == slice(None):
            key = (self.kind, self.n_queries, self.n_keys, self.offset, self.window)
            hit = _HIDDEN.get(key)
            if hit is None:
                hit = ~self.allowed(slice(None))
                _HIDDEN.clear()  # one shape at a time: a long text's mask is T x T bytes
                _HIDDEN[key] = hit
            return hit
        return ~self.allowed(rows)

    def allowed(self, rows: np.ndarray | slice, head: int = 0) -> torch.Tensor:
        """bool [rows, keys]: True where a query (of `rows`) may attend to a key."""
        i = torch.arange(self.n_queries)[rows].view(-1, 1)
        j = torch.arange(self.n_keys).view(1, -1)
        if self.kind == "none":
            return torch.ones(i.shape[0], self.n_keys, dtype=torch.bool)
        if self.kind == "causal":
            return j <= i + self.offset
        if self.kind == "window":
            return (j <= i + self.offset) & (j > i + self.offset - self.window)
        packed = self.bits[min(head, self.bits.shape[0] - 1)][rows]
        return torch.from_numpy(np.unpackbits(packed, axis=-1, count=self.n_keys).astype(bool))

    def allowed_count(self) -> np.ndarray:
        """int [queries]: how many keys each query may attend to (head 0 for per-head bits)."""
        n = np.zeros(self.n_queries, np.int64)
        step = max(1, CHUNK_ELEMENTS // max(1, self.n_keys))
        for a in range(0, self.n_queries, step):
            n[a:a + step] = self.allowed(slice(a, a + step)).sum(-1).numpy()
        return n

    def meta(self) -> dict:
        return {"kind": self.kind, "n_queries": self.n_queries, "n_keys": self.n_keys,
                "offset": self.offset, "window": self.window}


def describe_mask(allowed: torch.Tensor) -> MaskSpec:
    """MaskSpec of bool [mask heads, queries, keys] (True = visible)."""
    hm, tq, tk = allowed.shape
    if hm > 1 and bool((allowed == allowed[:1]).all()):
        allowed, hm = allowed[:1], 1
    if hm == 1:
        a = allowed[0]
        if bool(a.all()):
            return MaskSpec("none", tq, tk)
        offset = tk - tq
        spec = MaskSpec("causal", tq, tk, offset=offset)
        if bool((spec.allowed(slice(None)) == a).all()):
            return spec
        window = int(a[-1].sum())
        spec = MaskSpec("window", tq, tk, offset=offset, window=window)
        if window > 0 and bool((spec.allowed(slice(None)) == a).all()):
            return spec
    bits = np.packbits(allowed.numpy(), axis=-1)
    return MaskSpec("bits", tq, tk, bits=bits)


@dataclass(frozen=True)
class BiasSpec:
    """An additive score bias. kind "diagonal": float32 [bias heads, queries + keys - 1], the value
    of offset key - query + queries - 1; kind "full": float32 [bias heads, queries, keys]."""

    kind: str
    values: np.ndarray

    def rows(self, heads, rows, n_queries: int, n_keys: int) -> torch.Tensor:
        """float32 [heads or 1, rows, keys]."""
        v = torch.from_numpy(self.values)
        hsel = slice(None) if v.shape[0] == 1 else heads
        if self.kind == "full":
            return v[hsel][:, rows]
        i = torch.arange(n_queries)[rows].view(-1, 1)
        j = torch.arange(n_keys).view(1, -1)
        idx = (j - i + n_queries - 1)  # [rows, keys]
        return v[hsel][:, idx]


def describe_bias(bias: torch.Tensor, allowed: torch.Tensor) -> BiasSpec | None:
    """BiasSpec of float32 [bias heads, queries, keys] (values only matter where allowed)."""
    bias = torch.where(allowed, bias, torch.zeros((), dtype=bias.dtype))
    if not bool(bias.any()):
        return None
    hb, tq, tk = bias.shape
    if hb > 1 and bool((bias == bias[:1]).all()):
        bias, hb = bias[:1], 1
    # constant along diagonals (relative position): first column reversed, then the first row
    diag = torch.cat([bias[:, :, 0].flip(-1), bias[:, 0, 1:]], dim=-1)  # [hb, tq + tk - 1]
    spec = BiasSpec("diagonal", diag.float().contiguous().numpy())
    rebuilt = spec.rows(slice(None), slice(None), tq, tk)
    scale = float(bias.abs().max()) or 1.0
    if bool((torch.where(allowed, rebuilt - bias, torch.zeros(())).abs() <= 1e-5 * max(1.0, scale)).all()):
        return spec
    return BiasSpec("full", bias.float().contiguous().numpy())


# ---- the stored layer --------------------------------------------------------------------------
@dataclass(frozen=True)
class LayerStore:
    mode: str
    n_heads: int
    n_queries: int
    n_keys: int
    q: np.ndarray | None = None
    k: np.ndarray | None = None
    scaling: float = 1.0
    softcap: float | None = None
    sinks: np.ndarray | None = None
    mask: MaskSpec | None = None
    bias: BiasSpec | None = None
    full_weights: np.ndarray | None = None
    full_scores: np.ndarray | None = None
    reason: str | None = None
    compute_dtype: str = "float32"  # the model's attention dtype: rebuilt in it (bfloat16 models round alike)
    kv_index: np.ndarray | None = None  # int64 [heads]: kv head of each query head (physically pruned GQA)
    has_scores: bool = True  # False: weights only (the model's own output_attentions, fallback path)

    @property
    def nbytes(self) -> int:
        arrs = [self.q, self.k, self.sinks, self.full_weights, self.full_scores,
                None if self.bias is None else self.bias.values,
                None if self.mask is None else self.mask.bits]
        return sum(a.nbytes for a in arrs if a is not None)

    def _heads(self, heads) -> np.ndarray:
        return np.arange(self.n_heads)[heads].reshape(-1)

    def operands(self, hs: np.ndarray | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(q [heads, queries, d], k [heads, keys, d]) of query heads hs (all by default) in the
        compute dtype, ready for one batched matmul: q carries the model's scaling when the compute
        dtype is float32 (folded once: T·d work instead of T² per head); k holds each query head's
        kv head (grouped-query sharing, or kv_index on a physically pruned layer)."""
        dt = getattr(torch, self.compute_dtype)
        hs = np.arange(self.n_heads) if hs is None else np.asarray(hs).reshape(-1)
        every = len(hs) == self.n_heads and bool((hs == np.arange(self.n_heads)).all())
        q = torch.from_numpy(self.q if every else self.q[hs]).to(dt)
        if _fold_scaling(dt):
            q = q * self.scaling
        kv = hs // (self.n_heads // self.k.shape[0]) if self.kv_index is None else self.kv_index[hs]
        k = torch.from_numpy(self.k).to(dt)
        if len(kv) != k.shape[0] or (kv != np.arange(k.shape[0])).any():
            k = k.index_select(0, torch.from_numpy(np.asarray(kv, np.int64)))
        return q, k

    def raw_scores(self, q: torch.Tensor, k: torch.Tensor, hs: np.ndarray, rows, width: int) -> torch.Tensor:
        """Compute dtype [heads, rows, width]: the scores the softmax saw for keys [0, width), the mask
        NOT applied (see hidden). q [heads, rows, d] and k [heads, >= width, d] from operands(), already
        restricted to query heads hs and query rows `rows` (a slice or indices, for the bias).

        Same order of operations as models.attention_math.scores: q·k and the scaling (folded into q
        in float32; after the matmul in 16-bit dtypes, where the model rounds twice), softcap, bias."""
        s = torch.matmul(q, k[:, :width].transpose(-1, -2))
        if not _fold_scaling(s.dtype):
            s.mul_(self.scaling)
        if self.softcap is not None:
            s.div_(self.softcap).tanh_().mul_(self.softcap)
        if self.bias is not None:
            s.add_(self.bias.rows(hs, rows, self.n_queries, self.n_keys)[..., :width].to(s.dtype))
        return s

    def hidden(self, hs: np.ndarray, rows, width: int) -> torch.Tensor | None:
        """bool [1 | heads, rows, width]: True where the mask hides a key; None when nothing is hidden."""
        if self.mask is None or self.mask.kind == "none":
            return None
        if self.mask.kind == "bits" and self.mask.bits.shape[0] > 1:
            return ~torch.stack([self.mask.allowed(rows, int(h)) for h in hs])[..., :width]
        if self.mask.kind == "bits":
            return ~self.mask.allowed(rows)[None, :, :width]
        return self.mask.hidden()[rows, :width].unsqueeze(0)

    def scores(self, heads=slice(None), rows=slice(None)) -> torch.Tensor:
        """float32 [heads, rows, keys]: the pre-softmax scores the model's softmax saw, -inf where
        masked (sink logits not included)."""
        hs = self._heads(heads)
        if self.mode == "full":
            return torch.from_numpy(self.full_scores[hs][:, rows].astype(np.float32))
        if not isinstance(rows, slice):
            rows = np.arange(self.n_queries)[rows].reshape(-1)
        q, k = self.operands(hs)
        s = self.raw_scores(q[:, rows], k, hs, rows, self.n_keys)
        hidden = self.hidden(hs, rows, self.n_keys)
        if hidden is not None:  # as attention_math's bool mask, in place (one T x T temporary less)
            s.masked_fill_(hidden, float("-inf"))
        return s.float()

    def weights(self, heads=slice(None), rows=slice(None), temperature: float = 1.0) -> torch.Tensor:
        """float32 [heads, rows, keys]: softmax(scores / T) (with the sink column when the model
        has sinks). At T = 1 in "full" mode: the stored model weights."""
        hs = self._heads(heads)
        if self.mode == "full" and temperature == 1.0:
            return torch.from_numpy(self.full_weights[hs][:, rows].astype(np.float32))
        w = softmax(self.scores(heads, rows), temperature,
                    None if self.sinks is None else torch.from_numpy(self.sinks[hs]).float())
        if self.compute_dtype != "float32":  # the model rounds its weights to its dtype: so do we
            w = w.to(getattr(torch, self.compute_dtype)).float()
        return w

    # ---- serialisation ------------------------------------------------------------------------
    def to_payload(self, prefix: str) -> tuple[dict, dict[str, np.ndarray]]:
        meta = {"mode": self.mode, "n_heads": self.n_heads, "n_queries": self.n_queries,
                "n_keys": self.n_keys, "scaling": self.scaling, "softcap": self.softcap,
                "mask": None if self.mask is None else self.mask.meta(),
                "bias": None if self.bias is None else self.bias.kind, "reason": self.reason,
                "compute_dtype": self.compute_dtype, "has_scores": self.has_scores}
        arrays = {}
        for name in ("q", "k", "sinks", "full_weights", "full_scores", "kv_index"):
            a = getattr(self, name)
            if a is not None:
                arrays[f"{prefix}.{name}"] = a
        if self.mask is not None and self.mask.bits is not None:
            arrays[f"{prefix}.mask_bits"] = self.mask.bits
        if self.bias is not None:
            arrays[f"{prefix}.bias"] = self.bias.values
        return meta, arrays

    @classmethod
    def from_payload(cls, meta: dict, arrays: dict, prefix: str) -> "LayerStore":
        m = meta.get("mask")
        mask = None if m is None else MaskSpec(bits=arrays.get(f"{prefix}.mask_bits"), **m)
        bias = None if meta.get("bias") is None else BiasSpec(meta["bias"], arrays[f"{prefix}.bias"])
        return cls(mode=meta["mode"], n_heads=meta["n_heads"], n_queries=meta["n_queries"],
                   n_keys=meta["n_keys"], q=arrays.get(f"{prefix}.q"), k=arrays.get(f"{prefix}.k"),
                   scaling=float(meta["scaling"]), softcap=meta.get("softcap"),
                   sinks=arrays.get(f"{prefix}.sinks"), mask=mask, bias=bias,
                   full_weights=arrays.get(f"{prefix}.full_weights"),
                   full_scores=arrays.get(f"{prefix}.full_scores"), reason=meta.get("reason"),
                   compute_dtype=meta.get("compute_dtype", "float32"), kv_index=arrays.get(f"{prefix}.kv_index"),
                   has_scores=bool(meta.get("has_scores", True)))

    @classmethod
    def from_full(cls, weights: np.ndarray, scores: np.ndarray | None, reason: str) -> "LayerStore":
        """A layer stored in full: weights float16 [heads, queries, keys], scores float16 or None
        (then has_scores is False: log of the weights stands in, softmax(log w) = w)."""
        h, tq, tk = weights.shape
        has_scores = scores is not None
        if scores is None:  # no scores: log of the weights is a valid pre-softmax score
            with np.errstate(divide="ignore"):
                scores = np.log(weights.astype(np.float32)).astype(np.float16)
        return cls(mode="full", n_heads=h, n_queries=tq, n_keys=tk,
                   full_weights=np.asarray(weights, np.float16), full_scores=np.asarray(scores, np.float16),
                   reason=reason, has_scores=has_scores)


def softmax(scores: torch.Tensor, temperature: float = 1.0, sinks: torch.Tensor | None = None) -> torch.Tensor:
    """softmax(scores / T) over the last axis of float32 [heads, rows, keys], as the model's own
    softmax (models.attention_math.weights); sinks float32 [heads] add one logit per head (divided
    by T too) whose column is dropped."""
    if not math.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
    x = scores / temperature if temperature != 1.0 else scores
    sinks = None if sinks is None else (sinks / temperature if temperature != 1.0 else sinks)
    return attention_math.weights(x[None], sinks=sinks)[0]


# ---- per-query summaries of the model's own weights ---------------------------------------------
@dataclass
class LayerSummary:
    """Per-query summaries of one layer's weights (the model's own, T = 1).

    entropy  float32 [heads, queries]  row entropy in bits
    top_idx  int32   [heads, queries, k] the k most attended keys, largest first
    top_w    float32 [heads, queries, k] their weights
    metrics  {name: float32 [heads]} entropy, entropy_norm, max_weight, sink, diagonal, previous
    """

    entropy: np.ndarray
    top_idx: np.ndarray
    top_w: np.ndarray
    metrics: dict


def _head_chunk(n_rows: int, n_keys: int) -> int:
    return max(1, CHUNK_ELEMENTS // max(1, n_rows * n_keys))


def summarise(weights: torch.Tensor, allowed_count: np.ndarray) -> LayerSummary:
    """LayerSummary of float [heads, queries, keys] weights; allowed_count int [queries] (keys a
    query may attend to, for entropy_norm)."""
    h, tq, tk = weights.shape
    k = min(TOP_K, tk)
    ent = torch.empty(h, tq)
    mx = torch.empty(h, tq)
    sink = torch.empty(h, tq)
    top_i = torch.empty(h, tq, k, dtype=torch.int64)
    top_w = torch.empty(h, tq, k)
    step = _head_chunk(tq, tk)
    for a in range(0, h, step):
        w = weights[a:a + step].float()
        ent[a:a + step] = (torch.special.entr(w).sum(-1) / _LN2).clamp_min(0)  # -w ln w, 0 at 0
        sink[a:a + step] = w[..., 0]
        tv, ti = torch.topk(w, k, dim=-1, sorted=True)
        top_w[a:a + step], top_i[a:a + step] = tv, ti
        mx[a:a + step] = tv[..., 0]  # the row's max is its top key (no extra pass)
    square = tq == tk
    nan = np.full(h, np.nan, np.float32)
    diag = torch.diagonal(weights, dim1=-2, dim2=-1).float().mean(-1).numpy() if square else nan
    prev = (torch.diagonal(weights, offset=-1, dim1=-2, dim2=-1).float().mean(-1).numpy()
            if square and tq >= 2 else nan)
    h_max = np.log2(np.maximum(allowed_count, 1)).astype(np.float32)
    rows = h_max > 0
    e = ent.numpy()
    norm = (e[:, rows] / h_max[rows]).mean(-1) if rows.any() else np.zeros(h, np.float32)
    metrics = {"entropy": e.mean(-1), "entropy_norm": norm, "max_weight": mx.numpy().mean(-1),
               "sink": sink.numpy().mean(-1), "diagonal": diag, "previous": prev}
    metrics = {n: np.asarray(v, np.float32) for n, v in metrics.items()}
    idx_dtype = np.uint16 if tk <= 65535 else np.int32
    return LayerSummary(entropy=e.astype(np.float32), top_idx=top_i.numpy().astype(idx_dtype),
                        top_w=top_w.numpy().astype(np.float32), metrics=metrics)


# ---- capture: one attention call -> (LayerStore, LayerSummary) ------------------------------------
def _allowed_and_bias(mask, position_bias, n_heads, tq, tk):
    """(allowed bool [mask heads, tq, tk], bias float32 [bias heads, tq, tk] | None) from the
    attention call's mask [batch, 1|heads, tq, >=tk] (bool or additive) and position bias."""
    bias = None
    if mask is None:
        allowed = torch.ones(1, tq, tk, dtype=torch.bool)
    else:
        m = mask[0, :, :, :tk]
        if m.dtype == torch.bool:
            allowed = m
        else:
            m = m.float()
            allowed = m > _MASKED
            bias = torch.where(allowed, m, torch.zeros(()))
    if position_bias is not None:
        pb = position_bias[0, :, :, :tk].float()
        bias = pb if bias is None else bias + pb
    return allowed, bias


def _check_chunks(n_heads: int, tq: int, tk: int, causal: bool) -> tuple[int, int]:
    """(heads, rows) per chunk of the check: at most CHECK_ELEMENTS floats [heads, rows, keys], so a
    chunk's rebuilt scores, weights and differences stay in the CPU cache across their passes;
    causal layers take row blocks of at most 1/4 of the queries, each computed only up to its last
    visible key (about 62 % of the T² work)."""
    rows = max(1, min(tq, CHECK_ELEMENTS // max(1, tk)))
    if causal and tq >= 128:
        rows = min(rows, max(64, -(-tq // 4)))
    heads = max(1, min(n_heads, CHECK_ELEMENTS // max(1, rows * tk)))
    return heads, rows


class _Summaries:
    """Per-query summaries of one layer, filled chunk by chunk (LayerSummary when done).

    entropy float32 [heads, queries] bits; top_i int64 / top_w float32 [heads, queries, k]; sink
    float32 [heads, queries] (weight on key 0); diag / prev float32 [heads] sums of w[i, i] and
    w[i, i - 1] (square layers only)."""

    def __init__(self, h: int, tq: int, tk: int, allowed_count: np.ndarray):
        self.h, self.tq, self.tk, self.allowed_count = h, tq, tk, allowed_count
        self.k = min(TOP_K, tk)
        self.ent = torch.empty(h, tq)
        self.sink = torch.empty(h, tq)
        self.top_i = torch.empty(h, tq, self.k, dtype=torch.int64)
        self.top_w = torch.empty(h, tq, self.k)
        self.diag = torch.zeros(h)
        self.prev = torch.zeros(h)

    def add(self, w: torch.Tensor, h0: int, r0: int, s: torch.Tensor | None = None) -> None:
        """w float32 [heads, rows, width]: weights of heads h0.., query rows r0.., keys [0, width) (keys
        beyond width carry weight 0); s [heads, rows, width] the scores w is the softmax of (finite:
        masked keys at the dtype's minimum), or None (then the entropy is summed from w log w).

        With s the entropy needs no logarithm per key: w_j = exp(s_j - L) with L the row's log-sum-exp,
        so H = -sum w_j ln w_j = L - sum w_j s_j, and L = s_top - ln w_top from the row's top key."""
        c, r, width = w.shape
        hs, rs = slice(h0, h0 + c), slice(r0, r0 + r)
        tv, ti = torch.topk(w, self.k, dim=-1, sorted=True)
        self.top_w[hs, rs], self.top_i[hs, rs] = tv, ti
        if s is None:
            ent = torch.special.entr(w).sum(-1)  # -w ln w, 0 at 0
        else:
            lse = s.gather(-1, ti[..., :1]).squeeze(-1).float().sub_(tv[..., 0].log())
            ent = lse.sub_(torch.mul(w, s).sum(-1))
        self.ent[hs, rs] = ent.div_(_LN2).clamp_min_(0)
        self.sink[hs, rs] = w[..., 0]
        if self.tq == self.tk:
            self.diag[hs] += torch.diagonal(w, offset=r0, dim1=-2, dim2=-1).sum(-1)
            if self.tq >= 2:
                self.prev[hs] += torch.diagonal(w, offset=r0 - 1, dim1=-2, dim2=-1).sum(-1)

    def done(self) -> "LayerSummary":
        h, tq, tk = self.h, self.tq, self.tk
        nan = np.full(h, np.nan, np.float32)
        square = tq == tk
        diag = (self.diag / tq).numpy() if square else nan
        prev = (self.prev / (tq - 1)).numpy() if square and tq >= 2 else nan
        return _finish(self.ent, self.top_w, self.top_i, self.sink, diag, prev, self.allowed_count, tk)


def _finish(ent, top_w, top_i, sink, diag, prev, allowed_count, tk) -> "LayerSummary":
    h = ent.shape[0]
    h_max = np.log2(np.maximum(allowed_count, 1)).astype(np.float32)
    rows = h_max > 0
    e = ent.numpy()
    norm = (e[:, rows] / h_max[rows]).mean(-1) if rows.any() else np.zeros(h, np.float32)
    metrics = {"entropy": e.mean(-1), "entropy_norm": norm, "max_weight": top_w[..., 0].numpy().mean(-1),
               "sink": sink.numpy().mean(-1), "diagonal": diag, "previous": prev}
    metrics = {n: np.asarray(v, np.float32) for n, v in metrics.items()}
    idx_dtype = np.uint16 if tk <= 65535 else np.int32
    return LayerSummary(entropy=e.astype(np.float32), top_idx=top_i.numpy().astype(idx_dtype),
                        top_w=top_w.numpy().astype(np.float32), metrics=metrics)


def check_and_summarise(store: LayerStore, weights: torch.Tensor,
                        allowed_count: np.ndarray) -> tuple[float, "LayerSummary | None"]:
    """(max abs difference, summaries) of every head rebuilt from `store` against the model's own
    weights [heads, tq, tk] (its softmax output, in its dtype).

    Chunk by chunk ([heads, rows, keys], see _check_chunks): the rebuilt scores (one batched matmul
    over the chunk's heads, operands prepared once per layer), the softmax in float32 as the model
    computes it (rounded to the model's dtype for the comparison), then the per-query summaries of
    that same rebuilt chunk (entropy, top keys, sink, diagonals): what the views show is what was
    checked and summarised. Keys a causal chunk cannot see are not computed; the model's weights
    there must be 0 and are checked too. Stops at the first chunk over TOLERANCE (summaries None)."""
    h, tq, tk = weights.shape
    dt = getattr(torch, store.compute_dtype)
    q, k = store.operands()
    sinks = None if store.sinks is None else torch.from_numpy(store.sinks).float()
    causal = store.mask is not None and store.mask.kind in ("causal", "window")
    offset = store.mask.offset if causal else 0
    ch, cr = _check_chunks(h, tq, tk, causal)
    acc = _Summaries(h, tq, tk, allowed_count)
    worst = 0.0
    kmin = min(TOP_K, tk)
    for r0 in range(0, tq, cr):
        r1 = min(tq, r0 + cr)
        rows = slice(r0, r1)
        width = min(tk, max(r1 + offset, kmin)) if causal else tk
        hidden = store.hidden(None, rows, width) if store.mask is None or store.mask.kind != "bits" \
            or store.mask.bits.shape[0] == 1 else None
        for h0 in range(0, h, ch):
            h1 = min(h, h0 + ch)
            hs = slice(h0, h1)
            s = store.raw_scores(q[hs, rows], k[hs], np.arange(h0, h1), rows, width)
            hid = hidden if hidden is not None else store.hidden(np.arange(h0, h1), rows, width)
            if hid is not None:  # the dtype's minimum, not -inf: the same weights (exp underflows to 0
                s.masked_fill_(hid, torch.finfo(s.dtype).min)  # exactly) and w * s stays finite
            if sinks is None:
                w32 = torch.softmax(s, -1, dtype=torch.float32)
            else:
                w32 = attention_math.weights(s[None], sinks=sinks[hs])[0].float()
            model = weights[hs, rows]
            if dt == torch.float32:
                d = torch.sub(w32, model[..., :width])
            else:  # the model rounds its float32 softmax to its dtype: so does the rebuild
                d = torch.sub(w32.to(dt), model[..., :width])
            worst = _worse(worst, d, fresh=True)
            del d
            if width < tk:  # keys the chunk did not compute are hidden: the model's weight there is 0
                worst = _worse(worst, model[..., width:])  # (softmax weights: >= 0, so max = max |w|)
            if not math.isfinite(worst):
                return float("inf"), None
            if worst > TOLERANCE:
                return worst, None
            acc.add(w32, h0, r0, s if sinks is None else None)
    return worst, acc.done()


def _worse(worst: float, diff: torch.Tensor, fresh: bool = False) -> float:
    """max(worst, max |diff|); inf when diff holds NaN or inf (never a silent pass). fresh: diff is
    a temporary that may be overwritten (abs in place; else a copy is made)."""
    m = float((diff.abs_() if fresh else diff.abs()).amax())  # amax propagates NaN
    return m if not math.isfinite(m) else max(worst, m)


def _layer_context(memo: dict | None, mask, position_bias, h: int, tq: int, tk: int):
    """(MaskSpec, BiasSpec | None, allowed_count int [queries]) of an attention call's mask and
    position bias; every layer of a block passes the same tensors, so they are described once per
    forward (memo: a dict owned by the capture, keyed by the tensors' identity and kept alive)."""
    key = (None if mask is None else (mask.data_ptr(), tuple(mask.shape), mask.dtype),
           None if position_bias is None else (position_bias.data_ptr(), tuple(position_bias.shape)),
           tq, tk)
    if memo is not None and key in memo:
        return memo[key][0]
    allowed, bias = _allowed_and_bias(mask, position_bias, h, tq, tk)
    mask_spec = describe_mask(allowed)
    bias_spec = None if bias is None else describe_bias(bias, allowed)
    out = (mask_spec, bias_spec, mask_spec.allowed_count())
    if memo is not None:
        memo[key] = (out, mask, position_bias)  # the tensors stay alive: their addresses are not reused
    return out


def record(query: torch.Tensor, key: torch.Tensor, weights: torch.Tensor, *, scaling: float,
           mask=None, position_bias=None, softcap=None, sinks=None, scores: torch.Tensor | None = None,
           kv_index=None, where: str = "", check: bool = True,
           memo: dict | None = None, start: str = "qk16") -> tuple[LayerStore, LayerSummary]:
    """Reduce one attention call (batch 1) to a checked LayerStore and its LayerSummary.

    query [1, heads, tq, d]; key [1, kv heads, tk, d] (not expanded); weights [1, heads, tq, tk]
    the model's softmax output; mask/position_bias as passed to the attention function; scores
    [1, heads, tq, tk] the pre-softmax scores the model used (kept only if the compact form fails);
    memo: a dict shared by the calls of one forward (mask descriptions are computed once).
    start: the first storage to try ("qk16", or "qk32" for a layer whose float16 form did not
    reproduce last time: its check is not run twice on every capture).
    With `check`, the summaries are those of the checked rebuild (check_and_summarise); without
    it, or when the layer is stored in full, those of the model's own weights.
    """
    q, k, w = query[0].detach().cpu(), key[0].detach().cpu(), weights[0].detach().cpu()
    mask = None if mask is None else mask.detach().cpu()
    position_bias = None if position_bias is None else position_bias.detach().cpu()
    kv = None if kv_index is None else kv_index.detach().cpu().long().numpy().copy()
    h, tq, _ = q.shape
    tk = k.shape[1]
    mask_spec, bias_spec, allowed_count = _layer_context(memo, mask, position_bias, h, tq, tk)
    sink_arr = None if sinks is None else sinks.detach().float().cpu().reshape(-1).numpy().copy()
    reasons = []
    modes = ((torch.float16, "qk16"), (torch.float32, "qk32"))
    for dtype, mode in modes[1:] if start == "qk32" else modes:
        store = LayerStore(mode=mode, n_heads=h, n_queries=tq, n_keys=tk,
                           q=q.to(dtype).contiguous().numpy(), k=k.to(dtype).contiguous().numpy(),
                           scaling=float(scaling), softcap=float(softcap) if softcap else None,
                           sinks=sink_arr, mask=mask_spec, bias=bias_spec,
                           compute_dtype=str(q.dtype).replace("torch.", ""), kv_index=kv)
        if not check:
            return store, summarise(w, allowed_count)
        diff, summary = check_and_summarise(store, w, allowed_count)
        if summary is not None:
            return store, summary
        reasons.append(f"{mode} max abs diff {diff:.2e}")
    reason = "compact form does not reproduce the model's weights (" + "; ".join(reasons) + \
        f" > {TOLERANCE:g}); stored in full"
    log.warning("attention capture %s: %s", where, reason)
    full_scores = None if scores is None else scores[0].detach().cpu().half().numpy()
    return LayerStore.from_full(w.half().numpy(), full_scores, reason), summarise(w, allowed_count)
