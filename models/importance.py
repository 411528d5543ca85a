"""Head importance, ablation and pruning curves: which attention heads a model's task needs.

Pure engine code (no Dash). Everything works on a `LoadedModel` (or the LoadedModel-like
`pruning.PrunedModel`) and gates heads through `interventions.head_gates`, so the shared
loaded model is never changed.

    load_pairs(path=None) / parse_pairs(text)              -> [(a, b), ...] paraphrase pairs
    task_loss(loaded, batch, gates)                        -> (loss: scalar tensor, loss_name: str)
    pair_metrics(loaded, pairs, gates, reference=...)      -> {"retrieval_acc", "spearman", "loss", ...}
    head_importance(loaded, pairs_or_texts)                -> ImportanceResult (scores [L,H])
    ablation_scores(loaded, pairs, metric="loss")          -> float32 [L,H], drop in metric per head
    head_entropy(loaded, texts)                            -> float32 [L,H], mean attention entropy (bits)
    pruning_curve(loaded, pairs)                           -> CurveResult (metric vs share pruned)
    cached_importance / cached_ablation / cached_curve     -> the same, through models.cache JSON

The task loss (what "importance" is importance *for*):

* sentence-embedding model (`loaded.head == "none"`, e.g. all-MiniLM-L6-v2): the loss the model
  was trained with, in-batch contrastive MultipleNegativesRanking / InfoNCE over sentence pairs:
  embeddings e = mean_pool(last_hidden_state) (L2-normalised), logits 20 * cos(a_i, b_j),
  cross-entropy with target j = i. (A "distance to the unpruned output" loss has zero gradient
  at ξ = 1 and cannot rank heads.)
* "causal-lm": next-token cross-entropy; "masked-lm": cross-entropy on 15% of the (non-special)
  tokens replaced by [MASK], chosen deterministically per text from `seed`; "seq2seq-lm":
  cross-entropy of the target given the source (pair a -> b; a lone text is its own target).

Importance (Michel, Levy & Neubig 2019, "Are Sixteen Heads Really Better than One?"): gates
ξ[L,H] = 1 with requires_grad multiply each head's output; one backward pass per batch gives
∂L/∂ξ for every head; I_h = Σ_batches |∂L_batch/∂ξ_h|, then each layer's row is divided by its
L2 norm.
"""
from __future__ import annotations

import contextlib
import math
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from models import interventions
from models.attention import mean_pool

DATA_DIR = Path(__file__).parent / "data"
PAIRS_FILE = DATA_DIR / "paraphrase_pairs.tsv"
MAX_PAIRS = 2000  # uploaded sets larger than this are refused (the page runs ~100 forward passes)
MAX_TOKENS = 128  # per text in loss / metric batches (paraphrase sentences are short)
ENCODE_BATCH = 64  # texts per forward pass when only embeddings are needed
SCALE = 20.0  # sentence-transformers MultipleNegativesRankingLoss default scale
MASK_RATE = 0.15
SCHEMA = 1  # bump when cached results change meaning

# metric name -> +1 if higher is better, -1 if lower is better
METRIC_SIGN = {"retrieval_acc": 1.0, "spearman": 1.0, "mean_cosine": 1.0, "loss": -1.0, "perplexity": -1.0}

Progress = Callable[[int, int], None] | None
ShouldStop = Callable[[], bool] | None


class Cancelled(Exception):
    """Raised when `should_stop()` returned True: the user cancelled a long computation."""


# ---- paraphrase pairs ---------------------------------------------------------------------------

