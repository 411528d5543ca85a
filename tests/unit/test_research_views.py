"""Pure builders of the pruning-science card (dashboard/research_pruning.py, research_panel.py)."""
import numpy as np
import pytest

from dashboard import research_panel as panel
from models.errors import PanelError
from services import research_pruning as rp


def _study(methods=("loss-gradient", "output-sensitivity")):
    rng = np.random.default_rng(0)
    shares = [0.0, 0.1, 0.3, 0.5]
    runs = [[1.0] + list(0.95 - 0.2 * np.array(shares[1:]) + rng.normal(0, 0.02, 3)) for _ in range(5)]
    mean, std = np.mean(runs, 0), np.std(runs, 0, ddof=1)
    curves = {"loss-gradient": [1.0, 0.93, 0.88, 0.8], "output-sensitivity": [1.0, 0.99, 0.97, 0.95]}
    z = {m: [0.0] + [float((c - a) / s) for c, a, s in zip(curves[m][1:], mean[1:], std[1:])] for m in methods}
    return {
        "shares": shares, "pruned": [0, 7, 22, 36], "n_heads": 72, "layers": 6, "heads": 12,
        "methods": list(methods), "method_text": {m: m for m in list(methods) + ["random"]},
        "metric": "Spearman ρ", "higher_is_better": True, "curves": {m: curves[m] for m in methods},
        "band_lo": {m: [v - 0.01 for v in curves[m]] for m in methods},
        "band_hi": {m: [v + 0.01 for v in curves[m]] for m in methods},
        "random_runs": [list(map(float, r)) for r in runs], "random_mean": mean.tolist(), "random_std": std.tolist(),
        "random_band_lo": (mean - 0.01).tolist(), "random_band_hi": (mean + 0.01).tolist(), "z": z,
        "p_worse": {m: [1.0, 0.2, 0.1, 0.0] for m in methods}, "orders": {m: list(range(72)) for m in methods},
        "n_estimate": 92, "n_evaluate": 92, "estimate_share": 0.5, "split_seed": 0, "seeds": 5, "bootstrap": 500,
        "default": "output-sensitivity", "seconds": {"evaluation": 3.0}, "model": "all-MiniLM-L6-v2",
        "corpus": "bundled",
    }


def test_rows_at_30_and_50_percent_with_z_and_beats():
    s = _study()
    rows = rp.study_rows(s)
    assert [r["method"] for r in rows] == ["loss-gradient", "output-sensitivity", "random"]
    os_row = rows[1]
    assert [c["share"] for c in os_row["cells"]] == [0.3, 0.5]
    assert os_row["cells"][0]["value"] == 0.97 and os_row["cells"][0]["z"] == pytest.approx(s["z"]["output-sensitivity"][2])
    for r in rows[:2]:
        for c in r["cells"]:
            assert c["beats"] == (c["z"] >= 2.0)
    assert rows[1]["default"] and not rows[0]["default"]
    assert rows[2]["cells"][1]["std"] == pytest.approx(s["random_std"][3])
    assert rp.study_rows(None) == []


def test_figure_has_each_method_band_and_every_seed():
    s = _study()
    fig = rp.study_figure(s, "all-MiniLM-L6-v2")
    names = [t.name for t in fig.data]
    assert sum(n.startswith("random seed") for n in names) == 5
    for m in s["methods"]:
        assert rp.METHOD_LABELS[m] in names
        assert names.count(f"{rp.METHOD_LABELS[m]} band") == 2
    line = next(t for t in fig.data if t.name == rp.METHOD_LABELS["output-sensitivity"])
    assert list(line.y) == s["curves"]["output-sensitivity"]
    assert fig.layout.meta["n_evaluate"] == 92
    other = rp.study_figure(s, "gpt2-tiny")
    assert other.layout.meta["kind"] == "empty"


def test_text_names_sizes_method_and_bands():
    text = rp.study_text(_study())
    for part in ("92 pairs", "other 92", "500 bootstrap", "5 seeded orders", "output sensitivity"):
        assert part in text


def test_table_marks_beating_cells_bold():
    html = str(panel.study_table(rp.study_rows(_study())))
    assert "fw-bold" in html and "z +" in html


def test_user_choices_are_validated():
    assert rp.parse_seeds("3") == rp.MIN_SEEDS and rp.parse_seeds(999) == rp.MAX_SEEDS
    assert rp.parse_seeds(None) == rp.DEFAULT_SEEDS and rp.parse_seeds({"x": 1}) == rp.DEFAULT_SEEDS
    assert rp.parse_share(5) == 0.2 and rp.parse_share("nan") == 0.5 and rp.parse_share(60) == 0.6
    assert rp.parse_methods(["greedy", "loss-gradient", "evil"]) == ["loss-gradient", "greedy"]
    with pytest.raises(PanelError):
        rp.parse_methods("loss-gradient")
    with pytest.raises(PanelError):
        rp.parse_methods(["nope"])


