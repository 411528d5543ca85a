"""models.cache: bytes-only, checksummed, corruption-tolerant shared run cache; cache keys."""
import errno
import hashlib
import logging
import os
import pickle
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import diskcache
import numpy as np
import pytest

from models import cache as cache_mod
from models.cache import RunCache, default_cache, default_cache_dir, run_key, stable_hash
from models.run import AttentionRun, Block, Token, Truncation

ROOT = Path(__file__).resolve().parents[2]
KEY = hashlib.sha256(b"some run").hexdigest()


def small_payload():
    """meta + arrays under 32 KiB: stored inline in the SQLite row."""
    meta = {"schema": 1, "text": "Größe — 東京 🐈 «ok»", "text_pair": None, "nested": {"a": [1, 2.5, None, True]},
            "tokens": [{"piece": "##ing", "start": 3, "end": None}]}
    scores = np.array([[0.0, -np.inf], [1.5, -np.inf]], dtype=np.float16)
    arrays = {
        "weights": np.array([[0.25, 0.75], [1.0, 0.0]], dtype=np.float16),
        "scores": scores,
        "f32": np.array([np.nan, np.inf, -np.inf, -0.0, 1e-30], dtype=np.float32),
        "ids": np.arange(7, dtype=np.int64),
        "i8": np.array([-128, 127], dtype=np.int8),
        "mask": np.array([True, False]),
        "scalar": np.array(3.5, dtype=np.float32),
        "empty": np.zeros((0, 4), dtype=np.float16),
        "fortran": np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)),
        "big_endian": np.arange(3, dtype=">f4"),
    }
    return meta, arrays


def large_payload(seed=0):
    """> 32 KiB: diskcache writes it to a .val file of its own."""
    rng = np.random.default_rng(seed)
    w = rng.random((2, 4, 40, 40)).astype(np.float16)
    s = w.copy()
    s[..., 20:] = -np.inf
    return {"schema": 1, "text": "word " * 40}, {"block0.weights": w, "block0.scores": s}


def assert_same(got, meta, arrays):
    assert got is not None
    got_meta, got_arrays = got
    assert got_meta == meta
    assert list(got_arrays) == list(arrays)
    for name, arr in arrays.items():
        g = got_arrays[name]
        assert isinstance(g, np.ndarray)
        assert g.dtype == arr.dtype, name
        assert g.shape == arr.shape, name
        np.testing.assert_array_equal(g, arr)  # NaN == NaN, -inf == -inf
        assert g.tobytes() == arr.tobytes(), name  # bit for bit (-0.0, NaN payload)


def val_files(directory):
    return sorted(Path(directory).rglob("*.val"))


def cache_warnings(caplog):
    return [r for r in caplog.records if r.name == "models.cache" and r.levelno == logging.WARNING]


def cache_infos(caplog):
    return [r for r in caplog.records if r.name == "models.cache" and r.levelno == logging.INFO]


class Counter:
    def __init__(self, payload):
        self.payload, self.calls = payload, 0

    def __call__(self):
        self.calls += 1
        return self.payload


@pytest.fixture
def store(tmp_path):
    c = RunCache(tmp_path / "cache")
    yield c
    c.close()


# ---- round trip ------------------------------------------------------------------------------
def test_round_trip_small_and_large(store):
    meta, arrays = small_payload()
    assert store.put(KEY, meta, arrays) is True
    assert_same(store.get(KEY), meta, arrays)
    assert not val_files(store.directory)  # small: inline in SQLite
    meta2, arrays2 = large_payload()
    assert store.put("b" * 64, meta2, arrays2) is True
    assert_same(store.get("b" * 64), meta2, arrays2)
    assert len(val_files(store.directory)) == 1  # large: a file


def test_returned_arrays_are_fresh_and_writable(store):
    meta, arrays = small_payload()
    store.put(KEY, meta, arrays)
    first = store.get(KEY)
    first[1]["ids"][0] = 99
    first[0]["text"] = "changed"
    again = store.get(KEY)
    assert again[1]["ids"][0] == 0 and again[0]["text"] == meta["text"]


