"""Models come from the registry only: the embedded default, folders and local HF-cache ids."""
import json

import numpy as np
import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from models import attention, loader, registry
from models.loader import ModelLoadError
from models.registry import ModelNotFound


@pytest.fixture
def clean_registry(monkeypatch, tmp_path):
    monkeypatch.delenv("ATTN_MODELS", raising=False)
    monkeypatch.setenv("ATTN_MODELS_FILE", str(tmp_path / "absent.json"))
    yield
    for name in ("tiny-folder", "tiny-cached", "not-a-model", "from-file"):
        loader._LOADED.pop(name, None)


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    """A tiny GPT-2 saved like any Hugging Face model folder (random weights, MiniLM tokenizer)."""
    folder = tmp_path_factory.mktemp("tiny-gpt2")
    torch.manual_seed(1)
    tok = loader.get_loaded("all-MiniLM-L6-v2").tokenizer
    GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=32, n_embd=16, n_layer=2, n_head=2)
                    ).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def test_embedded_default_always_present(clean_registry):
    assert registry.model_names()[0] == registry.DEFAULT_MODEL == "all-MiniLM-L6-v2"
    assert (registry.embedded_model_dir() / "model.safetensors").is_file()


@pytest.mark.parametrize("name", ["gpt-5", "../../etc", "/etc/passwd", "", None, 42])
def test_unknown_or_path_like_names_are_refused(clean_registry, name):
    with pytest.raises(ModelNotFound, match="Unknown model"):
        loader.get_loaded(name)


def test_folder_model_from_env(clean_registry, monkeypatch, tiny_folder):
    monkeypatch.setenv("ATTN_MODELS", f"tiny-folder={tiny_folder}")
    assert registry.model_names() == ["all-MiniLM-L6-v2", "tiny-folder"]
    tiny = loader.get_loaded("tiny-folder")
    assert tiny.architecture == "decoder" and tiny.blocks == {"self": "causal"}
    assert loader.get_loaded("tiny-folder") is tiny  # one per process
    run = attention.extract(tiny, "the cat sat")
    assert run.weights.shape == (2, 2, 5, 5)


def test_models_file(clean_registry, monkeypatch, tmp_path, tiny_folder):
    f = tmp_path / "models.json"
    f.write_text(json.dumps({"from-file": str(tiny_folder)}))
    monkeypatch.setenv("ATTN_MODELS_FILE", str(f))
    assert "from-file" in registry.model_names()


def test_hf_cache_id(clean_registry, monkeypatch, tmp_path, tiny_folder):
    """An id already in the local Hugging Face cache resolves offline (nothing downloaded)."""
    hub = tmp_path / "hub"
    snap = hub / "models--acme--tiny-gpt2" / "snapshots" / ("a" * 40)
    snap.mkdir(parents=True)
    for p in tiny_folder.iterdir():
        (snap / p.name).write_bytes(p.read_bytes())
    (hub / "models--acme--tiny-gpt2" / "refs").mkdir()
    (hub / "models--acme--tiny-gpt2" / "refs" / "main").write_text("a" * 40)
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(hub))
    monkeypatch.setenv("ATTN_MODELS", "tiny-cached=acme/tiny-gpt2")
    run = attention.extract(loader.get_loaded("tiny-cached"), "the cat")
    assert run.model_name == "tiny-cached" and run.weights.shape[:2] == (2, 2)


def test_missing_id_is_not_downloaded(clean_registry, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    monkeypatch.setenv("ATTN_MODELS", "not-a-model=acme/never-downloaded")
    with pytest.raises(ModelNotFound, match="neither a folder nor a model in the local Hugging Face cache"):
        loader.get_loaded("not-a-model")


def test_folder_that_is_not_a_model(clean_registry, monkeypatch, tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    monkeypatch.setenv("ATTN_MODELS", f"not-a-model={tmp_path}")
    with pytest.raises(ModelNotFound, match="no config.json"):
        loader.get_loaded("not-a-model")


def test_broken_weights_give_load_error(clean_registry, monkeypatch, tmp_path, tiny_folder):
    for p in tiny_folder.iterdir():
        (tmp_path / p.name).write_bytes(p.read_bytes())
    (tmp_path / "model.safetensors").write_bytes(b"not safetensors at all")
    monkeypatch.setenv("ATTN_MODELS", f"not-a-model={tmp_path}")
    with pytest.raises(ModelLoadError, match="could not be loaded"):
        loader.get_loaded("not-a-model")


def test_fingerprint_follows_weights(tmp_path, tiny_folder):
    for p in tiny_folder.iterdir():
        (tmp_path / p.name).write_bytes(p.read_bytes())
    a = loader.fingerprint_folder(tmp_path, registry.WEIGHT_SUFFIXES)
    assert a == loader.fingerprint_folder(tiny_folder, registry.WEIGHT_SUFFIXES)
    data = bytearray((tmp_path / "model.safetensors").read_bytes())
    data[-5] ^= 0xFF
    (tmp_path / "model.safetensors").write_bytes(bytes(data))
    assert loader.fingerprint_folder(tmp_path, registry.WEIGHT_SUFFIXES) != a


def test_shared_model_untouched_by_gates(clean_registry):
    minilm = loader.get_loaded("all-MiniLM-L6-v2")
    before = {k: v.clone() for k, v in minilm.model.state_dict().items()}
    plain = attention.extract(minilm, "The cat sat.")
    mask = np.ones((6, 12), dtype=np.float32)
    mask[0, :6] = 0
    pruned = attention.extract(minilm, "The cat sat.", head_mask=mask)
    assert not np.array_equal(pruned.weights[1:], plain.weights[1:])  # later layers change
    # layer 0 attention is upstream of every gate (two forward passes: compared with a tolerance)
    np.testing.assert_allclose(pruned.weights[0].astype(np.float32), plain.weights[0].astype(np.float32), atol=1e-3)
    again = attention.extract(minilm, "The cat sat.")
    np.testing.assert_allclose(again.weights.astype(np.float32), plain.weights.astype(np.float32), atol=1e-3)
    after = minilm.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
