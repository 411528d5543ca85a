"""Pure helpers of the head-pruning card (dashboard/pruning_views.py) on small synthetic runs:
mask toggling (and the browser's copy of it), count/share text, the corpus upload, the loss
note, progress, and what the figures are built from. No model is loaded."""
from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from dashboard import pruning_ids as P
from dashboard import pruning_panel
from services import pruning_card as pv
from models import pruning
from models.run import AttentionRun, Block, Token
from tests.unit.test_page_wiring import dependencies

ROOT = Path(__file__).resolve().parents[2]
PRUNING_JS = ROOT / "assets" / "pruning.js"


# ---- synthetic runs -----------------------------------------------------------------------------
def _run(weights, embedding, mask=None, model="toy") -> AttentionRun:
    """An encoder run of 4 tokens with the given attention float [L, H, 4, 4]."""
    pieces = ["[CLS]", "the", "cat", "[SEP]"]
    tokens = tuple(Token(piece=p, id=i, start=None, end=None, segment=0, special=p.startswith("["),
                         subword=False) for i, p in enumerate(pieces))
    return AttentionRun(model_name=model, model_fingerprint="fp", architecture="encoder", text="the cat",
                        text_pair=None, source_tokens=tokens, target_tokens=(),
                        blocks=(Block("self", "self", "source", "source", np.asarray(weights, np.float16)),),
                        head_mask=None if mask is None else np.asarray(mask, np.float32),
                        outputs={"embedding": np.asarray(embedding, np.float32)})


def _rows(rng, shape) -> np.ndarray:
    w = rng.random(shape) + 0.05
    return w / w.sum(-1, keepdims=True)


@pytest.fixture
def runs():
    """(base, pruned, mask): 2 layers x 3 heads; heads (0, 1) and (1, 2) pruned; layer 1 changed."""
    rng = np.random.default_rng(0)
    base_w = _rows(rng, (2, 3, 4, 4))
    pruned_w = base_w.copy()
    pruned_w[1] = _rows(rng, (3, 4, 4))
    mask = np.array([[1, 0, 1], [1, 1, 0]], np.float32)
    base = _run(base_w, [1.0, 0.0, 0.5])
    pruned = _run(pruned_w, [0.9, 0.3, 0.4], mask)
    return base, pruned, mask


@pytest.fixture(autouse=True)
def _shape_from_summary(monkeypatch):
    """These stores name no real run: the shape the server would read from the run is taken from
    the test's summary (pv.main_block_shape; test_run_info_shape_comes_from_the_server checks it)."""
    def shape(request):
        b = _SHAPES[id(request)]
        return b["name"], b["layers"], b["heads"]
    monkeypatch.setattr(pv, "main_block_shape", lambda r: shape(r) if id(r) in _SHAPES else _real_shape(r))


_SHAPES: dict = {}
_real_shape = pv.main_block_shape


def _store(layers=2, heads=3, model="toy") -> dict:
    store = _store_dict(layers, heads, model)
    _SHAPES[id(store["request"])] = store["summary"]["blocks"][0]
    return store


def test_run_info_shape_comes_from_the_server():
    """A store that claims 4 million layers (finding 3: the browser decided the allocation) gets
    the shape of the real run on the server."""
    store = _store_dict(4_000_000, 4_000_000, "all-MiniLM-L6-v2")
    info = pv.run_info(store)
    assert info.shape == (6, 12) and info.block == "self"
    assert len(pv.mask_action("clear", store, None)) == 6


def _store_dict(layers=2, heads=3, model="toy") -> dict:
    return {"request": {"model": model, "text": "the cat", "text_pair": None, "max_tokens": None, "head_mask": None},
            "summary": {"blocks": [{"name": "self", "kind": "self", "layers": layers, "heads": heads}]}}


# ---- masks --------------------------------------------------------------------------------------
def test_toggle_click_flips_one_head_and_sets_the_anchor():
    m = np.ones((2, 3), np.float32)
    m1, a1 = pv.toggle_mask(m, 0, 1)
    assert m1.tolist() == [[1, 0, 1], [1, 1, 1]] and a1 == {"layer": 0, "head": 1, "value": 0}
    assert m.tolist() == [[1, 1, 1], [1, 1, 1]]  # input untouched
    m2, a2 = pv.toggle_mask(m1, 0, 1, anchor=a1)  # a plain click ignores the anchor
    assert m2.tolist() == m.tolist() and a2["value"] == 1


