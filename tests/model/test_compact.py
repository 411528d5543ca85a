"""Compact capture (models.compact): heads rebuilt from stored queries/keys equal transformers'
own eager `output_attentions`, family by family (tiny random models built from configs here, the
embedded MiniLM tokenizer); a layer that does not reproduce falls back to full storage."""
import logging

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForSeq2SeqLM

from models import attention, compact, loader
from models.run import AttentionRun

TEXT = "the cat sat on the mat because it was tired , and then it slept for a long while ."


@pytest.fixture(scope="module")
def minilm():
    return loader.get_loaded("all-MiniLM-L6-v2")


def _cfg(kind, vocab):
    common = dict(vocab_size=vocab, pad_token_id=0, bos_token_id=101, eos_token_id=102)
    if kind == "gpt2":
        return AutoConfig.for_model("gpt2", n_positions=64, n_embd=32, n_layer=2, n_head=4, **common)
    if kind == "llama":  # rotary + grouped-query attention (4 query heads share 2 kv heads)
        return AutoConfig.for_model("llama", hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                    num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                    **common)
    if kind == "gemma2":  # logit softcap, sliding window on alternate layers, GQA
        return AutoConfig.for_model("gemma2", hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                    num_attention_heads=4, num_key_value_heads=2, head_dim=8,
                                    max_position_embeddings=64, sliding_window=6,
                                    attn_logit_softcapping=5.0, query_pre_attn_scalar=8, **common)
    if kind == "gpt_oss":  # sink logits, sliding window, GQA
        return AutoConfig.for_model("gpt_oss", hidden_size=32, intermediate_size=32, num_hidden_layers=2,
                                    num_attention_heads=4, num_key_value_heads=2, head_dim=8,
                                    num_local_experts=2, num_experts_per_tok=1, sliding_window=6,
                                    max_position_embeddings=64, **common)
    if kind == "bart":
        return AutoConfig.for_model("bart", d_model=32, encoder_layers=2, decoder_layers=2,
                                    encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=64,
                                    decoder_ffn_dim=64, max_position_embeddings=64,
                                    decoder_start_token_id=101, **common)
    if kind == "t5":  # relative position bias, scaling 1.0
        return AutoConfig.for_model("t5", d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2,
                                    num_heads=4, decoder_start_token_id=0, **common)
    raise KeyError(kind)


def _eager(kind, model):
    """transformers' own eager implementation with the same weights."""
    cls = {"bart": AutoModelForSeq2SeqLM, "t5": AutoModelForSeq2SeqLM}.get(kind, AutoModelForCausalLM)
    ref = cls.from_config(model.config, attn_implementation="eager").eval()
    ref.load_state_dict(model.state_dict())
    return ref


def _reference(kind, loaded, text, pair=None):
    """{block name: float32 [layers, heads, query, key]} from transformers' eager output_attentions."""
    inputs, *_ = attention.forward_inputs(loaded, text, pair, 64)
    ref = _eager(kind, loaded.model)
    with torch.no_grad():
        out = ref(**{k: v for k, v in inputs.items() if k != "labels"}, output_attentions=True)
    stack = lambda xs: torch.stack([a[0] for a in xs]).float().numpy()  # noqa: E731
    if kind in ("bart", "t5"):
        return {"encoder": stack(out.encoder_attentions), "decoder": stack(out.decoder_attentions),
                "cross": stack(out.cross_attentions)}
    return {"self": stack(out.attentions)}


FAMILIES = ["gpt2", "llama", "gemma2", "gpt_oss", "bart", "t5"]


@pytest.mark.parametrize("kind", FAMILIES)
def test_rebuilt_heads_equal_transformers_eager(minilm, kind):
    torch.manual_seed(0)
    cfg = _cfg(kind, len(minilm.tokenizer))
    cls = AutoModelForSeq2SeqLM if kind in ("bart", "t5") else AutoModelForCausalLM
    model = cls.from_config(cfg, attn_implementation="eager")
    cfg.architectures = [type(model).__name__]  # as a saved model's config.json says
    loaded = loader.wrap(f"tiny-{kind}", model, minilm.tokenizer)
    run = attention.extract(loaded, TEXT)
    ref = _reference(kind, loaded, TEXT)
    assert set(ref) == {b.name for b in run.blocks}
    for b in run.blocks:
        assert all(m in ("qk16", "qk32") for m in b.modes), (kind, b.name, b.modes)  # stored compactly
        w = b.weights  # every head rebuilt from the stored queries/keys
        assert w.shape == ref[b.name].shape
        np.testing.assert_allclose(w, ref[b.name], atol=1e-3, err_msg=f"{kind} {b.name}")
        # stored per-head metrics are those of the model's weights
        np.testing.assert_allclose(b.metrics()["entropy"],
                                   np.asarray(_entropy(ref[b.name])).mean(-1), atol=2e-3)
    # the compact run survives the cache's payload round trip unchanged
    back = AttentionRun.from_payload(*run.to_payload())
    np.testing.assert_array_equal(back.main.weights, run.main.weights)


