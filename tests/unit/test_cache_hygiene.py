"""Disk hygiene of the run cache (issue 12, finding 7) and its directory mode (finding 4).

Partial value files (a full disk or kill -9 during a write) are removed at start and after
evictions; the size limit is capped by the free space; the status /healthz shows is the same
from every process (not one worker's own degraded flag); the directory is the user's only.
"""
from __future__ import annotations

import os
import stat
import time
from collections import namedtuple

import numpy as np

from models import cache as C

Usage = namedtuple("Usage", "total used free")


def _big_arrays():
    return {"w": np.arange(40_000, dtype=np.float32)}  # 160 kB: stored as a file, not inline


def test_partial_files_are_removed_at_start(tmp_path):
    store = C.RunCache(tmp_path / "c")
    assert store.put("k1", {"a": 1}, _big_arrays())
    kept = [p for p in (tmp_path / "c").rglob("*.val")]
    assert len(kept) == 1
    orphan = kept[0].parent / "0123456789abcdef.val"  # what a cut write leaves: a file, no row
    orphan.write_bytes(b"x" * 100_000)
    old = time.time() - 3600
    os.utime(orphan, (old, old))
    fresh = kept[0].parent / "fedcba9876543210.val"  # a write in progress elsewhere: too young
    fresh.write_bytes(b"y")
    again = C.RunCache(tmp_path / "c")
    assert not orphan.exists() and fresh.exists() and kept[0].exists()
    assert again.get("k1") is not None and again.shared_status()["partial_files_removed"] == 1


def test_partial_files_are_removed_when_a_write_fails(tmp_path, monkeypatch):
    store = C.RunCache(tmp_path / "c")
    assert store.put("k1", {"a": 1}, _big_arrays())
    cache = store._writer()
    orphan = next((tmp_path / "c").rglob("*.val")).parent / "00000000000000aa.val"
    orphan.write_bytes(b"z" * 1000)

    def full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cache, "set", full)
    assert store.put("k2", {"a": 2}, _big_arrays()) is False
    assert not orphan.exists()


def test_size_limit_is_capped_by_free_space(tmp_path, monkeypatch):
    monkeypatch.setattr(C.shutil, "disk_usage", lambda p: Usage(2 * 2**30, 2**30, 512 * 2**20))
    store = C.RunCache(tmp_path / "c", size_limit=4 * 2**30)
    # 512 MiB free, reserve 10% of 2 GiB: the limit is what fits, not the 4 GiB asked for
    assert store.configured_size_limit == 4 * 2**30
    assert 64 * 2**20 <= store.size_limit < 512 * 2**20
    assert store.shared_status()["size_limit"] == store.size_limit
    monkeypatch.setattr(C.shutil, "disk_usage", lambda p: Usage(2**40, 0, 2**39))
    assert C.RunCache(tmp_path / "d", size_limit=2**30).size_limit == 2**30


def test_shared_status_is_the_same_in_every_process(tmp_path):
    a, b = C.RunCache(tmp_path / "c"), C.RunCache(tmp_path / "c")
    a._degrade("write failed (OSError: a hiccup in this worker only)", writes_only=True)
    assert a.status()["ok"] is False  # this worker's own flag ...
    sa, sb = a.shared_status(), b.shared_status()
    assert sa["ok"] is True and sb["ok"] is True  # ... is not what /healthz reports
    assert sa["process_reason"] and sb["process_reason"] is None
    assert {k: sa[k] for k in ("ok", "reason", "entries")} == {k: sb[k] for k in ("ok", "reason", "entries")}


def test_cache_directory_is_private(tmp_path):
    old = os.umask(0o022)
    try:
        C.RunCache(tmp_path / "new" / "cache")
        existing = tmp_path / "loose"
        existing.mkdir(mode=0o755)
        os.chmod(existing, 0o755)
        C.RunCache(existing)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "new" / "cache").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(existing).st_mode) == 0o700
