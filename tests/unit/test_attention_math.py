"""models.attention_math against the families' own eager functions in transformers (random tensors)."""
from types import SimpleNamespace

import pytest
import torch
from transformers.models.gemma2 import modeling_gemma2
from transformers.models.gpt_oss import modeling_gpt_oss
from transformers.models.llama import modeling_llama
from transformers.models.t5 import modeling_t5

from models import attention_math as am
from models.interventions import dashboard_attention

B, H, HKV, TQ, TK, D = 2, 4, 2, 5, 7, 8


def _qkv(seed=0, hkv=HKV):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(B, H, TQ, D, generator=g)  # [B,H,Tq,D]
    k = torch.randn(B, hkv, TK, D, generator=g)  # [B,Hkv,Tk,D]
    v = torch.randn(B, hkv, TK, D, generator=g)
    return q, k, v


def _causal_mask():
    """Float additive mask [B,1,Tq,Tk]: the queries are the last Tq of Tk positions; one padded key."""
    keep = am.sliding_window_keep(TQ, TK, TK + 1)
    keep = keep & (torch.arange(TK).view(1, -1) <= torch.arange(TK - TQ, TK).view(-1, 1))
    keep = keep.unsqueeze(0).repeat(B, 1, 1)
    keep[1, :, 0] = False  # padding in the second sequence
    return torch.where(keep, 0.0, torch.finfo(torch.float32).min).unsqueeze(1)


