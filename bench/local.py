"""Start the real gunicorn server on a free loopback port (tests, benchmarks, the load script).

    with LocalGunicorn(workers=2, cache_dir=tmp) as srv:     # waits for /healthz on every worker
        srv.url, srv.port, srv.master, srv.worker_pids(), srv.log_text(), srv.memory()

The server always runs with `--bind 127.0.0.1:PORT` (loopback only) and is stopped in
`__exit__` (SIGTERM, then SIGKILL of its whole process group), whatever happened.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "gunicorn.conf.py"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str, timeout: float = 5.0) -> tuple[int, dict | None]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read())
        except ValueError:
            return exc.code, None


class ServerError(RuntimeError):
    pass


class LocalGunicorn:
    def __init__(self, *, workers: int = 2, threads: int = 4, preload: bool = True,
                 cache_dir: str | os.PathLike | None = None, app: str = "app:server",
                 env: dict | None = None, extra_args: tuple = (), timeout: int | None = None,
                 start_timeout: float = 90.0, log_path: str | os.PathLike | None = None,
                 wrap: list[str] | None = None, preexec_fn=None):
        self.workers, self.threads, self.preload = workers, threads, preload
        self._tmp = None
        if cache_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="attn-gunicorn-")
            cache_dir = Path(self._tmp.name) / "cache"
        self.cache_dir = str(cache_dir)
        self.app, self.extra_args, self.timeout = app, tuple(extra_args), timeout
        self.start_timeout = start_timeout
        self.env = dict(env or {})
        self.wrap = list(wrap or [])
        self.preexec_fn = preexec_fn
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        if log_path is None:
            fd, log_path = tempfile.mkstemp(prefix="attn-gunicorn-", suffix=".log")
            os.close(fd)
        self.log_path = Path(log_path)
        self.proc: subprocess.Popen | None = None

    # ---- lifecycle -------------------------------------------------------------------------
    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "gunicorn", self.app, "-c", str(CONF),
               "--bind", f"127.0.0.1:{self.port}", "--workers", str(self.workers),
               "--threads", str(self.threads)]
        if self.timeout:
            cmd += ["--timeout", str(self.timeout)]
        return self.wrap + cmd + list(self.extra_args)

    def start(self) -> "LocalGunicorn":
        env = {**os.environ, "PYTHONPATH": str(ROOT), "ATTN_CACHE_DIR": self.cache_dir,
               "ATTN_PRELOAD": "1" if self.preload else "0", "HF_HUB_OFFLINE": "1",
               "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", **self.env}
        env.pop("ATTN_CONTROL_SOCKET", None)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command(), cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
                                     preexec_fn=self.preexec_fn)
        try:
            self.wait_ready(self.start_timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ready(self, timeout: float) -> None:
        """Until /healthz answers 200 and `workers` worker processes are alive."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerError(f"gunicorn exited with {self.proc.returncode}:\n{self.log_text()[-4000:]}")
            try:
                code, body = get_json(self.url + "/healthz", timeout=5)
                last = (code, body)
                if code == 200 and len(self.worker_pids()) >= self.workers:
                    return
            except (OSError, ValueError) as exc:
                last = exc
            time.sleep(0.2)
        raise ServerError(f"gunicorn not ready after {timeout:.0f} s (last: {last!r}):\n{self.log_text()[-4000:]}")

    def stop(self, timeout: float = 3.0, graceful: bool = False) -> None:
        """SIGQUIT (gunicorn's quick shutdown; SIGTERM with graceful=True), then SIGKILL of the
        whole process group after `timeout` s."""
        if self.proc is None:
            return
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM if graceful else signal.SIGQUIT)
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    pass
            # whatever is left of the group (workers, background-callback processes)
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        finally:
            self._log.close()
            if self._tmp is not None:
                self._tmp.cleanup()
                self._tmp = None

    def __enter__(self) -> "LocalGunicorn":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- inspection ------------------------------------------------------------------------
    @property
    def master(self) -> psutil.Process:
        """The gunicorn master: the started process itself (a `wrap` command must exec it)."""
        return psutil.Process(self.proc.pid)

    def worker_pids(self) -> list[int]:
        try:
            return sorted(p.pid for p in self.master.children() if p.is_running()
                          and p.status() != psutil.STATUS_ZOMBIE)
        except psutil.Error:
            return []

    def log_text(self, since: int = 0) -> str:
        """The server's log (stdout + stderr), from byte offset `since` (see log_size())."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(since)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def memory(self) -> dict:
        """Memory of the whole server: master + workers (+ their children), in MiB.

        pss: proportional set size, shared pages split between the processes sharing them (the
        honest total); uss: pages private to each process; rss: resident, shared pages counted
        in every process."""
        procs = [self.master] + self.master.children(recursive=True)
        out = {"processes": [], "pss": 0.0, "uss": 0.0, "rss": 0.0}
        for p in procs:
            try:
                m = p.memory_full_info()
            except psutil.Error:
                continue
            row = {"pid": p.pid, "role": "master" if p.pid == self.master.pid else "worker",
                   "pss": m.pss / 2**20, "uss": m.uss / 2**20, "rss": m.rss / 2**20}
            out["processes"].append(row)
            for k in ("pss", "uss", "rss"):
                out[k] += row[k]
        return out
