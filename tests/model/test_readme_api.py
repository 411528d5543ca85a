"""The README's notebook example runs as written, on the real embedded model (issue 15)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def _notebook_block() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Notebook API", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "README's Notebook API section has no python block"
    return match.group(1)


@pytest.mark.slow
def test_readme_notebook_example_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ATTN_CACHE_DIR", str(tmp_path / "cache"))
    from models import service

    service.clear_memory()
    scope: dict = {}
    exec(compile(_notebook_block(), str(README), "exec"), scope)  # noqa: S102 - our own README
    out = capsys.readouterr().out
    run, imp, curve = scope["run"], scope["imp"], scope["curve"]
    assert run.model_name == "all-MiniLM-L6-v2" and scope["tokens"][0] == "[CLS]"
    assert imp.scores.shape == (6, 12) and imp.n_examples == 8 and "contrastive" in imp.loss_name
    assert curve.pruned == [0, 36] and curve.curves["importance"]["spearman"][0] == 1.0
    assert len(curve.std["random"]["spearman"]) == 2 and "(6, 12)" in out
    # the notebook and the page share one cache: the same request is now a memory/disk hit
    again, source = service.get_run_status(service.RunRequest.create(
        "all-MiniLM-L6-v2", "The quick brown fox jumps over the lazy dog."))
    assert source in ("memory", "disk")
    service.flush_writes()
