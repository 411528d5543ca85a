"""Instant switches (issue 15), counted in real Chromium at ~200 tokens: a head switch within the
loaded layer sends NO request, and every panel that depends on the head (heatmap, stats, grid
outlines, overview outline, inspector, text view, URL) shows the new head's numbers, equal to the
engine's; a layer switch sends at most 2 requests. The cards below the fold that need the server
for a head (pruning comparison, research card) follow the selection when they come into view.
Timing is in bench/browser.py (never timed here)."""
from __future__ import annotations

import re
import time

import numpy as np
import pytest

from dashboard import ids, urlstate
from dashboard import pruning_ids as P
from models import attention, loader
from tests.browser.helpers import (count_requests, heatmap_meta, heatmap_z, holds, js, no_console_errors,
                                   open_page, requests_sent, select, shapes, text_of, until, wait_title)

pytestmark = pytest.mark.browser

SENTENCE = ("The committee reviewed the proposal carefully, and after a long discussion about costs, risks "
            "and benefits, it decided to fund the first phase of the project. ")
TOL = 1e-3  # 16-bit codes (step <= 1/65534) of float16-stored weights; the page rounds bars to 3 decimals

SPAN_WEIGHTS = """
return Array.prototype.map.call(document.querySelectorAll('#' + arguments[0] + ' .tv-tok'), function (s) {
    return Number(/weight ([0-9.]+)/.exec(s.title)[1]);
});"""
TABLE_ROWS = """
return Array.prototype.map.call(document.querySelectorAll('#' + arguments[0] + ' tbody tr'), function (tr) {
    return Array.prototype.map.call(tr.querySelectorAll('td'), function (td) { return td.textContent; });
});"""


@pytest.fixture(scope="module")
def text_and_run():
    loaded = loader.get_loaded(urlstate.DEFAULT_MODEL)
    text = ""
    while len(loaded.tokenizer(text)["input_ids"]) < 200:
        text += SENTENCE
    return text, attention.extract(loaded, text)


INFLIGHT = """
if (!window.__inflightWrapped) {
    window.__inflight = 0;
    var f = window.fetch;
    window.fetch = function (u) {
        var url = String((u && u.url) || u);
        if (url.indexOf('_dash-update-component') < 0) { return f.apply(this, arguments); }
        window.__inflight += 1;
        var done = function () { window.__inflight -= 1; };
        var p = f.apply(this, arguments);
        p.then(done, done);
        return p;
    };
    window.__inflightWrapped = true;
}"""


def settle(page, quiet=1.0, timeout=60.0):
    """Wait until no callback request has been in flight for `quiet` seconds."""
    js(page, INFLIGHT)
    end, since = time.time() + timeout, time.time()
    while time.time() < end:
        if js(page, "return window.__inflight;"):
            since = time.time()
        elif time.time() - since >= quiet:
            return
        time.sleep(0.05)
    raise AssertionError("callback requests still in flight")


def inspected_query(page):
    title = until(lambda: text_of(page, ids.INSPECTOR_TITLE), what="inspector title")
    return int(re.search(r"Query #(\d+)", title).group(1))


def check_head(page, run, layer, head):
    """Every head-dependent panel at the top of the page shows (layer, head) with the engine's numbers."""
    who = "mean of all heads" if head == "mean" else f"head {head}"
    wait_title(page, f"Layer {layer} · {who} · self")
    want = run.mean_weights(layer) if head == "mean" else run.head_weights(layer, head)
    until(lambda: np.allclose(heatmap_z(page), want, atol=TOL), what=f"heatmap of L{layer} {who}")
    short = "mean of all heads" if head == "mean" else f"L{layer} H{head}"
    until(lambda: (text_of(page, ids.INSPECTOR_TITLE) or "").endswith(short), what=f"inspector of {short}")
    q = inspected_query(page)
    row = want[q]
    # inspector: the top 5 keys with the engine's weights (and the head's real scores q·k/√d)
    rows = js(page, TABLE_ROWS, ids.INSPECTOR_TABLE)
    assert len(rows) == 5
    keys = [int(r[1].rsplit("#", 1)[1]) for r in rows]
    np.testing.assert_allclose([float(r[2]) for r in rows], row[keys], atol=TOL)
    assert min(float(r[2]) for r in rows) >= np.sort(row)[-5] - TOL  # they are the top 5
    if head != "mean":
        scores = run.head_scores(layer, head)[q, keys]
        np.testing.assert_allclose([float(r[3]) for r in rows], scores, atol=0.02)  # shown with 2 decimals
    # text view: the same query's weights over the running text
    until(lambda: (text_of(page, ids.TEXT_VIEW_TITLE) or "").endswith(short), what=f"text view of {short}")
    np.testing.assert_allclose(js(page, SPAN_WEIGHTS, ids.TEXT_VIEW_BOX), row, atol=TOL)
    # outlines: heads grid, pruning grid (a head), small multiples (a head)
    if head == "mean":
        sel = until(lambda: shapes(page, ids.GRID, "selected"), what="grid row outline")
        assert (sel[0]["x0"], sel[0]["x1"], sel[0]["y0"]) == (-0.5, run.main.n_heads - 0.5, layer - 0.5)
        assert not shapes(page, P.SELECT_GRID, "selected") and not shapes(page, ids.OVERVIEW, "selected")
    else:
        for graph in (ids.GRID, P.SELECT_GRID):
            until(lambda: [(s["x0"], s["y0"]) for s in shapes(page, graph, "selected")] == [(head - 0.5, layer - 0.5)],
                  what=f"{graph} outline")
        ref = "x domain" if head == 0 else f"x{head + 1} domain"
        until(lambda: [s["xref"] for s in shapes(page, ids.OVERVIEW, "selected")] == [ref], what="overview outline")
    # stats row and the link
    ent = run.mean_weights(layer) if head == "mean" else run.head_weights(layer, head)
    ent = ent.astype(np.float64)
    mean_entropy = float((-(ent * np.log2(np.where(ent > 0, ent, 1))).sum(-1)).mean())
    assert f"{mean_entropy:.2f}" in text_of(page, ids.STATS)
    until(lambda: f"layer={layer}&head={head}" in page.driver.current_url, what="the link")


