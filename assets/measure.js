/*
 * The heatmap card's measure selector (namespace "measure"); dashboard/measure_card.py.
 *
 *   status(measure, payload) -> [the line under the selector, the explain panel's measure text]
 *       While the heatmap's answer for a newly chosen measure is due: "Computing value-norm …"
 *       (a measure needs one forward and one backward pass of the text: seconds at 512 tokens).
 *       Once drawn, the line is empty (the heatmap's note names the measure, or why it is not shown)
 *       and the explain panel gets the measure's formula, caveat and target.
 */
(function () {
    "use strict";
    var LABELS = {"raw": "raw weights", "rollout": "attention rollout", "value-norm": "value-norm ‖α f(x)‖",
                  "grad-attention": "gradient × attention"};

    function explainText(info) {
        if (!info || !info.formula) { return ""; }
        var lines = ["Shown measure: " + info.label + ": " + info.formula, "Caveat: " + info.caveat];
        if (info.target) { lines.push("Target: " + info.target + "."); }
        if (info.error) { lines.push((LABELS[info.requested] || info.requested) + " is not shown: " + info.error); }
        return lines.join("\n");
    }

    function status(measure, payload) {
        var want = LABELS[measure] ? measure : "raw";
        var info = payload && payload.measure;
        if (!info || info.requested !== want) {
            if (want === "raw") { return ["", ""]; }
            return ["Computing " + LABELS[want] + " for this text (one forward and one backward pass; a few " +
                    "seconds for a long text) …", ""];
        }
        // drawn: the note under the heatmap names the measure, its formula and target (or why not)
        return ["", explainText(info)];
    }

    window.dash_clientside = window.dash_clientside || {};
    window.dash_clientside.measure = {status: status, LABELS: LABELS};
}());
