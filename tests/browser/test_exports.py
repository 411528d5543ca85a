"""Exports with context in real headless Chromium (issue 15): the heads grid's CSV holds the
engine's per-head metrics; the pruning card's importance CSV/JSON hold the importance the engine
computes for the same pairs, with model, corpus and method in the file; a download before the
analysis ran is a clear message, not an empty file."""
from __future__ import annotations

import io
import json
import os

import numpy as np
import pandas as pd
import pytest

from dashboard import ids
from dashboard import pruning_ids as P
from dashboard.urlstate import DEFAULT_MODEL, DEFAULT_TEXT
from models import loader, pruning, service
from tests.browser.helpers import js, no_console_errors, open_page, until, wait_title

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module", autouse=True)
def model_first():
    loader.get_loaded(DEFAULT_MODEL)  # loaded before the server thread starts (see test_pruning_panel)


def _new_file(folder, prefix, suffix, before=()):
    return until(lambda: [f for f in os.listdir(folder) if f.startswith(prefix) and f.endswith(suffix)
                          and f not in before], what=f"download {prefix}*{suffix}")[0]


def _click(page, element_id):
    js(page, "var e = document.getElementById(arguments[0]); e.scrollIntoView({block: 'center'}); e.click();",
       element_id)


def test_grid_csv_holds_the_engines_head_metrics(page):
    open_page(page)
    wait_title(page, "Layer 3 · head 1 · self")
    _click(page, ids.GRID_CSV_BUTTON)
    name = _new_file(page.download_path, "head-metrics_all-MiniLM-L6-v2_self_The_cat_sat", ".csv")
    text = open(os.path.join(page.download_path, name), encoding="utf-8").read()
    assert f"# text: {DEFAULT_TEXT}\n" in text and "# model: all-MiniLM-L6-v2\n" in text
    df = pd.read_csv(io.StringIO(text), comment="#")
    run = service.get_run(service.RunRequest.create(DEFAULT_MODEL, DEFAULT_TEXT))
    assert len(df) == 72 and list(df.columns[:3]) == ["layer", "head", "entropy_bits"]
    np.testing.assert_allclose(df["entropy_bits"].to_numpy().reshape(6, 12), run.entropy(), atol=1e-5)
    assert df["role"].tolist() == np.asarray(run.head_metrics()["role"]).ravel().tolist()
    no_console_errors(page)


def test_importance_downloads_name_their_data(page):
    open_page(page)
    wait_title(page, "Layer 3 · head 1 · self")
    page.wait_for_text_to_equal(f"#{P.COUNT}", "0 of 72 heads pruned (0%)", timeout=30)
    dom_id = lambda what, fmt: json.dumps(P.export_button(what, fmt), separators=(",", ":"), sort_keys=True)  # noqa: E731
    _click(page, dom_id("importance", "json"))
    until(lambda: "No importance computed yet" in (page.find_element(f"#{P.STATUS}").text or ""),
          what="the 'compute first' message")
    page.clear_input(f"#{P.PAIRS_INPUT}")
    page.find_element(f"#{P.PAIRS_INPUT}").send_keys("4")
    _click(page, P.IMPORTANCE_BUTTON)
    until(lambda: (page.find_element(f"#{P.IMPORTANCE_INFO}").text or "").startswith("Importance of"),
          timeout=60, what="importance computed")
    _click(page, dom_id("importance", "csv"))
    name = _new_file(page.download_path, "importance_all-MiniLM-L6-v2_the_first_4", ".csv")
    text = open(os.path.join(page.download_path, name), encoding="utf-8").read()
    assert "# corpus: the first 4 of 64 bundled" in text and "# examples: 4\n" in text and "Michel" in text
    df = pd.read_csv(io.StringIO(text), comment="#")
    expected = pruning.head_importance(loader.get_loaded(DEFAULT_MODEL), pruning.load_pairs()[:4]).scores
    np.testing.assert_allclose(df["importance"].to_numpy().reshape(6, 12), expected, atol=1e-3)
    _click(page, dom_id("importance", "json"))
    name = _new_file(page.download_path, "importance_", ".json")
    data = json.load(open(os.path.join(page.download_path, name), encoding="utf-8"))
    assert data["meta"]["model"] == DEFAULT_MODEL and data["result"]["n_examples"] == 4
    np.testing.assert_allclose(np.array(data["result"]["scores"]), expected, atol=1e-3)
    no_console_errors(page)


def test_link_carries_colour_scale_adapt_and_pruning_mask(page):
    """Issue 15: a shared link reproduces the colour scale, the adapted-colours switch and the
    pruning card's mask; changing them rewrites the link."""
    from dashboard import urlstate

    mask = [[1] * 12 for _ in range(6)]
    mask[0][1] = mask[5][11] = 0
    prune = urlstate.mask_param(mask)
    open_page(page, model=DEFAULT_MODEL, text=DEFAULT_TEXT, layer=3, head=1, color="viridis", adapt="0",
              prune=prune)
    wait_title(page, "Layer 3 · head 1 · self")
    assert page.find_element(f"#{ids.COLOR_SCALE}").get_attribute("value") == "viridis"
    assert page.find_element(f"#{ids.COLOR_STRETCH}").is_selected() is False
    page.wait_for_text_to_equal(f"#{P.COUNT}", "2 of 72 heads pruned (3%)", timeout=30)
    until(lambda: f"prune={prune.replace(':', '%3A')}" in page.driver.current_url, what="the mask in the link")
    assert "color=viridis" in page.driver.current_url and "adapt=0" in page.driver.current_url
    from tests.browser.helpers import select

    select(page, ids.COLOR_SCALE, "cividis")
    until(lambda: "color=cividis" in page.driver.current_url, what="the new colour scale in the link")
    _click(page, P.CLEAR_BUTTON)
    until(lambda: "prune=" not in page.driver.current_url, what="no mask in the link once cleared")
    no_console_errors(page)
