"""Which heads a model's task needs: one score per head, float32 [L, H].

    head_importance(loaded, pairs_or_texts)      -> ImportanceResult (scores [L,H])
    ablation_scores(loaded, pairs, metric="loss") -> float32 [L,H], drop in metric per head
    head_entropy(loaded, texts)                   -> float32 [L,H], mean attention entropy (bits)

Importance (Michel, Levy & Neubig 2019, "Are Sixteen Heads Really Better than One?"): gates
ξ[L,H] = 1 with requires_grad multiply each head's output; one backward pass per batch gives
∂L/∂ξ for every head (L: models.losses.task_loss); I_h = Σ_batches |∂L_batch/∂ξ_h|, then each
layer's row is divided by its L2 norm.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import torch

from models.evaluation import METRIC_SIGN, pair_metrics, prepare_eval
from models.losses import loss_name, MAX_TOKENS, _param_dtype, task_loss
from models.pairs import _batches, _examples

Progress = Callable[[int, int], None] | None  # progress(done, total)
ShouldStop = Callable[[], bool] | None  # True: stop (Cancelled)


class Cancelled(Exception):
    """Raised when `should_stop()` returned True: the user cancelled a long computation."""


# ---- importance -------------------------------------------------------------------------------
def _check(should_stop: ShouldStop) -> None:
    if should_stop is not None and should_stop():
        raise Cancelled("cancelled")


def _tick(progress: Progress, done: int, total: int) -> None:
    if progress is not None:
        progress(int(done), int(total))


@dataclass
class ImportanceResult:
    """Head importance of one model on one example set.

    scores   float32 [L,H]: Michel et al. importance Σ_batches |∂L_b/∂ξ_h|, each layer divided by
             its L2 norm (what the page shows and what "importance order" prunes by);
    raw      float32 [L,H]: the same before normalisation;
    gradient float32 [L,H]: signed ∂(mean batch loss)/∂ξ_h at ξ = 1. `-gradient` is the
             first-order (Taylor) estimate of how the loss changes when the head is removed; it can
             be negative (removing the head lowers the loss), which |·| in `scores` hides;
    loss:    mean task loss at ξ = 1.
    """
    scores: np.ndarray
    raw: np.ndarray
    loss_name: str
    n_examples: int
    seconds: float
    loss: float = float("nan")
    block: str = "self"
    gradient: np.ndarray | None = None

    _ARRAYS = ("scores", "raw", "gradient")

    @property
    def taylor_loss_change(self) -> np.ndarray | None:
        """float32 [L,H]: estimated loss change when each head alone is pruned (-gradient)."""
        return None if self.gradient is None else -self.gradient

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in self._ARRAYS:
            d[k] = None if getattr(self, k) is None else np.asarray(getattr(self, k)).tolist()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ImportanceResult":
        d = dict(d)
        for k in cls._ARRAYS:
            if d.get(k) is not None:
                d[k] = np.asarray(d[k], dtype=np.float32)
        return cls(**d)


def normalise_per_layer(raw) -> np.ndarray:
    """float32 [L,H]: each row divided by its L2 norm (rows of zeros stay zero)."""
    raw = np.asarray(raw, dtype=np.float64)
    norm = np.linalg.norm(raw, axis=1, keepdims=True)
    return np.divide(raw, norm, out=np.zeros_like(raw), where=norm > 0).astype(np.float32)


def gate_gradients(loaded, batch, *, block: str | None = None, seed: int = 0) -> tuple[np.ndarray, float]:
    """(∂L/∂ξ float64 [L,H] at ξ = 1, loss) for one batch: one forward + one backward pass."""
    block = block or next(iter(loaded.blocks))
    xi = torch.ones(loaded.shape(block), dtype=_param_dtype(loaded), requires_grad=True)
    with torch.inference_mode(False), torch.enable_grad():
        loss, _ = task_loss(loaded, batch, {block: xi}, seed=seed)
        (grad,) = torch.autograd.grad(loss, xi)
    return grad.detach().double().numpy(), float(loss.detach())


def head_importance(loaded, pairs_or_texts, *, batch_size: int = 16, block: str | None = None, seed: int = 0,
                    progress: Progress = None, should_stop: ShouldStop = None) -> ImportanceResult:
    """Michel et al. (2019) head importance on the task loss (see module docstring).

    One forward + backward pass per batch of `batch_size` examples gives the gradient for all
    heads at once; absolute values are accumulated per batch. progress(done, total) after each
    batch; should_stop() checked before each (raises Cancelled).
    """
    t0 = time.perf_counter()
    block = block or next(iter(loaded.blocks))
    pairs, texts = _examples(pairs_or_texts)
    items = pairs if pairs is not None else texts
    chunks = _batches(items, batch_size)
    raw = np.zeros(loaded.shape(block), dtype=np.float64)
    signed = np.zeros_like(raw)
    losses = []
    for i, chunk in enumerate(chunks):
        _check(should_stop)
        grad, loss = gate_gradients(loaded, chunk, block=block, seed=seed)
        raw += np.abs(grad)
        signed += grad * len(chunk)
        losses.append((loss, len(chunk)))
        _tick(progress, i + 1, len(chunks))
    weights = [w for _, w in losses]
    mean_loss = float(np.average([x for x, _ in losses], weights=weights))
    return ImportanceResult(scores=normalise_per_layer(raw), raw=raw.astype(np.float32),
                            loss_name=loss_name(loaded), n_examples=len(items),
                            seconds=time.perf_counter() - t0, loss=mean_loss, block=block,
                            gradient=(signed / sum(weights)).astype(np.float32))


def _goodness(metric: str, value: float) -> float:
    if metric not in METRIC_SIGN:
        raise ValueError(f"unknown metric {metric!r}; one of {sorted(METRIC_SIGN)}")
    return METRIC_SIGN[metric] * value


def ablation_scores(loaded, pairs, *, metric: str = "loss", batch_size: int = 16, block: str | None = None,
                    progress: Progress = None, should_stop: ShouldStop = None) -> np.ndarray:
    """float32 [L,H]: leave-one-head-out importance = how much `metric` gets worse when only that
    head is gated to 0 (loss: pruned - base; accuracy/spearman: base - pruned). One forward pass
    over the evaluation set per head (L*H + 1 evaluations). progress(done, L*H + 1)."""
    block = block or next(iter(loaded.blocks))
    L, H = loaded.shape(block)
    ev = prepare_eval(loaded, pairs, batch_size=batch_size)
    total = L * H + 1
    _check(should_stop)
    base = _goodness(metric, pair_metrics(loaded, ev)[metric])
    _tick(progress, 1, total)
    out = np.zeros((L, H), dtype=np.float32)
    for l in range(L):
        for h in range(H):
            _check(should_stop)
            g = np.ones((L, H), dtype=np.float32)
            g[l, h] = 0.0
            out[l, h] = base - _goodness(metric, pair_metrics(loaded, ev, {block: g})[metric])
            _tick(progress, 2 + l * H + h, total)
    return out


def head_entropy(loaded, texts, *, block: str | None = None, max_texts: int = 256,
                 should_stop: ShouldStop = None) -> np.ndarray:
    """float32 [L,H]: mean attention entropy in bits over texts (run.head_metrics of each text)."""
    from models import attention

    texts = [t for t in texts if isinstance(t, str) and t.strip()][:max_texts]
    if not texts:
        raise ValueError("no texts to measure entropy on")
    acc = None
    for t in texts:
        _check(should_stop)
        run = attention.extract(loaded, t, max_tokens=MAX_TOKENS)
        e = run.head_metrics(block)["entropy"].astype(np.float64)
        acc = e if acc is None else acc + e
    return (acc / len(texts)).astype(np.float32)
