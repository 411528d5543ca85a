"""The head-pruning card in real headless Chromium (dash.testing), on the embedded MiniLM.

* choose heads by clicking the grid (click, Shift+click rectangle) -> the pruned heatmap and
  the output change move away from the baseline and equal what models.pruning / service
  compute for that mask; hover stays in the browser; physical pruning reports the engine's
  parameter counts.
* the pruning curves run as a background job: the progress bar shows, Cancel stops it (no
  result, button enabled again), a second run finishes and the curves mark the current mask;
  a bad upload is a clear message.

One server + browser for the module (tests/browser/conftest.py `page`, on an empty cache
directory, so the background job really computes); each test opens the page afresh. A small
configuration (4 pairs, 1 seed) keeps the jobs to a few seconds.
"""
from __future__ import annotations

import os
import shutil
import time

import numpy as np
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys

from dashboard import ids
from dashboard import pruning_ids as P
from services import pruning_card as pv
from dashboard.urlstate import DEFAULT_HEAD, DEFAULT_LAYER, DEFAULT_MODEL, DEFAULT_TEXT
from services.views import head_matrix
from models import loader, pruning
from tests.browser.helpers import GD, holds, settled, until

TIMEOUT = 30

FIGURE_JS = GD + """
if (!g || !g.layout) { return null; }
return {meta: g.layout.meta || {}, shapes: g.layout.shapes || [],
        data: g.data.map(function (t) { return {z: t.z, x: t.x, y: t.y, name: t.name}; })};
"""
CELL_JS = GD + """
g.scrollIntoView({block: 'center', behavior: 'instant'});
var fl = g._fullLayout, r = g.getBoundingClientRect();
return [r.left + fl.xaxis._offset + fl.xaxis.l2p(arguments[2]), r.top + fl.yaxis._offset + fl.yaxis.l2p(arguments[1])];
"""


@pytest.fixture(scope="module", autouse=True)
def model_first():
    """The model loaded before the module's server thread starts (tests/browser/conftest.py
    `page`): threads born while it runs (transformers' tqdm monitor, if the page loaded the
    model) are killed by dash.testing at teardown, which pytest reports as a warning."""
    loader.get_loaded(DEFAULT_MODEL)


@pytest.fixture
def duo(page):
    """The module's DashComposite (what dash_duo is in dash.testing: one server + browser per module,
    serving app.create_app() on a fresh cache directory), on a freshly opened page."""
    page.driver.get(page.server_url + "/")
    page.wait_for_text_to_equal(f"#{P.COUNT}", "0 of 72 heads pruned (0%)", timeout=TIMEOUT)
    page.wait_for_element(f"#{P.BASE_HEATMAP} .js-plotly-plot", timeout=TIMEOUT)
    page.get_logs()  # start each test with an empty console log
    return page


def _js(duo, body: str, *args):
    return duo.driver.execute_script(body, *args)


def _figure(duo, graph_id: str) -> dict:
    """{"meta", "shapes", "data": [{"z", "x", "y", "name"}]} of a graph as plotly.js holds it."""
    return _js(duo, FIGURE_JS, graph_id)


def _wait(predicate, timeout=TIMEOUT, what="condition"):
    return until(predicate, timeout, what=what)


def _cell_point(duo, graph_id: str, layer: int, head: int) -> tuple[int, int]:
    """Viewport coordinates of the centre of cell (layer, head) of a layers x heads grid
    (of cell (query, key) of a heatmap)."""
    x, y = _js(duo, CELL_JS, graph_id, layer, head)
    return int(round(x)), int(round(y))


def _pointer(duo, graph_id: str, layer: int, head: int, *, click: bool = True, shift: bool = False) -> None:
    x, y = _cell_point(duo, graph_id, layer, head)
    x, y = _cell_point(duo, graph_id, layer, head)  # again: after the scroll settled
    ac = ActionChains(duo.driver)
    if shift:
        ac.key_down(Keys.SHIFT)
    ac.w3c_actions.pointer_action.move_to_location(x, y)
    ac.w3c_actions.key_action.pause()
    if click:
        ac.click()
    if shift:
        ac.key_up(Keys.SHIFT)
    ac.perform()