def _entropy(w):
    safe = np.where(w > 0, w, 1.0)
    return -(w * np.log2(safe)).sum(-1)


def test_minilm_matches_eager_and_temperature_uses_real_scores(minilm):
    run = attention.extract(minilm, TEXT)
    eager = AutoModel.from_pretrained(minilm.folder, attn_implementation="eager").eval()
    enc = minilm.tokenizer(TEXT, return_tensors="pt")
    with torch.no_grad():
        out = eager(**enc, output_attentions=True)
    ref = torch.stack([a[0] for a in out.attentions]).numpy()
    np.testing.assert_allclose(run.weights, ref, atol=1e-3)
    # T = 2: softmax(scores / 2) of transformers' own pre-softmax scores (log of its weights + c)
    w2 = run.head_weights(3, 5, 2.0)
    logw = np.log(ref[3, 5].astype(np.float64))
    expect = np.exp(logw / 2 - (logw / 2).max(-1, keepdims=True))
    np.testing.assert_allclose(w2, expect / expect.sum(-1, keepdims=True), atol=1e-3)
    # top keys stored at capture agree with the rebuilt head
    top = run.main.summary["top_idx"][3, 5, 4, :3].astype(int)
    np.testing.assert_allclose(run.main.summary["top_w"][3, 5, 4, :3].astype(np.float32),
                               ref[3, 5, 4, top], atol=1e-3)


def test_a_layer_that_does_not_reproduce_is_stored_in_full(minilm, monkeypatch, caplog):
    """A capture whose compact description misses a term (here: T5's relative position bias) does
    not reproduce the model's weights: every such layer is stored in full, the log says why, and
    the numbers shown are still the model's."""
    torch.manual_seed(0)
    model = AutoModelForSeq2SeqLM.from_config(_cfg("t5", len(minilm.tokenizer)), attn_implementation="eager")
    loaded = loader.wrap("tiny-t5-fallback", model, minilm.tokenizer)
    monkeypatch.setattr(compact, "describe_bias", lambda bias, allowed: None)
    with caplog.at_level(logging.WARNING, logger="models.compact"):
        run = attention.extract(loaded, TEXT)
    enc = run.block("encoder")
    assert enc.modes == ["full", "full"]
    assert all("does not reproduce" in x.reason and "max abs diff" in x.reason for x in enc.layers)
    assert any("stored in full" in r.getMessage() and "encoder layer 0" in r.getMessage() for r in caplog.records)
    assert "full" not in run.block("cross").modes  # cross attention has no position bias: still compact
    ref = _reference("t5", loaded, TEXT)
    for b in run.blocks:
        np.testing.assert_allclose(b.weights, ref[b.name], atol=1e-3, err_msg=b.name)
    # the model's own pre-softmax scores were kept: another temperature still re-softmaxes them
    w = ref["encoder"][1, 2].astype(np.float64)
    np.testing.assert_allclose(run.head_weights(1, 2, 1.5, "encoder"), _soft(np.log(w) / 1.5), atol=2e-3)
    back = AttentionRun.from_payload(*run.to_payload())
    assert back.block("encoder").modes == ["full", "full"]
    np.testing.assert_array_equal(back.block("encoder").weights, enc.weights)


