/*
 * Clientside functions of the attention dashboard (namespace "hover").
 *
 * Pointing at anything causes NO request to the server: hoverData goes into the browser-only
 * store `hover-store` = {layer, head, query, key, source} (any may be null), and `apply` draws
 * the highlight straight onto the graphs' DOM nodes with Plotly.relayout (shapes named "hover";
 * every other shape, e.g. the sentence-pair boundary lines, is kept).
 *
 *   fromHeatmap(hoverData, figure)   heatmap cell  -> {layer, head, query, key}
 *   fromGrid(hoverData)              a head grid   -> {layer, head}   (any graph with class "head-grid")
 *   fromOverview(hoverData, figure)  small multiples of one layer -> {layer, head}
 *   apply(hover)                     -> [heatmap card hover title, aria-live text]; relayouts the heatmap,
 *                                       every ".head-grid" graph and the overview
 *   queryFromClick(clickData, figure) heatmap click -> query position (inspector)
 *   headFromGrid(clickData)          grid click -> [layer, head] dropdown values
 *   headFromOverview(clickData)      overview click -> head dropdown value
 *   download(n_clicks)               PNG / SVG buttons ({type: "png-button"|"svg-button", graph})
 *
 * Query/key in the store are token positions in the block; the heatmap may show a slice
 * (sentence pair A->B ...): its layout.meta.query_offset / key_offset turn rows/columns into
 * positions. Keep the ids below in sync with dashboard/ids.py (tests/unit/test_ids.py checks).
 */
