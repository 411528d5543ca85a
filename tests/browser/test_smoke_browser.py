"""Smoke test of the browser plumbing: dash.testing + Debian headless Chromium."""

import pytest
from dash import Dash, Input, Output, html


def _tiny_app():
    app = Dash(__name__)
    app.layout = html.Div(
        [
            html.Button("Go", id="btn", n_clicks=0),
            html.Div("waiting", id="out"),
        ]
    )

    @app.callback(Output("out", "children"), Input("btn", "n_clicks"))
    def show(n):
        return f"clicked {n}" if n else "waiting"

    return app


@pytest.mark.browser
def test_click_updates_text(dash_duo):
    dash_duo.start_server(_tiny_app())
    dash_duo.wait_for_text_to_equal("#out", "waiting")
    dash_duo.find_element("#btn").click()
    dash_duo.wait_for_text_to_equal("#out", "clicked 1")
    assert dash_duo.get_logs() == []


@pytest.mark.browser
def test_browser_logs_are_captured(dash_duo):
    """get_logs() really sees console errors, so `== []` above means something."""
    dash_duo.start_server(_tiny_app())
    dash_duo.wait_for_text_to_equal("#out", "waiting")
    dash_duo.driver.execute_script("console.error('plumbing-probe')")
    logs = dash_duo.get_logs()
    assert any("plumbing-probe" in e["message"] for e in logs), logs
    assert all(e["level"] == "SEVERE" for e in logs)