def test_missing_key_is_none(store):
    assert store.get("0" * 64) is None
    assert store.get_json("0" * 64) is None
    assert store.get_json("0" * 64, default={"x": 1}) == {"x": 1}


def test_get_or_compute_computes_once(store):
    meta, arrays = small_payload()
    compute = Counter((meta, arrays))
    m1, a1, hit1 = store.get_or_compute(KEY, compute)
    m2, a2, hit2 = store.get_or_compute(KEY, compute)
    assert (hit1, hit2) == (False, True)
    assert compute.calls == 1
    assert m1 == m2 == meta
    assert_same((m2, a2), meta, arrays)


def test_meta_of_a_miss_equals_meta_of_a_hit(store):
    meta = {"shape": (2, 3), "pairs": [(1, 2)]}
    m1, _, _ = store.get_or_compute(KEY, lambda: (meta, {}))
    m2, _, hit = store.get_or_compute(KEY, lambda: pytest.fail("must hit"))
    assert hit and m1 == m2 == {"shape": [2, 3], "pairs": [[1, 2]]}


def test_compute_errors_propagate_and_nothing_is_stored(store):
    def boom():
        raise RuntimeError("model failed")

    with pytest.raises(RuntimeError, match="model failed"):
        store.get_or_compute(KEY, boom)
    assert store.get(KEY) is None


def test_attention_run_round_trip(store):
    tokens = (Token("[CLS]", 101, None, None, 0, True, False),
              Token("ca", 1, 0, 2, 0, False, False, 0), Token("##ts", 2, 2, 4, 0, False, True, 0),
              Token("[SEP]", 102, None, None, 0, True, False))
    w = np.full((2, 3, 4, 4), 0.25, dtype=np.float16)
    s = np.zeros((2, 3, 4, 4), dtype=np.float16)
    s[..., 3] = -np.inf
    run = AttentionRun(model_name="tiny", model_fingerprint="f" * 32, architecture="encoder", text="cats ünïcode",
                       text_pair=None, source_tokens=tokens, target_tokens=(),
                       blocks=(Block("self", "self", "source", "source", w, s),),
                       truncations=(Truncation("source", 0, 4, 10, 3, 4),),
                       head_mask=np.ones((2, 3), dtype=np.float32), outputs={"embedding": np.ones(8, np.float32)})
    store.put(KEY, *run.to_payload())
    back = AttentionRun.from_payload(*store.get(KEY))
    assert back.source_tokens == run.source_tokens and back.truncations == run.truncations
    assert back.text == run.text and back.blocks[0].kind == "self"
    np.testing.assert_array_equal(back.weights, w)
    np.testing.assert_array_equal(back.main.scores, s)
    np.testing.assert_array_equal(back.head_mask, run.head_mask)
    np.testing.assert_array_equal(back.outputs["embedding"], run.outputs["embedding"])


# ---- sharing -----------------------------------------------------------------------------------
def test_new_instance_on_same_directory_reads_entry(tmp_path):
    meta, arrays = large_payload()
    RunCache(tmp_path / "c").put(KEY, meta, arrays)
    other = RunCache(str(tmp_path / "c"))
    assert_same(other.get(KEY), meta, arrays)
    _, _, hit = other.get_or_compute(KEY, lambda: pytest.fail("must hit"))
    assert hit


def test_another_process_reads_and_writes_the_same_entries(tmp_path):
    meta, arrays = large_payload(seed=3)
    store = RunCache(tmp_path / "c")
    store.put(KEY, meta, arrays)
    digest = hashlib.sha256(arrays["block0.weights"].tobytes() + arrays["block0.scores"].tobytes()).hexdigest()
    code = (
        "import sys, hashlib, numpy as np; from models.cache import RunCache;"
        "c = RunCache(sys.argv[1]); m, a = c.get(sys.argv[2]);"
        "print(hashlib.sha256(a['block0.weights'].tobytes() + a['block0.scores'].tobytes()).hexdigest(), m['text']);"
        "c.put('written-by-child', {'pid': 1}, {'x': np.arange(3)})"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "c"), KEY], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    got_digest, text = out.stdout.split(maxsplit=1)
    assert got_digest == digest and text.strip() == meta["text"].strip()
    assert_same(store.get("written-by-child"), {"pid": 1}, {"x": np.arange(3)})


