"""The heatmap card's measure selector: what the heatmap, inspector, text view and exports show
for a measure other than raw weights (pure; no models/ import).

`ml` below is a models.measure_views.MeasureLayer (the callbacks get it through
callbacks/views.measure_of): plain attributes `requested`, `measure`, `label`, `short`,
`formula`, `caveat`, `target`, `error`, `signed`, `per_head`, `heads` float32 [H,T,T] | None,
`mean` float32 [T,T] | None, and `head_matrix(head) -> float32 [T,T]`. `ml` None or
`ml.is_raw` means the run's own weights.

    rows(ml, head, rows, signed=False) -> float32 [rows, T]  (|value| unless signed: the heatmap
                                                              draws magnitudes)
    title(ml, base, layer) / note(ml, temperature) / info(ml) / stats(matrix, labels, positions)
"""
from __future__ import annotations

import numpy as np

DEFAULT = "raw"
# the selector's choices (models.measures.MEASURE_LABELS names the same; a unit test checks)
LABELS = {"raw": "raw weights", "rollout": "attention rollout", "value-norm": "value-norm ‖α f(x)‖",
          "grad-attention": "gradient × attention"}
OPTIONS = [{"label": v, "value": k} for k, v in LABELS.items()]


def parse(value) -> str:
    return value if isinstance(value, str) and value in LABELS else DEFAULT


def active(ml) -> bool:
    """A measure other than raw weights is shown."""
    return ml is not None and not ml.is_raw


def rows(ml, head, rows=slice(None), signed: bool = False) -> np.ndarray:
    """float32 [rows, T] of one head (int) or the mean ("mean") under the measure; |value| unless
    `signed` (gradient x attention keeps its sign in the inspector and the exports)."""
    m = np.asarray(ml.head_matrix(head), dtype=np.float32)[rows]
    return m if signed or not ml.signed else np.abs(m)


def title(ml, base: str, layer: int) -> str:
    """The heatmap title under a measure: "value-norm ‖α f(x)‖ · Layer 3 · head 1 · self"."""
    if not active(ml):
        return base if ml is None or not ml.error else f"raw weights · {base}"
    if not ml.per_head:  # rollout: heads averaged, through layers 0..layer
        parts = base.split(" · ")
        rest = " · ".join(parts[2:]) if len(parts) > 2 else ""
        return " · ".join(x for x in (ml.label, f"layers 0–{layer}", "heads averaged", rest) if x)
    return f"{'|' + ml.label + '|' if ml.signed else ml.label} · {base}"


def value_name(ml) -> str:
    """Colour bar / CSV column name of the values."""
    if not active(ml):
        return "weight"
    return f"|{ml.short}|" if ml.signed else ml.short


def note(ml, temperature: float = 1.0) -> str:
    """The line under the heatmap: the fallback's reason, or the measure's formula and target."""
    if ml is None:
        return ""
    if ml.error:
        return f"{ml.error} Showing raw weights."
    if not active(ml):
        return ""
    out = [f"{ml.label}: {ml.formula}"]
    if ml.target:
        out.append(f"Target: {ml.target}.")
    if ml.signed:
        out.append("Colours show |value|; the inspector and the exports keep the sign.")
    if not ml.per_head:
        out.append("The head choice does not apply (heads are averaged).")
    if temperature != 1.0:
        out.append("The temperature applies to raw weights only; measures use the model's own weights.")
    out.append("Stats row: of these values (entropy of each row normalised to sum 1).")
    return " ".join(out)


def info(ml) -> dict:
    """What the explain panel and the card's note show (JSON for the heatmap payload)."""
    if ml is None:
        return {"requested": DEFAULT, "measure": DEFAULT, "label": LABELS[DEFAULT], "formula": "", "caveat": "",
                "target": "", "error": ""}
    return {"requested": ml.requested, "measure": ml.measure, "label": ml.label, "formula": ml.formula,
            "caveat": ml.caveat, "target": ml.target, "error": ml.error}


def explain_lines(ml) -> list[str]:
    """[formula, caveat(, target)(, why not)] of the shown measure (the explain panel)."""
    i = info(ml)
    if not i["formula"]:
        return []
    lines = [f"{i['label']}: {i['formula']}", f"Caveat: {i['caveat']}"]
    if i["target"]:
        lines.append(f"Target: {i['target']}.")
    if i["error"]:
        lines.append(f"{LABELS.get(i['requested'], i['requested'])} is not shown: {i['error']}")
    return lines


def stats(matrix: np.ndarray, key_labels, key_positions) -> dict:
    """The stats row for a measure's shown matrix float [rows, cols] (>= 0): entropy of each row
    normalised to sum 1 (bits, mean over rows), max value, the key with the largest column sum,
    mean value on the first shown key."""
    m = np.nan_to_num(np.asarray(matrix, dtype=np.float64))
    n_q, n_k = m.shape
    s = m.sum(1, keepdims=True)
    p = np.divide(m, s, out=np.zeros_like(m), where=s > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = -np.where(p > 0, p * np.log2(p), 0.0).sum(1)
    most = int(np.argmax(m.sum(0))) if n_k else 0
    return {"tokens": str(n_q) if n_q == n_k else f"{n_q} → {n_k}", "entropy": f"{ent.mean() if n_q else 0:.2f}",
            "max_weight": f"{m.max() if m.size else 0:.3g}",
            "most_attended": f"{key_labels[most]} (#{int(key_positions[most])})" if n_k else "–",
            "sink": f"{m[:, 0].mean() if m.size else 0:.3g}"}


def hovertemplate(ml, detail: str) -> str:
    """The heatmap's hover text under a measure (value to 3 significant digits)."""
    return (f"{value_name(ml)} · from %{{y:d}} (%{{y}}) → to %{{x:d}} (%{{x}}): %{{z:.3g}} ({detail})"
            "<extra></extra>")


def top_keys(ml, head, query: int, key_labels, raw_row, k: int = 5) -> list[dict]:
    """The k keys with the largest |value| for `query`: [{"key", "label", "value" (signed),
    "weight" (the raw attention weight of that key)}], largest first."""
    row = rows(ml, head, [query], signed=True)[0]
    order = np.argsort(-np.abs(np.nan_to_num(row)), kind="stable")[:k]
    return [{"key": int(j), "label": key_labels[j], "value": float(row[j]), "weight": float(raw_row[j])}
            for j in order]
