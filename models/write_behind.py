"""Work done after the answer: one writer thread per process that runs `submit`ted jobs in order
(queued jobs; see `max_pending`).

Used by models.service to store a new run in the disk cache after it has been returned. Built to
be hard to wedge, because a lost write must only ever cost a cache miss:

* the thread is (re)started on demand: a fork (gunicorn --preload) or a test runner that kills
  threads (dash.testing's ThreadedRunner raises SystemExit in every thread it did not start)
  leaves queued jobs to a new thread instead of waiting on a dead one;
* waiting is bounded: `wait(key)` and `flush()` give up after a timeout with a warning;
* the thread is a daemon, and `flush` runs at interpreter exit so finished runs reach the disk;
* the queue is bounded (`max_pending`): when the writer falls behind (a stream of new long texts
  holds ~11 MB per queued 200-token run), `submit` runs the job itself, so memory stays bounded
  and the cost goes back to the request that caused it.
"""
from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import time
import weakref
from typing import Callable

log = logging.getLogger("attention_dashboard.write_behind")

_IDLE_POLL = 0.25  # seconds: an idle writer wakes this often (so a kill request is acted on)


class WriteBehind:
    def __init__(self, name: str = "write-behind", max_pending: int = 8):
        self.name, self.max_pending = name, max_pending
        self._reset()
        _INSTANCES.add(self)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._pending: dict[str, threading.Event] = {}
        self._thread: threading.Thread | None = None

    # -- producer side ------------------------------------------------------------------------
    def submit(self, key: str, job: Callable[[], object]) -> None:
        """Run job() on the writer thread (or here, when `max_pending` jobs are already queued);
        its exceptions are logged, never raised."""
        with self._lock:
            queued = len(self._pending) < self.max_pending
            if queued:
                done = self._pending[key] = threading.Event()
        if not queued:
            self._run(key, job)
            return
        self._queue.put((key, job, done))
        self._ensure_thread()

    def wait(self, key: str, timeout: float = 30.0) -> bool:
        """Wait for the pending job of `key`, if any; False if it did not finish in time."""
        with self._lock:
            done = self._pending.get(key)
        return done is None or self._wait_events([done], timeout)

    def flush(self, timeout: float = 60.0) -> bool:
        """Wait for every job submitted so far; False (and a warning) if they did not finish in time."""
        with self._lock:
            events = list(self._pending.values())
        return self._wait_events(events, timeout)

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    # -- internals ------------------------------------------------------------------------------
    def _wait_events(self, events: list[threading.Event], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        for ev in events:
            while not ev.wait(min(0.5, max(0.0, deadline - time.monotonic()))):
                if time.monotonic() >= deadline:
                    log.warning("%s: %d job(s) not done after %.0f s; going on without them",
                                self.name, self.pending(), timeout)
                    return False
                self._ensure_thread()  # a writer that died leaves its queue to a new one
        return True

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while True:
            try:
                key, job, done = self._queue.get(timeout=_IDLE_POLL)
            except queue.Empty:
                continue
            try:
                self._run(key, job)
            finally:
                with self._lock:
                    if self._pending.get(key) is done:
                        del self._pending[key]
                done.set()

    def _run(self, key: str, job: Callable[[], object]) -> None:
        try:
            job()
        except Exception:  # noqa: BLE001 - a failed write is a cache miss later, not an error
            log.exception("%s: job for %s failed", self.name, key)


_INSTANCES: "weakref.WeakSet[WriteBehind]" = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # The child has none of the parent's threads, and the parent's queued jobs are the parent's.
    for wb in list(_INSTANCES):
        wb._reset()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


@atexit.register
def _flush_all_at_exit() -> None:
    for wb in list(_INSTANCES):
        wb.flush(timeout=10.0)
