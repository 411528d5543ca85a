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
 *   gateGrid / gateOverview / gateInspector(payload, layer, head, run, block)
 *                                       -> draw a payload only while it is what the page shows; an
 *                                          answer for an older run or selection is dropped. A head
 *                                          switch is drawn from what the payload holds, with no
 *                                          request: the grids and the overview get the page's head
 *                                          outlined (attn.lib.outline), the inspector payload holds
 *                                          every head of the layer (services/switch.py)
 *   current(view, run, block, layer, head) -> that test (heatmap.js, textview.js use it too)
 *   badges(run, heatmap, grid, overview, inspector figures)
 *                                       -> per card "Showing the previous text “…” — updating" while
 *                                          the card's figure belongs to another run, else hidden
 *   follow(layer, head, run)            -> [layer, head] for ids.FOLLOW_LAYER / FOLLOW_HEAD: the
 *                                          server-drawn cards that depend on the head (pruning
 *                                          comparison, research card; class ids.FOLLOWS_CLASS) get
 *                                          a new run's selection at once, a later switch while one
 *                                          of them is in view, otherwise when one scrolls into view
 *                                          (IntersectionObserver)
 *   writeUrl(search, layer, head)       -> the server's query string with the page's layer and head,
 *                                          pushed to the browser's history (no request per switch)
 */
(function () {
    "use strict";
    var attn = window.dash_clientside.attn;
    var NU = attn.lib.NU;
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

    /* The payload's entry for the page's head: payload.heads lists what it holds (every head of
       the layer and "mean"), or the payload is for one view only. */
    function pick(payload, head, key, single) {
        if (!payload.heads) { return payload[single]; }
        var i = payload.heads.indexOf(head === null || head === undefined ? payload.heads[0] : String(head));
        return i < 0 ? undefined : payload[key][i];
    }

    function gateGrid(payload, layer, head, run, block) {
        if (!payload || !payload.figure || !current(payload.view, run, block, null, null)) { return NU(); }
        var fig = payload.figure;
        if (payload.main_block) {  // the pruning grid: the main block's heads only
            fig = {data: fig.data, layout: Object.assign({}, fig.layout, {
                meta: Object.assign({}, fig.layout.meta || {}, {outline_block: payload.main_block})})};
        }
        return attn.lib.outline(fig, layer, head, block);
    }

    function gateOverview(payload, layer, head, run, block) {
        if (!payload || !payload.figure || !current(payload.view, run, block, layer, null)) { return [NU(), NU()]; }
        return [attn.lib.outline(payload.figure, layer, head, block), payload.title];
    }

    function gateInspector(payload, layer, head, run, block) {
        if (!payload || !current(payload.view, run, block, layer, payload.heads ? null : head)) {
            return [NU(), NU(), NU()];
        }
        var fig = pick(payload, head, "figures", "figure");
        if (!fig) { return [NU(), NU(), NU()]; }
        if (payload.figures && !fig.layout.template) {  // the template is sent once (services/switch.py)
            fig = {data: fig.data, layout: Object.assign({}, fig.layout, {template: payload.figures[0].layout.template})};
        }
        return [fig, pick(payload, head, "tables", "table"), pick(payload, head, "titles", "title")];
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

    /* The server's query string of the view with the page's layer and head -> the browser's
       address bar and history (no Dash prop). dashboard/urlstate.py always writes both fields. */
    function writeUrl(search, layer, head) {
        if (typeof search !== "string" || search.charAt(0) !== "?") { return; }
        if (/^\d{1,6}$/.test(String(layer))) { search = search.replace(/([?&])layer=[^&]*/, "$1layer=" + layer); }
        if (head === "mean" || /^\d{1,6}$/.test(String(head))) {
            search = search.replace(/([?&])head=[^&]*/, "$1head=" + head);
        }
        if (search === window.location.search) { return; }
        window.history.pushState(null, "", window.location.pathname + search);
    }

    // ---- cards below the fold follow the selection while in view ------------------------------
    var follower = {pending: null, observer: null, seen: [], key: null};

    function inView(el) {
        var r = el.getBoundingClientRect();
        return r.bottom > 0 && r.top < (window.innerHeight || document.documentElement.clientHeight) &&
            r.width > 0 && r.height > 0;
    }

    function watchCards() {
        var cards = document.getElementsByClassName(attn.ids.FOLLOWS_CLASS);
        if (!window.IntersectionObserver) { return cards; }
        if (!follower.observer) {
            follower.observer = new IntersectionObserver(function (entries) {
                var shown = entries.some(function (e) { return e.isIntersecting; });
                if (!shown || !follower.pending) { return; }
                var p = follower.pending;
                follower.pending = null;
                window.dash_clientside.set_props(attn.ids.FOLLOW_LAYER, {data: p[0]});
                window.dash_clientside.set_props(attn.ids.FOLLOW_HEAD, {data: p[1]});
            });
        }
        for (var i = 0; i < cards.length; i++) {
            if (follower.seen.indexOf(cards[i]) < 0) { follower.seen.push(cards[i]); follower.observer.observe(cards[i]); }
        }
        return cards;
    }

    function follow(layer, head, run) {
        var cards = watchCards();
        var key = run && run.key ? run.key : null;
        var shown = !window.IntersectionObserver || key !== follower.key;  // a new run: always
        follower.key = key;
        for (var i = 0; i < cards.length && !shown; i++) { shown = inView(cards[i]); }
        if (shown) { follower.pending = null; return [layer, head]; }
        follower.pending = [layer, head];
        return [NU(), NU()];
    }

    window.dash_clientside = window.dash_clientside || {};
    window.dash_clientside.view = {
        writeUrl: writeUrl, follow: attn.lib.deferOnHeadSwitch(follow),
        current: current, applyRun: applyRun, gateGrid: attn.lib.deferOnHeadSwitch(gateGrid),
        gateOverview: attn.lib.deferOnHeadSwitch(gateOverview),
        gateInspector: attn.lib.deferOnHeadSwitch(gateInspector), badges: badges
    };
}());