(function () {
    "use strict";
    var IDS = {
        hover: "hover-store",
        query: "query-store",
        heatmap: "heatmap-graph",
        container: "heatmap-container",
        live: "heatmap-live",
        grid: "grid-graph",
        overview: "overview-graph"
    };
    var HEAD_GRID_SELECTOR = ".head-grid .js-plotly-plot";
    var DIM = "rgba(255,255,255,0.62)";
    var OUTLINE = "#e6007e";
    var NU = function () { return window.dash_clientside.no_update; };

    function gd(id) {
        var el = document.getElementById(id);
        if (!el) { return null; }
        return el.classList.contains("js-plotly-plot") ? el : el.querySelector(".js-plotly-plot");
    }

    function meta(g) {
        return (g && g.layout && g.layout.meta) || {};
    }

    function unescapeLabel(s) {
        return String(s == null ? "" : s).replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
    }

    function point(data) {
        return data && data.points && data.points.length ? data.points[0] : null;
    }

    function intOrNull(x) {
        return (typeof x === "number" && isFinite(x)) ? Math.round(x) : null;
    }

    // ---- writers: hoverData -> hover store --------------------------------------------------
    function fromHeatmap(hoverData, figure) {
        var p = point(hoverData);
        var m = (figure && figure.layout && figure.layout.meta) || {};
        if (!p || m.kind !== "heatmap") {
            return {layer: null, head: null, query: null, key: null, source: "heatmap"};
        }
        if (m.pooled) {  // an overview cell ("1200–1203"): the first query / key of its block
            var q = parseInt(String(p.y), 10), k = parseInt(String(p.x), 10);
            return {
                layer: m.layer === undefined ? null : m.layer,
                head: m.head === undefined ? null : m.head,
                query: isFinite(q) ? q : null,
                key: isFinite(k) ? k : null,
                source: "heatmap"
            };
        }
        return {
            layer: m.layer === undefined ? null : m.layer,
            head: m.head === undefined ? null : m.head,
            query: intOrNull(p.y) === null ? null : intOrNull(p.y) + (m.query_offset || 0),
            key: intOrNull(p.x) === null ? null : intOrNull(p.x) + (m.key_offset || 0),
            source: "heatmap"
        };
    }

    function fromGrid(hoverData) {
        var p = point(hoverData);
        if (!p) { return {layer: null, head: null, query: null, key: null, source: "grid"}; }
        return {layer: intOrNull(p.y), head: intOrNull(p.x), query: null, key: null, source: "grid"};
    }

    function fromOverview(hoverData, figure) {
        var p = point(hoverData);
        var m = (figure && figure.layout && figure.layout.meta) || {};
        if (!p || m.layer === undefined) {
            return {layer: null, head: null, query: null, key: null, source: "overview"};
        }
        return {layer: m.layer, head: p.curveNumber, query: null, key: null, source: "overview"};
    }

    // ---- readers: apply the highlight on the DOM --------------------------------------------
    function setHoverShapes(g, shapes) {
        if (!g || !g.layout || !window.Plotly) { return; }
        var key = JSON.stringify(shapes);
        if (g._attnHoverKey === key) { return; }  // nothing changed: no relayout
        var old = g.layout.shapes || [];
        var hadHover = false;
        var kept = [];
        for (var i = 0; i < old.length; i++) {
            if (old[i] && old[i].name === "hover") { hadHover = true; } else { kept.push(old[i]); }
        }
        if (!hadHover && !shapes.length) { g._attnHoverKey = key; return; }
        g._attnHoverKey = key;
        window.Plotly.relayout(g, {shapes: kept.concat(shapes)});
    }

    function rect(x0, x1, y0, y1, extra) {
        var s = {type: "rect", name: "hover", xref: "x", yref: "y", x0: x0, x1: x1, y0: y0, y1: y1,
                 layer: "above", line: {width: 0}, fillcolor: DIM};
        for (var k in extra) { if (Object.prototype.hasOwnProperty.call(extra, k)) { s[k] = extra[k]; } }
        return s;
    }

    /* Shapes that dim everything but row r and column c of a rows x cols heatmap. */
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

    /* {row, col} shown in the heatmap for a hover store value, or null. */
    function heatmapCell(hover, g) {
        var m = meta(g);
        if (!hover || m.kind !== "heatmap" || hover.query === null && hover.key === null) { return null; }
        if (hover.source !== "heatmap" && hover.source !== "keyboard") { return null; }
        var r, c;
        if (m.pooled) {  // the overview cell whose block holds the position
            r = hover.query === null ? null : blockOf(m.row_starts || [], hover.query);
            c = hover.key === null ? null : blockOf(m.col_starts || [], hover.key);
        } else {
            r = hover.query === null ? null : hover.query - (m.query_offset || 0);
            c = hover.key === null ? null : hover.key - (m.key_offset || 0);
        }
        if (r !== null && (r < 0 || r >= m.rows)) { r = null; }
        if (c !== null && (c < 0 || c >= m.cols)) { c = null; }
        if (r === null && c === null) { return null; }
        return {row: r, col: c, rows: m.rows, cols: m.cols};
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

    function gridShapes(hover, g) {
        var m = meta(g);
        if (!hover || hover.layer === null || hover.layer === undefined || !m.layers) { return []; }
        var l = hover.layer;
        if (l < 0 || l >= m.layers) { return []; }
        var line = {color: "#111827", width: 2.5, dash: "dot"};
        if (hover.head === "mean") {
            return [rect(-0.5, m.heads - 0.5, l - 0.5, l + 0.5, {fillcolor: "rgba(0,0,0,0)", line: line})];
        }
        if (typeof hover.head !== "number" || hover.head < 0 || hover.head >= m.heads) { return []; }
        return [rect(hover.head - 0.5, hover.head + 0.5, l - 0.5, l + 0.5, {fillcolor: "rgba(0,0,0,0)", line: line})];
    }

    function overviewShapes(hover, g) {
        var m = meta(g);
        if (!hover || m.kind !== "small_multiples" || hover.layer !== m.layer) { return []; }
        if (typeof hover.head !== "number" || hover.head < 0 || hover.head >= m.panels) { return []; }
        if (hover.source === "overview") { return []; }  // the pointer is already there
        var suffix = hover.head === 0 ? "" : String(hover.head + 1);
        return [{type: "rect", name: "hover", xref: "x" + suffix + " domain", yref: "y" + suffix + " domain",
                 x0: -0.04, x1: 1.04, y0: -0.04, y1: 1.04, layer: "above", fillcolor: "rgba(0,0,0,0)",
                 line: {color: "#111827", width: 2, dash: "dot"}}];
    }

    function tokenLabel(g, axis, i) {
        var ax = g.layout[axis] || {};
        var t = ax.ticktext || [];
        return unescapeLabel(t[i]);
    }

    function cellText(g, cell) {
        if (!g || !cell || cell.row === null || cell.col === null) { return ""; }
        var m = meta(g);
        var z = g.data && g.data[0] && g.data[0].z;
        var v = z && z[cell.row] ? z[cell.row][cell.col] : null;
        if (m.pooled) {
            var t = g.data[0];
            var bv = (v === null || v === undefined) ? "masked (cannot attend)" : Number(v).toFixed(3);
            return "Block of queries " + (t.y ? t.y[cell.row] : "") + " to keys " + (t.x ? t.x[cell.col] : "") +
                   ": block " + (m.pool || "max") + " " + bv;
        }
        var q = cell.row + (m.query_offset || 0), k = cell.col + (m.key_offset || 0);
        // a measure other than raw weights names itself (dashboard/measure_view.py, meta.value_label)
        var val = (v === null || v === undefined) ? "masked (cannot attend)" :
            (m.value_label ? Number(v).toPrecision(3) : Number(v).toFixed(2));
        return (m.value_label ? m.value_label : "Attention") + " from query " + q + " (" + tokenLabel(g, "yaxis", cell.row) + ") to key " + k +
               " (" + tokenLabel(g, "xaxis", cell.col) + "): " + val;
    }

    function headTitle(hover) {
        if (!hover || (hover.source !== "grid" && hover.source !== "overview") ||
            hover.layer === null || hover.head === null || hover.head === undefined) { return ""; }
        var txt = "Hovering L" + hover.layer + " H" + hover.head;
        var g = gd(IDS.grid);
        var m = meta(g);
        var t = g && g.data && g.data[0];
        if (t && m.layers && hover.layer < m.layers && hover.head < m.heads) {
            if (m.kind === "role_grid") {
                var role = t.text && t.text[hover.layer] ? t.text[hover.layer][hover.head] : "";
                if (role) { txt += " — role: " + unescapeLabel(role); }
            } else if (t.z && t.z[hover.layer]) {
                var v = t.z[hover.layer][hover.head];
                if (v !== null && v !== undefined) {
                    var label = m.metric_label || m.metric || "";
                    txt += " — " + label + " " + Number(v).toFixed(2) + (m.metric_unit ? " " + m.metric_unit : "");
                }
            }
        }
        return txt;
    }

    function apply(hover) {
        var h = hover || {};
        var hm = gd(IDS.heatmap);
        var cell = hm ? heatmapCell(h, hm) : null;
        if (hm) {
            setHoverShapes(hm, cell ? crossShapes(cell.row, cell.col, cell.rows, cell.cols) : []);
        }
        // every head grid on the page (the entropy grid, and any other graph with class "head-grid")
        var grids = document.querySelectorAll(HEAD_GRID_SELECTOR);
        for (var i = 0; i < grids.length; i++) { setHoverShapes(grids[i], gridShapes(h, grids[i])); }
        var ov = gd(IDS.overview);
        if (ov) { setHoverShapes(ov, overviewShapes(h, ov)); }
        window.attnHover = {hover: h, cell: cell};
        var text = cellText(hm, cell);
        var container = document.getElementById(IDS.container);
        if (container && text) { container.setAttribute("aria-label", text); }
        // the view changed (clearOnNewFigure): the last readout named a cell that is gone
        if (!text && h.source === "figure") {
            if (container) { container.removeAttribute("aria-label"); }
            return [headTitle(h), ""];
        }
        var live = text || NU();
        return [headTitle(h), live];
    }

    // ---- clicks -----------------------------------------------------------------------------
    function queryFromClick(clickData, figure) {
        var p = point(clickData);
        var m = (figure && figure.layout && figure.layout.meta) || {};
        if (!p || m.kind !== "heatmap" || intOrNull(p.y) === null) { return NU(); }
        return intOrNull(p.y) + (m.query_offset || 0);
    }

    function headFromGrid(clickData) {
        var p = point(clickData);
        if (!p || intOrNull(p.x) === null || intOrNull(p.y) === null) { return [NU(), NU()]; }
        return [String(intOrNull(p.y)), String(intOrNull(p.x))];
    }

    function headFromOverview(clickData) {
        var p = point(clickData);
        if (!p || typeof p.curveNumber !== "number") { return NU(); }
        return String(p.curveNumber);
    }

    // ---- downloads --------------------------------------------------------------------------
    // PNG / SVG carry their context: a title line (model · what the card shows · text start) drawn
    // into the image, and a file name made of the same parts. The model and text come from the
    // page's URL (kept in step with the view by callbacks/url.py), the "what" from the card header.
    function exportContext(g, graphId) {
        var q = new URLSearchParams(window.location.search);
        var model = q.get("model") || "";
        var text = (q.get("text") || "").replace(/\s+/g, " ").trim();
        var card = g.closest ? g.closest(".card") : null;
        var head = card ? card.querySelector(".card-header .fw-semibold") : null;
        var what = head ? head.textContent.replace(/\s+/g, " ").trim() : graphId;
        var meta = (g.layout && g.layout.meta) || {};
        if (meta.metric_label && what.indexOf(meta.metric_label) < 0) { what += " · " + meta.metric_label; }
        var start = text.length > 48 ? text.slice(0, 48) + "…" : text;
        var title = [model, what, start ? "“" + start + "”" : ""].filter(Boolean).join(" · ");
        var stem = ["attention", model, what, text.slice(0, 40)].join(" ")
            .replace(/·/g, " ").replace(/[^A-Za-z0-9.+-]+/g, "_").replace(/^[_.]+|[_.]+$/g, "").slice(0, 120);
        return {title: title, stem: stem || "attention"};
    }

    function download(nClicks) {
        var ctx = window.dash_clientside.callback_context;
        if (!nClicks || !ctx || !ctx.triggered_id) { return; }
        var id = ctx.triggered_id;
        var g = gd(id.graph);
        if (!g || !window.Plotly || !g._fullLayout) { return; }
        var format = id.type === "svg-button" ? "svg" : "png";
        var c = exportContext(g, id.graph);
        var margin = Object.assign({}, g.layout.margin || {});
        var top = Math.max(Number(margin.t) || 0, 0) + 34;
        margin.t = top;
        // a copy of the shown figure with the title on top: the page's own figure is not touched
        var layout = Object.assign({}, g.layout, {
            margin: margin,
            title: {text: c.title, x: 0.01, xanchor: "left", y: 1, yanchor: "top", yref: "container",
                    pad: {t: 8}, font: {size: 12}}
        });
        window.Plotly.downloadImage({data: g.data, layout: layout}, {
            format: format, filename: c.stem, scale: format === "png" ? 2 : 1,
            width: g._fullLayout.width, height: g._fullLayout.height + 34
        });
    }

    /* Another view (run, block, layer, head incl. "mean of all heads", temperature): the hovered
       cell belonged to the old one, so the highlight and the readout under the heatmap are cleared. */
    function clearOnNewFigure() {
        return {layer: null, head: null, query: null, key: null, source: "figure"};
    }

    function toggle(n, isOpen) {
        return n ? !isOpen : isOpen;
    }

    function temperatureLabel(s) {
        var t = Math.pow(2, Number(s) || 0);
        return "T = " + Number(t.toPrecision(3));
    }

    window.dash_clientside = window.dash_clientside || {};
    window.dash_clientside.hover = {
            fromHeatmap: fromHeatmap,
            fromGrid: fromGrid,
            fromOverview: fromOverview,
            apply: apply,
            queryFromClick: queryFromClick,
            headFromGrid: headFromGrid,
            headFromOverview: headFromOverview,
            download: download,
            clearOnNewFigure: clearOnNewFigure,
            exportContext: exportContext,
            toggle: toggle,
            temperatureLabel: temperatureLabel,
            // exposed for keyboard.js and tests
            crossShapes: crossShapes,
            _cellText: cellText,
            graphDiv: gd,
            IDS: IDS
    };
}());
