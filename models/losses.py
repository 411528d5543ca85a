"""What "importance" is importance *for*: a model's task loss, with heads gated
(models.interventions.head_gates; the shared loaded model is never changed).

    task_loss(loaded, batch, gates)   -> (loss: scalar tensor, loss_name: str)
    embed(loaded, texts, gates)       -> float32 [texts, hidden] L2-normalised sentence embeddings
    loss_name(loaded)                 -> what the loss is, in words

* sentence-embedding model (`loaded.head == "none"`, e.g. all-MiniLM-L6-v2): the loss the model
  was trained with, in-batch contrastive MultipleNegativesRanking / InfoNCE over sentence pairs:
  embeddings e = mean_pool(last_hidden_state) (L2-normalised), logits 20 * cos(a_i, b_j),
  cross-entropy with target j = i. (A "distance to the unpruned output" loss has zero gradient
  at ξ = 1 and cannot rank heads.)
* "causal-lm": next-token cross-entropy; "masked-lm": cross-entropy on 15% of the (non-special)
  tokens replaced by [MASK], chosen deterministically per text from `seed`; "seq2seq-lm":
  cross-entropy of the target given the source (pair a -> b; a lone text is its own target).
"""
from __future__ import annotations

import contextlib
import zlib
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from models import interventions
from models.attention import gate_dict, mean_pool
from models.pairs import _examples

MAX_TOKENS = 128  # per text in loss / metric batches (paraphrase sentences are short)
ENCODE_BATCH = 64  # texts per forward pass when only embeddings are needed
SCALE = 20.0  # sentence-transformers MultipleNegativesRankingLoss default scale
MASK_RATE = 0.15


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


def _gated(loaded, gates):
    g = gate_dict(loaded, gates)
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
