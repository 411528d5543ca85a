"""Load a registry model once per process: (model, tokenizer) in eval mode with our attention.

`get_loaded(name)` is lazy and thread-safe; each gunicorn worker holds its own copy (the
weights are read-only after loading, so requests share it; interventions live in
`models.interventions` context managers, never in the model).
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
from transformers import (  # noqa: E402
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    AutoModelForSeq2SeqLM,
    AutoTokenizer,
    PreTrainedModel,
)

from models import interventions, registry  # noqa: E402
from models.registry import ModelNotFound  # noqa: E402

log = logging.getLogger(__name__)


class ModelLoadError(RuntimeError):
    """The model's files are there but transformers could not load them."""


@dataclass
class LoadedModel:
    name: str
    model: PreTrainedModel
    tokenizer: object
    fingerprint: str  # config + weight files
    tokenizer_fingerprint: str
    architecture: str  # "encoder" | "decoder" | "encoder-decoder"
    head: str  # "masked-lm" | "causal-lm" | "seq2seq-lm" | "none"
    blocks: dict = field(default_factory=dict)  # block name -> kind
    folder: Path | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def max_tokens(self) -> int:
        """The text cap: the model's maximum positions (else the tokenizer's limit, else 512),
        lowered to env ATTN_MAX_TOKENS when that is set (a deployment-wide ceiling)."""
        return min(self.model_max_tokens, text_cap() or self.model_max_tokens)

    @property
    def model_max_tokens(self) -> int:
        cfg = self.model.config
        for attr in ("max_position_embeddings", "n_positions", "max_length"):
            v = getattr(cfg, attr, None)
            if isinstance(v, int) and v > 0:
                return v
        tok_max = getattr(self.tokenizer, "model_max_length", 512)
        return int(tok_max) if tok_max and tok_max < 100_000 else 512

    def shape(self, block: str | None = None) -> tuple[int, int]:
        """(layers, heads) of a block (the first if None)."""
        block = block or next(iter(self.blocks))
        n_layers = sum(1 for m in self.model.modules() if (s := interventions._slot(m)) and s.block == block)
        return n_layers, _num_heads(self.model.config)


def text_cap() -> int | None:
    """Env ATTN_MAX_TOKENS: the most tokens any run may have (a positive integer), or None."""
    raw = os.environ.get("ATTN_MAX_TOKENS", "").strip()
    if not raw:
        return None
    try:
        v = int(raw)
    except ValueError:
        log.warning("ATTN_MAX_TOKENS=%r is not a whole number; ignored", raw)
        return None
    return v if v > 0 else None


def _num_heads(cfg) -> int:
    for attr in ("num_attention_heads", "n_head", "encoder_attention_heads", "num_heads"):
        v = getattr(cfg, attr, None)
        if isinstance(v, int):
            return v
    raise ModelLoadError("cannot tell the number of attention heads from the config")


def _file_digest(path: Path, full_limit: int = 512 * 2**20) -> str:
    """sha256 of a file; for files over `full_limit`, of its size + first and last 8 MiB."""
    h = hashlib.sha256()
    size = path.stat().st_size
    h.update(f"{path.name}:{size}:".encode())
    with path.open("rb") as f:
        if size <= full_limit:
            for chunk in iter(lambda: f.read(2**20), b""):
                h.update(chunk)
        else:
            h.update(f.read(8 * 2**20))
            f.seek(size - 8 * 2**20)
            h.update(f.read())
    return h.hexdigest()


def fingerprint_folder(folder: Path, suffixes: tuple[str, ...]) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.iterdir()):
        if p.is_file() and (p.suffix in suffixes or p.name == "config.json"):
            h.update(_file_digest(p).encode())
    return h.hexdigest()[:32]


def _fingerprint_module(model: PreTrainedModel) -> str:
    """For in-memory models (tests): config + every parameter's bytes."""
    h = hashlib.sha256(model.config.to_json_string().encode())
    for name, p in model.state_dict().items():
        h.update(name.encode())
        h.update(p.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())  # any dtype (bfloat16)
    return h.hexdigest()[:32]