def test_default_cache_is_one_instance_per_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTN_CACHE_DIR", str(tmp_path / "env-dir"))
    assert default_cache_dir() == str(tmp_path / "env-dir")
    a = default_cache()
    assert a is default_cache() and a.directory == str(tmp_path / "env-dir")
    b = default_cache(tmp_path / "other")
    assert b is not a and b is default_cache(str(tmp_path / "other"))


def test_default_directory_without_env(tmp_path, monkeypatch):
    monkeypatch.delenv("ATTN_CACHE_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert default_cache_dir() == str(tmp_path / ".cache" / "attention-dashboard")


def test_size_limit_from_env(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("ATTN_CACHE_SIZE_MB", "16")
    assert RunCache(tmp_path / "a").size_limit == 16 * 2**20
    assert RunCache(tmp_path / "b", size_limit=12345).size_limit == 12345
    monkeypatch.setenv("ATTN_CACHE_SIZE_MB", "lots")
    assert RunCache(tmp_path / "c").size_limit == 4 * 2**30
    assert any("ATTN_CACHE_SIZE_MB" in r.getMessage() for r in cache_warnings(caplog))
    monkeypatch.delenv("ATTN_CACHE_SIZE_MB")
    assert RunCache(tmp_path / "d").size_limit == 4 * 2**30


def test_size_limit_evicts_old_entries_without_errors(tmp_path):
    # diskcache culls up to cull_limit (10) least recently stored entries once over the limit
    store = RunCache(tmp_path / "c", size_limit=4 * 2**20)
    blobs = {f"k{i}": np.full(100_000, i, dtype=np.float32) for i in range(20)}  # 400 KB each
    for k, v in blobs.items():
        assert store.put(k, {"i": k}, {"v": v})
        assert sum(f.stat().st_size for f in val_files(store.directory)) <= 4 * 2**20 + 400_200
    present = [k for k in blobs if store.get(k) is not None]
    assert "k19" in present and "k0" not in present
    assert_same(store.get("k19"), {"i": "k19"}, {"v": blobs["k19"]})


def test_empty_cache_is_truthy(store):
    # services write `run_cache or default_cache()`: an empty cache must not fall through
    assert bool(store) is True


# ---- corruption --------------------------------------------------------------------------------
def _stored_file(store):
    files = val_files(store.directory)
    assert len(files) == 1, files
    return files[0]


def _entry_gone(store, key):
    return key not in store._cache


def test_overwritten_file_is_discarded_and_recomputed(store, caplog):
    meta, arrays = large_payload()
    compute = Counter((meta, arrays))
    store.get_or_compute(KEY, compute)
    f = _stored_file(store)
    data = bytearray(f.read_bytes())
    mid = len(data) // 2
    data[mid:mid + 64] = bytes(255 - b for b in data[mid:mid + 64])
    f.write_bytes(bytes(data))

    assert store.get(KEY) is None
    assert _entry_gone(store, KEY) and not f.exists()
    assert any(KEY in r.getMessage() and "checksum" in r.getMessage() for r in cache_warnings(caplog))
    m, a, hit = store.get_or_compute(KEY, compute)
    assert not hit and compute.calls == 2
    assert_same(store.get(KEY), meta, arrays)


def test_truncated_file_is_discarded_and_recomputed(store):
    meta, arrays = large_payload()
    compute = Counter((meta, arrays))
    store.get_or_compute(KEY, compute)
    f = _stored_file(store)
    size = f.stat().st_size
    with open(f, "r+b") as fh:
        fh.truncate(size // 3)
    assert store.get(KEY) is None and _entry_gone(store, KEY)
    _, _, hit = store.get_or_compute(KEY, compute)
    assert not hit and compute.calls == 2
    _, _, hit = store.get_or_compute(KEY, compute)
    assert hit and compute.calls == 2


@pytest.mark.parametrize("cut", [0, 10, cache_mod.HEADER_SIZE])
def test_file_cut_to_nothing_or_to_the_header(store, cut):
    store.put(KEY, *large_payload())
    f = _stored_file(store)
    f.write_bytes(f.read_bytes()[:cut])
    assert store.get(KEY) is None and _entry_gone(store, KEY)


def test_deleted_file_is_a_miss(store):
    store.put(KEY, *large_payload())
    _stored_file(store).unlink()
    compute = Counter(large_payload())
    _, _, hit = store.get_or_compute(KEY, compute)
    assert not hit and compute.calls == 1


def test_inline_garbage_is_discarded(store, caplog):
    meta, arrays = small_payload()
    store.put(KEY, meta, arrays)
    store._cache.set(KEY, b"garbage")
    assert store.get(KEY) is None
    assert _entry_gone(store, KEY)
    assert cache_warnings(caplog)
    compute = Counter((meta, arrays))
    _, _, hit = store.get_or_compute(KEY, compute)
    assert not hit and compute.calls == 1


def test_inline_bit_flip_is_detected(store):
    meta, arrays = small_payload()
    store.put(KEY, meta, arrays)
    raw = bytearray(store._cache.get(KEY))
    for pos in (9, 15, 30, cache_mod.HEADER_SIZE + 10, len(raw) - 1):  # version, length, digest, index, array
        bad = bytearray(raw)
        bad[pos] ^= 0x01
        store._cache.set(KEY, bytes(bad))
        assert store.get(KEY) is None, pos
        assert _entry_gone(store, KEY)
    store._cache.set(KEY, bytes(raw) + b"\0")  # padded
    assert store.get(KEY) is None


def test_sha256_valid_blob_of_unknown_version_is_rejected(store):
    prefix = cache_mod._PREFIX.pack(cache_mod.MAGIC, 99, cache_mod.KIND_RUN, 0, 4)
    body = b"\0\0\0\0"
    blob = prefix + hashlib.sha256(prefix + body).digest() + body
    store._cache.set(KEY, blob)
    assert store.get(KEY) is None and _entry_gone(store, KEY)


def test_diskcache_errors_while_reading_are_a_miss(store, monkeypatch, caplog):
    store.put(KEY, *small_payload())

    def broken(*a, **kw):
        raise sqlite3.DatabaseError("database disk image is malformed")

    monkeypatch.setattr(store._cache, "get", broken)
    monkeypatch.setattr(store._cache, "delete", broken)  # the delete failing too is ignored
    assert store.get(KEY) is None
    assert store.get_json(KEY) is None
    assert any("malformed" in r.getMessage() for r in cache_warnings(caplog))
    compute = Counter(small_payload())
    _, _, hit = store.get_or_compute(KEY, compute)
    assert not hit and compute.calls == 1


@pytest.mark.parametrize("error", [diskcache.Timeout(), sqlite3.OperationalError("database is locked")])
def test_lock_timeouts_are_a_miss_or_a_skipped_write_not_damage(store, monkeypatch, error):
    store.put(KEY, *small_payload())

    def locked(*a, **kw):
        raise error

    with monkeypatch.context() as m:
        m.setattr(store._cache, "get", locked)
        m.setattr(store._cache, "set", locked)
        assert store.get(KEY) is None
        assert store.put("other", *small_payload()) is False
    assert store.get(KEY) is not None  # entry kept
    assert store.status()["ok"] is True  # not degraded
    assert store.put("other", *small_payload()) is True


# ---- never pickle --------------------------------------------------------------------------------
def test_stored_values_are_raw_bytes_blobs(store):
    store.put(KEY, *small_payload())
    store.put("large", *large_payload())
    store.put_json("json", {"a": 1})
    for k in (KEY, "large", "json"):
        raw = store._cache.get(k)
        assert type(raw) is bytes and raw.startswith(cache_mod.MAGIC)
    with sqlite3.connect(os.path.join(store.directory, "cache.db")) as con:
        modes = dict(con.execute("SELECT key, mode FROM Cache").fetchall())
    assert modes == {KEY: diskcache.core.MODE_RAW, "large": diskcache.core.MODE_BINARY,
                     "json": diskcache.core.MODE_RAW}
    assert _stored_file(store).read_bytes().startswith(cache_mod.MAGIC)


def test_pickle_bytes_are_rejected_without_unpickling(store, monkeypatch):
    def no_pickle(*a, **kw):
        raise AssertionError("pickle must never be used to load")

    monkeypatch.setattr(pickle, "loads", no_pickle)
    monkeypatch.setattr(pickle, "load", no_pickle)
    store._cache.set(KEY, pickle.dumps(small_payload(), protocol=pickle.HIGHEST_PROTOCOL))
    assert store.get(KEY) is None and _entry_gone(store, KEY)
    store._cache.set(KEY, pickle.dumps({"a": 1}, protocol=0))
    assert store.get_json(KEY) is None and _entry_gone(store, KEY)


class _Exploit:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def test_pickled_row_from_another_diskcache_user_is_not_unpickled(store, tmp_path):
    marker = tmp_path / "pwned"
    plain = diskcache.Cache(store.directory)  # default Disk: pickles non-bytes values
    plain.set(KEY, _Exploit(str(marker)))
    plain.set("large-pickle", [_Exploit(str(marker))] + [0] * 20000)  # pickled to a file
    plain.close()
    assert store.get(KEY) is None and _entry_gone(store, KEY)
    assert store.get("large-pickle") is None and _entry_gone(store, "large-pickle")
    assert store.get_json(KEY) is None
    assert not marker.exists()


def test_disk_refuses_to_store_anything_but_bytes(store):
    with pytest.raises(TypeError):
        store._cache.set(KEY, {"a": 1})
    with pytest.raises(TypeError):
        store._cache.set(KEY, "a str")
    with pytest.raises(TypeError):
        store._cache.set(("tuple", "key"), b"x")


def test_object_arrays_and_non_json_meta_are_refused(store):
    with pytest.raises(ValueError):
        store.put(KEY, {}, {"o": np.array([{"a": 1}], dtype=object)})
    with pytest.raises(TypeError):
        store.put(KEY, {"x": object()}, {})
    with pytest.raises(TypeError):
        store.put(b"bytes key", {}, {})
    with pytest.raises(TypeError):
        store.put_json(KEY, {"s": {1, 2}})
    assert store.get(KEY) is None


def test_get_or_compute_returns_an_unstorable_result(store):
    arrays = {"o": np.array([None], dtype=object)}
    meta, got, hit = store.get_or_compute(KEY, lambda: ({"a": 1}, arrays))
    assert not hit and got is arrays and meta == {"a": 1}
    assert store.get(KEY) is None


# ---- JSON values --------------------------------------------------------------------------------
def test_json_round_trip_and_corruption(store):
    value = {"scores": [[0.1, 0.2], [0.3, None]], "label": "ünï", "n": 3, "ok": True}
    assert store.put_json("imp", value) is True
    assert store.get_json("imp") == value
    assert store.put_json("null", None) and store.get_json("null", default="d") is None
    store._cache.set("imp", b"\x80\x04garbage")
    assert store.get_json("imp") is None and _entry_gone(store, "imp")
    raw = bytearray(cache_mod.encode_json(value))
    raw[-3] ^= 0x20
    store._cache.set("imp", bytes(raw))
    assert store.get_json("imp", default=[]) == [] and _entry_gone(store, "imp")


def test_run_and_json_entries_do_not_mix(store):
    store.put_json("k-json", {"a": 1})
    store.put("k-run", *small_payload())
    assert store.get("k-json") is None and store.get_json("k-run") is None
    assert store.get_json("k-json") == {"a": 1}  # a kind clash is a miss, not damage: kept
    assert store.get("k-run") is not None


# ---- degraded mode -------------------------------------------------------------------------------
def test_directory_that_cannot_be_created_works_uncached(tmp_path, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    store = RunCache(blocker / "cache")  # parent is a file: cannot be created, even as root
    meta, arrays = small_payload()
    compute = Counter((meta, arrays))
    for _ in range(3):
        m, a, hit = store.get_or_compute(KEY, compute)
        assert not hit and m == meta
    assert compute.calls == 3
    assert store.get(KEY) is None and store.put(KEY, meta, arrays) is False
    assert store.put_json(KEY, [1]) is False and store.get_json(KEY) is None and store.delete(KEY) is False
    status = store.status()
    assert status["ok"] is False and status["entries"] is None and status["reason"]
    assert status["directory"] == str(blocker / "cache")
    assert len(cache_warnings(caplog)) == 1  # warned once, not per request


def test_unusable_directory_recovers_after_retry_interval(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="models.cache")
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    store = RunCache(blocker / "cache", retry_interval=0)
    assert store.put(KEY, *small_payload()) is False
    blocker.unlink()
    assert store.put(KEY, *small_payload()) is True
    assert store.get(KEY) is not None
    assert store.status() == {"directory": str(blocker / "cache"), "ok": True, "reason": None, "entries": 1}
    assert len(cache_warnings(caplog)) == 1
    assert "works again" in cache_infos(caplog)[-1].getMessage()


def test_read_only_database_works_uncached(tmp_path, monkeypatch, caplog):
    def readonly(*a, **kw):
        raise sqlite3.OperationalError("attempt to write a readonly database")

    monkeypatch.setattr(diskcache, "Cache", readonly)
    store = RunCache(tmp_path / "c")
    compute = Counter(small_payload())
    assert store.get_or_compute(KEY, compute)[2] is False
    assert store.get_or_compute(KEY, compute)[2] is False and compute.calls == 2
    assert "readonly" in store.status()["reason"]
    assert len(cache_warnings(caplog)) == 1


def _read_only_check(d: Path) -> None:
    """A cache on a directory it cannot write computes every time and says why (runs as a user
    whom the directory's mode binds)."""
    import logging

    try:
        (d / "probe").write_bytes(b"")
    except OSError:
        pass
    else:
        raise AssertionError("the directory is writable: the check would prove nothing")
    seen = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record)
    logging.getLogger("models.cache").addHandler(handler)
    store = RunCache(d)
    compute = Counter(small_payload())
    assert store.get_or_compute(KEY, compute)[2] is False
    assert store.get_or_compute(KEY, compute)[2] is False and compute.calls == 2
    assert store.status()["ok"] is False
    assert len([r for r in seen if r.levelno >= logging.WARNING]) == 1


def test_read_only_directory_works_uncached(tmp_path):
    """chmod 0555 on the cache directory. As root (CI here), file modes do not bind, so the check
    runs in a forked child that has dropped to an unprivileged uid, inside a world-traversable
    directory."""
    base = Path(tempfile.mkdtemp(prefix="attn-ro-"))
    d = base / "ro"
    d.mkdir()
    base.chmod(0o755)
    d.chmod(0o555)
    try:
        if os.geteuid() != 0:
            _read_only_check(d)
            return
        pid = os.fork()
        if pid == 0:  # child: drop privileges, run the check, report through the exit code
            code = 1
            try:
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
                _read_only_check(d)
                code = 0
            except BaseException:  # noqa: BLE001 - reported to the parent as the exit code
                import traceback

                traceback.print_exc()
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, "the read-only check failed in the unprivileged child"
    finally:
        d.chmod(0o755)
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize("error", [OSError(errno.ENOSPC, "No space left on device"),
                                   PermissionError(errno.EACCES, "Permission denied"),
                                   sqlite3.OperationalError("database or disk is full")])
def test_failing_writes_turn_off_writes_once(store, monkeypatch, caplog, error):
    meta, arrays = small_payload()
    store.put("old", meta, arrays)

    def fail(*a, **kw):
        raise error

    monkeypatch.setattr(store._cache, "set", fail)
    compute = Counter((meta, arrays))
    for _ in range(3):
        m, a, hit = store.get_or_compute(KEY, compute)
        assert not hit and m == meta
    assert compute.calls == 3
    assert store.put(KEY, meta, arrays) is False and store.put_json("j", 1) is False
    assert len(cache_warnings(caplog)) == 1
    status = store.status()
    assert status["ok"] is False and "write failed" in status["reason"] and status["entries"] == 1
    assert_same(store.get("old"), meta, arrays)  # existing, checksummed entries still serve


def test_writes_resume_after_retry_interval(tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="models.cache")
    store = RunCache(tmp_path / "c", retry_interval=0)

    def full(*a, **kw):
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(store._cache, "set", full)
        assert store.put(KEY, *small_payload()) is False
        assert store.put(KEY, *small_payload()) is False
    assert store.put(KEY, *small_payload()) is True
    assert store.status()["ok"] is True and store.get(KEY) is not None
    warnings = [r.getMessage() for r in cache_warnings(caplog)]
    assert len(warnings) == 1 and "No space" in warnings[0]
    assert "works again" in cache_infos(caplog)[-1].getMessage()


def test_status_of_a_working_cache(store):
    assert store.status() == {"directory": store.directory, "ok": True, "reason": None, "entries": 0}
    store.put(KEY, *small_payload())
    store.put_json("j", [1])
    assert store.status()["entries"] == 2
    assert store.delete(KEY) is True and store.delete(KEY) is False
    assert store.status()["entries"] == 1


# ---- keys ----------------------------------------------------------------------------------------
BASE = dict(model_fingerprint="m" * 32, tokenizer_fingerprint="t" * 32, text="The cat sat.", text_pair=None,
            options={"max_tokens": 128, "scores": True}, head_mask=None, schema=1)


def _mask(off=None):
    m = np.ones((6, 12), dtype=np.float32)
    if off:
        m[off] = 0
    return m


@pytest.mark.parametrize("change", [
    {"model_fingerprint": "n" * 32},
    {"tokenizer_fingerprint": "u" * 32},
    {"text": "The cat sat!"},
    {"text": "The cat sat. "},
    {"text_pair": "It slept."},
    {"text_pair": ""},
    {"options": {"max_tokens": 64, "scores": True}},
    {"options": {"max_tokens": None, "scores": True}},
    {"options": {"max_tokens": 128}},
    {"options": {"max_tokens": 128, "scores": 1}},
    {"head_mask": _mask()},
    {"head_mask": _mask((2, 3))},
    {"head_mask": _mask().reshape(12, 6)},
    {"schema": 2},
])
def test_run_key_changes_with_every_input(change):
    base = run_key(**BASE)
    assert run_key(**{**BASE, **change}) != base


def test_run_key_is_canonical():
    k = run_key(**BASE)
    assert len(k) == 64 and int(k, 16) >= 0
    assert run_key(**{**BASE, "options": {"scores": True, "max_tokens": 128}}) == k
    m = _mask((2, 3))
    with_array = run_key(**{**BASE, "head_mask": m})
    assert run_key(**{**BASE, "head_mask": m.astype(np.float64)}) == with_array
    assert run_key(**{**BASE, "head_mask": m.tolist()}) == with_array
    assert run_key(**{**BASE, "head_mask": np.asfortranarray(m)}) == with_array
    assert run_key(**{**BASE, "head_mask": _mask((2, 4))}) != with_array
    assert run_key(**{**BASE, "text": "東京"}) == run_key(**{**BASE, "text": "東京"})


def test_run_key_is_the_same_in_another_process():
    code = ("from models.cache import run_key;"
            "print(run_key(model_fingerprint='m', tokenizer_fingerprint='t', text='cät', text_pair=None,"
            " options={'b': 1, 'a': [1, 2]}, head_mask=None, schema=1))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "123"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == run_key(model_fingerprint="m", tokenizer_fingerprint="t", text="cät",
                                         text_pair=None, options={"a": [1, 2], "b": 1}, head_mask=None, schema=1)


def test_stable_hash():
    h = stable_hash({"a": 1, "b": [1, 2]})
    assert len(h) == 64
    assert stable_hash({"b": (1, 2), "a": 1}) == h
    assert stable_hash({"a": np.int64(1), "b": [np.int32(1), 2]}) == h
    assert stable_hash({"a": True, "b": [1, 2]}) != h
    assert stable_hash({"a": 1.0, "b": [1, 2]}) != h
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert stable_hash(arr) == stable_hash(arr.copy()) == stable_hash(arr.astype(">f4"))
    assert stable_hash(arr) != stable_hash(arr.reshape(3, 2))
    assert stable_hash(arr) != stable_hash(arr.astype(np.float16))
    assert stable_hash(b"ab") != stable_hash("ab")
    for bad in ({1: "int key"}, object(), {"x": {1, 2}}, float("nan")):
        with pytest.raises((TypeError, ValueError)):
            stable_hash(bad)
