"""models.metrics on hand-made attention matrices with known answers."""
import json

import numpy as np
import pytest

from models import metrics

T = 8


def uniform(t=T, k=None):
    k = t if k is None else k
    return np.full((t, k), 1.0 / k, np.float32)


def sink(t=T):
    w = np.zeros((t, t), np.float32)
    w[:, 0] = 1
    return w


def previous(t=T):
    """Row i attends key i-1; row 0 attends key 0."""
    w = np.zeros((t, t), np.float32)
    w[0, 0] = 1
    w[np.arange(1, t), np.arange(t - 1)] = 1
    return w


def causal_uniform(t=T):
    w = np.tril(np.ones((t, t), np.float32))
    return w / w.sum(axis=1, keepdims=True)


def block(*heads):
    """[layers=1, heads, query, key] from [query, key] matrices."""
    return np.stack(heads)[None]


# ---- row_entropy --------------------------------------------------------------------------
def test_row_entropy_uniform_and_one_hot():
    assert np.allclose(metrics.row_entropy(uniform()), np.log2(T))
    assert np.array_equal(metrics.row_entropy(sink()), np.zeros(T))


def test_row_entropy_leading_dims():
    w = block(uniform(), sink())
    h = metrics.row_entropy(w)
    assert h.shape == (1, 2, T) and h.dtype == np.float32


# ---- head_metrics ---------------------------------------------------------------------------
def test_uniform_head_is_diffuse():
    m = metrics.head_metrics(block(uniform()))
    assert m["entropy"][0, 0] == pytest.approx(np.log2(T))
    assert m["entropy_norm"][0, 0] == pytest.approx(1.0)
    assert m["max_weight"][0, 0] == pytest.approx(1 / T)
    assert m["sink"][0, 0] == pytest.approx(1 / T)
    assert m["role"][0, 0] == "diffuse"


def test_one_hot_first_key_is_sink():
    m = metrics.head_metrics(block(sink()))
    assert m["entropy"][0, 0] == 0
    assert m["sink"][0, 0] == 1
    assert m["max_weight"][0, 0] == 1
    assert m["role"][0, 0] == "sink"


def test_identity_is_self():
    m = metrics.head_metrics(block(np.eye(T, dtype=np.float32)))
    assert m["diagonal"][0, 0] == 1
    assert m["previous"][0, 0] == 0
    assert m["role"][0, 0] == "self"


def test_sub_diagonal_is_previous_token():
    m = metrics.head_metrics(block(previous()))
    assert m["previous"][0, 0] == 1
    assert m["diagonal"][0, 0] == pytest.approx(1 / T)
    assert m["role"][0, 0] == "previous-token"


def test_previous_token_wins_over_sink_on_short_text():
    m = metrics.head_metrics(block(previous(3)))  # rows 0 and 1 both attend key 0: sink 2/3
    assert m["sink"][0, 0] >= 0.5
    assert m["role"][0, 0] == "previous-token"


def test_causal_uniform_entropy_and_norm():
    w = causal_uniform()
    assert np.allclose(metrics.row_entropy(w), np.log2(np.arange(1, T + 1)))
    m = metrics.head_metrics(block(w), causal=True)
    assert m["entropy"][0, 0] == pytest.approx(np.log2(np.arange(1, T + 1)).mean())
    # every row but row 0 (maximum entropy 0, left out) is uniform over the keys it may see
    assert m["entropy_norm"][0, 0] == pytest.approx(1.0)
    assert m["role"][0, 0] == "diffuse"
    # read as non-causal, the same rows fall short of log2(T)
    assert metrics.head_metrics(block(w))["entropy_norm"][0, 0] < 0.8


def test_single_key_block_has_zero_entropy_norm():
    m = metrics.head_metrics(np.ones((1, 1, 1, 1), np.float32), causal=True)
    assert m["entropy_norm"][0, 0] == 0
    assert np.isnan(m["previous"][0, 0])


def test_cross_attention_has_nan_diagonal_and_previous():
    m = metrics.head_metrics(block(uniform(3, 5)))
    assert np.isnan(m["diagonal"][0, 0]) and np.isnan(m["previous"][0, 0])
    assert m["entropy_norm"][0, 0] == pytest.approx(1.0)
    assert m["role"][0, 0] == "diffuse"


def test_head_metrics_shapes_dtypes_and_float16():
    w = np.stack([block(uniform(), sink())[0], block(np.eye(T), previous())[0]]).astype(np.float16)
    m = metrics.head_metrics(w)
    assert set(m) == {"entropy", "entropy_norm", "max_weight", "sink", "diagonal", "previous", "role"}
    for name, v in m.items():
        assert v.shape == (2, 2), name
        if name != "role":
            assert v.dtype == np.float32, name
    assert m["role"].tolist() == [["diffuse", "sink"], ["self", "previous-token"]]
    assert m["entropy"][0, 0] == pytest.approx(np.log2(T), rel=1e-3)