def parse_pairs(text: str, *, min_pairs: int = 2, max_pairs: int = MAX_PAIRS) -> list[tuple[str, str]]:
    """Sentence pairs from text: one pair per line, `a<TAB>b` or `a ||| b`.

    Blank lines and lines starting with '#' are skipped. Raises ValueError naming the first bad
    line (1-based) when a line has no separator or an empty side, or when there are fewer than
    `min_pairs` (the contrastive loss needs at least 2) or more than `max_pairs` pairs.
    """
    if not isinstance(text, str):
        raise ValueError("pairs must be text: one 'sentence A<TAB>sentence B' per line")
    pairs = []
    for n, line in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if "\t" in line:
            parts = line.split("\t")
        elif "|||" in line:
            parts = line.split("|||")
        else:
            raise ValueError(f"line {n}: no separator; write 'sentence A<TAB>sentence B' or "
                             f"'sentence A ||| sentence B' (got {stripped[:60]!r})")
        parts = [p.strip() for p in parts]
        if len(parts) != 2:
            raise ValueError(f"line {n}: expected exactly two sentences, found {len(parts)} parts")
        if not parts[0] or not parts[1]:
            raise ValueError(f"line {n}: one side of the pair is empty")
        pairs.append((parts[0], parts[1]))
        if len(pairs) > max_pairs:
            raise ValueError(f"line {n}: more than {max_pairs} pairs; use a smaller set")
    if len(pairs) < min_pairs:
        raise ValueError(f"need at least {min_pairs} sentence pairs, found {len(pairs)}")
    return pairs


def load_pairs(path: str | Path | None = None) -> list[tuple[str, str]]:
    """The bundled 64 paraphrase pairs (models/data/paraphrase_pairs.tsv), or a file of pairs."""
    return parse_pairs(Path(path or PAIRS_FILE).read_text(encoding="utf-8"))


def _examples(pairs_or_texts) -> tuple[list[tuple[str, str]] | None, list[str]]:
    """(pairs or None, flat texts). Accepts [(a, b), ...] or [text, ...]."""
    items = list(pairs_or_texts)
    if not items:
        raise ValueError("no examples given")
    if all(isinstance(x, str) for x in items):
        return None, items
    pairs = []
    for x in items:
        if isinstance(x, (tuple, list)) and len(x) == 2 and all(isinstance(s, str) for s in x):
            pairs.append((x[0], x[1]))
        else:
            raise ValueError(f"examples must be all texts or all (a, b) pairs; got {x!r:.80}")
    return pairs, [s for p in pairs for s in p]


def _batches(items: list, batch_size: int) -> list[list]:
    """Chunks of `batch_size`; a trailing chunk of 1 joins the previous one (an in-batch
    contrastive loss over one pair is 0 with zero gradient)."""
    batch_size = max(2, int(batch_size))
    chunks = [items[i:i + batch_size] for i in range(0, len(items), batch_size)]
    if len(chunks) > 1 and len(chunks[-1]) < 2:
        chunks[-2].extend(chunks.pop())
    return chunks


# ---- inputs -----------------------------------------------------------------------------------

def _param_dtype(loaded) -> torch.dtype:
    return next(loaded.model.parameters()).dtype


def _pad_id(tok) -> int:
    for tid in (tok.pad_token_id, tok.eos_token_id, 0):
        if tid is not None:
            return int(tid)
    return 0


