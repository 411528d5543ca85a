"""Attention measures on the real MiniLM vs a plain re-implementation of BERT from its weight
matrices (query/key/value/output Linear layers, LayerNorms, feed-forward) in the test itself:
raw weights, rollout, value-norm and gradient x attention for the pair-cosine target."""
import numpy as np
import pytest
import torch

from models import loader, measures

TEXT, PAIR = "The cat sat on the warm mat.", "A kitten was lying on the rug!"


@pytest.fixture(scope="module")
def minilm():
    return loader.get_loaded("all-MiniLM-L6-v2")


@pytest.fixture(scope="module")
def result(minilm):
    return measures.compute(minilm, TEXT, PAIR)


@pytest.fixture(scope="module")
def plain(minilm):
    """A hand-written BERT forward: attention probabilities [L] x [H,T,T] (graph nodes), the
    input of every layer [L] x [T,hidden], the pair-cosine target and its gradients."""
    tok = minilm.tokenizer
    enc = tok(TEXT, PAIR, return_tensors="pt", return_special_tokens_mask=True)
    bert = minilm.model
    H = bert.config.num_attention_heads
    with torch.enable_grad():
        x = bert.embeddings(input_ids=enc["input_ids"], token_type_ids=enc["token_type_ids"])[0]
        x = x.detach().requires_grad_(True)
        probs, inputs = [], []
        for layer in bert.encoder.layer:
            inputs.append(x.detach())
            sa = layer.attention.self
            T, d = x.shape
            dh = d // H
            q = sa.query(x).view(T, H, dh).transpose(0, 1)
            k = sa.key(x).view(T, H, dh).transpose(0, 1)
            v = sa.value(x).view(T, H, dh).transpose(0, 1)
            p = torch.softmax(q @ k.transpose(-1, -2) / dh ** 0.5, dim=-1)  # [H,T,T]
            probs.append(p)
            ctx = (p @ v).transpose(0, 1).reshape(T, d)
            a = layer.attention.output.LayerNorm(layer.attention.output.dense(ctx) + x)
            x = layer.output.LayerNorm(layer.output.dense(layer.intermediate(a)) + a)
        tt = enc["token_type_ids"][0].tolist()
        sp = enc["special_tokens_mask"][0].tolist()
        ia = [i for i in range(len(tt)) if tt[i] == 0 and not sp[i]]
        ib = [i for i in range(len(tt)) if tt[i] == 1 and not sp[i]]
        y = torch.nn.functional.cosine_similarity(x[ia].mean(0), x[ib].mean(0), dim=0)
        grads = torch.autograd.grad(y, probs)
    return {"probs": [p.detach().numpy() for p in probs], "inputs": inputs,
            "grads": [g.numpy() for g in grads], "y": float(y.detach())}


def test_raw_weights_match_plain_bert(result, plain):
    assert result.raw.shape == (6, 12, len(plain["probs"][0][0]), len(plain["probs"][0][0]))
    for layer in range(6):
        # stored as float16 (half the memory): 2^-11 relative, weights <= 1
        np.testing.assert_allclose(result.raw[layer].astype(np.float32), plain["probs"][layer], atol=6e-4)


def test_rollout_matches_a_plain_loop(result, plain):
    T = plain["probs"][0].shape[-1]
    r = np.eye(T)
    for layer in range(6):
        a = plain["probs"][layer].mean(0) + np.eye(T)
        a = a / a.sum(1, keepdims=True)
        r = a @ r
        np.testing.assert_allclose(result.rollout[layer], r, atol=1e-4)
        np.testing.assert_allclose(result.rollout[layer].sum(1), 1.0, atol=1e-5)
    assert np.allclose(result.matrix("rollout", 3, 7), result.rollout[3])  # the head does not apply


def test_value_norm_matches_per_head_weight_slices(minilm, result, plain):
    for layer in (0, 3, 5):
        mod = minilm.model.encoder.layer[layer]
        wv, bv = mod.attention.self.value.weight.detach().numpy(), mod.attention.self.value.bias.detach().numpy()
        wo = mod.attention.output.dense.weight.detach().numpy()  # [hidden, H*dh]
        x = plain["inputs"][layer].numpy()
        p = plain["probs"][layer]
        dh = wv.shape[0] // 12
        total = np.zeros(p.shape[1:] + (wo.shape[0],))
        for h in (0, 4, 11):
            sl = slice(h * dh, (h + 1) * dh)
            f = (x @ wv[sl].T + bv[sl]) @ wo[:, sl].T           # [T, hidden]
            expect = p[h] * np.linalg.norm(f, axis=1)[None, :]
            np.testing.assert_allclose(result.value_norm[layer, h].astype(np.float32), expect, rtol=2e-3, atol=2e-4)
        for h in range(12):
            sl = slice(h * dh, (h + 1) * dh)
            f = (x @ wv[sl].T + bv[sl]) @ wo[:, sl].T
            total += p[h][:, :, None] * f[None, :, :]
        np.testing.assert_allclose(result.value_norm_layer[layer], np.linalg.norm(total, axis=-1), rtol=2e-3,
                                   atol=2e-4)


