"""Pruning science on the real MiniLM: held-out split, output-sensitivity score vs finite
differences, loss-gradient score vs models.importance, study curves vs an independent
evaluation, iterative and greedy orders. Small sets keep it fast (a few seconds each)."""
import numpy as np
import pytest
import torch

from models import importance, loader
from models import pruning_science as ps
from models.attention import mean_pool


@pytest.fixture(scope="module")
def minilm():
    return loader.get_loaded("all-MiniLM-L6-v2")


@pytest.fixture(scope="module")
def pairs():
    return ps.load_study_pairs()


def test_bundled_study_corpus_is_184_distinct_pairs(pairs):
    assert len(pairs) == 184
    assert len({p for p in pairs}) == 184
    assert len({s for p in pairs for s in p}) == 368


def test_split_is_disjoint_seeded_and_sized(pairs):
    est, ev = ps.split_pairs(pairs, 0.5, seed=0)
    assert len(est) == len(ev) == 92
    assert not set(est) & set(ev) and set(est) | set(ev) == set(pairs)
    assert ps.split_pairs(pairs, 0.5, seed=0) == (est, ev)
    assert ps.split_pairs(pairs, 0.5, seed=1)[0] != est
    est3, ev3 = ps.split_pairs(pairs, 0.3)
    assert (len(est3), len(ev3)) == (55, 129)
    with pytest.raises(ValueError):
        ps.split_pairs(pairs[:3])
    with pytest.raises(ValueError):
        ps.split_pairs(pairs, 1.0)


def _embed(minilm, texts, xi):
    inputs = importance._text_inputs(minilm, texts)
    with torch.inference_mode(), importance._gated(minilm, {"self": xi}):
        out = minilm.model(**inputs)
    return mean_pool(out.last_hidden_state, inputs["attention_mask"]).double()


def test_output_sensitivity_matches_finite_differences(minilm, pairs):
    """E‖∂e/∂ξ_h‖² from random projections vs central differences of the embeddings, head by head."""
    texts = [s for p in pairs[:2] for s in p]  # 4 texts
    est = ps.output_sensitivity_scores(minilm, texts, projections=48, seed=3)  # [6, 12]
    eps = 1e-2
    heads = [(l, h) for l in (0, 2, 5) for h in range(0, 12, 2)]  # 18 heads over early/middle/late layers
    fd = np.zeros(len(heads))
    for n, (l, h) in enumerate(heads):
        up, down = torch.ones(6, 12), torch.ones(6, 12)
        up[l, h], down[l, h] = 1 + eps, 1 - eps
        d = (_embed(minilm, texts, up) - _embed(minilm, texts, down)) / (2 * eps)  # [4, 384]
        fd[n] = float((d ** 2).sum(1).mean())
    assert est.shape == (6, 12) and np.all(est >= 0)
    est = np.array([est[l, h] for l, h in heads])
    # a Monte Carlo estimate (48 projections x 4 texts): close on the whole, each head within noise
    assert np.corrcoef(np.log(est + 1e-12), np.log(fd + 1e-12))[0, 1] > 0.9
    assert est.sum() == pytest.approx(fd.sum(), rel=0.15)
    ratio = est / fd
    assert np.median(ratio) == pytest.approx(1.0, abs=0.25)


def test_output_sensitivity_of_pruned_heads_is_zero_and_mask_changes_scores(minilm, pairs):
    texts = [s for p in pairs[:2] for s in p]
    mask = np.ones((6, 12), np.float32)
    mask[5, :6] = 0
    s = ps.output_sensitivity_scores(minilm, texts, mask=mask, projections=4)
    assert np.all(s[5, :6] == 0) and np.all(s[5, 6:] > 0)


def test_loss_gradient_scores_equal_michel_importance(minilm, pairs):
    sub = pairs[:8]
    mine = ps.loss_gradient_scores(minilm, sub, batch_size=4)
    ref = importance.head_importance(minilm, sub, batch_size=4).scores
    np.testing.assert_allclose(mine, ref, rtol=1e-3, atol=1e-5)


