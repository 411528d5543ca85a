"""Exports with context (pure; the download callbacks only wrap these in dcc.send_string).

Every export says what it is: a block of `# key: value` lines first (model, text, selection,
method), then the data. Read the CSVs with `pandas.read_csv(path, comment="#")`.
"""
from __future__ import annotations

import csv
import io
import json
import re

import numpy as np

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CORNER = "query \\ key"
MAX_META_CHARS = 2000  # a metadata value (e.g. the text) is cut here, with a note


def safe_cell(text: str) -> str:
    """A text cell spreadsheets will not run as a formula: a leading ' before = + - @ (tab, CR)."""
    text = str(text).replace("\x00", "")
    return "'" + text if text.startswith(_FORMULA_START) else text


def token_header(position: int, label: str) -> str:
    """"3:the": the token's position first, so two "the" columns differ and a "-" token stays "-"
    (a cell that starts with a digit is never a formula)."""
    return f"{int(position)}:{str(label).replace(chr(0), '')}"


def _meta_lines(out: io.StringIO, meta: dict | None) -> None:
    """`# key: value` lines, written as they are (not CSV-quoted, so `comment="#"` skips them)."""
    for key, value in (meta or {}).items():
        if value is None:
            continue
        text = re.sub(r"[\r\n\x00]+", " ", str(value))
        if len(text) > MAX_META_CHARS:
            text = text[:MAX_META_CHARS] + f" … (cut; {len(text)} characters in all)"
        out.write(f"# {key}: {text}\n")


def matrix_csv(matrix, query_labels, key_labels, decimals: int = 4, *, query_positions=None,
               key_positions=None, meta: dict | None = None, significant: int | None = None) -> str:
    """CSV of a [queries, keys] matrix: `# key: value` metadata lines, then a header row of keys,
    then one row per query (first column the query).

    matrix: float [len(query_labels), len(key_labels)]; values rounded to `decimals`.
    query_positions / key_positions: int [same lengths], the tokens' positions in the run; when
    given, headers read "3:the" (see `token_header`).
    significant: write values with this many significant digits instead (measures whose values are
    not in 0..1, e.g. gradient x attention ~1e-4).
    """
    fmt = f".{significant}g" if significant else f".{decimals}f"
    m = np.asarray(matrix, dtype=np.float64)
    if m.shape != (len(query_labels), len(key_labels)):
        raise ValueError(f"matrix {m.shape} does not match {len(query_labels)} x {len(key_labels)} labels")
    q = ([token_header(p, s) for p, s in zip(query_positions, query_labels)]
         if query_positions is not None else list(query_labels))
    k = ([token_header(p, s) for p, s in zip(key_positions, key_labels)]
         if key_positions is not None else list(key_labels))
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    _meta_lines(out, meta)
    w.writerow([CORNER] + [safe_cell(x) for x in k])
    for label, row in zip(q, m):
        w.writerow([safe_cell(label)] + [format(x, fmt) for x in row])
    return out.getvalue()


def grid_csv(values, *, meta: dict | None = None, decimals: int = 6) -> str:
    """CSV of a [layers, heads] grid in long form: layer, head, value (NaN stays empty)."""
    v = np.asarray(values)
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    _meta_lines(out, meta)
    w.writerow(["layer", "head", "value"])
    for (layer, head), x in np.ndenumerate(v):
        if isinstance(x, (str, np.str_)):
            cell = safe_cell(x)
        else:
            cell = "" if not np.isfinite(x) else f"{float(x):.{decimals}f}"
        w.writerow([layer, head, cell])
    return out.getvalue()