def _architecture(cfg) -> tuple[str, type]:
    archs = [a.lower() for a in (getattr(cfg, "architectures", None) or [])]
    if getattr(cfg, "is_encoder_decoder", False):
        return "encoder-decoder", AutoModelForSeq2SeqLM
    if any("causallm" in a or "lmhead" in a for a in archs) or getattr(cfg, "is_decoder", False):
        return "decoder", AutoModelForCausalLM
    if any("maskedlm" in a or "forpretraining" in a for a in archs):
        return "encoder", AutoModelForMaskedLM
    if cfg.model_type in ("gpt2", "gpt_neo", "gptj", "llama", "mistral", "qwen2", "opt", "phi", "gemma"):
        return "decoder", AutoModelForCausalLM
    return "encoder", AutoModel


def _head_kind(model: PreTrainedModel, architecture: str) -> str:
    if architecture == "encoder-decoder":
        return "seq2seq-lm"
    if architecture == "decoder":
        return "causal-lm" if model.get_output_embeddings() is not None else "none"
    return "masked-lm" if type(model).__name__.endswith("ForMaskedLM") else "none"


def wrap(name: str, model: PreTrainedModel, tokenizer, folder: Path | None = None,
         fingerprint: str | None = None) -> LoadedModel:
    """Prepare an already-built model (eval, no grad, our attention) — used by load() and tests."""
    model.config._attn_implementation = interventions.IMPLEMENTATION
    for sub in model.modules():
        cfg = getattr(sub, "config", None)
        if cfg is not None and hasattr(cfg, "_attn_implementation"):
            cfg._attn_implementation = interventions.IMPLEMENTATION
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    blocks = interventions.index_attention_modules(model)
    if not blocks:
        raise ModelLoadError(f"Model {name!r}: no attention modules this dashboard can read were found")
    architecture, _ = _architecture(model.config)
    tok_fp = hashlib.sha256(
        (getattr(tokenizer, "name_or_path", "") + str(len(tokenizer)) + type(tokenizer).__name__).encode()
    ).hexdigest()[:16]
    if folder is not None:
        tok_fp = fingerprint_folder(folder, (".json", ".txt", ".model"))[:16]
    return LoadedModel(
        name=name, model=model, tokenizer=tokenizer,
        fingerprint=fingerprint or _fingerprint_module(model),
        tokenizer_fingerprint=tok_fp, architecture=architecture,
        head=_head_kind(model, architecture),
        blocks={b: interventions.block_kinds(model)[b] for b in blocks}, folder=folder,
    )


def load_folder(name: str, folder: Path) -> LoadedModel:
    try:
        cfg = AutoConfig.from_pretrained(folder, local_files_only=True, trust_remote_code=False)
        architecture, auto_cls = _architecture(cfg)
        model = auto_cls.from_pretrained(folder, local_files_only=True, trust_remote_code=False,
                                         attn_implementation=interventions.IMPLEMENTATION,
                                         dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True, trust_remote_code=False)
    except ModelNotFound:
        raise
    except Exception as exc:
        raise ModelLoadError(f"Model {name!r} could not be loaded from {folder}: {type(exc).__name__}: "
                             f"{str(exc).splitlines()[0][:300] if str(exc) else ''}") from exc
    if not getattr(tokenizer, "is_fast", False):
        raise ModelLoadError(f"Model {name!r}: a fast tokenizer (tokenizer.json) is needed for offsets")
    fp = fingerprint_folder(folder, registry.WEIGHT_SUFFIXES)
    return wrap(name, model, tokenizer, folder=folder, fingerprint=fp)


_LOADED: dict[str, LoadedModel] = {}  # per-process cache of immutable loaded models
_LOCK = threading.Lock()


def get_loaded(name: str) -> LoadedModel:
    """The loaded model for a registry name (ModelNotFound / ModelLoadError with a clear message)."""
    if isinstance(name, str) and name in _LOADED:
        return _LOADED[name]
    spec = registry.get_spec(name)  # raises ModelNotFound for unknown names and non-strings
    with _LOCK:
        if name not in _LOADED:
            _LOADED[name] = load_folder(name, registry.resolve_location(spec))
    return _LOADED[name]


def register_loaded(loaded: LoadedModel) -> None:
    """Make an in-memory model available by name in this process (tests, benchmarks)."""
    _LOADED[loaded.name] = loaded


def loaded_names() -> list[str]:
    return list(_LOADED)
