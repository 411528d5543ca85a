"""Pruning science: head-pruning orders estimated on one part of a corpus, judged on the other.

Pure engine code (no Dash). Builds on models.importance (task loss, embeddings, gates) and never
changes the shared model: heads are gated through interventions.head_gates.

    split_pairs(pairs, estimate_share, seed)          -> (estimate pairs, evaluation pairs)
    gate_scores(loaded, pairs, method, mask=None)     -> float64 [L,H] per-head score (higher = keep)
    iterative_order(loaded, pairs, method, steps)     -> int [N] prune order, re-estimated each step
    greedy_order(loaded, pairs, k)                    -> int [k] greedy leave-one-out order
    held_out_study(loaded, pairs, ...)                -> StudyResult: curves + bands on held-out pairs

Methods (how a head's score is estimated on the *estimate* split; the least important head is
pruned first):

* "loss-gradient": Michel, Levy & Neubig (2019) I_h = Σ_batches |∂L_b/∂ξ_h| of the task loss
  (the contrastive loss for a sentence-embedding model), each layer's row divided by its L2 norm.
* "output-sensitivity" (sentence-embedding models): S_h = E_x ‖∂e(x)/∂ξ_h‖², the expected squared
  change of the L2-normalised sentence embedding e per unit of head h's gate. Estimated with
  random projections: for r ~ N(0, I) per text, E_r[(Σ_x r_x·∂e(x)/∂ξ_h)²] = Σ_x ‖∂e(x)/∂ξ_h‖²,
  so one backward pass of Σ_x r_x·e(x) per projection gives all heads at once. Not normalised
  per layer (the score is already in the units of the output, comparable across layers).
* "...-iterative": Michel et al. §4: prune the `step` least important remaining heads, then
  re-estimate the scores with those heads gated to 0, and repeat.
* "greedy": leave-one-out greedy: at each step, every remaining head is removed in turn and the
  one whose removal hurts the estimate-split metric least is pruned (N + (N-1) + ... evaluations;
  on at most GREEDY_PAIRS pairs of the estimate split, up to half of the heads).
* "random": seeded permutations (seeds 0..n-1).

Evaluation (on the *evaluation* split only): for a sentence-embedding model, Spearman rank
correlation between the pruned model's pair cosines and the unpruned model's ("how well the
pruned model preserves the pair similarities"); for LM heads, the task loss. Uncertainty:
random orders give mean ± std over seeds; every order gets a bootstrap over evaluation pairs
(resampled pairs, the same resamples for every order, so differences are paired).
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
import torch

from models import importance as imp
from models.attention import mean_pool

GREEDY_PAIRS = 16  # greedy leave-one-out runs on at most this many estimate pairs (~N²/2 evaluations)
METHODS = ("loss-gradient", "output-sensitivity", "loss-gradient-iterative",
           "output-sensitivity-iterative", "cosine-spread", "cosine-spread-iterative", "greedy")
METHOD_TEXT = {
    "loss-gradient": "loss gradient, one-shot (Michel et al. 2019: Σ|∂L/∂ξ_h| on the estimate split, "
                     "normalised per layer)",
    "output-sensitivity": "output sensitivity, one-shot (E‖∂e/∂ξ_h‖² of the normalised sentence embedding, "
                          "random projections, on the estimate split)",
    "loss-gradient-iterative": "loss gradient, iterative (Michel et al. §4: re-estimated after each pruning step)",
    "output-sensitivity-iterative": "output sensitivity, iterative (re-estimated after each pruning step)",
    "cosine-spread": "pair-cosine spread, one-shot (Σ_i (∂c_i/∂ξ_h − mean)² over estimate pairs: how much the "
                     "head's gate reorders the pair cosines; centred random projections)",
    "cosine-spread-iterative": "pair-cosine spread, iterative (re-estimated after each pruning step)",
    "greedy": f"greedy leave-one-out (each step removes the head whose removal hurts the metric least, "
              f"on the first {GREEDY_PAIRS} estimate pairs, up to 50 % of heads)",
    "random": "random orders (mean ± std over seeds)",
}
RESEARCH_PAIRS_FILE = imp.DATA_DIR / "research_pairs.tsv"
PROJECTIONS = 4     # random projections per batch for the output-sensitivity score
BOOTSTRAP = 500     # bootstrap resamples of the evaluation pairs
SCHEMA = 1


def default_method(loaded) -> str:
    """The order the page and the bench lead with: iterative output sensitivity for embedding
    models (the one order that beat random by >= 2 sigma at both 30 % and 50 % pruned on held-out
    pairs, bench/RESULTS.md), the loss gradient for LM heads."""
    return "output-sensitivity-iterative" if imp._is_embedding(loaded) else "loss-gradient"


def methods_for(loaded) -> list[str]:
    if imp._is_embedding(loaded):
        return list(METHODS)
    return ["loss-gradient", "loss-gradient-iterative", "greedy"]


def load_study_pairs() -> list[tuple[str, str]]:
    """The bundled corpus for held-out studies: the 64 paraphrase pairs of the pruning card plus
    the 120 of models/data/research_pairs.tsv (184 pairs, all written for this project)."""
    return imp.load_pairs() + imp.load_pairs(RESEARCH_PAIRS_FILE)


# ---- split -----------------------------------------------------------------------------------

def split_pairs(pairs: Sequence, estimate_share: float = 0.5, seed: int = 0) -> tuple[list, list]:
    """(estimate, evaluate): a seeded random split of the examples, disjoint, both non-empty
    (at least 2 each). `estimate_share` of them (rounded) estimate importance."""
    items = list(pairs)
    if len(items) < 4:
        raise ValueError(f"need at least 4 examples to split into estimate and evaluation parts, got {len(items)}")
    if not 0.0 < float(estimate_share) < 1.0:
        raise ValueError("estimate_share must lie strictly between 0 and 1")
    k = min(max(2, int(round(estimate_share * len(items)))), len(items) - 2)
    perm = np.random.default_rng(seed).permutation(len(items))
    return [items[i] for i in sorted(perm[:k])], [items[i] for i in sorted(perm[k:])]


# ---- scores ------------------------------------------------------------------------------------

def _xi(loaded, block: str, mask) -> torch.Tensor:
    base = torch.ones(loaded.shape(block), dtype=imp._param_dtype(loaded))
    if mask is not None:
        base = torch.as_tensor(np.asarray(mask, dtype=np.float32)).to(base.dtype)
    return base.clone().requires_grad_(True)


def loss_gradient_scores(loaded, pairs, *, mask=None, batch_size: int = 16, block: str | None = None,
                         should_stop=None) -> np.ndarray:
    """float64 [L,H]: Σ_batches |∂L_b/∂ξ_h| at ξ = mask (ones when None), normalised per layer
    over the heads still present (pruned heads score 0)."""
    block = block or next(iter(loaded.blocks))
    pairs_, texts = imp._examples(pairs)
    raw = np.zeros(loaded.shape(block), dtype=np.float64)
    for chunk in imp._batches(pairs_ if pairs_ is not None else texts, batch_size):
        imp._check(should_stop)
        xi = _xi(loaded, block, mask)
        with torch.inference_mode(False), torch.enable_grad():
            loss, _ = imp.task_loss(loaded, chunk, {block: xi})
            (g,) = torch.autograd.grad(loss, xi)
        raw += np.abs(g.double().numpy())
    if mask is not None:
        raw = raw * (np.asarray(mask) > 0)
    return imp.normalise_per_layer(raw).astype(np.float64)


def output_sensitivity_scores(loaded, pairs_or_texts, *, mask=None, projections: int = PROJECTIONS,
                              batch_size: int = 32, block: str | None = None, seed: int = 0,
                              should_stop=None) -> np.ndarray:
    """float64 [L,H]: mean over texts of ‖∂e/∂ξ_h‖² (e: L2-normalised mean-pooled embedding), at
    ξ = mask, estimated with `projections` Gaussian projections per batch (one backward each)."""
    if not imp._is_embedding(loaded):
        raise ValueError("the output-sensitivity score is defined for sentence-embedding models")
    block = block or next(iter(loaded.blocks))
    _, texts = imp._examples(pairs_or_texts)
    rng = torch.Generator().manual_seed(int(seed))
    acc = np.zeros(loaded.shape(block), dtype=np.float64)
    for s in range(0, len(texts), batch_size):
        imp._check(should_stop)
        chunk = texts[s:s + batch_size]
        xi = _xi(loaded, block, mask)
        with torch.inference_mode(False), torch.enable_grad():
            inputs = imp._text_inputs(loaded, chunk)
            with imp._gated(loaded, {block: xi}):
                out = loaded.model(**inputs)
            hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
            e = mean_pool(hidden, inputs["attention_mask"])  # [B, hidden]
            for p in range(projections):
                r = torch.randn(e.shape, generator=rng, dtype=e.dtype)
                (g,) = torch.autograd.grad((r * e).sum(), xi, retain_graph=p < projections - 1)
                acc += g.double().numpy() ** 2 / projections
    out = acc / len(texts)
    if mask is not None:
        out = out * (np.asarray(mask) > 0)
    return out


def cosine_spread_scores(loaded, pairs, *, mask=None, projections: int = 8, batch_pairs: int = 32,
                         block: str | None = None, seed: int = 0, should_stop=None) -> np.ndarray:
    """float64 [L,H]: Σ_i (∂c_i/∂ξ_h − mean_i ∂c_i/∂ξ_h)² / n, the spread over pairs of how head h's
    gate moves the pair cosines c_i = cos(e(a_i), e(b_i)) (a shift shared by all pairs leaves
    their ranking alone; a spread reorders them). Estimated with centred Gaussian projections:
    r = z − mean(z), E[(Σ_i r_i ∂c_i/∂ξ_h)²] = Σ_i (∂c_i/∂ξ_h − mean)², one backward each."""
    if not imp._is_embedding(loaded):
        raise ValueError("the cosine-spread score is defined for sentence-embedding models (pairs)")
    block = block or next(iter(loaded.blocks))
    pairs_, _ = imp._examples(pairs)
    if pairs_ is None:
        raise ValueError("the cosine-spread score needs sentence pairs")
    rng = torch.Generator().manual_seed(int(seed))
    acc = np.zeros(loaded.shape(block), dtype=np.float64)
    for chunk in imp._batches(pairs_, batch_pairs):
        imp._check(should_stop)
        xi = _xi(loaded, block, mask)
        with torch.inference_mode(False), torch.enable_grad():
            inputs = imp._text_inputs(loaded, [a for a, _ in chunk] + [b for _, b in chunk])
            with imp._gated(loaded, {block: xi}):
                out = loaded.model(**inputs)
            hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
            e = mean_pool(hidden, inputs["attention_mask"])
            c = (e[:len(chunk)] * e[len(chunk):]).sum(-1)  # [n] pair cosines
            for p in range(projections):
                z = torch.randn(c.shape, generator=rng, dtype=c.dtype)
                (g,) = torch.autograd.grad(((z - z.mean()) * c).sum(), xi, retain_graph=p < projections - 1)
                acc += g.double().numpy() ** 2 / projections
    out = acc / len(pairs_)
    if mask is not None:
        out = out * (np.asarray(mask) > 0)
    return out


def gate_scores(loaded, pairs, method: str, *, mask=None, block: str | None = None, should_stop=None,
                seed: int = 0) -> np.ndarray:
    """float64 [L,H] (higher = more important) for a one-shot method name (with or without
    the "-iterative" suffix)."""
    base = method.removesuffix("-iterative")
    if base == "loss-gradient":
        return loss_gradient_scores(loaded, pairs, mask=mask, block=block, should_stop=should_stop)
    if base == "output-sensitivity":
        return output_sensitivity_scores(loaded, pairs, mask=mask, block=block, should_stop=should_stop, seed=seed)
    if base == "cosine-spread":
        return cosine_spread_scores(loaded, pairs, mask=mask, block=block, should_stop=should_stop, seed=seed)
    raise ValueError(f"unknown importance method {method!r}")


def order_from_scores(scores) -> np.ndarray:
    """int [N]: flat head indices, least important first (stable)."""
    return imp.prune_order(scores)


def iterative_order(loaded, pairs, method: str, *, step: int, upto: int | None = None, block: str | None = None,
                    should_stop=None, progress=None) -> np.ndarray:
    """int [N]: Michel et al. §4. Repeat: estimate scores with the already pruned heads gated to 0,
    prune the `step` least important remaining heads. The heads after `upto` (default: all) keep
    the order of the last estimate."""
    block = block or next(iter(loaded.blocks))
    L, H = loaded.shape(block)
    N = L * H
    upto = N if upto is None else min(int(upto), N)
    step = max(1, int(step))
    mask = np.ones((L, H), dtype=np.float32)
    order: list[int] = []
    n_steps = math.ceil(upto / step)
    for i in range(n_steps):
        scores = gate_scores(loaded, pairs, method, mask=None if not order else mask, block=block,
                             should_stop=should_stop, seed=i).ravel()
        remaining = [j for j in order_from_scores(scores) if j not in set(order)]
        take = remaining[:min(step, upto - len(order))]
        order.extend(int(j) for j in take)
        mask.ravel()[take] = 0.0
        imp._tick(progress, i + 1, n_steps)
    rest = [int(j) for j in order_from_scores(scores) if j not in set(order)]
    return np.asarray(order + rest, dtype=np.int64)


# ---- evaluation ----------------------------------------------------------------------------------

@dataclass
class _Eval:
    """An evaluation split prepared once: `cosines(mask)` -> float32 [n_pairs] (embedding model)
    or `losses(mask)` -> (sum, count) per batch (LM)."""
    loaded: object
    ev: imp.EvalSet
    block: str

    def values(self, mask) -> np.ndarray:
        """Embedding model: float32 [n_pairs] pair cosines; LM: float64 [n_batches, 2] (loss sum, tokens)."""
        gates = None if mask is None or np.all(mask > 0) else {self.block: mask}
        if imp._is_embedding(self.loaded):
            if gates is None and self.ev.base_embeddings is not None:
                e = self.ev.base_embeddings  # the reference itself: ρ is exactly 1 at 0 % pruned
            else:
                e = imp.embed(self.loaded, self.ev.encoded, gates)
            return imp._pair_cosines(e).astype(np.float32)
        rows = []
        with torch.inference_mode(), imp._gated(self.loaded, gates):
            for inputs, labels, shift in self.ev.lm_batches:
                s, n = imp._lm_loss_sum(self.loaded, inputs, labels, shift)
                rows.append((float(s), n))
        return np.asarray(rows, dtype=np.float64)


def _rank_rows(x: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(x, axis=-1)


def spearman_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman correlation of each row of x [B, n] with the matching row of y [B, n] -> [B]."""
    rx, ry = _rank_rows(x), _rank_rows(y)
    rx = rx - rx.mean(-1, keepdims=True)
    ry = ry - ry.mean(-1, keepdims=True)
    den = np.sqrt((rx ** 2).sum(-1) * (ry ** 2).sum(-1))
    return np.divide((rx * ry).sum(-1), den, out=np.zeros(rx.shape[0]), where=den > 0)


