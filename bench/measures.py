"""Cost of the heatmap's attention measures (issue 13), measured side by side in one process:

    python bench/measures.py [--tokens 128 512]

For each text length: the cold run (models.attention.extract, the page's first answer), the
measures of the text (models.measures.compute: one forward with attentions and hidden states +
one backward pass, every layer), one (run, measure, layer) read back from the shared run cache by
a process that never computed it (models.measure_views, in-process measures cleared), and the
bytes it stores. Ratios are to the cold run of the same text in the same run.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from models import attention, cache, loader, measure_views, measures, service  # noqa: E402

TEXT = ("The committee postponed the vote because several members had not read the report, and the chair "
        "said a decision would follow next week. ")
PAIR = "The vote was delayed since some members had not read the report."


def best(fn, n=3):
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return min(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, nargs="+", default=[128, 512])
    args = ap.parse_args()
    loaded = loader.get_loaded("all-MiniLM-L6-v2")
    store = cache.RunCache(tempfile.mkdtemp(prefix="bench-measures-"))
    print("| tokens | cold run (extract) | measures of the text (fwd + bwd) | ratio | one layer from the cache | "
          "vs cold run | bytes stored per (measure, layer) |")
    print("|---|---|---|---|---|---|---|")
    for n in args.tokens:
        text = TEXT * 40
        req = service.RunRequest.create(loaded.name, text, PAIR, max_tokens=n)
        run = service.get_run(req, run_cache=store)
        t_run = best(lambda: attention.extract(loaded, text, PAIR, max_tokens=n))

        def cold():
            with measures._lock:
                measures._cache.clear()
            measures.compute(loaded, text, PAIR, max_tokens=n)
        t_meas = best(cold, 2)
        measure_views.layer_measure(req, run, 3, "value-norm", run_cache=store)  # computed and stored

        def hit():
            with measures._lock:
                measures._cache.clear()
            ml = measure_views.layer_measure(req, run, 3, "value-norm", run_cache=store)
            assert ml.source == "disk"
        t_hit = best(hit)
        key = measure_views._key(service.request_key(req, loaded), "value-norm", 3)
        meta, arrays = store.get(key)
        size = sum(a.nbytes for a in arrays.values())
        print(f"| {run.main.n_queries} | {t_run * 1e3:.0f} ms | {t_meas * 1e3:.0f} ms | {t_meas / t_run:.1f}× | "
              f"{t_hit * 1e3:.1f} ms | {t_hit / t_run:.1%} | {size / 1e6:.2f} MB |")


if __name__ == "__main__":
    main()