def test_head_switch_asks_nothing_and_layer_switch_asks_twice(page, text_and_run):
    text, run = text_and_run
    size = page.driver.get_window_size()
    page.driver.set_window_size(1280, 800)
    try:
        open_page(page, text=text, layer=2, head=1)
        check_head(page, run, 2, 1)
        assert heatmap_meta(page)["rows"] == len(run.source_tokens) >= 200
        js(page, "window.scrollTo(0, 0);")
        # the cards below the fold are out of view (else they would rightly ask for the new head)
        assert js(page, "return document.getElementById(arguments[0]).getBoundingClientRect().top "
                        "> window.innerHeight;", P.SELECT_GRID)
        settle(page)
        count_requests(page)
        for head in (7, "mean", 0, 11):
            select(page, ids.HEAD, str(head))
            check_head(page, run, 2, head)
        settle(page)
        assert requests_sent(page) == 0

        count_requests(page)
        select(page, ids.LAYER, "4")
        check_head(page, run, 4, 11)
        until(lambda: text_of(page, ids.OVERVIEW_TITLE) == "Every head of layer 4", what="overview of layer 4")
        settle(page)
        assert 1 <= requests_sent(page) <= 2

        # the pruning comparison got neither switch while out of view; it follows once in view
        base_title = text_of(page, P.COMPARE_TITLE)
        assert "Layer 2 · head 1" in base_title, base_title
        js(page, "document.getElementById(arguments[0]).scrollIntoView({block: 'center'});", P.COMPARE_TITLE)
        until(lambda: "Layer 4 · head 11" in (text_of(page, P.COMPARE_TITLE) or ""), what="comparison follows")
        # ... and, while in view, follows a switch at once
        select(page, ids.HEAD, "3")
        until(lambda: "Layer 4 · head 3" in (text_of(page, P.COMPARE_TITLE) or ""), what="comparison in view")
        no_console_errors(page)
    finally:
        page.driver.set_window_size(size["width"], size["height"])


def test_quick_head_switches_end_on_the_last_head(page, text_and_run):
    """The heatmap draws a switch at once and hands Dash its outputs a frame later (assets/heatmap.js,
    attn.lib.deferOnHeadSwitch): three switches within one frame, and pairs of switches a frame
    apart, end with every panel on the last head (an earlier switch's late work never draws over
    it), still with no request."""
    text, run = text_and_run
    open_page(page, text=text, layer=1, head=0)
    check_head(page, run, 1, 0)
    settle(page)
    count_requests(page)
    js(page, "var s = window.dash_clientside.set_props;"
             "s(arguments[0], {value: '4'}); s(arguments[0], {value: '9'}); s(arguments[0], {value: '2'});", ids.HEAD)
    check_head(page, run, 1, 2)
    # a frame apart: the later switch's text view is drawn at once (a hover store change comes with
    # it), before the earlier switch's deferred one, which must then do nothing (it used to colour
    # the text with the earlier head under the later head's title: 2 of 6 tries)
    for a, b in ((3, 7), (5, 9), (6, 10)):
        js(page, "var s = window.dash_clientside.set_props, id = arguments[0], b = arguments[2];"
                 "s(id, {value: arguments[1]}); requestAnimationFrame(function () { s(id, {value: b}); });",
           ids.HEAD, str(a), str(b))
        check_head(page, run, 1, b)
    settle(page)
    # a late answer of an earlier switch would land within a few frames: none does
    holds(lambda: heatmap_meta(page).get("head") == 10 and (text_of(page, ids.INSPECTOR_TITLE) or "").endswith("L1 H10"),
          seconds=0.6, what="the last head stays drawn")
    check_head(page, run, 1, 10)
    assert requests_sent(page) == 0
    no_console_errors(page)
