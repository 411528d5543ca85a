"""dashboard/views.py + dashboard/panels.py on small hand-made runs (no model)."""
import numpy as np
import pytest

from services import panels, views
from dashboard import urlstate
from dashboard.controls import slider_from_temperature, temperature_from_slider
from dashboard.selection import MEAN
from models import metrics
from models.run import AttentionRun, Block, Token, Truncation

L, H = 2, 3


def _tokens(pieces, segments, special):
    return tuple(Token(piece=p, id=i, start=None if s else 0, end=None if s else 1, segment=g, special=s,
                       subword=p.startswith("##")) for i, (p, g, s) in enumerate(zip(pieces, segments, special)))


def _block(name, kind, tq, tk, seed, q_side="source", k_side="source"):
    rng = np.random.default_rng(seed)
    scores = rng.normal(0, 2, size=(L, H, tq, tk)).astype(np.float32)
    if kind == "causal":
        scores[..., np.triu(np.ones((tq, tk), bool), 1)] = -np.inf
    weights = metrics.softmax_with_temperature(scores, 1.0)
    return Block(name=name, kind=kind, query_side=q_side, key_side=k_side,
                 weights=weights.astype(np.float16), scores=scores.astype(np.float16))


def bert_pair():
    pieces = ["[CLS]", "the", "cat", "[SEP]", "it", "##s", "[SEP]"]
    toks = _tokens(pieces, [0, 0, 0, 0, 1, 1, 1], [True, False, False, True, False, False, True])
    return AttentionRun("m", "fp", "encoder", "the cat", "its", toks, (), (_block("self", "self", 7, 7, 0),))


def gpt2():
    toks = _tokens(["<|endoftext|>", "Ġa", "Ġb", "Ġc"], [0] * 4, [True, False, False, False])
    return AttentionRun("g", "fp", "decoder", "a b c", None, toks, (), (_block("self", "causal", 4, 4, 1),))


def bart():
    src = _tokens(["<s>", "Ġx", "Ġy", "</s>"], [0] * 4, [True, False, False, True])
    tgt = _tokens(["</s>", "<s>", "Ġz"], [0] * 3, [True, True, False])
    blocks = (_block("encoder", "self", 4, 4, 2), _block("decoder", "causal", 3, 3, 3, "target", "target"),
              _block("cross", "cross", 3, 4, 4, "target", "source"))
    return AttentionRun("b", "fp", "encoder-decoder", "x y", "z", src, tgt, blocks)


# ---- block choices -------------------------------------------------------------------------------
def test_block_options_per_architecture():
    assert [o["value"] for o in views.block_options(bert_pair())] == ["self", "self:AA", "self:AB", "self:BA", "self:BB"]
    assert [o["label"] for o in views.block_options(bert_pair())][1:] == ["A→A", "A→B", "B→A", "B→B"]
    assert views.block_options(gpt2()) == [{"label": "self (causal)", "value": "self"}]
    assert [o["label"] for o in views.block_options(bart())] == [
        "encoder self", "decoder self (causal)", "cross (decoder → encoder)"]


def _block_of(run, choice):
    sel = views.selection_of(run, choice, None, None)
    return sel.block, sel.pair


def test_parse_block_rejects_unknown_choices():
    run = bert_pair()
    assert _block_of(run, "self:AB") == ("self", "AB")
    assert _block_of(run, "nope") == ("self", None)
    assert _block_of(run, None) == ("self", None)
    assert _block_of(run, "self:XY") == ("self", None)
    assert _block_of(gpt2(), "self:AB") == ("self", None)  # no pair slicing for causal
    assert _block_of(bart(), "cross") == ("cross", None)
    sel = views.selection_of(run, "self:AB", "1", "2")
    assert (sel.value, sel.held) == ("self:AB", "self:AB")
    assert (views.selection_of(run, "", "1", "2").held, views.selection_of(run, "x:AB", 1, 2).value) == ("self", "self")


def _clamped(run, block, layer, head):
    sel = views.selection_of(run, block, layer, head)
    return sel.layer, sel.head


def test_clamp_selection_and_parsing():
    run = bert_pair()
    assert _clamped(run, "self", "1", "2") == (1, 2)
    assert _clamped(run, "self", "9", "9") == (L - 1, 0)
    assert _clamped(run, "self", None, MEAN) == (L - 1, MEAN)
    assert _clamped(run, "self", "-1", "x") == (L - 1, 0)
    assert views.parse_index(True) is None and views.parse_index(" 3 ") == 3 and views.parse_index("3.0") is None
    n_queries = len(run.source_tokens)
    assert views.selection_of(run, "self", 1, 2, str(n_queries - 1)).query == n_queries - 1
    assert views.selection_of(run, "self", 1, 2, n_queries).query is None  # out of range
    assert views.selection_of(run, "self", 1, 2, "²").query is None and views.selection_of(run, "self", 1, 2).query is None


