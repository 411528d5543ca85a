"""The page's wiring without a browser: ids, JS ids, layout, the error guard, the app's callbacks."""
from pathlib import Path

import pytest
from dash import no_update

from callbacks import guard
from dashboard import ids
from models.attention import InputError
from models.registry import ModelNotFound

ROOT = Path(__file__).resolve().parents[2]


def test_no_cdn_and_no_source_map_in_assets():
    css = (ROOT / "assets" / "bootstrap.min.css").read_text()
    assert "Bootstrap  v5.3" in css[:200] and "sourceMappingURL" not in css
    for f in (ROOT / "assets").iterdir():
        text = f.read_text()
        assert "cdn." not in text and "https://cdn" not in text, f


def _walk(component):
    yield component
    children = getattr(component, "children", None)
    if children is None:
        return
    for child in children if isinstance(children, (list, tuple)) else [children]:
        if hasattr(child, "to_plotly_json"):
            yield from _walk(child)


def test_layout_has_every_id_once():
    from dashboard.layout import layout
    from services.vocabulary import page_vocabulary

    found = [c.id for c in _walk(layout(["all-MiniLM-L6-v2"], page_vocabulary())) if getattr(c, "id", None) is not None]
    strings = [i for i in found if isinstance(i, str)]
    assert len(strings) == len(set(strings))
    for name in ("URL", "RUN", "HOVER", "QUERY", "MODEL", "TEXT", "TEXT_PAIR", "RUN_BUTTON", "LAYER", "HEAD",
                 "BLOCK", "COLOR_SCALE", "SHOW_VALUES", "TEMPERATURE", "STATUS", "TRUNCATION", "STATS", "HEATMAP",
                 "HEATMAP_CONTAINER", "HEATMAP_HOVER_TITLE", "HEATMAP_LIVE", "GRID", "GRID_METRIC", "INSPECTOR",
                 "OVERVIEW", "EXPLAIN_COLLAPSE", "PRUNING_CARD", "DOWNLOAD_CSV", "CSV_BUTTON"):
        assert getattr(ids, name) in strings, name
    assert ids.svg_button(ids.HEATMAP) in found and ids.png_button(ids.GRID) in found


def test_guard_turns_errors_into_a_message(monkeypatch):
    shown = []
    monkeypatch.setattr(guard, "set_props", lambda cid, props: shown.append((cid, props)))

    @guard.guarded("testing")
    def boom(kind):
        raise {"input": InputError("The text is empty: type a sentence to run"),
               "model": ModelNotFound("Unknown model 'x'"),
               "bug": RuntimeError("/secret/path exploded")}[kind]

    assert boom("input") is no_update
    assert shown[-1] == (ids.STATUS, {"children": "The text is empty: type a sentence to run", "is_open": True,
                                      "color": "danger"})
    boom("model")
    assert shown[-1][1]["children"] == "Unknown model 'x'"
    boom("bug")
    msg = shown[-1][1]["children"]
    assert "RuntimeError" in msg and "/secret" not in msg and "Traceback" not in msg


def test_guard_lets_prevent_update_through():
    from dash.exceptions import PreventUpdate

    @guard.guarded("testing")
    def skip():
        raise PreventUpdate

    with pytest.raises(PreventUpdate):
        skip()


def dependencies(a) -> list[dict]:
    """The app's callbacks as the browser receives them (GET /_dash-dependencies, Dash's public
    endpoint; not the private app._callback_list)."""
    response = a.server.test_client().get("/_dash-dependencies")
    assert response.status_code == 200
    return response.get_json()


def test_app_assembles_without_cdn_and_with_compression(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTN_CACHE_DIR", str(tmp_path))
    import app as app_module

    a = app_module.create_app()
    assert a.config.external_stylesheets == [] and a.title == "Attention dashboard"
    assert "flask_compress" in str(type(a.server.extensions.get("compress", ""))).lower() or a.config.compress
    outputs = " ".join(a.callback_map)
    assert ids.RUN in outputs and ids.HEATMAP in outputs
    # no server callback takes hoverData: hover stays in the browser (clientside functions only)
    callbacks = dependencies(a)
    server = [cb for cb in callbacks if not cb.get("clientside_function")]
    client = [cb for cb in callbacks if cb.get("clientside_function")]
    assert len(server) >= 7 and any(i["property"] == "hoverData" for cb in client for i in cb["inputs"])
    for cb in server:
        assert all(i["property"] != "hoverData" for i in cb["inputs"]), cb["inputs"]
