"""services/switch.py: the payloads a head switch is drawn from hold, for every head of the layer,
exactly what the one-head panels show (so the browser's choice of head is the only difference)."""
from __future__ import annotations

import json

import plotly.io

from dashboard import cards
from services import panels, switch, textview
from services.views import MEAN
from tests.unit.test_views import bert_pair, gpt2


def _json(x):
    return json.loads(plotly.io.to_json(x, validate=False))


def test_inspector_layer_holds_every_head_as_the_one_head_panel():
    run = bert_pair()
    p = switch.inspector_layer(run, "self", "0", 4, 0)
    assert p["heads"] == [str(h) for h in range(run.main.n_heads)] + [MEAN]
    assert p["view"]["head"] is None and p["view"]["layer"] == "0" and p["view"]["key"] == panels.view_key(run)
    template = p["figures"][0]["layout"]["template"]
    for i, head in enumerate(p["heads"]):
        one = panels.inspector_panel(run, "self", "0", head, 4, 0)
        fig = dict(p["figures"][i], layout=dict(p["figures"][i]["layout"], template=template))
        assert _json(fig) == _json(one["figure"])
        assert p["titles"][i] == one["title"]
        assert _json(p["tables"][i]) == _json(cards.inspector_table(one["rows"], one["mean"]))
    assert all("template" not in f["layout"] for f in p["figures"][1:])  # sent once


def test_inspector_layer_without_a_query_is_the_prompt():
    p = switch.inspector_layer(bert_pair(), "self", "0", None, 0)
    assert "heads" not in p and p["table"] == cards.INSPECTOR_PROMPT and p["title"] == "Token inspector"


def test_text_view_layer_holds_every_head_as_the_one_head_payload():
    run = gpt2()
    p = switch.text_view_layer(run, "self", "0", 2, 0.5)
    for i, head in enumerate(p["heads"]):
        one = textview.text_view_payload(run, "self", "0", head, 2, 0.5)
        assert (p["weights"][i], p["titles"][i], p["notes"][i]) == (one["weights"], one["title"], one["note"])
        assert p["tokens"] == one["tokens"] and p["query"] == one["query"] == 2
    assert p["view"]["head"] is None


def test_grid_without_outline_leaves_it_to_the_browser():
    run = bert_pair()
    fig = panels.grid_figure(run, "self", "entropy")
    assert not fig.layout.shapes and fig.layout.meta["view"]["head"] is None and fig.layout.meta["outline_mean"]
    assert panels.grid_figure(run, "self", "entropy", "0", "1").layout.shapes[0].name == "selected"