def metric_of(loaded, values: np.ndarray, reference: np.ndarray | None, idx: np.ndarray | None = None) -> np.ndarray:
    """The evaluation metric for one order at one share, on the full set (idx None -> scalar in a
    [1] array) or on bootstrap resamples idx [B, n] -> [B].
    Embedding: Spearman(pruned cosines, unpruned cosines). LM: token-weighted mean loss (batches resampled)."""
    if idx is None:
        idx = np.arange(len(values))[None, :]
    if imp._is_embedding(loaded):
        return spearman_rows(values[idx], reference[idx])
    s, n = values[:, 0][idx].sum(-1), values[:, 1][idx].sum(-1)
    return s / np.maximum(n, 1)


def metric_name(loaded) -> str:
    return ("Spearman ρ of pair cosines with the unpruned model's" if imp._is_embedding(loaded)
            else f"task loss ({imp.loss_name(loaded)})")


def higher_is_better(loaded) -> bool:
    return imp._is_embedding(loaded)


def greedy_order(loaded, pairs, k: int, *, block: str | None = None, should_stop=None, progress=None) -> np.ndarray:
    """int [k]: greedy leave-one-out on `pairs` (the estimate split): at each of k steps, evaluate
    the metric with each remaining head removed in addition, prune the best. Cost: Σ_{i<k} (N-i)
    evaluations; progress(done, total) after each."""
    block = block or next(iter(loaded.blocks))
    L, H = loaded.shape(block)
    N = L * H
    k = max(0, min(int(k), N - 1))
    ev = _Eval(loaded, imp.prepare_eval(loaded, pairs), block)
    ref = ev.values(None)
    sign = 1.0 if higher_is_better(loaded) else -1.0
    mask = np.ones(N, dtype=np.float32)
    order: list[int] = []
    total, done = greedy_evaluations(N, k), 0
    for _ in range(k):
        best, best_val = None, -np.inf
        for j in range(N):
            if mask[j] == 0:
                continue
            imp._check(should_stop)
            m = mask.copy()
            m[j] = 0.0
            val = sign * float(metric_of(loaded, ev.values(m.reshape(L, H)), ref)[0])
            done += 1
            imp._tick(progress, done, total)
            if val > best_val:
                best, best_val = j, val
        order.append(best)
        mask[best] = 0.0
    return np.asarray(order, dtype=np.int64)


