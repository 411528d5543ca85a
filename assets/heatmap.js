/*
 * The heatmap drawn from quantised bytes (namespace "heatmap"); see dashboard/transport.py and
 * dashboard/panels.heatmap_payload for the payload.
 *
 *   decode(matrix, index)       -> rows x cols array of numbers (null = masked), matrix index `index`
 *   draw(payload, head, run, block, layer)
 *                               -> [figure, title, note, 5 stat values]: a head the payload holds
 *                                  (a whole layer when it is short) is drawn with NO request; a head
 *                                  it lacks is asked of the server (the fetch store, one head); an
 *                                  answer for another run, block or layer than the page shows now
 *                                  is dropped (assets/consistency.js current)
 *   windowFromZoom(relayout, figure) -> the window store after a box-zoom on an overview
 *                                  ({q0, q1, k0, k1} in shown rows/columns), null after a
 *                                  double-click on a window, no_update otherwise
 *
 * Codes: value = code * step; the top code (255 / 65535) marks a masked cell.
 */
(function () {
    "use strict";
    var attn = window.dash_clientside.attn;
    var NU = attn.lib.NU;
    var STATS = ["tokens", "entropy", "max_weight", "most_attended", "sink"];
    var cache = {b64: null, codes: null};

    function codesOf(matrix) {
        if (cache.b64 === matrix.b64) { return cache.codes; }
        var bin = atob(matrix.b64);
        var bytes = new Uint8Array(bin.length);
        for (var i = 0; i < bin.length; i++) { bytes[i] = bin.charCodeAt(i); }
        var codes = matrix.dtype === "u16" ? new Uint16Array(bytes.buffer) : bytes;
        cache = {b64: matrix.b64, codes: codes};
        return codes;
    }

    function decode(matrix, index) {
        var shape = matrix.shape, rows = shape[shape.length - 2], cols = shape[shape.length - 1];
        var codes = codesOf(matrix);
        var top = matrix.dtype === "u16" ? 65535 : 255;
        var step = matrix.step, off = (index || 0) * rows * cols;
        var z = new Array(rows);
        for (var r = 0; r < rows; r++) {
            var row = new Array(cols), base = off + r * cols;
            for (var c = 0; c < cols; c++) {
                var v = codes[base + c];
                row[c] = v === top ? null : v * step;
            }
            z[r] = row;
        }
        return z;
    }

    function wanted(payload, head) {
        return head === null || head === undefined ? payload.heads[0] : String(head);
    }

    /* A head the payload lacks (a long text sends one head) is asked of the server by writing the
       fetch store (set_props: not a declared output, so the draw is not made to wait for a
       fetch step on every head switch, and payload -> draw -> fetch -> payload is no Dash cycle).
       The same head of the same view is asked once: an answer that still lacks it (never, the
       server clamps only invalid values) cannot make a loop. */
    var asked = null;

    function fetchHead(want, payload) {
        var key = [want, payload.layer, payload.uirevision, (payload.view || {}).key].join("|");
        if (asked === key) { return; }
        asked = key;
        window.dash_clientside.set_props(attn.ids.HEATMAP_FETCH, {data: {head: want, layer: payload.layer, n: Date.now()}});
    }

    /* A head switch is drawn into the graph at once; Dash gets the same outputs after that frame is
       painted (attn.lib.afterPaint), as do the other panels (attn.lib.deferOnHeadSwitch): before,
       Dash committed every panel's outputs in one React update and the heatmap showed ~300 ms
       after the switch (bench/browser.py head_switch_drawn). The same figure object goes to Dash,
       so the graph's own redraw finds its arrays unchanged and the figure prop stays the truth.
       Of two quick switches, only the later hands its outputs to Dash (seq), so the earlier head
       is never drawn again over it. */
    var seq = 0;

    function drawNow(fig, out) {
        var g = attn.lib.graphDiv(attn.ids.HEATMAP);
        if (!g || !g._fullLayout || !window.Plotly) { return out; }
        try { window.Plotly.react(g, fig.data, fig.layout); } catch (e) { return out; }  // Dash draws it
        var mine = ++seq;
        return attn.lib.afterPaint(function () {
            return mine === seq ? out : out.map(NU);
        });
    }

    function draw(payload, head, run, block, layer) {
        var none = [NU(), NU(), NU()].concat(STATS.map(NU));
        if (!payload || !payload.figure || !payload.matrix) { return none; }
        // an answer for another run, block or layer than the page shows now: dropped, never drawn
        var view = window.dash_clientside.view;
        if (view && !view.current(payload.view, run, block, layer, null)) { return none; }
        var want = wanted(payload, head);
        var i = payload.heads.indexOf(want);
        if (i < 0) { fetchHead(want, payload); return none; }
        var fig = {data: payload.figure.data.slice(), layout: Object.assign({}, payload.figure.layout)};
        var trace = Object.assign({}, fig.data[0]);
        trace.z = decode(payload.matrix, i);
        if (payload.zmax && payload.zmax[i] !== null && payload.zmax[i] !== undefined) {
            trace.zmax = payload.zmax[i];
            // the legend says the range adapted, and to what
            var top = Number(payload.zmax[i]);
            trace.colorbar = Object.assign({}, trace.colorbar || {}, {title: Object.assign(
                {}, (trace.colorbar || {}).title || {}, {text: (payload.value_name || "weight") + (payload.value_name && payload.value_name !== "weight" ? " (0–" :
                                                          " (adapted: 0–") + top.toPrecision(2) + ")"})});
        }
        fig.data[0] = trace;
        var meta = Object.assign({}, fig.layout.meta || {});
        meta.head = want === "mean" ? "mean" : Number(want);
        if (payload.view) { meta.view = Object.assign({}, payload.view, {head: want}); }
        fig.layout.meta = meta;
        var stats = (payload.stats && payload.stats[i]) || {};
        var out = [fig, payload.titles[i], payload.note || ""].concat(STATS.map(function (k) {
            return stats[k] === undefined ? NU() : stats[k];
        }));
        if (!attn.lib.headSwitch()) { seq++; return out; }
        return drawNow(fig, out);
    }

    function num(x) { return typeof x === "number" && isFinite(x) ? x : null; }

    function windowFromZoom(relayout, figure) {
        var m = (figure && figure.layout && figure.layout.meta) || {};
        if (!relayout || m.kind !== "heatmap") { return NU(); }
        if (relayout["xaxis.autorange"] || relayout["yaxis.autorange"]) {
            return m.window ? null : NU();  // double-click on a window: back to the overview
        }
        if (!m.pooled) { return NU(); }  // exact views zoom in the browser
        var x0 = num(relayout["xaxis.range[0]"]), x1 = num(relayout["xaxis.range[1]"]);
        var y0 = num(relayout["yaxis.range[0]"]), y1 = num(relayout["yaxis.range[1]"]);
        if (x0 === null || x1 === null || y0 === null || y1 === null) { return NU(); }
        var f = m.block_size || 1;
        var cLo = Math.max(0, Math.round(Math.min(x0, x1) + 0.5)), cHi = Math.round(Math.max(x0, x1) + 0.5);
        var rLo = Math.max(0, Math.round(Math.min(y0, y1) + 0.5)), rHi = Math.round(Math.max(y0, y1) + 0.5);
        if (cHi <= cLo || rHi <= rLo) { return NU(); }
        // overview cells -> shown rows/columns of the view this overview was made of
        var base = m.window_origin || [0, 0];
        return {q0: base[0] + rLo * f, q1: base[0] + rHi * f, k0: base[1] + cLo * f, k1: base[1] + cHi * f,
                uirevision: m.uirevision};
    }

    /* Labels follow the zoom: a long heatmap labels every n-th token on its overlay axes (x2/y2);
       after a zoom or pan the overlay ticks are recomputed for the visible range, so a window of
       up to MAX_LABELS tokens has every token labelled (the full labels sit, hidden, on x/y). */
    var MAX_LABELS = 60;

    function visibleTicks(all, range) {
        var lo = Math.max(0, Math.ceil(Math.min(range[0], range[1]))),
            hi = Math.min(all.length - 1, Math.floor(Math.max(range[0], range[1])));
        var step = Math.max(1, Math.ceil((hi - lo + 1) / MAX_LABELS));
        var vals = [], text = [];
        for (var i = lo; i <= hi; i += step) { vals.push(i); text.push(all[i]); }
        return [vals, text];
    }

    function labelsFollowZoom(relayout) {
        if (!relayout || !window.Plotly) { return; }
        var moved = Object.keys(relayout).some(function (k) { return /^[xy]axis\.(range|autorange)/.test(k); });
        if (!moved) { return; }
        var g = attn.lib.graphDiv(attn.ids.HEATMAP);
        if (!g || !g.layout || !g.layout.xaxis2 || !g._fullLayout) { return; }
        var fl = g._fullLayout;
        var x = visibleTicks(g.layout.xaxis.ticktext || [], fl.xaxis.range);
        var y = visibleTicks(g.layout.yaxis.ticktext || [], fl.yaxis.range);
        window.Plotly.relayout(g, {"xaxis2.tickvals": x[0], "xaxis2.ticktext": x[1],
                                   "yaxis2.tickvals": y[0], "yaxis2.ticktext": y[1]});
    }

    window.dash_clientside = window.dash_clientside || {};
    window.dash_clientside.heatmap = {decode: decode, draw: draw, windowFromZoom: windowFromZoom,
                                      labelsFollowZoom: labelsFollowZoom};
}());
