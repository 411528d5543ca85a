"""How well a (gated) model still does its task on a set of pairs: the metrics the pruning
curves and the held-out study plot.

    prepare_eval(loaded, pairs)                       -> EvalSet (tokenised once, reference embeddings)
    pair_metrics(loaded, pairs, gates, reference=...) -> {"retrieval_acc", "spearman", "loss", ...}
    default_metric(loaded) / metric_names(loaded)
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from models.losses import (
    embed, _encode_sorted, _Encoded, _gated, _infonce, _is_embedding, _lm_inputs, _lm_loss_sum)
from models.pairs import _batches, _examples

# metric name -> +1 if higher is better, -1 if lower is better
METRIC_SIGN = {"retrieval_acc": 1.0, "spearman": 1.0, "mean_cosine": 1.0, "loss": -1.0, "perplexity": -1.0}


# ---- metrics ----------------------------------------------------------------------------------
def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    from scipy.stats import spearmanr

    if len(x) >= 2 and np.array_equal(x, y):
        return 1.0  # the same numbers: exactly 1, not 1 minus rounding
    if len(x) < 2 or np.all(x == x[0]) or np.all(y == y[0]):
        return 0.0
    rho = spearmanr(x, y).statistic
    return float(rho) if np.isfinite(rho) else 0.0


@dataclass
class EvalSet:
    """An evaluation set prepared once for many gated evaluations (ablation, curves).

    pairs/texts: the examples; encoded: tokenised sorted batches (embedding models);
    lm_batches: [(inputs, labels, shift)] (LM heads); reference: float32 [n_pairs] cosines of
    the unpruned model's pairs (embedding models), the baseline for "spearman";
    base_embeddings: float32 [n_texts, hidden], the unpruned embeddings `reference` came from;
    unpruned: the metrics of the unpruned model, computed once and reused by every caller (so
    the "0 % pruned" point of a curve IS the reference, not a second forward pass that float
    kernels may round differently).
    """
    pairs: list | None
    texts: list
    batch_size: int
    seed: int = 0
    encoded: _Encoded | None = None
    lm_batches: list = field(default_factory=list)
    reference: np.ndarray | None = None
    base_embeddings: np.ndarray | None = None
    unpruned: dict | None = None


def _pair_cosines(e: np.ndarray) -> np.ndarray:
    """float32 [n_pairs]: cos(a_i, b_i) of L2-normalised embeddings e [2*n_pairs, hidden] (a, b
    interleaved). The one place pair cosines are computed, so a reference and a measurement of the
    same embeddings are the same numbers bit for bit."""
    t = torch.from_numpy(np.ascontiguousarray(e, dtype=np.float32))
    return (t[0::2] * t[1::2]).sum(1).numpy()


def _is_unpruned(gates) -> bool:
    """No gates, or every gate 1 (the all-ones mask of "0 heads pruned")."""
    if gates is None:
        return True
    values = gates.values() if isinstance(gates, dict) else [gates]
    return all(bool((torch.as_tensor(np.asarray(g, dtype=np.float32)) == 1).all()) for g in values)


def prepare_eval(loaded, pairs_or_texts, *, batch_size: int = 16, seed: int = 0, reference=None) -> EvalSet:
    if isinstance(pairs_or_texts, EvalSet):
        return pairs_or_texts
    pairs, texts = _examples(pairs_or_texts)
    ev = EvalSet(pairs=pairs, texts=texts, batch_size=batch_size, seed=seed)
    if _is_embedding(loaded):
        if pairs is None:
            raise ValueError("a sentence-embedding model is evaluated on sentence pairs (a, b)")
        if len(pairs) < 2:
            raise ValueError("need at least 2 sentence pairs")
        ev.encoded = _encode_sorted(loaded, texts)
        if reference is None:
            ev.base_embeddings = embed(loaded, ev.encoded)
            reference = _pair_cosines(ev.base_embeddings)
        ev.reference = np.asarray(reference, dtype=np.float32)
    else:
        ev.lm_batches = [_lm_inputs(loaded, chunk, seed)
                         for chunk in _batches(pairs if pairs is not None else texts, batch_size)]
    return ev


def pair_metrics(loaded, pairs, gates=None, *, reference=None, batch_size: int = 16) -> dict:
    """How well the (gated) model does on an evaluation set. Plain floats.

    Sentence-embedding model (pairs):
      retrieval_acc  share of a_i whose most cosine-similar b among all b's is b_i
      spearman       rank correlation of the pair cosines with the unpruned model's (`reference`
                     float32 [n_pairs], or the EvalSet's; computed once when not given)
      mean_cosine    mean cos(a_i, b_i)
      loss           contrastive loss, mean over batches of `batch_size` (as in head_importance)
    LM-headed model: loss (token-weighted mean cross-entropy) and perplexity = exp(loss).
    Always: n_examples. `pairs` may be an EvalSet from prepare_eval (fast path for many calls).
    """
    ev = prepare_eval(loaded, pairs, batch_size=batch_size, reference=reference)
    unpruned = _is_unpruned(gates)
    if unpruned and reference is None and ev.unpruned is not None:
        return dict(ev.unpruned)
    result = _pair_metrics(loaded, ev, None if unpruned else gates, reference)
    if unpruned and reference is None:
        ev.unpruned = dict(result)
    return result


def _pair_metrics(loaded, ev: EvalSet, gates, reference) -> dict:
    if _is_embedding(loaded):
        # the unpruned model's embeddings are the ones the reference cosines came from
        e = ev.base_embeddings if gates is None and ev.base_embeddings is not None else embed(loaded, ev.encoded, gates)
        ea, eb = torch.from_numpy(e[0::2]), torch.from_numpy(e[1::2])
        cos = _pair_cosines(e)
        sim = ea @ eb.T
        acc = float((sim.argmax(1) == torch.arange(len(cos))).float().mean())
        n_pairs = len(cos)
        losses, weights = [], []
        for chunk in _batches(list(range(n_pairs)), ev.batch_size):
            losses.append(float(_infonce(ea[chunk], eb[chunk])))
            weights.append(len(chunk))
        ref = ev.reference if reference is None else np.asarray(reference, dtype=np.float32)
        return {"retrieval_acc": acc, "spearman": _spearman(cos, ref), "mean_cosine": float(cos.mean()),
                "loss": float(np.average(losses, weights=weights)), "n_examples": n_pairs}
    total, count = 0.0, 0
    with torch.inference_mode(), _gated(loaded, gates):
        for inputs, labels, shift in ev.lm_batches:
            s, n = _lm_loss_sum(loaded, inputs, labels, shift)
            total, count = total + float(s), count + n
    loss = total / max(count, 1)
    return {"loss": loss, "perplexity": float(math.exp(min(loss, 700.0))),
            "n_examples": len(ev.pairs) if ev.pairs is not None else len(ev.texts)}


def default_metric(loaded) -> str:
    """The metric a curve shows first: pair-similarity preservation for embedding models."""
    return "spearman" if _is_embedding(loaded) else "loss"


def metric_names(loaded) -> list[str]:
    return ["spearman", "retrieval_acc", "mean_cosine", "loss"] if _is_embedding(loaded) else ["loss", "perplexity"]
