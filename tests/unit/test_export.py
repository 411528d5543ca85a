"""dashboard/export.py: the shown matrix as CSV."""
import csv
import io

import numpy as np
import pytest

from dashboard.export import CORNER, export_stem, grid_csv, json_text, matrix_csv, rows_csv, safe_cell


def test_csv_has_token_headers_and_rounded_values():
    m = np.array([[0.123456, 0.876544], [1.0, 0.0]], dtype=np.float16)
    rows = list(csv.reader(io.StringIO(matrix_csv(m, ["[CLS]", "cat"], ["the", "cat"]))))
    assert rows[0] == [CORNER, "the", "cat"]
    assert rows[1][0] == "[CLS]" and rows[2][0] == "cat"
    np.testing.assert_allclose(np.array([r[1:] for r in rows[1:]], dtype=float), m.astype(float), atol=1e-4)


def test_formula_injection_is_defused():
    assert safe_cell("=1+1") == "'=1+1"
    for bad in ("+cmd", "-2", "@SUM(A1)", "\tx", "\rx"):
        assert safe_cell(bad).startswith("'")
    assert safe_cell("cat") == "cat" and safe_cell("a=b") == "a=b"
    text = matrix_csv(np.eye(2), ["=HYPERLINK(\"x\")", "ok"], ["@a", "-b"])
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][1:] == ["'@a", "'-b"] and rows[1][0].startswith("'=")


def test_quotes_commas_newlines_survive():
    labels = ['a,b', 'say "hi"', "line\nbreak"]
    rows = list(csv.reader(io.StringIO(matrix_csv(np.zeros((3, 3)), labels, labels))))
    assert rows[0][1:] == labels and [r[0] for r in rows[1:]] == labels


def test_shape_mismatch_raises():
    with pytest.raises(ValueError):
        matrix_csv(np.zeros((2, 3)), ["a", "b"], ["a", "b"])


def test_filename_is_safe():
    name = export_stem("attention", "all-MiniLM-L6-v2", "Layer 3 · head 1 · self · A→B")
    assert "/" not in name and " " not in name
    assert "/" not in export_stem("../../etc", "x") and "\\" not in export_stem("a\\b", "x")
    assert export_stem("", None) == "export" and len(export_stem("x" * 500)) == 120


def test_positions_in_headers_and_a_metadata_block():
    m = np.array([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]])
    text = matrix_csv(m, ["the", "-"], ["the", "the", "-"], query_positions=[1, 4], key_positions=[1, 2, 4],
                      meta={"model": "all-MiniLM-L6-v2", "text": "the the -\nx", "layer": 3, "head": 1,
                            "temperature": 1.0, "skipped": None})
    lines = text.splitlines()
    assert lines[:5] == ["# model: all-MiniLM-L6-v2", "# text: the the - x", "# layer: 3", "# head: 1",
                         "# temperature: 1.0"]
    rows = list(csv.reader(io.StringIO("\n".join(lines[5:]))))
    assert rows[0] == [CORNER, "1:the", "2:the", "4:-"]  # two "the" differ; "-" is not escaped to "'-"
    assert [r[0] for r in rows[1:]] == ["1:the", "4:-"]
    import pandas as pd

    df = pd.read_csv(io.StringIO(text), comment="#", index_col=0)
    np.testing.assert_allclose(df.to_numpy(), m, atol=1e-4)


def test_long_metadata_is_cut_and_formulas_in_rows_are_defused():
    text = matrix_csv(np.eye(1), ["a"], ["b"], meta={"text": "x" * 5000})
    assert "cut; 5000 characters" in text.splitlines()[0] and len(text.splitlines()[0]) < 2100
    assert rows_csv(["name", "v"], [["=1+1", 2]]).splitlines()[1] == "'=1+1,2"


def test_grid_and_json_exports():
    g = np.array([[1.0, np.nan], [0.25, 2.0]])
    rows = list(csv.reader(io.StringIO(grid_csv(g, meta={"metric": "entropy (bits)"}))))
    assert rows[0] == ["# metric: entropy (bits)"] and rows[1] == ["layer", "head", "value"]
    assert rows[2:] == [["0", "0", "1.000000"], ["0", "1", ""], ["1", "0", "0.250000"], ["1", "1", "2.000000"]]
    import json

    back = json.loads(json_text({"scores": np.arange(3.0)}, meta={"what": "importance"}))
    assert back == {"meta": {"what": "importance"}, "scores": [0.0, 1.0, 2.0]}
    assert export_stem("attention", "m", "Layer 3 · head 1", "The cat/sat") == "attention_m_Layer_3_head_1_The_cat_sat"


def test_head_metrics_importance_and_curves_tables():
    from dashboard.export import curves_table, head_metrics_table, importance_table

    m = {"entropy": np.array([[1.0, 2.0]]), "sink": np.array([[0.5, 0.25]]), "role": np.array([["sink", "broad"]])}
    header, rows = head_metrics_table(m)
    assert header == ["layer", "head", "entropy_bits", "sink_mass", "role"]
    assert rows == [[0, 0, 1.0, 0.5, "sink"], [0, 1, 2.0, 0.25, "broad"]]
    header, rows, meta = importance_table({"model": "m", "scores": [[0.1, 0.9], [0.3, 0.7]], "corpus": "c",
                                           "n_examples": 8, "loss_name": "contrastive"})
    assert rows[1] == [0, 1, 0.9] and meta["examples"] == 8 and "Michel" in meta["what"]
    curves = {"model": "m", "shares": [0.0, 0.5], "pruned": [0, 2], "seeds": 3,
              "curves": {"random": {"loss": [0.1, 0.4]}}, "std": {"random": {"loss": [0.0, 0.05]}}}
    header, rows, meta = curves_table(curves)
    assert rows == [["random", "loss", 0.0, 0, 0.1, 0.0], ["random", "loss", 0.5, 2, 0.4, 0.05]]
    assert meta["random seeds"] == 3
    for bad in (None, {}, {"scores": "x"}, {"scores": [[[1]]]}):
        with pytest.raises(ValueError):
            importance_table(bad)
    with pytest.raises(ValueError):
        curves_table({"curves": []})