def test_corpus_note_gives_both_split_sizes():
    assert "estimated on 92 pairs" in rp.corpus_note(None, 50) and "other 92" in rp.corpus_note(None, 50)
    note = rp.corpus_note({"name": "x.tsv", "pairs": [[f"a{i}", f"b{i}"] for i in range(10)]}, 40)
    assert "on 4 pairs" in note and "other 6" in note


def test_eta_reporter():
    seen = []
    report = rp.eta_reporter(seen.append, "greedy")
    report(0, 10)
    report(5, 10)
    report(10, 10)
    assert seen[0] == (0, "greedy: 0 of 10 steps (0%)")
    assert seen[1][0] == 50 and "left" in seen[1][1]
    assert seen[-1][0] == 100


def test_profile_upload_is_validated():
    import base64

    from services import research_profile as rpr

    url = "data:text/plain;base64," + base64.b64encode("One.\nTwo?\n# comment\nA\tB\n".encode()).decode()
    c = rpr.decode_corpus(url, "x.txt")
    assert c == {"name": "x.txt", "texts": ["One.", "Two?", "A", "B"]}
    for bad in (None, "no-comma", "data:text/plain;base64," + base64.b64encode(b"\xff\xfe\x00").decode()):
        with pytest.raises(PanelError):
            rpr.decode_corpus(bad, "x")
    with pytest.raises(PanelError):
        rpr.corpus_texts({"name": "x", "texts": "not a list"})


def test_profile_grids_and_text_from_a_store():
    from services import research_profile as rpr
    from models import profile as prof

    rng = np.random.default_rng(1)
    mean = {m: rng.uniform(0, 1, (6, 12)).tolist() for m in prof.MEASURES}
    roles = [["mixed"] * 12 for _ in range(6)]
    roles[2][3] = "previous-token"
    store = {"key": "ab" * 16, "model": "m", "corpus": "bundled corpus (264 texts)", "n": 264, "layers": 6,
             "heads": 12, "mean": mean, "roles": roles, "tokens_mean": 14.2, "seconds": 3.0}
    grids = rpr.profile_grids(store, selected=(2, 3))
    assert set(grids) == set(prof.MEASURES)
    fig = grids["punct"]
    assert fig.layout.meta["kind"] == "head_grid" and fig.layout.meta["profile_measure"] == "punct"
    assert np.allclose(np.array(fig.data[0].z, dtype=float), np.round(np.array(mean["punct"]), 3), atol=1e-3)
    assert "previous-token 1" in rpr.profile_text(store) and "mixed 71" in rpr.profile_text(store)
    assert rpr.profile_grids(None)["first"].layout.meta["kind"] == "empty"


def test_profile_lookups_never_trust_the_browser():
    from services import research_profile as rpr

    for store in (None, {"key": "../../etc/passwd"}, {"key": 5}, {"key": "ab" * 16}):
        with pytest.raises(PanelError):
            rpr.open_text(store, 0)
    with pytest.raises(PanelError):
        rpr.extreme_rows({"key": "ab" * 16}, "nope", 0, 0)


def test_model_view_places_each_head_in_its_box():
    from dashboard.research_modelview import model_view

    rng = np.random.default_rng(0)
    w = rng.dirichlet(np.ones(7), size=(3, 4, 7)).astype(np.float32)  # [L=3, H=4, T=7, T=7]
    fig = model_view(w, max_tokens=12, selected=(1, 2))
    z = np.array(fig.data[0].z, dtype=float)
    x, y = np.array(fig.data[0].x, dtype=float), np.array(fig.data[0].y, dtype=float)
    assert z.shape == (3 * 8, 4 * 8)
    for layer in range(3):
        for head in range(4):
            cols = np.nonzero((np.round(x) == head) & ~np.isclose(x % 1, 0.5))[0]  # gaps sit at h + 0.5
            rows = np.nonzero((np.round(y) == layer) & ~np.isclose(y % 1, 0.5))[0]
            assert len(cols) == len(rows) == 7
            # every thumbnail cell rounds to its own (head, layer), so hover / click give that head
            np.testing.assert_allclose(z[np.ix_(rows, cols)], w[layer, head], atol=1e-3)
    gaps = np.isnan(z)
    assert gaps[7::8].all() and gaps[:, 7::8].all()
    assert fig.layout.meta["kind"] == "model_view" and fig.layout.shapes[0].x0 == 1.5


def test_difference_figure_is_signed_and_symmetric():
    from dashboard.research_compare import difference_figure

    d = np.array([[0.2, -0.5], [0.0, 0.1]], dtype=np.float32)
    fig = difference_figure(d, ["[CLS]", "<b>"])
    assert fig.data[0].zmin == -0.5 and fig.data[0].zmax == 0.5 and fig.data[0].zmid == 0
    np.testing.assert_allclose(np.array(fig.data[0].z, dtype=float), d, atol=1e-6)
    assert "&lt;b&gt;" in fig.data[0].customdata[0][1] and fig.layout.meta["kind"] == "difference"