# ---- slicing -----------------------------------------------------------------------------------
def test_head_matrix_is_the_models_weights_at_t1():
    run = bert_pair()
    v = views.head_matrix(run, "self", 1, 2)
    np.testing.assert_array_equal(v.matrix, run.main.weights[1, 2].astype(np.float32))
    assert v.query_labels == ["[CLS]", "the", "cat", "[SEP]", "it", "##s", "[SEP]"] == v.key_labels
    assert v.boundary == 4 and not v.causal


@pytest.mark.parametrize("pair,rows,cols", [("AA", [0, 1, 2, 3], [0, 1, 2, 3]), ("AB", [0, 1, 2, 3], [4, 5, 6]),
                                            ("BA", [4, 5, 6], [0, 1, 2, 3]), ("BB", [4, 5, 6], [4, 5, 6])])
def test_pair_blocks_slice_rows_by_query_segment_and_columns_by_key_segment(pair, rows, cols):
    run = bert_pair()
    v = views.head_matrix(run, "self", 0, 1, pair)
    full = run.main.weights[0, 1].astype(np.float32)
    np.testing.assert_array_equal(v.matrix, full[np.ix_(rows, cols)])
    assert list(v.query_positions) == rows and list(v.key_positions) == cols
    assert v.boundary is None
    np.testing.assert_array_equal(v.full, full)


def test_mean_of_heads():
    run = bert_pair()
    v = views.head_matrix(run, "self", 1, MEAN, "BA")
    want = run.main.weights[1].astype(np.float32).mean(axis=0)[np.ix_([4, 5, 6], [0, 1, 2, 3])]
    np.testing.assert_allclose(v.matrix, want, atol=1e-6)


def test_temperature_reapplies_softmax_to_the_real_scores():
    run = bert_pair()
    s = run.main.scores[0, 2].astype(np.float32)
    v = views.head_matrix(run, "self", 0, 2, None, 2.0)
    e = np.exp(s / 2 - (s / 2).max(axis=-1, keepdims=True))
    np.testing.assert_allclose(v.matrix, e / e.sum(axis=-1, keepdims=True), atol=1e-6)
    sharp = views.head_matrix(run, "self", 0, 2, None, 0.25).matrix
    flat = views.head_matrix(run, "self", 0, 2, None, 4.0).matrix
    assert metrics.row_entropy(sharp).mean() < metrics.row_entropy(v.matrix).mean() < metrics.row_entropy(flat).mean()
    mean_t = views.head_matrix(run, "self", 0, MEAN, None, 2.0).matrix
    per_head = [views.head_matrix(run, "self", 0, h, None, 2.0).matrix for h in range(H)]
    np.testing.assert_allclose(mean_t, np.mean(per_head, axis=0), atol=1e-6)


def test_causal_and_cross_blocks():
    v = views.head_matrix(gpt2(), "self", 1, 0, None, 3.0)
    assert v.causal and np.all(v.matrix[np.triu_indices(4, 1)] == 0)  # masked keys stay 0 at any T
    np.testing.assert_allclose(v.matrix.sum(axis=1), 1, atol=1e-5)
    run = bart()
    c = views.head_matrix(run, "cross", 0, 1)
    assert c.matrix.shape == (3, 4) and c.query_labels == ["</s>", "<s>", "z"] and c.key_labels[1] == "x"
    assert views.head_stats(run, c, "cross")["tokens"] == "3 → 4"


def test_head_stats_and_title():
    run = bert_pair()
    v = views.head_matrix(run, "self", 0, 1)
    st = views.head_stats(run, v, "self")
    m = metrics.stats(v.full)
    assert st["tokens"] == "7" and st["entropy"] == f"{m['entropy']:.2f}" and st["sink"] == f"{m['sink']:.2f}"
    assert st["most_attended"].endswith(f"(#{m['most_attended']})")
    assert views.head_title(run, "self", 0, MEAN, "AB", 2.0) == "Layer 0 · mean of all heads · self · A→B · T = 2"
    assert views.head_title(bart(), "cross", 1, 0, None, 1.0) == "Layer 1 · head 0 · cross (decoder → encoder)"


