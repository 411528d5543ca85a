"""The page never shows mixed state (issue 15): a layer chosen while a long run computes, or as
soon as its heatmap appears while the other panels still load, ends with EVERY panel on the new
text and the chosen layer; the chosen layer is kept, not reverted; no card is left badged as
showing the previous text."""
from __future__ import annotations

import pytest

from dashboard import ids
from models import loader
from tests.browser.helpers import graph_prop, js, no_console_errors, open_page, select, text_of, until, wait_title

pytestmark = pytest.mark.browser

WORDS = ("river", "lamp", "quiet", "orange", "seven", "market", "winter", "paper", "clock", "garden",
         "silver", "horse", "bridge", "cloud", "stone", "letter")


def long_text(seed: int, n_words: int = 440) -> str:
    """~480 MiniLM tokens of plain words, different for each seed (so each run is new)."""
    return " ".join(f"{WORDS[(i * 7 + seed) % len(WORDS)]}" + ("." if i % 11 == 10 else "")
                    for i in range(n_words)) + f" {seed}"


SET_TEXT = """
var el = document.getElementById(arguments[0]);
var setter = Object.getOwnPropertyDescriptor(window.HTMLTextAreaElement.prototype, 'value').set;
setter.call(el, arguments[1]);
el.dispatchEvent(new Event('input', {bubbles: true}));
"""


@pytest.fixture(scope="module", autouse=True)
def model_first():
    loader.get_loaded("all-MiniLM-L6-v2")


def views(page) -> dict:
    return {g: (graph_prop(page, g, "(g.layout.meta || {}).view || null") or {})
            for g in (ids.HEATMAP, ids.GRID, ids.OVERVIEW, ids.INSPECTOR)}


def settled_on(page, text: str, layer: str) -> bool:
    v = views(page)
    badges = [text_of(page, ids.stale_badge(p)) for p in ids.STALE_PANELS]
    return (all(x.get("text") == text[:60] and x.get("layer") == layer for x in v.values())
            and (text_of(page, ids.HEATMAP_TITLE) or "").startswith(f"Layer {layer} ")
            and not any(badges))


def start_run(page, text: str) -> None:
    js(page, SET_TEXT, ids.TEXT, text)
    until(lambda: js(page, "return document.getElementById(arguments[0]).value;", ids.TEXT) == text,
          what="the text in the box")
    page.find_element(f"#{ids.RUN_BUTTON}").click()


def test_layer_chosen_while_a_long_run_computes_is_kept_everywhere(page):
    open_page(page)
    wait_title(page, "Layer 3 · head 1 · self")
    text = long_text(1)
    start_run(page, text)
    select(page, ids.LAYER, "0")  # at once: the run is still computing
    until(lambda: settled_on(page, text, "0"), timeout=60, what="every panel on the new text, layer 0")
    assert page.find_element(f"#{ids.LAYER}").get_attribute("value") == "0"  # not reverted
    no_console_errors(page)


def test_layer_changed_when_the_heatmap_appears_moves_every_panel(page):
    open_page(page)
    wait_title(page, "Layer 3 · head 1 · self")
    text = long_text(2)
    start_run(page, text)
    until(lambda: views(page)[ids.HEATMAP].get("text") == text[:60], timeout=60, what="the new heatmap")
    select(page, ids.LAYER, "5")  # the other panels may still be loading the new run's layer 3
    until(lambda: settled_on(page, text, "5"), timeout=60, what="every panel on the new text, layer 5")
    # and a quick second change lands too: the older answers are dropped, the newest drawn
    select(page, ids.LAYER, "1")
    select(page, ids.LAYER, "4")
    until(lambda: settled_on(page, text, "4"), timeout=60, what="every panel on layer 4")
    assert page.find_element(f"#{ids.LAYER}").get_attribute("value") == "4"
    until(lambda: "layer=4" in page.driver.current_url, what="the link names layer 4")
    no_console_errors(page)
