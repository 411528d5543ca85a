/*
 * Compare two runs (research card, namespace "compare"): hover linked across map A, map B and
 * the difference map B − A, in the browser (no request). dashboard/research_compare.py draws them.
 *
 *   fromCompare(hoverData, figure) -> the shared hover store {layer, head, query, key, source: "compare"}
 *                                     (query / key: the row and column pointed at)
 *   link(hover) -> the readout under the maps ("query 3 “cat” → key 2 “the”: A 0.41 · B 0.38 ·
 *                  B − A −0.03"); draws the row / column highlight (shapes named "hover", the
 *                  same as the main heatmap's: hover.crossShapes) on every compare map that has
 *                  that cell. A hover from the main heatmap (same positions: A is the page's run)
 *                  is drawn too; anything else clears the highlight.
 */
(function () {
    "use strict";
    var GRAPHS = ["research-compare-a", "research-compare-b", "research-compare-diff"];
    var NAMES = {"research-compare-a": "A", "research-compare-b": "B", "research-compare-diff": "B − A"};
    var SOURCES = {compare: true, heatmap: true, keyboard: true};

    function gd(id) {
        var el = document.getElementById(id);
        if (!el) { return null; }
        return el.classList.contains("js-plotly-plot") ? el : el.querySelector(".js-plotly-plot");
    }

    function intOrNull(x) { return (typeof x === "number" && isFinite(x)) ? Math.round(x) : null; }

    function fromCompare(hoverData, figure) {
        var p = hoverData && hoverData.points && hoverData.points.length ? hoverData.points[0] : null;
        var m = (figure && figure.layout && figure.layout.meta) || {};
        if (!p || intOrNull(p.x) === null || intOrNull(p.y) === null) {
            return {layer: null, head: null, query: null, key: null, source: "compare"};
        }
        return {layer: m.layer === undefined ? null : m.layer, head: m.head === undefined ? null : m.head,
                query: intOrNull(p.y) + (m.query_offset || 0), key: intOrNull(p.x) + (m.key_offset || 0),
                source: "compare"};
    }

    function size(g) {
        var z = g && g.data && g.data[0] && g.data[0].z;
        if (!z || !z.length || !z[0] || !z[0].length) { return null; }
        return {rows: z.length, cols: z[0].length, z: z};
    }

    function setShapes(g, shapes) {
        if (!g || !g.layout || !window.Plotly) { return; }
        var key = JSON.stringify(shapes);
        if (g._attnCompareKey === key) { return; }
        var kept = (g.layout.shapes || []).filter(function (s) { return !(s && s.name === "hover"); });
        var had = (g.layout.shapes || []).length !== kept.length;
        g._attnCompareKey = key;
        if (!had && !shapes.length) { return; }
        window.Plotly.relayout(g, {shapes: kept.concat(shapes)});
    }

    function label(g, i) {
        var t = (g.layout && g.layout.yaxis && g.layout.yaxis.ticktext) || [];
        return String(t[i] === undefined ? "" : t[i]).replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
    }

    function fmt(v, signed) {
        if (v === null || v === undefined) { return "masked"; }
        var s = Number(v).toFixed(3);
        return signed && v > 0 ? "+" + s : s;
    }

    function link(hover) {
        var h = hover || {};
        var on = SOURCES[h.source] && typeof h.query === "number" && typeof h.key === "number";
        var parts = [], where = "";
        GRAPHS.forEach(function (id) {
            var g = gd(id), s = size(g);
            if (!g) { return; }
            if (!on || !s || h.query < 0 || h.key < 0 || h.query >= s.rows || h.key >= s.cols) {
                setShapes(g, []);
                return;
            }
            var cross = window.dash_clientside.hover.crossShapes;
            setShapes(g, cross ? cross(h.query, h.key, s.rows, s.cols) : []);
            if (!where && id !== "research-compare-diff") {
                where = "query " + h.query + " “" + label(g, h.query) + "” → key " + h.key + " “" +
                        label(g, h.key) + "”";
            }
            parts.push(NAMES[id] + " " + fmt(s.z[h.query][h.key], id === "research-compare-diff"));
        });
        if (!on || !parts.length) { return ""; }
        return (where ? where + ": " : "") + parts.join(" · ");
    }

    window.dash_clientside = window.dash_clientside || {};
    window.dash_clientside.compare = {fromCompare: fromCompare, link: link, GRAPHS: GRAPHS};
}());
