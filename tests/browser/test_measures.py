"""The heatmap card's measure selector in real headless Chromium on the embedded MiniLM (issue 13):
value-norm and rollout are drawn in the SAME heatmap, read by its hover readout, the inspector and
the CSV export, and each carries the numbers models.measures computes (within the 16-bit
quantisation step) and the measure's name; the link carries the measure; a measure the run
cannot have (gradient x attention without a second sentence) is raw weights with the reason.
Compare: pointing at a cell of map A, B or B − A outlines it on the others, with no request."""
from __future__ import annotations

import io
import json
import os

import numpy as np
import pandas as pd
import pytest

from dashboard import ids
from dashboard.urlstate import DEFAULT_LAYER, DEFAULT_MODEL, DEFAULT_QUERY, DEFAULT_TEXT
from models import loader, measures
from tests.browser.helpers import (count_requests, graph_prop, heatmap_meta, heatmap_z, js, no_console_errors,
                                   open_page, pointer_to, requests_sent, shapes, text_of, until)

pytestmark = pytest.mark.browser
TIMEOUT = 60
HEAD = 1  # the page's default head (urlstate.DEFAULT_HEAD)


@pytest.fixture(scope="module", autouse=True)
def model_first():
    loader.get_loaded(DEFAULT_MODEL)


def _choose(page, measure):
    label = next(e for e in page.driver.find_elements("css selector", f"#{ids.MEASURE} label")
                 if e.text == measures.MEASURE_LABELS[measure])
    page.driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'});", label)
    label.click()
    until(lambda: heatmap_meta(page).get("measure") == measure, TIMEOUT, what=f"{measure} drawn")


def _click(page, element_id):
    js(page, "var e = document.getElementById(arguments[0]); e.scrollIntoView({block: 'center'}); e.click();",
       element_id)


def _step(m: measures.Measures, measure: str, layer: int) -> float:
    """The 16-bit step of the heatmap payload: the largest value it holds / 65534 (the layer's
    heads and their mean when a head switch is drawn in the browser; rollout: one matrix)."""
    if measure == "rollout":
        return float(m.matrix("rollout", layer, None).max()) / 65534
    top = max(float(np.abs(m.matrix(measure, layer, h)).max()) for h in range(m.raw.shape[1]))
    return max(top, float(np.abs(m.matrix(measure, layer, None)).max())) / 65534


