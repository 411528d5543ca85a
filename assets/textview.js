/*
 * The text view (namespace "textview"): the running text, each key token highlighted by the
 * attention weight it gets from one query (dashboard/textview.py builds the payload).
 *
 *   render(payload, hover, layer, head, run, block) -> the card's title and note; draws into the
 *       container's own DOM (no Dash children). The payload holds the inspected query's weights for
 *       every head of the layer (services/switch.py): a head switch picks the page's head, with no
 *       request. The query is the clicked / inspected one from the payload, or the hovered heatmap
 *       row when the heatmap shows exact values of the same head (its z row), so pointing at a
 *       cell re-colours the text with no request.
 */
(function () {
    "use strict";
    var attn = window.dash_clientside.attn;
    var NU = attn.lib.NU;
    var BOX = attn.ids.TEXT_VIEW_BOX;
    var built = {payload: null};

    function esc(s) {
        return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
    }

    function build(box, payload) {
        var html = [];
        payload.tokens.forEach(function (t, i) {
            html.push(esc(t.gap) + '<span class="tv-tok' + (t.special ? " tv-special" : "") + '" data-i="' + i +
                      '">' + esc(t.text) + "</span>");
        });
        box.innerHTML = html.join("");
        built.payload = payload;
    }

    function heatmapRow(hover, payload, layer, head) {
        if (!hover || hover.query === null || hover.query === undefined || hover.source !== "heatmap") { return null; }
        if (String(hover.layer) !== String(layer) || String(hover.head) !== String(head)) { return null; }
        var g = attn.lib.graphDiv(attn.ids.HEATMAP);
        var m = attn.lib.meta(g);
        if (m.kind !== "heatmap" || m.pooled || !g.data || !g.data[0].z) { return null; }
        var r = hover.query - (m.query_offset || 0);
        var z = g.data[0].z;
        if (r < 0 || r >= z.length) { return null; }
        var weights = new Array(payload.tokens.length).fill(0);
        var off = m.key_offset || 0;
        for (var c = 0; c < z[r].length; c++) {
            if (off + c < weights.length) { weights[off + c] = z[r][c] || 0; }
        }
        return {query: hover.query, weights: weights};
    }

    /* {weights, title, note} of the page's head: payloads hold every head of the layer (heads),
       or one view. */
    function ofHead(payload, head) {
        if (!payload.heads) { return {weights: payload.weights, title: payload.title, note: payload.note}; }
        var i = payload.heads.indexOf(head === null || head === undefined ? payload.heads[0] : String(head));
        return i < 0 ? null : {weights: payload.weights[i], title: payload.titles[i], note: payload.notes[i]};
    }

    function render(payload, hover, layer, head, run, block) {
        var box = document.getElementById(BOX);
        if (!box || !payload || !payload.tokens) { return [NU(), NU()]; }
        var view = window.dash_clientside.view;
        if (view && !view.current(payload.view, run, block, layer, payload.heads ? null : head)) { return [NU(), NU()]; }
        var shown = ofHead(payload, head);
        if (!shown) { return [NU(), NU()]; }
        if (built.payload !== payload || !box.firstChild) { build(box, payload); }
        var live = heatmapRow(hover, payload, layer, head);
        var q = live ? live.query : payload.query;
        var w = live ? live.weights : shown.weights;
        var top = Math.max.apply(null, w.concat([1e-9]));
        var spans = box.querySelectorAll(".tv-tok");
        for (var i = 0; i < spans.length; i++) {
            var a = Math.max(0, Math.min(1, (w[i] || 0) / top));
            spans[i].style.backgroundColor = a > 0.004 ? "rgba(79, 70, 229, " + (0.85 * a).toFixed(3) + ")" : "";
            spans[i].style.color = a > 0.55 ? "#fff" : "";
            spans[i].classList.toggle("tv-query", i === q);
            spans[i].title = "#" + i + " · weight " + (w[i] || 0).toFixed(3);
        }
        var title = live ? "What #" + q + " attends to (hovered row)" : shown.title;
        return [title, shown.note];
    }

    window.dash_clientside = window.dash_clientside || {};
    window.dash_clientside.textview = {render: attn.lib.deferOnHeadSwitch(render), BOX: BOX};
}());
