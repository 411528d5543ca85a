"""Held-out pruning study on the page, the engine half (no Dash callbacks); the figure, table,
texts and defaults are dashboard/research_pruning.py (re-exported here).

    study_pairs(corpus)                     -> (pairs, label): the pruning card's upload or the bundled 184
    parse_methods                           the methods the run's model supports, of those chosen
    compute_study / compute_greedy          call models.pruning_science (cached) for the run's model
    greedy_cost / corpus_note               the greedy job's measured cost, the split sizes
"""
from __future__ import annotations

from dashboard.research_pruning import (  # noqa: F401 - the pure half, re-exported
    BUNDLED_STUDY_LABEL, COLORS, DEFAULT_ESTIMATE, DEFAULT_METHODS, DEFAULT_SEEDS, MAX_SEEDS, METHOD_LABELS,
    MIN_SEEDS, TABLE_SHARES, eta_reporter, greedy_note, parse_seeds, parse_share, study_figure, study_rows,
    study_text)
from models import pruning_science as ps
from models.errors import PanelError
from services.pruning_card import corpus_pairs, run_info


def parse_methods(methods, loaded=None) -> list[str]:
    allowed = ps.methods_for(loaded) if loaded is not None else list(ps.METHODS)
    if not isinstance(methods, list):
        raise PanelError("Choose at least one importance method.")
    out = [m for m in allowed if m in methods and m != "greedy"]
    if "greedy" in methods and "greedy" in allowed:
        out.append("greedy")
    if not out:
        raise PanelError("Choose at least one importance method this model supports.")
    return out


def study_pairs(corpus: dict | None) -> tuple[list, str]:
    """The pruning card's uploaded pairs when there are any, else the bundled 184."""
    if corpus:
        return corpus_pairs(corpus, None)
    return ps.load_study_pairs(), BUNDLED_STUDY_LABEL


def corpus_note(corpus: dict | None, percent) -> str:
    try:
        pairs, label = study_pairs(corpus)
    except Exception:  # noqa: BLE001 - a bad upload is reported by the pruning card
        return ""
    share = parse_share(percent)
    try:
        est, ev = ps.split_pairs(pairs, share)
    except ValueError as exc:
        return str(exc)
    return (f"{label}: importance estimated on {len(est)} pairs, curves evaluated on the other {len(ev)} "
            f"(seeded random split). Upload pairs in the pruning card above to study your own.")


def _loaded(store):
    from models import loader

    return loader.get_loaded(run_info(store).model)


def compute_study(store, corpus, methods, seeds, percent, progress=None) -> dict:
    loaded = _loaded(store)
    pairs, label = study_pairs(corpus)
    methods = parse_methods(methods, loaded)
    try:
        res = ps.cached_study(loaded, pairs, methods=methods, seeds=parse_seeds(seeds),
                              estimate_share=parse_share(percent), progress=progress)
    except ValueError as exc:
        raise PanelError(str(exc)) from None
    out = res.to_dict()
    out.update(model=loaded.name, corpus=label)
    return out


def greedy_cost(store, corpus, percent) -> dict:
    """{"evaluations", "seconds_each", "seconds"}: the greedy job's cost, one evaluation measured."""
    loaded = _loaded(store)
    pairs, _ = study_pairs(corpus)
    est = ps.greedy_subset(pairs, parse_share(percent))
    L, H = loaded.shape(next(iter(loaded.blocks)))
    n = ps.greedy_evaluations(L * H, int(round(0.5 * L * H)))
    each = ps.cached_seconds_per_evaluation(loaded, est)
    return {"evaluations": n, "seconds_each": each, "seconds": n * each, "n_estimate": len(est)}


def compute_greedy(store, corpus, percent, progress=None) -> dict:
    loaded = _loaded(store)
    pairs, label = study_pairs(corpus)
    res = ps.cached_greedy(loaded, pairs, estimate_share=parse_share(percent), progress=progress)
    return {"model": loaded.name, "corpus": label, "k": res["k"], "seconds": res["seconds"]}


# ---- figure, table, text --------------------------------------------------------------------