def test_iterative_order_is_a_permutation_starting_with_one_shot(minilm, pairs):
    sub = pairs[:6]
    order = ps.iterative_order(minilm, sub, "loss-gradient-iterative", step=7, upto=21)
    assert sorted(order.tolist()) == list(range(72))
    one_shot = ps.order_from_scores(ps.loss_gradient_scores(minilm, sub))
    assert set(order[:7].tolist()) == set(one_shot[:7].tolist())
    # re-estimated: steps 2 and 3 are not simply the next heads of the one-shot order (on this
    # model and set they differ; the check is that re-estimation happened with the mask applied)
    again = ps.loss_gradient_scores(minilm, sub, mask=importance.mask_from_order(order, 7, (6, 12)))
    remaining = [j for j in ps.order_from_scores(again) if j not in set(order[:7].tolist())]
    assert set(order[7:14].tolist()) == set(remaining[:7])


@pytest.fixture(scope="module")
def study(minilm, pairs):
    sub = pairs[:16]
    return ps.held_out_study(minilm, sub, methods=["loss-gradient", "output-sensitivity"], shares=[0.0, 0.3, 0.5],
                             seeds=5, bootstrap=60)


def test_study_curves_match_an_independent_evaluation(minilm, pairs, study):
    _, ev = ps.split_pairs(pairs[:16], 0.5, 0)
    assert (study.n_estimate, study.n_evaluate, study.seeds) == (8, 8, 5)
    assert study.pruned == [0, 22, 36]
    for m in study.methods:
        assert study.curves[m][0] == pytest.approx(1.0)
        for i, k in enumerate(study.pruned[1:], start=1):
            mask = importance.mask_from_order(study.orders[m], k, (6, 12))
            ref = importance.pair_metrics(minilm, ev, {"self": mask})["spearman"]
            assert study.curves[m][i] == pytest.approx(ref, abs=1e-4)
            assert study.band_lo[m][i] <= study.band_hi[m][i]
    rnd = np.random.default_rng(2).permutation(72)
    ref = importance.pair_metrics(minilm, ev, {"self": importance.mask_from_order(rnd, 36, (6, 12))})["spearman"]
    assert study.random_runs[2][2] == pytest.approx(ref, abs=1e-4)
    mean, std = np.mean(np.array(study.random_runs), 0), np.std(np.array(study.random_runs), 0, ddof=1)
    np.testing.assert_allclose(study.random_mean, mean)
    for m in study.methods:
        np.testing.assert_allclose(study.z[m][1:], (np.array(study.curves[m]) - mean)[1:] / std[1:], rtol=1e-6)


@pytest.fixture(scope="module")
def tiny_bert(minilm):
    """A random 2-layer x 3-head BERT sentence encoder (6 heads) with the MiniLM tokenizer."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(minilm.tokenizer), hidden_size=24, num_hidden_layers=2, num_attention_heads=3,
                     intermediate_size=48, max_position_embeddings=64)
    return loader.wrap("tiny-bert-science", BertModel(cfg, add_pooling_layer=False), minilm.tokenizer)


def test_greedy_order_removes_the_least_harmful_head_at_each_step(tiny_bert, pairs):
    sub = pairs[:6]
    order = ps.greedy_order(tiny_bert, sub, 3)
    assert len(set(order.tolist())) == 3
    ev = importance.prepare_eval(tiny_bert, sub)
    removed = []
    for step in range(3):  # an independent greedy loop through importance.pair_metrics
        vals = {}
        for j in range(6):
            if j in removed:
                continue
            m = np.ones(6, np.float32)
            m[removed + [j]] = 0
            vals[j] = importance.pair_metrics(tiny_bert, ev, {"self": m.reshape(2, 3)})["spearman"]
        assert vals[int(order[step])] == pytest.approx(max(vals.values()), abs=1e-6)
        removed.append(int(order[step]))
    assert ps.greedy_evaluations(72, 36) == sum(range(37, 73))


def test_cached_study_round_trips(minilm, pairs, tmp_path):
    from models.cache import RunCache

    store = RunCache(str(tmp_path))
    a = ps.cached_study(minilm, pairs[:8], methods=["loss-gradient"], seeds=5, shares=[0.0, 0.5], bootstrap=20,
                        store=store)
    b = ps.cached_study(minilm, pairs[:8], methods=["loss-gradient"], seeds=5, shares=[0.0, 0.5], bootstrap=20,
                        store=store, progress=lambda d, t: pytest.fail("recomputed"))
    assert a.to_dict() == b.to_dict()
    with pytest.raises(ValueError, match="greedy"):
        ps.cached_study(minilm, pairs[:8], methods=["greedy"], store=store)