def _pruned_cells(duo) -> set[tuple[int, int]]:
    fig = _figure(duo, P.SELECT_GRID)
    marks = [t for t in fig["data"] if t["name"] == "pruned"]
    return set() if not marks else {(int(y), int(x)) for x, y in zip(marks[0]["x"], marks[0]["y"])}


def _click(duo, selector: str) -> None:
    """Scroll a button to the middle of the window and click it (nothing sticky in the way)."""
    el = duo.find_element(selector)
    duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'});", el)
    el.click()


def _count_requests(duo) -> int:
    return _js(duo, "return window.__pruningRequests || 0;")


def _install_request_counter(duo) -> None:
    _js(duo, """
        if (window.__pruningFetch) { return; }
        window.__pruningFetch = window.fetch;
        window.__pruningRequests = 0;
        window.fetch = function () {
            window.__pruningRequests += 1;
            return window.__pruningFetch.apply(this, arguments);
        };
    """)


@pytest.mark.browser
def test_choose_heads_changes_the_pruned_view(duo):
    # the browser's toggle is the Python reference (pruning_views.toggle_mask)
    cases = [([[1, 1, 1], [1, 1, 1]], 0, 1, False, None),
             ([[1, 0, 1], [1, 1, 1]], 1, 2, True, {"layer": 0, "head": 1, "value": 0}),
             ([[0, 0, 0], [0, 0, 0]], 1, 0, True, {"layer": 0, "head": 2, "value": 1}),
             ([[1, 0, 1], [1, 1, 1]], 0, 1, True, None)]
    for mask, layer, head, shift, anchor in cases:
        js_mask, js_anchor = _js(duo, "return dash_clientside.pruning._toggleMask(arguments[0], arguments[1],"
                                 " arguments[2], arguments[3], arguments[4], 2, 3);", mask, layer, head, shift, anchor)
        py_mask, py_anchor = pv.toggle_mask(np.array(mask), layer, head, shift=shift, anchor=anchor)
        assert js_mask == py_mask.astype(int).tolist() and js_anchor == py_anchor

    rect = {(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)}
    expected = rect - {(1, 1)}
    for (layer, head, shift), cells, count in [
        ((0, 0, False), {(0, 0)}, "1 of 72 heads pruned (1%)"),            # click: prune L0 H0
        ((1, 2, True), rect, "6 of 72 heads pruned (8%)"),                 # shift-click: L0-1 x H0-2
        ((1, 1, False), expected, "5 of 72 heads pruned (7%)"),            # click: restore L1 H1
    ]:
        _pointer(duo, P.SELECT_GRID, layer, head, shift=shift)
        duo.wait_for_text_to_equal(f"#{P.COUNT}", count, timeout=TIMEOUT)
        # the grid redrawn with its × marks before the next click (a click while plotly redraws,
        # or within its double-click time, is not a click)
        _wait(lambda: _pruned_cells(duo) == cells, what=f"the × marks of {sorted(cells)}")
        time.sleep(0.4)  # a required gap, not a wait: plotly takes two clicks within 300 ms for a double-click
    mask = pruning.mask_from_heads(6, 12, sorted(expected))

    # what the engine says for this mask (same service, same cache)
    cmp_ = pruning.compare(DEFAULT_MODEL, DEFAULT_TEXT, mask)
    cos = cmp_["output"]["embedding_cosine"]
    assert cos < 0.9999
    duo.wait_for_text_to_equal("#" + _css_id(P.output_value("cosine")), f"{cos:.4f}", timeout=TIMEOUT)
    shown = float(duo.find_element("#" + _css_id(P.output_value("cosine"))).text)
    assert abs(shown - cos) < 1e-3 and abs(shown - 1.0) > 1e-3

    base_w = head_matrix(cmp_["base"], "self", DEFAULT_LAYER, DEFAULT_HEAD).matrix
    pruned_w = head_matrix(cmp_["pruned"], "self", DEFAULT_LAYER, DEFAULT_HEAD).matrix
    assert np.abs(base_w - pruned_w).max() > 1e-2  # layer 3 sees the change of layers 0-1

    def heatmaps_match():
        b = np.array(_figure(duo, P.BASE_HEATMAP)["data"][0]["z"], dtype=float)
        p = np.array(_figure(duo, P.PRUNED_HEATMAP)["data"][0]["z"], dtype=float)
        return (b.shape == base_w.shape and np.abs(b - base_w).max() < 1e-3 and np.abs(p - pruned_w).max() < 1e-3)
    _wait(heatmaps_match, what="baseline / pruned heatmaps equal to the engine's runs")

    js = pruning.attention_change(cmp_["base"], cmp_["pruned"])
    change = _figure(duo, P.CHANGE_GRID)
    z = np.array([[np.nan if v is None else v for v in row] for row in change["data"][0]["z"]], dtype=float)
    keep = mask == 1
    np.testing.assert_allclose(z[keep], js[keep], atol=1e-3)
    assert np.all(np.isnan(z[~keep]))

    # hover on the card's grid: the page's heatmap card names the head, with no server request
    _install_request_counter(duo)
    before = _count_requests(duo)
    _pointer(duo, P.CHANGE_GRID, 4, 7, click=False)
    duo.wait_for_contains_text(f"#{ids.HEATMAP_HOVER_TITLE}", "Hovering L4 H7", timeout=10)
    hover_shapes = [s for s in _figure(duo, ids.GRID)["shapes"] if s.get("name") == "hover"]
    assert hover_shapes and hover_shapes[0]["x0"] == pytest.approx(6.5) and hover_shapes[0]["y0"] == pytest.approx(3.5)
    _pointer(duo, P.SELECT_GRID, 2, 3, click=False)
    duo.wait_for_contains_text(f"#{ids.HEATMAP_HOVER_TITLE}", "Hovering L2 H3", timeout=10)
    # hover on the card's baseline heatmap: the page's heatmap and the pruned one show the same cell
    _pointer(duo, P.BASE_HEATMAP, 2, 5, click=False)  # query 2, key 5

    def crossed(graph_id):
        shapes = [s for s in _figure(duo, graph_id)["shapes"] if s.get("name") == "hover"]
        outlines = [s for s in shapes if s.get("fillcolor") == "rgba(0,0,0,0)"]
        return sorted((round(s["x0"], 1), round(s["y0"], 1)) for s in outlines)
    expected_cross = [(-0.5, 1.5), (4.5, -0.5)]  # row 2 and column 5 outlined
    _wait(lambda: crossed(ids.HEATMAP) == expected_cross, what="the cross on the page's heatmap")
    _wait(lambda: crossed(P.PRUNED_HEATMAP) == expected_cross, what="the cross on the pruned heatmap")
    holds(lambda: _count_requests(duo) == before, what="no request for the hover")

    # physical pruning of the same 5 heads: the engine's parameter counts
    _click(duo, f"#{P.PHYSICAL_BUTTON}")
    loaded = loader.get_loaded(DEFAULT_MODEL)
    small = pruning.physically_prune(loaded, mask)
    row = duo.wait_for_element(f"#{_css_id(P.physical_row('params'))}",
                                    timeout=TIMEOUT)
    cells = row.find_elements("css selector", "td")
    assert cells[1].text == f"{pruning.param_count(loaded.model):,}"
    assert cells[2].text == f"{pruning.param_count(small.model):,}"
    assert duo.get_logs() == []