def test_default_query_is_the_last_whole_word():
    assert views.default_query(bert_pair(), "self") == 4  # "it" ("##s" is a continuation piece)
    assert views.default_query(bart(), "cross") == 2 and views.default_query(bart(), "encoder") == 2
    specials = AttentionRun("m", "fp", "encoder", "", None, _tokens(["[CLS]", "[SEP]"], [0, 0], [True, True]), (),
                            (_block("self", "self", 2, 2, 5),))
    assert views.default_query(specials, "self") == 0


def test_top_keys_weights_and_scores():
    run = bert_pair()
    rows = views.top_keys(run, "self", 1, 2, 3, k=3)
    assert [(r["key"], r["weight"], r["score"]) for r in rows] == [tuple(x) for x in run.top_keys(1, 2, 3, 3)]
    assert rows[0]["label"] == run.source_tokens[rows[0]["key"]].label
    mean = views.top_keys(run, "self", 1, MEAN, 3, k=5)
    assert all(r["score"] is None for r in mean)  # scores are per head
    row = run.main.weights[1].astype(np.float32).mean(axis=0)[3]
    assert mean[0]["key"] == int(np.argmax(row)) and abs(mean[0]["weight"] - row.max()) < 1e-6
    hot = views.top_keys(run, "self", 1, 2, 3, temperature=0.25, k=2)
    assert hot[0]["weight"] > rows[0]["weight"] and hot[0]["score"] == rows[0]["score"]


def test_head_metrics_memo():
    run = bert_pair()
    assert run.head_metrics("self") is run.head_metrics("self")
    assert run.head_metrics("self")["role"].shape == (L, H)


def test_truncation_message():
    t = Truncation(side="source", segment=0, kept_chars=2549, total_chars=3000, dropped_tokens=90, max_tokens=512)
    assert views.truncation_message([t]) == "Text cut to 512 tokens at character 2549 of 3000; 90 tokens not run."
    t2 = dict(side="source", segment=1, kept_chars=5, total_chars=9, dropped_tokens=1, max_tokens=16)
    assert views.truncation_message([t2]).startswith("Second text cut to 16 tokens") and "1 token not run" in \
        views.truncation_message([t2])
    assert views.truncation_message([]) is None


# ---- panels ------------------------------------------------------------------------------------
def test_heatmap_panel_offsets_and_values_flag():
    run = bert_pair()
    p = panels.heatmap_panel(run, "self:BA", "1", "0", 0, "viridis", "auto")
    meta = p["figure"].layout.meta
    assert (meta["rows"], meta["cols"], meta["query_offset"], meta["key_offset"]) == (3, 4, 4, 0)
    assert meta["layer"] == 1 and meta["head"] == 0 and meta["show_values"] is True
    np.testing.assert_allclose(np.array(p["figure"].data[0].z, dtype=float),
                               run.main.weights[1, 0].astype(float)[4:, :4], atol=1e-3)
    assert p["note"] == "" and p["title"] == "Layer 1 · head 0 · self · B→A"
    p2 = panels.heatmap_panel(run, "self", "1", "mean", 1, "mono", "off")
    assert p2["figure"].layout.meta["show_values"] is False and "T = 2" in p2["note"]
    assert {s.name for s in p2["figure"].layout.shapes} == {"boundary-x", "boundary-y"}
    p3 = panels.heatmap_panel(run, "self", "1", "0", 0, "accent", "auto", stretch=True)
    w10 = run.main.weights[1, 0].astype(np.float32)
    assert p3["figure"].layout.meta["zmax"] == pytest.approx(float(np.quantile(w10[w10 > 0], 0.99)), abs=1e-6)
    assert panels.stretched_zmax(np.zeros((3, 3))) == 1.0
    assert panels.stretched_zmax(np.full((100, 100), 0.01)) == pytest.approx(0.01)
    assert p2["figure"].layout.meta["zmax"] == 1.0
    assert panels.show_values_flag("on", 500) is False and panels.show_values_flag("on", 30) is True
    assert panels.show_values_flag("auto", 30) is None


def test_grid_and_overview_figures():
    run = bert_pair()
    g = panels.grid_figure(run, "self", "entropy", "1", "2")
    assert g.layout.meta["selected"] == [1, 2] and g.layout.meta["metric_unit"] == "bits"
    gm = panels.grid_figure(run, "self", "sink", "1", "mean")
    assert [s.name for s in gm.layout.shapes] == ["selected"] and gm.layout.shapes[0].y0 == 0.5
    assert panels.grid_figure(run, "self", "role", "0", "0").layout.meta["kind"] == "role_grid"
    ov = panels.overview_figure(run, "self:AB", "1", "2", "accent")
    assert ov.layout.meta["panels"] == H and ov.layout.meta["layer"] == 1 and ov.layout.meta["tokens"] == [4, 3]
    np.testing.assert_allclose(np.array(ov.data[2].z, dtype=float), run.main.weights[1, 2].astype(float)[:4, 4:],
                               atol=1e-3)


