"""Corpus head profile: what each head does on average over many texts (no Dash).

    load_corpus(path=None)                   -> [text, ...] the bundled corpus (>= 200 sentences)
    text_profile(weights, special, punct)    -> {measure: float32 [L,H]} for one text (pure numpy)
    corpus_profile(loaded, texts, ...)       -> Profile: per-text [n,L,H] and mean [L,H] per measure, roles
    cached_profile(...)                      -> the same through models.cache JSON

Measures per head, each the mean over the text's query rows (then the mean over texts):

    first     weight on key 0 (the first token: [CLS] for BERT, the first word for GPT-2)
    sep       weight on the other special tokens ([SEP], </s>, EOS)
    punct     weight on punctuation tokens (non-special tokens made only of punctuation)
    self      weight on key == query
    previous  weight on key == query - 1 (rows 1..T-1)
    next      weight on key == query + 1 (rows 0..T-2; causal heads: 0 by construction)
    entropy   row entropy in bits

Roles are computed with the sink token left out: each row's weight on key 0 is removed and the
rest renormalised (rows that put everything on key 0 are skipped), then the first rule that holds
wins: previous >= 0.5 "previous-token", next >= 0.5 "next-token", self >= 0.5 "self",
sep >= 0.5 "separator", punct >= 0.5 "punctuation", normalised entropy >= 0.8 "broad", else
"mixed". (Clark et al. 2019 observe that BERT-base heads park attention on [SEP]/[CLS] as a
no-op; leaving the sink out shows what a head does when it does attend.)
"""
from __future__ import annotations

import string
import time
import unicodedata
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from models.metrics import row_entropy

DATA_DIR = Path(__file__).parent / "data"
CORPUS_FILE = DATA_DIR / "profile_corpus.txt"
MEASURES = ("first", "sep", "punct", "self", "previous", "next", "entropy")
MEASURE_LABELS = {"first": "first token / [CLS]", "sep": "[SEP] / EOS", "punct": "punctuation", "self": "itself",
                  "previous": "previous token", "next": "next token", "entropy": "entropy (bits)"}
ROLE_RULES = (("previous-token", "previous", 0.5), ("next-token", "next", 0.5), ("self", "self", 0.5),
              ("separator", "sep", 0.5), ("punctuation", "punct", 0.5), ("broad", "entropy_norm", 0.8))
ROLES = tuple(r for r, _, _ in ROLE_RULES) + ("mixed",)
MAX_TEXTS = 2000
MAX_TOKENS = 128
SCHEMA = 1


def load_corpus(path: str | Path | None = None) -> list[str]:
    """A corpus file (one sentence a line), or the bundled corpus: models/data/profile_corpus.txt
    (questions, quotes, lists, numbers, instructions) plus the first sentence of every bundled
    paraphrase pair (264 texts, all written for this project)."""
    if path is not None:
        return parse_corpus(Path(path).read_text(encoding="utf-8"))
    from models import pruning_science

    own = parse_corpus(CORPUS_FILE.read_text(encoding="utf-8"))
    return own + [a for a, _ in pruning_science.load_study_pairs()]


def parse_corpus(text: str, *, min_texts: int = 1, max_texts: int = MAX_TEXTS) -> list[str]:
    """Texts from an upload: one per line; a tab-separated pair counts as its two sentences."""
    if not isinstance(text, str):
        raise ValueError("the corpus must be text, one sentence a line")
    out = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        out.extend(p.strip() for p in line.split("\t") if p.strip())
        if len(out) > max_texts:
            raise ValueError(f"more than {max_texts} texts; use a smaller corpus")
    if len(out) < min_texts:
        raise ValueError(f"need at least {min_texts} texts, found {len(out)}")
    return out


def is_punct(piece: str) -> bool:
    """A token made only of punctuation (after removing subword markers: ##, Ġ, ▁)."""
    p = piece.replace("##", "").replace("Ġ", "").replace("▁", "").strip()
    return bool(p) and all(c in string.punctuation or unicodedata.category(c).startswith("P") for c in p)


def text_profile(weights, special, punct) -> dict[str, np.ndarray]:
    """Per-head measures for one text. weights [L,H,T,T] (rows sum to 1); special, punct: bool [T].
    Returns {measure: float32 [L,H]} for MEASURES plus the sink-free "r_*" values used for roles
    (r_previous, r_next, r_self, r_sep, r_punct, r_entropy_norm)."""
    w = np.asarray(weights, dtype=np.float32)
    T = w.shape[-1]
    special = np.asarray(special, dtype=bool)
    punct = np.asarray(punct, dtype=bool) & ~special
    sep_keys = special.copy()
    sep_keys[0] = False

    def diag(m, k):
        d = np.diagonal(m, offset=k, axis1=-2, axis2=-1)
        return d.mean(-1) if d.shape[-1] else np.zeros(m.shape[:-2], np.float32)

    out = {
        "first": w[..., 0].mean(-1),
        "sep": w[..., sep_keys].sum(-1).mean(-1),
        "punct": w[..., punct].sum(-1).mean(-1),
        "self": diag(w, 0),
        "previous": diag(w, -1),
        "next": diag(w, 1),
        "entropy": row_entropy(w).mean(-1),
    }
    # sink left out: drop key 0, renormalise, skip rows with (almost) nothing left
    rest = w[..., 1:]
    mass = rest.sum(-1, keepdims=True)                       # [L,H,T,1]
    valid = mass[..., 0] > 1e-3                              # [L,H,T]
    r = np.divide(rest, mass, out=np.zeros_like(rest), where=mass > 1e-3)  # [L,H,T,T-1], key j -> j+1
    n_valid = np.maximum(valid.sum(-1), 1)

    def mean_rows(values):                                   # values [L,H,T] -> [L,H]
        return (values * valid).sum(-1) / n_valid

    q = np.arange(T)
    self_v = np.zeros(w.shape[:-1], np.float32)
    prev_v = np.zeros_like(self_v)
    next_v = np.zeros_like(self_v)
    self_v[..., 1:] = r[..., q[1:], q[1:] - 1]
    prev_v[..., 2:] = r[..., q[2:], q[2:] - 2]
    next_v[..., :T - 1] = r[..., q[:T - 1], q[:T - 1]]       # key q+1 is column q of r
    h = row_entropy(r)
    hmax = np.log2(max(T - 1, 2))
    out.update({
        "r_self": mean_rows(self_v), "r_previous": mean_rows(prev_v), "r_next": mean_rows(next_v),
        "r_sep": mean_rows(r[..., sep_keys[1:]].sum(-1)), "r_punct": mean_rows(r[..., punct[1:]].sum(-1)),
        "r_entropy_norm": mean_rows(h / hmax),
    })
    return {k: np.asarray(v, dtype=np.float32) for k, v in out.items()}