def rows_csv(header: list[str], rows: list[list], *, meta: dict | None = None) -> str:
    """A plain table with a metadata block; text cells formula-escaped."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    _meta_lines(out, meta)
    w.writerow(header)
    for row in rows:
        w.writerow([safe_cell(c) if isinstance(c, str) else c for c in row])
    return out.getvalue()


def matrix_json(matrix, query_labels, key_labels, query_positions, key_positions, *, meta: dict | None = None,
                significant: int = 6) -> str:
    """JSON of a [queries, keys] matrix: {"meta", "queries": [{"position", "token"}], "keys": [...],
    "values": [[...]] (rows = queries; `significant` digits; null where masked)}."""
    m = np.asarray(matrix, dtype=np.float64)
    if m.shape != (len(query_labels), len(key_labels)):
        raise ValueError(f"matrix {m.shape} does not match {len(query_labels)} x {len(key_labels)} labels")
    values = [[float(format(x, f".{significant}g")) if np.isfinite(x) else None for x in row] for row in m]
    return json_text({"queries": [{"position": int(p), "token": str(t)} for p, t in zip(query_positions, query_labels)],
                      "keys": [{"position": int(p), "token": str(t)} for p, t in zip(key_positions, key_labels)],
                      "values": values}, meta=meta)


def json_text(obj: dict, *, meta: dict | None = None) -> str:
    """JSON with a "meta" object first (what, model, data, method)."""
    return json.dumps({"meta": meta or {}, **obj}, ensure_ascii=False, indent=1, allow_nan=False,
                      default=_jsonable)


def _jsonable(x):
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(f"not JSON: {type(x).__name__}")


def export_stem(*parts) -> str:
    """A safe file stem from its parts: "attention_all-MiniLM-L6-v2_layer-3_head-1_The-cat-sat"."""
    raw = " ".join(str(p) for p in parts if p not in (None, ""))
    stem = re.sub(r"[^A-Za-z0-9.+-]+", "_", raw.replace("·", " ")).strip("_.")
    return stem[:120] or "export"


# ---- tables of the analyses (heads grid, importance, curves) --------------------------------------
HEAD_METRIC_COLUMNS = (("entropy", "entropy_bits"), ("entropy_norm", "entropy_normalised"),
                       ("max_weight", "max_weight"), ("sink", "sink_mass"), ("diagonal", "self_mass"),
                       ("previous", "previous_token_mass"), ("role", "role"))


def head_metrics_table(metrics: dict) -> tuple[list[str], list[list]]:
    """(header, rows): one row per head, columns layer, head and every per-head metric.
    metrics: {name: [layers, heads]} as models.metrics.head_metrics returns."""
    cols = [(k, label) for k, label in HEAD_METRIC_COLUMNS if k in metrics]
    L, H = np.asarray(metrics[cols[0][0]]).shape
    rows = []
    for layer in range(L):
        for head in range(H):
            row = [layer, head]
            for k, _ in cols:
                v = np.asarray(metrics[k])[layer, head]
                row.append(str(v) if isinstance(v, (str, np.str_)) else round(float(v), 6))
            rows.append(row)
    return ["layer", "head"] + [label for _, label in cols], rows


def _grid(value, what: str) -> np.ndarray:
    g = np.asarray(value, dtype=np.float64)
    if g.ndim != 2 or g.size == 0 or g.size > 1_000_000:
        raise ValueError(f"the {what} is not a layers x heads grid")
    return g


def importance_table(store: dict) -> tuple[list[str], list[list], dict]:
    """(header, rows, meta) of the importance store (dashboard/pruning_views.compute_importance):
    one row per head with its normalised importance."""
    if not isinstance(store, dict) or "scores" not in store:
        raise ValueError("No importance computed yet: press Compute importance first.")
    g = _grid(store["scores"], "importance")
    rows = [[layer, head, round(float(g[layer, head]), 6)] for layer, head in np.ndindex(*g.shape)]
    meta = {"what": "head importance (Michel, Levy & Neubig 2019): |dL/dxi_h| summed over the corpus, "
                    "normalised per layer", "model": store.get("model"), "corpus": store.get("corpus"),
            "examples": store.get("n_examples"), "loss": store.get("loss_name")}
    return ["layer", "head", "importance"], rows, meta


def curves_table(store: dict) -> tuple[list[str], list[list], dict]:
    """(header, rows, meta) of the curves store (models.importance.CurveResult.to_dict() + model,
    corpus): one row per order, metric and share: mean, std over seeds (0 for deterministic orders)."""
    if not isinstance(store, dict) or not isinstance(store.get("curves"), dict):
        raise ValueError("No pruning curves computed yet: press Compute pruning curves first.")
    shares, pruned = list(store.get("shares") or []), list(store.get("pruned") or [])
    std = store.get("std") or {}
    rows = []
    for order, by_metric in store["curves"].items():
        for metric, values in (by_metric or {}).items():
            sd = (std.get(order) or {}).get(metric) or [0.0] * len(values)
            for i, v in enumerate(values):
                rows.append([str(order), str(metric), shares[i] if i < len(shares) else "",
                             pruned[i] if i < len(pruned) else "", float(v), float(sd[i]) if i < len(sd) else ""])
    meta = {"what": "pruning curves: metric vs share of heads pruned, per pruning order",
            "model": store.get("model"), "corpus": store.get("corpus"), "examples": store.get("n_examples"),
            "random seeds": store.get("seeds"), "loss": store.get("loss_name"),
            "baseline (unpruned)": json.dumps(store.get("baseline") or {}),
            "std": "standard deviation over the random seeds (0 for deterministic orders)",
            "seconds": store.get("seconds")}
    return ["order", "metric", "share_pruned", "heads_pruned", "mean", "std"], rows, meta
