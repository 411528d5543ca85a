"""Issue 12's findings that a request can provoke, checked through the app's callback endpoint
(Flask test client, requests built from /_dash-dependencies by bench.client).

Finding 1: urlstate.encode looped forever on a long model / block / layer / query.
Finding 3: the browser's run store decided how many layers/heads the server allocated.
Finding 5: an 8 MB text was tokenised whole and echoed back through every callback.
Finding 8: 500s instead of a message or a 400 (unguarded callbacks, deep nesting, outputs that
           are not the callback's, a layer of "²" or of 4,300+ digits).
Each callback call runs in a thread joined with a timeout, so a regression to the endless loop
fails the test instead of hanging it.
"""
from __future__ import annotations

import json
import threading

import pytest

from dashboard import pruning_ids as P
from services import pruning_card as pv
from models import service
from bench.client import Session, response_value

from .conftest import load_app, tab_with_a_run

GOOD = "The cat sat on the mat because it was tired."
GENERIC = "Something went wrong"


@pytest.fixture(scope="module")
def app():
    return load_app()


@pytest.fixture
def tab(app, tmp_path, monkeypatch):
    return tab_with_a_run(app, tmp_path / "cache", monkeypatch, GOOD)


def bounded(fn, seconds: float = 20.0):
    """fn() in a daemon thread; fails the test when it does not return within `seconds`."""
    out: dict = {}

    def target():
        try:
            out["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - reported below
            out["error"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"the call did not return within {seconds} s"
    if "error" in out:
        raise out["error"]
    return out["value"]


def post(tab: Session, prop_id: str, values: dict, changed: list[str] | None = None):
    c = tab.client
    cb = c.callback_for(prop_id)
    body = c.body(cb, {**tab.values, **values}, changed)
    return bounded(lambda: c.post(body))


def page_message(data) -> str:
    return json.dumps((data or {}).get("sideUpdate") or {}) + json.dumps((data or {}).get("response") or {})


# ---- finding 1 -------------------------------------------------------------------------------
@pytest.mark.parametrize("field, value", [
    ("block-dropdown.value", "b" * 4000), ("layer-dropdown.value", "9" * 4000),
    ("query-store.data", int("1" * 4000)), ("model", "m" * 4000)])
def test_url_writer_terminates_on_long_fields(tab, field, value):
    values = {}
    if field == "model":
        store = json.loads(json.dumps(tab.values["run-store.data"]))
        store["request"]["model"] = value
        values["run-store.data"] = store
    else:
        values[field] = value
    status, data = post(tab, "url-written-store.data", values)  # the callback that writes the URL
    assert status in (200, 204, 400), (status, data)
    if status == 200:
        search = response_value(data, "url-written-store", "data")
        assert isinstance(search, str) and len(search) <= 3600


# ---- finding 3 -------------------------------------------------------------------------------
def test_sizes_come_from_the_server_run_not_the_store(tab):
    store = json.loads(json.dumps(tab.values["run-store.data"]))
    store["summary"]["blocks"][0].update(layers=4_000_000, heads=4_000_000)
    status, data = post(tab, "layer-dropdown.options", {"run-store.data": store, "block-dropdown.value": "self",
                                                        "layer-dropdown.options": []},
                        changed=["block-dropdown.value"])
    assert status in (200, 204)
    assert tab.client.last_bytes < 20_000
    if status == 200:
        assert len(response_value(data, "layer-dropdown", "options")) == 6
    status, data = post(tab, f"{P.SELECT_PAYLOAD}.data", {"run-store.data": store})
    assert status == 200 and tab.client.last_bytes < 200_000
    assert "6 layers" in json.dumps(data) or "of 72 heads" in json.dumps(data)


def test_corpus_limit_is_enforced_where_the_job_starts(tab):
    """A corpus store posted directly (not through the upload) with 20,000 pairs: refused with a
    message before any model work."""
    corpus = {"name": "forged", "pairs": [["a b", "c d"]] * 20_000}
    with pytest.raises(pv.PanelError, match="at most 2000 sentence pairs"):
        pv.compute_importance(tab.values["run-store.data"], corpus, None)
    with pytest.raises(pv.PanelError, match="at most 2000 sentence pairs"):
        pv.compute_curves(tab.values["run-store.data"], corpus, None, ["random"], 1)


# ---- finding 5 -------------------------------------------------------------------------------
def test_long_text_is_cut_before_tokenising_and_not_echoed(tab, monkeypatch):
    monkeypatch.setenv("ATTN_MAX_TEXT_CHARS", "20000")
    long_text = "word " * 200_000  # 1,000,000 characters
    n = tab.values["run-button.n_clicks"] + 1
    bounded(lambda: tab.change({"text-input.value": long_text, "run-button.n_clicks": n},
                               trigger=["run-button.n_clicks"]), 120)
    assert not tab.errors
    req = tab.values["run-store.data"]["request"]
    assert req["text"] == long_text[:20_000]
    assert tab.values["truncation-alert.is_open"] is True  # the usual "text cut" note
    # what the panels get back is bounded by the cap, not by the 1 MB text
    assert all(nbytes < 2_000_000 for _, _, nbytes, _ in tab.calls[-10:])
    assert service.RunRequest.create("m", "x" * 50_000).text == "x" * 20_000


# ---- finding 8 -------------------------------------------------------------------------------
def test_importance_info_and_curve_metrics_do_not_500(tab):
    status, data = post(tab, f"{P.IMPORTANCE_INFO}.children", {"run-store.data": "request", P.IMPORTANCE + ".data": None})
    assert status in (200, 204, 400), data
    status, data = post(tab, f"{P.CURVE_METRIC}.options", {P.CURVES + ".data": ["not", "a", "dict"]})
    assert status in (200, 204, 400), data
    status, data = post(tab, f"{P.CURVE_METRIC}.options", {P.CURVES + ".data": {"metrics": 5, "primary": []}})
    assert status in (200, 204, 400), data


def test_deep_nesting_is_a_400(tab):
    c = tab.client
    cb = c.callback_for("heatmap-payload.data")
    body = c.body(cb, tab.values)
    for depth in (60, 5000):
        deep = "[" * depth + "1" + "]" * depth
        raw = json.dumps({**body, "changedPropIds": []})[:-1] + ', "x": ' + deep + "}"
        status, data = bounded(lambda: c.post(None, raw_body=raw))
        assert status == 400, (depth, status, data)
    body["inputs"][0]["value"] = json.loads("[" * 30 + "]" * 30)
    status, data = c.post(body)
    assert status == 400 and "nested" in json.dumps(data)


def test_outputs_that_are_not_the_callbacks_are_a_400(tab):
    c = tab.client
    cb = c.callback_for("grid-payload.data")
    body = c.body(cb, tab.values)
    body["outputs"] = {"id": "heatmap-payload", "property": "data"}
    status, data = c.post(body)
    assert status == 400, (status, data)
    body["outputs"] = [{"id": "grid-payload", "property": "data"}, {"id": "x", "property": "y"}]
    status, data = c.post(body)
    assert status == 400, (status, data)


@pytest.mark.parametrize("layer", ["²", "9" * 4301, "٣", "-1", "1e3", " 3 "])
def test_odd_layer_values_are_clamped_not_errors(tab, layer):
    status, data = post(tab, "heatmap-payload.data", {"layer-dropdown.value": layer, "head-dropdown.value": "1"})
    assert status == 200, (status, data)
    assert GENERIC not in page_message(data)
    assert response_value(data, "heatmap-payload", "data")  # drawn, for a clamped layer
