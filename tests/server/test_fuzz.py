"""Fuzz every server callback with hostile values, generated from GET /_dash-dependencies: a
callback added later is covered without editing this file.

For each server callback and each of its inputs and states, a few hostile values (rotating
through HOSTILE, so every value meets every kind of input across callbacks) replace that one
value in a request that is otherwise what the page sends after a good run. Each answer must be
a 2xx without a traceback or a generic "Something went wrong" (the value was clamped, ignored
or answered with a specific message), or a 4xx; each must come back within BOUND seconds; and
/healthz must answer after each callback's batch.

Background callbacks get the run store removed unless it is the value under test, so a fuzzed
job ends at once with "Run the model first" instead of computing for minutes.
"""
from __future__ import annotations

import json
import time

import pytest

from bench.client import DashClient, Session, id_key

from .conftest import load_app

GOOD = "The cat sat on the mat because it was tired."
BOUND = 30.0  # seconds for one request (a cold model run of a 20,000-character text fits)
PER_INPUT = 2

_deep = []
for _ in range(200):
    _deep = [_deep]
HOSTILE = [
    None, "", "²", "9" * 5000, "x" * 100_000, -1, 10**30, 1e308, float("nan"), True, [], {},
    [[1] * 300] * 300, _deep, {"request": "x", "summary": {"blocks": [{"layers": 4_000_000, "heads": 4_000_000}]}},
    {"request": {"model": "m" * 5000, "text": 5}}, ["a"] * 20_000, "<script>alert(1)</script>",
    {"__proto__": {"x": 1}}, "../../etc/passwd", "\x00" * 1000, "mean", {"name": "x", "pairs": [["a", "b"]] * 20_000},
]


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    import os

    os.environ.setdefault("ATTN_CACHE_DIR", str(tmp_path_factory.mktemp("fuzz-cache")))
    s = Session(DashClient.flask(load_app().server.test_client()))
    s.change({"text-input.value": GOOD, "run-button.n_clicks": 1}, trigger=["run-button.n_clicks"])
    assert not s.errors
    return s


def _cases(client: DashClient):
    i = 0
    for cb in client.server_callbacks():
        for dep in cb.inputs + cb.state:
            if isinstance(dep["id"], dict):
                continue  # pattern-matching deps: the request guard checks their shape
            key = f"{id_key(dep['id'])}.{dep['property']}"
            for _ in range(PER_INPUT):
                yield cb, key, HOSTILE[i % len(HOSTILE)]
                i += 1


@pytest.mark.timeout(600)
def test_every_server_callback_survives_hostile_values(session):
    client = session.client
    callbacks = client.server_callbacks()
    assert len(callbacks) >= 20  # the page's callbacks were found
    failures, n, slowest = [], 0, 0.0
    last_cb = None
    for cb, key, value in _cases(client):
        if last_cb is not None and cb is not last_cb:
            status, _ = client.get("/healthz")
            assert status == 200, f"/healthz answered {status} after fuzzing {last_cb.output}"
        last_cb = cb
        values = dict(session.values)
        if cb.background and key != "run-store.data":
            values["run-store.data"] = None
        values[key] = value
        body = client.body(cb, values, [f"{id_key(d['id'])}.{d['property']}" for d in cb.inputs[:1]])
        query = {"endId": client.config().get("end_id")} if cb.background else None
        t0 = time.perf_counter()
        status, data = client.post(body, query=query)
        if cb.background and status == 200 and isinstance(data, dict) and "cacheKey" in data:
            q = {**query, "cacheKey": data["cacheKey"], "job": data["job"]}
            while time.perf_counter() - t0 < BOUND:
                status, data = client.post(body, query=q)
                if status != 200 or (isinstance(data, dict) and ("response" in data or "sideUpdate" in data)):
                    break
                time.sleep(0.1)
        took = time.perf_counter() - t0
        slowest = max(slowest, took)
        n += 1
        text = json.dumps(data)[:100_000] if data is not None else ""
        ok = (400 <= status < 500) or (status in (200, 204) and "Traceback" not in text
                                       and "Something went wrong" not in text
                                       and "background_callback_error" not in text)
        if not ok or took > BOUND:
            failures.append((cb.output[:80], key, repr(value)[:60], status, round(took, 2), text[:300]))
    status, _ = client.get("/healthz")
    assert status == 200
    assert not failures, f"{len(failures)} of {n} requests failed:\n" + "\n".join(map(str, failures[:20]))
