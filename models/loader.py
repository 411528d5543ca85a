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

import settings  # noqa: E402
from models import interventions, registry, verify  # noqa: E402
from models.registry import ModelNotFound  # noqa: E402

log = logging.getLogger(__name__)

# Attention paths (LoadedModel.path)
INTERFACE = "attention-function"  # every attention call goes through interventions.dashboard_attention
FALLBACK = "fallback"  # the modules bypass it: eager output_attentions + gates on the output projection
# Features that need the pre-softmax scores, off on the fallback path (the page says so).
SCORE_FEATURES = ("temperature", "q·k scores")


from models.errors import ModelLoadError  # noqa: E402,F401 - re-exported (defined torch-free in models.errors)


@dataclass
class LoadedModel:
    name: str
    model: PreTrainedModel
    tokenizer: object
    fingerprint: str  # config + weight files
    tokenizer_fingerprint: str
    architecture: str  # "encoder" | "decoder" | "encoder-decoder"
    head: str  # "masked-lm" | "causal-lm" | "seq2seq-lm" | "none"
    blocks: dict = field(default_factory=dict)  # block name -> kind (refused blocks left out)
    folder: Path | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    path: str = INTERFACE  # INTERFACE | FALLBACK
    layers: dict = field(default_factory=dict)  # block -> number of layers
    heads: dict = field(default_factory=dict)  # block -> number of query heads
    checks: dict = field(default_factory=dict)  # block -> verify.BlockCheck (refused ones included)
    can_gate: bool = True  # per-head gates (masking, importance) available
    device: str = "cpu"
    has_sinks: bool = False  # per-head attention sink logits (GPT-OSS)

    @property
    def has_scores(self) -> bool:
        """Pre-softmax scores are captured (not on the fallback path)."""
        return self.path == INTERFACE

    @property
    def features_off(self) -> tuple[str, ...]:
        off = () if self.has_scores else SCORE_FEATURES
        return off + (() if self.can_gate else ("head masking", "pruning"))

    @property
    def notes(self) -> tuple[str, ...]:
        """What the page says about this model: refused or unverified blocks, features that are off."""
        out = []
        for check in self.checks.values():
            if check.status in (verify.REFUSED, verify.UNVERIFIED):
                out.append(f"Block {check.block!r} {check.status}: {check.reason}.")
        if self.path == FALLBACK:
            out.append("This model's attention modules bypass the dashboard's attention function: weights "
                       "come from its own eager output_attentions (exact), head masks act on the output "
                       "projection's input. Off for this model (they need pre-softmax scores): "
                       f"{', '.join(SCORE_FEATURES)}.")
        if self.has_sinks:
            out.append("This model adds a learned sink logit per head to the softmax (GPT-OSS style), so a "
                       "row of weights sums to less than 1 (the rest went to the sink); the temperature "
                       "divides the sink logit too.")
        if not self.can_gate:
            out.append("Head masking and pruning are off for this model: its output projection could not be "
                       "matched to its layers.")
        return tuple(out)

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
        if block in self.layers:
            return self.layers[block], self.heads[block]
        n_layers = sum(1 for m in self.model.modules() if (s := interventions._slot(m)) and s.block == block)
        return n_layers, _num_heads(self.model.config)


def text_cap() -> int | None:
    """Env ATTN_MAX_TOKENS: the most tokens any run may have (a positive integer), or None."""
    raw = settings.get("ATTN_MAX_TOKENS", "").strip()
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


def _architecture(cfg, model=None) -> tuple[str, type]:
    archs = [a.lower() for a in (getattr(cfg, "architectures", None) or [])]
    if not archs and model is not None:  # an in-memory model: its own class says it
        archs = [type(model).__name__.lower()]
    if getattr(cfg, "is_encoder_decoder", False):
        return "encoder-decoder", AutoModelForSeq2SeqLM
    if any("causallm" in a or "lmhead" in a for a in archs) or getattr(cfg, "is_decoder", False):
        return "decoder", AutoModelForCausalLM
    if any("maskedlm" in a or "forpretraining" in a for a in archs):
        return "encoder", AutoModelForMaskedLM
    if cfg.model_type in ("gpt2", "gpt_neo", "gptj", "llama", "mistral", "qwen2", "opt", "phi", "gemma"):
        return "decoder", AutoModelForCausalLM
    from transformers.models.auto.modeling_auto import (MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
                                                        MODEL_FOR_MASKED_LM_MAPPING_NAMES)

    if cfg.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and cfg.model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES:
        return "decoder", AutoModelForCausalLM  # a base decoder (LlamaModel, ...)
    return "encoder", AutoModel