def test_shift_click_sets_the_rectangle_to_the_anchor_value():
    m, a = pv.toggle_mask(np.ones((3, 4), np.float32), 0, 1)
    m, a = pv.toggle_mask(m, 2, 3, shift=True, anchor=a)  # rows 0-2 x heads 1-3 pruned
    assert m.tolist() == [[1, 0, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0]]
    assert a == {"layer": 2, "head": 3, "value": 0}
    m, a = pv.toggle_mask(m, 1, 2)  # restore one
    m, a = pv.toggle_mask(m, 0, 3, shift=True, anchor=a)  # restore rows 0-1 x heads 2-3
    assert m.tolist() == [[1, 0, 1, 1], [1, 0, 1, 1], [1, 0, 0, 0]]


def test_shift_without_a_usable_anchor_is_a_plain_click():
    m = np.ones((2, 2), np.float32)
    for anchor in (None, {"layer": 5, "head": 0, "value": 0}, {"layer": 0, "head": 0, "value": 7}, "x"):
        out, a = pv.toggle_mask(m, 1, 1, shift=True, anchor=anchor)
        assert out.tolist() == [[1, 1], [1, 0]] and a["value"] == 0
    out, a = pv.toggle_mask(m, 2, 0)  # outside: nothing happens
    assert out.tolist() == m.tolist() and a is None


