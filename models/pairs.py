"""Paraphrase pairs (or lone texts) for the importance, evaluation and curve code: the bundled
set, an uploaded file's pairs, batches of them. Pure Python (no torch).

    load_pairs(path=None) / parse_pairs(text)   -> [(a, b), ...]
"""
from __future__ import annotations

from pathlib import Path

DATA_DIR = Path(__file__).parent / "data"
PAIRS_FILE = DATA_DIR / "paraphrase_pairs.tsv"
MAX_PAIRS = 2000  # uploaded sets larger than this are refused (the page runs ~100 forward passes)


# ---- paraphrase pairs ---------------------------------------------------------------------------
def parse_pairs(text: str, *, min_pairs: int = 2, max_pairs: int = MAX_PAIRS) -> list[tuple[str, str]]:
    """Sentence pairs from text: one pair per line, `a<TAB>b` or `a ||| b`.

    Blank lines and lines starting with '#' are skipped. Raises ValueError naming the first bad
    line (1-based) when a line has no separator or an empty side, or when there are fewer than
    `min_pairs` (the contrastive loss needs at least 2) or more than `max_pairs` pairs.
    """
    if not isinstance(text, str):
        raise ValueError("pairs must be text: one 'sentence A<TAB>sentence B' per line")
    pairs = []
    for n, line in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if "\t" in line:
            parts = line.split("\t")
        elif "|||" in line:
            parts = line.split("|||")
        else:
            raise ValueError(f"line {n}: no separator; write 'sentence A<TAB>sentence B' or "
                             f"'sentence A ||| sentence B' (got {stripped[:60]!r})")
        parts = [p.strip() for p in parts]
        if len(parts) != 2:
            raise ValueError(f"line {n}: expected exactly two sentences, found {len(parts)} parts")
        if not parts[0] or not parts[1]:
            raise ValueError(f"line {n}: one side of the pair is empty")
        pairs.append((parts[0], parts[1]))
        if len(pairs) > max_pairs:
            raise ValueError(f"line {n}: more than {max_pairs} pairs; use a smaller set")
    if len(pairs) < min_pairs:
        raise ValueError(f"need at least {min_pairs} sentence pairs, found {len(pairs)}")
    return pairs


def load_pairs(path: str | Path | None = None) -> list[tuple[str, str]]:
    """The bundled 64 paraphrase pairs (models/data/paraphrase_pairs.tsv), or a file of pairs."""
    return parse_pairs(Path(path or PAIRS_FILE).read_text(encoding="utf-8"))


def _examples(pairs_or_texts) -> tuple[list[tuple[str, str]] | None, list[str]]:
    """(pairs or None, flat texts). Accepts [(a, b), ...] or [text, ...]."""
    items = list(pairs_or_texts)
    if not items:
        raise ValueError("no examples given")
    if all(isinstance(x, str) for x in items):
        return None, items
    pairs = []
    for x in items:
        if isinstance(x, (tuple, list)) and len(x) == 2 and all(isinstance(s, str) for s in x):
            pairs.append((x[0], x[1]))
        else:
            raise ValueError(f"examples must be all texts or all (a, b) pairs; got {x!r:.80}")
    return pairs, [s for p in pairs for s in p]


def _batches(items: list, batch_size: int) -> list[list]:
    """Chunks of `batch_size`; a trailing chunk of 1 joins the previous one (an in-batch
    contrastive loss over one pair is 0 with zero gradient)."""
    batch_size = max(2, int(batch_size))
    chunks = [items[i:i + batch_size] for i in range(0, len(items), batch_size)]
    if len(chunks) > 1 and len(chunks[-1]) < 2:
        chunks[-2].extend(chunks.pop())
    return chunks