def test_value_norm_and_rollout_feed_heatmap_hover_inspector_and_csv(page):
    open_page(page)
    m = measures.compute(loader.get_loaded(DEFAULT_MODEL), DEFAULT_TEXT)
    tokens = list(m.tokens)

    _choose(page, "value-norm")
    expect = m.matrix("value-norm", DEFAULT_LAYER, HEAD)
    step = _step(m, "value-norm", DEFAULT_LAYER)
    z = heatmap_z(page)
    assert z.shape == expect.shape and float(expect.max()) > 1.2  # not weights: value-norms exceed 1 here
    np.testing.assert_allclose(z, expect, rtol=0, atol=step / 2 + 1e-3 * step)
    assert text_of(page, ids.HEATMAP_TITLE).startswith("value-norm ‖α f(x)‖ · Layer 3 · head 1")
    until(lambda: "measure=value-norm" in page.driver.current_url, what="the measure in the link")
    assert "Kobayashi" in (text_of(page, ids.TEMPERATURE_NOTE) or "")
    assert "Caveat" in (text_of(page, ids.MEASURE_EXPLAIN) or "")

    # the hover readout names the measure and reads the same value
    pointer_to(page, ids.HEATMAP, 2, DEFAULT_QUERY)
    until(lambda: (text_of(page, ids.HEATMAP_LIVE) or "").startswith("value-norm from query 8"),
          what="the hover readout")
    shown = float(text_of(page, ids.HEATMAP_LIVE).rsplit(":", 1)[1])
    assert abs(shown - expect[DEFAULT_QUERY, 2]) <= 0.005 * expect[DEFAULT_QUERY, 2] + step

    # the inspector: top keys of the inspected query ("it") under value-norm, the engine's values
    row = expect[DEFAULT_QUERY]
    top = int(np.argmax(row))
    until(lambda: "value-norm" in (text_of(page, ids.INSPECTOR_TITLE) or ""), TIMEOUT, what="the inspector")
    cells = page.driver.find_elements("css selector", f"#{ids.INSPECTOR_TABLE} td.measure-value")
    values = [float(c.text) for c in cells]
    assert len(values) == 5 and abs(values[0] - row[top]) <= 1e-3 * row[top]
    np.testing.assert_allclose(values, np.sort(row)[::-1][:5], rtol=1e-3)
    assert f"{tokens[top]} #{top}" in text_of(page, ids.INSPECTOR_TABLE)

    # the CSV export: the same numbers, the measure named in the file and its name
    before = set(os.listdir(page.download_path))
    _click(page, ids.CSV_BUTTON)
    name = until(lambda: [f for f in os.listdir(page.download_path) if f not in before and f.endswith(".csv")
                          and f.startswith("value-norm_all-MiniLM-L6-v2")], what="the CSV download")[0]
    text = open(os.path.join(page.download_path, name), encoding="utf-8").read()
    assert "# measure: value-norm ‖α f(x)‖\n" in text and "Kobayashi" in text
    df = pd.read_csv(io.StringIO(text), comment="#", index_col=0)
    np.testing.assert_allclose(df.to_numpy(dtype=float), expect, rtol=1e-5, atol=1e-6)
    # JSON: the same numbers with the measure's formula; PNG: named after the measure
    _click(page, ids.JSON_BUTTON)
    name = until(lambda: [f for f in os.listdir(page.download_path) if f not in before and f.endswith(".json")],
                 what="the JSON download")[0]
    data = json.load(open(os.path.join(page.download_path, name), encoding="utf-8"))
    assert data["meta"]["measure"] == "value-norm ‖α f(x)‖" and "Kobayashi" in data["meta"]["values"]
    np.testing.assert_allclose(np.array(data["values"], float), expect, rtol=1e-5, atol=1e-6)
    js(page, "document.getElementById(arguments[0]).click();",
       json.dumps(ids.png_button(ids.HEATMAP), separators=(",", ":"), sort_keys=True))
    png = until(lambda: [f for f in os.listdir(page.download_path) if f not in before and f.endswith(".png")],
                what="the PNG download")[0]
    assert png.startswith("attention_all-MiniLM-L6-v2_value-norm_f_x_Layer_3_head_1"), png

    # rollout: heads averaged through layers 0..3, the same heatmap
    _choose(page, "rollout")
    expect = m.matrix("rollout", DEFAULT_LAYER, None)
    np.testing.assert_allclose(heatmap_z(page), expect, rtol=0, atol=_step(m, "rollout", DEFAULT_LAYER) * 0.51)
    np.testing.assert_allclose(expect.sum(1), 1.0, atol=1e-4)  # rows of a rollout sum to 1
    assert text_of(page, ids.HEATMAP_TITLE).startswith("attention rollout · layers 0–3 · heads averaged")
    until(lambda: "rollout" in (text_of(page, ids.INSPECTOR_TITLE) or ""), TIMEOUT, what="the rollout inspector")
    values = [float(c.text) for c in page.driver.find_elements("css selector",
                                                               f"#{ids.INSPECTOR_TABLE} td.measure-value")]
    np.testing.assert_allclose(values, np.sort(expect[DEFAULT_QUERY])[::-1][:5], rtol=1e-3)
    until(lambda: "rollout" in (text_of(page, ids.TEXT_VIEW_TITLE) or ""), TIMEOUT, what="the text view")
    no_console_errors(page)