def test_grad_x_attention_matches_plain_autograd(result, plain):
    assert "cos" in result.target and result.target_error == ""
    scale = max(np.abs(g).max() for g in plain["grads"])
    for layer in range(6):
        expect = plain["probs"][layer] * plain["grads"][layer]
        np.testing.assert_allclose(result.grad[layer].astype(np.float32), expect, atol=2e-3 * scale)
        # and the values are not all ~0: the check above compares real numbers
        assert np.abs(expect).max() > 1e-4 * scale
    assert result.matrix("grad-attention", 2, None).shape == result.raw.shape[2:]


def test_single_text_says_grad_needs_a_pair(minilm):
    single = measures.compute(minilm, TEXT)
    assert single.grad is None
    with pytest.raises(ValueError, match="second text"):
        single.matrix("grad-attention", 0, 0)
    assert single.matrix("raw", 0, 0).shape == single.raw.shape[2:]


def test_pure_functions_validate_shapes():
    with pytest.raises(ValueError):
        measures.rollout(np.ones((2, 3, 4)))
    with pytest.raises(ValueError):
        measures.value_norm(np.ones((2, 3, 3)), np.ones((3, 3, 5)))
    with pytest.raises(ValueError):
        measures.grad_x_attention(np.ones((2, 2)), np.ones((2, 3)))


def test_compare_two_texts_and_the_same_text(minilm):
    from services import research_compare as rc
    from models import service

    req = service.RunRequest.create("all-MiniLM-L6-v2", TEXT)
    store = {"request": req.to_dict(), "summary": service.get_run(req).summary()}
    same = rc.compare_view(store, "", "all-MiniLM-L6-v2", "2", "3")  # B = A: nothing computed
    assert "Nothing to compare" in same["note"] and same["diff"].layout.meta["kind"] == "empty"
    cased = rc.compare_view(store, TEXT.upper(), "all-MiniLM-L6-v2", "2", "3")  # uncased: the same tokens
    assert cased["diff"].layout.meta["kind"] == "difference"
    assert np.abs(np.array(cased["diff"].data[0].z, dtype=float)).max() < 1e-6
    other = rc.compare_view(store, PAIR, "no-such-model", "2", "mean")  # unknown model: the page's
    assert other["diff"].layout.meta["kind"] == "empty" and "differ" in other["note"]
    b = measures.compute(minilm, PAIR).matrix("raw", 2, None)
    np.testing.assert_allclose(np.array(other["b"].data[0].z, dtype=float), b, atol=2e-3)
    a = measures.compute(minilm, TEXT).matrix("raw", 2, None)   # A: the page's run, from the run service
    np.testing.assert_allclose(np.array(other["a"].data[0].z, dtype=float), a, atol=2e-3)


def test_model_view_reads_the_run_not_a_second_forward(minilm, monkeypatch):
    """The research card's model view draws the run service's capture (the heatmap's numbers),
    each thumbnail the block-average of transformers' own weights of that head."""
    from dashboard import figures
    from models import service
    from services import research_measures as rm

    req = service.RunRequest.create("all-MiniLM-L6-v2", TEXT)
    store = {"request": req.to_dict(), "summary": service.get_run(req).summary()}
    raw = measures.compute(minilm, TEXT).raw                                  # [L, H, T, T]
    monkeypatch.setattr(measures, "compute", lambda *a, **k: pytest.fail("model view ran a forward"))
    fig, note = rm.model_view_figure(store, "1", "2")
    meta = fig.layout.meta
    t, f = meta["thumb_tokens"], meta["pool"]
    want, f_want = figures.block_average(raw[1, 2], 12)
    assert f == f_want and f"{raw.shape[-1]} tokens" in note
    z = np.array(fig.data[0].z, dtype=float)
    r0, c0 = 1 * (t + 1), 2 * (t + 1)
    np.testing.assert_allclose(z[r0:r0 + want.shape[0], c0:c0 + want.shape[1]], want, atol=2e-3)
    assert meta["selected"] == [1, 2]


def test_compare_of_a_long_page_text_with_b_empty_is_not_an_error(minilm):
    """B left empty means the page's own text, whatever its length: nothing to compare, no error
    about text B (the page's text may be far longer than B's limit)."""
    from dashboard.research_compare import MAX_TEXT_CHARS
    from models import service
    from services import research_compare as rc

    long_text = " ".join(["word"] * (MAX_TEXT_CHARS // 4))
    req = service.RunRequest.create("all-MiniLM-L6-v2", long_text)
    store = {"request": req.to_dict(), "summary": service.get_run(req).summary()}
    assert "Nothing to compare" in rc.compare_view(store, "", "all-MiniLM-L6-v2", "0", "0")["note"]
    with pytest.raises(Exception, match="Text B is longer"):
        rc.compare_view(store, "x" * (MAX_TEXT_CHARS + 1), "all-MiniLM-L6-v2", "0", "0")
