"""The notebook API: the engine and cache the page uses, called from Python.

    from models import api

    api.models()                                   # names this deployment offers
    run = api.run("The cat sat on the mat.")        # AttentionRun (embedded MiniLM by default)
    run.head_weights(2, 5)                         # float32 [query, key]: layer 2, head 5, rebuilt
    run.entropy()                                  # float32 [layers, heads], mean row entropy (bits)
    run.top_keys(layer=2, head=5, query=3, k=5)    # [(key index, weight, pre-softmax score), ...]
    imp = api.head_importance()                    # Michel et al. importance on the bundled pairs
    curve = api.pruning_curve(seeds=3)             # metric vs share of heads pruned, per order

Every call goes through the same code as the page: runs through `models.service` (the per-process
memory cache and the shared disk cache, so a run the page computed is read back here and the other
way round), importance and curves through `models.importance`'s cached wrappers. Nothing here
knows Dash, and nothing is downloaded: models come from the registry (`ATTN_MODELS`,
`ATTN_MODELS_FILE`, the embedded default).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from models import importance, loader, registry, service
from models.run import AttentionRun

DEFAULT_MODEL = registry.DEFAULT_MODEL


def models() -> list[str]:
    """The registry names this deployment offers (the embedded default first)."""
    return list(registry.model_names())


def load(model: str = DEFAULT_MODEL) -> loader.LoadedModel:
    """The loaded model (one per process): .model, .tokenizer, .architecture, .blocks, .shape(block)."""
    return loader.get_loaded(model)


def run(text: str, text_pair: str | None = None, *, model: str = DEFAULT_MODEL, max_tokens: int | None = None,
        head_mask=None) -> AttentionRun:
    """One run, cached: `text_pair` is sentence B of a pair (the target text of an encoder-decoder
    model); `head_mask` float [layers, heads] of 0/1 for the main block (0 prunes a head)."""
    mask = None if head_mask is None else np.asarray(head_mask, dtype=np.float32)
    return service.get_run(service.RunRequest.create(model, text, text_pair, max_tokens, mask))


def pairs(path: str | None = None) -> list[tuple[str, str]]:
    """The bundled paraphrase pairs (or a TSV file of `a<TAB>b` lines)."""
    return importance.load_pairs(path)


def head_importance(examples=None, *, model: str = DEFAULT_MODEL, **options) -> importance.ImportanceResult:
    """Michel et al. (2019) head importance |dL/dxi_h|, normalised per layer, cached.
    `examples`: sentence pairs (embedding models) or texts (LM heads); default the bundled pairs.
    The result says which loss it used (`.loss_name`) and on how many examples (`.n_examples`)."""
    return importance.cached_importance(load(model), _examples(examples), **options)


def pruning_curve(examples=None, *, model: str = DEFAULT_MODEL, shares: Sequence[float] = importance.DEFAULT_SHARES,
                  orders: Sequence[str] = importance.DEFAULT_ORDERS, seeds: int = 3,
                  **options) -> importance.CurveResult:
    """Metric vs share of heads pruned, per pruning order (random: mean and std over `seeds`), cached."""
    return importance.cached_curve(load(model), _examples(examples), shares=shares, orders=orders,
                                   seeds=seeds, **options)


def _examples(examples):
    return pairs() if examples is None else list(examples)
