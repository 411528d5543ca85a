"""Run a model on a text (or a text pair) and return everything its attention did.

    extract(loaded, text, text_pair=None, max_tokens=None, head_mask=None) -> AttentionRun

* encoder (BERT family): `text_pair` is sentence B of a pair (segments from token types).
* decoder (GPT-2 family): `text_pair` is appended as a second sequence (segment 1).
* encoder-decoder (BART, T5, Marian): `text` is the source; `text_pair` the target fed to the
  decoder with teacher forcing (decoder input = start token + target[:-1]); with no target
  the source text is used as target.

Texts longer than the model's positions (or `max_tokens`) are truncated; the run says where.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch

from models import compact, interventions, metrics, verify
from models.loader import LoadedModel
from models.run import AttentionRun, Block, Token, Truncation, stack_summaries


from models.errors import InputError  # noqa: E402,F401 - re-exported (defined torch-free in models.errors)


def _clean(text: str | None, what: str, required: bool) -> str | None:
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise InputError(f"{what} must be text")
    text = text.replace("\x00", "")
    if not text.strip():
        if required:
            raise InputError(f"{what} is empty: type a sentence to run")
        return None
    return text


def _tokens(enc, tokenizer, texts: list[str]) -> tuple[Token, ...]:
    ids = enc["input_ids"]
    pieces = tokenizer.convert_ids_to_tokens(ids)
    offsets = enc["offset_mapping"]
    special = enc["special_tokens_mask"]
    seq_ids = enc.sequence_ids()
    word_ids = enc.word_ids()
    types = enc.get("token_type_ids")
    out = []
    prev_word, prev_seg, segment = None, None, 0
    for i, tid in enumerate(ids):
        is_special = bool(special[i])
        if seq_ids[i] is not None:
            segment = int(seq_ids[i])
        elif types is not None:
            segment = int(types[i])
        start, end = offsets[i]
        word = word_ids[i]
        subword = (not is_special and word is not None and word == prev_word and segment == prev_seg
                   and i > 0 and start == offsets[i - 1][1])
        out.append(Token(piece=pieces[i], id=int(tid),
                         start=None if is_special else int(start), end=None if is_special else int(end),
                         segment=segment, special=is_special, subword=bool(subword),
                         word=None if is_special or word is None else int(word)))
        if not is_special:
            prev_word, prev_seg = word, segment
    return tuple(out)


def _encode(tokenizer, text, pair, max_tokens, side) -> tuple[dict, list[Truncation]]:
    """Tokenise with offsets; truncate to max_tokens and describe what was dropped."""
    kw = dict(return_offsets_mapping=True, return_special_tokens_mask=True)
    full = tokenizer(text, pair, **kw)
    if len(full["input_ids"]) <= max_tokens:
        return full, []
    enc = tokenizer(text, pair, truncation=True, max_length=max_tokens, **kw)
    truncations = []
    texts = [text, pair]
    for seg in (0, 1):
        if texts[seg] is None:
            continue
        total = sum(1 for s in full.sequence_ids() if s == seg)
        kept_ends = [e for s, (_, e) in zip(enc.sequence_ids(), enc["offset_mapping"]) if s == seg]
        if total > len(kept_ends):
            truncations.append(Truncation(side=side, segment=seg, kept_chars=max(kept_ends, default=0),
                                          total_chars=len(texts[seg]), dropped_tokens=total - len(kept_ends),
                                          max_tokens=max_tokens))
    return enc, truncations


def _blocks(calls, loaded: LoadedModel) -> list[Block]:
    """Group captured (slot, LayerStore, LayerSummary) calls by block, in layer order."""
    grouped = defaultdict(dict)
    for slot, store, summary in calls:
        if not isinstance(store, compact.LayerStore):  # (slot, None, weights): the model's own
            w = summary[0]  # output_attentions (fallback path): stored in full, no pre-softmax scores
            store = compact.LayerStore.from_full(
                w.half().numpy(), None, "fallback: the model's own output_attentions (no pre-softmax scores)")
            summary = compact.summarise(w.float(), metrics._allowed_keys(w.shape[-2], w.shape[-1],
                                                                         slot.kind == "causal"))
        grouped[slot.block][slot.layer] = (slot.kind, store, summary)
    blocks = []
    for name in loaded.blocks:
        layers = grouped[name]
        idx = sorted(layers)
        if idx != list(range(len(idx))) or not idx:
            raise RuntimeError(f"block {name}: captured layers {idx} are not contiguous")
        kind = layers[0][0]
        q_side = "target" if name in ("decoder", "cross") else "source"
        k_side = "target" if name == "decoder" else "source"
        blocks.append(Block(name, kind, q_side, k_side, layers=tuple(layers[i][1] for i in idx),
                            summary=stack_summaries([layers[i][2] for i in idx])))
    return blocks


def gate_dict(loaded: LoadedModel, gates) -> dict | None:
    """A head mask / gates as interventions.head_gates takes them: None | [L, H] (main block) |
    {block: [L, H]} -> {block: tensor} or None. Tensors are kept as they are (the importance
    scores' gates carry gradients); anything else becomes float32. A wrong shape: InputError."""
    if gates is None:
        return None
    if not isinstance(gates, dict):
        gates = {next(iter(loaded.blocks)): gates}
    out = {}
    for block, g in gates.items():
        if not torch.is_tensor(g):
            g = torch.from_numpy(np.asarray(g, dtype=np.float32))
        expected = loaded.shape(block)
        if tuple(g.shape) != tuple(expected):
            raise InputError(f"head mask for block {block!r} has shape {tuple(g.shape)}, expected {expected}")
        out[block] = g
    return out


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Sentence embedding as sentence-transformers computes it: masked mean, L2-normalised.
    hidden [batch, T, hidden], attention_mask [batch, T] -> [batch, hidden]."""
    m = attention_mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, p=2, dim=-1)


def forward_inputs(loaded: LoadedModel, text: str, text_pair: str | None, max_tokens: int):
    """Model inputs + token lists + truncations for one text (pair). Shared by extract and pruning."""
    tok = loaded.tokenizer
    if loaded.architecture == "encoder-decoder":
        src, trunc = _encode(tok, text, None, max_tokens, "source")
        target_text = text_pair if text_pair is not None else text
        tgt, trunc_t = _encode(tok, target_text, None, max_tokens, "target")
        start = loaded.model.config.decoder_start_token_id
        if start is None:
            start = tok.pad_token_id if tok.pad_token_id is not None else 0
        labels = torch.tensor([tgt["input_ids"]])
        dec_ids = torch.tensor([[start] + tgt["input_ids"][:-1]])
        target_tokens = _tokens(tgt, tok, [target_text])
        start_piece = tok.convert_ids_to_tokens([start])[0]
        shifted = (Token(piece=start_piece, id=int(start), start=None, end=None, segment=0,
                         special=True, subword=False),) + target_tokens[:-1]
        inputs = {"input_ids": torch.tensor([src["input_ids"]]),
                  "attention_mask": torch.ones(1, len(src["input_ids"]), dtype=torch.long),
                  "decoder_input_ids": dec_ids, "labels": labels}
        return inputs, _tokens(src, tok, [text]), shifted, trunc + trunc_t
    enc, trunc = _encode(tok, text, text_pair, max_tokens, "source")
    inputs = {"input_ids": torch.tensor([enc["input_ids"]]),
              "attention_mask": torch.ones(1, len(enc["input_ids"]), dtype=torch.long)}
    if "token_type_ids" in enc and loaded.architecture == "encoder":
        inputs["token_type_ids"] = torch.tensor([enc["token_type_ids"]])
    if loaded.architecture == "decoder" and loaded.head == "causal-lm":
        inputs["labels"] = inputs["input_ids"].clone()
    return inputs, _tokens(enc, tok, [text, text_pair]), (), trunc


LOSS_ROWS = 64  # logit rows per float32 block of causal_lm_loss (64 x a 32k vocabulary: 8 MB)


def _plain_causal_lm_loss(model) -> bool:
    """The model's loss is transformers' plain ForCausalLMLoss on its logits (no auxiliary term)."""
    from transformers.loss.loss_utils import ForCausalLMLoss

    try:
        fn = model.loss_function
    except Exception:  # noqa: BLE001 - a model without one: let it compute its own loss
        return False
    return fn is ForCausalLMLoss and not getattr(model.config, "output_router_logits", False)


def causal_lm_loss(logits: torch.Tensor, input_ids: torch.Tensor) -> float:
    """transformers' ForCausalLMLoss (mean next-token cross-entropy, in float32) of logits
    [1, T, vocab] for input_ids [1, T], computed LOSS_ROWS rows at a time: the float32 copy and
    log-softmax of the whole [T, vocab] logits (500 MB for a 2,048-token Llama) never exist."""
    x, target = logits[0, :-1], input_ids[0, 1:].to(logits.device)
    total = torch.zeros((), dtype=torch.float64)
    for a in range(0, x.shape[0], LOSS_ROWS):
        total += torch.nn.functional.cross_entropy(x[a:a + LOSS_ROWS].float(), target[a:a + LOSS_ROWS],
                                                   reduction="sum").double()
    return float(total / max(1, x.shape[0]))


def extract(loaded: LoadedModel, text: str, text_pair: str | None = None, *, max_tokens: int | None = None,
            head_mask=None, check: bool = True) -> AttentionRun:
    """Run the model once and capture every attention block (see module docstring).

    Each layer is reduced to its compact form while the forward pass runs (models.compact) and,
    with `check` (the default, always on for the page), every head is rebuilt from it and
    compared with the model's own weights; a layer that does not reproduce is stored in full."""
    text = _clean(text, "The text", required=True)
    text_pair = _clean(text_pair, "The second text", required=False)
    limit = loaded.max_tokens if max_tokens is None else max(4, min(int(max_tokens), loaded.max_tokens))
    inputs, source, target, truncations = forward_inputs(loaded, text, text_pair, limit)
    gates = gate_dict(loaded, head_mask)
    outputs = {}
    fallback = getattr(loaded, "path", None) == "fallback"  # weights from the model's own output_attentions
    own_loss = loaded.architecture == "decoder" and "labels" in inputs and _plain_causal_lm_loss(loaded.model)
    model_inputs = {k: v for k, v in inputs.items() if not (own_loss and k == "labels")}
    with torch.inference_mode(), interventions.capture(compact=True, check=check, model=loaded.model) as cap, \
            interventions.head_gates(gates or {}):
        out = loaded.model(**model_inputs, **({"output_attentions": True} if fallback else {}))
        if own_loss:
            outputs["loss"] = np.asarray(causal_lm_loss(out.logits, inputs["input_ids"]), dtype=np.float32)
    if fallback:
        interventions.record_attentions(cap, loaded.blocks, verify.block_attentions(out, loaded.architecture))
    if getattr(out, "loss", None) is not None:
        outputs["loss"] = np.asarray(float(out.loss), dtype=np.float32)
    if loaded.architecture == "encoder" and loaded.head == "none":
        emb = mean_pool(out.last_hidden_state, inputs["attention_mask"])[0]
        outputs["embedding"] = emb.numpy().astype(np.float32)
    del out  # the logits [1, T, vocab] go before the blocks are assembled
    blocks = _blocks(cap.calls, loaded)
    mask_arr = None
    if gates is not None:
        mask_arr = gates[next(iter(loaded.blocks))].numpy() if next(iter(loaded.blocks)) in gates else None
    return AttentionRun(
        model_name=loaded.name, model_fingerprint=loaded.fingerprint, architecture=loaded.architecture,
        text=text, text_pair=text_pair, source_tokens=source, target_tokens=target, blocks=tuple(blocks),
        truncations=tuple(truncations), head_mask=mask_arr, outputs=outputs,
    )
