"""A 2,048-token text on a tiny long-context (Llama-shaped: rotary, grouped-query) model saved as
an ordinary Hugging Face folder and configured through ATTN_MODELS: the page draws a pooled
overview, a box-zoom fetches an exact window whose values are the engine's, and hovering the
overview sends no request."""
from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM

from dashboard import ids
from models import attention, loader
from tests.browser import helpers as P

pytestmark = pytest.mark.browser

N_WORDS = 2046  # + [CLS] and [SEP]: 2,048 tokens
WORDS = ["cat", "dog", "sat", "on", "the", "mat", "and", "ran", "to", "house"]
TEXT = " ".join(WORDS[i % len(WORDS)] for i in range(N_WORDS))
LAYER, HEAD = 1, 2


@pytest.fixture(scope="module")
def page_env(tmp_path_factory):
    tok = loader.get_loaded("all-MiniLM-L6-v2").tokenizer
    torch.manual_seed(5)
    cfg = AutoConfig.for_model("llama", vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                               num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                               max_position_embeddings=4096, bos_token_id=101, eos_token_id=102)
    folder = tmp_path_factory.mktemp("tiny-long")
    AutoModelForCausalLM.from_config(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    yield {"ATTN_MODELS": f"tiny-long={folder}"}
    loader._LOADED.pop("tiny-long", None)


def _pooled_max(w: np.ndarray, f: int) -> np.ndarray:
    """Block max over f x f blocks of [T, T] with the causal upper triangle masked (NaN)."""
    t = w.shape[0]
    w = w.copy()
    w[np.triu_indices(t, 1)] = np.nan
    n = math.ceil(t / f)
    pad = np.full((n * f, n * f), np.nan)
    pad[:t, :t] = w
    with np.errstate(invalid="ignore"):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmax(pad.reshape(n, f, n, f), axis=(1, 3))


def test_long_text_overview_zoom_and_hover(page):
    run = attention.extract(loader.get_loaded("tiny-long"), TEXT)
    n = len(run.source_tokens)
    assert n == 2048 and set(run.main.modes) <= {"qk16", "qk32"}  # stored compactly
    P.open_page(page, model="tiny-long", text="the cat", layer=LAYER, head=HEAD)
    # a link holds at most a few thousand characters: type the long text into the box (set through
    # React's value setter, as a paste would) and press Run
    P.js(page, """var el = document.getElementById(arguments[0]);
        Object.getOwnPropertyDescriptor(HTMLTextAreaElement.prototype, 'value').set.call(el, arguments[1]);
        el.dispatchEvent(new Event('input', {bubbles: true}));""", ids.TEXT, TEXT)
    page.find_element(f"#{ids.RUN_BUTTON}").click()
    P.until(lambda: P.heatmap_meta(page).get("pooled") and P.heatmap_meta(page).get("head") == HEAD, 60,
            what="the pooled overview")
    meta = P.heatmap_meta(page)
    f = meta["block_size"]
    assert f == 4 and meta["rows"] == meta["cols"] == 512 and meta["pool"] == "max"
    # the overview's cells are the engine's block maxima (8-bit codes: within half a step)
    expect = _pooled_max(run.head_weights(LAYER, HEAD).astype(np.float64), f)
    z = P.heatmap_z(page)
    assert z.shape == expect.shape
    np.testing.assert_array_equal(np.isnan(z), np.isnan(expect))
    ok = ~np.isnan(expect)
    step = np.nanmax(expect) / 254
    np.testing.assert_allclose(z[ok], expect[ok], atol=step / 2 + 1e-6)
    assert "block max" in P.text_of(page, ids.TEMPERATURE_NOTE) and "8-bit" in P.text_of(page, ids.TEMPERATURE_NOTE)

    # hover on the overview: clientside only, and it names the block's query/key ranges and value
    P.count_requests(page)
    P.pointer_to(page, ids.HEATMAP, 40, 300)  # overview cell (row 300, column 40)
    live = P.until(lambda: "Block of queries" in (P.text_of(page, ids.HEATMAP_LIVE) or "")
                   and P.text_of(page, ids.HEATMAP_LIVE), what="the overview hover text")
    m = re.search(r"Block of queries (\d+)–(\d+) to keys (\d+)–(\d+): block max ([\d.]+)", live)
    assert m, live
    q0, q1, k0, k1 = (int(x) for x in m.groups()[:4])
    assert q1 - q0 == k1 - k0 == f - 1 and q0 % f == 0 and k0 % f == 0
    assert abs(q0 - 1200) <= 3 * f and abs(k0 - 160) <= 3 * f  # the cell under the pointer (1 px per cell)
    assert float(m.group(5)) == pytest.approx(expect[q0 // f, k0 // f], abs=step / 2 + 1e-3)
    P.until(lambda: P.shapes(page, ids.HEATMAP, "hover"), what="the hover cross")
    assert P.requests_sent(page) == 0

    # box-zoom (a plotly relayout, as the zoom tool makes): the exact window is fetched
    P.js(page, P.GD + " Plotly.relayout(g, {'xaxis.range[0]': 9.5, 'xaxis.range[1]': 19.5, "
                      "'yaxis.range[0]': 39.5, 'yaxis.range[1]': 29.5});", ids.HEATMAP)
    P.until(lambda: P.heatmap_meta(page).get("window") and not P.heatmap_meta(page).get("pooled"), 30,
            what="the exact window")
    meta = P.heatmap_meta(page)
    assert (meta["query_offset"], meta["key_offset"], meta["rows"], meta["cols"]) == (120, 40, 40, 40)
    exact = run.head_weights(LAYER, HEAD, rows=np.arange(120, 160))[:, 40:80]
    np.testing.assert_allclose(P.heatmap_z(page), exact, atol=1e-3)
    assert "Exact window" in P.text_of(page, ids.TEMPERATURE_NOTE)
    P.no_console_errors(page)


def test_head_switch_in_a_short_layer_is_drawn_without_asking_the_server(page):
    """Up to ~1M cells the whole layer is in the browser: a head switch draws from it, and no request
    asks for the heatmap (other panels that depend on the head may still ask for theirs)."""
    text = "The cat sat on the mat because it was tired."
    P.open_page(page, text=text, layer=2, head=1)
    P.wait_title(page, "Layer 2 · head 1 · self")
    run = attention.extract(loader.get_loaded("all-MiniLM-L6-v2"), text)
    P.js(page, """
        window.__heatmapRequests = 0;
        var f = window.fetch;
        window.fetch = function (u, opts) {
            var body = String((opts && opts.body) || '');
            if (body.indexOf('heatmap-payload') >= 0) { window.__heatmapRequests += 1; }
            return f.apply(this, arguments);
        };""")
    for head in (5, 11, 0):
        P.select(page, ids.HEAD, str(head))
        P.wait_title(page, f"Layer 2 · head {head} · self")
        P.until(lambda: P.heatmap_meta(page).get("head") == head, what=f"head {head} drawn")
        np.testing.assert_allclose(P.heatmap_z(page), run.head_weights(2, head), atol=1e-3)
        stats = P.text_of(page, ids.STATS)
        assert f"{float(metrics_entropy(run, 2, head)):.2f}" in stats, stats
    P.select(page, ids.HEAD, "mean")
    P.wait_title(page, "Layer 2 · mean of all heads · self")
    np.testing.assert_allclose(P.heatmap_z(page), run.mean_weights(2), atol=1e-3)
    assert P.js(page, "return window.__heatmapRequests;") == 0
    P.no_console_errors(page)


def metrics_entropy(run, layer, head):
    w = run.head_weights(layer, head).astype(np.float64)
    return float((-(w * np.log2(np.where(w > 0, w, 1))).sum(-1)).mean())