def test_browser_toggle_is_the_same_function():
    """assets/pruning.js `_toggleMask` against toggle_mask, run by node when it is installed
    (the browser test checks the same in Chromium)."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    cases = [([[1, 1, 1], [1, 1, 1]], 0, 1, False, None),
             ([[1, 0, 1], [1, 1, 1]], 1, 2, True, {"layer": 0, "head": 1, "value": 0}),
             ([[0, 0, 0], [0, 0, 0]], 1, 0, True, {"layer": 0, "head": 2, "value": 1}),
             ([[1, 0, 1], [1, 1, 1]], 0, 1, True, None),
             (None, 1, 1, False, None),
             ([[1, 1], [1, 1]], 1, 1, False, None)]  # wrong shape: starts from all ones
    script = ("global.window = {}; global.document = {addEventListener() {}};"
              + "".join(f"require({json.dumps(str(ROOT / 'assets' / f))});" for f in ("attn-ids.js", "attn-lib.js"))
              + f"require({json.dumps(str(PRUNING_JS))});"
              "const f = window.dash_clientside.pruning._toggleMask;"
              f"const cases = {json.dumps(cases)};"
              "console.log(JSON.stringify(cases.map(c => f(c[0], c[1], c[2], c[3], c[4], 2, 3))));")
    out = json.loads(subprocess.run([node, "-e", script], capture_output=True, text=True, check=True,
                                    timeout=30).stdout)
    for (mask, layer, head, shift, anchor), (js_mask, js_anchor) in zip(cases, out):
        py_mask, py_anchor = pv.toggle_mask(pv.coerce_mask(mask, (2, 3)), layer, head, shift=shift, anchor=anchor)
        assert js_mask == py_mask.astype(int).tolist() and js_anchor == py_anchor


def test_coerce_mask_and_store_form():
    assert pv.coerce_mask(None, (2, 3)).tolist() == [[1, 1, 1]] * 2
    assert pv.coerce_mask([[1, 0]], (2, 3)).tolist() == [[1, 1, 1]] * 2  # another model's shape
    assert pv.coerce_mask([["a"]], (1, 1)).tolist() == [[1]]
    m = pv.coerce_mask([[1, 0.5, 0], [0, 1, 1]], (2, 3))
    assert m.dtype == np.float32 and m.tolist() == [[1, 1, 0], [0, 1, 1]]
    assert pv.mask_to_store(m) == [[1, 1, 0], [0, 1, 1]]
    assert all(type(v) is int for row in pv.mask_to_store(m) for v in row)


@pytest.mark.parametrize("pruned, total, text", [
    (18, 72, "18 of 72 heads pruned (25%)"), (0, 72, "0 of 72 heads pruned (0%)"),
    (1, 72, "1 of 72 heads pruned (1%)"), (72, 72, "72 of 72 heads pruned (100%)"),
    (1, 144, "1 of 144 heads pruned (0.7%)"),
])
def test_count_text(pruned, total, text):
    m = np.ones(total, np.float32)
    m[:pruned] = 0
    assert pv.count_text(m.reshape(1, -1)) == text
    assert pv.pruned_share(m) == pytest.approx(pruned / total)


def test_mask_actions():
    store = _store()
    importance = {"model": "toy", "scores": [[0.3, 0.1, 0.9], [0.2, 0.8, 0.05]]}
    assert pv.mask_action("least-important", store, None, 2, None, importance) == [[1, 0, 1], [1, 1, 0]]
    assert pv.mask_action("least-important", store, None, "2", None, importance) == [[1, 0, 1], [1, 1, 0]]
    assert pv.mask_action("clear", store, [[0, 0, 0], [0, 0, 0]]) == [[1, 1, 1], [1, 1, 1]]
    assert pv.mask_action("run", store, [[0, 1, 1], [1, 1, 1]]) == [[0, 1, 1], [1, 1, 1]]  # kept
    assert pv.mask_action("run", _store(3, 4), [[0, 1, 1], [1, 1, 1]]) == [[1] * 4] * 3  # new shape: reset
    with pytest.raises(pv.PanelError, match="Compute the head importance for toy"):
        pv.mask_action("least-important", store, None, 2, None, {"model": "other", "scores": [[0] * 3] * 2})
    with pytest.raises(pv.PanelError, match="Compute the head importance"):
        pv.mask_action("least-important", store, None, 2, None, None)
    for bad in (None, "", "x", -1, 7, 2.5, float("nan")):
        with pytest.raises(pv.PanelError, match="whole number from 0 to 6"):
            pv.mask_action("least-important", store, None, bad, None, importance)
    with pytest.raises(pv.PanelError, match="Run the model first"):
        pv.mask_action("clear", None, None)


def test_entropy_threshold(runs):
    base, _, _ = runs
    ent = base.head_metrics()["entropy"]
    x = float(np.median(ent))
    m = pv.mask_entropy_above(base, x)
    assert m.tolist() == np.where(ent > x, 0, 1).tolist() and 0 < (m == 0).sum() < m.size
    for bad in (None, "", "abc", float("inf")):
        with pytest.raises(pv.PanelError, match="entropy threshold"):
            pv.mask_entropy_above(base, bad)


# ---- figures' inputs ----------------------------------------------------------------------------
def test_selection_grid_colours_marks_and_outline(runs):
    base, _, mask = runs
    fig, note = pv.selection_grid(base, None, "importance", pv.mask_to_store(mask), "1", "0", "self")
    assert fig.layout.meta["kind"] == "head_grid" and fig.layout.meta["metric"] == "entropy"
    assert "Importance not computed yet" in note and "Shift+click" in note
    marks = fig.data[1]
    assert marks.name == "pruned" and sorted(zip(marks.y, marks.x)) == [(0, 1), (1, 2)]
    assert fig.layout.meta["selected"] == [1, 0]
    scores = [[0.3, 0.1, 0.9], [0.2, 0.8, 0.05]]
    fig, note = pv.selection_grid(base, {"model": "toy", "scores": scores, "corpus": "4 pairs"}, "importance",
                                  None, "1", "mean", "self")
    assert fig.layout.meta["metric"] == "importance" and "4 pairs" in note
    assert json.loads(fig.to_json())["data"][0]["z"] == scores
    assert fig.layout.meta["selected"] is None and fig.layout.meta["pruned"] == 0
    fig, _ = pv.selection_grid(base, {"model": "toy", "scores": scores}, "entropy", None, "0", "0", "self")
    assert fig.layout.meta["metric"] == "entropy"


def test_comparison_numbers(runs):
    base, pruned, mask = runs
    c = pv.comparison(base, pruned, pv.mask_to_store(mask), "self", "1", "0", "accent")
    z_base = np.array(json.loads(c["base_figure"].to_json())["data"][0]["z"], dtype=float)
    z_pruned = np.array(json.loads(c["pruned_figure"].to_json())["data"][0]["z"], dtype=float)
    np.testing.assert_allclose(z_base, base.weights[1, 0].astype(float), atol=1e-3)
    np.testing.assert_allclose(z_pruned, pruned.weights[1, 0].astype(float), atol=1e-3)
    assert c["base_figure"].layout.meta["layer"] == 1 and c["pruned_figure"].layout.meta["head"] == 0
    assert c["pruned_title"] == "Pruned (2 of 6 heads off)"
    assert c["title"].startswith("Baseline vs pruned · Layer 1 · head 0")
    out = {r["name"]: r for r in c["outputs"]}
    cos = pruning.output_change(base, pruned)["embedding_cosine"]
    assert out["cosine"]["value"] == f"{cos:.4f}" and out["pruned"]["value"] == "2"
    js = pruning.attention_change(base, pruned)
    assert pv.attention_change(base, pruned, "self") is pv.attention_change(base, pruned, "self")  # memoised
    np.testing.assert_array_equal(pv.attention_change(base, pruned, "self"), js)
    keep = mask == 1
    assert out["js_mean"]["value"] == f"{js[keep].mean():.4f} bits"
    grid = c["change_figure"]
    assert grid.layout.meta["metric"] == "js" and grid.layout.meta["pruned"] == 2
    z = np.array([[np.nan if v is None else v for v in row] for row in json.loads(grid.to_json())["data"][0]["z"]])
    np.testing.assert_allclose(z[keep], js[keep], atol=1e-3)
    assert np.isnan(z[~keep]).all()


def test_comparison_follows_the_temperature(runs):
    """T re-applies softmax to each run's own pre-softmax scores, on both sides."""
    from services.views import head_matrix

    import dataclasses

    def with_scores(run):  # softmax(log w) = w: scores that reproduce the weights at T = 1
        b = run.blocks[0]
        scores = np.log(b.weights.astype(np.float32)).astype(np.float16)
        block = Block(b.name, b.kind, b.query_side, b.key_side, b.weights, scores)
        return dataclasses.replace(run, blocks=(block,))

    base, pruned, mask = runs
    base, pruned = with_scores(base), with_scores(pruned)
    c = pv.comparison(base, pruned, pv.mask_to_store(mask), "self", "1", "0", "accent", temperature=2.0)
    z_base = np.array(json.loads(c["base_figure"].to_json())["data"][0]["z"], dtype=float)
    z_pruned = np.array(json.loads(c["pruned_figure"].to_json())["data"][0]["z"], dtype=float)
    np.testing.assert_allclose(z_base, head_matrix(base, "self", 1, 0, None, 2.0).matrix, atol=1e-3)
    np.testing.assert_allclose(z_pruned, head_matrix(pruned, "self", 1, 0, None, 2.0).matrix, atol=1e-3)
    assert np.abs(z_base - base.weights[1, 0].astype(float)).max() > 1e-2  # not the T = 1 weights
    assert "T = 2" in c["title"]


