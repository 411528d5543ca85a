"""What the page asks for: a run, computed once, stored on disk, read back by every worker.

    get_run(RunRequest) -> AttentionRun        (raises ModelNotFound, ModelLoadError, InputError)

Lookup order: a small per-process LRU of recent runs (so switching heads on a 500-token text
does not re-read 70 MB from disk), then the shared disk cache, then the model.

A new run is stored *after* it is returned (models.write_behind: one writer thread per process): encoding,
checksumming and writing ~10 MB for a 200-token run would otherwise double the time of a cold
run. This process keeps the run in memory meanwhile, and a read of a key still being written
waits for that write; `flush_writes()` waits for all of them (`clear_memory()` does too).
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

import settings
from models import attention, cache, loader
from models.run import SCHEMA_VERSION, AttentionRun
from models.write_behind import WriteBehind

MEMORY_RUNS = 6  # recent runs kept in memory per process
DEFAULT_MAX_TEXT_CHARS = 20_000  # characters of a text kept before tokenising (env ATTN_MAX_TEXT_CHARS)


def max_text_chars() -> int:
    """The character cap applied to every text before it is tokenised (env ATTN_MAX_TEXT_CHARS,
    default 20,000: far beyond the 512 tokens of a BERT-size model, so the model's own truncation
    note still says where the text was cut)."""
    try:
        n = int(settings.get("ATTN_MAX_TEXT_CHARS", DEFAULT_MAX_TEXT_CHARS))
    except ValueError:
        n = DEFAULT_MAX_TEXT_CHARS
    return max(1, n)


def cap_text(text):
    """A text cut to max_text_chars() (non-strings unchanged: the engine says what is wrong)."""
    return text[:max_text_chars()] if isinstance(text, str) else text


@dataclass(frozen=True)
class RunRequest:
    model: str
    text: str
    text_pair: str | None = None
    max_tokens: int | None = None
    head_mask: tuple | None = field(default=None)  # nested tuples [layers][heads] of 0/1 (main block)

    @classmethod
    def create(cls, model, text, text_pair=None, max_tokens=None, head_mask=None) -> "RunRequest":
        hm = None
        if head_mask is not None:
            arr = np.asarray(head_mask, dtype=np.float32)
            if not np.all(arr == 1):  # an all-ones mask is the unpruned model
                hm = tuple(tuple(float(x) for x in row) for row in arr)
        pair = cap_text(text_pair) if (isinstance(text_pair, str) and text_pair.strip()) else None
        return cls(model=model, text=cap_text(text), text_pair=pair,
                   max_tokens=int(max_tokens) if max_tokens else None, head_mask=hm)

    def to_dict(self) -> dict:
        return {"model": self.model, "text": self.text, "text_pair": self.text_pair,
                "max_tokens": self.max_tokens,
                "head_mask": None if self.head_mask is None else [list(r) for r in self.head_mask]}

    @classmethod
    def from_dict(cls, d: dict) -> "RunRequest":
        return cls.create(d.get("model"), d.get("text"), d.get("text_pair"), d.get("max_tokens"),
                          d.get("head_mask"))


class _LRU:
    def __init__(self, size: int):
        self.size, self.items, self.lock = size, OrderedDict(), threading.Lock()

    def get(self, key):
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        return None

    def put(self, key, value):
        with self.lock:
            self.items[key] = value
            self.items.move_to_end(key)
            while len(self.items) > self.size:
                self.items.popitem(last=False)

    def clear(self):
        with self.lock:
            self.items.clear()


_MEMORY = _LRU(MEMORY_RUNS)


def request_key(req: RunRequest, loaded: loader.LoadedModel) -> str:
    return cache.run_key(
        model_fingerprint=loaded.fingerprint, tokenizer_fingerprint=loaded.tokenizer_fingerprint,
        text=req.text, text_pair=req.text_pair, options={"max_tokens": req.max_tokens},
        head_mask=None if req.head_mask is None else np.asarray(req.head_mask, dtype=np.float32),
        schema=SCHEMA_VERSION)


def get_run(req: RunRequest, *, run_cache: cache.RunCache | None = None) -> AttentionRun:
    return get_run_status(req, run_cache=run_cache)[0]


def get_run_status(req: RunRequest, *, run_cache: cache.RunCache | None = None) -> tuple[AttentionRun, str]:
    """The run and where it came from: "memory", "disk" or "model"."""
    loaded = loader.get_loaded(req.model)
    key = request_key(req, loaded)
    hit = _MEMORY.get(key)
    if hit is not None:
        return hit, "memory"
    store = run_cache or cache.default_cache()
    _wait_for_write(key)
    found = store.get(key)
    if found is not None:
        run = AttentionRun.from_payload(*found)
        _MEMORY.put(key, run)
        return run, "disk"
    computed = attention.extract(loaded, req.text, req.text_pair, max_tokens=req.max_tokens,
                                 head_mask=None if req.head_mask is None else np.asarray(req.head_mask))
    meta, arrays = computed.to_payload()
    meta = cache.json_form(meta)  # the run returned now equals the one a later hit returns
    run = AttentionRun.from_payload(meta, arrays)
    _MEMORY.put(key, run)
    _store_later(store, key, meta, arrays)
    return run, "model"


# ---- write-behind -----------------------------------------------------------------------------
_WRITES = WriteBehind("run-cache-writer")


def _store_later(store, key: str, meta: dict, arrays: dict) -> None:
    _WRITES.submit(key, lambda: store.put(key, meta, arrays))  # store trouble: logged, a miss later


def _wait_for_write(key: str, timeout: float = 30.0) -> None:
    _WRITES.wait(key, timeout)  # on a timeout: read the store anyway (a miss recomputes)


def flush_writes(timeout: float = 60.0) -> bool:
    """Wait until every run computed by this process so far is in the store (False: timed out)."""
    return _WRITES.flush(timeout)


def clear_memory() -> None:
    flush_writes()
    _MEMORY.clear()