@pytest.mark.browser
def test_keyboard_moves_and_toggles_heads(duo):
    """The choose-heads grid without a mouse: arrows move (the head is outlined in the page's
    grid and named in the heatmap card, as on hover), Space toggles, Shift+Space extends."""
    box = duo.find_element(f"#{P.SELECT_GRID_BOX}")
    duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'});"
                              "arguments[0].focus();", box)
    _wait(lambda: _js(duo, "return document.activeElement.id;") == P.SELECT_GRID_BOX, what="focus")
    _install_request_counter(duo)
    before = _count_requests(duo)
    ActionChains(duo.driver).send_keys(Keys.ARROW_RIGHT, Keys.ARROW_RIGHT, Keys.ARROW_DOWN).perform()
    duo.wait_for_contains_text(f"#{ids.HEATMAP_HOVER_TITLE}", "Hovering L1 H1", timeout=10)
    hover = [s for s in _figure(duo, ids.GRID)["shapes"] if s.get("name") == "hover"]
    assert hover and hover[0]["x0"] == pytest.approx(0.5) and hover[0]["y0"] == pytest.approx(0.5)
    holds(lambda: _count_requests(duo) == before, what="no request for moving")  # moving is browser-only

    def shift_space(ac):
        return ac.key_down(Keys.SHIFT).send_keys(Keys.SPACE).key_up(Keys.SHIFT)

    for keys, cells, count in [
        (lambda ac: ac.send_keys(Keys.SPACE), {(1, 1)}, "1 of 72 heads pruned (1%)"),    # L1 H1 off
        (lambda ac: shift_space(ac.send_keys(Keys.ARROW_RIGHT, Keys.ARROW_RIGHT)),
         {(1, 1), (1, 2), (1, 3)}, "3 of 72 heads pruned (4%)"),                          # L1 H1-3 off
        (lambda ac: ac.send_keys(Keys.ENTER), {(1, 1), (1, 2)}, "2 of 72 heads pruned (3%)"),  # H3 back on
    ]:
        keys(ActionChains(duo.driver)).perform()
        duo.wait_for_text_to_equal(f"#{P.COUNT}", count, timeout=TIMEOUT)
        _wait(lambda: _pruned_cells(duo) == cells, what=f"the × marks of {sorted(cells)}")
    assert duo.get_logs() == []


