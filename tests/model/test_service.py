"""get_run: memory LRU → shared disk cache → model; and the precompute CLI."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from models import attention, cache, loader, service
from models.__main__ import main as cli_main

TEXT = "The cat sat on the mat because it was tired."
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTN_CACHE_DIR", str(tmp_path / "cache"))
    service.clear_memory()
    yield cache.RunCache(str(tmp_path / "cache"))
    service.clear_memory()


@pytest.fixture
def model_calls(monkeypatch):
    """Count real model forwards (the thing a cache hit must not do)."""
    calls = []
    real = attention.extract

    def counting(*a, **kw):
        calls.append(a[1])
        return real(*a, **kw)

    monkeypatch.setattr(attention, "extract", counting)
    return calls


def test_second_call_hits_without_a_model_call(store, model_calls):
    req = service.RunRequest.create("all-MiniLM-L6-v2", TEXT)
    first, src1 = service.get_run_status(req, run_cache=store)
    service.clear_memory()  # force the disk path
    second, src2 = service.get_run_status(req, run_cache=store)
    third, src3 = service.get_run_status(req, run_cache=store)
    assert (src1, src2, src3) == ("model", "disk", "memory")
    assert model_calls == [TEXT]
    np.testing.assert_array_equal(first.weights, second.weights)
    np.testing.assert_array_equal(first.main.scores, second.main.scores)
    assert first.source_tokens == second.source_tokens
    np.testing.assert_array_equal(first.outputs["embedding"], second.outputs["embedding"])


def test_write_behind_answers_first_and_a_read_waits_for_the_write(store, model_calls, monkeypatch):
    """The run is returned before it is written; a disk read of that key meanwhile waits for the
    write instead of computing the run a second time."""
    import threading

    release = threading.Event()
    real_put = store.put

    def slow_put(*a, **kw):
        assert release.wait(30)
        return real_put(*a, **kw)

    monkeypatch.setattr(store, "put", slow_put)
    req = service.RunRequest.create("all-MiniLM-L6-v2", TEXT)
    first, src1 = service.get_run_status(req, run_cache=store)  # returns while the write is held
    assert src1 == "model" and store.get(service.request_key(req, loader.get_loaded(req.model))) is None
    service._MEMORY.clear()  # as if another thread's LRU had no copy: must go to the store
    threading.Timer(0.3, release.set).start()
    second, src2 = service.get_run_status(req, run_cache=store)
    assert src2 == "disk" and model_calls == [TEXT]
    np.testing.assert_array_equal(first.weights, second.weights)
    assert first.source_tokens == second.source_tokens


def test_cache_survives_a_new_process(store, tmp_path):
    req = service.RunRequest.create("all-MiniLM-L6-v2", TEXT, "It slept.")
    run = service.get_run(req, run_cache=store)
    service.flush_writes()  # stored behind the response: wait before another process looks
    code = (
        "import sys; from models import service, cache;"
        "req = service.RunRequest.create('all-MiniLM-L6-v2', sys.argv[1], 'It slept.');"
        "run, src = service.get_run_status(req, run_cache=cache.RunCache(sys.argv[2]));"
        "print(src, float(run.weights.astype('float32').sum()))"
    )
    out = subprocess.run([sys.executable, "-c", code, TEXT, str(tmp_path / "cache")], cwd=ROOT,
                         capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    src, total = out.stdout.split()
    assert src == "disk"
    assert float(total) == pytest.approx(float(run.weights.astype("float32").sum()), rel=1e-6)


def test_corrupted_entry_is_recomputed(store, model_calls, tmp_path):
    req = service.RunRequest.create("all-MiniLM-L6-v2", "word " * 120)  # large: stored as a file
    good = service.get_run(req, run_cache=store)
    service.flush_writes()
    files = [p for p in (tmp_path / "cache").rglob("*.val")]
    assert files, "a large run is stored in a file of its own"
    for f in files:
        data = bytearray(f.read_bytes())
        data[len(data) // 2: len(data) // 2 + 64] = b"\xff" * 64
        f.write_bytes(bytes(data))
    service.clear_memory()
    again, src = service.get_run_status(req, run_cache=store)
    assert src == "model" and len(model_calls) == 2
    np.testing.assert_array_equal(again.weights, good.weights)


def test_different_fingerprint_misses(store, model_calls, monkeypatch):
    req = service.RunRequest.create("all-MiniLM-L6-v2", TEXT)
    service.get_run(req, run_cache=store)
    service.clear_memory()
    minilm = loader.get_loaded("all-MiniLM-L6-v2")
    monkeypatch.setattr(minilm, "fingerprint", "0" * 32)
    _, src = service.get_run_status(req, run_cache=store)
    assert src == "model" and len(model_calls) == 2


def test_head_mask_is_part_of_the_key(store, model_calls):
    mask = np.ones((6, 12))
    mask[2, 3] = 0
    plain = service.get_run(service.RunRequest.create("all-MiniLM-L6-v2", TEXT), run_cache=store)
    pruned = service.get_run(service.RunRequest.create("all-MiniLM-L6-v2", TEXT, head_mask=mask), run_cache=store)
    ones = service.get_run(service.RunRequest.create("all-MiniLM-L6-v2", TEXT, head_mask=np.ones((6, 12))),
                           run_cache=store)
    assert len(model_calls) == 2  # the all-ones mask is the plain run
    assert ones is plain
    np.testing.assert_array_equal(pruned.head_mask, mask.astype(np.float32))
    assert not np.array_equal(pruned.weights[3:], plain.weights[3:])


def test_precompute_cli(store, tmp_path, capsys):
    f = tmp_path / "texts.txt"
    f.write_text("The cat sat.\nA dog barked.\n\nThe cat sat.\nQuestion?\tAnswer.\n", encoding="utf-8")
    assert cli_main(["precompute", "--model", "all-MiniLM-L6-v2", "--no-progress", str(f)]) == 0
    assert "4 texts: 3 new, 1 already cached" in capsys.readouterr().out
    service.clear_memory()
    assert cli_main(["precompute", "--no-progress", str(f)]) == 0
    assert "4 texts: 0 new, 4 already cached" in capsys.readouterr().out
    assert cli_main(["precompute", "--model", "../../etc", str(f)]) == 2
    assert "Unknown model" in capsys.readouterr().err


def test_a_forked_child_does_not_wait_on_the_parents_pending_writes(store, monkeypatch):
    """gunicorn --preload forks workers: a write pending in the parent has no thread in the child."""
    import threading

    release = threading.Event()
    real_put = store.put
    monkeypatch.setattr(store, "put", lambda *a, **kw: release.wait(30) and real_put(*a, **kw))
    req = service.RunRequest.create("all-MiniLM-L6-v2", TEXT)
    service.get_run(req, run_cache=store)  # its write is held in the parent
    pid = os.fork()
    if pid == 0:  # child: must not block on the parent's pending write
        code = 1
        try:
            service.flush_writes(timeout=2)
            code = 0 if service._WRITES.pending() == 0 else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    release.set()
    service.flush_writes()
    assert os.waitstatus_to_exitcode(status) == 0
