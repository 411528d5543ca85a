/*
 * Keyboard of the attention dashboard (plain listeners, delegated on document so they work
 * whatever Dash re-renders):
 *
 *   text boxes (#text-input, #text-pair-input): Enter runs (clicks #run-button),
 *       Shift+Enter inserts a new line; IME composition is left alone.
 *   heatmap (#heatmap-container, focusable): arrow keys move the highlighted cell (writes the
 *       browser-only hover store with dash_clientside.set_props: no server request),
 *       Home/End jump to the first/last key, Enter/Space selects the query for the token
 *       inspector (a click: the inspector asks the server), Escape clears the highlight.
 *
 * The cell text ("Attention from query 3 (sat) to key 1 (cat): 0.51") is written by
 * hover.apply into the container's aria-label and the aria-live="polite" region. Ids come from
 * dashboard/ids.py (assets/attn-ids.js); the current cell from attn.state.hover (assets/attn-lib.js).
 */
(function () {
    "use strict";
    var attn = window.dash_clientside.attn;
    var TEXT_IDS = {};
    TEXT_IDS[attn.ids.TEXT] = true;
    TEXT_IDS[attn.ids.TEXT_PAIR] = true;
    var RUN = attn.ids.RUN_BUTTON, CONTAINER = attn.ids.HEATMAP_CONTAINER, HOVER = attn.ids.HOVER,
        QUERY = attn.ids.QUERY;

    function onTextKey(e) {
        if (e.key !== "Enter" || e.shiftKey || e.isComposing || e.keyCode === 229) { return; }
        if (e.ctrlKey || e.altKey || e.metaKey) { return; }
        e.preventDefault();
        var btn = document.getElementById(RUN);
        // let the textarea's last input event reach Dash first
        if (btn) { window.setTimeout(function () { btn.click(); }, 0); }
    }

    function heatmapMeta() {
        var m = attn.lib.meta(attn.lib.graphDiv(attn.ids.HEATMAP));
        return m.kind === "heatmap" ? m : null;
    }

    function setHover(data) {
        if (window.dash_clientside && window.dash_clientside.set_props) {
            window.dash_clientside.set_props(HOVER, {data: data});
        }
    }

    function onHeatmapKey(e) {
        var m = heatmapMeta();
        if (!m) { return; }
        var state = attn.state.hover || {};
        var cell = state.cell;
        var row = cell && cell.row !== null ? cell.row : 0;
        var col = cell && cell.col !== null ? cell.col : 0;
        var fresh = !cell || cell.row === null || cell.col === null;
        switch (e.key) {
            case "ArrowUp": if (!fresh) { row -= 1; } break;
            case "ArrowDown": if (!fresh) { row += 1; } break;
            case "ArrowLeft": if (!fresh) { col -= 1; } break;
            case "ArrowRight": if (!fresh) { col += 1; } break;
            case "Home": col = 0; break;
            case "End": col = m.cols - 1; break;
            case "Escape":
                e.preventDefault();
                setHover({layer: null, head: null, query: null, key: null, source: "keyboard"});
                return;
            case "Enter":
            case " ":
                e.preventDefault();
                if (!fresh && window.dash_clientside.set_props) {
                    window.dash_clientside.set_props(QUERY, {data: row + (m.query_offset || 0)});
                }
                return;
            default:
                return;
        }
        e.preventDefault();
        row = Math.max(0, Math.min(m.rows - 1, row));
        col = Math.max(0, Math.min(m.cols - 1, col));
        var data = {layer: m.layer === undefined ? null : m.layer, head: m.head === undefined ? null : m.head,
                    query: row + (m.query_offset || 0), key: col + (m.key_offset || 0), source: "keyboard"};
        // remember the cell now: the next key may come before the store round trip has redrawn
        attn.state.hover = {hover: data, cell: {row: row, col: col, rows: m.rows, cols: m.cols}};
        setHover(data);
    }

    document.addEventListener("keydown", function (e) {
        var t = e.target;
        if (!t || !t.id) { return; }
        if (TEXT_IDS[t.id]) { onTextKey(e); } else if (t.id === CONTAINER) { onHeatmapKey(e); }
    });
}());
