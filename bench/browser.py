"""Browser benchmarks in Debian's headless Chromium (selenium, /usr/bin/chromedriver) against the
real app served by gunicorn on loopback:

    hover(url)   run a 128-token text, wrap window.fetch, move the real mouse over 100 heatmap
                 cells: count `_dash-update-component` requests (target 0) and check each hover
                 reached the page's hover state; then time the clientside highlight function
                 (assets/hover.js `dash_clientside.hover.apply`) at 128 x 128 with performance.now():
                 its synchronous part, and until Plotly.relayout's promise has resolved
                 (target <= 16 ms, one frame at 60 Hz).

    head_switch_drawn(url)  run a 200-token text, then switch heads within the loaded layer n times
                 (dash_clientside.set_props on the head dropdown, as a person choosing one): per
                 switch, performance.now() from the switch until the first animation frame that
                 starts with the new head's heatmap in the graph ("heatmap drawn": Plotly.react done,
                 painted in that frame), and until every head-dependent panel at the top of
                 the page shows it (heatmap, inspector, text view, grid outline); the callback
                 requests sent meanwhile (target 0) and p50 / max of each (target <= 100 ms drawn).

    head_switch_long(url)  2,048 tokens on a long-context Llama-shaped model built here (long_model):
                 per head switch the server sends the new head's pooled overview; time until it is
                 drawn (target <= 500 ms) and bytes received (target <= 1 MB)

    python bench/browser.py [name ...]  # starts its own server; all benchmarks, or those named
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CHROMIUM = os.environ.get("ATTN_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("ATTN_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--window-size=1400,1000")

WRAP_FETCH = """
window.__attnCallbackRequests = 0;
if (!window.__attnFetchWrapped) {
  const orig = window.fetch;
  window.fetch = function (input, init) {
    const url = (typeof input === 'string') ? input : (input && input.url) || '';
    if (url.indexOf('_dash-update-component') !== -1) { window.__attnCallbackRequests += 1; }
    return orig.apply(this, arguments);
  };
  const open = XMLHttpRequest.prototype.open;
  XMLHttpRequest.prototype.open = function (m, url) {
    if (String(url).indexOf('_dash-update-component') !== -1) { window.__attnCallbackRequests += 1; }
    return open.apply(this, arguments);
  };
  window.__attnFetchWrapped = true;
}
"""

TIME_APPLY = """
const done = arguments[arguments.length - 1];
const n = arguments[0];
const H = window.dash_clientside.hover;
const g = H.graphDiv(H.IDS.heatmap);
const m = g.layout.meta;
const orig = window.Plotly.relayout;
let last = null;
window.Plotly.relayout = function () { last = orig.apply(this, arguments); return last; };
const sync = [], total = [];
let seed = 7;
function rnd(k) { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % k; }
(async function () {
  try {
    for (let i = 0; i < n; i++) {
      const r = rnd(m.rows), c = rnd(m.cols);
      last = null;
      const t0 = performance.now();
      H.apply({layer: m.layer, head: m.head, query: r + (m.query_offset || 0), key: c + (m.key_offset || 0),
               source: "heatmap"});
      const t1 = performance.now();
      if (last) { await last; }
      const t2 = performance.now();
      sync.push(t1 - t0); total.push(t2 - t0);
      await new Promise(res => requestAnimationFrame(() => res()));
    }
    window.Plotly.relayout = orig;
    done({sync: sync, total: total, rows: m.rows, cols: m.cols,
          shapes: (g.layout.shapes || []).filter(s => s.name === "hover").length});
  } catch (e) { window.Plotly.relayout = orig; done({error: String(e)}); }
})();
"""


def make_driver():
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = CHROMIUM
    for a in ARGS:
        opts.add_argument(a)
    opts.add_argument(f"--user-data-dir={tempfile.mkdtemp(prefix='attn-bench-chromium-')}")
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)


def _set_text(driver, element, text: str) -> None:
    driver.execute_script(
        "const el = arguments[0]; const set = Object.getOwnPropertyDescriptor("
        "Object.getPrototypeOf(el), 'value').set; set.call(el, arguments[1]);"
        "el.dispatchEvent(new Event('input', {bubbles: true}));", element, text)


def _wait(driver, script: str, timeout: float, *args):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = driver.execute_script(script, *args)
        if v:
            return v
        time.sleep(0.05)
    raise TimeoutError(script)


def _open_and_run(driver, url: str, tokens: int, script_timeout: float = 120) -> None:
    """Open the page, run a text of `tokens` tokens, and wait until its heatmap is drawn
    (resource timing buffer enlarged first, so every callback request of the run is counted)."""
    from selenium.webdriver.common.by import By

    from bench.engine import text_with_tokens

    driver.set_script_timeout(script_timeout)
    driver.get(url)
    _wait(driver, "return !!document.getElementById('text-input') && !!window.dash_clientside"
                  " && !!window.dash_clientside.set_props && !!window.dash_clientside.hover", 60)
    driver.execute_script("performance.setResourceTimingBufferSize(10000);")
    _set_text(driver, driver.find_element(By.ID, "text-input"), text_with_tokens(tokens))
    driver.find_element(By.ID, "run-button").click()
    _wait(driver, "const H = window.dash_clientside.hover; const g = H.graphDiv(H.IDS.heatmap);"
                  "return g && g.layout && g.layout.meta && g.layout.meta.rows === arguments[0];", 120, tokens)


def hover(url: str, tokens: int = 128, cells: int = 100) -> dict:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    driver = make_driver()
    try:
        _open_and_run(driver, url, tokens)
        time.sleep(1.0)  # let the other panels settle
        driver.execute_script(WRAP_FETCH)
        drag = driver.find_element(By.CSS_SELECTOR, "#heatmap-graph .nsewdrag")  # the plotting area
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", drag)
        time.sleep(0.3)
        dims = driver.execute_script("const g = window.dash_clientside.hover.graphDiv('heatmap-graph');"
                                     "return [g.layout.meta.rows, g.layout.meta.cols];")
        import random

        rng = random.Random(1)
        hit = 0
        for _ in range(cells):
            r, c = rng.randrange(dims[0]), rng.randrange(dims[1])
            # pixel of the cell's centre inside the plotting area, from Plotly's own axis mapping
            px, py = driver.execute_script(
                "const fl = window.dash_clientside.hover.graphDiv('heatmap-graph')._fullLayout;"
                "return [fl.xaxis.l2p(arguments[1]), fl.yaxis.l2p(arguments[0])];", r, c)
            ActionChains(driver).move_to_element_with_offset(drag, int(round(px)), int(round(py))).perform()
            try:
                _wait(driver, "const h = window.dash_clientside.attn.state.hover; return !!(h && h.cell && h.cell.row === arguments[0]"
                              " && h.cell.col === arguments[1]);", 2.0, r, c)
                hit += 1
            except TimeoutError:
                pass
        time.sleep(0.5)
        requests = driver.execute_script("return window.__attnCallbackRequests;")
        timing = driver.execute_async_script(TIME_APPLY, 100)
        if "error" in timing:
            raise RuntimeError(timing["error"])
        logs = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    finally:
        driver.quit()
    sync, total = timing["sync"], timing["total"]
    return {"cells_hovered": cells, "hovers_seen_by_page": hit, "server_requests": requests,
            "matrix": f"{timing['rows']}x{timing['cols']}",
            "apply_sync_ms": {"median": statistics.median(sync), "p95": sorted(sync)[int(0.95 * len(sync)) - 1],
                              "max": max(sync)},
            "apply_until_drawn_ms": {"median": statistics.median(total),
                                     "p95": sorted(total)[int(0.95 * len(total)) - 1], "max": max(total)},
            "browser_errors": len(logs)}


RESOURCES = """
return performance.getEntriesByType('resource')
  .filter(e => e.name.indexOf('_dash-update-component') !== -1)
  .map(e => ({transfer: e.transferSize, encoded: e.encodedBodySize, decoded: e.decodedBodySize,
              start: e.startTime, end: e.responseEnd}));
