"""Background jobs on one machine: Dash's DiskcacheManager with a runner that holds none of the
web server's sockets, and caps on how many jobs run.

    JobManager(handle)     Dash background-callback manager (serving.redis_backend picks it
                           when no Redis URL is set)

Where a job runs. Dash's DiskcacheManager forks the web worker for each job, so the job inherits
the worker's listening socket and client connections: a request on a connection left idle
after starting a job hung, and after SIGTERM a job outlived the server and held the port, so a
restart failed with "Address already in use" (issue 12). Here each job is a child of a
multiprocessing *forkserver*: a clean interpreter that this worker starts (fork + exec, only its
own pipes passed), which imports the app once (ATTN_JOB_PRELOAD, default "app") and forks one
process per job. Jobs therefore hold no socket of the web server, start in well under a second,
and get SIGKILL when their forkserver exits, which it does when its web worker exits
(PR_SET_PDEATHSIG), so no job outlives its worker.

Limits (checked where the job starts, in the web worker, and in the job process itself):

    ATTN_MAX_JOBS              2   jobs running at once on this machine (all workers); more wait
                                   in a queue, their progress text says so
    ATTN_MAX_QUEUED_JOBS       8   jobs waiting; beyond that a new job is refused with a message
    ATTN_MAX_JOBS_PER_SESSION  2   jobs running or waiting per browser session (cookie
                                   attn_session); beyond that refused with a message

Jobs run at nice 10 (ATTN_JOB_NICE) with one torch thread, so page requests come first.
The running slots are `flock`ed files in <callback dir>/job-slots: a job that dies releases its
slot with its process. Cancel (Dash's terminate_job) kills only processes this manager started
and recorded (pid + start time), never a pid taken from a request on its own word.

ATTN_JOB_RUNNER=fork falls back to Dash's own fork-per-job (not recommended).
"""
from __future__ import annotations

import ctypes
import fcntl
import logging
import multiprocessing
import os
import secrets
import signal
import threading
import time

from dash import DiskcacheManager

import settings

log = logging.getLogger("attention_dashboard.jobs")

SESSION_COOKIE = "attn_session"
REGISTRY_KEY = "__attn_jobs__"
STATUS_ID = "status-alert"  # dashboard.ids.STATUS: where a refusal is shown
SLOTS_SUBDIR = "job-slots"


def _env_int(name: str, default: int) -> int:
    try:
        return max(1, int(settings.get(name, default)))
    except ValueError:
        return default


def limits() -> dict:
    return {"running": _env_int("ATTN_MAX_JOBS", 2), "queued": _env_int("ATTN_MAX_QUEUED_JOBS", 8),
            "per_session": _env_int("ATTN_MAX_JOBS_PER_SESSION", 2)}


def current_session() -> str:
    """The browser session of the current request (cookie set by register_session_cookie)."""
    try:
        from flask import request

        sid = request.cookies.get(SESSION_COOKIE, "")
        if sid and len(sid) <= 64 and sid.isalnum():
            return sid
        return "ip-" + (request.remote_addr or "unknown")
    except Exception:
        return "no-request"


def register_session_cookie(server) -> None:
    """Give every browser an opaque session id (HttpOnly, SameSite=Strict): the per-session cap."""
    from flask import request

    @server.after_request
    def _session_cookie(resp):
        if not request.cookies.get(SESSION_COOKIE) and request.path in ("/", ""):
            resp.set_cookie(SESSION_COOKIE, secrets.token_hex(16), httponly=True, samesite="Strict")
        return resp


# ---- process identity ----------------------------------------------------------------------------
def _create_time(pid: int) -> float | None:
    import psutil

    try:
        return round(psutil.Process(pid).create_time(), 2)
    except psutil.Error:
        return None


STARTING_GRACE = 300.0  # seconds a job may take to get its process (a cold forkserver imports the app)


def _alive(entry: dict) -> bool:
    import psutil

    if entry.get("pid") is None:  # being started (see JobManager.call_job_fn)
        return not entry.get("cancelled") and time.time() - float(entry.get("t", 0)) < STARTING_GRACE
    ct = _create_time(int(entry["pid"]))
    if ct is None or abs(ct - float(entry["created"])) > 0.05:
        return False
    try:
        return psutil.Process(int(entry["pid"])).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


