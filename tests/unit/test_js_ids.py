"""Component ids in the browser code come from dashboard/ids.py, checked both ways: the generated
assets/attn-ids.js is what dashboard/jsids.py renders now, no other asset spells an id, and every
id an asset names exists."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from dashboard import ids, jsids, pruning_ids

ASSETS = Path(__file__).resolve().parents[2] / "assets"
SCRIPTS = sorted(p for p in ASSETS.glob("*.js") if p.name != "attn-ids.js")


def test_generated_ids_file_is_current():
    assert jsids.PATH.read_text(encoding="utf-8") == jsids.render(), "run: python -m dashboard.jsids"


def test_no_asset_spells_an_id():
    values = set(jsids.constants(ids).values()) | set(jsids.constants(pruning_ids).values())
    for path in SCRIPTS:
        quoted = set(re.findall(r'"([^"\n]+)"', path.read_text(encoding="utf-8")))
        assert not quoted & values, (path.name, quoted & values)


def test_every_id_an_asset_names_exists():
    names = {"ids": jsids.constants(ids), "pruningIds": jsids.constants(pruning_ids)}
    used = 0
    for path in SCRIPTS:
        text = path.read_text(encoding="utf-8")
        for group, name in re.findall(r"attn\.(ids|pruningIds)\.([A-Z_]+)", text):
            assert name in names[group], (path.name, group, name)
            used += 1
        for name in re.findall(r"\bPI\.([A-Z_]+)", text):  # pruning.js: PI = attn.pruningIds
            assert name in names["pruningIds"], (path.name, name)
            used += 1
    assert used >= 15


def test_assets_load_after_the_ids_and_share_one_namespace():
    """Dash loads assets in file-name order: the ids and the shared helpers come first; no asset
    passes state through a window global of its own."""
    order = sorted(p.name for p in ASSETS.glob("*.js"))
    assert order[:2] == ["attn-ids.js", "attn-lib.js"]
    for path in SCRIPTS:
        text = path.read_text(encoding="utf-8")
        own = set(re.findall(r"window\.([A-Za-z_$][\w$]*)\s*=(?!=)", text)) - {"dash_clientside"}
        assert not own, (path.name, own)
        assert "setInterval" not in text, path.name


def test_shared_helpers_run_in_node():
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    script = ("global.window = {}; global.document = {};"
              + "".join(f"require({json.dumps(str(ASSETS / f))});" for f in ("attn-ids.js", "attn-lib.js"))
              + "const a = window.dash_clientside.attn;"
              "const fig = {data: [], layout: {meta: {kind: 'head_grid', layers: 6, heads: 12, outline_mean: true},"
              "  shapes: [{name: 'hover'}, {name: 'selected'}]}};"
              "const sm = {data: [], layout: {meta: {kind: 'small_multiples', panels: 12}}};"
              "console.log(JSON.stringify({ids: a.ids.HEATMAP, cross: a.lib.crossShapes(1, 2, 4, 5).length,"
              "  grid: a.lib.outline(fig, '3', '5', 'self').layout, mean: a.lib.outline(fig, '2', 'mean').layout,"
              "  bad: a.lib.outline(fig, 'x', '99').layout.meta.selected, panel: a.lib.outline(sm, '3', '4').layout,"
              "  other: a.lib.outline({data: [], layout: {meta: Object.assign({}, fig.layout.meta,"
              "         {outline_block: 'self'})}}, '1', '1', 'cross').layout.shapes.length}));")
    out = json.loads(subprocess.run([node, "-e", script], capture_output=True, text=True, check=True,
                                    timeout=30).stdout)
    assert out["ids"] == ids.HEATMAP
    assert out["cross"] == 6  # four dimmed boxes + row and column outlines
    grid = out["grid"]
    assert [s["name"] for s in grid["shapes"]] == ["hover", "selected"]  # one outline, others kept
    sel = grid["shapes"][1]
    assert (sel["x0"], sel["x1"], sel["y0"], sel["y1"]) == (4.5, 5.5, 2.5, 3.5) and grid["meta"]["selected"] == [3, 5]
    mean = out["mean"]["shapes"][1]
    assert (mean["x0"], mean["x1"], mean["y0"], mean["y1"]) == (-0.5, 11.5, 1.5, 2.5)
    assert out["bad"] == [5, 0]  # as views.clamp_to: the last layer, head 0
    assert out["panel"]["shapes"][0]["xref"] == "x5 domain" and out["panel"]["meta"]["selected"] == 4
    assert out["other"] == 0  # a grid of another block than the page's: no outline
