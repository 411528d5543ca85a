"""The research card (GitHub issue 13): static structure; callbacks/research.py fills it.

    Held-out pruning study   importance estimated on one part of the pairs, curves on the other;
                             methods, random seeds, split; background job with progress + Cancel;
                             the curves with bootstrap bands, a table at 30 % / 50 % pruned
    Greedy leave-one-out     the expensive reference order, its own cancellable job with a
                             measured time estimate
"""
from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard import ids
from dashboard import research_ids as R
from dashboard import research_pruning as rp
from dashboard.cards import graph
from dashboard.pruning_panel import _job_row, _section

PROFILE_MAX_UPLOAD_BYTES = 1 * 2**20

METHOD_HELP = {
    "loss-gradient": "Michel et al. 2019: |∂L/∂ξ_h| of the task loss, one backward pass per batch",
    "output-sensitivity": "E‖∂e/∂ξ_h‖² of the normalised sentence embedding (random projections)",
    "loss-gradient-iterative": "Michel et al. §4: re-estimated after each 10 % pruned",
    "output-sensitivity-iterative": "re-estimated after each 10 % pruned",
    "cosine-spread": "Σ_i (∂c_i/∂ξ_h − mean)²: how much the head's gate reorders the pair cosines",
    "cosine-spread-iterative": "re-estimated after each 10 % pruned",
    "greedy": "needs the greedy job below first",
}


def study_table(rows: list[dict]) -> html.Div:
    """The study at 30 % and 50 % pruned: value [95 % CI], z vs random, p (not better)."""
    if not rows:
        return html.Div()
    shares = [c["share"] for c in rows[0]["cells"]]
    head = html.Thead(html.Tr([html.Th("order")] + [html.Th(f"{s:.0%} pruned", className="text-end")
                                                     for s in shares]))
    body = []
    for r in rows:
        cells = []
        for c in r["cells"]:
            lo, hi = c["ci"]
            if r["method"] == "random":
                txt = f"{c['value']:.3f} ± {c['std']:.3f} [{lo:.3f}, {hi:.3f}]"
            else:
                txt = f"{c['value']:.3f} [{lo:.3f}, {hi:.3f}] · z {c['z']:+.1f} · p {c['p']:.2f}"
            cells.append(html.Td(txt, className="text-end font-monospace" + (" fw-bold" if c.get("beats") else "")))
        label = r["label"] + (" (default)" if r.get("default") else "")
        body.append(html.Tr([html.Td(label)] + cells, id=R.study_row(r["method"])))
    note = ("value [2.5–97.5 % bootstrap]; z = (value − random mean) / random std; bold: z ≥ 2; "
            "p = share of bootstrap resamples where the order is not better than the random mean.")
    return html.Div([dbc.Table([head, html.Tbody(body)], size="sm", striped=True, class_name="mb-1"),
                     html.Div(note, className="small text-muted")])


def study_section() -> html.Div:
    methods = dbc.Checklist(
        id=R.METHODS, inline=True, value=list(rp.DEFAULT_METHODS), class_name="small",
        options=[{"label": rp.METHOD_LABELS[m], "value": m, "title": METHOD_HELP[m]} for m in
                 ("loss-gradient", "output-sensitivity", "loss-gradient-iterative", "output-sensitivity-iterative",
                  "cosine-spread", "cosine-spread-iterative", "greedy")])
    controls = dbc.Row([
        dbc.Col([dbc.Label("Random seeds", html_for=R.SEEDS, class_name="small fw-semibold mb-0"),
                 dbc.Input(id=R.SEEDS, type="number", min=rp.MIN_SEEDS, max=rp.MAX_SEEDS, step=1,
                           value=rp.DEFAULT_SEEDS, size="sm")], xs=6, md=2),
        dbc.Col([dbc.Label("Estimate on (%)", html_for=R.ESTIMATE_SHARE, class_name="small fw-semibold mb-0"),
                 dbc.Input(id=R.ESTIMATE_SHARE, type="number", min=20, max=80, step=5, value=rp.DEFAULT_ESTIMATE,
                           size="sm")], xs=6, md=2),
        dbc.Col([dbc.Label("Importance methods", class_name="small fw-semibold mb-0"), methods], md=8),
    ], class_name="g-2 mb-1")
    return _section("Held-out pruning study", [
        html.Div("", id=R.CORPUS_NOTE, className="small mb-1"),
        controls,
        _job_row("Run held-out study", R.STUDY_BUTTON, R.STUDY_CANCEL, R.STUDY_PROGRESS, R.STUDY_PROGRESS_TEXT,
                 R.STUDY_PROGRESS_WRAP),
        graph(R.STUDY_GRAPH, "held-out-pruning", class_name="research-study-graph"),
        html.Div(id=R.STUDY_TABLE, className="mb-1"),
        html.Div("", id=R.STUDY_INFO, className="small text-muted"),
    ], fill=False)


def greedy_section() -> html.Div:
    return _section("Greedy leave-one-out (expensive reference)", [
        html.Div("At each step every remaining head is removed in turn; the one whose removal hurts the "
                 "metric least is pruned. Computed on estimate pairs only; add it to the study with the "
                 "“greedy leave-one-out” method.", className="small text-muted mb-1"),
        html.Div("", id=R.GREEDY_NOTE, className="small mb-1"),
        _job_row("Run greedy order", R.GREEDY_BUTTON, R.GREEDY_CANCEL, R.GREEDY_PROGRESS, R.GREEDY_PROGRESS_TEXT,
                 R.GREEDY_PROGRESS_WRAP),
    ], fill=False)


