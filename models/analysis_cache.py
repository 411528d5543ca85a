"""The importance / ablation / curve computations through models.cache's JSON store, shared by
all workers (key: model, tokenizer, examples, options).

    cached_importance / cached_ablation / cached_curve   -> as models.head_scores / models.curves
"""
from __future__ import annotations

import math
import time
from typing import Sequence

import numpy as np

from models.curves import CurveResult, DEFAULT_ORDERS, DEFAULT_SHARES, pruning_curve, unique_evaluations
from models.head_scores import ablation_scores, head_importance, ImportanceResult, Progress, ShouldStop, _tick
from models.pairs import _examples

SCHEMA = 1  # bump when cached results change meaning


# ---- cached wrappers (models.cache JSON store, shared by all workers) -------------------------
def _store(store):
    if store is not None:
        return store
    from models import cache

    return cache.default_cache()


def _key(what: str, loaded, items, **options) -> str:
    from models import cache

    pairs, texts = _examples(items)
    return cache.stable_hash({
        "what": what, "schema": SCHEMA, "model": loaded.fingerprint,
        "tokenizer": getattr(loaded, "tokenizer_fingerprint", ""),
        "examples": [list(p) for p in pairs] if pairs is not None else texts,
        "options": options,
    })


def cached_importance(loaded, pairs_or_texts, *, batch_size: int = 16, block: str | None = None, seed: int = 0,
                      store=None, progress: Progress = None, should_stop: ShouldStop = None) -> ImportanceResult:
    """head_importance through the JSON cache (key: model, tokenizer, examples, options)."""
    store = _store(store)
    block = block or next(iter(loaded.blocks))
    key = _key("head-importance", loaded, pairs_or_texts, batch_size=batch_size, block=block, seed=seed)
    hit = store.get_json(key)
    if hit is not None:
        return ImportanceResult.from_dict(hit)
    res = head_importance(loaded, pairs_or_texts, batch_size=batch_size, block=block, seed=seed,
                          progress=progress, should_stop=should_stop)
    store.put_json(key, res.to_dict())
    return res


def cached_ablation(loaded, pairs, *, metric: str = "loss", batch_size: int = 16, block: str | None = None,
                    store=None, progress: Progress = None, should_stop: ShouldStop = None) -> np.ndarray:
    """ablation_scores through the JSON cache."""
    store = _store(store)
    block = block or next(iter(loaded.blocks))
    key = _key("head-ablation", loaded, pairs, metric=metric, batch_size=batch_size, block=block)
    hit = store.get_json(key)
    if hit is not None:
        return np.asarray(hit["scores"], dtype=np.float32)
    out = ablation_scores(loaded, pairs, metric=metric, batch_size=batch_size, block=block,
                          progress=progress, should_stop=should_stop)
    store.put_json(key, {"scores": out.tolist(), "metric": metric})
    return out


def cached_curve(loaded, pairs, *, shares: Sequence[float] = DEFAULT_SHARES,
                 orders: Sequence[str] = DEFAULT_ORDERS, seeds: int = 3, batch_size: int = 16,
                 block: str | None = None, ablation_metric: str = "loss", store=None,
                 progress: Progress = None, should_stop: ShouldStop = None) -> CurveResult:
    """pruning_curve through the JSON cache; importance and ablation scores it needs are read
    from (and written to) the cache too, so the importance panel and the curve share them."""
    store = _store(store)
    block = block or next(iter(loaded.blocks))
    shares, orders = [float(s) for s in shares], list(orders)
    key = _key("pruning-curve", loaded, pairs, shares=shares, orders=orders, seeds=int(seeds),
               batch_size=batch_size, block=block, ablation_metric=ablation_metric)
    hit = store.get_json(key)
    if hit is not None:
        return CurveResult.from_dict(hit)
    t0 = time.perf_counter()
    L, H = loaded.shape(block)
    # Progress in units of real work: one unit = one forward pass over the evaluation texts (an
    # importance pass, forward + backward over them, counts 3); phases read from the cache count 0,
    # so the bar does not leap over cached work and then crawl.
    ex_pairs, ex_texts = _examples(pairs)
    n_texts = max(1, len(ex_texts))
    seeds = max(1, int(seeds))
    imp_cached = "importance" in orders and store.get_json(
        _key("head-importance", loaded, pairs, batch_size=batch_size, block=block, seed=0)) is not None
    abl_cached = "ablation" in orders and store.get_json(
        _key("head-ablation", loaded, pairs, metric=ablation_metric, batch_size=batch_size, block=block)) is not None
    imp_units = 3 if "importance" in orders and not imp_cached else 0
    abl_units = L * H + 1 if "ablation" in orders and not abl_cached else 0
    ent_units = math.ceil(min(len(ex_texts), 256) / n_texts) if "entropy" in orders else 0
    n_lists = len(orders) - ("random" in orders) + seeds * ("random" in orders)
    curve_units = 1 + unique_evaluations([int(round(s * L * H)) for s in shares], n_lists, L * H)  # + reference
    total = imp_units + abl_units + ent_units + curve_units

    def scaled(offset, units):
        return lambda d, t: _tick(progress, offset + (units * d) // max(1, t), total)

    importance = ablation = None
    if "importance" in orders:
        importance = cached_importance(loaded, pairs, batch_size=batch_size, block=block, store=store,
                                       progress=scaled(0, imp_units), should_stop=should_stop).scores
    if "ablation" in orders:
        ablation = cached_ablation(loaded, pairs, metric=ablation_metric, batch_size=batch_size, block=block,
                                   store=store, progress=scaled(imp_units, abl_units), should_stop=should_stop)
    res = pruning_curve(loaded, pairs, shares=shares, orders=orders, seeds=seeds, batch_size=batch_size,
                        block=block, importance=importance, ablation=ablation,
                        ablation_metric=ablation_metric,
                        progress=None if progress is None else scaled(imp_units + abl_units, ent_units + curve_units),
                        should_stop=should_stop)
    _tick(progress, total, total)
    res.seconds = time.perf_counter() - t0  # the whole job's wall time, phases and cache reads included
    store.put_json(key, res.to_dict())
    return res
