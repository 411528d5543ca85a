"""dashboard/export.py: the shown matrix as CSV."""
import csv
import io

import numpy as np
import pytest

from dashboard.export import CORNER, csv_filename, matrix_csv, safe_cell


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
    name = csv_filename("all-MiniLM-L6-v2", "Layer 3 · head 1 · self · A→B")
    assert name.endswith(".csv") and "/" not in name and " " not in name
    assert "/" not in csv_filename("../../etc", "x") and "\\" not in csv_filename("a\\b", "x")
