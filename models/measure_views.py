"""One attention measure of one layer of a page run: what the heatmap, the inspector, the text view
and the exports show when the page's measure selector is not "raw weights" (no Dash).

    layer_measure(request, run, layer, measure) -> MeasureLayer

`MeasureLayer.heads` float32 [H, T, T] (per head; None for rollout, which averages heads by
definition, and for raw weights, which the page reads from the run itself) and `.mean` float32
[T, T] (mean of heads / the layer's value; None for raw). T = the run's tokens of the main
self-attention block. The values are models.measures.compute's, unchanged (float16 where that
stores float16), so the page shows exactly what `measures.compute(...).matrix(...)` gives.

Cached per (run, measure, layer): measures.compute keeps the whole text's measures in this
process (a few texts), and each (run, measure, layer) answer is written to the shared run cache,
so another worker (or a later visit) reads the layer back instead of running the model.

A measure that cannot be computed for this run (a family without value projections, a missing
second sentence for gradient x attention, an encoder-decoder, a pruned run, a text longer than
MAX_MEASURE_TOKENS) is not an exception: the answer falls back to raw weights (`measure` "raw")
with `error` saying why, so the page shows the weights and the reason, never a blank.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from models import cache, loader, measures
from models.run import AttentionRun

log = logging.getLogger(__name__)
MAX_MEASURE_TOKENS = 512  # measures hold [L,H,T,T] float16 (x3) for the whole text: ~120 MB at 512
SCHEMA = 1
SHORT = {"raw": "weight", "rollout": "rollout", "value-norm": "value-norm", "grad-attention": "grad × attn"}


@dataclass(frozen=True)
class MeasureLayer:
    """What the page shows for one (run, measure, layer).

    requested: the measure chosen; measure: the one shown ("raw" when `error` says why not);
    label / short: its names (page title / colour bar); formula, caveat, target: the explain text
    (target: gradient x attention's y, "" otherwise); heads float32 [H,T,T] | None; mean float32
    [T,T] | None; signed: values carry a sign (gradient x attention: the heatmap draws |value|);
    per_head: False when the head choice does not apply (rollout); source: "model" | "memory" |
    "disk" | "" (raw); seconds: time to get it."""
    requested: str
    measure: str
    label: str
    short: str
    formula: str
    caveat: str
    target: str = ""
    heads: np.ndarray | None = field(default=None, repr=False)
    mean: np.ndarray | None = field(default=None, repr=False)
    signed: bool = False
    per_head: bool = True
    error: str = ""
    source: str = ""
    seconds: float = 0.0

    @property
    def is_raw(self) -> bool:
        return self.measure == "raw"

    def head_matrix(self, head) -> np.ndarray:
        """float32 [T,T] of one head (int) or of the mean / layer (None or "mean")."""
        if self.is_raw:
            raise ValueError("raw weights come from the run")
        if head is None or head == "mean" or self.heads is None:
            return self.mean
        return self.heads[int(head)].astype(np.float32)


def describe(measure: str, target: str = "", **kw) -> MeasureLayer:
    """A MeasureLayer with the names and explain text of `measure` (no arrays)."""
    formula, caveat = measures.MEASURE_TEXT[measure]
    return MeasureLayer(requested=kw.pop("requested", measure), measure=measure, label=measures.MEASURE_LABELS[measure],
                        short=SHORT[measure], formula=formula, caveat=caveat,
                        target=target if measure == "grad-attention" else "", **kw)


def parse_measure(value) -> str:
    return value if isinstance(value, str) and value in measures.MEASURES else "raw"


def _raw(requested: str, error: str = "") -> MeasureLayer:
    return describe("raw", requested=requested, error=error)


def _key(request_key: str, measure: str, layer: int) -> str:
    return "measure-layer:" + cache.stable_hash({"run": request_key, "measure": measure, "layer": int(layer),
                                                 "schema": SCHEMA})


def _unavailable(req, run: AttentionRun, loaded, measure: str) -> str:
    """Why `measure` cannot be shown for this run ("" when it can)."""
    label = measures.MEASURE_LABELS[measure]
    if loaded.architecture == "encoder-decoder":
        return f"{label} is available for encoder and decoder-only models; {loaded.name} is an encoder-decoder."
    if req.head_mask is not None or run.head_mask is not None:
        return f"{label} is computed on the unpruned model; this run has pruned heads."
    n = run.main.n_queries
    if n > MAX_MEASURE_TOKENS:
        return (f"{label} is computed for texts of up to {MAX_MEASURE_TOKENS} tokens (it holds every layer and "
                f"head of the text); this one has {n}.")
    return ""


def layer_measure(req, run: AttentionRun, layer: int, measure: str, *, run_cache: cache.RunCache | None = None
                  ) -> MeasureLayer:
    """`measure` at `layer` of the page's run (req: models.service.RunRequest of `run`)."""
    from models import service

    measure = parse_measure(measure)
    if measure == "raw":
        return _raw("raw")
    loaded = loader.get_loaded(req.model)
    why = _unavailable(req, run, loaded, measure)
    if why:
        return _raw(measure, why)
    layer = max(0, min(int(layer), run.main.n_layers - 1))
    t0 = time.perf_counter()
    store = run_cache or cache.default_cache()
    key = _key(service.request_key(req, loaded), measure, layer)
    hit = store.get(key)
    if hit is not None:
        meta, arrays = hit
        if meta.get("error"):
            return _raw(measure, meta["error"])
        return describe(measure, meta.get("target", ""), heads=arrays.get("heads"), mean=arrays["mean"],
                        signed=measure == "grad-attention", per_head="heads" in arrays, source="disk",
                        seconds=time.perf_counter() - t0)
    try:
        m = measures.compute(loaded, req.text, req.text_pair, max_tokens=req.max_tokens)
    except NotImplementedError as exc:
        return _raw(measure, str(exc))
    except Exception as exc:  # noqa: BLE001 - a family the measures do not handle: say so, show raw weights
        log.exception("measures of %s failed", loaded.name)
        return _raw(measure, f"{measures.MEASURE_LABELS[measure]} could not be computed for {loaded.name} "
                             f"({type(exc).__name__}; details in the server log).")
    if len(m.tokens) != run.main.n_queries:  # the measures' forward pass must be the run's
        return _raw(measure, f"{measures.MEASURE_LABELS[measure]}: the measures' tokens ({len(m.tokens)}) differ "
                             f"from the run's ({run.main.n_queries}).")
    try:
        mean = m.matrix(measure, layer, None)  # float32 [T,T]
        heads = None if measure == "rollout" else np.stack(
            [m._matrix(measure, layer, h) for h in range(m.raw.shape[1])])  # [H,T,T] as stored
    except ValueError as exc:  # value-norm for a non-BERT family, gradient target missing
        store.put(key, {"error": str(exc)}, {})
        return _raw(measure, str(exc))
    arrays = {"mean": np.asarray(mean, np.float32)}
    if heads is not None:
        arrays["heads"] = heads
    store.put(key, {"target": m.target}, arrays)
    return describe(measure, m.target, heads=None if heads is None else heads, mean=arrays["mean"],
                    signed=measure == "grad-attention", per_head=heads is not None, source="model",
                    seconds=time.perf_counter() - t0)