def greedy_evaluations(n_heads: int, k: int) -> int:
    """Number of evaluations greedy_order makes: N + (N-1) + ... + (N-k+1)."""
    return int(sum(n_heads - i for i in range(int(k))))


def seconds_per_evaluation(loaded, pairs, *, block: str | None = None, repeats: int = 2) -> float:
    """Measured seconds of one gated evaluation on `pairs` (for the greedy job's time estimate)."""
    block = block or next(iter(loaded.blocks))
    ev = _Eval(loaded, imp.prepare_eval(loaded, pairs), block)
    L, H = loaded.shape(block)
    m = np.ones((L, H), dtype=np.float32)
    m[0, 0] = 0
    ev.values(m)  # warm
    t0 = time.perf_counter()
    for _ in range(repeats):
        ev.values(m)
    return (time.perf_counter() - t0) / repeats


_SPE: dict = {}  # (model fingerprint, pairs hash) -> seconds; per process, a measurement, not state


def cached_seconds_per_evaluation(loaded, pairs, *, block: str | None = None) -> float:
    """seconds_per_evaluation measured once per process for (model, pairs), then reused: the page
    shows the greedy job's cost without running the model on every new text."""
    from models import cache

    key = (loaded.fingerprint, cache.stable_hash([list(p) for p in pairs]))
    if key not in _SPE:
        _SPE[key] = seconds_per_evaluation(loaded, pairs, block=block, repeats=1)
    return _SPE[key]


