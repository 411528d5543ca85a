/*
 * Clientside code of the head-pruning card (namespace "pruning"). Nothing here calls the server.
 *
 *   Shift tracking: plotly's clickData carries no modifier keys, so capturing "pointerdown" /
 *   "mousedown" listeners on document write whether Shift was held at the last press into the
 *   browser-only store pruning_ids.SHIFT (dash_clientside.set_props, only when it changes).
 *   The press of a click always comes before plotly's click event, so the toggle callback
 *   reads the state of that very click, even when the key is released before Dash runs it
 *   (a keydown/keyup tracker loses exactly those quick shift-clicks).
 *
 *   toggle(clickData, mask, shift, anchor, figure) -> [mask, anchor]
 *       A click on the choose-heads grid flips that head (kept <-> pruned) and makes it the
 *       anchor; Shift+click gives the whole rectangle from the anchor to the clicked head the
 *       anchor's value. Same rules as dashboard/pruning_views.py `toggle_mask` (tests compare).
 *       Done here, not on the server, so quick clicks never race each other on a stale mask.
 *
 *   Keyboard: the choose-heads grid's box is focusable; arrow keys move a cursor (the page's
 *       hover store), Space/Enter toggles that head like a click, Shift+Space like a Shift+click.
 *
 *   Upload: the file input of pruning_ids.UPLOAD is emptied after each choice, so the same file
 *   (fixed after an error message) can be chosen again.
 *
 *   heatmaps(hover) -> no_update
 *       The page's hover store (assets/hover.js) drawn on the card's baseline and pruned
 *       heatmaps: the hovered query row / key column, when they show the hovered layer/head.
 *       attn.lib's crossShapes / heatmapCell / setHoverShapes, as hover.js.
 *
 * Ids come from dashboard/pruning_ids.py (assets/attn-ids.js); intOrNull, the hover shapes and
 * the cell lookup are assets/attn-lib.js's (shared with hover.js).
 */
