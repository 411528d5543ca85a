"""Every environment variable the attention dashboard reads: declared here, read here only.

    settings.get("ATTN_MAX_TOKENS", "")   the variable's value, or `default` when it is unset
    settings.VARIABLES                     name -> Variable(default as documented, what it does)
    settings.passthrough()                 the environment a background-job process inherits

Values are read when asked, never cached: gunicorn.conf.py sets some before the app is imported
and tests change them at run time. Each reader parses its own value (and says what it does with a
bad one) where it is used. A name that is not declared here is a KeyError, so a new variable
cannot be read without being declared; the README's Configuration table lists every declared
variable and no other module reads os.environ for them (tests/unit/test_settings.py).
Test-harness variables (ATTN_TEST_*) are read by tests/ and bench/ themselves.

Torch-free, Dash-free: models/, serving/, app.py and gunicorn.conf.py import it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Variable:
    name: str
    default: str   # as the README states it
    what: str


VARIABLES: dict[str, Variable] = {v.name: v for v in (
    # models
    Variable("ATTN_MODELS", "–", "more models: name=/path/or/id;other=..."),
    Variable("ATTN_MODELS_FILE", "models.json", "the same as a JSON object"),
    Variable("ATTN_MAX_TOKENS", "the model's maximum", "deployment-wide cap on tokens per text"),
    Variable("ATTN_MAX_TEXT_CHARS", "20000", "characters of a text kept before tokenising"),
    Variable("ATTN_DEVICE", "best available", "cpu | cuda | mps"),
    Variable("ATTN_DTYPE", "float32", "float32 | float16 | bfloat16 weights"),
    Variable("ATTN_WARM_MODELS", "default", "models loaded at start: default | all | none | a;b"),
    # cache
    Variable("ATTN_CACHE_DIR", ".cache/attention-dashboard", "run cache and job results, shared by workers"),
    Variable("ATTN_CACHE_SIZE_MB", "4096", "size limit of the run cache"),
    # Redis / Celery
    Variable("ATTN_REDIS_URL", "–", "share runs and run jobs through Redis + Celery"),
    Variable("REDIS_URL", "–", "used when ATTN_REDIS_URL is unset"),
    Variable("ATTN_REDIS_TTL", "604800", "seconds a run stays in Redis"),
    Variable("ATTN_CELERY_IMPORTS", "app", "modules a Celery worker imports (comma separated)"),
    # background jobs
    Variable("ATTN_MAX_JOBS", "2", "jobs running at once per machine"),
    Variable("ATTN_MAX_QUEUED_JOBS", "8", "jobs waiting"),
    Variable("ATTN_MAX_JOBS_PER_SESSION", "2", "jobs per browser session"),
    Variable("ATTN_JOB_NICE", "10", "CPU priority of background jobs"),
    Variable("ATTN_JOB_PRELOAD", "app", "module the job forkserver imports first"),
    Variable("ATTN_JOB_RUNNER", "forkserver", "forkserver | fork (Dash's own runner, no caps)"),
    # security and health
    Variable("ATTN_SECRET_KEY", "–", "key that signs background-job handles"),
    Variable("ATTN_SECRET_KEY_FILE", "<cache dir>/secret_key", "file of that key, generated 0600"),
    Variable("ATTN_HEALTH_DETAILS", "0", "1: /healthz details for every caller"),
    Variable("ATTN_VERSION", "package version + git commit", "the version /healthz reports"),
    Variable("ATTN_LOG_LEVEL", "INFO", "level of the app's and gunicorn's logs"),
    # gunicorn (gunicorn.conf.py)
    Variable("ATTN_BIND", "127.0.0.1:8050", "where gunicorn listens"),
    Variable("ATTN_WORKERS", "2", "gunicorn worker processes"),
    Variable("ATTN_THREADS", "4", "threads per worker"),
    Variable("ATTN_TIMEOUT", "120", "seconds a request may take"),
    Variable("ATTN_PRELOAD", "1", "0: each worker imports the app and loads the models itself"),
    Variable("ATTN_ACCESS_LOG", "0", "1: access log on stderr"),
    Variable("ATTN_CONTROL_SOCKET", "off", "path of gunicorn's control socket"),
    # python app.py
    Variable("HOST", "127.0.0.1", "python app.py: host"),
    Variable("PORT", "8050", "python app.py: port"),
    Variable("DASH_DEBUG", "off", "python app.py: 1 = Dash debug mode"),
)}

# prefixes of the environment a background-job process inherits (serving.jobs)
PASSTHROUGH_PREFIXES = ("ATTN_", "HF_", "TRANSFORMERS_")


def get(name: str, default: str | None = None) -> str | None:
    """The variable's value as set in the environment, or `default` when it is unset.
    KeyError for a name that is not declared in VARIABLES."""
    if name not in VARIABLES:
        raise KeyError(f"{name} is not a declared setting (settings.VARIABLES)")
    return os.environ.get(name, default)


def passthrough() -> dict[str, str]:
    """The variables a background-job process inherits: every ATTN_*, HF_* and TRANSFORMERS_* set."""
    return {k: v for k, v in os.environ.items() if k.startswith(PASSTHROUGH_PREFIXES)}
