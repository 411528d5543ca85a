"""Corpus head profile on the page: pure builders (no callbacks).

    compute_profile(store, upload, progress)   -> the profile store (small: key, means, roles, sizes)
    profile_grids(profile, selected)           -> {measure: figure}: one layers x heads grid per measure
    extreme_rows(profile_store, measure, l, h) -> [{"index", "text", "value"}] the most extreme texts
    decode_corpus(contents, filename)          -> {"name", "texts"} from an uploaded text file

The full per-text arrays stay in the server's cache (models.profile.cached_profile); the page
holds only the means, the roles and the cache key. A key sent back by the browser is only looked
up: a key that is not a cached profile is a "compute it again" message, never a computation.
"""
from __future__ import annotations

import base64
import binascii
import re

import numpy as np

from dashboard import figures
from dashboard.figures import add_meta
from dashboard.research_panel import PROFILE_MAX_UPLOAD_BYTES as MAX_UPLOAD_BYTES
from models import profile as prof
from models.errors import PanelError
from services.pruning_card import run_info

BUNDLED_LABEL = "bundled corpus"
TOP_K = 5
_KEY = re.compile(r"^[0-9a-f]{16,128}$")
METRIC_STYLE = {"entropy": "entropy"}  # figures.head_grid style; masses use "sink" (0..1, accent)


def decode_corpus(contents, filename) -> dict:
    """{"name", "texts"} from a dcc.Upload data URL (UTF-8 text, one sentence a line)."""
    if not isinstance(contents, str) or "," not in contents:
        raise PanelError("Could not read the file: upload a UTF-8 text file, one sentence a line.")
    try:
        raw = base64.b64decode(contents.split(",", 1)[1], validate=False)
    except (binascii.Error, ValueError):
        raise PanelError("Could not read the file: it is not valid base64 data.") from None
    if len(raw) > MAX_UPLOAD_BYTES:
        raise PanelError(f"The file is larger than {MAX_UPLOAD_BYTES // 2**20} MB.")
    try:
        texts = prof.parse_corpus(raw.decode("utf-8"), min_texts=2)
    except UnicodeDecodeError:
        raise PanelError("The file is not UTF-8 text.") from None
    except ValueError as exc:
        raise PanelError(str(exc)) from None
    name = str(filename or "upload")[:80]
    return {"name": name, "texts": texts}


def corpus_texts(corpus: dict | None) -> tuple[list[str], str]:
    if not corpus:
        texts = prof.load_corpus()
        return texts, f"{BUNDLED_LABEL} ({len(texts)} texts)"
    texts = corpus.get("texts")
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise PanelError("The uploaded corpus is not a list of texts: upload it again.")
    return prof.parse_corpus("\n".join(t.replace("\n", " ") for t in texts), min_texts=2), \
        f"{str(corpus.get('name', 'upload'))[:80]} ({len(texts)} texts)"


def _profile_key(loaded, texts) -> str:
    from models import cache

    return cache.stable_hash({"what": "corpus-profile", "schema": prof.SCHEMA, "model": loaded.fingerprint,
                              "tokenizer": getattr(loaded, "tokenizer_fingerprint", ""), "texts": list(texts),
                              "max_tokens": prof.MAX_TOKENS})


def compute_profile(store, corpus, progress=None) -> dict:
    from models import loader

    info = run_info(store)
    loaded = loader.get_loaded(info.model)
    texts, label = corpus_texts(corpus)
    try:
        p = prof.cached_profile(loaded, texts, corpus=label, progress=progress)
    except NotImplementedError as exc:
        raise PanelError(str(exc)) from None
    return {"key": _profile_key(loaded, texts), "model": p.model, "corpus": label, "n": len(p.texts),
            "layers": p.layers, "heads": p.heads, "mean": p.mean, "roles": p.roles,
            "tokens_mean": float(np.mean(p.tokens)), "seconds": p.seconds}


def profile_grids(store: dict | None, selected=None) -> dict:
    """{measure: head_grid figure} (masses 0..1, entropy in bits); roles in the hover."""
    out = {}
    for m in prof.MEASURES:
        if not store:
            out[m] = figures.empty_figure("Compute the profile" if m == "first" else "")
            continue
        values = np.asarray(store["mean"][m], dtype=np.float32)
        metric = "entropy" if m == "entropy" else "sink"
        fig = figures.head_grid(values, metric=metric, selected=selected, roles=store.get("roles"),
                                title=prof.MEASURE_LABELS[m], uirevision=f"profile-{m}")
        fig.update_traces(selector=dict(type="heatmap"), name=m,
                          hovertemplate="%{y} %{x} · " + prof.MEASURE_LABELS[m] + " %{z:.3f}%{text}<extra></extra>")
        fig.update_layout(margin=dict(l=4, r=4, t=36, b=4), height=230)
        out[m] = add_meta(fig, profile_measure=m)
    return out


def profile_text(store: dict | None) -> str:
    if not store:
        return ""
    roles = np.asarray(store["roles"])
    counts = ", ".join(f"{r} {int((roles == r).sum())}" for r in prof.ROLES if (roles == r).any())
    return (f"{store['model']} · {store['corpus']}: mean over {store['n']} texts (mean {store['tokens_mean']:.1f} "
            f"tokens each) of each head's mean over query rows · {store['seconds']:.0f} s. Roles with the sink "
            f"token (key 0) left out: {counts}. Click a head to list the texts where it is most extreme.")


def load_profile(store: dict | None):
    """The cached full profile of the store's key, or PanelError."""
    from models import cache

    key = (store or {}).get("key")
    if not isinstance(key, str) or not _KEY.match(key):
        raise PanelError("Compute the profile first.")
    hit = cache.default_cache().get_json(key)
    if hit is None:
        raise PanelError("This profile is no longer cached: compute it again.")
    return prof.Profile.from_dict(hit)


def extreme_rows(store: dict | None, measure, layer, head, k: int = TOP_K) -> tuple[str, list[dict]]:
    if measure not in prof.MEASURES:
        raise PanelError("Unknown profile measure.")
    p = load_profile(store)
    try:
        layer, head = int(layer), int(head)
    except (TypeError, ValueError):
        raise PanelError("Click a head of a grid.") from None
    if not (0 <= layer < p.layers and 0 <= head < p.heads):
        raise PanelError("Click a head of a grid.")
    rows = p.extreme_texts(measure, layer, head, k)
    title = (f"L{layer} H{head}: the {len(rows)} texts with the highest {prof.MEASURE_LABELS[measure]} "
             f"(corpus mean {store['mean'][measure][layer][head]:.3f}). Click one to open it in the heatmap.")
    return title, rows


def open_text(store: dict | None, index) -> str:
    """The text at `index` of the cached profile (the browser sends only the index)."""
    p = load_profile(store)
    try:
        i = int(index)
    except (TypeError, ValueError):
        raise PanelError("Unknown text.") from None
    if not 0 <= i < len(p.texts):
        raise PanelError("Unknown text.")
    return p.texts[i]
