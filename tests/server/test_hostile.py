"""Hostile input, sent straight to the callback endpoint with the Flask test client.

Request bodies are built from the app's own callback map (GET /_dash-dependencies) and layout,
as dash-renderer builds them (bench.client). Each case: a clear message in the page (the
status alert, or the truncation note), the previous view kept (the run store untouched), no
traceback, and the app still answers normally afterwards. Model names only ever come from the
registry; nothing read from the cache is unpickled.
"""
from __future__ import annotations

import json

import pytest

from models import registry
from bench.client import DashClient, Session

from .conftest import load_app, tab_with_a_run

GOOD = "The cat sat on the mat because it was tired."
GENERIC = "Something went wrong"

VALID_ODD_TEXTS = {
    "emoji and combining marks": "Cafe\u0301 na\u0308ive \U0001F600\U0001F44D\U0001F3FD family \U0001F468\u200d\U0001F469\u200d\U0001F467 Z\u0351\u0352\u0353algo",
    "right-to-left": "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd and \u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645 \u202eevil\u202c mixed",
    "zero-width and control characters with NUL": "zero\u200bwidth\u200c join\u200d\ufeff bom \x00nul\x01\x07bell\x1b[31mred\x7f end",
    "script and HTML": '<script>window.__xss=1</script><img src=x onerror="window.__xss=2"><b>bold</b> &amp; "q" \'s\'',
}


@pytest.fixture(scope="module")
def app():
    return load_app()


@pytest.fixture
def tab(app, tmp_path, monkeypatch):
    """A tab that already shows a good run (the view to keep)."""
    return tab_with_a_run(app, tmp_path / "cache", monkeypatch, GOOD)


def _run(tab: Session, text=None, model=None) -> list:
    n = (tab.values.get("run-button.n_clicks") or 0) + 1
    values = {"run-button.n_clicks": n, "status-alert.children": None, "status-alert.is_open": False}
    if text is not None:
        values["text-input.value"] = text
    if model is not None:
        values["model-dropdown.value"] = model
    return tab.change(values, trigger=["run-button.n_clicks"])


def _message(tab: Session) -> str:
    msg = tab.values.get("status-alert.children")
    return msg if isinstance(msg, str) else json.dumps(msg)


@pytest.mark.parametrize("text", ["", "   \n\t  \u3000 "], ids=["empty", "whitespace"])
def test_empty_text_message_and_view_kept(tab, text):
    before = dict(tab.values)
    calls = _run(tab, text)
    assert all(status in (200, 204) for _, status, _, _ in calls), calls
    assert not tab.errors
    assert "empty" in _message(tab).lower() and GENERIC not in _message(tab)
    assert tab.values["run-store.data"] == before["run-store.data"]
    assert tab.values["heatmap-payload.data"] == before["heatmap-payload.data"]


@pytest.mark.parametrize("name", sorted(VALID_ODD_TEXTS))
def test_odd_but_valid_text_runs_and_is_shown_as_text(tab, name):
    text = VALID_ODD_TEXTS[name]
    calls = _run(tab, text)
    assert all(status in (200, 204) for _, status, _, _ in calls), calls
    assert not tab.errors and GENERIC not in _message(tab)
    store = tab.values["run-store.data"]
    assert store["request"]["text"] == text  # kept as data, exactly
    assert len(store["summary"]["source_tokens"]) >= 3
    # token labels reach Plotly escaped: its SVG text never sees a tag it could act on
    heat = tab.values["heatmap-payload.data"]["figure"]
    for axis in ("xaxis", "yaxis"):
        labels = json.dumps(heat["layout"].get(axis, {}).get("ticktext", []))
        assert "<script" not in labels and "<img" not in labels


def test_fifty_thousand_characters_are_cut_with_a_note(tab):
    text = ("All work and no play makes Jack a dull boy. " * 1200)[:50_000]
    assert len(text) == 50_000
    calls = _run(tab, text)
    assert all(status in (200, 204) for _, status, _, _ in calls), calls
    assert not tab.errors and GENERIC not in _message(tab)
    summary = tab.values["run-store.data"]["summary"]
    assert len(summary["source_tokens"]) == 512 and summary["truncations"]
    assert tab.values["truncation-alert.is_open"] is True
    assert "512" in json.dumps(tab.values["truncation-alert.children"])


@pytest.mark.parametrize("model", ["gpt-17", "../../etc", "/etc/passwd", "all-MiniLM-L6-v2/../../../etc", "",
                                   "all-MiniLM-L6-v2\x00", "ALL-MINILM-L6-V2"])
def test_unknown_and_path_like_model_names_are_refused(tab, model, monkeypatch):
    _refused(tab, model, monkeypatch)


@pytest.mark.parametrize("model", [{"__class__": "x"}, ["all-MiniLM-L6-v2"], 12],
                         ids=["dict", "list", "int"])
def test_model_values_that_are_not_names_are_refused(tab, model, monkeypatch):
    """JSON lets a client send any type where the dropdown sends a string."""
    _refused(tab, model, monkeypatch)