def test_comparison_notes(runs):
    base, pruned, mask = runs
    assert "is itself pruned" in pv.comparison(base, pruned, mask, "self", "1", "2", "accent")["note"]
    assert "No head before layer 0" in pv.comparison(base, pruned, mask, "self", "0", "0", "accent")["note"]
    same = pv.comparison(base, base, None, "self", "1", "0", "accent")
    assert "Nothing pruned yet" in same["note"] and same["pruned_title"] == "Pruned (nothing pruned)"
    assert same["change_figure"].layout.meta["kind"] == "empty"
    # the page's heatmap card already shows the baseline: a head switch does not send it again
    assert same["pruned_figure"].layout.meta["kind"] == "empty"
    assert same["base_figure"].layout.meta["kind"] == "empty"
    assert {r["name"]: r["value"] for r in same["outputs"]}["cosine"] == "1.0000"


def test_output_rows_for_a_language_model():
    rows = pv.output_rows({"heads_pruned": 3, "loss_base": 2.5, "loss_pruned": 2.75, "loss_delta": 0.25},
                          np.zeros((1, 2), np.float32), None)
    by = {r["name"]: r["value"] for r in rows}
    assert by["loss"] == "2.500 → 2.750 (+0.250)" and by["pruned"] == "3" and "cosine" not in by
    cards = pruning_panel.output_cards(rows)
    assert [c.children.children[1].id for c in cards][0] == P.output_value("loss")


# ---- corpus ------------------------------------------------------------------------------------
def _upload(text: str | bytes) -> str:
    raw = text.encode("utf-8") if isinstance(text, str) else text
    return "data:text/plain;base64," + base64.b64encode(raw).decode()