def _pad(seqs: list[list[int]], value: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids [B, T] and attention mask [B, T] (1 = real token)."""
    T = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), T), value, dtype=torch.long)
    mask = torch.zeros((len(seqs), T), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s, dtype=torch.long)
        mask[i, :len(s)] = 1
    return ids, mask


def _tokenize(loaded, texts: list[str], max_tokens: int) -> dict:
    # the tokenizer is shared: never change it (no pad token assignment etc.); pad ourselves
    return loaded.tokenizer(list(texts), truncation=True, max_length=max_tokens,
                            return_special_tokens_mask=True)


def _text_inputs(loaded, texts: list[str], max_tokens: int = MAX_TOKENS) -> dict:
    """Padded model inputs for plain texts: input_ids, attention_mask (+ token_type_ids 0 for BERT)."""
    enc = _tokenize(loaded, texts, max_tokens)
    ids, mask = _pad(enc["input_ids"], _pad_id(loaded.tokenizer))
    inputs = {"input_ids": ids, "attention_mask": mask}
    if "token_type_ids" in enc and loaded.architecture == "encoder":
        inputs["token_type_ids"] = torch.zeros_like(ids)
    return inputs


def _gate_dict(loaded, gates) -> dict | None:
    """None | tensor/array [L,H] (main block) | {block: [L,H]} -> {block: tensor} or None."""
    if gates is None:
        return None
    if not isinstance(gates, dict):
        gates = {next(iter(loaded.blocks)): gates}
    out = {}
    for block, g in gates.items():
        if not torch.is_tensor(g):
            g = torch.as_tensor(np.asarray(g, dtype=np.float32))
        expected = loaded.shape(block)
        if tuple(g.shape) != tuple(expected):
            raise ValueError(f"gates for block {block!r} have shape {tuple(g.shape)}, expected {expected}")
        out[block] = g
    return out


def _gated(loaded, gates):
    g = _gate_dict(loaded, gates)
    return interventions.head_gates(g) if g else contextlib.nullcontext()


def loss_name(loaded) -> str:
    """Human name of the task loss used for `loaded` (shown on the page)."""
    if loaded.head == "causal-lm":
        return "next-token cross-entropy (causal language-model loss)"
    if loaded.head == "masked-lm":
        return f"masked-token cross-entropy ({MASK_RATE:.0%} of tokens masked, fixed seed)"
    if loaded.head == "seq2seq-lm":
        return "sequence-to-sequence cross-entropy (target given source)"
    return (f"contrastive MultipleNegativesRanking loss (in-batch InfoNCE over sentence pairs, "
            f"cosine x {SCALE:g})")


def _is_embedding(loaded) -> bool:
    return loaded.head not in ("causal-lm", "masked-lm", "seq2seq-lm")


# ---- embeddings -------------------------------------------------------------------------------

def _forward_embed(loaded, inputs: dict) -> torch.Tensor:
    out = loaded.model(**inputs)
    hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
    return mean_pool(hidden, inputs["attention_mask"])


@dataclass
class _Encoded:
    """Texts tokenised once, sorted by length into padded batches: [(indices, inputs), ...]."""
    n: int
    batches: list


def _encode_sorted(loaded, texts: list[str], batch: int = ENCODE_BATCH, max_tokens: int = MAX_TOKENS) -> _Encoded:
    enc = _tokenize(loaded, texts, max_tokens)
    order = sorted(range(len(texts)), key=lambda i: len(enc["input_ids"][i]))
    pad = _pad_id(loaded.tokenizer)
    out = []
    for s in range(0, len(order), batch):
        idx = order[s:s + batch]
        ids, mask = _pad([enc["input_ids"][i] for i in idx], pad)
        inputs = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in enc and loaded.architecture == "encoder":
            inputs["token_type_ids"] = torch.zeros_like(ids)
        out.append((idx, inputs))
    return _Encoded(len(texts), out)


def embed(loaded, texts, gates=None, *, batch: int = ENCODE_BATCH) -> np.ndarray:
    """float32 [n_texts, hidden]: L2-normalised mean-pooled sentence embeddings, padded batches
    (padding does not change an embedding: the attention mask hides pad keys, pooling skips them)."""
    encoded = texts if isinstance(texts, _Encoded) else _encode_sorted(loaded, list(texts), batch)
    result = None
    with torch.inference_mode(), _gated(loaded, gates):
        for idx, inputs in encoded.batches:
            e = _forward_embed(loaded, inputs).float().numpy()
            if result is None:
                result = np.zeros((encoded.n, e.shape[1]), dtype=np.float32)
            result[idx] = e
    return result


def _infonce(ea: torch.Tensor, eb: torch.Tensor) -> torch.Tensor:
    """MultipleNegativesRanking: ea, eb [B, hidden] L2-normalised -> mean CE of 20*cos rows vs diagonal."""
    logits = SCALE * ea @ eb.T
    return F.cross_entropy(logits, torch.arange(ea.shape[0]))


# ---- language-model losses ---------------------------------------------------------------------

def _mask_positions(text: str, special: list[int], seed: int) -> list[int]:
    """Token positions to mask: 15% (at least 1) of the non-special ones, fixed per (text, seed)."""
    cand = [i for i, s in enumerate(special) if not s]
    if not cand:
        return []
    k = max(1, int(round(MASK_RATE * len(cand))))
    rng = np.random.default_rng([seed, zlib.crc32(text.encode("utf-8"))])
    return sorted(int(i) for i in rng.choice(cand, size=k, replace=False))


def _lm_inputs(loaded, examples: list, seed: int) -> tuple[dict, torch.Tensor, bool]:
    """(model inputs, labels [B, T] with -100 ignored, shift?) for one batch of an LM-headed model."""
    tok = loaded.tokenizer
    pad = _pad_id(tok)
    if loaded.head == "seq2seq-lm":
        src = [e[0] if isinstance(e, tuple) else e for e in examples]
        tgt = [e[1] if isinstance(e, tuple) else e for e in examples]
        s_enc, t_enc = _tokenize(loaded, src, MAX_TOKENS), _tokenize(loaded, tgt, MAX_TOKENS)
        ids, mask = _pad(s_enc["input_ids"], pad)
        lab, lmask = _pad(t_enc["input_ids"], pad)
        labels = lab.masked_fill(lmask == 0, -100)
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}, labels, False
    texts = [s for e in examples for s in (e if isinstance(e, tuple) else (e,))]
    enc = _tokenize(loaded, texts, MAX_TOKENS)
    ids, mask = _pad(enc["input_ids"], pad)
    inputs = {"input_ids": ids, "attention_mask": mask}
    if loaded.head == "causal-lm":
        return inputs, ids.masked_fill(mask == 0, -100), True
    # masked-lm
    if tok.mask_token_id is None:
        raise ValueError(f"model {loaded.name!r} has a masked-LM head but its tokenizer has no mask token")
    labels = torch.full_like(ids, -100)
    masked = ids.clone()
    for i, text in enumerate(texts):
        for p in _mask_positions(text, enc["special_tokens_mask"][i], seed):
            labels[i, p] = ids[i, p]
            masked[i, p] = tok.mask_token_id
    inputs["input_ids"] = masked
    if "token_type_ids" in enc:
        inputs["token_type_ids"] = torch.zeros_like(ids)
    return inputs, labels, False


def _lm_loss_sum(loaded, inputs: dict, labels: torch.Tensor, shift: bool) -> tuple[torch.Tensor, int]:
    logits = loaded.model(**inputs).logits
    if shift:
        logits, labels = logits[:, :-1], labels[:, 1:]
    n = int((labels != -100).sum())
    total = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1),
                            ignore_index=-100, reduction="sum")
    return total, n


def task_loss(loaded, batch, gates=None, *, seed: int = 0) -> tuple[torch.Tensor, str]:
    """The model's task loss on one batch, with head gates applied: (scalar tensor, loss name).

    batch: for a sentence-embedding model, (a, b) pairs (at least 2: negatives are the other
    pairs of the batch); for LM heads, texts or pairs (causal/masked: both sides used as texts;
    seq2seq: a is the source, b the target). gates: None, tensor [L,H] for the main block (may
    require grad: the loss is differentiable in it) or {block: [L,H]}.
    Runs with autograd as the caller set it (wrap in torch.enable_grad() for gradients).
    """
    pairs, texts = _examples(batch)
    name = loss_name(loaded)
    with _gated(loaded, gates):
        if _is_embedding(loaded):
            if pairs is None:
                raise ValueError("a sentence-embedding model's loss needs sentence pairs (a, b), not single texts")
            if len(pairs) < 2:
                raise ValueError("the in-batch contrastive loss needs at least 2 pairs per batch")
            inputs = _text_inputs(loaded, [a for a, _ in pairs] + [b for _, b in pairs])
            emb = _forward_embed(loaded, inputs)
            return _infonce(emb[:len(pairs)], emb[len(pairs):]), name
        inputs, labels, shift = _lm_inputs(loaded, pairs if pairs is not None else texts, seed)
        total, n = _lm_loss_sum(loaded, inputs, labels, shift)
        return total / max(n, 1), name


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
    n_imp = len(_batches(items, batch_size)) if need_imp else 0
    n_abl = N + 1 if need_abl else 0
    n_ent = len(ent_texts) if need_ent else 0
    # the masks: deduplicated (share 0 is the same everywhere)
    seeds = max(1, int(seeds))
    total = [n_imp + n_abl + n_ent + len(ks) * (len(orders) - ("random" in orders) + seeds * ("random" in orders))]
    done = [0]

    def sub(offset):
        return lambda d, _t: _tick(progress, offset + d, total[0])

    scores: dict[str, np.ndarray] = {}
    loss_nm = loss_name(loaded)
    if "importance" in orders:
        if importance is None:
            res = head_importance(loaded, items, batch_size=batch_size, block=block,
                                  progress=sub(done[0]), should_stop=should_stop)
            importance = res.scores
        scores["importance"] = np.asarray(importance, dtype=np.float32)
        done[0] += n_imp
    if "ablation" in orders:
        if ablation is None:
            ablation = ablation_scores(loaded, ev, metric=ablation_metric, block=block,
                                       progress=sub(done[0]), should_stop=should_stop)
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
                row.append(memo[key])
                done[0] += 1
                _tick(progress, done[0], total[0])
            runs.append(row)
        curves[name], std[name] = {}, {}
        for m in names:
            vals = np.array([[r[m] for r in row] for row in runs], dtype=np.float64)  # [n_orders, S]
            curves[name][m] = [float(v) for v in vals.mean(0)]
            std[name][m] = [float(v) for v in vals.std(0)]
    base = memo.get(np.ones((L, H), np.float32).tobytes()) or pair_metrics(loaded, ev)
    return CurveResult(
        shares=shares, pruned=ks, n_heads=N, layers=L, heads=H, orders=list(orders), metrics=names,
        primary=default_metric(loaded), curves=curves, std=std,
        baseline={m: float(base[m]) for m in names},
        scores={k: v.tolist() for k, v in scores.items()}, loss_name=loss_nm,
        n_examples=len(items), seeds=seeds, seconds=time.perf_counter() - t0)


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
    L, H = loaded.shape(block)
    # progress over both phases: scores (importance batches + ablation heads), then the curve
    ex_pairs, ex_texts = _examples(pairs)
    n_items = len(ex_pairs) if ex_pairs is not None else len(ex_texts)
    first = (len(_batches(list(range(n_items)), batch_size)) if "importance" in orders else 0) + \
        (L * H + 1 if "ablation" in orders else 0)
    second = len(shares) * (len(orders) - ("random" in orders) + max(1, int(seeds)) * ("random" in orders)) + \
        (min(len(ex_texts), 256) if "entropy" in orders else 0)
    offset = [0]

    def phase(d, _t):
        _tick(progress, offset[0] + d, first + second)

    importance = ablation = None
    if "importance" in orders:
        importance = cached_importance(loaded, pairs, batch_size=batch_size, block=block, store=store,
                                       progress=phase, should_stop=should_stop).scores
        offset[0] = len(_batches(list(range(n_items)), batch_size))
    if "ablation" in orders:
        ablation = cached_ablation(loaded, pairs, metric=ablation_metric, batch_size=batch_size, block=block,
                                   store=store, progress=phase, should_stop=should_stop)
    offset[0] = first
    res = pruning_curve(loaded, pairs, shares=shares, orders=orders, seeds=seeds, batch_size=batch_size,
                        block=block, importance=importance, ablation=ablation,
                        ablation_metric=ablation_metric,
                        progress=None if progress is None else phase, should_stop=should_stop)
    _tick(progress, first + second, first + second)
    store.put_json(key, res.to_dict())
    return res
