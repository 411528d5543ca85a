"""Do only what a view needs (issue 11): the work each user action causes on the server, counted.

A scripted tab (bench.client.Session: the serverside callbacks a change sets off, wave by wave,
as dash-renderer fires them) against the app in this process, with two counters wrapped around
the engine: forward passes (models.attention.extract) and attention rows rebuilt from the stored
queries/keys (models.compact.LayerStore.weights / .scores; a whole head is T rows).

    a new text      one forward; the shown layer's heads rebuilt once for all the panels
                    (heatmap, its head mean, the layer overview); the pruning card does nothing
    a head switch   no forward, no whole head: the inspector's one query row at most
    the same text   no forward, nothing rebuilt that the run (or the layer just drawn) holds
    a pruned head   the comparison runs the pruned model once
"""
from __future__ import annotations

import collections

import numpy as np
import pytest

from bench.client import DashClient, Session

from .conftest import load_app

TEXT = "the river keeper lit the lantern quietly while the old harbour slept under the morning wind"


@pytest.fixture
def counted(monkeypatch, tmp_path):
    from models import attention, compact, service

    monkeypatch.setenv("ATTN_CACHE_DIR", str(tmp_path / "cache"))
    service.clear_memory()
    counts: collections.Counter = collections.Counter()
    per_output: dict = collections.defaultdict(collections.Counter)
    current = {"output": None}

    def tally(name, n):
        counts[name] += n
        if current["output"]:
            per_output[current["output"]][name] += n

    extract, weights, scores = attention.extract, compact.LayerStore.weights, compact.LayerStore.scores

    def counted_extract(*a, **kw):
        tally("forward", 1)
        return extract(*a, **kw)

    def rows(store, heads, r):
        return len(store._heads(heads)) * len(np.arange(store.n_queries)[r])

    def counted_weights(self, heads=slice(None), rows_=slice(None), temperature=1.0):
        tally("weight rows", rows(self, heads, rows_))
        return weights(self, heads, rows_, temperature)

    def counted_scores(self, heads=slice(None), rows_=slice(None)):
        tally("score rows", rows(self, heads, rows_))
        return scores(self, heads, rows_)

    monkeypatch.setattr(attention, "extract", counted_extract)
    monkeypatch.setattr(compact.LayerStore, "weights", counted_weights)
    monkeypatch.setattr(compact.LayerStore, "scores", counted_scores)
    tab = Session(DashClient.flask(load_app().server.test_client()))
    post = tab.client.post

    def post_counted(body, *a, **kw):
        current["output"] = (body or {}).get("output")
        per_output[current["output"]].update()  # every callback fired is listed, with or without work
        try:
            return post(body, *a, **kw)
        finally:
            current["output"] = None

    tab.client.post = post_counted

    def act(values, trigger=None):
        counts.clear()
        per_output.clear()
        tab.change(values, trigger=trigger)
        assert not tab.errors, tab.errors
        return dict(counts), {k: dict(v) for k, v in per_output.items()}

    return tab, act


def test_each_user_action_computes_each_thing_once(counted):
    tab, act = counted
    total, per = act({"text-input.value": TEXT, "run-button.n_clicks": 1}, ["run-button.n_clicks"])
    from models import service

    run = service.get_run(service.RunRequest.from_dict(tab.values["run-store.data"]["request"]))
    heads, tokens = run.main.n_heads, run.main.n_queries
    one_layer = heads * tokens
    assert total.get("forward") == 1, total  # the run: one forward pass for every panel
    # every head of the shown layer rebuilt once for the heatmap, its mean and the overview together
    assert one_layer <= total.get("weight rows", 0) <= one_layer + 4, (total, per)
    # weights' own scores + the inspected query's row of every head (the inspector holds every head of
    # the layer, so a head switch asks nothing: services/switch.py)
    assert total.get("score rows", 0) <= one_layer + heads + 4, (total, per)
    pruning = {k: v for k, v in per.items() if "pruning" in k}
    assert pruning and not any(v for v in pruning.values()), pruning  # nothing until a head is pruned

    total, per = act({"head-dropdown.value": "3"})  # a head switch
    assert "forward" not in total and total.get("weight rows", 0) <= 2 and total.get("score rows", 0) <= 2, \
        (total, per)

    total, per = act({"run-button.n_clicks": 2}, ["run-button.n_clicks"])  # the same text again
    assert "forward" not in total and total.get("weight rows", 0) <= 2, (total, per)

    mask = [[1.0] * heads for _ in range(6)]
    mask[0][0] = 0.0  # prune one head: the comparison runs the pruned model, once
    total, per = act({"pruning-mask-store.data": mask})
    assert total.get("forward") == 1, (total, per)