def test_curves_progress_cancel_and_result(duo, tmp_path):
    driver = duo.driver

    # a bad upload: a clear message, the corpus stays the bundled pairs
    bad = tmp_path / "pairs.txt"
    bad.write_text("a first sentence\tits paraphrase\nno separator on this line\n", encoding="utf-8")
    duo.find_element(f"#{P.UPLOAD} input[type=file]").send_keys(str(bad))
    duo.wait_for_contains_text(f"#{P.STATUS}", "pairs.txt: line 2: no separator", timeout=TIMEOUT)
    assert "bundled" in duo.find_element(f"#{P.CORPUS_INFO}").text
    # the fixed file (same name): read, the message goes; then back to the bundled pairs
    bad.write_text("a first sentence\tits paraphrase\nsecond one ||| the second one\n", encoding="utf-8")
    duo.find_element(f"#{P.UPLOAD} input[type=file]").send_keys(str(bad))
    duo.wait_for_text_to_equal(f"#{P.CORPUS_INFO}", "Corpus: pairs.txt (2 pairs).", timeout=TIMEOUT)
    duo.wait_for_no_elements(f"#{P.STATUS}", timeout=TIMEOUT)  # a closed dbc.Alert leaves the DOM
    _click(duo, f"#{P.CORPUS_RESET}")
    duo.wait_for_contains_text(f"#{P.CORPUS_INFO}", "bundled", timeout=TIMEOUT)

    # small, but slow enough to watch: 4 pairs, 1 seed, importance + random orders, and for the
    # cancelled run ablation too (one evaluation per head)
    duo.clear_input(f"#{P.PAIRS_INPUT}")
    duo.find_element(f"#{P.PAIRS_INPUT}").send_keys("4")
    duo.clear_input(f"#{P.SEEDS_INPUT}")
    duo.find_element(f"#{P.SEEDS_INPUT}").send_keys("1")
    duo.wait_for_contains_text(f"#{P.LOSS_NOTE}", "the first 4 of 64", timeout=TIMEOUT)
    order = {o: driver.find_element("css selector", f"#{P.ORDERS} input[value={o}]")
             for o in ("importance", "entropy", "random", "ablation")}
    for o in ("importance", "entropy", "random"):  # none: the background job's message reaches the page
        driver.execute_script("arguments[0].click();", order[o])
    _click(duo, f"#{P.CURVES_BUTTON}")
    duo.wait_for_contains_text(f"#{P.STATUS}", "Choose at least one pruning order", timeout=TIMEOUT)
    _wait(lambda: duo.find_element(f"#{P.CURVES_BUTTON}").is_enabled(), what="the button enabled again")
    for o in ("importance", "random", "ablation"):
        driver.execute_script("arguments[0].click();", order[o])

    _click(duo, f"#{P.CURVES_BUTTON}")
    wrap = f"#{P.CURVES_PROGRESS_WRAP}"
    _wait(lambda: duo.find_element(wrap).is_displayed(), what="the progress bar")
    assert not duo.find_element(f"#{P.CURVES_BUTTON}").is_enabled()

    def progress() -> int:
        bar = duo.find_element(f"#{P.CURVES_PROGRESS} .progress-bar")
        return int(float(bar.get_attribute("aria-valuenow") or 0))
    _wait(lambda: progress() > 0, what="progress above 0%")
    assert "passes over the corpus" in duo.find_element(f"#{P.CURVES_PROGRESS_TEXT}").text  # units of real work
    _click(duo, f"#{P.CURVES_CANCEL}")
    _wait(lambda: not duo.find_element(wrap).is_displayed(), what="the progress bar to go")
    _wait(lambda: duo.find_element(f"#{P.CURVES_BUTTON}").is_enabled(), what="the button enabled again")
    _wait(lambda: duo.find_element(f"#{P.CURVES_INFO}").text.startswith("Cancelled at "),
          what="the cancelled state")
    holds(lambda: _figure(duo, P.CURVES_GRAPH)["meta"]["kind"] == "empty", seconds=2.0,
          what="no curves from the cancelled job")  # a killed job must not deliver a result later
    assert not duo.find_element(wrap).is_displayed()

    # again without ablation: runs to the end
    driver.execute_script("arguments[0].click();", order["ablation"])
    _click(duo, f"#{P.CURVES_BUTTON}")
    _wait(lambda: duo.find_element(wrap).is_displayed(), what="the progress bar (second run)")
    _wait(lambda: _figure(duo, P.CURVES_GRAPH)["meta"].get("kind") == "pruning_curves", timeout=60,
          what="the curves")
    assert duo.find_element(f"#{P.CURVES_BUTTON}").is_enabled()
    fig = _figure(duo, P.CURVES_GRAPH)
    assert fig["meta"]["orders"] == ["importance", "random"]
    assert fig["meta"]["current_share"] == 0

    # the curves brought the importance: prune the 18 least important; the line moves to 25%
    _wait(lambda: _figure(duo, P.SELECT_GRID)["meta"].get("metric") == "importance", what="importance grid")
    _click(duo, f"#{P.K_BUTTON}")
    duo.wait_for_text_to_equal(f"#{P.COUNT}", "18 of 72 heads pruned (25%)", timeout=TIMEOUT)
    _wait(lambda: _figure(duo, P.CURVES_GRAPH)["meta"].get("current_share") == pytest.approx(0.25),
          what="the current-share line at 25%")
    line = [s for s in _figure(duo, P.CURVES_GRAPH)["shapes"] if s.get("name") == "current-share"]
    assert line and line[0]["x0"] == pytest.approx(0.25)
    assert "contrastive" in duo.find_element(f"#{P.LOSS_NOTE}").text

    _click(duo, f"#{P.PHYSICAL_BUTTON}")
    duo.wait_for_element(f"#{_css_id(P.physical_row('latency'))}", timeout=TIMEOUT)
    _screenshot(duo, tmp_path)
    assert duo.get_logs() == []


def _css_id(component_id) -> str:
    """CSS selector body for a (possibly dict) Dash id, as Dash renders it in the DOM."""
    if isinstance(component_id, str):
        return component_id
    import json

    from dash._utils import stringify_id

    s = stringify_id(component_id)
    assert json.loads(s) == component_id
    return "".join("\\" + c if not c.isalnum() and c not in "-_" else c for c in s)


def _screenshot(duo, tmp_path) -> None:
    """The card as a PNG (ATTN_SCREENSHOT_DIR=... keeps a copy to look at)."""
    driver = duo.driver
    card = duo.find_element(f"#{ids.PRUNING_CARD}")
    driver.set_window_size(1500, 2600)
    driver.execute_script("arguments[0].scrollIntoView({block: 'start', behavior: 'instant'});", card)
    settled(duo, ids.PRUNING_CARD)
    path = tmp_path / "pruning-card.png"
    card.screenshot(str(path))
    out = os.environ.get("ATTN_SCREENSHOT_DIR")
    if out:
        os.makedirs(out, exist_ok=True)
        shutil.copy(path, os.path.join(out, "pruning-card.png"))
