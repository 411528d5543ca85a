"""models/measure_views.py: one measure of one layer of a page run, on the embedded MiniLM and a
tiny random GPT-2: the values are models.measures.compute's, read back from the shared cache by
a process that never computed them, and a measure a run cannot have is raw weights with the reason."""
import numpy as np
import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from models import cache, loader, measure_views, measures, service

TEXT, PAIR = "The cat sat on the warm mat.", "A kitten was lying on the rug!"


@pytest.fixture(scope="module")
def minilm():
    return loader.get_loaded("all-MiniLM-L6-v2")


@pytest.fixture()
def store(tmp_path):
    return cache.RunCache(tmp_path / "cache")


def _run(model, text, pair=None, store=None, head_mask=None):
    req = service.RunRequest.create(model, text, pair, head_mask=head_mask)
    return req, service.get_run(req, run_cache=store)


def test_value_norm_and_grad_are_the_engines_and_come_back_from_the_cache(minilm, store):
    req, run = _run(minilm.name, TEXT, PAIR, store)
    m = measures.compute(minilm, TEXT, PAIR)
    for name in ("value-norm", "grad-attention", "rollout"):
        ml = measure_views.layer_measure(req, run, 4, name, run_cache=store)
        assert ml.measure == name and not ml.error and ml.source == "model"
        np.testing.assert_array_equal(ml.mean, m.matrix(name, 4, None))
        if name == "rollout":
            assert ml.heads is None and not ml.per_head
        else:
            for h in (0, 7):
                np.testing.assert_array_equal(ml.head_matrix(h), m.matrix(name, 4, h))
    assert ml.target == "" and "cos(mean embedding" in measure_views.layer_measure(
        req, run, 4, "grad-attention", run_cache=store).target
    # another process: nothing in memory, the shared cache answers with the same numbers
    with measures._lock:
        measures._cache.clear()
    back = measure_views.layer_measure(req, run, 4, "value-norm", run_cache=store)
    assert back.source == "disk"
    np.testing.assert_array_equal(back.head_matrix(3), m.matrix("value-norm", 4, 3))
    assert len(measures._cache) == 0  # the model did not run again


def test_unavailable_measures_fall_back_to_raw_with_the_reason(minilm, store):
    req, run = _run(minilm.name, TEXT, None, store)
    g = measure_views.layer_measure(req, run, 1, "grad-attention", run_cache=store)
    assert g.is_raw and g.requested == "grad-attention" and "second text" in g.error
    assert measure_views.layer_measure(req, run, 1, "no-such-measure", run_cache=store).is_raw
    mask = np.ones((6, 12))
    mask[0, 0] = 0
    req_p, run_p = _run(minilm.name, TEXT, None, store, head_mask=mask)
    p = measure_views.layer_measure(req_p, run_p, 1, "rollout", run_cache=store)
    assert p.is_raw and "pruned" in p.error


def test_tiny_gpt2_grad_uses_the_lm_loss_and_value_norm_says_why_not(minilm, store):
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=len(minilm.tokenizer), n_positions=64, n_embd=32, n_layer=2, n_head=4,
                     bos_token_id=101, eos_token_id=102)
    tiny = loader.wrap("tiny-gpt2-measures", GPT2LMHeadModel(cfg), minilm.tokenizer)
    loader.register_loaded(tiny)
    req, run = _run(tiny.name, "the cat sat on the mat", None, store)
    g = measure_views.layer_measure(req, run, 1, "grad-attention", run_cache=store)
    assert g.measure == "grad-attention" and "causal LM loss" in g.target
    expect = measures.compute(tiny, "the cat sat on the mat").matrix("grad-attention", 1, 2)
    np.testing.assert_array_equal(g.head_matrix(2), expect)
    assert np.all(np.triu(g.head_matrix(2), 1) == 0)  # causal: no weight, no product above the diagonal
    v = measure_views.layer_measure(req, run, 1, "value-norm", run_cache=store)
    assert v.is_raw and "BERT-family" in v.error


def test_compare_one_text_under_two_masks(minilm):
    """Compare B = the page's text under the pruning card's mask: B is the pruned run's weights,
    B − A is 0 up to the first pruned layer and not after it."""
    from models.errors import PanelError
    from services import research_compare as rc

    req = service.RunRequest.create(minilm.name, TEXT)
    store = {"request": req.to_dict(), "summary": service.get_run(req).summary()}
    mask = [[1] * 12 for _ in range(6)]
    for h in range(12):
        mask[1][h] = 0  # all of layer 1
    pruned = service.get_run(service.RunRequest.create(minilm.name, TEXT, head_mask=mask))
    for layer, changed in ((1, False), (3, True)):
        c = rc.compare_view(store, "", minilm.name, str(layer), "2", mask)
        z = lambda f: np.array([[np.nan if v is None else v for v in row] for row in f.data[0].z], float)  # noqa: E731
        np.testing.assert_allclose(z(c["b"]), pruned.head_weights(layer, 2), atol=6e-4)  # 3-decimal figure
        d = z(c["diff"])
        assert (np.abs(d).max() > 1e-3) == changed, (layer, np.abs(d).max())
        assert "12 pruned heads" in c["note"]
    with pytest.raises(PanelError, match="choose heads to prune"):
        rc.compare_view(store, "", minilm.name, "1", "2", [[1] * 12 for _ in range(6)])


def test_fallback_family_rollout_from_the_runs_weights_and_value_norm_says_why(minilm, store):
    """GPT-Neo runs on the fallback path (its own eager attention): rollout is the rollout of the
    run's weights; value-norm (which needs the attention function's modules) says why not."""
    from transformers import GPTNeoConfig, GPTNeoForCausalLM

    torch.manual_seed(0)
    cfg = GPTNeoConfig(vocab_size=len(minilm.tokenizer), hidden_size=32, num_layers=2, num_heads=4,
                       attention_types=[[["global", "local"], 1]], max_position_embeddings=64,
                       bos_token_id=101, eos_token_id=102)
    tiny = loader.wrap("tiny-gpt-neo-measures", GPTNeoForCausalLM(cfg), minilm.tokenizer)
    loader.register_loaded(tiny)
    req, run = _run(tiny.name, "the cat sat on the mat", None, store)
    r = measure_views.layer_measure(req, run, 1, "rollout", run_cache=store)
    assert r.measure == "rollout" and not r.error
    weights = np.stack([[run.head_weights(layer, h) for h in range(4)] for layer in range(2)])  # [L,H,T,T]
    np.testing.assert_allclose(r.mean, measures.rollout(weights)[1], atol=1e-3)
    v = measure_views.layer_measure(req, run, 1, "value-norm", run_cache=store)
    assert v.is_raw and "fallback" in v.error


def test_concurrent_requests_for_one_text_compute_once(minilm, monkeypatch):
    """The heatmap, inspector and text view ask for a new measure at the same moment: one thread
    computes, the others wait for its answer (models.measures.compute's single flight)."""
    import threading
    import time as _time

    calls = []
    real = measures._compute

    def slow(*a, **kw):
        calls.append(1)
        _time.sleep(0.3)
        return real(*a, **kw)

    monkeypatch.setattr(measures, "_compute", slow)
    text = "Three panels ask for this text at once."
    out = []
    threads = [threading.Thread(target=lambda: out.append(measures.compute(minilm, text))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(out) == 3 and all(o is out[0] for o in out)
