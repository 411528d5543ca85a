"""The shared on-disk run cache: (meta, arrays) pairs stored as checksummed bytes, never pickle.

    cache = RunCache(directory=None)        a diskcache.Cache in `directory` (default: default_cache_dir())
    cache.get(key) -> (meta, arrays) | None
    cache.put(key, meta, arrays) -> bool    True when stored
    cache.get_or_compute(key, compute) -> (meta, arrays, hit)
    cache.get_json(key, default=None) / cache.put_json(key, obj) -> bool    small JSON values
    cache.delete(key) -> bool
    cache.status() -> {"directory", "ok", "reason", "entries"}    for the health endpoint
    default_cache(directory=None) -> RunCache    one lazily created instance per directory and process
    run_key(model_fingerprint=..., tokenizer_fingerprint=..., text=..., text_pair=..., options=...,
            head_mask=..., schema=...) -> str    sha256 hex
    stable_hash(obj) -> str                      sha256 hex of a canonical JSON form of obj

`meta` is a JSON-able dict and `arrays` a dict of named numpy arrays: exactly what
`AttentionRun.to_payload()` returns and `AttentionRun.from_payload()` takes. This module knows
nothing of runs, torch or Dash.

Sharing. One directory is shared by every gunicorn worker process: diskcache keeps the index in
SQLite (WAL) and is thread- and process-safe; a RunCache made before a fork works after it
(diskcache reopens its connection in the new process). The cache is bounded by `size_limit`
(default 4 GiB, env ATTN_CACHE_SIZE_MB); the least recently stored entries are evicted first.
Two workers missing the same key at once both compute it; the last write wins (same bytes).
Keep other diskcache users (e.g. Dash's DiskcacheManager, which pickles) in another directory:
the size limit and eviction settings are per directory.

Storage format (one entry = one `bytes` value). diskcache's `Disk.store` writes a `bytes` value
as-is, without pickling: inline in the SQLite row below 32 KiB (MODE_RAW), else as a file
`<directory>/xx/yy/<hex>.val` (MODE_BINARY). This module gives diskcache nothing but `bytes`
and `str` keys, and its `_BytesOnlyDisk` refuses to store anything else and refuses to unpickle
anything it reads (a pickled row written by another diskcache user is treated as corrupt).

    offset  size  field (integers little-endian)
    0       8     magic b"ATTNBLOB"
    8       2     format version, uint16 = 2
    10      1     kind, uint8: 1 = run (meta + arrays), 2 = JSON value
    11      1     reserved, 0
    12      8     body length in bytes, uint64
    20      4     CRC-32 (zlib.crc32) of bytes 0..19 followed by the body, uint32
    24      ...   body:
                    uint32 n, then n bytes of JSON (ASCII, non-ASCII characters escaped), the index:
                      kind 1: {"meta": <meta>, "arrays": [[name, nbytes], ...]}
                      kind 2: {"value": <obj>}
                    then, for kind 1, each array in index order: nbytes of .npy
                    (np.save(..., allow_pickle=False); read with np.load(..., allow_pickle=False))

Reading checks magic, version, kind, length and checksum before parsing anything, so a blob
that was truncated, overwritten, is someone else's (pickle, garbage) or was stored by a future
format version is never half-read. The checksum is there to catch damage (a torn write, a bad
disk, a file overwritten by mistake), which CRC-32 detects as well as a cryptographic hash;
neither would stop someone who can write the cache directory (they could recompute either), and
that is why nothing read from the cache is ever unpickled or executed. CRC-32 costs 2.7 ms on a
200-token MiniLM run (11 MB) where sha256 took 6.4 ms, most of a disk hit.

Failure policy: the cache is an optimisation and never an error for the user.
- A bad entry (CRC-32 mismatch, unparsable, truncated or overwritten file, any exception from
  diskcache while reading) is logged as a warning, deleted (failures of the delete ignored) and
  reported as a miss, so the caller recomputes. Never partial data.
- An unusable directory (cannot be created or opened, read-only) puts the cache in degraded
  mode: get returns None, put is a no-op. A failing write (disk full, permission) turns off
  writes; reads of existing, checksummed entries go on. Each degradation is logged once as a
  warning and shown by status(); the cache tries again every `retry_interval` seconds and
  logs (info) when it works again. A busy database (lock timeout) is a miss / a skipped write,
  not damage and not degradation.
- Caller bugs are not swallowed by put/put_json: meta or values that are not JSON-able, arrays
  of object dtype and non-str keys raise TypeError/ValueError. get_or_compute still returns
  what compute produced when it cannot be stored (and logs the error).

Meta goes through JSON: tuples come back as lists and dict keys as str. get_or_compute returns
that JSON form on a miss too, so a hit and a miss give equal meta. Arrays keep dtype, shape and
values (float16, -inf, NaN included) and come back as new writable arrays.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import os
import shutil
import sqlite3
import struct
import tempfile
import threading
import time
import zlib
from typing import Any, Callable

import diskcache
import numpy as np
from diskcache.core import MODE_BINARY, MODE_RAW, UNKNOWN

import settings

log = logging.getLogger(__name__)

DEFAULT_DIR = os.path.join(".", ".cache", "attention-dashboard")
DEFAULT_SIZE_MB = 4096  # 4 GiB
DEFAULT_RETRY_INTERVAL = 60.0  # seconds between attempts to leave degraded mode
SQLITE_TIMEOUT = 10.0  # seconds a worker waits for the SQLite lock before giving up

MAGIC = b"ATTNBLOB"
FORMAT_VERSION = 2  # 1 had a sha256 digest (52-byte header); its entries now read as corrupt: a miss
KIND_RUN = 1
KIND_JSON = 2
_PREFIX = struct.Struct("<8sHBBQ")  # magic, version, kind, reserved, body length: 20 bytes
_DIGEST = struct.Struct("<I")  # CRC-32 (zlib) of the prefix followed by the body
HEADER_SIZE = _PREFIX.size + _DIGEST.size  # 24
_INDEX_LEN = struct.Struct("<I")

Meta = dict
Arrays = dict  # dict[str, np.ndarray]


class CorruptEntry(ValueError):
    """A stored value that is not a valid blob of the expected kind."""


class _WrongKind(CorruptEntry):
    """A valid blob of another kind (a run read as JSON or the reverse): a key clash, not damage."""


# ---- configuration ---------------------------------------------------------------------------
def default_cache_dir() -> str:
    """Env ATTN_CACHE_DIR, else ./.cache/attention-dashboard; made absolute (at call time)."""
    raw = settings.get("ATTN_CACHE_DIR") or DEFAULT_DIR
    return os.path.abspath(os.path.expanduser(raw))


def default_size_limit() -> int:
    """Bytes: env ATTN_CACHE_SIZE_MB (MiB, a positive number), else 4 GiB."""
    raw = settings.get("ATTN_CACHE_SIZE_MB")
    if raw:
        try:
            mb = float(raw)
            if mb > 0:
                return int(mb * 2**20)
        except ValueError:
            pass
        log.warning("ATTN_CACHE_SIZE_MB=%r is not a positive number; using %d MB", raw, DEFAULT_SIZE_MB)
    return DEFAULT_SIZE_MB * 2**20


MIN_FREE_BYTES = 64 * 2**20   # below this the cache reports itself degraded
CLEAN_EVERY_PUTS = 64         # puts between two sweeps for partial files


def secure_dir(path: str) -> None:
    """Create `path` (and parents) readable by this user only (0700) and tighten it if it exists
    and is ours: the cache holds every text anyone ran."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    try:
        st = os.stat(path)
        if st.st_uid == os.getuid() and (st.st_mode & 0o777) != 0o700:
            os.chmod(path, 0o700)
    except OSError as exc:
        log.warning("cannot restrict %s to its owner: %s", path, _describe(exc))