def _head_kind(model: PreTrainedModel, architecture: str) -> str:
    if architecture == "encoder-decoder":
        return "seq2seq-lm"
    if architecture == "decoder":
        return "causal-lm" if model.get_output_embeddings() is not None else "none"
    return "masked-lm" if type(model).__name__.endswith("ForMaskedLM") else "none"


def wrap(name: str, model: PreTrainedModel, tokenizer, folder: Path | None = None,
         fingerprint: str | None = None, *, check: bool = True) -> LoadedModel:
    """Prepare an already-built model (eval, no grad, our attention) — used by load() and tests.

    Chooses the attention path with a probe forward (see `select_path`), then, with `check`,
    verifies every block against the model's own eager attention: blocks that differ are
    refused (left out of `.blocks`, reason in `.checks` / `.notes`); if none is left, or the model
    can be read neither way, ModelLoadError says why.
    """
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    architecture, _ = _architecture(model.config, model)
    tok_fp = hashlib.sha256(
        (getattr(tokenizer, "name_or_path", "") + str(len(tokenizer)) + type(tokenizer).__name__).encode()
    ).hexdigest()[:16]
    if folder is not None:
        tok_fp = fingerprint_folder(folder, (".json", ".txt", ".model"))[:16]
    loaded = LoadedModel(
        name=name, model=model, tokenizer=tokenizer,
        fingerprint=fingerprint or _fingerprint_module(model),
        tokenizer_fingerprint=tok_fp, architecture=architecture,
        head=_head_kind(model, architecture), folder=folder, device=str(_model_device(model)),
    )
    _place_io(model)
    select_path(loaded)
    if check:
        verify_loaded(loaded)
    return loaded


def _model_device(model) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _to(obj, device):
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return type(obj)({k: _to(v, device) for k, v in obj.items()}) if type(obj) is dict else \
            obj.__class__(**{k: _to(v, device) for k, v in obj.items()})
    if isinstance(obj, (tuple, list)):
        return type(obj)(_to(v, device) for v in obj)
    return obj


def _inputs_to_model(module, args, kwargs):
    device = _model_device(module)
    return _to(args, device), _to(kwargs, device)


def _outputs_to_cpu(module, args, kwargs, output):
    return _to(output, torch.device("cpu"))  # the same code on every device (a no-op copy on the CPU)


def _place_io(model) -> None:
    """Inputs move to the model's device and outputs back to the CPU at the top-level forward, so
    callers build CPU tensors on any ATTN_DEVICE (on the CPU both hooks leave everything as is)."""
    if not getattr(model, "_attention_dashboard_io", False):
        model.register_forward_pre_hook(_inputs_to_model, with_kwargs=True)
        model.register_forward_hook(_outputs_to_cpu, with_kwargs=True)
        model._attention_dashboard_io = True


def _probe_inputs(loaded: LoadedModel) -> dict:
    from models import attention  # attention imports this module

    pair = verify.PROBE_PAIR if loaded.architecture == "encoder" else None
    inputs, *_ = attention.forward_inputs(loaded, verify.PROBE_TEXT, pair, min(32, loaded.max_tokens))
    inputs.pop("labels", None)
    return inputs


def _kind(architecture: str) -> str:
    return "causal" if architecture == "decoder" else "self"