(function () {
    "use strict";
    var attn = window.dash_clientside.attn;
    var PI = attn.pruningIds;
    var IDS = {
        shift: PI.SHIFT,
        base: PI.BASE_HEATMAP,
        pruned: PI.PRUNED_HEATMAP,
        upload: PI.UPLOAD,
        grid: PI.SELECT_GRID,
        gridBox: PI.SELECT_GRID_BOX,
        hover: attn.ids.HOVER
    };
    var NU = attn.lib.NU;
    var shiftState = false;

    function setShift(value) {
        var v = !!value;
        if (v === shiftState) { return; }
        shiftState = v;
        var dc = window.dash_clientside;
        if (dc && dc.set_props) { dc.set_props(IDS.shift, {data: v}); }
    }

    // Shift at the last pointer press, NOT Shift right now: Dash runs the toggle callback a few
    // ms after the click, when a quick hand may already have let go of the key (keyup).
    document.addEventListener("pointerdown", function (e) { setShift(e.shiftKey); }, true);
    document.addEventListener("mousedown", function (e) { setShift(e.shiftKey); }, true);

    // The corpus upload: forget the chosen file once the component has read it, so choosing the
    // same file again (after fixing a bad line) fires "change" and is read again.
    document.addEventListener("change", function (e) {
        var t = e.target;
        if (t && t.type === "file" && t.closest && t.closest("#" + IDS.upload)) {
            window.setTimeout(function () { t.value = ""; }, 0);
        }
    }, true);

    var intOrNull = attn.lib.intOrNull;

    function ones(layers, heads) {
        var m = [];
        for (var l = 0; l < layers; l++) {
            var row = [];
            for (var h = 0; h < heads; h++) { row.push(1); }
            m.push(row);
        }
        return m;
    }

    /* A copy of mask as 0/1 ints when it is layers x heads, else all ones. */
    function coerce(mask, layers, heads) {
        if (!Array.isArray(mask) || mask.length !== layers) { return ones(layers, heads); }
        var out = [];
        for (var l = 0; l < layers; l++) {
            if (!Array.isArray(mask[l]) || mask[l].length !== heads) { return ones(layers, heads); }
            var row = [];
            for (var h = 0; h < heads; h++) { row.push(mask[l][h] === 0 ? 0 : 1); }
            out.push(row);
        }
        return out;
    }

    function validAnchor(a, layers, heads) {
        return !!a && typeof a.layer === "number" && typeof a.head === "number" &&
            (a.value === 0 || a.value === 1) && a.layer >= 0 && a.layer < layers && a.head >= 0 && a.head < heads;
    }

    /* Pure: (mask, layer, head, shift, anchor, layers, heads) -> [mask, anchor]. */
    function toggleMask(mask, layer, head, shift, anchor, layers, heads) {
        var m = coerce(mask, layers, heads);
        if (layer < 0 || layer >= layers || head < 0 || head >= heads) { return [m, anchor]; }
        var value;
        if (shift && validAnchor(anchor, layers, heads)) {
            value = anchor.value;
            var l0 = Math.min(anchor.layer, layer), l1 = Math.max(anchor.layer, layer);
            var h0 = Math.min(anchor.head, head), h1 = Math.max(anchor.head, head);
            for (var l = l0; l <= l1; l++) {
                for (var h = h0; h <= h1; h++) { m[l][h] = value; }
            }
        } else {
            value = m[layer][head] === 0 ? 1 : 0;
            m[layer][head] = value;
        }
        return [m, {layer: layer, head: head, value: value}];
    }

    function toggle(clickData, mask, shift, anchor, figure) {
        var p = clickData && clickData.points && clickData.points.length ? clickData.points[0] : null;
        var meta = (figure && figure.layout && figure.layout.meta) || {};
        if (!p || meta.kind !== "head_grid" || !meta.layers || !meta.heads) { return [NU(), NU()]; }
        var layer = intOrNull(p.y), head = intOrNull(p.x);
        if (layer === null || head === null) { return [NU(), NU()]; }
        if (typeof p.shiftKey === "boolean") { shift = p.shiftKey; }  // from the keyboard
        return toggleMask(mask, layer, head, !!shift, anchor, meta.layers, meta.heads);
    }

    // ---- the hover store on the card's two heatmaps ------------------------------------------
    function heatmaps(hover) {
        var lib = attn.lib;
        [IDS.base, IDS.pruned].forEach(function (id) {
            var g = lib.graphDiv(id);
            if (!g) { return; }
            var cell = lib.heatmapCell(hover, g, true);
            lib.setHoverShapes(g, cell ? lib.crossShapes(cell.row, cell.col, cell.rows, cell.cols) : []);
        });
        return NU();
    }

    // ---- keyboard on the choose-heads grid (#pruning-select-grid-box, focusable) -------------
    // Arrow keys move a cursor over the heads (written to the page's hover store, so the head is
    // outlined everywhere, as on pointer hover); Space / Enter toggles it exactly as a click does
    // (clickData of the grid; Shift+Space = Shift+click). Home / End: first / last head of the layer.
    var cursor = null;

    function gridMeta() {
        var m = attn.lib.meta(attn.lib.graphDiv(IDS.grid));
        return m.kind === "head_grid" && m.layers && m.heads ? m : null;
    }

    function onGridKey(e) {
        var m = gridMeta(), dc = window.dash_clientside;
        if (!m || !dc || !dc.set_props) { return; }
        var fresh = !cursor || cursor.layer >= m.layers || cursor.head >= m.heads;
        var c = fresh ? {layer: 0, head: 0} : {layer: cursor.layer, head: cursor.head};
        switch (e.key) {
            case "ArrowUp": if (!fresh) { c.layer -= 1; } break;
            case "ArrowDown": if (!fresh) { c.layer += 1; } break;
            case "ArrowLeft": if (!fresh) { c.head -= 1; } break;
            case "ArrowRight": if (!fresh) { c.head += 1; } break;
            case "Home": c.head = 0; break;
            case "End": c.head = m.heads - 1; break;
            case "Escape":
                cursor = null;
                dc.set_props(IDS.hover, {data: {layer: null, head: null, query: null, key: null, source: "grid"}});
                return;
            case "Enter":
            case " ":
                e.preventDefault();
                if (fresh) { break; }
                // Shift travels with the click itself: a store written in the same tick may not
                // have reached the toggle callback's State yet
                dc.set_props(IDS.grid, {clickData: {points: [{x: c.head, y: c.layer, shiftKey: e.shiftKey}]}});
                return;
            default:
                return;
        }
        e.preventDefault();
        c.layer = Math.max(0, Math.min(m.layers - 1, c.layer));
        c.head = Math.max(0, Math.min(m.heads - 1, c.head));
        cursor = c;
        dc.set_props(IDS.hover, {data: {layer: c.layer, head: c.head, query: null, key: null, source: "grid"}});
        var box = document.getElementById(IDS.gridBox);
        if (box) { box.setAttribute("aria-description", "Layer " + c.layer + ", head " + c.head); }
    }

    document.addEventListener("keydown", function (e) {
        if (e.target && e.target.id === IDS.gridBox) { onGridKey(e); }
    });

    window.dash_clientside = window.dash_clientside || {};
    /* Cancel of a background job: a visible "cancelled" state where the job's result is described. */
    function cancelled(n) {
        if (!n) { return NU(); }
        return "Cancelled at " + new Date().toLocaleTimeString() + ": the job was stopped and nothing new was " +
            "computed; the last result (if any) is still shown.";
    }

    window.dash_clientside.pruning = {
        cancelled: cancelled,
        toggle: toggle,
        heatmaps: heatmaps,
        // exposed for tests
        _toggleMask: toggleMask,
        IDS: IDS
    };
}());