def roles(sink_free: dict) -> np.ndarray:
    """str [L,H] from the corpus means of the r_* values (rules in the module docstring)."""
    shape = np.shape(sink_free["r_self"])
    out = np.full(shape, "mixed", dtype=f"<U{max(map(len, ROLES))}")
    for role, metric, threshold in reversed(ROLE_RULES):
        out[np.asarray(sink_free[f"r_{metric}"]) >= threshold] = role
    return out


@dataclass
class Profile:
    """per_text {measure: [n][L][H]}; mean {measure: [L][H]}; sink_free {r_*: [L][H]};
    roles [L][H]; texts [n]; tokens [n] token counts."""
    texts: list
    tokens: list
    per_text: dict
    mean: dict
    sink_free: dict
    roles: list
    model: str
    layers: int
    heads: int
    seconds: float
    corpus: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Profile":
        return cls(**d)

    def extreme_texts(self, measure: str, layer: int, head: int, k: int = 5, lowest: bool = False) -> list[dict]:
        """[{"index", "text", "value"}] the k texts where head (layer, head) has the highest
        (lowest) value of `measure`."""
        if measure not in self.per_text:
            raise ValueError(f"unknown measure {measure!r}")
        v = np.asarray(self.per_text[measure], dtype=np.float64)[:, int(layer), int(head)]
        order = np.argsort(v if lowest else -v, kind="stable")[:int(k)]
        return [{"index": int(i), "text": self.texts[i], "value": float(v[i])} for i in order]


def _check(should_stop):
    if should_stop is not None and should_stop():
        from models.importance import Cancelled

        raise Cancelled("cancelled")


def corpus_profile(loaded, texts, *, max_tokens: int = MAX_TOKENS, progress=None, should_stop=None,
                   corpus: str = "") -> Profile:
    """Run the model on each text (main self-attention block, output_attentions) and collect
    text_profile. progress(done, total) after each text; should_stop() before each."""
    from models.attention import _tokens, _encode

    texts = [t for t in texts if isinstance(t, str) and t.strip()][:MAX_TEXTS]
    if not texts:
        raise ValueError("no texts to profile")
    if loaded.architecture == "encoder-decoder":
        raise NotImplementedError("the corpus profile covers encoder and decoder-only models")
    t0 = time.perf_counter()
    acc: dict[str, list] = {}
    n_tok = []
    tok = loaded.tokenizer
    for i, text in enumerate(texts):
        _check(should_stop)
        enc, _ = _encode(tok, text, None, min(max_tokens, loaded.max_tokens), "source")
        tokens = _tokens(enc, tok, [text])
        inputs = {"input_ids": torch.tensor([enc["input_ids"]]),
                  "attention_mask": torch.ones(1, len(enc["input_ids"]), dtype=torch.long)}
        with torch.inference_mode():
            out = loaded.model(**inputs, output_attentions=True)
        w = torch.stack([a[0] for a in out.attentions]).float().numpy()  # [L,H,T,T]
        prof = text_profile(w, [t.special for t in tokens], [is_punct(t.piece) for t in tokens])
        for k, v in prof.items():
            acc.setdefault(k, []).append(v)
        n_tok.append(len(tokens))
        if progress is not None:
            progress(i + 1, len(texts))
    per = {k: np.stack(v) for k, v in acc.items()}  # [n,L,H]
    mean = {k: per[k].mean(0) for k in MEASURES}
    sink_free = {k: per[k].mean(0) for k in per if k.startswith("r_")}
    L, H = mean["first"].shape
    return Profile(texts=texts, tokens=n_tok, per_text={k: np.round(per[k], 5).tolist() for k in MEASURES},
                   mean={k: v.tolist() for k, v in mean.items()}, sink_free={k: v.tolist() for k, v in sink_free.items()},
                   roles=roles(sink_free).tolist(), model=loaded.name, layers=L, heads=H,
                   seconds=time.perf_counter() - t0, corpus=corpus)


def cached_profile(loaded, texts, *, corpus: str = "", store=None, progress=None, should_stop=None) -> Profile:
    from models import cache

    store = store if store is not None else cache.default_cache()
    key = cache.stable_hash({"what": "corpus-profile", "schema": SCHEMA, "model": loaded.fingerprint,
                             "tokenizer": getattr(loaded, "tokenizer_fingerprint", ""), "texts": list(texts),
                             "max_tokens": MAX_TOKENS})
    hit = store.get_json(key)
    if hit is not None:
        return Profile.from_dict(hit)
    res = corpus_profile(loaded, texts, progress=progress, should_stop=should_stop, corpus=corpus)
    store.put_json(key, res.to_dict())
    return res
