"""The shown matrix as CSV (pure; the download callback only wraps it in dcc.send_string)."""
from __future__ import annotations

import csv
import io
import re

import numpy as np

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CORNER = "query \\ key"


def safe_cell(text: str) -> str:
    """A text cell spreadsheets will not run as a formula: a leading ' before = + - @ (tab, CR)."""
    text = str(text).replace("\x00", "")
    return "'" + text if text.startswith(_FORMULA_START) else text


def matrix_csv(matrix, query_labels, key_labels, decimals: int = 4) -> str:
    """CSV of a [queries, keys] matrix: first row = key labels, first column = query labels.

    matrix: float [len(query_labels), len(key_labels)]; values rounded to `decimals`.
    """
    m = np.asarray(matrix, dtype=np.float64)
    if m.shape != (len(query_labels), len(key_labels)):
        raise ValueError(f"matrix {m.shape} does not match {len(query_labels)} x {len(key_labels)} labels")
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow([CORNER] + [safe_cell(k) for k in key_labels])
    for label, row in zip(query_labels, m):
        w.writerow([safe_cell(label)] + [f"{x:.{decimals}f}" for x in row])
    return out.getvalue()


def csv_filename(model: str, title: str) -> str:
    """A safe file name: "attention_all-MiniLM-L6-v2_layer-3_head-1_self.csv"."""
    stem = re.sub(r"[^A-Za-z0-9.+-]+", "_", f"attention {model} {title}".replace("·", " ")).strip("_")
    return stem[:120] + ".csv"
