"""Where background callbacks run and where runs are stored: one machine (disk) or many (Redis).

    redis_url() -> str | None        env ATTN_REDIS_URL, else REDIS_URL, else None
    background_manager()             Dash manager for `Dash(background_callback_manager=...)`:
                                       Redis URL set -> CeleryManager(celery_app)
                                       else          -> DiskcacheManager on <cache dir>/callbacks
    run_store()                      the run store of this process: RedisRunCache when a Redis URL
                                     is set, else models.cache.default_cache()
    install()                        make run_store() the default store of models.service
    celery_app                       the Celery app of the scale-out path; start workers with
                                       python -m celery -A serving.redis_backend:celery_app worker \
                                           --loglevel=INFO --concurrency=2

One machine (default): gunicorn workers share one directory: runs in <cache dir> (RunCache),
background-callback results in <cache dir>/callbacks (a diskcache that stores JSON, never
pickle). A background callback runs in a child of a forkserver (serving.jobs: no web sockets,
capped per session and per machine).

Several machines: set ATTN_REDIS_URL (e.g. redis://cache-host:6379/0) for every web server and
every Celery worker. Background callbacks are queued on Redis and run by Celery workers (each
imports `app`, which registers the callbacks as Celery tasks; env ATTN_CELERY_IMPORTS changes
the module); their results, and the runs, live in Redis, so any web worker on any machine can
answer any request. Celery accepts only JSON messages; run blobs are the same checksummed
bytes as on disk (models.cache.encode_run / decode_run): nothing read from Redis is unpickled.
"""
from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import tempfile
import threading
import time
from typing import Any, Callable

import diskcache
from diskcache.core import MODE_BINARY, MODE_RAW, UNKNOWN

import settings
from models import cache as run_cache

log = logging.getLogger(__name__)

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
KEY_PREFIX = "attn:"
DEFAULT_TTL = 7 * 24 * 3600  # seconds a run stays in Redis without being stored again
CALLBACKS_SUBDIR = "callbacks"
CALLBACK_RESULT_TTL = 3600  # seconds Dash's background results live in Redis (celery result_expires)


def redis_url() -> str | None:
    """The configured Redis URL (env ATTN_REDIS_URL, else REDIS_URL), or None: one machine."""
    return (settings.get("ATTN_REDIS_URL") or settings.get("REDIS_URL") or "").strip() or None


