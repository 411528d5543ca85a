/*
 * Shared helpers of the page's browser code: ONE namespaced module object,
 * window.dash_clientside.attn (no other window globals pass anything between the asset files).
 *
 *   attn.ids, attn.pruningIds, attn.style   component ids / colours, GENERATED from
 *                                           dashboard/ids.py (assets/attn-ids.js)
 *   attn.lib                                pure helpers used by several files:
 *     NU()                      dash_clientside.no_update
 *     graphDiv(id)              the plotly graph div of a dcc.Graph id (or null)
 *     meta(g)                   g.layout.meta or {}
 *     point(data)               first point of hover/click data, or null
 *     intOrNull(x)              a finite number rounded, else null
 *     unescapeLabel(s)          a figure label back to its text (&lt; &gt; &amp;)
 *     setHoverShapes(g, shapes) replace the shapes named "hover" of a graph (one relayout, only
 *                               when they changed; every other shape is kept)
 *     crossShapes(r, c, rows, cols)  shapes that dim all but row r / column c of a heatmap
 *     heatmapCell(hover, g, sameHead) {row, col, rows, cols} the hover store points at in heatmap
 *                               g (pooled overviews: the block holding the position), or null;
 *                               sameHead: only when g shows the hovered layer and head
 *     headSwitch()              the running clientside callback was caused by the head dropdown alone
 *     afterPaint(fn)            a promise of fn() after the next painted frame (120 ms at most)
 *     deferOnHeadSwitch(fn)     fn as a callback whose work waits for that frame on a head switch
 *     outline(figure, layer, head, block, run)  a grid / small-multiples figure with the page's
 *                               head outlined (shape "selected"), a copy; see assets/consistency.js
 *   attn.state.hover = {hover, cell}        the last hover store value and the heatmap cell it
 *                                           points at: written by hover.js apply and keyboard.js,
 *                                           read by keyboard.js (arrow keys move from it)
 */