def test_link_opens_a_measure_and_an_unavailable_one_says_why(page):
    # gradient x attention on the sentence-embedding model needs a pair: without one, raw weights + why
    open_page(page, model=DEFAULT_MODEL, text=DEFAULT_TEXT, layer=2, head=0, measure="grad-attention")
    until(lambda: "enter a second text" in (text_of(page, ids.TEMPERATURE_NOTE) or ""), TIMEOUT,
          what="the reason gradient x attention is not shown")
    assert text_of(page, ids.HEATMAP_TITLE).startswith("raw weights · Layer 2 · head 0")
    assert heatmap_meta(page).get("measure") == "raw"
    # with a second sentence: |gradient x attention| for the cosine between the two sentences
    pair = "A tired cat was sitting on a mat."
    open_page(page, model=DEFAULT_MODEL, text=DEFAULT_TEXT, pair=pair, layer=2, head=0, measure="grad-attention")
    until(lambda: heatmap_meta(page).get("measure") == "grad-attention", TIMEOUT, what="gradient x attention")
    assert page.find_element(f"#{ids.MEASURE} input[value='grad-attention']").is_selected()
    m = measures.compute(loader.get_loaded(DEFAULT_MODEL), DEFAULT_TEXT, pair)
    expect = np.abs(m.matrix("grad-attention", 2, 0))
    np.testing.assert_allclose(heatmap_z(page), expect, rtol=0, atol=_step(m, "grad-attention", 2) + 1e-9)
    assert "cos(mean embedding of sentence A" in text_of(page, ids.TEMPERATURE_NOTE)
    assert text_of(page, ids.HEATMAP_TITLE).startswith("|gradient × attention| · Layer 2 · head 0")
    no_console_errors(page)


def _outlined(page, graph_id):
    """(row, col) the hover highlight outlines on a graph (the transparent row and column boxes)."""
    row = col = None
    for s in shapes(page, graph_id, "hover"):
        if s.get("fillcolor") != "rgba(0,0,0,0)":
            continue
        if s["y1"] - s["y0"] == 1:
            row = int(round(s["y0"] + 0.5))
        if s["x1"] - s["x0"] == 1:
            col = int(round(s["x0"] + 0.5))
    return row, col


def test_compare_hover_is_linked_across_a_b_and_the_difference(page):
    from dashboard import research_ids as R

    open_page(page)
    until(lambda: "Nothing to compare" in (text_of(page, R.COMPARE_NOTE) or ""), TIMEOUT,
          what="B = A: nothing computed")
    # text B: the page's text in capitals (MiniLM is uncased: the same tokens, so a difference map)
    js(page, "window.dash_clientside.set_props(arguments[0], {value: arguments[1]});", R.COMPARE_TEXT,
       DEFAULT_TEXT.upper())
    until(lambda: graph_prop(page, R.COMPARE_DIFF, "g.layout.meta && g.layout.meta.kind") == "difference",
          TIMEOUT, what="the compare maps (the same tokens: a difference map)")
    count_requests(page)
    pointer_to(page, R.COMPARE_A, 2, 5)
    until(lambda: _outlined(page, R.COMPARE_B) == (5, 2) and _outlined(page, R.COMPARE_DIFF) == (5, 2),
          what="the cell pointed at in A outlined in B and in B − A")
    z_a = np.array(graph_prop(page, R.COMPARE_A, "g.data[0].z"), float)
    z_b = np.array(graph_prop(page, R.COMPARE_B, "g.data[0].z"), float)
    readout = text_of(page, R.COMPARE_HOVER)
    assert readout.startswith("query 5 “the” → key 2 “cat”:"), readout  # [CLS] the cat sat on the ...
    assert f"A {z_a[5, 2]:.3f} · B {z_b[5, 2]:.3f} · B − A " in readout
    pointer_to(page, R.COMPARE_DIFF, 3, 4)
    until(lambda: _outlined(page, R.COMPARE_A) == (4, 3) and _outlined(page, R.COMPARE_B) == (4, 3),
          what="the cell pointed at in B − A outlined in A and B")
    assert requests_sent(page) == 0  # linked in the browser
    no_console_errors(page)
