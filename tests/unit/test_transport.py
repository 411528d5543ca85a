"""The heatmap's transport (dashboard/transport.py, panels.heatmap_payload) on hand-made runs:
quantised bytes within half a step, whole layer vs one head vs pooled overview vs zoom window, and
a window store from the browser that is never trusted."""
import numpy as np
import pytest

from dashboard import transport
from dashboard.selection import MEAN
from services import panels
from models import metrics
from models.run import AttentionRun, Block, Token


def _run(t, heads=3, layers=2, causal=False, seed=0):
    rng = np.random.default_rng(seed)
    scores = rng.normal(0, 2, size=(layers, heads, t, t)).astype(np.float32)
    if causal:
        scores[..., np.triu(np.ones((t, t), bool), 1)] = -np.inf
    w = metrics.softmax_with_temperature(scores, 1.0)
    toks = tuple(Token(piece=f"w{i}", id=i, start=0, end=1, segment=0, special=False, subword=False)
                 for i in range(t))
    kind = "causal" if causal else "self"
    return AttentionRun("m", "fp", "decoder" if causal else "encoder", "x", None, toks, (),
                        (Block("self", kind, "source", "source", w.astype(np.float16), scores.astype(np.float16)),))


@pytest.mark.parametrize("bits", [8, 16])
def test_codes_decode_within_half_a_step_and_keep_masked_cells(bits):
    rng = np.random.default_rng(1)
    v = rng.random((2, 5, 7)).astype(np.float32)
    v[0, 1, 3] = np.nan
    enc = transport.encode(v, bits=bits)
    back = transport.decode(enc)
    assert back.shape == v.shape and np.isnan(back[0, 1, 3]) and np.isnan(back).sum() == 1
    ok = ~np.isnan(v)
    assert np.abs(back[ok] - v[ok]).max() <= enc["step"] / 2 + 1e-7
    assert enc["step"] == pytest.approx(np.nanmax(v) / (2 ** bits - 2))


def test_short_view_sends_the_whole_layer_and_the_head_mean():
    run = _run(20, causal=True)
    p = panels.heatmap_payload(run, "self", 1, 2, 0, "accent", "auto")
    pay = p["payload"]
    assert pay["mode"] == "layer" and pay["heads"] == ["0", "1", "2", MEAN]
    mats = transport.decode(pay["matrix"])
    for i, h in enumerate(pay["heads"]):
        want = (run.mean_weights(1) if h == MEAN else run.head_weights(1, int(h))).astype(np.float64)
        upper = np.triu_indices(20, 1)
        assert np.isnan(mats[i][upper]).all()  # the causal future is masked, not zero
        lower = np.tril_indices(20)
        np.testing.assert_allclose(mats[i][lower], want[lower], atol=pay["matrix"]["step"] / 2 + 1e-6)
    assert pay["titles"][2] == "Layer 1 · head 2 · self (causal)" and p["title"] == pay["titles"][2]
    assert pay["figure"]["data"][0]["z"] == []  # values travel as bytes only
    assert "16-bit, step" in pay["figure"]["data"][0]["hovertemplate"]


def test_longer_views_send_one_head(monkeypatch):
    monkeypatch.setattr(panels, "LAYER_CELLS", 100)
    run = _run(20)
    pay = panels.heatmap_payload(run, "self", 0, 1, 0, "accent", "auto")["payload"]
    assert pay["mode"] == "head" and pay["heads"] == ["1"]
    np.testing.assert_allclose(transport.decode(pay["matrix"])[0], run.head_weights(0, 1), atol=1e-4)


def test_long_view_is_a_pooled_overview_and_a_window_is_exact(monkeypatch):
    monkeypatch.setattr(panels, "EXACT_MAX_TOKENS", 16)
    monkeypatch.setattr(panels, "POOL_CELLS", 8)
    run = _run(40, causal=True)
    p = panels.heatmap_payload(run, "self", 1, 0, 0, "accent", "auto", pool="mean")
    pay = p["payload"]
    assert pay["mode"] == "pooled"
    fig = pay["figure"]
    f = fig["layout"]["meta"]["block_size"]
    assert f == 5 and fig["layout"]["meta"]["rows"] == 8
    w = run.head_weights(1, 0).astype(np.float64)
    w[np.triu_indices(40, 1)] = np.nan
    with np.errstate(invalid="ignore"):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            expect = np.nanmean(w.reshape(8, 5, 8, 5), axis=(1, 3))
    got = transport.decode(pay["matrix"])[0]
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expect))
    ok = ~np.isnan(expect)
    np.testing.assert_allclose(got[ok], expect[ok], atol=pay["matrix"]["step"] / 2 + 1e-6)
    assert fig["data"][0]["y"][2] == "10–14" and "block mean" in fig["data"][0]["hovertemplate"]
    assert "block mean" in p["note"]
    # the stats gathered while pooling equal those of the whole head
    every = np.arange(40)
    assert p["stats"] == panels._stats_of(run, "self", 1, 0, 1.0, every, every, full=run.head_weights(1, 0))
    # a box-zoom window (what assets/heatmap.js writes) -> the exact values of that window
    win = {"q0": 20, "q1": 30, "k0": 5, "k1": 15, "uirevision": pay["uirevision"]}
    pw = panels.heatmap_payload(run, "self", 1, 0, 0, "accent", "auto", window=win)["payload"]
    assert pw["mode"] == "window" and pw["figure"]["layout"]["meta"]["query_offset"] == 20
    np.testing.assert_allclose(transport.decode(pw["matrix"])[0],
                               run.head_weights(1, 0)[20:30, 5:15], atol=1e-4)


@pytest.mark.parametrize("window", [
    None, "x", {"q0": "1", "q1": 5, "k0": 0, "k1": 5}, {"q0": 0, "q1": 5, "k0": 0, "k1": 5},
    {"q0": 3, "q1": 3, "k0": 0, "k1": 5, "uirevision": "U"}, {"q0": True, "q1": 5, "k0": 0, "k1": 5,
                                                             "uirevision": "U"},
    {"q0": -5, "q1": 10 ** 9, "k0": -1, "k1": 10 ** 9, "uirevision": "U"}])
def test_the_browsers_window_is_never_trusted(window):
    assert panels.parse_window(window, 40, 40, "U") is None


def test_a_window_is_clamped_to_the_view():
    assert panels.parse_window({"q0": -3, "q1": 12, "k0": 30, "k1": 99, "uirevision": "U"}, 40, 40, "U") == \
        (0, 12, 30, 40)