def _module(**extra):
    return SimpleNamespace(training=False, num_key_value_groups=H // HKV, head_dim=D, **extra)


def _ours(module, q, k, v, mask, **kw):
    out, w = dashboard_attention(module, q, k, v, mask, **kw)
    return out, w


def test_llama_gqa_matches_eager():
    q, k, v = _qkv()
    mask = _causal_mask()
    ref_out, ref_w = modeling_llama.eager_attention_forward(_module(), q, k, v, mask, scaling=D ** -0.5)
    out, w = _ours(_module(), q, k, v, mask, scaling=D ** -0.5)
    torch.testing.assert_close(w, ref_w, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-4)


def test_expand_kv_groups_consecutive_query_heads():
    _, k, _ = _qkv()
    full = am.expand_kv(k, H)  # [B,H,Tk,D]
    assert full.shape == (B, H, TK, D)
    for h in range(H):
        assert torch.equal(full[:, h], k[:, h // (H // HKV)])
    with pytest.raises(ValueError):
        am.expand_kv(k, 3)


def test_gemma2_softcap_matches_eager_and_changes_scores():
    q, k, v = _qkv(1)
    q = q * 6  # large logits, so the cap matters
    mask = _causal_mask()
    ref_out, ref_w = modeling_gemma2.eager_attention_forward(_module(), q, k, v, mask, scaling=D ** -0.5,
                                                             softcap=2.0)
    out, w = _ours(_module(), q, k, v, mask, scaling=D ** -0.5, softcap=2.0)
    torch.testing.assert_close(w, ref_w, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-4)
    s = am.scores(q, k, scaling=D ** -0.5, softcap=2.0)
    assert s.abs().max() <= 2.0 + 1e-6
    uncapped = am.weights(am.scores(q, k, scaling=D ** -0.5, attention_mask=mask))
    assert (uncapped - w).abs().max() > 1e-2


def test_gpt_oss_sinks_match_eager_and_rows_sum_below_one():
    q, k, v = _qkv(2)
    mask = _causal_mask()
    sinks = torch.linspace(-1.0, 2.0, H)  # [H]
    ref_out, ref_w = modeling_gpt_oss.eager_attention_forward(_module(sinks=sinks), q, k, v, mask,
                                                              scaling=D ** -0.5)
    out, w = _ours(_module(), q, k, v, mask, scaling=D ** -0.5, s_aux=sinks)
    torch.testing.assert_close(w, ref_w, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-4)
    assert (w.sum(-1) < 1 - 1e-3).all()


def test_t5_scaling_one_and_position_bias_match_eager():
    q, k, v = _qkv(3, hkv=H)
    bias = torch.randn(1, H, TQ, TK, generator=torch.Generator().manual_seed(9))  # [1,H,Tq,Tk]
    mask = _causal_mask()
    m = SimpleNamespace(training=False)
    ref_out, ref_w = modeling_t5.eager_attention_forward(m, q, k, v, mask, scaling=1.0, position_bias=bias)
    out, w = _ours(m, q, k, v, mask, scaling=1.0, position_bias=bias)
    torch.testing.assert_close(w, ref_w, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-4)
    # Scaling 1.0 is used as given, not replaced by 1/sqrt(D).
    default = am.weights(am.scores(q, k, attention_mask=mask, position_bias=bias))
    assert (default - w).abs().max() > 1e-2


def test_bool_mask_and_sliding_window():
    q, k, _ = _qkv(4)
    keep = torch.ones(B, 1, TQ, TK, dtype=torch.bool)
    keep[0, :, :, 1] = False
    s = am.scores(q, k, attention_mask=keep)
    assert torch.isinf(s[0, :, :, 1]).all() and torch.isfinite(s[1]).all()
    w = am.weights(am.scores(q, k, sliding_window=3))
    kept = am.sliding_window_keep(TQ, TK, 3)  # [Tq,Tk]; future keys are left to the causal mask
    past = torch.arange(TK).view(1, -1) <= torch.arange(TK - TQ, TK).view(-1, 1)
    assert (kept & past).sum(-1).eq(3).all() and kept[~past].all()
    assert (w[..., ~kept] == 0).all()
    torch.testing.assert_close(w.sum(-1), torch.ones(B, H, TQ))


def test_dropout_off_in_eval_on_in_training():
    q, k, v = _qkv(5)
    m = SimpleNamespace(training=False)
    _, w1 = dashboard_attention(m, q, k, v, None, dropout=0.5)
    _, w2 = dashboard_attention(m, q, k, v, None, dropout=0.5)
    assert torch.equal(w1, w2)
    torch.testing.assert_close(w1.sum(-1), torch.ones(B, H, TQ))
    torch.manual_seed(0)
    _, w3 = dashboard_attention(SimpleNamespace(training=True), q, k, v, None, dropout=0.5)
    assert (w3 == 0).any()


def test_kv_index_reads_the_named_key_value_heads():
    """A pruned grouped-query layer: query heads [a, b, c] read key/value heads [0, 1, 1]."""
    q, k, v = _qkv(6)
    kv_index = torch.tensor([0, 1, 1])
    q3 = q[:, [1, 2, 3]]  # [B,3,Tq,D]: what is left of 4 heads in 2 groups after pruning head 0
    s = am.scores(q3, k, kv_index=kv_index)
    full = am.scores(q, k)  # the unpruned layer: head h reads KV head h // 2
    torch.testing.assert_close(s, full[:, [1, 2, 3]])
    out = am.attend(am.weights(s), v, kv_index)
    torch.testing.assert_close(out, am.attend(am.weights(full), v)[:, :, [1, 2, 3]])


def test_in_place_steps_without_autograd_equal_the_autograd_path():
    """Without autograd the scores are scaled, capped, biased and masked in place; with autograd
    (head importance runs backward through here) each step makes a new tensor. Same numbers."""
    torch.manual_seed(0)
    q, k = torch.randn(1, 4, 9, 8), torch.randn(1, 2, 9, 8)
    mask = torch.zeros(1, 1, 9, 9).masked_fill(torch.ones(9, 9, dtype=torch.bool).triu(1), torch.finfo(torch.float32).min)
    bias = torch.randn(1, 4, 9, 9)
    kw = dict(scaling=0.3, attention_mask=mask, softcap=2.0, position_bias=bias)
    with torch.no_grad():
        fast = am.scores(q, k, **kw)
    qg = q.clone().requires_grad_(True)
    slow = am.scores(qg, k, **kw)
    torch.testing.assert_close(fast, slow.detach(), rtol=0, atol=1e-6)
    slow.exp().sum().backward()  # the autograd path still differentiates
    assert qg.grad is not None and bool(torch.isfinite(qg.grad).all())


def test_bfloat16_softmax_in_row_blocks_equals_one_softmax(monkeypatch):
    """A 16-bit model's float32 softmax is taken block by block (no float32 copy of the layer):
    the same rounded weights as one softmax over the whole tensor."""
    torch.manual_seed(0)
    s = (torch.randn(1, 3, 20, 20) * 4).to(torch.bfloat16)
    s[..., 5:] = float("-inf")
    expect = torch.softmax(s, dim=-1, dtype=torch.float32).to(torch.bfloat16)
    monkeypatch.setattr(am, "SOFTMAX_CHUNK", 7 * 20)
    with torch.no_grad():
        got = am.weights(s)
    assert got.dtype == torch.bfloat16
    torch.testing.assert_close(got.float(), expect.float(), rtol=0, atol=1e-6)
