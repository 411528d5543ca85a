"""The research card in real headless Chromium on the embedded MiniLM: the model view's click shows
the head (the measure selector is the heatmap card's: tests/browser/test_measures.py); the corpus
head profile runs as a background job on an uploaded corpus, clicking a head lists its most extreme
texts and clicking a text opens it."""
from __future__ import annotations

import json

import numpy as np
import pytest

from dashboard import ids
from dashboard import research_ids as R
from dashboard.urlstate import DEFAULT_MODEL
from models import loader, profile
from tests.browser.helpers import GD, cell_point, js, open_page, text_of, until

TIMEOUT = 60
TEXTS = ["Why is the sky blue?", "Buy milk, eggs, flour, and butter.", "The cat sat on the mat."]


@pytest.fixture(scope="module", autouse=True)
def model_first():
    loader.get_loaded(DEFAULT_MODEL)


def _dom_id(d: dict) -> str:
    return json.dumps(d, sort_keys=True, separators=(",", ":"))


def _z(page, graph_id):
    z = js(page, GD + " return g && g.data && g.data[0] ? g.data[0].z : null;", graph_id)
    return None if z is None else np.array([[np.nan if v is None else v for v in row] for row in z], float)


def _meta(page, graph_id):
    return js(page, GD + " return g && g.layout ? (g.layout.meta || {}) : {};", graph_id) or {}


def _click_el(page, el):
    page.driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'});", el)
    el.click()


@pytest.mark.browser
def test_model_view_click_shows_the_head(page):
    # the model view: clicking the thumbnail of L1 H5 shows that head (the page's dropdowns, the heatmap)
    open_page(page)
    until(lambda: _meta(page, R.MODEL_VIEW).get("kind") == "empty", TIMEOUT, what="the model view's placeholder")
    assert "Off" in text_of(page, R.MODEL_VIEW_NOTE)  # nothing computed until asked for
    _click_el(page, page.find_element(f"#{R.MODEL_VIEW_ON}"))
    until(lambda: _meta(page, R.MODEL_VIEW).get("kind") == "model_view", TIMEOUT, what="the model view")
    from selenium.webdriver.common.action_chains import ActionChains

    x, y = cell_point(page, R.MODEL_VIEW, 5.1, 1.1)
    ac = ActionChains(page.driver)
    ac.w3c_actions.pointer_action.move_to_location(int(x), int(y))
    ac.click()
    ac.perform()
    until(lambda: (_meta(page, ids.HEATMAP).get("layer"), _meta(page, ids.HEATMAP).get("head")) == (1, 5),
          TIMEOUT, what="the clicked head shown")
    assert _meta(page, R.MODEL_VIEW).get("selected") == [1, 5]
    assert page.get_logs() == []


@pytest.mark.browser
def test_profile_job_extremes_and_open_text(page, tmp_path):
    open_page(page)
    f = tmp_path / "corpus.txt"
    f.write_text("\n".join(TEXTS), encoding="utf-8")
    page.driver.find_element("css selector", f"#{R.PROFILE_UPLOAD} input[type=file]").send_keys(str(f))
    until(lambda: "3 texts" in (text_of(page, R.PROFILE_CORPUS_INFO) or ""), TIMEOUT, what="upload read")
    _click_el(page, page.find_element(f"#{R.PROFILE_BUTTON}"))
    grid = _dom_id(R.profile_grid("punct"))
    until(lambda: _meta(page, grid).get("kind") == "head_grid", TIMEOUT, what="profile grids")
    ref = profile.corpus_profile(loader.get_loaded(DEFAULT_MODEL), TEXTS)
    np.testing.assert_allclose(_z(page, grid), np.array(ref.mean["punct"]), atol=2e-3)
    x, y = cell_point(page, grid, 4, 2)  # head 4 of layer 2
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(page.driver).move_by_offset(0, 0).perform()
    ac = ActionChains(page.driver)
    ac.w3c_actions.pointer_action.move_to_location(int(x), int(y))
    ac.click()
    ac.perform()
    until(lambda: "L2 H4" in (text_of(page, R.PROFILE_TEXTS) or ""), TIMEOUT, what="extreme texts")
    top = ref.extreme_texts("punct", 2, 4, k=3)
    buttons = page.driver.find_elements("css selector", f"#{R.PROFILE_TEXTS} li button")
    assert [b.text for b in buttons] == [t["text"] for t in top]
    _click_el(page, buttons[-1])
    until(lambda: page.find_element(f"#{ids.TEXT}").get_attribute("value") == top[-1]["text"], TIMEOUT,
          what="the text opened")
    n = len(loader.get_loaded(DEFAULT_MODEL).tokenizer(top[-1]["text"])["input_ids"])
    until(lambda: _z(page, ids.HEATMAP) is not None and _z(page, ids.HEATMAP).shape == (n, n), TIMEOUT,
          what="the opened text drawn")
    assert page.get_logs() == []


@pytest.mark.browser
def test_held_out_study_job_on_uploaded_pairs(page, tmp_path):
    """The study runs as a background job on the pruning card's uploaded pairs; the table shows
    the engine's numbers (the same cache: the test process serves the page) and both split sizes."""
    from dashboard import pruning_ids as P
    from models import pruning_science as ps

    open_page(page)
    pairs = ps.load_study_pairs()[:10]
    f = tmp_path / "pairs.tsv"
    f.write_text("\n".join(f"{a}\t{b}" for a, b in pairs), encoding="utf-8")
    page.driver.find_element("css selector", f"#{P.UPLOAD} input[type=file]").send_keys(str(f))
    until(lambda: "on 5 pairs" in (text_of(page, R.CORPUS_NOTE) or ""), TIMEOUT, what="the split sizes")
    assert "other 5" in text_of(page, R.CORPUS_NOTE)
    for label in page.driver.find_elements("css selector", f"#{R.METHODS} input[type=checkbox]"):
        if label.is_selected() != (label.get_attribute("value") == "loss-gradient"):
            _click_el(page, label)
    _click_el(page, page.find_element(f"#{R.STUDY_BUTTON}"))
    row = _dom_id(R.study_row("loss-gradient"))
    until(lambda: text_of(page, row), 240, what="the study table")
    study = ps.cached_study(loader.get_loaded(DEFAULT_MODEL), pairs, methods=["loss-gradient"], seeds=8,
                            estimate_share=0.5, progress=lambda d, t: pytest.fail("not the page's study"))
    i = study.shares.index(0.3)
    assert f"{study.curves['loss-gradient'][i]:.3f} [" in text_of(page, row)
    assert "estimated on 5 pairs" in text_of(page, R.STUDY_INFO) and "other 5" in text_of(page, R.STUDY_INFO)
    assert _meta(page, R.STUDY_GRAPH).get("n_evaluate") == 5
    assert page.get_logs() == []
