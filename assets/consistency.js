/*
 * The page never shows mixed state (namespace "view").
 *
 * The run store carries `key` (dashboard.panels.view_key: model, weights, texts, head mask) and
 * every server panel answers into a payload store stamped `view` = {key, block, layer, head, text}
 * with the run and selection it was drawn for. Here, in the browser:
 *
 *   applyRun(run, layer, head, block)  -> layer/head options + values, block value once a run
 *                                          lands: the values the controls hold NOW where the new run
 *                                          has them (a layer picked while the run computed is kept),
 *                                          a link's selection when the run came from a link
 *   gateGrid / gateOverview / gateInspector(payload, run, block, layer, head)
 *                                       -> draw a payload only while it is what the page shows; an
 *                                          answer for an older run or selection is dropped
 *   current(view, run, block, layer, head) -> that test (heatmap.js uses it too)
 *   badges(run, heatmap, grid, overview, inspector figures)
 *                                       -> per card "Showing the previous text “…” — updating" while
 *                                          the card's figure belongs to another run, else hidden
 */
(function () {
    "use strict";
    var NU = function () { return window.dash_clientside.no_update; };
    var HIDDEN = {display: "none"};
    var SHOWN = {display: "block"};

    function str(x) { return x === null || x === undefined ? null : String(x); }

    /* Is a panel's stamp still what the page shows? Only fields known on both sides are compared. */
    function current(view, run, block, layer, head) {
        if (!view) { return true; }
        if (run && run.key && view.key && view.key !== run.key) { return false; }
        var pairs = [[view.block, block], [view.layer, layer], [view.head, head]];
        for (var i = 0; i < pairs.length; i++) {
            var a = str(pairs[i][0]), b = str(pairs[i][1]);
            if (a !== null && b !== null && a !== b) { return false; }
        }
        return true;
    }

    function valid(value, options) {
        var v = str(value);
        for (var i = 0; i < (options || []).length; i++) {
            if (String(options[i].value) === v) { return v; }
        }
        return null;
    }

    function applyRun(run, layer, head, block) {
        var none = [NU(), NU(), NU(), NU(), NU()];
        if (!run || !run.controls || !run.selection) { return none; }
        var sel = run.selection;
        var fromUrl = !!sel.from_url;
        var values = run.block_values || [];
        var b = fromUrl ? str(sel.block) : str(block);
        if (values.indexOf(b) < 0) { b = str(sel.block); }
        var name = String(b).split(":")[0];
        var c = run.controls[name];
        if (!c) { return none; }
        var l = (!fromUrl && valid(layer, c.layer_options)) || valid(sel.layer, c.layer_options) ||
            String(c.layer_options[c.layer_options.length - 1].value);
        var h = (!fromUrl && valid(head, c.head_options)) || valid(sel.head, c.head_options) ||
            String(c.head_options[0].value);
        return [c.layer_options, l, c.head_options, h, b];
    }

    function gateGrid(payload, run, block, layer, head) {
        if (!payload || !payload.figure || !current(payload.view, run, block, layer, head)) { return NU(); }
        return payload.figure;
    }

    function gateOverview(payload, run, block, layer) {
        // the overview's head outline follows the head dropdown by a Patch: the head is not compared
        if (!payload || !payload.figure || !current(payload.view, run, block, layer, null)) { return [NU(), NU()]; }
        return [payload.figure, payload.title];
    }

    function gateInspector(payload, run, block, layer, head) {
        if (!payload || !payload.figure || !current(payload.view, run, block, layer, head)) {
            return [NU(), NU(), NU()];
        }
        return [payload.figure, payload.table, payload.title];
    }

    function viewOf(figure) {
        return (figure && figure.layout && figure.layout.meta && figure.layout.meta.view) || null;
    }

    function badges(run) {
        var figs = Array.prototype.slice.call(arguments, 1);
        var texts = [], styles = [];
        for (var i = 0; i < figs.length; i++) {
            var v = viewOf(figs[i]);
            if (run && run.key && v && v.key && v.key !== run.key) {
                var t = v.text || "";
                texts.push("Still showing the previous text “" + (t.length > 40 ? t.slice(0, 40) + "…" : t) +
                           "” — updating to the new run…");
                styles.push(SHOWN);
            } else {
                texts.push("");
                styles.push(HIDDEN);
            }
        }
        return texts.concat(styles);
    }

    /* The query string of the view -> the browser's address bar and history (no Dash prop). */
    function writeUrl(search) {
        if (typeof search !== "string" || search.charAt(0) !== "?" || search === window.location.search) { return; }
        window.history.pushState(null, "", window.location.pathname + search);
    }

    window.dash_clientside = window.dash_clientside || {};
    window.dash_clientside.view = {
        writeUrl: writeUrl,
        current: current, applyRun: applyRun, gateGrid: gateGrid, gateOverview: gateOverview,
        gateInspector: gateInspector, badges: badges
    };
}());