def test_decode_upload_good_and_bad():
    got = pv.decode_upload(_upload("a one\ta two\n# comment\n\nb one ||| b two\n"), "mine.tsv")
    assert got == {"name": "mine.tsv", "pairs": [["a one", "a two"], ["b one", "b two"]]}
    bad = {
        "line 2: no separator": _upload("a\tb\nno separator here\n"),
        "line 1: one side of the pair is empty": _upload("\tb\nc\td\n"),
        "need at least 2 sentence pairs": _upload("a\tb\n"),
        "not a UTF-8 text file": _upload(b"\xff\xfe\x00a\tb"),
        "the file is empty": "",
    }
    for message, contents in bad.items():
        with pytest.raises(pv.PanelError) as err:
            pv.decode_upload(contents, "mine.tsv")
        assert str(err.value).startswith("mine.tsv: ") and message in str(err.value)
    with pytest.raises(pv.PanelError, match="at most 2 MB"):
        pv.decode_upload(_upload("a\tb\n" * 700_000), "big.tsv")


def test_corpus_pairs_and_notes():
    bundled = pruning.load_pairs()
    pairs, label = pv.corpus_pairs(None)
    assert pairs == bundled and label == f"{len(bundled)} bundled paraphrase pairs"
    pairs, label = pv.corpus_pairs(None, "8")
    assert pairs == bundled[:8] and label == f"the first 8 of {len(bundled)} bundled paraphrase pairs"
    corpus = {"name": "mine.tsv", "pairs": [["a", "b"], ["c", "d"], ["e", "f"]]}
    pairs, label = pv.corpus_pairs(corpus, 10)
    assert pairs == [("a", "b"), ("c", "d"), ("e", "f")] and label == "3 pairs from mine.tsv"
    assert pv.corpus_text(corpus) == "Corpus: mine.tsv (3 pairs)."
    for bad in ("1", 1, "x", 2.5):
        with pytest.raises(pv.PanelError, match="Pairs used"):
            pv.corpus_pairs(None, bad)
    note = pv.loss_note("in-batch contrastive loss", "64 bundled paraphrase pairs")
    assert "|∂L/∂ξ_h|" in note and "L = in-batch contrastive loss over 64 bundled paraphrase pairs" in note
    assert "Michel" in note and "2019" in note
    assert "Pairs used" in pv.loss_note_for(None, None, "1")
    assert "Run the model first" in pv.loss_note_for(None, None, None)


def test_job_parameters():
    assert pv.parse_orders(["random", "importance", "bogus"]) == ["importance", "random"]
    with pytest.raises(pv.PanelError, match="at least one pruning order"):
        pv.parse_orders([])
    assert pv.parse_seeds(None) == pv.DEFAULT_SEEDS and pv.parse_seeds("2") == 2
    for bad in (0, 11, 1.5, "x"):
        with pytest.raises(pv.PanelError, match="Seeds"):
            pv.parse_seeds(bad)
    with pytest.raises(pv.PanelError, match="Run the model first"):
        pv.compute_curves(None, None, None, ["random"], 1)


def test_progress_reporter_sends_changes_only():
    seen = []
    report = pv.progress_reporter(seen.append, "curves")
    for done in (0, 1, 1, 2, 3, 200, 200):
        report(done, 200)
    report(5, 0)  # nothing to count: ignored
    assert seen == [(0, "curves: 0 of 200 steps (0%)"), (0, "curves: 1 of 200 steps (0%)"),
                    (1, "curves: 2 of 200 steps (1%)"), (1, "curves: 3 of 200 steps (1%)"),
                    (100, "curves: 200 of 200 steps (100%)")]
    pv.progress_reporter(None, "x")(1, 2)  # no bar: no-op


# ---- curves -------------------------------------------------------------------------------------
def _curves(model="toy") -> dict:
    shares = [0.0, 0.5]
    return {"model": model, "corpus": "4 pairs", "shares": shares, "layers": 2, "heads": 3,
            "orders": ["importance", "random"], "metrics": ["spearman", "loss"], "primary": "spearman",
            "curves": {"importance": {"spearman": [1.0, 0.8], "loss": [0.1, 0.3]},
                       "random": {"spearman": [1.0, 0.5], "loss": [0.1, 0.6]}},
            "std": {"importance": {"spearman": [0, 0], "loss": [0, 0]},
                    "random": {"spearman": [0, 0.1], "loss": [0, 0.2]}},
            "scores": {"importance": [[0.3, 0.1, 0.9], [0.2, 0.8, 0.05]]}, "seeds": 2, "seconds": 1.5,
            "loss_name": "contrastive", "n_examples": 4}


