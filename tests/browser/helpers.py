"""Helpers shared by the browser tests: wait for a condition, read what plotly.js holds in a
graph, drive controls, count server requests, check the console."""
from __future__ import annotations

import time
from urllib.parse import urlencode

import numpy as np
from selenium.webdriver.common.actions.action_builder import ActionBuilder
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from dashboard import ids

GD = "var el = document.getElementById(arguments[0]); " \
     "var g = el && (el.classList.contains('js-plotly-plot') ? el : el.querySelector('.js-plotly-plot'));"


def until(fn, timeout=20.0, interval=0.1, what="condition"):
    end = time.time() + timeout
    last = None
    while time.time() < end:
        try:
            last = fn()
            if last:
                return last
        except Exception as exc:  # noqa: BLE001 - retried until timeout
            last = exc
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last value: {last!r}")


def holds(fn, seconds=0.5, interval=0.1, what="condition"):
    """fn() stays truthy for `seconds`, polled every `interval`: the check for "nothing changes"
    (no request sent, the previous view kept, no late result), where there is no event to wait
    for. Fails at the first falsy value, naming it."""
    end = time.time() + seconds
    while True:
        value = fn()
        if not value:
            raise AssertionError(f"{what} stopped holding; value: {value!r}")
        if time.time() >= end:
            return value
        time.sleep(interval)


def idle(page, timeout=20.0):
    """Wait until dash-renderer has no callback in flight (dash.testing's redux_state_is_loading)."""
    return until(lambda: not page.redux_state_is_loading, timeout, what="the page's callbacks to finish")


def settled(page, element_id, timeout=5.0):
    """Wait until an element stops moving (after scrollIntoView / a resize): two polls in a row
    give the same bounding box. Returns the box."""
    box = [None]

    def same():
        now = js(page, "var el = document.getElementById(arguments[0]); var r = el.getBoundingClientRect();"
                       " return [r.left, r.top, r.width, r.height];", element_id)
        stable, box[0] = now == box[0], now
        return stable and now
    return until(same, timeout, interval=0.05, what=f"{element_id} to stop moving")


def open_page(page, **query):
    url = page.server_url + ("/?" + urlencode(query) if query else "/")
    page.driver.get(url)
    until(lambda: heatmap_meta(page).get("kind") == "heatmap", 40, what="the first heatmap")


def js(page, script, *args):
    return page.driver.execute_script(script, *args)


def graph_prop(page, graph_id, expr):
    return js(page, GD + f" return g ? {expr} : null;", graph_id)


def heatmap_meta(page):
    return graph_prop(page, ids.HEATMAP, "g.layout.meta || {}") or {}


def heatmap_z(page):
    return np.array(graph_prop(page, ids.HEATMAP, "g.data[0].z"), dtype=np.float64)


def shapes(page, graph_id, name=None):
    s = graph_prop(page, graph_id, "g.layout.shapes || []") or []
    return [x for x in s if name is None or x.get("name") == name]


def text_of(page, element_id):
    return js(page, "var e = document.getElementById(arguments[0]); return e ? e.textContent : null;", element_id)


def clear_box(element):
    """Empty a React-controlled text box the way a person does (element.clear() is undone by React)."""
    element.send_keys(Keys.CONTROL, "a")
    element.send_keys(Keys.DELETE)


def select(page, element_id, value):
    Select(page.find_element(f"#{element_id}")).select_by_value(value)


def count_requests(page):
    """Start counting the page's _dash-update-component requests (wraps window.fetch)."""
    js(page, """
        window.__dashRequests = 0;
        if (!window.__fetchWrapped) {
            var f = window.fetch;
            window.fetch = function (u) {
                var url = String((u && u.url) || u);
                if (url.indexOf('_dash-update-component') >= 0) { window.__dashRequests += 1; }
                return f.apply(this, arguments);
            };
            window.__fetchWrapped = true;
        }""")


def requests_sent(page):
    return js(page, "return window.__dashRequests;")


def cell_point(page, graph_id, x, y):
    """Viewport pixel (px, py) of data point (x, y) of a graph (scrolled into view first)."""
    js(page, GD + " g.scrollIntoView({block: 'center', behavior: 'instant'});", graph_id)
    settled(page, graph_id)
    return js(page, GD + """
        var fl = g._fullLayout, r = g.getBoundingClientRect();
        var xa = fl.xaxis, ya = fl.yaxis;
        return [r.left + xa._offset + xa.l2p(arguments[1]), r.top + ya._offset + ya.l2p(arguments[2])];""",
              graph_id, x, y)


def pointer_to(page, graph_id, x, y, click=False):
    px, py = cell_point(page, graph_id, x, y)
    actions = ActionBuilder(page.driver)
    actions.pointer_action.move_to_location(int(px), int(py))
    if click:
        actions.pointer_action.click()
    actions.perform()


def wait_title(page, text):
    until(lambda: text_of(page, ids.HEATMAP_TITLE) == text, 20, what=f"heatmap title {text!r}")


def no_console_errors(page):
    logs = page.get_logs()
    assert logs == [], logs
