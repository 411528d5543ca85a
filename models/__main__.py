"""Command line: `python -m models precompute --model NAME FILE` warms the run cache.

Every non-empty line of FILE is one text (a line `A<TAB>B` is a sentence pair). A progress bar
shows on stderr; the summary says how many runs were new and how many were already cached.
"""
from __future__ import annotations

import argparse
import sys
import time

from models import registry


def precompute(model: str, lines: list[str], max_tokens: int | None = None, progress: bool = True) -> dict:
    from tqdm import tqdm

    from models import service
    from models.attention import InputError

    counts = {"new": 0, "cached": 0, "skipped": 0}
    for line in tqdm(lines, desc=f"precompute {model}", unit="text", disable=not progress, file=sys.stderr):
        text, _, pair = line.partition("\t")
        req = service.RunRequest.create(model, text, pair or None, max_tokens)
        try:
            _, source = service.get_run_status(req)
        except InputError:
            counts["skipped"] += 1
            continue
        counts["new" if source == "model" else "cached"] += 1
    service.flush_writes()  # new runs are written behind: all of them on disk before we report
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("precompute", help="warm the run cache for every line of a text file")
    p.add_argument("--model", default=registry.DEFAULT_MODEL, help="a registry model name")
    p.add_argument("--max-tokens", type=int, default=None)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("file", type=argparse.FileType("r", encoding="utf-8"))
    sub.add_parser("models", help="list the configured model names")
    args = parser.parse_args(argv)
    if args.command == "models":
        print("\n".join(registry.model_names()))
        return 0
    lines = [ln.rstrip("\n") for ln in args.file if ln.strip()]
    try:
        registry.get_spec(args.model)
    except registry.ModelNotFound as exc:
        print(exc, file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    counts = precompute(args.model, lines, args.max_tokens, progress=not args.no_progress)
    print(f"{len(lines)} texts: {counts['new']} new, {counts['cached']} already cached, "
          f"{counts['skipped']} skipped (empty) in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