def select_path(loaded: LoadedModel) -> None:
    """Decide how this model's attention is read, from which modules call our attention function.

    * every module found by name calls it once per forward: those blocks (BERT, Llama, BART, T5, ...);
    * a single-stack model whose callers have no `layer_idx` (DistilBERT, ALBERT's shared layer):
      layers in call order;
    * only some of the modules found by name call it, or none: the fallback;
    * otherwise (DeBERTa-v2, MPNet, GPT-Neo, Falcon, BLOOM, ...): the fallback path, eager weights
      through output_attentions and gates on the output projection's input.
    Sets loaded.path, .blocks, .layers, .heads, .can_gate; raises ModelLoadError with the reason
    when neither works.
    """
    model, name = loaded.model, loaded.name
    verify.set_implementation(model, interventions.IMPLEMENTATION)
    by_name = interventions.index_attention_modules(model)
    named = [m for mods in by_name.values() for m in mods]
    inputs = _probe_inputs(loaded)
    callers, error = [], None
    try:
        with torch.inference_mode(), interventions.discover_callers() as callers, \
                interventions.capture(scores=False) as cap:
            model(**inputs)
    except Exception as exc:  # e.g. a family that only knows its own implementations
        error, callers = exc, []
    interventions.track_forwards(model)
    kinds = interventions.block_kinds(model)
    if named and len(callers) == len(named) and {id(m) for m in callers} == {id(m) for m in named}:
        loaded.path, loaded.blocks = INTERFACE, {b: kinds[b] for b in by_name}
    elif callers and not named and loaded.architecture != "encoder-decoder":
        # (modules found by name of which only some call us, a hybrid, take the fallback below)
        kind = _kind(loaded.architecture)
        interventions.assign_slots(callers, "self", kind)
        loaded.path, loaded.blocks = INTERFACE, {"self": kind}
        with torch.inference_mode(), interventions.capture(scores=False) as cap:
            model(**inputs)
    else:
        interventions.forget(named)
        _select_fallback(loaded, inputs, error)
        return
    loaded.has_sinks = any(isinstance(getattr(m, "sinks", None), torch.Tensor) for m in named + callers)
    loaded._probe_calls = cap.calls  # reused by verify_loaded: no second forward
    shapes = verify.stack_calls(cap.calls)
    for block in loaded.blocks:
        loaded.layers[block] = len(shapes.get(block, ()))
        loaded.heads[block] = int(shapes[block][0].shape[1]) if shapes.get(block) else _num_heads(model.config)


def _select_fallback(loaded: LoadedModel, inputs: dict, error: Exception | None) -> None:
    model, name = loaded.model, loaded.name
    if loaded.architecture == "encoder-decoder":
        raise ModelLoadError(f"Model {name!r}: its attention modules bypass the dashboard's attention function, "
                             "and the fallback reads single-stack models only")
    verify.set_implementation(model, "eager")
    projections = interventions.output_projections(model)
    try:
        with torch.inference_mode(), interventions.discover_projection_calls(projections) as order:
            out = model(**inputs, output_attentions=True)
    except Exception as exc:
        raise ModelLoadError(f"Model {name!r}: its attention could not be read ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0][:200] if str(exc) else ''})") from exc
    weights = verify.block_attentions(out, loaded.architecture).get("self")
    if not weights:
        why = f" (our attention function: {type(error).__name__})" if error is not None else ""
        raise ModelLoadError(f"Model {name!r}: its attention modules bypass the dashboard's attention function"
                             f"{why} and its eager path returns no attention weights (output_attentions)")
    kind = _kind(loaded.architecture)
    layers, heads = len(weights), int(weights[0].shape[1])
    loaded.path, loaded.blocks = FALLBACK, {"self": kind}
    loaded.layers, loaded.heads = {"self": layers}, {"self": heads}
    width_ok = all(getattr(p, "in_features", getattr(p, "weight", torch.empty(0, 0)).shape[-1]) % heads == 0
                   for p in order)
    loaded.can_gate = len(order) == layers and width_ok
    if loaded.can_gate:
        interventions.install_output_gates(model, order, "self", kind)


def verify_loaded(loaded: LoadedModel) -> None:
    """Run the probe both ways and keep the verdicts in loaded.checks (see models.verify)."""
    model, name = loaded.model, loaded.name
    if loaded.path == FALLBACK:
        for block in loaded.blocks:
            loaded.checks[block] = verify.BlockCheck(block, verify.FALLBACK, 0.0,
                                                     "read from the model's own eager output_attentions")
        return
    inputs = _probe_inputs(loaded)
    calls = loaded.__dict__.pop("_probe_calls", None)
    if calls is None:
        with torch.inference_mode(), interventions.capture(scores=False) as cap:
            model(**inputs)
        calls = cap.calls
    ours = verify.stack_calls(calls)
    reference = {}
    try:
        verify.set_implementation(model, "eager")
        with torch.inference_mode():
            out = model(**inputs, output_attentions=True)
        reference = verify.block_attentions(out, loaded.architecture)
    except Exception:  # no eager reference: "unverified", said in the page
        reference = {}
    finally:
        verify.set_implementation(model, interventions.IMPLEMENTATION)
    tol = verify.tolerance(next(model.parameters()).dtype)
    loaded.checks = verify.compare({b: ours.get(b, []) for b in loaded.blocks}, reference, tol)
    refused = [b for b, c in loaded.checks.items() if c.status == verify.REFUSED]
    loaded.blocks = {b: k for b, k in loaded.blocks.items() if b not in refused}
    if not loaded.blocks:
        reasons = "; ".join(f"{c.block}: {c.reason}" for c in loaded.checks.values())
        raise ModelLoadError(f"Model {name!r} is not shown: {reasons}")