def _refused(tab, model, monkeypatch):
    touched = []
    real = registry.resolve_location
    monkeypatch.setattr(registry, "resolve_location", lambda spec: touched.append(spec) or real(spec))
    before = tab.values["run-store.data"]
    calls = _run(tab, GOOD + " again", model=model)
    assert all(status in (200, 204) for _, status, _, _ in calls), calls
    assert not tab.errors
    msg = _message(tab)
    assert "Unknown model" in msg and "all-MiniLM-L6-v2" in msg  # says what is available
    assert tab.values["run-store.data"] == before
    assert touched == []  # no filesystem lookup for a name outside the registry
    from models import loader

    assert set(loader.loaded_names()) <= set(registry.model_names()) | {n for n in loader.loaded_names()
                                                                        if n.startswith("tiny-")}


def test_model_choices_come_from_the_registry(app):
    c = DashClient.flask(app.server.test_client())
    options = c.initial("model-dropdown", "options")
    assert [o["value"] if isinstance(o, dict) else o for o in options] == registry.model_names()


def _malformed_bodies(client: DashClient) -> dict:
    run_cb = client.callback_for("run-store.data")
    good = client.body(run_cb, {"text-input.value": GOOD}, ["run-button.n_clicks"])
    wrong_count = dict(good, inputs=good["inputs"][:1])
    bad_input = dict(good, inputs=[{"id": "text-input"}] + good["inputs"][1:])
    return {
        "not JSON": b"{not json",
        "not UTF-8": b"\xff\xfe\x00{",
        "a JSON list": b"[1, 2, 3]",
        "a JSON string": b'"hello"',
        "output not a string": json.dumps(dict(good, output=5)).encode(),
        "no such callback": json.dumps(dict(good, output="nope.children")).encode(),
        "inputs not a list": json.dumps(dict(good, inputs="x")).encode(),
        "input without a property": json.dumps(bad_input).encode(),
        "wrong number of inputs": json.dumps(wrong_count).encode(),
        "changedPropIds not strings": json.dumps(dict(good, changedPropIds=[1])).encode(),
        "empty body": b"",
    }


def test_malformed_callback_json_is_a_400_and_nothing_breaks(app, tab):
    client = tab.client
    for name, raw in _malformed_bodies(client).items():
        status, data = client.post(None, raw_body=raw)
        assert status == 400, (name, status, data)
        assert "Traceback" not in json.dumps(data)
    status, data = client.post(None, raw_body=b"{" + b" " * (9 * 2**20) + b"}")
    assert status == 413
    # the app still works
    _run(tab, "Still working after the garbage.")
    assert not tab.errors and tab.values["run-store.data"]["request"]["text"] == "Still working after the garbage."


def test_background_results_are_stored_as_json(app):
    """Dash's DiskcacheManager pickles results by default; this app's manager stores JSON only
    (serving.redis_backend.JSONOnlyDisk), or runs on Celery with JSON messages."""
    from dash import CeleryManager

    from serving.redis_backend import JSONOnlyDisk

    manager = app._background_manager  # no public accessor in dash 4.4 (Dash(background_callback_manager=) keeps it)
    assert isinstance(manager, CeleryManager) or isinstance(manager.handle.disk, JSONOnlyDisk)


def test_nothing_read_from_the_cache_is_unpickled(tab, monkeypatch):
    """Every pickle entry point diskcache could use raises; a run read back from disk still works."""
    import pickle
    import types

    import diskcache.core

    from models import service

    def refuse(*a, **k):
        raise AssertionError("something tried to unpickle cache data")

    fake = types.SimpleNamespace(**{k: getattr(pickle, k) for k in dir(pickle) if not k.startswith("_")})
    fake.load = fake.loads = fake.Unpickler = refuse
    monkeypatch.setattr(diskcache.core, "pickle", fake)
    monkeypatch.setattr(diskcache.core, "pickletools", types.SimpleNamespace(optimize=lambda x: x), raising=False)
    service.clear_memory()  # the next read of GOOD's run goes to the disk cache
    _run(tab, GOOD)
    assert not tab.errors and GENERIC not in _message(tab)
    tab.change({"head-dropdown.value": "2"})
    assert not tab.errors and tab.values["heatmap-payload.data"]["matrix"]["b64"]


@pytest.mark.browser
def test_html_in_the_text_is_never_executed(dash_duo, app, tmp_path, monkeypatch):
    """In real Chromium: the script/img text is shown as text and nothing of it runs."""
    monkeypatch.setenv("ATTN_CACHE_DIR", str(tmp_path / "cache"))
    dash_duo.start_server(app)
    text = VALID_ODD_TEXTS["script and HTML"]
    dash_duo.wait_for_element("#heatmap-container .js-plotly-plot", timeout=60)
    box = dash_duo.find_element("#text-input")
    box.clear()
    box.send_keys(text)
    dash_duo.find_element("#run-button").click()
    dash_duo.wait_for_contains_text("#heatmap-container", "script", timeout=60)
    assert dash_duo.driver.execute_script("return window.__xss === undefined")
    assert dash_duo.driver.execute_script("return document.querySelectorAll('img[src=\"x\"]').length") == 0
    assert [e for e in dash_duo.get_logs() if "__xss" in e["message"]] == []