def test_head_metrics_on_one_head():
    m = metrics.head_metrics(uniform())
    assert m["entropy"].shape == () and m["role"] == "diffuse"


def test_head_roles_thresholds_and_mixed():
    def role(**kw):
        m = {"previous": 0.0, "diagonal": 0.0, "sink": 0.0, "entropy_norm": 0.0, **kw}
        return metrics.head_roles({k: np.array([[v]]) for k, v in m.items()})[0, 0]

    assert role() == "mixed"
    assert role(entropy_norm=0.79) == "mixed"
    assert role(entropy_norm=0.8) == "diffuse"
    assert role(sink=0.5, entropy_norm=0.9) == "sink"
    assert role(diagonal=0.5, sink=0.5) == "self"
    assert role(previous=0.5, diagonal=0.5) == "previous-token"
    assert role(previous=np.nan, diagonal=np.nan) == "mixed"
    assert set(metrics.ROLE_THRESHOLDS) | {"mixed"} == set(metrics.ROLES)


# ---- most_attended_key / top_k -------------------------------------------------------------
def test_most_attended_key():
    assert metrics.most_attended_key(sink()) == 0
    w = np.zeros((3, 4), np.float32)
    w[:, 2] = 1
    assert metrics.most_attended_key(w) == 2
    assert metrics.most_attended_key(block(sink(), np.eye(T))).tolist() == [[0, 0]]  # tie -> lower index


def test_top_k_order_ties_and_clipping():
    row = np.array([0.1, 0.3, 0.2, 0.3, 0.1], np.float16)
    assert metrics.top_k(row, 3).tolist() == [1, 3, 2]
    assert metrics.top_k(row, 5).tolist() == [1, 3, 2, 0, 4]
    assert metrics.top_k(row, 99).tolist() == [1, 3, 2, 0, 4]
    assert metrics.top_k(row, 0).tolist() == []
    with pytest.raises(ValueError):
        metrics.top_k(np.ones((2, 2)), 1)


# ---- Jensen-Shannon ------------------------------------------------------------------------
def test_js_identical_is_zero_and_disjoint_is_one_bit():
    w = block(uniform(), causal_uniform(), previous())
    assert np.array_equal(metrics.js_divergence(w, w), np.zeros((1, 3, T)))
    assert np.array_equal(metrics.head_js(w, w), np.zeros((1, 3)))
    p, q = np.eye(T, dtype=np.float32), previous()
    js = metrics.js_divergence(p, q)
    assert js[0] == 0 and np.allclose(js[1:], 1.0)  # row 0 is the same one-hot in both
    assert metrics.head_js(p, q) == pytest.approx((T - 1) / T)


def test_js_partial_overlap_known_value():
    p = np.array([[1.0, 0.0]])
    q = np.array([[0.5, 0.5]])
    # m = [.75, .25]: KL(p||m) = log2(4/3), KL(q||m) = .5 log2(2/3) + .5 log2(2)
    expected = 0.5 * np.log2(4 / 3) + 0.5 * (0.5 * np.log2(2 / 3) + 0.5)
    assert metrics.js_divergence(p, q)[0] == pytest.approx(expected, rel=1e-5)


# ---- softmax_with_temperature ---------------------------------------------------------------
def test_temperature_one_is_plain_softmax():
    s = np.array([[1.0, 2.0, 3.0], [1000.0, 1000.0, 0.0]], np.float32)
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    out = metrics.softmax_with_temperature(s, 1.0)
    assert out.dtype == np.float32 and out.shape == s.shape
    assert np.allclose(out, e / e.sum(axis=-1, keepdims=True))


def test_temperature_masking_and_limits():
    s = np.array([[2.0, -np.inf, 0.5, -1.0], [-np.inf] * 4], np.float16)
    hot = metrics.softmax_with_temperature(s, 1e6)
    assert hot[0, 1] == 0 and np.allclose(hot[0, [0, 2, 3]], 1 / 3, atol=1e-4)
    assert np.array_equal(hot[1], np.zeros(4))  # all masked: zeros, no NaN
    cold = metrics.softmax_with_temperature(s, 1e-3)
    assert cold[0].tolist() == [1.0, 0.0, 0.0, 0.0]
    assert np.allclose(metrics.softmax_with_temperature(s, 0.5)[0].sum(), 1.0)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf")])
def test_temperature_must_be_positive(bad):
    with pytest.raises(ValueError):
        metrics.softmax_with_temperature(np.zeros((2, 2)), bad)


# ---- stats ---------------------------------------------------------------------------------
def test_stats_plain_python_values():
    s = metrics.stats(previous().astype(np.float16))
    assert s == {"entropy": 0.0, "max_weight": 1.0, "most_attended": 0, "sink": pytest.approx(2 / T)}
    assert type(s["most_attended"]) is int and type(s["entropy"]) is float
    json.dumps(s)
    assert metrics.stats(uniform())["entropy"] == pytest.approx(np.log2(T))
    with pytest.raises(ValueError):
        metrics.stats(block(uniform()))