def _device_and_dtype() -> tuple[str, torch.dtype]:
    """ATTN_DEVICE (cpu | cuda | mps; default: the best available) and ATTN_DTYPE (float32 |
    float16 | bfloat16; default float32)."""
    device = settings.get("ATTN_DEVICE", "").strip().lower()
    if not device:
        if torch.cuda.is_available():
            device = "cuda"
        elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            device = "mps"
        else:
            device = "cpu"
    if device not in ("cpu", "cuda", "mps"):
        raise ModelLoadError(f"ATTN_DEVICE={device!r}: use cpu, cuda or mps")
    if device == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError("ATTN_DEVICE=cuda but no CUDA device is available")
    if device == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ModelLoadError("ATTN_DEVICE=mps but MPS is not available")
    dtypes = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
    name = settings.get("ATTN_DTYPE", "float32").strip().lower() or "float32"
    if name not in dtypes:
        raise ModelLoadError(f"ATTN_DTYPE={name!r}: use one of {', '.join(dtypes)}")
    return device, dtypes[name]


def load_folder(name: str, folder: Path) -> LoadedModel:
    device, dtype = _device_and_dtype()
    try:
        cfg = AutoConfig.from_pretrained(folder, local_files_only=True, trust_remote_code=False)
        architecture, auto_cls = _architecture(cfg)
        kw = dict(local_files_only=True, trust_remote_code=False, dtype=dtype)
        try:
            model = auto_cls.from_pretrained(folder, attn_implementation=interventions.IMPLEMENTATION, **kw)
        except (KeyError, ValueError):  # a family that only accepts its own implementations: fallback
            model = auto_cls.from_pretrained(folder, attn_implementation="eager", **kw)
        model = model.to(device)
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True, trust_remote_code=False)
    except ModelNotFound:
        raise
    except Exception as exc:
        raise ModelLoadError(f"Model {name!r} could not be loaded from {folder}: {type(exc).__name__}: "
                             f"{str(exc).splitlines()[0][:300] if str(exc) else ''}") from exc
    if not getattr(tokenizer, "is_fast", False):
        raise ModelLoadError(f"Model {name!r}: a fast tokenizer (tokenizer.json) is needed for offsets")
    fp = fingerprint_folder(folder, registry.WEIGHT_SUFFIXES)
    try:
        return wrap(name, model, tokenizer, folder=folder, fingerprint=fp)
    except ModelLoadError:
        raise
    except Exception as exc:  # never an internal error: the reason, in the page and /healthz
        raise ModelLoadError(f"Model {name!r} could not be prepared: {type(exc).__name__}: "
                             f"{str(exc).splitlines()[0][:300] if str(exc) else ''}") from exc


_LOADED: dict[str, LoadedModel] = {}  # per-process cache of immutable loaded models
_LOCK = threading.Lock()
_UNAVAILABLE: dict[str, str] = {}  # name -> why it could not be loaded in this process (for /healthz)


def get_loaded(name: str) -> LoadedModel:
    """The loaded model for a registry name (ModelNotFound / ModelLoadError with a clear message)."""
    if isinstance(name, str) and name in _LOADED:
        return _LOADED[name]
    spec = registry.get_spec(name)  # raises ModelNotFound for unknown names and non-strings
    with _LOCK:
        if name not in _LOADED:
            try:
                _LOADED[name] = load_folder(name, registry.resolve_location(spec))
            except ModelLoadError as exc:
                _UNAVAILABLE[name] = str(exc)
                raise
            _UNAVAILABLE.pop(name, None)
    return _LOADED[name]


def unavailable() -> dict[str, str]:
    """{name: reason} for models that failed to load (or were refused) in this process."""
    return dict(_UNAVAILABLE)


def refused_blocks() -> dict[str, dict[str, str]]:
    """{name: {block: reason}} for loaded models with a block left out by verification."""
    out = {}
    for name, loaded in list(_LOADED.items()):
        refused = {b: c.reason for b, c in loaded.checks.items() if c.status == verify.REFUSED}
        if refused:
            out[name] = refused
    return out


def register_loaded(loaded: LoadedModel) -> None:
    """Make an in-memory model available by name in this process (tests, benchmarks)."""
    _LOADED[loaded.name] = loaded


def loaded_names() -> list[str]:
    return list(_LOADED)
