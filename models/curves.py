"""Pruning curves: the task metric (models.evaluation) vs the share of heads pruned, for each
pruning order (importance, ablation, entropy, random seeds).

    pruning_curve(loaded, pairs)   -> CurveResult (metric vs share pruned)
    prune_order / mask_from_order  -> the order heads are pruned in, the mask of the first k
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

from models.evaluation import default_metric, metric_names, pair_metrics, prepare_eval
from models.head_scores import (
    ablation_scores, _check, head_entropy, head_importance, Progress, ShouldStop, _tick)
from models.losses import loss_name


# ---- pruning curve ----------------------------------------------------------------------------
DEFAULT_SHARES = tuple(round(0.1 * i, 1) for i in range(10))
DEFAULT_ORDERS = ("importance", "ablation", "entropy", "random")


def prune_order(scores, *, descending: bool = False) -> np.ndarray:
    """Flat head indices (l*H + h) in the order they are pruned: lowest score first (stable),
    or highest first when `descending` (entropy order)."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    return np.argsort(-s if descending else s, kind="stable")


def mask_from_order(order, k: int, shape: tuple[int, int]) -> np.ndarray:
    """float32 [L,H] 0/1 with the first k heads of `order` pruned."""
    m = np.ones(int(np.prod(shape)), dtype=np.float32)
    m[np.asarray(order[:int(k)], dtype=int)] = 0.0
    return m.reshape(shape)


@dataclass
class CurveResult:
    """Metric vs share of heads pruned, per pruning order. Plain lists (JSON-able).

    shares [S]; pruned [S] number of heads pruned at each share (round(share * L*H));
    curves {order: {metric: [S]}} (random: mean over seeds), std {order: {metric: [S]}} (0 for
    deterministic orders); scores {order: [L][H]} the per-head scores each order sorted by
    (importance/ablation: least important pruned first; entropy: highest entropy first);
    baseline {metric: value} of the unpruned model.
    """
    shares: list
    pruned: list
    n_heads: int
    layers: int
    heads: int
    orders: list
    metrics: list
    primary: str
    curves: dict
    std: dict
    baseline: dict
    scores: dict
    loss_name: str
    n_examples: int
    seeds: int
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "CurveResult":
        return cls(**d)


def unique_evaluations(ks, n_lists: int, n_heads: int) -> int:
    """Evaluations a curve really runs: every order's masks at 0 < k < N, one "all heads pruned"
    mask shared by the orders, none at k = 0 (the reference). Masks of two orders that coincide
    by chance are evaluated once, so this can overcount by those."""
    inner = sum(1 for k in set(ks) if 0 < k < n_heads)
    return n_lists * inner + (1 if n_heads in set(ks) else 0)


