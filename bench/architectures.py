"""Cost of verification on load and of the family matrix (issue 10).

    HF_HUB_OFFLINE=1 .venv/bin/python bench/architectures.py [--reps 5]

1. Loading all-MiniLM-L6-v2 from its folder, phase by phase, median of `reps` loads: transformers'
   from_pretrained, then the path selection (one probe forward with capture) and the verification
   (one eager forward with output_attentions on the probe text). Ratio: (path + verify) / load.
2. The family matrix (models.matrix.run_all: build, save, load with verification, eager reference,
   mask, physical pruning), one torch thread: wall and CPU seconds for all families.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch


def load_phases(reps: int) -> dict:
    from transformers import AutoModel, AutoTokenizer

    from models import loader, registry

    folder = registry.resolve_location(registry.get_spec(registry.DEFAULT_MODEL))
    tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    times = {"from_pretrained": [], "select_path": [], "verify": []}
    for _ in range(reps):
        t0 = time.perf_counter()
        model = AutoModel.from_pretrained(folder, local_files_only=True, attn_implementation="dashboard",
                                          dtype=torch.float32)
        t1 = time.perf_counter()
        loaded = loader.wrap("bench-minilm", model, tok, fingerprint="bench", check=False)  # select_path
        t2 = time.perf_counter()
        loader.verify_loaded(loaded)
        t3 = time.perf_counter()
        times["from_pretrained"].append(t1 - t0)
        times["select_path"].append(t2 - t1)
        times["verify"].append(t3 - t2)
    med = {k: statistics.median(v) * 1000 for k, v in times.items()}
    med["overhead_ratio"] = (med["select_path"] + med["verify"]) / med["from_pretrained"]
    return med


def matrix_time() -> dict:
    from models import families, matrix

    torch.set_num_threads(1)
    w0, c0 = time.perf_counter(), time.process_time()
    results = matrix.run_all()
    return {"families": len(families.FAMILIES), "wall_s": time.perf_counter() - w0,
            "cpu_s": time.process_time() - c0,
            "exact_view_and_mask": sum(r.exact_view and r.exact_mask for r in results)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="torch threads for the load (0: as set)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    lp = load_phases(args.reps)
    print(f"MiniLM load (median of {args.reps}, {threads} torch threads): from_pretrained "
          f"{lp['from_pretrained']:.0f} ms, path selection {lp['select_path']:.0f} ms, verification "
          f"{lp['verify']:.0f} ms; (path + verify) / from_pretrained = {lp['overhead_ratio']:.2f}x")
    mt = matrix_time()
    print(f"matrix, 1 torch thread: {mt['families']} families in {mt['wall_s']:.1f} s wall, "
          f"{mt['cpu_s']:.1f} s CPU; {mt['exact_view_and_mask']} exact for viewing and masking")


if __name__ == "__main__":
    main()