# ---- the job process -------------------------------------------------------------------------------
def _die_with_worker(worker_pid: int, worker_created: float | None) -> None:
    """End this job when the web worker that started it exits, however it exits.

    * multiprocessing hands every forkserver child the write end of the pipe that keeps the
      forkserver alive; closing it here lets the forkserver exit as soon as its worker does;
    * PR_SET_PDEATHSIG: SIGKILL when the forkserver (this process's parent) exits;
    * a watchdog thread: SIGKILL when the worker's pid is gone or reused (kill -9 of the worker)."""
    try:
        from multiprocessing import forkserver

        fd = forkserver._forkserver._forkserver_alive_fd
        if fd is not None:
            os.close(fd)
            forkserver._forkserver._forkserver_alive_fd = None
    except (AttributeError, OSError):
        pass
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass

    def gone() -> bool:
        return _create_time(worker_pid) != worker_created

    if os.getppid() == 1 or gone():
        os._exit(1)

    def watch():
        while not gone():
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="job-watchdog", daemon=True).start()


class _Slot:
    """One of `n` running slots (flock on <dir>/slot-i.lock); waits, reporting, until one is free."""

    def __init__(self, directory: str, n: int):
        self.directory, self.n, self.fd = directory, n, None

    def acquire(self, waiting) -> None:
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        reported = False
        while True:
            for i in range(self.n):
                fd = os.open(os.path.join(self.directory, f"slot-{i}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    os.close(fd)
                    continue
                self.fd = fd
                return
            if not reported:
                waiting()
                reported = True
            time.sleep(0.25)

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing drops the flock
            self.fd = None


def run_job(fn_key: str, callback_dir: str, env: dict, result_key: str, progress_key: str,
            args, context, running: int, worker: tuple) -> None:
    """The job process: wait for a running slot, then run the callback's job function."""
    _die_with_worker(*worker)
    os.environ.update(env)
    try:  # jobs yield the CPU to page requests: lower priority (serving.job_priority), one torch thread
        import serving.job_priority  # noqa: F401 - the forkserver imported it already; a no-op then
        import torch

        torch.set_num_threads(1)
    except (OSError, ValueError, ImportError):
        pass
    import diskcache
    from dash.background_callback.managers import BaseBackgroundCallbackManager
    from dash.background_callback.managers.diskcache_manager import _make_job_fn

    from serving.redis_backend import JSONOnlyDisk

    handle = diskcache.Cache(callback_dir, disk=JSONOnlyDisk)
    found = [(fn, progress) for key, fn, progress in BaseBackgroundCallbackManager.functions if key == fn_key]
    if not found:
        handle.set(result_key, {"background_callback_error": {
            "msg": "this job is not known to the job runner (restart the server)", "tb": ""}})
        return
    fn, progress = found[0]
    slot = _Slot(os.path.join(callback_dir, SLOTS_SUBDIR), running)
    slot.acquire(lambda: handle.set(progress_key, [0, f"queued: {running} job(s) already running, "
                                                      "this one starts when one ends"]))
    try:
        _make_job_fn(fn, handle, progress)(result_key, progress_key, args, context)
    finally:
        slot.release()


# ---- the manager (web worker side) -----------------------------------------------------------------
class JobManager(DiskcacheManager):
    """DiskcacheManager whose jobs run in forkserver children, capped (see the module docstring)."""

    def __init__(self, cache, preload: str | None = None, **kw):
        super().__init__(cache, **kw)
        self.preload = preload or settings.get("ATTN_JOB_PRELOAD", "app")
        self._ctx = None
        self._lock = threading.Lock()
        self._ctx_lock = threading.Lock()

    # -- the forkserver
    def _context(self):
        with self._ctx_lock:
            if self._ctx is None:
                ctx = multiprocessing.get_context("forkserver")
                ctx.set_forkserver_preload(["serving.job_priority"] + [m for m in self.preload.split(",") if m])
                self._ctx = ctx
            return self._ctx

    # -- registry of started jobs (shared by the workers through the callback store)
    def _registry(self) -> list[dict]:
        entries = self.handle.get(REGISTRY_KEY) or []
        return [e for e in entries if isinstance(e, dict) and _alive(e)]

    def _refuse(self, key: str, message: str) -> int:
        self.handle.set(self._make_set_props_key(key),
                        {STATUS_ID: {"children": message, "is_open": True, "color": "warning"}})
        self.handle.set(key, {"_dash_no_update": "_dash_no_update"})
        log.info("job refused: %s", message)
        return 0

    def _update(self, job_id: int, **changes) -> dict | None:
        with self.handle.transact():  # short: other workers' polls wait on this lock
            entries = self.handle.get(REGISTRY_KEY) or []
            found = None
            for e in entries:
                if isinstance(e, dict) and e.get("job") == job_id:
                    e.update(changes)
                    found = e
            self.handle.set(REGISTRY_KEY, [e for e in entries if isinstance(e, dict) and _alive(e)])
        return found

    def call_job_fn(self, key, job_fn, args, context):
        """Check the caps, register the job and return its id at once; its process is started by
        a thread (the first start of a worker also starts the forkserver, which imports the app
        at low priority: that must not hold the request). The id is ours, not a pid."""
        if settings.get("ATTN_JOB_RUNNER", "forkserver") == "fork":
            return super().call_job_fn(key, job_fn, args, context)
        fn_key = next((k for k, v in self.func_registry.items() if v is job_fn), None)
        lim, session = limits(), current_session()
        with self._lock:  # one start at a time in this worker (the count below stays honest)
            jobs = self._registry()
            mine = sum(1 for e in jobs if e.get("session") == session)
            if mine >= lim["per_session"]:
                return self._refuse(key, f"You already have {mine} job(s) running or queued (at most "
                                         f"{lim['per_session']} per session): wait for one or cancel it.")
            if len(jobs) >= lim["running"] + lim["queued"]:
                return self._refuse(key, f"The server is busy: {len(jobs)} jobs running or queued. "
                                         "Try again in a minute.")
            job_id = 1 + secrets.randbelow(10**15)
            with self.handle.transact():
                self.handle.set(REGISTRY_KEY, self._registry() + [
                    {"job": job_id, "pid": None, "created": None, "session": session, "t": time.time()}])
        env = settings.passthrough()
        worker = (os.getpid(), _create_time(os.getpid()))

        def start():
            try:
                multiprocessing.active_children()  # reap the jobs of this worker that ended
                proc = self._context().Process(  # daemon: terminated by this worker's exit (atexit)
                    target=run_job, daemon=True,
                    args=(fn_key, self.handle.directory, env, key, self._make_progress_key(key), args,
                          dict(context), lim["running"], worker))
                proc.start()
            except Exception as exc:  # noqa: BLE001 - the page gets a message, the log the details
                log.exception("could not start a job")
                self._update(job_id, cancelled=True)
                self._refuse(key, f"The job could not be started ({type(exc).__name__}); try again.")
                return
            entry = self._update(job_id, pid=proc.pid, created=_create_time(proc.pid))
            if entry is None or entry.get("cancelled"):  # cancelled while starting
                proc.kill()

        threading.Thread(target=start, name=f"job-start-{job_id}", daemon=True).start()
        return job_id

    def _known(self, job) -> dict | None:
        try:
            job_id = int(job)
        except (TypeError, ValueError):
            return None
        if job_id <= 0:
            return None
        return next((e for e in self._registry() if e.get("job") == job_id), None)

    def terminate_job(self, job):
        """Kill a job this manager started (and its children), found by its job id in the
        registry; no pid from a request is ever used on its own word."""
        import psutil

        entry = self._known(job)
        if entry is None:
            return
        if entry.get("pid") is None:  # still starting: the starter kills it once it has a pid
            self._update(entry["job"], cancelled=True)
            return
        try:
            proc = psutil.Process(int(entry["pid"]))
            for child in proc.children(recursive=True):
                child.kill()
            proc.kill()
            proc.wait(1)
        except (psutil.Error, psutil.TimeoutExpired):
            pass

    def terminate_unhealthy_job(self, job):
        entry = self._known(job)
        if entry is not None and not self.job_running(job):
            self.terminate_job(job)
            return True
        return False

    def job_running(self, job):
        return self._known(job) is not None