def capped_size_limit(directory: str, configured: int) -> int:
    """The size limit actually used: `configured`, but no more than what the disk can hold, i.e.
    what the cache already uses plus the free space minus a reserve (10% of the disk, at most
    1 GiB), and at least 64 MiB. A 4 GiB default on a 2 GiB disk would otherwise never evict
    before the disk is full."""
    try:
        usage = shutil.disk_usage(directory)
    except OSError:
        return configured
    used = _dir_bytes(directory)
    reserve = min(2**30, usage.total // 10)
    room = max(64 * 2**20, used + usage.free - reserve)
    if room < configured:
        log.warning("cache size limit %d MiB capped to %d MiB by the free space of %s",
                    configured // 2**20, room // 2**20, directory)
    return int(min(configured, room))


def _dir_bytes(directory: str) -> int:
    total = 0
    for root, _dirs, files in os.walk(directory):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


def clean_partial_files(cache: diskcache.Cache, min_age: float = 60.0) -> int:
    """Delete value files no index row points at (a write cut by a full disk or a kill -9 leaves
    them; diskcache never counts or evicts them). Only files older than `min_age` seconds: a
    write in progress in another worker has its file but not yet its row. Returns the count."""
    directory = cache.directory
    try:
        referenced = {row[0] for row in cache._sql("SELECT filename FROM Cache WHERE filename IS NOT NULL")}
    except Exception as exc:
        log.debug("run cache %s: cannot list files (%s)", directory, _describe(exc))
        return 0
    now, removed = time.time(), 0
    for root, _dirs, files in os.walk(directory):
        for name in files:
            if not name.endswith(".val"):
                continue
            full = os.path.join(root, name)
            rel = os.path.relpath(full, directory)
            if rel in referenced:
                continue
            try:
                if now - os.lstat(full).st_mtime >= min_age:
                    os.unlink(full)
                    removed += 1
            except OSError:
                pass
    if removed:
        log.warning("run cache %s: removed %d partial file(s) no entry points at", directory, removed)
    return removed


# ---- keys ------------------------------------------------------------------------------------
def _canonical(obj: Any) -> Any:
    """A JSON-able form of obj with one spelling per value (numpy scalars/arrays, bytes, tuples)."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (int, float)):
        return obj
    if isinstance(obj, np.generic):
        return _canonical(obj.item())
    if isinstance(obj, (list, tuple)):
        return [_canonical(x) for x in obj]
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, str):
                raise TypeError(f"stable_hash: dict keys must be str, not {type(k).__name__} ({k!r})")
            out[k] = _canonical(v)
        return out
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise TypeError("stable_hash: object arrays are not hashable")
        arr = np.ascontiguousarray(obj)
        if arr.dtype.byteorder == ">":
            arr = arr.astype(arr.dtype.newbyteorder("<"))
        return {"__ndarray__": {"dtype": arr.dtype.str, "shape": list(arr.shape),
                                "sha256": hashlib.sha256(arr.tobytes()).hexdigest()}}
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return {"__bytes__": hashlib.sha256(bytes(obj)).hexdigest()}
    raise TypeError(f"stable_hash: cannot hash a {type(obj).__name__}")


def canonical_json(obj: Any) -> str:
    """Sorted keys, no whitespace, ASCII only, NaN/inf refused: the same text in every process."""
    return json.dumps(_canonical(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False)


def stable_hash(obj: Any) -> str:
    """sha256 hex of the canonical JSON of obj: dicts (str keys, order ignored), lists/tuples
    (same), str, int, float, bool, None, numpy scalars and arrays (dtype + shape + bytes), bytes.
    Types matter: 1, 1.0 and True hash differently. Raises TypeError for anything else."""
    return hashlib.sha256(canonical_json(obj).encode("ascii")).hexdigest()


def run_key(*, model_fingerprint: str, tokenizer_fingerprint: str, text: str, text_pair: str | None,
            options: dict, head_mask: np.ndarray | None, schema: int) -> str:
    """Cache key of one model run: sha256 hex over every input that changes the run.

    head_mask: [layers, heads] of the main block or None; keyed by its shape and float32
    little-endian bytes (a None mask and an all-ones mask are different keys: normalise first).
    options: JSON-able dict (e.g. {"max_tokens": 512}), order of keys ignored.
    """
    if head_mask is None:
        mask = None
    else:
        arr = np.ascontiguousarray(np.asarray(head_mask, dtype="<f4"))
        mask = {"shape": list(arr.shape), "float32": arr.tobytes().hex()}
    return stable_hash({
        "key": "attention-run",
        "schema": int(schema),
        "model_fingerprint": str(model_fingerprint),
        "tokenizer_fingerprint": str(tokenizer_fingerprint),
        "text": text,
        "text_pair": text_pair,
        "options": dict(options or {}),
        "head_mask": mask,
    })


# ---- blob format -----------------------------------------------------------------------------
def _dump_json(obj: Any) -> bytes:
    # ensure_ascii: lone surrogates from odd input survive; NaN allowed (Python reads it back)
    return json.dumps(obj, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def _seal(kind: int, parts: list[bytes]) -> bytes:
    length = sum(len(p) for p in parts)
    prefix = _PREFIX.pack(MAGIC, FORMAT_VERSION, kind, 0, length)
    crc = zlib.crc32(prefix)
    for p in parts:
        crc = zlib.crc32(p, crc)
    return b"".join([prefix, _DIGEST.pack(crc), *parts])


def json_form(meta: Meta) -> Meta:
    """meta as a later cache hit returns it (tuples become lists, keys strings, ...)."""
    return json.loads(_dump_json(meta))


def encode_run(meta: Meta, arrays: Arrays) -> bytes:
    """One blob for (meta, arrays). Raises TypeError/ValueError for what cannot be stored."""
    if not isinstance(meta, dict):
        raise TypeError(f"meta must be a dict, not {type(meta).__name__}")
    if not isinstance(arrays, dict):
        raise TypeError(f"arrays must be a dict of numpy arrays, not {type(arrays).__name__}")
    blobs, index = [], []
    for name, value in arrays.items():
        if not isinstance(name, str):
            raise TypeError(f"array names must be str, not {type(name).__name__}")
        arr = np.asarray(value)
        if arr.dtype.hasobject:
            raise ValueError(f"array {name!r} has object dtype; only plain numeric arrays are stored")
        buf = io.BytesIO()
        np.save(buf, arr, allow_pickle=False)
        blob = buf.getvalue()
        blobs.append(blob)
        index.append([name, len(blob)])
    head = _dump_json({"meta": meta, "arrays": index})
    return _seal(KIND_RUN, [_INDEX_LEN.pack(len(head)), head, *blobs])


def encode_json(obj: Any) -> bytes:
    """One blob for a JSON-able value. Raises TypeError/ValueError if it is not JSON-able."""
    head = _dump_json({"value": obj})
    return _seal(KIND_JSON, [_INDEX_LEN.pack(len(head)), head])


def _open_blob(raw: Any, kind: int) -> tuple[memoryview, dict]:
    """Checked body and parsed index of a blob; CorruptEntry for anything else."""
    if not isinstance(raw, (bytes, bytearray)):
        raise CorruptEntry(f"stored value is a {type(raw).__name__}, not bytes")
    if len(raw) < HEADER_SIZE:
        raise CorruptEntry(f"{len(raw)} bytes, shorter than the {HEADER_SIZE}-byte header")
    magic, version, got_kind, reserved, length = _PREFIX.unpack_from(raw, 0)
    if magic != MAGIC:
        raise CorruptEntry(f"bad magic {bytes(raw[:8])!r}")
    if version != FORMAT_VERSION:
        raise CorruptEntry(f"format version {version}, expected {FORMAT_VERSION}")
    if len(raw) != HEADER_SIZE + length:
        raise CorruptEntry(f"{len(raw)} bytes, header says {HEADER_SIZE + length} (truncated or padded)")
    view = memoryview(raw)
    crc = zlib.crc32(view[HEADER_SIZE:], zlib.crc32(view[:_PREFIX.size]))
    if (crc,) != _DIGEST.unpack_from(view, _PREFIX.size):
        raise CorruptEntry("CRC-32 checksum mismatch")
    if reserved != 0 or got_kind not in (KIND_RUN, KIND_JSON):
        raise CorruptEntry(f"unknown kind {got_kind}/{reserved}")
    if got_kind != kind:
        raise _WrongKind(f"entry is of kind {got_kind}, expected {kind}")
    body = view[HEADER_SIZE:]
    if len(body) < _INDEX_LEN.size:
        raise CorruptEntry("body too short")
    (n,) = _INDEX_LEN.unpack_from(body, 0)
    end = _INDEX_LEN.size + n
    if end > len(body):
        raise CorruptEntry("index runs past the end of the body")
    try:
        index = json.loads(bytes(body[_INDEX_LEN.size:end]).decode("ascii"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CorruptEntry(f"index is not JSON: {exc}") from None
    if not isinstance(index, dict):
        raise CorruptEntry("index is not a JSON object")
    return body[end:], index


_NPY_HEADER_MAX = 65536 + 16  # a .npy v2 header's length field is 4 bytes, numpy caps it at 10,000


def _read_npy(view: memoryview) -> np.ndarray:
    """Exactly one .npy array (as np.save wrote it, no pickle) filling `view`, copied once into a
    new writable array. np.load on a BytesIO would copy the data twice."""
    head = io.BytesIO(view[:_NPY_HEADER_MAX])
    version = np.lib.format.read_magic(head)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(head)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(head)
    else:
        raise ValueError(f".npy version {version} is not written by this cache")
    if dtype.hasobject:
        raise ValueError("object dtype (would need pickle)")
    count = math.prod(shape)
    offset = head.tell()
    if offset + count * dtype.itemsize != len(view):
        raise ValueError(f"{len(view) - offset} data bytes for shape {shape} of {dtype}")
    flat = np.frombuffer(view, dtype=dtype, count=count, offset=offset).copy()
    return flat.reshape(shape, order="F" if fortran else "C")


def decode_run(raw: Any) -> tuple[Meta, Arrays]:
    """(meta, arrays) of a run blob; CorruptEntry if it is not exactly one."""
    rest, index = _open_blob(raw, KIND_RUN)
    meta, entries = index.get("meta"), index.get("arrays")
    if not isinstance(meta, dict) or not isinstance(entries, list):
        raise CorruptEntry("index lacks meta/arrays")
    arrays: Arrays = {}
    pos = 0
    for entry in entries:
        if (not isinstance(entry, list) or len(entry) != 2 or not isinstance(entry[0], str)
                or type(entry[1]) is not int or entry[1] < 0):
            raise CorruptEntry(f"bad array entry {entry!r}")
        name, nbytes = entry
        if name in arrays:
            raise CorruptEntry(f"array {name!r} twice")
        if pos + nbytes > len(rest):
            raise CorruptEntry(f"array {name!r} runs past the end")
        try:
            arrays[name] = _read_npy(rest[pos:pos + nbytes])
        except Exception as exc:  # ValueError, EOFError, ... from a bad .npy
            raise CorruptEntry(f"array {name!r}: {type(exc).__name__}: {exc}") from None
        pos += nbytes
    if pos != len(rest):
        raise CorruptEntry(f"{len(rest) - pos} stray bytes after the arrays")
    return meta, arrays


def decode_json(raw: Any) -> Any:
    rest, index = _open_blob(raw, KIND_JSON)
    if len(rest) or set(index) != {"value"}:
        raise CorruptEntry("not a JSON value blob")
    return index["value"]


# ---- diskcache glue --------------------------------------------------------------------------
class _BytesOnlyDisk(diskcache.Disk):
    """diskcache.Disk that never pickles: str keys and bytes values in, bytes/raw values out."""

    def put(self, key):
        if type(key) is not str:
            raise TypeError(f"cache keys must be str, not {type(key).__name__}")
        return super().put(key)

    def get(self, key, raw):
        if not raw:
            raise CorruptEntry("pickled key in the cache table; refusing to unpickle")
        return super().get(key, raw)

    def store(self, value, read, key=UNKNOWN):
        if read or type(value) is not bytes:
            raise TypeError(f"only bytes are stored, not {type(value).__name__}")
        return super().store(value, read, key=key)

    def fetch(self, mode, filename, value, read):
        if read or mode not in (MODE_RAW, MODE_BINARY):
            raise CorruptEntry(f"entry stored in diskcache mode {mode}; only raw bytes are read")
        return super().fetch(mode, filename, value, read)


def _is_lock_timeout(exc: BaseException) -> bool:
    """diskcache.Timeout, or SQLite's own busy error after its timeout."""
    return isinstance(exc, diskcache.Timeout) or (
        isinstance(exc, sqlite3.OperationalError) and "database is locked" in str(exc))


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


class RunCacheBase:
    """The run-cache interface, one implementation for every store: (meta, arrays) runs and small
    JSON values as checksummed blobs (encode_run / encode_json). A store only moves bytes:

        _read(kind, key, decode) -> decode(blob) or None   (missing, corrupt or store unusable)
        _write(kind, key, blob)  -> True when stored, False when the store cannot store now

    kind is "run" or "json". Subclasses: RunCache (disk, shared by the workers of one machine),
    serving.redis_backend.RedisRunCache (Redis, shared by every machine). Never raises for store
    trouble; raises TypeError for a key that is not a str and TypeError/ValueError for values that
    cannot be encoded."""

    directory: str  # what logs and /healthz name the store by

    def _read(self, kind: str, key: str, decode: Callable[[Any], Any]) -> Any | None:
        raise NotImplementedError

    def _write(self, kind: str, key: str, blob: bytes) -> bool:
        raise NotImplementedError

    @staticmethod
    def _check_key(key) -> None:
        if type(key) is not str:
            raise TypeError(f"cache keys must be str, not {type(key).__name__}")

    def get(self, key: str) -> tuple[Meta, Arrays] | None:
        """(meta, arrays) stored under key, or None (missing, unreadable, or cache unusable)."""
        return self._read("run", key, decode_run)

    def put(self, key: str, meta: Meta, arrays: Arrays) -> bool:
        """Store (meta, arrays); True when stored, False when the cache cannot store now."""
        self._check_key(key)
        return self._write("run", key, encode_run(meta, arrays))

    def get_or_compute(self, key: str, compute: Callable[[], tuple[Meta, Arrays]]
                       ) -> tuple[Meta, Arrays, bool]:
        """(meta, arrays, hit). On a miss calls compute() (its exceptions propagate), stores the
        result and returns it with meta in its JSON form (equal to what a later hit returns)."""
        found = self.get(key)
        if found is not None:
            return found[0], found[1], True
        meta, arrays = compute()
        try:
            blob = encode_run(meta, arrays)
        except Exception:
            log.exception("run cache %s: cannot encode the result for %s; not cached", self.directory, key)
            return meta, arrays, False
        self._write("run", key, blob)
        return json_form(meta), arrays, False

    def get_json(self, key: str, default: Any = None) -> Any:
        """A small JSON value stored with put_json, or `default`."""
        found = self._read("json", key, lambda raw: (decode_json(raw),))
        return default if found is None else found[0]

    def put_json(self, key: str, obj: Any) -> bool:
        """Store a JSON-able value (importance scores, curves); True when stored."""
        self._check_key(key)
        return self._write("json", key, encode_json(obj))


class RunCache(RunCacheBase):
    """Shared disk cache of (meta, arrays) pairs and small JSON values; see the module docstring.
    Runs and JSON values share one key space on disk (kind is not part of the key).

    directory: default default_cache_dir(). size_limit: bytes, default default_size_limit().
    retry_interval: seconds between attempts to leave degraded mode.
    """

    def __init__(self, directory: str | os.PathLike | None = None, *, size_limit: int | None = None,
                 retry_interval: float = DEFAULT_RETRY_INTERVAL, timeout: float = SQLITE_TIMEOUT):
        self.directory = os.path.abspath(os.path.expanduser(os.fspath(directory))) if directory \
            else default_cache_dir()
        self.size_limit = int(size_limit) if size_limit else default_size_limit()
        self.retry_interval = float(retry_interval)
        self.timeout = float(timeout)
        self._lock = threading.Lock()
        self._cache: diskcache.Cache | None = None
        self._writable = True
        self._reason: str | None = None  # why degraded; None when ok
        self._retry_at = 0.0  # time.monotonic() after which a degraded cache tries again
        self._open()

    def __repr__(self) -> str:
        return f"RunCache({self.directory!r}, ok={self._reason is None})"

    def __bool__(self) -> bool:  # `run_cache or default_cache()` must not depend on emptiness
        return True

    # ---- state ------------------------------------------------------------------------------
    def _degrade(self, reason: str, *, writes_only: bool) -> None:
        cache = None
        with self._lock:
            first = self._reason is None
            self._reason = reason
            self._retry_at = time.monotonic() + self.retry_interval
            if writes_only:
                self._writable = False
            else:
                cache, self._cache = self._cache, None
        if cache is not None:
            try:
                cache.close()
            except Exception:
                pass
        if first:
            log.warning("run cache %s: %s; working without %s (retrying every %.0f s)", self.directory,
                        reason, "storing new runs" if writes_only else "the cache", self.retry_interval)
        else:
            log.debug("run cache %s still degraded: %s", self.directory, reason)

    def _recovered(self) -> None:
        with self._lock:
            was, self._reason, self._writable = self._reason, None, True
        if was is not None:
            log.info("run cache %s works again (was: %s)", self.directory, was)

    def _open(self) -> None:
        try:
            secure_dir(self.directory)
            self.configured_size_limit = self.size_limit if not hasattr(self, "configured_size_limit") \
                else self.configured_size_limit
            self.size_limit = capped_size_limit(self.directory, self.configured_size_limit)
            cache = diskcache.Cache(self.directory, timeout=self.timeout, disk=_BytesOnlyDisk,
                                    size_limit=self.size_limit,
                                    eviction_policy="least-recently-stored")
            self.partial_removed = getattr(self, "partial_removed", 0) + clean_partial_files(cache)
        except Exception as exc:  # OSError, sqlite3.Error, diskcache.Timeout, ...
            self._degrade(f"cannot open the cache directory ({_describe(exc)})", writes_only=False)
            return
        with self._lock:
            self._cache = cache
        self._recovered()

    def _reader(self) -> diskcache.Cache | None:
        if self._cache is None and time.monotonic() >= self._retry_at:
            self._open()
        return self._cache

    def _writer(self) -> diskcache.Cache | None:
        cache = self._reader()
        if cache is None or (not self._writable and time.monotonic() < self._retry_at):
            return None
        return cache

    # ---- raw bytes --------------------------------------------------------------------------
    def _get_raw(self, key: str, decode: Callable[[Any], Any]) -> Any | None:
        if type(key) is not str:
            raise TypeError(f"cache keys must be str, not {type(key).__name__}")
        cache = self._reader()
        if cache is None:
            return None
        try:
            raw = cache.get(key, default=None)
        except Exception as exc:
            if _is_lock_timeout(exc):  # busy, not damaged: keep the entry
                log.warning("run cache %s: lock timeout reading %s; treating as a miss", self.directory, key)
                return None
            self._discard(cache, key, f"read failed ({_describe(exc)})")
            return None
        if raw is None:
            return None
        try:
            return decode(raw)
        except _WrongKind as exc:
            log.warning("run cache %s: entry %s: %s; treating as a miss", self.directory, key, exc)
            return None
        except Exception as exc:  # CorruptEntry, or anything a damaged blob provokes
            self._discard(cache, key, _describe(exc))
            return None

    def _discard(self, cache: diskcache.Cache, key: str, reason: str) -> None:
        log.warning("run cache %s: discarding unreadable entry %s: %s", self.directory, key, reason)
        try:
            cache.delete(key)
        except Exception as exc:
            log.debug("run cache %s: could not delete %s: %s", self.directory, key, _describe(exc))

    def _put_raw(self, key: str, blob: bytes) -> bool:
        cache = self._writer()
        if cache is None:
            return False
        try:
            cache.set(key, blob)  # diskcache evicts (culls) here when over size_limit
        except Exception as exc:  # OSError, sqlite3.Error: disk full, read-only, permission, broken db
            if _is_lock_timeout(exc):  # busy, not broken: skip this write only
                log.warning("run cache %s: lock timeout writing %s; not stored", self.directory, key)
                return False
            self.partial_removed = getattr(self, "partial_removed", 0) + clean_partial_files(cache, min_age=0.0)
            self._degrade(f"write failed ({_describe(exc)})", writes_only=True)
            return False
        self._puts = getattr(self, "_puts", 0) + 1
        if self._puts % CLEAN_EVERY_PUTS == 0:  # with eviction: files no row points at go too
            self.partial_removed = getattr(self, "partial_removed", 0) + clean_partial_files(cache)
        if not self._writable or self._reason is not None:
            self._recovered()
        return True

    # ---- RunCacheBase: bytes in, bytes out --------------------------------------------------
    def _read(self, kind: str, key: str, decode: Callable[[Any], Any]) -> Any | None:
        return self._get_raw(key, decode)

    def _write(self, kind: str, key: str, blob: bytes) -> bool:
        return self._put_raw(key, blob)

    # ---- public API beyond RunCacheBase's get / put / get_or_compute / get_json / put_json ------
    def delete(self, key: str) -> bool:
        """Remove key; True if it was there. Never raises for cache trouble."""
        cache = self._reader()
        if cache is None:
            return False
        try:
            return bool(cache.delete(key))
        except Exception as exc:
            log.warning("run cache %s: cannot delete %s: %s", self.directory, key, _describe(exc))
            return False

    def status(self) -> dict:
        """{"directory", "ok", "reason", "entries"} for a health endpoint; never raises."""
        cache = self._reader()
        entries = None
        if cache is not None:
            try:
                entries = int(cache.reset("count"))  # read from the Settings table, no write
            except Exception as exc:
                return {"directory": self.directory, "ok": False,
                        "reason": f"cannot read the cache index ({_describe(exc)})", "entries": None}
        return {"directory": self.directory, "ok": self._reason is None, "reason": self._reason,
                "entries": entries}

    def shared_status(self) -> dict:
        """status() from facts every worker sees alike (for /healthz: the same answer from every
        worker): the index readable, the directory writable now, free space; plus sizes. This
        process's own degraded flag is reported as "process_reason", not as the status."""
        base = self.status()
        out = {**base, "process_reason": base["reason"], "configured_size_limit": self.configured_size_limit,
               "size_limit": self.size_limit, "partial_files_removed": getattr(self, "partial_removed", 0)}
        try:
            usage = shutil.disk_usage(self.directory)
            out["free_bytes"] = int(usage.free)
        except OSError as exc:
            out.update(ok=False, reason=f"cannot stat the cache directory ({_describe(exc)})", free_bytes=None)
            return out
        cache = self._reader()
        try:
            out["volume_bytes"] = int(cache.volume()) if cache is not None else None
        except Exception:
            out["volume_bytes"] = None
        problem = None
        if base["entries"] is None:
            problem = base["reason"] or "the cache index cannot be read"
        elif usage.free < MIN_FREE_BYTES:
            problem = f"less than {MIN_FREE_BYTES // 2**20} MiB free on the cache's disk"
        else:
            try:  # a write probe: the same answer in every worker
                fd, probe = tempfile.mkstemp(prefix=".probe-", dir=self.directory)
                os.close(fd)
                os.unlink(probe)
            except OSError as exc:
                problem = f"the cache directory is not writable ({_describe(exc)})"
        out.update(ok=problem is None, reason=problem)
        return out

    def close(self) -> None:
        """Close this thread's SQLite connection (reopened on next use)."""
        cache = self._cache
        if cache is not None:
            try:
                cache.close()
            except Exception:
                pass


_DEFAULTS: dict[str, RunCache] = {}
_DEFAULTS_LOCK = threading.Lock()


def default_cache(directory: str | os.PathLike | None = None) -> RunCache:
    """The process's RunCache for `directory` (default default_cache_dir(), read at call time),
    created on first use."""
    path = os.path.abspath(os.path.expanduser(os.fspath(directory))) if directory else default_cache_dir()
    with _DEFAULTS_LOCK:
        found = _DEFAULTS.get(path)
        if found is None:
            found = _DEFAULTS[path] = RunCache(path)
        return found


def set_default_cache(store, directory: str | os.PathLike | None = None) -> None:
    """Make `store` (anything with RunCache's interface, e.g. a Redis store) the process's
    default run cache for `directory` (default default_cache_dir())."""
    path = os.path.abspath(os.path.expanduser(os.fspath(directory))) if directory else default_cache_dir()
    with _DEFAULTS_LOCK:
        _DEFAULTS[path] = store
