"""dashboard/measure_view.py and the panels under a measure, on a hand-made run and hand-made
measure values (no model): the heatmap payload, inspector, text view and exports show the
measure's numbers and name it; a fallback shows raw weights and says why; the URL carries it."""
import json

import numpy as np
import pytest

from dashboard import export, measure_view, transport, urlstate
from models.measure_views import MeasureLayer, describe
from services import panels, textview
from tests.unit.test_views import H, bert_pair

T = 7


def _measure(name="value-norm", seed=0, signed=False) -> MeasureLayer:
    rng = np.random.default_rng(seed)
    heads = rng.uniform(-2 if signed else 0, 3, (H, T, T)).astype(np.float32)
    per_head = name != "rollout"
    return describe(name, "y = a target" if name == "grad-attention" else "",
                    heads=heads if per_head else None, mean=heads.mean(0), signed=signed, per_head=per_head,
                    source="model")


def test_payload_carries_the_measure_values_titles_and_names():
    run = bert_pair()
    ml = _measure()
    p = panels.heatmap_payload(run, "self", "1", "2", 0, "accent", "auto", True, "max", None, ml)
    pl = p["payload"]
    assert pl["mode"] == "layer" and pl["heads"] == ["0", "1", "2", "mean"]
    dec = transport.decode(pl["matrix"])
    for i, h in enumerate(pl["heads"]):
        expect = ml.mean if h == "mean" else ml.heads[int(h)]
        np.testing.assert_allclose(dec[i], expect, atol=pl["matrix"]["step"] / 2 + 1e-7)
    assert pl["titles"][2].startswith("value-norm ‖α f(x)‖ · Layer 1 · head 2")
    assert pl["measure"]["measure"] == "value-norm" and "Kobayashi" in pl["measure"]["formula"]
    assert pl["value_name"] == "value-norm" and pl["zmax"][2] == pytest.approx(float(ml.heads[2].max()), rel=1e-6)
    assert "value-norm" in pl["figure"]["data"][0]["hovertemplate"]
    assert pl["figure"]["layout"]["meta"]["value_label"] == "value-norm"
    assert p["note"].startswith("value-norm ‖α f(x)‖:")
    # stats of the measure's values
    assert pl["stats"][2]["max_weight"] == f"{ml.heads[2].max():.3g}"


def test_rollout_is_one_matrix_and_signed_values_are_drawn_as_magnitudes():
    run = bert_pair()
    ml = _measure("rollout")
    pl = panels.heatmap_payload(run, "self", "1", "0", 0, "accent", "auto", True, "max", None, ml)["payload"]
    assert pl["mode"] == "head" and pl["heads"] == ["0"]
    assert pl["titles"][0].startswith("attention rollout · layers 0–1 · heads averaged")
    np.testing.assert_allclose(transport.decode(pl["matrix"])[0], ml.mean, atol=pl["matrix"]["step"])
    g = _measure("grad-attention", signed=True)
    pl = panels.heatmap_payload(run, "self", "0", "1", 0, "accent", "auto", True, "max", None, g)["payload"]
    np.testing.assert_allclose(transport.decode(pl["matrix"])[1], np.abs(g.heads[1]), atol=pl["matrix"]["step"])
    assert pl["value_name"] == "|grad × attn|" and pl["titles"][1].startswith("|gradient × attention|")


def test_pair_slice_and_fallback():
    run = bert_pair()
    ml = _measure()
    pl = panels.heatmap_payload(run, "self:AB", "1", "0", 0, "accent", "auto", True, "max", None, ml)["payload"]
    q = [0, 1, 2, 3]
    k = [4, 5, 6]
    np.testing.assert_allclose(transport.decode(pl["matrix"])[0], ml.heads[0][np.ix_(q, k)],
                               atol=pl["matrix"]["step"])
    raw = describe("raw", requested="value-norm", error="Value-norm is implemented for BERT-family encoders.")
    p = panels.heatmap_payload(run, "self", "1", "0", 0, "accent", "auto", True, "max", None, raw)
    assert p["payload"]["titles"][0].startswith("raw weights · Layer 1")
    assert "BERT-family" in p["note"] and "Showing raw weights" in p["note"]
    np.testing.assert_allclose(transport.decode(p["payload"]["matrix"])[0], run.head_weights(1, 0), atol=1e-4)


def test_inspector_text_view_and_exports_under_a_measure():
    run = bert_pair()
    g = _measure("grad-attention", signed=True)
    ins = panels.inspector_panel(run, "self", "1", "2", 3, 0, g)
    row = g.heads[2][3]
    order = np.argsort(-np.abs(row))[:5]
    assert [r["key"] for r in ins["rows"]] == order.tolist()
    np.testing.assert_allclose([r["value"] for r in ins["rows"]], row[order], rtol=1e-6)  # the sign is kept
    assert "gradient × attention" in ins["title"] and ins["measure"] is g
    tv = textview.text_view_payload(run, "self", "1", "2", 3, 0, g)
    np.testing.assert_allclose(tv["weights"], np.abs(row), rtol=1e-3)
    assert "gradient × attention" in tv["title"]
    ex = panels.heatmap_export(run, "self", "1", "2", 0, g)
    np.testing.assert_allclose(ex["matrix"], g.heads[2])  # signed in the export
    assert ex["meta"]["measure"] == "gradient × attention" and ex["meta"]["target"] == "y = a target"
    assert ex["stem"].startswith("grad-attention_m_gradient_attention") and ex["measured"]
    text = export.matrix_json(ex["matrix"], ex["query_labels"], ex["key_labels"], ex["query_positions"],
                              ex["key_positions"], meta=ex["meta"])
    data = json.loads(text)
    assert data["meta"]["measure"] == "gradient × attention"
    np.testing.assert_allclose(np.array(data["values"]), g.heads[2], rtol=1e-5)
    csv = export.matrix_csv(ex["matrix"], ex["query_labels"], ex["key_labels"], meta=ex["meta"], significant=6)
    assert "# measure: gradient × attention" in csv


def test_url_carries_the_measure_and_refuses_others():
    s = urlstate.decode("?text=hi&measure=value-norm")
    assert s.measure == "value-norm" and "measure=value-norm" in urlstate.encode(s)
    assert urlstate.decode("?text=hi&measure=<script>").measure == "raw"
    assert "measure" not in urlstate.encode(urlstate.decode("?text=hi"))
    assert measure_view.parse("nope") == "raw" and measure_view.parse("rollout") == "rollout"


def test_labels_match_the_engine():
    from models import measures

    assert measure_view.LABELS == measures.MEASURE_LABELS
    assert urlstate.MEASURES == measures.MEASURES


def test_js_files_use_the_page_ids_and_labels():
    """assets/compare.js names the compare graphs by value, assets/measure.js the measure labels."""
    from pathlib import Path

    from dashboard import research_ids as R

    root = Path(__file__).resolve().parents[2] / "assets"
    compare = (root / "compare.js").read_text(encoding="utf-8")
    for value in (R.COMPARE_A, R.COMPARE_B, R.COMPARE_DIFF):
        assert f'"{value}"' in compare, value
    measure = (root / "measure.js").read_text(encoding="utf-8")
    for key, label in measure_view.LABELS.items():
        assert f'"{key}": "{label}"' in measure, key


def test_greedy_note_reads_as_a_lower_bound():
    from dashboard import research_pruning as rp

    note = rp.greedy_note({"evaluations": 1962, "n_estimate": 16, "seconds_each": 0.116, "seconds": 227.6})
    assert "1,962 evaluations of the 16 estimate pairs" in note and "at least 4 min" in note