"""


def head_switch(url: str, tokens: int = 200, head: str = "5") -> dict:
    """Bytes Chromium receives for one head switch (Resource Timing of every callback request it
    causes): transferSize (headers + compressed body), encoded and decoded body sizes."""
    driver = make_driver()
    try:
        _open_and_run(driver, url, tokens)
        _settle(driver)
        before = driver.execute_script("return document.querySelector('#heatmap-title').textContent;")
        driver.execute_script("performance.clearResourceTimings();")
        driver.execute_script("window.dash_clientside.set_props('head-dropdown', {value: arguments[0]});", head)
        _wait(driver, "return document.querySelector('#heatmap-title').textContent !== arguments[0];", 60, before)
        entries = _settle(driver)
        title = driver.execute_script("return document.querySelector('#heatmap-title').textContent;")
    finally:
        driver.quit()
    return {"tokens": tokens, "requests": len(entries), "title_after": title,
            "transfer_bytes": sum(e["transfer"] for e in entries),
            "encoded_body_bytes": sum(e["encoded"] for e in entries),
            "decoded_body_bytes": sum(e["decoded"] for e in entries)}


TIME_SWITCH = """
const done = arguments[arguments.length - 1];
const heads = arguments[0];
const A = window.dash_clientside.attn;
const g = A.lib.graphDiv(A.ids.HEATMAP);
const text = id => (document.getElementById(id) || {}).textContent || "";
let drawnAt = null;
let want = null;
(async function () {
  const drawn = [], all = [];
  try {
    for (const h of heads) {
      want = h; drawnAt = null;
      const layer = g.layout.meta.layer;
      const t0 = performance.now();
      window.dash_clientside.set_props(A.ids.HEAD, {value: String(h)});
      const tag = "L" + layer + " H" + h;
      const grid = A.lib.graphDiv(A.ids.GRID);
      for (;;) {
        await new Promise(res => requestAnimationFrame(() => res()));
        // drawn: the first animation frame that starts with the new head's figure in the graph
        if (drawnAt === null && g.layout.meta.head === h) { drawnAt = performance.now(); }
        const sel = (grid.layout.shapes || []).filter(s => s.name === "selected");
        if (drawnAt !== null && text(A.ids.INSPECTOR_TITLE).endsWith(tag) && text(A.ids.TEXT_VIEW_TITLE).endsWith(tag)
            && sel.length && sel[0].x0 === h - 0.5) { break; }
        if (performance.now() - t0 > 10000) {
          throw new Error("head " + h + " not shown after 10 s: " + JSON.stringify({drawn: drawnAt, meta: g.layout.meta.head,
            insp: text(A.ids.INSPECTOR_TITLE), tv: text(A.ids.TEXT_VIEW_TITLE), sel: sel}));
        }
      }
      drawn.push(drawnAt - t0); all.push(performance.now() - t0);
      await new Promise(res => setTimeout(res, 150));
    }
    done({drawn: drawn, all: all, rows: g.layout.meta.rows});
  } catch (e) { done({error: String(e)}); }
})();
"""


def head_switch_drawn(url: str, tokens: int = 200, switches: int = 15) -> dict:
    driver = make_driver()
    try:
        _open_and_run(driver, url, tokens, script_timeout=300)
        _settle(driver, quiet=5.0, timeout=180)  # the run's own requests (research card: seconds) done
        driver.execute_script("window.scrollTo(0, 0); performance.clearResourceTimings();")
        driver.execute_script(WRAP_FETCH)
        heads = [(3 + 5 * i) % 12 for i in range(switches)]  # 3, 8, 1, 6, 11, ...: always another head
        timing = driver.execute_async_script(TIME_SWITCH, heads)
        if "error" in timing:
            raise RuntimeError(timing["error"])
        time.sleep(1.0)
        requests = driver.execute_script("return window.__attnCallbackRequests;")
        logs = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    finally:
        driver.quit()
    drawn, all_ = timing["drawn"], timing["all"]
    return {"tokens": timing["rows"], "switches": len(drawn), "server_requests": requests,
            "heatmap_drawn_ms": {"p50": statistics.median(drawn), "max": max(drawn)},
            "all_panels_shown_ms": {"p50": statistics.median(all_), "max": max(all_)},
            "browser_errors": len(logs)}


def long_model(folder: str) -> dict:
    """A long-context Llama-shaped model (rotary, grouped-query: 2 layers, 4 heads of 64, 2 kv heads,
    random weights) saved with the embedded tokenizer as an ordinary Hugging Face folder: the env
    that serves it as "bench-long" (ATTN_MODELS)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from models import loader

    tok = loader.get_loaded("all-MiniLM-L6-v2").tokenizer
    torch.manual_seed(5)
    cfg = AutoConfig.for_model("llama", vocab_size=len(tok), hidden_size=256, intermediate_size=512,
                               num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                               max_position_embeddings=4096, bos_token_id=101, eos_token_id=102)
    AutoModelForCausalLM.from_config(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return {"ATTN_MODELS": f"bench-long={folder}"}


TIME_LONG_SWITCH = """
const done = arguments[arguments.length - 1];
const heads = arguments[0];
const A = window.dash_clientside.attn;
const g = A.lib.graphDiv(A.ids.HEATMAP);
(async function () {
  const drawn = [];
  try {
    for (const h of heads) {
      const t0 = performance.now();
      window.dash_clientside.set_props(A.ids.HEAD, {value: String(h)});
      for (;;) {  // drawn: the first animation frame that starts with the new head's overview
        await new Promise(res => requestAnimationFrame(() => res()));
        if (g.layout.meta.head === h && g.layout.meta.pooled) { break; }
        if (performance.now() - t0 > 20000) { throw new Error("head " + h + " not drawn after 20 s"); }
      }
      drawn.push(performance.now() - t0);
      await new Promise(res => setTimeout(res, 300));
    }
    done({drawn: drawn, rows: g.layout.meta.rows});
  } catch (e) { done({error: String(e)}); }
})();
"""


def head_switch_long(url: str, tokens: int = 2048, switches: int = 9) -> dict:
    """Head switches at `tokens` tokens on the "bench-long" model (long_model): the browser holds a
    pooled overview of one head and fetches each new head from the server (one request, Q/K -> the
    head's weights -> block max). Per switch: from the switch until the first animation frame that
    starts with the new head's overview in the graph (target <= 500 ms), and the bytes received
    (Resource Timing of every callback request; target <= 1 MB)."""
    from selenium.webdriver.common.by import By

    words = ["cat", "dog", "sat", "on", "the", "mat", "and", "ran", "to", "house"]
    text = " ".join(words[i % len(words)] for i in range(tokens - 2))  # + [CLS] and [SEP]
    driver = make_driver()
    try:
        driver.set_script_timeout(300)
        driver.get(url + "/?model=bench-long&layer=1&head=0")
        _wait(driver, "return !!document.getElementById('text-input') && !!window.dash_clientside"
                      " && !!window.dash_clientside.set_props", 60)
        driver.execute_script("performance.setResourceTimingBufferSize(10000);")
        _set_text(driver, driver.find_element(By.ID, "text-input"), text)
        driver.find_element(By.ID, "run-button").click()
        _wait(driver, "const A = window.dash_clientside.attn; const g = A.lib.graphDiv(A.ids.HEATMAP);"
                      "return g && g.layout && g.layout.meta && g.layout.meta.pooled && g.layout.meta.head === 0;",
              180)
        _settle(driver, quiet=3.0, timeout=180)
        driver.execute_script("window.scrollTo(0, 0); performance.clearResourceTimings();")
        heads = [(1 + i) % 4 for i in range(switches)]  # 1, 2, 3, 0, 1, ...: always another head
        timing = driver.execute_async_script(TIME_LONG_SWITCH, heads)
        if "error" in timing:
            raise RuntimeError(timing["error"])
        entries = _settle(driver)
        logs = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    finally:
        driver.quit()
    drawn = timing["drawn"]
    n = len(drawn)
    return {"tokens": tokens, "overview": f"{timing['rows']}x{timing['rows']}", "switches": n,
            "requests_per_switch": len(entries) / n,
            "received_bytes_per_switch": sum(e["transfer"] for e in entries) / n,
            "decoded_bytes_per_switch": sum(e["decoded"] for e in entries) / n,
            "drawn_ms": {"p50": statistics.median(drawn), "max": max(drawn)}, "browser_errors": len(logs)}


def _settle(driver, quiet: float = 1.0, timeout: float = 30.0) -> list:
    """Wait until no callback request has started or ended for `quiet` seconds; the entries."""
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        entries = driver.execute_script(RESOURCES)
        sig = (len(entries), max((e["end"] for e in entries), default=0))
        if sig != last:
            last, since = sig, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return entries
        time.sleep(0.1)
    return driver.execute_script(RESOURCES)


if __name__ == "__main__":
    from bench.local import LocalGunicorn

    only = sys.argv[1:]  # names of the benchmarks to run (default: all)
    with tempfile.TemporaryDirectory(prefix="attn-bench-long-") as folder:
        env = long_model(folder) if not only or "head_switch_long" in only else {}
        with LocalGunicorn(workers=1, env=env) as srv:
            for fn in (head_switch_drawn, head_switch, hover, head_switch_long):
                if not only or fn.__name__ in only:
                    print(fn.__name__, json.dumps(fn(srv.url), indent=1))