# ---- the study --------------------------------------------------------------------------------

STUDY_SHARES = tuple(round(0.1 * i, 1) for i in range(10))


@dataclass
class StudyResult:
    """Held-out pruning curves with uncertainty. Plain lists (JSON-able).

    shares [S], pruned [S] heads pruned; methods: the named orders (not "random");
    curves {method: [S]} metric on the whole evaluation split; band_lo/band_hi {method: [S]}
    2.5/97.5 % bootstrap percentiles over evaluation pairs; random_runs [seeds][S];
    random_mean/random_std [S] over seeds; random_band_lo/hi [S] bootstrap band of the seed mean;
    z {method: [S]} (method - random mean) / random std (sign: positive = better than random);
    p_worse {method: [S]} share of bootstrap resamples in which the method is not better than
    the random mean (paired resamples); orders {method: [N]} prune orders (flat l*H + h).
    """
    shares: list
    pruned: list
    n_heads: int
    layers: int
    heads: int
    methods: list
    method_text: dict
    metric: str
    higher_is_better: bool
    curves: dict
    band_lo: dict
    band_hi: dict
    random_runs: list
    random_mean: list
    random_std: list
    random_band_lo: list
    random_band_hi: list
    z: dict
    p_worse: dict
    orders: dict
    n_estimate: int
    n_evaluate: int
    estimate_share: float
    split_seed: int
    seeds: int
    bootstrap: int
    default: str
    seconds: dict

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "StudyResult":
        return cls(**d)


