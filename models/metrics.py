"""Attention metrics: pure numpy functions over attention weights (no torch, no Dash).

Shapes. `weights` is `[..., query, key]`: usually `[layers, heads, query, key]` for a whole
block, or `[query, key]` for one head. Every row (fixed query) is a probability distribution
over keys and sums to 1. For causal attention the upper triangle (key > query) is 0.
Inputs may be float16; everything is computed in float32 and arrays come back as float32
(index arrays as integers, roles as strings). A metric over `[..., query, key]` returns `[...]`,
so `[layers, heads]` for a block and a 0-d array for one head.

Units. Entropies and Jensen-Shannon divergences are in bits (log base 2); 0 * log 0 = 0.
Weights and masses are fractions of a row's attention (0..1).

Per-head metrics (`head_metrics`), each the mean over query rows:

    entropy       row entropy in bits, over all rows
    entropy_norm  row entropy / the most the row could have, log2(number of keys the row may
                  attend to): all keys, or for causal attention keys 0..query (query + 1 of them).
                  Rows that may attend to a single key (row 0 of a causal head, every row of a
                  one-key block) have maximum 0 and say nothing about spread: they are left out
                  of the mean. If no row is left, entropy_norm is 0.
    max_weight    the row's largest weight
    sink          weight on key 0 (the first token): the "attention sink" mass
    diagonal      weight on key == query (self mass), over all rows; NaN unless query == key count
    previous      weight on key == query - 1, over rows 1..T-1; NaN unless square with T >= 2
    role          a label from `head_roles`

Head roles (`head_roles`): the first rule that holds wins, in this order (= `ROLE_THRESHOLDS`
order, then "mixed"):

    "previous-token"  previous     >= 0.5   attends to the token just before
    "self"            diagonal     >= 0.5   attends to itself
    "sink"            sink         >= 0.5   parks attention on the first token (broadcast / no-op)
    "diffuse"         entropy_norm >= 0.8   spreads attention nearly uniformly
    "mixed"           none of the above

Positional patterns come first because they are the most specific; a previous-token head on a
short text also puts much weight on key 0 (rows 0 and 1 both attend key 0). NaN metrics (cross
attention has no diagonal) never satisfy a rule. Roles are heuristics: on very short texts
(a few tokens) a uniform causal head also has high sink/diagonal mass and is labelled so.
"""
from __future__ import annotations

import numpy as np

ROLES: tuple[str, ...] = ("previous-token", "self", "sink", "diffuse", "mixed")

# role -> minimum value of its metric (see _ROLE_METRIC); checked in this order.
ROLE_THRESHOLDS: dict[str, float] = {
    "previous-token": 0.5,
    "self": 0.5,
    "sink": 0.5,
    "diffuse": 0.8,
}

_ROLE_METRIC: dict[str, str] = {
    "previous-token": "previous",
    "self": "diagonal",
    "sink": "sink",
    "diffuse": "entropy_norm",
}


def _f32(w) -> np.ndarray:
    w = np.asarray(w, dtype=np.float32)
    if w.ndim < 2:
        raise ValueError(f"expected attention [..., query, key], got shape {w.shape}")
    return w


def _xlog2x(x: np.ndarray) -> np.ndarray:
    """x * log2(x) elementwise with 0 * log2(0) = 0."""
    safe = np.where(x > 0, x, 1.0).astype(np.float32)
    return x * np.log2(safe)


def row_entropy(w) -> np.ndarray:
    """Shannon entropy of each row, in bits.

    w: [..., query, key] rows of probabilities. Returns float32 [..., query].
    """
    w = _f32(w)
    return np.maximum(-_xlog2x(w).sum(axis=-1), 0.0).astype(np.float32)


def _allowed_keys(n_query: int, n_key: int, causal: bool) -> np.ndarray:
    """int [query]: how many keys each query row may attend to."""
    if not causal:
        return np.full(n_query, n_key)
    # Causal: query i sees keys 0..i; with more keys than queries (a cache of earlier tokens)
    # queries are aligned to the last keys, as in HF models.
    return np.clip(np.arange(n_query) + 1 + (n_key - n_query), 1, n_key)


def head_metrics(weights, causal: bool = False) -> dict[str, np.ndarray]:
    """Per-head summary metrics of an attention block (definitions in the module docstring).

    weights: [..., query, key], normally [layers, heads, query, key]; may be float16.
    causal:  the block is causal (query i attends keys 0..i), which sets entropy_norm's maximum.
    Returns a dict of arrays shaped [...] ([layers, heads]): float32 "entropy", "entropy_norm",
    "max_weight", "sink", "diagonal", "previous", and str "role".
    """
    w = _f32(weights)
    n_query, n_key = w.shape[-2:]
    lead = w.shape[:-2]

    h = row_entropy(w)  # [..., query]
    h_max = np.log2(_allowed_keys(n_query, n_key, causal)).astype(np.float32)  # [query]
    rows = h_max > 0
    if rows.any():
        entropy_norm = (h[..., rows] / h_max[rows]).mean(axis=-1)
    else:
        entropy_norm = np.zeros(lead, np.float32)

    nan = np.full(lead, np.nan, np.float32)
    square = n_query == n_key
    diagonal = np.diagonal(w, axis1=-2, axis2=-1).mean(axis=-1) if square else nan
    previous = np.diagonal(w, offset=-1, axis1=-2, axis2=-1).mean(axis=-1) if square and n_query >= 2 else nan

    out = {
        "entropy": h.mean(axis=-1),
        "entropy_norm": entropy_norm,
        "max_weight": w.max(axis=-1).mean(axis=-1),
        "sink": w[..., 0].mean(axis=-1),
        "diagonal": diagonal,
        "previous": previous,
    }
    out = {k: np.asarray(v, dtype=np.float32) for k, v in out.items()}
    out["role"] = head_roles(out)
    return out