(function () {
    "use strict";
    var dc = window.dash_clientside = window.dash_clientside || {};
    var attn = dc.attn = dc.attn || {};
    var DIM = "rgba(255,255,255,0.62)";
    var OUTLINE = "#e6007e";

    function NU() { return window.dash_clientside.no_update; }

    function graphDiv(id) {
        var el = document.getElementById(id);
        if (!el) { return null; }
        return el.classList.contains("js-plotly-plot") ? el : el.querySelector(".js-plotly-plot");
    }

    function meta(g) { return (g && g.layout && g.layout.meta) || {}; }

    function point(data) { return data && data.points && data.points.length ? data.points[0] : null; }

    function intOrNull(x) { return (typeof x === "number" && isFinite(x)) ? Math.round(x) : null; }

    function unescapeLabel(s) {
        return String(s == null ? "" : s).replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
    }

    function setHoverShapes(g, shapes) {
        if (!g || !g.layout || !window.Plotly) { return; }
        var key = JSON.stringify(shapes);
        if (g._attnHoverKey === key) { return; }  // nothing changed: no relayout
        var old = g.layout.shapes || [];
        var hadHover = false, kept = [];
        for (var i = 0; i < old.length; i++) {
            if (old[i] && old[i].name === "hover") { hadHover = true; } else { kept.push(old[i]); }
        }
        g._attnHoverKey = key;
        if (!hadHover && !shapes.length) { return; }
        window.Plotly.relayout(g, {shapes: kept.concat(shapes)});
    }

    function rect(x0, x1, y0, y1, extra) {
        var s = {type: "rect", name: "hover", xref: "x", yref: "y", x0: x0, x1: x1, y0: y0, y1: y1,
                 layer: "above", line: {width: 0}, fillcolor: DIM};
        for (var k in extra) { if (Object.prototype.hasOwnProperty.call(extra, k)) { s[k] = extra[k]; } }
        return s;
    }

    function crossShapes(r, c, rows, cols) {
        var out = [];
        var lo = -0.5, xr = cols - 0.5, yr = rows - 0.5;
        var boxes = [];
        if (r !== null && c !== null) {
            boxes = [[lo, c - 0.5, lo, r - 0.5], [c + 0.5, xr, lo, r - 0.5],
                     [lo, c - 0.5, r + 0.5, yr], [c + 0.5, xr, r + 0.5, yr]];
        } else if (r !== null) {
            boxes = [[lo, xr, lo, r - 0.5], [lo, xr, r + 0.5, yr]];
        } else if (c !== null) {
            boxes = [[lo, c - 0.5, lo, yr], [c + 0.5, xr, lo, yr]];
        }
        boxes.forEach(function (b) {
            if (b[1] > b[0] && b[3] > b[2]) { out.push(rect(b[0], b[1], b[2], b[3], {})); }
        });
        var line = {color: OUTLINE, width: 1.5};
        if (r !== null) { out.push(rect(lo, xr, r - 0.5, r + 0.5, {fillcolor: "rgba(0,0,0,0)", line: line})); }
        if (c !== null) { out.push(rect(c - 0.5, c + 0.5, lo, yr, {fillcolor: "rgba(0,0,0,0)", line: line})); }
        return out;
    }

    /* Index of the block (sorted first positions `starts`) holding position `pos`, or null. */
    function blockOf(starts, pos) {
        if (!starts.length || pos < starts[0]) { return null; }
        var lo = 0, hi = starts.length - 1;
        while (lo < hi) {
            var mid = (lo + hi + 1) >> 1;
            if (starts[mid] <= pos) { lo = mid; } else { hi = mid - 1; }
        }
        return lo;
    }

    function heatmapCell(hover, g, sameHead) {
        var m = meta(g);
        if (!hover || m.kind !== "heatmap") { return null; }
        var q = hover.query === undefined ? null : hover.query, k = hover.key === undefined ? null : hover.key;
        if (q === null && k === null) { return null; }
        if (hover.source !== "heatmap" && hover.source !== "keyboard") { return null; }
        if (sameHead && (hover.layer !== m.layer || hover.head !== m.head)) { return null; }
        var r, c;
        if (m.pooled) {  // the overview cell whose block holds the position
            r = q === null ? null : blockOf(m.row_starts || [], q);
            c = k === null ? null : blockOf(m.col_starts || [], k);
        } else {
            r = q === null ? null : q - (m.query_offset || 0);
            c = k === null ? null : k - (m.key_offset || 0);
        }
        if (r !== null && (r < 0 || r >= m.rows)) { r = null; }
        if (c !== null && (c < 0 || c >= m.cols)) { c = null; }
        if (r === null && c === null) { return null; }
        return {row: r, col: c, rows: m.rows, cols: m.cols};
    }

    // ---- the page's head outlined on a figure (shape "selected"; dashboard/figures.py's look) ----
    function selectedLayerHead(m, layer, head) {
        // as dashboard/views.clamp_to: a missing layer -> the last one, a missing head -> 0
        var l = /^\d{1,6}$/.test(String(layer)) ? Number(layer) : null;
        if (l === null || l >= m.layers) { l = m.layers - 1; }
        if (head === "mean") { return [l, "mean"]; }
        var h = /^\d{1,6}$/.test(String(head)) ? Number(head) : null;
        if (h === null || h >= m.heads) { h = 0; }
        return [l, h];
    }

    /* [outline shape or null, meta.selected, {layer, head} the figure now shows] */
    function gridOutline(m, layer, head, color) {
        var sel = selectedLayerHead(m, layer, head);
        var l = sel[0], h = sel[1];
        var shows = {layer: String(l), head: String(h)};
        if (h === "mean" && !m.outline_mean) { return [null, null, shows]; }
        var box = h === "mean" ? [-0.5, m.heads - 0.5] : [h - 0.5, h + 0.5];
        return [{type: "rect", name: "selected", xref: "x", yref: "y", x0: box[0], x1: box[1],
                 y0: l - 0.5, y1: l + 0.5, line: {color: color, width: 3.5}, fillcolor: "rgba(0,0,0,0)",
                 layer: "above"}, h === "mean" ? null : [l, h], shows];
    }

    function panelOutline(m, head) {
        var h = /^\d{1,6}$/.test(String(head)) ? Number(head) : null;
        var shows = {head: head === null || head === undefined ? null : String(head)};
        if (h === null || h >= m.panels) { return [null, null, shows]; }
        var sfx = h === 0 ? "" : String(h + 1);
        return [{type: "rect", name: "selected", xref: "x" + sfx + " domain", yref: "y" + sfx + " domain",
                 x0: -0.02, x1: 1.02, y0: -0.02, y1: 1.02, line: {color: attn.style.SELECTED_COLOR, width: 3},
                 fillcolor: "rgba(0,0,0,0)", layer: "above"}, h, shows];
    }

    /* figure: a head grid / role grid (layers x heads) or small multiples of one layer (payload
       figures drawn without an outline); layer, head: the dropdowns' values. The outline is drawn
       only where the figure's meta allows it: meta.outline_block (the grid belongs to that block
       only, e.g. the pruning grid = the main block), meta.outline_mean (a row for "mean"). */
    function outline(figure, layer, head, block) {
        if (!figure || !figure.layout) { return figure; }
        var m = figure.layout.meta || {};
        var shape = [null, null, null];
        var name = block === null || block === undefined ? null : String(block).split(":")[0];
        var blockOk = !m.outline_block || name === null || name === m.outline_block;
        if (blockOk && m.kind === "small_multiples") {
            shape = panelOutline(m, head);
        } else if (blockOk && (m.kind === "head_grid" || m.kind === "role_grid") && m.layers && m.heads) {
            shape = gridOutline(m, layer, head, m.kind === "role_grid" ? "#111827" : attn.style.SELECTED_COLOR);
        }
        var kept = (figure.layout.shapes || []).filter(function (s) { return !s || s.name !== "selected"; });
        var newMeta = Object.assign({}, m, {selected: shape[1]});
        // the figure's view stamp names the selection it now shows (as a server-drawn one did)
        if (m.view && shape[2]) { newMeta.view = Object.assign({}, m.view, shape[2]); }
        var layout = Object.assign({}, figure.layout, {
            shapes: shape[0] ? kept.concat([shape[0]]) : kept,
            meta: newMeta
        });
        return {data: figure.data, layout: layout, frames: figure.frames};
    }

    // ---- a head switch: the heatmap first, everything else after it is on screen ----------------
    /* Was the running clientside callback caused by the head dropdown alone (a switch within the
       layer the page holds)? Read synchronously: Dash's callback_context lives only during the call. */
    function headSwitch() {
        var cc = window.dash_clientside.callback_context;
        var t = (cc && cc.triggered) || [];
        return t.length === 1 && !!t[0] && t[0].prop_id === attn.ids.HEAD + ".value";
    }

    /* A promise of fn() run after the next frame has been painted (or after 120 ms, whichever is
       first: a hidden tab paints no frames). Dash waits for a clientside callback's promise. */
    function afterPaint(fn) {
        return new Promise(function (resolve, reject) {
            var done = false;
            function go() {
                if (done) { return; }
                done = true;
                try { resolve(fn()); } catch (e) { reject(e); }
            }
            window.requestAnimationFrame(function () { setTimeout(go, 0); });
            setTimeout(go, 120);
        });
    }

    /* fn as a clientside callback whose work waits for the next paint when a head switch caused it:
       heatmap.js draws the new head at once, and the other panels' redraws (and Dash's commit of
       them, one React update for the whole page) come a frame later instead of holding it back
       (bench/browser.py head_switch_drawn). Any other cause runs fn at once. A deferred call that
       a later call of the same callback has overtaken (another switch, a hover) does nothing:
       fn draws into the page itself (the text view), so running it late would put the earlier
       head's colours under the later head's title. */
    function deferOnHeadSwitch(fn) {
        var calls = {};  // per callback (its outputs: one function can serve several callbacks)
        return function () {
            var self = this, args = arguments;
            var cc = window.dash_clientside.callback_context;
            var key = JSON.stringify((cc && cc.outputs_list) || null);
            var mine = calls[key] = (calls[key] || 0) + 1;
            if (!headSwitch()) { return fn.apply(self, args); }
            return afterPaint(function () {
                if (mine !== calls[key]) { throw window.dash_clientside.PreventUpdate; }
                return fn.apply(self, args);
            });
        };
    }

    attn.lib = {
        headSwitch: headSwitch, afterPaint: afterPaint, deferOnHeadSwitch: deferOnHeadSwitch,
        NU: NU, graphDiv: graphDiv, meta: meta, point: point, intOrNull: intOrNull, unescapeLabel: unescapeLabel,
        setHoverShapes: setHoverShapes, crossShapes: crossShapes, heatmapCell: heatmapCell, outline: outline
    };
    attn.state = attn.state || {hover: {hover: null, cell: null}};
}());
