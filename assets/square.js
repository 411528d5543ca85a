/* Square-cell heatmaps keep their rows in view after a figure update.
 *
 * Our heatmaps (layout.meta.kind === "heatmap") have square cells: yaxis.scaleanchor "x" with
 * both axes constrained to their domain. Plotly.react from one matrix shape to another (a new
 * text, a pair block) can leave the y range stretched beyond the matrix (grey bands above the
 * first and below the last row) instead of shrinking the domain. After each redraw, a y range
 * that is wider than the matrix on both sides is set back to the matrix's rows; a zoom into the
 * matrix is left alone. Browser only: no request to the server.
 *
 * New graphs are found when they are added to the page (a MutationObserver on the document's
 * element children; plotly's own SVG changes are skipped), never by polling.
 */
(function () {
    "use strict";
    var EPS = 1e-6;

    function fix(g) {
        var m = g.layout && g.layout.meta;
        var y = g._fullLayout && g._fullLayout.yaxis;
        if (!m || m.kind !== "heatmap" || !m.rows || !y || !y.scaleanchor || g._squareFixing) { return; }
        var want = [m.rows - 0.5, -0.5];  // reversed: query 0 on top
        var r = y.range || [];
        if (r[0] > want[0] + EPS && r[1] < want[1] - EPS) {
            g._squareFixing = true;
            window.Plotly.relayout(g, {"yaxis.range": want}).then(
                function () { g._squareFixing = false; }, function () { g._squareFixing = false; });
        }
    }

    function hook() {
        var plots = document.querySelectorAll(".js-plotly-plot");
        for (var i = 0; i < plots.length; i++) {
            var g = plots[i];
            if (g._squareHooked || typeof g.on !== "function") { continue; }
            g._squareHooked = true;
            g.on("plotly_afterplot", (function (gg) { return function () { fix(gg); }; }(g)));
            fix(g);
        }
    }

    var SVG = "http://www.w3.org/2000/svg";

    function addsGraph(mutations) {
        for (var i = 0; i < mutations.length; i++) {
            var added = mutations[i].addedNodes;
            for (var j = 0; j < added.length; j++) {
                var n = added[j];
                if (n.nodeType === 1 && n.namespaceURI !== SVG) { return true; }
            }
        }
        return false;
    }

    function start() {
        hook();
        new MutationObserver(function (mutations) {
            if (addsGraph(mutations)) { hook(); }
        }).observe(document.body, {childList: true, subtree: true});
    }

    if (document.body) { start(); } else { document.addEventListener("DOMContentLoaded", start); }
}());