def head_roles(metrics: dict) -> np.ndarray:
    """Role label per head from `head_metrics` output (rules and precedence in module docstring).

    metrics: dict with "previous", "diagonal", "sink", "entropy_norm", each [layers, heads].
    Returns a str array [layers, heads] with values from ROLES.
    """
    shape = np.shape(metrics["entropy_norm"])
    roles = np.full(shape, "mixed", dtype=f"<U{max(map(len, ROLES))}")
    # Assign in reverse precedence so that earlier rules overwrite later ones.
    for role in reversed(ROLE_THRESHOLDS):
        value = np.asarray(metrics[_ROLE_METRIC[role]], dtype=np.float32)
        roles[value >= ROLE_THRESHOLDS[role]] = role
    return roles


def most_attended_key(w) -> np.ndarray:
    """Index of the key receiving the most total attention (summed over queries).

    w: [..., query, key]. Returns int [...] (0-d for one head); ties go to the lower index.
    """
    return np.argmax(_f32(w).sum(axis=-2), axis=-1)


def top_k(row, k: int) -> np.ndarray:
    """Indices of the k largest entries of a 1-D row, largest first.

    Ties keep the lower index first; k is clipped to 0..len(row). Returns int [min(k, len(row))].
    """
    row = np.asarray(row, dtype=np.float32)
    if row.ndim != 1:
        raise ValueError(f"top_k expects a 1-D row, got shape {row.shape}")
    k = max(0, min(int(k), row.shape[0]))
    return np.argsort(-row, kind="stable")[:k]


def js_divergence(p, q) -> np.ndarray:
    """Jensen-Shannon divergence between corresponding rows of p and q, in bits (0..1).

    p, q: [..., query, key] (broadcastable), rows of probabilities. Returns float32 [..., query].
    JS = (KL(p || m) + KL(q || m)) / 2 with m = (p + q) / 2.
    """
    p, q = _f32(p), _f32(q)
    m = (p + q) / 2
    # KL(p || m) = sum p log2 p - p log2 m; where p > 0, m > 0 too.
    log_m = np.log2(np.where(m > 0, m, 1.0)).astype(np.float32)
    kl_p = (_xlog2x(p) - p * log_m).sum(axis=-1)
    kl_q = (_xlog2x(q) - q * log_m).sum(axis=-1)
    return np.clip((kl_p + kl_q) / 2, 0.0, 1.0).astype(np.float32)


def head_js(p_weights, q_weights) -> np.ndarray:
    """Mean Jensen-Shannon divergence (bits) over query rows, per head.

    p_weights, q_weights: [layers, heads, query, key] (or any [..., query, key]).
    Returns float32 [layers, heads]. Used to compare pruned against baseline attention.
    """
    return js_divergence(p_weights, q_weights).mean(axis=-1).astype(np.float32)


def softmax_with_temperature(scores, T: float) -> np.ndarray:
    """softmax(scores / T) along the last axis.

    scores: [..., key] pre-softmax scores; -inf marks masked keys, whose weight is exactly 0.
    T: temperature, a finite number > 0 (large T tends to uniform over unmasked keys, small T
       to one-hot on the maximum). A row with every key masked comes back all zeros.
    Returns float32, same shape as scores.
    """
    if not np.isfinite(T) or T <= 0:
        raise ValueError(f"temperature must be a finite number > 0, got {T!r}")
    x = np.asarray(scores, dtype=np.float32) / np.float32(T)
    peak = x.max(axis=-1, keepdims=True)
    peak = np.where(np.isfinite(peak), peak, 0.0)  # all-masked rows: avoid -inf - -inf
    e = np.exp(x - peak)  # exp(-inf) = 0 for masked keys
    total = e.sum(axis=-1, keepdims=True)
    return np.divide(e, total, out=np.zeros_like(e), where=total > 0).astype(np.float32)


def stats(w_head) -> dict:
    """Summary of one head [query, key] as plain Python numbers (JSON-able).

    Returns {"entropy": mean row entropy in bits, "max_weight": largest single weight,
    "most_attended": key index with most total attention, "sink": mean weight on key 0}.
    """
    w = _f32(w_head)
    if w.ndim != 2:
        raise ValueError(f"stats expects one head [query, key], got shape {w.shape}")
    return {
        "entropy": float(row_entropy(w).mean()),
        "max_weight": float(w.max()),
        "most_attended": int(most_attended_key(w)),
        "sink": float(w[:, 0].mean()),
    }