def _soft(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_mask_and_bias_descriptions_are_compact():
    t = 9
    causal = torch.tril(torch.ones(t, t, dtype=torch.bool))[None]
    assert compact.describe_mask(causal).kind == "causal"
    window = causal & ~torch.tril(torch.ones(t, t, dtype=torch.bool), diagonal=-4)[None]
    spec = compact.describe_mask(window)
    assert (spec.kind, spec.window) == ("window", 4)
    assert bool((spec.allowed(slice(None)) == window[0]).all())
    odd = causal.clone()
    odd[0, 5, 2] = False
    assert compact.describe_mask(odd).kind == "bits"
    assert bool((compact.describe_mask(odd).allowed(slice(None)) == odd[0]).all())
    rel = torch.arange(t).view(1, -1) - torch.arange(t).view(-1, 1)
    bias = (0.3 * rel.float())[None].repeat(2, 1, 1) * torch.tensor([1.0, -2.0]).view(2, 1, 1)
    b = compact.describe_bias(bias, torch.ones(1, t, t, dtype=torch.bool))
    assert b.kind == "diagonal" and b.values.shape == (2, 2 * t - 1)
    torch.testing.assert_close(b.rows(slice(None), slice(None), t, t), bias)
    noisy = bias + torch.rand(2, t, t)
    assert compact.describe_bias(noisy, torch.ones(1, t, t, dtype=torch.bool)).kind == "full"


@pytest.mark.parametrize("kind", ["gpt2", "llama", "gemma2", "gpt_oss", "t5"])
def test_chunked_check_rebuilds_and_summarises_like_eager(minilm, kind, monkeypatch):
    """The capture check in many small chunks (row blocks of a causal layer computed only up to
    their last visible key, several head groups): every layer still compact, its weights equal
    transformers' eager output_attentions, and the stored per-query summaries (taken from the
    checked rebuild) are those of the eager weights."""
    monkeypatch.setattr(compact, "CHECK_ELEMENTS", 2 * 24 * 24)
    torch.manual_seed(1)
    cfg = _cfg(kind, len(minilm.tokenizer))
    cls = AutoModelForSeq2SeqLM if kind == "t5" else AutoModelForCausalLM
    model = cls.from_config(cfg, attn_implementation="eager")
    cfg.architectures = [type(model).__name__]
    loaded = loader.wrap(f"tiny-chunks-{kind}", model, minilm.tokenizer)
    run = attention.extract(loaded, TEXT)
    ref = _reference(kind, loaded, TEXT)
    for b in run.blocks:
        assert all(m in ("qk16", "qk32") for m in b.modes), (kind, b.name, b.modes)
        r = ref[b.name]  # [layers, heads, queries, keys]
        np.testing.assert_allclose(b.weights, r, atol=1e-3, err_msg=f"{kind} {b.name}")
        np.testing.assert_allclose(b.summary["entropy"], _entropy(r), atol=3e-3)
        top_w = b.summary["top_w"].astype(np.float32)
        np.testing.assert_allclose(top_w, -np.sort(-r, axis=-1)[..., :top_w.shape[-1]], atol=2e-3)
        picked = np.take_along_axis(r, b.summary["top_idx"].astype(np.int64), axis=-1)
        np.testing.assert_allclose(picked, top_w, atol=2e-3)  # the stored keys carry those weights
        m = b.metrics()
        np.testing.assert_allclose(m["sink"], r[..., 0].mean(-1), atol=1e-3)
        np.testing.assert_allclose(m["max_weight"], r.max(-1).mean(-1), atol=1e-3)
        if r.shape[-1] == r.shape[-2]:
            np.testing.assert_allclose(m["diagonal"], np.diagonal(r, axis1=-2, axis2=-1).mean(-1), atol=1e-3)
            np.testing.assert_allclose(m["previous"], np.diagonal(r, offset=-1, axis1=-2, axis2=-1).mean(-1),
                                       atol=1e-3)


def test_bfloat16_model_is_checked_in_its_own_rounding(minilm):
    """A bfloat16 Llama: the rebuild rounds as the model does (q·k in bfloat16, softmax in float32
    rounded to bfloat16), so every layer is stored compactly and equals transformers' eager
    bfloat16 weights within the verifier's 16-bit tolerance."""
    torch.manual_seed(2)
    cfg = _cfg("llama", len(minilm.tokenizer))
    model = AutoModelForCausalLM.from_config(cfg, attn_implementation="eager", dtype=torch.bfloat16)
    cfg.architectures = [type(model).__name__]
    loaded = loader.wrap("tiny-llama-bf16", model, minilm.tokenizer)
    run = attention.extract(loaded, TEXT)
    assert all(m in ("qk16", "qk32") for m in run.main.modes), run.main.modes
    ref = _reference("llama", loaded, TEXT)["self"]
    np.testing.assert_allclose(run.main.weights, ref, atol=1e-2)
    assert float(np.abs(run.main.weights - ref).mean()) < 1e-3


def test_run_loss_is_the_models_own_causal_lm_loss(minilm, monkeypatch):
    """The run's loss, computed from the logits a few rows at a time (no float32 copy of all
    logits), equals transformers' own loss of the same forward with labels."""
    monkeypatch.setattr(attention, "LOSS_ROWS", 3)
    torch.manual_seed(3)
    cfg = _cfg("gpt2", len(minilm.tokenizer))
    model = AutoModelForCausalLM.from_config(cfg, attn_implementation="eager")
    cfg.architectures = [type(model).__name__]
    loaded = loader.wrap("tiny-gpt2-loss", model, minilm.tokenizer)
    run = attention.extract(loaded, TEXT)
    inputs, *_ = attention.forward_inputs(loaded, TEXT, None, 64)
    with torch.no_grad():
        expect = float(_eager("gpt2", model)(**inputs).loss)
    assert abs(float(run.outputs["loss"]) - expect) <= 1e-5 * max(1.0, abs(expect))


def test_any_head_order_and_rows_are_rebuilt_from_their_own_queries():
    """LayerStore.weights/scores for a permuted head list and scattered rows read those heads' and
    rows' own queries (grouped-query keys mapped per head)."""
    from models import attention_math

    torch.manual_seed(0)
    q, k = torch.randn(1, 4, 6, 8), torch.randn(1, 2, 6, 8)
    causal = torch.zeros(1, 1, 6, 6).masked_fill(torch.ones(6, 6, dtype=torch.bool).triu(1),
                                                 torch.finfo(torch.float32).min)
    s = attention_math.scores(q, k, scaling=0.3, attention_mask=causal)
    w = attention_math.weights(s)[0].numpy()
    store, _ = compact.record(q, k, attention_math.weights(s), scaling=0.3, mask=causal, scores=s)
    order, rows = [3, 1, 2, 0], np.array([5, 0, 2])
    np.testing.assert_allclose(store.weights(order).numpy(), w[order], atol=1e-3)
    np.testing.assert_allclose(store.weights(order, rows).numpy(), w[order][:, rows], atol=1e-3)