def held_out_study(loaded, pairs, *, methods: Sequence[str] | None = None, shares: Sequence[float] = STUDY_SHARES,
                   estimate_share: float = 0.5, split_seed: int = 0, seeds: int = 8, bootstrap: int = BOOTSTRAP,
                   greedy_upto: float = 0.5, block: str | None = None, orders: dict | None = None,
                   progress=None, should_stop=None) -> StudyResult:
    """Estimate each method's prune order on the estimate split, evaluate every order on the
    evaluation split at each share, with random orders (>= 5 seeds) and a paired bootstrap.
    `orders` {method: flat order} skips estimating those (e.g. a cached greedy order).
    progress(done, total) counts order estimates then evaluations."""
    block = block or next(iter(loaded.blocks))
    L, H = loaded.shape(block)
    N = L * H
    methods = list(methods or methods_for(loaded))
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise ValueError(f"unknown methods {sorted(unknown)}; choose from {METHODS}")
    seeds = max(5, int(seeds))
    shares = [float(s) for s in shares]
    ks = [int(round(s * N)) for s in shares]
    estimate, evaluate = split_pairs(pairs, estimate_share, split_seed)
    step = max(1, int(round(0.1 * N)))
    total = [len(methods) + len(ks) * (len(methods) + seeds)]
    done = [0]

    def tick():
        done[0] += 1
        imp._tick(progress, done[0], total[0])

    seconds: dict[str, float] = {}
    order_map: dict[str, list] = {k: list(map(int, v)) for k, v in (orders or {}).items()}
    for m in methods:
        imp._check(should_stop)
        t0 = time.perf_counter()
        if m not in order_map:
            if m == "greedy":
                k = int(round(greedy_upto * N))
                head = greedy_order(loaded, estimate, k, block=block, should_stop=should_stop)
                rest = [j for j in range(N) if j not in set(head.tolist())]
                order_map[m] = head.tolist() + rest
            elif m.endswith("-iterative"):
                order_map[m] = iterative_order(loaded, estimate, m, step=step, upto=max(ks), block=block,
                                               should_stop=should_stop).tolist()
            else:
                order_map[m] = order_from_scores(gate_scores(loaded, estimate, m, block=block,
                                                             should_stop=should_stop)).tolist()
        seconds[m] = time.perf_counter() - t0
        tick()

    ev = _Eval(loaded, imp.prepare_eval(loaded, evaluate), block)
    reference = ev.values(None)
    n_units = len(reference)
    rng = np.random.default_rng(12345)
    idx = rng.integers(0, n_units, size=(int(bootstrap), n_units))
    memo: dict[bytes, np.ndarray] = {}

    def values_at(order, k):
        mask = imp.mask_from_order(order, k, (L, H))
        key = mask.tobytes()
        if key not in memo:
            imp._check(should_stop)
            memo[key] = ev.values(mask)
        return memo[key]

    t0 = time.perf_counter()
    full = {}      # name -> [S]
    boot = {}      # name -> [S, B]
    for m in methods:
        full[m], boot[m] = [], []
        for k in ks:
            v = values_at(order_map[m], k)
            full[m].append(float(metric_of(loaded, v, reference)[0]))
            boot[m].append(metric_of(loaded, v, reference, idx))
            tick()
    rnd_full, rnd_boot = [], []
    for s in range(seeds):
        order = np.random.default_rng(s).permutation(N)
        row, brow = [], []
        for k in ks:
            v = values_at(order, k)
            row.append(float(metric_of(loaded, v, reference)[0]))
            brow.append(metric_of(loaded, v, reference, idx))
            tick()
        rnd_full.append(row)
        rnd_boot.append(brow)
    seconds["evaluation"] = time.perf_counter() - t0
    rnd = np.asarray(rnd_full)                     # [seeds, S]
    rnd_b = np.asarray(rnd_boot).mean(0)           # [S, B] bootstrap of the seed mean
    sign = 1.0 if higher_is_better(loaded) else -1.0
    mean, std = rnd.mean(0), rnd.std(0, ddof=1)
    z, p_worse, lo, hi = {}, {}, {}, {}
    for m in methods:
        f = np.asarray(full[m])
        b = np.asarray(boot[m])                    # [S, B]
        z[m] = [float(sign * (fv - mv) / sv) if sv > 0 else 0.0 for fv, mv, sv in zip(f, mean, std)]
        p_worse[m] = [float(np.mean(sign * (b[i] - rnd_b[i]) <= 0)) for i in range(len(ks))]
        lo[m] = np.percentile(b, 2.5, axis=1).tolist()
        hi[m] = np.percentile(b, 97.5, axis=1).tolist()
    return StudyResult(
        shares=shares, pruned=ks, n_heads=N, layers=L, heads=H, methods=methods,
        method_text={m: METHOD_TEXT[m] for m in methods + ["random"]}, metric=metric_name(loaded),
        higher_is_better=higher_is_better(loaded), curves=full, band_lo=lo, band_hi=hi,
        random_runs=rnd.tolist(), random_mean=mean.tolist(), random_std=std.tolist(),
        random_band_lo=np.percentile(rnd_b, 2.5, axis=1).tolist(),
        random_band_hi=np.percentile(rnd_b, 97.5, axis=1).tolist(), z=z, p_worse=p_worse,
        orders=order_map, n_estimate=len(estimate), n_evaluate=len(evaluate), estimate_share=float(estimate_share),
        split_seed=int(split_seed), seeds=seeds, bootstrap=int(bootstrap),
        default=default_method(loaded) if default_method(loaded) in methods else methods[0], seconds=seconds)