def _redact(url: str) -> str:
    """redis://user:secret@host:6379/0 -> redis://user:***@host:6379/0 (for logs and /healthz)."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    cred, host = rest.rsplit("@", 1)
    user = cred.split(":", 1)[0] if ":" in cred else ""
    return f"{scheme}://{user}:***@{host}"


# ---- Celery (scale-out) --------------------------------------------------------------------
def make_celery(url: str | None = None):
    """A Celery app using Redis as broker and result backend; JSON only (no pickle)."""
    from celery import Celery

    url = url or redis_url() or DEFAULT_REDIS_URL
    app = Celery("attention_dashboard", broker=url, backend=url)
    imports = [m.strip() for m in settings.get("ATTN_CELERY_IMPORTS", "app").split(",") if m.strip()]
    app.conf.update(
        imports=imports,  # the worker imports the Dash app, which registers the callbacks as tasks
        task_serializer="json", result_serializer="json", accept_content=["json"],
        result_expires=CALLBACK_RESULT_TTL,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_prefetch_multiplier=1,  # model runs are long: do not hoard tasks on one worker
        task_acks_late=False,
    )
    return app


celery_app = make_celery()


# ---- one machine: Dash's DiskcacheManager over a JSON-only diskcache -------------------------
class _JSONValue(json.JSONEncoder):
    """Plotly figures, numpy arrays, Dash components (via PlotlyJSONEncoder) and bytes."""

    def default(self, o):
        if isinstance(o, (bytes, bytearray)):
            return {"__attn_b64__": base64.b64encode(bytes(o)).decode("ascii")}
        from _plotly_utils.utils import PlotlyJSONEncoder

        return PlotlyJSONEncoder.default(PlotlyJSONEncoder(), o)


def _json_hook(obj: dict):
    if len(obj) == 1 and "__attn_b64__" in obj:
        return base64.b64decode(obj["__attn_b64__"])
    return obj


class JSONOnlyDisk(diskcache.JSONDisk):
    """diskcache Disk for Dash's background results: values stored as zlib'd JSON, never pickled.

    Dash stores callback outputs (figures and components become their JSON form, which Dash
    sends unchanged), progress lists, set_props dicts and the handle-signing secret (bytes)."""

    def store(self, value, read, key=UNKNOWN):
        if not read:
            import zlib

            value = zlib.compress(json.dumps(value, cls=_JSONValue).encode("utf-8"), self.compress_level)
            return diskcache.Disk.store(self, value, False, key=key)
        return super().store(value, read, key=key)

    def get(self, key, raw):
        if not raw:  # a key pickled by another diskcache user of this directory
            raise ValueError("pickled key in the background-callback store; refusing to unpickle")
        return super().get(key, raw)

    def fetch(self, mode, filename, value, read):
        if mode not in (MODE_RAW, MODE_BINARY):  # MODE_PICKLE / MODE_TEXT: not written by us
            raise ValueError(f"entry in diskcache mode {mode}; only JSON bytes are read")
        data = diskcache.Disk.fetch(self, mode, filename, value, read)
        if not read:
            import zlib

            data = json.loads(zlib.decompress(data).decode("utf-8"), object_hook=_json_hook)
        return data


def callback_cache_dir(cache_dir: str | None = None) -> str:
    return os.path.join(cache_dir or run_cache.default_cache_dir(), CALLBACKS_SUBDIR)


def _fallback_dir(wanted: str) -> str:
    """Same path in every worker of this server (so they still share), under the temp dir."""
    tag = hashlib.sha256(wanted.encode()).hexdigest()[:12]
    return os.path.join(tempfile.gettempdir(), f"attention-dashboard-callbacks-{os.getuid()}-{tag}")


def callback_cache(cache_dir: str | None = None) -> diskcache.Cache:
    """The diskcache for background-callback results: <cache dir>/callbacks, or, when that
    directory is unusable (read-only, full, not a directory), a shared fallback under the temp
    directory, with a warning in the log."""
    wanted = callback_cache_dir(cache_dir)
    try:
        handle = diskcache.Cache(wanted, disk=JSONOnlyDisk)
        handle.add("__attn_probe__", 1)  # a write: a read-only or full directory fails here
        return handle
    except Exception as exc:
        fallback = _fallback_dir(wanted)
        log.warning("background-callback store %s unusable (%s: %s); using %s instead",
                    wanted, type(exc).__name__, str(exc)[:200], fallback)
        return diskcache.Cache(fallback, disk=JSONOnlyDisk)


def background_manager(cache_dir: str | None = None):
    """Dash background-callback manager: CeleryManager with a Redis URL, else DiskcacheManager."""
    if redis_url():
        from dash import CeleryManager

        log.info("background callbacks run on Celery workers via %s", _redact(redis_url()))
        return CeleryManager(celery_app)
    from serving.jobs import JobManager

    return JobManager(callback_cache(cache_dir))  # jobs in forkserver children, capped


# ---- run store on Redis ---------------------------------------------------------------------
class RedisRunCache(run_cache.RunCacheBase):
    """models.cache.RunCacheBase over Redis: the same checksummed blobs and the same get / put /
    get_or_compute / get_json / put_json, shared by every web worker and Celery worker of every
    machine.

    Keys: "attn:run:<key>" (encode_run blobs) and "attn:json:<key>" (encode_json blobs), each
    with a TTL (`ttl` seconds, env ATTN_REDIS_TTL, default 7 days) so the store stays bounded;
    give the Redis server a maxmemory and `maxmemory-policy allkeys-lru` as well.

    Failure policy as RunCache: a corrupt entry is logged, deleted and a miss; an unreachable
    Redis is a miss / not stored (logged once, then every `retry_interval` s), never an error.
    """

    def __init__(self, url: str | None = None, *, ttl: int | None = None, prefix: str = KEY_PREFIX,
                 client=None, retry_interval: float = 30.0, socket_timeout: float = 5.0):
        import redis

        self.url = url or redis_url() or DEFAULT_REDIS_URL
        self.prefix = prefix
        self.ttl = int(ttl or settings.get("ATTN_REDIS_TTL") or DEFAULT_TTL)
        self.retry_interval = retry_interval
        self.client = client or redis.Redis.from_url(self.url, socket_timeout=socket_timeout,
                                                     socket_connect_timeout=socket_timeout)
        self._reason: str | None = None
        self._retry_at = 0.0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RedisRunCache({_redact(self.url)!r}, ok={self._reason is None})"

    def __bool__(self) -> bool:
        return True

    @property
    def directory(self) -> str:  # what RunCache users print
        return _redact(self.url)

    # ---- state ------------------------------------------------------------------------------
    def _usable(self) -> bool:
        return self._reason is None or time.monotonic() >= self._retry_at

    def _failed(self, what: str, exc: BaseException) -> None:
        reason = f"{what} failed ({type(exc).__name__}: {exc})"[:300]
        with self._lock:
            first = self._reason is None
            self._reason, self._retry_at = reason, time.monotonic() + self.retry_interval
        if first:
            log.warning("run store %s: %s; working without it (retrying every %.0f s)",
                        _redact(self.url), reason, self.retry_interval)

    def _ok(self) -> None:
        if self._reason is not None:
            with self._lock:
                was, self._reason = self._reason, None
            log.warning("run store %s works again (was: %s)", _redact(self.url), was)

    # ---- bytes ------------------------------------------------------------------------------
    def _get(self, name: str, decode: Callable[[Any], Any]) -> Any | None:
        if not self._usable():
            return None
        try:
            raw = self.client.get(name)
        except Exception as exc:  # redis.ConnectionError, TimeoutError, ...
            self._failed("read", exc)
            return None
        self._ok()
        if raw is None:
            return None
        try:
            return decode(raw)
        except Exception as exc:  # CorruptEntry or anything a damaged blob provokes
            log.warning("run store %s: discarding unreadable entry %s: %s", _redact(self.url), name,
                        f"{type(exc).__name__}: {exc}"[:300])
            try:
                self.client.delete(name)
            except Exception:
                pass
            return None

    def _set(self, name: str, blob: bytes) -> bool:
        if not self._usable():
            return False
        try:
            self.client.set(name, blob, ex=self.ttl)
        except Exception as exc:
            self._failed("write", exc)
            return False
        self._ok()
        return True

    # ---- RunCacheBase: bytes in, bytes out ("attn:run:<key>", "attn:json:<key>") --------------
    def _read(self, kind: str, key: str, decode: Callable[[Any], Any]) -> Any | None:
        self._check_key(key)
        return self._get(self.prefix + kind + ":" + key, decode)

    def _write(self, kind: str, key: str, blob: bytes) -> bool:
        return self._set(self.prefix + kind + ":" + key, blob)

    def delete(self, key: str) -> bool:
        self._check_key(key)
        try:
            return bool(self.client.delete(self.prefix + "run:" + key, self.prefix + "json:" + key))
        except Exception as exc:
            self._failed("delete", exc)
            return False

    def status(self) -> dict:
        """{"backend": "redis", "directory" (redacted URL), "ok", "reason", "entries"}; never raises."""
        try:
            entries = int(self.client.dbsize())
            self._ok()
        except Exception as exc:
            self._failed("status", exc)
            entries = None
        return {"backend": "redis", "directory": _redact(self.url), "ok": self._reason is None,
                "reason": self._reason, "entries": entries}

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:
            pass


_STORE: RedisRunCache | None = None
_STORE_LOCK = threading.Lock()


def run_store():
    """This process's run store: one RedisRunCache when a Redis URL is set, else the disk cache."""
    global _STORE
    url = redis_url()
    if not url:
        return run_cache.default_cache()
    with _STORE_LOCK:
        if _STORE is None or _STORE.url != url:
            _STORE = RedisRunCache(url)
        return _STORE


def install() -> None:
    """With a Redis URL: make the Redis store what models.cache.default_cache() returns in this
    process, so models.service (and everything else that uses the default) shares runs through
    Redis. Without one: nothing changes. Call once at start (app.py, the Celery worker)."""
    if not redis_url():
        return
    store = run_store()
    run_cache.set_default_cache(store)
    log.info("runs are shared through %s", _redact(store.url))