def pruning_curve(loaded, pairs, *, shares: Sequence[float] = DEFAULT_SHARES,
                  orders: Sequence[str] = DEFAULT_ORDERS, seeds: int = 3, batch_size: int = 16,
                  block: str | None = None, importance: np.ndarray | None = None,
                  ablation: np.ndarray | None = None, entropy: np.ndarray | None = None,
                  ablation_metric: str = "loss", progress: Progress = None,
                  should_stop: ShouldStop = None) -> CurveResult:
    """Prune heads cumulatively in each order and measure `pair_metrics` at each share.

    orders: "importance" (head_importance scores, least important first), "ablation"
    (ablation_scores, least important first), "entropy" (highest mean entropy first),
    "random" (seeded permutations 0..seeds-1, mean and std). Scores not given are computed
    here. progress(done, total) counts every batch / head / text / evaluation.
    """
    t0 = time.perf_counter()
    block = block or next(iter(loaded.blocks))
    L, H = loaded.shape(block)
    N = L * H
    unknown = set(orders) - set(DEFAULT_ORDERS)
    if unknown:
        raise ValueError(f"unknown pruning orders {sorted(unknown)}; choose from {DEFAULT_ORDERS}")
    shares = [float(s) for s in shares]
    if any(not 0.0 <= s <= 1.0 for s in shares):
        raise ValueError("shares must lie in [0, 1]")
    ks = [int(round(s * N)) for s in shares]
    ev = prepare_eval(loaded, pairs, batch_size=batch_size)
    items = ev.pairs if ev.pairs is not None else ev.texts

    # how much work: importance batches, ablation evaluations, entropy texts, curve evaluations
    need_imp = "importance" in orders and importance is None
    need_abl = "ablation" in orders and ablation is None
    need_ent = "entropy" in orders and entropy is None
    ent_texts = ev.texts[:256]
    # units: one forward pass over the evaluation texts (an importance pass, forward + backward, is 3)
    n_imp = 3 if need_imp else 0
    n_abl = N + 1 if need_abl else 0
    n_ent = math.ceil(len(ent_texts) / max(1, len(ev.texts))) if need_ent else 0
    # the masks: deduplicated (share 0 is the reference itself, all heads pruned is one mask)
    seeds = max(1, int(seeds))
    n_lists = len(orders) - ("random" in orders) + seeds * ("random" in orders)
    total = [n_imp + n_abl + n_ent + unique_evaluations(ks, n_lists, N)]
    done = [0]

    def sub(offset, units):
        return lambda d, t: _tick(progress, offset + (units * d) // max(1, t), total[0])

    scores: dict[str, np.ndarray] = {}
    loss_nm = loss_name(loaded)
    if "importance" in orders:
        if importance is None:
            res = head_importance(loaded, items, batch_size=batch_size, block=block,
                                  progress=sub(done[0], n_imp), should_stop=should_stop)
            importance = res.scores
        scores["importance"] = np.asarray(importance, dtype=np.float32)
        done[0] += n_imp
    if "ablation" in orders:
        if ablation is None:
            ablation = ablation_scores(loaded, ev, metric=ablation_metric, block=block,
                                       progress=sub(done[0], n_abl), should_stop=should_stop)
        scores["ablation"] = np.asarray(ablation, dtype=np.float32)
        done[0] += n_abl
    if "entropy" in orders:
        if entropy is None:
            entropy = head_entropy(loaded, ent_texts, block=block, should_stop=should_stop)
        scores["entropy"] = np.asarray(entropy, dtype=np.float32)
        done[0] += n_ent
        _tick(progress, done[0], total[0])

    order_lists: dict[str, list[np.ndarray]] = {}
    for name in orders:
        if name == "random":
            order_lists[name] = [np.random.default_rng(s).permutation(N) for s in range(seeds)]
        else:
            order_lists[name] = [prune_order(scores[name], descending=(name == "entropy"))]

    memo: dict[bytes, dict] = {}
    names = metric_names(loaded)
    curves, std = {}, {}
    for name in orders:
        runs = []  # [n_orders][S] metric dicts
        for order in order_lists[name]:
            row = []
            for k in ks:
                _check(should_stop)
                mask = mask_from_order(order, k, (L, H))
                key = mask.tobytes()
                if key not in memo:
                    memo[key] = pair_metrics(loaded, ev, None if k == 0 else {block: mask})
                    if k != 0:  # share 0 is the reference: no forward pass
                        done[0] += 1
                        _tick(progress, min(done[0], total[0]), total[0])
                row.append(memo[key])
            runs.append(row)
        curves[name], std[name] = {}, {}
        for m in names:
            vals = np.array([[r[m] for r in row] for row in runs], dtype=np.float64)  # [n_orders, S]
            curves[name][m] = [float(v) for v in vals.mean(0)]
            std[name][m] = [float(v) for v in vals.std(0)]
    base = memo.get(np.ones((L, H), np.float32).tobytes()) or pair_metrics(loaded, ev)
    _tick(progress, total[0], total[0])
    return CurveResult(
        shares=shares, pruned=ks, n_heads=N, layers=L, heads=H, orders=list(orders), metrics=names,
        primary=default_metric(loaded), curves=curves, std=std,
        baseline={m: float(base[m]) for m in names},
        scores={k: v.tolist() for k, v in scores.items()}, loss_name=loss_nm,
        n_examples=len(items), seeds=seeds, seconds=time.perf_counter() - t0)
