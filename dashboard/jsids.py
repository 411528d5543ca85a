"""The component ids (and the few style constants) the browser code needs, emitted from
dashboard/ids.py and dashboard/pruning_ids.py into assets/attn-ids.js, so no asset spells an id.

    python -m dashboard.jsids          # rewrite assets/attn-ids.js (after changing an id)

The file defines `window.dash_clientside.attn.ids` (dashboard/ids.py), `.pruningIds`
(dashboard/pruning_ids.py) and `.style`; it sorts before every other asset (Dash loads assets in
file-name order), so they can read it when they load. tests/unit/test_js_ids.py checks both ways:
the committed file is what `render()` gives, and no other asset holds an id as a string literal.
"""
from __future__ import annotations

import json
from pathlib import Path

from dashboard import ids, pruning_ids

PATH = Path(__file__).resolve().parents[1] / "assets" / "attn-ids.js"


def constants(module) -> dict[str, str]:
    """Every UPPER_CASE string constant of a module, by name."""
    return {k: v for k, v in vars(module).items() if k.isupper() and isinstance(v, str)}


def render() -> str:
    from dashboard.figures import SELECTED_COLOR

    def block(name: str, values: dict) -> str:
        return f"    attn.{name} = " + json.dumps(values, indent=8, sort_keys=True).replace("\n}", "\n    }") + ";\n"

    return ("/* GENERATED from dashboard/ids.py and dashboard/pruning_ids.py by `python -m dashboard.jsids`:\n"
            " * do not edit. The page's component ids for the browser code (one namespaced object,\n"
            " * window.dash_clientside.attn; see assets/attn-lib.js). */\n"
            "(function () {\n"
            "    \"use strict\";\n"
            "    var dc = window.dash_clientside = window.dash_clientside || {};\n"
            "    var attn = dc.attn = dc.attn || {};\n"
            + block("ids", constants(ids))
            + block("pruningIds", constants(pruning_ids))
            + block("style", {"SELECTED_COLOR": SELECTED_COLOR})
            + "}());\n")


if __name__ == "__main__":
    PATH.write_text(render(), encoding="utf-8")
    print(f"wrote {PATH}")