# ---- cached wrappers (models.cache JSON store, shared by all workers) -------------------------

def cached_greedy(loaded, pairs, *, estimate_share: float = 0.5, split_seed: int = 0, upto: float = 0.5,
                  block: str | None = None, store=None, progress=None, should_stop=None) -> dict:
    """{"order": [k] flat heads, "k", "n_estimate", "seconds"}: greedy_order on the estimate split
    of `pairs`, through the JSON cache."""
    store = imp._store(store)
    block = block or next(iter(loaded.blocks))
    key = imp._key("greedy-order", loaded, pairs, estimate_share=float(estimate_share), split_seed=int(split_seed),
                   upto=float(upto), block=block, schema=SCHEMA)
    hit = store.get_json(key)
    if hit is not None:
        return hit
    L, H = loaded.shape(block)
    estimate = greedy_subset(pairs, estimate_share, split_seed)
    k = int(round(float(upto) * L * H))
    t0 = time.perf_counter()
    order = greedy_order(loaded, estimate, k, block=block, progress=progress, should_stop=should_stop)
    out = {"order": order.tolist(), "k": k, "n_estimate": len(estimate), "seconds": time.perf_counter() - t0}
    store.put_json(key, out)
    return out


def greedy_subset(pairs, estimate_share: float = 0.5, split_seed: int = 0, n: int = GREEDY_PAIRS) -> list:
    """The first `n` pairs of the estimate split (greedy's cost grows with them; never evaluation pairs)."""
    estimate, _ = split_pairs(pairs, estimate_share, split_seed)
    return estimate[:n]