def test_curves_figure_marks_the_current_mask():
    mask = [[1, 0, 1], [1, 1, 0]]
    fig = pv.curves_figure(_curves(), None, mask, "toy")
    meta = fig.layout.meta
    assert meta["kind"] == "pruning_curves" and meta["orders"] == ["importance", "random"]
    assert meta["current_share"] == pytest.approx(2 / 6) and meta["higher_is_better"]
    line = [s for s in fig.layout.shapes if s.name == "current-share"]
    assert line and line[0].x0 == pytest.approx(2 / 6)
    assert fig.data[0].error_y.array is None and list(fig.data[1].error_y.array) == [0, 0.1]  # std only for random
    loss = pv.curves_figure(_curves(), "loss", None, "toy")
    assert loss.layout.meta["higher_is_better"] is False and loss.layout.meta["current_share"] is None
    assert list(loss.data[1].y) == [0.1, 0.6]
    assert pv.curves_figure(_curves(), "spearman", [[1, 0]], "toy").layout.meta["current_share"] is None
    assert pv.curves_figure(None, None, mask, "toy").layout.meta["kind"] == "empty"
    other = pv.curves_figure(_curves("other"), None, mask, "toy").layout.meta
    assert other["kind"] == "empty" and "other" in other["message"]
    options, value = pv.metric_choice(_curves())
    assert [o["value"] for o in options] == ["spearman", "loss"] and value == "spearman"
    assert pv.metric_choice(_curves(), "loss")[1] == "loss"
    assert pv.metric_choice(_curves(), "perplexity")[1] == "spearman"  # not in these curves
    assert pv.metric_choice(None, "loss") == ([], None)
    assert "4 pairs" in pv.curves_text(_curves()) and "2 seeds" in pv.curves_text(_curves())


def test_importance_from_curves_and_text():
    imp = pv.importance_from_curves(_curves())
    assert imp["model"] == "toy" and imp["scores"] == _curves()["scores"]["importance"]
    assert pv.importance_from_curves({**_curves(), "scores": {}}) is None
    assert "toy" in pv.importance_text(imp, "toy")
    assert "compute it again for bert" in pv.importance_text(imp, "bert")
    assert pv.importance_text(None, "toy") == "Importance not computed yet."


# ---- physical pruning ---------------------------------------------------------------------------
def test_physical_rows_and_table():
    result = {"model": "toy", "pruned": 18, "heads": 72, "params_full": 22_713_216, "params_pruned": 19_166_592,
              "latency_full": 0.0125, "latency_pruned": 0.0100, "tokens": 13, "repeats": 10}
    rows = {r["name"]: r for r in pv.physical_rows(result)}
    assert list(rows) == ["heads", "params", "latency"]
    assert rows["heads"]["pruned"] == "54" and rows["heads"]["change"] == "−18"
    assert rows["params"]["full"] == "22,713,216" and rows["params"]["change"] == "-15.6%"
    assert rows["latency"]["pruned"] == "10.0 ms" and rows["latency"]["change"] == "-20.0%"
    result.update(fastest_full=0.010, fastest_pruned=0.009)
    assert pv.physical_rows(result)[-1] == {"name": "fastest", "what": "latency (fastest)", "full": "10.0 ms",
                                            "pruned": "9.0 ms", "change": "-10.0%"}
    table = pruning_panel.physical_table(result)
    assert "median of 10 runs" in table.children[1].children
    with pytest.raises(pv.PanelError, match="Nothing is pruned"):
        pv.measure_physical(_store(), None)


def test_physical_pruning_of_an_unsupported_model_is_a_message(monkeypatch):
    from models import loader

    class Loaded:  # stands in for an encoder-decoder model: physically_prune refuses it
        name = "toy"

    def refuse(loaded, mask):
        raise NotImplementedError("physical pruning supports BERT-family encoders and GPT-2")

    monkeypatch.setattr(loader, "get_loaded", lambda name: Loaded())
    monkeypatch.setattr(pruning, "physically_prune", refuse)
    with pytest.raises(pv.PanelError, match="Physical pruning is not available for toy: .*BERT-family"):
        pv.measure_physical(_store(), [[0, 1, 1], [1, 1, 1]])


# ---- the card's layout and wiring ---------------------------------------------------------------
def _walk(component):
    yield component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, (list, tuple)) else [children]:
        if hasattr(child, "to_plotly_json"):
            yield from _walk(child)


