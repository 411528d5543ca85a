"""Corpus head profile of the embedded model (issue 13), for bench/RESULTS.md.

    python bench/head_profile.py        # the bundled 264 texts; ~1 min on 2 idle cores

Prints, per layer, the mean over heads of each profile measure (attention to [CLS], [SEP],
punctuation, self, previous, next; entropy), the heads with the largest [SEP] / previous /
next mass, and the role counts (sink token left out). Writes bench/out/head_profile.json.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402

from models import loader, profile  # noqa: E402


def main() -> None:
    loaded = loader.get_loaded("all-MiniLM-L6-v2")
    texts = profile.load_corpus()
    t0 = time.perf_counter()
    p = profile.corpus_profile(loaded, texts)
    secs = time.perf_counter() - t0
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "head_profile.json").write_text(json.dumps({"mean": p.mean, "roles": p.roles, "sink_free": p.sink_free,
                                                        "n": len(p.texts), "seconds": secs}))
    print(f"{len(p.texts)} texts, mean {np.mean(p.tokens):.1f} tokens, {secs:.0f} s\n")
    cols = profile.MEASURES
    print("| layer | " + " | ".join(profile.MEASURE_LABELS[c] for c in cols) + " | max [SEP] head | max prev head |")
    print("|---|" + "---|" * (len(cols) + 2))
    for layer in range(p.layers):
        vals = [np.mean(p.mean[c][layer]) for c in cols]
        sep = np.asarray(p.mean["sep"][layer])
        prev = np.asarray(p.mean["previous"][layer])
        print(f"| {layer} | " + " | ".join(f"{v:.3f}" if c != "entropy" else f"{v:.2f}" for c, v in zip(cols, vals))
              + f" | H{int(sep.argmax())} {sep.max():.3f} | H{int(prev.argmax())} {prev.max():.3f} |")
    roles = np.asarray(p.roles)
    print("\nroles (sink left out): " + ", ".join(f"{r} {int((roles == r).sum())}" for r in profile.ROLES))
    for role in ("previous-token", "next-token", "self", "separator", "punctuation"):
        ls, hs = np.nonzero(roles == role)
        print(f"  {role}: " + (", ".join(f"L{a}H{b}" for a, b in zip(ls, hs)) or "none"))
    for m in ("first", "sep", "punct", "previous", "next", "self"):
        arr = np.asarray(p.mean[m])
        l, h = np.unravel_index(arr.argmax(), arr.shape)
        print(f"max {m}: L{l}H{h} {arr.max():.3f}; heads with > 0.5: {int((arr > 0.5).sum())}")


if __name__ == "__main__":
    main()