def measure_section(measure_labels: dict[str, str]) -> html.Div:
    """measure_labels: {engine measure name: label} in the engine's order (services.vocabulary)."""
    return _section("Attention measures", [
        html.Div("The measures (" + ", ".join(measure_labels.values()) + ") are chosen above the heatmap "
                 "(“Measure”): the heatmap, its hover, the token inspector, the text view and the exports then "
                 "show the chosen one; the explain panel gives its formula and caveat.",
                 className="small text-muted"),
    ], fill=False)


def compare_section(model_names: list[str]) -> html.Div:
    return _section("Compare two runs", [
        dbc.Row([
            dbc.Col(dbc.Input(id=R.COMPARE_TEXT, type="text", debounce=True, size="sm", maxLength=5000,
                              placeholder="Text B (empty: the page's text)"), md=8),
            dbc.Col(dbc.Select(id=R.COMPARE_MODEL, size="sm", value=model_names[0] if model_names else None,
                               options=[{"label": n, "value": n} for n in model_names]), md=4),
        ], class_name="g-2 mb-1"),
        dbc.Switch(id=R.COMPARE_MASK, value=False, class_name="small mb-1",
                   label="B: the same text under the pruning card's mask (one text, two masks)"),
        html.Div("", id=R.COMPARE_NOTE, className="small text-muted mb-1"),
        dbc.Row([
            dbc.Col([html.Div("A: the page's run", className="small fw-semibold text-center"),
                     graph(R.COMPARE_A, "compare-a", class_name="research-compare-graph")], lg=4),
            dbc.Col([html.Div("B", className="small fw-semibold text-center"),
                     graph(R.COMPARE_B, "compare-b", class_name="research-compare-graph")], lg=4),
            dbc.Col([html.Div("B − A", className="small fw-semibold text-center"),
                     graph(R.COMPARE_DIFF, "compare-difference", class_name="research-compare-graph")], lg=4),
        ], class_name="g-2"),
        html.Div("", id=R.COMPARE_HOVER, className="small font-monospace compare-hover", role="status",
                 **{"aria-live": "polite"}),
    ], fill=False)


def model_view_section() -> html.Div:
    return _section("Model view", [
        dbc.Switch(id=R.MODEL_VIEW_ON, value=False, class_name="small mb-1",
                   label="Draw every layer × head (rebuilds all heads of the run: off until you want it)"),
        html.Div("", id=R.MODEL_VIEW_NOTE, className="small text-muted mb-1"),
        graph(R.MODEL_VIEW, "attention-model-view", class_name=f"{ids.HEAD_GRID_CLASS} research-model-view",
              modebar=False),
    ], fill=False)


def profile_section(profile_measures: list[str]) -> html.Div:
    """profile_measures: the engine's corpus-profile measure names, one grid each (services.vocabulary)."""
    upload = dcc.Upload(
        id=R.PROFILE_UPLOAD, multiple=False, max_size=PROFILE_MAX_UPLOAD_BYTES, className="pruning-upload",
        children=html.Div(["Drop or ", html.A("choose a text file", className="link-primary"),
                           html.Span(" (one sentence a line; ≥ 200 recommended)", className="text-muted")]))
    grids = dbc.Row([dbc.Col(graph(R.profile_grid(m), f"profile-{m}", class_name=f"{ids.HEAD_GRID_CLASS} "
                                   "research-profile-grid", modebar=False), md=6, xl=3, class_name="mb-2")
                     for m in profile_measures], class_name="g-2")
    return _section("Corpus head profile", [
        html.Div([upload, html.Span("", id=R.PROFILE_CORPUS_INFO, className="small")], className="mb-1"),
        _job_row("Compute profile", R.PROFILE_BUTTON, R.PROFILE_CANCEL, R.PROFILE_PROGRESS, R.PROFILE_PROGRESS_TEXT,
                 R.PROFILE_PROGRESS_WRAP),
        html.Div("", id=R.PROFILE_INFO, className="small text-muted mb-1"),
        grids,
        html.Div([], id=R.PROFILE_TEXTS, className="small"),
    ], fill=False)


def extreme_list(title: str, rows: list[dict]) -> html.Div:
    return html.Div([html.Div(title, className="fw-semibold mb-1"), html.Ol([
        html.Li([dbc.Button(r["text"], id=R.profile_text(r["index"]), n_clicks=0, color="link", size="sm",
                            class_name="p-0 text-start align-baseline"),
                 html.Span(f"  {r['value']:.3f}", className="text-muted font-monospace")]) for r in rows])])


def research_card(model_names: list[str] | None, vocabulary: dict) -> dbc.Card:
    """vocabulary: {"measures": {name: label}, "profile_measures": [name]}, the engine's names as plain
    data (services.vocabulary.page_vocabulary()): the layout imports no engine."""
    return dbc.Card([
        dbc.CardHeader(html.Div([
            html.Span("Research", className="fw-semibold"),
            html.Span("attention beyond raw weights; which heads can go, estimated on some pairs and checked "
                      "on others",
                      className="small text-muted"),
        ], className="d-flex align-items-baseline gap-2 flex-wrap")),
        dbc.CardBody([
            dcc.Store(id=R.STUDY, data=None), dcc.Store(id=R.GREEDY_DONE, data=None),
            dcc.Store(id=R.PROFILE, data=None), dcc.Store(id=R.PROFILE_CORPUS, data=None),
            dbc.Alert(id=R.STATUS, is_open=False, color="danger", dismissable=True, class_name="mb-2 py-2 small"),
            measure_section(vocabulary["measures"]),
            html.Div(model_view_section(), className="mt-3"),
            html.Div(compare_section(list(model_names or [])), className="mt-3"),
            html.Div(profile_section(list(vocabulary["profile_measures"])), className="mt-3"),
            html.Div(study_section(), className="mt-3"),
            html.Div(greedy_section(), className="mt-3"),
        ]),
    ], id=R.RESEARCH_CARD, class_name="shadow-sm")
