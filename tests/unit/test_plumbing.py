"""The test environment itself: offline hub, CPU-only torch pinned to 2.13.0."""

import os


def test_hf_hub_offline_during_tests():
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    from huggingface_hub import constants

    assert constants.HF_HUB_OFFLINE is True


def test_torch_is_pinned_cpu_build():
    import torch

    assert torch.__version__.startswith("2.13.0"), torch.__version__
    # a CUDA wheel from PyPI would report a CUDA version here
    assert torch.version.cuda is None, f"CUDA build of torch: {torch.version.cuda}"
    assert not torch.cuda.is_available()
