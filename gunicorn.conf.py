"""gunicorn settings for the attention dashboard:  gunicorn app:server -c gunicorn.conf.py

Every setting can be changed by environment variable (or on the command line, which wins):

    ATTN_BIND        127.0.0.1:8050   where to listen (--bind overrides)
    ATTN_WORKERS     2                processes; each holds its own copy of the loaded models
    ATTN_THREADS     4                threads per worker (gthread): one model run does not block
                                      head switches, which are cheap reads of the shared cache
    ATTN_TIMEOUT     120              seconds a request may take before its worker is killed
    ATTN_PRELOAD     1                1: import the app and load the models once in the master,
                                      then fork (copy-on-write sharing); 0: each worker does both
    ATTN_WARM_MODELS default          models loaded before serving: default | all | name;name
    ATTN_CACHE_DIR   <repo>/.cache/attention-dashboard   run cache + background-callback results, shared by all workers
    ATTN_ACCESS_LOG  0                1: access log on stderr
    ATTN_CONTROL_SOCKET (unset)       path of gunicorn's control socket (gunicornc); off if unset

Why preload (figures in bench/RESULTS.md, "Memory"): with the model loaded in the master and
then forked, the weights and the imported libraries are shared copy-on-write, so a second worker
costs only its private pages, and a worker killed by the OOM killer or `kill -9` is replaced by
a fork in well under a second instead of re-importing torch and reloading the model.
Workers x torch threads is kept at the number of cores (post_fork), so two concurrent model
runs do not oversubscribe a 2-core machine.
"""
import logging
import os
import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(_ROOT))  # gunicorn reads this file before it puts the app's folder on the path

import settings  # noqa: E402 - every environment variable is read through it


def _env_int(name: str, default: int) -> int:
    try:
        return int(settings.get(name, default))
    except ValueError:
        return default


# --- environment shared by the master and every worker (set before the app is imported) ----
# One cache directory for all workers: made absolute here so a worker's cwd cannot change it.
os.environ["ATTN_CACHE_DIR"] = os.path.abspath(settings.get("ATTN_CACHE_DIR")
                                               or str(_ROOT / ".cache" / "attention-dashboard"))
for _k, _v in {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
               "TOKENIZERS_PARALLELISM": "false"}.items():
    os.environ.setdefault(_k, _v)

# every file the server creates (cache, secret key, job results) is readable by its user only
os.umask(0o077)
umask = 0o077

# app warnings (e.g. "cache directory unusable, computing without cache") go to the error log
logging.basicConfig(level=settings.get("ATTN_LOG_LEVEL", "INFO").upper(),
                    format="[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s")

# --- gunicorn settings --------------------------------------------------------------------
wsgi_app = "app:server"
bind = [settings.get("ATTN_BIND", "127.0.0.1:8050")]
workers = _env_int("ATTN_WORKERS", 2)
worker_class = "gthread"
threads = _env_int("ATTN_THREADS", 4)
timeout = _env_int("ATTN_TIMEOUT", 120)
graceful_timeout = 30
keepalive = 5  # seconds an idle keep-alive connection holds a worker thread (a proxy in front pools them)
# request line / header limits (gunicorn's defaults, explicit): a slow or huge header is cut off
# here; slow bodies and slow readers are the front proxy's job (deploy/nginx.conf buffers both)
limit_request_line = 4094
limit_request_fields = 100
limit_request_field_size = 8190
preload_app = settings.get("ATTN_PRELOAD", "1") not in ("0", "false", "no")
max_requests = 0  # never recycle a worker: a reload costs a model load
errorlog = "-"
loglevel = settings.get("ATTN_LOG_LEVEL", "info").lower()
accesslog = "-" if settings.get("ATTN_ACCESS_LOG", "0") in ("1", "true", "yes") else None
proc_name = "attention-dashboard"
# gunicorn's control socket (gunicornc) defaults to one path per user, which two instances on
# one machine (a deployment and a test run) would fight over: off unless a path is given.
control_socket_disable = not settings.get("ATTN_CONTROL_SOCKET")
if settings.get("ATTN_CONTROL_SOCKET"):
    control_socket = settings.get("ATTN_CONTROL_SOCKET")
# the 50,000-character hostile-input test posts ~60 kB of JSON: the default limits are for
# the request line and headers only, bodies are not limited by gunicorn.


def when_ready(server):
    """Master, sockets bound, before the first worker is forked.

    Load only: never run a forward pass in the master. A child forked after the parent has used
    torch's intra-op (OpenMP) thread pool hangs on its first forward (seen here with torch 2.13).
    """
    if preload_app:
        from serving import warm_models

        loaded = warm_models()
        server.log.info("preloaded models in the master: %s", ", ".join(loaded) or "none")
    server.log.info("cache directory %s", settings.get("ATTN_CACHE_DIR"))


def post_fork(server, worker):
    """Each worker: keep workers x torch threads <= cores."""
    from serving import torch_threads_per_worker

    # server.cfg: the workers actually configured (`-w 3` on the command line wins over `workers`)
    n = torch_threads_per_worker(server.cfg.workers)
    try:
        import torch

        torch.set_num_threads(n)
    except ImportError:  # pragma: no cover - torch is a hard dependency
        pass


def post_worker_init(worker):
    """Each worker, app imported: without preload, load the models now, before serving; then
    finish Dash's first-request setup with one request to itself, so no real request meets it
    half done (Dash's setup is not thread-safe, plotly/dash#3971: parallel first requests for the
    page and its bundles answered 500 "dash is not a registered library")."""
    if not preload_app:
        from serving import warm_models

        loaded = warm_models()
        worker.log.info("worker %s loaded models: %s", worker.pid, ", ".join(loaded) or "none")
    from serving import warm_up

    warm_up(worker.wsgi, worker.log)


def child_exit(server, worker):
    """Master: a worker died (crash, kill -9, timeout); gunicorn forks a replacement."""
    server.log.warning("worker %s exited (replaced unless the server is stopping)", worker.pid)
