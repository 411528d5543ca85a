"""The text view (issue 15): the running text, each token highlighted by what the inspected query
attends to, from the engine's weights; pointing at a heatmap cell re-colours it for that row with
no server request."""
from __future__ import annotations

import numpy as np
import pytest

from dashboard import ids, urlstate
from models import loader, service
from tests.browser.helpers import (count_requests, js, no_console_errors, open_page, pointer_to, requests_sent,
                                   text_of, until, wait_title)

pytestmark = pytest.mark.browser

SPANS = """
return Array.prototype.map.call(document.querySelectorAll('#text-view-box .tv-tok'), function (s) {
    var m = /rgba\\([^,]+,[^,]+,[^,]+,\\s*([0-9.]+)\\)/.exec(s.style.backgroundColor || '');
    return {text: s.textContent, alpha: m ? Number(m[1]) : 0, query: s.classList.contains('tv-query')};
});
"""


@pytest.fixture(scope="module", autouse=True)
def model_first():
    loader.get_loaded(urlstate.DEFAULT_MODEL)


def test_text_view_highlights_what_the_query_attends_to(page):
    open_page(page)
    wait_title(page, "Layer 3 · head 1 · self")
    until(lambda: (text_of(page, ids.TEXT_VIEW_TITLE) or "").startswith("What “it” (#8) attends to · L3 H1"),
          what="the text view of the inspected query")
    spans = js(page, SPANS)
    assert "".join(s["text"] for s in spans[1:-1]).replace(" ", "") == urlstate.DEFAULT_TEXT.replace(" ", "")
    assert spans[0]["text"] == "[CLS]" and [s["query"] for s in spans].index(True) == 8
    run = service.get_run(service.RunRequest.create(urlstate.DEFAULT_MODEL, urlstate.DEFAULT_TEXT))
    row = run.head_weights(3, 1)[8]
    alphas = np.array([s["alpha"] for s in spans])
    # alpha = 0.85 * weight / row max (cells under 0.4 % of the max are left plain)
    expected = np.where(row / row.max() > 0.004, 0.85 * row / row.max(), 0)
    np.testing.assert_allclose(alphas, expected, atol=5e-3)  # Chrome keeps alpha in 1/255 steps

    count_requests(page)
    pointer_to(page, ids.HEATMAP, 2, 3)  # query 3 ("sat")
    until(lambda: text_of(page, ids.TEXT_VIEW_TITLE) == "What #3 attends to (hovered row)", what="hovered row")
    alphas = np.array([s["alpha"] for s in js(page, SPANS)])
    row3 = run.head_weights(3, 1)[3]
    np.testing.assert_allclose(alphas, np.where(row3 / row3.max() > 0.004, 0.85 * row3 / row3.max(), 0), atol=5e-3)
    assert requests_sent(page) == 0
    no_console_errors(page)