def test_card_has_every_id_once():
    from dashboard import ids

    found = [c.id for c in _walk(pruning_panel.pruning_card()) if getattr(c, "id", None) is not None]
    strings = [i for i in found if isinstance(i, str)]
    assert len(strings) == len(set(strings))
    wanted = {v for k, v in vars(P).items() if k.isupper() and isinstance(v, str) and not k.endswith("_CLASS")}
    assert wanted <= set(strings), wanted - set(strings)
    page_ids = {v for k, v in vars(ids).items() if k.isupper() and isinstance(v, str)}
    assert ids.PRUNING_CARD in strings and not set(strings) & page_ids - {ids.PRUNING_CARD}
    grids = [c for c in _walk(pruning_panel.pruning_card()) if getattr(c, "id", None) in (P.SELECT_GRID, P.CHANGE_GRID)]
    assert all(ids.HEAD_GRID_CLASS in g.className.split() for g in grids) and len(grids) == 2


def test_callbacks_wiring(tmp_path, monkeypatch):
    """Clicks and hover of the card stay in the browser; importance and curves are background
    callbacks that disable their button and show the progress bar while they run, with Cancel."""
    monkeypatch.setenv("ATTN_CACHE_DIR", str(tmp_path))
    import app as app_module

    a = app_module.create_app()
    callbacks = dependencies(a)  # what the browser receives (GET /_dash-dependencies)

    def inputs(cb):
        return {(i["id"], i["property"]) for i in cb["inputs"] if isinstance(i["id"], str)}

    mine = [cb for cb in callbacks if "pruning-" in cb["output"] or any("pruning-" in i for i, _ in inputs(cb))]
    client = [cb for cb in mine if cb.get("clientside_function")]
    server = [cb for cb in mine if not cb.get("clientside_function")]
    assert any((P.SELECT_GRID, "clickData") in inputs(cb) for cb in client)
    assert any((P.SELECT_GRID, "hoverData") in inputs(cb) for cb in client)
    for cb in server:
        assert not {p for _, p in inputs(cb)} & {"hoverData", "clickData"}, cb["inputs"]
    for store, button, cancel, wrap in [
        (P.IMPORTANCE, P.IMPORTANCE_BUTTON, P.IMPORTANCE_CANCEL, P.IMPORTANCE_PROGRESS_WRAP),
        (P.CURVES, P.CURVES_BUTTON, P.CURVES_CANCEL, P.CURVES_PROGRESS_WRAP),
    ]:
        cb = next(cb for cb in server if (button, "n_clicks") in inputs(cb))
        assert cb["output"].lstrip(".").startswith(store + ".data") and cb.get("background")
        running = cb["running"]["running"]
        assert running[f"{button}.disabled"] is True and running[f"{wrap}.style"] == {"display": "block"}
        assert cb["running"]["runningOff"][f"{button}.disabled"] is False
        bg = a.callback_map[next(k for k in a.callback_map if f"{store}.data" in k.split("@")[0]
                                 and a.callback_map[k].get("background"))]["background"]
        assert bg["cancel"] == [{"id": cancel, "property": "n_clicks"}]
        assert [str(o) for o in bg["progress"]][0] == f"{button.replace('button', 'progress')}.value"


def test_saturated_metric_is_named_in_the_curves_text():
    """Issue 15: with a small corpus retrieval accuracy sits at 1.0 for every order; the page says so."""
    curves = {"model": "m", "corpus": "c", "shares": [0.0, 0.5, 1.0], "pruned": [0, 36, 72], "n_heads": 72,
              "seeds": 2, "seconds": 3.0, "metrics": ["spearman", "retrieval_acc"],
              "curves": {"importance": {"spearman": [1.0, 0.9, 0.1], "retrieval_acc": [1.0, 1.0, 0.2]},
                         "random": {"spearman": [1.0, 0.8, 0.1], "retrieval_acc": [1.0, 1.0, 0.2]}}}
    assert pv.saturated_metrics(curves) == ["retrieval_acc"]
    text = pv.curves_text(curves)
    assert "Saturated on this corpus" in text and "wall time" in text
    curves["curves"]["random"]["retrieval_acc"][1] = 0.97
    assert pv.saturated_metrics(curves) == [] and "Saturated" not in pv.curves_text(curves)
    assert pv.saturated_metrics(None) == [] and pv.saturated_metrics({"curves": []}) == []