def test_inspector_panel():
    run = bert_pair()
    assert panels.inspector_panel(run, "self", "0", "0", None, 0) is None
    assert panels.inspector_panel(run, "self", "0", "0", 99, 0) is None
    p = panels.inspector_panel(run, "self", "0", "1", 4, 0)
    assert p["title"].startswith("Query #4 “it”") and len(p["rows"]) == 5 and not p["mean"]
    assert p["figure"].layout.meta["has_scores"] is True
    pm = panels.inspector_panel(run, "self", "0", MEAN, 4, 0)
    assert pm["mean"] and pm["figure"].layout.meta["has_scores"] is False


def test_run_outputs_keep_the_selection_where_it_exists():
    run = bert_pair()
    out = panels.run_outputs({"model": "m"}, run, "1", "2", "self:BB", 5)
    assert (out["layer"], out["head"], out["block"], out["query"]) == ("1", "2", "self:BB", 5)
    assert out["store"]["summary"]["source_tokens"][0] == "[CLS]" and "weights" not in str(out["store"])
    out = panels.run_outputs({"model": "m"}, gpt2(), "7", "mean", "self:BB", 40)
    assert (out["layer"], out["head"], out["block"], out["query"]) == ("1", "mean", "self", 3)  # last word
    same = {"model": "m", "text": "the cat", "text_pair": "its"}
    assert panels.run_outputs(same, run, "1", "2", "self", 1, previous=dict(same))["query"] == 1
    other = dict(same, text="a dog")
    assert panels.run_outputs(other, run, "1", "2", "self", 1, previous=same)["query"] == 4  # new text: default
    assert out["truncated"] is False and out["info"].startswith("g · decoder · 4 tokens")


def test_url_round_trip_through_panels():
    store = {"request": {"model": "all-MiniLM-L6-v2", "text": "Hi there", "text_pair": "B"}}
    search = urlstate.url_search(store, "2", "mean", "self:AB", "sink", -1, 3)
    back = urlstate.from_url(search, ["all-MiniLM-L6-v2"])
    assert (back["model"], back["text"], back["text_pair"], back["metric"], back["slider"]) == (
        "all-MiniLM-L6-v2", "Hi there", "B", "sink", -1.0)
    assert back["pending"] == {"layer": "2", "head": "mean", "block": "self:AB", "query": 3, "prune": None,
                               "problems": ""}
    assert urlstate.url_search(None, "1", "1", None, "entropy", 0, None) is None


def test_temperature_slider_mapping():
    assert temperature_from_slider(0) == 1.0 and temperature_from_slider(None) == 1.0
    assert temperature_from_slider(-2) == 0.25 and temperature_from_slider(2) == 4.0
    assert temperature_from_slider(0.5) == 1.41 and temperature_from_slider(99) == 4.0
    assert slider_from_temperature(0.5) == -1.0 and slider_from_temperature(1.0) == 0.0


def test_layer_and_head_choices_follow_the_block():
    """An encoder-decoder's blocks differ in size: switching block re-offers its layers/heads."""
    summary = {"blocks": [{"name": "encoder", "layers": 2, "heads": 4},
                          {"name": "decoder", "layers": 3, "heads": 4},
                          {"name": "cross", "layers": 3, "heads": 8}]}
    two = views.layer_options(2)
    out = panels.block_controls(summary, "cross", "1", "6", two)
    assert [o["value"] for o in out["layer_options"]] == ["0", "1", "2"]
    assert (out["layer"], out["head"]) == ("1", "6")
    assert [o["value"] for o in out["head_options"]][-2:] == ["7", MEAN]
    back = panels.block_controls(summary, "encoder", "2", "6", out["layer_options"])
    assert (back["layer"], back["head"]) == ("1", "0")  # clamped into the encoder's 2 x 4
    assert panels.block_controls(summary, "decoder", "2", MEAN, out["layer_options"]) is None  # same size
    assert panels.block_controls(summary, "nope", "0", "0", two) is None
    assert panels.block_controls(None, "cross", "0", "0", two) is None
    pair = {"blocks": [{"name": "self", "layers": 6, "heads": 12}]}
    assert panels.block_controls(pair, "self:AB", "3", "1", views.layer_options(6)) is None