def peek_greedy(loaded, pairs, *, estimate_share: float = 0.5, split_seed: int = 0, upto: float = 0.5,
                block: str | None = None, store=None) -> list | None:
    """The cached greedy order (flat heads) of `pairs`, or None when it was never computed."""
    store = imp._store(store)
    block = block or next(iter(loaded.blocks))
    key = imp._key("greedy-order", loaded, pairs, estimate_share=float(estimate_share), split_seed=int(split_seed),
                   upto=float(upto), block=block, schema=SCHEMA)
    hit = store.get_json(key)
    return None if hit is None else hit["order"]


def cached_study(loaded, pairs, *, methods: Sequence[str], seeds: int = 8, estimate_share: float = 0.5,
                 split_seed: int = 0, bootstrap: int = BOOTSTRAP, shares: Sequence[float] = STUDY_SHARES,
                 block: str | None = None, store=None, progress=None, should_stop=None) -> StudyResult:
    """held_out_study through the JSON cache. "greedy" is taken from cached_greedy's result when
    it is in `methods` (compute it first: it is the expensive one)."""
    store = imp._store(store)
    block = block or next(iter(loaded.blocks))
    methods = list(methods)
    orders = {}
    if "greedy" in methods:
        g = peek_greedy(loaded, pairs, estimate_share=estimate_share, split_seed=split_seed, block=block, store=store)
        if g is None:
            raise ValueError("run the greedy leave-one-out job first (it is the expensive reference)")
        L, H = loaded.shape(block)
        orders["greedy"] = g + [j for j in range(L * H) if j not in set(g)]
    key = imp._key("held-out-study", loaded, pairs, methods=methods, seeds=int(seeds),
                   estimate_share=float(estimate_share), split_seed=int(split_seed), bootstrap=int(bootstrap),
                   shares=[float(s) for s in shares], block=block, greedy=orders.get("greedy"), schema=SCHEMA)
    hit = store.get_json(key)
    if hit is not None:
        return StudyResult.from_dict(hit)
    res = held_out_study(loaded, pairs, methods=methods, seeds=seeds, estimate_share=estimate_share,
                         split_seed=split_seed, bootstrap=bootstrap, shares=shares, block=block, orders=orders,
                         progress=progress, should_stop=should_stop)
    store.put_json(key, res.to_dict())
    return res
