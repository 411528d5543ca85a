"""AttentionRun owns its analysis: weights at a temperature, mean of heads, top keys with their
pre-softmax scores, per-head metrics, the attention change against a baseline, and its identity;
what is costly is memoised on the run. Hand-made runs (no model)."""
from __future__ import annotations

import numpy as np

from models import metrics, pruning
from models.run import AttentionRun, Block, Token


def _run(weights, scores=None, mask=None, text="the cat") -> AttentionRun:
    """An encoder run of 4 tokens; weights (and scores) float [L, H, 4, 4]."""
    pieces = ["[CLS]", "the", "cat", "[SEP]"]
    tokens = tuple(Token(piece=p, id=i, start=None, end=None, segment=0, special=p.startswith("["),
                         subword=False) for i, p in enumerate(pieces))
    block = Block("self", "self", "source", "source", np.asarray(weights, np.float16),
                  None if scores is None else np.asarray(scores, np.float16))
    return AttentionRun(model_name="toy", model_fingerprint="fp", architecture="encoder", text=text,
                        text_pair=None, source_tokens=tokens, target_tokens=(), blocks=(block,),
                        head_mask=None if mask is None else np.asarray(mask, np.float32))


def _scores(rng, shape):
    return rng.normal(0, 2, shape).astype(np.float32)


def _softmax(s, t=1.0):
    e = np.exp((s - s.max(-1, keepdims=True)) / t)
    return e / e.sum(-1, keepdims=True)


def test_weights_at_a_temperature_mean_and_top_keys_come_from_the_scores():
    rng = np.random.default_rng(1)
    s = _scores(rng, (2, 3, 4, 4))
    run = _run(_softmax(s), s)
    s16 = s.astype(np.float16).astype(np.float32)  # what the run stored
    np.testing.assert_allclose(run.head_weights(1, 2), _softmax(s16[1, 2]), atol=2e-3)
    np.testing.assert_allclose(run.head_weights(1, 2, temperature=2.0), _softmax(s16[1, 2], 2.0), atol=2e-3)
    np.testing.assert_allclose(run.mean_weights(0, 0.5), _softmax(s16[0], 0.5).mean(0), atol=2e-3)
    top = run.top_keys(1, 2, query=3, k=2)
    row = _softmax(s16[1, 2, 3])
    assert len(top) == 2 and top[0][1] >= top[1][1]
    for key, weight, score in top:
        assert abs(weight - row[key]) < 2e-3 and abs(score - s16[1, 2, 3, key]) < 1e-2
    assert all(score is None for _, _, score in run.top_keys(1, "mean", 3, 2))  # scores are per head


def test_head_metrics_are_memoised_and_match_the_metrics_module():
    rng = np.random.default_rng(2)
    w = _softmax(_scores(rng, (2, 3, 4, 4)))
    run = _run(w)
    m = run.head_metrics()
    assert m is run.head_metrics()
    stored = run.weights  # float32 [L, H, T, T] rebuilt from what the run holds
    np.testing.assert_allclose(m["entropy"], metrics.row_entropy(stored).mean(-1), atol=1e-3)
    np.testing.assert_allclose(run.entropy(), m["entropy"])


def test_identity_names_model_text_and_mask():
    rng = np.random.default_rng(3)
    w = _softmax(_scores(rng, (2, 3, 4, 4)))
    a, same = _run(w), _run(w)
    assert a.identity == same.identity and len(a.identity) == 16
    assert _run(w, text="the dog").identity != a.identity
    assert _run(w, mask=np.ones((2, 3))).identity != a.identity


def test_attention_change_is_memoised_per_baseline_and_block():
    rng = np.random.default_rng(4)
    base_w = _softmax(_scores(rng, (2, 3, 4, 4)))
    pruned_w = base_w.copy()
    pruned_w[1] = _softmax(_scores(rng, (3, 4, 4)))
    base, pruned = _run(base_w), _run(pruned_w, mask=[[1, 0, 1], [1, 1, 1]])
    js = pruned.attention_change(base)
    assert js.shape == (2, 3) and js is pruned.attention_change(base, "self")  # memoised
    np.testing.assert_array_equal(js, pruning.attention_change(base, pruned))
    assert np.abs(js[0]).max() < 1e-6 and js[1].min() > 1e-3  # only layer 1 was changed
    assert pruned.attention_change(_run(base_w)) is js  # the same baseline by identity
    np.testing.assert_allclose(base.attention_change(base), 0.0, atol=1e-6)
