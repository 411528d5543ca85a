"""Attention measures beyond raw weights: each gives a [query, key] matrix per layer (and head).

Pure engine code (no Dash). The pure functions take plain arrays; `compute` runs the model once
(forward + one backward pass) to get the arrays they need.

    rollout(weights [L,H,T,T])                      -> float32 [L,T,T]
    value_norm(weights [H,T,T], f [H,T,d])          -> (per head [H,T,T], layer [T,T])
    grad_x_attention(weights, grads)                -> float32, same shape (elementwise product)
    compute(loaded, text, text_pair)                -> Measures: every measure for one text (pair)

Measures (MEASURE_TEXT has the formula and caveat the page shows):

* "raw": the attention weights α^{l,h}_{ij} the softmax produced.
* "rollout" (Abnar & Zuidema 2020): per layer Â_l = normalise_rows(mean_h α^{l,h} + I) (the
  identity stands for the residual connection), R_l = Â_l Â_{l-1} ... Â_0: how much each input
  token (key) flows into each position (query) after layer l. Heads are averaged by definition.
* "value-norm" (Kobayashi et al. 2020): ‖α^{l,h}_{ij} f^{l,h}(x_j)‖ with
  f^{l,h}(x) = (x W_V^h + b_V^h) W_O^h: the size of what head h actually moves from key j into
  query i (a large weight on a token with a tiny transformed vector moves little). For the mean
  of heads: ‖Σ_h α^{l,h}_{ij} f^{l,h}(x_j)‖ (the layer's whole attention output, as in the paper).
* "grad-attention": α ⊙ ∂y/∂α for a target y: the language-model loss for LM heads (causal:
  next-token cross-entropy of the text); for a sentence-embedding model the cosine between the
  mean-pooled embeddings of the two sentences of a pair (segment A vs segment B tokens of the
  same forward pass, special tokens left out). The mean of heads averages the signed products.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch

from models import interventions

MEASURES = ("raw", "rollout", "value-norm", "grad-attention")
MEASURE_LABELS = {"raw": "raw weights", "rollout": "attention rollout", "value-norm": "value-norm ‖α f(x)‖",
                  "grad-attention": "gradient × attention"}
MEASURE_TEXT = {
    "raw": ("α_ij = softmax_j(q_i·k_j / √d): the weights the model computed.",
            "Weights are not explanations: a head can put weight on a token whose value vector is tiny "
            "(Kobayashi et al. 2020), and later layers mix tokens (Abnar & Zuidema 2020)."),
    "rollout": ("Â_l = rownorm(mean_h α^{l,h} + I); R_l = Â_l · Â_{l−1} ··· Â_0 (Abnar & Zuidema 2020).",
                "Assumes attention and the residual mix tokens linearly and equally (weight ½ each) and ignores "
                "value vectors, MLPs and layer norms; heads are averaged, so the head choice does not apply. "
                "Rows sum to 1."),
    "value-norm": ("‖α_ij f(x_j)‖ with f(x) = (x W_V^h + b_V^h) W_O^h (Kobayashi et al. 2020); mean of heads: "
                   "‖Σ_h α^h_ij f^h(x_j)‖.",
                   "Measures what one layer's attention moves, before the residual, the output bias and the "
                   "layer norm; not comparable across models with different hidden sizes."),
    "grad-attention": ("α_ij · ∂y/∂α_ij for the target y named on the page (one backward pass).",
                       "A first-order (local) estimate: it says how y would change for a small change of the "
                       "weight, not what removing it does; the sign matters (the heatmap shows the magnitude, "
                       "the numbers keep the sign). Gradients saturate."),
}
_CACHE_SIZE = 3  # Measures of a 512-token text hold ~120 MB (float16 [L,H,T,T] x 3)
_ROWS = 32


def _f32(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)


def rollout(weights) -> np.ndarray:
    """Attention rollout. weights [L,H,T,T] (self-attention; rows sum to 1) -> float32 [L,T,T],
    entry [l] = R_l, the rollout through layers 0..l."""
    w = _f32(weights)
    if w.ndim != 4 or w.shape[-1] != w.shape[-2]:
        raise ValueError(f"rollout needs self-attention weights [L,H,T,T], got {w.shape}")
    T = w.shape[-1]
    eye = np.eye(T, dtype=np.float64)
    out = np.zeros((w.shape[0], T, T), dtype=np.float32)
    r = eye
    for layer in range(w.shape[0]):
        a = w[layer].astype(np.float64).mean(0) + eye
        a = a / a.sum(-1, keepdims=True)
        r = a @ r
        out[layer] = r
    return out


def value_norm(weights, f) -> tuple[np.ndarray, np.ndarray]:
    """Kobayashi et al. norms for one layer. weights [H,Tq,Tk]; f [H,Tk,d] the transformed value
    vectors f^h(x_j). Returns (per head float32 [H,Tq,Tk] = α^h_ij ‖f^h(x_j)‖,
    layer float32 [Tq,Tk] = ‖Σ_h α^h_ij f^h(x_j)‖)."""
    w, f = _f32(weights), _f32(f)
    if w.ndim != 3 or f.ndim != 3 or w.shape[0] != f.shape[0] or w.shape[2] != f.shape[1]:
        raise ValueError(f"value_norm needs weights [H,Tq,Tk] and f [H,Tk,d], got {w.shape} and {f.shape}")
    per_head = w * np.linalg.norm(f, axis=-1)[:, None, :]
    layer = np.zeros(w.shape[1:], dtype=np.float32)
    for q0 in range(0, w.shape[1], _ROWS):  # [rows, Tk, d] at a time: bounded memory at 512 tokens
        summed = np.einsum("hij,hjd->ijd", w[:, q0:q0 + _ROWS], f)
        layer[q0:q0 + _ROWS] = np.linalg.norm(summed, axis=-1)
    return per_head.astype(np.float32), layer


def grad_x_attention(weights, grads) -> np.ndarray:
    """α ⊙ ∂y/∂α, elementwise, any matching shapes -> float32."""
    w, g = _f32(weights), _f32(grads)
    if w.shape != g.shape:
        raise ValueError(f"weights {w.shape} and gradients {g.shape} differ")
    return w * g


@dataclass(frozen=True)
class Measures:
    """Every measure for one text (pair), main self-attention block.

    raw float16 [L,H,T,T]; rollout float32 [L,T,T]; value_norm float16 [L,H,T,T] and
    value_norm_layer [L,T,T] (None with `value_error` for non-BERT families); grad float32 [L,H,T,T] (signed) or None with `target_error` saying
    why; target: the name of y; tokens: the T token labels."""
    raw: np.ndarray
    rollout: np.ndarray
    value_norm: np.ndarray | None
    value_norm_layer: np.ndarray | None
    value_error: str
    grad: np.ndarray | None  # float16 [L,H,T,T], signed
    target: str
    target_error: str
    tokens: tuple

    def matrix(self, measure: str, layer: int, head: int | None) -> np.ndarray:
        """float32 [T,T] for `measure` at `layer` and `head` (None = mean of heads / the layer)."""
        return np.asarray(self._matrix(measure, layer, head), dtype=np.float32)

    def _matrix(self, measure: str, layer: int, head: int | None) -> np.ndarray:
        if measure == "raw":
            return self.raw[layer].astype(np.float32).mean(0) if head is None else self.raw[layer, head]
        if measure == "rollout":
            return self.rollout[layer]
        if measure == "value-norm":
            if self.value_norm is None:
                raise ValueError(self.value_error)
            return self.value_norm_layer[layer] if head is None else self.value_norm[layer, head]
        if measure == "grad-attention":
            if self.grad is None:
                raise ValueError(self.target_error)
            return self.grad[layer].astype(np.float32).mean(0) if head is None else self.grad[layer, head]
        raise ValueError(f"unknown measure {measure!r}; one of {MEASURES}")


def _attention_modules(loaded) -> list:
    """[(self-attention module, its parent module)] of the main block, in layer order. Value-norm
    reads the layer input as the attention input: true for post-LN BERT-family encoders."""
    model = loaded.model
    parents = {}
    for name, mod in model.named_modules():
        for child_name, child in mod.named_children():
            parents[id(child)] = mod
    mods = interventions.index_attention_modules(model)[next(iter(loaded.blocks))]
    return [(m, parents.get(id(m))) for m in mods]


def _segments(inputs, special: list[bool]) -> tuple[list[int], list[int]]:
    tt = inputs.get("token_type_ids")
    if tt is None:
        return [], []
    tt = tt[0].tolist()
    a = [i for i, t in enumerate(tt) if t == 0 and not special[i]]
    b = [i for i, t in enumerate(tt) if t == 1 and not special[i]]
    return a, b


def target_name(loaded, has_pair: bool) -> str:
    if loaded.head == "causal-lm":
        return "y = next-token cross-entropy of the text (causal LM loss)"
    if loaded.head == "masked-lm":
        return "y = cross-entropy of predicting each (unmasked) input token (masked-LM head)"
    if has_pair:
        return "y = cos(mean embedding of sentence A's tokens, of sentence B's tokens), one forward pass of the pair"
    return "y = cosine between the two sentences of a pair: enter a second text"


_lock = threading.Lock()
_cache: "OrderedDict[tuple, Measures]" = OrderedDict()
_inflight: dict[tuple, threading.Lock] = {}  # key -> lock held while one thread computes it


def compute(loaded, text: str, text_pair: str | None = None, *, max_tokens: int | None = None) -> Measures:
    """One forward (attentions + hidden states) and one backward pass (for gradient × attention)
    of the main self-attention block. Cached per process (last _CACHE_SIZE texts); concurrent
    calls for the same text wait for the one computing it (the page's heatmap, inspector and text
    view ask at the same moment) instead of running the model three times."""
    from models.attention import _clean

    if loaded.architecture == "encoder-decoder":
        raise NotImplementedError("measures are available for encoder and decoder-only models")
    text = _clean(text, "The text", required=True)
    text_pair = _clean(text_pair, "The second text", required=False)
    limit = loaded.max_tokens if max_tokens is None else max(4, min(int(max_tokens), loaded.max_tokens))
    key = (loaded.fingerprint, text, text_pair, limit)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
        flight = _inflight.setdefault(key, threading.Lock())
    with flight:
        with _lock:
            if key in _cache:  # computed by the thread this one waited for
                _cache.move_to_end(key)
                return _cache[key]
        try:
            res = _compute(loaded, text, text_pair, limit)
            with _lock:
                _cache[key] = res
                while len(_cache) > _CACHE_SIZE:
                    _cache.popitem(last=False)
        finally:
            with _lock:
                _inflight.pop(key, None)
        return res


def _compute(loaded, text: str, text_pair: str | None, limit: int) -> Measures:
    """compute's work, uncached (text and text_pair already cleaned, limit in tokens)."""
    from models.attention import forward_inputs

    inputs, tokens, _, _ = forward_inputs(loaded, text, text_pair, limit)
    inputs = dict(inputs)
    inputs.pop("labels", None)
    ids = inputs.pop("input_ids")
    try:
        modules = _attention_modules(loaded)
    except (KeyError, LookupError):  # a family on the fallback path: its modules are not indexed by block
        modules = []
    # no hooks on the shared model (other threads run it too): the input of a BERT layer's
    # self-attention is the layer's input, hidden_states[layer]
    with torch.inference_mode(False), torch.enable_grad():
        emb = loaded.model.get_input_embeddings()(ids).detach().requires_grad_(True)
        out = loaded.model(inputs_embeds=emb, output_attentions=True, output_hidden_states=True, **inputs)
    atts = out.attentions  # L x [1,H,T,T]
    raw = torch.stack([a[0] for a in atts]).detach().float().numpy()  # [L,H,T,T]
    # value-norm: f^h(x_j) = (x_j W_V^h + b_V^h) W_O^h
    vn, vn_layer, vn_error = [], [], ""
    if not modules:
        vn_error = (f"Value-norm is implemented for BERT-family encoders that run through the dashboard's "
                    f"attention function; {loaded.name} is read through its own eager attention (fallback).")
    for layer, (mod, parent) in enumerate(modules):
        value = getattr(mod, "value", None)
        dense = getattr(getattr(parent, "output", None), "dense", None)
        if value is None or dense is None or out.hidden_states is None:
            vn_error = (f"Value-norm is implemented for BERT-family encoders (a value projection and an output "
                        f"dense layer); {loaded.name} has {type(mod).__name__}.")
            break
        with torch.no_grad():
            x = out.hidden_states[layer][0].detach().float()      # [T, hidden], the layer's input
            v = value(x)                                           # [T, H*dh]
            H = raw.shape[1]
            dh = v.shape[-1] // H
            v = v.view(v.shape[0], H, dh).transpose(0, 1)          # [H, T, dh]
            wo = dense.weight.view(dense.weight.shape[0], H, dh)   # [hidden, H, dh]
            f = torch.einsum("htd,ohd->hto", v, wo).numpy()        # [H, T, hidden]
        ph, ly = value_norm(raw[layer], f)
        vn.append(ph)
        vn_layer.append(ly)
    # gradient x attention
    grad, err = None, ""
    special = [t.special for t in tokens]
    has_pair = text_pair is not None
    y = None
    with torch.inference_mode(False), torch.enable_grad():
        if loaded.head == "causal-lm" and hasattr(out, "logits"):
            logits = out.logits[0, :-1]
            y = torch.nn.functional.cross_entropy(logits.float(), ids[0, 1:])
        elif loaded.head == "masked-lm" and hasattr(out, "logits"):
            y = torch.nn.functional.cross_entropy(out.logits[0].float(), ids[0])
        elif loaded.head == "none":
            a_idx, b_idx = _segments(inputs, special)
            if has_pair and a_idx and b_idx:
                hidden = out.last_hidden_state[0]
                ea, eb = hidden[a_idx].mean(0), hidden[b_idx].mean(0)
                y = torch.nn.functional.cosine_similarity(ea, eb, dim=0)
            else:
                err = ("Gradient × attention on a sentence-embedding model uses the cosine between the two "
                       "sentences of a pair: enter a second text.")
        else:
            err = f"no gradient target for a model with head {loaded.head!r}"
        if y is not None:
            grads = torch.autograd.grad(y, list(atts), allow_unused=True)
            g = np.stack([np.zeros_like(raw[0]) if gr is None else gr[0].detach().float().numpy() for gr in grads])
            grad = grad_x_attention(raw, g)
    res = Measures(raw=raw.astype(np.float16), rollout=rollout(raw),
                   value_norm=np.stack(vn).astype(np.float16) if not vn_error else None,
                   value_norm_layer=np.stack(vn_layer) if not vn_error else None, value_error=vn_error,
                   grad=None if grad is None else grad.astype(np.float16), target=target_name(loaded, has_pair), target_error=err,
                   tokens=tuple(t.label for t in tokens))
    return res
