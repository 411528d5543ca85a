"""Held-out pruning study on the embedded model (issue 13): does an importance order beat random?

    python bench/pruning_science.py                    # one-shot + iterative methods, 8 seeds (~10 min, 2 idle cores)
    python bench/pruning_science.py --greedy           # also the greedy leave-one-out order (slow: ~1,950 evaluations)
    python bench/pruning_science.py --seeds 10 --estimate 0.5 --split-seed 0

Importance is estimated on one part of the bundled 184 paraphrase pairs
(models/pruning_science.load_study_pairs), curves are evaluated on the other part. Metric:
Spearman ρ between the pruned model's pair cosines and the unpruned model's, on the evaluation
pairs. Random: seeded orders, mean ± std. z = (method − random mean) / random std. Bands:
2.5–97.5 % of 500 bootstrap resamples of the evaluation pairs. Writes
bench/out/pruning_science.json and prints the markdown table for bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from models import loader  # noqa: E402
from models import pruning_science as ps  # noqa: E402

METHODS = ["loss-gradient", "output-sensitivity", "loss-gradient-iterative", "output-sensitivity-iterative"]


def table(r: dict, shares=(0.3, 0.5)) -> str:
    idx = [r["shares"].index(s) for s in shares]
    head = "| order (estimated on %d pairs) | " % r["n_estimate"] + " | ".join(
        f"{s:.0%} pruned: ρ [95 % CI] · z · p" for s in shares) + " |"
    lines = [head, "|---|" + "---|" * len(shares)]
    for m in r["methods"]:
        cells = []
        for i in idx:
            z = r["z"][m][i]
            mark = "**" if z >= 2 else ""
            cells.append(f"{mark}{r['curves'][m][i]:.3f} [{r['band_lo'][m][i]:.3f}, {r['band_hi'][m][i]:.3f}] · "
                         f"z {z:+.2f} · p {r['p_worse'][m][i]:.3f}{mark}")
        lines.append(f"| {m}{' (default)' if m == r['default'] else ''} | " + " | ".join(cells) + " |")
    cells = [f"{r['random_mean'][i]:.3f} ± {r['random_std'][i]:.3f} (seeds: "
             f"{min(row[i] for row in r['random_runs']):.3f}–{max(row[i] for row in r['random_runs']):.3f})"
             for i in idx]
    lines.append(f"| random ({r['seeds']} seeds) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--estimate", type=float, default=0.5)
    ap.add_argument("--split-seed", type=int, default=0)
    ap.add_argument("--greedy", action="store_true")
    args = ap.parse_args()
    loaded = loader.get_loaded("all-MiniLM-L6-v2")
    pairs = ps.load_study_pairs()
    methods = list(METHODS)
    orders = {}
    t0 = time.perf_counter()
    if args.greedy:
        est = ps.greedy_subset(pairs, args.estimate, args.split_seed)
        # the page's time estimate (dashboard/research_pruning.greedy_cost): one evaluation measured
        # once, times the number of evaluations; then the real wall time of the same job
        n_eval = ps.greedy_evaluations(72, 36)
        each = ps.seconds_per_evaluation(loaded, est, repeats=1)
        tg = time.perf_counter()
        order = ps.greedy_order(loaded, est, 36, progress=lambda d, t: print(f"\rgreedy {d}/{t}", end="",
                                                                             flush=True))
        greedy_actual = time.perf_counter() - tg
        print()
        greedy_timing = {"evaluations": n_eval, "seconds_each_measured": each, "estimate_seconds": n_eval * each,
                         "actual_seconds": greedy_actual, "n_pairs": len(est)}
        print(f"greedy: {n_eval} evaluations on {len(est)} pairs; estimate {n_eval * each:.0f} s "
              f"({each:.3f} s each, one measured), actual {greedy_actual:.0f} s")
        orders["greedy"] = order.tolist() + [j for j in range(72) if j not in set(order.tolist())]
        methods.append("greedy")
    res = ps.held_out_study(loaded, pairs, methods=methods, seeds=args.seeds, estimate_share=args.estimate,
                            split_seed=args.split_seed, orders=orders,
                            progress=lambda d, t: print(f"\rstudy {d}/{t}", end="", flush=True))
    print()
    r = res.to_dict()
    r["wall_seconds"] = time.perf_counter() - t0
    if args.greedy:
        r["greedy_timing"] = greedy_timing
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    name = f"pruning_science_split{args.split_seed}{'_greedy' if args.greedy else ''}.json"
    (out / name).write_text(json.dumps(r))
    print(f"estimate {r['n_estimate']} pairs, evaluate {r['n_evaluate']} pairs, {r['seeds']} random seeds, "
          f"{r['bootstrap']} bootstrap resamples; {r['wall_seconds']:.0f} s; seconds per part: "
          f"{ {k: round(v, 1) for k, v in r['seconds'].items()} }")
    print(table(r))


if __name__ == "__main__":
    main()
